/*
 * snapshot-revert loose ends (issue 6) on a real guest run by xlsim:
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

static void test_boot(void)
{
    th_snap_boot(&g, "rv2");
}

static void test_dry_run(void)
{
    if (!th_snap_guest_up(&g))
        return;
    REQUIRE(th_snap_write_disk(&g, "A"));
    SNAP_CREATE(&g, "-e", "e1");
    REQUIRE(th_snap_write_disk(&g, "B"));
    SNAP_CREATE(&g, "-e", "e2");
    REQUIRE(th_snap_write_disk(&g, "C"));
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", g.name, NULL); /* refreshes the .index cache */
    th_cmd_free(&r);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    th_xlsnap(&r, "-N", "snapshot-revert", "--force", g.name, "e1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "\"operation\": \"revert\"");
    CHECK_CONTAINS(r.out, "\"snapshot\": \"e1\"");
    CHECK_CONTAINS(r.out, "\"stop_domain\": true");
    CHECK_CONTAINS(r.out, "\"start\": \"boot afresh\"");
    CHECK_CONTAINS(r.out, "\"end_state\": \"running\"");
    CHECK_CONTAINS(r.out, "\"current_before\": \"e2\"");
    CHECK_CONTAINS(r.out, "data.e1.r1.qcow2");
    CHECK(r.out && !strstr(r.out, "reverted to"));
    th_cmd_free(&r);
    /* A plan that would be refused is refused in a dry run too. */
    th_xlsnap(&r, "-N", "snapshot-revert", g.name, "e1", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "--force");
    th_cmd_free(&r);
    char *after = th_world_capture(&g, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before);
    free(after);
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

static void test_killed_mid_revert(void)
{
    if (!th_snap_guest_up(&g))
        return;
    char *params_before = th_xlsim_backend(&g, "xvdb", "params");
    char log[4200];
    snprintf(log, sizeof log, "%s/revert-held.log", th_tmpdir());
    pid_t pid = revert_held(log);
    REQUIRE(pid > 0);
    kill(pid, SIGKILL);
    int st = th_wait(pid, 10000);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* Dead mid-way: the domain is stopped, the journal says how it was. */
    CHECK(!th_pid_alive(g.vm.pid));
    char *j = th_snap_journal_text();
    CHECK_CONTAINS(j, "\"domain_state\": \"running\"");
    CHECK_CONTAINS(j, "\"phase\": \"domain-stopped\"");
    free(j);
    /* The next command that takes the domain's lock (a dry run will do)
     * recovers: rolled back, the domain running again. */
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-create", g.name, "probe", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "booting it afresh");
    th_cmd_free(&r);
    j = th_snap_journal_text();
    CHECK_STR(j, "");
    free(j);
    th_snap_adopt_new_qemu(&g);
    CHECK(th_pid_alive(g.vm.pid));
    char *list = th_snap_xlsim_list();
    CHECK_CONTAINS(list, "r-----");
    free(list);
    char *params = th_xlsim_backend(&g, "xvdb", "params");
    CHECK_STR(params, params_before);
    free(params);
    free(params_before);
    char path[4300];
    snprintf(path, sizeof path, "%s/data.e1.r1.qcow2", g.disk_dir);
    CHECK(access(path, F_OK) != 0);
    th_xlsnap(&r, "snapshot-info", g.name, "e2", NULL);
    CHECK_CONTAINS(r.out, "Current:        yes");
    th_cmd_free(&r);
    REQUIRE(th_xlsim_wait_agent(&g, TH_SNAP_BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS(&g, "C");
}

static void test_revert_after_recovery(void)
{
    if (!th_snap_guest_up(&g))
        return;
    th_cmd r;
    th_xlsnap(&r, "snapshot-revert", "--force", g.name, "e1", NULL);
    CHECK_INT(r.rc, 0);
    if (r.rc)
        th_note("%s", th_cmd_describe(&r));
    th_cmd_free(&r);
    th_snap_adopt_new_qemu(&g);
    REQUIRE(th_xlsim_wait_agent(&g, TH_SNAP_BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS(&g, "A");
}

static void revert_to(const char *name)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-revert", "--force", g.name, name, NULL);
    CHECK_INT(r.rc, 0);
    if (r.rc)
        th_note("%s", th_cmd_describe(&r));
    th_cmd_free(&r);
    th_snap_adopt_new_qemu(&g);
}

static void test_revert_overlays_recorded(void)
{
    if (!th_snap_guest_up(&g))
        return;
    revert_to("e1"); /* data.e1.r1 (the previous revert's) is left behind */
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", "--json", g.name, "e1", NULL);
    CHECK_CONTAINS(r.out, "\"revert_overlays\"");
    CHECK_CONTAINS(r.out, "data.e1.r1.qcow2");
    CHECK_CONTAINS(r.out, "data.e1.r2.qcow2");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", g.name, "e1", NULL);
    CHECK_CONTAINS(r.out, "\nOld overlays:   ");
    CHECK_CONTAINS(r.out, "data.e1.r1.qcow2\n                ");
    CHECK_CONTAINS(r.out, "data.e1.r2.qcow2");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", g.name, "e2", NULL); /* no reverts to e2 */
    CHECK(r.out && !strstr(r.out, "Old overlays:"));
    th_cmd_free(&r);
    REQUIRE(th_xlsim_wait_agent(&g, TH_SNAP_BOOT_TIMEOUT_MS));
    SNAP_CREATE(&g, "-e", "f1");
    revert_to("f1");
    revert_to("f1"); /* f1's first revert overlay is stale now */
    revert_to("e1"); /* and so is the second: the domain is on data.e1.r3 */
    char *f1_overlays = th_snap_disk_files(&g, "data.*f1.r*.qcow2");
    CHECK(strchr(f1_overlays, '\n') &&
          strchr(f1_overlays, '\n') != strrchr(f1_overlays, '\n'));
    th_xlsnap(&r, "-N", "snapshot-delete", g.name, "f1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "\"remove_revert_overlays\"");
    CHECK_CONTAINS(r.out, "f1.r1.qcow2");
    CHECK_CONTAINS(r.out, "f1.r2.qcow2");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-delete", g.name, "f1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "left by an earlier revert to 'f1'");
    if (r.rc)
        th_note("%s", th_cmd_describe(&r));
    th_cmd_free(&r);
    char *left = th_snap_disk_files(&g, "data.*f1*.qcow2");
    CHECK_STR(left, "");
    free(left);
    free(f1_overlays);
    /* e1's own: r1 and r2 are stale, r3 is the domain's active image. */
    th_xlsnap(&r, "-N", "snapshot-delete", g.name, "e1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "data.e1.r1.qcow2");
    CHECK_CONTAINS(r.out, "data.e1.r2.qcow2");
    const char *rm = r.out ? strstr(r.out, "\"remove_revert_overlays\"") : NULL;
    CHECK(rm && !strstr(rm, "data.e1.r3.qcow2"));
    th_cmd_free(&r);
    char path[4300];
    snprintf(path, sizeof path, "%s/data.e1.r2.qcow2", g.disk_dir);
    char *out = NULL;
    CHECK_INT(th_runl(&out, NULL, "qemu-img", "check", "-U", path, (char *)NULL), 0);
    free(out);
    REQUIRE(th_xlsim_wait_agent(&g, TH_SNAP_BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS(&g, "A");
}

/* A paused domain whose revert died is started again paused. */
static void test_killed_mid_revert_paused(void)
{
    if (!th_snap_guest_up(&g))
        return;
    REQUIRE(th_xlsim_pause(&g, true));
    char log[4200];
    snprintf(log, sizeof log, "%s/revert-held-paused.log", th_tmpdir());
    pid_t pid = revert_held(log);
    REQUIRE(pid > 0);
    kill(pid, SIGKILL);
    th_wait(pid, 10000);
    CHECK(!th_pid_alive(g.vm.pid));
    char *j = th_snap_journal_text();
    CHECK_CONTAINS(j, "\"domain_state\": \"paused\"");
    free(j);
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-create", g.name, "probe", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "was paused before the interrupted revert: starting it paused");
    th_cmd_free(&r);
    th_snap_adopt_new_qemu(&g);
    CHECK(th_pid_alive(g.vm.pid));
    char *list = th_snap_xlsim_list();
    CHECK_CONTAINS(list, "--p---");
    free(list);
    j = th_snap_journal_text();
    CHECK_STR(j, "");
    free(j);
    REQUIRE(th_xlsim_pause(&g, false));
    REQUIRE(th_xlsim_wait_agent(&g, TH_SNAP_BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS(&g, "A");
}

int main(void)
{
    TH_RUN(test_boot);
    TH_RUN(test_dry_run);
    TH_RUN(test_killed_mid_revert);
    TH_RUN(test_revert_after_recovery);
    TH_RUN(test_revert_overlays_recorded);
    TH_RUN(test_killed_mid_revert_paused);
    if (th_snap_booted(&g))
        th_xlsim_destroy(&g);
    return th_finish();
}
