/*
 * The freeze watchdog: a helper program (xlsnap-freeze-watchdog) started
 * with posix_spawn before a freeze, so that the guest is thawed whatever
 * happens to its caller (see snap_quiesce.c for the lease it enforces).
 *
 * It runs in its own session and holds two descriptors: fd 3, one end of a
 * socketpair with libsnap (the control channel), and fd 4, a duplicate of
 * libsnap's agent connection, only ever used to cut it (shutdown) so that
 * the agent, which serves one client, accepts the watchdog's own.
 *
 * Control channel, one byte each:
 *   watchdog -> libsnap  'A' armed; 'X' the lease ran out (thaw-only mode);
 *                        then 'T' it thawed the guest or 'F' its thaw failed.
 *   libsnap -> watchdog  'R' released: the guest is thawed, exit quietly.
 *                        EOF (libsnap gave up, or its process died): thaw now.
 */
#ifndef SNAP_WATCHDOG_H
#define SNAP_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "libsnap.h"
#include "snap_base.h"

/* Where libsnap looks first: the build passes $(LIBEXECDIR)/xlsnap. */
#ifndef SNAP_LIBEXECDIR
#define SNAP_LIBEXECDIR "/usr/local/libexec/xlsnap"
#endif
#define SNAP_WATCHDOG_NAME "xlsnap-freeze-watchdog"
#define SNAP_WATCHDOG_ENV  "XLSNAP_WATCHDOG"

/* The descriptors the watchdog finds its channel and agent connection on. */
#define SNAP_WATCHDOG_CTL_FD   3
#define SNAP_WATCHDOG_AGENT_FD 4

#define SNAP_WATCHDOG_ARMED       'A'
#define SNAP_WATCHDOG_EXPIRED     'X'
#define SNAP_WATCHDOG_THAWED      'T'
#define SNAP_WATCHDOG_THAW_FAILED 'F'
#define SNAP_WATCHDOG_RELEASE     'R'

/*
 * The helper program to run (malloc'd): $XLSNAP_WATCHDOG when set, else
 * SNAP_LIBEXECDIR/xlsnap-freeze-watchdog (then /usr/libexec/xlsnap and
 * /usr/local/libexec/xlsnap), else the one beside the running executable
 * (an uninstalled build tree). Not executable: SNAP_ERROR_NOTFOUND
 * naming the path(s) tried.
 */
int snap_watchdog_find(char **prog_out, snap_err *err);

typedef struct snap_watchdog_args {
    const char *prog;
    const char *agent_path;
    const char *domain;
    uint64_t deadline;  /* snap_now_ms() clock (CLOCK_MONOTONIC: shared) */
    int lease_total_ms; /* freeze timeout + lease, for its message */
    int open_timeout_ms;
    snap_lease_expiry expiry;
} snap_watchdog_args;

typedef struct snap_watchdog {
    pid_t pid; /* -1: none */
    int fd;    /* the control channel */
    bool expired;
    char outcome; /* SNAP_WATCHDOG_THAWED / _THAW_FAILED, or 0 */
} snap_watchdog;

typedef enum snap_watchdog_verdict {
    SNAP_WATCHDOG_VERDICT_RELEASED, /* exited on our release: the lease held */
    SNAP_WATCHDOG_VERDICT_THAWED,   /* it thawed the guest (lease ran out, or EOF) */
    SNAP_WATCHDOG_VERDICT_FAILED,   /* its thaw failed, or it died without a word */
} snap_watchdog_verdict;

/* Starts it and waits until it is armed. agent_fd: the connection to cut. */
int snap_watchdog_start(snap_watchdog *w, const snap_watchdog_args *a, int agent_fd,
                        snap_err *err);
/* Whether it said the lease ran out (without blocking). */
bool snap_watchdog_expired(snap_watchdog *w);
/*
 * Ends it and reaps it (by pid): release says the guest is thawed; else it
 * is told to thaw (EOF) and its thaw awaited, at most timeout_ms.
 * *expired: it said the lease ran out.
 */
snap_watchdog_verdict snap_watchdog_finish(snap_watchdog *w, bool release, int timeout_ms,
                                           bool *expired);

#endif
