/*
 * Quiescing (snap_quiesce.c): the freeze window through the guest's agent,
 * its lease watchdog, and the thaw whatever happens. Not installed.
 */
#ifndef SNAP_QUIESCE_H
#define SNAP_QUIESCE_H

#include "snap_journal.h"
#include "snap_plan.h"
#include "snap_qmp.h"

/* The outcome of a freeze window, for the record. */
typedef struct snap_quiesce_result {
    bool attempted;
    bool frozen;
    int frozen_count;
    int64_t window_ms; /* freeze sent -> thaw answered */
    bool thaw_ok;
    /* QEMU stopped the guest (run state io-error) before it answered the thaw:
     * the thaw completes when it runs again. */
    bool guest_stopped;
    const char *reason; /* best-effort fell back to crash-consistent: why (q owns it) */
    /* each filesystem's outcome (q owns it); NULL: the agent listed none */
    const struct snap_fs_selection *filesystems;
} snap_quiesce_result;

typedef struct snap_quiesce snap_quiesce;
struct snap_agent; /* snap_agent.h */
/*
 * Opens the agent and asks, in one go, whether it can freeze and which
 * filesystems it sees; the answers are read just before the freeze
 * (snap_quiesce_freeze), or here when mountpoints were named (a wrong one is
 * refused before anything is journaled). With policy REQUIRED any problem
 * is an error; with BEST_EFFORT it is logged and *q is NULL, or the freeze
 * is skipped (crash-consistent).
 */
int snap_quiesce_prepare(snap_ctx *ctx, const snap_domain *dom, const snap_plan *plan,
                         snap_quiesce **q, snap_err *err);
/*
 * The same questions asked before the plan is made, when p will likely
 * freeze (NULL when not, or when the agent cannot be reached: prepare then
 * tries again and reports): the guest answers while the plan is made.
 * snap_quiesce_prepare_asked takes them over (asked may be NULL);
 * snap_quiesce_ask_discard drops them (NULL: nothing).
 */
struct snap_agent *snap_quiesce_ask_early(snap_ctx *ctx, const snap_domain *dom,
                                          const snap_create_params *p);
/* Whether p will likely freeze: the early questions are worth asking. */
bool snap_quiesce_asks_early(const snap_create_params *p);
/* The same before the domain is resolved: its identity (state: running
 * unless known otherwise) and the agent channel's socket. */
struct snap_agent *snap_quiesce_ask_first(snap_ctx *ctx, const snap_domain_ref *ref,
                                          const char *agent_path,
                                          const snap_create_params *p);
int snap_quiesce_prepare_asked(snap_ctx *ctx, const snap_domain *dom,
                               const snap_plan *plan, struct snap_agent *asked,
                               snap_quiesce **q, snap_err *err);
void snap_quiesce_ask_discard(struct snap_agent *asked);
/*
 * Starts the lease watchdog (journaled), then freezes. On failure the guest is
 * thawed (or the error says it may not be) and the watchdog released. Under
 * BEST_EFFORT a freeze that fails or times out but leaves the guest known to
 * be thawed is no error: 0 is returned, snap_quiesce_fell_back() tells, and
 * the snapshot is crash-consistent (the thaw then reports the reason).
 */
int snap_quiesce_freeze(snap_ctx *ctx, snap_quiesce *q, snap_meta_store *st,
                        snap_journal *j, snap_err *err);
/* Milliseconds since the freeze was sent. */
int64_t snap_quiesce_elapsed_ms(const snap_quiesce *q);
/* Best-effort fell back to a crash-consistent snapshot after a failed freeze. */
bool snap_quiesce_fell_back(const snap_quiesce *q);
/*
 * How long the QMP transaction inside the window may take: until the
 * timeline's thaw_by (what is left of the budget, or of the lease once the
 * thaw's own time is set aside); SNAP_QMP_TIMEOUT_MS when nothing is frozen.
 */
int snap_quiesce_tx_timeout_ms(const snap_quiesce *q);
/* The guest is frozen by q and not yet thawed (a timeout now is the window's). */
bool snap_quiesce_in_window(const snap_quiesce *q);
/* The timeline q obeys (the plan's). */
const snap_freeze_timeline *snap_quiesce_timeline(const snap_quiesce *q);
/*
 * QEMU answered the transaction only after the thaw (answered_ms after the
 * freeze was sent): res (filled by snap_quiesce_thaw) becomes crash-consistent
 * with the reason, which q owns.
 */
void snap_quiesce_late_snapshot(snap_quiesce *q, int64_t answered_ms,
                                snap_quiesce_result *res);
/*
 * Thaws, releases the watchdog, fills res. Safe to call when not frozen. With
 * qmp (may be NULL), a thaw that gets no prompt answer is checked against
 * QEMU's run state: a guest QEMU stopped on an I/O error cannot answer, so
 * the thaw is not waited for (res->guest_stopped, SNAP_ERROR_GUEST_FROZEN)
 * and the watchdog is released: xlsnap, not the watchdog, reports that.
 */
int snap_quiesce_thaw(snap_quiesce *q, snap_qmp *qmp, snap_quiesce_result *res,
                      snap_err *err);
/*
 * After QEMU stopped the guest inside the window and the domain was resumed:
 * waits for the thaw to complete (status, thaw again if still frozen).
 */
int snap_quiesce_thaw_after_resume(snap_quiesce *q, snap_err *err);
/* The thaw was sent but not answered because QEMU stopped the guest. */
bool snap_quiesce_thaw_pending(const snap_quiesce *q);
/* Closes the agent (thawing first if still frozen and not stopped). NULL ok. */
void snap_quiesce_free(snap_quiesce *q);
/*
 * Thaws a guest a dead xlsnap left frozen (journal recovery): connects to the
 * agent and thaws when its status is not "thawed".
 */
int snap_quiesce_recover(snap_ctx *ctx, const char *agent_path, snap_err *err);
/* The freeze watchdog's thaw: a connection of its own (retried for open_timeout_ms). */
int snap_quiesce_thaw_new_connection(const char *agent_path, int open_timeout_ms,
                                     snap_err *err);

#endif
