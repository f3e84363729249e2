/*
 * Reverting a thin LVM volume to a snapshot volume (issue 21), as steps the
 * revert and its rollback share (snap_lvm_revert.c). The snapshot volume
 * stays as it is, reusable: a new thin snapshot of it ("<lv>-xlsnap-rv")
 * becomes the volume, under the volume's own name, so the domain's config
 * does not change. The old content is renamed "<lv>-xlsnap-pre" (tagged
 * xlsnap) and removed only once the revert is kept, so until then every
 * step can be undone from the names alone, whatever step a crash stopped
 * at. The domain must not be using the volume (it is stopped first). Not
 * installed.
 */
#ifndef SNAP_LVM_REVERT_H
#define SNAP_LVM_REVERT_H

#include "snap_lvm.h"

typedef struct snap_lvm_swap {
    char *vg;
    char *lv;   /* the volume the domain uses */
    char *snap; /* the snapshot volume reverted to */
    char *fresh, *pre;
} snap_lvm_swap;

/* From "vg/lv" and "vg/snap" (the record's lvm_volume and lvm_snapshot). */
int snap_lvm_swap_init(snap_lvm_swap *sw, const char *volume, const char *snapshot,
                       snap_err *err);
void snap_lvm_swap_dispose(snap_lvm_swap *sw);
/*
 * Before anything changes: the snapshot volume is there and thin, no
 * "-rv"/"-pre" volume is left by a revert no journal covers (refused,
 * named: the user decides).
 */
int snap_lvm_swap_check(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);
/* fresh made of snap; lv renamed pre (tagged); fresh renamed lv, activated. */
int snap_lvm_swap_apply(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);
/* Back to the old content under lv, from any point of apply; fresh removed. */
int snap_lvm_swap_undo(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);
/* The revert is kept: pre (the old content) removed; gone already is fine. */
int snap_lvm_swap_finish(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);

/*
 * Classic snapshots (snap_lvm_swap's vg, lv, snap; no fresh/pre): LVM
 * cannot snapshot a classic snapshot, so the revert is `lvconvert --merge`,
 * which CONSUMES the snapshot volume: its content is written back into lv
 * and LVM removes it. A merge cannot be undone: once it began, a revert
 * can only go forward (snap_rollback.c).
 */
/* Before anything changes: snap is a valid classic snapshot of lv, xlsnap's. */
int snap_lvm_merge_check(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);
/*
 * lv closed, waited for up to wait_ms (a backend just torn down): LVM
 * defers a merge into an open volume to its next activation, which a
 * volume a domain keeps open never gets, and a thin swap would leave the
 * old content in use. Still open: SNAP_ERROR_BUSY. Also for thin swaps.
 */
int snap_lvm_merge_wait_closed(const snap_lvm_opts *o, const snap_lvm_swap *sw,
                               int wait_ms, snap_err *err);
/* 1: the merge began (pending, going on or done: snap hidden or gone), 0: not. */
int snap_lvm_merge_began(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);
/*
 * lvconvert --merge, then until LVM has finished it. lv must be closed:
 * open after SNAP_LVM_CLOSE_WAIT_MS, SNAP_ERROR_BUSY and nothing changed.
 */
#define SNAP_LVM_CLOSE_WAIT_MS 10000
int snap_lvm_merge_apply(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);
/* A merge that began, finished (again: done already is fine). */
int snap_lvm_merge_finish(const snap_lvm_opts *o, const snap_lvm_swap *sw, snap_err *err);

#endif
