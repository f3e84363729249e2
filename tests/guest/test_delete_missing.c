/*
 * snapshot-delete of a snapshot whose storage went away behind xlsnap's back
 * (issue 15) on a real guest run by xlsim: the active overlay of one disk
 * moved aside or removed while the domain runs, removed with the domain
 * shut off (a second domain, booted alongside), a missing base, an internal snapshot
 * deleted from one qcow2 table by hand. Each is refused before anything changes: exit 1,
 * the message names the file and the disk, the other disk is not merged (its overlay,
 * backing chain and QEMU's block graph as before), the record stays, xenstore and the
 * stored config are untouched (a world capture). A moved overlay put back deletes
 * normally, the base then holding the data.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_qmp.h"
#include "th.h"
#include "th_snaptest.h"

/* g runs through the tests; off is shut off for the last one. */
static th_xlsim_dom g, off;

/* The disks' active images, QEMU's view of xvda and the world before the delete. */
typedef struct before_delete {
    char *root_overlay, *data_overlay; /* per xenstore */
    char *root_chain;                  /* QEMU's xvda chain; NULL when shut off */
    char *world;
} before_delete;

static void capture(const th_xlsim_dom *d, before_delete *b, bool live)
{
    b->root_overlay = th_snap_active_image(d, "xvda");
    b->data_overlay = th_snap_active_image(d, "xvdb");
    b->root_chain = live ? th_snap_qemu_chain(d, "xvda") : NULL;
    th_snap_refresh_index(d);
    b->world = th_world_capture(d, live ? TH_WORLD_LIVE : 0);
}

/*
 * snapshot-delete of name fails naming each of needles (the file, the
 * disk), and nothing changed: xvda (the disk that is fine) not merged, the
 * record kept, the world as before.
 */
static void check_refused(const th_xlsim_dom *d, const char *name, before_delete *b,
                          bool live, ...)
{
    char *err = NULL;
    CHECK_INT(th_snap_delete(d, NULL, name, &err), 1);
    va_list ap;
    va_start(ap, live);
    for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
        CHECK_CONTAINS(err, n);
    va_end(ap);
    CHECK_CONTAINS(err, "nothing was changed");
    th_note("refused: %s", err ? err : "");
    free(err);
    CHECK_SNAP_EXISTS(d, name);
    CHECK(access(b->root_overlay, F_OK) == 0);
    char *backing = th_snap_backing_of(b->root_overlay);
    CHECK_STR(backing, d->root);
    free(backing);
    if (live) {
        char *chain = th_snap_qemu_chain(d, "xvda");
        CHECK_STR(chain, b->root_chain);
        free(chain);
    }
    char *params = th_snap_active_image(d, "xvdb");
    CHECK_STR(params, b->data_overlay);
    free(params);
    /* Shut off, even the files' sizes and mtimes must stay. */
    char *after = th_world_capture(d, live ? TH_WORLD_LIVE : 0);
    CHECK_WORLD(b->world, after);
    free(after);
}

static void before_free(before_delete *b)
{
    free(b->root_overlay);
    free(b->data_overlay);
    free(b->root_chain);
    free(b->world);
}

static void test_moved_overlay_running(void)
{
    REQUIRE(SNAP_LAYERS(&g, "-e", "A", "m1", "B"));
    char *overlay = th_snap_active_image(&g, "xvdb");
    REQUIRE(overlay && strcmp(overlay, g.data) != 0);
    char *aside = snap_xasprintf("%s.aside", overlay);
    REQUIRE(rename(overlay, aside) == 0);
    before_delete b;
    capture(&g, &b, true);
    check_refused(&g, "m1", &b, true, overlay, "disk xvdb", "is missing", (char *)NULL);
    /* Put back, the overlay merges: the base holds what the guest wrote after m1. */
    REQUIRE(rename(aside, overlay) == 0);
    CHECK_INT(th_snap_delete(&g, NULL, "m1", NULL), 0);
    CHECK_SNAP_GONE(&g, "m1");
    CHECK(access(overlay, F_OK) != 0);
    CHECK_ACTIVE_IMAGE(&g, "xvdb", "data.qcow2");
    char *state = th_snap_read_paused(&g, g.data, "/state.txt");
    CHECK_STR(state, "B\n");
    free(state);
    CHECK_GUEST_READS(&g, "B");
    before_free(&b);
    free(aside);
    free(overlay);
}

/* i1 taken on both disks, then deleted from data.qcow2's table through QMP. */
static bool remove_internal_by_hand(const char *vdev, const char *tag)
{
    snap_err err = {0};
    snap_qmp *qmp = NULL;
    snap_qmp_disks disks = {0};
    const snap_qmp_disk *q = NULL;
    bool ok =
        snap_qmp_connect(g.vm.qmp_path, 10000, &qmp, &err) == 0 &&
        snap_qmp_query_disks(qmp, &disks, 10000, &err) == 0 &&
        (q = snap_qmp_disks_find(&disks, vdev)) != NULL &&
        snap_qmp_delete_internal(qmp, snap_qmp_disk_target(q), tag, 10000, &err) == 0;
    if (!ok)
        th_fail_at(__FILE__, __LINE__, "deleting %s from %s by hand: %s", tag, vdev,
                   q ? err.msg : "no such disk");
    snap_qmp_disks_free(&disks);
    snap_qmp_close(qmp);
    return ok;
}

static void test_internal_removed_by_hand(void)
{
    REQUIRE(SNAP_CREATE(&g, NULL, "i1"));
    REQUIRE(remove_internal_by_hand("xvdb", "i1"));
    char *tab = th_snap_table(g.data);
    CHECK(!strstr(tab, " i1 "));
    free(tab);
    th_snap_refresh_index(&g);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    char *err = NULL;
    CHECK_INT(th_snap_delete(&g, NULL, "i1", &err), 1);
    CHECK_CONTAINS_ALL(err, "disk xvdb", "internal snapshot 'i1'", g.data,
                       "nothing was changed", "--metadata");
    free(err);
    tab = th_snap_table(g.root);
    CHECK_CONTAINS(tab, " i1 ");
    free(tab);
    CHECK_SNAP_EXISTS(&g, "i1");
    CHECK_WORLD_KEPT(&g, before);
    /* The documented way out: forget the record, the storage left alone. */
    CHECK_INT(th_snap_delete(&g, "--metadata", "i1", NULL), 0);
    CHECK_SNAP_GONE(&g, "i1");
}

/* r1's active data overlay unlinked; QEMU writes on into the unlinked inode. */
static void test_removed_overlay_running(void)
{
    REQUIRE(SNAP_LAYERS(&g, "-e", "C", "r1", "D"));
    char *overlay = th_snap_active_image(&g, "xvdb");
    REQUIRE(overlay && strcmp(overlay, g.data) != 0);
    REQUIRE(unlink(overlay) == 0);
    before_delete b;
    capture(&g, &b, true);
    check_refused(&g, "r1", &b, true, overlay, "disk xvdb", "is missing", (char *)NULL);
    CHECK_GUEST_READS(&g, "D");
    before_free(&b);
    free(overlay);
}

/*
 * A PATH whose qemu-img, once it deleted an internal snapshot from a root
 * image, SIGKILLs its parent: xlsnap dies between the disks of a delete.
 */
static char *killing_qemu_img_path(void)
{
    const char *dir = th_path("fakebin");
    char path[4200];
    snprintf(path, sizeof path, "%s/qemu-img", dir);
    const char *script = "#!/bin/sh\n"
                         "/usr/bin/qemu-img \"$@\"\n"
                         "rc=$?\n"
                         "case \"$*\" in\n"
                         "'snapshot -d '*/root.*) kill -KILL $PPID ;;\n"
                         "esac\n"
                         "exit $rc\n";
    char *mk[] = {"mkdir", "-p", (char *)dir, NULL};
    if (th_run(mk, NULL, NULL) != 0 || !th_write_file(path, script) ||
        chmod(path, 0755) != 0)
        return NULL;
    return snap_xasprintf("%s:%s", dir, getenv("PATH"));
}

/*
 * An internal delete of a shut-off domain killed after xvda's snapshot went:
 * the journal marked xvda before its table changed, so the next command
 * finishes the delete (xvda's snapshot missing counts as done, xvdb's goes)
 * instead of refusing it as removed by hand.
 */
static void test_internal_delete_killed_shut_off(void)
{
    REQUIRE(SNAP_LAYERS(&off, "-e", "E", "s1", "F"));
    REQUIRE(th_xlsim_poweroff(&off, 60000));
    REQUIRE(SNAP_CREATE(&off, NULL, "i2"));
    char *path = killing_qemu_img_path();
    REQUIRE(path);
    char *saved = snap_xstrdup(getenv("PATH"));
    setenv("PATH", path, 1);
    th_cmd r;
    th_xlsnap(&r, "snapshot-delete", off.name, "i2", NULL);
    setenv("PATH", saved, 1);
    free(saved);
    free(path);
    CHECK_INT(r.rc, -1); /* killed */
    th_cmd_free(&r);
    char *root = th_snap_active_image(&off, "xvda");
    char *data = th_snap_active_image(&off, "xvdb");
    char *tab = th_snap_table(root);
    CHECK(!strstr(tab, " i2 "));
    free(tab);
    tab = th_snap_table(data);
    CHECK_CONTAINS(tab, " i2 ");
    free(tab);
    CHECK_RECOVERS(&off, "finishing the interrupted merge of 'i2'");
    CHECK_SNAP_GONE(&off, "i2");
    tab = th_snap_table(data);
    CHECK(!strstr(tab, " i2 "));
    free(tab);
    free(root);
    free(data);
}

/* The shut-off domain: s1's data overlay removed, then its root base moved aside. */
static void test_removed_files_shut_off(void)
{
    char *overlay = th_snap_active_image(&off, "xvdb");
    REQUIRE(overlay && strcmp(overlay, off.data) != 0);
    REQUIRE(unlink(overlay) == 0);
    before_delete b;
    capture(&off, &b, false);
    check_refused(&off, "s1", &b, false, overlay, "disk xvdb", "is missing",
                  (char *)NULL);
    before_free(&b);
    char *aside = snap_xasprintf("%s.aside", off.root);
    REQUIRE(rename(off.root, aside) == 0);
    capture(&off, &b, false);
    check_refused(&off, "s1", &b, false, off.root, "disk xvda", "its base", (char *)NULL);
    CHECK(rename(aside, off.root) == 0);
    before_free(&b);
    free(aside);
    free(overlay);
}

static void test_boot(void)
{
    th_xlsim_dom *const doms[] = {&g, &off};
    const char *const names[] = {"dm1", "dm2"};
    th_snap_boot_all(doms, names, 2, 0);
}

int main(void)
{
    th_plan(6);
    th_run_test("test_boot", test_boot);
    TH_SNAP_RUN(test_moved_overlay_running);
    TH_SNAP_RUN(test_internal_removed_by_hand);
    TH_SNAP_RUN(test_removed_overlay_running);
    TH_SNAP_RUN(test_internal_delete_killed_shut_off);
    TH_SNAP_RUN(test_removed_files_shut_off);
    return th_snap_finish();
}
