/*
 * A snapshot record's "verification" member: what snap_verify found at the
 * snapshot point, per filesystem, and when (format in snap_meta.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_json.h"
#include "snap_meta.h"

#define RC(r) ((r)->err ? (r)->err->code : SNAP_ERROR_INVAL)

static const char *const fs_state_names[] = {
    [SNAP_FS_CLEAN] = "clean",
    [SNAP_FS_NEEDS_RECOVERY] = "needs-recovery",
    [SNAP_FS_ERRORS] = "errors",
    [SNAP_FS_UNCHECKED] = "unchecked",
    [SNAP_FS_NO_FILESYSTEM] = "no-filesystem",
};

const char *snap_fs_state_to_string(snap_fs_state state)
{
    if ((unsigned)state < SNAP_N_OF(fs_state_names))
        return fs_state_names[state];
    return "unknown";
}

int snap_fs_state_parse(const char *s, snap_fs_state *out)
{
    for (size_t i = 0; i < SNAP_N_OF(fs_state_names); i++)
        if (!strcmp(s, fs_state_names[i])) {
            *out = (snap_fs_state)i;
            return 0;
        }
    return -1;
}

void snap_meta_gen_verification(yajl_gen g, const snap_verification *v)
{
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "time_sec", v->time_sec);
    snap_json_kv_bool(g, "clean", v->clean);
    snap_json_key(g, "filesystems");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < v->n_fs; i++) {
        const snap_fs_verdict *f = &v->fs[i];
        yajl_gen_map_open(g);
        snap_json_kv_str(g, "disk", f->vdev);
        snap_json_kv_int(g, "partition", f->partition);
        snap_json_kv_str(g, "type", f->fstype);
        snap_json_kv_str(g, "state", snap_fs_state_to_string(f->state));
        snap_json_kv_str(g, "detail", f->detail ? f->detail : "");
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

static int parse_verdict(const snap_meta_reader *r, yajl_val o, snap_fs_verdict *f)
{
    long long part;
    char *state = NULL;
    if (!YAJL_IS_OBJECT(o))
        return snap_meta_field_err(r, "", "expected an object");
    if (snap_meta_read_str(r, o, "disk", false, &f->vdev) < 0 ||
        snap_meta_read_int(r, o, "partition", 0, 4096, &part) < 0 ||
        snap_meta_read_str(r, o, "type", false, &f->fstype) < 0 ||
        snap_meta_read_str(r, o, "detail", false, &f->detail) < 0 ||
        snap_meta_read_str(r, o, "state", false, &state) < 0)
        return RC(r);
    f->partition = (int)part;
    int bad = snap_fs_state_parse(state, &f->state);
    free(state);
    return bad ? snap_meta_field_err(r, "state", "unknown value") : 0;
}

int snap_meta_parse_verification(const snap_meta_reader *parent, yajl_val root,
                                 snap_verification **out)
{
    yajl_val o;
    long long t;
    *out = NULL;
    if (snap_meta_read_obj(parent, root, "verification", true, &o) < 0)
        return RC(parent);
    if (!o)
        return 0;
    snap_meta_reader r = {parent->what, parent->err, "verification."};
    snap_verification *v = snap_xcalloc(1, sizeof *v);
    yajl_val fs = snap_json_get(o, "filesystems");
    if (snap_meta_read_int(&r, o, "time_sec", 0, INT64_MAX, &t) < 0 ||
        snap_meta_read_bool(&r, o, "clean", &v->clean) < 0)
        goto fail;
    v->time_sec = t;
    if (!fs || !YAJL_IS_ARRAY(fs)) {
        snap_meta_field_err(&r, "filesystems", "expected an array");
        goto fail;
    }
    v->fs = snap_xcalloc(fs->u.array.len ? fs->u.array.len : 1, sizeof *v->fs);
    for (size_t i = 0; i < fs->u.array.len; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "verification.filesystems[%zu].", i);
        snap_meta_reader ri = {parent->what, parent->err, prefix};
        v->n_fs++;
        if (parse_verdict(&ri, fs->u.array.values[i], &v->fs[i]) < 0)
            goto fail;
    }
    *out = v;
    return 0;
fail:
    snap_verification_free(v);
    return RC(parent);
}

snap_verification *snap_verification_dup(const snap_verification *v)
{
    if (!v)
        return NULL;
    snap_verification *c = snap_xcalloc(1, sizeof *c);
    c->time_sec = v->time_sec;
    c->clean = v->clean;
    c->n_fs = v->n_fs;
    c->fs = snap_xcalloc(v->n_fs ? v->n_fs : 1, sizeof *c->fs);
    for (size_t i = 0; i < v->n_fs; i++) {
        c->fs[i] = v->fs[i];
        c->fs[i].vdev = snap_xstrdup(v->fs[i].vdev);
        c->fs[i].fstype = snap_xstrdup(v->fs[i].fstype);
        c->fs[i].detail = snap_xstrdup(v->fs[i].detail);
    }
    return c;
}

void snap_verification_free(snap_verification *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_fs; i++) {
        free(v->fs[i].vdev);
        free(v->fs[i].fstype);
        free(v->fs[i].detail);
    }
    free(v->fs);
    free(v);
}
