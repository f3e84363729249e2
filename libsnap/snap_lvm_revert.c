/* A thin volume put back to a snapshot volume's content; see snap_lvm_revert.h. */
#include "snap_lvm_revert.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int snap_lvm_swap_init(snap_lvm_swap *sw, const char *volume, const char *snapshot,
                       snap_err *err)
{
    memset(sw, 0, sizeof *sw);
    char *svg = NULL;
    int rc = snap_lvm_split_name(volume, &sw->vg, &sw->lv, err);
    if (!rc)
        rc = snap_lvm_split_name(snapshot, &svg, &sw->snap, err);
    if (!rc && strcmp(svg, sw->vg))
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "snapshot volume %s is not in the volume group of %s", snapshot,
                          volume);
    free(svg);
    if (!rc) {
        sw->fresh = snap_xasprintf("%.100s-xlsnap-rv", sw->lv);
        sw->pre = snap_xasprintf("%.100s-xlsnap-pre", sw->lv);
    }
    return rc;
}

void snap_lvm_swap_dispose(snap_lvm_swap *sw)
{
    free(sw->vg);
    free(sw->lv);
    free(sw->snap);
    free(sw->fresh);
    free(sw->pre);
    memset(sw, 0, sizeof *sw);
}

/* 1: vg/name exists, 0: it does not, < 0: lvs failed (err). lv may be NULL. */
static int exists(const snap_lvm_opts *o, const char *vg, const char *name, snap_lv *lv,
                  snap_err *err)
{
    char *full = snap_xasprintf("%s/%s", vg, name);
    snap_lv tmp;
    int rc = snap_lvm_lookup(o, full, lv ? lv : &tmp, err);
    free(full);
    if (rc == SNAP_ERROR_NOTFOUND) {
        snap_err_clear(err);
        return 0;
    }
    if (!rc && !lv)
        snap_lv_dispose(&tmp);
    return rc ? rc : 1;
}

int snap_lvm_swap_check(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    snap_lv snap;
    int rc = exists(o, sw->vg, sw->snap, &snap, err);
    if (rc == 0)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "snapshot volume %s/%s is missing (removed outside xlsnap)",
                            sw->vg, sw->snap);
    if (rc < 0)
        return rc;
    bool thin = snap.thin;
    snap_lv_dispose(&snap);
    if (!thin)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "%s/%s is not a thin volume: reverting to classic LVM "
                            "snapshots is not supported yet",
                            sw->vg, sw->snap);
    const char *left[] = {sw->fresh, sw->pre};
    for (int i = 0; i < 2; i++) {
        rc = exists(o, sw->vg, left[i], NULL, err);
        if (rc < 0)
            return rc;
        if (rc)
            return snap_err_set(
                err, SNAP_ERROR_EXISTS,
                "volume %s/%s is left by an interrupted revert no journal "
                "covers: keep or remove it (lvremove) first",
                sw->vg, left[i]);
    }
    return 0;
}

int snap_lvm_swap_apply(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    snap_lvm_snap_req fresh = {
        .vg = sw->vg, .origin = sw->snap, .name = sw->fresh, .thin = true};
    int rc = snap_lvm_create_snapshots(o, &fresh, 1, 0, NULL, err);
    if (!rc)
        rc = snap_lvm_rename(o, sw->vg, sw->lv, sw->pre, err);
    if (!rc)
        rc = snap_lvm_change(o, sw->vg, sw->pre, 1, false, err);
    if (!rc)
        rc = snap_lvm_rename(o, sw->vg, sw->fresh, sw->lv, err);
    if (!rc)
        rc = snap_lvm_change(o, sw->vg, sw->lv, -1, true, err);
    return rc ? snap_err_context(err, "reverting %s/%s to %s", sw->vg, sw->lv, sw->snap)
              : 0;
}

/* vg/name carries the xlsnap tag (want) or not, changed only when it differs. */
static int ensure_tag(const snap_lvm_opts *o, const char *vg, const char *name, bool want,
                      snap_err *err)
{
    snap_lv lv;
    int rc = exists(o, vg, name, &lv, err);
    if (rc <= 0)
        return rc;
    bool has = snap_lv_has_tag(&lv, SNAP_LVM_TAG);
    snap_lv_dispose(&lv);
    return has == want ? 0 : snap_lvm_change(o, vg, name, want ? 1 : -1, false, err);
}

/*
 * pre there: apply got at least to its first rename. The volume under lv
 * then is fresh's content (renamed back to fresh), and pre goes back to lv.
 */
int snap_lvm_swap_undo(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    int pre = exists(o, sw->vg, sw->pre, NULL, err);
    int lv = pre > 0 ? exists(o, sw->vg, sw->lv, NULL, err) : 0;
    int rc = pre < 0 ? pre : lv < 0 ? lv : 0;
    if (!rc && pre && lv)
        rc = snap_lvm_rename(o, sw->vg, sw->lv, sw->fresh, err);
    if (!rc) /* apply's last step untagged it; the removal below wants the tag */
        rc = ensure_tag(o, sw->vg, sw->fresh, true, err);
    if (!rc && pre)
        rc = snap_lvm_rename(o, sw->vg, sw->pre, sw->lv, err);
    if (!rc && pre) /* tagged by apply: the domain's volume again */
        rc = ensure_tag(o, sw->vg, sw->lv, false, err);
    snap_lvm_snap_req fresh = {.vg = sw->vg, .origin = sw->snap, .name = sw->fresh};
    if (!rc)
        rc = snap_lvm_remove_snapshots(o, &fresh, 1, err);
    return rc ? snap_err_context(err, "undoing the revert of %s/%s", sw->vg, sw->lv) : 0;
}

int snap_lvm_swap_finish(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    snap_lvm_snap_req pre = {.vg = sw->vg, .name = sw->pre}; /* its origin: any */
    return snap_lvm_remove_snapshots(o, &pre, 1, err);
}

/* ------------------------------------------------------------ classic: merge */

/* Why lv (a classic snapshot, xlsnap's, of sw->lv) cannot be merged, or 0. */
static int judge_mergeable(const snap_lv *lv, const snap_lvm_swap *sw, snap_err *err)
{
    if (!lv->classic_snapshot || !lv->origin || strcmp(lv->origin, sw->lv))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "%s/%s is not a classic snapshot of %s (its origin: %s)",
                            sw->vg, sw->snap, sw->lv, lv->origin ? lv->origin : "none");
    if (!snap_lv_has_tag(lv, SNAP_LVM_TAG))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "%s/%s has no LVM tag '%s': not a volume xlsnap made", sw->vg,
                            sw->snap, SNAP_LVM_TAG);
    if (lv->invalid)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "LVM invalidated the classic snapshot %s/%s (its "
                            "copy-on-write space filled up, lv_attr %s): its content "
                            "is lost, it cannot be reverted to",
                            sw->vg, sw->snap, lv->attr);
    return 0;
}

int snap_lvm_merge_check(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    snap_lv lv;
    int rc = exists(o, sw->vg, sw->lv, &lv, err);
    if (rc == 0)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND, "volume %s/%s is missing", sw->vg,
                            sw->lv);
    if (rc < 0)
        return rc;
    bool merging = lv.merging;
    snap_lv_dispose(&lv);
    if (merging)
        return snap_err_set(err, SNAP_ERROR_BUSY,
                            "a snapshot merge into %s/%s is pending (lvs -a %s): let it "
                            "finish first (lvchange --refresh %s/%s)",
                            sw->vg, sw->lv, sw->vg, sw->vg, sw->lv);
    rc = exists(o, sw->vg, sw->snap, &lv, err);
    if (rc == 0)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "snapshot volume %s/%s is missing (removed outside xlsnap)",
                            sw->vg, sw->snap);
    if (rc < 0)
        return rc;
    rc = judge_mergeable(&lv, sw, err);
    snap_lv_dispose(&lv);
    return rc;
}

int snap_lvm_merge_began(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    snap_lv lv;
    int rc = exists(o, sw->vg, sw->lv, &lv, err);
    if (rc <= 0) /* the origin gone: nothing xlsnap can merge into */
        return rc < 0 ? rc : 0;
    bool merging = lv.merging;
    snap_lv_dispose(&lv);
    if (merging)
        return 1;
    rc = exists(o, sw->vg, sw->snap, NULL, err);
    return rc < 0 ? rc : !rc; /* the snapshot volume gone: merged */
}

int snap_lvm_merge_wait_closed(const snap_lvm_opts *o, const snap_lvm_swap *sw,
                               int wait_ms, snap_err *err)
{
    for (int waited = 0;; waited += 250) {
        snap_lv lv;
        int rc = exists(o, sw->vg, sw->lv, &lv, err);
        if (rc <= 0)
            return rc ? rc
                      : snap_err_set(err, SNAP_ERROR_NOTFOUND, "volume %s/%s is missing",
                                     sw->vg, sw->lv);
        bool open = lv.open;
        snap_lv_dispose(&lv);
        if (!open)
            return 0;
        if (waited >= wait_ms)
            return snap_err_set(err, SNAP_ERROR_BUSY,
                                "volume %s/%s is open (a domain's backend or a mount "
                                "holds it): it can be reverted only once closed (LVM "
                                "would defer a merge into it)",
                                sw->vg, sw->lv);
        usleep(250 * 1000);
    }
}

int snap_lvm_merge_apply(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    int rc = snap_lvm_merge_wait_closed(o, sw, SNAP_LVM_CLOSE_WAIT_MS, err);
    if (!rc)
        rc = snap_lvm_merge(o, sw->vg, sw->snap, err);
    if (!rc)
        rc = snap_lvm_wait_merged(o, sw->vg, sw->lv, 0, err);
    return rc ? snap_err_context(err, "merging %s/%s into %s", sw->vg, sw->snap, sw->lv)
              : 0;
}

int snap_lvm_merge_finish(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err)
{
    int rc = snap_lvm_wait_merged(o, sw->vg, sw->lv, 0, err);
    return rc ? snap_err_context(err, "finishing the merge of %s/%s into %s", sw->vg,
                                 sw->snap, sw->lv)
              : 0;
}
