/*
 * Group reverts and deletes, journaled (snap_group_pending.h): the journal
 * (snap_group_store.c) is written before the first member changes and
 * marks each member done; a dead xlsnap's journal is rolled forward (the
 * members not done, with the same parameters) by the next command on any
 * member (snap_ops.c) or on the group (snap_group.c), under the groups
 * lock and before any domain lock. A member's own journal, left by the
 * same death, is recovered by its session first (snap_recover.c), then its
 * revert or delete runs again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_domain.h"
#include "snap_group_pending.h"
#include "snap_lock.h"
#include "snap_ops.h"

static int revert_one(snap_ctx *ctx, const snap_group_op *op,
                      const snap_group_op_member *m)
{
    snap_revert_params p;
    snap_revert_params_init(&p);
    p.force = op->force;
    p.state = op->state;
    p.progress = op->progress;
    p.progress_opaque = op->progress_opaque;
    return snap_revert_domain(ctx, m->domain_uuid, m->snapshot, &p, NULL);
}

/* A member snapshot gone already (deleted before the journal said so) is done. */
static int delete_one(snap_ctx *ctx, const snap_group_op *op,
                      const snap_group_op_member *m)
{
    snap_info *info = NULL;
    int rc = snap_info_get(ctx, m->domain_uuid, m->snapshot, &info);
    snap_info_free(info);
    if (rc == SNAP_ERROR_NOTFOUND)
        return 0;
    snap_delete_params p;
    snap_delete_params_init(&p);
    p.metadata_only = op->metadata_only;
    return snap_delete_domain(ctx, m->domain_uuid, m->snapshot, &p, NULL);
}

/* err for member m's failure (ctx->err), and the journal dropped. */
static int member_failed(snap_ctx *ctx, snap_meta_store *gst, const snap_group_op *op,
                         const snap_group_op_member *m, snap_err *err)
{
    const char *verb = op->kind == SNAP_GROUP_OP_DELETE ? "deleted" : "reverted";
    char *done = snap_group_op_members(op, true),
         *left = snap_group_op_members(op, false);
    snap_err rerr;
    int rc =
        snap_err_set(err, ctx->err.code ? ctx->err.code : SNAP_ERROR_IO,
                     "group %s: domain %s: %s; %s already: %s; not %s: %s", op->group,
                     m->domain_name, snap_ctx_errmsg(ctx), verb, done, verb, left);
    if (snap_group_op_remove(gst, op->group, &rerr) != 0)
        snap_err_append(err, "; and then %s", rerr.msg);
    free(done);
    free(left);
    return rc;
}

/*
 * Test hook, for tests/guest/test_group.c and check-xen's groups scenario:
 * XLSNAP_TEST_PAUSE_AFTER_GROUP_MEMBER=<ms> pauses once the first member
 * of a group revert or delete is done and journaled, so that a test can
 * kill xlsnap there.
 */
static void after_member(const snap_group_op *op)
{
    size_t done = 0;
    for (size_t i = 0; i < op->n_members; i++)
        done += op->members[i].done;
    if (done == 1)
        snap_test_hook_pause("XLSNAP_TEST_PAUSE_AFTER_GROUP_MEMBER", "first member done");
}

int snap_group_op_run(snap_ctx *ctx, snap_meta_store *gst, snap_group_op *op,
                      snap_err *err)
{
    op->owner_pid = (int)getpid();
    int rc = snap_group_op_save(gst, op, err);
    for (size_t i = 0; i < op->n_members && !rc; i++) {
        snap_group_op_member *m = &op->members[i];
        if (m->done)
            continue;
        snap_log(ctx->lg, XTL_INFO, "group %s: %s of domain %s", op->group,
                 snap_group_op_kind_name(op->kind), m->domain_name);
        if ((op->kind == SNAP_GROUP_OP_DELETE ? delete_one(ctx, op, m)
                                              : revert_one(ctx, op, m)) != 0)
            return member_failed(ctx, gst, op, m, err);
        m->done = true;
        rc = snap_group_op_save(gst, op, err);
        if (!rc)
            after_member(op);
    }
    if (!rc && op->kind == SNAP_GROUP_OP_DELETE)
        rc = snap_group_record_remove(gst, op->group, err);
    if (!rc)
        rc = snap_group_op_remove(gst, op->group, err);
    return rc;
}

/* Rolls group's journaled operation forward (gst locked). */
static int finish_one(snap_ctx *ctx, snap_meta_store *gst, const char *group, bool *found,
                      snap_group_op_kind *kind, snap_err *err)
{
    snap_group_op *op = NULL;
    *found = false;
    int rc = snap_group_op_load(gst, group, &op, err);
    if (rc == SNAP_ERROR_NOTFOUND) {
        snap_err_clear(err);
        return 0;
    }
    if (rc)
        return snap_err_context(err, "the interrupted operation of group '%s'", group);
    *found = true;
    *kind = op->kind;
    char *done = snap_group_op_members(op, true);
    snap_log(ctx->lg, XTL_NOTICE,
             "group %s: finishing the interrupted group %s (xlsnap pid %d died; done "
             "already: %s)",
             group, snap_group_op_kind_name(op->kind), op->owner_pid, done);
    free(done);
    rc = snap_group_op_run(ctx, gst, op, err);
    snap_group_op_free(op);
    return rc ? snap_err_context(err, "finishing the interrupted group %s of '%s'",
                                 snap_group_op_kind_name(*kind), group)
              : 0;
}

int snap_group_finish_group_locked(snap_ctx *ctx, snap_meta_store *gst, const char *group,
                                   bool *found, snap_group_op_kind *kind, snap_err *err)
{
    return finish_one(ctx, gst, group, found, kind, err);
}

/* The domain's name and UUID (the qualifier itself when it cannot be found). */
static void identify(snap_ctx *ctx, const char *domain, snap_domain_ref *ref)
{
    snap_err ignore;
    memset(ref, 0, sizeof *ref);
    if (snap_domain_lookup(ctx, domain, SNAP_LOOKUP_IDENTIFY, ref, &ignore) == 0)
        return;
    snprintf(ref->name, sizeof ref->name, "%s", domain);
    snprintf(ref->uuid, sizeof ref->uuid, "%s", domain);
}

int snap_group_finish_for_domain_locked(snap_ctx *ctx, snap_meta_store *gst,
                                        const char *domain, snap_err *err)
{
    char **names = NULL;
    size_t n = 0;
    snap_domain_ref ref;
    int rc = snap_group_op_names(gst, &names, &n, err);
    if (!rc && n)
        identify(ctx, domain, &ref);
    for (size_t i = 0; i < n && !rc; i++) {
        snap_group_op *op = NULL;
        snap_err ignore; /* unreadable: the group's own commands report it */
        if (snap_group_op_load(gst, names[i], &op, &ignore) != 0)
            continue;
        bool ours = snap_group_op_names_domain(op, ref.name, ref.uuid);
        snap_group_op_free(op);
        bool found = false;
        snap_group_op_kind kind;
        if (ours)
            rc = finish_one(ctx, gst, names[i], &found, &kind, err);
    }
    snap_strv_free(names, n);
    return rc;
}

/* Whether any group operation is journaled at all (cheap: one directory read). */
static bool any_pending(const char *statedir)
{
    snap_meta_store gst;
    snap_err ignore;
    char **names = NULL;
    size_t n = 0;
    if (snap_meta_store_open_groups(&gst, statedir, false, &ignore) != 0)
        return false;
    snap_group_op_names(&gst, &names, &n, &ignore);
    snap_strv_free(names, n);
    snap_meta_store_close(&gst);
    return n > 0;
}

int snap_group_finish_for_domain(snap_ctx *ctx, const char *domain, snap_err *err)
{
    snap_meta_store gst;
    snap_lock lock;
    if (!any_pending(ctx->statedir))
        return 0;
    int rc = snap_meta_store_open_groups(&gst, ctx->statedir, false, err);
    if (rc)
        return rc;
    rc = snap_lock_acquire(&gst, &lock, SNAP_LOCK_TIMEOUT_MS, err);
    if (!rc) {
        rc = snap_group_finish_for_domain_locked(ctx, &gst, domain, err);
        snap_lock_release(&lock);
    }
    snap_meta_store_close(&gst);
    return rc;
}
