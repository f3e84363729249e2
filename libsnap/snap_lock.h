/*
 * The per-domain lock: flock(LOCK_EX) on <statedir>/snapshots/<uuid>/.lock.
 *
 * One xlsnap operation per domain at a time; other domains proceed in
 * parallel. The holder writes its pid into the file so that a waiter can say
 * who is busy. The file is never unlinked: unlinking a flock file lets a
 * third process lock a fresh inode while a second still waits on the old one.
 * The kernel drops the lock when the holder dies, so a crash never leaves the
 * domain locked. Not installed.
 */
#ifndef SNAP_LOCK_H
#define SNAP_LOCK_H

#include <sys/types.h>

#include "snap_base.h"
#include "snap_meta_store.h"

/* How long an operation waits for a lock another xlsnap or libxl holds. */
#define SNAP_LOCK_TIMEOUT_MS 30000

typedef struct snap_lock {
    int fd; /* -1 when not held */
} snap_lock;

/*
 * Takes the lock of st's domain, waiting up to timeout_ms (0: do not wait,
 * < 0: forever). When busy: SNAP_ERROR_BUSY "domain X is busy: another xlsnap
 * (pid N) is working on it".
 */
int snap_lock_acquire(snap_meta_store *st, snap_lock *lock, int timeout_ms,
                      snap_err *err);
void snap_lock_release(snap_lock *lock);
/*
 * For a child forked while the lock is held (e.g. a freeze watchdog): closes
 * its copy of the descriptor without unlocking, so the lock dies with the
 * parent and not with the child.
 */
void snap_lock_forget_in_child(snap_lock *lock);
/* The pid written by the current holder, or 0 when unknown. */
pid_t snap_lock_holder(snap_meta_store *st);

#endif
