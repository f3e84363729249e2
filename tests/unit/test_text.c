/*
 * Terminal safety of snapshot names and descriptions (snap_text.h): control
 * characters and bidirectional controls refused on the way in, escaped on
 * the way out.
 */
#include <stdlib.h>

#include "snap_meta.h"
#include "snap_text.h"
#include "th.h"

/* Control characters, bidirectional controls and non-UTF-8 in descriptions. */
static void test_description_refused(void)
{
    const char *bad[] = {"\x1b[31mred",      "two\nlines",       "tab\there",
                         "bell\a",           "del\x7f",          "c1 csi \xc2\x9b",
                         "rlo \xe2\x80\xae", "lri \xe2\x81\xa6", "rlm \xe2\x80\x8f",
                         "alm \xd8\x9c",     "lre \xe2\x80\xaa", "pdi \xe2\x81\xa9",
                         "bad \xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snap_err err;
        snap_err_clear(&err);
        if (snap_text_check("the description", bad[i], &err) != SNAP_ERROR_INVAL)
            th_fail_at(__FILE__, __LINE__, "description %zu accepted", i);
        CHECK_CONTAINS(err.msg, "the description");
    }
    snap_err err;
    snap_text_check("the description", "ok \xe2\x80\xae", &err);
    CHECK_CONTAINS(err.msg, "U+202E, a bidirectional text control (byte 3)");
    snap_text_check("the description", "a\nb", &err);
    CHECK_CONTAINS(err.msg, "control character (U+000A at byte 1)");
    const char *good[] = {"",
                          "before the upgrade, 2 disks",
                          "снимок",
                          "日本語 ok",
                          "emoji \xf0\x9f\x93\xb8",
                          "hebrew \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
                          "back\\slash"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (snap_text_check("the description", good[i], &err))
            th_fail_at(__FILE__, __LINE__, "description %zu refused: %s", i, err.msg);
}

/* New names: bidi controls refused; existing records with one stay readable. */
static void test_new_names_refuse_bidi(void)
{
    snap_err err;
    CHECK_INT(snap_meta_new_name_check("\xe2\x80\xae"
                                       "abc",
                                       &err),
              SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "snapshot name contains U+202E");
    CHECK_INT(snap_meta_new_name_check("x\xe2\x81\xa7y", &err), SNAP_ERROR_INVAL);
    CHECK_INT(snap_meta_new_name_check("a\x1b", &err), SNAP_ERROR_INVAL);
    CHECK_INT(snap_meta_new_name_check("a/b", &err), SNAP_ERROR_INVAL);
    CHECK_INT(snap_meta_new_name_check("日本語 1", &err), 0);
    CHECK(snap_meta_name_valid("\xe2\x80\xae"
                               "abc")); /* an older record's name */
}

static void check_escape(const char *in, const char *want)
{
    char *got = snap_text_escape(in);
    if (!want)
        CHECK(got == NULL);
    else if (!got)
        th_fail_at(__FILE__, __LINE__, "'%s' not escaped", want);
    else
        CHECK_STR(got, want);
    free(got);
}

static void test_escape_on_output(void)
{
    check_escape("plain name", NULL);
    check_escape("снимок 日本語", NULL);
    check_escape("back\\slash", NULL);
    check_escape("\x1b[2Jred", "\\x1b[2Jred");
    check_escape("a\nb\tc\x7f", "a\\x0ab\\x09c\\x7f");
    check_escape("\xe2\x80\xae"
                 "gpj.exe",
                 "\\u{202e}gpj.exe");
    check_escape("csi\xc2\x9b"
                 "31m",
                 "csi\\u{009b}31m");
    check_escape("bad\xff\xfe end", "bad\\xff\\xfe end");
    check_escape("cut \xe2\x80", "cut \\xe2\\x80");
    check_escape("\xd8\x9c\xe2\x81\xa9", "\\u{061c}\\u{2069}");
}

int main(void)
{
    th_plan(3);
    TH_RUN(test_description_refused);
    TH_RUN(test_new_names_refuse_bidi);
    TH_RUN(test_escape_on_output);
    return th_finish();
}
