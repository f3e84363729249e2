/*
 * The test guest boots under plain QEMU with two data disks attached the way
 * Xen's qdisk does, mounts both, answers through qemu-ga (guest-exec and
 * guest-file-*), and powers off cleanly on guest-shutdown.
 */
#include <stdio.h>
#include <stdlib.h>

#include "snap_qmp.h"
#include "th.h"
#include "th_guest.h"

#define BOOT_TIMEOUT_MS 90000

/* QEMU sees the disks under Xen's node-names. */
static void check_node_names(const th_guest_vm *vm)
{
    snap_err err = {0};
    snap_qmp *qmp = NULL;
    snap_qmp_disks disks = {0};
    if (snap_qmp_connect(vm->qmp_path, 10000, &qmp, &err) != 0 ||
        snap_qmp_query_disks(qmp, &disks, 10000, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "QMP: %s", err.msg);
    } else {
        CHECK(snap_qmp_disks_find(&disks, "xvda-qcow2") != NULL);
        CHECK(snap_qmp_disks_find(&disks, "xvdb-qcow2") != NULL);
    }
    snap_qmp_disks_free(&disks);
    snap_qmp_close(qmp);
}

static void check_guest_side(th_agent *ga)
{
    char *mounts = th_agent_read_file(ga, "/proc/mounts");
    CHECK_CONTAINS(mounts, "/dev/vda /mnt/vda ext4 rw");
    CHECK_CONTAINS(mounts, "/dev/vdb /mnt/vdb ext4 rw");
    free(mounts);

    const char *cat[] = {"/bin/cat", "/proc/mounts", NULL};
    char *out = NULL;
    CHECK_INT(th_agent_exec(ga, cat, &out), 0);
    CHECK_CONTAINS(out, "/dev/vdb /mnt/vdb ext4");
    free(out);

    /* A file written in the guest must reach disk b by the clean shutdown. */
    const char *write[] = {"/bin/sh", "-c", "echo written-in-guest >/mnt/vdb/hello",
                           NULL};
    CHECK_INT(th_agent_exec(ga, write, NULL), 0);
    const char *fail[] = {"/bin/sh", "-c", "exit 3", NULL};
    CHECK_INT(th_agent_exec(ga, fail, NULL), 3);
}

static void test_boot_two_disks_agent_shutdown(void)
{
    const char *disk_a = th_guest_mkdisk("a.qcow2", 64);
    const char *disk_b = th_guest_mkdisk("b.qcow2", 32);
    REQUIRE(disk_a && disk_b);
    const char *disks[] = {disk_a, disk_b, NULL};
    th_guest_vm vm;
    REQUIRE(th_guest_start(&vm, "boot", disks, NULL));
    REQUIRE(th_guest_wait_ready(&vm, BOOT_TIMEOUT_MS));
    check_node_names(&vm);

    th_agent *ga = th_agent_connect(vm.agent_path, 30000);
    REQUIRE(ga);
    check_guest_side(ga);
    CHECK(th_agent_send(ga, "guest-shutdown"));
    bool exited = th_guest_wait_exit(&vm, 30000);
    th_agent_close(ga);
    CHECK(exited);
    if (!exited) {
        th_guest_stop(&vm);
        return;
    }

    /* Offline: /init's shutdown unmounted cleanly, and the file is there. */
    const char *raw = th_image_to_raw(disk_b);
    REQUIRE(raw);
    CHECK_INT(th_ext4_needs_recovery(raw), 0);
    CHECK_INT(th_ext4_fsck(raw), 0);
    char *hello = th_ext4_cat(raw, "/hello");
    CHECK_STR(hello, "written-in-guest\n");
    free(hello);
}

/* The builder's output is cached: a second run is immediate and the same. */
static void test_build_guest_cached(void)
{
    const char *dir = th_guest_dir();
    REQUIRE(dir);
    char *out = NULL;
    uint64_t start = snap_now_ms();
    CHECK_INT(th_runl(&out, NULL, "bash", th_top_path("tools/guest/build-guest"), NULL),
              0);
    uint64_t took = snap_now_ms() - start;
    CHECK(took < 1000);
    CHECK_CONTAINS(out, dir);
    free(out);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest", dir);
    char *manifest = th_read_file(path);
    CHECK_CONTAINS(manifest, "modules virtio_ring");
    free(manifest);
}

int main(void)
{
    th_plan(2);
    TH_RUN(test_build_guest_cached);
    TH_RUN(test_boot_two_disks_agent_shutdown);
    return th_finish();
}
