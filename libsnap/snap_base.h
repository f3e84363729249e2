/*
 * Private base shared by every libsnap module: errors with context, monotonic
 * deadlines, logging. Not installed.
 */
#ifndef SNAP_BASE_H
#define SNAP_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xentoollog.h>

#include "libsnap.h"

#define SNAP_ERRMSG_MAX 2048

/* Number of elements of an array (not a pointer). */
#define SNAP_N_OF(a) (sizeof(a) / sizeof((a)[0]))

/*
 * An error: a SNAP_ERROR_* code and a message that grows context as it goes
 * up ("disk xvda: QMP transaction: GenericError: Could not create file").
 */
typedef struct snap_err {
    int code;
    char msg[SNAP_ERRMSG_MAX];
} snap_err;

/*
 * The message is never empty (an empty one reads as snap_strerror(code)),
 * and err->msg may be passed as an argument to any of these.
 * Sets the error and returns code (so: `return snap_err_set(err, ...)`).
 */
int snap_err_set(snap_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like snap_err_set, appending ": strerror(errnum)". */
int snap_err_errno(snap_err *err, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefixes "context: " to the message; returns err->code. */
int snap_err_context(snap_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends to the message ("...; and then ..."); returns err->code. */
int snap_err_append(snap_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void snap_err_clear(snap_err *err);

/* ----------------------------------------------------------- time */

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t snap_now_ms(void);
/* An absolute deadline timeout_ms from now; timeout_ms < 0 means never. */
uint64_t snap_deadline_in(int timeout_ms);
#define SNAP_DEADLINE_NEVER UINT64_MAX
/* Milliseconds left until deadline, for poll(): 0 when passed, -1 for never. */
int snap_deadline_poll_ms(uint64_t deadline);

/* ----------------------------------------------------------- logging */

/* Logs through lg when it is not NULL (xtl_log with context "libsnap"). */
void snap_log(xentoollog_logger *lg, xentoollog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ----------------------------------------------------------- memory */

/* malloc/strdup that abort on exhaustion: small allocations only. */
void *snap_xmalloc(size_t n);
void *snap_xcalloc(size_t n, size_t size);
void *snap_xrealloc(void *p, size_t n);
char *snap_xstrdup(const char *s);
/* A copy of s, or NULL when s is NULL (snap_xstrdup gives "" then). */
char *snap_xstrdup_or_null(const char *s);
char *snap_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Has the kernel back the whole pages of a fresh array about to be written
 * in one call (MADV_POPULATE_WRITE) instead of a fault per page; contents
 * unchanged, best effort (listing large directories, snap_list_index.c).
 */
void snap_prefault(void *p, size_t len);

/*
 * Test hooks: when the environment variable env holds a positive number of
 * milliseconds, says "xlsnap: test hook: <what>, pausing N ms" on stderr and
 * sleeps that long, so a test can act at that exact point (e.g. SIGKILL).
 */
void snap_test_hook_pause(const char *env, const char *what);

/* Vectors of malloc'd strings with a separate count (v may be NULL when n is 0). */
/* Appends owned (taken over) and returns the grown vector. */
char **snap_strv_add(char **v, size_t *n, char *owned);
/* A deep copy; NULL when n is 0. */
char **snap_strv_dup(char *const *v, size_t n);
/* Frees the n strings and the vector. */
void snap_strv_free(char **v, size_t n);

#endif
