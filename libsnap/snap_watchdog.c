/*
 * Starting and ending the freeze watchdog helper (snap_watchdog.h). Safe in a
 * multi-threaded caller: posix_spawn + exec (no fork of the caller's
 * process), descriptors close-on-exec, the child reaped by pid only, and
 * SIGPIPE never raised (MSG_NOSIGNAL on the control socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap_watchdog.h"
#include "snap_trace.h"

#include "snap_child.h"

#define ARM_TIMEOUT_MS 10000 /* a helper under valgrind starts slowly */

extern char **environ;

static bool executable(const char *path)
{
    return access(path, X_OK) == 0;
}

/* <directory of the running executable>/xlsnap-freeze-watchdog, or NULL. */
static char *beside_executable(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return snap_xasprintf("%s/%s", exe, SNAP_WATCHDOG_NAME);
}

int snap_watchdog_find(char **prog_out, snap_err *err)
{
    *prog_out = NULL;
    const char *env = getenv(SNAP_WATCHDOG_ENV);
    if (env && *env) {
        if (!executable(env))
            return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                                "no freeze watchdog program at %s (named by %s)", env,
                                SNAP_WATCHDOG_ENV);
        *prog_out = snap_xstrdup(env);
        return 0;
    }
    /* The build's LIBEXECDIR; the usual prefixes, for a `make install PREFIX=`
     * that differs from the build's. */
    static const char *const installed[] = {
        SNAP_LIBEXECDIR "/" SNAP_WATCHDOG_NAME,
        "/usr/libexec/xlsnap/" SNAP_WATCHDOG_NAME,
        "/usr/local/libexec/xlsnap/" SNAP_WATCHDOG_NAME,
    };
    for (size_t i = 0; i < sizeof installed / sizeof installed[0]; i++)
        if (executable(installed[i])) {
            *prog_out = snap_xstrdup(installed[i]);
            return 0;
        }
    char *beside = beside_executable();
    if (beside && executable(beside)) {
        *prog_out = beside;
        return 0;
    }
    free(beside);
    return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                        "no freeze watchdog program at %s (install xlsnap, or set %s)",
                        installed[0], SNAP_WATCHDOG_ENV);
}

/* 0-2 /dev/null, ctl on 3, agent on 4 (the sources are >= 10: no clash). */
static int watchdog_file_actions(posix_spawn_file_actions_t *fa, int ctl, int agent)
{
    int rc = posix_spawn_file_actions_init(fa);
    if (rc)
        return rc;
    for (int fd = 0; fd < 3 && !rc; fd++)
        rc = posix_spawn_file_actions_addopen(fa, fd, "/dev/null", O_RDWR, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(fa, ctl, SNAP_WATCHDOG_CTL_FD);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(fa, agent, SNAP_WATCHDOG_AGENT_FD);
    if (rc)
        posix_spawn_file_actions_destroy(fa);
    return rc;
}

static int spawn_watchdog(const snap_watchdog_args *a, int ctl, int agent, pid_t *pid,
                          snap_err *err)
{
    char deadline[32], lease[16], open_ms[16], parent[16];
    snprintf(deadline, sizeof deadline, "%llu", (unsigned long long)a->deadline);
    snprintf(lease, sizeof lease, "%d", a->lease_total_ms);
    snprintf(open_ms, sizeof open_ms, "%d", a->open_timeout_ms);
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    char *const argv[] = {(char *)a->prog,
                          (char *)(a->expiry == SNAP_LEASE_KILL_CALLER ? "kill" : "thaw"),
                          (char *)a->agent_path,
                          deadline,
                          lease,
                          open_ms,
                          (char *)a->domain,
                          parent,
                          NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rc = watchdog_file_actions(&fa, ctl, agent);
    if (rc)
        return snap_err_errno(err, SNAP_ERROR_IO, rc, "freeze watchdog: spawn set-up");
    rc = snap_child_spawnattr_init(&at, POSIX_SPAWN_SETSID); /* nothing of the caller's */
    if (!rc) {
        rc = posix_spawn(pid, a->prog, &fa, &at, argv, environ);
        posix_spawnattr_destroy(&at);
    }
    posix_spawn_file_actions_destroy(&fa);
    return rc ? snap_err_errno(err, SNAP_ERROR_IO, rc, "freeze watchdog: starting %s",
                               a->prog)
              : 0;
}

/* Reads what the watchdog said, waiting at most timeout_ms; false at EOF. */
static bool read_watchdog(snap_watchdog *w, int timeout_ms)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR)
        return true;
    if (r <= 0)
        return r == 0; /* nothing yet */
    char buf[16];
    ssize_t n = recv(w->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == SNAP_WATCHDOG_EXPIRED)
            w->expired = true;
        else if (buf[i] == SNAP_WATCHDOG_THAWED || buf[i] == SNAP_WATCHDOG_THAW_FAILED)
            w->outcome = buf[i];
    }
    return n > 0;
}

static void reap(snap_watchdog *w)
{
    /* ECHILD: the caller's own SIGCHLD handler reaped it; nothing to do. */
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    w->pid = -1;
}

static int wait_armed(snap_watchdog *w, snap_err *err)
{
    char c = 0;
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    uint64_t until = snap_deadline_in(ARM_TIMEOUT_MS);
    int r;
    do
        r = poll(&p, 1, snap_deadline_poll_ms(until));
    while (r < 0 && errno == EINTR);
    if (r > 0 && recv(w->fd, &c, 1, 0) == 1 && c == SNAP_WATCHDOG_ARMED)
        return 0;
    return snap_err_set(
        err, SNAP_ERROR_FAIL, "freeze watchdog (pid %d) %s within %d ms: not freezing",
        (int)w->pid, r > 0 ? "exited without arming" : "did not arm", ARM_TIMEOUT_MS);
}

int snap_watchdog_start(snap_watchdog *w, const snap_watchdog_args *a, int agent_fd,
                        snap_err *err)
{
    *w = (snap_watchdog){.pid = -1, .fd = -1};
    snap_trace("watchdog-start");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "freeze watchdog: socketpair");
    /* Above 3 and 4, so that the spawn's dup2s cannot overwrite each other. */
    int ctl = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    int agent = fcntl(agent_fd, F_DUPFD_CLOEXEC, 10);
    close(sv[1]);
    int rc = ctl < 0 || agent < 0
                 ? snap_err_errno(err, SNAP_ERROR_IO, errno, "freeze watchdog: dup")
                 : spawn_watchdog(a, ctl, agent, &w->pid, err);
    if (ctl >= 0)
        close(ctl);
    if (agent >= 0)
        close(agent);
    w->fd = sv[0];
    if (!rc)
        rc = wait_armed(w, err);
    snap_trace("watchdog-armed");
    if (rc) {
        if (w->pid > 0) {
            kill(w->pid, SIGKILL);
            reap(w);
        }
        close(w->fd);
        w->fd = -1;
    }
    return rc;
}

bool snap_watchdog_expired(snap_watchdog *w)
{
    if (w->fd >= 0 && !w->expired)
        read_watchdog(w, 0);
    return w->expired;
}

snap_watchdog_verdict snap_watchdog_finish(snap_watchdog *w, bool release, int timeout_ms,
                                           bool *expired)
{
    *expired = w->expired;
    if (w->pid < 0)
        return SNAP_WATCHDOG_VERDICT_RELEASED;
    if (release) {
        char c = SNAP_WATCHDOG_RELEASE;
        (void)!send(w->fd, &c, 1, MSG_NOSIGNAL);
    } else {
        shutdown(w->fd, SHUT_WR); /* EOF: thaw now */
    }
    uint64_t until = snap_deadline_in(timeout_ms);
    bool open = true;
    while (open && snap_now_ms() < until)
        open = read_watchdog(w, snap_deadline_poll_ms(until));
    bool eof = !open;
    if (!eof)
        kill(w->pid, SIGKILL); /* stuck past every bound it has: end it */
    close(w->fd);
    w->fd = -1;
    reap(w);
    *expired = w->expired;
    if (w->outcome == SNAP_WATCHDOG_THAWED)
        return SNAP_WATCHDOG_VERDICT_THAWED;
    if (w->outcome == SNAP_WATCHDOG_THAW_FAILED || !eof || !release || w->expired)
        return SNAP_WATCHDOG_VERDICT_FAILED;
    return SNAP_WATCHDOG_VERDICT_RELEASED;
}
