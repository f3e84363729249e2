/*
 * The steps of a snapshot-delete, as snap_delete.c runs them and as journal
 * recovery (snap_recover.c) runs them again to finish an interrupted
 * delete; every one tolerates being re-run. Internal: the qcow2 snapshot
 * goes (QMP blockdev-snapshot-delete-internal-sync while a device model
 * serves the image, `qemu-img snapshot -d` when not). External: the
 * snapshot's overlay O is merged into its base B, so what the guest wrote
 * after the snapshot is kept: an active O by an active block-commit (QMP,
 * pivoting QEMU to B) or `qemu-img commit`, then xenstore and the stored
 * config point at B; an O deeper in the chain by an intermediate commit
 * (QEMU rewrites the image above it) or `qemu-img commit` + `rebase -u` of
 * the image above. Merging writes into B, so it is refused while any other
 * image is built on B, or more than one on O: their data would change under
 * them. Then the metadata: children reparented (and re-based in their
 * records), the record removed.
 * Every base, overlay and internal snapshot the records name must be there
 * before anything changes: one removed by hand is refused, never taken for a
 * merge already done, unless the journal of this same (interrupted) delete
 * marks its disk as changing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_delete_steps.h"
#include "snap_fdpass.h"
#include "snap_lvm.h"
#include "snap_json.h"
#include "snap_memory.h"
#include "snap_meta_io.h"
#include "snap_meta_tree.h"
#include "snap_owned.h"
#include "snap_qemuimg.h"
#include "snap_qsnap_identity.h"
#include "snap_switch.h"

/* ------------------------------------------------------------ who uses an image */

static void set_add(snap_image_set *s, const char *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->paths[i], p))
            return;
    s->paths = snap_xrealloc(s->paths, (s->n + 1) * sizeof *s->paths);
    s->paths[s->n++] = snap_xstrdup(p);
}

void snap_image_set_free(snap_image_set *s)
{
    snap_strv_free(s->paths, s->n);
}

/* Every image xlsnap knows of for the domain: records and current disks. */
int snap_delete_known_images(snap_session *s, snap_image_set *out, snap_err *err)
{
    snap_meta_tree t;
    snap_meta_tree_init(&t);
    int rc = snap_meta_tree_load(&s->st, &t, err);
    for (size_t i = 0; i < t.n && !rc; i++) {
        snap_meta m;
        if (snap_meta_load(&s->st, t.nodes[i].e.name, &m, err))
            continue;
        for (size_t k = 0; k < m.n_disks; k++) {
            set_add(out, m.disks[k].base_path);
            set_add(out, m.disks[k].overlay_path);
        }
        for (size_t k = 0; k < m.n_revert_overlays; k++)
            set_add(out, m.revert_overlays[k]);
        snap_meta_dispose(&m);
    }
    snap_err_clear(err);
    for (size_t i = 0; i < s->dom.n_disks; i++)
        set_add(out, s->dom.disks[i].xs->path);
    snap_meta_tree_dispose(&t);
    return rc;
}

/* The known images whose backing file is file (except `except`). */
static void users_of(const snap_image_set *known, const char *file, const char *except,
                     snap_image_set *users)
{
    for (size_t i = 0; i < known->n; i++) {
        if (except && !strcmp(known->paths[i], except))
            continue;
        snap_qimg_info info;
        snap_err ignored;
        if (access(known->paths[i], F_OK) != 0 ||
            snap_qimg_info_get(NULL, known->paths[i], SNAP_QIMG_FORCE_SHARE, &info,
                               &ignored))
            continue;
        if (info.full_backing_file && !strcmp(info.full_backing_file, file))
            set_add(users, known->paths[i]);
        snap_qimg_info_dispose(&info);
    }
}

/* ------------------------------------------------------------ revert overlays */

/*
 * The overlays reverts to m left behind and nothing uses any more: not a
 * disk's active image, not the backing file of a known image, and still
 * what the revert made (a qcow2 on one of m's images).
 */
void snap_delete_stale_overlays(const snap_session *s, const snap_meta *m,
                                const snap_image_set *known, snap_image_set *out)
{
    for (size_t i = 0; i < m->n_revert_overlays; i++) {
        const char *o = m->revert_overlays[i];
        bool used = false;
        for (size_t k = 0; k < s->dom.n_disks && !used; k++)
            used = !strcmp(s->dom.disks[k].xs->path, o);
        snap_image_set users = {0};
        if (!used)
            users_of(known, o, NULL, &users);
        used = used || users.n;
        snap_image_set_free(&users);
        snap_qimg_info info;
        snap_err ignored;
        if (used || access(o, F_OK) != 0 ||
            snap_qimg_info_get(NULL, o, SNAP_QIMG_FORCE_SHARE, &info, &ignored))
            continue;
        for (size_t k = 0; k < m->n_disks; k++)
            if (info.full_backing_file &&
                !strcmp(info.full_backing_file, m->disks[k].base_path))
                set_add(out, o);
        snap_qimg_info_dispose(&info);
    }
}

/*
 * After the snapshot's storage is gone: its stale revert overlays go too,
 * those where and as a revert to m names them (the record may be edited).
 */
static int remove_stale_overlays(snap_ctx *ctx, const snap_meta *m,
                                 const snap_image_set *stale, snap_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < stale->n && !rc; i++) {
        /* The rules of the disk that accepts it, else (refused, the reason
         * logged) those of the first disk. */
        snap_owned o = {0};
        bool accepted = false;
        for (size_t k = m->n_disks; k-- > 0 && !accepted;) {
            snap_owned_dispose(&o);
            snap_owned_revert_overlay(&o, &m->disks[k], m->name);
            char *why = snap_owned_refusal(stale->paths[i], &o);
            accepted = !why;
            free(why);
        }
        if (accepted)
            snap_log(ctx->lg, XTL_NOTICE,
                     "removing %s, left by an earlier revert to '%s'", stale->paths[i],
                     m->name);
        rc = snap_owned_remove(ctx->lg, stale->paths[i], &o, err);
        snap_owned_dispose(&o);
    }
    return rc;
}

static bool set_has(const snap_image_set *s, const char *p)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (!strcmp(s->paths[i], p))
            return true;
    return false;
}

/* Drops from users the stale revert overlays (they go with the snapshot). */
static void drop_stale(snap_image_set *users, const snap_image_set *stale)
{
    size_t k = 0;
    for (size_t i = 0; i < users->n; i++)
        if (set_has(stale, users->paths[i]))
            free(users->paths[i]);
        else
            users->paths[k++] = users->paths[i];
    users->n = k;
}

/* ------------------------------------------------------------ what must be there */

/*
 * This delete already began changing vdev's storage: the journal of an
 * interrupted run marks the disk "merging", so its overlay may be merged and
 * removed, its internal snapshot deleted. Only then is a missing overlay or
 * internal snapshot "done"; anything else took it away behind xlsnap's back.
 */
static bool journal_began(const snap_journal *j, const char *vdev)
{
    for (size_t i = 0; j && i < j->n_disks; i++)
        if (!strcmp(j->disks[i].vdev, vdev))
            return j->disks[i].merging;
    return false;
}

static int refuse_missing(const snap_meta *m, const snap_meta_disk *md, const char *what,
                          const char *path, int errnum, snap_err *err)
{
    return snap_err_set(
        err, SNAP_ERROR_NOTFOUND,
        "disk %s of snapshot '%s': its %s %s %s%s; refusing to delete the snapshot. "
        "Put the file back (a running device model may still have it open), or, if "
        "the storage is really gone, forget the record with snapshot-delete --metadata",
        md->vdev, m->name, what, path,
        errnum == ENOENT ? "is missing" : "cannot be read: ",
        errnum == ENOENT ? " (moved or removed outside xlsnap)" : strerror(errnum));
}

static int refuse_internal_missing(const snap_meta *m, const snap_meta_disk *md,
                                   snap_err *err)
{
    return snap_err_set(
        err, SNAP_ERROR_NOTFOUND,
        "disk %s of snapshot '%s': internal snapshot '%s' is not in the "
        "snapshot table of %s (deleted outside xlsnap); refusing to delete "
        "the snapshot. Forget the record with snapshot-delete --metadata",
        md->vdev, m->name, md->qemu_snap_name, md->base_path);
}

/* The internal snapshot is in base_path's qcow2 table (read with -U). */
static int check_internal_present(const snap_meta *m, const snap_meta_disk *md,
                                  snap_err *err)
{
    snap_qimg_info info;
    int rc = snap_qimg_info_get(NULL, md->base_path, SNAP_QIMG_FORCE_SHARE, &info, err);
    if (rc)
        return snap_err_context(err, "disk %s of snapshot '%s'", md->vdev, m->name);
    if (!snap_qimg_find_snapshot(&info, md->qemu_snap_name))
        rc = refuse_internal_missing(m, md, err);
    snap_qimg_info_dispose(&info);
    return rc;
}

/* The snapshot volume's vg/lv split into a removal request (parts freed by the caller).
 */
static int lvm_request(const snap_meta_disk *md, snap_lvm_snap_req *req, char *parts[4],
                       snap_err *err)
{
    int rc = snap_lvm_split_name(md->lvm_snapshot, &parts[0], &parts[1], err);
    if (!rc)
        rc = snap_lvm_split_name(md->lvm_volume, &parts[2], &parts[3], err);
    *req = (snap_lvm_snap_req){.vg = parts[0], .name = parts[1], .origin = parts[3]};
    return rc;
}

static void free_parts(char *parts[4])
{
    for (int i = 0; i < 4; i++)
        free(parts[i]);
}

/* The snapshot volume is there (lvs: a thin one has no device node while inactive). */
static int check_lvm_present(const snap_meta *m, const snap_meta_disk *md, snap_err *err)
{
    snap_lvm_opts o = {0};
    snap_lv lv;
    int rc = snap_lvm_lookup(&o, md->lvm_snapshot, &lv, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "disk %s of snapshot '%s': its LVM snapshot volume %s is "
                            "missing (removed outside xlsnap); refusing to delete the "
                            "snapshot. Forget the record with snapshot-delete --metadata",
                            md->vdev, m->name, md->lvm_snapshot);
    if (!rc)
        snap_lv_dispose(&lv);
    return rc ? snap_err_context(err, "disk %s of snapshot '%s'", md->vdev, m->name) : 0;
}

/*
 * Everything deleting m needs is where its record says: every base (or
 * internally snapshotted image), every external overlay and internal
 * snapshot, unless j (NULL: none) says this delete already merged or deleted
 * it. Checked for every disk before the first one changes, so a file moved
 * or removed by hand is refused instead of taken for a finished merge.
 */
static int check_storage_present(const snap_meta *m, const snap_journal *j, snap_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < m->n_disks && !rc; i++) {
        const snap_meta_disk *md = &m->disks[i];
        bool internal = md->method == SNAP_METHOD_INTERNAL;
        if (snap_method_is_lvm(md->method)) /* a merged one: nothing left to remove */
            rc = journal_began(j, md->vdev) || md->lvm_merged
                     ? 0
                     : check_lvm_present(m, md, err);
        else if (access(md->base_path, R_OK) != 0)
            rc = refuse_missing(m, md, internal ? "image" : "base", md->base_path, errno,
                                err);
        else if (journal_began(j, md->vdev))
            continue;
        else if (!internal && access(md->overlay_path, R_OK) != 0)
            rc = refuse_missing(m, md, "overlay", md->overlay_path, errno, err);
        else if (internal)
            rc = check_internal_present(m, md, err);
    }
    return rc;
}

/* check_storage_present of every snapshot in list, before any is deleted. */
int snap_delete_check_targets(snap_session *s, char **list, size_t n, snap_err *err)
{
    int rc = 0;
    size_t i;
    for (i = 0; i < n && !rc; i++) {
        snap_meta m;
        rc = snap_meta_load(&s->st, list[i], &m, err);
        if (!rc) {
            rc = check_storage_present(&m, NULL, err);
            snap_meta_dispose(&m);
        }
    }
    return rc ? snap_err_context(err, "deleting snapshot '%s' (nothing was changed)",
                                 list[i - 1])
              : 0;
}

/* ------------------------------------------------------------ one disk */

typedef struct delete_ctx {
    snap_ctx *ctx;
    snap_session *s;
    const snap_meta *m;
    snap_qmp *qmp;
    const snap_qmp_disks *qd;
    const snap_image_set *known;
    snap_journal *j;             /* marks a disk "merging" before its image changes */
    const snap_image_set *stale; /* revert overlays deleted with the snapshot */
} delete_ctx;

/* The journal says the image is about to change: recovery must finish the delete. */
static int mark_merging(const delete_ctx *x, const char *vdev, bool merging,
                        snap_err *err)
{
    snap_journal_disk *jd = snap_journal_find_disk(x->j, vdev);
    if (!jd || jd->merging == merging)
        return 0;
    jd->merging = merging;
    return snap_journal_update(&x->s->st, x->j, err);
}

/* ------------------------------------------------------------ LVM */

/*
 * lvremove of the snapshot volume, journaled first ("merging": recovery
 * then takes a volume already gone for this delete's doing). Never a
 * volume a domain has open, without xlsnap's tag, or of another origin
 * (snap_lvm_remove_snapshots checks).
 */
static int delete_lvm(const delete_ctx *x, const snap_meta_disk *md, snap_err *err)
{
    if (md->lvm_merged) /* a revert merged it into its volume: gone already */
        return 0;
    snap_lvm_snap_req req;
    char *parts[4] = {0};
    int rc = lvm_request(md, &req, parts, err);
    if (!rc)
        rc = mark_merging(x, md->vdev, true, err);
    snap_lvm_opts o = {.lg = x->ctx->lg};
    if (!rc)
        rc = snap_lvm_remove_snapshots(&o, &req, 1, err);
    free_parts(parts);
    return rc ? snap_err_context(err, "disk %s", md->vdev) : 0;
}

/* ------------------------------------------------------------ internal */

/* QMP while a device model serves the image, else qemu-img. */
static int delete_internal_snapshot(const delete_ctx *x, const snap_qmp_disk *q,
                                    const snap_meta_disk *md, snap_err *err)
{
    bool began = journal_began(x->j, md->vdev);
    if (q && !snap_qmp_disk_find_snapshot(q, md->qemu_snap_name))
        return began ? 0 /* deleted by the interrupted run */
                     : refuse_internal_missing(x->m, md, err);
    int rc = mark_merging(x, md->vdev, true, err);
    if (rc)
        return rc;
    rc = q ? snap_qmp_delete_internal(x->qmp, snap_qmp_disk_target(q), md->qemu_snap_name,
                                      SNAP_QMP_TIMEOUT_MS, err)
           : snap_qimg_snapshot_delete(NULL, md->base_path, md->qemu_snap_name, err);
    if (rc == SNAP_ERROR_NOTFOUND && began)
        return snap_err_clear(err), 0;
    bool refused = rc == SNAP_ERROR_PEER || rc == SNAP_ERROR_BUSY ||
                   rc == SNAP_ERROR_NOTFOUND || rc == SNAP_ERROR_INVAL;
    if (refused && !began) { /* the table is as it was: nothing for recovery to finish */
        snap_err ignored;
        mark_merging(x, md->vdev, false, &ignored);
    }
    return rc;
}

static int delete_internal(const delete_ctx *x, const snap_meta_disk *md, snap_err *err)
{
    size_t depth = 0;
    const snap_qmp_disk *q =
        x->qmp ? snap_qmp_disks_find_file(x->qd, md->base_path, &depth) : NULL;
    if (q && depth != 0)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "disk %s: %s is a read-only backing file of the running "
                            "domain now; delete the newer external snapshots first",
                            md->vdev, md->base_path);
    int rc = delete_internal_snapshot(x, q, md, err);
    return rc ? snap_err_context(err, "disk %s", md->vdev) : 0;
}

/*
 * Each internal snapshot of m is still the entry xlsnap took (see
 * snap_qsnap_check), checked for every disk before any is deleted.
 */
static int check_internal_identities(const snap_qmp_disks *qd, const snap_meta *m,
                                     snap_err *err)
{
    static const char refusal[] = "refusing to delete it (snapshot-delete --metadata "
                                  "forgets the record and leaves the image alone)";
    int rc = 0;
    for (size_t i = 0; i < m->n_disks && !rc; i++) {
        const snap_meta_disk *md = &m->disks[i];
        if (md->method != SNAP_METHOD_INTERNAL)
            continue;
        size_t depth = 0;
        const snap_qmp_disk *q = snap_qmp_disks_find_file(qd, md->base_path, &depth);
        const snap_qmp_snapshot *e =
            q && depth == 0 ? snap_qmp_disk_find_snapshot(q, md->qemu_snap_name) : NULL;
        snap_meta_qsnap_stamp now = e ? snap_qsnap_stamp_of_qmp(e) : md->qemu_snap_stamp;
        if (!q) /* not served by a device model: its table on disk */
            rc = snap_qsnap_check_image(md, refusal, err);
        else if (e) /* (a backing file, or gone already: delete_internal's call) */
            rc = snap_qsnap_check(md, e->id, &now, refusal, err);
    }
    return rc;
}

/* ------------------------------------------------------------ external */

static void job_args_device(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "device", opaque);
}

/*
 * A commit job an earlier, interrupted delete left in QEMU (its QMP
 * connection dropped, xlsnap killed): an active commit is completed (the
 * pivot it was heading for), an intermediate one waited for; *merged says
 * the overlay's data is in the base now. No such job: *merged false.
 */
static int finish_leftover_job(snap_qmp *qmp, const char *job_id, bool *merged,
                               snap_err *err)
{
    snap_qmp_job job = {0};
    *merged = false;
    int rc = snap_qmp_query_job(qmp, job_id, &job, SNAP_QMP_TIMEOUT_MS, err);
    if (rc == SNAP_ERROR_NOTFOUND) {
        snap_err_clear(err);
        return 0;
    }
    snap_qmp_job_clear(&job);
    if (!rc)
        rc = snap_qmp_wait_job(qmp, job_id, "ready", &job, SNAP_COMMIT_TIMEOUT_MS, err);
    bool ready = !rc && !strcmp(job.status, "ready");
    snap_qmp_job_clear(&job);
    if (ready)
        rc = snap_qmp_execute(qmp, "block-job-complete", job_args_device, job_id, NULL,
                              SNAP_QMP_TIMEOUT_MS, err);
    if (!rc)
        rc = snap_qmp_wait_job(qmp, job_id, "concluded", &job, SNAP_COMMIT_TIMEOUT_MS,
                               err);
    *merged = !rc && !job.error;
    snap_qmp_job_clear(&job);
    if (!rc)
        rc = snap_qmp_job_dismiss(qmp, job_id, SNAP_QMP_TIMEOUT_MS, err);
    return rc ? snap_err_context(err, "finishing the interrupted commit job %s", job_id)
              : 0;
}

static void job_args(yajl_gen g, const void *opaque)
{
    const char *const *a = opaque; /* job-id, device, top-node, base-node, base path */
    snap_json_kv_str(g, "job-id", a[0]);
    snap_json_kv_str(g, "device", a[1]);
    snap_json_kv_str(g, "top-node", a[2]);
    snap_json_kv_str(g, "base-node", a[3]);
    /* What the image above the top gets as its backing file name: by default
     * QEMU writes the base node's file name, "/dev/fdset/N" for a base
     * passed as a descriptor. */
    snap_json_kv_str(g, "backing-file", a[4]);
    snap_json_kv_bool(g, "auto-dismiss", false);
}

/* block-commit of an intermediate node: a job that ends by itself. */
static int commit_intermediate(snap_qmp *qmp, const snap_qmp_disk *q, size_t depth,
                               const char *vdev, snap_err *err)
{
    char job_id[160];
    snprintf(job_id, sizeof job_id, "xlsnap-delete-%s", vdev);
    const char *a[5] = {job_id, snap_qmp_disk_target(q), q->chain[depth].node_name,
                        q->chain[depth + 1].node_name, q->chain[depth + 1].file};
    if (!a[2] || !a[3])
        return snap_err_set(err, SNAP_ERROR_PROTOCOL, "QEMU did not name the nodes");
    int rc = snap_qmp_execute(qmp, "block-commit", job_args, a, NULL, SNAP_QMP_TIMEOUT_MS,
                              err);
    snap_qmp_job job = {0};
    if (!rc)
        rc = snap_qmp_wait_job(qmp, job_id, "concluded", &job, SNAP_COMMIT_TIMEOUT_MS,
                               err);
    if (!rc && job.error)
        rc = snap_err_set(err, SNAP_ERROR_PEER, "commit job %s failed: %s", job_id,
                          job.error);
    snap_err ignored;
    snap_qmp_job_dismiss(qmp, job_id, SNAP_QMP_TIMEOUT_MS, &ignored);
    snap_qmp_job_clear(&job);
    return rc;
}

/*
 * After an active commit the old top's node stays when it was added by name
 * (Xen's "<vdev>-qcow2"; xen-block deletes it at unplug) and still holds the
 * base as its backing child, which makes QEMU refuse the next external
 * snapshot of the base ("node is used as backing hd"): the link is dropped.
 */
static void release_old_top(const delete_ctx *x, const snap_qmp_image *old_top)
{
    snap_err e;
    char *backing = NULL;
    if (!old_top->node_name || old_top->node_name[0] == '#' ||
        snap_qmp_node_child(x->qmp, old_top->node_name, "backing", &backing,
                            SNAP_QMP_TIMEOUT_MS, &e) != 0)
        return; /* gone with the commit (QEMU's own or an unnamed node), or no link */
    free(backing);
    if (snap_qmp_reopen_backing(x->qmp, old_top->node_name, old_top->format, NULL,
                                SNAP_QMP_TIMEOUT_MS, &e) != 0)
        snap_log(x->ctx->lg, XTL_WARN, "%s", e.msg);
}

/* Merges O (= md->overlay_path) into B with QEMU; *was_active when O was on top. */
static int merge_live(const delete_ctx *x, const snap_qmp_disk *q, size_t depth,
                      const snap_meta_disk *md, snap_err *err)
{
    if (depth + 1 >= q->chain_len || strcmp(q->chain[depth + 1].file, md->base_path))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "disk %s: %s is not backed by %s any more", md->vdev,
                            md->overlay_path, md->base_path);
    if (depth > 0)
        return commit_intermediate(x->qmp, q, depth, md->vdev, err);
    char job_id[160];
    snprintf(job_id, sizeof job_id, "xlsnap-delete-%s", md->vdev);
    int rc =
        snap_qmp_commit_active(x->qmp, snap_qmp_disk_target(q), q->chain[1].node_name,
                               job_id, SNAP_COMMIT_TIMEOUT_MS, err);
    if (!rc)
        release_old_top(x, &q->chain[0]);
    return rc;
}

/* Offline: qemu-img commit O, then the image above O re-based onto B. */
static int merge_offline(const snap_meta_disk *md, const char *above, snap_err *err)
{
    int rc = snap_qimg_commit(NULL, md->overlay_path, err);
    if (!rc && above)
        rc = snap_qimg_rebase(NULL, above, md->base_path, md->format, true, err);
    return rc;
}

static int check_users(const delete_ctx *x, const snap_meta_disk *md,
                       snap_image_set *users_o, snap_err *err)
{
    snap_image_set users_b = {0};
    users_of(x->known, md->base_path, md->overlay_path, &users_b);
    users_of(x->known, md->overlay_path, NULL, users_o);
    drop_stale(&users_b, x->stale);
    drop_stale(users_o, x->stale);
    int rc = 0;
    if (users_b.n)
        rc = snap_err_set(err, SNAP_ERROR_BUSY,
                          "disk %s: %s is also the backing file of %s; merging %s into "
                          "it would change that image's data",
                          md->vdev, md->base_path, users_b.paths[0], md->overlay_path);
    else if (users_o->n > 1)
        rc = snap_err_set(err, SNAP_ERROR_BUSY,
                          "disk %s: %s is the backing file of both %s and %s; refusing "
                          "to remove it",
                          md->vdev, md->overlay_path, users_o->paths[0],
                          users_o->paths[1]);
    snap_image_set_free(&users_b);
    return rc;
}

static int merge(const delete_ctx *x, const snap_meta_disk *md,
                 const snap_image_set *users_o, snap_err *err)
{
    char job_id[160];
    snprintf(job_id, sizeof job_id, "xlsnap-delete-%s", md->vdev);
    bool merged = false;
    int rc = x->qmp ? finish_leftover_job(x->qmp, job_id, &merged, err) : 0;
    if (rc || merged)
        return rc;
    size_t depth = 0;
    const snap_qmp_disk *q =
        x->qmp ? snap_qmp_disks_find_file(x->qd, md->overlay_path, &depth) : NULL;
    bool replaced = false;
    snap_qmp_disks now = {0};
    rc = q ? snap_fdpass_open_merge_base(x->ctx, x->qmp, q, depth, md->vdev, &replaced,
                                         err)
           : 0;
    if (!rc && replaced) { /* the chain's nodes are new: QEMU's view again */
        rc = snap_qmp_query_disks(x->qmp, &now, SNAP_QMP_TIMEOUT_MS, err);
        q = rc ? NULL : snap_qmp_disks_find_file(&now, md->overlay_path, &depth);
        if (!rc && !q)
            rc = snap_err_set(err, SNAP_ERROR_PROTOCOL,
                              "%s left QEMU's chain when its base was reopened",
                              md->overlay_path);
    }
    if (!rc)
        rc = mark_merging(x, md->vdev, true, err);
    if (!rc)
        rc = q ? merge_live(x, q, depth, md, err)
               : merge_offline(md, users_o->n ? users_o->paths[0] : NULL, err);
    snap_qmp_disks_free(&now);
    return rc;
}

static int delete_external(const delete_ctx *x, const snap_meta_disk *md, snap_err *err)
{
    if (access(md->overlay_path, F_OK) != 0)
        return journal_began(x->j, md->vdev)
                   ? 0 /* merged and removed by the interrupted run */
                   : refuse_missing(x->m, md, "overlay", md->overlay_path, errno, err);
    snap_image_set users_o = {0};
    int rc = check_users(x, md, &users_o, err);
    snap_vdisk *vd = snap_domain_find_disk(&x->s->dom, md->vdev);
    bool active = vd && !strcmp(vd->xs->path, md->overlay_path);
    if (!rc)
        rc = merge(x, md, &users_o, err);
    if (!rc && active) {
        snap_disk_switch sw = {md->vdev, md->format, md->base_path};
        rc = snap_switch_disks(x->ctx, &x->s->dom.ref, &sw, 1, err);
    }
    if (!rc && unlink(md->overlay_path) != 0 && errno != ENOENT)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "removing %s", md->overlay_path);
    snap_image_set_free(&users_o);
    return rc ? snap_err_context(err, "disk %s: merging %s into %s", md->vdev,
                                 md->overlay_path, md->base_path)
              : 0;
}

/* Children's records named O as their base: it is B now. */
static int rebase_children_records(snap_session *s, const snap_meta *m, snap_err *err)
{
    snap_meta_tree t;
    snap_meta_tree_init(&t);
    int rc = snap_meta_tree_load(&s->st, &t, err);
    for (size_t i = 0; i < t.n && !rc; i++) {
        snap_meta c;
        if (snap_meta_load(&s->st, t.nodes[i].e.name, &c, err))
            continue;
        bool changed = false;
        for (size_t k = 0; k < c.n_disks; k++)
            for (size_t d = 0; d < m->n_disks; d++)
                if (m->disks[d].overlay_path &&
                    !strcmp(c.disks[k].vdev, m->disks[d].vdev) &&
                    !strcmp(c.disks[k].base_path, m->disks[d].overlay_path)) {
                    free(c.disks[k].base_path);
                    c.disks[k].base_path = snap_xstrdup(m->disks[d].base_path);
                    changed = true;
                }
        if (changed)
            rc = snap_meta_save(&s->st, &c, false, err);
        snap_meta_dispose(&c);
    }
    snap_meta_tree_dispose(&t);
    return rc;
}

/* ------------------------------------------------------------ one snapshot */

int snap_delete_storage(snap_ctx *ctx, snap_session *s, const snap_meta *m,
                        snap_journal *j, snap_err *err)
{
    snap_qmp *qmp = NULL;
    snap_qmp_disks qd = {0};
    snap_image_set known = {0};
    int rc = snap_domain_qmp_disks(ctx, &s->dom, &qmp, &qd, err);
    if (!rc)
        rc = check_storage_present(m, j, err);
    if (!rc)
        rc = snap_delete_known_images(s, &known, err);
    snap_image_set stale = {0};
    if (!rc)
        snap_delete_stale_overlays(s, m, &known, &stale);
    delete_ctx x = {ctx, s, m, qmp, &qd, &known, j, &stale};
    if (!rc)
        rc = check_internal_identities(&qd, m, err);
    for (size_t i = 0; i < m->n_disks && !rc; i++)
        rc = snap_method_is_lvm(m->disks[i].method) ? delete_lvm(&x, &m->disks[i], err)
             : m->disks[i].method == SNAP_METHOD_INTERNAL
                 ? delete_internal(&x, &m->disks[i], err)
                 : delete_external(&x, &m->disks[i], err);
    if (!rc)
        rc = remove_stale_overlays(ctx, m, &stale, err);
    snap_image_set_free(&stale);
    snap_image_set_free(&known);
    snap_qmp_disks_free(&qd);
    snap_domain_qmp_close(ctx, qmp);
    return rc;
}

/* "'a', 'b'": the children of name (malloc'd), NULL when none. */
static char *children_of(snap_session *s, const char *name)
{
    snap_meta_tree t;
    snap_err ignored;
    char *list = NULL;
    snap_meta_tree_init(&t);
    if (snap_meta_tree_load(&s->st, &t, &ignored) == 0)
        for (size_t i = 0; i < t.n; i++) {
            const snap_meta_entry *e = &t.nodes[i].e;
            if (!e->parent || strcmp(e->parent, name))
                continue;
            char *more =
                snap_xasprintf("%s%s'%s'", list ? list : "", list ? ", " : "", e->name);
            free(list);
            list = more;
        }
    snap_meta_tree_dispose(&t);
    return list;
}

/* Says that name's children become roots, and why. */
void snap_delete_say_orphaned(snap_ctx *ctx, snap_session *s, const char *name,
                              const char *why)
{
    char *children = children_of(s, name);
    if (children)
        snap_log(ctx->lg, XTL_NOTICE, "%s: %s %s no parent now", why, children,
                 strchr(children, ',') ? "have" : "has");
    free(children);
}

/* Children to the parent, the record and memory file gone (current moves up). */
int snap_delete_metadata(snap_ctx *ctx, snap_session *s, const snap_meta *m,
                         snap_err *err)
{
    /* A parent whose record is gone: its children must not inherit the name. */
    const char *parent = snap_meta_surviving_parent(&s->st, m);
    if (m->parent && !parent) {
        char *why = snap_xasprintf("snapshot '%s' names a missing parent '%s'", m->name,
                                   m->parent);
        snap_delete_say_orphaned(ctx, s, m->name, why);
        free(why);
    }
    int rc = snap_meta_reparent_children(&s->st, m->name, parent, err);
    if (!rc)
        rc = rebase_children_records(s, m, err);
    if (!rc && m->has_memory)
        rc = snap_memory_remove(ctx, &s->st, m->name, m->memory_path, err);
    if (!rc)
        rc = snap_meta_remove(&s->st, m->name, err);
    return rc;
}
