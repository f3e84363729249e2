/*
 * snapshot-delete: the snapshots to delete (--children/--children-only as
 * virsh: leaves first), then for each one a journal, its storage and its
 * metadata (the steps, in snap_delete_steps.c), the journal cleared;
 * --metadata only forgets records; -N says what would be done; a damaged
 * record is handled apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_delete_steps.h"
#include "snap_json.h"
#include "snap_meta_io.h"
#include "snap_meta_tree.h"
#include "snap_ops.h"

static int delete_one(snap_ctx *ctx, snap_session *s, const char *name, bool meta_only,
                      snap_err *err)
{
    snap_meta m;
    int rc = snap_meta_load(&s->st, name, &m, err);
    if (rc)
        return rc;
    snap_journal j;
    snap_journal_init(&j, SNAP_JOURNAL_DELETE, name);
    for (size_t i = 0; i < m.n_disks; i++) {
        snap_journal_disk *jd = snap_journal_add_disk(&j, m.disks[i].vdev);
        jd->image = snap_xstrdup(m.disks[i].base_path);
    }
    rc = snap_journal_begin(&s->st, &j, err);
    if (!rc && !meta_only)
        rc = snap_delete_storage(ctx, s, &m, &j, err);
    if (!rc)
        rc = snap_journal_set_phase(&s->st, &j, SNAP_PHASE_DISKS_DONE, err);
    if (!rc)
        rc = snap_delete_metadata(ctx, s, &m, err);
    bool merging = false;
    for (size_t i = 0; i < j.n_disks; i++)
        merging = merging || j.disks[i].merging;
    if (rc && merging) { /* the base changed: only finishing the merge is consistent */
        snap_domain_ref now;
        snap_err lerr;
        bool known = ctx->ops->lookup(ctx, s->dom.ref.name, &now, &lerr) == 0;
        snap_err_context(
            err,
            "the merge was interrupted and stays journaled (domain %s %s%s); "
            "the next xlsnap command on it finishes the merge",
            s->dom.ref.name, known ? "is " : "state unknown: ",
            known ? snap_domain_state_to_string(now.state) : lerr.msg);
    } else if (!rc || j.owner_pid) {
        snap_err ferr;
        int frc = snap_journal_finish(&s->st, &ferr);
        if (frc && !rc)
            rc = frc, *err = ferr;
    }
    snap_journal_dispose(&j);
    snap_meta_dispose(&m);
    return rc ? snap_err_context(err, "deleting snapshot '%s'", name) : 0;
}

/* The snapshots to delete, leaves first. */
static int targets(snap_session *s, const char *name, snap_delete_scope scope,
                   char ***out, size_t *n, snap_err *err)
{
    snap_meta_tree t;
    snap_meta_tree_init(&t);
    int rc = snap_meta_tree_load(&s->st, &t, err);
    size_t i = rc ? SNAP_META_NONE : snap_meta_tree_find(&t, name);
    if (!rc && i == SNAP_META_NONE)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                          "snapshot '%s' of domain %s not found", name, s->dom.ref.name);
    *n = 0;
    *out = NULL;
    if (!rc) {
        size_t nd = 0, *d = scope == SNAP_DELETE_ONE
                                ? NULL
                                : snap_meta_tree_descendants(&t, i, &nd);
        *out = snap_xcalloc(nd + 1, sizeof **out);
        for (size_t k = nd; k > 0; k--) /* pre-order reversed: children before parents */
            (*out)[(*n)++] = snap_xstrdup(t.nodes[d[k - 1]].e.name);
        if (scope != SNAP_DELETE_CHILDREN_ONLY)
            (*out)[(*n)++] = snap_xstrdup(name);
        free(d);
    }
    snap_meta_tree_dispose(&t);
    return rc;
}

/* ------------------------------------------------------------ dry run */

static const char *storage_action(const snap_session *s, const snap_meta_disk *md,
                                  bool meta_only)
{
    bool live = s->dom.qmp_path != NULL;
    if (meta_only)
        return "none (metadata only)";
    if (md->lvm_merged)
        return "none (merged into its volume by a revert)";
    if (snap_method_is_lvm(md->method))
        return "lvremove of the snapshot volume";
    if (md->method == SNAP_METHOD_INTERNAL)
        return live ? "QMP blockdev-snapshot-delete-internal-sync"
                    : "qemu-img snapshot -d";
    snap_vdisk *vd = snap_domain_find_disk((snap_domain *)&s->dom, md->vdev);
    bool active = vd && !strcmp(vd->xs->path, md->overlay_path);
    if (!live)
        return "qemu-img commit of the overlay, then rebase of the image above";
    return active ? "QMP active block-commit of the overlay, pivot to the base, "
                    "xenstore and config switched"
                  : "QMP block-commit of the overlay into the base";
}

static void plan_snapshot_json(yajl_gen g, snap_session *s, const char *name,
                               bool meta_only, const snap_image_set *known)
{
    snap_meta m;
    snap_err ignored;
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "name", name);
    if (snap_meta_load(&s->st, name, &m, &ignored) == 0) {
        snap_json_kv_str(g, "parent", m.parent);
        snap_json_kv_str(g, "memory_file", m.has_memory ? m.memory_path : NULL);
        snap_json_key(g, "disks");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < m.n_disks; i++) {
            const snap_meta_disk *md = &m.disks[i];
            yajl_gen_map_open(g);
            snap_json_kv_str(g, "vdev", md->vdev);
            snap_json_kv_str(g, "method", snap_method_to_string(md->method));
            snap_json_kv_str(g, "base", md->base_path);
            snap_json_kv_str(g, "overlay", md->overlay_path);
            if (snap_method_is_lvm(md->method))
                snap_json_kv_str(g, "lvm_snapshot", md->lvm_snapshot);
            snap_json_kv_str(g, "action", storage_action(s, md, meta_only));
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
        snap_image_set stale = {0};
        if (!meta_only)
            snap_delete_stale_overlays(s, &m, known, &stale);
        snap_json_kv_strv(g, "remove_revert_overlays", (const char *const *)stale.paths,
                          stale.n);
        snap_image_set_free(&stale);
        snap_meta_dispose(&m);
    }
    yajl_gen_map_close(g);
}

/* What a delete would do, for -N: the snapshots in order, each disk's step. */
static char *delete_plan_json(snap_session *s, const char *name,
                              const snap_delete_params *p, char **list, size_t n)
{
    static const char *const scopes[] = {"one", "children", "children-only"};
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "operation", "delete");
    snap_json_kv_str(g, "domain", s->dom.ref.name);
    snap_json_kv_str(g, "snapshot", name);
    snap_json_kv_str(g, "scope", scopes[p->scope]);
    snap_json_kv_bool(g, "metadata_only", p->metadata_only);
    snap_json_kv_bool(g, "domain_live", s->dom.qmp_path != NULL);
    snap_json_key(g, "delete");
    yajl_gen_array_open(g);
    snap_image_set known = {0};
    snap_err ignored;
    snap_delete_known_images(s, &known, &ignored);
    for (size_t i = 0; i < n; i++)
        plan_snapshot_json(g, s, list[i], p->metadata_only, &known);
    snap_image_set_free(&known);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    return snap_json_gen_finish(g, NULL);
}

/*
 * A record that exists but cannot be read (damaged, a symlink): not in the
 * tree, so *damaged says it is handled here. Only --metadata of it alone
 * removes it (its children become roots: its parent is unknown); anything
 * else is the error saying so. The record file itself is unlinked inside
 * the store, never a symlink's target.
 */
static int delete_damaged(snap_ctx *ctx, snap_session *s, const char *name,
                          const snap_delete_params *p, bool *damaged, snap_err *err)
{
    snap_meta m;
    *damaged = false;
    if (!snap_meta_exists(&s->st, name))
        return 0;
    int rc = snap_meta_load_hinted(&s->st, name, &m, err);
    if (rc == 0)
        snap_meta_dispose(&m);
    if (rc == 0 || rc == SNAP_ERROR_NOTFOUND) {
        snap_err_clear(err);
        return 0;
    }
    *damaged = true;
    if (!p->metadata_only || p->scope != SNAP_DELETE_ONE)
        return rc;
    snap_err_clear(err);
    if (p->dry_run)
        return 0;
    snap_log(ctx->lg, XTL_NOTICE, "removing the damaged record of snapshot '%s'", name);
    char *why =
        snap_xasprintf("the damaged record of '%s' names no readable parent", name);
    snap_delete_say_orphaned(ctx, s, name, why);
    free(why);
    rc = snap_meta_reparent_children(&s->st, name, NULL, err);
    return rc ? rc : snap_meta_remove(&s->st, name, err);
}

/* -N of --metadata on a damaged record: the file that goes. */
static char *damaged_plan_json(snap_session *s, const char *name)
{
    char *file = snap_xasprintf("%s.json", name);
    char *path = snap_meta_store_path(&s->st, file);
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "operation", "delete");
    snap_json_kv_str(g, "domain", s->dom.ref.name);
    snap_json_kv_str(g, "snapshot", name);
    snap_json_kv_bool(g, "metadata_only", true);
    snap_json_kv_str(g, "remove_damaged_record", path);
    yajl_gen_map_close(g);
    free(path);
    free(file);
    return snap_json_gen_finish(g, NULL);
}

int snap_delete_domain(snap_ctx *ctx, const char *domain, const char *name,
                       const snap_delete_params *p, char **plan_out)
{
    snap_session s;
    snap_err *err = &ctx->err;
    snap_err_clear(err);
    char **list = NULL;
    size_t n = 0;
    int rc = snap_session_open(ctx, domain,
                               p->dry_run ? 0 : SNAP_SESSION_RECOVER_VANISHED, &s, err);
    if (plan_out)
        *plan_out = NULL;
    bool damaged = false;
    if (!rc)
        rc = delete_damaged(ctx, &s, name, p, &damaged, err);
    if (!rc && damaged && p->dry_run && plan_out)
        *plan_out = damaged_plan_json(&s, name);
    if (!rc && !damaged)
        rc = targets(&s, name, p->scope, &list, &n, err);
    if (!rc && !damaged && p->dry_run && plan_out)
        *plan_out = delete_plan_json(&s, name, p, list, n);
    if (!rc && !p->dry_run && !p->metadata_only)
        rc = snap_delete_check_targets(&s, list, n, err);
    for (size_t i = 0; i < n && !rc && !p->dry_run; i++) {
        snap_log(ctx->lg, XTL_INFO, "deleting snapshot '%s'", list[i]);
        rc = delete_one(ctx, &s, list[i], p->metadata_only, err);
        /* A merge may have switched disks: later steps need the present view. */
        if (!rc && i + 1 < n) {
            snap_domain_dispose(&s.dom);
            rc = snap_domain_resolve(ctx, domain, &s.dom, err);
        }
    }
    snap_strv_free(list, n);
    snap_session_close(&s);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}
