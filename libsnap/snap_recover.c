/*
 * Journal recovery: what a dead xlsnap left journaled is finished or undone
 * before any other operation on the domain (snap_session.c calls it once
 * the domain lock is held). A guest left frozen is thawed first; then a
 * create is rolled back and a revert rolled back or finished
 * (snap_rollback.c), a delete finished (its steps: snap_delete_steps.c).
 */
#include <stdlib.h>
#include <unistd.h>

#include "snap_delete_steps.h"
#include "snap_group_store.h"
#include "snap_meta_io.h"
#include "snap_quiesce.h"
#include "snap_recover.h"
#include "snap_rollback.h"

/* Waits for a watchdog still busy thawing, then makes sure the guest is thawed. */
static int recover_freeze(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                          snap_err *err)
{
    if (j->phase != SNAP_PHASE_FROZEN || !s->dom.agent_path ||
        s->dom.ref.state != SNAP_DOMAIN_RUNNING)
        return 0;
    for (int waited = 0; snap_journal_watchdog_alive(j) && waited < 30000; waited += 100)
        usleep(100000);
    return snap_quiesce_recover(ctx, s->dom.agent_path, err);
}

/* Ends err's message with how to move an unusable journal aside; returns rc. */
static int discard_hint(snap_err *err, int rc, const char *domain)
{
    char *msg = snap_xstrdup(err->msg);
    snap_err_set(err, rc,
                 "%s; if no xlsnap is working on domain %s, move the journal aside "
                 "with snapshot-delete --discard-journal %s",
                 msg, domain, domain);
    free(msg);
    return rc;
}

/*
 * A merge that began changed the base: the snapshot's record no longer
 * describes it, so the only consistent end is the delete finished (every
 * step re-runs: a commit job QEMU still holds is completed, a merged
 * overlay is skipped).
 */
static int recover_merge(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                         snap_err *err)
{
    snap_meta m;
    snap_journal jj;
    int rc = snap_meta_load(&s->st, j->snapshot, &m, err);
    if (rc)
        return rc == SNAP_ERROR_NOTFOUND ? (snap_err_clear(err), 0) : rc;
    snap_log(ctx->lg, XTL_NOTICE, "finishing the interrupted merge of '%s'", j->snapshot);
    char *text = snap_journal_to_json(j);
    rc = snap_journal_from_json(&jj, text, "journal", err);
    free(text);
    if (!rc) {
        rc = snap_delete_storage(ctx, s, &m, &jj, err);
        snap_journal_dispose(&jj);
    }
    if (!rc)
        rc = snap_delete_metadata(ctx, s, &m, err);
    snap_meta_dispose(&m);
    return rc ? snap_err_context(err, "finishing the deletion of '%s'", j->snapshot) : 0;
}

/*
 * Finishes a delete a dead xlsnap left journaled: every step of a delete is
 * re-runnable, so recovery completes the metadata side (children
 * reparented, record removed) once the storage step is done, and else just
 * drops the journal (storage untouched or merged idempotently).
 */
static int recover_delete(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                          snap_err *err)
{
    snap_meta m;
    int rc = 0;
    bool merging = false;
    for (size_t i = 0; i < j->n_disks; i++)
        merging = merging || j->disks[i].merging;
    if (j->phase < SNAP_PHASE_DISKS_DONE && merging) {
        rc = recover_merge(ctx, s, j, err);
        return rc ? rc : snap_journal_finish(&s->st, err);
    }
    if (j->phase >= SNAP_PHASE_DISKS_DONE &&
        snap_meta_load(&s->st, j->snapshot, &m, err) == 0) {
        snap_log(ctx->lg, XTL_NOTICE, "finishing the deletion of '%s'", j->snapshot);
        rc = snap_delete_metadata(ctx, s, &m, err);
        snap_meta_dispose(&m);
    } else {
        snap_log(ctx->lg, XTL_NOTICE,
                 "the deletion of '%s' stopped before its storage was done; its record "
                 "stays, run snapshot-delete again",
                 j->snapshot);
    }
    snap_err_clear(err);
    return rc ? rc : snap_journal_finish(&s->st, err);
}

/*
 * A member of a consistency group is kept only once the group record (the
 * group's commit point, snap_group.c) names it: a member recorded before
 * its group was written is rolled back, as every other member is.
 */
static bool uncommitted_member(snap_ctx *ctx, snap_session *s, const snap_journal *j)
{
    if (j->op != SNAP_JOURNAL_CREATE || !j->group)
        return false;
    bool committed = snap_group_record_has_member(ctx->statedir, j->group, s->dom.ref.uuid);
    if (!committed)
        snap_log(ctx->lg, XTL_NOTICE,
                 "domain %s: group '%s' was never recorded: rolling back its member '%s'",
                 s->dom.ref.name, j->group, j->snapshot);
    return !committed;
}

int snap_recover_journal(snap_ctx *ctx, snap_session *s, bool *recovered, snap_err *err)
{
    snap_journal j;
    bool found = false;
    *recovered = false;
    int rc = snap_journal_load(&s->st, &j, &found, err);
    if (rc)
        return discard_hint(err, rc, s->dom.ref.name);
    if (!found)
        return 0;
    if (snap_journal_owner_alive(&j)) {
        rc = snap_err_set(err, SNAP_ERROR_BUSY,
                          "domain %s: xlsnap pid %d is still working on snapshot '%s'",
                          s->dom.ref.name, (int)j.owner_pid, j.snapshot);
        snap_journal_dispose(&j);
        return rc;
    }
    snap_log(ctx->lg, XTL_NOTICE, "domain %s: recovering the interrupted %s of '%s' (%s)",
             s->dom.ref.name, snap_journal_op_name(j.op), j.snapshot,
             snap_journal_phase_name(j.phase));
    *recovered = true;
    rc = recover_freeze(ctx, s, &j, err);
    if (!rc && j.phase == SNAP_PHASE_METADATA_DONE && uncommitted_member(ctx, s, &j))
        rc = snap_rollback_create(ctx, s, &j, err);
    else if (!rc && j.phase == SNAP_PHASE_METADATA_DONE)
        rc = snap_journal_finish(&s->st, err);
    else if (!rc && j.op == SNAP_JOURNAL_CREATE)
        rc = snap_rollback_create(ctx, s, &j, err);
    else if (!rc && j.op == SNAP_JOURNAL_REVERT)
        rc = snap_rollback_revert(ctx, s, &j, err);
    else if (!rc && j.op == SNAP_JOURNAL_DELETE)
        rc = recover_delete(ctx, s, &j, err);
    else if (!rc)
        rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                          "domain %s: cannot recover an interrupted %s yet; see %s",
                          s->dom.ref.name, snap_journal_op_name(j.op), s->st.dir);
    snap_journal_dispose(&j);
    return rc ? snap_err_context(err, "recovery") : 0;
}
