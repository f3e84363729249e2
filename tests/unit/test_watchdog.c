/*
 * The freeze watchdog helper (xlsnap-freeze-watchdog, via snap_watchdog.h)
 * against a fake guest agent, without a guest: released, it leaves quietly;
 * told to thaw (EOF), it thaws; when the lease runs out it cuts the
 * caller's agent connection and thaws, leaving the caller alone (thaw-only)
 * or SIGKILLing it first (kill-caller, with its message on the caller's
 * stderr). Run with XLSNAP_WATCHDOG set (tests/run sets it).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_peer.h"
#include "snap_base.h"
#include "snap_watchdog.h"
#include "th.h"

#define RETURNS(json)   "{\"return\": " json "}\n"
#define ASK(req, reply) FP_EXPECT(req), FP_SEND(reply)
/* The watchdog's thaw on its own connection: sync, status, thaw. */
static const fake_step thaw_script[] = {
    ASK("guest-sync-delimited", "\xff{\"return\": %ID%}\n"),
    ASK("guest-fsfreeze-status", RETURNS("\"frozen\"")),
    ASK("guest-fsfreeze-thaw", RETURNS("2")),
};

/* The caller's agent connection: the watchdog gets one end, the test keeps the other. */
typedef struct conn {
    int ours, its;
} conn;

static bool conn_open(conn *c)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return false;
    c->ours = sv[0], c->its = sv[1];
    return true;
}

/* The watchdog shut the connection down: our end reads EOF. */
static bool conn_cut(const conn *c)
{
    char b;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(c->ours, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return recv(c->ours, &b, 1, 0) == 0;
}

static void conn_close(conn *c)
{
    close(c->ours);
    close(c->its);
}

static int start(snap_watchdog *w, const char *agent, int lease_ms, snap_lease_expiry ex,
                 int agent_fd)
{
    char *prog = NULL;
    snap_err err;
    if (snap_watchdog_find(&prog, &err)) {
        th_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    snap_watchdog_args a = {.prog = prog,
                            .agent_path = agent,
                            .domain = "dom",
                            .deadline = snap_deadline_in(lease_ms),
                            .lease_total_ms = lease_ms,
                            .open_timeout_ms = 2000,
                            .expiry = ex};
    int rc = snap_watchdog_start(w, &a, agent_fd, &err);
    if (rc)
        th_fail_at(__FILE__, __LINE__, "snap_watchdog_start: %s", err.msg);
    free(prog);
    return rc;
}

static void test_released_leaves_quietly(void)
{
    const char *agent = th_path("rel.sock");
    static const fake_step nothing[] = {FP_SLEEP(-1)};
    fake_peer *fp = fake_peer_start(agent, nothing, FP_N(nothing));
    conn c;
    REQUIRE(fp && conn_open(&c));
    snap_watchdog w;
    REQUIRE(start(&w, agent, 60000, SNAP_LEASE_THAW_ONLY, c.its) == 0);
    pid_t pid = w.pid;
    bool expired = true;
    CHECK_INT(snap_watchdog_finish(&w, true, 5000, &expired),
              SNAP_WATCHDOG_VERDICT_RELEASED);
    CHECK(!expired);
    CHECK(kill(pid, 0) != 0); /* reaped */
    CHECK_INT(fake_peer_connections(fp), 0);
    conn_close(&c);
    fake_peer_free(fp);
}

static void test_eof_thaws(void)
{
    const char *agent = th_path("eof.sock");
    fake_peer *fp = fake_peer_start(agent, thaw_script, FP_N(thaw_script));
    conn c;
    REQUIRE(fp && conn_open(&c));
    snap_watchdog w;
    REQUIRE(start(&w, agent, 60000, SNAP_LEASE_THAW_ONLY, c.its) == 0);
    bool expired = true;
    CHECK_INT(snap_watchdog_finish(&w, false, 10000, &expired),
              SNAP_WATCHDOG_VERDICT_THAWED);
    CHECK(!expired);
    CHECK(fake_peer_wait(fp, 2000));
    CHECK(conn_cut(&c));
    conn_close(&c);
    fake_peer_free(fp);
}

static void test_lease_runs_out_thaw_only(void)
{
    const char *agent = th_path("thaw.sock");
    fake_peer *fp = fake_peer_start(agent, thaw_script, FP_N(thaw_script));
    conn c;
    REQUIRE(fp && conn_open(&c));
    snap_watchdog w;
    REQUIRE(start(&w, agent, 300, SNAP_LEASE_THAW_ONLY, c.its) == 0);
    CHECK(!snap_watchdog_expired(&w));
    CHECK(fake_peer_wait(fp, 5000)); /* thawed without being asked */
    CHECK(conn_cut(&c));             /* so that the agent could serve it */
    CHECK(snap_watchdog_expired(&w));
    bool expired = false;
    CHECK_INT(snap_watchdog_finish(&w, true, 5000, &expired),
              SNAP_WATCHDOG_VERDICT_THAWED);
    CHECK(expired);
    conn_close(&c);
    fake_peer_free(fp);
}

static void test_lease_runs_out_kill_caller(void)
{
    const char *agent = th_path("kill.sock");
    const char *log = th_path("kill.err");
    fake_peer *fp = fake_peer_start(agent, thaw_script, FP_N(thaw_script));
    REQUIRE(fp);
    fflush(NULL);
    pid_t caller = fork();
    if (caller == 0) { /* a caller that keeps the guest frozen */
        FILE *f = freopen(log, "w", stderr);
        conn c;
        snap_watchdog w;
        if (!f || !conn_open(&c) || start(&w, agent, 300, SNAP_LEASE_KILL_CALLER, c.its))
            _exit(3);
        sleep(30);
        _exit(0);
    }
    int st = th_wait(caller, 15000);
    CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK(fake_peer_wait(fp, 5000));
    char *text = NULL;
    for (int waited = 0; waited < 5000; waited += 100) {
        free(text);
        text = th_read_file(log);
        if (text && strstr(text, "thawed"))
            break;
        usleep(100000);
    }
    CHECK_CONTAINS(text, "xlsnap: watchdog: the freeze lease of domain dom ran out (300 "
                         "ms after the freeze was sent) with xlsnap pid ");
    CHECK_CONTAINS(text, "xlsnap: watchdog: the guest's filesystems are thawed");
    free(text);
    fake_peer_free(fp);
}

int main(void)
{
    th_plan(4);
    signal(SIGPIPE, SIG_IGN);
    TH_RUN(test_released_leaves_quietly);
    TH_RUN(test_eof_thaws);
    TH_RUN(test_lease_runs_out_thaw_only);
    TH_RUN(test_lease_runs_out_kill_caller);
    return th_finish();
}
