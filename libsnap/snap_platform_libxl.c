/*
 * The platform on a real Xen dom0: libxl does what needs the hypervisor.
 * A libxl context is opened per call: xlsnap commands are short-lived, and a
 * long-held context would keep libxl's event machinery (and its SIGCHLD
 * handling) alive inside the caller's process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>
#include <libxl_utils.h>

#include "snap_internal.h"

static int libxl_open(snap_ctx *ctx, libxl_ctx **lctx, snap_err *err)
{
    int rc = libxl_ctx_alloc(lctx, LIBXL_VERSION, 0, ctx->lg);
    if (rc)
        return snap_err_set(
            err, SNAP_ERROR_FAIL,
            "cannot open libxl (rc=%d): is this a Xen dom0 with xenstored "
            "running? (XLSNAP_PLATFORM=sim selects the simulated dom0)",
            rc);
    return 0;
}

static int libxl_lookup(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                        snap_err *err)
{
    libxl_ctx *lctx;
    libxl_dominfo info;
    uint32_t domid;
    int rc = libxl_open(ctx, &lctx, err);
    if (rc)
        return rc;
    libxl_dominfo_init(&info);
    if (libxl_domain_qualifier_to_domid(lctx, qualifier, &domid)) {
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "%s is an invalid domain identifier",
                          qualifier);
        goto out;
    }
    int lrc = libxl_domain_info(lctx, &info, domid);
    if (lrc) {
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                          "domain %s (domid %u): no info (rc=%d)", qualifier, domid, lrc);
        goto out;
    }
    char *name = libxl_domid_to_name(lctx, domid);
    memset(dom, 0, sizeof *dom);
    dom->domid = domid;
    snprintf(dom->name, sizeof dom->name, "%s", name ? name : qualifier);
    free(name);
    snprintf(dom->uuid, sizeof dom->uuid, LIBXL_UUID_FMT, LIBXL_UUID_BYTES(info.uuid));
    dom->state = info.paused ? SNAP_DOMAIN_PAUSED : SNAP_DOMAIN_RUNNING;
    if (info.shutdown || info.dying)
        dom->state = SNAP_DOMAIN_SHUTOFF;
out:
    libxl_dominfo_dispose(&info);
    libxl_ctx_free(lctx);
    return rc;
}

static int libxl_set_paused(snap_ctx *ctx, const snap_domain_ref *dom, bool pause,
                            snap_err *err)
{
    libxl_ctx *lctx;
    int rc = libxl_open(ctx, &lctx, err);
    if (rc)
        return rc;
    int lrc = pause ? libxl_domain_pause(lctx, dom->domid, NULL)
                    : libxl_domain_unpause(lctx, dom->domid, NULL);
    libxl_ctx_free(lctx);
    if (lrc)
        return snap_err_set(err, SNAP_ERROR_FAIL,
                            "libxl_domain_%s of domain %s failed (rc=%d)",
                            pause ? "pause" : "unpause", dom->name, lrc);
    return 0;
}

static int libxl_pause(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    return libxl_set_paused(ctx, dom, true, err);
}

static int libxl_unpause(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    return libxl_set_paused(ctx, dom, false, err);
}

const snap_platform_ops snap_platform_libxl = {
    .name = "libxl",
    .lookup = libxl_lookup,
    .pause = libxl_pause,
    .unpause = libxl_unpause,
};
