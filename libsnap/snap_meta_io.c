/*
 * Storing, loading and removing snapshot records, default names unique in
 * the store, and the current pointer; see snap_meta_io.h.
 */
#include "snap_meta_io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "snap_json.h"

#define CURRENT_FILE ".current"

static char *file_of(const char *name)
{
    return snap_xasprintf("%s.json", name);
}

bool snap_meta_exists(snap_meta_store *st, const char *name)
{
    if (!snap_meta_name_valid(name))
        return false;
    char *fname = file_of(name);
    struct stat sb;
    bool found = fstatat(st->dirfd, fname, &sb, AT_SYMLINK_NOFOLLOW) == 0;
    free(fname);
    return found;
}

char *snap_meta_name_default(snap_meta_store *st, int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;
    char base[64];
    gmtime_r(&t, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H-%M-%SZ", &tm);
    char *name = snap_xstrdup(base);
    for (int n = 2; st && snap_meta_exists(st, name); n++) {
        free(name);
        name = snap_xasprintf("%s-%d", base, n);
    }
    return name;
}

int snap_meta_save(snap_meta_store *st, const snap_meta *m, bool exclusive, snap_err *err)
{
    if (snap_meta_name_check(m->name, err) < 0)
        return err ? err->code : SNAP_ERROR_INVAL;
    char *fname = file_of(m->name);
    char *path = snap_meta_store_path(st, fname);
    int rc = snap_meta_validate(m, path, err);
    if (rc == 0 && strcasecmp(m->domain.uuid, st->uuid) != 0)
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "snapshot '%s' belongs to domain %s, not to %s", m->name,
                          m->domain.uuid, st->uuid);
    if (rc == 0 && exclusive && snap_meta_exists(st, m->name))
        rc =
            snap_err_set(err, SNAP_ERROR_EXISTS,
                         "snapshot '%s' of domain %s already exists", m->name, st->label);
    if (rc == 0) {
        char *text = snap_meta_to_json(m);
        rc = snap_meta_store_write(st, fname, text, strlen(text), err);
        free(text);
    }
    free(path);
    free(fname);
    return rc;
}

int snap_meta_load(snap_meta_store *st, const char *name, snap_meta *m, snap_err *err)
{
    snap_meta_init(m);
    if (snap_meta_name_check(name, err) < 0)
        return err ? err->code : SNAP_ERROR_INVAL;
    char *fname = file_of(name);
    char *path = snap_meta_store_path(st, fname);
    char *text = NULL;
    int rc = snap_meta_store_read(st, fname, &text, NULL, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        snap_err_set(err, rc, "snapshot '%s' of domain %s does not exist", name,
                     st->label);
    if (rc == 0)
        rc = snap_meta_from_json(m, text, path, err);
    if (rc == 0 && strcmp(m->name, name) != 0)
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "%s: field 'name': '%s' does not match the file name", path,
                          m->name);
    if (rc == 0 && strcasecmp(m->domain.uuid, st->uuid) != 0)
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "%s: field 'domain.uuid': %s does not match the directory",
                          path, m->domain.uuid);
    if (rc < 0)
        snap_meta_dispose(m);
    free(text);
    free(path);
    free(fname);
    return rc;
}

/* .current is {"version": 1, "current": "<name>" | null}. */
int snap_meta_get_current(snap_meta_store *st, char **name_out, snap_err *err)
{
    *name_out = NULL;
    char *text = NULL;
    int rc = snap_meta_store_read(st, CURRENT_FILE, &text, NULL, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    char *path = snap_meta_store_path(st, CURRENT_FILE);
    yajl_val v = snap_json_parse(text, path, err);
    long long version = 0;
    yajl_val cur = snap_json_get(v, "current");
    if (!v)
        rc = err ? (err->code = SNAP_ERROR_INVAL) : SNAP_ERROR_INVAL;
    else if (!snap_json_get_int(v, "version", &version) || version != SNAP_META_VERSION)
        rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                          "%s: unsupported or missing version", path);
    else if (!cur || !(YAJL_IS_NULL(cur) || snap_meta_name_valid(YAJL_GET_STRING(cur))))
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "%s: field 'current': expected a snapshot name or null", path);
    else if (YAJL_IS_STRING(cur))
        *name_out = snap_xstrdup(cur->u.string);
    yajl_tree_free(v);
    free(path);
    free(text);
    return rc;
}

int snap_meta_set_current(snap_meta_store *st, const char *name, snap_err *err)
{
    if (name && snap_meta_name_check(name, err) < 0)
        return err ? err->code : SNAP_ERROR_INVAL;
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "version", SNAP_META_VERSION);
    snap_json_kv_str(g, "current", name);
    yajl_gen_map_close(g);
    size_t len;
    char *text = snap_json_gen_finish(g, &len);
    int rc = snap_meta_store_write(st, CURRENT_FILE, text, len, err);
    free(text);
    return rc;
}

const char *snap_meta_surviving_parent(snap_meta_store *st, const snap_meta *m)
{
    return m->parent && snap_meta_exists(st, m->parent) ? m->parent : NULL;
}

/* s as a shell word: as it is when plain, else in single quotes. */
static char *shell_quoted(const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "._-+:@=,%/") == strlen(s))
        return snap_xstrdup(s);
    size_t n = 3;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *q = snap_xmalloc(n), *o = q;
    *o++ = '\'';
    for (const char *p = s; *p; p++)
        if (*p == '\'')
            memcpy(o, "'\\''", 4), o += 4;
        else
            *o++ = *p;
    *o++ = '\'';
    *o = '\0';
    return q;
}

char *snap_meta_removal_hint(const snap_meta_store *st, const char *name)
{
    char *dom = shell_quoted(st->label), *n = shell_quoted(name);
    char *hint =
        snap_xasprintf("; remove it with snapshot-delete --metadata %s %s", dom, n);
    free(dom);
    free(n);
    return hint;
}

int snap_meta_load_hinted(snap_meta_store *st, const char *name, snap_meta *m,
                          snap_err *err)
{
    snap_err local;
    if (!err)
        err = &local;
    int rc = snap_meta_load(st, name, m, err);
    if (rc && rc != SNAP_ERROR_NOTFOUND && snap_meta_exists(st, name)) {
        char *hint = snap_meta_removal_hint(st, name), *msg = snap_xstrdup(err->msg);
        snap_err_set(err, rc, "%s%s", msg, hint);
        free(msg);
        free(hint);
    }
    return rc;
}

int snap_meta_remove(snap_meta_store *st, const char *name, snap_err *err)
{
    if (!snap_meta_exists(st, name))
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "snapshot '%s' of domain %s does not exist", name, st->label);
    char *current = NULL;
    int rc = snap_meta_get_current(st, &current, err);
    if (rc == 0 && current && strcmp(current, name) == 0) {
        /* A damaged record has no readable parent: current becomes none. */
        snap_meta m;
        bool loaded = snap_meta_load(st, name, &m, NULL) == 0;
        rc = snap_meta_set_current(st, loaded ? snap_meta_surviving_parent(st, &m) : NULL,
                                   err);
        if (loaded)
            snap_meta_dispose(&m);
    }
    free(current);
    if (rc < 0)
        return snap_err_context(err, "removing snapshot '%s'", name);
    char *fname = file_of(name);
    rc = snap_meta_store_unlink(st, fname, err);
    free(fname);
    return rc;
}
