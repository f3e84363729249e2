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

static const char *disk_file(const char *name)
{
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g.disk_dir, name);
    return buf[k];
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
    if (opt)
        th_xlsnap(&r, "snapshot-create", opt, g.name, name, NULL);
    else
        th_xlsnap(&r, "snapshot-create", g.name, name, NULL);
    CHECK_INT(r.rc, 0);
    if (r.rc)
        th_note("%s", th_cmd_describe(&r));
    th_cmd_free(&r);
}

static int delete (const char *opt, const char *name, char **err_out)
{
    th_cmd r;
    if (opt)
        th_xlsnap(&r, "snapshot-delete", opt, g.name, name, NULL);
    else
        th_xlsnap(&r, "snapshot-delete", g.name, name, NULL);
    int rc = r.rc;
    if (rc && !err_out)
        th_note("%s", th_cmd_describe(&r));
    if (err_out)
        *err_out = r.err ? strdup(r.err) : NULL;
    th_cmd_free(&r);
    return rc;
}

/* qemu-img info -U: the backing file recorded in image (malloc'd) or NULL. */
static char *backing_of(const char *image)
{
    char *out = NULL;
    th_runl(&out, NULL, "qemu-img", "info", "-U", image, (char *)NULL);
    char *b = out ? strstr(out, "backing file: ") : NULL;
    char *res = NULL;
    if (b) {
        b += strlen("backing file: ");
        res = strndup(b, strcspn(b, "\n"));
    }
    free(out);
    return res;
}

static void check_no_corruption(const char *image)
{
    char *out = NULL;
    int rc = th_runl(&out, NULL, "qemu-img", "check", "-U", image, (char *)NULL);
    if (rc != 0 && rc != 3) /* leaks of a live image: see test_revert.c */
        th_fail_at(__FILE__, __LINE__, "qemu-img check %s: %d: %s", image, rc,
                   out ? out : "");
    free(out);
}

static void test_boot(void)
{
    REQUIRE(th_xlsim_init());
    setenv("XLSNAP_XLSIM", th_build_path("xlsim"), 1);
    th_xlsim_opts o = {0};
    REQUIRE(th_xlsim_create(&g, "dl1", &o));
    REQUIRE(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    g_up = true;
}

static void test_delete_middle_external(void)
{
    if (!guest_up())
        return;
    REQUIRE(write_disk("A"));
    create("-e", "e1");
    REQUIRE(write_disk("B"));
    create("-e", "e2");
    REQUIRE(write_disk("C"));
    CHECK_INT(delete (NULL, "e1", NULL), 0);
    CHECK(access(disk_file("data.e1.qcow2"), F_OK) != 0);
    char *b = backing_of(disk_file("data.e1.e2.qcow2"));
    CHECK_STR(b, disk_file("data.qcow2"));
    free(b);
    /* The base now holds e1's layer: the data as it was when e2 was taken. */
    char *state = th_ext4_cat(th_image_to_raw(disk_file("data.qcow2")), "/state.txt");
    CHECK_STR(state, "B\n");
    free(state);
    CHECK_GUEST_READS("C");
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", g.name, "e2", NULL);
    CHECK_CONTAINS(r.out, "Parent:         -");
    CHECK_CONTAINS(r.out, disk_file("data.qcow2"));
    th_cmd_free(&r);
    check_no_corruption(disk_file("data.e1.e2.qcow2"));
    check_no_corruption(disk_file("data.qcow2"));
}

static void test_delete_active_external(void)
{
    if (!guest_up())
        return;
    CHECK_INT(delete (NULL, "e2", NULL), 0);
    CHECK(access(disk_file("data.e1.e2.qcow2"), F_OK) != 0);
    char *params = th_xlsim_backend(&g, "xvdb", "params");
    char want[4300];
    snprintf(want, sizeof want, "qcow2:%s", disk_file("data.qcow2"));
    CHECK_STR(params, want);
    free(params);
    char *cfg = th_xlsim_userdata(&g);
    CHECK(cfg && !strstr(cfg, "data.e1.e2.qcow2"));
    free(cfg);
    CHECK_GUEST_READS("C");
    check_no_corruption(disk_file("data.qcow2"));
}

static void test_delete_internal_running(void)
{
    if (!guest_up())
        return;
    create(NULL, "i1");
    CHECK_INT(delete (NULL, "i1", NULL), 0);
    char *out = NULL;
    th_runl(&out, NULL, "qemu-img", "snapshot", "-l", "-U", disk_file("data.qcow2"),
            (char *)NULL);
    CHECK(!out || !strstr(out, " i1 "));
    free(out);
}

static void test_delete_refused_shared_base(void)
{
    if (!guest_up())
        return;
    create("-e", "x1");
    th_cmd r;
    th_xlsnap(&r, "snapshot-revert", "--force", g.name, "x1", NULL);
    CHECK_INT(r.rc, 0);
    th_cmd_free(&r);
    char path[96];
    snprintf(path, sizeof path, "/local/domain/%u/image/device-model-pid", g.domid);
    char *pid_s = th_xs_read(path);
    if (pid_s) {
        g.vm.pid = (pid_t)strtol(pid_s, NULL, 10);
        th_adopt(g.vm.pid);
    }
    free(pid_s);
    CHECK(th_xlsim_wait_agent(&g, BOOT_TIMEOUT_MS));
    /* data.qcow2 is now the base of x1's overlay and of the new one. */
    th_xlsnap(&r, "snapshot-list", g.name, NULL); /* refreshes the .index cache */
    th_cmd_free(&r);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    char *err = NULL;
    CHECK_INT(delete (NULL, "x1", &err), 1);
    CHECK_CONTAINS(err, "is also the backing file of");
    free(err);
    char *after = th_world_capture(&g, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before);
    free(after);
    /* --metadata forgets the record and leaves the files. */
    CHECK_INT(delete ("--metadata", "x1", NULL), 0);
    CHECK(access(disk_file("data.x1.qcow2"), F_OK) == 0);
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
    if (g_up)
        th_xlsim_destroy(&g);
    return th_finish();
}
