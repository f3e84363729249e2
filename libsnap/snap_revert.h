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
 * Where the platform forgets a stopped domain (Xen destroys it, with its
 * name and stored config), a revert saves the domain's config here before
 * stopping it, so that recovery by another xlsnap can find the domain by
 * name or UUID and create it again. Removed when the revert is over.
 */
#define SNAP_REVERT_DOMAIN_FILE ".revert-domain.json"
void snap_revert_forget_domain(snap_meta_store *st);

/*
 * For a qualifier (name or UUID) no domain answers to: when an interrupted
 * revert destroyed that domain (its saved config names it, and no domain
 * has its UUID), recovers the revert, which creates the domain again.
 * 0: recovered (look the domain up again); SNAP_ERROR_NOTFOUND: nothing of
 * the kind, err untouched; else the recovery failed (err says why).
 */
int snap_recover_vanished(snap_ctx *ctx, const char *qualifier, snap_err *err);
/* Whether qualifier names a domain that an interrupted revert destroyed. */
bool snap_domain_vanished(snap_ctx *ctx, const char *qualifier);

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
