/*
 * What a revert leaves for those who come after it (snap_revert_record.c):
 * for snap_revert.c, its rollback (snap_rollback.c), sessions that find a
 * domain a revert destroyed (snap_session.c) and readers (snap_records.c).
 * Not installed.
 */
#ifndef SNAP_REVERT_RECORD_H
#define SNAP_REVERT_RECORD_H

#include "snap_journal.h"

/*
 * Adds the overlays the revert in j created to the reverted-to snapshot's
 * record (revert_overlays), so that no revert leaves an unrecorded image.
 */
int snap_revert_record_overlays(snap_meta_store *st, const snap_journal *j,
                                snap_err *err);

/*
 * Marks the disks whose classic snapshot volume the revert in j merged
 * (lvm_merge) as merged in the reverted-to snapshot's record, and says so
 * on lg (the volume is gone; no revert to it again). Already marked: no-op.
 */
int snap_revert_record_merged(snap_meta_store *st, xentoollog_logger *lg,
                              const snap_journal *j, snap_err *err);

/*
 * Where the platform forgets a stopped domain (Xen destroys it, with its
 * name and stored config), a revert saves the domain's config here before
 * stopping it, so that recovery by another xlsnap can find the domain by
 * name or UUID and create it again. Removed when the revert is over.
 */
#define SNAP_REVERT_DOMAIN_FILE ".revert-domain.json"
void snap_revert_forget_domain(snap_meta_store *st);

/*
 * The UUID (malloc'd) and saved config (*config, malloc'd) of the domain
 * qualifier (a name or UUID) names when an interrupted revert destroyed it:
 * its config was saved and no domain has its UUID now. NULL otherwise
 * (*config NULL too).
 */
char *snap_revert_destroyed_domain(snap_ctx *ctx, const char *qualifier, char **config);
/* Whether qualifier names a domain that an interrupted revert destroyed. */
bool snap_domain_vanished(snap_ctx *ctx, const char *qualifier);

#endif
