/* Snapshot records: names, structs and their JSON form; see snap_meta.h. */
#include "snap_meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap_json.h"
#include "snap_text.h"

/* ------------------------------------------------------------- names */

int snap_meta_name_check(const char *name, snap_err *err)
{
    if (!name || !*name)
        return snap_err_set(err, SNAP_ERROR_INVAL, "snapshot name is empty");
    size_t len = strlen(name);
    if (len > SNAP_META_NAME_MAX)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "snapshot name is %zu bytes long (at most %d)", len,
                            SNAP_META_NAME_MAX);
    if (name[0] == '.' || name[0] == '-')
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "snapshot name '%s' must not start with '%c'", name, name[0]);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = snap_text_utf8_len((const unsigned char *)name + i, &cp);
        if (n == 0)
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "snapshot name is not valid UTF-8 (byte %zu)", i);
        if (snap_text_is_control(cp))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "snapshot name contains a control character (byte %zu)",
                                i);
        if (cp == '/')
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "snapshot name '%s' must not contain '/'", name);
        i += (size_t)n;
    }
    return 0;
}

int snap_meta_new_name_check(const char *name, snap_err *err)
{
    int rc = snap_meta_name_check(name, err);
    return rc ? rc : snap_text_check("snapshot name", name, err);
}

bool snap_meta_name_valid(const char *name)
{
    return snap_meta_name_check(name, NULL) == 0;
}

/* ------------------------------------------------------------- the public view */

snap_info *snap_info_from_meta(const snap_meta *m)
{
    snap_info *s = snap_xcalloc(1, sizeof *s);
    s->name = snap_xstrdup(m->name);
    s->description = snap_xstrdup(m->description ? m->description : "");
    s->parent = snap_xstrdup_or_null(m->parent);
    s->creation_sec = m->ctime_sec;
    s->creation_nsec = m->ctime_nsec;
    s->domain_name = snap_xstrdup(m->domain.name);
    s->domain_uuid = snap_xstrdup(m->domain.uuid);
    s->domain_state = m->domain.state;
    s->group = snap_xstrdup_or_null(m->group);
    s->disks = snap_xcalloc(m->n_disks, sizeof *s->disks);
    s->n_disks = m->n_disks;
    for (size_t i = 0; i < m->n_disks; i++) {
        const snap_meta_disk *md = &m->disks[i];
        snap_disk_info *d = &s->disks[i];
        d->vdev = snap_xstrdup(md->vdev);
        d->backend = snap_xstrdup(md->backend);
        d->method = md->method;
        d->format = snap_xstrdup(md->format);
        d->base_path = snap_xstrdup(md->base_path);
        d->overlay_path = snap_xstrdup_or_null(md->overlay_path);
        if (md->lvm_merged) /* the revert to it consumed it */
            d->internal_name =
                snap_xasprintf("%s (merged by a revert: gone)", md->lvm_snapshot);
        else
            d->internal_name = snap_xstrdup_or_null(
                snap_method_is_lvm(md->method) ? md->lvm_snapshot : md->qemu_snap_name);
    }
    s->excluded = snap_strv_dup(m->excluded, m->n_excluded);
    s->n_excluded = m->n_excluded;
    s->revert_overlays = snap_strv_dup(m->revert_overlays, m->n_revert_overlays);
    s->n_revert_overlays = m->n_revert_overlays;
    s->quiesce_policy = m->quiesce.policy;
    s->quiesced = m->quiesce.state == SNAP_META_QUIESCED;
    s->frozen_count = m->quiesce.frozen_count;
    s->frozen_ms = m->quiesce.window_ms;
    s->thaw_ok = m->quiesce.thaw_ok;
    s->quiesce_reason = snap_xstrdup_or_null(m->quiesce.reason);
    if (m->quiesce.has_timeline) {
        s->freeze_thaw_by_ms = m->quiesce.timeline.thaw_by_ms;
        s->freeze_worst_ms = m->quiesce.timeline.worst_slow_ms;
        s->freeze_watchdog_ms = m->quiesce.timeline.watchdog_ms;
    }
    s->verification = snap_verification_dup(m->verification);
    s->consistency = snap_meta_consistency_public(m->quiesce.state);
    s->n_filesystems = m->quiesce.n_filesystems;
    s->filesystems = snap_xcalloc(s->n_filesystems + 1, sizeof *s->filesystems);
    for (size_t i = 0; i < s->n_filesystems; i++) {
        const snap_meta_fs *f = &m->quiesce.filesystems[i];
        s->filesystems[i] = (snap_fs_info){
            .mountpoint = snap_xstrdup(f->mountpoint),
            .type = snap_xstrdup_or_null(f->type),
            .device = snap_xstrdup_or_null(f->device),
            .outcome = f->outcome,
            .reason = snap_xstrdup_or_null(f->reason),
        };
    }
    s->memory_path = m->has_memory ? snap_xstrdup_or_null(m->memory_path) : NULL;
    s->memory_size = m->memory_size;
    s->json = snap_meta_to_json(m);
    return s;
}

/* ------------------------------------------------------------- summaries */

void snap_meta_entry_dispose(snap_meta_entry *e)
{
    free(e->name);
    free(e->parent);
    free(e->description);
    memset(e, 0, sizeof *e);
}

void snap_meta_entry_from_meta(snap_meta_entry *e, const snap_meta *m)
{
    memset(e, 0, sizeof *e);
    e->name = snap_xstrdup(m->name);
    e->parent = m->parent ? snap_xstrdup(m->parent) : NULL;
    e->description = m->description ? snap_xstrdup(m->description) : NULL;
    e->ctime_sec = m->ctime_sec;
    e->ctime_nsec = m->ctime_nsec;
    e->domstate = m->domain.state;
    e->n_disks = (unsigned)m->n_disks;
    for (size_t i = 0; i < m->n_disks; i++) {
        if (m->disks[i].method == SNAP_METHOD_INTERNAL)
            e->n_internal++;
        else if (m->disks[i].method == SNAP_METHOD_EXTERNAL)
            e->n_external++; /* LVM volumes: the rest of n_disks */
    }
    e->n_excluded = (unsigned)m->n_excluded;
    e->consistency = m->quiesce.state;
    e->has_memory = m->has_memory;
}

int snap_meta_entry_by_creation(const void *a, const void *b)
{
    const snap_meta_entry *x = a, *y = b;
    if (x->ctime_sec != y->ctime_sec)
        return x->ctime_sec < y->ctime_sec ? -1 : 1;
    if (x->ctime_nsec != y->ctime_nsec)
        return x->ctime_nsec < y->ctime_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ------------------------------------------------------------- enums */

/* Record strings and the enum values they stand for (AUTO has none). */
typedef struct enum_name {
    const char *name;
    int value;
} enum_name;

static const enum_name domstate_names[] = {{"running", SNAP_DOMAIN_RUNNING},
                                           {"paused", SNAP_DOMAIN_PAUSED},
                                           {"shutoff", SNAP_DOMAIN_SHUTOFF}};
static const enum_name method_names[] = {{"internal", SNAP_METHOD_INTERNAL},
                                         {"external", SNAP_METHOD_EXTERNAL},
                                         {"lvm-thin", SNAP_METHOD_LVM_THIN},
                                         {"lvm", SNAP_METHOD_LVM}};
static const enum_name policy_names[] = {{"required", SNAP_QUIESCE_REQUIRED},
                                         {"best-effort", SNAP_QUIESCE_BEST_EFFORT},
                                         {"off", SNAP_QUIESCE_OFF}};
static const enum_name consistency_names[] = {
    {"quiesced", SNAP_META_QUIESCED},
    {"crash-consistent", SNAP_META_CRASH_CONSISTENT},
    {"partially-quiesced", SNAP_META_PARTIALLY_QUIESCED}};
static const enum_name fs_outcome_names[] = {
    {"frozen", SNAP_FS_FROZEN}, {"skipped", SNAP_FS_SKIPPED}, {"failed", SNAP_FS_FAILED}};
static const enum_name public_consistency_names[] = {
    {"quiesced", SNAP_CONSISTENCY_QUIESCED},
    {"partially-quiesced", SNAP_CONSISTENCY_PARTIAL},
    {"crash-consistent", SNAP_CONSISTENCY_CRASH}};

/* The value of string s in names, or -1. */
static int parse_enum(const char *s, const enum_name *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].value;
    return -1;
}

static const char *enum_str(int v, const enum_name *names, int n)
{
    for (int i = 0; i < n; i++)
        if (names[i].value == v)
            return names[i].name;
    return NULL;
}

#define ENUM_FUNCS(type, fn, to_string, names)                                           \
    const char *to_string(type v)                                                        \
    {                                                                                    \
        const char *s = enum_str((int)v, names, (int)SNAP_N_OF(names));                  \
        return s ? s : "unknown";                                                        \
    }                                                                                    \
    int snap_meta_##fn##_parse(const char *s, type *out)                                 \
    {                                                                                    \
        int v = parse_enum(s, names, (int)SNAP_N_OF(names));                             \
        if (v >= 0)                                                                      \
            *out = (type)v;                                                              \
        return v < 0 ? -1 : 0;                                                           \
    }

ENUM_FUNCS(snap_domain_state, domstate, snap_domain_state_to_string, domstate_names)
ENUM_FUNCS(snap_method, method, snap_method_to_string, method_names)
ENUM_FUNCS(snap_quiesce_policy, policy, snap_quiesce_policy_to_string, policy_names)
ENUM_FUNCS(snap_meta_consistency, consistency, snap_meta_consistency_name,
           consistency_names)
ENUM_FUNCS(snap_fs_outcome, fs_outcome, snap_fs_outcome_to_string, fs_outcome_names)

const char *snap_consistency_to_string(snap_consistency c)
{
    const char *s = enum_str((int)c, public_consistency_names,
                             (int)SNAP_N_OF(public_consistency_names));
    return s ? s : "unknown";
}

snap_consistency snap_meta_consistency_public(snap_meta_consistency c)
{
    switch (c) {
    case SNAP_META_QUIESCED: return SNAP_CONSISTENCY_QUIESCED;
    case SNAP_META_PARTIALLY_QUIESCED: return SNAP_CONSISTENCY_PARTIAL;
    case SNAP_META_CRASH_CONSISTENT: break;
    }
    return SNAP_CONSISTENCY_CRASH;
}

/* ------------------------------------------------------------- structs */

void snap_meta_init(snap_meta *m)
{
    memset(m, 0, sizeof *m);
    m->domain.domid = -1;
    m->quiesce.policy = SNAP_QUIESCE_OFF;
    m->quiesce.state = SNAP_META_CRASH_CONSISTENT;
}

static void disk_dispose(snap_meta_disk *d)
{
    free(d->vdev);
    free(d->backend);
    free(d->format);
    free(d->base_path);
    free(d->overlay_path);
    free(d->overlay_format);
    free(d->qemu_snap_name);
    free(d->qemu_snap_id);
    free(d->node_before);
    free(d->node_after);
    free(d->lvm_volume);
    free(d->lvm_snapshot);
}

void snap_meta_dispose(snap_meta *m)
{
    free(m->name);
    free(m->description);
    free(m->parent);
    free(m->group);
    free(m->domain.name);
    free(m->domain.uuid);
    for (size_t i = 0; i < m->n_disks; i++)
        disk_dispose(&m->disks[i]);
    free(m->disks);
    snap_strv_free(m->excluded, m->n_excluded);
    snap_strv_free(m->revert_overlays, m->n_revert_overlays);
    free(m->memory_path);
    free(m->quiesce.reason);
    for (size_t i = 0; i < m->quiesce.n_filesystems; i++) {
        snap_meta_fs *f = &m->quiesce.filesystems[i];
        free(f->mountpoint);
        free(f->type);
        free(f->device);
        free(f->reason);
    }
    free(m->quiesce.filesystems);
    yajl_tree_free(m->config);
    snap_verification_free(m->verification);
    snap_meta_init(m);
}

void snap_meta_add_fs(snap_meta_quiesce *q, const char *mountpoint, const char *type,
                      const char *device, snap_fs_outcome outcome, const char *reason)
{
    q->filesystems =
        snap_xrealloc(q->filesystems, (q->n_filesystems + 1) * sizeof *q->filesystems);
    q->filesystems[q->n_filesystems++] = (snap_meta_fs){
        .mountpoint = snap_xstrdup(mountpoint),
        .type = snap_xstrdup_or_null(type),
        .device = snap_xstrdup_or_null(device),
        .outcome = outcome,
        .reason = snap_xstrdup_or_null(reason),
    };
}

snap_meta_disk *snap_meta_add_disk(snap_meta *m)
{
    m->disks = snap_xrealloc(m->disks, (m->n_disks + 1) * sizeof *m->disks);
    snap_meta_disk *d = &m->disks[m->n_disks++];
    memset(d, 0, sizeof *d);
    return d;
}

void snap_meta_add_revert_overlay(snap_meta *m, const char *path)
{
    for (size_t i = 0; i < m->n_revert_overlays; i++)
        if (!strcmp(m->revert_overlays[i], path))
            return;
    m->revert_overlays = snap_xrealloc(
        m->revert_overlays, (m->n_revert_overlays + 1) * sizeof *m->revert_overlays);
    m->revert_overlays[m->n_revert_overlays++] = snap_xstrdup(path);
}

void snap_meta_add_excluded(snap_meta *m, const char *vdev)
{
    m->excluded = snap_xrealloc(m->excluded, (m->n_excluded + 1) * sizeof *m->excluded);
    m->excluded[m->n_excluded++] = snap_xstrdup(vdev);
}

int snap_meta_set_config_text(snap_meta *m, const char *json, snap_err *err)
{
    yajl_val v = NULL;
    if (json && !(v = snap_json_parse(json, "domain config", err)))
        return err ? err->code : SNAP_ERROR_PROTOCOL;
    yajl_tree_free(m->config);
    m->config = v;
    return 0;
}

void snap_meta_stamp_now(snap_meta *m)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->ctime_sec = ts.tv_sec;
    m->ctime_nsec = (int32_t)ts.tv_nsec;
}

/* ------------------------------------------------------------- validation */

static int disk_validate(const snap_meta_disk *d, size_t i, const char *what,
                         snap_err *err)
{
    const char *missing = NULL;
    if (!d->vdev || !*d->vdev)
        missing = "vdev";
    else if (!d->backend)
        missing = "backend";
    else if (!d->format)
        missing = "format";
    else if (!d->base_path)
        missing = "base_path";
    else if (d->method == SNAP_METHOD_EXTERNAL && !d->overlay_path)
        missing = "overlay_path";
    else if (d->method == SNAP_METHOD_EXTERNAL && !d->overlay_format)
        missing = "overlay_format";
    else if (d->method == SNAP_METHOD_INTERNAL && !d->qemu_snap_name)
        missing = "qemu_snapshot_name";
    else if (snap_method_is_lvm(d->method) && !d->lvm_volume)
        missing = "lvm_volume";
    else if (snap_method_is_lvm(d->method) && !d->lvm_snapshot)
        missing = "lvm_snapshot";
    if (missing)
        return snap_err_set(
            err, SNAP_ERROR_INVAL, "%s: field 'disks[%zu].%s': required%s", what, i,
            missing,
            d->method == SNAP_METHOD_EXTERNAL ? " for an external snapshot" : "");
    return 0;
}

static bool vdev_seen(const snap_meta *m, size_t n_disks, size_t n_excl, const char *vdev)
{
    for (size_t i = 0; i < n_disks; i++)
        if (strcmp(m->disks[i].vdev, vdev) == 0)
            return true;
    for (size_t i = 0; i < n_excl; i++)
        if (strcmp(m->excluded[i], vdev) == 0)
            return true;
    return false;
}

static int disks_validate(const snap_meta *m, const char *what, snap_err *err)
{
    for (size_t i = 0; i < m->n_disks; i++) {
        if (disk_validate(&m->disks[i], i, what, err) < 0)
            return err ? err->code : SNAP_ERROR_INVAL;
        if (vdev_seen(m, i, 0, m->disks[i].vdev))
            return snap_err_set(err, SNAP_ERROR_INVAL, "%s: disk %s is listed twice",
                                what, m->disks[i].vdev);
    }
    for (size_t i = 0; i < m->n_excluded; i++)
        if (!m->excluded[i] || vdev_seen(m, m->n_disks, i, m->excluded[i]))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "%s: field 'excluded_disks[%zu]': empty or listed twice",
                                what, i);
    return 0;
}

int snap_meta_validate(const snap_meta *m, const char *what, snap_err *err)
{
    if (snap_meta_name_check(m->name, err) < 0)
        return snap_err_context(err, "%s: field 'name'", what);
    if (m->parent && snap_meta_name_check(m->parent, err) < 0)
        return snap_err_context(err, "%s: field 'parent'", what);
    if (m->parent && strcmp(m->parent, m->name) == 0)
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: snapshot '%s' is its own parent",
                            what, m->name);
    if (m->ctime_nsec < 0 || m->ctime_nsec >= 1000000000)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "%s: field 'creation_time.nsec': out of range", what);
    if (!m->domain.name || !*m->domain.name)
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: field 'domain.name': required",
                            what);
    if (!snap_uuid_valid(m->domain.uuid))
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: field 'domain.uuid': not a UUID",
                            what);
    if (m->has_memory && (!m->memory_path || !*m->memory_path))
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: field 'memory.path': required",
                            what);
    if (m->quiesce.frozen_count < 0 || m->quiesce.window_ms < 0)
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: field 'quiesce': negative count",
                            what);
    return disks_validate(m, what, err);
}

/* ------------------------------------------------------------- writing */

static void gen_qsnap_stamp(yajl_gen g, const snap_meta_qsnap_stamp *st)
{
    if (!st->known) {
        snap_json_null(g);
        return;
    }
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "date_sec", st->date_sec);
    snap_json_kv_int(g, "date_nsec", st->date_nsec);
    snap_json_kv_int(g, "vm_clock_sec", st->vm_clock_sec);
    snap_json_kv_int(g, "vm_clock_nsec", st->vm_clock_nsec);
    snap_json_kv_int(g, "vm_state_size", st->vm_state_size);
    yajl_gen_map_close(g);
}

static void gen_disk(yajl_gen g, const snap_meta_disk *d)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "vdev", d->vdev);
    snap_json_kv_str(g, "backend", d->backend);
    snap_json_kv_str(g, "method", snap_method_to_string(d->method));
    snap_json_kv_str(g, "format", d->format);
    snap_json_kv_str(g, "base_path", d->base_path);
    snap_json_kv_str(g, "overlay_path", d->overlay_path);
    snap_json_kv_str(g, "overlay_format", d->overlay_format);
    snap_json_kv_str(g, "qemu_snapshot_name", d->qemu_snap_name);
    snap_json_kv_str(g, "qemu_snapshot_id", d->qemu_snap_id);
    snap_json_key(g, "qemu_snapshot_stamp");
    gen_qsnap_stamp(g, &d->qemu_snap_stamp);
    snap_json_kv_str(g, "node_before", d->node_before);
    snap_json_kv_str(g, "node_after", d->node_after);
    if (snap_method_is_lvm(d->method)) {
        snap_json_kv_str(g, "lvm_volume", d->lvm_volume);
        snap_json_kv_str(g, "lvm_snapshot", d->lvm_snapshot);
        if (d->lvm_merged) /* only then: other records stay as they were */
            snap_json_kv_bool(g, "lvm_merged", true);
    }
    yajl_gen_map_close(g);
}

/* The timeline's fields, in the record and back (names as in snap_timeline.h). */
#define TIMELINE_FIELDS(X)                                                               \
    X(freeze_timeout_ms)                                                                 \
    X(budget_ms)                                                                         \
    X(lease_ms)                                                                          \
    X(freeze_wait_ms)                                                                    \
    X(thaw_by_ms)                                                                        \
    X(thaw_wait_ms)                                                                      \
    X(give_up_ms)                                                                        \
    X(watchdog_ms)                                                                       \
    X(late_answer_ms)                                                                    \
    X(worst_slow_ms)

static void gen_timeline(yajl_gen g, const snap_freeze_timeline *tl)
{
    yajl_gen_map_open(g);
#define GEN(f) snap_json_kv_int(g, #f, tl->f);
    TIMELINE_FIELDS(GEN)
#undef GEN
    yajl_gen_map_close(g);
}

static void gen_quiesce(yajl_gen g, const snap_meta_quiesce *q)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "policy", snap_quiesce_policy_to_string(q->policy));
    snap_json_kv_bool(g, "agent_present", q->agent_present);
    snap_json_kv_int(g, "frozen_count", q->frozen_count);
    snap_json_kv_int(g, "window_ms", q->window_ms);
    snap_json_kv_bool(g, "thaw_ok", q->thaw_ok);
    snap_json_kv_str(g, "state", snap_meta_consistency_name(q->state));
    if (q->reason)
        snap_json_kv_str(g, "reason", q->reason);
    if (q->has_timeline) {
        snap_json_key(g, "freeze_timeline");
        gen_timeline(g, &q->timeline);
    }
    if (q->n_filesystems) {
        snap_json_key(g, "filesystems");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < q->n_filesystems; i++) {
            const snap_meta_fs *f = &q->filesystems[i];
            yajl_gen_map_open(g);
            snap_json_kv_str(g, "mountpoint", f->mountpoint);
            snap_json_kv_str(g, "type", f->type);
            snap_json_kv_str(g, "device", f->device);
            snap_json_kv_str(g, "outcome", snap_fs_outcome_to_string(f->outcome));
            if (f->reason)
                snap_json_kv_str(g, "reason", f->reason);
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
}

static void gen_domain(yajl_gen g, const snap_meta *m)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "name", m->domain.name);
    snap_json_kv_str(g, "uuid", m->domain.uuid);
    snap_json_key(g, "domid");
    if (m->domain.domid >= 0)
        snap_json_int(g, m->domain.domid);
    else
        snap_json_null(g);
    snap_json_kv_str(g, "state", snap_domain_state_to_string(m->domain.state));
    yajl_gen_map_close(g);
}

/*
 * {"version": 1, "name", "description", "creation_time": {"sec", "nsec"},
 *  "parent", "domain": {"name", "uuid", "domid", "state"}, "disks": [...],
 *  "excluded_disks": [...], "quiesce": {...}, "memory": {"path", "size"} | null,
 *  "config": <libxl-json> | null}
 */
char *snap_meta_to_json(const snap_meta *m)
{
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "version", SNAP_META_VERSION);
    snap_json_kv_str(g, "name", m->name);
    snap_json_kv_str(g, "description", m->description);
    snap_json_key(g, "creation_time");
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "sec", m->ctime_sec);
    snap_json_kv_int(g, "nsec", m->ctime_nsec);
    yajl_gen_map_close(g);
    snap_json_kv_str(g, "parent", m->parent);
    snap_json_key(g, "domain");
    gen_domain(g, m);
    snap_json_key(g, "disks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < m->n_disks; i++)
        gen_disk(g, &m->disks[i]);
    yajl_gen_array_close(g);
    snap_json_kv_strv(g, "excluded_disks", (const char *const *)m->excluded,
                      m->n_excluded);
    snap_json_key(g, "quiesce");
    gen_quiesce(g, &m->quiesce);
    snap_json_key(g, "memory");
    if (m->has_memory) {
        yajl_gen_map_open(g);
        snap_json_kv_str(g, "path", m->memory_path);
        snap_json_kv_int(g, "size", (long long)m->memory_size);
        yajl_gen_map_close(g);
    } else {
        snap_json_null(g);
    }
    if (m->n_revert_overlays)
        snap_json_kv_strv(g, "revert_overlays", (const char *const *)m->revert_overlays,
                          m->n_revert_overlays);
    if (m->verification) {
        snap_json_key(g, "verification");
        snap_meta_gen_verification(g, m->verification);
    }
    if (m->group)
        snap_json_kv_str(g, "group", m->group);
    snap_json_key(g, "config");
    snap_json_tree(g, m->config);
    yajl_gen_map_close(g);
    return snap_json_gen_finish(g, NULL);
}

/* ------------------------------------------------------------- reading */

/* A string member that must be one of names[]; its index goes to *out. */
static int get_enum(const snap_meta_reader *r, yajl_val obj, const char *key,
                    const enum_name *names, int n, int *out)
{
    char *s;
    if (snap_meta_read_str(r, obj, key, false, &s) < 0)
        return r->err ? r->err->code : SNAP_ERROR_INVAL;
    *out = parse_enum(s, names, n);
    free(s);
    if (*out >= 0)
        return 0;
    char msg[256];
    int at = snprintf(msg, sizeof msg, "expected one of");
    for (int i = 0; i < n && at > 0 && (size_t)at < sizeof msg; i++)
        at += snprintf(msg + at, sizeof msg - (size_t)at, "%s \"%s\"", i ? "," : "",
                       names[i].name);
    return snap_meta_field_err(r, key, msg);
}

#define GET_ENUM(r, obj, key, names, out)                                                \
    get_enum(r, obj, key, names, (int)SNAP_N_OF(names), out)

#define RC(r) ((r)->err ? (r)->err->code : SNAP_ERROR_INVAL)

/* "qemu_snapshot_stamp": optional (records before it have none), null or complete. */
static int parse_qsnap_stamp(const snap_meta_reader *parent, yajl_val disk,
                             snap_meta_qsnap_stamp *st)
{
    yajl_val v;
    if (snap_meta_read_obj(parent, disk, "qemu_snapshot_stamp", true, &v) < 0)
        return RC(parent);
    if (!v)
        return 0;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%sqemu_snapshot_stamp.", parent->prefix);
    snap_meta_reader r = {parent->what, parent->err, prefix};
    if (snap_meta_read_int(&r, v, "date_sec", 0, INT64_MAX, &st->date_sec) < 0 ||
        snap_meta_read_int(&r, v, "date_nsec", 0, 999999999, &st->date_nsec) < 0 ||
        snap_meta_read_int(&r, v, "vm_clock_sec", 0, INT64_MAX, &st->vm_clock_sec) < 0 ||
        snap_meta_read_int(&r, v, "vm_clock_nsec", 0, 999999999, &st->vm_clock_nsec) <
            0 ||
        snap_meta_read_int(&r, v, "vm_state_size", 0, INT64_MAX, &st->vm_state_size) < 0)
        return RC(&r);
    st->known = true;
    return 0;
}

static int parse_disk(const snap_meta_reader *parent, yajl_val v, size_t i,
                      snap_meta_disk *d)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "disks[%zu].", i);
    snap_meta_reader r = {parent->what, parent->err, prefix};
    if (!YAJL_IS_OBJECT(v)) {
        snap_meta_reader top = {parent->what, parent->err, ""};
        prefix[strlen(prefix) - 1] = '\0';
        return snap_meta_field_err(&top, prefix, "expected an object");
    }
    int method;
    if (snap_meta_read_str(&r, v, "vdev", false, &d->vdev) < 0 ||
        snap_meta_read_str(&r, v, "backend", false, &d->backend) < 0 ||
        GET_ENUM(&r, v, "method", method_names, &method) < 0 ||
        snap_meta_read_str(&r, v, "format", false, &d->format) < 0 ||
        snap_meta_read_str(&r, v, "base_path", false, &d->base_path) < 0 ||
        snap_meta_read_str(&r, v, "overlay_path", true, &d->overlay_path) < 0 ||
        snap_meta_read_str(&r, v, "overlay_format", true, &d->overlay_format) < 0 ||
        snap_meta_read_str(&r, v, "qemu_snapshot_name", true, &d->qemu_snap_name) < 0 ||
        snap_meta_read_str(&r, v, "qemu_snapshot_id", true, &d->qemu_snap_id) < 0 ||
        snap_meta_read_str(&r, v, "node_before", true, &d->node_before) < 0 ||
        snap_meta_read_str(&r, v, "node_after", true, &d->node_after) < 0 ||
        snap_meta_read_str(&r, v, "lvm_volume", true, &d->lvm_volume) < 0 ||
        snap_meta_read_str(&r, v, "lvm_snapshot", true, &d->lvm_snapshot) < 0 ||
        parse_qsnap_stamp(&r, v, &d->qemu_snap_stamp) < 0)
        return RC(&r);
    if (snap_json_get(v, "lvm_merged") &&
        snap_meta_read_bool(&r, v, "lvm_merged", &d->lvm_merged) < 0)
        return RC(&r);
    d->method = (snap_method)method;
    return 0;
}

static int parse_disks(const snap_meta_reader *r, yajl_val root, snap_meta *m)
{
    yajl_val disks = snap_json_get(root, "disks");
    if (!YAJL_IS_ARRAY(disks))
        return snap_meta_field_err(r, "disks", disks ? "expected an array" : "missing");
    for (size_t i = 0; i < disks->u.array.len; i++)
        if (parse_disk(r, disks->u.array.values[i], i, snap_meta_add_disk(m)) < 0)
            return RC(r);
    yajl_val excl = snap_json_get(root, "excluded_disks");
    if (!YAJL_IS_ARRAY(excl))
        return snap_meta_field_err(r, "excluded_disks",
                                   excl ? "expected an array" : "missing");
    for (size_t i = 0; i < excl->u.array.len; i++) {
        yajl_val e = excl->u.array.values[i];
        if (!YAJL_IS_STRING(e)) {
            char key[64];
            snprintf(key, sizeof key, "excluded_disks[%zu]", i);
            return snap_meta_field_err(r, key, "expected a string");
        }
        snap_meta_add_excluded(m, e->u.string);
    }
    /* Optional: records written before it existed have none. */
    yajl_val ro = snap_json_get(root, "revert_overlays");
    if (ro && !YAJL_IS_ARRAY(ro))
        return snap_meta_field_err(r, "revert_overlays", "expected an array");
    for (size_t i = 0; ro && i < ro->u.array.len; i++) {
        yajl_val e = ro->u.array.values[i];
        if (!YAJL_IS_STRING(e) || !*e->u.string) {
            char key[64];
            snprintf(key, sizeof key, "revert_overlays[%zu]", i);
            return snap_meta_field_err(r, key, "expected a path");
        }
        snap_meta_add_revert_overlay(m, e->u.string);
    }
    return 0;
}

static int parse_domain(const snap_meta_reader *parent, yajl_val root, snap_meta *m)
{
    yajl_val dom;
    if (snap_meta_read_obj(parent, root, "domain", false, &dom) < 0)
        return RC(parent);
    snap_meta_reader r = {parent->what, parent->err, "domain."};
    int state;
    if (snap_meta_read_str(&r, dom, "name", false, &m->domain.name) < 0 ||
        snap_meta_read_str(&r, dom, "uuid", false, &m->domain.uuid) < 0 ||
        GET_ENUM(&r, dom, "state", domstate_names, &state) < 0)
        return RC(&r);
    m->domain.state = (snap_domain_state)state;
    yajl_val domid = snap_json_get(dom, "domid");
    long long id = -1;
    if (domid && !YAJL_IS_NULL(domid) &&
        snap_meta_read_int(&r, dom, "domid", 0, 0x7fef, &id) < 0)
        return RC(&r);
    m->domain.domid = (int)id;
    return 0;
}

static int parse_timeline(const snap_meta_reader *parent, yajl_val q,
                          snap_meta_quiesce *out)
{
    yajl_val v;
    if (snap_meta_read_obj(parent, q, "freeze_timeline", true, &v) < 0)
        return RC(parent);
    out->has_timeline = v != NULL;
    if (!v)
        return 0;
    snap_meta_reader r = {parent->what, parent->err, "quiesce.freeze_timeline."};
    long long n;
#define PARSE(f)                                                                         \
    if (snap_meta_read_int(&r, v, #f, 0, INT32_MAX, &n) < 0)                             \
        return RC(&r);                                                                   \
    out->timeline.f = (int)n;
    TIMELINE_FIELDS(PARSE)
#undef PARSE
    return 0;
}

/* "quiesce.filesystems": optional (older records, agents that list none). */
static int parse_filesystems(const snap_meta_reader *parent, yajl_val v,
                             snap_meta_quiesce *q)
{
    yajl_val list = snap_json_get(v, "filesystems");
    if (!list || YAJL_IS_NULL(list))
        return 0;
    if (!YAJL_IS_ARRAY(list))
        return snap_meta_field_err(parent, "filesystems", "expected an array");
    for (size_t i = 0; i < list->u.array.len; i++) {
        yajl_val f = list->u.array.values[i];
        char prefix[64];
        snprintf(prefix, sizeof prefix, "quiesce.filesystems[%zu].", i);
        snap_meta_reader r = {parent->what, parent->err, prefix};
        char *mp = NULL, *type = NULL, *dev = NULL, *reason = NULL;
        int outcome = 0;
        int rc = 0;
        if (!YAJL_IS_OBJECT(f))
            rc = snap_meta_field_err(parent, "filesystems", "expected objects");
        else if (snap_meta_read_str(&r, f, "mountpoint", false, &mp) < 0 ||
                 snap_meta_read_str(&r, f, "type", true, &type) < 0 ||
                 snap_meta_read_str(&r, f, "device", true, &dev) < 0 ||
                 GET_ENUM(&r, f, "outcome", fs_outcome_names, &outcome) < 0 ||
                 snap_meta_read_str(&r, f, "reason", true, &reason) < 0)
            rc = RC(&r);
        if (!rc)
            snap_meta_add_fs(q, mp, type, dev, (snap_fs_outcome)outcome, reason);
        free(mp);
        free(type);
        free(dev);
        free(reason);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_quiesce(const snap_meta_reader *parent, yajl_val root,
                         snap_meta_quiesce *q)
{
    yajl_val v;
    if (snap_meta_read_obj(parent, root, "quiesce", false, &v) < 0)
        return RC(parent);
    snap_meta_reader r = {parent->what, parent->err, "quiesce."};
    int policy, state;
    long long frozen, window;
    if (GET_ENUM(&r, v, "policy", policy_names, &policy) < 0 ||
        snap_meta_read_bool(&r, v, "agent_present", &q->agent_present) < 0 ||
        snap_meta_read_int(&r, v, "frozen_count", 0, 1 << 20, &frozen) < 0 ||
        snap_meta_read_int(&r, v, "window_ms", 0, INT64_MAX, &window) < 0 ||
        snap_meta_read_bool(&r, v, "thaw_ok", &q->thaw_ok) < 0 ||
        GET_ENUM(&r, v, "state", consistency_names, &state) < 0 ||
        snap_meta_read_str(&r, v, "reason", true, &q->reason) < 0 ||
        parse_timeline(&r, v, q) < 0 || parse_filesystems(&r, v, q) < 0)
        return RC(&r);
    q->policy = (snap_quiesce_policy)policy;
    q->state = (snap_meta_consistency)state;
    q->frozen_count = (int)frozen;
    q->window_ms = window;
    return 0;
}

static int parse_times_and_memory(const snap_meta_reader *parent, yajl_val root,
                                  snap_meta *m)
{
    yajl_val t, mem;
    long long sec, nsec, size;
    if (snap_meta_read_obj(parent, root, "creation_time", false, &t) < 0)
        return RC(parent);
    snap_meta_reader rt = {parent->what, parent->err, "creation_time."};
    if (snap_meta_read_int(&rt, t, "sec", 0, INT64_MAX, &sec) < 0 ||
        snap_meta_read_int(&rt, t, "nsec", 0, 999999999, &nsec) < 0)
        return RC(&rt);
    m->ctime_sec = sec;
    m->ctime_nsec = (int32_t)nsec;
    if (snap_meta_read_obj(parent, root, "memory", true, &mem) < 0)
        return RC(parent);
    if (!mem)
        return 0;
    snap_meta_reader rm = {parent->what, parent->err, "memory."};
    if (snap_meta_read_str(&rm, mem, "path", false, &m->memory_path) < 0 ||
        snap_meta_read_int(&rm, mem, "size", 0, INT64_MAX, &size) < 0)
        return RC(&rm);
    m->has_memory = true;
    m->memory_size = (uint64_t)size;
    return 0;
}

/* Moves the "config" member out of root (so freeing root keeps it). */
static int take_config(const snap_meta_reader *r, yajl_val root, snap_meta *m)
{
    for (size_t i = 0; i < root->u.object.len; i++) {
        if (strcmp(root->u.object.keys[i], "config") != 0)
            continue;
        yajl_val v = root->u.object.values[i];
        if (YAJL_IS_NULL(v))
            return 0;
        if (!YAJL_IS_OBJECT(v))
            return snap_meta_field_err(r, "config", "expected an object or null");
        root->u.object.values[i] = NULL;
        m->config = v;
        return 0;
    }
    return 0;
}

static int parse_root(const snap_meta_reader *r, yajl_val root, void *obj)
{
    snap_meta *m = obj;
    if (snap_meta_read_version(r, root, "metadata", SNAP_META_VERSION) < 0)
        return RC(r);
    if (snap_meta_read_str(r, root, "name", false, &m->name) < 0 ||
        snap_meta_read_str(r, root, "description", true, &m->description) < 0 ||
        snap_meta_read_str(r, root, "parent", true, &m->parent) < 0 ||
        snap_meta_read_str(r, root, "group", true, &m->group) < 0 ||
        parse_times_and_memory(r, root, m) < 0 || parse_domain(r, root, m) < 0 ||
        parse_disks(r, root, m) < 0 || parse_quiesce(r, root, &m->quiesce) < 0 ||
        snap_meta_parse_verification(r, root, &m->verification) < 0 ||
        take_config(r, root, m) < 0)
        return RC(r);
    return snap_meta_validate(m, r->what, r->err);
}

int snap_meta_from_json(snap_meta *m, const char *text, const char *what, snap_err *err)
{
    snap_err local;
    if (!err)
        err = &local;
    snap_meta_init(m);
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    if (!*p)
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: empty file", what);
    int rc = snap_meta_read_document(text, what, parse_root, m, err);
    if (rc < 0)
        snap_meta_dispose(m);
    return rc;
}
