/*
 * Tests of the QMP client (snap_qmp) against a real qemu-system-x86_64 under
 * TCG (no guest: block layer, run state and migration work without one), real
 * qemu-img/qemu-io for the effects, and scripted fake peers for the faults.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_peer.h"
#include "snap_qmp.h"
#include "th.h"
#include "th_qemu.h"

/* Generous: ASan + TCG on a loaded 2-core machine. */
#define T_MS 20000

/* ------------------------------------------------------------- helpers */

static snap_qmp *connect_or_fail(const char *path)
{
    snap_qmp *q = NULL;
    snap_err err;
    if (snap_qmp_connect(path, T_MS, &q, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "connect %s: %s", path, err.msg);
        return NULL;
    }
    return q;
}

/* A QEMU with a legacy -drive disk (drive0/vda) and a qdisk-style xvda. */
typedef struct two_disks {
    th_qemu vm;
    char a[4096], b[4096];
} two_disks;

static bool start_two_disks(two_disks *t, const char *name)
{
    char an[64], bn[64], *owned[3] = {NULL, NULL, NULL};
    const char *args[16];
    snprintf(an, sizeof an, "%s-a.qcow2", name);
    snprintf(bn, sizeof bn, "%s-b.qcow2", name);
    const char *a = th_qemu_img_create(an, "64M", NULL);
    const char *b = th_qemu_img_create(bn, "64M", NULL);
    if (!a || !b)
        return false;
    snprintf(t->a, sizeof t->a, "%s", a);
    snprintf(t->b, sizeof t->b, "%s", b);
    int n = 0;
    args[n++] = "-drive";
    args[n++] = th_qemu_drive_arg(t->a, "drive0");
    args[n++] = "-device";
    args[n++] = "virtio-blk-pci,drive=drive0,id=vda";
    n += th_qemu_blockdev_args(t->b, "xvda", args + n, owned);
    args[n] = NULL;
    bool ok = n == 10 && th_qemu_start(&t->vm, name, args);
    th_qemu_free_args(owned);
    return ok;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------- connection */

static void test_connect_reads_version_and_status(void)
{
    th_qemu vm;
    REQUIRE(th_qemu_start(&vm, "conn", NULL));
    snap_qmp *q = connect_or_fail(vm.qmp_path);
    REQUIRE(q);
    int major = 0, minor = -1, micro = -1;
    snap_qmp_version(q, &major, &minor, &micro);
    char *out = NULL;
    th_runl(&out, NULL, "qemu-system-x86_64", "--version", (char *)NULL);
    char expect[64];
    snprintf(expect, sizeof expect, "version %d.%d.%d", major, minor, micro);
    CHECK_CONTAINS(out, expect);
    free(out);
    CHECK(snap_qmp_version_at_least(q, major, minor));
    CHECK(!snap_qmp_version_at_least(q, major + 1, 0));
    CHECK(snap_qmp_package(q) != NULL);

    snap_qmp_status st;
    snap_err err;
    CHECK_INT(snap_qmp_query_status(q, &st, T_MS, &err), 0);
    CHECK_STR(st.status, "prelaunch");
    CHECK(!st.running);
    snap_qmp_close(q);
    /* Closing promptly lets the next client in at once. */
    for (int i = 0; i < 3; i++) {
        q = NULL;
        CHECK_INT(snap_qmp_connect(vm.qmp_path, 2000, &q, &err), 0);
        snap_qmp_close(q);
    }
    th_qemu_stop(&vm);
}

static void test_second_client_times_out_on_greeting(void)
{
    th_qemu vm;
    REQUIRE(th_qemu_start(&vm, "busy", NULL));
    snap_qmp *first = connect_or_fail(vm.qmp_path);
    REQUIRE(first);
    snap_qmp *second = NULL;
    snap_err err;
    CHECK_INT(snap_qmp_connect(vm.qmp_path, 300, &second, &err), SNAP_ERROR_TIMEDOUT);
    CHECK(second == NULL);
    CHECK_CONTAINS(err.msg, "no greeting within 300 ms");
    CHECK_CONTAINS(err.msg, "another client");
    snap_qmp_close(first);
    th_qemu_stop(&vm);
}

static void test_missing_socket_is_not_found(void)
{
    snap_qmp *q = NULL;
    snap_err err;
    CHECK_INT(snap_qmp_connect(th_path("nobody.qmp"), 500, &q, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "nobody.qmp");
}

static void test_peer_error_is_verbatim(void)
{
    th_qemu vm;
    REQUIRE(th_qemu_start(&vm, "err", NULL));
    snap_qmp *q = connect_or_fail(vm.qmp_path);
    REQUIRE(q);
    snap_err err;
    yajl_val ret = NULL;
    CHECK_INT(snap_qmp_execute(q, "no-such-command", NULL, NULL, &ret, T_MS, &err),
              SNAP_ERROR_PEER);
    CHECK(ret == NULL);
    CHECK_STR(err.msg,
              "QMP no-such-command: CommandNotFound: The command no-such-command has not "
              "been found");
    /* The connection stays usable after a peer error. */
    CHECK_INT(snap_qmp_execute(q, "query-name", NULL, NULL, &ret, T_MS, &err), 0);
    CHECK(YAJL_IS_OBJECT(ret));
    yajl_tree_free(ret);
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

/* ------------------------------------------------------------- disks */

static void test_disk_model_drive_and_blockdev(void)
{
    two_disks t;
    REQUIRE(start_two_disks(&t, "model"));
    snap_qmp *q = connect_or_fail(t.vm.qmp_path);
    REQUIRE(q);
    snap_qmp_disks disks;
    snap_err err;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    CHECK_INT(disks.n, 2);

    const snap_qmp_disk *a = snap_qmp_disks_find(&disks, "drive0");
    REQUIRE(a);
    CHECK_STR(a->device, "drive0");
    CHECK(a->node_name[0] != '\0');
    CHECK_STR(snap_qmp_disk_target(a), "drive0");
    CHECK_INT(a->chain_len, 1);
    CHECK_STR(a->chain[0].file, t.a);
    CHECK_STR(a->chain[0].format, "qcow2");
    CHECK_STR(a->chain[0].node_name, a->node_name);
    CHECK(!a->read_only);
    CHECK(snap_qmp_disks_find(&disks, "vda") == a); /* qdev id */

    const snap_qmp_disk *b = snap_qmp_disks_find(&disks, "xvda-qcow2");
    REQUIRE(b);
    CHECK_STR(b->device, "");
    CHECK_STR(b->node_name, "xvda-qcow2");
    CHECK_STR(snap_qmp_disk_target(b), "xvda-qcow2");
    CHECK_INT(b->chain_len, 1);
    CHECK_STR(b->chain[0].file, t.b);
    CHECK_INT(b->chain[0].n_snapshots, 0);
    CHECK(snap_qmp_disks_find(&disks, "xvda") == b);
    CHECK(snap_qmp_disks_find(&disks, "xvd") == NULL);
    CHECK(snap_qmp_disks_find(&disks, "") == NULL);
    snap_qmp_disks_free(&disks);
    snap_qmp_close(q);
    th_qemu_stop(&t.vm);
}

static void test_internal_transaction_is_atomic(void)
{
    two_disks t;
    REQUIRE(start_two_disks(&t, "internal"));
    snap_qmp *q = connect_or_fail(t.vm.qmp_path);
    REQUIRE(q);
    snap_err err;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_internal(tx, "drive0", "snap1");
    snap_qmp_tx_add_internal(tx, "xvda-qcow2", "snap1");
    CHECK_INT(snap_qmp_tx_len(tx), 2);
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), 0);
    snap_qmp_tx_free(tx);
    CHECK(th_qemu_img_has_snapshot(t.a, "snap1"));
    CHECK(th_qemu_img_has_snapshot(t.b, "snap1"));

    /* snap2 would be new on drive0 but snap1 exists on xvda: nothing applies. */
    tx = snap_qmp_tx_new();
    snap_qmp_tx_add_internal(tx, "drive0", "snap2");
    snap_qmp_tx_add_internal(tx, "xvda-qcow2", "snap1");
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), SNAP_ERROR_PEER);
    snap_qmp_tx_free(tx);
    CHECK_STR(err.msg,
              "QMP transaction: GenericError: Snapshot with name 'snap1' already "
              "exists on device 'xvda-qcow2'");
    CHECK(!th_qemu_img_has_snapshot(t.a, "snap2"));

    snap_qmp_disks disks;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    const snap_qmp_disk *b = snap_qmp_disks_find(&disks, "xvda");
    REQUIRE(b);
    const snap_qmp_snapshot *s = snap_qmp_disk_find_snapshot(b, "snap1");
    REQUIRE(s);
    CHECK_STR(s->id, "1");
    CHECK_INT(s->vm_state_size, 0);
    CHECK(s->date_sec > 1600000000);
    CHECK(snap_qmp_disk_find_snapshot(b, "snap2") == NULL);
    snap_qmp_disks_free(&disks);

    CHECK_INT(snap_qmp_delete_internal(q, "drive0", "snap1", T_MS, &err), 0);
    CHECK(!th_qemu_img_has_snapshot(t.a, "snap1"));
    CHECK(th_qemu_img_has_snapshot(t.b, "snap1"));
    CHECK_INT(snap_qmp_delete_internal(q, "drive0", "snap1", T_MS, &err),
              SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "QMP blockdev-snapshot-delete-internal-sync: GenericError: "
                            "Snapshot with id 'null' and name 'snap1' does not exist");
    snap_qmp_close(q);
    th_qemu_stop(&t.vm);
}

static void test_transaction_refuses_bad_actions(void)
{
    snap_err err;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    /* Checked before any connection is used, so no QEMU is needed. */
    CHECK_INT(snap_qmp_transaction(NULL, tx, T_MS, &err), SNAP_ERROR_INVAL);
    snap_qmp_tx_add_external(tx, "drive0", NULL, NULL, "relative.qcow2", "qcow2");
    CHECK_INT(snap_qmp_transaction(NULL, tx, T_MS, &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "absolute overlay path");
    snap_qmp_tx_free(tx);

    const char *existing = th_path("existing.qcow2");
    REQUIRE(th_write_file(existing, "precious"));
    tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, "drive0", NULL, NULL, existing, "qcow2");
    CHECK_INT(snap_qmp_transaction(NULL, tx, T_MS, &err), SNAP_ERROR_EXISTS);
    CHECK_CONTAINS(err.msg, "already exists");
    snap_qmp_tx_free(tx);
    char *text = th_read_file(existing);
    CHECK_STR(text, "precious");
    free(text);
}

/* Checks `qemu-img info --backing-chain` lists exactly files[0..n). */
static void check_img_chain(const char *top, const char *const files[], size_t n)
{
    char *json = th_qemu_img_info_chain(top);
    snap_err err;
    yajl_val v = json ? snap_json_parse(json, "qemu-img info", &err) : NULL;
    CHECK_INT(snap_json_array_len(v), n);
    for (size_t i = 0; i < n && i < snap_json_array_len(v); i++)
        CHECK_STR(snap_json_get_string(snap_json_array_at(v, i), "filename"), files[i]);
    yajl_tree_free(v);
    free(json);
}

static void test_external_transaction_builds_chains(void)
{
    two_disks t;
    REQUIRE(start_two_disks(&t, "external"));
    snap_qmp *q = connect_or_fail(t.vm.qmp_path);
    REQUIRE(q);
    char ova[4096], ovb[4096], ovc[4096];
    snprintf(ova, sizeof ova, "%s", th_path("external-a.ovl1.qcow2"));
    snprintf(ovb, sizeof ovb, "%s", th_path("external-b.ovl1.qcow2"));
    snprintf(ovc, sizeof ovc, "%s", th_path("external-a.ovl2.qcow2"));
    snap_err err;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, "drive0", NULL, NULL, ova, "qcow2");
    snap_qmp_tx_add_external(tx, NULL, "xvda-qcow2", "xvda-ovl1", ovb, "qcow2");
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), 0);
    snap_qmp_tx_free(tx);
    CHECK(file_exists(ova) && file_exists(ovb));

    snap_qmp_disks disks;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    const snap_qmp_disk *a = snap_qmp_disks_find(&disks, "drive0");
    const snap_qmp_disk *b = snap_qmp_disks_find(&disks, "xvda");
    REQUIRE(a && b);
    REQUIRE(a->chain_len == 2 && b->chain_len == 2);
    CHECK_STR(a->chain[0].file, ova);
    CHECK_STR(a->chain[1].file, t.a);
    CHECK(a->chain[1].node_name != NULL);
    CHECK_STR(b->node_name, "xvda-ovl1");
    CHECK_STR(b->chain[0].file, ovb);
    CHECK_STR(b->chain[1].file, t.b);
    CHECK_STR(b->chain[1].node_name, "xvda-qcow2");
    CHECK(snap_qmp_disks_find(&disks, "xvda-qcow2") == b);
    snap_qmp_disks_free(&disks);
    check_img_chain(ova, (const char *const[]){ova, t.a}, 2);
    check_img_chain(ovb, (const char *const[]){ovb, t.b}, 2);

    /* Second action reuses node-name xvda-ovl1: rejected, and the overlay the
     * first action already created is removed. */
    tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, "drive0", NULL, NULL, ovc, "qcow2");
    snap_qmp_tx_add_external(tx, NULL, "xvda-ovl1", "xvda-ovl1", th_path("x.qcow2"),
                             "qcow2");
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), SNAP_ERROR_PEER);
    snap_qmp_tx_free(tx);
    CHECK_STR(err.msg,
              "QMP transaction: GenericError: New overlay node-name already in use");
    CHECK(!file_exists(ovc));
    check_img_chain(ova, (const char *const[]){ova, t.a}, 2);

    /* A file name too long for the file system: QEMU could not create it, so
     * no "leftover overlay ... not removed" (issue 15, fault 3). */
    char too_long[4096];
    snprintf(too_long, sizeof too_long, "%s/%0300d.qcow2", th_tmpdir(), 0);
    tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, "drive0", NULL, NULL, too_long, "qcow2");
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), SNAP_ERROR_PEER);
    snap_qmp_tx_free(tx);
    CHECK_CONTAINS(err.msg, "File name too long");
    if (strstr(err.msg, "leftover"))
        th_fail_at(__FILE__, __LINE__, "a leftover reported: %s", err.msg);
    snap_qmp_close(q);
    th_qemu_stop(&t.vm);
}

/* ------------------------------------------------------------- run state */

static void test_stop_cont_with_events(void)
{
    th_qemu vm;
    REQUIRE(th_qemu_start(&vm, "runstate", NULL));
    snap_qmp *q = connect_or_fail(vm.qmp_path);
    REQUIRE(q);
    snap_err err;
    snap_qmp_status st;
    snap_qmp_event *ev = NULL;
    CHECK_INT(snap_qmp_cont(q, T_MS, &err), 0);
    CHECK_INT(snap_qmp_wait_event(q, "RESUME", NULL, NULL, T_MS, &ev, &err), 0);
    CHECK(ev && ev->seconds > 0);
    snap_qmp_event_free(ev);
    CHECK_INT(snap_qmp_query_status(q, &st, T_MS, &err), 0);
    CHECK(st.running);
    CHECK_STR(st.status, "running");

    CHECK_INT(snap_qmp_stop(q, T_MS, &err), 0);
    /* STOP arrives before stop's reply: it is already queued. */
    CHECK(snap_qmp_events_queued(q) >= 1);
    CHECK_INT(snap_qmp_wait_event(q, "STOP", NULL, NULL, 0, &ev, &err), 0);
    snap_qmp_event_free(ev);
    CHECK_INT(snap_qmp_query_status(q, &st, T_MS, &err), 0);
    CHECK(!st.running);
    CHECK_STR(st.status, "paused");

    CHECK_INT(snap_qmp_wait_event(q, "SHUTDOWN", NULL, NULL, 100, &ev, &err),
              SNAP_ERROR_TIMEDOUT);
    CHECK(ev == NULL);
    CHECK_CONTAINS(err.msg, "no SHUTDOWN event within 100 ms");
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

/* ------------------------------------------------------------- migration */

typedef struct progress_log {
    int calls;
    uint64_t last_transferred, last_total;
} progress_log;

static void record_progress(uint64_t transferred, uint64_t total, void *opaque)
{
    progress_log *p = opaque;
    p->calls++;
    p->last_transferred = transferred;
    p->last_total = total;
}

static void test_migrate_to_file(void)
{
    th_qemu vm;
    REQUIRE(th_qemu_start(&vm, "migrate", NULL));
    snap_qmp *q = connect_or_fail(vm.qmp_path);
    REQUIRE(q);
    snap_err err;
    CHECK_INT(snap_qmp_stop(q, T_MS, &err), 0);

    /* A read-only fd: QEMU's writes fail, and it says why. */
    const char *ro = th_path("readonly.state");
    REQUIRE(th_write_file(ro, ""));
    int fd = open(ro, O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK_INT(snap_qmp_migrate_to_fd(q, fd, NULL, NULL, T_MS, &err), SNAP_ERROR_PEER);
    close(fd);
    CHECK_CONTAINS(err.msg, "QMP migrate: migration failed: ");

    const char *path = th_path("mem.state");
    progress_log p = {0, 0, 0};
    int rc = snap_qmp_migrate_to_file(q, path, record_progress, &p, T_MS, &err);
    CHECK_INT(rc, 0);
    if (rc)
        th_note("%s", err.msg);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(p.calls >= 1);
    CHECK(p.last_total > 0);
    CHECK(p.last_transferred > 0);
    snap_qmp_status status;
    CHECK_INT(snap_qmp_query_status(q, &status, T_MS, &err), 0);
    CHECK_STR(status.status, "postmigrate");

    /* The file exists now: refused, and kept. */
    CHECK_INT(snap_qmp_migrate_to_file(q, path, NULL, NULL, T_MS, &err),
              SNAP_ERROR_EXISTS);
    CHECK(stat(path, &st) == 0 && st.st_size > 0);
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

/* ------------------------------------------------------------- jobs */

static void hmp(snap_qmp *q, const char *command_line)
{
    snap_err err;
    yajl_val ret = NULL;
    char *doc = NULL;
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "command-line", command_line);
    yajl_gen_map_close(g);
    doc = snap_json_gen_finish(g, NULL);
    yajl_val args = snap_json_parse(doc, "hmp args", &err);
    CHECK_INT(snap_qmp_execute_tree(q, "human-monitor-command", args, &ret, T_MS, &err),
              0);
    /* HMP reports its own failures as text. */
    CHECK_STR(YAJL_IS_STRING(ret) ? ret->u.string : "(not a string)", "");
    yajl_tree_free(ret);
    yajl_tree_free(args);
    free(doc);
}

static void test_commit_active_legacy_drive(void)
{
    th_qemu vm;
    const char *base = th_qemu_img_create("commit-base.qcow2", "16M", NULL);
    REQUIRE(base);
    char basep[4096], ovl[4096];
    snprintf(basep, sizeof basep, "%s", base);
    snprintf(ovl, sizeof ovl, "%s", th_path("commit-ovl.qcow2"));
    const char *args[] = {"-drive", th_qemu_drive_arg(basep, "drive0"), "-device",
                          "virtio-blk-pci,drive=drive0,id=vda", NULL};
    REQUIRE(th_qemu_start(&vm, "commit", args));
    snap_qmp *q = connect_or_fail(vm.qmp_path);
    REQUIRE(q);
    snap_err err;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, "drive0", NULL, NULL, ovl, "qcow2");
    CHECK_INT(snap_qmp_transaction(q, tx, T_MS, &err), 0);
    snap_qmp_tx_free(tx);
    hmp(q, "qemu-io drive0 \"write -P 0x5a 0 64k\"");
    hmp(q, "qemu-io drive0 flush"); /* so qemu-io -U below sees the metadata */
    CHECK(th_qemu_io_reads_pattern(ovl, 0x5a, "0", "64k"));
    CHECK(!th_qemu_io_reads_pattern(basep, 0x5a, "0", "64k"));

    int rc = snap_qmp_commit_active(q, "drive0", NULL, "commit-drive0", T_MS, &err);
    CHECK_INT(rc, 0);
    if (rc)
        th_note("%s", err.msg);
    CHECK(th_qemu_io_reads_pattern(basep, 0x5a, "0", "64k"));
    snap_qmp_disks disks;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    REQUIRE(disks.n == 1);
    CHECK_INT(disks.disk[0].chain_len, 1);
    CHECK_STR(disks.disk[0].chain[0].file, basep);
    snap_qmp_disks_free(&disks);
    snap_qmp_job job;
    CHECK_INT(snap_qmp_query_job(q, "commit-drive0", &job, T_MS, &err),
              SNAP_ERROR_NOTFOUND);
    snap_qmp_job_clear(&job);

    /* Nothing left to commit: QEMU's refusal comes through, naming the disk. */
    CHECK_INT(snap_qmp_commit_active(q, "drive0", NULL, "commit-again", T_MS, &err),
              SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "disk drive0: QMP block-commit: GenericError: ");
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

static void test_commit_active_qdisk_chain(void)
{
    /* A chain built offline (data in the overlay), opened the way qdisk does. */
    const char *b = th_qemu_img_create("qd-base.qcow2", "16M", NULL);
    REQUIRE(b);
    char base[4096], top[4096], *owned[3] = {NULL, NULL, NULL};
    snprintf(base, sizeof base, "%s", b);
    const char *t = th_qemu_img_create("qd-top.qcow2", "16M", base);
    REQUIRE(t);
    snprintf(top, sizeof top, "%s", t);
    CHECK_INT(th_runl(NULL, NULL, "qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 1M 64k",
                      top, (char *)NULL),
              0);
    const char *args[7];
    REQUIRE(th_qemu_blockdev_args(top, "xvda", args, owned) == 6);
    args[6] = NULL;
    th_qemu vm;
    bool started = th_qemu_start(&vm, "qdisk", args);
    th_qemu_free_args(owned);
    REQUIRE(started);
    snap_qmp *q = connect_or_fail(vm.qmp_path);
    REQUIRE(q);
    snap_err err;
    snap_qmp_disks disks;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    REQUIRE(disks.n == 1 && disks.disk[0].chain_len == 2);
    CHECK_STR(disks.disk[0].chain[1].file, base);
    CHECK(disks.disk[0].chain[1].node_name != NULL); /* QEMU's automatic name */
    snap_qmp_disks_free(&disks);

    int rc = snap_qmp_commit_active(q, "xvda-qcow2", NULL, "commit-xvda", T_MS, &err);
    CHECK_INT(rc, 0);
    if (rc)
        th_note("%s", err.msg);
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    REQUIRE(disks.n == 1);
    CHECK_INT(disks.disk[0].chain_len, 1);
    CHECK_STR(disks.disk[0].chain[0].file, base);
    snap_qmp_disks_free(&disks);
    snap_qmp_close(q);
    th_qemu_stop(&vm);
    CHECK(th_qemu_io_reads_pattern(base, 0xa5, "1M", "64k"));
}

/* ------------------------------------------------------------- fake peers */

#define GREETING                                                                         \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 1, \"minor\": 2, \"major\": 8}, "    \
    "\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\n"
#define NEGOTIATE                                                                        \
    FP_SEND(GREETING), FP_EXPECT("qmp_capabilities"),                                    \
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n")
#define EVENT(name)                                                                      \
    "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"" name          \
    "\", \"data\": {\"n\": 1}}\n"

static fake_peer *start_peer(const char *name, const fake_step *steps, size_t n)
{
    return fake_peer_start(th_path(name), steps, n);
}

static void test_fake_garbage_greeting(void)
{
    static const fake_step script[] = {FP_SEND("{\"hello\": \"not qmp\"}\n"),
                                       FP_SLEEP(-1)};
    fake_peer *fp = start_peer("garbage.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = NULL;
    snap_err err;
    CHECK_INT(snap_qmp_connect(th_path("garbage.sock"), 2000, &q, &err),
              SNAP_ERROR_PROTOCOL);
    CHECK(q == NULL);
    CHECK_CONTAINS(err.msg, "not a QMP greeting: {\"hello\": \"not qmp\"}");
    fake_peer_free(fp);

    static const fake_step binary[] = {FP_SEND("\x01\x02 junk\n"), FP_SLEEP(-1)};
    fp = start_peer("binary.sock", binary, FP_N(binary));
    REQUIRE(fp);
    CHECK_INT(snap_qmp_connect(th_path("binary.sock"), 2000, &q, &err),
              SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "not a QMP greeting");
    fake_peer_free(fp);
}

static void test_fake_version_parsed(void)
{
    static const fake_step script[] = {NEGOTIATE};
    fake_peer *fp = start_peer("version.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("version.sock"));
    REQUIRE(q);
    int major, minor, micro;
    snap_qmp_version(q, &major, &minor, &micro);
    CHECK_INT(major, 8);
    CHECK_INT(minor, 2);
    CHECK_INT(micro, 1);
    CHECK_STR(snap_qmp_package(q), "fake");
    CHECK(fake_peer_wait(fp, 2000));
    /* The command went out as {"execute": ..., "id": "libsnap-1"}. */
    snap_err err;
    yajl_val sent = snap_json_parse(fake_peer_received(fp, 0), "sent", &err);
    CHECK_STR(snap_json_get_string(sent, "execute"), "qmp_capabilities");
    CHECK_STR(snap_json_get_string(sent, "id"), "libsnap-1");
    yajl_tree_free(sent);
    snap_qmp_close(q);
    fake_peer_free(fp);
}

static void test_fake_hang_then_stale_reply(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("query-status"),
        FP_SLEEP(300), /* the client gives up after 100 ms */
        FP_SEND(
            "{\"return\": {\"status\": \"stale\", \"running\": true}, \"id\": %ID%}\n"),
        FP_EXPECT("query-status"),
        FP_SEND(
            "{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": %ID%}\n"),
        FP_EXPECT("query-status"),
        FP_SLEEP(-1), /* and then never again */
    };
    fake_peer *fp = start_peer("hang.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("hang.sock"));
    REQUIRE(q);
    snap_err err;
    snap_qmp_status st;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_qmp_query_status(q, &st, 100, &err), SNAP_ERROR_TIMEDOUT);
    CHECK(snap_now_ms() - t0 < 1000);
    CHECK_CONTAINS(err.msg, "QMP query-status: QMP ");
    CHECK_CONTAINS(err.msg, "sent no reply within 100 ms");
    /* The late reply to the first command is recognised by its id and dropped. */
    CHECK_INT(snap_qmp_query_status(q, &st, 2000, &err), 0);
    CHECK_STR(st.status, "paused");
    CHECK_INT(snap_qmp_query_status(q, &st, 150, &err), SNAP_ERROR_TIMEDOUT);
    snap_qmp_close(q);
    fake_peer_free(fp);
}

/*
 * Issue 18: a transaction whose answer comes late. The client gives up
 * (the window's time ran out), and snap_qmp_transaction_await then takes
 * QEMU's late answer: a success, and a rejection that removes the overlay
 * QEMU left behind. No late reply pending: refused.
 */
static void test_fake_transaction_answer_late(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("\"transaction\""),
        FP_SLEEP(400), /* the client gives up after 100 ms */
        FP_SEND("{\"event\": \"X\", \"data\": {}, \"timestamp\": {\"seconds\": 1, "
                "\"microseconds\": 2}}\n"),
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
        FP_EXPECT("\"transaction\""),
        FP_SLEEP(300),
        FP_SEND("{\"id\": %ID%, \"error\": {\"class\": \"GenericError\", \"desc\": "
                "\"late no\"}}\n"),
        FP_SLEEP(-1),
    };
    fake_peer *fp = start_peer("late.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("late.sock"));
    REQUIRE(q);
    snap_err err;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_internal(tx, "drive0", "s1");
    CHECK_INT(snap_qmp_transaction_await(q, tx, 100, &err), SNAP_ERROR_INVAL);
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_qmp_transaction(q, tx, 100, &err), SNAP_ERROR_TIMEDOUT);
    CHECK(snap_now_ms() - t0 < 300);
    CHECK_INT(snap_qmp_transaction_await(q, tx, 5000, &err), 0);
    CHECK(snap_now_ms() - t0 >= 400);
    CHECK_INT(snap_qmp_transaction_await(q, tx, 100, &err), SNAP_ERROR_INVAL);
    snap_qmp_tx_free(tx);
    /* A late rejection: the overlay QEMU made for it is removed. */
    const char *ovl = th_path("late.ovl.qcow2");
    tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, NULL, "xvda-qcow2", "xvda-ovl1", ovl, "qcow2");
    CHECK_INT(snap_qmp_transaction(q, tx, 100, &err), SNAP_ERROR_TIMEDOUT);
    int fd = open(ovl, O_CREAT | O_WRONLY, 0600); /* as QEMU would have */
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(snap_qmp_transaction_await(q, tx, 50, &err), SNAP_ERROR_TIMEDOUT);
    CHECK_CONTAINS(err.msg, "sent no reply within 50 ms more");
    CHECK_INT(snap_qmp_transaction_await(q, tx, 5000, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "QMP transaction: GenericError: late no");
    CHECK(access(ovl, F_OK) != 0);
    snap_qmp_tx_free(tx);
    snap_qmp_close(q);
    CHECK(fake_peer_wait(fp, 100) || fake_peer_steps_done(fp) == FP_N(script) - 1);
    fake_peer_free(fp);
}

static void test_fake_wrong_id_before_reply(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("query-name"),
        FP_SEND("{\"return\": {\"name\": \"old\"}, \"id\": \"libsnap-999\"}\n"),
        FP_SEND("{\"return\": {\"name\": \"noid\"}}\n"),
        FP_SEND("{\"return\": {\"name\": \"new\"}, \"id\": %ID%}\n"),
    };
    fake_peer *fp = start_peer("stale.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("stale.sock"));
    REQUIRE(q);
    snap_err err;
    yajl_val ret = NULL;
    CHECK_INT(snap_qmp_execute(q, "query-name", NULL, NULL, &ret, 2000, &err), 0);
    CHECK_STR(snap_json_get_string(ret, "name"), "new");
    yajl_tree_free(ret);
    snap_qmp_close(q);
    fake_peer_free(fp);
}

static void test_fake_close_mid_line(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("query-status"),
        FP_SEND("{\"return\": {\"status\": \"runn"),
        FP_CLOSE(),
    };
    fake_peer *fp = start_peer("cut.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("cut.sock"));
    REQUIRE(q);
    snap_err err;
    snap_qmp_status st;
    CHECK_INT(snap_qmp_query_status(q, &st, 2000, &err), SNAP_ERROR_CLOSED);
    CHECK_CONTAINS(err.msg, "QMP query-status: ");
    CHECK_CONTAINS(err.msg, "closed the connection in the middle of a line");
    /* Further use fails at once, clearly. */
    CHECK_INT(snap_qmp_stop(q, 2000, &err), SNAP_ERROR_CLOSED);
    CHECK_CONTAINS(err.msg, "QMP stop: ");
    CHECK_CONTAINS(err.msg, "unusable after an earlier error");
    snap_qmp_close(q);
    fake_peer_free(fp);
}

static void test_fake_events_between_replies(void)
{
    static const fake_step script[] = {
        FP_SEND(GREETING),
        FP_EXPECT("qmp_capabilities"),
        FP_SEND(EVENT("E1")),
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
        FP_SEND(EVENT("E2")),
        FP_EXPECT("stop"),
        FP_SEND(EVENT("STOP")),
        FP_SEND(EVENT("E3")),
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
        FP_SEND(EVENT("E4")),
        FP_EXPECT("cont"),
        FP_SEND(EVENT("RESUME")),
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
        FP_SLEEP(200),
        FP_SEND(EVENT("LATE")),
    };
    fake_peer *fp = start_peer("events.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("events.sock"));
    REQUIRE(q);
    snap_err err;
    CHECK_INT(snap_qmp_stop(q, 2000, &err), 0);
    CHECK_INT(snap_qmp_cont(q, 2000, &err), 0);
    /* Taking STOP out of the middle keeps the others in order. */
    snap_qmp_event *ev = NULL;
    CHECK_INT(snap_qmp_wait_event(q, "STOP", NULL, NULL, 0, &ev, &err), 0);
    CHECK(ev && ev->seconds == 1 && ev->microseconds == 2);
    long long n = 0;
    CHECK(ev && snap_json_get_int(ev->data, "n", &n) && n == 1);
    snap_qmp_event_free(ev);
    CHECK_INT(snap_qmp_wait_event(q, "LATE", NULL, NULL, 2000, &ev, &err), 0);
    snap_qmp_event_free(ev);
    static const char *const order[] = {"E1", "E2", "E3", "E4", "RESUME"};
    CHECK_INT(snap_qmp_events_queued(q), 5);
    for (size_t i = 0; i < 5; i++) {
        ev = snap_qmp_next_event(q);
        CHECK_STR(ev ? ev->name : NULL, order[i]);
        snap_qmp_event_free(ev);
    }
    CHECK(snap_qmp_next_event(q) == NULL);
    CHECK_INT(snap_qmp_events_dropped(q), 0);
    CHECK(fake_peer_wait(fp, 2000));
    snap_qmp_close(q);
    fake_peer_free(fp);
}

static void test_fake_idless_parse_error(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("query-status"),
        FP_SEND("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, "
                "expecting value\"}}\n"),
    };
    fake_peer *fp = start_peer("parse.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("parse.sock"));
    REQUIRE(q);
    snap_err err;
    snap_qmp_status st;
    CHECK_INT(snap_qmp_query_status(q, &st, 2000, &err), SNAP_ERROR_PEER);
    CHECK_STR(err.msg,
              "QMP query-status: GenericError: JSON parse error, expecting value");
    snap_qmp_close(q);
    fake_peer_free(fp);
}

static void test_fake_huge_reply_is_refused(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("query-block"),
        FP_SEND("{\"return\": \""),
        FP_FILL("x", 20u << 20),
        FP_SEND("\"}\n"),
    };
    fake_peer *fp = start_peer("huge.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("huge.sock"));
    REQUIRE(q);
    snap_err err;
    snap_qmp_disks disks;
    CHECK_INT(snap_qmp_query_disks(q, &disks, 10000, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "QMP query-block: ");
    CHECK_CONTAINS(err.msg, "sent a line longer than 8388608 bytes");
    CHECK_INT(disks.n, 0);
    CHECK_INT(snap_qmp_stop(q, 100, &err), SNAP_ERROR_CLOSED);
    snap_qmp_close(q);
    fake_peer_free(fp);
}

static void test_fake_unexpected_messages(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("query-status"),
        FP_SEND("{\"surprise\": true}\n"),
    };
    fake_peer *fp = start_peer("odd.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("odd.sock"));
    REQUIRE(q);
    snap_err err;
    snap_qmp_status st;
    CHECK_INT(snap_qmp_query_status(q, &st, 2000, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "unexpected message: {\"surprise\": true}");
    snap_qmp_close(q);
    fake_peer_free(fp);
}

static void test_fake_event_flood_is_bounded(void)
{
    /* More events than the queue keeps, in one burst, and nothing else. */
    size_t n_events = SNAP_QMP_MAX_EVENTS + 100, one = strlen(EVENT("FLOOD"));
    char *burst = malloc(n_events * one + 1);
    REQUIRE(burst);
    for (size_t i = 0; i < n_events; i++)
        memcpy(burst + i * one, EVENT("FLOOD"), one);
    burst[n_events * one] = '\0';
    fake_step script[] = {NEGOTIATE, FP_SEND(burst), FP_SLEEP(-1)};
    fake_peer *fp = start_peer("flood.sock", script, FP_N(script));
    free(burst);
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("flood.sock"));
    REQUIRE(q);
    snap_err err;
    snap_qmp_event *ev = NULL;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_qmp_wait_event(q, "NEVER", NULL, NULL, 300, &ev, &err),
              SNAP_ERROR_TIMEDOUT);
    CHECK(snap_now_ms() - t0 < 3000); /* the flood does not extend the wait */
    CHECK(ev == NULL);
    /* Slow machines (valgrind) may not have read everything yet. */
    for (int i = 0;
         i < 100 && snap_qmp_events_queued(q) + snap_qmp_events_dropped(q) < n_events;
         i++)
        CHECK_INT(snap_qmp_poll_events(q, 200, &err), 0);
    CHECK_INT(snap_qmp_events_queued(q), SNAP_QMP_MAX_EVENTS);
    CHECK_INT(snap_qmp_events_dropped(q), 100);
    snap_qmp_close(q);
    fake_peer_free(fp);
}

#define JOB_CONCLUDED_WITH_ERROR                                                         \
    "{\"return\": [{\"current-progress\": 0, \"status\": \"concluded\", "                \
    "\"total-progress\": 10, \"type\": \"commit\", \"id\": \"j1\", "                     \
    "\"error\": \"Input/output error\"}], \"id\": %ID%}\n"

static void test_fake_commit_job_failure_is_reported_and_dismissed(void)
{
    static const fake_step script[] = {
        NEGOTIATE,
        FP_EXPECT("block-commit"),
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
        FP_EXPECT("query-jobs"),
        FP_SEND(JOB_CONCLUDED_WITH_ERROR),
        FP_EXPECT("query-jobs"), /* cleanup: look before acting */
        FP_SEND(JOB_CONCLUDED_WITH_ERROR),
        FP_EXPECT("query-jobs"),
        FP_SEND(JOB_CONCLUDED_WITH_ERROR),
        FP_EXPECT("job-dismiss"),
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
    };
    fake_peer *fp = start_peer("job.sock", script, FP_N(script));
    REQUIRE(fp);
    snap_qmp *q = connect_or_fail(th_path("job.sock"));
    REQUIRE(q);
    snap_err err;
    CHECK_INT(snap_qmp_commit_active(q, "xvda-qcow2", NULL, "j1", 5000, &err),
              SNAP_ERROR_PEER);
    CHECK_STR(err.msg, "disk xvda-qcow2: commit: job j1 concluded before reaching ready: "
                       "Input/output error");
    CHECK(fake_peer_wait(fp, 2000));
    CHECK_INT(fake_peer_count_received(fp, "job-cancel"), 0);
    snap_err perr;
    yajl_val sent = snap_json_parse(fake_peer_received(fp, 1), "block-commit", &perr);
    yajl_val args = snap_json_get_object(sent, "arguments");
    CHECK_STR(snap_json_get_string(args, "job-id"), "j1");
    CHECK_STR(snap_json_get_string(args, "device"), "xvda-qcow2");
    bool auto_dismiss = true;
    CHECK(snap_json_get_bool(args, "auto-dismiss", &auto_dismiss) && !auto_dismiss);
    yajl_tree_free(sent);
    snap_qmp_close(q);
    fake_peer_free(fp);
}

int main(void)
{
    th_plan(24);
    TH_RUN(test_missing_socket_is_not_found);
    TH_RUN(test_transaction_refuses_bad_actions);
    TH_RUN(test_fake_garbage_greeting);
    TH_RUN(test_fake_version_parsed);
    TH_RUN(test_fake_hang_then_stale_reply);
    TH_RUN(test_fake_transaction_answer_late);
    TH_RUN(test_fake_wrong_id_before_reply);
    TH_RUN(test_fake_close_mid_line);
    TH_RUN(test_fake_events_between_replies);
    TH_RUN(test_fake_idless_parse_error);
    TH_RUN(test_fake_huge_reply_is_refused);
    TH_RUN(test_fake_unexpected_messages);
    TH_RUN(test_fake_event_flood_is_bounded);
    TH_RUN(test_fake_commit_job_failure_is_reported_and_dismissed);
    TH_RUN(test_connect_reads_version_and_status);
    TH_RUN(test_second_client_times_out_on_greeting);
    TH_RUN(test_peer_error_is_verbatim);
    TH_RUN(test_disk_model_drive_and_blockdev);
    TH_RUN(test_internal_transaction_is_atomic);
    TH_RUN(test_external_transaction_builds_chains);
    TH_RUN(test_stop_cont_with_events);
    TH_RUN(test_migrate_to_file);
    TH_RUN(test_commit_active_legacy_drive);
    TH_RUN(test_commit_active_qdisk_chain);
    return th_finish();
}
