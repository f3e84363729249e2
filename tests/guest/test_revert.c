/*
 * snapshot-revert on a real guest run by xlsim (issue 6): data A on disk and
 * a marker in guest RAM, a memory checkpoint, then B written, then revert:
 * the guest runs on from the checkpoint (RAM marker A) and its disk shows A
 * (read inside the guest after dropping caches, and offline from the image).
 * The same for an external checkpoint (new overlays, xenstore and config on
 * them, the old overlays kept); a disk-only snapshot refuses a live domain
 * without --force (nothing changes) and boots it afresh with it; a qemu-img
 * child killed during the revert ends in a clear error, a paused domain,
 * no journal, current unchanged and images that pass qemu-img check; a
 * memory file that does not fit ends in ENOSPC with nothing left behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "th.h"
#include "th_snaptest.h"

static th_xlsim_dom g;

/* Writes text to the data disk and to RAM (the initramfs root), synced. */
static bool write_state(const char *disk_text, const char *ram_text)
{
    char script[256];
    snprintf(script, sizeof script,
             "echo %s >/mnt/vdb/state.txt && echo %s >/ram-marker && sync", disk_text,
             ram_text);
    return th_xlsim_guest_sh(&g, script, NULL) == 0;
}

/* What the guest reads back: the file from disk (caches dropped) and RAM. */
static char *guest_read(const char *what)
{
    char script[160], *out = NULL;
    snprintf(script, sizeof script,
             "sync; echo 3 >/proc/sys/vm/drop_caches; cat %s 2>/dev/null || echo none",
             what);
    if (th_xlsim_guest_sh(&g, script, &out) != 0) {
        free(out);
        return NULL;
    }
    size_t n = out ? strlen(out) : 0;
    while (n && out[n - 1] == '\n')
        out[--n] = '\0';
    return out;
}

static void check_guest_state(const char *file, int line, const char *disk,
                              const char *ram)
{
    char *d = guest_read("/mnt/vdb/state.txt"), *r = guest_read("/ram-marker");
    if (!d || strcmp(d, disk) || !r || strcmp(r, ram))
        th_fail_at(file, line, "guest shows disk \"%s\" and RAM \"%s\", want %s and %s",
                   d ? d : "(no answer)", r ? r : "(no answer)", disk, ram);
    free(d);
    free(r);
}
#define CHECK_GUEST(disk, ram) check_guest_state(__FILE__, __LINE__, disk, ram)

static void check_running(void)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", g.name, NULL);
    th_cmd_free(&r);
    char *out = th_snap_xlsim_list();
    CHECK_CONTAINS(out, "r-----");
    free(out);
}

static void test_internal_memory(void)
{
    REQUIRE(write_state("A", "ramA"));
    REQUIRE(XLSNAP_OK(NULL, "snapshot-create", "-m", g.name, "m1"));
    REQUIRE(write_state("B", "ramB"));
    CHECK_GUEST("B", "ramB");
    SNAP_REVERT(&g, NULL, "m1");
    check_running();
    CHECK_GUEST("A", "ramA");
    char *a = th_ext4_cat(th_image_to_raw(g.data), "/state.txt");
    CHECK_STR(a, "A\n");
    free(a);
    CHECK_IMAGE_LIVE(g.root);
    CHECK_IMAGE_LIVE(g.data);
    CHECK_SNAP_CURRENT(&g, "m1");
}

static void test_external_memory(void)
{
    REQUIRE(write_state("C", "ramC"));
    REQUIRE(XLSNAP_OK(NULL, "snapshot-create", "-e", "-m", g.name, "x1"));
    REQUIRE(write_state("D", "ramD"));
    SNAP_REVERT(&g, NULL, "x1");
    check_running();
    CHECK_GUEST("C", "ramC");
    /* New overlays on the snapshot point; the old ones stay. */
    CHECK_ACTIVE_IMAGE(&g, "xvdb", "data.x1.r1.qcow2");
    char *cfg = th_xlsim_userdata(&g);
    CHECK_CONTAINS(cfg, "root.x1.r1.qcow2");
    free(cfg);
    CHECK(access(th_snap_disk_file(&g, "data.x1.qcow2"), F_OK) == 0);
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.x1.r1.qcow2"));
    CHECK_SNAP_CURRENT(&g, "x1");
}

static void test_disk_only_needs_force(void)
{
    REQUIRE(SNAP_CREATE(&g, NULL, "d1"));
    REQUIRE(write_state("E", "ramE"));
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    th_cmd r;
    th_xlsnap(&r, "snapshot-revert", g.name, "d1", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "--force");
    th_cmd_free(&r);
    CHECK_WORLD_KEPT(&g, before);
    CHECK_GUEST("E", "ramE");

    SNAP_REVERT(&g, "--force", "d1");
    CHECK(th_snap_wait_agent(&g));
    /* A fresh boot: the disk is the snapshot's, RAM starts empty. */
    CHECK_GUEST("C", "none");
    CHECK_SNAP_CURRENT(&g, "d1");
}

/*
 * A qemu-img first in PATH that dies by SIGKILL when asked to apply a
 * snapshot to the data disk, and is the real one otherwise: the root disk
 * is reverted, the data disk's child is killed.
 */
static char *dying_qemu_img_path(void)
{
    const char *dir = th_path("fakebin");
    char script[512], path[4200];
    snprintf(path, sizeof path, "%s/qemu-img", dir);
    snprintf(script, sizeof script,
             "#!/bin/sh\n"
             "case \"$*\" in\n"
             "'snapshot -a '*data*) kill -KILL $$ ;;\n"
             "esac\n"
             "exec /usr/bin/qemu-img \"$@\"\n");
    char *mk[] = {"mkdir", "-p", (char *)dir, NULL};
    if (th_run(mk, NULL, NULL) != 0 || !th_write_file(path, script))
        return NULL;
    chmod(path, 0755);
    const char *old = getenv("PATH");
    char *np = malloc(strlen(dir) + strlen(old) + 2);
    sprintf(np, "%s:%s", dir, old);
    return np;
}

/* xlsnap with argv while the environment variable var is value (restored after). */
static void xlsnap_with_env(th_cmd *r, const char *var, const char *value,
                            const char *const argv[])
{
    char *saved = strdup(getenv(var));
    setenv(var, value, 1);
    th_xlsnapv(r, argv);
    setenv(var, saved, 1);
    free(saved);
}

static void test_qemu_img_killed(void)
{
    char *path = dying_qemu_img_path();
    REQUIRE(path);
    const char *argv[] = {"snapshot-revert", "--force", g.name, "d1", NULL};
    th_cmd r;
    xlsnap_with_env(&r, "PATH", path, argv);
    free(path);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS_ALL(r.err, "Killed", "left paused");
    th_note("revert with a killed qemu-img: %s", r.err ? r.err : "");
    th_cmd_free(&r);
    th_snap_adopt_new_qemu(&g);
    char *out = th_snap_xlsim_list();
    CHECK_CONTAINS(out, "--p---");
    free(out);
    out = th_snap_journal_text();
    CHECK_STR(out, "");
    free(out);
    CHECK_SNAP_CURRENT(&g, "d1");
    const char *vdevs[] = {"xvda", "xvdb"};
    for (size_t i = 0; i < 2; i++) {
        char *image = th_snap_active_image(&g, vdevs[i]);
        if (image)
            CHECK_IMAGE_LIVE(image);
        free(image);
    }
    /* A second attempt completes the revert: a fresh boot on d1's disks. */
    SNAP_REVERT(&g, "--force", "d1");
    CHECK(th_snap_wait_agent(&g));
    CHECK_GUEST("C", "none");
}

/*
 * The memory file cannot be written (a 2 MiB tmpfs as xlsnap's state
 * directory): a clear error, the domain running, no snapshot left in any
 * image, no memory file, no journal.
 */
static void test_memory_enospc(void)
{
    const char *small = th_path("small-state");
    char *mk[] = {"mkdir", "-p", (char *)small, NULL};
    char *mnt[] = {"mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", (char *)small, NULL};
    if (th_run(mk, NULL, NULL) != 0 || th_run(mnt, NULL, NULL) != 0) {
        th_skip("cannot mount a small tmpfs here");
        return;
    }
    const char *argv[] = {"snapshot-create", "-m", g.name, "full", NULL};
    th_cmd r;
    xlsnap_with_env(&r, "XLSNAP_STATEDIR", small, argv);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "No space left on device");
    th_note("memory file on a full disk: %s", r.err ? r.err : "");
    th_cmd_free(&r);
    check_running();
    char *out = NULL;
    /* absence checks: the listings themselves must have worked */
    CHECK_INT(th_runl(&out, NULL, "find", small, "-name", "*.mem", "-o", "-name",
                      ".journal.json", "-o", "-name", "full.json", (char *)NULL),
              0);
    CHECK_STR(out, "");
    free(out);
    char *root = th_snap_active_image(&g, "xvda");
    CHECK(root);
    if (root) {
        out = th_snap_table(root);
        CHECK(!strstr(out, " full "));
        free(out);
    }
    free(root);
    CHECK(th_xlsim_guest_sh(&g, "echo alive >/mnt/vdb/alive && sync", NULL) == 0);
    char *um[] = {"umount", (char *)small, NULL};
    th_run(um, NULL, NULL);
}

/* With QEMU gone, every image of the domain passes a strict check. */
static void test_images_clean_offline(void)
{
    th_snap_destroy(&g);
    char *out = NULL;
    th_runl(&out, NULL, "sh", "-c", "ls \"$0\"/*.qcow2", g.disk_dir, (char *)NULL);
    REQUIRE(out);
    int n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), n++) {
        char *o = NULL;
        int rc = th_runl(&o, NULL, "qemu-img", "check", line, (char *)NULL);
        if (rc != 0)
            th_fail_at(__FILE__, __LINE__, "qemu-img check %s: %d: %s", line, rc,
                       o ? o : "");
        free(o);
    }
    CHECK(n >= 6);
    free(out);
}

int main(void)
{
    th_plan(7);
    th_snap_run_boot(&g, "rv1", 0);
    TH_SNAP_RUN(test_internal_memory);
    TH_SNAP_RUN(test_external_memory);
    TH_SNAP_RUN(test_disk_only_needs_force);
    TH_SNAP_RUN(test_qemu_img_killed);
    TH_SNAP_RUN(test_memory_enospc);
    TH_SNAP_RUN(test_images_clean_offline);
    return th_snap_finish();
}
