/*
 * Fuzzes the snapshot metadata reader (snap_meta_from_json). What it accepts
 * must mean what the input says and survive a round trip:
 *   - every field of the parse matches yajl's own tree of the input
 *     (fuzz_tree.h: a second, independent reading);
 *   - serialised and parsed again, the second parse matches the input's
 *     tree too (parse -> emit -> parse equality, field by field);
 *   - the two serialisations are identical texts.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz_text.h"
#include "fuzz_tree.h"
#include "snap_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check_disk(const snap_meta_disk *d, yajl_val v)
{
    const char *w = "meta disks[].";
    fz_str(v, w, "vdev", d->vdev);
    fz_str(v, w, "backend", d->backend);
    fz_str(v, w, "method", snap_method_to_string(d->method));
    fz_str(v, w, "format", d->format);
    fz_str(v, w, "base_path", d->base_path);
    fz_str(v, w, "overlay_path", d->overlay_path);
    fz_str(v, w, "overlay_format", d->overlay_format);
    fz_str(v, w, "qemu_snapshot_name", d->qemu_snap_name);
    fz_str(v, w, "qemu_snapshot_id", d->qemu_snap_id);
    fz_str(v, w, "node_before", d->node_before);
    fz_str(v, w, "node_after", d->node_after);
}

static void check_strings(yajl_val root, const char *key, char *const *parsed, size_t n)
{
    fz_len(root, "meta ", key, n);
    for (size_t i = 0; i < n; i++) {
        yajl_val e = fz_at(root, key, i);
        if (!YAJL_IS_STRING(e) || strcmp(e->u.string, parsed[i]) != 0)
            fz_mismatch("meta ", key, YAJL_IS_STRING(e) ? e->u.string : "a non-string",
                        parsed[i]);
    }
}

/* Every field of m against the tree of the text it was read from. */
static void check_meta(const snap_meta *m, yajl_val root)
{
    fz_int(root, "meta ", "version", SNAP_META_VERSION, -1);
    fz_str(root, "meta ", "name", m->name);
    fz_str(root, "meta ", "description", m->description);
    fz_str(root, "meta ", "parent", m->parent);
    yajl_val t = fz_get(root, "creation_time");
    fz_int(t, "meta creation_time.", "sec", m->ctime_sec, -1);
    fz_int(t, "meta creation_time.", "nsec", m->ctime_nsec, -1);
    yajl_val dom = fz_get(root, "domain");
    fz_str(dom, "meta domain.", "name", m->domain.name);
    fz_str(dom, "meta domain.", "uuid", m->domain.uuid);
    fz_int(dom, "meta domain.", "domid", m->domain.domid, -1);
    fz_str(dom, "meta domain.", "state", snap_domain_state_to_string(m->domain.state));
    fz_len(root, "meta ", "disks", m->n_disks);
    for (size_t i = 0; i < m->n_disks; i++)
        check_disk(&m->disks[i], fz_at(root, "disks", i));
    check_strings(root, "excluded_disks", m->excluded, m->n_excluded);
    check_strings(root, "revert_overlays", m->revert_overlays, m->n_revert_overlays);
    yajl_val q = fz_get(root, "quiesce");
    const char *w = "meta quiesce.";
    fz_str(q, w, "policy", snap_quiesce_policy_to_string(m->quiesce.policy));
    fz_bool(q, w, "agent_present", m->quiesce.agent_present, false);
    fz_int(q, w, "frozen_count", m->quiesce.frozen_count, -1);
    fz_int(q, w, "window_ms", m->quiesce.window_ms, -1);
    fz_bool(q, w, "thaw_ok", m->quiesce.thaw_ok, false);
    fz_str(q, w, "state", snap_meta_consistency_name(m->quiesce.state));
    yajl_val mem = fz_get(root, "memory");
    if ((mem && !YAJL_IS_NULL(mem)) != m->has_memory)
        fz_mismatch("meta ", "memory", mem && !YAJL_IS_NULL(mem) ? "an object" : "null",
                    m->has_memory ? "a memory file" : "none");
    if (m->has_memory) {
        fz_str(mem, "meta memory.", "path", m->memory_path);
        fz_int(mem, "meta memory.", "size", (long long)m->memory_size, -1);
    }
    yajl_val config = fz_get(root, "config");
    if (!fz_same_tree(config && !YAJL_IS_NULL(config) ? config : NULL, m->config))
        fz_mismatch("meta ", "config", "one tree", "another");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = fuzz_text(data, len);
    snap_err err;
    snap_meta m;
    if (snap_meta_from_json(&m, text, "fuzz", &err) == 0) {
        yajl_val input = fz_parse(text);
        check_meta(&m, input);
        (void)snap_meta_validate(&m, "fuzz", &err);
        char *once = snap_meta_to_json(&m);
        snap_meta again;
        bool bad = snap_meta_from_json(&again, once, "fuzz-again", &err) != 0;
        if (!bad) {
            yajl_val emitted = fz_parse(once);
            check_meta(&again, emitted);
            check_meta(&again, input);
            yajl_tree_free(emitted);
        }
        fuzz_round_trip_same(once, bad ? err.msg : NULL,
                             bad ? NULL : snap_meta_to_json(&again));
        yajl_tree_free(input);
        snap_meta_dispose(&again);
        snap_meta_dispose(&m);
    }
    free(text);
    return 0;
}
