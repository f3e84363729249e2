/*
 * Text that reaches a terminal: snapshot names and descriptions are checked
 * on the way in (snap_text_check) and every stored string is escaped on the
 * way out in text mode (snap_text_escape), since records written by older
 * versions or by hand may hold anything.
 *
 * Unsafe: bytes that are not UTF-8, control characters (C0 including tab and
 * newline, DEL, C1: a terminal acts on them, e.g. ESC sequences) and the
 * Unicode bidirectional controls U+061C, U+200E, U+200F, U+202A..U+202E,
 * U+2066..U+2069 (they make text display in another order than it is stored:
 * "\u202Egpj.exe" shows as "exe.jpg").
 * Not installed.
 */
#ifndef SNAP_TEXT_H
#define SNAP_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap_base.h"

/* Length (1..4) of the UTF-8 sequence at s, its code point in *cp; 0: not UTF-8. */
int snap_text_utf8_len(const unsigned char *s, uint32_t *cp);
/* A control character (C0, DEL, C1). */
bool snap_text_is_control(uint32_t cp);
/* A Unicode bidirectional formatting control. */
bool snap_text_is_bidi(uint32_t cp);

/*
 * 0 when text is safe, else INVAL: "<what> contains U+202E, a bidirectional
 * text control (byte 3) ..." (the text itself is not quoted).
 */
int snap_text_check(const char *what, const char *text, snap_err *err);

/* snap_text_escape (public, libsnap.h) escapes for a terminal. */

#endif
