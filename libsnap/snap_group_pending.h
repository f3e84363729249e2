/*
 * Group reverts and deletes, journaled (snap_group_pending.c): the run of
 * the members, and the roll forward of one a dead xlsnap left. Not
 * installed.
 *
 * Locks: the groups lock (snap_meta_store_open_groups + snap_lock) is
 * always taken before any domain lock; the members run through
 * snap_ops.h, which never takes it again.
 */
#ifndef SNAP_GROUP_PENDING_H
#define SNAP_GROUP_PENDING_H

#include "snap_group_store.h"

/*
 * Runs op's members not done yet, in order, each marked done in the
 * journal durably once it is; then, for a delete, removes the group
 * record; then the journal. gst's lock is held. A member that fails stops
 * the run and the journal is removed: err names the members done and not.
 */
int snap_group_op_run(snap_ctx *ctx, snap_meta_store *gst, snap_group_op *op,
                      snap_err *err);
/*
 * With gst's lock held: finishes (rolls forward) every journaled group
 * operation naming domain (a name or UUID).
 */
int snap_group_finish_for_domain_locked(snap_ctx *ctx, snap_meta_store *gst,
                                        const char *domain, snap_err *err);
/*
 * With gst's lock held: finishes group's own journaled operation, if any;
 * *found says whether there was one and *kind which.
 */
int snap_group_finish_group_locked(snap_ctx *ctx, snap_meta_store *gst, const char *group,
                                   bool *found, snap_group_op_kind *kind, snap_err *err);
/*
 * For a single-domain operation, before its domain lock: when a journaled
 * group operation names domain, takes the groups lock and finishes it.
 */
int snap_group_finish_for_domain(snap_ctx *ctx, const char *domain, snap_err *err);
#endif
