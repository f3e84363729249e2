/*
 * Fuzzes the operation journal reader (snap_journal_from_json). What it
 * accepts must mean what the input says and survive a round trip:
 *   - every field of the parse matches yajl's own tree of the input
 *     (fuzz_tree.h: a second, independent reading);
 *   - serialised and parsed again, the second parse matches the input's
 *     tree too (parse -> emit -> parse equality, field by field);
 *   - the two serialisations are identical texts.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_text.h"
#include "fuzz_tree.h"
#include "snap_journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check_process(yajl_val root, const char *key, pid_t pid, uint64_t start)
{
    yajl_val v = fz_get(root, key);
    if (!v || YAJL_IS_NULL(v)) {
        if (pid != 0 || start != 0)
            fz_mismatch("journal ", key, "null", "a process");
        return;
    }
    char where[32];
    snprintf(where, sizeof where, "journal %s.", key);
    fz_int(v, where, "pid", pid, -1);
    fz_int(v, where, "start_time", (long long)start, -1);
}

static void check_disk(const snap_journal_disk *d, yajl_val v)
{
    const char *w = "journal disks[].";
    fz_str(v, w, "vdev", d->vdev);
    fz_str(v, w, "image", d->image);
    fz_str(v, w, "internal_created", d->internal_created);
    fz_str(v, w, "overlay_created", d->overlay_created);
    fz_bool(v, w, "done", d->done, false);
    fz_bool(v, w, "merging", d->merging, false);
    yajl_val old = fz_get(v, "old");
    if ((old && !YAJL_IS_NULL(old)) != d->has_old)
        fz_mismatch(w, "old", old && !YAJL_IS_NULL(old) ? "an object" : "null",
                    d->has_old ? "recorded" : "none");
    fz_str(old, "journal disks[].old.", "params", d->old_params);
    fz_str(old, "journal disks[].old.", "format", d->old_format);
    fz_str(old, "journal disks[].old.", "pdev_path", d->old_pdev_path);
}

/* Every field of j against the tree of the text it was read from. */
static void check_journal(const snap_journal *j, yajl_val root)
{
    const char *w = "journal ";
    fz_int(root, w, "version", SNAP_JOURNAL_VERSION, -1);
    fz_str(root, w, "operation", snap_journal_op_name(j->op));
    fz_str(root, w, "phase", snap_journal_phase_name(j->phase));
    fz_str(root, w, "snapshot", j->snapshot);
    check_process(root, "owner", j->owner_pid, j->owner_start);
    check_process(root, "watchdog", j->watchdog_pid, j->watchdog_start);
    fz_int(root, w, "started_ms", j->started_ms, -1);
    fz_int(root, w, "updated_ms", j->updated_ms, -1);
    fz_int(root, w, "lease_deadline_ms", j->lease_deadline_ms, -1);
    fz_str(root, w, "prev_current", j->prev_current);
    fz_str(root, w, "memory_created", j->memory_created);
    fz_str(root, w, "domain_state", j->domain_state);
    fz_len(root, w, "disks", j->n_disks);
    for (size_t i = 0; i < j->n_disks; i++)
        check_disk(&j->disks[i], fz_at(root, "disks", i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = fuzz_text(data, len);
    snap_err err;
    snap_journal m;
    if (snap_journal_from_json(&m, text, "fuzz", &err) == 0) {
        yajl_val input = fz_parse(text);
        check_journal(&m, input);
        char *once = snap_journal_to_json(&m);
        snap_journal again;
        bool bad = snap_journal_from_json(&again, once, "fuzz-again", &err) != 0;
        if (!bad) {
            yajl_val emitted = fz_parse(once);
            check_journal(&again, emitted);
            check_journal(&again, input);
            yajl_tree_free(emitted);
        }
        fuzz_round_trip_same(once, bad ? err.msg : NULL,
                             bad ? NULL : snap_journal_to_json(&again));
        yajl_tree_free(input);
        snap_journal_dispose(&again);
        snap_journal_dispose(&m);
    }
    free(text);
    return 0;
}
