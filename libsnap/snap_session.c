/*
 * An operation's hold on a domain: find it, open its state directory, take
 * the per-domain lock, recover what a dead xlsnap left journaled, and only
 * then read the domain's disks (another operation may have just changed them).
 */
#include <string.h>

#include "snap_orch.h"
#include "snap_revert.h"

/*
 * A revert that died on Xen may have destroyed the domain (its name is gone
 * with it): any later operation on it first finishes or rolls back that
 * revert, which creates the domain again, then finds it as usual.
 */
static int lookup_or_recover(snap_ctx *ctx, const char *qualifier, unsigned flags,
                             snap_domain_ref *ref, snap_err *err)
{
    /* Identity only: the state is read under the lock (snap_domain_resolve). */
    int rc = snap_domain_lookup(ctx, qualifier, SNAP_LOOKUP_IDENTIFY, ref, err);
    if (rc != SNAP_ERROR_NOTFOUND || !(flags & SNAP_SESSION_RECOVER_VANISHED))
        return rc;
    snap_err verr;
    int vrc = snap_recover_vanished(ctx, qualifier, &verr);
    if (vrc == SNAP_ERROR_NOTFOUND)
        return rc; /* nothing of the kind: the lookup's own error stands */
    if (vrc) {
        *err = verr;
        return vrc;
    }
    snap_err_clear(err);
    return snap_domain_lookup(ctx, qualifier, SNAP_LOOKUP_IDENTIFY, ref, err);
}

int snap_session_open(snap_ctx *ctx, const char *qualifier, unsigned flags,
                      snap_session *s, snap_err *err)
{
    snap_domain_ref ref;
    memset(s, 0, sizeof *s);
    memset(&ref, 0, sizeof ref);
    s->lock.fd = -1;
    int rc = lookup_or_recover(ctx, qualifier, flags, &ref, err);
    if (rc)
        return rc;
    rc = snap_meta_store_open(&s->st, ctx->statedir, ref.uuid, ref.name,
                              (flags & SNAP_SESSION_CREATE_DIR) != 0, err);
    if (rc)
        return rc;
    s->st_open = true;
    rc = snap_lock_acquire(&s->st, &s->lock, SNAP_LOCK_TIMEOUT_MS, err);
    if (rc)
        return rc;
    snap_meta_store_clean_temps(&s->st);
    rc = snap_domain_resolve(ctx, qualifier, &s->dom, err);
    if (rc)
        return rc;
    if (flags & SNAP_SESSION_KEEP_JOURNAL)
        return 0;
    bool recovered = false;
    rc = snap_recover_journal(ctx, s, &recovered, err);
    if (rc || !recovered)
        return rc;
    /* Recovery may have switched disks back: read them again. */
    snap_domain_dispose(&s->dom);
    return snap_domain_resolve(ctx, qualifier, &s->dom, err);
}

void snap_session_close(snap_session *s)
{
    snap_lock_release(&s->lock);
    if (s->st_open)
        snap_meta_store_close(&s->st);
    s->st_open = false;
    snap_domain_dispose(&s->dom);
}
