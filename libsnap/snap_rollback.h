/*
 * Undoing a create or a revert from its journal alone (snap_rollback.c), so
 * that one path undoes a failure in this process (snap_create.c,
 * snap_revert.c) and an operation a dead xlsnap left (snap_recover.c).
 * Not installed.
 */
#ifndef SNAP_ROLLBACK_H
#define SNAP_ROLLBACK_H

#include "snap_journal.h"
#include "snap_session.h"

/* Undoes a create recorded in journal j (this run's failure or a dead run's). */
int snap_rollback_create(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                         snap_err *err);

/*
 * Undoes a revert recorded in j before its domain started: the toolstack's
 * disks back to their old images (where the platform keeps a stopped
 * domain), the new overlays removed. Applied internal snapshots stay applied.
 * Past domain-started the revert is finished instead (current moves), and
 * so is a revert whose classic LVM merges began (they cannot be undone):
 * the merges finished, the domain started on the reverted disks.
 */
/*
 * The LVM volumes a revert journaled (lvm_created: the volume, lvm_origin:
 * the snapshot volume). Thin: put back to their old content (undo), or,
 * the revert kept, their old content removed (snap_lvm_revert.h). Classic
 * (lvm_merge): never undone; kept, a merge that began is finished.
 */
int snap_rollback_lvm_reverts(snap_ctx *ctx, const snap_journal *j, bool undo,
                              snap_err *err);
int snap_rollback_revert(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                         snap_err *err);

#endif
