/*
 * Consistency group records: their JSON form, durable writes and strict
 * reads (snap_group_store.h). No policy: snap_group.c decides when a group
 * is written or removed, snap_recover.c what a missing one means.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "snap_group_store.h"
#include "snap_json.h"
#include "snap_meta.h"

#define GROUP_RECORD_VERSION 1

void snap_group_info_free(snap_group_info *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->members && i < g->n_members; i++) {
        free(g->members[i].domain_name);
        free(g->members[i].domain_uuid);
        free(g->members[i].snapshot);
    }
    free(g->members);
    free(g->name);
    free(g->json);
    free(g);
}

void snap_group_info_list_free(snap_group_info **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        snap_group_info_free(list[i]);
    free(list);
}

/* The level the record states (libsnap.h); shut-off members do not lower it. */
snap_consistency snap_group_consistency(const snap_group_info *g)
{
    snap_consistency c = g->quiesced ? SNAP_CONSISTENCY_QUIESCED : SNAP_CONSISTENCY_CRASH;
    for (size_t i = 0; i < g->n_members; i++)
        if (!g->members[i].shut_off) /* nothing ran on it: nothing to freeze */
            c = g->members[i].consistency < c ? g->members[i].consistency : c;
    return c;
}

char *snap_group_record_to_json(const snap_group_info *g)
{
    yajl_gen gen = snap_json_gen_new(true);
    yajl_gen_map_open(gen);
    snap_json_kv_int(gen, "version", GROUP_RECORD_VERSION);
    snap_json_kv_str(gen, "name", g->name);
    snap_json_key(gen, "creation_time");
    yajl_gen_map_open(gen);
    snap_json_kv_int(gen, "sec", g->creation_sec);
    snap_json_kv_int(gen, "nsec", g->creation_nsec);
    yajl_gen_map_close(gen);
    snap_json_kv_str(gen, "consistency",
                     snap_consistency_to_string(snap_group_consistency(g)));
    snap_json_kv_int(gen, "window_ms", g->window_ms);
    snap_json_key(gen, "members");
    yajl_gen_array_open(gen);
    for (size_t i = 0; i < g->n_members; i++) {
        const snap_group_member *m = &g->members[i];
        yajl_gen_map_open(gen);
        snap_json_kv_str(gen, "domain", m->domain_name);
        snap_json_kv_str(gen, "uuid", m->domain_uuid);
        snap_json_kv_str(gen, "snapshot", m->snapshot);
        snap_json_kv_str(gen, "consistency", snap_consistency_to_string(m->consistency));
        snap_json_kv_int(gen, "frozen_count", m->frozen_count);
        snap_json_kv_int(gen, "window_ms", m->window_ms);
        if (m->shut_off) /* absent: running or paused (records before it existed) */
            snap_json_kv_bool(gen, "shut_off", true);
        yajl_gen_map_close(gen);
    }
    yajl_gen_array_close(gen);
    yajl_gen_map_close(gen);
    return snap_json_gen_finish(gen, NULL);
}

static int parse_consistency(const snap_meta_reader *r, yajl_val obj,
                             snap_consistency *out)
{
    static const snap_consistency all[] = {
        SNAP_CONSISTENCY_CRASH, SNAP_CONSISTENCY_PARTIAL, SNAP_CONSISTENCY_QUIESCED};
    char *s;
    if (snap_meta_read_str(r, obj, "consistency", false, &s) < 0)
        return r->err->code;
    for (size_t i = 0; i < SNAP_N_OF(all); i++)
        if (!strcmp(s, snap_consistency_to_string(all[i]))) {
            *out = all[i];
            free(s);
            return 0;
        }
    free(s);
    return snap_meta_field_err(r, "consistency", "unknown consistency");
}

/* root's "members": a non-empty array (*n its length), or NULL and r's error. */
static yajl_val members_of(const snap_meta_reader *r, yajl_val root, size_t *n)
{
    yajl_val members = snap_json_get_array(root, "members");
    if (!members || !YAJL_IS_ARRAY(members) || members->u.array.len == 0) {
        snap_meta_field_err(r, "members", "expected a non-empty array");
        return NULL;
    }
    *n = members->u.array.len;
    return members;
}

static int parse_member(const snap_meta_reader *top, yajl_val v, size_t i,
                        snap_group_member *m)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "members[%zu].", i);
    snap_meta_reader r = {top->what, top->err, prefix};
    long long frozen, window;
    if (!YAJL_IS_OBJECT(v))
        return snap_meta_field_err(top, prefix, "expected an object");
    if (snap_meta_read_str(&r, v, "domain", false, &m->domain_name) < 0 ||
        snap_meta_read_str(&r, v, "uuid", false, &m->domain_uuid) < 0 ||
        snap_meta_read_str(&r, v, "snapshot", false, &m->snapshot) < 0 ||
        parse_consistency(&r, v, &m->consistency) < 0 ||
        snap_meta_read_int(&r, v, "frozen_count", 0, INT32_MAX, &frozen) < 0 ||
        snap_meta_read_int(&r, v, "window_ms", 0, INT64_MAX, &window) < 0)
        return top->err->code;
    /* absent in records of running or paused members, and before it existed */
    if (snap_json_get(v, "shut_off") &&
        snap_meta_read_bool(&r, v, "shut_off", &m->shut_off) < 0)
        return top->err->code;
    m->frozen_count = (int)frozen;
    m->window_ms = window;
    return 0;
}

static int parse_group(const snap_meta_reader *r, yajl_val root, void *obj)
{
    snap_group_info *g = obj;
    long long sec, nsec, window;
    yajl_val ctime, members;
    char *consistency = NULL;
    if (snap_meta_read_version(r, root, "group record", GROUP_RECORD_VERSION) < 0)
        return r->err->code;
    if (snap_meta_read_str(r, root, "name", false, &g->name) < 0 ||
        snap_meta_read_obj(r, root, "creation_time", false, &ctime) < 0 ||
        snap_meta_read_int(r, ctime, "sec", INT64_MIN, INT64_MAX, &sec) < 0 ||
        snap_meta_read_int(r, ctime, "nsec", 0, 999999999, &nsec) < 0 ||
        snap_meta_read_str(r, root, "consistency", false, &consistency) < 0 ||
        snap_meta_read_int(r, root, "window_ms", 0, INT64_MAX, &window) < 0) {
        free(consistency);
        return r->err->code;
    }
    g->creation_sec = sec;
    g->creation_nsec = (int32_t)nsec;
    g->window_ms = window;
    g->quiesced = strcmp(consistency, "crash-consistent") != 0; /* frozen, not paused */
    free(consistency);
    if (!(members = members_of(r, root, &g->n_members)))
        return r->err->code;
    g->members = snap_xcalloc(g->n_members, sizeof *g->members);
    for (size_t i = 0; i < g->n_members; i++)
        if (parse_member(r, members->u.array.values[i], i, &g->members[i]) < 0)
            return r->err->code;
    return 0;
}

int snap_group_record_from_json(const char *text, const char *what, snap_group_info **out,
                                snap_err *err)
{
    *out = NULL;
    snap_group_info *g = snap_xcalloc(1, sizeof *g);
    int rc = snap_meta_read_document(text, what, parse_group, g, err);
    if (rc) {
        snap_group_info_free(g);
        return rc;
    }
    g->json = snap_xstrdup(text);
    *out = g;
    return 0;
}

static char *record_file(const char *name)
{
    return snap_xasprintf("%s.json", name);
}

int snap_group_record_save(snap_meta_store *gst, const snap_group_info *g, snap_err *err)
{
    char *text = snap_group_record_to_json(g);
    char *file = record_file(g->name);
    int rc = snap_meta_store_write(gst, file, text, strlen(text), err);
    free(file);
    free(text);
    return rc ? snap_err_context(err, "writing the record of group '%s'", g->name) : 0;
}

int snap_group_record_load(snap_meta_store *gst, const char *name, snap_group_info **out,
                           snap_err *err)
{
    char *file = record_file(name), *text = NULL;
    *out = NULL;
    int rc = snap_meta_store_read(gst, file, &text, NULL, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "no group '%s'", name);
    if (!rc) {
        char *what = snap_meta_store_path(gst, file);
        rc = snap_group_record_from_json(text, what, out, err);
        free(what);
    }
    free(text);
    free(file);
    return rc;
}

int snap_group_record_remove(snap_meta_store *gst, const char *name, snap_err *err)
{
    char *file = record_file(name);
    int rc = snap_meta_store_unlink(gst, file, err);
    free(file);
    return rc;
}

bool snap_group_record_has_member(const char *statedir, const char *name,
                                  const char *uuid)
{
    snap_meta_store gst;
    snap_group_info *g = NULL;
    snap_err err;
    if (snap_meta_store_open_groups(&gst, statedir, false, &err) != 0)
        return err.code != SNAP_ERROR_NOTFOUND;
    int rc = snap_group_record_load(&gst, name, &g, &err);
    snap_meta_store_close(&gst);
    if (rc)
        return rc != SNAP_ERROR_NOTFOUND;
    bool found = false;
    for (size_t i = 0; i < g->n_members; i++)
        found = found || !strcasecmp(g->members[i].domain_uuid, uuid);
    snap_group_info_free(g);
    return found;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int snap_group_record_names(snap_meta_store *gst, char ***names_out, size_t *n_out,
                            snap_err *err)
{
    *names_out = NULL;
    *n_out = 0;
    int fd = dup(gst->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot list %s", gst->dir);
    }
    rewinddir(d); /* the dup shares its offset with every earlier listing's */
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len <= 5 || strcmp(e->d_name + len - 5, ".json"))
            continue;
        *names_out = snap_xrealloc(*names_out, (*n_out + 1) * sizeof **names_out);
        (*names_out)[(*n_out)++] = snap_xasprintf("%.*s", (int)(len - 5), e->d_name);
    }
    closedir(d);
    if (*n_out)
        qsort(*names_out, *n_out, sizeof **names_out, by_name);
    return 0;
}

/* ------------------------------------------------------------ group op journal */

#define GROUP_OP_VERSION 1

static const char *const revert_states[] = {
    [SNAP_REVERT_STATE_AS_SNAPSHOT] = "as-snapshot",
    [SNAP_REVERT_STATE_RUNNING] = "running",
    [SNAP_REVERT_STATE_PAUSED] = "paused",
};

const char *snap_group_op_kind_name(snap_group_op_kind kind)
{
    return kind == SNAP_GROUP_OP_DELETE ? "delete" : "revert";
}

void snap_group_op_free(snap_group_op *op)
{
    if (!op)
        return;
    for (size_t i = 0; op->members && i < op->n_members; i++) {
        free(op->members[i].domain_name);
        free(op->members[i].domain_uuid);
        free(op->members[i].snapshot);
    }
    free(op->members);
    free(op->group);
    free(op);
}

void snap_group_op_list_free(snap_group_op **ops, size_t n)
{
    for (size_t i = 0; ops && i < n; i++)
        snap_group_op_free(ops[i]);
    free(ops);
}

char *snap_group_op_to_json(const snap_group_op *op)
{
    yajl_gen gen = snap_json_gen_new(true);
    yajl_gen_map_open(gen);
    snap_json_kv_int(gen, "version", GROUP_OP_VERSION);
    snap_json_kv_str(gen, "group", op->group);
    snap_json_kv_str(gen, "op", snap_group_op_kind_name(op->kind));
    snap_json_kv_int(gen, "owner_pid", op->owner_pid);
    snap_json_kv_bool(gen, "force", op->force);
    snap_json_kv_str(gen, "state", revert_states[op->state]);
    snap_json_kv_bool(gen, "metadata_only", op->metadata_only);
    snap_json_key(gen, "members");
    yajl_gen_array_open(gen);
    for (size_t i = 0; i < op->n_members; i++) {
        const snap_group_op_member *m = &op->members[i];
        yajl_gen_map_open(gen);
        snap_json_kv_str(gen, "domain", m->domain_name);
        snap_json_kv_str(gen, "uuid", m->domain_uuid);
        snap_json_kv_str(gen, "snapshot", m->snapshot);
        snap_json_kv_bool(gen, "done", m->done);
        yajl_gen_map_close(gen);
    }
    yajl_gen_array_close(gen);
    yajl_gen_map_close(gen);
    return snap_json_gen_finish(gen, NULL);
}

/* *out is the index of the key's string value in names[n] (NULLs skipped). */
static int read_choice(const snap_meta_reader *r, yajl_val obj, const char *key,
                       const char *const *names, size_t n, int *out)
{
    char *s;
    if (snap_meta_read_str(r, obj, key, false, &s) < 0)
        return r->err->code;
    for (size_t i = 0; i < n; i++)
        if (names[i] && !strcmp(s, names[i])) {
            *out = (int)i;
            free(s);
            return 0;
        }
    free(s);
    return snap_meta_field_err(r, key, "unknown value");
}

static int parse_op_member(const snap_meta_reader *top, yajl_val v, size_t i,
                           snap_group_op_member *m)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "members[%zu].", i);
    snap_meta_reader r = {top->what, top->err, prefix};
    if (!YAJL_IS_OBJECT(v))
        return snap_meta_field_err(top, prefix, "expected an object");
    if (snap_meta_read_str(&r, v, "domain", false, &m->domain_name) < 0 ||
        snap_meta_read_str(&r, v, "uuid", false, &m->domain_uuid) < 0 ||
        snap_meta_read_str(&r, v, "snapshot", false, &m->snapshot) < 0 ||
        snap_meta_read_bool(&r, v, "done", &m->done) < 0)
        return top->err->code;
    if (!snap_uuid_valid(m->domain_uuid))
        return snap_meta_field_err(&r, "uuid", "not a UUID");
    return 0;
}

static int parse_op(const snap_meta_reader *r, yajl_val root, void *obj)
{
    snap_group_op *op = obj;
    static const char *const kinds[] = {
        [SNAP_GROUP_OP_REVERT] = "revert", [SNAP_GROUP_OP_DELETE] = "delete"};
    long long pid;
    int kind = 0, state = 0;
    if (snap_meta_read_version(r, root, "group journal", GROUP_OP_VERSION) < 0)
        return r->err->code;
    if (snap_meta_read_str(r, root, "group", false, &op->group) < 0 ||
        read_choice(r, root, "op", kinds, SNAP_N_OF(kinds), &kind) < 0 ||
        snap_meta_read_int(r, root, "owner_pid", 0, INT32_MAX, &pid) < 0 ||
        snap_meta_read_bool(r, root, "force", &op->force) < 0 ||
        read_choice(r, root, "state", revert_states, SNAP_N_OF(revert_states), &state) <
            0 ||
        snap_meta_read_bool(r, root, "metadata_only", &op->metadata_only) < 0)
        return r->err->code;
    op->kind = (snap_group_op_kind)kind;
    op->owner_pid = (int)pid;
    op->state = (snap_revert_state)state;
    yajl_val members = members_of(r, root, &op->n_members);
    if (!members)
        return r->err->code;
    op->members = snap_xcalloc(op->n_members, sizeof *op->members);
    for (size_t i = 0; i < op->n_members; i++)
        if (parse_op_member(r, members->u.array.values[i], i, &op->members[i]) < 0)
            return r->err->code;
    return 0;
}

int snap_group_op_from_json(const char *text, const char *what, snap_group_op **out,
                            snap_err *err)
{
    *out = NULL;
    snap_group_op *op = snap_xcalloc(1, sizeof *op);
    int rc = snap_meta_read_document(text, what, parse_op, op, err);
    if (rc) {
        snap_group_op_free(op);
        return rc;
    }
    *out = op;
    return 0;
}

static char *op_file(const char *group)
{
    return snap_xasprintf(".%s.op.json", group);
}

int snap_group_op_save(snap_meta_store *gst, const snap_group_op *op, snap_err *err)
{
    char *text = snap_group_op_to_json(op);
    char *file = op_file(op->group);
    int rc = snap_meta_store_write(gst, file, text, strlen(text), err);
    free(file);
    free(text);
    return rc ? snap_err_context(err, "writing the journal of group '%s'", op->group) : 0;
}

int snap_group_op_load(snap_meta_store *gst, const char *group, snap_group_op **out,
                       snap_err *err)
{
    char *file = op_file(group), *text = NULL;
    *out = NULL;
    int rc = snap_meta_store_read(gst, file, &text, NULL, err);
    if (!rc) {
        char *what = snap_meta_store_path(gst, file);
        rc = snap_group_op_from_json(text, what, out, err);
        free(what);
    }
    free(text);
    free(file);
    return rc;
}

int snap_group_op_remove(snap_meta_store *gst, const char *group, snap_err *err)
{
    char *file = op_file(group);
    int rc = snap_meta_store_unlink(gst, file, err);
    free(file);
    return rc ? snap_err_context(err, "removing the journal of group '%s'", group) : 0;
}

/* The group a journal's file name is of (".<group>.op.json"), or NULL. */
static char *op_file_group(const char *fname)
{
    static const char suffix[] = ".op.json";
    size_t len = strlen(fname), sl = sizeof suffix - 1;
    if (fname[0] != '.' || len <= sl + 1 || strcmp(fname + len - sl, suffix) ||
        strstr(fname, ".tmp."))
        return NULL;
    return snap_xasprintf("%.*s", (int)(len - sl - 1), fname + 1);
}

int snap_group_op_names(snap_meta_store *gst, char ***names_out, size_t *n_out,
                        snap_err *err)
{
    *names_out = NULL;
    *n_out = 0;
    int fd = dup(gst->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot list %s", gst->dir);
    }
    rewinddir(d); /* the dup shares its offset with every earlier listing's */
    struct dirent *e;
    while ((e = readdir(d))) {
        char *group = op_file_group(e->d_name);
        if (!group)
            continue;
        *names_out = snap_xrealloc(*names_out, (*n_out + 1) * sizeof **names_out);
        (*names_out)[(*n_out)++] = group;
    }
    closedir(d);
    if (*n_out)
        qsort(*names_out, *n_out, sizeof **names_out, by_name);
    return 0;
}

bool snap_group_op_names_domain(const snap_group_op *op, const char *name,
                                const char *uuid)
{
    for (size_t i = 0; i < op->n_members; i++) {
        const snap_group_op_member *m = &op->members[i];
        if ((uuid && !strcasecmp(m->domain_uuid, uuid)) ||
            (name && !strcmp(m->domain_name, name)))
            return true;
    }
    return false;
}

void snap_group_op_pending(const char *statedir, const char *name, const char *uuid,
                           snap_group_op ***ops_out, size_t *n_out)
{
    snap_meta_store gst;
    snap_err err;
    char **names = NULL;
    size_t n = 0;
    *ops_out = NULL;
    *n_out = 0;
    if (snap_meta_store_open_groups(&gst, statedir, false, &err) != 0)
        return;
    if (snap_group_op_names(&gst, &names, &n, &err) == 0)
        for (size_t i = 0; i < n; i++) {
            snap_group_op *op = NULL;
            if (snap_group_op_load(&gst, names[i], &op, &err) != 0 ||
                !snap_group_op_names_domain(op, name, uuid)) {
                snap_group_op_free(op);
                continue;
            }
            *ops_out = snap_xrealloc(*ops_out, (*n_out + 1) * sizeof **ops_out);
            (*ops_out)[(*n_out)++] = op;
        }
    snap_strv_free(names, n);
    snap_meta_store_close(&gst);
}

char *snap_group_op_members(const snap_group_op *op, bool done)
{
    char *s = NULL;
    for (size_t i = 0; i < op->n_members; i++) {
        if (op->members[i].done != done)
            continue;
        char *t = snap_xasprintf("%s%s%s", s ? s : "", s ? ", " : "",
                                 op->members[i].domain_name);
        free(s);
        s = t;
    }
    return s ? s : snap_xstrdup("none");
}

void snap_group_note_pending(xentoollog_logger *lg, const char *statedir,
                             const char *name, const char *uuid)
{
    snap_group_op **ops = NULL;
    size_t n = 0;
    snap_group_op_pending(statedir, name, uuid, &ops, &n);
    for (size_t i = 0; i < n; i++) {
        if (ops[i]->owner_pid == (int)getpid())
            continue;
        char *done = snap_group_op_members(ops[i], true);
        char *left = snap_group_op_members(ops[i], false);
        snap_log(lg, XTL_NOTICE,
                 "note: domain %s is a member of group '%s', whose %s was interrupted "
                 "(done: %s; not yet: %s); the next snapshot-create, -revert or -delete "
                 "of a member, or of the group, finishes it",
                 name ? name : uuid, ops[i]->group, snap_group_op_kind_name(ops[i]->kind),
                 done, left);
        free(done);
        free(left);
    }
    snap_group_op_list_free(ops, n);
}
