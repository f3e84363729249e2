/*
 * Snapshots of a domain whose device model is deprivileged (issue 19):
 * xlsim's dm_restrict=1 runs QEMU as libxl would (-runas, -chroot to an
 * empty mode-0000 directory, own mount/IPC namespaces), so QEMU cannot open
 * any host path after it started. xlsnap must then pass the overlays of an
 * external snapshot as descriptors; internal snapshots need no new file.
 * A small HVM domain with no guest kernel (its firmware runs) and no agent
 * (--quiesce=off) is enough: everything asserted is QEMU's block graph,
 * the files, xenstore and QEMU's fdsets.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_json.h"
#include "snap_qmp.h"
#include "th.h"
#include "th_qemu.h"
#include "th_qmp_proxy.h"
#include "th_xlsim.h"

#define T_MS 30000

static char dom_name[] = "dp";
static unsigned domid;
static pid_t dm_pid = -1;
static struct passwd nobody;

static int xlsim(char **out, char **err, const char *a, const char *b, const char *c)
{
    return th_runl(out, err, th_build_path("xlsim"), a, b, c, (char *)NULL);
}

/* Two rw qcow2 disks owned by nobody (mode 0640), dm_restrict=1 as nobody. */
static const char *write_config(const char *name, const char *restrict_lines)
{
    char *cfg = snap_xasprintf(
        "name = \"%s\"\ntype = \"hvm\"\nmemory = 128\nvcpus = 1\n"
        "disk = [ 'format=qcow2, vdev=xvda, access=rw, backendtype=qdisk, "
        "target=%s',\n 'format=qcow2, vdev=xvdb, access=rw, backendtype=qdisk, "
        "target=%s' ]\n%s\n",
        name, th_path("a.qcow2"), th_path("b.qcow2"), restrict_lines);
    char file[128];
    snprintf(file, sizeof file, "%s.cfg", name);
    const char *path = th_path(file);
    bool ok = th_write_file(path, cfg);
    free(cfg);
    return ok ? path : NULL;
}

static char *xs_dom(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "/local/domain/%u/%s", domid, rel);
    return th_xs_read(path);
}

/* The image xenstore says the disk runs on ("qcow2:<path>" -> path), malloc'd. */
static char *disk_image(const char *vdev)
{
    char path[256];
    snprintf(path, sizeof path, "/local/domain/0/backend/qdisk/%u/%d/params", domid,
             !strcmp(vdev, "xvda") ? 51712 : 51728);
    char *params = th_xs_read(path);
    char *colon = params ? strchr(params, ':') : NULL;
    char *image = colon ? strdup(colon + 1) : NULL;
    free(params);
    return image;
}

static snap_qmp *connect_dm(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/qmp-libxl-%u", th_xlsim_rundir(), domid);
    snap_qmp *q = NULL;
    snap_err err;
    if (snap_qmp_connect(path, T_MS, &q, &err)) {
        th_note("QMP: %s", err.msg);
        return NULL;
    }
    return q;
}

/* QEMU runs as nobody in <rundir>/qemu-root-<domid>, an empty mode-0000 dir. */
static void test_restricted_like_libxl(void)
{
    char *out = NULL, *err = NULL;
    const char *cfg = write_config(dom_name, "dm_restrict = 1\ndevice_model_user = "
                                             "\"nobody\"");
    REQUIRE(cfg);
    REQUIRE(xlsim(&out, NULL, "create", "-n", cfg) == 0);
    CHECK_CONTAINS(out, "-runas nobody");
    CHECK_CONTAINS(out, "-chroot ");
    free(out);
    int rc = xlsim(NULL, &err, "create", cfg, NULL);
    if (rc)
        th_note("xlsim create: %s", err ? err : "?");
    free(err);
    REQUIRE(rc == 0);
    REQUIRE(xlsim(&out, NULL, "domid", dom_name, NULL) == 0);
    domid = (unsigned)atoi(out);
    free(out);
    char *pid = xs_dom("image/device-model-pid");
    REQUIRE(pid);
    dm_pid = atoi(pid);
    free(pid);
    th_adopt(dm_pid);
    CHECK_INT(th_proc_euid(dm_pid), nobody.pw_uid);
    char link[64], root[4096], want[4096];
    snprintf(link, sizeof link, "/proc/%d/root", (int)dm_pid);
    ssize_t n = readlink(link, root, sizeof root - 1);
    REQUIRE(n > 0);
    root[n] = '\0';
    snprintf(want, sizeof want, "%s/qemu-root-%u", th_xlsim_rundir(), domid);
    CHECK_STR(root, want);
    struct stat st;
    CHECK(stat(want, &st) == 0 && (st.st_mode & 07777) == 0);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    bool confined = false;
    snap_err e;
    CHECK(snap_qmp_peer_confined(q, &confined, &e) == 0 && confined);
    snap_qmp_close(q);
}

/* Without device_model_user, libxl's users or libxl's refusal. */
static void test_restrict_needs_a_user(void)
{
    struct passwd *shared = getpwnam("xen-qemuuser-shared");
    struct passwd *range = getpwnam("xen-qemuuser-range-base");
    if (shared || range) {
        th_skip("this host has a xen-qemuuser-* user");
        return;
    }
    char *err = NULL;
    const char *cfg = write_config("dp-nouser", "dm_restrict = 1");
    REQUIRE(cfg);
    CHECK_INT(xlsim(NULL, &err, "create", "-p", cfg), 1);
    CHECK_CONTAINS(err, "Could not find user xen-qemuuser-shared or range base "
                        "pseudo-user xen-qemuuser-range-base, cannot restrict");
    free(err);
    char *out = NULL;
    CHECK(xlsim(&out, NULL, "domid", "dp-nouser", NULL) != 0);
    free(out);
}

/* ------------------------------------------------------------ snapshots */

/* Sets whose opaque names path (libsnap's "libsnap:<path>"); -1 on error. */
static int fdsets_naming(snap_qmp *q, const char *needle)
{
    snap_qmp_fdsets sets;
    snap_err err;
    if (snap_qmp_query_fdsets(q, &sets, T_MS, &err))
        return -1;
    int n = 0;
    for (size_t i = 0; i < sets.n; i++)
        for (size_t k = 0; k < sets.set[i].n; k++)
            n += sets.set[i].fds[k].opaque && strstr(sets.set[i].fds[k].opaque, needle);
    snap_qmp_fdsets_free(&sets);
    return n;
}

/* Sets in QEMU, libsnap's or not; -1 on error. */
static int count_fdsets(snap_qmp *q)
{
    snap_qmp_fdsets sets;
    snap_err err;
    if (snap_qmp_query_fdsets(q, &sets, T_MS, &err))
        return -1;
    int n = (int)sets.n;
    snap_qmp_fdsets_free(&sets);
    return n;
}

/* Sets that no block node uses (left behind); -1 on error. */
static int stray_fdsets(snap_qmp *q)
{
    snap_qmp_fdsets sets;
    yajl_val nodes = NULL;
    snap_err err;
    if (snap_qmp_query_fdsets(q, &sets, T_MS, &err))
        return -1;
    yajl_val flat = yajl_tree_parse("{\"flat\": true}", NULL, 0);
    int rc =
        snap_qmp_execute_tree(q, "query-named-block-nodes", flat, &nodes, T_MS, &err);
    yajl_tree_free(flat);
    int stray = rc ? -1 : 0;
    for (size_t i = 0; i < sets.n && !rc; i++) {
        bool used = false;
        for (size_t k = 0; k < snap_json_array_len(nodes) && !used; k++)
            used = snap_qmp_fdset_of_file(snap_json_get_string(
                       snap_json_array_at(nodes, k), "file")) == sets.set[i].id;
        if (!used)
            th_note("fdset %lld: no node uses it", sets.set[i].id);
        stray += !used;
    }
    yajl_tree_free(nodes);
    snap_qmp_fdsets_free(&sets);
    return stray;
}

/* Every set QEMU holds backs a block node, and there are want of them (-1: any). */
static void check_fdsets(int want, const char *file, int line)
{
    snap_qmp *q = connect_dm();
    if (!q) {
        th_fail_at(file, line, "no QMP connection to check the fdsets");
        return;
    }
    int stray = stray_fdsets(q), n = count_fdsets(q);
    if (stray != 0 || (want >= 0 && n != want))
        th_fail_at(file, line,
                   "QEMU holds %d fdset(s), %d of them unused; wanted %d, none "
                   "unused",
                   n, stray, want);
    snap_qmp_close(q);
}
#define CHECK_FDSETS(want) check_fdsets((want), __FILE__, __LINE__)

/* query-block's own name for the disk's active image. */
static char *raw_active_file(snap_qmp *q, const char *qdev)
{
    yajl_val ret = NULL;
    snap_err err;
    char *file = NULL;
    if (snap_qmp_execute(q, "query-block", NULL, NULL, &ret, T_MS, &err))
        return NULL;
    for (size_t i = 0; i < snap_json_array_len(ret) && !file; i++) {
        yajl_val b = snap_json_array_at(ret, i);
        const char *dev = snap_json_get_string(b, "qdev");
        const char *f = snap_json_get_string(snap_json_get_object(b, "inserted"), "file");
        if (dev && f && strstr(dev, qdev))
            file = strdup(f);
    }
    yajl_tree_free(ret);
    return file;
}

/* Runs xlsnap with argv (NULL-terminated); true on exit 0, else notes why. */
static bool xlsnap_ok(const char *const argv[])
{
    th_cmd r;
    th_xlsnapv(&r, argv);
    if (r.rc)
        th_note("xlsnap %s: %s", argv[0], th_cmd_describe(&r));
    bool ok = r.rc == 0;
    th_cmd_free(&r);
    return ok;
}

/* The disk's chain in QEMU (paths, active first) is images[0..n). */
static void check_chain(snap_qmp *q, const char *vdev, const char *const images[],
                        size_t n)
{
    snap_qmp_disks disks;
    snap_err err;
    REQUIRE(snap_qmp_query_disks(q, &disks, T_MS, &err) == 0);
    const snap_qmp_disk *d = snap_qmp_disks_find(&disks, vdev);
    CHECK(d && d->chain_len == n);
    for (size_t i = 0; d && i < n && i < d->chain_len; i++)
        CHECK_STR(d->chain[i].file, images[i]);
    snap_qmp_disks_free(&disks);
}

/* A new overlay as the image under it: nobody's, 0640, backed by it. */
static void check_overlay_file(const char *overlay, const char *base)
{
    struct stat st;
    REQUIRE(stat(overlay, &st) == 0);
    CHECK_INT(st.st_uid, nobody.pw_uid);
    CHECK_INT(st.st_gid, nobody.pw_gid);
    CHECK_INT(st.st_mode & 07777, 0640);
    char *info = th_qemu_img_info_chain(overlay);
    CHECK(info && strstr(info, base));
    free(info);
}

/* External on a confined QEMU: the overlays passed as descriptors. */
static void test_external_by_descriptor(void)
{
    REQUIRE(domid);
    const char *create[] = {"snapshot-create", "-e", "--quiesce=off",
                            dom_name,          "s1", NULL};
    CHECK(xlsnap_ok(create));
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    const char *bases[] = {th_path("a.qcow2"), th_path("b.qcow2")};
    const char *vdevs[] = {"xvda", "xvdb"};
    char base[2][4096];
    for (int i = 0; i < 2; i++)
        snprintf(base[i], sizeof base[i], "%s", bases[i]);
    for (int i = 0; i < 2; i++) {
        char *img = disk_image(vdevs[i]);
        REQUIRE(img);
        CHECK(strcmp(img, base[i]) != 0);
        check_overlay_file(img, base[i]);
        const char *chain[] = {img, base[i]};
        check_chain(q, vdevs[i], chain, 2);
        /* QEMU opened nothing by path: the file is the passed descriptor. */
        char *raw = raw_active_file(q, vdevs[i]);
        CHECK(raw && !strncmp(raw, "/dev/fdset/", 11));
        free(raw);
        CHECK_INT(fdsets_naming(q, img), 1);
        free(img);
    }
    snap_qmp_close(q);
    CHECK_FDSETS(2); /* one per overlay, each its node's file */
}
/* Internal snapshots write into the open images: no new file, nothing passed. */
static void test_internal_on_confined(void)
{
    REQUIRE(domid);
    const char *create[] = {"snapshot-create", "--quiesce=off", dom_name, "s2", NULL};
    CHECK(xlsnap_ok(create));
    for (int i = 0; i < 2; i++) {
        char *img = disk_image(i ? "xvdb" : "xvda");
        REQUIRE(img);
        CHECK(th_qemu_img_has_snapshot(img, "s2"));
        free(img);
    }
}

/* A second external one: the overlay named /dev/fdset/N in QEMU becomes a backing file.
 */
static void test_second_external(void)
{
    REQUIRE(domid);
    char *s1 = disk_image("xvda");
    REQUIRE(s1);
    const char *create[] = {"snapshot-create", "-e", "--quiesce=off",
                            dom_name,          "s3", NULL};
    CHECK(xlsnap_ok(create));
    char *s3 = disk_image("xvda");
    REQUIRE(s3);
    CHECK(strcmp(s3, s1) != 0);
    check_overlay_file(s3, s1);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    const char *chain[] = {s3, s1, th_path("a.qcow2")};
    check_chain(q, "xvda", chain, 3);
    snap_qmp_close(q);
    free(s1);
    free(s3);
}

static bool add_null_node(snap_qmp *q, const char *name)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"driver\": \"null-co\", \"node-name\": \"%s\", \"size\": 1048576}", name);
    char ebuf[128];
    yajl_val args = yajl_tree_parse(json, ebuf, sizeof ebuf);
    snap_err err;
    int rc = snap_qmp_execute_tree(q, "blockdev-add", args, NULL, T_MS, &err);
    yajl_tree_free(args);
    if (rc)
        th_note("blockdev-add %s: %s", name, err.msg);
    return rc == 0;
}

static bool node_exists(snap_qmp *q, const char *name)
{
    yajl_val ret = NULL;
    snap_err err;
    bool found = false;
    if (snap_qmp_execute(q, "query-named-block-nodes", NULL, NULL, &ret, T_MS, &err))
        return true; /* cannot tell: count it against the test */
    for (size_t i = 0; i < snap_json_array_len(ret) && !found; i++) {
        const char *n = snap_json_get_string(snap_json_array_at(ret, i), "node-name");
        found = n && !strcmp(n, name);
    }
    yajl_tree_free(ret);
    return found;
}

/*
 * Failure injection: xvdb's overlay node cannot be added (a node of that
 * name is there already) after xvda's file, fdset and node were: all of
 * them go, nothing is switched.
 */
static void test_failed_create_cleans_up(void)
{
    REQUIRE(domid);
    char *a_before = disk_image("xvda"), *b_before = disk_image("xvdb");
    REQUIRE(a_before && b_before);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    /* The plan names xvdb's new node xvdb-ovl<chain length>: 3 images now. */
    bool added = add_null_node(q, "xvdb-ovl3");
    snap_qmp_close(q);
    REQUIRE(added);
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "-e", "--quiesce=off", dom_name, "s4", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "xvdb-ovl3");
    th_cmd_free(&r);
    CHECK(access(th_path("a.s4.qcow2"), F_OK) != 0);
    CHECK(access(th_path("b.s4.qcow2"), F_OK) != 0);
    char *a_after = disk_image("xvda"), *b_after = disk_image("xvdb");
    CHECK_STR(a_after, a_before);
    CHECK_STR(b_after, b_before);
    q = connect_dm();
    REQUIRE(q);
    CHECK_INT(fdsets_naming(q, ".s4."), 0);
    CHECK(!node_exists(q, "xvda-ovl3"));
    snap_err err;
    CHECK_INT(snap_qmp_blockdev_del(q, "xvdb-ovl3", T_MS, &err), 0);
    snap_qmp_close(q);
    CHECK_FDSETS(4); /* s1's and s3's overlays, nothing of s4 */
    free(a_before);
    free(b_before);
    free(a_after);
    free(b_after);
}

/* An fdset of libsnap's that no node uses (a run that died) goes at the next command. */
static void test_stray_fdset_collected(void)
{
    REQUIRE(domid);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    int fd = open(th_path("a.qcow2"), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    snap_err err;
    const char *stray = SNAP_QMP_FDSET_OPAQUE_PREFIX "/stray/overlay.qcow2";
    CHECK_INT(snap_qmp_add_fd(q, fd, -1, stray, NULL, NULL, T_MS, &err), 0);
    close(fd);
    CHECK_INT(fdsets_naming(q, "/stray/"), 1);
    snap_qmp_close(q);
    const char *create[] = {"snapshot-create", "--quiesce=off", dom_name, "s5", NULL};
    CHECK(xlsnap_ok(create));
    q = connect_dm();
    REQUIRE(q);
    CHECK_INT(fdsets_naming(q, "/stray/"), 0);
    /* The sets the overlays in use came from stay. */
    char *img = disk_image("xvda");
    CHECK_INT(fdsets_naming(q, img), 1);
    free(img);
    snap_qmp_close(q);
    CHECK_FDSETS(4);
}

/*
 * Deleting an external snapshot merges its overlay (a node libsnap added)
 * into the image under it: the node, its fdset and the file are gone after.
 */
static void test_delete_external_on_confined(void)
{
    REQUIRE(domid);
    char *s3 = disk_image("xvda");
    REQUIRE(s3 && strstr(s3, ".s3."));
    const char *del[] = {"snapshot-delete", dom_name, "s3", NULL};
    CHECK(xlsnap_ok(del));
    char *now = disk_image("xvda");
    CHECK_STR(now, th_path("a.s1.qcow2"));
    CHECK(access(s3, F_OK) != 0);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    const char *chain[] = {th_path("a.s1.qcow2"), th_path("a.qcow2")};
    check_chain(q, "xvda", chain, 2);
    CHECK(!node_exists(q, "xvda-ovl2")); /* s3's overlay node */
    CHECK_INT(fdsets_naming(q, ".s3."), 0);
    CHECK_INT(fdsets_naming(q, th_path("a.s1.qcow2")), 1);
    snap_qmp_close(q);
    CHECK_FDSETS(2); /* s3's overlays merged; s1's stay */
    free(s3);
    free(now);
}

/*
 * A revert starts a new device model, as confined as the first, on new
 * overlays owned like the images under them; an external snapshot and its
 * deletion work on it (its backing files were opened by path at start,
 * before the chroot).
 */
static void test_revert_then_snapshot_on_confined(void)
{
    REQUIRE(domid);
    const char *rev[] = {"snapshot-revert", "--force", dom_name, "s1", NULL};
    CHECK(xlsnap_ok(rev));
    char *pid = xs_dom("image/device-model-pid");
    REQUIRE(pid);
    pid_t new_pid = atoi(pid);
    free(pid);
    th_adopt(new_pid);
    CHECK(new_pid != dm_pid);
    CHECK_INT(th_proc_euid(new_pid), nobody.pw_uid);
    dm_pid = new_pid;
    CHECK_FDSETS(0); /* a new device model, started on paths */
    /* Back to s1's point: a new overlay on the image s1 was taken of. */
    char *r1 = disk_image("xvda");
    REQUIRE(r1);
    char *info = th_qemu_img_info_chain(r1);
    CHECK(info && strstr(info, th_path("a.qcow2")) && !strstr(info, ".s1.qcow2"));
    free(info);
    /* Its new overlays are the base's (nobody's, 0640), not root's 0600. */
    check_overlay_file(r1, th_path("a.qcow2"));
    char *r1b = disk_image("xvdb");
    REQUIRE(r1b);
    check_overlay_file(r1b, th_path("b.qcow2"));
    free(r1b);
    const char *create[] = {"snapshot-create", "-e", "--quiesce=off",
                            dom_name,          "s6", NULL};
    CHECK(xlsnap_ok(create));
    char *s6 = disk_image("xvda");
    REQUIRE(s6);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    const char *chain[] = {s6, r1, th_path("a.qcow2")};
    check_chain(q, "xvda", chain, 3);
    snap_qmp_close(q);
    const char *del[] = {"snapshot-delete", dom_name, "s6", NULL};
    CHECK(xlsnap_ok(del));
    char *now = disk_image("xvda");
    CHECK_STR(now, r1);
    q = connect_dm();
    REQUIRE(q);
    CHECK_INT(fdsets_naming(q, "libsnap:"), 0);
    snap_qmp_close(q);
    CHECK_FDSETS(0);
    free(r1);
    free(s6);
    free(now);
}

/* Stops the device model (QMP quit) and starts it again: `xlsim relaunch`. */
static bool relaunch(void)
{
    snap_qmp *q = connect_dm();
    if (!q)
        return false;
    snap_err err;
    snap_qmp_execute(q, "quit", NULL, NULL, NULL, T_MS, &err);
    snap_qmp_close(q);
    for (int i = 0; i < 200 && kill(dm_pid, 0) == 0; i++)
        usleep(50000);
    char *e = NULL;
    int rc = xlsim(NULL, &e, "relaunch", dom_name, NULL);
    if (rc)
        th_note("xlsim relaunch: %s", e ? e : "?");
    free(e);
    char *pid = xs_dom("image/device-model-pid");
    if (pid) {
        dm_pid = atoi(pid);
        th_adopt(dm_pid);
    }
    free(pid);
    return rc == 0 && pid;
}

static void hmp_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "command-line", opaque);
}

/* 64 KiB of pattern at offset off of the disk, written through QEMU as the guest would.
 */
static bool dm_write(const char *vdev, int pattern, const char *off)
{
    snap_qmp *q = connect_dm();
    if (!q)
        return false;
    char line[256];
    snprintf(line, sizeof line,
             "qemu-io -d /machine/peripheral/%s/virtio-backend \"write -P 0x%x %s 64k\"",
             vdev, pattern, off);
    yajl_val ret = NULL;
    snap_err err;
    int rc =
        snap_qmp_execute(q, "human-monitor-command", hmp_args, line, &ret, T_MS, &err);
    const char *text = rc == 0 && YAJL_IS_STRING(ret) ? YAJL_GET_STRING(ret) : NULL;
    bool ok = text && !strstr(text, "rror"); /* HMP is silent on success */
    if (!ok)
        th_note("%s: %s", line, rc ? err.msg : text ? text : "?");
    yajl_tree_free(ret);
    snap_qmp_close(q);
    return ok;
}

/* QEMU named the image at depth of the disk's chain itself (opened it from a header). */
static bool auto_named(const char *vdev, size_t depth)
{
    snap_qmp *q = connect_dm();
    snap_qmp_disks disks;
    snap_err err;
    if (!q || snap_qmp_query_disks(q, &disks, T_MS, &err)) {
        snap_qmp_close(q);
        return false;
    }
    const snap_qmp_disk *d = snap_qmp_disks_find(&disks, vdev);
    bool yes = d && depth < d->chain_len && d->chain[depth].node_name &&
               d->chain[depth].node_name[0] == '#';
    snap_qmp_disks_free(&disks);
    snap_qmp_close(q);
    return yes;
}

static char *r1_path; /* the revert overlay of xvda, under every later snapshot */

/*
 * A device model started on a chain opened its backing files read-only by
 * path, which a confined QEMU cannot reopen for writing. The merge into
 * one passes it as descriptors (a read-only and a read-write one), puts a
 * node on them under the top (blockdev-reopen) and commits into it.
 */
static void test_merge_into_header_opened_base(void)
{
    REQUIRE(domid);
    r1_path = disk_image("xvda");
    REQUIRE(r1_path);
    const char *create[] = {"snapshot-create", "-e", "--quiesce=off",
                            dom_name,          "s7", NULL};
    REQUIRE(xlsnap_ok(create));
    char *top = disk_image("xvda");
    REQUIRE(top);
    REQUIRE(dm_write("xvda", 0x71, "0"));
    REQUIRE(relaunch());
    CHECK_FDSETS(0);
    CHECK(auto_named("xvda", 1)); /* r1: what made this refused before */
    const char *del[] = {"snapshot-delete", dom_name, "s7", NULL};
    CHECK(xlsnap_ok(del));
    char *now = disk_image("xvda");
    CHECK_STR(now, r1_path);
    CHECK(access(top, F_OK) != 0);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    const char *chain[] = {r1_path, th_path("a.qcow2")};
    check_chain(q, "xvda", chain, 2);
    char *raw = raw_active_file(q, "xvda");
    CHECK(raw && !strncmp(raw, "/dev/fdset/", 11)); /* not reopened by path */
    free(raw);
    CHECK_INT(fdsets_naming(q, r1_path), 2); /* its read-only and read-write fds */
    CHECK_INT(fdsets_naming(q, ".s7."), 0);
    snap_qmp_close(q);
    CHECK_FDSETS(2); /* xvda's and xvdb's bases */
    CHECK(th_qemu_io_reads_pattern(r1_path, 0x71, "0", "64k"));
    char *info = th_qemu_img_info_chain(r1_path);
    CHECK(info && strstr(info, th_path("a.qcow2")));
    free(info);
    free(top);
    free(now);
}

/*
 * The same for an intermediate merge: both images under the top are
 * header-opened, both are passed, and the image above gets the base's path
 * as its backing file (QEMU would write "/dev/fdset/N").
 */
static void test_intermediate_merge_into_header_opened_base(void)
{
    REQUIRE(r1_path);
    const char *c9[] = {"snapshot-create", "-e", "--quiesce=off", dom_name, "s9", NULL};
    const char *c10[] = {"snapshot-create", "-e", "--quiesce=off", dom_name, "s10", NULL};
    REQUIRE(xlsnap_ok(c9));
    char *s9 = disk_image("xvda");
    REQUIRE(s9 && dm_write("xvda", 0x72, "64k"));
    REQUIRE(xlsnap_ok(c10));
    char *s10 = disk_image("xvda");
    REQUIRE(s10 && dm_write("xvda", 0x73, "128k"));
    REQUIRE(relaunch());
    CHECK(auto_named("xvda", 1) && auto_named("xvda", 2));
    const char *del[] = {"snapshot-delete", dom_name, "s9", NULL};
    CHECK(xlsnap_ok(del));
    char *now = disk_image("xvda");
    CHECK_STR(now, s10);
    CHECK(access(s9, F_OK) != 0);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    const char *chain[] = {s10, r1_path, th_path("a.qcow2")};
    check_chain(q, "xvda", chain, 3);
    CHECK_INT(fdsets_naming(q, s9), 0);
    snap_qmp_close(q);
    CHECK_FDSETS(-1);
    char *info = th_qemu_img_info_chain(s10);
    CHECK(info && strstr(info, r1_path) && !strstr(info, "/dev/fdset"));
    free(info);
    CHECK(th_qemu_io_reads_pattern(r1_path, 0x72, "64k", "64k"));
    CHECK(th_qemu_io_reads_pattern(s10, 0x73, "128k", "64k"));
    free(s9);
    free(s10);
    free(now);
}

/* xlsnap snapshot-delete of s10 fails on QEMU's refusal of cmd (a proxy). */
static void delete_refused(const char *cmd, const char *desc)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/qmp-libxl-%u", th_xlsim_rundir(), domid);
    th_qmp_proxy *p = th_qmp_proxy_start(path, cmd, desc);
    REQUIRE(p);
    th_cmd r;
    th_xlsnap(&r, "snapshot-delete", dom_name, "s10", NULL);
    th_qmp_proxy_stop(p);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "xvda");
    CHECK_CONTAINS(r.err, desc);
    th_cmd_free(&r);
}

/*
 * Failure injection: QEMU refuses the blockdev-reopen, then the commit.
 * The disk stays on its images, and the only sets left are those a node
 * uses (none after the refused reopen); the next command finishes the
 * merge that was under way when the commit was refused.
 */
static void test_refused_merge_into_header_opened_base(void)
{
    REQUIRE(r1_path);
    char *s10 = disk_image("xvda");
    REQUIRE(s10 && strstr(s10, ".s10."));
    REQUIRE(relaunch());
    REQUIRE(auto_named("xvda", 1));
    const char *chain[] = {s10, r1_path, th_path("a.qcow2")};

    delete_refused("blockdev-reopen", "injected: no reopen");
    char *now = disk_image("xvda");
    CHECK_STR(now, s10);
    free(now);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    check_chain(q, "xvda", chain, 3);
    snap_qmp_close(q);
    CHECK_FDSETS(0);
    CHECK(auto_named("xvda", 1)); /* the new node went with its set */

    delete_refused("block-commit", "injected: no commit");
    now = disk_image("xvda");
    CHECK_STR(now, s10);
    free(now);
    CHECK(access(s10, F_OK) == 0);
    q = connect_dm();
    REQUIRE(q);
    check_chain(q, "xvda", chain, 3);
    snap_qmp_close(q);
    CHECK_FDSETS(1); /* r1's, under s10 now */

    /* The merge was journaled: the next command finishes it, by descriptor. */
    const char *internal[] = {"snapshot-create", "--quiesce=off", dom_name, "s8", NULL};
    CHECK(xlsnap_ok(internal));
    now = disk_image("xvda");
    CHECK_STR(now, r1_path);
    free(now);
    CHECK(access(s10, F_OK) != 0);
    CHECK(th_qemu_io_reads_pattern(r1_path, 0x73, "128k", "64k"));
    CHECK(th_qemu_img_has_snapshot(r1_path, "s8"));
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", dom_name, "s10", NULL);
    CHECK(r.rc != 0);
    th_cmd_free(&r);
    CHECK_FDSETS(2); /* xvda's and xvdb's bases */
    free(s10);
}

/*
 * Failure injection: QEMU refuses create's transaction after the overlays
 * were made, passed and added as nodes: nodes, sets and files all go.
 */
static void test_refused_transaction_cleans_up(void)
{
    REQUIRE(domid);
    char *a_before = disk_image("xvda");
    REQUIRE(a_before);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    int sets_before = count_fdsets(q);
    snap_qmp_close(q);
    char path[4096];
    snprintf(path, sizeof path, "%s/qmp-libxl-%u", th_xlsim_rundir(), domid);
    th_qmp_proxy *p = th_qmp_proxy_start(path, "transaction", "injected: no transaction");
    REQUIRE(p);
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "-e", "--quiesce=off", dom_name, "s11", NULL);
    int refused = th_qmp_proxy_refused(p);
    th_qmp_proxy_stop(p);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "injected: no transaction");
    th_cmd_free(&r);
    CHECK(refused >= 1);
    char *a_after = disk_image("xvda");
    CHECK_STR(a_after, a_before);
    CHECK(access(th_path("a.s11.qcow2"), F_OK) != 0);
    CHECK(access(th_path("b.s11.qcow2"), F_OK) != 0);
    CHECK_FDSETS(sets_before);
    q = connect_dm();
    REQUIRE(q);
    CHECK_INT(fdsets_naming(q, ".s11."), 0);
    CHECK(!node_exists(q, "xvda-ovl2") && !node_exists(q, "xvdb-ovl2"));
    snap_qmp_close(q);
    free(a_before);
    free(a_after);
}

int main(void)
{
    th_plan(13);
    struct passwd *pw = getpwnam("nobody");
    if (!pw) {
        th_skip("no user nobody");
        return th_finish();
    }
    nobody = *pw;
    if (!th_xlsim_init())
        return th_finish();
    /* Images as an administrator might give them to the QEMU user. */
    if (!th_qemu_img_create("a.qcow2", "64M", NULL) ||
        !th_qemu_img_create("b.qcow2", "32M", NULL) ||
        chown(th_path("a.qcow2"), nobody.pw_uid, nobody.pw_gid) != 0 ||
        chown(th_path("b.qcow2"), nobody.pw_uid, nobody.pw_gid) != 0 ||
        chmod(th_path("a.qcow2"), 0640) != 0 || chmod(th_path("b.qcow2"), 0640) != 0) {
        th_fail_at(__FILE__, __LINE__, "cannot make the images");
        return th_finish();
    }
    TH_RUN(test_restricted_like_libxl);
    TH_RUN(test_restrict_needs_a_user);
    TH_RUN(test_external_by_descriptor);
    TH_RUN(test_internal_on_confined);
    TH_RUN(test_second_external);
    TH_RUN(test_failed_create_cleans_up);
    TH_RUN(test_stray_fdset_collected);
    TH_RUN(test_delete_external_on_confined);
    TH_RUN(test_revert_then_snapshot_on_confined);
    TH_RUN(test_merge_into_header_opened_base);
    TH_RUN(test_intermediate_merge_into_header_opened_base);
    TH_RUN(test_refused_merge_into_header_opened_base);
    TH_RUN(test_refused_transaction_cleans_up);
    xlsim(NULL, NULL, "destroy", dom_name, NULL);
    return th_finish();
}
