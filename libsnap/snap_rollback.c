/*
 * Rolling back a create or a revert from its journal alone, so that the same
 * code undoes a failure in this process and an operation a dead xlsnap left
 * behind (journal recovery, snap_recover.c). Undoing a create:
 *  - an overlay QEMU now writes to is merged back into the image below it
 *    (active block-commit: nothing the guest wrote since is lost), then the
 *    file is removed; an overlay QEMU does not use is just removed;
 *  - an internal snapshot the operation created is deleted (QMP when a device
 *    model serves the disk, qemu-img when not);
 *  - an LVM snapshot volume it journaled is removed (lvremove) if there;
 *  - xenstore params and the stored config get their old values back.
 * Undoing a revert: the toolstack back to the old images, the new overlays
 * removed, the domain started again (or, past its start, the revert is
 * finished instead: its overlays recorded, current moved).
 * Every step tolerates "already undone", so a crash during rollback is
 * recovered by rolling back again.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_domcfg.h"
#include "snap_lvm.h"
#include "snap_lvm_revert.h"
#include "snap_memory.h"
#include "snap_meta_io.h"
#include "snap_owned.h"
#include "snap_qemuimg.h"
#include "snap_revert_record.h"
#include "snap_rollback.h"
#include "snap_switch.h"

/*
 * The journal names each overlay before it exists, so a file found there is
 * removed only if it is what this operation made: a qcow2 whose backing file
 * is the disk's image. Anything else (a file someone put there in the
 * meantime, which the pre-transaction check refused to overwrite) is left.
 */
static bool overlay_is_ours(const char *overlay, const char *image)
{
    unsigned char h[20];
    FILE *f = fopen(overlay, "rbe");
    if (!f)
        return false;
    bool ok = fread(h, 1, sizeof h, f) == sizeof h && !memcmp(h, "QFI\xfb", 4);
    uint64_t off = 0;
    uint32_t len = 0;
    for (int i = 8; ok && i < 16; i++)
        off = off << 8 | h[i];
    for (int i = 16; ok && i < 20; i++)
        len = len << 8 | h[i];
    char name[4096];
    ok = ok && off && len > 0 && len < sizeof name &&
         fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(name, 1, len, f) == len;
    fclose(f);
    if (ok)
        name[len] = '\0';
    return ok && !strcmp(name, image);
}

/*
 * Removes an overlay this create made; ENOENT or not ours: nothing to do.
 * Only where and as the create names overlays (a journal may be edited).
 */
static int remove_overlay(snap_ctx *ctx, const snap_journal *j,
                          const snap_journal_disk *jd, snap_err *err)
{
    if (!overlay_is_ours(jd->overlay_created, jd->image))
        return 0;
    snap_owned o = {0};
    snap_owned_create_overlay(&o, jd->image, jd->vdev, j->snapshot, j->overlay_dir);
    int rc = snap_owned_remove(ctx->lg, jd->overlay_created, &o, err);
    snap_owned_dispose(&o);
    return rc ? snap_err_context(err, "disk %s", jd->vdev) : 0;
}

/* Merges an overlay QEMU is using back into its backing node, then removes it. */
static int undo_overlay_qmp(snap_ctx *ctx, snap_qmp *qmp, const snap_qmp_disks *qd,
                            const snap_journal *j, const snap_journal_disk *jd,
                            snap_err *err)
{
    size_t depth;
    const snap_qmp_disk *q = snap_qmp_disks_find_file(qd, jd->overlay_created, &depth);
    if (q && depth != 0)
        return snap_err_set(
            err, SNAP_ERROR_BUSY,
            "disk %s: overlay %s is now the backing file of a newer image; "
            "not removing it",
            jd->vdev, jd->overlay_created);
    if (q) {
        if (q->chain_len < 2 || !q->chain[1].node_name)
            return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                                "disk %s: cannot find the node below overlay %s",
                                jd->vdev, jd->overlay_created);
        char job[160];
        snprintf(job, sizeof job, "xlsnap-rollback-%s", jd->vdev);
        int rc =
            snap_qmp_commit_active(qmp, snap_qmp_disk_target(q), q->chain[1].node_name,
                                   job, SNAP_COMMIT_TIMEOUT_MS, err);
        if (rc)
            return snap_err_context(err, "disk %s: merging overlay %s back", jd->vdev,
                                    jd->overlay_created);
    }
    return remove_overlay(ctx, j, jd, err);
}

static int undo_internal_qmp(snap_qmp *qmp, const snap_qmp_disks *qd,
                             const snap_journal_disk *jd, snap_err *err)
{
    size_t depth;
    const snap_qmp_disk *q = snap_qmp_disks_find_file(qd, jd->image, &depth);
    if (!q || depth != 0 || !snap_qmp_disk_find_snapshot(q, jd->internal_created))
        return 0; /* never made, or already deleted */
    int rc = snap_qmp_delete_internal(qmp, snap_qmp_disk_target(q), jd->internal_created,
                                      SNAP_QMP_TIMEOUT_MS, err);
    return rc ? snap_err_context(err, "disk %s", jd->vdev) : 0;
}

static int undo_disk_offline(snap_ctx *ctx, const snap_journal *j,
                             const snap_journal_disk *jd, snap_err *err)
{
    if (jd->overlay_created) {
        int rc = remove_overlay(ctx, j, jd, err);
        if (rc)
            return rc;
    }
    if (jd->internal_created) {
        int rc = snap_qimg_snapshot_delete(NULL, jd->image, jd->internal_created, err);
        if (rc && rc != SNAP_ERROR_NOTFOUND)
            return snap_err_context(err, "disk %s", jd->vdev);
        snap_err_clear(err);
    }
    return 0;
}

/*
 * The snapshot volumes the create journaled, made or not (an lvcreate
 * killed by the budget may have finished): removed when they are there,
 * tagged as xlsnap's and of the journaled origin (snap_lvm.h).
 */
static int undo_lvm(snap_ctx *ctx, const snap_journal *j, snap_err *err)
{
    snap_lvm_snap_req *reqs = snap_xcalloc(j->n_disks ? j->n_disks : 1, sizeof *reqs);
    char **parts = snap_xcalloc(4 * (j->n_disks ? j->n_disks : 1), sizeof *parts);
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < j->n_disks && !rc; i++) {
        const snap_journal_disk *jd = &j->disks[i];
        if (!jd->lvm_created)
            continue;
        char **p = &parts[4 * n];
        rc = snap_lvm_split_name(jd->lvm_created, &p[0], &p[1], err);
        if (!rc)
            rc = snap_lvm_split_name(jd->lvm_origin, &p[2], &p[3], err);
        reqs[n++] = (snap_lvm_snap_req){.vg = p[0], .name = p[1], .origin = p[3]};
    }
    snap_lvm_opts o = {.lg = ctx->lg};
    if (!rc && n)
        rc = snap_lvm_remove_snapshots(&o, reqs, n, err);
    for (size_t i = 0; i < 4 * n; i++)
        free(parts[i]);
    free(parts);
    free(reqs);
    return rc;
}

static int undo_storage(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                        snap_err *err)
{
    int lrc = undo_lvm(ctx, j, err);
    if (lrc)
        return lrc;
    snap_qmp *qmp = NULL;
    snap_qmp_disks qd = {0};
    int rc = snap_domain_qmp_disks(ctx, &s->dom, &qmp, &qd, err);
    for (size_t i = 0; i < j->n_disks && !rc; i++) {
        const snap_journal_disk *jd = &j->disks[i];
        if (!qmp)
            rc = undo_disk_offline(ctx, j, jd, err);
        else if (jd->overlay_created)
            rc = undo_overlay_qmp(ctx, qmp, &qd, j, jd, err);
        else if (jd->internal_created)
            rc = undo_internal_qmp(qmp, &qd, jd, err);
    }
    snap_qmp_disks_free(&qd);
    snap_domain_qmp_close(ctx, qmp);
    return rc;
}

/* Puts xenstore and the stored config back to the journaled old values. */
static int undo_backend(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                        snap_err *err)
{
    snap_disk_switch *sw = snap_xcalloc(j->n_disks, sizeof *sw);
    size_t n = 0;
    for (size_t i = 0; i < j->n_disks; i++)
        if (j->disks[i].has_old)
            sw[n++] = (snap_disk_switch){j->disks[i].vdev, j->disks[i].old_format,
                                         j->disks[i].old_pdev_path};
    int rc = snap_switch_disks(ctx, &s->dom.ref, sw, n, err);
    free(sw);
    return rc;
}

int snap_rollback_create(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                         snap_err *err)
{
    snap_log(ctx->lg, XTL_INFO, "rolling back snapshot '%s' of domain %s", j->snapshot,
             s->dom.ref.name);
    /* Backend first: QEMU must not be pointed at a file we are about to remove. */
    int rc = undo_backend(ctx, s, j, err);
    if (!rc)
        rc = undo_storage(ctx, s, j, err);
    if (!rc && snap_meta_exists(&s->st, j->snapshot))
        rc = snap_meta_remove(&s->st, j->snapshot, err);
    if (!rc)
        rc = snap_memory_remove(ctx, &s->st, j->snapshot, j->memory_created, err);
    if (!rc)
        rc = snap_meta_set_current(&s->st, j->prev_current, err);
    if (!rc)
        rc = snap_journal_finish(&s->st, err);
    return rc ? snap_err_context(err, "rolling back snapshot '%s'", j->snapshot) : 0;
}

/*
 * A revert stops the domain before it touches the disks. Once rolled back,
 * the domain journaled as running or paused is started again: as it was
 * when its disks are as before (the running guest boots afresh: its memory
 * went with the stopped device model), else paused and not booted (applied
 * internal snapshots cannot be undone): never a guest booted on
 * half-reverted disks. One Xen kept shut down, which the revert destroyed,
 * is created again paused and not booted: Xen has no way to create it shut
 * down, and its admin had not meant it to run. Journals without
 * domain_state (older xlsnap) leave the domain as it is.
 */
static int restart_after_revert(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                                snap_err *err)
{
    snap_domain_ref now;
    snap_err lerr;
    if (!j->domain_state || !strcmp(j->domain_state, "shutoff"))
        return 0;
    /* By UUID: a domain Xen destroyed has no name, and the name may be reused. */
    int lrc = ctx->ops->lookup_uuid(ctx, s->dom.ref.uuid, &now, &lerr);
    if (lrc == SNAP_ERROR_NOTFOUND && !ctx->ops->keeps_stopped_domain && s->dom.config)
        now = s->dom.ref; /* destroyed by the revert: created again from its config */
    else if (lrc || !ctx->ops->keeps_stopped_domain || now.state != SNAP_DOMAIN_SHUTOFF)
        return 0;
    bool kept = !strcmp(j->domain_state, SNAP_JOURNAL_KEPT_SHUTDOWN);
    bool intact = true;
    for (size_t i = 0; i < j->n_disks; i++)
        intact = intact && (j->phase < SNAP_PHASE_DOMAIN_STOPPED ||
                            j->disks[i].overlay_created != NULL ||
                            j->disks[i].lvm_created != NULL); /* undone */
    bool paused = kept || !intact || !strcmp(j->domain_state, "paused");
    snap_log(ctx->lg, XTL_NOTICE, "domain %s was %s before the interrupted revert: %s",
             now.name, kept ? "shut down and kept by Xen" : j->domain_state,
             kept      ? "creating it again paused and not booted (xl unpause boots "
                         "it, xl destroy ends it)"
             : !intact ? "starting it paused and not booted (its internal snapshots "
                         "may be applied already)"
             : paused  ? "starting it paused"
                       : "booting it afresh on its disks as they were");
    int rc = ctx->ops->start(ctx, &now, s->dom.config, NULL, paused, err);
    return rc ? snap_err_context(err, "restarting domain %s", now.name) : 0;
}

/*
 * The overlays the revert made, checked against the reverted-to record
 * (their directory and name derive from it); without a readable record,
 * none is removed.
 */
static int remove_revert_overlays(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                                  snap_err *err)
{
    snap_meta m;
    snap_err lerr;
    bool have = snap_meta_load(&s->st, j->snapshot, &m, &lerr) == 0;
    int rc = 0;
    for (size_t i = 0; i < j->n_disks && !rc; i++) {
        const snap_journal_disk *jd = &j->disks[i];
        const snap_meta_disk *md = NULL;
        for (size_t k = 0; have && k < m.n_disks && !md; k++)
            md = !strcmp(m.disks[k].vdev, jd->vdev) ? &m.disks[k] : NULL;
        snap_owned o = {.what = "overlay"};
        if (md)
            snap_owned_revert_overlay(&o, md, j->snapshot);
        if (jd->overlay_created)
            rc = snap_owned_remove(ctx->lg, jd->overlay_created, &o, err);
        snap_owned_dispose(&o);
        if (rc)
            snap_err_context(err, "disk %s", jd->vdev);
    }
    if (have)
        snap_meta_dispose(&m);
    return rc;
}

int snap_rollback_lvm_reverts(snap_ctx *ctx, const snap_journal *j, bool undo,
                              snap_err *err)
{
    snap_lvm_opts o = {.lg = ctx->lg};
    int rc = 0;
    for (size_t i = 0; i < j->n_disks && !rc; i++) {
        const snap_journal_disk *jd = &j->disks[i];
        snap_lvm_swap sw;
        if (!jd->lvm_created || (jd->lvm_merge && undo)) /* a merge is never undone */
            continue;
        rc = snap_lvm_swap_init(&sw, jd->lvm_created, jd->lvm_origin, err);
        if (!rc && jd->lvm_merge)
            rc = snap_lvm_merge_finish(&o, &sw, err);
        else if (!rc)
            rc = undo ? snap_lvm_swap_undo(&o, &sw, err)
                      : snap_lvm_swap_finish(&o, &sw, err);
        snap_lvm_swap_dispose(&sw);
        if (rc)
            snap_err_context(err, "disk %s", jd->vdev);
    }
    return rc;
}

/* 1: a classic snapshot merge of this revert began (LVM says so), 0: none. */
static int merge_began(snap_ctx *ctx, const snap_journal *j, snap_err *err)
{
    snap_lvm_opts o = {.lg = ctx->lg};
    int began = 0;
    for (size_t i = 0; i < j->n_disks && began == 0; i++) {
        const snap_journal_disk *jd = &j->disks[i];
        snap_lvm_swap sw;
        if (!jd->lvm_merge)
            continue;
        began = snap_lvm_swap_init(&sw, jd->lvm_created, jd->lvm_origin, err);
        if (!began)
            began = snap_lvm_merge_began(&o, &sw, err);
        snap_lvm_swap_dispose(&sw);
    }
    return began;
}

/* The revert is kept: its overlays recorded, current moved, old volumes gone. */
static int finish_revert(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                         snap_err *err)
{
    int rc = snap_revert_record_overlays(&s->st, j, err);
    if (!rc)
        rc = snap_meta_set_current(&s->st, j->snapshot, err);
    if (!rc)
        rc = snap_rollback_lvm_reverts(ctx, j, false, err);
    if (!rc)
        rc = snap_revert_record_merged(&s->st, ctx->lg, j, err);
    if (!rc)
        rc = snap_journal_finish(&s->st, err);
    if (!rc)
        snap_revert_forget_domain(&s->st);
    return rc;
}

/*
 * The domain of a revert that went forward, started as journaled (running:
 * booted afresh; paused: paused; shutoff: not), on the revert's new
 * overlays: its stored config edited as the revert would have.
 */
static int start_reverted(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                          snap_err *err)
{
    snap_domain_ref now;
    snap_err lerr;
    if (!j->domain_state || !strcmp(j->domain_state, "shutoff"))
        return 0;
    int lrc = ctx->ops->lookup_uuid(ctx, s->dom.ref.uuid, &now, &lerr);
    if (lrc == SNAP_ERROR_NOTFOUND && !ctx->ops->keeps_stopped_domain && s->dom.config)
        now = s->dom.ref;
    else if (lrc || now.state != SNAP_DOMAIN_SHUTOFF)
        return 0; /* started already */
    snap_domcfg_disk_change *dc = snap_xcalloc(j->n_disks + 1, sizeof *dc);
    snap_disk_switch *sw = snap_xcalloc(j->n_disks + 1, sizeof *sw);
    size_t n = 0, len;
    for (size_t i = 0; i < j->n_disks; i++)
        if (j->disks[i].overlay_created) {
            dc[n] = (snap_domcfg_disk_change){j->disks[i].vdev,
                                              j->disks[i].overlay_created, "qcow2"};
            sw[n++] = (snap_disk_switch){j->disks[i].vdev, "qcow2",
                                         j->disks[i].overlay_created};
        }
    char *config = NULL;
    int rc = snap_domcfg_edit_disks(s->dom.config, s->dom.config_len, dc, n, &config,
                                    &len, err);
    if (!rc && n && ctx->ops->keeps_stopped_domain)
        rc = snap_switch_disks(ctx, &now, sw, n, err);
    bool paused = !strcmp(j->domain_state, "paused");
    snap_log(ctx->lg, XTL_NOTICE, "domain %s: %s on its reverted disks", now.name,
             paused ? "starting it paused" : "booting it afresh");
    if (!rc)
        rc = ctx->ops->start(ctx, &now, config, NULL, paused, err);
    free(config);
    free(dc);
    free(sw);
    return rc ? snap_err_context(err, "starting domain %s", now.name) : 0;
}

/*
 * A classic snapshot merge cannot be undone: a revert whose merges began
 * (the last of its storage steps: every other disk is reverted) goes
 * forward: the merges are finished, the domain started on its reverted
 * disks, the revert kept.
 */
static int roll_forward_revert(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                               snap_err *err)
{
    snap_log(ctx->lg, XTL_NOTICE,
             "the revert of domain %s to '%s' had begun merging classic snapshot "
             "volumes, which cannot be undone: finishing it",
             s->dom.ref.name, j->snapshot);
    int rc = snap_rollback_lvm_reverts(ctx, j, false, err);
    if (!rc)
        rc = snap_revert_record_merged(&s->st, ctx->lg, j, err);
    if (!rc)
        rc = start_reverted(ctx, s, j, err);
    if (!rc)
        rc = finish_revert(ctx, s, j, err);
    return rc ? snap_err_context(err, "finishing the revert to '%s'", j->snapshot) : 0;
}

int snap_rollback_revert(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                         snap_err *err)
{
    int rc = 0;
    snap_domain_ref now;
    snap_err ignored;
    bool started = j->phase >= SNAP_PHASE_CONFIG_DONE &&
                   ctx->ops->lookup_uuid(ctx, s->dom.ref.uuid, &now, &ignored) == 0 &&
                   now.state != SNAP_DOMAIN_SHUTOFF;
    if (j->phase >= SNAP_PHASE_DOMAIN_STARTED || started) {
        snap_log(ctx->lg, XTL_INFO, "finishing the revert of domain %s to '%s'",
                 s->dom.ref.name, j->snapshot);
        return finish_revert(ctx, s, j, err);
    }
    int began = merge_began(ctx, j, err);
    if (began < 0)
        return snap_err_context(err, "rolling back the revert to '%s'", j->snapshot);
    if (began)
        return roll_forward_revert(ctx, s, j, err);
    snap_log(ctx->lg, XTL_INFO, "rolling back the revert of domain %s to '%s'",
             s->dom.ref.name, j->snapshot);
    /* The toolstack first: nothing may point at an overlay about to go. */
    if (j->phase >= SNAP_PHASE_DISKS_DONE && ctx->ops->keeps_stopped_domain)
        rc = undo_backend(ctx, s, j, err);
    if (!rc)
        rc = remove_revert_overlays(ctx, s, j, err);
    if (!rc) /* the volumes' old content back under their names */
        rc = snap_rollback_lvm_reverts(ctx, j, true, err);
    if (!rc)
        rc = restart_after_revert(ctx, s, j, err);
    if (!rc)
        rc = snap_journal_finish(&s->st, err);
    if (!rc)
        snap_revert_forget_domain(&s->st);
    return rc ? snap_err_context(err, "rolling back the revert to '%s'", j->snapshot) : 0;
}
