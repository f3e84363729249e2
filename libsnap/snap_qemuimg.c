/* qemu-img wrappers on snap_child; see snap_qemuimg.h. */
#include "snap_qemuimg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_child.h"
#include "snap_json.h"

#define MAX_ARGS 24

/* An argv under construction (borrowed strings). */
typedef struct qargv {
    const char *v[MAX_ARGS + 1];
    int n;
} qargv;

static void qarg(qargv *a, const char *s)
{
    if (a->n < MAX_ARGS)
        a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void qargv_init(qargv *a, const snap_qimg_opts *o)
{
    a->n = 0;
    qarg(a, o && o->binary ? o->binary : "qemu-img");
}

static snap_child_opts child_opts(const snap_qimg_opts *o, bool capture_stdout)
{
    snap_child_opts co = {.capture_stdout = capture_stdout};
    co.timeout_ms = o && o->timeout_ms ? o->timeout_ms : SNAP_QIMG_DEFAULT_TIMEOUT_MS;
    return co;
}

/* ------------------------------------------------------------ failures */

bool snap_qimg_is_lock_error(const char *errout)
{
    static const char *const texts[] = {
        "Failed to get \"write\" lock",
        "Failed to get shared \"write\" lock",
        "Failed to get \"consistent read\" lock",
        "Is another process using the image",
    };
    for (size_t i = 0; errout && i < sizeof texts / sizeof texts[0]; i++)
        if (strstr(errout, texts[i]))
            return true;
    return false;
}

static bool is_missing_error(const char *errout)
{
    return strstr(errout, "snapshot not found") ||
           strstr(errout, "Failed to load snapshot: No such file or directory") ||
           (strstr(errout, "Could not open") &&
            strstr(errout, "No such file or directory"));
}

/*
 * Turns a finished qemu-img child into a return code: lock errors become
 * BUSY naming the image, missing files/snapshots NOTFOUND; qemu-img's words
 * are always kept. what describes the command ("qemu-img snapshot -c 'x'").
 */
static int judge_qimg(const snap_child_result *r, const char *what, const char *path,
                      bool writes, snap_err *err)
{
    snap_err local;
    if (!r->rc)
        return 0;
    if (!err)
        err = &local;
    snap_err_set(err, r->rc, "%s", r->err.msg);
    if (snap_qimg_is_lock_error(r->errout)) {
        err->code = SNAP_ERROR_BUSY;
        if (writes)
            snap_err_context(err,
                             "image %s is in use by a running QEMU; refusing to "
                             "write it (%s)",
                             path, what);
        else
            snap_err_context(err,
                             "image %s is in use by a running QEMU; cannot read it "
                             "without sharing (%s)",
                             path, what);
        return err->code;
    }
    if (r->started && !r->timed_out && is_missing_error(r->errout))
        err->code = SNAP_ERROR_NOTFOUND;
    return snap_err_context(err, "%s on %s", what, path);
}

static int run_qimg(const snap_qimg_opts *o, const qargv *a, bool capture,
                    snap_child_result *r)
{
    snap_child_opts co = child_opts(o, capture);
    snap_log(o ? o->lg : NULL, XTL_DEBUG, "running %s %s", a->v[0], a->v[1]);
    return snap_child_run("qemu-img", a->v, &co, r, NULL);
}

/* Runs a command that produces no output we need; judged as above. */
static int run_simple(const snap_qimg_opts *o, const qargv *a, const char *what,
                      const char *path, bool writes, snap_err *err)
{
    snap_child_result r;
    run_qimg(o, a, false, &r);
    int rc = judge_qimg(&r, what, path, writes, err);
    snap_child_result_dispose(&r);
    return rc;
}

/* ------------------------------------------------------------ info parsing */

static long long get_ll(yajl_val v, const char *key, long long dflt)
{
    long long x;
    return snap_json_get_int(v, key, &x) ? x : dflt;
}

static void parse_snapshot(yajl_val v, snap_qimg_snapshot *s)
{
    s->id = snap_xstrdup(snap_json_get_string(v, "id"));
    s->name = snap_xstrdup(snap_json_get_string(v, "name"));
    s->vm_state_size = get_ll(v, "vm-state-size", 0);
    s->date_sec = get_ll(v, "date-sec", 0);
    s->date_nsec = get_ll(v, "date-nsec", 0);
    s->vm_clock_sec = get_ll(v, "vm-clock-sec", 0);
    s->vm_clock_nsec = get_ll(v, "vm-clock-nsec", 0);
    s->icount = get_ll(v, "icount", -1);
}

static int parse_info_value(yajl_val v, snap_qimg_info *out, snap_err *err)
{
    memset(out, 0, sizeof *out);
    const char *format = snap_json_get_string(v, "format");
    if (!YAJL_IS_OBJECT(v) || !format || !snap_json_get_string(v, "filename"))
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "qemu-img info: no image object with \"filename\" and "
                            "\"format\"");
    out->filename = snap_xstrdup(snap_json_get_string(v, "filename"));
    out->format = snap_xstrdup(format);
    out->virtual_size = get_ll(v, "virtual-size", -1);
    out->actual_size = get_ll(v, "actual-size", -1);
    out->cluster_size = get_ll(v, "cluster-size", -1);
    out->backing_file = snap_xstrdup_or_null(snap_json_get_string(v, "backing-filename"));
    out->full_backing_file =
        snap_xstrdup_or_null(snap_json_get_string(v, "full-backing-filename"));
    out->backing_format =
        snap_xstrdup_or_null(snap_json_get_string(v, "backing-filename-format"));
    snap_json_get_bool(v, "dirty-flag", &out->dirty);
    yajl_val data =
        snap_json_get_object(snap_json_get_object(v, "format-specific"), "data");
    snap_json_get_bool(data, "corrupt", &out->corrupt);
    yajl_val snaps = snap_json_get_array(v, "snapshots");
    out->n_snapshots = snap_json_array_len(snaps);
    out->snapshots = snap_xcalloc(out->n_snapshots, sizeof *out->snapshots);
    for (size_t i = 0; i < out->n_snapshots; i++)
        parse_snapshot(snap_json_array_at(snaps, i), &out->snapshots[i]);
    return 0;
}

int snap_qimg_parse_info(const char *json, snap_qimg_info *out, snap_err *err)
{
    memset(out, 0, sizeof *out);
    yajl_val v = snap_json_parse(json, "qemu-img info output", err);
    if (!v)
        return err ? err->code : SNAP_ERROR_PROTOCOL;
    int rc = parse_info_value(v, out, err);
    yajl_tree_free(v);
    if (rc)
        snap_qimg_info_dispose(out);
    return rc;
}

int snap_qimg_parse_chain(const char *json, snap_qimg_chain *out, snap_err *err)
{
    memset(out, 0, sizeof *out);
    yajl_val v = snap_json_parse(json, "qemu-img info --backing-chain output", err);
    if (!v)
        return err ? err->code : SNAP_ERROR_PROTOCOL;
    int rc = 0;
    if (!YAJL_IS_ARRAY(v) || snap_json_array_len(v) == 0)
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL,
                          "qemu-img info --backing-chain: expected a non-empty array");
    size_t n = rc ? 0 : snap_json_array_len(v);
    out->images = snap_xcalloc(n, sizeof *out->images);
    for (size_t i = 0; i < n && !rc; i++, out->n++)
        rc = parse_info_value(snap_json_array_at(v, i), &out->images[i], err);
    yajl_tree_free(v);
    if (rc)
        snap_qimg_chain_dispose(out);
    return rc;
}

void snap_qimg_info_dispose(snap_qimg_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->n_snapshots; i++) {
        free(info->snapshots[i].id);
        free(info->snapshots[i].name);
    }
    free(info->snapshots);
    free(info->filename);
    free(info->format);
    free(info->backing_file);
    free(info->full_backing_file);
    free(info->backing_format);
    memset(info, 0, sizeof *info);
}

void snap_qimg_chain_dispose(snap_qimg_chain *chain)
{
    if (!chain)
        return;
    for (size_t i = 0; i < chain->n; i++)
        snap_qimg_info_dispose(&chain->images[i]);
    free(chain->images);
    memset(chain, 0, sizeof *chain);
}

const snap_qimg_snapshot *snap_qimg_find_snapshot(const snap_qimg_info *info,
                                                  const char *name)
{
    for (size_t i = 0; i < info->n_snapshots; i++)
        if (strcmp(info->snapshots[i].name, name) == 0)
            return &info->snapshots[i];
    return NULL;
}

/* ------------------------------------------------------------ info */

static void info_argv(qargv *a, const snap_qimg_opts *o, const char *path, unsigned flags,
                      bool chain)
{
    qargv_init(a, o);
    qarg(a, "info");
    qarg(a, "--output=json");
    if (chain)
        qarg(a, "--backing-chain");
    if (flags & SNAP_QIMG_FORCE_SHARE)
        qarg(a, "-U");
    qarg(a, path);
}

/* One listing child's verdict, like info_json's: lock and missing-file errors named. */
static int judge_info(const snap_child_result *r, const char *path, bool chain,
                      bool before_write, snap_err *err)
{
    int rc = judge_qimg(r, chain ? "qemu-img info --backing-chain" : "qemu-img info",
                        path, before_write, err);
    if (!rc && r->out_truncated)
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL,
                          "qemu-img info on %s: output longer than %u bytes", path,
                          SNAP_CHILD_DEFAULT_MAX_STDOUT);
    return rc;
}

/*
 * Runs info and hands back its stdout (malloc'd) or an error. before_write:
 * the listing precedes a write, so a held lock means "refusing to write".
 */
static int info_json(const snap_qimg_opts *o, const char *path, unsigned flags,
                     bool chain, bool before_write, char **json, snap_err *err)
{
    qargv a;
    snap_child_result r;
    info_argv(&a, o, path, flags, chain);
    run_qimg(o, &a, true, &r);
    int rc = judge_info(&r, path, chain, before_write, err);
    *json = rc ? NULL : r.out;
    if (!rc)
        r.out = NULL;
    snap_child_result_dispose(&r);
    return rc;
}

static int info_get(const snap_qimg_opts *o, const char *path, unsigned flags,
                    bool before_write, snap_qimg_info *out, snap_err *err)
{
    char *json;
    memset(out, 0, sizeof *out);
    int rc = info_json(o, path, flags, false, before_write, &json, err);
    if (!rc) {
        rc = snap_qimg_parse_info(json, out, err);
        if (rc)
            snap_err_context(err, "image %s", path);
    }
    free(json);
    return rc;
}

int snap_qimg_info_get(const snap_qimg_opts *o, const char *path, unsigned flags,
                       snap_qimg_info *out, snap_err *err)
{
    return info_get(o, path, flags, false, out, err);
}

int snap_qimg_chain_get(const snap_qimg_opts *o, const char *path, unsigned flags,
                        snap_qimg_chain *out, snap_err *err)
{
    char *json;
    memset(out, 0, sizeof *out);
    int rc = info_json(o, path, flags, true, false, &json, err);
    if (!rc) {
        rc = snap_qimg_parse_chain(json, out, err);
        if (rc)
            snap_err_context(err, "image %s", path);
    }
    free(json);
    return rc;
}

/* ------------------------------------------------------------ snapshots */

static const char *op_flag(snap_qimg_snap_op op)
{
    return op == SNAP_QIMG_SNAP_CREATE ? "-c" : op == SNAP_QIMG_SNAP_APPLY ? "-a" : "-d";
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int check_name(const char *name, snap_qimg_snap_op op, snap_err *err)
{
    if (!name || !*name)
        return snap_err_set(err, SNAP_ERROR_INVAL, "empty snapshot name");
    if (op == SNAP_QIMG_SNAP_CREATE && all_digits(name))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "snapshot name '%s' is made of digits: qemu-img would "
                            "confuse it with a snapshot id",
                            name);
    return 0;
}

/*
 * Decides from the image's current snapshot table whether op may run:
 * create needs a new name; apply/delete refuse a name that is another
 * snapshot's id (qemu-img matches ids first). A missing name for apply or
 * delete is refused when must_exist, else left to qemu-img, whose own words
 * the caller then gets.
 */
static int precheck_table(const snap_qimg_info *info, snap_qimg_snap_op op,
                          const char *path, const char *name, bool must_exist,
                          snap_err *err)
{
    const snap_qimg_snapshot *same = snap_qimg_find_snapshot(info, name);
    if (op != SNAP_QIMG_SNAP_CREATE && must_exist && !same)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "image %s has no snapshot named '%s'", path, name);
    if (op == SNAP_QIMG_SNAP_CREATE && same)
        return snap_err_set(err, SNAP_ERROR_EXISTS,
                            "image %s already has a snapshot named '%s' (id %s)", path,
                            name, same->id);
    for (size_t i = 0; op != SNAP_QIMG_SNAP_CREATE && i < info->n_snapshots; i++) {
        const snap_qimg_snapshot *s = &info->snapshots[i];
        if (strcmp(s->id, name) == 0 && strcmp(s->name, name) != 0)
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "image %s: '%s' is the id of snapshot '%s': qemu-img "
                                "would use that one; refusing",
                                path, name, s->name);
    }
    return 0;
}

/*
 * A qcow2 image opened alone, without its backing chain:
 * json:{"driver":"qcow2","file":{"driver":"file","filename":PATH},"backing":null}.
 * `snapshot -c` only touches the image's own tables (L1 copy, refcounts,
 * snapshot table); opening a 7-image chain cost a third of its CPU. qemu-img
 * still takes the image's own write lock, so an image a running QEMU holds
 * (as its active layer or as a backing file) is refused as before.
 */
static char *image_alone(const char *path)
{
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "driver", "qcow2");
    snap_json_key(g, "file");
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "driver", "file");
    snap_json_kv_str(g, "filename", path);
    yajl_gen_map_close(g);
    snap_json_key(g, "backing");
    snap_json_null(g);
    yajl_gen_map_close(g);
    char *json = snap_json_gen_finish(g, NULL);
    char *target = snap_xasprintf("json:%s", json);
    free(json);
    return target;
}

/* Returns what the caller frees once the argv was used (NULL for none). */
static char *snapshot_argv(qargv *a, const snap_qimg_opts *o, snap_qimg_snap_op op,
                           const char *path, const char *name)
{
    char *alone = op == SNAP_QIMG_SNAP_CREATE ? image_alone(path) : NULL;
    qargv_init(a, o);
    qarg(a, "snapshot");
    qarg(a, op_flag(op));
    qarg(a, name);
    qarg(a, alone ? alone : path);
    return alone;
}

static int snapshot_one(const snap_qimg_opts *o, snap_qimg_snap_op op, const char *path,
                        const char *name, snap_err *err)
{
    snap_qimg_info info;
    int rc = check_name(name, op, err);
    if (rc)
        return snap_err_context(err, "image %s", path);
    /* Listing without -U also tells whether a running QEMU holds the image. */
    rc = info_get(o, path, 0, true, &info, err);
    if (!rc)
        rc = precheck_table(&info, op, path, name, false, err);
    snap_qimg_info_dispose(&info);
    if (rc)
        return rc;
    qargv a;
    char what[300];
    char *target = snapshot_argv(&a, o, op, path, name);
    snprintf(what, sizeof what, "qemu-img snapshot %s '%s'", op_flag(op), name);
    rc = run_simple(o, &a, what, path, true, err);
    free(target);
    return rc;
}

int snap_qimg_snapshot_create(const snap_qimg_opts *o, const char *path, const char *name,
                              snap_err *err)
{
    return snapshot_one(o, SNAP_QIMG_SNAP_CREATE, path, name, err);
}

int snap_qimg_snapshot_apply(const snap_qimg_opts *o, const char *path, const char *name,
                             snap_err *err)
{
    return snapshot_one(o, SNAP_QIMG_SNAP_APPLY, path, name, err);
}

int snap_qimg_snapshot_delete(const snap_qimg_opts *o, const char *path, const char *name,
                              snap_err *err)
{
    return snapshot_one(o, SNAP_QIMG_SNAP_DELETE, path, name, err);
}

/* ------------------------------------------------------------ many images */

/* The first per-disk failure, with a count, as the overall error. */
static int many_verdict(const snap_err *per_disk, size_t n, size_t failed,
                        const char *stage, snap_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (per_disk[i].code)
            return snap_err_set(err, per_disk[i].code, "%zu of %zu images %s, first: %s",
                                failed, n, stage, per_disk[i].msg);
    return snap_err_set(err, SNAP_ERROR_FAIL, "%zu of %zu images %s", failed, n, stage);
}

/* Runs `info` (or `info --backing-chain`) on every image in parallel children. */
static snap_child_group *run_info_group(const snap_qimg_opts *o,
                                        const char *const paths[], size_t n,
                                        unsigned flags, bool chain)
{
    snap_child_group *g = snap_child_group_new(o ? o->max_parallel : 0, o ? o->lg : NULL);
    snap_child_opts co = child_opts(o, true);
    for (size_t i = 0; i < n; i++) {
        qargv a;
        info_argv(&a, o, paths[i], flags, chain);
        snap_child_group_add(g, "qemu-img", a.v, &co);
    }
    snap_child_group_run(g, NULL);
    return g;
}

/* Lists every image in parallel and prechecks each; returns how many failed. */
static size_t precheck_many(const snap_qimg_opts *o, snap_qimg_snap_op op,
                            const char *const paths[], size_t n, const char *name,
                            snap_err *per_disk)
{
    snap_child_group *g = run_info_group(o, paths, n, 0, false);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        const snap_child_result *r = snap_child_group_result(g, i);
        snap_qimg_info info;
        int rc = judge_info(r, paths[i], false, true, &per_disk[i]);
        if (!rc)
            rc = snap_qimg_parse_info(r->out, &info, &per_disk[i]);
        if (!rc) {
            rc = precheck_table(&info, op, paths[i], name, true, &per_disk[i]);
            snap_qimg_info_dispose(&info);
        }
        failed += rc != 0;
    }
    snap_child_group_free(g);
    return failed;
}

int snap_qimg_chain_get_many(const snap_qimg_opts *o, const char *const paths[], size_t n,
                             unsigned flags, snap_qimg_chain *chains, snap_err *per_disk,
                             snap_err *err)
{
    snap_child_group *g = run_info_group(o, paths, n, flags, true);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        const snap_child_result *r = snap_child_group_result(g, i);
        snap_err_clear(&per_disk[i]);
        memset(&chains[i], 0, sizeof chains[i]);
        int rc = judge_info(r, paths[i], true, false, &per_disk[i]);
        if (!rc && snap_qimg_parse_chain(r->out, &chains[i], &per_disk[i]))
            rc = snap_err_context(&per_disk[i], "image %s", paths[i]);
        failed += rc != 0;
    }
    snap_child_group_free(g);
    return failed ? many_verdict(per_disk, n, failed, "could not be read", err) : 0;
}

/* When each write ran, relative to the first start: shows that they overlapped. */
static void log_timings(const snap_qimg_opts *o, const snap_child_group *g,
                        const char *what, const char *const paths[], size_t n)
{
    xentoollog_logger *lg = o ? o->lg : NULL;
    uint64_t t0 = UINT64_MAX;
    for (size_t i = 0; lg && i < n; i++) {
        const snap_child_result *r = snap_child_group_result(g, i);
        if (r->started && r->start_ms < t0)
            t0 = r->start_ms;
    }
    for (size_t i = 0; lg && i < n; i++) {
        const snap_child_result *r = snap_child_group_result(g, i);
        if (r->started)
            snap_log(lg, XTL_DEBUG, "%s on %s ran from +%llu to +%llu ms", what, paths[i],
                     (unsigned long long)(r->start_ms - t0),
                     (unsigned long long)(r->end_ms - t0));
    }
}

static size_t run_many(const snap_qimg_opts *o, snap_qimg_snap_op op,
                       const char *const paths[], size_t n, const char *name,
                       snap_err *per_disk)
{
    snap_child_group *g = snap_child_group_new(o ? o->max_parallel : 0, o ? o->lg : NULL);
    snap_child_opts co = child_opts(o, false);
    char what[300];
    snprintf(what, sizeof what, "qemu-img snapshot %s '%s'", op_flag(op), name);
    for (size_t i = 0; i < n; i++) {
        qargv a;
        char *target = snapshot_argv(&a, o, op, paths[i], name);
        snap_child_group_add(g, "qemu-img", a.v, &co);
        free(target);
    }
    snap_child_group_run(g, NULL);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += judge_qimg(snap_child_group_result(g, i), what, paths[i], true,
                             &per_disk[i]) != 0;
    log_timings(o, g, what, paths, n);
    snap_child_group_free(g);
    return failed;
}

/* Clears per_disk and checks the name; 0 when the images may be looked at. */
static int many_start(snap_qimg_snap_op op, size_t n, const char *name,
                      snap_err *per_disk, snap_err *err)
{
    for (size_t i = 0; i < n; i++)
        snap_err_clear(&per_disk[i]);
    return check_name(name, op, err) ? (err ? err->code : SNAP_ERROR_INVAL) : 0;
}

int snap_qimg_snapshot_many(const snap_qimg_opts *o, snap_qimg_snap_op op,
                            const char *const paths[], size_t n, const char *name,
                            snap_err *per_disk, snap_err *err)
{
    int rc = many_start(op, n, name, per_disk, err);
    if (rc)
        return rc;
    size_t failed = precheck_many(o, op, paths, n, name, per_disk);
    if (failed)
        return many_verdict(per_disk, n, failed, "failed the check (none written)", err);
    failed = run_many(o, op, paths, n, name, per_disk);
    if (failed)
        return many_verdict(per_disk, n, failed, "failed", err);
    return 0;
}

int snap_qimg_snapshot_many_prechecked(const snap_qimg_opts *o, snap_qimg_snap_op op,
                                       const char *const paths[], size_t n,
                                       const char *name, snap_err *per_disk,
                                       snap_err *err)
{
    int rc = many_start(op, n, name, per_disk, err);
    if (rc)
        return rc;
    size_t failed = run_many(o, op, paths, n, name, per_disk);
    return failed ? many_verdict(per_disk, n, failed, "failed", err) : 0;
}

/* ------------------------------------------------------------ overlays */

/* Removes path if it is still the file we created (same device and inode). */
static void remove_if_ours(const char *path, const struct stat *ours)
{
    struct stat now;
    if (lstat(path, &now) == 0 && now.st_dev == ours->st_dev &&
        now.st_ino == ours->st_ino)
        unlink(path);
}

/* Reserves the overlay's name (O_EXCL: never over an existing file); ours is its
 * identity. */
static int reserve_overlay(const char *overlay, const char *base, const char *base_fmt,
                           struct stat *ours, snap_err *err)
{
    if (!overlay || !base || !base_fmt)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "overlay, base and base format needed");
    int fd = open(overlay, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST)
        return snap_err_set(err, SNAP_ERROR_EXISTS,
                            "overlay %s already exists; refusing to overwrite it",
                            overlay);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create overlay %s",
                              overlay);
    int rc = fstat(fd, ours) < 0
                 ? snap_err_errno(err, SNAP_ERROR_IO, errno, "fstat %s", overlay)
                 : 0;
    close(fd);
    if (rc)
        unlink(overlay);
    return rc;
}

static void overlay_argv(qargv *a, const snap_qimg_opts *o, const char *overlay,
                         const char *base, const char *base_fmt)
{
    qargv_init(a, o);
    qarg(a, "create");
    qarg(a, "-q");
    qarg(a, "-f");
    qarg(a, "qcow2");
    qarg(a, "-b");
    qarg(a, base);
    qarg(a, "-F");
    qarg(a, base_fmt);
    qarg(a, overlay);
}

int snap_qimg_copy_access(int fd, const char *overlay, const char *base, snap_err *err)
{
    struct stat st;
    if (stat(base, &st) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "stat %s", base);
    if (fchown(fd, st.st_uid, st.st_gid) < 0 || fchmod(fd, st.st_mode & 0666) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno,
                              "giving %s the owner and mode of %s", overlay, base);
    return 0;
}

int snap_qimg_create_overlay(const snap_qimg_opts *o, const char *overlay,
                             const char *base, const char *base_fmt, snap_err *err)
{
    struct stat ours;
    int rc = reserve_overlay(overlay, base, base_fmt, &ours, err);
    if (rc)
        return rc;
    qargv a;
    overlay_argv(&a, o, overlay, base, base_fmt);
    rc = run_simple(o, &a, "qemu-img create", overlay, true, err);
    if (rc)
        remove_if_ours(overlay, &ours);
    return rc;
}

/* Runs `create` for every (reserved) overlay in parallel; returns how many failed. */
static size_t create_reserved(const snap_qimg_opts *o, const char *const overlays[],
                              const char *const bases[], const char *const base_fmts[],
                              size_t n, snap_err *per_disk)
{
    snap_child_group *g = snap_child_group_new(o ? o->max_parallel : 0, o ? o->lg : NULL);
    snap_child_opts co = child_opts(o, false);
    for (size_t i = 0; i < n; i++) {
        qargv a;
        overlay_argv(&a, o, overlays[i], bases[i], base_fmts[i]);
        snap_child_group_add(g, "qemu-img", a.v, &co);
    }
    snap_child_group_run(g, NULL);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += judge_qimg(snap_child_group_result(g, i), "qemu-img create",
                             overlays[i], true, &per_disk[i]) != 0;
    log_timings(o, g, "qemu-img create", overlays, n);
    snap_child_group_free(g);
    return failed;
}

int snap_qimg_create_overlay_many(const snap_qimg_opts *o, const char *const overlays[],
                                  const char *const bases[],
                                  const char *const base_fmts[], size_t n,
                                  snap_err *per_disk, snap_err *err)
{
    struct stat *ours = snap_xcalloc(n, sizeof *ours);
    bool *reserved = snap_xcalloc(n, sizeof *reserved);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        snap_err_clear(&per_disk[i]);
        reserved[i] =
            !reserve_overlay(overlays[i], bases[i], base_fmts[i], &ours[i], &per_disk[i]);
        failed += !reserved[i];
    }
    /* All or none: a name that cannot be reserved stops every create. */
    if (!failed)
        failed = create_reserved(o, overlays, bases, base_fmts, n, per_disk);
    for (size_t i = 0; failed && i < n; i++)
        if (reserved[i])
            remove_if_ours(overlays[i], &ours[i]);
    free(ours);
    free(reserved);
    return failed ? many_verdict(per_disk, n, failed, "failed (no overlay left)", err)
                  : 0;
}

/* ------------------------------------------------------------ check, commit, rebase */

static void parse_check(yajl_val v, snap_qimg_check *out)
{
    out->corruptions = get_ll(v, "corruptions", 0);
    out->leaks = get_ll(v, "leaks", 0);
    out->check_errors = get_ll(v, "check-errors", 0);
    out->corruptions_fixed = get_ll(v, "corruptions-fixed", 0);
    out->leaks_fixed = get_ll(v, "leaks-fixed", 0);
    out->image_end_offset = get_ll(v, "image-end-offset", -1);
    out->total_clusters = get_ll(v, "total-clusters", -1);
    out->clean = !out->corruptions && !out->leaks && !out->check_errors;
}

int snap_qimg_parse_check(const char *json, snap_qimg_check *out, snap_err *err)
{
    memset(out, 0, sizeof *out);
    yajl_val v =
        json && json[0] == '{' ? snap_json_parse(json, "qemu-img check", err) : NULL;
    bool report = v && YAJL_IS_OBJECT(v) && snap_json_get_string(v, "filename");
    if (report)
        parse_check(v, out);
    if (v)
        yajl_tree_free(v);
    return report ? 0
                  : snap_err_set(err, SNAP_ERROR_PROTOCOL,
                                 "qemu-img check: output is not a JSON report");
}

int snap_qimg_check_image(const snap_qimg_opts *o, const char *path, unsigned flags,
                          snap_qimg_check *out, snap_err *err)
{
    qargv a;
    snap_child_result r;
    snap_err perr;
    memset(out, 0, sizeof *out);
    qargv_init(&a, o);
    qarg(&a, "check");
    qarg(&a, "--output=json");
    if (flags & SNAP_QIMG_FORCE_SHARE)
        qarg(&a, "-U");
    qarg(&a, path);
    run_qimg(o, &a, true, &r);
    /* Exit 2 (corruptions) and 3 (leaks) still come with a JSON report. */
    bool report = r.reaped && snap_qimg_parse_check(r.out, out, &perr) == 0;
    int rc = report ? 0 : judge_qimg(&r, "qemu-img check", path, false, err);
    if (!rc && !report)
        rc =
            snap_err_set(err, SNAP_ERROR_PROTOCOL,
                         "qemu-img check on %s: exited zero without a JSON report", path);
    snap_child_result_dispose(&r);
    return rc;
}

int snap_qimg_commit(const snap_qimg_opts *o, const char *path, snap_err *err)
{
    qargv a;
    qargv_init(&a, o);
    qarg(&a, "commit");
    qarg(&a, "-q");
    qarg(&a, path);
    return run_simple(o, &a, "qemu-img commit", path, true, err);
}

int snap_qimg_rebase(const snap_qimg_opts *o, const char *path, const char *new_backing,
                     const char *new_fmt, bool unsafe, snap_err *err)
{
    qargv a;
    bool none = !new_backing || !*new_backing;
    if (!none && !new_fmt)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "rebase of %s onto %s: the backing format is needed", path,
                            new_backing);
    qargv_init(&a, o);
    qarg(&a, "rebase");
    qarg(&a, "-q");
    if (unsafe)
        qarg(&a, "-u");
    qarg(&a, "-b");
    qarg(&a, none ? "" : new_backing);
    if (!none) {
        qarg(&a, "-F");
        qarg(&a, new_fmt);
    }
    qarg(&a, path);
    return run_simple(o, &a, unsafe ? "qemu-img rebase -u" : "qemu-img rebase", path,
                      true, err);
}
