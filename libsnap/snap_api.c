/*
 * Public entry points. Each clears the context's error, runs the operation
 * and leaves a message on failure.
 * TEMPORARY: the operations arrive with the orchestrator (issue 5/6); until
 * then they report "not supported".
 */
#include "snap_internal.h"

static int not_yet(snap_ctx *ctx, const char *what)
{
    snap_err_set(&ctx->err, SNAP_ERROR_UNSUPPORTED, "%s is not implemented yet", what);
    return SNAP_ERROR_UNSUPPORTED;
}

int snap_create(snap_ctx *ctx, const char *domain, const snap_create_params *params,
                snap_info **info_out, char **plan_out)
{
    (void)domain, (void)params, (void)info_out, (void)plan_out;
    return not_yet(ctx, "snapshot-create");
}

int snap_list(snap_ctx *ctx, const char *domain, snap_info ***list_out, size_t *n_out)
{
    (void)domain, (void)list_out, (void)n_out;
    return not_yet(ctx, "snapshot-list");
}

int snap_info_get(snap_ctx *ctx, const char *domain, const char *name,
                  snap_info **info_out)
{
    (void)domain, (void)name, (void)info_out;
    return not_yet(ctx, "snapshot-info");
}

int snap_revert(snap_ctx *ctx, const char *domain, const char *name,
                const snap_revert_params *params)
{
    (void)domain, (void)name, (void)params;
    return not_yet(ctx, "snapshot-revert");
}

int snap_delete(snap_ctx *ctx, const char *domain, const char *name,
                const snap_delete_params *params)
{
    (void)domain, (void)name, (void)params;
    return not_yet(ctx, "snapshot-delete");
}
