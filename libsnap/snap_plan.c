/*
 * Planning a snapshot: which disks, which method, which files, which
 * quiesce policy — and every check that can be made before anything is
 * touched (name unique and safe, overlays absent, formats supported, chains
 * not too deep, disks reachable the safe way).
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snap_fsfreeze.h"
#include "snap_json.h"
#include "snap_meta_io.h"
#include "snap_overlay_name.h"
#include "snap_plan.h"
#include "snap_qcow2.h"
#include "snap_qemuimg.h"
#include "snap_trace.h"

void snap_plan_dispose(snap_plan *plan)
{
    for (size_t i = 0; i < plan->n_disks; i++) {
        free(plan->disks[i].overlay_path);
        free(plan->disks[i].overlay_node);
        free(plan->disks[i].qemu_snap_id);
        free(plan->disks[i].lvm_name);
    }
    free(plan->disks);
    snap_strv_free(plan->excluded, plan->n_excluded);
    snap_strv_free(plan->notes, plan->n_notes);
    snap_strv_free(plan->freeze_mounts, plan->n_freeze_mounts);
    snap_strv_free(plan->no_freeze, plan->n_no_freeze);
    free(plan->name);
    free(plan->description);
    memset(plan, 0, sizeof *plan);
}

static bool requested(const snap_create_params *p, const char *vdev)
{
    for (size_t i = 0; i < p->n_disks; i++)
        if (!strcmp(p->disks[i], vdev))
            return true;
    return false;
}

/* --disks names only existing disks, each once. */
static int check_requested_disks(snap_domain *dom, const snap_create_params *p,
                                 snap_err *err)
{
    for (size_t i = 0; i < p->n_disks; i++) {
        if (!snap_domain_find_disk(dom, p->disks[i])) {
            char have[512] = "";
            for (size_t k = 0; k < dom->n_disks; k++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s",
                         k ? ", " : "", dom->disks[k].xs->vdev);
            return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                                "domain %s has no disk '%s' (it has: %s)", dom->ref.name,
                                p->disks[i], *have ? have : "none");
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(p->disks[k], p->disks[i]))
                return snap_err_set(err, SNAP_ERROR_INVAL, "disk '%s' is listed twice",
                                    p->disks[i]);
    }
    return 0;
}

/* Why a disk cannot be snapshotted at all (CD-ROM, read-only, empty), or NULL. */
static const char *unsnapshottable(const snap_vdisk *d)
{
    if (d->xs->is_cdrom)
        return "a CD-ROM";
    if (!d->xs->readwrite)
        return "read-only";
    if (!d->xs->path || !*d->xs->path ||
        (d->xs->format && !strcmp(d->xs->format, "empty")))
        return "empty";
    return NULL;
}

static int plan_quiesce(snap_domain *dom, const snap_create_params *p, snap_plan *plan,
                        snap_err *err)
{
    snap_quiesce_policy q = p->quiesce;
    if (q == SNAP_QUIESCE_AUTO)
        q = dom->agent_path ? SNAP_QUIESCE_BEST_EFFORT : SNAP_QUIESCE_OFF;
    if (q == SNAP_QUIESCE_REQUIRED && !dom->agent_path)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "domain %s has no guest-agent channel (%s): it cannot be "
                            "quiesced; use --quiesce=best-effort or off",
                            dom->ref.name, SNAP_AGENT_CHANNEL);
    if (q != SNAP_QUIESCE_OFF && dom->ref.state == SNAP_DOMAIN_PAUSED) {
        if (q == SNAP_QUIESCE_REQUIRED)
            return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                                "domain %s is paused: its guest agent cannot freeze "
                                "filesystems; unpause it or use --quiesce=best-effort",
                                dom->ref.name);
        plan->notes = snap_strv_add(plan->notes, &plan->n_notes,
                                    snap_xstrdup("domain is paused: crash-consistent"));
    }
    if (dom->ref.state == SNAP_DOMAIN_SHUTOFF && q != SNAP_QUIESCE_OFF)
        plan->notes =
            snap_strv_add(plan->notes, &plan->n_notes,
                          snap_xstrdup("domain is shut off: nothing to freeze"));
    plan->quiesce = q;
    return 0;
}

/*
 * A memory checkpoint pauses the domain around the disk snapshots, so disks
 * and memory agree without a freeze; a freeze would even be saved with the
 * memory and restored as a frozen guest.
 */
static int plan_memory(snap_domain *dom, snap_plan *plan, snap_err *err)
{
    if (dom->ref.state == SNAP_DOMAIN_SHUTOFF)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "domain %s is shut off: it has no memory to save; "
                            "leave out --memory",
                            dom->ref.name);
    plan->memory = true;
    if (plan->quiesce != SNAP_QUIESCE_OFF)
        plan->notes =
            snap_strv_add(plan->notes, &plan->n_notes,
                          snap_xstrdup("memory checkpoint: the domain is paused "
                                       "around the snapshot, no freeze needed"));
    plan->quiesce = SNAP_QUIESCE_OFF;
    return 0;
}

/*
 * The overlay for disk d in dir (see snap_overlay_path): named after the
 * disk's original image, else (chain unknown) after its present one.
 */
static char *overlay_path_for(const char *dir, const snap_vdisk *d, const char *name,
                              bool with_vdev)
{
    char *stem = snap_image_stem(d->root_image ? d->root_image : d->xs->path);
    char *p = snap_overlay_path(dir, stem, name, with_vdev ? d->xs->vdev : NULL);
    free(stem);
    return p;
}

/*
 * QEMU (root) creates the overlay after our lstat() said the name is free: in
 * a directory someone else can write to, a symlink planted in between would
 * make it truncate any file. Only directories writable by us alone qualify.
 */
static int overlay_dir_private(const char *dir, const struct stat *sb, snap_err *err)
{
    if (sb->st_uid != geteuid())
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "overlay directory %s belongs to uid %u, not to us: refusing "
                            "to create overlays where others could plant symlinks",
                            dir, (unsigned)sb->st_uid);
    if (sb->st_mode & (S_IWGRP | S_IWOTH))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "overlay directory %s is writable by group or others (mode "
                            "%04o): refusing to create overlays where others could plant "
                            "symlinks",
                            dir, (unsigned)(sb->st_mode & 07777));
    return 0;
}

/* The directory overlays go to: absolute, existing, writable. */
static int overlay_dir_for(const snap_create_params *p, const char *base, char **out,
                           snap_err *err)
{
    char *dir = NULL;
    if (p->overlay_dir) {
        dir = realpath(p->overlay_dir, NULL);
        if (!dir)
            return snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno, "overlay directory %s",
                                  p->overlay_dir);
    } else {
        char *b = snap_xstrdup(base);
        dir = snap_xstrdup(dirname(b));
        free(b);
    }
    struct stat sb;
    int rc = 0;
    if (stat(dir, &sb) != 0)
        rc = snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno, "overlay directory %s", dir);
    else if (!S_ISDIR(sb.st_mode))
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "overlay directory %s is not a directory", dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "overlay directory %s", dir);
    else
        rc = overlay_dir_private(dir, &sb, err);
    if (rc) {
        free(dir);
        return rc;
    }
    *out = dir;
    return 0;
}

/* A node-name "<vdev>-ovl<k>" no node of the chain has. */
static char *new_node_name(const snap_vdisk *d)
{
    for (size_t k = d->chain_len;; k++) {
        char *n = snap_xasprintf("%s-ovl%zu", d->xs->vdev, k);
        bool taken = false;
        for (size_t i = 0; i < d->n_node_names && !taken; i++)
            taken = !strcmp(d->node_names[i], n);
        if (!taken)
            return n;
        free(n);
    }
}

/* Keeps what an offline image holds: chain length and internal snapshots. */
static void keep_offline_chain(snap_vdisk *d, const snap_qimg_chain *chain)
{
    d->chain_len = chain->n;
    /* A "json:{...}" file name says nothing about the image's name. */
    if (chain->n && strncmp(chain->images[chain->n - 1].filename, "json:", 5))
        d->root_image = snap_xstrdup(chain->images[chain->n - 1].filename);
    for (size_t i = 0; chain->n && i < chain->images[0].n_snapshots; i++) {
        d->snapshots = snap_strv_add(d->snapshots, &d->n_snapshots,
                                     snap_xstrdup(chain->images[0].snapshots[i].name));
    }
}

/*
 * Reads every planned offline image's chain from its qcow2 headers, or
 * where that cannot be done (snap_qcow2.h) in parallel qemu-img children;
 * without -U: an image a running QEMU holds is refused here, in qemu-img's
 * words. The first disk that could not be read is the error, as when they
 * were read one by one.
 */
static int probe_offline_images(snap_plan *plan, snap_err *err)
{
    size_t n = plan->n_disks;
    const char **paths = snap_xcalloc(n, sizeof *paths);
    snap_qimg_chain *chains = snap_xcalloc(n, sizeof *chains);
    snap_err *per = snap_xcalloc(n, sizeof *per);
    size_t m = 0; /* LVM volumes are no images: lvs told what they are */
    for (size_t i = 0; i < n; i++)
        if (!plan->disks[i].disk->lv)
            paths[m++] = plan->disks[i].disk->xs->path;
    int rc = m ? snap_qcow2_chain_get_many(NULL, paths, m, 0, chains, per, err) : 0;
    for (size_t i = 0, k = 0; i < n && !rc; i++)
        if (!plan->disks[i].disk->lv)
            keep_offline_chain(plan->disks[i].disk, &chains[k++]);
    for (size_t i = 0, k = 0; i < n && rc; i++)
        if (!plan->disks[i].disk->lv && per[k++].code) {
            *err = per[k - 1];
            snap_err_context(err, "disk %s", plan->disks[i].disk->xs->vdev);
            break;
        }
    for (size_t k = 0; k < m; k++)
        snap_qimg_chain_dispose(&chains[k]);
    free(paths);
    free(chains);
    free(per);
    return rc;
}

/*
 * A domain Xen keeps shut down whose device model still runs: QEMU holds
 * (and locks) its qdisk images until the domain is destroyed, so qemu-img
 * must not touch them; its LVM volumes are snapshotted as usual (blkback
 * holds them, but the shut-down guest writes nothing).
 */
static int refuse_held_images(const snap_domain *dom, const snap_plan *plan,
                              snap_err *err)
{
    if (!dom->kept_dm_socket)
        return 0;
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_vdisk *d = plan->disks[i].disk;
        if (d->xs->backend_type && !strcmp(d->xs->backend_type, "qdisk"))
            return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                                "disk %s: domain %s is shut down but kept by Xen and "
                                "its device model still runs (%s), holding %s open: "
                                "it cannot be snapshotted offline; leave the disk out "
                                "with --disks (snapshot-revert --force destroys the "
                                "domain first, and reverts it)",
                                d->xs->vdev, dom->ref.name, dom->kept_dm_socket,
                                d->xs->path);
    }
    return 0;
}

static int plan_external(const snap_create_params *p, snap_plan *plan, snap_plan_disk *pd,
                         snap_err *err)
{
    snap_vdisk *d = pd->disk;
    if (d->chain_len >= SNAP_MAX_CHAIN)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "disk %s: backing chain already %zu images deep (limit %d); "
                            "delete older external snapshots first",
                            d->xs->vdev, d->chain_len, SNAP_MAX_CHAIN);
    char *dir = NULL;
    int rc = overlay_dir_for(p, d->xs->path, &dir, err);
    if (rc)
        return snap_err_context(err, "disk %s", d->xs->vdev);
    pd->overlay_path = overlay_path_for(dir, d, plan->name, false);
    for (size_t i = 0; i < plan->n_disks; i++)
        if (plan->disks[i].overlay_path && &plan->disks[i] != pd &&
            !strcmp(plan->disks[i].overlay_path, pd->overlay_path)) {
            free(pd->overlay_path);
            pd->overlay_path = overlay_path_for(dir, d, plan->name, true);
            break;
        }
    free(dir);
    struct stat sb;
    if (lstat(pd->overlay_path, &sb) == 0)
        return snap_err_set(
            err, SNAP_ERROR_EXISTS,
            "disk %s: overlay %s already exists; refusing to overwrite it", d->xs->vdev,
            pd->overlay_path);
    if (errno != ENOENT) /* too long a path, a directory we cannot search */
        return snap_err_errno(err, SNAP_ERROR_INVAL, errno, "disk %s: overlay %s",
                              d->xs->vdev, pd->overlay_path);
    if (pd->via_qmp)
        pd->overlay_node = new_node_name(d);
    return 0;
}

/* A classic snapshot's copy-on-write space (snap_create_params.lvm_cow_*). */
static int lvm_cow_bytes(const snap_create_params *p, const snap_lv *lv, uint64_t *out,
                         snap_err *err)
{
    if (p->lvm_cow_percent < 0 || p->lvm_cow_percent > 100)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "LVM copy-on-write share %d%% is not within 1-100",
                            p->lvm_cow_percent);
    int percent = p->lvm_cow_percent ? p->lvm_cow_percent : SNAP_LVM_DEFAULT_COW_PERCENT;
    *out = p->lvm_cow_bytes ? p->lvm_cow_bytes : lv->size / 100 * (uint64_t)percent;
    /* lvcreate takes whole sectors (then rounds up to extents itself); 0 it refuses */
    *out = *out < 512 ? 512 : (*out + 511) / 512 * 512;
    return 0;
}

/*
 * A phy: disk on a logical volume: a thin snapshot of a thin volume, a
 * classic one (with its copy-on-write space) of any other, named after the
 * snapshot and checked free. Whatever method the image disks get.
 */
static int plan_lvm(const snap_create_params *p, snap_plan *plan, snap_plan_disk *pd,
                    snap_err *err)
{
    snap_vdisk *d = pd->disk;
    const char *vdev = d->xs->vdev;
    if (d->lv_refused)
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s", d->lv_error);
    if (!d->lv)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "disk %s: %s is an LVM logical volume, but LVM could not "
                            "say which kind: %s",
                            vdev, d->xs->path, d->lv_error);
    const snap_lv *lv = d->lv;
    if (lv->classic_snapshot)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "disk %s: %s/%s is itself a classic LVM snapshot; LVM "
                            "cannot snapshot it",
                            vdev, lv->vg, lv->name);
    pd->method = lv->thin ? SNAP_METHOD_LVM_THIN : SNAP_METHOD_LVM;
    pd->lvm_name = snap_lvm_snapshot_name(lv->name, plan->name);
    char *full = snap_xasprintf("%s/%s", lv->vg, pd->lvm_name);
    snap_lvm_opts o = {0};
    snap_lv there;
    int rc = snap_lvm_lookup(&o, full, &there, err);
    if (rc == 0) {
        snap_lv_dispose(&there);
        rc = snap_err_set(err, SNAP_ERROR_EXISTS,
                          "disk %s: volume %s already exists; refusing to reuse it", vdev,
                          full);
    } else if (rc == SNAP_ERROR_NOTFOUND) {
        snap_err_clear(err);
        rc = 0;
    } else {
        snap_err_context(err, "disk %s", vdev);
    }
    free(full);
    if (!rc && !lv->thin)
        rc = lvm_cow_bytes(p, lv, &pd->lvm_cow_bytes, err);
    if (!rc && !lv->thin)
        plan->notes = snap_strv_add(
            plan->notes, &plan->n_notes,
            snap_xasprintf("disk %s: classic LVM snapshot of %s/%s with %llu MiB of "
                           "copy-on-write space: LVM invalidates it once the guest has "
                           "rewritten that much of the volume",
                           vdev, lv->vg, lv->name,
                           (unsigned long long)(pd->lvm_cow_bytes >> 20)));
    return rc;
}

static int plan_disk(snap_domain *dom, const snap_create_params *p, snap_plan *plan,
                     snap_plan_disk *pd, snap_err *err)
{
    snap_vdisk *d = pd->disk;
    if (d->lv || d->lv_error)
        return plan_lvm(p, plan, pd, err);
    const char *vdev = d->xs->vdev;
    const char *fmt = d->xs->format ? d->xs->format : "raw";
    pd->method = p->method;
    if (pd->method == SNAP_METHOD_AUTO)
        pd->method = !strcmp(fmt, "qcow2") ? SNAP_METHOD_INTERNAL : SNAP_METHOD_EXTERNAL;
    if (pd->method == SNAP_METHOD_INTERNAL && strcmp(fmt, "qcow2"))
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "disk %s: internal snapshots need a qcow2 image (%s is %s); "
                            "use --external",
                            vdev, d->xs->path, fmt);
    if (dom->ref.state != SNAP_DOMAIN_SHUTOFF) {
        if (!d->served)
            return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                                "disk %s (%s backend, %s) is not served by the domain's "
                                "QEMU, so it cannot "
                                "be snapshotted safely while the domain exists; leave it "
                                "out with --disks "
                                "or shut the domain down",
                                vdev, d->xs->backend_type, d->xs->path);
        pd->via_qmp = true;
    }
    for (size_t i = 0; i < d->n_snapshots; i++)
        if (pd->method == SNAP_METHOD_INTERNAL && !strcmp(d->snapshots[i], plan->name))
            return snap_err_set(err, SNAP_ERROR_EXISTS,
                                "disk %s: image %s already has an internal snapshot "
                                "named '%s'",
                                vdev, d->xs->path, plan->name);
    return pd->method == SNAP_METHOD_EXTERNAL ? plan_external(p, plan, pd, err) : 0;
}

static int plan_name(snap_meta_store *st, const snap_create_params *p, snap_plan *plan,
                     snap_err *err)
{
    if (p->name) {
        int rc = snap_meta_new_name_check(p->name, err);
        if (rc)
            return rc;
        plan->name = snap_xstrdup(p->name);
    } else {
        plan->name = snap_meta_name_default(st, (int64_t)time(NULL));
    }
    if (snap_meta_exists(st, plan->name))
        return snap_err_set(err, SNAP_ERROR_EXISTS,
                            "snapshot '%s' of domain %s already exists", plan->name,
                            st->label);
    return 0;
}

/*
 * QEMU stopped the guest on an I/O error (a full file system, typically):
 * a snapshot now would be recorded "paused, crash-consistent" and hide that.
 */
static int refuse_io_error_stop(const snap_domain *dom, snap_err *err)
{
    char files[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < dom->n_disks && used < sizeof files; i++) {
        int w = snprintf(files + used, sizeof files - used, "%s%s", used ? ", " : "",
                         dom->disks[i].xs->path ? dom->disks[i].xs->path : "?");
        used += w > 0 ? (size_t)w : 0;
    }
    return snap_err_set(err, SNAP_ERROR_BUSY,
                        "domain %s is stopped by QEMU after an I/O error on a disk (run "
                        "state io-error; a full file system?): not taking a snapshot of "
                        "it. Free space where its disk files are (%s), then run `xl "
                        "unpause %s`",
                        dom->ref.name, files, dom->ref.name);
}

/* Margin, thaw reserve and thaw wait (see snap_timeline.h). */
#define TIMELINE_MARGIN_MS       2000
#define TIMELINE_THAW_RESERVE_MS 6000
#define TIMELINE_THAW_WAIT_MS    3000

static int min_ms(int a, int b)
{
    return a < b ? a : b;
}

void snap_freeze_timeline_compute(snap_freeze_timeline *tl, int freeze_timeout_ms,
                                  int budget_ms, int lease_ms)
{
    memset(tl, 0, sizeof *tl);
    tl->freeze_timeout_ms = freeze_timeout_ms;
    tl->budget_ms = budget_ms > 0 ? budget_ms : 0;
    tl->lease_ms = lease_ms;
    tl->watchdog_ms = freeze_timeout_ms + lease_ms;
    int margin = min_ms(lease_ms / 4, TIMELINE_MARGIN_MS);
    tl->give_up_ms = tl->watchdog_ms - (margin > 0 ? margin : 1);
    int reserve = min_ms(TIMELINE_THAW_RESERVE_MS, tl->give_up_ms / 2);
    tl->thaw_by_ms = tl->give_up_ms - reserve;
    if (tl->budget_ms)
        tl->thaw_by_ms = min_ms(tl->budget_ms, tl->thaw_by_ms);
    if (tl->thaw_by_ms < 1)
        tl->thaw_by_ms = 1;
    tl->freeze_wait_ms = min_ms(freeze_timeout_ms, tl->thaw_by_ms);
    tl->thaw_wait_ms = min_ms(TIMELINE_THAW_WAIT_MS, reserve / 2 > 0 ? reserve / 2 : 1);
    tl->late_answer_ms = SNAP_LATE_ANSWER_MS;
    tl->worst_slow_ms = min_ms(tl->thaw_by_ms + tl->thaw_wait_ms, tl->give_up_ms);
}

bool snap_freeze_timeline_budget_cut(const snap_freeze_timeline *tl)
{
    return tl->budget_ms > tl->thaw_by_ms;
}

/* The freeze timeline from the user's timeout, budget and lease. */
static void plan_timeline(const snap_create_params *p, snap_plan *plan)
{
    int freeze_timeout =
        p->freeze_timeout_ms > 0 ? p->freeze_timeout_ms : SNAP_DEFAULT_FREEZE_TIMEOUT_MS;
    int lease = p->freeze_lease_ms > 0 ? p->freeze_lease_ms : SNAP_DEFAULT_LEASE_MS;
    snap_freeze_timeline *tl = &plan->timeline;
    snap_freeze_timeline_compute(tl, freeze_timeout, p->freeze_budget_ms, lease);
    if (plan->quiesce != SNAP_QUIESCE_OFF && snap_freeze_timeline_budget_cut(tl))
        plan->notes = snap_strv_add(
            plan->notes, &plan->n_notes,
            snap_xasprintf("freeze budget of %d ms cut to %d ms: the freeze lease "
                           "(%d ms + %d ms) leaves no more",
                           tl->budget_ms, tl->thaw_by_ms, freeze_timeout, lease));
}

int snap_plan_create(snap_ctx *ctx, snap_domain *dom, snap_meta_store *st,
                     const snap_create_params *p, snap_plan *plan, snap_err *err)
{
    (void)ctx;
    memset(plan, 0, sizeof *plan);
    snap_trace("plan");
    int rc = plan_name(st, p, plan, err);
    if (!rc && dom->io_error_stop)
        rc = refuse_io_error_stop(dom, err);
    if (!rc)
        rc = check_requested_disks(dom, p, err);
    if (!rc)
        rc = plan_quiesce(dom, p, plan, err);
    if (rc)
        return rc;
    if (p->memory)
        rc = plan_memory(dom, plan, err);
    if (!rc)
        rc = snap_fs_plan_options(plan, p, err);
    if (rc)
        return rc;
    plan->description = snap_xstrdup(p->description ? p->description : "");
    plan_timeline(p, plan);
    plan->lease_expiry = p->lease_expiry;
    if (p->method > SNAP_METHOD_EXTERNAL) /* LVM is chosen per disk, never asked */
        return snap_err_set(err, SNAP_ERROR_INVAL, "unknown snapshot method %d",
                            (int)p->method);
    if (p->lease_expiry != SNAP_LEASE_THAW_ONLY &&
        p->lease_expiry != SNAP_LEASE_KILL_CALLER)
        return snap_err_set(err, SNAP_ERROR_INVAL, "unknown lease_expiry %d",
                            (int)p->lease_expiry);
    plan->disks = snap_xcalloc(dom->n_disks, sizeof *plan->disks);
    for (size_t i = 0; i < dom->n_disks && !rc; i++) {
        snap_vdisk *d = &dom->disks[i];
        const char *why = unsnapshottable(d);
        bool wanted = !p->n_disks || requested(p, d->xs->vdev);
        if (wanted && why && p->n_disks)
            return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                                "disk %s is %s: it has no "
                                "snapshot",
                                d->xs->vdev, why);
        if (!wanted || why) {
            plan->excluded = snap_strv_add(plan->excluded, &plan->n_excluded,
                                           snap_xstrdup(d->xs->vdev));
            if (why)
                plan->notes = snap_strv_add(
                    plan->notes, &plan->n_notes,
                    snap_xasprintf("disk %s left out: %s", d->xs->vdev, why));
            continue;
        }
        plan->disks[plan->n_disks++].disk = d;
    }
    if (!rc && plan->n_disks && dom->ref.state == SNAP_DOMAIN_SHUTOFF)
        rc = refuse_held_images(dom, plan, err);
    if (!rc && plan->n_disks && dom->ref.state == SNAP_DOMAIN_SHUTOFF)
        rc = probe_offline_images(plan, err);
    for (size_t i = 0; i < plan->n_disks && !rc; i++)
        rc = plan_disk(dom, p, plan, &plan->disks[i], err);
    if (!rc && plan->n_disks == 0)
        rc = snap_err_set(err, SNAP_ERROR_INVAL, "domain %s: no disk to snapshot",
                          dom->ref.name);
    for (size_t i = 0; i < plan->n_disks && !rc && plan->memory; i++)
        if (snap_method_is_lvm(plan->disks[i].method))
            rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                              "disk %s is on LVM: memory checkpoints of domains on LVM "
                              "volumes are not supported yet; take a disk-only snapshot",
                              plan->disks[i].disk->xs->vdev);
    return rc;
}

/*
 * The freeze timeline for -N: its instants (ms after the lease starts) and
 * the worst cases in words (snap_timeline.h).
 */
static void timeline_to_json(yajl_gen g, const snap_freeze_timeline *tl)
{
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "freeze-timeout-ms", tl->freeze_timeout_ms);
    snap_json_kv_int(g, "budget-ms", tl->budget_ms);
    snap_json_kv_int(g, "lease-ms", tl->lease_ms);
    snap_json_kv_int(g, "freeze-reply-by-ms", tl->freeze_wait_ms);
    snap_json_kv_int(g, "thaw-by-ms", tl->thaw_by_ms);
    snap_json_kv_int(g, "thaw-wait-ms", tl->thaw_wait_ms);
    snap_json_kv_int(g, "give-up-ms", tl->give_up_ms);
    snap_json_kv_int(g, "watchdog-ms", tl->watchdog_ms);
    snap_json_kv_int(g, "late-answer-ms", tl->late_answer_ms);
    snap_json_key(g, "worst-case");
    yajl_gen_map_open(g);
    char *t[5];
    t[0] =
        snap_xasprintf("frozen at most %d ms (thaw sent by %d ms, answered within %d ms)",
                       tl->worst_slow_ms, tl->thaw_by_ms, tl->thaw_wait_ms);
    t[1] = snap_xasprintf("frozen at most %d ms: the thaw is sent at %d ms without "
                          "waiting for QEMU; its late answer is awaited %d ms after the "
                          "thaw (kept crash-consistent under best-effort, rolled back "
                          "under required)",
                          tl->worst_slow_ms, tl->thaw_by_ms, tl->late_answer_ms);
    t[2] = snap_xasprintf("frozen until the agent answers again: xlsnap gives up at %d "
                          "ms, the watchdog retries the thaw at %d ms",
                          tl->give_up_ms, tl->watchdog_ms);
    t[3] = snap_xasprintf("frozen at most %d ms: the watchdog thaws", tl->watchdog_ms);
    t[4] = snap_xstrdup("thawed at once by the watchdog; if it dies too, by the next "
                        "xlsnap command on the domain");
    static const char *const keys[] = {"slow-answers", "qemu-hangs", "agent-hangs",
                                       "xlsnap-hangs", "xlsnap-dies"};
    for (int i = 0; i < 5; i++) {
        snap_json_kv_str(g, keys[i], t[i]);
        free(t[i]);
    }
    snap_json_kv_int(g, "frozen-at-most-ms", tl->worst_slow_ms);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

char *snap_plan_to_json(const snap_plan *plan, const snap_domain *dom)
{
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "domain", dom->ref.name);
    snap_json_kv_int(g, "domid", dom->ref.domid);
    snap_json_kv_str(g, "state", snap_domain_state_to_string(dom->ref.state));
    snap_json_kv_str(g, "snapshot", plan->name);
    snap_json_kv_str(g, "quiesce", snap_quiesce_policy_to_string(plan->quiesce));
    snap_json_kv_str(g, "agent", dom->agent_path);
    snap_json_kv_bool(g, "memory", plan->memory);
    snap_json_key(g, "freeze-timeline");
    if (plan->quiesce != SNAP_QUIESCE_OFF)
        timeline_to_json(g, &plan->timeline);
    else
        snap_json_null(g);
    snap_json_key(g, "disks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        yajl_gen_map_open(g);
        snap_json_kv_str(g, "vdev", pd->disk->xs->vdev);
        snap_json_kv_str(g, "method", snap_method_to_string(pd->method));
        snap_json_kv_str(g, "via",
                         pd->via_qmp                      ? "qmp-transaction"
                         : snap_method_is_lvm(pd->method) ? "lvcreate"
                                                          : "qemu-img");
        snap_json_kv_str(g, "image", pd->disk->xs->path);
        snap_json_kv_str(g, "format", pd->disk->xs->format);
        if (pd->via_qmp)
            snap_json_kv_str(g, "node", pd->disk->node_name);
        if (pd->lvm_name) {
            char *full = snap_xasprintf("%s/%s", pd->disk->lv->vg, pd->lvm_name);
            snap_json_kv_str(g, "lvm-snapshot", full);
            if (pd->method == SNAP_METHOD_LVM)
                snap_json_kv_int(g, "lvm-cow-bytes", (long long)pd->lvm_cow_bytes);
            free(full);
        }
        if (pd->overlay_path) {
            snap_json_kv_str(g, "overlay", pd->overlay_path);
            snap_json_kv_str(g, "overlay-node", pd->overlay_node);
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    snap_json_kv_strv(g, "excluded", (const char *const *)plan->excluded,
                      plan->n_excluded);
    snap_json_kv_strv(g, "notes", (const char *const *)plan->notes, plan->n_notes);
    if (plan->n_freeze_mounts)
        snap_json_kv_strv(g, "freeze_mounts", (const char *const *)plan->freeze_mounts,
                          plan->n_freeze_mounts);
    if (plan->n_no_freeze)
        snap_json_kv_strv(g, "no_freeze", (const char *const *)plan->no_freeze,
                          plan->n_no_freeze);
    yajl_gen_map_close(g);
    return snap_json_gen_finish(g, NULL);
}
