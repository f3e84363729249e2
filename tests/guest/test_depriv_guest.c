/*
 * Snapshots of a booted guest whose device model runs deprivileged (issue
 * 19): xlsim's dm_restrict=1 as libxl does it (QEMU as nobody, chrooted to
 * an empty directory), so QEMU opens no host path after it started. A
 * quiesced external snapshot (overlays passed to QEMU as descriptors), an
 * internal one, a revert (a new device model, as confined), and a delete
 * that merges the active overlay back, each checked in the guest and in
 * the images.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap_json.h"
#include "snap_qmp.h"
#include "th.h"
#include "th_guest.h"
#include "th_qmp_proxy.h"
#include "th_snaptest.h"

static th_xlsim_dom g;
static uid_t nobody_uid;

/* The device model runs as nobody, chrooted to <rundir>/qemu-root-<domid>. */
static void check_confined(const char *file, int line)
{
    char link[64], root[4096], want[4096];
    snprintf(link, sizeof link, "/proc/%d/root", (int)g.vm.pid);
    ssize_t n = readlink(link, root, sizeof root - 1);
    root[n > 0 ? n : 0] = '\0';
    snprintf(want, sizeof want, "%s/qemu-root-%u", th_xlsim_rundir(), g.domid);
    if (th_proc_euid(g.vm.pid) != (long)nobody_uid || strcmp(root, want) != 0)
        th_fail_at(file, line, "QEMU [%d] runs as uid %ld in %s, not as nobody in %s",
                   (int)g.vm.pid, th_proc_euid(g.vm.pid), root, want);
}
#define CHECK_CONFINED() check_confined(__FILE__, __LINE__)

static void test_external_quiesced(void)
{
    CHECK_CONFINED();
    REQUIRE(th_snap_write_disk(&g, "A"));
    th_cmd r;
    REQUIRE(XLSNAP_OK(&r, "snapshot-create", "-e", "--quiesce=required", g.name, "e1"));
    CHECK_CONTAINS(r.out, "quiesced");
    th_cmd_free(&r);
    REQUIRE(th_snap_write_disk(&g, "B"));
    CHECK_ACTIVE_IMAGE(&g, "xvdb", "data.e1.qcow2");
    char *chain = th_snap_qemu_chain(&g, "xvdb");
    char *want = snap_xasprintf("%s\n%s\n", th_snap_disk_file(&g, "data.e1.qcow2"),
                                th_snap_disk_file(&g, "data.qcow2"));
    CHECK_STR(chain, want);
    free(chain);
    free(want);
    /* The guest's writes after the snapshot went through the passed descriptor. */
    char *state =
        th_snap_read_paused(&g, th_snap_disk_file(&g, "data.e1.qcow2"), "/state.txt");
    CHECK_STR(state, "B\n");
    free(state);
    state =
        th_ext4_cat(th_image_to_raw(th_snap_disk_file(&g, "data.qcow2")), "/state.txt");
    CHECK_STR(state, "A\n");
    free(state);
    CHECK_GUEST_READS(&g, "B");
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.e1.qcow2"));
}

static void test_internal_quiesced(void)
{
    REQUIRE(SNAP_CREATE(&g, "--quiesce=required", "i1"));
    char *table = th_snap_table(th_snap_disk_file(&g, "data.e1.qcow2"));
    CHECK(strstr(table, " i1 ") != NULL);
    free(table);
    CHECK_GUEST_READS(&g, "B");
}

/* A disk-only revert boots a new device model: as confined as the first. */
static void test_revert_external(void)
{
    REQUIRE(SNAP_REVERT(&g, "--force", "e1"));
    REQUIRE(th_snap_wait_agent(&g));
    CHECK_CONFINED();
    CHECK_GUEST_READS(&g, "A");
}

/* The active overlay (a passed descriptor) merged back into the image below. */
static void test_delete_external(void)
{
    char *before = th_snap_active_image(&g, "xvdb");
    REQUIRE(before);
    REQUIRE(SNAP_LAYERS(&g, "-e", "E", "e2", "F"));
    CHECK_INT(th_snap_delete(&g, NULL, "e2", NULL), 0);
    CHECK(access(th_snap_disk_file(&g, "data.e2.qcow2"), F_OK) != 0);
    char *after = th_snap_active_image(&g, "xvdb");
    CHECK_STR(after, before);
    char *state = th_snap_read_paused(&g, before, "/state.txt");
    CHECK_STR(state, "F\n");
    free(state);
    CHECK_GUEST_READS(&g, "F");
    CHECK_IMAGE_LIVE(before);
    free(before);
    free(after);
}

/* Each fdset the device model holds is the file of a block node: none left behind. */
static void check_fdsets_used(const char *file, int line)
{
    snap_qmp *q = NULL;
    snap_qmp_fdsets sets;
    yajl_val nodes = NULL, flat = yajl_tree_parse("{\"flat\": true}", NULL, 0);
    snap_err err;
    if (snap_qmp_connect(g.vm.qmp_path, 30000, &q, &err) ||
        snap_qmp_query_fdsets(q, &sets, 30000, &err)) {
        th_fail_at(file, line, "query-fdsets: %s", err.msg);
        snap_qmp_close(q);
        yajl_tree_free(flat);
        return;
    }
    if (snap_qmp_execute_tree(q, "query-named-block-nodes", flat, &nodes, 30000, &err))
        th_fail_at(file, line, "query-named-block-nodes: %s", err.msg);
    for (size_t i = 0; i < sets.n && nodes; i++) {
        bool used = false;
        for (size_t k = 0; k < snap_json_array_len(nodes) && !used; k++)
            used = snap_qmp_fdset_of_file(snap_json_get_string(
                       snap_json_array_at(nodes, k), "file")) == sets.set[i].id;
        if (!used)
            th_fail_at(file, line, "fdset %lld: no block node uses it", sets.set[i].id);
    }
    yajl_tree_free(nodes);
    yajl_tree_free(flat);
    snap_qmp_fdsets_free(&sets);
    snap_qmp_close(q);
}
#define CHECK_FDSETS_USED() check_fdsets_used(__FILE__, __LINE__)

/* QMP quit, then `xlsim relaunch`: a new, as confined, QEMU opens the chain by path. */
static bool restart_device_model(void)
{
    snap_qmp *q = NULL;
    snap_err err;
    if (snap_qmp_connect(g.vm.qmp_path, 30000, &q, &err))
        return false;
    snap_qmp_execute(q, "quit", NULL, NULL, NULL, 30000, &err);
    snap_qmp_close(q);
    for (int i = 0; i < 100 && th_pid_alive(g.vm.pid); i++)
        usleep(100000);
    char domid[16];
    snprintf(domid, sizeof domid, "%u", g.domid);
    if (th_runl(NULL, NULL, th_build_path("xlsim"), "relaunch", domid, (char *)NULL))
        return false;
    th_snap_adopt_new_qemu(&g);
    return th_snap_wait_agent(&g);
}

/*
 * After a restart of the device model on a chain, the image under the
 * active overlay is one QEMU opened read-only from the header: the merge
 * into it passes it as descriptors. A first attempt whose block-commit
 * QEMU refuses (a proxy) leaves the guest on its overlay and no fdset
 * unused; the next command finishes the journaled merge; the guest's
 * data, the images' chain and the guest's view agree after.
 */
static void test_delete_into_header_opened_base(void)
{
    char *base = th_snap_active_image(&g, "xvdb");
    REQUIRE(base);
    REQUIRE(SNAP_LAYERS(&g, "-e", "G", "e3", "H"));
    REQUIRE(restart_device_model());
    CHECK_CONFINED();
    CHECK_GUEST_READS(&g, "H");
    REQUIRE(th_snap_write_disk(&g, "I"));
    const char *top = th_snap_disk_file(&g, "data.e3.qcow2");

    th_qmp_proxy *p = th_qmp_proxy_start(g.vm.qmp_path, "block-commit", "injected");
    REQUIRE(p);
    CHECK(th_snap_delete(&g, NULL, "e3", NULL) != 0);
    CHECK_INT(th_qmp_proxy_refused(p), 1);
    th_qmp_proxy_stop(p);
    CHECK_ACTIVE_IMAGE(&g, "xvdb", "data.e3.qcow2");
    CHECK_FDSETS_USED();
    CHECK_GUEST_READS(&g, "I");

    CHECK_RECOVERS(&g, "finishing the interrupted merge of 'e3'");
    CHECK(access(top, F_OK) != 0);
    char *after = th_snap_active_image(&g, "xvdb");
    CHECK_STR(after, base);
    char *chain = th_snap_qemu_chain(&g, "xvdb");
    char *want = snap_xasprintf("%s\n%s\n", base, th_snap_disk_file(&g, "data.qcow2"));
    CHECK_STR(chain, want);
    free(chain);
    free(want);
    char *backing = th_snap_backing_of(base);
    CHECK_STR(backing, th_snap_disk_file(&g, "data.qcow2"));
    free(backing);
    char *state = th_snap_read_paused(&g, base, "/state.txt");
    CHECK_STR(state, "I\n");
    free(state);
    CHECK_GUEST_READS(&g, "I");
    CHECK_IMAGE_LIVE(base);
    CHECK_FDSETS_USED();
    free(base);
    free(after);
}

/* Opaques of the device model's fdsets naming needle; -1 on error. */
static int fdsets_naming(const char *needle)
{
    snap_qmp *q = NULL;
    snap_qmp_fdsets sets;
    snap_err err;
    if (snap_qmp_connect(g.vm.qmp_path, 30000, &q, &err) ||
        snap_qmp_query_fdsets(q, &sets, 30000, &err)) {
        snap_qmp_close(q);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < sets.n; i++)
        for (size_t k = 0; k < sets.set[i].n; k++)
            n += sets.set[i].fds[k].opaque && strstr(sets.set[i].fds[k].opaque, needle);
    snap_qmp_fdsets_free(&sets);
    snap_qmp_close(q);
    return n;
}

/*
 * The freeze lease runs out with xlsnap inside the frozen window
 * (--lease-expiry=kill): the watchdog kills it after its overlays were
 * made, passed to QEMU and added as nodes. The next command rolls the
 * create back: no node, set or overlay file of it is left, the guest runs
 * on its images.
 */
static void test_lease_expiry_cleans_up(void)
{
    char *before = th_snap_active_image(&g, "xvdb");
    REQUIRE(before);
    const char *log = th_path("lease.log");
    char *const argv[] = {(char *)th_build_path("xlsnap"),
                          "snapshot-create",
                          "--lease-expiry=kill",
                          "--freeze-timeout",
                          "1",
                          "-e",
                          g.name,
                          "lx1",
                          NULL};
    setenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE", "60000", 1);
    pid_t pid = th_spawn(argv, log);
    unsetenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE");
    REQUIRE(pid > 0);
    bool in_window = false;
    for (int waited = 0; waited < 30000 && !in_window; waited += 100) {
        char *text = th_read_file(log);
        in_window = text && strstr(text, "test hook: frozen");
        free(text);
        usleep(100000);
    }
    CHECK(in_window);
    CHECK_INT(fdsets_naming(".lx1."), 2); /* the run's overlays, passed */
    int status = th_wait(pid, 60000);     /* the lease: 1 s + 10 s */
    CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-create", g.name, "probe", NULL);
    CHECK_INT(r.rc, 0);
    th_cmd_free(&r);
    CHECK_INT(fdsets_naming(".lx1."), 0);
    CHECK_FDSETS_USED();
    CHECK(access(th_snap_disk_file(&g, "data.lx1.qcow2"), F_OK) != 0);
    char *after = th_snap_active_image(&g, "xvdb");
    CHECK_STR(after, before);
    REQUIRE(th_snap_write_disk(&g, "J"));
    CHECK_GUEST_READS(&g, "J");
    free(before);
    free(after);
}

int main(void)
{
    th_plan(7);
    struct passwd *pw = getpwnam("nobody");
    if (!pw) {
        th_skip("no user nobody");
        return th_finish();
    }
    nobody_uid = pw->pw_uid;
    th_snap_set_extra_cfg("dm_restrict = 1\ndevice_model_user = \"nobody\"");
    th_snap_run_boot(&g, "dpg", 0);
    TH_SNAP_RUN(test_external_quiesced);
    TH_SNAP_RUN(test_internal_quiesced);
    TH_SNAP_RUN(test_revert_external);
    TH_SNAP_RUN(test_delete_external);
    TH_SNAP_RUN(test_delete_into_header_opened_base);
    TH_SNAP_RUN(test_lease_expiry_cleans_up);
    return th_snap_finish();
}
