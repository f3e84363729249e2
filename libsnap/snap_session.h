/*
 * An operation's hold on a domain (snap_session.c): found, locked, its
 * journal recovered. Not installed.
 */
#ifndef SNAP_SESSION_H
#define SNAP_SESSION_H

#include "snap_domain.h"
#include "snap_lock.h"
#include "snap_meta_store.h"

/* An operation's hold on a domain: its store, lock and (recovered) journal. */
typedef struct snap_session {
    snap_domain dom;
    snap_meta_store st;
    snap_lock lock;
    bool st_open;
} snap_session;

/* What snap_session_open may do besides finding the domain. */
enum {
    SNAP_SESSION_CREATE_DIR = 1 << 0, /* make the domain's state directory */
    /* bring back a domain an interrupted revert destroyed (not for -N) */
    SNAP_SESSION_RECOVER_VANISHED = 1 << 1,
    /* leave the journal alone (snap_discard_journal decides about it) */
    SNAP_SESSION_KEEP_JOURNAL = 1 << 2,
};

/*
 * Resolves the domain, opens its state directory, takes the domain lock and
 * finishes or rolls back any operation a dead xlsnap left journaled.
 */
int snap_session_open(snap_ctx *ctx, const char *qualifier, unsigned flags,
                      snap_session *s, snap_err *err);
/*
 * The same, calling locked(ctx, ref, opaque) as soon as the lock is held,
 * before the domain's state and disks are read, when no operation is
 * journaled (nothing will be recovered): snap_create asks the guest agent
 * its questions then, so that the guest answers while xlsnap works. ref is
 * the domain's identity; its state is not read yet.
 */
typedef void snap_session_locked_fn(snap_ctx *ctx, const snap_domain_ref *ref,
                                    void *opaque);
int snap_session_open_then(snap_ctx *ctx, const char *qualifier, unsigned flags,
                           snap_session_locked_fn *locked, void *opaque, snap_session *s,
                           snap_err *err);
void snap_session_close(snap_session *s);

#endif
