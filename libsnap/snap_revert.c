/*
 * snapshot-revert: plan -> journal -> stop the domain -> disks (internal:
 * `qemu-img snapshot -a` in parallel children; external: a NEW overlay on
 * the snapshot point, never a write into a backing file) -> xenstore +
 * stored config at the new overlays -> restore the memory checkpoint or boot
 * afresh -> current moves -> journal cleared.
 *
 * Applying an internal snapshot discards the image's present state: that
 * is what a revert asks for, and it cannot be undone. So after a failure
 * past the stop, what can be undone is (new overlays, xenstore, config) and
 * the domain is started again PAUSED and not booted, with the reason in the
 * error: a defined state that never runs a guest on half-reverted disks.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_domcfg.h"
#include "snap_json.h"
#include "snap_lvm_revert.h"
#include "snap_memory.h"
#include "snap_meta_io.h"
#include "snap_ops.h"
#include "snap_overlay_name.h"
#include "snap_qemuimg.h"
#include "snap_qsnap_identity.h"
#include "snap_revert_record.h"
#include "snap_rollback.h"
#include "snap_switch.h"

typedef struct revert_disk {
    const snap_meta_disk *md;
    snap_vdisk *disk;  /* the domain's disk as it is now */
    char *new_overlay; /* external: the new active image */
    bool lvm;          /* a thin volume put back to its snapshot volume */
    bool merge;        /* a classic snapshot volume merged into its volume */
    snap_lvm_swap swap;
} revert_disk;

typedef struct revert_plan {
    snap_meta m;
    revert_disk *disks;
    size_t n;
    const char *memory; /* the checkpoint to restore, or NULL */
    bool was_live;      /* a device model ran the domain */
    /*
     * Shut down but kept by Xen (on_poweroff="preserve", `xl list` state s):
     * its backends hold its disks until it is destroyed, so the revert
     * destroys it first and creates it again from its stored config.
     */
    bool kept_shutdown;
    bool start; /* start the domain at the end */
    bool end_paused;
} revert_plan;

static void revert_plan_dispose(revert_plan *rp)
{
    for (size_t i = 0; i < rp->n; i++) {
        free(rp->disks[i].new_overlay);
        snap_lvm_swap_dispose(&rp->disks[i].swap);
    }
    free(rp->disks);
    snap_meta_dispose(&rp->m);
}

/*
 * "<overlay dir>/<stem>.<name>.r<k>.qcow2", the first k not taken; stem from
 * the bottom of the snapshot point's chain (the disk's original image), so
 * reverts to reverts do not grow the name.
 */
static int new_overlay_path(const snap_meta_disk *md, const char *name, char **out,
                            snap_err *err)
{
    char *stem;
    int rc = snap_chain_root_stem(md->base_path, &stem, err);
    if (rc)
        return rc;
    char *o = snap_xstrdup(md->overlay_path);
    const char *dir = dirname(o);
    struct stat sb;
    for (unsigned k = 1;; k++) {
        char tag[16];
        snprintf(tag, sizeof tag, "r%u", k);
        *out = snap_overlay_path(dir, stem, name, tag);
        if (lstat(*out, &sb) != 0)
            break;
        free(*out);
    }
    free(o);
    free(stem);
    return 0;
}

/* Thin: a new snapshot of the snapshot volume swapped in; classic: a merge. */
static int check_lvm_disk(revert_disk *rd, const char *name, snap_err *err)
{
    const snap_meta_disk *md = rd->md;
    snap_lvm_opts o = {0};
    if (md->lvm_merged)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "snapshot '%s', disk %s: its classic snapshot volume %s was "
                            "merged into %s by an earlier revert to it and no longer "
                            "exists; this snapshot cannot be reverted to again",
                            name, md->vdev, md->lvm_snapshot, md->lvm_volume);
    rd->lvm = md->method == SNAP_METHOD_LVM_THIN;
    rd->merge = !rd->lvm;
    int rc = snap_lvm_swap_init(&rd->swap, md->lvm_volume, md->lvm_snapshot, err);
    if (!rc)
        rc = rd->lvm ? snap_lvm_swap_check(&o, &rd->swap, err)
                     : snap_lvm_merge_check(&o, &rd->swap, err);
    return rc ? snap_err_context(err, "snapshot '%s', disk %s", name, md->vdev) : 0;
}

static int check_disk(snap_session *s, revert_disk *rd, const char *name, snap_err *err)
{
    const snap_meta_disk *md = rd->md;
    rd->disk = snap_domain_find_disk(&s->dom, md->vdev);
    if (!rd->disk)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "snapshot '%s': domain %s has no disk %s any more", name,
                            s->dom.ref.name, md->vdev);
    if (snap_method_is_lvm(md->method))
        return check_lvm_disk(rd, name, err);
    if (access(md->base_path, R_OK) != 0)
        return snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno,
                              "snapshot '%s', disk %s: image %s", name, md->vdev,
                              md->base_path);
    if (md->method == SNAP_METHOD_EXTERNAL) {
        int rc = new_overlay_path(md, name, &rd->new_overlay, err);
        return rc ? snap_err_context(err, "snapshot '%s', disk %s", name, md->vdev) : 0;
    }
    if (strcmp(rd->disk->xs->path, md->base_path) != 0)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "snapshot '%s', disk %s: the internal snapshot is in %s but "
                            "the disk now uses %s (an external snapshot was taken "
                            "since); applying it would corrupt the images above it",
                            name, md->vdev, md->base_path, rd->disk->xs->path);
    if (snap_qsnap_check_image(md, "refusing to revert to it", err))
        return snap_err_context(err, "snapshot '%s'", name);
    return 0;
}

/* The domain is stopped (destroyed on Xen) before its disks are reverted. */
static bool stops_domain(const revert_plan *rp)
{
    return rp->was_live || rp->kept_shutdown;
}

/*
 * A domain Xen keeps shut down has no running state to lose, but the revert
 * destroys it and boots it again, which its admin did not ask for by
 * shutting it down: --force says so, as for a running domain.
 */
static int refuse_kept_shutdown(const snap_session *s, const revert_plan *rp,
                                snap_err *err)
{
    bool merges = false;
    for (size_t i = 0; i < rp->n; i++)
        merges = merges || rp->disks[i].merge;
    return snap_err_set(err, SNAP_ERROR_INVAL,
                        "domain %s is shut down and kept by Xen (on_poweroff="
                        "\"preserve\"; its backends hold its disks until it is "
                        "destroyed): reverting it to snapshot '%s' destroys it, "
                        "reverts its disks%s and boots it afresh from its stored "
                        "config (--paused: created paused, not booted); use --force",
                        s->dom.ref.name, rp->m.name,
                        merges ? " (merging its classic snapshot volumes, which "
                                 "consumes them)"
                               : "");
}

/* Running state after the revert: the flags, else as at snapshot time. */
static int plan_state(snap_session *s, const snap_revert_params *p, revert_plan *rp,
                      snap_err *err)
{
    rp->was_live = s->dom.ref.state != SNAP_DOMAIN_SHUTOFF;
    if (rp->m.has_memory) {
        if (access(rp->m.memory_path, R_OK) != 0)
            return snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno,
                                  "snapshot '%s': memory file %s", rp->m.name,
                                  rp->m.memory_path);
        rp->memory = rp->m.memory_path;
        rp->start = true;
        rp->end_paused = p->state == SNAP_REVERT_STATE_PAUSED ||
                         (p->state == SNAP_REVERT_STATE_AS_SNAPSHOT &&
                          rp->m.domain.state == SNAP_DOMAIN_PAUSED);
        return 0;
    }
    if (rp->was_live && !p->force)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "snapshot '%s' of domain %s has no memory: reverting the "
                            "%s domain to it throws away its running state and boots "
                            "it afresh; use --force",
                            rp->m.name, s->dom.ref.name,
                            snap_domain_state_to_string(s->dom.ref.state));
    rp->start = stops_domain(rp) || p->state != SNAP_REVERT_STATE_AS_SNAPSHOT;
    rp->end_paused = p->state == SNAP_REVERT_STATE_PAUSED;
    return 0;
}

/* kept_shutdown: snap_domain_kept_shutdown, which the revert destroys first. */
static int plan_revert(snap_session *s, const char *name, const snap_revert_params *p,
                       bool kept_shutdown, revert_plan *rp, snap_err *err)
{
    memset(rp, 0, sizeof *rp);
    int rc = snap_meta_load(&s->st, name, &rp->m, err);
    if (rc)
        return rc;
    rp->kept_shutdown = kept_shutdown;
    rp->disks = snap_xcalloc(rp->m.n_disks, sizeof *rp->disks);
    for (size_t i = 0; i < rp->m.n_disks && !rc; i++) {
        rp->disks[rp->n].md = &rp->m.disks[i];
        rc = check_disk(s, &rp->disks[rp->n++], name, err);
    }
    if (!rc && rp->kept_shutdown && !rp->m.has_memory && !p->force)
        rc = refuse_kept_shutdown(s, rp, err);
    /*
     * A shut-off domain the revert does not stop (the simulated dom0's) must
     * not have its volumes held by anything else: neither a merge nor a swap
     * may touch an open volume. One Xen keeps is destroyed first instead.
     */
    snap_lvm_opts o = {0};
    bool must_be_closed = s->dom.ref.state == SNAP_DOMAIN_SHUTOFF && !rp->kept_shutdown;
    for (size_t i = 0; i < rp->n && !rc && must_be_closed; i++)
        if ((rp->disks[i].merge || rp->disks[i].lvm) &&
            (rc = snap_lvm_merge_wait_closed(&o, &rp->disks[i].swap, 0, err)))
            snap_err_context(err, "snapshot '%s', disk %s", name, rp->disks[i].md->vdev);
    for (size_t i = 0; i < rp->n && !rc && !p->force; i++)
        if (rp->disks[i].merge)
            rc = snap_err_set(err, SNAP_ERROR_INVAL,
                              "snapshot '%s', disk %s: reverting merges the classic "
                              "snapshot volume %s into %s, which consumes it (LVM "
                              "removes it: no second revert to this snapshot); use "
                              "--force",
                              name, rp->disks[i].md->vdev, rp->disks[i].md->lvm_snapshot,
                              rp->disks[i].md->lvm_volume);
    return rc ? rc : plan_state(s, p, rp, err);
}

static void journal_intent(snap_journal *j, const snap_session *s, const revert_plan *rp,
                           char *prev_current)
{
    j->prev_current = prev_current;
    /* kept shut down: rolled back, created again paused; finished, booted */
    j->domain_state =
        snap_xstrdup(rp->kept_shutdown ? SNAP_JOURNAL_KEPT_SHUTDOWN
                                       : snap_domain_state_to_string(s->dom.ref.state));
    for (size_t i = 0; i < rp->n; i++) {
        const revert_disk *rd = &rp->disks[i];
        snap_journal_disk *jd = snap_journal_add_disk(j, rd->md->vdev);
        jd->image = snap_xstrdup(rd->md->base_path);
        if (rd->lvm || rd->merge) { /* the volume re-made or merged into */
            jd->lvm_created = snap_xstrdup(rd->md->lvm_volume);
            jd->lvm_origin = snap_xstrdup(rd->md->lvm_snapshot);
            jd->lvm_merge = rd->merge;
        }
        if (rd->new_overlay) {
            jd->overlay_created = snap_xstrdup(rd->new_overlay);
            jd->has_old = true;
            jd->old_params = snap_xstrdup(rd->disk->xs->params);
            jd->old_format = snap_xstrdup(rd->disk->xs->format);
            jd->old_pdev_path = snap_xstrdup(rd->disk->xs->path);
        }
    }
}

/*
 * A new overlay gets the owner, group and mode of the image under it, as
 * external create gives its overlays: the device model started on it may
 * run as another user (dm_restrict=1), and elsewhere it is what `xl create`
 * gave the original image.
 */
static int give_base_access(const char *overlay, const char *base, snap_err *err)
{
    int fd = open(overlay, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "open %s", overlay);
    int rc = snap_qimg_copy_access(fd, overlay, base, err);
    close(fd);
    return rc;
}

/* Internal disks in parallel children, then the new overlays. */
static int revert_storage(const revert_plan *rp, snap_err *err)
{
    const char **paths = snap_xcalloc(rp->n, sizeof *paths);
    snap_err *per_disk = snap_xcalloc(rp->n, sizeof *per_disk);
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < rp->n; i++)
        if (!rp->disks[i].new_overlay && !rp->disks[i].lvm && !rp->disks[i].merge)
            paths[n++] = rp->disks[i].md->base_path;
    if (n)
        rc = snap_qimg_snapshot_many(NULL, SNAP_QIMG_SNAP_APPLY, paths, n, rp->m.name,
                                     per_disk, err);
    snap_lvm_opts o = {0};
    for (size_t i = 0; i < rp->n && !rc; i++)
        if (rp->disks[i].lvm && (rc = snap_lvm_swap_apply(&o, &rp->disks[i].swap, err)))
            snap_err_context(err, "disk %s", rp->disks[i].md->vdev);
    for (size_t i = 0; i < rp->n && !rc; i++) {
        const revert_disk *rd = &rp->disks[i];
        if (!rd->new_overlay)
            continue;
        rc = snap_qimg_create_overlay(NULL, rd->new_overlay, rd->md->base_path,
                                      rd->md->format, err);
        if (!rc)
            rc = give_base_access(rd->new_overlay, rd->md->base_path, err);
        if (rc)
            snap_err_context(err, "disk %s", rd->md->vdev);
    }
    /* Last: a merge cannot be undone, so once one began, every other disk is done. */
    for (size_t i = 0; i < rp->n && !rc; i++)
        if (rp->disks[i].merge &&
            (rc = snap_lvm_merge_apply(&o, &rp->disks[i].swap, err)))
            snap_err_context(err, "disk %s", rp->disks[i].md->vdev);
    free(paths);
    free(per_disk);
    return rc;
}

/*
 * The new overlays in the toolstack's view. Where the platform forgets a
 * stopped domain (Xen), only the config the domain is started from changes.
 */
static int switch_disks(snap_ctx *ctx, snap_session *s, const revert_plan *rp,
                        char **config, snap_err *err)
{
    snap_disk_switch *sw = snap_xcalloc(rp->n, sizeof *sw);
    snap_domcfg_disk_change *dc = snap_xcalloc(rp->n, sizeof *dc);
    size_t n = 0;
    for (size_t i = 0; i < rp->n; i++)
        if (rp->disks[i].new_overlay) {
            sw[n] = (snap_disk_switch){rp->disks[i].md->vdev, "qcow2",
                                       rp->disks[i].new_overlay};
            dc[n] = (snap_domcfg_disk_change){rp->disks[i].md->vdev,
                                              rp->disks[i].new_overlay, "qcow2"};
            n++;
        }
    size_t len;
    int rc = snap_domcfg_edit_disks(s->dom.config, s->dom.config_len, dc, n, config, &len,
                                    err);
    if (!rc && n && ctx->ops->keeps_stopped_domain)
        rc = snap_switch_disks(ctx, &s->dom.ref, sw, n, err);
    free(sw);
    free(dc);
    return rc;
}

/*
 * Test hook, for tests/guest/test_revert*.c and check-xen's lvm scenario
 * only: XLSNAP_TEST_PAUSE_IN_REVERT=<ms>
 * waits after the domain is stopped (and journaled so) before the disks are
 * touched, and says so on stderr, so a test can SIGKILL xlsnap mid-revert.
 */
static void test_hook_pause_in_revert(void)
{
    snap_test_hook_pause("XLSNAP_TEST_PAUSE_IN_REVERT", "domain stopped");
}

/*
 * Test hook, for check-xen's lvm scenario: XLSNAP_TEST_PAUSE_AFTER_MERGE=<ms>
 * waits once a revert merged classic snapshot volumes (before the domain is
 * created again), so that the test can kill xlsnap there.
 */
static void test_hook_pause_after_disks(const snap_journal *j)
{
    for (size_t i = 0; i < j->n_disks; i++)
        if (j->disks[i].lvm_merge) {
            snap_test_hook_pause("XLSNAP_TEST_PAUSE_AFTER_MERGE", "volumes merged");
            return;
        }
}

static int revert_journaled(snap_ctx *ctx, snap_session *s, const revert_plan *rp,
                            snap_journal *j, snap_err *err)
{
    char *config = NULL;
    int rc = 0;
    if (stops_domain(rp) && !ctx->ops->keeps_stopped_domain)
        rc = snap_meta_store_write(&s->st, SNAP_REVERT_DOMAIN_FILE, s->dom.config,
                                   s->dom.config_len, err);
    if (rp->kept_shutdown && !rc)
        snap_log(ctx->lg, XTL_NOTICE,
                 "domain %s is shut down and kept by Xen: destroying it for the "
                 "revert, then %s",
                 s->dom.ref.name,
                 rp->memory       ? "restoring it from the memory checkpoint"
                 : rp->end_paused ? "creating it again paused, not booted"
                                  : "booting it afresh from its stored config");
    if (stops_domain(rp) && !rc) {
        rc = ctx->ops->stop(ctx, &s->dom.ref, err);
        if (!rc)
            rc = snap_journal_set_phase(&s->st, j, SNAP_PHASE_DOMAIN_STOPPED, err);
    }
    if (!rc)
        test_hook_pause_in_revert();
    if (!rc)
        rc = revert_storage(rp, err);
    if (!rc)
        rc = snap_revert_record_merged(&s->st, ctx->lg, j, err);
    if (!rc)
        test_hook_pause_after_disks(j);
    if (!rc)
        rc = snap_journal_set_phase(&s->st, j, SNAP_PHASE_DISKS_DONE, err);
    if (!rc)
        rc = switch_disks(ctx, s, rp, &config, err);
    if (!rc)
        rc = snap_journal_set_phase(&s->st, j, SNAP_PHASE_CONFIG_DONE, err);
    if (!rc && rp->start) {
        snap_log(ctx->lg, XTL_INFO, "domain %s: %s", s->dom.ref.name,
                 rp->memory ? "restoring the memory checkpoint" : "booting afresh");
        rc = ctx->ops->start(ctx, &s->dom.ref, config, rp->memory, rp->end_paused, err);
        if (!rc)
            rc = snap_journal_set_phase(&s->st, j, SNAP_PHASE_DOMAIN_STARTED, err);
    }
    free(config);
    if (!rc)
        rc = snap_revert_record_overlays(&s->st, j, err);
    if (!rc)
        rc = snap_meta_set_current(&s->st, rp->m.name, err);
    if (!rc)
        rc = snap_journal_set_phase(&s->st, j, SNAP_PHASE_METADATA_DONE, err);
    if (!rc) /* the revert is kept: the volumes' old content goes */
        rc = snap_rollback_lvm_reverts(ctx, j, false, err);
    return rc;
}

/*
 * After a failure: undo what can be (new overlays, xenstore, config; the
 * journal says what), then give a domain that ran its device model back,
 * paused and not booted. Appends what happened to err.
 */
static void revert_failed(snap_ctx *ctx, snap_session *s, const revert_plan *rp,
                          const snap_journal *j, snap_err *err)
{
    snap_err rerr;
    if (snap_rollback_revert(ctx, s, j, &rerr)) {
        snap_err_context(err, "undoing the revert also failed (%s)", rerr.msg);
        return;
    }
    if (!stops_domain(rp) || j->phase < SNAP_PHASE_DOMAIN_STOPPED)
        return;
    snap_domain_ref ref = s->dom.ref;
    snap_domain_ref now;
    if (ctx->ops->lookup_uuid(ctx, ref.uuid, &now, &rerr) == 0 &&
        now.state != SNAP_DOMAIN_SHUTOFF) { /* the rollback restarted it */
        if (now.state == SNAP_DOMAIN_RUNNING)
            snap_err_context(err, "domain %s booted afresh on its disks as they were",
                             ref.name);
        else
            snap_err_context(err, "domain %s left paused and not booted", ref.name);
        return;
    }
    if (ctx->ops->start(ctx, &ref, s->dom.config, NULL, true, &rerr))
        snap_err_context(err, "domain %s left shut off (%s)", ref.name, rerr.msg);
    else
        snap_err_context(err,
                         "domain %s left paused and not booted; reverted "
                         "disks keep the snapshot's state",
                         ref.name);
}

static const char *rp_snap_name(const revert_disk *rd)
{
    return rd->md->qemu_snap_name;
}

static void plan_disk_json(yajl_gen g, const revert_disk *rd)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "vdev", rd->md->vdev);
    snap_json_kv_str(g, "method", snap_method_to_string(rd->md->method));
    snap_json_kv_str(g, "image_now", rd->disk->xs->path);
    if (rd->lvm) {
        char *fresh = snap_xasprintf("%s/%s", rd->swap.vg, rd->swap.fresh);
        snap_json_kv_str(g, "volume", rd->md->lvm_volume);
        snap_json_kv_str(g, "new_volume_of", rd->md->lvm_snapshot);
        snap_json_kv_str(g, "made_as", fresh);
        free(fresh);
    } else if (rd->merge) {
        snap_json_kv_str(g, "volume", rd->md->lvm_volume);
        snap_json_kv_str(g, "merge_into_volume", rd->md->lvm_snapshot);
        snap_json_kv_bool(g, "snapshot_volume_consumed", true);
    } else if (rd->new_overlay) {
        snap_json_kv_str(g, "new_overlay", rd->new_overlay);
        snap_json_kv_str(g, "backing_file", rd->md->base_path);
        snap_json_kv_str(g, "kept_overlay", rd->disk->xs->path);
    } else {
        snap_json_kv_str(g, "apply_internal", rp_snap_name(rd));
        snap_json_kv_str(g, "image", rd->md->base_path);
    }
    yajl_gen_map_close(g);
}

/* What a revert would do, for -N: nothing is changed to compute it. */
static char *revert_plan_json(const snap_session *s, const revert_plan *rp,
                              const char *current)
{
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "operation", "revert");
    snap_json_kv_str(g, "domain", s->dom.ref.name);
    snap_json_kv_str(g, "snapshot", rp->m.name);
    snap_json_kv_str(g, "domain_state", snap_domain_state_to_string(s->dom.ref.state));
    snap_json_kv_bool(g, "stop_domain", stops_domain(rp));
    snap_json_kv_bool(g, "kept_shutdown", rp->kept_shutdown);
    snap_json_kv_str(g, "memory", rp->memory);
    snap_json_kv_str(g, "start",
                     !rp->start   ? "no"
                     : rp->memory ? "restore memory"
                                  : "boot afresh");
    snap_json_kv_str(g, "end_state",
                     !rp->start       ? "shutoff"
                     : rp->end_paused ? "paused"
                                      : "running");
    snap_json_kv_str(g, "current_before", current);
    snap_json_key(g, "disks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < rp->n; i++)
        plan_disk_json(g, &rp->disks[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    return snap_json_gen_finish(g, NULL);
}

static int revert_in_session(snap_ctx *ctx, snap_session *s, const char *name,
                             const snap_revert_params *p, char **plan_out, snap_err *err)
{
    revert_plan rp;
    char *current = NULL;
    int rc =
        plan_revert(s, name, p, snap_domain_kept_shutdown(ctx, &s->dom.ref), &rp, err);
    if (!rc)
        rc = snap_meta_get_current(&s->st, &current, err);
    if (!rc && p->dry_run && plan_out)
        *plan_out = revert_plan_json(s, &rp, current);
    if (rc || p->dry_run) {
        free(current);
        revert_plan_dispose(&rp);
        return rc;
    }
    snap_journal j;
    snap_journal_init(&j, SNAP_JOURNAL_REVERT, name);
    journal_intent(&j, s, &rp, current);
    rc = snap_journal_begin(&s->st, &j, err);
    if (!rc) {
        rc = revert_journaled(ctx, s, &rp, &j, err);
        if (rc)
            revert_failed(ctx, s, &rp, &j, err);
        else
            rc = snap_journal_finish(&s->st, err);
        if (!rc)
            snap_revert_forget_domain(&s->st);
    }
    snap_journal_dispose(&j);
    revert_plan_dispose(&rp);
    return rc;
}

int snap_revert_domain(snap_ctx *ctx, const char *domain, const char *name,
                       const snap_revert_params *p, char **plan_out)
{
    snap_session s;
    snap_err *err = &ctx->err;
    snap_err_clear(err);
    if (plan_out)
        *plan_out = NULL;
    int rc = snap_session_open(ctx, domain,
                               p->dry_run ? 0 : SNAP_SESSION_RECOVER_VANISHED, &s, err);
    if (!rc)
        rc = revert_in_session(ctx, &s, name, p, plan_out, err);
    snap_session_close(&s);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}
