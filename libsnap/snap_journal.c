/* The per-domain journal of the in-flight operation; see snap_journal.h. */
#include "snap_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snap_json.h"
#include "snap_meta.h"

#define JOURNAL_FILE ".journal.json"

static const char *const op_names[] = {"create", "revert", "delete"};
static const char *const phase_names[] = {
    "planned", "domain-stopped", "memory-saved", "frozen",         "disks-done",
    "thawed",  "xenstore-done",  "config-done",  "domain-started", "metadata-done"};

const char *snap_journal_op_name(snap_journal_op op)
{
    return (size_t)op < SNAP_N_OF(op_names) ? op_names[op] : "unknown";
}

const char *snap_journal_phase_name(snap_journal_phase ph)
{
    return (size_t)ph < SNAP_N_OF(phase_names) ? phase_names[ph] : "unknown";
}

void snap_journal_init(snap_journal *j, snap_journal_op op, const char *snapshot)
{
    memset(j, 0, sizeof *j);
    j->op = op;
    j->snapshot = snapshot ? snap_xstrdup(snapshot) : NULL;
}

static void disk_dispose(snap_journal_disk *d)
{
    free(d->vdev);
    free(d->image);
    free(d->internal_created);
    free(d->overlay_created);
    free(d->lvm_created);
    free(d->lvm_origin);
    free(d->old_params);
    free(d->old_format);
    free(d->old_pdev_path);
}

void snap_journal_dispose(snap_journal *j)
{
    free(j->snapshot);
    free(j->prev_current);
    free(j->memory_created);
    free(j->overlay_dir);
    free(j->domain_state);
    free(j->group);
    for (size_t i = 0; i < j->n_disks; i++)
        disk_dispose(&j->disks[i]);
    free(j->disks);
    memset(j, 0, sizeof *j);
}

snap_journal_disk *snap_journal_add_disk(snap_journal *j, const char *vdev)
{
    j->disks = snap_xrealloc(j->disks, (j->n_disks + 1) * sizeof *j->disks);
    snap_journal_disk *d = &j->disks[j->n_disks++];
    memset(d, 0, sizeof *d);
    d->vdev = snap_xstrdup(vdev);
    return d;
}

snap_journal_disk *snap_journal_find_disk(snap_journal *j, const char *vdev)
{
    for (size_t i = 0; i < j->n_disks; i++)
        if (strcmp(j->disks[i].vdev, vdev) == 0)
            return &j->disks[i];
    return NULL;
}

void snap_journal_set_watchdog(snap_journal *j, pid_t pid, int64_t lease_deadline_ms)
{
    j->watchdog_pid = pid;
    j->watchdog_start = snap_proc_start_time(pid);
    j->lease_deadline_ms = lease_deadline_ms;
}

bool snap_journal_owner_alive(const snap_journal *j)
{
    return snap_proc_alive(j->owner_pid, j->owner_start);
}

bool snap_journal_watchdog_alive(const snap_journal *j)
{
    return j->watchdog_pid > 0 && snap_proc_alive(j->watchdog_pid, j->watchdog_start);
}

bool snap_journal_lease_expired(const snap_journal *j, int64_t now_ms)
{
    return j->lease_deadline_ms > 0 && now_ms >= j->lease_deadline_ms;
}

/* ------------------------------------------------------------- JSON */

static void gen_process(yajl_gen g, const char *key, pid_t pid, uint64_t start)
{
    snap_json_key(g, key);
    if (pid <= 0) {
        snap_json_null(g);
        return;
    }
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "pid", pid);
    snap_json_kv_int(g, "start_time", (long long)start);
    yajl_gen_map_close(g);
}

static void gen_disk(yajl_gen g, const snap_journal_disk *d)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "vdev", d->vdev);
    snap_json_kv_str(g, "image", d->image);
    snap_json_kv_str(g, "internal_created", d->internal_created);
    snap_json_kv_str(g, "overlay_created", d->overlay_created);
    if (d->lvm_created) { /* only then: journals of image disks stay as they were */
        snap_json_kv_str(g, "lvm_created", d->lvm_created);
        snap_json_kv_str(g, "lvm_origin", d->lvm_origin);
        if (d->lvm_merge)
            snap_json_kv_bool(g, "lvm_merge", true);
    }
    snap_json_key(g, "old");
    if (d->has_old) {
        yajl_gen_map_open(g);
        snap_json_kv_str(g, "params", d->old_params);
        snap_json_kv_str(g, "format", d->old_format);
        snap_json_kv_str(g, "pdev_path", d->old_pdev_path);
        yajl_gen_map_close(g);
    } else {
        snap_json_null(g);
    }
    snap_json_kv_bool(g, "done", d->done);
    if (d->merging)
        snap_json_kv_bool(g, "merging", true);
    yajl_gen_map_close(g);
}

char *snap_journal_to_json(const snap_journal *j)
{
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "version", SNAP_JOURNAL_VERSION);
    snap_json_kv_str(g, "operation", snap_journal_op_name(j->op));
    snap_json_kv_str(g, "snapshot", j->snapshot);
    snap_json_kv_str(g, "phase", snap_journal_phase_name(j->phase));
    gen_process(g, "owner", j->owner_pid, j->owner_start);
    snap_json_kv_int(g, "started_ms", j->started_ms);
    snap_json_kv_int(g, "updated_ms", j->updated_ms);
    snap_json_kv_int(g, "lease_deadline_ms", j->lease_deadline_ms);
    gen_process(g, "watchdog", j->watchdog_pid, j->watchdog_start);
    snap_json_kv_str(g, "prev_current", j->prev_current);
    snap_json_kv_str(g, "memory_created", j->memory_created);
    if (j->domain_state)
        snap_json_kv_str(g, "domain_state", j->domain_state);
    if (j->overlay_dir)
        snap_json_kv_str(g, "overlay_dir", j->overlay_dir);
    if (j->group)
        snap_json_kv_str(g, "group", j->group);
    snap_json_key(g, "disks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < j->n_disks; i++)
        gen_disk(g, &j->disks[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    return snap_json_gen_finish(g, NULL);
}

#define RC(r) ((r)->err ? (r)->err->code : SNAP_ERROR_INVAL)

/* A string member that must be one of names[]. */
static int read_enum(const snap_meta_reader *r, yajl_val obj, const char *key,
                     const char *const *names, size_t n, int *out)
{
    char *s;
    if (snap_meta_read_str(r, obj, key, false, &s) < 0)
        return RC(r);
    *out = -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            *out = (int)i;
    free(s);
    return *out < 0 ? snap_meta_field_err(r, key, "unknown value") : 0;
}

static int read_process(const snap_meta_reader *parent, yajl_val root, const char *key,
                        pid_t *pid, uint64_t *start)
{
    yajl_val v;
    long long p, s;
    if (snap_meta_read_obj(parent, root, key, true, &v) < 0)
        return RC(parent);
    *pid = 0;
    *start = 0;
    if (!v)
        return 0;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s.", key);
    snap_meta_reader r = {parent->what, parent->err, prefix};
    if (snap_meta_read_int(&r, v, "pid", 1, INT32_MAX, &p) < 0 ||
        snap_meta_read_int(&r, v, "start_time", 0, INT64_MAX, &s) < 0)
        return RC(&r);
    *pid = (pid_t)p;
    *start = (uint64_t)s;
    return 0;
}

static int read_disk(const snap_meta_reader *parent, yajl_val v, size_t i,
                     snap_journal_disk *d)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "disks[%zu].", i);
    snap_meta_reader r = {parent->what, parent->err, prefix};
    yajl_val old;
    if (!YAJL_IS_OBJECT(v))
        return snap_meta_field_err(&r, "", "expected an object");
    if (snap_meta_read_str(&r, v, "vdev", false, &d->vdev) < 0 ||
        snap_meta_read_str(&r, v, "image", true, &d->image) < 0 ||
        snap_meta_read_str(&r, v, "internal_created", true, &d->internal_created) < 0 ||
        snap_meta_read_str(&r, v, "overlay_created", true, &d->overlay_created) < 0 ||
        snap_meta_read_str(&r, v, "lvm_created", true, &d->lvm_created) < 0 ||
        snap_meta_read_str(&r, v, "lvm_origin", true, &d->lvm_origin) < 0 ||
        snap_meta_read_bool(&r, v, "done", &d->done) < 0 ||
        snap_meta_read_obj(&r, v, "old", true, &old) < 0)
        return RC(&r);
    /* Optional: journals written before it existed have no "merging". */
    if (snap_json_get(v, "merging") &&
        snap_meta_read_bool(&r, v, "merging", &d->merging) < 0)
        return RC(&r);
    if (snap_json_get(v, "lvm_merge") &&
        snap_meta_read_bool(&r, v, "lvm_merge", &d->lvm_merge) < 0)
        return RC(&r);
    if (!old)
        return 0;
    snprintf(prefix, sizeof prefix, "disks[%zu].old.", i);
    d->has_old = true;
    if (snap_meta_read_str(&r, old, "params", true, &d->old_params) < 0 ||
        snap_meta_read_str(&r, old, "format", true, &d->old_format) < 0 ||
        snap_meta_read_str(&r, old, "pdev_path", true, &d->old_pdev_path) < 0)
        return RC(&r);
    return 0;
}

static int read_disks(const snap_meta_reader *r, yajl_val root, snap_journal *j)
{
    yajl_val disks = snap_json_get(root, "disks");
    if (!YAJL_IS_ARRAY(disks))
        return snap_meta_field_err(r, "disks", disks ? "expected an array" : "missing");
    j->disks = snap_xcalloc(disks->u.array.len, sizeof *j->disks);
    for (size_t i = 0; i < disks->u.array.len; i++) {
        j->n_disks++;
        if (read_disk(r, disks->u.array.values[i], i, &j->disks[i]) < 0)
            return RC(r);
    }
    return 0;
}

static int read_root(const snap_meta_reader *r, yajl_val root, void *obj)
{
    snap_journal *j = obj;
    long long started, updated, lease;
    int op, phase;
    if (snap_meta_read_version(r, root, "journal", SNAP_JOURNAL_VERSION) < 0)
        return RC(r);
    if (read_enum(r, root, "operation", op_names, SNAP_N_OF(op_names), &op) < 0 ||
        read_enum(r, root, "phase", phase_names, SNAP_N_OF(phase_names), &phase) < 0 ||
        snap_meta_read_str(r, root, "snapshot", false, &j->snapshot) < 0 ||
        read_process(r, root, "owner", &j->owner_pid, &j->owner_start) < 0 ||
        read_process(r, root, "watchdog", &j->watchdog_pid, &j->watchdog_start) < 0 ||
        snap_meta_read_int(r, root, "started_ms", 0, INT64_MAX, &started) < 0 ||
        snap_meta_read_int(r, root, "updated_ms", 0, INT64_MAX, &updated) < 0 ||
        snap_meta_read_int(r, root, "lease_deadline_ms", 0, INT64_MAX, &lease) < 0 ||
        snap_meta_read_str(r, root, "prev_current", true, &j->prev_current) < 0 ||
        snap_meta_read_str(r, root, "memory_created", true, &j->memory_created) < 0 ||
        snap_meta_read_str(r, root, "domain_state", true, &j->domain_state) < 0 ||
        snap_meta_read_str(r, root, "overlay_dir", true, &j->overlay_dir) < 0 ||
        snap_meta_read_str(r, root, "group", true, &j->group) < 0 ||
        read_disks(r, root, j) < 0)
        return RC(r);
    j->op = (snap_journal_op)op;
    j->phase = (snap_journal_phase)phase;
    j->started_ms = started;
    j->updated_ms = updated;
    j->lease_deadline_ms = lease;
    return 0;
}

int snap_journal_from_json(snap_journal *j, const char *text, const char *what,
                           snap_err *err)
{
    snap_err local;
    if (!err)
        err = &local;
    snap_journal_init(j, SNAP_JOURNAL_CREATE, NULL);
    int rc = snap_meta_read_document(text, what, read_root, j, err);
    if (rc < 0)
        snap_journal_dispose(j);
    return rc;
}

/* ------------------------------------------------------------- storage */

int snap_journal_update(snap_meta_store *st, snap_journal *j, snap_err *err)
{
    j->updated_ms = snap_realtime_ms();
    char *text = snap_journal_to_json(j);
    int rc = snap_meta_store_write(st, JOURNAL_FILE, text, strlen(text), err);
    free(text);
    if (rc < 0)
        snap_err_context(err, "journal of %s of snapshot '%s'",
                         snap_journal_op_name(j->op), j->snapshot);
    return rc;
}

int snap_journal_set_phase(snap_meta_store *st, snap_journal *j, snap_journal_phase ph,
                           snap_err *err)
{
    j->phase = ph;
    return snap_journal_update(st, j, err);
}

int snap_journal_begin(snap_meta_store *st, snap_journal *j, snap_err *err)
{
    snap_journal old;
    bool found = false;
    int rc = snap_journal_load(st, &old, &found, err);
    if (rc < 0)
        return rc;
    if (found) {
        bool alive = snap_journal_owner_alive(&old);
        rc =
            snap_err_set(err, SNAP_ERROR_BUSY,
                         "domain %s has an unfinished %s of snapshot '%s' (phase %s, pid "
                         "%d, %s): it must be recovered first",
                         st->label, snap_journal_op_name(old.op), old.snapshot,
                         snap_journal_phase_name(old.phase), (int)old.owner_pid,
                         alive ? "still running" : "no longer running");
        snap_journal_dispose(&old);
        return rc;
    }
    j->owner_pid = getpid();
    j->owner_start = snap_proc_start_time(j->owner_pid);
    j->started_ms = snap_realtime_ms();
    return snap_journal_update(st, j, err);
}

int snap_journal_finish(snap_meta_store *st, snap_err *err)
{
    return snap_meta_store_unlink(st, JOURNAL_FILE, err);
}

int snap_journal_move_aside(snap_meta_store *st, char **moved_to, snap_err *err)
{
    char aside[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(aside, sizeof aside, JOURNAL_FILE ".discarded-%Y%m%dT%H%M%SZ",
             gmtime_r(&now, &tm));
    *moved_to = snap_meta_store_path(st, aside);
    if (renameat2(st->dirfd, JOURNAL_FILE, st->dirfd, aside, RENAME_NOREPLACE) < 0)
        return snap_err_errno(err, errno == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO,
                              errno, "moving %s/%s aside to %s", st->dir, JOURNAL_FILE,
                              *moved_to);
    if (fsync(st->dirfd) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "fsync %s", st->dir);
    return 0;
}

int snap_journal_load(snap_meta_store *st, snap_journal *j, bool *found, snap_err *err)
{
    char *text = NULL;
    *found = false;
    snap_journal_init(j, SNAP_JOURNAL_CREATE, NULL);
    int rc = snap_meta_store_read(st, JOURNAL_FILE, &text, NULL, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    char *path = snap_meta_store_path(st, JOURNAL_FILE);
    rc = snap_journal_from_json(j, text, path, err);
    *found = rc == 0;
    free(path);
    free(text);
    return rc;
}
