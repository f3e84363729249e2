/*
 * Storing, loading and removing snapshot records, and the current pointer
 * (snap_meta_io.c); the records themselves: snap_meta.h. Writers must hold
 * the domain lock (snap_lock.h); readers need not. Not installed.
 */
#ifndef SNAP_META_IO_H
#define SNAP_META_IO_H

#include "snap_meta.h"

/*
 * A default name (the form snap_meta.h describes) from the time `when`
 * (UTC), unique in the store (st may be NULL: no uniqueness check). malloc'd.
 */
char *snap_meta_name_default(snap_meta_store *st, int64_t when);

/*
 * Writes m as <name>.json atomically. With exclusive, an existing snapshot
 * of that name is SNAP_ERROR_EXISTS (create); without, it is replaced.
 */
int snap_meta_save(snap_meta_store *st, const snap_meta *m, bool exclusive,
                   snap_err *err);
/* Loads snapshot name; missing: SNAP_ERROR_NOTFOUND "snapshot 'x' of domain d ...". */
int snap_meta_load(snap_meta_store *st, const char *name, snap_meta *m, snap_err *err);
bool snap_meta_exists(snap_meta_store *st, const char *name);
/*
 * The parent m's children and the current pointer move to when m goes: m's
 * parent when its record exists, else none (a missing parent's own parent is
 * unknown), never a dangling name.
 */
const char *snap_meta_surviving_parent(snap_meta_store *st, const snap_meta *m);
/*
 * Removes snapshot name's record. If it was the current snapshot, current
 * moves to its surviving parent first (so a crash in between leaves a valid
 * state). A damaged record (unreadable, a symlink) is removed too: the entry
 * itself, never what a symlink points to.
 */
int snap_meta_remove(snap_meta_store *st, const char *name, snap_err *err);
/*
 * "; remove it with snapshot-delete --metadata DOMAIN NAME" (shell-quoted
 * when needed; no program name: xlsnap and xl both take it), malloc'd,
 * appended to the errors about a damaged record.
 */
char *snap_meta_removal_hint(const snap_meta_store *st, const char *name);
/* snap_meta_load, the error about a damaged record ending with that hint. */
int snap_meta_load_hinted(snap_meta_store *st, const char *name, snap_meta *m,
                          snap_err *err);

/* *name_out: the current snapshot's name (malloc'd), or NULL when there is none. */
int snap_meta_get_current(snap_meta_store *st, char **name_out, snap_err *err);
/* Points current at name (NULL: none) with one atomic write. */
int snap_meta_set_current(snap_meta_store *st, const char *name, snap_err *err);

#endif
