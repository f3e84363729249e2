/*
 * The way out of a journal recovery cannot use (garbage, a symlink, or an
 * operation whose undo keeps failing): snap_discard_journal moves it aside
 * after making sure the guest is not left frozen. Nothing else is undone or
 * resumed: what the dead operation made stays, and is named.
 */
#include <stdlib.h>
#include <string.h>

#include "snap_quiesce.h"
#include "snap_session.h"

/* Says what the discarded operation may have left behind (recovery would undo it). */
static void name_leftovers(snap_ctx *ctx, const snap_journal *j)
{
    if (j->memory_created)
        snap_log(ctx->lg, XTL_WARN, "left in place: memory file %s", j->memory_created);
    for (size_t i = 0; i < j->n_disks; i++) {
        const snap_journal_disk *d = &j->disks[i];
        if (d->overlay_created)
            snap_log(ctx->lg, XTL_WARN, "left in place: disk %s overlay %s", d->vdev,
                     d->overlay_created);
        if (d->lvm_created)
            snap_log(ctx->lg, XTL_WARN, "left in place: disk %s LVM snapshot volume %s",
                     d->vdev, d->lvm_created);
        if (d->internal_created)
            snap_log(ctx->lg, XTL_WARN,
                     "left in place: disk %s internal snapshot '%s' in %s", d->vdev,
                     d->internal_created, d->image);
    }
}

/* Refuses a journal that a live xlsnap (or its freeze watchdog) still owns. */
static int check_discardable(snap_ctx *ctx, snap_session *s, snap_err *err)
{
    snap_journal j;
    bool found = false;
    snap_err lerr;
    int rc = snap_journal_load(&s->st, &j, &found, &lerr);
    if (rc) {
        snap_log(ctx->lg, XTL_NOTICE, "domain %s: unreadable journal: %s",
                 s->dom.ref.name, lerr.msg);
        return 0;
    }
    if (!found)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "domain %s has no journal to discard", s->dom.ref.name);
    if (snap_journal_owner_alive(&j))
        rc = snap_err_set(err, SNAP_ERROR_BUSY,
                          "domain %s: xlsnap pid %d is still working on snapshot '%s'; "
                          "not discarding its journal",
                          s->dom.ref.name, (int)j.owner_pid, j.snapshot);
    else if (snap_journal_watchdog_alive(&j))
        rc = snap_err_set(err, SNAP_ERROR_BUSY,
                          "domain %s: the freeze watchdog pid %d is still running (it "
                          "thaws the guest); try again in a few seconds",
                          s->dom.ref.name, (int)j.watchdog_pid);
    else {
        snap_log(ctx->lg, XTL_NOTICE,
                 "domain %s: discarding the journal of the interrupted %s of '%s' (%s) "
                 "without recovering it",
                 s->dom.ref.name, snap_journal_op_name(j.op), j.snapshot,
                 snap_journal_phase_name(j.phase));
        name_leftovers(ctx, &j);
    }
    snap_journal_dispose(&j);
    return rc;
}

/*
 * The dead operation may have frozen the guest's filesystems: a running
 * domain's own agent is asked (guest-fsfreeze-status) and thawed when
 * needed. A paused domain stays paused (its agent cannot answer): said so.
 */
static void leave_unfrozen(snap_ctx *ctx, snap_session *s)
{
    const char *name = s->dom.ref.name;
    snap_err aerr;
    if (!s->dom.agent_path)
        snap_log(ctx->lg, XTL_INFO, "domain %s has no guest agent: nothing can be frozen",
                 name);
    else if (s->dom.ref.state == SNAP_DOMAIN_RUNNING &&
             snap_quiesce_recover(ctx, s->dom.agent_path, &aerr) != 0)
        snap_log(ctx->lg, XTL_WARN,
                 "domain %s: could not check its filesystems for a freeze (%s); if the "
                 "guest is frozen, thaw it with guest-fsfreeze-thaw",
                 name, aerr.msg);
    else if (s->dom.ref.state == SNAP_DOMAIN_PAUSED)
        snap_log(ctx->lg, XTL_WARN,
                 "domain %s is paused and stays paused; if the interrupted operation "
                 "froze its filesystems, unpause it (xl unpause %s) and thaw them "
                 "(guest-fsfreeze-thaw)",
                 name, name);
}

int snap_discard_journal(snap_ctx *ctx, const char *domain, char **moved_to)
{
    snap_session s;
    snap_err *err = &ctx->err;
    char *aside = NULL;
    snap_err_clear(err);
    if (moved_to)
        *moved_to = NULL;
    int rc = snap_session_open(ctx, domain, SNAP_SESSION_KEEP_JOURNAL, &s, err);
    if (!rc)
        rc = check_discardable(ctx, &s, err);
    if (!rc) {
        leave_unfrozen(ctx, &s);
        rc = snap_journal_move_aside(&s.st, &aside, err);
    }
    if (!rc)
        snap_log(ctx->lg, XTL_NOTICE, "domain %s: journal moved aside to %s",
                 s.dom.ref.name, aside);
    if (!rc && moved_to)
        *moved_to = aside;
    else
        free(aside);
    snap_session_close(&s);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}
