/*
 * The platform on xlsim's simulated dom0 (no hypervisor): domains are found
 * in xenstore and paused through their QEMU's QMP.
 * TEMPORARY skeleton until the xenstore and QMP rooms land.
 */
#include "snap_internal.h"

static int sim_lookup(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                      snap_err *err)
{
    (void)ctx, (void)dom;
    return snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "%s: lookup not implemented yet",
                        qualifier);
}

static int sim_pause(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    (void)ctx;
    return snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "%s: pause not implemented yet",
                        dom->name);
}

const snap_platform_ops snap_platform_sim = {
    .name = "sim",
    .lookup = sim_lookup,
    .pause = sim_pause,
    .unpause = sim_pause,
};
