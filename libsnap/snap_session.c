/*
 * An operation's hold on a domain: find it, open its state directory, take
 * the per-domain lock, recover what a dead xlsnap left journaled
 * (snap_recover.c), and only then read the domain's disks (another operation
 * may have just changed them). A domain an interrupted revert destroyed is
 * found by the config the revert saved (snap_revert_record.h) and created
 * again by recovering that revert.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_json.h"
#include "snap_recover.h"
#include "snap_revert_record.h"
#include "snap_session.h"

/* The journal is a revert's (the only operation that saves the config). */
static bool journal_is_revert(snap_meta_store *st)
{
    snap_journal j;
    bool found = false, revert;
    snap_err ignore;
    if (snap_journal_load(st, &j, &found, &ignore) || !found)
        return false;
    revert = j.op == SNAP_JOURNAL_REVERT;
    snap_journal_dispose(&j);
    return revert;
}

/* Recovers the revert journaled in uuid's directory for the absent domain. */
static int recover_vanished_in(snap_ctx *ctx, const char *uuid, char *config,
                               snap_err *err)
{
    snap_session s;
    memset(&s, 0, sizeof s);
    s.lock.fd = -1;
    s.dom.config = config;
    s.dom.config_len = strlen(config);
    yajl_val root = snap_json_parse(config, "saved domain config", err);
    const char *name = snap_json_get_string(snap_json_get_object(root, "c_info"), "name");
    snprintf(s.dom.ref.name, sizeof s.dom.ref.name, "%s", name ? name : uuid);
    yajl_tree_free(root);
    snprintf(s.dom.ref.uuid, sizeof s.dom.ref.uuid, "%s", uuid);
    s.dom.ref.state = SNAP_DOMAIN_SHUTOFF;
    snap_err_clear(err);
    bool recovered = false;
    int rc = snap_meta_store_open(&s.st, ctx->statedir, uuid, s.dom.ref.name, false, err);
    s.st_open = rc == 0;
    if (!rc)
        rc = snap_lock_acquire(&s.st, &s.lock, SNAP_LOCK_TIMEOUT_MS, err);
    /* No revert in flight any more (another xlsnap recovered it while we
     * waited for the lock, or the file is stale): just look again. */
    if (!rc && !journal_is_revert(&s.st))
        snap_revert_forget_domain(&s.st);
    else if (!rc)
        rc = snap_recover_journal(ctx, &s, &recovered, err);
    snap_session_close(&s);
    return rc;
}

/*
 * For a qualifier (name or UUID) no domain answers to: when an interrupted
 * revert destroyed that domain (its saved config names it, and no domain
 * has its UUID), recovers the revert, which creates the domain again.
 * 0: recovered (look the domain up again); SNAP_ERROR_NOTFOUND: nothing of
 * the kind, err untouched; else the recovery failed (err says why).
 */
static int recover_vanished(snap_ctx *ctx, const char *qualifier, snap_err *err)
{
    char *config = NULL;
    char *uuid = snap_revert_destroyed_domain(ctx, qualifier, &config);
    if (!uuid)
        return SNAP_ERROR_NOTFOUND;
    snap_log(ctx->lg, XTL_NOTICE,
             "domain %s (UUID %s) does not exist: an interrupted revert destroyed it",
             qualifier, uuid);
    snap_err rerr;
    int rc = recover_vanished_in(ctx, uuid, config, &rerr); /* owns config */
    if (rc && rc != SNAP_ERROR_NOTFOUND)
        *err = rerr;
    free(uuid);
    return rc;
}

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
    int vrc = recover_vanished(ctx, qualifier, &verr);
    if (vrc == SNAP_ERROR_NOTFOUND)
        return rc; /* nothing of the kind: the lookup's own error stands */
    if (vrc) {
        *err = verr;
        return vrc;
    }
    snap_err_clear(err);
    return snap_domain_lookup(ctx, qualifier, SNAP_LOOKUP_IDENTIFY, ref, err);
}

/* An operation is journaled in the domain's directory (recovery is due). */
static bool journal_pending(snap_meta_store *st)
{
    snap_journal j;
    bool found = false;
    snap_err ignore;
    if (snap_journal_load(st, &j, &found, &ignore))
        return true; /* unreadable: recovery will say why */
    if (found)
        snap_journal_dispose(&j);
    return found;
}

int snap_session_open(snap_ctx *ctx, const char *qualifier, unsigned flags,
                      snap_session *s, snap_err *err)
{
    return snap_session_open_then(ctx, qualifier, flags, NULL, NULL, s, err);
}

int snap_session_open_then(snap_ctx *ctx, const char *qualifier, unsigned flags,
                           snap_session_locked_fn *locked, void *opaque, snap_session *s,
                           snap_err *err)
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
    /* Under the lock, no other xlsnap talks to the domain's agent; without a
     * journal, no recovery below will either. */
    if (locked && !journal_pending(&s->st))
        locked(ctx, &ref, opaque);
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
