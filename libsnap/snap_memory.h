/*
 * Memory checkpoints: where a snapshot's memory file lives and how it is
 * taken (pause -> disks -> save -> resume) and given back on revert.
 * Not installed.
 */
#ifndef SNAP_MEMORY_H
#define SNAP_MEMORY_H

#include "snap_journal.h"
#include "snap_session.h"

/* <domain state dir>/<name>.mem (malloc'd): beside the record, 0600. */
char *snap_memory_path(const snap_meta_store *st, const char *name);

/* A checkpoint in progress: the domain paused by it, the file it writes. */
typedef struct snap_memory_save {
    bool paused_by_us; /* the domain was running: resume it afterwards */
    char *path;
    uint64_t size; /* bytes written, once saved */
} snap_memory_save;

/* Prepares the save, then pauses a running domain (a paused one stays as it is). */
int snap_memory_pause(snap_ctx *ctx, snap_session *s, snap_memory_save *ms,
                      snap_err *err);
/*
 * Writes the memory file (new, 0600, fsync'd; journaled as memory_created
 * before it exists). On failure the partial file is removed.
 */
int snap_memory_write(snap_ctx *ctx, snap_session *s, snap_journal *j,
                      snap_memory_save *ms, snap_progress_fn *progress, void *opaque,
                      snap_err *err);
/*
 * Makes the domain usable again after a save (or a failed one): running when
 * it was, else paused. saved says whether the platform's save completed.
 */
int snap_memory_resume(snap_ctx *ctx, snap_session *s, snap_memory_save *ms, bool saved,
                       snap_err *err);
void snap_memory_save_dispose(snap_memory_save *ms);

/*
 * Removes path, the memory file of snapshot name as metadata names it
 * (journal undo, delete); a missing file is fine. Only <st dir>/<name>.mem,
 * a regular file, is removed: anything else is left with a warning.
 */
int snap_memory_remove(snap_ctx *ctx, const snap_meta_store *st, const char *name,
                       const char *path, snap_err *err);

#endif
