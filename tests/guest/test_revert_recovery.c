/*
 * snapshot-revert: dry run, recovery of a killed revert, revert overlays;
 * on a real guest run by xlsim:
 *  - -N prints the plan as JSON and changes nothing (world capture);
 *  - xlsnap SIGKILLed mid-revert (test hook XLSNAP_TEST_PAUSE_IN_REVERT,
 *    after the domain is stopped): the journal records the domain's earlier
 *    state, and the next xlsnap command rolls the revert back and starts the
 *    domain again as it was (running, on its disks as they were: the new
 *    overlay gone, xenstore unchanged, current unchanged); a revert after
 *    that completes;
 *  - the overlays external reverts create are recorded in the reverted-to
 *    snapshot (revert_overlays, shown by snapshot-info --json); deleting
 *    that snapshot removes the ones nothing uses any more (listed by -N),
 *    never the domain's active image.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "th.h"
#include "th_snaptest.h"

static th_xlsim_dom g;

static void test_dry_run(void)
{
    REQUIRE(SNAP_LAYERS(&g, "-e", "A", "e1", "B", "e2", "C"));
    th_snap_refresh_index(&g);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-revert", "--force", g.name, "e1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "\"operation\": \"revert\"", "\"snapshot\": \"e1\"",
                       "\"stop_domain\": true", "\"start\": \"boot afresh\"",
                       "\"end_state\": \"running\"", "\"current_before\": \"e2\"",
                       "data.e1.r1.qcow2");
    CHECK(r.out && !strstr(r.out, "reverted to"));
    th_cmd_free(&r);
    /* A plan that would be refused is refused in a dry run too. */
    th_xlsnap(&r, "-N", "snapshot-revert", g.name, "e1", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "--force");
    th_cmd_free(&r);
    CHECK_WORLD_KEPT(&g, before);
    CHECK_GUEST_READS(&g, "C");
}

/* Starts a revert that stops in the test hook; its pid once it is there. */
static pid_t revert_held(const char *log)
{
    const char *argv[] = {
        th_build_path("xlsnap"), "snapshot-revert", "--force", g.name, "e1", NULL};
    setenv("XLSNAP_TEST_PAUSE_IN_REVERT", "60000", 1);
    pid_t pid = th_spawn((char *const *)argv, log);
    unsetenv("XLSNAP_TEST_PAUSE_IN_REVERT");
    for (int waited = 0; pid > 0 && waited < 60000; waited += 100) {
        char *text = th_read_file(log);
        bool in = text && strstr(text, "test hook: domain stopped");
        free(text);
        if (in)
            return pid;
        usleep(100000);
    }
    char *text = th_read_file(log);
    th_fail_at(__FILE__, __LINE__, "xlsnap never reached the hook: %s", text ? text : "");
    free(text);
    if (pid > 0)
        th_kill(pid);
    return -1;
}

/*
 * A revert SIGKILLed in the test hook (the domain stopped, the journal
 * saying it was state), then rolled back by the next command (which says
 * recovery) and the domain started again with a new QEMU, as `xlsim list`
 * shows flags. False if the revert never reached the hook.
 */
static bool kill_revert_and_recover(const char *log_name, const char *state,
                                    const char *recovery, const char *flags)
{
    pid_t pid = revert_held(th_path(log_name));
    if (pid <= 0)
        return false;
    kill(pid, SIGKILL);
    int st = th_wait(pid, 10000);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK(!th_pid_alive(g.vm.pid));
    char *j = th_snap_journal_text(), want[64];
    snprintf(want, sizeof want, "\"domain_state\": \"%s\"", state);
    CHECK_CONTAINS_ALL(j, want, "\"phase\": \"domain-stopped\"");
    free(j);
    CHECK_RECOVERS(&g, recovery);
    th_snap_adopt_new_qemu(&g);
    CHECK(th_pid_alive(g.vm.pid));
    char *list = th_snap_xlsim_list();
    CHECK_CONTAINS(list, flags);
    free(list);
    return true;
}

static void test_killed_mid_revert(void)
{
    char *params_before = th_xlsim_backend(&g, "xvdb", "params");
    /* Dead mid-way, the domain stopped; the next command that takes the
     * domain's lock (a dry run will do) rolls back: the domain runs again. */
    REQUIRE(kill_revert_and_recover("revert-held.log", "running", "booting it afresh",
                                    "r-----"));
    char *params = th_xlsim_backend(&g, "xvdb", "params");
    CHECK_STR(params, params_before);
    free(params);
    free(params_before);
    CHECK(access(th_snap_disk_file(&g, "data.e1.r1.qcow2"), F_OK) != 0);
    CHECK_SNAP_CURRENT(&g, "e2");
    REQUIRE(th_snap_wait_agent(&g));
    CHECK_GUEST_READS(&g, "C");
}

static void test_revert_after_recovery(void)
{
    SNAP_REVERT(&g, "--force", "e1");
    REQUIRE(th_snap_wait_agent(&g));
    CHECK_GUEST_READS(&g, "A");
}

static void test_revert_overlays_recorded(void)
{
    /* data.e1.r1 (the previous revert's) is left behind. */
    SNAP_REVERT(&g, "--force", "e1");
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", "--json", g.name, "e1", NULL);
    CHECK_CONTAINS_ALL(r.out, "\"revert_overlays\"", "data.e1.r1.qcow2",
                       "data.e1.r2.qcow2");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", g.name, "e1", NULL);
    CHECK_CONTAINS_ALL(r.out, "\nOld overlays:   ", "data.e1.r1.qcow2\n                ",
                       "data.e1.r2.qcow2");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", g.name, "e2", NULL); /* no reverts to e2 */
    CHECK(r.out && !strstr(r.out, "Old overlays:"));
    th_cmd_free(&r);
    REQUIRE(th_snap_wait_agent(&g));
    SNAP_CREATE(&g, "-e", "f1");
    /* f1's first revert overlay is stale after the second revert to f1, and
     * so is the second after the revert to e1: the domain is on data.e1.r3. */
    SNAP_REVERT(&g, "--force", "f1");
    SNAP_REVERT(&g, "--force", "f1");
    SNAP_REVERT(&g, "--force", "e1");
    char *f1_overlays = th_snap_disk_files(&g, "data.*f1.r*.qcow2");
    CHECK(strchr(f1_overlays, '\n') &&
          strchr(f1_overlays, '\n') != strrchr(f1_overlays, '\n'));
    th_xlsnap(&r, "-N", "snapshot-delete", g.name, "f1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "\"remove_revert_overlays\"", "f1.r1.qcow2", "f1.r2.qcow2");
    th_cmd_free(&r);
    XLSNAP_OK(&r, "snapshot-delete", g.name, "f1");
    CHECK_CONTAINS(r.err, "left by an earlier revert to 'f1'");
    th_cmd_free(&r);
    char *left = th_snap_disk_files(&g, "data.*f1*.qcow2");
    CHECK_STR(left, "");
    free(left);
    free(f1_overlays);
    /* e1's own: r1 and r2 are stale, r3 is the domain's active image. */
    th_xlsnap(&r, "-N", "snapshot-delete", g.name, "e1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "data.e1.r1.qcow2", "data.e1.r2.qcow2");
    const char *rm = r.out ? strstr(r.out, "\"remove_revert_overlays\"") : NULL;
    CHECK(rm && !strstr(rm, "data.e1.r3.qcow2"));
    th_cmd_free(&r);
    char *out = NULL;
    CHECK_INT(th_runl(&out, NULL, "qemu-img", "check", "-U",
                      th_snap_disk_file(&g, "data.e1.r2.qcow2"), (char *)NULL),
              0);
    free(out);
    REQUIRE(th_snap_wait_agent(&g));
    CHECK_GUEST_READS(&g, "A");
}

/* A paused domain whose revert died is started again paused. */
static void test_killed_mid_revert_paused(void)
{
    REQUIRE(th_xlsim_pause(&g, true));
    REQUIRE(kill_revert_and_recover(
        "revert-held-paused.log", "paused",
        "was paused before the interrupted revert: starting it paused", "--p---"));
    REQUIRE(th_xlsim_pause(&g, false));
    REQUIRE(th_snap_wait_agent(&g));
    CHECK_GUEST_READS(&g, "A");
}

int main(void)
{
    th_plan(6);
    th_snap_run_boot(&g, "rv2", 0);
    TH_SNAP_RUN(test_dry_run);
    TH_SNAP_RUN(test_killed_mid_revert);
    TH_SNAP_RUN(test_revert_after_recovery);
    TH_SNAP_RUN(test_revert_overlays_recorded);
    TH_SNAP_RUN(test_killed_mid_revert_paused);
    return th_snap_finish();
}
