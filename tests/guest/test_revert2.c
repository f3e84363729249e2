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
#include "th_xlsim.h"

#define BOOT_TIMEOUT_MS 120000

static th_xlsim_dom g;
static bool g_up;

static bool guest_up(void)
{
    if (!g_up)
        th_skip("the guest did not boot");
    return g_up;
}

/* The device model after a restart is a new QEMU: track it (killed at exit). */
static void adopt_new_qemu(void)
{
    char path[96];
    snprintf(path, sizeof path, "/local/domain/%u/image/device-model-pid", g.domid);
    char *pid_s = th_xs_read(path);
    pid_t pid = pid_s ? (pid_t)strtol(pid_s, NULL, 10) : -1;
    free(pid_s);
    if (pid > 0 && pid != g.vm.pid) {
        th_adopt(pid);
        g.vm.pid = pid;
    }
}

static bool write_disk(const char *text)
{
    char script[160];
    snprintf(script, sizeof script, "echo %s >/mnt/vdb/state.txt && sync", text);
    return th_xlsim_guest_sh(&g, script, NULL) == 0;
}

static void check_guest_reads(const char *file, int line, const char *want)
{
    char *out = NULL;
    th_xlsim_guest_sh(
        &g, "sync; echo 3 >/proc/sys/vm/drop_caches; cat /mnt/vdb/state.txt", &out);
    if (!out || strncmp(out, want, strlen(want)))
        th_fail_at(file, line, "guest reads \"%s\", want %s", out ? out : "(nothing)",
                   want);
    free(out);
}
#define CHECK_GUEST_READS(want) check_guest_reads(__FILE__, __LINE__, want)

static void create(const char *opt, const char *name)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", opt, g.name, name, NULL);
    CHECK_INT(r.rc, 0);
    if (r.rc)
        th_note("%s", th_cmd_describe(&r));
    th_cmd_free(&r);
}

static char *journal_text(void)
{
    char *out = NULL;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/snapshots", th_xlsim_statedir());
    th_runl(&out, NULL, "find", dir, "-name", ".journal.json", "-exec", "cat", "{}", ";",
            (char *)NULL);
    return out;
}

static char *xlsim_list(void)
{
    char *out = NULL;
    th_runl(&out, NULL, th_build_path("xlsim"), "list", (char *)NULL);
    return out;
}

/* A process that exists and is not a zombie (PID 1 here does not reap). */
static bool qemu_alive(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *st = th_read_file(path);
    char *p = st ? strrchr(st, ')') : NULL;
    bool alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    free(st);
    return alive;
}

static void test_boot(void)
{
    REQUIRE(th_xlsim_init());
    setenv("XLSNAP_XLSIM", th_build_path("xlsim"), 1);
    th_xlsim_opts o = {0};
    REQUIRE(th_xlsim_create(&g, "rv2", &o));
    REQUIRE(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    g_up = true;
}

static void test_dry_run(void)
{
    if (!guest_up())
        return;
    REQUIRE(write_disk("A"));
    create("-e", "e1");
    REQUIRE(write_disk("B"));
    create("-e", "e2");
    REQUIRE(write_disk("C"));
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
    CHECK_GUEST_READS("C");
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
    if (!guest_up())
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
    CHECK(!qemu_alive(g.vm.pid));
    char *j = journal_text();
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
    j = journal_text();
    CHECK_STR(j, "");
    free(j);
    adopt_new_qemu();
    CHECK(qemu_alive(g.vm.pid));
    char *list = xlsim_list();
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
    REQUIRE(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS("C");
}

static void test_revert_after_recovery(void)
{
    if (!guest_up())
        return;
    th_cmd r;
    th_xlsnap(&r, "snapshot-revert", "--force", g.name, "e1", NULL);
    CHECK_INT(r.rc, 0);
    if (r.rc)
        th_note("%s", th_cmd_describe(&r));
    th_cmd_free(&r);
    adopt_new_qemu();
    REQUIRE(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS("A");
}

static void revert_to(const char *name)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-revert", "--force", g.name, name, NULL);
    CHECK_INT(r.rc, 0);
    if (r.rc)
        th_note("%s", th_cmd_describe(&r));
    th_cmd_free(&r);
    adopt_new_qemu();
}

/* The files of the disk dir whose names match pattern, one a line. */
static char *disk_files(const char *pattern)
{
    char *out = NULL;
    th_runl(&out, NULL, "find", g.disk_dir, "-name", pattern, (char *)NULL);
    return out ? out : strdup("");
}

static void test_revert_overlays_recorded(void)
{
    if (!guest_up())
        return;
    revert_to("e1"); /* data.e1.r1 (the previous revert's) is left behind */
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", "--json", g.name, "e1", NULL);
    CHECK_CONTAINS(r.out, "\"revert_overlays\"");
    CHECK_CONTAINS(r.out, "data.e1.r1.qcow2");
    CHECK_CONTAINS(r.out, "data.e1.r2.qcow2");
    th_cmd_free(&r);
    REQUIRE(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    create("-e", "f1");
    revert_to("f1");
    revert_to("f1"); /* f1's first revert overlay is stale now */
    revert_to("e1"); /* and so is the second: the domain is on data.e1.r3 */
    char *f1_overlays = disk_files("data.*f1.r*.qcow2");
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
    char *left = disk_files("data.*f1*.qcow2");
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
    REQUIRE(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS("A");
}

/* A paused domain whose revert died is started again paused. */
static void test_killed_mid_revert_paused(void)
{
    if (!guest_up())
        return;
    REQUIRE(th_xlsim_pause(&g, true));
    char log[4200];
    snprintf(log, sizeof log, "%s/revert-held-paused.log", th_tmpdir());
    pid_t pid = revert_held(log);
    REQUIRE(pid > 0);
    kill(pid, SIGKILL);
    th_wait(pid, 10000);
    CHECK(!qemu_alive(g.vm.pid));
    char *j = journal_text();
    CHECK_CONTAINS(j, "\"domain_state\": \"paused\"");
    free(j);
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-create", g.name, "probe", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "was paused before the interrupted revert: starting it paused");
    th_cmd_free(&r);
    adopt_new_qemu();
    CHECK(qemu_alive(g.vm.pid));
    char *list = xlsim_list();
    CHECK_CONTAINS(list, "--p---");
    free(list);
    j = journal_text();
    CHECK_STR(j, "");
    free(j);
    REQUIRE(th_xlsim_pause(&g, false));
    REQUIRE(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    CHECK_GUEST_READS("A");
}

int main(void)
{
    TH_RUN(test_boot);
    TH_RUN(test_dry_run);
    TH_RUN(test_killed_mid_revert);
    TH_RUN(test_revert_after_recovery);
    TH_RUN(test_revert_overlays_recorded);
    TH_RUN(test_killed_mid_revert_paused);
    if (g_up)
        th_xlsim_destroy(&g);
    return th_finish();
}
