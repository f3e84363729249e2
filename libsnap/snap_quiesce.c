/*
 * Quiescing: freeze the guest's filesystems through its agent for the
 * shortest possible window, and make sure they are thawed whatever happens.
 *
 * The freeze lease: before the freeze is sent a watchdog helper program is
 * started (posix_spawn + exec, in its own session: snap_watchdog.h). If the
 * caller dies, the watchdog sees EOF and thaws the guest at once; if the
 * caller still holds the guest frozen when the lease runs out, the watchdog
 * thaws it (cutting the caller's agent connection) and the call in progress
 * fails, its snapshot rolled back; with SNAP_LEASE_KILL_CALLER it kills the
 * caller first, as the xlsnap CLI may ask. After a successful thaw libsnap
 * releases the watchdog with one byte and reaps it. The watchdog's pid and
 * deadline are journaled, so the next run can check it did its job.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snap_agent.h"
#include "snap_orch.h"
#include "snap_watchdog.h"

#define AGENT_OPEN_TIMEOUT_MS 5000
#define AGENT_CMD_TIMEOUT_MS  5000
/* Outside any lease (the watchdog's thaw, journal recovery, after a resume). */
#define THAW_TIMEOUT_MS 10000
#define RECOVERY_MS     15000

/*
 * Every wait inside the frozen window is derived here, from the lease, so
 * that none can outlast it (a thaw waiting 10 s + 15 s recovery inside a
 * 20 s lease got xlsnap killed by its own watchdog, without a word). The
 * watchdog's deadline is: freeze sent + freeze timeout + lease. xlsnap must
 * be done lease_margin_ms() before it, to report and release the watchdog:
 *  - the freeze waits the freeze timeout; its recovery (resync, status,
 *    thaw) gets what is left of the lease after that;
 *  - the QMP transaction gets what is left once THAW_SHARE_MS is set aside;
 *  - the thaw waits THAW_PROMPT_MS for its answer (it takes tens of ms);
 *    then, unless QEMU stopped the guest, recovers in what is left.
 */
#define LEASE_MARGIN_MS 2000
#define THAW_PROMPT_MS  3000
#define THAW_SHARE_MS   6000

struct snap_quiesce {
    snap_ctx *ctx;
    char *agent_path;
    snap_agent *ag;
    snap_quiesce_policy policy;
    int freeze_timeout_ms, budget_ms, lease_ms;
    char *watchdog_prog;
    snap_lease_expiry lease_expiry;
    snap_watchdog wd;
    uint64_t freeze_sent_ms;
    uint64_t lease_deadline; /* the watchdog's (snap_now_ms clock) */
    bool maybe_frozen;
    bool guest_stopped; /* QEMU stopped it before it answered the thaw */
    bool lease_ran_out; /* the watchdog thawed it: the snapshot must not stand */
    int frozen_count;
    char *fallback_reason; /* best-effort: why the snapshot is crash-consistent */
    char *domain;
};

static int lease_margin_ms(const snap_quiesce *q)
{
    return q->lease_ms / 4 < LEASE_MARGIN_MS ? q->lease_ms / 4 : LEASE_MARGIN_MS;
}

/* Milliseconds xlsnap may still wait inside the window (at least 1). */
static int window_left_ms(const snap_quiesce *q)
{
    int64_t left =
        (int64_t)q->lease_deadline - (int64_t)snap_now_ms() - lease_margin_ms(q);
    return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static int min_ms(int a, int b)
{
    return a < b ? a : b;
}

int snap_quiesce_tx_timeout_ms(const snap_quiesce *q)
{
    if (!q || !q->maybe_frozen)
        return SNAP_QMP_TIMEOUT_MS;
    int left = window_left_ms(q) - THAW_SHARE_MS;
    return min_ms(SNAP_QMP_TIMEOUT_MS, left < 1000 ? 1000 : left);
}

/*
 * The freeze cannot be done (err says why, with its context): an error under
 * REQUIRED; under best-effort a warning, and a crash-consistent snapshot.
 */
static int cannot_quiesce(snap_ctx *ctx, const snap_plan *plan, int rc, snap_err *err)
{
    if (plan->quiesce == SNAP_QUIESCE_REQUIRED)
        return rc;
    snap_log(ctx->lg, XTL_WARN, "%s; taking a crash-consistent snapshot", err->msg);
    snap_err_clear(err);
    return 0;
}

/* An agent that answers and can freeze and thaw. */
static int open_capable_agent(snap_ctx *ctx, const snap_domain *dom, snap_agent **out,
                              snap_err *err)
{
    snap_agent *ag = NULL;
    snap_agent_info info = {0};
    int rc = snap_agent_open(dom->agent_path, AGENT_OPEN_TIMEOUT_MS, ctx->lg, &ag, err);
    if (!rc)
        rc = snap_agent_get_info(ag, AGENT_CMD_TIMEOUT_MS, &info, err);
    if (!rc && (!snap_agent_info_can(&info, "guest-fsfreeze-freeze") ||
                !snap_agent_info_can(&info, "guest-fsfreeze-thaw")))
        rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                          "the guest agent does not offer guest-fsfreeze-freeze/thaw");
    snap_agent_info_dispose(&info);
    if (rc) {
        snap_agent_close(ag);
        return snap_err_context(err, "domain %s: guest agent at %s", dom->ref.name,
                                dom->agent_path);
    }
    *out = ag;
    return 0;
}

int snap_quiesce_prepare(snap_ctx *ctx, const snap_domain *dom, const snap_plan *plan,
                         snap_quiesce **out, snap_err *err)
{
    *out = NULL;
    /* No agent channel (the plan refused that for REQUIRED), or no running guest. */
    if (plan->quiesce == SNAP_QUIESCE_OFF || !dom->agent_path ||
        dom->ref.state != SNAP_DOMAIN_RUNNING)
        return 0;
    char *prog = NULL;
    int rc = snap_watchdog_find(&prog, err);
    if (rc)
        return cannot_quiesce(
            ctx, plan,
            snap_err_context(err, "domain %s: cannot freeze safely", dom->ref.name), err);
    snap_agent *ag = NULL;
    rc = open_capable_agent(ctx, dom, &ag, err);
    if (rc) {
        free(prog);
        return cannot_quiesce(ctx, plan, rc, err);
    }
    snap_quiesce *q = snap_xcalloc(1, sizeof *q);
    q->ctx = ctx;
    q->agent_path = snap_xstrdup(dom->agent_path);
    q->ag = ag;
    q->policy = plan->quiesce;
    q->freeze_timeout_ms = plan->freeze_timeout_ms;
    q->budget_ms = plan->freeze_budget_ms;
    q->lease_ms = plan->lease_ms;
    q->watchdog_prog = prog;
    q->lease_expiry = plan->lease_expiry;
    q->wd = (snap_watchdog){.pid = -1, .fd = -1};
    q->domain = snap_xstrdup(dom->ref.name);
    *out = q;
    return 0;
}

/* The watchdog's thaw: connect (the agent serves one client), sync, thaw. */
int snap_quiesce_thaw_new_connection(const char *agent_path, int open_timeout_ms,
                                     snap_err *err)
{
    snap_agent *ag;
    snap_agent_fs_state st = SNAP_AGENT_UNKNOWN;
    snap_agent_freeze_result res;
    int rc = 0;
    uint64_t until = snap_deadline_in(open_timeout_ms);
    /* The dead client's connection may take a moment to be dropped. */
    do {
        rc = snap_agent_open(agent_path, AGENT_OPEN_TIMEOUT_MS, NULL, &ag, err);
        if (rc)
            usleep(100000);
    } while (rc && snap_now_ms() < until);
    if (rc)
        return rc;
    rc = snap_agent_fsfreeze_status(ag, AGENT_CMD_TIMEOUT_MS, &st, err);
    if (rc || st != SNAP_AGENT_THAWED)
        rc = snap_agent_thaw(ag, THAW_TIMEOUT_MS, RECOVERY_MS, &res, err);
    snap_agent_close(ag);
    return rc;
}

/* The watchdog's open timeout: the caller's connection may take a while to drop. */
static int watchdog_open_timeout_ms(const snap_quiesce *q)
{
    return q->freeze_timeout_ms + AGENT_OPEN_TIMEOUT_MS;
}

static int start_watchdog(snap_quiesce *q, snap_meta_store *st, snap_journal *j,
                          snap_err *err)
{
    int lease_total_ms = q->freeze_timeout_ms + q->lease_ms;
    snap_watchdog_args a = {
        .prog = q->watchdog_prog,
        .agent_path = q->agent_path,
        .domain = q->domain,
        .deadline = snap_deadline_in(lease_total_ms),
        .lease_total_ms = lease_total_ms,
        .open_timeout_ms = watchdog_open_timeout_ms(q),
        .expiry = q->lease_expiry,
    };
    int64_t deadline_rt = snap_realtime_ms() + lease_total_ms;
    int rc = snap_watchdog_start(&q->wd, &a, snap_agent_fd(q->ag), err);
    if (rc)
        return rc;
    q->lease_deadline = a.deadline;
    snap_journal_set_watchdog(j, q->wd.pid, deadline_rt);
    return snap_journal_set_phase(st, j, SNAP_PHASE_FROZEN, err);
}

/* Longest the watchdog's own thaw may take (open, status, thaw, recovery). */
static int watchdog_thaw_bound_ms(const snap_quiesce *q)
{
    return watchdog_open_timeout_ms(q) + AGENT_CMD_TIMEOUT_MS + THAW_TIMEOUT_MS +
           RECOVERY_MS + 5000;
}

/*
 * Ends the watchdog: released when the guest is known thawed, else told to
 * thaw it (and awaited). Notes whether the lease ran out meanwhile.
 */
static snap_watchdog_verdict finish_watchdog(snap_quiesce *q, bool release)
{
    bool expired;
    snap_watchdog_verdict v =
        snap_watchdog_finish(&q->wd, release, watchdog_thaw_bound_ms(q), &expired);
    if (expired)
        q->lease_ran_out = true;
    return v;
}

static void release_watchdog(snap_quiesce *q)
{
    finish_watchdog(q, true);
}

/* The lease ran out and the watchdog thawed (or tried to): the call fails. */
static int lease_ran_out_error(snap_quiesce *q, snap_watchdog_verdict v, snap_err *err)
{
    q->maybe_frozen = v != SNAP_WATCHDOG_VERDICT_THAWED;
    int lease_total_ms = q->freeze_timeout_ms + q->lease_ms;
    if (v == SNAP_WATCHDOG_VERDICT_THAWED)
        return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                            "the freeze lease of %d ms ran out: the watchdog thawed the "
                            "guest; the snapshot is rolled back",
                            lease_total_ms);
    return snap_err_set(err, SNAP_ERROR_GUEST_FROZEN,
                        "the freeze lease of %d ms ran out and the watchdog could not "
                        "thaw the guest: its filesystems may still be frozen",
                        lease_total_ms);
}

int snap_quiesce_freeze(snap_ctx *ctx, snap_quiesce *q, snap_meta_store *st,
                        snap_journal *j, snap_err *err)
{
    snap_agent_freeze_result res;
    int rc = start_watchdog(q, st, j, err);
    if (rc)
        return rc;
    q->freeze_sent_ms = snap_now_ms();
    q->maybe_frozen = true;
    snap_trace("freeze-sent");
    int recovery_ms = window_left_ms(q) - q->freeze_timeout_ms;
    rc = snap_agent_freeze(q->ag, NULL, 0, q->freeze_timeout_ms,
                           recovery_ms > 0 ? recovery_ms : 1, &res, err);
    snap_trace("freeze-replied");
    /* The watchdog stays armed: snap_quiesce_free has it thaw, and reaps it. */
    if (rc == SNAP_ERROR_GUEST_FROZEN)
        return snap_err_context(err, "freeze");
    if (rc) {
        /* The agent's recovery read the status "thawed" (thawing first when
         * it was frozen): the guest runs unfrozen. */
        q->maybe_frozen = false;
        release_watchdog(q);
        if (q->lease_ran_out)
            return lease_ran_out_error(q, SNAP_WATCHDOG_VERDICT_THAWED, err);
        if (q->policy != SNAP_QUIESCE_BEST_EFFORT)
            return snap_err_context(err, "freeze");
        q->fallback_reason = snap_xasprintf("freeze failed: %s", err->msg);
        snap_log(ctx->lg, XTL_WARN,
                 "domain %s: %s; the guest is thawed: taking a crash-consistent snapshot "
                 "(--quiesce=best-effort)",
                 q->domain, q->fallback_reason);
        snap_err_clear(err);
        return 0;
    }
    q->frozen_count = res.frozen;
    snap_log(ctx->lg, XTL_DETAIL, "froze %d filesystems in %llu ms", res.frozen,
             (unsigned long long)(snap_now_ms() - q->freeze_sent_ms));
    if (q->budget_ms > 0 && snap_quiesce_elapsed_ms(q) >= q->budget_ms)
        return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                            "freeze took %lld ms, over the freeze budget of %d ms",
                            (long long)snap_quiesce_elapsed_ms(q), q->budget_ms);
    return 0;
}

int64_t snap_quiesce_elapsed_ms(const snap_quiesce *q)
{
    return q->freeze_sent_ms ? (int64_t)(snap_now_ms() - q->freeze_sent_ms) : 0;
}

bool snap_quiesce_fell_back(const snap_quiesce *q)
{
    return q && q->fallback_reason;
}

/* QEMU's run state, when it is not running (the guest cannot answer then). */
static bool stopped_by_qemu(snap_qmp *qmp, int timeout_ms, snap_qmp_status *st)
{
    snap_err ignored;
    return qmp && snap_qmp_query_status(qmp, st, timeout_ms, &ignored) == 0 &&
           !st->running;
}

/* The thaw, within the lease (see the top of the file). */
static int thaw_within_lease(snap_quiesce *q, snap_qmp *qmp, snap_err *err)
{
    int count;
    int rc = snap_agent_fsfreeze_thaw(q->ag, min_ms(THAW_PROMPT_MS, window_left_ms(q)),
                                      &count, err);
    if (!rc)
        return 0;
    snap_qmp_status st;
    if (stopped_by_qemu(qmp, min_ms(1000, window_left_ms(q)), &st)) {
        /* Nobody can thaw a stopped guest: xlsnap reports it, not the watchdog. */
        q->guest_stopped = true;
        release_watchdog(q);
        return snap_err_set(err, SNAP_ERROR_GUEST_FROZEN,
                            "QEMU stopped the guest (run state %s) before it answered "
                            "the thaw: the thaw completes when the guest runs again",
                            st.status);
    }
    snap_agent_freeze_result ar;
    int left = window_left_ms(q);
    return snap_agent_thaw(q->ag, left / 2 + 1, left / 2 + 1, &ar, err);
}

/*
 * The thaw, unless the watchdog already did it (the lease ran out: then the
 * call fails, whatever the thaw would have said). Releases the watchdog
 * after a successful thaw.
 */
static int thaw_or_learn_lease_ran_out(snap_quiesce *q, snap_qmp *qmp, snap_err *err)
{
    if (snap_watchdog_expired(&q->wd))
        return lease_ran_out_error(q, finish_watchdog(q, false), err);
    snap_trace("thaw-sent");
    int rc = thaw_within_lease(q, qmp, err);
    snap_trace("thaw-replied");
    if (!rc) {
        release_watchdog(q);
        return q->lease_ran_out
                   ? lease_ran_out_error(q, SNAP_WATCHDOG_VERDICT_THAWED, err)
                   : 0;
    }
    /* Our thaw may have failed because the watchdog cut the agent connection. */
    if (q->wd.pid > 0 && snap_watchdog_expired(&q->wd))
        return lease_ran_out_error(q, finish_watchdog(q, false), err);
    return rc;
}

int snap_quiesce_thaw(snap_quiesce *q, snap_qmp *qmp, snap_quiesce_result *res,
                      snap_err *err)
{
    memset(res, 0, sizeof *res);
    if (!q || !q->freeze_sent_ms)
        return 0;
    res->attempted = true;
    res->reason = q->fallback_reason;
    res->guest_stopped = q->guest_stopped;
    if (!q->maybe_frozen || q->guest_stopped)
        return 0;
    int rc = thaw_or_learn_lease_ran_out(q, qmp, err);
    res->window_ms = snap_quiesce_elapsed_ms(q);
    res->frozen = q->frozen_count > 0;
    res->frozen_count = q->frozen_count;
    res->thaw_ok = rc == 0;
    res->guest_stopped = q->guest_stopped;
    if (rc)
        return q->lease_ran_out ? rc : snap_err_context(err, "thaw");
    q->maybe_frozen = false;
    return 0;
}

bool snap_quiesce_thaw_pending(const snap_quiesce *q)
{
    return q && q->guest_stopped;
}

int snap_quiesce_thaw_after_resume(snap_quiesce *q, snap_err *err)
{
    if (!q || !q->guest_stopped)
        return 0;
    snap_agent_freeze_result ar;
    int rc = snap_agent_thaw(q->ag, THAW_TIMEOUT_MS, RECOVERY_MS, &ar, err);
    if (rc)
        return snap_err_context(err, "thawing after the resume");
    q->guest_stopped = false;
    q->maybe_frozen = false;
    return 0;
}

void snap_quiesce_free(snap_quiesce *q)
{
    if (!q)
        return;
    if (q->maybe_frozen && !q->guest_stopped) {
        snap_quiesce_result res;
        snap_err err;
        if (snap_quiesce_thaw(q, NULL, &res, &err))
            snap_log(q->ctx->lg, XTL_ERROR, "%s", err.msg);
    }
    snap_agent_close(q->ag);
    /* Still armed only if the thaw failed: it tries again, and is reaped. */
    if (q->wd.pid > 0 && finish_watchdog(q, false) == SNAP_WATCHDOG_VERDICT_THAWED)
        snap_log(q->ctx->lg, XTL_WARN, "domain %s: the freeze watchdog thawed the guest",
                 q->domain);
    free(q->watchdog_prog);
    free(q->agent_path);
    free(q->fallback_reason);
    free(q->domain);
    free(q);
}

int snap_quiesce_recover(snap_ctx *ctx, const char *agent_path, snap_err *err)
{
    (void)ctx;
    int rc = snap_quiesce_thaw_new_connection(agent_path, AGENT_OPEN_TIMEOUT_MS, err);
    return rc ? snap_err_context(err, "thawing the guest left frozen") : 0;
}

static struct {
    const char *event; /* a string literal */
    uint64_t ns;
} trace_events[16];
static size_t trace_n;

void snap_trace(const char *event)
{
    static int enabled = -1;
    if (enabled < 0)
        enabled = getenv("XLSNAP_TRACE") != NULL;
    if (!enabled || trace_n == sizeof trace_events / sizeof trace_events[0])
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    trace_events[trace_n].event = event;
    trace_events[trace_n++].ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void snap_trace_flush(void)
{
    const char *path = getenv("XLSNAP_TRACE");
    int fd = path && trace_n ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)
                             : -1;
    for (size_t i = 0; fd >= 0 && i < trace_n; i++)
        dprintf(fd, "%s %llu\n", trace_events[i].event,
                (unsigned long long)trace_events[i].ns);
    if (fd >= 0)
        close(fd);
    trace_n = 0;
}
