/* Terminal-safe text: checks on input, escapes on output; see snap_text.h. */
#include "snap_text.h"

#include <stdio.h>
#include <string.h>

int snap_text_utf8_len(const unsigned char *s, uint32_t *cp)
{
    int len;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0)
        len = 2, c &= 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, c &= 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, c &= 0x07, min = 0x10000;
    else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        return 0;
    *cp = c;
    return len;
}

bool snap_text_is_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
}

bool snap_text_is_bidi(uint32_t cp)
{
    return cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

int snap_text_check(const char *what, const char *text, snap_err *err)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; s[i];) {
        uint32_t cp;
        int n = snap_text_utf8_len(s + i, &cp);
        if (n == 0)
            return snap_err_set(err, SNAP_ERROR_INVAL, "%s is not valid UTF-8 (byte %zu)",
                                what, i);
        if (snap_text_is_control(cp))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "%s contains a control character (U+%04X at byte %zu); "
                                "it must be one line of printable text",
                                what, (unsigned)cp, i);
        if (snap_text_is_bidi(cp))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "%s contains U+%04X, a bidirectional text control (byte "
                                "%zu), which makes text display in another order than "
                                "it is stored",
                                what, (unsigned)cp, i);
        i += (size_t)n;
    }
    return 0;
}

/* Bytes of s up to the first unsafe one (the whole length when none). */
static size_t safe_prefix(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] >= 0x20 && s[i] < 0x7f) { /* the common case: printable ASCII */
            i++;
            continue;
        }
        uint32_t cp;
        int n = snap_text_utf8_len(s + i, &cp);
        if (n == 0 || snap_text_is_control(cp) || snap_text_is_bidi(cp))
            break;
        i += (size_t)n;
    }
    return i;
}

char *snap_text_escape(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text), i = safe_prefix(s, len);
    if (i == len)
        return NULL;
    /* At most 8 output bytes per input byte ("\u{202E}" is 8 for 3). */
    char *out = snap_xmalloc(len * 8 + 1), *o = out;
    memcpy(o, s, i);
    o += i;
    while (i < len) {
        size_t ok = safe_prefix(s + i, len - i);
        memcpy(o, s + i, ok);
        o += ok;
        i += ok;
        if (i == len)
            break;
        uint32_t cp;
        int n = snap_text_utf8_len(s + i, &cp);
        if (n == 0 || cp < 0x80)
            o += sprintf(o, "\\x%02x", s[i]), n = 1;
        else
            o += sprintf(o, "\\u{%04x}", (unsigned)cp);
        i += (size_t)n;
    }
    *o = '\0';
    return out;
}
