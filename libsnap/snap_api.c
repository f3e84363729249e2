/*
 * snapshot-revert and snapshot-delete: not implemented yet (issue 6); they
 * say so clearly instead of pretending.
 */
#include "snap_internal.h"

static int not_yet(snap_ctx *ctx, const char *what)
{
    snap_err_set(&ctx->err, SNAP_ERROR_UNSUPPORTED,
                 "%s is not available yet in this version of xlsnap", what);
    return SNAP_ERROR_UNSUPPORTED;
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
