/*
 * snapshot-delete on a real guest run by xlsim (issue 6): a chain of two
 * external snapshots with different data in each layer; deleting the middle
 * one merges its overlay into the base while the guest runs (the child's
 * overlay now backed by the base, its record re-based and reparented, the
 * base holding the child's snapshot-time data), deleting the active one
 * pivots QEMU (query-block), xenstore and the config back to the base,
 * which holds the data written after the snapshot (read with QEMU paused);
 * an internal snapshot goes through QMP; a delete that would change an image another
 * chain is built on is refused and changes nothing; --metadata keeps files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "th.h"
#include "th_snaptest.h"

static th_xlsim_dom g;

static void test_delete_middle_external(void)
{
    REQUIRE(SNAP_LAYERS(&g, "-e", "A", "e1", "B", "e2", "C"));
    CHECK_INT(th_snap_delete(&g, NULL, "e1", NULL), 0);
    CHECK(access(th_snap_disk_file(&g, "data.e1.qcow2"), F_OK) != 0);
    char *b = th_snap_backing_of(th_snap_disk_file(&g, "data.e2.qcow2"));
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
    CHECK_CONTAINS_ALL(r.out, "Parent:         -", th_snap_disk_file(&g, "data.qcow2"));
    th_cmd_free(&r);
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.e2.qcow2"));
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.qcow2"));
}

/*
 * The active overlay merged for real: QEMU pivoted (query-block: the base is
 * the active image, alone in the chain; without the pivot QEMU would still
 * write into the unlinked overlay) and the base itself, read with QEMU
 * paused and flushed, holds what the guest wrote after the snapshot ("C").
 */
static void test_delete_active_external(void)
{
    CHECK_INT(th_snap_delete(&g, NULL, "e2", NULL), 0);
    CHECK(access(th_snap_disk_file(&g, "data.e2.qcow2"), F_OK) != 0);
    static const char *const disks[][2] = {{"xvda", "root.qcow2"},
                                           {"xvdb", "data.qcow2"}};
    for (size_t i = 0; i < 2; i++) {
        char *chain = th_snap_qemu_chain(&g, disks[i][0]);
        char *want = snap_xasprintf("%s\n", th_snap_disk_file(&g, disks[i][1]));
        CHECK_STR(chain, want);
        free(chain);
        free(want);
    }
    char *state =
        th_snap_read_paused(&g, th_snap_disk_file(&g, "data.qcow2"), "/state.txt");
    CHECK_STR(state, "C\n");
    free(state);
    CHECK_ACTIVE_IMAGE(&g, "xvdb", "data.qcow2");
    char *cfg = th_xlsim_userdata(&g);
    CHECK(cfg && !strstr(cfg, "data.e2.qcow2"));
    free(cfg);
    CHECK_GUEST_READS(&g, "C");
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.qcow2"));
}

static void test_delete_internal_running(void)
{
    SNAP_CREATE(&g, NULL, "i1");
    CHECK_INT(th_snap_delete(&g, NULL, "i1", NULL), 0);
    char *out = th_snap_table(th_snap_disk_file(&g, "data.qcow2"));
    CHECK(!strstr(out, " i1 "));
    free(out);
}

static void test_delete_refused_shared_base(void)
{
    SNAP_CREATE(&g, "-e", "x1");
    SNAP_REVERT(&g, "--force", "x1");
    CHECK(th_snap_wait_agent(&g));
    /* data.qcow2 is now the base of x1's overlay and of the new one. */
    th_snap_refresh_index(&g);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    char *err = NULL;
    CHECK_INT(th_snap_delete(&g, NULL, "x1", &err), 1);
    CHECK_CONTAINS(err, "is also the backing file of");
    free(err);
    CHECK_WORLD_KEPT(&g, before);
    /* --metadata forgets the record and leaves the files. */
    CHECK_INT(th_snap_delete(&g, "--metadata", "x1", NULL), 0);
    CHECK(access(th_snap_disk_file(&g, "data.x1.qcow2"), F_OK) == 0);
    CHECK_SNAP_GONE(&g, "x1");
}

int main(void)
{
    th_plan(5);
    th_snap_run_boot(&g, "dl1", 0);
    TH_SNAP_RUN(test_delete_middle_external);
    TH_SNAP_RUN(test_delete_active_external);
    TH_SNAP_RUN(test_delete_internal_running);
    TH_SNAP_RUN(test_delete_refused_shared_base);
    return th_snap_finish();
}
