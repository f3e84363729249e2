/*
 * The steps of a snapshot-delete (snap_delete_steps.c), for the delete
 * itself (snap_delete.c) and for journal recovery (snap_recover.c), which
 * runs them again to finish a delete a dead xlsnap left journaled. Every
 * step is re-runnable. Not installed.
 */
#ifndef SNAP_DELETE_STEPS_H
#define SNAP_DELETE_STEPS_H

#include "snap_journal.h"
#include "snap_meta.h"
#include "snap_session.h"

/* A set of image paths (each once, malloc'd). */
typedef struct snap_image_set {
    char **paths;
    size_t n;
} snap_image_set;

void snap_image_set_free(snap_image_set *s);

/* Every image xlsnap knows of for the domain: records and current disks. */
int snap_delete_known_images(snap_session *s, snap_image_set *out, snap_err *err);

/*
 * The overlays reverts to m left behind and nothing uses any more (known:
 * snap_delete_known_images): they go with the snapshot.
 */
void snap_delete_stale_overlays(const snap_session *s, const snap_meta *m,
                                const snap_image_set *known, snap_image_set *out);

/*
 * Everything deleting each snapshot of list needs is where its record says
 * (every base, overlay and internal snapshot), checked before any of them
 * is deleted: a file moved or removed by hand is refused.
 */
int snap_delete_check_targets(snap_session *s, char **list, size_t n, snap_err *err);

/*
 * The storage step: m's internal snapshots deleted, its overlays merged
 * into their bases (xenstore and the stored config switched where the
 * overlay was active), stale revert overlays removed. j (the delete's
 * journal) marks a disk "merging" before its image changes; a disk it
 * already marks may have been merged by the interrupted run.
 */
int snap_delete_storage(snap_ctx *ctx, snap_session *s, const snap_meta *m,
                        snap_journal *j, snap_err *err);

/*
 * The metadata step: m's children to its surviving parent (their records
 * re-based onto the merged bases), its memory file and record removed
 * (current moves up).
 */
int snap_delete_metadata(snap_ctx *ctx, snap_session *s, const snap_meta *m,
                         snap_err *err);

/* Logs that name's children become roots, and why. */
void snap_delete_say_orphaned(snap_ctx *ctx, snap_session *s, const char *name,
                              const char *why);

#endif
