/*
 * Field-wise checks of a parsed structure against yajl's own tree of the
 * text it came from, for the fuzzers of the JSON readers: a second reading
 * of the input that shares nothing with libsnap's readers but yajl (lookups
 * are yajl_tree_get, enum names compared as text), so that a misparse the
 * round trip would repeat consistently (a field read from the wrong key, an
 * enum mapped to the wrong value, an element dropped) still aborts.
 */
#ifndef FUZZ_TREE_H
#define FUZZ_TREE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

static inline void fz_mismatch(const char *where, const char *key, const char *tree,
                               const char *parsed)
{
    fprintf(stderr, "%s%s: the input says %s, the parse says %s\n", where, key, tree,
            parsed);
    abort();
}

static inline yajl_val fz_get(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return YAJL_IS_OBJECT(obj) ? yajl_tree_get(obj, path, yajl_t_any) : NULL;
}

/* A string member; absent or null must have parsed as NULL. */
static inline void fz_str(yajl_val obj, const char *where, const char *key,
                          const char *parsed)
{
    yajl_val v = fz_get(obj, key);
    const char *want = YAJL_IS_STRING(v) ? v->u.string : NULL;
    if (v && !YAJL_IS_STRING(v) && !YAJL_IS_NULL(v))
        fz_mismatch(where, key, "a non-string", parsed ? parsed : "(null)");
    if ((want == NULL) != (parsed == NULL) || (want && strcmp(want, parsed) != 0))
        fz_mismatch(where, key, want ? want : "(null)", parsed ? parsed : "(null)");
}

/* An integer member; absent or null must have parsed as dflt. */
static inline void fz_int(yajl_val obj, const char *where, const char *key,
                          long long parsed, long long dflt)
{
    yajl_val v = fz_get(obj, key);
    long long want = dflt;
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_INTEGER(v))
            fz_mismatch(where, key, "a non-integer", "an integer");
        want = YAJL_GET_INTEGER(v);
    }
    if (want != parsed) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%lld", want);
        snprintf(b, sizeof b, "%lld", parsed);
        fz_mismatch(where, key, a, b);
    }
}

/* A boolean member; absent must have parsed as dflt. */
static inline void fz_bool(yajl_val obj, const char *where, const char *key, bool parsed,
                           bool dflt)
{
    yajl_val v = fz_get(obj, key);
    bool want = v ? YAJL_IS_TRUE(v) : dflt;
    if (v && !YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
        fz_mismatch(where, key, "a non-boolean", parsed ? "true" : "false");
    if (want != parsed)
        fz_mismatch(where, key, want ? "true" : "false", parsed ? "true" : "false");
}

/* An array member's length (absent or null: 0). */
static inline size_t fz_len(yajl_val obj, const char *where, const char *key,
                            size_t parsed)
{
    yajl_val v = fz_get(obj, key);
    size_t want = YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
    if (want != parsed) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%zu elements", want);
        snprintf(b, sizeof b, "%zu", parsed);
        fz_mismatch(where, key, a, b);
    }
    return want;
}

static inline yajl_val fz_at(yajl_val obj, const char *key, size_t i)
{
    yajl_val v = fz_get(obj, key);
    return YAJL_IS_ARRAY(v) && i < v->u.array.len ? v->u.array.values[i] : NULL;
}

/* Deep equality of two JSON values (numbers by value, objects in order). */
static inline bool fz_same_tree(yajl_val a, yajl_val b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case yajl_t_string: return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_number:
        if (YAJL_IS_INTEGER(a) && YAJL_IS_INTEGER(b))
            return a->u.number.i == b->u.number.i;
        if (YAJL_IS_DOUBLE(a) && YAJL_IS_DOUBLE(b))
            return a->u.number.d == b->u.number.d;
        return strcmp(a->u.number.r, b->u.number.r) == 0;
    case yajl_t_object:
        if (a->u.object.len != b->u.object.len)
            return false;
        for (size_t i = 0; i < a->u.object.len; i++)
            if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0 ||
                !fz_same_tree(a->u.object.values[i], b->u.object.values[i]))
                return false;
        return true;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len)
            return false;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!fz_same_tree(a->u.array.values[i], b->u.array.values[i]))
                return false;
        return true;
    default: return true; /* true, false, null: the type says it all */
    }
}

/* yajl's tree of text; aborts when yajl rejects what a reader accepted. */
static inline yajl_val fz_parse(const char *text)
{
    char msg[256];
    yajl_val v = yajl_tree_parse(text, msg, sizeof msg);
    if (!v) {
        fprintf(stderr, "accepted by the reader, rejected by yajl_tree_parse: %s\n", msg);
        abort();
    }
    return v;
}

#endif
