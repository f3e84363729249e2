/*
 * The platform on xlsim's simulated dom0 (no hypervisor): domains are found
 * in xenstore exactly where libxl registers them, and their "vCPUs" are the
 * device-model QEMU's, paused and resumed through QMP stop/cont.
 * A domain whose QEMU is gone (device-model-pid dead or absent) is shut off:
 * its images are released and may be handled offline with qemu-img.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_internal.h"
#include "snap_meta_store.h"
#include "snap_qmp.h"
#include "snap_xs.h"

#define SIM_QMP_TIMEOUT_MS 5000

/* Domain ids are decimal numbers; anything else is a name (as in libxl). */
static bool parse_domid(const char *s, uint32_t *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > 0x7FEF) /* DOMID_FIRST_RESERVED */
        return false;
    *out = (uint32_t)v;
    return true;
}

/* The device model is alive when its recorded pid exists. */
static bool sim_dm_alive(snap_xs *xs, uint32_t domid)
{
    char path[96], *pid_s = NULL;
    snap_err ignore;
    snprintf(path, sizeof path, "/local/domain/%u/image/device-model-pid", domid);
    if (snap_xs_read_opt(xs, XBT_NULL, path, &pid_s, &ignore) || !pid_s)
        return false;
    long pid = strtol(pid_s, NULL, 10);
    free(pid_s);
    /* Not kill(pid, 0): an exited but unreaped QEMU is a zombie, and gone. */
    return pid > 0 && snap_proc_alive((pid_t)pid, 0);
}

static int sim_query_state(snap_ctx *ctx, snap_domain_ref *dom, snap_err *err)
{
    snap_qmp *qmp;
    snap_qmp_status st;
    char *path = snap_qmp_socket_path(ctx, dom->domid);
    int rc = snap_qmp_connect(path, SIM_QMP_TIMEOUT_MS, &qmp, err);
    free(path);
    if (rc)
        return snap_err_context(err, "domain %s: device model", dom->name);
    rc = snap_qmp_query_status(qmp, &st, SIM_QMP_TIMEOUT_MS, err);
    snap_qmp_close(qmp);
    if (rc)
        return snap_err_context(err, "domain %s", dom->name);
    dom->state = st.running ? SNAP_DOMAIN_RUNNING : SNAP_DOMAIN_PAUSED;
    return 0;
}

static int sim_lookup(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                      snap_err *err)
{
    snap_xs *xs;
    uint32_t domid;
    char *name = NULL, *uuid = NULL;
    int rc = snap_xs_open(&xs, err);
    if (rc)
        return rc;
    memset(dom, 0, sizeof *dom);
    if (!parse_domid(qualifier, &domid)) {
        rc = snap_xs_domid_by_name(xs, qualifier, &domid, err);
        if (rc) {
            rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                              "%s is an invalid domain identifier", qualifier);
            goto out;
        }
    }
    if (snap_xs_domain_name(xs, domid, &name, err)) {
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "%s is an invalid domain identifier",
                          qualifier);
        goto out;
    }
    rc = snap_xs_domain_uuid(xs, domid, &uuid, err);
    if (rc)
        goto out;
    dom->domid = domid;
    snprintf(dom->name, sizeof dom->name, "%s", name);
    snprintf(dom->uuid, sizeof dom->uuid, "%s", uuid);
    dom->state = SNAP_DOMAIN_SHUTOFF;
    if (sim_dm_alive(xs, domid))
        rc = sim_query_state(ctx, dom, err);
out:
    free(name);
    free(uuid);
    snap_xs_close(xs);
    return rc;
}

static int sim_set_paused(snap_ctx *ctx, const snap_domain_ref *dom, bool pause,
                          snap_err *err)
{
    snap_qmp *qmp;
    char *path = snap_qmp_socket_path(ctx, dom->domid);
    int rc = snap_qmp_connect(path, SIM_QMP_TIMEOUT_MS, &qmp, err);
    free(path);
    if (!rc) {
        rc = pause ? snap_qmp_stop(qmp, SIM_QMP_TIMEOUT_MS, err)
                   : snap_qmp_cont(qmp, SIM_QMP_TIMEOUT_MS, err);
        snap_qmp_close(qmp);
    }
    if (rc)
        snap_err_context(err, "%s domain %s", pause ? "pause" : "unpause", dom->name);
    return rc;
}

static int sim_pause(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    return sim_set_paused(ctx, dom, true, err);
}

static int sim_unpause(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    return sim_set_paused(ctx, dom, false, err);
}

const snap_platform_ops snap_platform_sim = {
    .name = "sim",
    .lookup = sim_lookup,
    .pause = sim_pause,
    .unpause = sim_unpause,
};
