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
#include "snap_fsfreeze.h"
#include "snap_quiesce.h"
#include "snap_trace.h"
#include "snap_watchdog.h"

#define AGENT_OPEN_TIMEOUT_MS 5000
#define AGENT_CMD_TIMEOUT_MS  5000
/* Outside any lease (the watchdog's thaw, journal recovery, after a resume). */
#define THAW_TIMEOUT_MS 10000
#define RECOVERY_MS     15000

/*
 * Every wait inside the frozen window comes from the plan's freeze timeline
 * (snap_timeline.h: the instants, the budget and the worst cases), so that
 * none can outlast the budget or the lease (a thaw waiting 10 s + 15 s
 * recovery inside a 20 s lease got xlsnap killed by its own watchdog,
 * without a word; a transaction waiting a fixed 10 s kept the guest frozen
 * far past a 1 s budget).
 *
 * The window is a state machine; set_state() checks each transition, as
 * libxl's qmp_ev_set_state does (a wrong one is a bug: abort):
 *
 *   READY -> FREEZING -> FROZEN -> THAWING -> THAWED
 *               |          |         |  \-> STOPPED -> THAWED
 *               |          |         |         \-> MAYBE_FROZEN
 *               |          |         \-> MAYBE_FROZEN -> THAWING
 *               |          \-> LEASE_OUT (the watchdog thawed)
 *               \-> FELL_BACK (best-effort: freeze failed, guest thawed)
 *               \-> THAWED (freeze failed, guest thawed) | MAYBE_FROZEN
 *   READY -> THAWED | FELL_BACK (the agent's answers, read just before the
 *            freeze, say it cannot: nothing was frozen, watchdog released)
 *   FREEZING, FROZEN, THAWING, MAYBE_FROZEN -> LEASE_OUT (the watchdog thawed)
 *                                            or MAYBE_FROZEN (it could not)
 */
typedef enum quiesce_state {
    Q_READY,        /* agent asked (answers maybe unread), watchdog found; no freeze */
    Q_FREEZING,     /* watchdog armed, freeze sent, no answer yet */
    Q_FROZEN,       /* the agent froze frozen_count filesystems */
    Q_THAWING,      /* thaw sent, not answered yet */
    Q_THAWED,       /* the guest is known thawed; watchdog released */
    Q_FELL_BACK,    /* best-effort: the freeze failed, the guest is known thawed */
    Q_STOPPED,      /* QEMU stopped the guest before the thaw answered: pending */
    Q_LEASE_OUT,    /* the lease ran out and the watchdog thawed the guest */
    Q_MAYBE_FROZEN, /* nobody confirmed the thaw; the watchdog (if armed) retries */
} quiesce_state;

static const char *const state_names[] = {
    "ready",     "freezing", "frozen",    "thawing",      "thawed",
    "fell-back", "stopped",  "lease-out", "maybe-frozen",
};

struct snap_quiesce {
    snap_ctx *ctx;
    char *agent_path;
    snap_agent *ag;
    snap_quiesce_policy policy;
    snap_freeze_timeline tl;
    char *watchdog_prog;
    snap_lease_expiry lease_expiry;
    snap_watchdog wd;
    quiesce_state state;
    uint64_t lease_start;    /* snap_now_ms clock: the timeline's instant 0 */
    uint64_t freeze_sent_ms; /* 0: never sent */
    int frozen_count;
    char *fallback_reason; /* why the snapshot is crash-consistent */
    char *domain;
    snap_fs_selection *fs; /* the filesystems asked for; NULL: all (snap_fsfreeze.h) */
    bool asked;            /* the agent's answers are not read yet (ask_agent) */
    const snap_plan *plan; /* the mountpoints named (outlives q) */
};

static bool state_in(quiesce_state s, unsigned set)
{
    return (set >> s) & 1u;
}
#define S(x) (1u << (x))

static void set_state(snap_quiesce *q, quiesce_state to)
{
    unsigned from;
    switch (to) {
    case Q_FREEZING: from = S(Q_READY); break;
    case Q_FROZEN: from = S(Q_FREEZING); break;
    case Q_FELL_BACK: from = S(Q_FREEZING) | S(Q_READY); break;
    case Q_THAWING: from = S(Q_FROZEN) | S(Q_MAYBE_FROZEN); break;
    case Q_THAWED: from = S(Q_READY) | S(Q_FREEZING) | S(Q_THAWING) | S(Q_STOPPED); break;
    case Q_STOPPED: from = S(Q_THAWING); break;
    case Q_LEASE_OUT:
        from = S(Q_FREEZING) | S(Q_FROZEN) | S(Q_THAWING) | S(Q_MAYBE_FROZEN);
        break;
    case Q_MAYBE_FROZEN:
        from =
            S(Q_FREEZING) | S(Q_FROZEN) | S(Q_THAWING) | S(Q_STOPPED) | S(Q_MAYBE_FROZEN);
        break;
    default: from = 0; break;
    }
    if (!state_in(q->state, from)) {
        fprintf(stderr, "libsnap: quiesce: bad transition %s -> %s\n",
                state_names[q->state], state_names[to]);
        abort();
    }
    q->state = to;
}

/* The guest may be frozen and this object still owes it a thaw. */
static bool owes_thaw(const snap_quiesce *q)
{
    return state_in(q->state, S(Q_FROZEN) | S(Q_MAYBE_FROZEN));
}

static int min_ms(int a, int b)
{
    return a < b ? a : b;
}

/* Milliseconds until start + instant (at least 1). */
static int until_from(uint64_t start, int instant)
{
    int64_t left = (int64_t)(start + (uint64_t)instant) - (int64_t)snap_now_ms();
    return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Milliseconds until the timeline's instant, counted from the lease's start. */
static int until_ms(const snap_quiesce *q, int instant)
{
    return until_from(q->lease_start, instant);
}

/*
 * Milliseconds until freeze_wait or thaw_by: counted from the freeze itself
 * (the budget is the guest's, whatever arming the watchdog took), yet never
 * so late that the thaw loses its wait before give_up.
 */
static int until_after_freeze(const snap_quiesce *q, int instant)
{
    return min_ms(until_from(q->freeze_sent_ms, instant),
                  until_ms(q, q->tl.give_up_ms - q->tl.thaw_wait_ms));
}

/* Milliseconds xlsnap may still wait inside the window (at least 1). */
static int window_left_ms(const snap_quiesce *q)
{
    return until_ms(q, q->tl.give_up_ms);
}

int snap_quiesce_tx_timeout_ms(const snap_quiesce *q)
{
    if (!q || q->state != Q_FROZEN)
        return SNAP_QMP_TIMEOUT_MS;
    return until_after_freeze(q, q->tl.thaw_by_ms);
}

bool snap_quiesce_in_window(const snap_quiesce *q)
{
    return q && q->state == Q_FROZEN;
}

const snap_freeze_timeline *snap_quiesce_timeline(const snap_quiesce *q)
{
    return &q->tl;
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

/*
 * Connects and asks, in one write, for the sync, guest-info (can it freeze
 * and thaw?) and guest-get-fsinfo (its filesystems). Each answer takes the
 * guest's time (tens of ms under emulation, guest-get-fsinfo the most):
 * the guest works on them while xlsnap journals, connects to QMP and arms
 * the watchdog, and read_agent_answers reads them.
 */
static int ask_agent(snap_ctx *ctx, const char *domain, const char *agent_path,
                     snap_agent **out, snap_err *err)
{
    snap_agent *ag = NULL;
    snap_trace("agent-open");
    int rc = snap_agent_open_begin(agent_path, AGENT_OPEN_TIMEOUT_MS, ctx->lg, &ag, err);
    if (!rc)
        rc = snap_agent_request(ag, "guest-info", NULL, NULL, AGENT_CMD_TIMEOUT_MS, err);
    if (!rc)
        rc = snap_agent_request(ag, "guest-get-fsinfo", NULL, NULL, AGENT_CMD_TIMEOUT_MS,
                                err);
    snap_trace("agent-asked");
    if (rc) {
        snap_agent_close(ag);
        return snap_err_context(err, "domain %s: guest agent at %s", domain, agent_path);
    }
    *out = ag;
    return 0;
}

/* guest-info's answer (after the sync's): the agent can freeze and thaw. */
static int agent_capable(snap_agent *ag, int timeout_ms, snap_err *err)
{
    yajl_val ret = NULL;
    snap_agent_info info = {0};
    int rc = snap_agent_reply(ag, "guest-info", &ret, timeout_ms, err);
    if (!rc)
        rc = snap_agent_info_parse(ret, &info, err);
    yajl_tree_free(ret);
    if (!rc && (!snap_agent_info_can(&info, "guest-fsfreeze-freeze") ||
                !snap_agent_info_can(&info, "guest-fsfreeze-thaw")))
        rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                          "the guest agent does not offer guest-fsfreeze-freeze/thaw");
    snap_agent_info_dispose(&info);
    return rc;
}

/*
 * The answers ask_agent asked for: the agent can freeze, and the
 * filesystems to freeze chosen (q->fs). *agent_failed: the agent is the
 * problem (the policy decides), not a mountpoint named wrong.
 */
static int read_agent_answers(snap_quiesce *q, int timeout_ms, bool *agent_failed,
                              snap_err *err)
{
    snap_agent_fs *fs = NULL;
    size_t n = 0;
    yajl_val list = NULL;
    *agent_failed = true;
    q->asked = false;
    snap_trace("agent-wait");
    int rc = agent_capable(q->ag, timeout_ms, err);
    if (rc)
        return snap_err_context(err, "guest agent at %s", q->agent_path);
    rc = snap_agent_reply(q->ag, "guest-get-fsinfo", &list, timeout_ms, err);
    if (!rc)
        rc = snap_agent_fsinfo_parse(list, &fs, &n, err);
    yajl_tree_free(list);
    rc = snap_fs_choose_listed(rc, fs, n, q->plan, &q->fs, agent_failed, err);
    snap_trace("agent-ready"); /* synced, guest-info and guest-get-fsinfo read */
    return rc;
}

static snap_quiesce *quiesce_new(snap_ctx *ctx, const snap_domain *dom,
                                 const snap_plan *plan, char *prog, snap_agent *ag)
{
    snap_quiesce *q = snap_xcalloc(1, sizeof *q);
    q->ctx = ctx;
    q->agent_path = snap_xstrdup(dom->agent_path);
    q->ag = ag;
    q->asked = true;
    q->plan = plan;
    q->policy = plan->quiesce;
    q->tl = plan->timeline;
    q->watchdog_prog = prog;
    q->lease_expiry = plan->lease_expiry;
    q->wd = (snap_watchdog){.pid = -1, .fd = -1};
    q->state = Q_READY;
    q->domain = snap_xstrdup(dom->ref.name);
    return q;
}

struct snap_agent *snap_quiesce_ask_early(snap_ctx *ctx, const snap_domain *dom,
                                          const snap_create_params *p)
{
    return snap_quiesce_ask_first(ctx, &dom->ref, dom->agent_path, p);
}

bool snap_quiesce_asks_early(const snap_create_params *p)
{
    return p->quiesce != SNAP_QUIESCE_OFF && !p->memory && !p->dry_run;
}

struct snap_agent *snap_quiesce_ask_first(snap_ctx *ctx, const snap_domain_ref *ref,
                                          const char *agent_path,
                                          const snap_create_params *p)
{
    snap_agent *ag = NULL;
    snap_err ignored;
    if (!snap_quiesce_asks_early(p) || !agent_path || ref->state != SNAP_DOMAIN_RUNNING)
        return NULL;
    return ask_agent(ctx, ref->name, agent_path, &ag, &ignored) ? NULL : ag;
}

void snap_quiesce_ask_discard(struct snap_agent *asked)
{
    snap_agent_close(asked);
}

int snap_quiesce_prepare(snap_ctx *ctx, const snap_domain *dom, const snap_plan *plan,
                         snap_quiesce **out, snap_err *err)
{
    return snap_quiesce_prepare_asked(ctx, dom, plan, NULL, out, err);
}

int snap_quiesce_prepare_asked(snap_ctx *ctx, const snap_domain *dom,
                               const snap_plan *plan, struct snap_agent *asked,
                               snap_quiesce **out, snap_err *err)
{
    *out = NULL;
    /* No agent channel (the plan refused that for REQUIRED), or no running guest. */
    if (plan->quiesce == SNAP_QUIESCE_OFF || !dom->agent_path ||
        dom->ref.state != SNAP_DOMAIN_RUNNING) {
        snap_agent_close(asked);
        return 0;
    }
    char *prog = NULL;
    int rc = snap_watchdog_find(&prog, err);
    if (rc) {
        snap_agent_close(asked);
        return cannot_quiesce(
            ctx, plan,
            snap_err_context(err, "domain %s: cannot freeze safely", dom->ref.name), err);
    }
    snap_agent *ag = asked;
    rc = ag ? 0 : ask_agent(ctx, dom->ref.name, dom->agent_path, &ag, err);
    if (rc) {
        free(prog);
        return cannot_quiesce(ctx, plan, rc, err);
    }
    snap_quiesce *q = quiesce_new(ctx, dom, plan, prog, ag);
    bool agent_failed = true;
    /* Mountpoints named: checked against the guest's list before anything is
     * journaled (a wrong one is refused whatever the policy). Otherwise the
     * answers are read just before the freeze (answers_before_freeze). */
    if (plan->n_freeze_mounts || plan->n_no_freeze)
        rc = read_agent_answers(q, AGENT_OPEN_TIMEOUT_MS, &agent_failed, err);
    if (rc) {
        snap_quiesce_free(q);
        snap_err_context(err, "domain %s", dom->ref.name);
        return agent_failed ? cannot_quiesce(ctx, plan, rc, err) : rc;
    }
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
    return q->tl.freeze_timeout_ms + AGENT_OPEN_TIMEOUT_MS;
}

static int start_watchdog(snap_quiesce *q, snap_meta_store *st, snap_journal *j,
                          snap_err *err)
{
    q->lease_start = snap_now_ms();
    snap_watchdog_args a = {
        .prog = q->watchdog_prog,
        .agent_path = q->agent_path,
        .domain = q->domain,
        .deadline = q->lease_start + (uint64_t)q->tl.watchdog_ms,
        .lease_total_ms = q->tl.watchdog_ms,
        .open_timeout_ms = watchdog_open_timeout_ms(q),
        .expiry = q->lease_expiry,
    };
    int64_t deadline_rt = snap_realtime_ms() + q->tl.watchdog_ms;
    int rc = snap_watchdog_start(&q->wd, &a, snap_agent_fd(q->ag), err);
    if (rc)
        return rc;
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
 * thaw it (and awaited). *expired: the lease ran out meanwhile.
 */
static snap_watchdog_verdict finish_watchdog(snap_quiesce *q, bool release, bool *expired)
{
    bool ran_out = false;
    snap_watchdog_verdict v =
        snap_watchdog_finish(&q->wd, release, watchdog_thaw_bound_ms(q), &ran_out);
    if (expired)
        *expired = ran_out;
    return v;
}

/* Releases the watchdog (the guest is thawed); true when the lease ran out first. */
static bool release_watchdog(snap_quiesce *q)
{
    bool expired;
    finish_watchdog(q, true, &expired);
    return expired;
}

/* The lease ran out and the watchdog thawed (or tried to): the call fails. */
static int lease_ran_out_error(snap_quiesce *q, snap_watchdog_verdict v, snap_err *err)
{
    set_state(q, v == SNAP_WATCHDOG_VERDICT_THAWED ? Q_LEASE_OUT : Q_MAYBE_FROZEN);
    if (v == SNAP_WATCHDOG_VERDICT_THAWED)
        return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                            "the freeze lease of %d ms ran out: the watchdog thawed the "
                            "guest; the snapshot is rolled back",
                            q->tl.watchdog_ms);
    return snap_err_set(err, SNAP_ERROR_GUEST_FROZEN,
                        "the freeze lease of %d ms ran out and the watchdog could not "
                        "thaw the guest: its filesystems may still be frozen",
                        q->tl.watchdog_ms);
}

/* A freeze that failed with the guest known thawed: an error, or best-effort's fallback.
 */
static int freeze_failed_thawed(snap_ctx *ctx, snap_quiesce *q, snap_err *err)
{
    if (release_watchdog(q))
        return lease_ran_out_error(q, SNAP_WATCHDOG_VERDICT_THAWED, err);
    /* The budget, not --freeze-timeout, cut the wait: say which. */
    if (err->code == SNAP_ERROR_TIMEDOUT &&
        q->tl.freeze_wait_ms < q->tl.freeze_timeout_ms)
        snap_err_context(err, "no answer within the freeze budget of %d ms",
                         q->tl.thaw_by_ms);
    if (q->policy != SNAP_QUIESCE_BEST_EFFORT) {
        set_state(q, Q_THAWED);
        return snap_err_context(err, "freeze");
    }
    set_state(q, Q_FELL_BACK);
    q->fallback_reason = snap_xasprintf("freeze failed: %s", err->msg);
    if (q->fs)
        snap_fs_selection_outcome(q->fs, -1, err->msg);
    snap_log(ctx->lg, XTL_WARN,
             "domain %s: %s; the guest is thawed: taking a crash-consistent snapshot "
             "(--quiesce=best-effort)",
             q->domain, q->fallback_reason);
    snap_err_clear(err);
    return 0;
}

/*
 * The agent's answers ask_agent asked for, read once the watchdog is armed
 * and the freeze journaled: the guest worked on them meanwhile. A problem
 * is what it was before (snap_quiesce_prepare): an error under REQUIRED (the
 * journal undoes what was begun), a crash-consistent snapshot under
 * best-effort. Nothing was frozen: the watchdog is released. The wait comes
 * out of the lease (at most half of it), not out of the freeze's budget.
 */
static int answers_before_freeze(snap_ctx *ctx, snap_quiesce *q, snap_err *err)
{
    bool agent_failed;
    int wait = min_ms(AGENT_OPEN_TIMEOUT_MS, until_ms(q, q->tl.give_up_ms / 2));
    int rc = read_agent_answers(q, wait, &agent_failed, err);
    if (!rc)
        return 0;
    release_watchdog(q);
    if (!agent_failed || q->policy == SNAP_QUIESCE_REQUIRED) {
        set_state(q, Q_THAWED);
        return rc;
    }
    set_state(q, Q_FELL_BACK);
    snap_log(ctx->lg, XTL_WARN, "domain %s: %s; taking a crash-consistent snapshot",
             q->domain, err->msg);
    snap_err_clear(err);
    return 0;
}

int snap_quiesce_freeze(snap_ctx *ctx, snap_quiesce *q, snap_meta_store *st,
                        snap_journal *j, snap_err *err)
{
    snap_agent_freeze_result res;
    int rc = start_watchdog(q, st, j, err);
    if (!rc && q->asked)
        rc = answers_before_freeze(ctx, q, err);
    if (rc || q->state != Q_READY)
        return rc;
    q->freeze_sent_ms = snap_now_ms();
    set_state(q, Q_FREEZING);
    snap_trace("freeze-sent");
    int wait = until_after_freeze(q, q->tl.freeze_wait_ms);
    int recovery_ms = window_left_ms(q) - wait;
    rc = snap_agent_freeze(q->ag, q->fs ? q->fs->freeze_list : NULL,
                           q->fs ? q->fs->n_freeze : 0, wait,
                           recovery_ms > 0 ? recovery_ms : 1, &res, err);
    snap_trace("freeze-replied");
    /* The watchdog stays armed: snap_quiesce_free has it thaw, and reaps it. */
    if (rc == SNAP_ERROR_GUEST_FROZEN) {
        set_state(q, Q_MAYBE_FROZEN);
        return snap_err_context(err, "freeze");
    }
    if (rc) /* the agent's recovery read the status "thawed" (thawing first if frozen) */
        return freeze_failed_thawed(ctx, q, err);
    set_state(q, Q_FROZEN);
    q->frozen_count = res.frozen;
    snap_log(ctx->lg, XTL_DETAIL, "froze %d filesystems in %llu ms", res.frozen,
             (unsigned long long)(snap_now_ms() - q->freeze_sent_ms));
    /* qemu-ga skips silently what it cannot freeze: its count tells. */
    rc = q->fs
             ? snap_fs_check_count(q->fs, res.frozen, q->policy == SNAP_QUIESCE_REQUIRED,
                                   ctx->lg, q->domain, err)
             : 0;
    if (rc)
        return rc;
    if (q->tl.budget_ms > 0 && until_after_freeze(q, q->tl.thaw_by_ms) <= 1)
        return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                            "freeze took %lld ms, over the freeze budget of %d ms",
                            (long long)snap_quiesce_elapsed_ms(q), q->tl.thaw_by_ms);
    return 0;
}

int64_t snap_quiesce_elapsed_ms(const snap_quiesce *q)
{
    return q->freeze_sent_ms ? (int64_t)(snap_now_ms() - q->freeze_sent_ms) : 0;
}

bool snap_quiesce_fell_back(const snap_quiesce *q)
{
    return q && q->state == Q_FELL_BACK;
}

/* QEMU's run state, when it is not running (the guest cannot answer then). */
static bool stopped_by_qemu(snap_qmp *qmp, int timeout_ms, snap_qmp_status *st)
{
    snap_err ignored;
    return qmp && snap_qmp_query_status(qmp, st, timeout_ms, &ignored) == 0 &&
           !st->running;
}

/* The thaw, within the window (see the top of the file). */
static int thaw_within_lease(snap_quiesce *q, snap_qmp *qmp, snap_err *err)
{
    int count;
    set_state(q, Q_THAWING);
    int rc = snap_agent_fsfreeze_thaw(
        q->ag, min_ms(q->tl.thaw_wait_ms, window_left_ms(q)), &count, err);
    if (!rc)
        return 0;
    snap_qmp_status st;
    if (stopped_by_qemu(qmp, min_ms(1000, window_left_ms(q)), &st)) {
        /* Nobody can thaw a stopped guest: xlsnap reports it, not the watchdog. */
        set_state(q, Q_STOPPED);
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
        return lease_ran_out_error(q, finish_watchdog(q, false, NULL), err);
    snap_trace("thaw-sent");
    int rc = thaw_within_lease(q, qmp, err);
    snap_trace("thaw-replied");
    if (!rc) {
        if (release_watchdog(q))
            return lease_ran_out_error(q, SNAP_WATCHDOG_VERDICT_THAWED, err);
        set_state(q, Q_THAWED);
        return 0;
    }
    if (q->state == Q_STOPPED)
        return snap_err_context(err, "thaw");
    /* Our thaw may have failed because the watchdog cut the agent connection. */
    if (q->wd.pid > 0 && snap_watchdog_expired(&q->wd))
        return lease_ran_out_error(q, finish_watchdog(q, false, NULL), err);
    set_state(q, Q_MAYBE_FROZEN);
    return snap_err_context(err, "thaw");
}

int snap_quiesce_thaw(snap_quiesce *q, snap_qmp *qmp, snap_quiesce_result *res,
                      snap_err *err)
{
    memset(res, 0, sizeof *res);
    if (!q || !q->freeze_sent_ms)
        return 0;
    res->attempted = true;
    res->reason = q->fallback_reason;
    res->filesystems = q->fs;
    res->guest_stopped = q->state == Q_STOPPED;
    if (!owes_thaw(q))
        return 0;
    int rc = thaw_or_learn_lease_ran_out(q, qmp, err);
    res->window_ms = snap_quiesce_elapsed_ms(q);
    res->frozen = q->frozen_count > 0;
    res->frozen_count = q->frozen_count;
    res->thaw_ok = rc == 0;
    res->guest_stopped = q->state == Q_STOPPED;
    return rc;
}

void snap_quiesce_late_snapshot(snap_quiesce *q, int64_t answered_ms,
                                snap_quiesce_result *res)
{
    free(q->fallback_reason);
    q->fallback_reason = snap_xasprintf(
        "QEMU answered the transaction %lld ms after the freeze was sent, after the "
        "thaw at %lld ms (freeze budget %d ms): the snapshot may postdate the thaw",
        (long long)answered_ms, (long long)res->window_ms, q->tl.thaw_by_ms);
    res->reason = q->fallback_reason;
    res->frozen = false;
    if (q->fs)
        snap_fs_selection_void(q->fs, "thawed before QEMU took the snapshot");
}

bool snap_quiesce_thaw_pending(const snap_quiesce *q)
{
    return q && q->state == Q_STOPPED;
}

int snap_quiesce_thaw_after_resume(snap_quiesce *q, snap_err *err)
{
    if (!q || q->state != Q_STOPPED)
        return 0;
    snap_agent_freeze_result ar;
    int rc = snap_agent_thaw(q->ag, THAW_TIMEOUT_MS, RECOVERY_MS, &ar, err);
    if (rc)
        return snap_err_context(err, "thawing after the resume");
    set_state(q, Q_THAWED);
    return 0;
}

void snap_quiesce_free(snap_quiesce *q)
{
    if (!q)
        return;
    if (owes_thaw(q)) {
        snap_quiesce_result res;
        snap_err err;
        if (snap_quiesce_thaw(q, NULL, &res, &err))
            snap_log(q->ctx->lg, XTL_ERROR, "%s", err.msg);
    }
    snap_trace("quiesce-release");
    snap_agent_close(q->ag);
    /* Still armed only if the thaw failed: it tries again, and is reaped. */
    if (q->wd.pid > 0 && finish_watchdog(q, false, NULL) == SNAP_WATCHDOG_VERDICT_THAWED)
        snap_log(q->ctx->lg, XTL_WARN, "domain %s: the freeze watchdog thawed the guest",
                 q->domain);
    snap_trace("quiesce-released"); /* agent closed, watchdog released and reaped */
    free(q->watchdog_prog);
    free(q->agent_path);
    free(q->fallback_reason);
    free(q->domain);
    snap_fs_selection_dispose(q->fs);
    free(q->fs);
    free(q);
}

int snap_quiesce_recover(snap_ctx *ctx, const char *agent_path, snap_err *err)
{
    (void)ctx;
    int rc = snap_quiesce_thaw_new_connection(agent_path, AGENT_OPEN_TIMEOUT_MS, err);
    return rc ? snap_err_context(err, "thawing the guest left frozen") : 0;
}
