/*
 * Child processes for libsnap: argv only (never a shell), stdin from
 * /dev/null, stderr (and stdout when asked) captured through pipes with a cap,
 * a timeout per child (SIGTERM, then SIGKILL after a grace period), many
 * children in flight at once, all driven by one poll() loop and all reaped
 * before snap_child_group_run() returns.
 *
 * How exits are noticed: a pidfd per child (pidfd_open(2) via syscall(),
 * probed once), polled with the pipes. Where the kernel lacks pidfds, each
 * running child is asked with waitpid(pid, WNOHANG) every 10 ms. libsnap
 * never touches the process's SIGCHLD disposition (libxl's rule for a
 * library: the caller owns it, libxl_event.h) and only ever calls waitpid()
 * on the pids it started, never waitpid(-1), so it never reaps a caller's
 * children. A caller whose own SIGCHLD handler reaps with waitpid(-1) will
 * steal our statuses: such a child is reported as "status lost". SIGCHLD set
 * to SIG_IGN (or SA_NOCLDWAIT) makes exit statuses unobtainable: runs are
 * refused with SNAP_ERROR_INVAL.
 *
 * Each child runs in its own process group, so a timeout kills whatever
 * the child started too, and a terminal's ^C reaches the caller only (the
 * caller decides whether to stop a qemu-img mid-write). Signal dispositions
 * and the signal mask are reset to defaults in the child; descriptors other
 * than 0-2 are closed in the child and every descriptor libsnap opens is
 * close-on-exec.
 *
 * Exit statuses are worded like libxl_report_child_exitstatus():
 *   "qemu-img [1234] exited with error status 1"
 *   "qemu-img [1234] died due to fatal signal Killed"
 *   "qemu-img [1234] was killed by timeout after 30 s"
 * followed by ": <captured stderr>" when there is any.
 */
#ifndef SNAP_CHILD_H
#define SNAP_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/types.h>

#include "snap_base.h"

#define SNAP_CHILD_DEFAULT_MAX_STDOUT (4u << 20)
#define SNAP_CHILD_DEFAULT_MAX_STDERR (64u << 10)
#define SNAP_CHILD_DEFAULT_GRACE_MS   2000
#define SNAP_CHILD_DEFAULT_PARALLEL   8

typedef struct snap_child_opts {
    int timeout_ms;      /* <= 0: no timeout */
    int term_grace_ms;   /* SIGTERM to SIGKILL; 0: SNAP_CHILD_DEFAULT_GRACE_MS */
    bool capture_stdout; /* otherwise stdout goes to /dev/null */
    size_t max_stdout;   /* bytes kept; 0: SNAP_CHILD_DEFAULT_MAX_STDOUT */
    size_t max_stderr;   /* bytes kept; 0: SNAP_CHILD_DEFAULT_MAX_STDERR */
} snap_child_opts;

typedef struct snap_child_result {
    char *what;     /* name used in messages, e.g. "qemu-img" */
    pid_t pid;      /* 0 when it could not be started */
    bool started;   /* the program was executed */
    bool reaped;    /* status holds its wait status */
    bool timed_out; /* killed by us after timeout_ms */
    int status;     /* wait status (see waitpid(2)) */
    char *out;      /* captured stdout (NUL-terminated) or NULL */
    size_t out_len;
    bool out_truncated; /* more than max_stdout bytes were written */
    char *errout;       /* captured stderr (NUL-terminated), never NULL once run */
    size_t errout_len;
    bool errout_truncated;
    uint64_t start_ms, end_ms; /* snap_now_ms() at spawn and at reaping */
    int rc;                    /* 0 when it exited with status 0 */
    snap_err err;              /* what went wrong, when rc != 0 */
} snap_child_result;

typedef struct snap_child_group snap_child_group;

/* max_parallel <= 0: SNAP_CHILD_DEFAULT_PARALLEL. lg may be NULL. */
snap_child_group *snap_child_group_new(int max_parallel, xentoollog_logger *lg);
/*
 * Queues argv (copied; argv[0] is looked up in PATH). what names the child in
 * messages (NULL: the basename of argv[0]); opts may be NULL. Returns the
 * child's index for snap_child_group_result().
 */
size_t snap_child_group_add(snap_child_group *g, const char *what,
                            const char *const argv[], const snap_child_opts *opts);
/*
 * Runs every queued child, at most max_parallel at a time, and waits for all
 * of them. Returns 0 when every child exited with status 0; otherwise the rc
 * of the first failed child (in the order added), with err saying how many
 * failed and why the first did. Per-child outcomes: snap_child_group_result().
 * A group runs once.
 */
int snap_child_group_run(snap_child_group *g, snap_err *err);
size_t snap_child_group_count(const snap_child_group *g);
const snap_child_result *snap_child_group_result(const snap_child_group *g, size_t i);
void snap_child_group_free(snap_child_group *g);

/*
 * Runs one child to completion. res (may be NULL) receives the result and
 * must then be released with snap_child_result_dispose().
 */
int snap_child_run(const char *what, const char *const argv[],
                   const snap_child_opts *opts, snap_child_result *res, snap_err *err);
void snap_child_result_dispose(snap_child_result *res);

/*
 * Words a wait status like libxl_report_child_exitstatus(), e.g.
 * "qemu-img [1234] exited with error status 1".
 */
void snap_child_describe_status(char *buf, size_t len, const char *what, pid_t pid,
                                int status);

/*
 * posix_spawn attributes that take nothing of the caller's: default signal
 * dispositions and an empty mask, plus detach, POSIX_SPAWN_SETPGROUP (its
 * own process group) or POSIX_SPAWN_SETSID (its own session). Shared by the
 * children here and the freeze watchdog helper. 0 or an errno value.
 */
int snap_child_spawnattr_init(posix_spawnattr_t *at, short detach);

/*
 * A server child that runs while the caller talks to it (an NBD server, a
 * FUSE export): started like the children above (argv, PATH, own process
 * group, default signals, stdin /dev/null, stdout /dev/null) with stderr
 * appended to the file errpath (read with snap_child_bg_errout once it
 * failed). The caller must end it with snap_child_bg_stop, which reaps it.
 */
typedef struct snap_child_bg {
    char *what;
    pid_t pid; /* 0: not running (never started, or reaped) */
    char *errpath;
    int status; /* wait status once reaped */
} snap_child_bg;

int snap_child_bg_start(snap_child_bg *bg, const char *what, const char *const argv[],
                        const char *errpath, snap_err *err);
/*
 * True when the child has exited (reaped here; err says how, with what it
 * wrote to stderr). False while it runs.
 */
bool snap_child_bg_exited(snap_child_bg *bg, snap_err *err);
/*
 * SIGTERM to its process group, up to grace_ms for it to exit, then SIGKILL;
 * reaped either way. Safe on a child that is not running. Frees what.
 */
void snap_child_bg_stop(snap_child_bg *bg, int grace_ms);

/* For tests: poll with waitpid(WNOHANG) even where pidfds work. */
void snap_child_force_polling(bool on);
/* True when the pidfd mechanism is in use. */
bool snap_child_uses_pidfd(void);

#endif
