/*
 * snapshot-delete on a real guest run by xlsim (issue 6): a chain of two
 * external snapshots with different data in each layer; deleting the middle
 * one merges its overlay into the base while the guest runs (the child's
 * overlay now backed by the base, its record re-based and reparented, the
 * base holding the child's snapshot-time data), deleting the active one
 * pivots QEMU, xenstore and the config back to the base; an internal
 * snapshot goes through QMP; a delete that would change an image another
 * chain is built on is refused and changes nothing; --metadata keeps files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "th.h"
#include "th_snaptest.h"

static th_xlsim_dom g;

static void test_boot(void)
{
    th_snap_boot(&g, "dl1");
}

static void test_delete_middle_external(void)
{
    if (!th_snap_guest_up(&g))
        return;
    REQUIRE(th_snap_write_disk(&g, "A"));
    SNAP_CREATE(&g, "-e", "e1");
    REQUIRE(th_snap_write_disk(&g, "B"));
    SNAP_CREATE(&g, "-e", "e2");
    REQUIRE(th_snap_write_disk(&g, "C"));
    CHECK_INT(th_snap_delete(&g, NULL, "e1", NULL), 0);
    CHECK(access(th_snap_disk_file(&g, "data.e1.qcow2"), F_OK) != 0);
    char *b = th_snap_backing_of(th_snap_disk_file(&g, "data.e1.e2.qcow2"));
    CHECK_STR(b, th_snap_disk_file(&g, "data.qcow2"));
    free(b);
    /* The base now holds e1's layer: the data as it was when e2 was taken. */
    char *state =
        th_ext4_cat(th_image_to_raw(th_snap_disk_file(&g, "data.qcow2")), "/state.txt");
    CHECK_STR(state, "B\n");
    free(state);
    CHECK_GUEST_READS(&g, "C");
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", g.name, "e2", NULL);
    CHECK_CONTAINS(r.out, "Parent:         -");
    CHECK_CONTAINS(r.out, th_snap_disk_file(&g, "data.qcow2"));
    th_cmd_free(&r);
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.e1.e2.qcow2"));
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.qcow2"));
}

static void test_delete_active_external(void)
{
    if (!th_snap_guest_up(&g))
        return;
    CHECK_INT(th_snap_delete(&g, NULL, "e2", NULL), 0);
    CHECK(access(th_snap_disk_file(&g, "data.e1.e2.qcow2"), F_OK) != 0);
    char *params = th_xlsim_backend(&g, "xvdb", "params");
    char want[4300];
    snprintf(want, sizeof want, "qcow2:%s", th_snap_disk_file(&g, "data.qcow2"));
    CHECK_STR(params, want);
    free(params);
    char *cfg = th_xlsim_userdata(&g);
    CHECK(cfg && !strstr(cfg, "data.e1.e2.qcow2"));
    free(cfg);
    CHECK_GUEST_READS(&g, "C");
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.qcow2"));
}

static void test_delete_internal_running(void)
{
    if (!th_snap_guest_up(&g))
        return;
    SNAP_CREATE(&g, NULL, "i1");
    CHECK_INT(th_snap_delete(&g, NULL, "i1", NULL), 0);
    char *out = th_snap_table(th_snap_disk_file(&g, "data.qcow2"));
    CHECK(!strstr(out, " i1 "));
    free(out);
}

static void test_delete_refused_shared_base(void)
{
    if (!th_snap_guest_up(&g))
        return;
    SNAP_CREATE(&g, "-e", "x1");
    th_cmd r;
    th_xlsnap(&r, "snapshot-revert", "--force", g.name, "x1", NULL);
    CHECK_INT(r.rc, 0);
    th_cmd_free(&r);
    th_snap_adopt_new_qemu(&g);
    CHECK(th_xlsim_wait_agent(&g, TH_SNAP_BOOT_TIMEOUT_MS));
    /* data.qcow2 is now the base of x1's overlay and of the new one. */
    th_xlsnap(&r, "snapshot-list", g.name, NULL); /* refreshes the .index cache */
    th_cmd_free(&r);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    char *err = NULL;
    CHECK_INT(th_snap_delete(&g, NULL, "x1", &err), 1);
    CHECK_CONTAINS(err, "is also the backing file of");
    free(err);
    char *after = th_world_capture(&g, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before);
    free(after);
    /* --metadata forgets the record and leaves the files. */
    CHECK_INT(th_snap_delete(&g, "--metadata", "x1", NULL), 0);
    CHECK(access(th_snap_disk_file(&g, "data.x1.qcow2"), F_OK) == 0);
    th_xlsnap(&r, "snapshot-info", g.name, "x1", NULL);
    CHECK_INT(r.rc, 1);
    th_cmd_free(&r);
}

int main(void)
{
    TH_RUN(test_boot);
    TH_RUN(test_delete_middle_external);
    TH_RUN(test_delete_active_external);
    TH_RUN(test_delete_internal_running);
    TH_RUN(test_delete_refused_shared_base);
    if (th_snap_booted(&g))
        th_xlsim_destroy(&g);
    return th_finish();
}
