/*
 * Undo and recovery of revert and delete operations (snap_rollback.c), for
 * snap_revert.c, snap_delete.c and journal recovery. Not installed.
 */
#ifndef SNAP_REVERT_H
#define SNAP_REVERT_H

#include "snap_orch.h"

/*
 * Undoes a revert recorded in j before its domain started: the toolstack's
 * disks back to their old images (where the platform keeps a stopped
 * domain), the new overlays removed. Applied internal snapshots stay applied.
 * Past domain-started the revert is finished instead (current moves).
 */
int snap_rollback_revert(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                         snap_err *err);

/*
 * Adds the overlays the revert in j created to the reverted-to snapshot's
 * record (revert_overlays), so that no revert leaves an unrecorded image.
 */
int snap_revert_record_overlays(snap_meta_store *st, const snap_journal *j,
                                snap_err *err);

/*
 * Finishes a delete a dead xlsnap left journaled: every step of a delete is
 * re-runnable, so recovery completes the metadata side (children
 * reparented, record removed) once the storage step is done, and else just
 * drops the journal (storage untouched or merged idempotently).
 */
int snap_recover_delete(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                        snap_err *err);

#endif
