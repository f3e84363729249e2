/* JSON helpers over yajl; see snap_json.h. */
#include "snap_json.h"

#include <stdlib.h>
#include <string.h>

yajl_val snap_json_parse(const char *text, const char *what, snap_err *err)
{
    char errbuf[256];
    errbuf[0] = '\0';
    yajl_val v = yajl_tree_parse(text, errbuf, sizeof errbuf);
    if (!v) {
        /* yajl's message is multi-line; keep its first line. */
        char *nl = strchr(errbuf, '\n');
        if (nl)
            *nl = '\0';
        snap_err_set(err, SNAP_ERROR_PROTOCOL, "%s: invalid JSON: %s", what,
                     errbuf[0] ? errbuf : "parse error");
    }
    return v;
}

yajl_val snap_json_get(yajl_val v, const char *key)
{
    if (!YAJL_IS_OBJECT(v))
        return NULL;
    for (size_t i = 0; i < v->u.object.len; i++)
        if (strcmp(v->u.object.keys[i], key) == 0)
            return v->u.object.values[i];
    return NULL;
}

const char *snap_json_get_string(yajl_val v, const char *key)
{
    yajl_val m = snap_json_get(v, key);
    return YAJL_IS_STRING(m) ? m->u.string : NULL;
}

bool snap_json_get_int(yajl_val v, const char *key, long long *out)
{
    yajl_val m = snap_json_get(v, key);
    if (!YAJL_IS_INTEGER(m))
        return false;
    *out = YAJL_GET_INTEGER(m);
    return true;
}

bool snap_json_get_bool(yajl_val v, const char *key, bool *out)
{
    yajl_val m = snap_json_get(v, key);
    if (YAJL_IS_TRUE(m))
        *out = true;
    else if (YAJL_IS_FALSE(m))
        *out = false;
    else
        return false;
    return true;
}

yajl_val snap_json_get_object(yajl_val v, const char *key)
{
    yajl_val m = snap_json_get(v, key);
    return YAJL_IS_OBJECT(m) ? m : NULL;
}

yajl_val snap_json_get_array(yajl_val v, const char *key)
{
    yajl_val m = snap_json_get(v, key);
    return YAJL_IS_ARRAY(m) ? m : NULL;
}

size_t snap_json_array_len(yajl_val v)
{
    return YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
}

yajl_val snap_json_array_at(yajl_val v, size_t i)
{
    return YAJL_IS_ARRAY(v) && i < v->u.array.len ? v->u.array.values[i] : NULL;
}

yajl_gen snap_json_gen_new(bool beautify)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        abort();
    yajl_gen_config(g, yajl_gen_beautify, beautify ? 1 : 0);
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    return g;
}

void snap_json_key(yajl_gen g, const char *key)
{
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
}

void snap_json_str(yajl_gen g, const char *s)
{
    if (s)
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    else
        yajl_gen_null(g);
}

void snap_json_int(yajl_gen g, long long v)
{
    yajl_gen_integer(g, v);
}

void snap_json_bool(yajl_gen g, bool v)
{
    yajl_gen_bool(g, v);
}

void snap_json_null(yajl_gen g)
{
    yajl_gen_null(g);
}

void snap_json_kv_str(yajl_gen g, const char *key, const char *s)
{
    snap_json_key(g, key);
    snap_json_str(g, s);
}

void snap_json_kv_int(yajl_gen g, const char *key, long long v)
{
    snap_json_key(g, key);
    yajl_gen_integer(g, v);
}

void snap_json_kv_bool(yajl_gen g, const char *key, bool v)
{
    snap_json_key(g, key);
    yajl_gen_bool(g, v);
}

void snap_json_kv_strv(yajl_gen g, const char *key, const char *const *v, size_t n)
{
    snap_json_key(g, key);
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
        snap_json_str(g, v[i]);
    yajl_gen_array_close(g);
}

void snap_json_tree(yajl_gen g, yajl_val v)
{
    if (!v) {
        yajl_gen_null(g);
    } else if (YAJL_IS_STRING(v)) {
        snap_json_str(g, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        /* Keep the number's original text, so nothing is reformatted. */
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            snap_json_key(g, v->u.object.keys[i]);
            snap_json_tree(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++)
            snap_json_tree(g, v->u.array.values[i]);
        yajl_gen_array_close(g);
    } else if (YAJL_IS_TRUE(v)) {
        yajl_gen_bool(g, 1);
    } else if (YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, 0);
    } else {
        yajl_gen_null(g);
    }
}

char *snap_json_gen_finish(yajl_gen g, size_t *len_out)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char *s = snap_xmalloc(len + 1);
    memcpy(s, buf, len);
    s[len] = '\0';
    yajl_gen_free(g);
    if (len_out)
        *len_out = len;
    return s;
}

char *snap_json_qapi_command(const char *prefix, const char *cmd,
                             snap_json_members_fn *args, const void *opaque,
                             const char *id, size_t *len_out)
{
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "execute", cmd);
    if (args) {
        snap_json_key(g, "arguments");
        yajl_gen_map_open(g);
        args(g, opaque);
        yajl_gen_map_close(g);
    }
    if (id)
        snap_json_kv_str(g, "id", id);
    yajl_gen_map_close(g);
    size_t len;
    char *json = snap_json_gen_finish(g, &len);
    size_t plen = prefix ? strlen(prefix) : 0;
    char *line = snap_xmalloc(plen + len + 2);
    memcpy(line, prefix ? prefix : "", plen);
    memcpy(line + plen, json, len);
    line[plen + len] = '\n';
    line[plen + len + 1] = '\0';
    free(json);
    if (len_out)
        *len_out = plen + len + 1;
    return line;
}
