/* Errors, deadlines, logging and memory helpers shared by libsnap's modules. */
#include "snap_base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

const char *snap_strerror(int rc)
{
    switch (rc) {
    case SNAP_OK: return "success";
    case SNAP_ERROR_FAIL: return "failed";
    case SNAP_ERROR_INVAL: return "invalid argument";
    case SNAP_ERROR_NOTFOUND: return "not found";
    case SNAP_ERROR_EXISTS: return "already exists";
    case SNAP_ERROR_TIMEDOUT: return "timed out";
    case SNAP_ERROR_PROTOCOL: return "protocol error";
    case SNAP_ERROR_PEER: return "peer reported an error";
    case SNAP_ERROR_IO: return "I/O error";
    case SNAP_ERROR_BUSY: return "busy";
    case SNAP_ERROR_CLOSED: return "connection closed";
    case SNAP_ERROR_UNSUPPORTED: return "not supported";
    case SNAP_ERROR_GUEST_FROZEN: return "guest may be left frozen";
    default: return "unknown error";
    }
}

/*
 * Formats into a buffer of its own first: a caller may pass err->msg itself
 * as an argument (formatting straight into it read a half-overwritten
 * string: "failed: ; and then ...").
 */
static int err_format(char *out, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int err_format(char *out, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, size, fmt, ap);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < size ? n : (int)size - 1;
}

/* An empty message says at least what the code means. */
static void err_fill_empty(snap_err *err)
{
    if (!err->msg[0])
        snprintf(err->msg, sizeof err->msg, "%s", snap_strerror(err->code));
}

/* Copies head, then each of parts, into err->msg, cutting at the end. */
static void err_compose(snap_err *err, const char *head, const char *const *parts,
                        size_t n_parts)
{
    char out[SNAP_ERRMSG_MAX];
    size_t at = strnlen(head, sizeof out - 1);
    memcpy(out, head, at);
    for (size_t i = 0; i < n_parts && at < sizeof out - 1; i++) {
        size_t l = strnlen(parts[i], sizeof out - 1 - at);
        memcpy(out + at, parts[i], l);
        at += l;
    }
    out[at] = '\0';
    memcpy(err->msg, out, at + 1);
}

int snap_err_set(snap_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char head[SNAP_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    err_format(head, sizeof head, fmt, ap);
    va_end(ap);
    err->code = code;
    err_compose(err, head, NULL, 0);
    err_fill_empty(err);
    return code;
}

int snap_err_errno(snap_err *err, int code, int errnum, const char *fmt, ...)
{
    if (!err)
        return code;
    char head[SNAP_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    err_format(head, sizeof head, fmt, ap);
    va_end(ap);
    const char *parts[] = {": ", strerror(errnum)};
    err->code = code;
    err_compose(err, head, parts, 2);
    return code;
}

int snap_err_context(snap_err *err, const char *fmt, ...)
{
    if (!err)
        return SNAP_ERROR_FAIL;
    if (!err->code)
        err->code = SNAP_ERROR_FAIL;
    err_fill_empty(err);
    char head[SNAP_ERRMSG_MAX], old[SNAP_ERRMSG_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    err_format(head, sizeof head, fmt, ap);
    va_end(ap);
    /* Long messages are cut at the end: the outer context matters most. */
    const char *parts[] = {": ", old};
    err_compose(err, head, parts, 2);
    return err->code;
}

int snap_err_append(snap_err *err, const char *fmt, ...)
{
    if (!err)
        return SNAP_ERROR_FAIL;
    if (!err->code)
        err->code = SNAP_ERROR_FAIL;
    err_fill_empty(err);
    char old[SNAP_ERRMSG_MAX], tail[SNAP_ERRMSG_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    err_format(tail, sizeof tail, fmt, ap);
    va_end(ap);
    const char *parts[] = {tail};
    err_compose(err, old, parts, 1);
    return err->code;
}

void snap_err_clear(snap_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

uint64_t snap_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t snap_deadline_in(int timeout_ms)
{
    return timeout_ms < 0 ? SNAP_DEADLINE_NEVER : snap_now_ms() + (uint64_t)timeout_ms;
}

int snap_deadline_poll_ms(uint64_t deadline)
{
    if (deadline == SNAP_DEADLINE_NEVER)
        return -1;
    uint64_t now = snap_now_ms();
    if (now >= deadline)
        return 0;
    uint64_t left = deadline - now;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

void snap_log(xentoollog_logger *lg, xentoollog_level level, const char *fmt, ...)
{
    if (!lg)
        return;
    va_list ap;
    va_start(ap, fmt);
    xtl_logv(lg, level, -1, "libsnap", fmt, ap);
    va_end(ap);
}

static void snap_oom(void)
{
    fputs("libsnap: out of memory\n", stderr);
    abort();
}

void *snap_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        snap_oom();
    return p;
}

void *snap_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        snap_oom();
    return p;
}

void *snap_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        snap_oom();
    return q;
}

char *snap_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        snap_oom();
    return p;
}

char *snap_xstrdup_or_null(const char *s)
{
    return s ? snap_xstrdup(s) : NULL;
}

char *snap_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        snap_oom();
    return s;
}

/*
 * Asks the kernel to back len bytes at p (a fresh malloc'd array about to be
 * written) in one call instead of one page fault per page: under some
 * hypervisors a fault costs 10 us, 4x a page of MADV_POPULATE_WRITE (Linux
 * 5.14; elsewhere, or when refused, pages are simply faulted in on use).
 * Only the whole pages inside the block are touched, and their contents are
 * unchanged.
 */
void snap_prefault(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = 4096;
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)p + len) & ~(page - 1);
    if (to >= from + 16 * page) /* small blocks live in pages malloc already touched */
        madvise((void *)from, to - from, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)len;
#endif
}

char **snap_strv_add(char **v, size_t *n, char *owned)
{
    v = snap_xrealloc(v, (*n + 1) * sizeof *v);
    v[(*n)++] = owned;
    return v;
}

char **snap_strv_dup(char *const *v, size_t n)
{
    if (n == 0)
        return NULL;
    char **copy = snap_xcalloc(n, sizeof *copy);
    for (size_t i = 0; i < n; i++)
        copy[i] = snap_xstrdup(v[i]);
    return copy;
}

void snap_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void snap_test_hook_pause(const char *env, const char *what)
{
    const char *v = getenv(env);
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms <= 0)
        return;
    fprintf(stderr, "xlsnap: test hook: %s, pausing %ld ms\n", what, ms);
    fflush(stderr);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
