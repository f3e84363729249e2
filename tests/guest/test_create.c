/*
 * snapshot-create, -list and -info through the real `xlsnap` command on a
 * domain made by `xlsim create` (issue 5, "Tests"): one booted guest whose
 * writer appends to xvdb serves every case, in order: plan (-N), quiesced
 * internal snapshot with the filesystem inside it proven clean, refusals
 * (name clash, unknown disk, name already in an image, overlay already there)
 * that change nothing, excluded disk, external snapshot (QEMU, xenstore and
 * the libxl config on the overlays, bases clean), list/info output, and last
 * an offline domain snapshotted by qemu-img children.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_json.h"
#include "snap_qmp.h"
#include "th.h"
#include "th_qemu.h"
#include "th_snaptest.h"

#define MIN_RECORDS 10

static th_xlsim_dom g;

/* ------------------------------------------------------------ helpers */

/* Thawed by the agent's own account, and a write in the guest succeeds. */
/* The ext4 in image's internal snapshot name, as a raw file; NULL on failure. */
static const char *snapshot_to_raw(const char *image, const char *name)
{
    const char *raw = th_path(name);
    char *opt = snap_xasprintf("snapshot.name=%s", name);
    char *err = NULL;
    int rc = th_runl(NULL, &err, "qemu-img", "convert", "-U", "-l", opt, "-O", "raw",
                     image, raw, (char *)NULL);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "qemu-img convert -l %s %s: %s", opt, image,
                   err ? err : "");
    free(opt);
    free(err);
    return rc == 0 ? raw : NULL;
}

/* A clean ext4 whose writer log is complete (records as a prefix, none torn). */
static void check_clean_fs(const char *raw, const char *what)
{
    CHECK_INT(th_ext4_needs_recovery(raw), 0);
    CHECK_INT(th_ext4_fsck(raw), 0);
    char *text = th_ext4_cat(raw, "/writer.log");
    th_writer_log log;
    if (!text || !th_writer_log_parse(text, &log))
        th_fail_at(__FILE__, __LINE__, "%s: writer log: %s", what,
                   text ? log.problem : "absent");
    else
        th_note("%s: writer log 1..%ld, complete", what, log.last);
    free(text);
}

/* Runs a command that must fail and leave everything as it was. */
static void check_refused(const char *const argv[], const char *expect)
{
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    th_cmd r;
    th_xlsnapv(&r, argv);
    if (r.rc != 1)
        th_fail_at(__FILE__, __LINE__, "expected exit 1: %s", th_cmd_describe(&r));
    CHECK_CONTAINS(r.err, expect);
    th_cmd_free(&r);
    CHECK_WORLD_KEPT(&g, before);
    CHECK_GUEST_THAWED(&g);
}

/* ------------------------------------------------------------ cases */

static void test_plan_changes_nothing(void)
{
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-create", "-e", "g1", "p1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "xvda", "xvdb", "external", "root.p1.qcow2",
                       "data.p1.qcow2");
    th_cmd_free(&r);
    CHECK_WORLD_KEPT(&g, before);
    CHECK_GUEST_THAWED(&g);
}

static void test_internal_quiesced(void)
{
    th_cmd r;
    XLSNAP_OK(&r, "snapshot-create", "-d", "first one", "g1", "s1");
    CHECK_CONTAINS(r.out, "quiesced");
    th_cmd_free(&r);
    CHECK(th_qemu_img_has_snapshot(g.root, "s1"));
    CHECK(th_qemu_img_has_snapshot(g.data, "s1"));
    CHECK_GUEST_THAWED(&g);
    /* The filesystem inside the snapshot: clean, the writer's log complete. */
    const char *raw = snapshot_to_raw(g.data, "s1");
    if (raw)
        check_clean_fs(raw, "data.qcow2@s1");
    if (raw)
        unlink(raw);
}

static void test_refusals_change_nothing(void)
{
    const char *clash[] = {"snapshot-create", "g1", "s1", NULL};
    check_refused(clash, "already exists");
    const char *unknown[] = {"snapshot-create", "--disks", "xvda,xvdz", "g1", "u1", NULL};
    check_refused(unknown, "xvdz");
    const char *bad_name[] = {"snapshot-create", "-i", "g1", "bad/name", NULL};
    check_refused(bad_name, "bad/name");
}

/* An internal snapshot already in one image (made through QEMU) is refused. */
static void test_name_already_in_image(void)
{
    snap_err err = {0};
    snap_qmp *qmp = NULL;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_internal(tx, "xvdb-qcow2", "q1");
    if (snap_qmp_connect(g.vm.qmp_path, 10000, &qmp, &err) != 0 ||
        snap_qmp_transaction(qmp, tx, 10000, &err) != 0)
        th_fail_at(__FILE__, __LINE__, "QMP internal snapshot: %s", err.msg);
    snap_qmp_close(qmp);
    snap_qmp_tx_free(tx);
    REQUIRE(th_qemu_img_has_snapshot(g.data, "q1"));
    const char *argv[] = {"snapshot-create", "g1", "q1", NULL};
    check_refused(argv, "already has an internal snapshot");
    CHECK(!th_qemu_img_has_snapshot(g.root, "q1"));
}

/* QEMU would silently overwrite an existing overlay: xlsnap refuses. */
static void test_overlay_exists(void)
{
    char *planted = snap_xasprintf("%s/data.o1.qcow2", g.disk_dir);
    REQUIRE(th_write_file(planted, "precious\n"));
    const char *argv[] = {"snapshot-create", "-e", "g1", "o1", NULL};
    check_refused(argv, "already exists");
    char *text = th_read_file(planted);
    CHECK_STR(text, "precious\n");
    free(text);
    unlink(planted);
    free(planted);
}

static void test_excluded_disk(void)
{
    XLSNAP_OK(NULL, "snapshot-create", "--disks", "xvda", "g1", "x1");
    CHECK(th_qemu_img_has_snapshot(g.root, "x1"));
    CHECK(!th_qemu_img_has_snapshot(g.data, "x1"));
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", "--json", "g1", "x1", NULL);
    CHECK_INT(r.rc, 0);
    snap_err err = {0};
    yajl_val v = snap_json_parse(r.out, "snapshot-info --json", &err);
    CHECK(v != NULL);
    yajl_val excluded = snap_json_get_array(v, "excluded_disks");
    CHECK_INT(snap_json_array_len(excluded), 1);
    CHECK_CONTAINS(r.out, "\"xvdb\"");
    yajl_tree_free(v);
    th_cmd_free(&r);
    CHECK_GUEST_THAWED(&g);
}

/* QEMU's active layer of vdev is overlay, backed by base. */
static void check_qemu_on_overlay(const char *node, const char *overlay, const char *base)
{
    snap_err err = {0};
    snap_qmp *qmp = NULL;
    snap_qmp_disks disks = {0};
    if (snap_qmp_connect(g.vm.qmp_path, 10000, &qmp, &err) != 0 ||
        snap_qmp_query_disks(qmp, &disks, 10000, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "QMP: %s", err.msg);
    } else {
        const snap_qmp_disk *d = snap_qmp_disks_find(&disks, node);
        CHECK(d && d->chain_len >= 2);
        if (d && d->chain_len >= 2) {
            CHECK_STR(d->chain[0].file, overlay);
            CHECK_STR(d->chain[1].file, base);
        }
    }
    snap_qmp_disks_free(&disks);
    snap_qmp_close(qmp);
}

static void test_external(void)
{
    XLSNAP_OK(NULL, "snapshot-create", "-e", "g1", "e1");
    char *ov_root = snap_xasprintf("%s/root.e1.qcow2", g.disk_dir);
    char *ov_data = snap_xasprintf("%s/data.e1.qcow2", g.disk_dir);
    CHECK(access(ov_root, F_OK) == 0 && access(ov_data, F_OK) == 0);
    check_qemu_on_overlay("xvda", ov_root, g.root);
    check_qemu_on_overlay("xvdb", ov_data, g.data);
    char *pa = th_xlsim_backend(&g, "xvda", "params");
    char *pb = th_xlsim_backend(&g, "xvdb", "params");
    char *want_a = snap_xasprintf("qcow2:%s", ov_root);
    char *want_b = snap_xasprintf("qcow2:%s", ov_data);
    CHECK_STR(pa, want_a);
    CHECK_STR(pb, want_b);
    char *userdata = th_xlsim_userdata(&g);
    CHECK_CONTAINS(userdata, ov_root);
    CHECK_CONTAINS(userdata, ov_data);
    CHECK_GUEST_THAWED(&g);
    /* The base images, no longer written, hold clean filesystems. */
    const char *raw = th_image_to_raw(g.data);
    if (raw)
        check_clean_fs(raw, "data.qcow2 (base)");
    raw = th_image_to_raw(g.root);
    if (raw)
        CHECK_INT(th_ext4_needs_recovery(raw), 0);
    free(pa), free(pb), free(want_a), free(want_b), free(userdata);
    free(ov_root), free(ov_data);
}

/* The column where name starts on its line of `snapshot-list --tree` (after
 * the "|" and "+-" of the drawing), or -1 when no line names it. */
static int tree_column(const char *out, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = out; *line;) {
        const char *p = line;
        while (*p == ' ' || *p == '|' || *p == '+' || *p == '-')
            p++;
        if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
            return (int)(p - line);
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return -1;
}

/* The element of a --json list whose "name" is name (NULL: none). */
static yajl_val json_snapshot(yajl_val list, const char *name)
{
    for (size_t i = 0; i < snap_json_array_len(list); i++) {
        const char *n = snap_json_get_string(snap_json_array_at(list, i), "name");
        if (n && strcmp(n, name) == 0)
            return snap_json_array_at(list, i);
    }
    return NULL;
}

/* The method of every disk of a --json record is method; their count. */
static size_t json_disks_all(yajl_val snap, const char *method)
{
    yajl_val disks = snap_json_get_array(snap, "disks");
    for (size_t i = 0; i < snap_json_array_len(disks); i++)
        CHECK_STR(snap_json_get_string(snap_json_array_at(disks, i), "method"), method);
    return snap_json_array_len(disks);
}

/* list --json: exactly s1 -> x1 -> e1, each record saying what was made. */
static void check_list_json(const char *out)
{
    snap_err err = {0};
    yajl_val v = snap_json_parse(out, "snapshot-list --json", &err);
    if (!v) {
        th_fail_at(__FILE__, __LINE__, "list --json does not parse: %s", err.msg);
        return;
    }
    CHECK(YAJL_IS_ARRAY(v));
    CHECK_INT(snap_json_array_len(v), 3);
    yajl_val s1 = json_snapshot(v, "s1"), x1 = json_snapshot(v, "x1"),
             e1 = json_snapshot(v, "e1");
    CHECK(s1 && x1 && e1);
    CHECK(YAJL_IS_NULL(snap_json_get(s1, "parent")));
    CHECK_STR(snap_json_get_string(s1, "description"), "first one");
    CHECK_STR(snap_json_get_string(snap_json_get_object(s1, "quiesce"), "state"),
              "quiesced");
    CHECK_INT(json_disks_all(s1, "internal"), 2);
    CHECK_STR(snap_json_get_string(x1, "parent"), "s1");
    CHECK_INT(json_disks_all(x1, "internal"), 1);
    yajl_val excluded = snap_json_get_array(x1, "excluded_disks");
    CHECK_INT(snap_json_array_len(excluded), 1);
    CHECK_STR(YAJL_GET_STRING(snap_json_array_at(excluded, 0)), "xvdb");
    CHECK_STR(snap_json_get_string(e1, "parent"), "x1");
    CHECK_INT(json_disks_all(e1, "external"), 2);
    yajl_tree_free(v);
}

static void test_list_and_info(void)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", "g1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "s1 ");
    CHECK_CONTAINS(r.out, "x1 ");
    CHECK_CONTAINS(r.out, "e1 *");
    CHECK(!strstr(r.out, "q1") && !strstr(r.out, "o1") && !strstr(r.out, "p1"));
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-list", "--tree", "g1", NULL);
    CHECK_INT(r.rc, 0);
    /* A chain: s1 -> x1 -> e1, each drawn deeper than its parent. */
    int s1 = tree_column(r.out, "s1"), x1 = tree_column(r.out, "x1"),
        e1 = tree_column(r.out, "e1");
    CHECK(s1 == 0 && x1 > s1 && e1 > x1);
    if (!(s1 == 0 && x1 > s1 && e1 > x1))
        th_note("tree columns s1 %d, x1 %d, e1 %d in:\n%s", s1, x1, e1, r.out);
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-list", "--json", "g1", NULL);
    CHECK_INT(r.rc, 0);
    check_list_json(r.out);
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", "g1", "s1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "first one");
    CHECK_CONTAINS(r.out, "quiesced");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", "g1", "nosuch", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "nosuch");
    th_cmd_free(&r);
}

/*
 * A quiesced create asks the agent as soon as it holds the domain's lock,
 * before it has read whether the guest runs. Of a paused guest it takes a
 * crash-consistent snapshot, and drops that connection without waiting up
 * to 1 s (SNAP_AGENT_CLOSE_DRAIN_MS) for answers a paused guest cannot
 * give; the agent, asked again once the guest runs, answers in step.
 */
static void test_paused_guest_asked_first(void)
{
    REQUIRE(th_xlsim_pause(&g, true));
    const char *trace = th_path("paused.trace");
    setenv("XLSNAP_TRACE", trace, 1);
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "-q", "best-effort", "g1", "pz1", NULL);
    unsetenv("XLSNAP_TRACE");
    th_note("xlsnap: %s", th_cmd_describe(&r));
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "crash-consistent");
    th_cmd_free(&r);
    unsigned long long asked = th_traced_at(trace, "agent-open"),
                       done = th_traced_at(trace, "exit");
    CHECK(asked && done);
    th_note("agent asked %.1f ms before exit", (done - (double)asked) / 1e6);
    CHECK(done - asked < 900000000ull); /* no 1000 ms drain */
    CHECK(!th_traced_at(trace, "freeze-sent"));
    CHECK(th_xlsim_pause(&g, false));
    CHECK_GUEST_THAWED(&g);
    XLSNAP_OK(&r, "snapshot-create", "-q", "required", "g1", "pz2");
    CHECK_CONTAINS(r.out, "quiesced");
    th_cmd_free(&r);
}

/* Powered off from inside: QEMU is gone, the domain stays; qemu-img does the work. */
static void test_offline(void)
{
    REQUIRE(th_xlsim_poweroff(&g, 30000));
    XLSNAP_OK(NULL, "snapshot-create", "g1", "off1");
    char *a = th_snap_active_image(&g, "xvda"), *b = th_snap_active_image(&g, "xvdb");
    REQUIRE(a && b);
    CHECK(th_qemu_img_has_snapshot(a, "off1"));
    CHECK(th_qemu_img_has_snapshot(b, "off1"));
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", "--json", "g1", "off1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "shut");
    th_cmd_free(&r);
    free(a);
    free(b);
}

int main(void)
{
    th_plan(11);
    th_snap_run_boot(&g, "g1", MIN_RECORDS);
    TH_SNAP_RUN(test_internal_quiesced);
    TH_SNAP_RUN(test_plan_changes_nothing);
    TH_SNAP_RUN(test_refusals_change_nothing);
    TH_SNAP_RUN(test_name_already_in_image);
    TH_SNAP_RUN(test_overlay_exists);
    TH_SNAP_RUN(test_excluded_disk);
    TH_SNAP_RUN(test_external);
    TH_SNAP_RUN(test_list_and_info);
    TH_SNAP_RUN(test_paused_guest_asked_first);
    TH_SNAP_RUN(test_offline);
    return th_snap_finish();
}
