/*
 * The public entry points of the single-domain operations: a group revert
 * or delete a dead xlsnap left journaled that names the domain is finished
 * first (snap_group_pending.c, under the groups lock, before the domain
 * lock the operation then takes), then the operation runs (snap_ops.h).
 * Dry runs change nothing: they only note it.
 */
#include <stdlib.h>

#include "snap_group_pending.h"
#include "snap_internal.h"
#include "snap_ops.h"

/* Finishes the group operations naming domain; 0 or ctx's error. */
static int finish_groups_first(snap_ctx *ctx, const char *domain, bool dry_run)
{
    snap_err *err = &ctx->err;
    snap_err_clear(err);
    if (dry_run) {
        snap_group_note_pending(ctx->lg, ctx->statedir, domain, domain);
        return 0;
    }
    snap_err gerr;
    snap_err_clear(&gerr);
    int rc = snap_group_finish_for_domain(ctx, domain, &gerr);
    if (rc) {
        snap_err_set(err, rc, "domain %s: %s; nothing else was done", domain, gerr.msg);
        return snap_ctx_fail(ctx, err);
    }
    snap_err_clear(err);
    return 0;
}

int snap_create(snap_ctx *ctx, const char *domain, const snap_create_params *p,
                snap_info **info_out, char **plan_out)
{
    if (info_out)
        *info_out = NULL;
    if (plan_out)
        *plan_out = NULL;
    int rc = finish_groups_first(ctx, domain, p->dry_run);
    return rc ? rc : snap_create_domain(ctx, domain, p, info_out, plan_out);
}

int snap_revert(snap_ctx *ctx, const char *domain, const char *name,
                const snap_revert_params *p, char **plan_out)
{
    if (plan_out)
        *plan_out = NULL;
    int rc = finish_groups_first(ctx, domain, p->dry_run);
    return rc ? rc : snap_revert_domain(ctx, domain, name, p, plan_out);
}

int snap_delete(snap_ctx *ctx, const char *domain, const char *name,
                const snap_delete_params *p, char **plan_out)
{
    if (plan_out)
        *plan_out = NULL;
    int rc = finish_groups_first(ctx, domain, p->dry_run);
    return rc ? rc : snap_delete_domain(ctx, domain, name, p, plan_out);
}
