/*
 * Switching disks to other images in the toolstack's view: xenstore backend
 * params (one transaction, all disks or none) and the stored libxl config
 * (under libxl's userdata lock). Used by create (to overlays), by rollback
 * (back to the old images) and by revert (to new overlays).
 */
#include <stdlib.h>

#include "snap_domcfg.h"
#include "snap_lock.h"
#include "snap_switch.h"
#include "snap_xs.h"

int snap_switch_disks(snap_ctx *ctx, const snap_domain_ref *ref,
                      const snap_disk_switch *sw, size_t n, snap_err *err)
{
    if (n == 0)
        return 0;
    snap_xs_params_change *xc = snap_xcalloc(n, sizeof *xc);
    snap_domcfg_disk_change *dc = snap_xcalloc(n, sizeof *dc);
    for (size_t i = 0; i < n; i++) {
        xc[i] = (snap_xs_params_change){sw[i].vdev, sw[i].format, sw[i].path};
        dc[i] = (snap_domcfg_disk_change){sw[i].vdev, sw[i].path, sw[i].format};
    }
    snap_xs *xs;
    int rc = snap_xs_open(&xs, err);
    if (!rc) {
        rc = snap_xs_disks_set_params(xs, ref->domid, xc, n, err);
        snap_xs_close(xs);
    }
    if (!rc)
        rc = snap_domcfg_set_disks(ctx->xen_statedir, ref->domid, ref->uuid, dc, n,
                                   SNAP_LOCK_TIMEOUT_MS, err);
    free(xc);
    free(dc);
    return rc ? snap_err_context(err, "domain %s", ref->name) : 0;
}
