/*
 * xlsnap-freeze-watchdog MODE AGENT_PATH DEADLINE_MS LEASE_MS OPEN_TIMEOUT_MS DOMAIN
 * PARENT_PID
 *
 * The freeze watchdog libsnap starts (posix_spawn) before it freezes a
 * guest's filesystems; not meant to be run by hand. It holds the control
 * socket on fd 3 and a duplicate of libsnap's agent connection on fd 4
 * (protocol: libsnap/snap_watchdog.h) and:
 *  - exits quietly when released ('R': the guest was thawed);
 *  - on EOF (its caller died, or gave up on its own thaw) thaws the guest;
 *  - when the monotonic clock reaches DEADLINE_MS with the guest still
 *    held: MODE "thaw" says so ('X') and thaws the guest, leaving its
 *    caller alone (the call in progress then fails); MODE "kill" says why
 *    on the caller's stderr, SIGKILLs PARENT_PID, and thaws.
 * Before thawing it cuts libsnap's agent connection: the agent serves one
 * client, and the watchdog's thaw uses a connection of its own.
 * Exit status: 0 released or thawed, 1 the thaw failed, 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "snap_quiesce.h"
#include "snap_watchdog.h"

typedef struct watchdog_args {
    bool kill_caller;
    const char *agent_path, *domain;
    uint64_t deadline;
    int lease_ms, open_timeout_ms;
    pid_t parent;
} watchdog_args;

static bool parse_args(int argc, char **argv, watchdog_args *a)
{
    if (argc != 8 || (strcmp(argv[1], "thaw") && strcmp(argv[1], "kill")))
        return false;
    char *end[4];
    a->kill_caller = !strcmp(argv[1], "kill");
    a->agent_path = argv[2];
    a->deadline = strtoull(argv[3], &end[0], 10);
    a->lease_ms = (int)strtol(argv[4], &end[1], 10);
    a->open_timeout_ms = (int)strtol(argv[5], &end[2], 10);
    a->domain = argv[6];
    a->parent = (pid_t)strtol(argv[7], &end[3], 10);
    for (int i = 0; i < 4; i++)
        if (*end[i] || end[i] == argv[3 + (i < 3 ? i : 4)])
            return false;
    return a->parent > 1;
}

static void say_byte(char c)
{
    (void)!send(SNAP_WATCHDOG_CTL_FD, &c, 1, MSG_NOSIGNAL);
}

/*
 * The stderr of the caller about to be killed, to say why first (the
 * watchdog holds no descriptor of its caller's, so it opens it from /proc:
 * -1 when it cannot).
 */
static int open_parent_stderr(pid_t parent)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/2", (int)parent);
    return open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
}

/* Waits for the release, EOF or the deadline: true when released. */
static bool wait_release(const watchdog_args *a, bool *lease_ran_out)
{
    for (;;) {
        struct pollfd p = {.fd = SNAP_WATCHDOG_CTL_FD, .events = POLLIN};
        int r = poll(&p, 1, snap_deadline_poll_ms(a->deadline));
        if (r < 0 && errno == EINTR)
            continue;
        char c;
        ssize_t n = r > 0 ? recv(SNAP_WATCHDOG_CTL_FD, &c, 1, 0) : 0;
        if (n == 1 && c == SNAP_WATCHDOG_RELEASE)
            return true;
        if (n == 1)
            continue; /* not ours to interpret */
        *lease_ran_out = r == 0;
        return false; /* EOF or the deadline */
    }
}

/*
 * Only the channel and the agent connection stay open: nothing a caller
 * leaked (the loop stops at the descriptor limit, which valgrind lowers
 * below its own descriptors).
 */
static void close_the_rest(void)
{
    if (close_range(SNAP_WATCHDOG_AGENT_FD + 1, ~0U, 0) == 0)
        return;
    long max_fd = sysconf(_SC_OPEN_MAX);
    for (long fd = SNAP_WATCHDOG_AGENT_FD + 1; fd < (max_fd > 0 ? max_fd : 1024); fd++)
        close((int)fd);
}

int main(int argc, char **argv)
{
    watchdog_args a;
    if (!parse_args(argc, argv, &a)) {
        fprintf(stderr,
                "usage: %s thaw|kill AGENT_PATH DEADLINE_MS LEASE_MS OPEN_TIMEOUT_MS "
                "DOMAIN PARENT_PID (started by libsnap, fds 3 and 4 open)\n",
                argv[0]);
        return 2;
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    close_the_rest();
    say_byte(SNAP_WATCHDOG_ARMED);
    bool ran_out = false;
    if (wait_release(&a, &ran_out))
        return 0;
    int say = -1;
    if (ran_out && a.kill_caller && getppid() == a.parent) {
        say = open_parent_stderr(a.parent);
        if (say >= 0)
            dprintf(say,
                    "xlsnap: watchdog: the freeze lease of domain %s ran out "
                    "(%d ms after the freeze was sent) with xlsnap pid %d still "
                    "holding the guest frozen: killing it and thawing the guest\n",
                    a.domain, a.lease_ms, (int)a.parent);
        kill(a.parent, SIGKILL);
    } else if (ran_out) {
        say_byte(SNAP_WATCHDOG_EXPIRED);
    }
    shutdown(SNAP_WATCHDOG_AGENT_FD, SHUT_RDWR);
    close(SNAP_WATCHDOG_AGENT_FD);
    snap_err err;
    int rc = snap_quiesce_thaw_new_connection(a.agent_path, a.open_timeout_ms, &err);
    if (say >= 0)
        dprintf(say, "xlsnap: watchdog: %s\n",
                rc ? err.msg : "the guest's filesystems are thawed");
    say_byte(rc ? SNAP_WATCHDOG_THAW_FAILED : SNAP_WATCHDOG_THAWED);
    return rc ? 1 : 0;
}
