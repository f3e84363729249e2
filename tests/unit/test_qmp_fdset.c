/*
 * File descriptor passing to a real QEMU (snap_qmp_fdset.c): add-fd,
 * query-fdsets, remove-fd; and, against a QEMU confined the way Xen's
 * dm_restrict=1 confines it (-runas nobody, -chroot to an empty mode-0000
 * directory), that an external snapshot by path fails (QEMU cannot create
 * the overlay) while the fd-passing form works: overlay made and opened
 * here, added as /dev/fdset/N with no backing, put on top by a
 * blockdev-snapshot transaction, the guest's writes landing in that file.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_qmp.h"
#include "th.h"
#include "th_qemu.h"

#define T_MS 30000

/* A QEMU with one qdisk-style disk (xvda-file, xvda-qcow2) on image; confined or not. */
static bool start_vm(th_qemu *vm, const char *name, const char *image, bool confined)
{
    const char *args[16];
    char *owned[3];
    int n = th_qemu_blockdev_args(image, "xvda", args, owned);
    char root[4096];
    snprintf(root, sizeof root, "%s", th_path("qemu-root"));
    if (confined) {
        rmdir(root);
        if (mkdir(root, 0000) < 0)
            return false;
        args[n++] = "-runas";
        args[n++] = "nobody";
        args[n++] = "-chroot";
        args[n++] = root;
    }
    args[n] = NULL;
    bool ok = th_qemu_start(vm, name, args);
    th_qemu_free_args(owned);
    return ok;
}

/*
 * QEMU 7.2 closes the fds of a removed fdset only while the VM runs
 * (monitor_fdset_cleanup checks runstate_is_running): run it, as a domain.
 */
static void run_vm(snap_qmp *q)
{
    snap_err err;
    CHECK_INT(snap_qmp_cont(q, T_MS, &err), 0);
}

static snap_qmp *connect_vm(const th_qemu *vm)
{
    snap_qmp *q = NULL;
    snap_err err;
    if (snap_qmp_connect(vm->qmp_path, T_MS, &q, &err)) {
        th_note("connect: %s", err.msg);
        return NULL;
    }
    return q;
}

static size_t count_fdsets(snap_qmp *q)
{
    snap_qmp_fdsets sets;
    snap_err err;
    if (snap_qmp_query_fdsets(q, &sets, T_MS, &err)) {
        th_note("query-fdsets: %s", err.msg);
        return (size_t)-1;
    }
    size_t n = sets.n;
    snap_qmp_fdsets_free(&sets);
    return n;
}

/* add-fd twice into one set (opaque kept), query, remove one fd, then the set. */
static void test_add_query_remove(void)
{
    th_qemu vm;
    REQUIRE(
        start_vm(&vm, "plain", th_qemu_img_create("plain.qcow2", "16M", NULL), false));
    snap_qmp *q = connect_vm(&vm);
    REQUIRE(q);
    run_vm(q);
    snap_err err;
    bool confined = true;
    CHECK_INT(snap_qmp_peer_confined(q, &confined, &err), 0);
    CHECK(!confined);
    int rd = open(th_path("plain.qcow2"), O_RDONLY | O_CLOEXEC);
    int rw = open(th_path("plain.qcow2"), O_RDWR | O_CLOEXEC);
    REQUIRE(rd >= 0 && rw >= 0);
    long long set = -1, set2 = -1;
    int qfd_rd = -1, qfd_rw = -1;
    CHECK_INT(snap_qmp_add_fd(q, rd, -1, "rdonly:plain", &set, &qfd_rd, T_MS, &err), 0);
    CHECK_INT(snap_qmp_add_fd(q, rw, set, "rdwr:plain", &set2, &qfd_rw, T_MS, &err), 0);
    CHECK(set >= 0 && set2 == set && qfd_rd >= 0 && qfd_rw >= 0 && qfd_rd != qfd_rw);
    snap_qmp_fdsets sets;
    REQUIRE(snap_qmp_query_fdsets(q, &sets, T_MS, &err) == 0);
    const snap_qmp_fdset *s = snap_qmp_fdsets_find(&sets, set);
    REQUIRE(s);
    CHECK_INT(s->n, 2);
    CHECK_STR(s->fds[0].opaque, "rdonly:plain");
    CHECK_STR(s->fds[1].opaque, "rdwr:plain");
    snap_qmp_fdsets_free(&sets);
    /* Unused fds go at once: one, then the rest of the set. */
    CHECK_INT(snap_qmp_remove_fd(q, set, qfd_rd, T_MS, &err), 0);
    REQUIRE(snap_qmp_query_fdsets(q, &sets, T_MS, &err) == 0);
    CHECK(snap_qmp_fdsets_find(&sets, set) && snap_qmp_fdsets_find(&sets, set)->n == 1);
    snap_qmp_fdsets_free(&sets);
    CHECK_INT(snap_qmp_remove_fd(q, set, -1, T_MS, &err), 0);
    CHECK_INT(count_fdsets(q), 0);
    /* A set that is gone: QEMU's error, verbatim. */
    CHECK_INT(snap_qmp_remove_fd(q, set, -1, T_MS, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "remove-fd");
    close(rd);
    close(rw);
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

/* The overlay an fd-passing caller makes itself: qemu-img, backing named, no size probe.
 */
static int open_new_overlay(const char *overlay, const char *base)
{
    char *out = NULL, *errs = NULL;
    int rc = th_runl(&out, &errs, "qemu-img", "create", "-q", "-f", "qcow2", "-F",
                     "qcow2", "-b", base, overlay, NULL);
    if (rc)
        th_note("qemu-img create: %s", errs ? errs : "?");
    free(out);
    free(errs);
    return rc ? -1 : open(overlay, O_RDWR | O_CLOEXEC);
}

static void hmp_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "command-line", opaque);
}

/* Writes 64 KiB of pattern at offset 0 of the device's disk, as the guest would. */
static bool write_through_qemu(snap_qmp *q, const char *qdev, int pattern)
{
    char line[256];
    snprintf(line, sizeof line, "qemu-io -d %s \"write -P 0x%x 0 64k\"", qdev, pattern);
    yajl_val ret = NULL;
    snap_err err;
    int rc =
        snap_qmp_execute(q, "human-monitor-command", hmp_args, line, &ret, T_MS, &err);
    /* HMP answers in text, errors included (success is silent). */
    const char *text = rc == 0 && YAJL_IS_STRING(ret) ? YAJL_GET_STRING(ret) : NULL;
    bool ok = text && !strstr(text, "rror") && !strstr(text, "onflict");
    if (!ok)
        th_note("%s: %s", line, rc ? err.msg : text ? text : "?");
    yajl_tree_free(ret);
    return ok;
}

/* Confined QEMU: by path fails and leaves no file; by fd switches the disk. */
static void test_confined_external_snapshot(void)
{
    const char *base = th_qemu_img_create("base.qcow2", "16M", NULL);
    REQUIRE(base);
    char basepath[4096], by_path[4096], by_fd[4096];
    snprintf(basepath, sizeof basepath, "%s", base);
    snprintf(by_path, sizeof by_path, "%s", th_path("base.bypath.qcow2"));
    snprintf(by_fd, sizeof by_fd, "%s", th_path("base.byfd.qcow2"));
    th_qemu vm;
    REQUIRE(start_vm(&vm, "confined", basepath, true));
    snap_qmp *q = connect_vm(&vm);
    REQUIRE(q);
    run_vm(q);
    snap_err err;
    bool confined = false;
    CHECK_INT(snap_qmp_peer_confined(q, &confined, &err), 0);
    CHECK(confined);

    /* Today's path-based form: QEMU cannot create the overlay. */
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, NULL, "xvda-qcow2", "xvda-ovl1", by_path, "qcow2");
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "Permission denied");
    CHECK(access(by_path, F_OK) != 0 && errno == ENOENT);
    snap_qmp_tx_free(tx);

    /* The fd-passing form. */
    int fd = open_new_overlay(by_fd, basepath);
    REQUIRE(fd >= 0);
    long long set = -1;
    CHECK_INT(snap_qmp_add_fd(q, fd, -1, "rdwr:overlay", &set, NULL, T_MS, &err), 0);
    close(fd);
    CHECK_INT(snap_qmp_blockdev_add_qcow2_fdset(q, "xvda-ovl2", set, T_MS, &err), 0);
    tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external_node(tx, "xvda-qcow2", "xvda-ovl2");
    int rc = snap_qmp_transaction(q, tx, T_MS, &err);
    CHECK_INT(rc, 0);
    if (rc)
        th_note("blockdev-snapshot: %s", err.msg);
    snap_qmp_tx_free(tx);
    /* The node holds its own copy: the set can go now. */
    CHECK_INT(snap_qmp_remove_fd(q, set, -1, T_MS, &err), 0);
    snap_qmp_disks disks;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    const snap_qmp_disk *d = snap_qmp_disks_find(&disks, "xvda");
    REQUIRE(d);
    CHECK_STR(d->node_name, "xvda-ovl2");
    CHECK_INT(d->chain_len, 2);
    if (d->chain_len == 2)
        CHECK_STR(d->chain[1].file, basepath);
    snap_qmp_disks_free(&disks);
    CHECK(write_through_qemu(q, "/machine/peripheral/xvda/virtio-backend", 0x5a));
    snap_qmp_close(q);
    th_qemu_stop(&vm);
    /* The write is in the overlay we opened, not in the base. */
    CHECK(th_qemu_io_reads_pattern(by_fd, 0x5a, "0", "64k"));
    CHECK(!th_qemu_io_reads_pattern(basepath, 0x5a, "0", "64k"));
    char *info = th_qemu_img_info_chain(by_fd);
    CHECK(info && strstr(info, basepath));
    free(info);
}

/* Failure half-way (the transaction refused): the node and the set are removed. */
static void test_cleanup_after_refused_transaction(void)
{
    const char *base = th_qemu_img_create("fbase.qcow2", "16M", NULL);
    REQUIRE(base);
    char basepath[4096], ovl[4096];
    snprintf(basepath, sizeof basepath, "%s", base);
    snprintf(ovl, sizeof ovl, "%s", th_path("fbase.ovl.qcow2"));
    th_qemu vm;
    REQUIRE(start_vm(&vm, "refused", basepath, true));
    snap_qmp *q = connect_vm(&vm);
    REQUIRE(q);
    run_vm(q);
    snap_err err;
    int fd = open_new_overlay(ovl, basepath);
    REQUIRE(fd >= 0);
    long long set = -1;
    CHECK_INT(snap_qmp_add_fd(q, fd, -1, NULL, &set, NULL, T_MS, &err), 0);
    close(fd);
    CHECK_INT(snap_qmp_blockdev_add_qcow2_fdset(q, "xvda-ovl", set, T_MS, &err), 0);
    /* No fd of the right mode in a set: refused, and said so. */
    CHECK_INT(snap_qmp_blockdev_add_qcow2_fdset(q, "xvda-bad", set + 100, T_MS, &err),
              SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "/dev/fdset/");
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external_node(tx, "xvda-qcow2", "xvda-ovl");
    snap_qmp_tx_add_external_node(tx, "no-such-node", "xvda-ovl");
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), SNAP_ERROR_PEER);
    snap_qmp_tx_free(tx);
    CHECK_INT(snap_qmp_blockdev_del(q, "xvda-ovl", T_MS, &err), 0);
    CHECK_INT(snap_qmp_remove_fd(q, set, -1, T_MS, &err), 0);
    CHECK_INT(count_fdsets(q), 0);
    snap_qmp_disks disks;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    const snap_qmp_disk *d = snap_qmp_disks_find(&disks, "xvda");
    CHECK(d && !strcmp(d->node_name, "xvda-qcow2") && d->chain_len == 1);
    snap_qmp_disks_free(&disks);
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

static int execute_json(snap_qmp *q, const char *cmd, const char *json, snap_err *err)
{
    char ebuf[128];
    yajl_val args = yajl_tree_parse(json, ebuf, sizeof ebuf);
    if (!args)
        return snap_err_set(err, SNAP_ERROR_INVAL, "test JSON: %s", ebuf);
    int rc = snap_qmp_execute_tree(q, cmd, args, NULL, T_MS, err);
    yajl_tree_free(args);
    return rc;
}

/*
 * What a merge into a backing file needs on a confined QEMU: the backing
 * file QEMU opened read-only at start cannot be reopened read-write by path
 * (block-commit: "Permission denied"); a node on an fdset holding a
 * read-only and a read-write descriptor of it, put under the top node by
 * blockdev-reopen, can. QEMU then names the top "json:{...}" and the base
 * "/dev/fdset/N": the disk model still shows both paths.
 */
static void test_commit_into_fd_backing(void)
{
    char base[4096], top[4096], json[8192];
    const char *b = th_qemu_img_create("cbase.qcow2", "16M", NULL);
    REQUIRE(b);
    snprintf(base, sizeof base, "%s", b);
    const char *t = th_qemu_img_create("ctop.qcow2", "16M", base);
    REQUIRE(t);
    snprintf(top, sizeof top, "%s", t);
    th_qemu vm;
    REQUIRE(start_vm(&vm, "commit", top, true));
    snap_qmp *q = connect_vm(&vm);
    REQUIRE(q);
    run_vm(q);
    snap_err err;
    CHECK(write_through_qemu(q, "/machine/peripheral/xvda/virtio-backend", 0x6b));
    /* By path: refused in the chroot. */
    CHECK_INT(snap_qmp_commit_active(q, "xvda-qcow2", NULL, "c0", T_MS, &err),
              SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "Permission denied");
    int ro = open(base, O_RDONLY | O_CLOEXEC), rw = open(base, O_RDWR | O_CLOEXEC);
    REQUIRE(ro >= 0 && rw >= 0);
    char opaque[4200];
    snprintf(opaque, sizeof opaque, "%s%s", SNAP_QMP_FDSET_OPAQUE_PREFIX, base);
    long long set = -1;
    CHECK_INT(snap_qmp_add_fd(q, ro, -1, opaque, &set, NULL, T_MS, &err), 0);
    CHECK_INT(snap_qmp_add_fd(q, rw, set, opaque, NULL, NULL, T_MS, &err), 0);
    close(ro);
    close(rw);
    snprintf(json, sizeof json,
             "{\"driver\": \"qcow2\", \"node-name\": \"xvda-base\", \"read-only\": true, "
             "\"backing\": null, \"file\": {\"driver\": \"file\", \"filename\": "
             "\"/dev/fdset/%lld\"}}",
             set);
    CHECK_INT(execute_json(q, "blockdev-add", json, &err), 0);
    int rc = execute_json(q, "blockdev-reopen",
                          "{\"options\": [{\"driver\": \"qcow2\", \"node-name\": "
                          "\"xvda-qcow2\", \"file\": \"xvda-file\", \"backing\": "
                          "\"xvda-base\"}]}",
                          &err);
    CHECK_INT(rc, 0);
    if (rc)
        th_note("blockdev-reopen: %s", err.msg);
    snap_qmp_disks disks;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    const snap_qmp_disk *d = snap_qmp_disks_find(&disks, "xvda");
    CHECK(d && d->chain_len == 2);
    if (d && d->chain_len == 2) {
        CHECK_STR(d->chain[0].file, top);
        CHECK_STR(d->chain[1].file, base);
    }
    snap_qmp_disks_free(&disks);
    rc = snap_qmp_commit_active(q, "xvda-qcow2", "xvda-base", "c1", T_MS, &err);
    CHECK_INT(rc, 0);
    if (rc)
        th_note("commit: %s", err.msg);
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    d = snap_qmp_disks_find(&disks, "xvda");
    CHECK(d && !strcmp(d->node_name, "xvda-base") && d->chain_len == 1 &&
          !strcmp(d->chain[0].file, base));
    snap_qmp_disks_free(&disks);
    snap_qmp_close(q);
    th_qemu_stop(&vm);
    CHECK(th_qemu_io_reads_pattern(base, 0x6b, "0", "64k"));
}

int main(void)
{
    th_plan(4);
    TH_RUN(test_add_query_remove);
    TH_RUN(test_confined_external_snapshot);
    TH_RUN(test_cleanup_after_refused_transaction);
    TH_RUN(test_commit_into_fd_backing);
    return th_finish();
}
