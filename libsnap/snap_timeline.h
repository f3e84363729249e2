/*
 * The freeze timeline: every wait of a quiesced snapshot-create, computed
 * once by the plan (snap_freeze_timeline_compute) and obeyed by
 * snap_quiesce.c and snap_create.c; shown by -N and kept in the record.
 * Not installed.
 *
 * All instants are milliseconds after the lease starts (the watchdog is
 * started; the freeze is sent once it is armed), but freeze_wait and
 * thaw_by, the budget's, count from the freeze itself (and end thaw_wait
 * before give_up at the latest):
 *
 *   0 ---- freeze_wait ---- thaw_by ---- give_up ---- watchdog
 *   |        |                 |            |            |
 *   freeze   the agent's       the thaw is  xlsnap's     the watchdog
 *   sent     reply awaited     sent, the    last wait    thaws whatever
 *            at most until     QMP trans-   inside the   xlsnap does
 *            here              action's     window ends
 *                              reply or not
 *
 *   watchdog     = freeze_timeout + lease (the lease the watchdog holds)
 *   give_up      = watchdog - margin, margin = min(lease / 4, 2 s): xlsnap
 *                  reports and releases the watchdog before it acts
 *   thaw_by      = min(budget, give_up - thaw reserve), reserve = min(6 s,
 *                  give_up / 2) for the thaw and its recovery (resync,
 *                  status, thaw again); no budget: give_up - reserve
 *   freeze_wait  = min(freeze_timeout, thaw_by)
 *   the transaction waits until thaw_by (what is left of the budget); the
 *   thaw's reply is awaited thaw_wait, then recovery runs until give_up.
 *   late_answer: a transaction QEMU had not answered by thaw_by is awaited
 *   this much longer AFTER the thaw (outside the window): answered, the
 *   snapshot is kept as crash-consistent (best-effort: it may postdate the
 *   thaw) or rolled back (required); not answered, rolled back.
 *
 * Worst cases: how long the guest's filesystems can stay frozen
 *  - everything answers, slowly (each peer just within its wait):
 *    worst_slow = min(thaw_by + thaw_wait, give_up);
 *  - QEMU hangs in the transaction: the same (the thaw does not wait for
 *    QEMU); only a QEMU whose main loop is stuck cannot pass the thaw to
 *    the guest: then the guest's vCPUs are stuck in QEMU too, and the thaw
 *    lands when QEMU runs again;
 *  - the agent hangs (freeze or thaw unanswered): xlsnap gives up at
 *    give_up and the watchdog retries at watchdog, but nobody can thaw a
 *    guest whose agent does not answer: until the agent answers again
 *    (the create fails: "may still be frozen");
 *  - xlsnap hangs: the watchdog thaws at watchdog;
 *  - xlsnap dies: the watchdog sees its control socket close and thaws at
 *    once (the time of death plus a reconnect and a thaw);
 *  - xlsnap and its watchdog both die: until the next xlsnap command on
 *    the domain recovers the journal and thaws.
 */
#ifndef SNAP_TIMELINE_H
#define SNAP_TIMELINE_H

#include <stdbool.h>

/* How long QEMU's late answer to a transaction is awaited after the thaw. */
#define SNAP_LATE_ANSWER_MS 10000

typedef struct snap_freeze_timeline {
    /* what was asked for */
    int freeze_timeout_ms;
    int budget_ms; /* 0: none */
    int lease_ms;
    /* instants after the lease started (see above) */
    int freeze_wait_ms;
    int thaw_by_ms;
    int thaw_wait_ms; /* a duration: the thaw's reply, before recovery */
    int give_up_ms;
    int watchdog_ms;
    int late_answer_ms; /* a duration, after the thaw */
    /* worst cases (see above) */
    int worst_slow_ms;
} snap_freeze_timeline;

/*
 * Fills tl from the user's freeze timeout, budget (0: none) and lease (all
 * > 0 but the budget). Never fails: a budget beyond what the lease allows
 * is cut to thaw_by (snap_freeze_timeline_budget_cut tells).
 */
void snap_freeze_timeline_compute(snap_freeze_timeline *tl, int freeze_timeout_ms,
                                  int budget_ms, int lease_ms);
/* The budget asked for is more than the lease lets xlsnap wait. */
bool snap_freeze_timeline_budget_cut(const snap_freeze_timeline *tl);

#endif
