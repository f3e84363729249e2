#include "snap_revert.h"

int snap_recover_delete(snap_ctx *ctx, snap_session *s, const snap_journal *j,
                        snap_err *err)
{
    (void)ctx, (void)s, (void)j;
    return snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "not yet");
}

int snap_delete(snap_ctx *ctx, const char *domain, const char *name,
                const snap_delete_params *params)
{
    (void)domain, (void)name, (void)params;
    snap_err_set(&ctx->err, SNAP_ERROR_UNSUPPORTED, "snapshot-delete: not yet");
    return SNAP_ERROR_UNSUPPORTED;
}
