/*
 * Strict typed access to a parsed record (snap_meta_reader, see
 * snap_meta.h): a missing, mistyped or out-of-range member is an error
 * naming the file and the field. Below snap_meta.c and snap_meta_verify.c,
 * which both read records with it.
 */
#include "snap_meta.h"

#include "snap_json.h"

/* Strict typed access to parsed files; see snap_meta.h. */
int snap_meta_read_document(const char *text, const char *what,
                            snap_meta_root_fn *read_root, void *obj, snap_err *err)
{
    yajl_val root = snap_json_parse(text, what, err);
    if (!root) {
        err->code = SNAP_ERROR_INVAL; /* a damaged file, not a misbehaving peer */
        return err->code;
    }
    snap_meta_reader r = {what, err, ""};
    int rc = read_root(&r, root, obj);
    yajl_tree_free(root);
    return rc;
}

int snap_meta_read_version(const snap_meta_reader *r, yajl_val root, const char *kind,
                           long long expected)
{
    long long version;
    if (!YAJL_IS_OBJECT(root))
        return snap_err_set(r->err, SNAP_ERROR_INVAL, "%s: expected a JSON object",
                            r->what);
    if (snap_meta_read_int(r, root, "version", 0, INT32_MAX, &version) < 0)
        return r->err->code;
    if (version != expected)
        return snap_err_set(r->err, SNAP_ERROR_UNSUPPORTED,
                            "%s: %s version %lld is not supported (this xlsnap reads "
                            "version %lld)",
                            r->what, kind, version, expected);
    return 0;
}

int snap_meta_field_err(const snap_meta_reader *r, const char *key, const char *msg)
{
    return snap_err_set(r->err, SNAP_ERROR_INVAL, "%s: field '%s%s': %s", r->what,
                        r->prefix, key, msg);
}

/* A string member; nullable ones may also be null or absent (-> NULL). */
int snap_meta_read_str(const snap_meta_reader *r, yajl_val obj, const char *key,
                       bool nullable, char **out)
{
    yajl_val v = snap_json_get(obj, key);
    *out = NULL;
    if (nullable && (!v || YAJL_IS_NULL(v)))
        return 0;
    if (!v)
        return snap_meta_field_err(r, key, "missing");
    if (!YAJL_IS_STRING(v))
        return snap_meta_field_err(
            r, key, nullable ? "expected a string or null" : "expected a string");
    *out = snap_xstrdup(v->u.string);
    return 0;
}

int snap_meta_read_int(const snap_meta_reader *r, yajl_val obj, const char *key,
                       long long min, long long max, long long *out)
{
    yajl_val v = snap_json_get(obj, key);
    if (!v)
        return snap_meta_field_err(r, key, "missing");
    if (!YAJL_IS_INTEGER(v))
        return snap_meta_field_err(r, key, "expected an integer");
    if (YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max)
        return snap_meta_field_err(r, key, "out of range");
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

int snap_meta_read_bool(const snap_meta_reader *r, yajl_val obj, const char *key,
                        bool *out)
{
    if (!snap_json_get(obj, key))
        return snap_meta_field_err(r, key, "missing");
    if (!snap_json_get_bool(obj, key, out))
        return snap_meta_field_err(r, key, "expected true or false");
    return 0;
}

/* An object member (nullable: null or absent -> NULL). */
int snap_meta_read_obj(const snap_meta_reader *r, yajl_val obj, const char *key,
                       bool nullable, yajl_val *out)
{
    yajl_val v = snap_json_get(obj, key);
    *out = NULL;
    if (nullable && (!v || YAJL_IS_NULL(v)))
        return 0;
    if (!YAJL_IS_OBJECT(v))
        return snap_meta_field_err(r, key, v ? "expected an object" : "missing");
    *out = v;
    return 0;
}
