/*
 * An operation's hold on a domain: find it, open its state directory, take
 * the per-domain lock, recover what a dead xlsnap left journaled, and only
 * then read the domain's disks (another operation may have just changed them).
 */
#include <string.h>

#include "snap_orch.h"

int snap_session_open(snap_ctx *ctx, const char *qualifier, bool create_dir,
                      snap_session *s, snap_err *err)
{
    snap_domain_ref ref;
    memset(s, 0, sizeof *s);
    s->lock.fd = -1;
    int rc = ctx->ops->lookup(ctx, qualifier, &ref, err);
    if (rc)
        return rc;
    rc = snap_meta_store_open(&s->st, ctx->statedir, ref.uuid, ref.name, create_dir, err);
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
