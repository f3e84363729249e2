/*
 * The freeze timeline (issue 18, snap_timeline.h): every wait inside the
 * frozen window derives from the freeze timeout, the budget and the lease,
 * and none outlasts the budget or the watchdog's deadline.
 */
#include "snap_timeline.h"
#include "th.h"

/* What must hold for any input. */
static void check_invariants(const snap_freeze_timeline *tl)
{
    CHECK_INT(tl->watchdog_ms, tl->freeze_timeout_ms + tl->lease_ms);
    CHECK(tl->give_up_ms < tl->watchdog_ms);
    CHECK(tl->thaw_by_ms >= 1 && tl->thaw_by_ms <= tl->give_up_ms);
    CHECK(tl->freeze_wait_ms <= tl->thaw_by_ms);
    CHECK(tl->freeze_wait_ms <= tl->freeze_timeout_ms);
    CHECK(tl->worst_slow_ms <= tl->give_up_ms);
    CHECK(tl->worst_slow_ms >= tl->thaw_by_ms);
    if (tl->budget_ms)
        CHECK(tl->thaw_by_ms <= tl->budget_ms);
}

static void test_defaults(void)
{
    snap_freeze_timeline tl;
    snap_freeze_timeline_compute(&tl, 10000, 0, 10000);
    check_invariants(&tl);
    CHECK_INT(tl.watchdog_ms, 20000);
    CHECK_INT(tl.give_up_ms, 18000); /* 2 s margin */
    CHECK_INT(tl.thaw_by_ms, 12000); /* 6 s kept for the thaw and its recovery */
    CHECK_INT(tl.freeze_wait_ms, 10000);
    CHECK_INT(tl.thaw_wait_ms, 3000);
    CHECK_INT(tl.worst_slow_ms, 15000);
    CHECK_INT(tl.late_answer_ms, SNAP_LATE_ANSWER_MS);
    CHECK(!snap_freeze_timeline_budget_cut(&tl));
}

/* A budget bounds the freeze's wait and the transaction's (thaw_by). */
static void test_budget_bounds_every_wait(void)
{
    snap_freeze_timeline tl;
    snap_freeze_timeline_compute(&tl, 10000, 1500, 10000);
    check_invariants(&tl);
    CHECK_INT(tl.thaw_by_ms, 1500);
    CHECK_INT(tl.freeze_wait_ms, 1500);
    CHECK_INT(tl.worst_slow_ms, 4500);
    CHECK(!snap_freeze_timeline_budget_cut(&tl));
}

/* A budget the lease cannot honour is cut, and says so. */
static void test_budget_cut_by_lease(void)
{
    snap_freeze_timeline tl;
    snap_freeze_timeline_compute(&tl, 1000, 60000, 2000);
    check_invariants(&tl);
    CHECK_INT(tl.watchdog_ms, 3000);
    CHECK_INT(tl.give_up_ms, 2500); /* margin: a quarter of the lease */
    CHECK_INT(tl.thaw_by_ms, 1250);
    CHECK_INT(tl.freeze_wait_ms, 1000);
    CHECK(snap_freeze_timeline_budget_cut(&tl));
}

/* Tiny and huge inputs keep the invariants. */
static void test_extremes(void)
{
    static const int cases[][3] = {
        {1, 0, 1},
        {1, 1, 1},
        {1000, 1, 1000},
        {3600000, 3600000, 3600000},
        {10000, 11999, 10000},
        {10000, 12001, 10000},
        {2000, 0, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snap_freeze_timeline tl;
        snap_freeze_timeline_compute(&tl, cases[i][0], cases[i][1], cases[i][2]);
        check_invariants(&tl);
    }
}

int main(void)
{
    th_plan(4);
    TH_RUN(test_defaults);
    TH_RUN(test_budget_bounds_every_wait);
    TH_RUN(test_budget_cut_by_lease);
    TH_RUN(test_extremes);
    return th_finish();
}
