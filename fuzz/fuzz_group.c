/*
 * Fuzzes the consistency groups' readers: the group record
 * (snap_group_record_from_json) and the group operation journal
 * (snap_group_op_from_json), both on every input. What either accepts must
 * mean what the input says and survive a round trip:
 *   - every field read matches yajl's own tree of the input (fuzz_tree.h),
 *     but the record's "consistency", which the writer derives from the
 *     members' levels;
 *   - serialised, parsed again and serialised again, both texts are the same.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_text.h"
#include "fuzz_tree.h"
#include "snap_group_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Every field of g but the derived levels against the tree it was read from. */
static void check_record(const snap_group_info *g, yajl_val root)
{
    const char *w = "group record ";
    fz_str(root, w, "name", g->name);
    yajl_val ctime = fz_get(root, "creation_time");
    fz_int(ctime, "group record creation_time.", "sec", g->creation_sec, -1);
    fz_int(ctime, "group record creation_time.", "nsec", g->creation_nsec, -1);
    fz_int(root, w, "window_ms", g->window_ms, -1);
    fz_len(root, w, "members", g->n_members);
    for (size_t i = 0; i < g->n_members; i++) {
        const snap_group_member *m = &g->members[i];
        yajl_val v = fz_at(root, "members", i);
        const char *mw = "group record members[].";
        fz_str(v, mw, "domain", m->domain_name);
        fz_str(v, mw, "uuid", m->domain_uuid);
        fz_str(v, mw, "snapshot", m->snapshot);
        fz_int(v, mw, "frozen_count", m->frozen_count, -1);
        fz_int(v, mw, "window_ms", m->window_ms, -1);
        fz_bool(v, mw, "shut_off", m->shut_off, false);
    }
}

static void check_op(const snap_group_op *op, yajl_val root)
{
    const char *w = "group journal ";
    fz_str(root, w, "group", op->group);
    fz_str(root, w, "op", snap_group_op_kind_name(op->kind));
    fz_int(root, w, "owner_pid", op->owner_pid, -1);
    fz_bool(root, w, "force", op->force, false);
    fz_bool(root, w, "metadata_only", op->metadata_only, false);
    fz_len(root, w, "members", op->n_members);
    for (size_t i = 0; i < op->n_members; i++) {
        const snap_group_op_member *m = &op->members[i];
        yajl_val v = fz_at(root, "members", i);
        const char *mw = "group journal members[].";
        fz_str(v, mw, "domain", m->domain_name);
        fz_str(v, mw, "uuid", m->domain_uuid);
        fz_str(v, mw, "snapshot", m->snapshot);
        fz_bool(v, mw, "done", m->done, false);
    }
}

static void fuzz_record(const char *text)
{
    snap_err err;
    snap_group_info *g = NULL, *again = NULL;
    if (snap_group_record_from_json(text, "fuzz", &g, &err) != 0)
        return;
    yajl_val input = fz_parse(text);
    check_record(g, input);
    char *once = snap_group_record_to_json(g);
    bool bad = snap_group_record_from_json(once, "fuzz-again", &again, &err) != 0;
    if (!bad) {
        yajl_val emitted = fz_parse(once);
        check_record(again, emitted);
        check_record(again, input);
        yajl_tree_free(emitted);
    }
    fuzz_round_trip_same(once, bad ? err.msg : NULL,
                         bad ? NULL : snap_group_record_to_json(again));
    yajl_tree_free(input);
    snap_group_info_free(again);
    snap_group_info_free(g);
}

static void fuzz_op(const char *text)
{
    snap_err err;
    snap_group_op *op = NULL, *again = NULL;
    if (snap_group_op_from_json(text, "fuzz", &op, &err) != 0)
        return;
    yajl_val input = fz_parse(text);
    check_op(op, input);
    char *once = snap_group_op_to_json(op);
    bool bad = snap_group_op_from_json(once, "fuzz-again", &again, &err) != 0;
    if (!bad) {
        yajl_val emitted = fz_parse(once);
        check_op(again, emitted);
        check_op(again, input);
        yajl_tree_free(emitted);
    }
    fuzz_round_trip_same(once, bad ? err.msg : NULL,
                         bad ? NULL : snap_group_op_to_json(again));
    yajl_tree_free(input);
    snap_group_op_free(again);
    snap_group_op_free(op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = fuzz_text(data, len);
    fuzz_record(text);
    fuzz_op(text);
    free(text);
    return 0;
}
