/*
 * libsnap embedded in a long-lived, multi-threaded caller (issue 17): this
 * program links libsnap and calls snap_create itself, the way a management
 * daemon would, with its own SIGCHLD handler and a thread running.
 *  - Across snap_create of an offline domain (qemu-img children) and of a
 *    live, quiesced one (the freeze watchdog), the caller's handler stays
 *    installed and sees the children's SIGCHLDs, and its thread keeps
 *    running; the snapshots are in the images (qemu-img snapshot -l).
 *  - A freeze lease that runs out in the library (the test hook holds the
 *    window open past it): the watchdog thaws the guest while the call is
 *    still in progress, the call fails with the reason, this process lives
 *    on, and nothing is recorded.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libsnap.h"
#include "snap_base.h"
#include "th.h"
#include "th_baredom.h"
#include "th_snaptest.h"
#include "th_xlsim.h"

static th_xlsim_dom g;

/* ------------------------------------------------------------ the caller's own */

static volatile sig_atomic_t sigchld_seen;

static void callers_sigchld(int sig)
{
    (void)sig;
    sigchld_seen++; /* counts only: reaping is libsnap's, by pid */
}

static struct sigaction install_handler(void)
{
    struct sigaction sa = {.sa_handler = callers_sigchld, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    struct sigaction old;
    sigaction(SIGCHLD, &sa, &old);
    sigchld_seen = 0;
    return old;
}

static bool handler_still_installed(void)
{
    struct sigaction now;
    return sigaction(SIGCHLD, NULL, &now) == 0 && now.sa_handler == callers_sigchld;
}

/* A thread of the caller's: ticks until told to stop; may look at the guest once. */
typedef struct ticker {
    pthread_t tid;
    atomic_long ticks;
    atomic_bool stop;
    const th_xlsim_dom *look_at; /* NULL: just tick */
    int look_after_ms;
    char *status_seen; /* the guest's fsfreeze status at look_after_ms */
} ticker;

static void *tick(void *opaque)
{
    ticker *t = opaque;
    uint64_t start = snap_now_ms();
    while (!atomic_load(&t->stop)) {
        atomic_fetch_add(&t->ticks, 1);
        if (t->look_at && !t->status_seen &&
            snap_now_ms() - start >= (uint64_t)t->look_after_ms)
            t->status_seen = th_xlsim_fsfreeze_status(t->look_at);
        usleep(1000);
    }
    return NULL;
}

static bool ticker_start(ticker *t, const th_xlsim_dom *look_at, int look_after_ms)
{
    memset(t, 0, sizeof *t);
    t->look_at = look_at;
    t->look_after_ms = look_after_ms;
    return pthread_create(&t->tid, NULL, tick, t) == 0;
}

/* Still ticking after the call, then stopped and joined. */
static bool ticker_alive_then_stop(ticker *t)
{
    long before = atomic_load(&t->ticks);
    usleep(50000);
    bool alive = atomic_load(&t->ticks) > before;
    atomic_store(&t->stop, true);
    pthread_join(t->tid, NULL);
    return alive;
}

static snap_ctx *new_ctx(void)
{
    snap_ctx *ctx = NULL;
    if (snap_ctx_alloc(&ctx, SNAP_PLATFORM_SIM, NULL) != 0)
        th_fail_at(__FILE__, __LINE__, "snap_ctx_alloc failed");
    return ctx;
}

/* `qemu-img snapshot -l -U image` lists a snapshot named name. */
static bool image_has_snapshot(const char *image, const char *name)
{
    char *out = NULL;
    int rc = th_runl(&out, NULL, "qemu-img", "snapshot", "-l", "-U", image, (char *)NULL);
    bool found = rc == 0 && out && strstr(out, name);
    if (!found)
        th_note("qemu-img snapshot -l %s: %s", image, out ? out : "");
    free(out);
    return found;
}

static bool recorded(snap_ctx *ctx, const char *domain, const char *name)
{
    snap_info **list = NULL;
    size_t n = 0;
    bool found = false;
    if (snap_list(ctx, domain, &list, &n) == 0)
        for (size_t i = 0; i < n; i++)
            found = found || !strcmp(list[i]->name, name);
    snap_info_list_free(list, n);
    return found;
}

/* ------------------------------------------------------------ tests */

/* An offline domain: qemu-img children, reaped by pid under the caller's handler. */
static void test_offline_keeps_handler_and_thread(void)
{
    th_xlsim_dom b;
    REQUIRE(th_bare_create(&b, "emb-off"));
    REQUIRE(th_bare_shut_off(&b));
    struct sigaction old = install_handler();
    ticker t;
    REQUIRE(ticker_start(&t, NULL, 0));
    snap_ctx *ctx = new_ctx();
    snap_create_params p;
    snap_create_params_init(&p);
    p.name = "off1";
    long ticks_before = atomic_load(&t.ticks);
    int rc = snap_create(ctx, "emb-off", &p, NULL, NULL);
    if (rc)
        th_fail_at(__FILE__, __LINE__, "snap_create: %s", snap_ctx_errmsg(ctx));
    CHECK(atomic_load(&t.ticks) > ticks_before); /* it ran during the call */
    CHECK(handler_still_installed());
    CHECK(sigchld_seen > 0); /* the qemu-img children's, delivered to our handler */
    th_note("SIGCHLDs seen by the caller's handler: %d", (int)sigchld_seen);
    CHECK(ticker_alive_then_stop(&t));
    CHECK(image_has_snapshot(th_snap_disk_file(&b, "a.qcow2"), "off1"));
    CHECK(recorded(ctx, "emb-off", "off1"));
    snap_ctx_free(ctx);
    sigaction(SIGCHLD, &old, NULL);
    th_xlsim_destroy(&b);
}

/* A live guest, quiesced: the watchdog helper is spawned, released and reaped. */
static void test_live_keeps_handler_and_thread(void)
{
    struct sigaction old = install_handler();
    ticker t;
    REQUIRE(ticker_start(&t, NULL, 0));
    snap_ctx *ctx = new_ctx();
    snap_create_params p;
    snap_create_params_init(&p);
    p.name = "live1";
    p.quiesce = SNAP_QUIESCE_REQUIRED;
    snap_info *info = NULL;
    long ticks_before = atomic_load(&t.ticks);
    int rc = snap_create(ctx, g.name, &p, &info, NULL);
    if (rc)
        th_fail_at(__FILE__, __LINE__, "snap_create: %s", snap_ctx_errmsg(ctx));
    CHECK(info && info->quiesced && info->thaw_ok);
    CHECK(atomic_load(&t.ticks) > ticks_before);
    CHECK(handler_still_installed());
    CHECK(sigchld_seen > 0); /* at least the watchdog's exit */
    CHECK(ticker_alive_then_stop(&t));
    CHECK(image_has_snapshot(th_snap_disk_file(&g, "data.qcow2"), "live1"));
    char *status = th_xlsim_fsfreeze_status(&g);
    CHECK_STR(status, "thawed");
    free(status);
    snap_info_free(info);
    snap_ctx_free(ctx);
    sigaction(SIGCHLD, &old, NULL);
}

/*
 * The lease (1 s freeze timeout + 2 s) runs out while the test hook holds
 * the call in the frozen window for 6 s: at 4.5 s the caller's thread finds
 * the guest thawed (by the watchdog: the call is still paused); the call
 * then fails with the reason and records nothing; this process lives on.
 */
static void test_lease_runs_out_in_library(void)
{
    ticker t;
    REQUIRE(ticker_start(&t, &g, 4500));
    snap_ctx *ctx = new_ctx();
    snap_create_params p;
    snap_create_params_init(&p);
    p.name = "lease1";
    p.quiesce = SNAP_QUIESCE_REQUIRED;
    p.freeze_timeout_ms = 1000;
    p.freeze_lease_ms = 2000;
    setenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE", "6000", 1);
    uint64_t start = snap_now_ms();
    int rc = snap_create(ctx, g.name, &p, NULL, NULL);
    unsetenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE");
    th_note("snap_create: %d after %llu ms: %s", rc,
            (unsigned long long)(snap_now_ms() - start), snap_ctx_errmsg(ctx));
    CHECK_INT(rc, SNAP_ERROR_TIMEDOUT);
    CHECK_CONTAINS(snap_ctx_errmsg(ctx), "the freeze lease of 3000 ms ran out: the "
                                         "watchdog thawed the guest; the snapshot is "
                                         "rolled back");
    CHECK(ticker_alive_then_stop(&t));
    CHECK_STR(t.status_seen, "thawed"); /* while the call was still in the window */
    free(t.status_seen);
    char *status = th_xlsim_fsfreeze_status(&g);
    CHECK_STR(status, "thawed");
    free(status);
    CHECK(!recorded(ctx, g.name, "lease1"));
    CHECK(!image_has_snapshot(th_snap_disk_file(&g, "data.qcow2"), "lease1"));
    snap_ctx_free(ctx);
}

int main(void)
{
    th_plan(4);
    signal(SIGPIPE, SIG_IGN);
    th_snap_run_boot(&g, "emb1", 0);
    TH_SNAP_RUN(test_live_keeps_handler_and_thread);
    TH_SNAP_RUN(test_lease_runs_out_in_library);
    TH_RUN(test_offline_keeps_handler_and_thread);
    return th_snap_finish();
}
