/*
 * JSON through yajl: yajl_gen for everything libsnap sends or writes, and
 * yajl_tree for everything it reads. Never hand-built JSON strings.
 */
#ifndef SNAP_JSON_H
#define SNAP_JSON_H

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "snap_base.h"

/* ---------------------------------------------------------- reading */

/* Parses text; on failure returns NULL with a PROTOCOL error naming `what`. */
yajl_val snap_json_parse(const char *text, const char *what, snap_err *err);

/* Member `key` of object v (NULL if v is not an object or has no such key). */
yajl_val snap_json_get(yajl_val v, const char *key);
/* Typed members: NULL/false when absent or of another type. */
const char *snap_json_get_string(yajl_val v, const char *key);
bool snap_json_get_int(yajl_val v, const char *key, long long *out);
bool snap_json_get_bool(yajl_val v, const char *key, bool *out);
yajl_val snap_json_get_object(yajl_val v, const char *key);
yajl_val snap_json_get_array(yajl_val v, const char *key);
/* Array length and element (0 / NULL when v is not an array). */
size_t snap_json_array_len(yajl_val v);
yajl_val snap_json_array_at(yajl_val v, size_t i);

/* ---------------------------------------------------------- writing */

/* A generator (beautify off); never NULL. */
yajl_gen snap_json_gen_new(bool beautify);
/* Helpers that emit one value; keys are emitted with snap_json_key. */
void snap_json_key(yajl_gen g, const char *key);
void snap_json_str(yajl_gen g, const char *s); /* NULL -> null */
void snap_json_int(yajl_gen g, long long v);
void snap_json_bool(yajl_gen g, bool v);
void snap_json_null(yajl_gen g);
void snap_json_kv_str(yajl_gen g, const char *key, const char *s);
void snap_json_kv_int(yajl_gen g, const char *key, long long v);
void snap_json_kv_bool(yajl_gen g, const char *key, bool v);
/* "key": [v[0], ..., v[n-1]] (strings; NULL ones become null). */
void snap_json_kv_strv(yajl_gen g, const char *key, const char *const *v, size_t n);
/* Re-emits a parsed tree (for copying documents through unchanged). */
void snap_json_tree(yajl_gen g, yajl_val v);
/* Emits the members of a JSON object (keys and values) into g. */
typedef void snap_json_members_fn(yajl_gen g, const void *opaque);

/*
 * A QAPI command line, as QMP and qemu-ga take it:
 * [prefix]{"execute": cmd[, "arguments": {members}][, "id": id]}\n
 * prefix may be NULL (qemu-ga's resync sends "\xff" first); args and id may be
 * NULL. *len_out (optional) receives the length. malloc'd.
 */
char *snap_json_qapi_command(const char *prefix, const char *cmd,
                             snap_json_members_fn *args, const void *opaque,
                             const char *id, size_t *len_out);

/* Returns the generated text as a malloc'd string and frees g. */
char *snap_json_gen_finish(yajl_gen g, size_t *len_out);

#endif
