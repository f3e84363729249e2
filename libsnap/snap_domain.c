/*
 * Resolving a domain: the platform names it, xenstore lists its disks as
 * libxl does, the stored libxl config gives its agent channel, and its
 * device model's QMP says which disks QEMU serves and through which node.
 * Everything a plan needs is gathered here, before anything is touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "snap_domain.h"
#include "snap_domcfg.h"
#include "snap_json.h"
#include "snap_xs.h"

static void vdisk_dispose(snap_vdisk *d)
{
    free(d->node_name);
    free(d->root_image);
    snap_strv_free(d->node_names, d->n_node_names);
    snap_strv_free(d->snapshots, d->n_snapshots);
    snap_lv_dispose(d->lv);
    free(d->lv);
    free(d->lv_error);
}

void snap_domain_dispose(snap_domain *dom)
{
    for (size_t i = 0; i < dom->n_disks; i++)
        vdisk_dispose(&dom->disks[i]);
    snap_xs_disks_free(dom->xs_disks, dom->n_disks);
    free(dom->disks);
    free(dom->qmp_path);
    free(dom->kept_dm_socket);
    free(dom->agent_path);
    free(dom->config);
    memset(dom, 0, sizeof *dom);
}

snap_vdisk *snap_domain_find_disk(snap_domain *dom, const char *vdev)
{
    for (size_t i = 0; i < dom->n_disks; i++)
        if (!strcmp(dom->disks[i].xs->vdev, vdev))
            return &dom->disks[i];
    return NULL;
}

/* The agent channel's socket path from the stored config, NULL when none. */
static char *agent_path_from_config(const char *config, snap_err *err)
{
    yajl_val root = snap_json_parse(config, "stored domain config", err);
    if (!root)
        return NULL;
    char *path = NULL;
    yajl_val channels = snap_json_get_array(root, "channels");
    for (size_t i = 0; i < snap_json_array_len(channels) && !path; i++) {
        yajl_val ch = snap_json_array_at(channels, i);
        const char *name = snap_json_get_string(ch, "name");
        const char *p =
            snap_json_get_string(snap_json_get_object(ch, "connection.socket"), "path");
        if (name && p && !strcmp(name, SNAP_AGENT_CHANNEL))
            path = snap_xstrdup(p);
    }
    yajl_tree_free(root);
    return path;
}

bool snap_domain_kept_shutdown(const snap_ctx *ctx, const snap_domain_ref *ref)
{
    return ref->state == SNAP_DOMAIN_SHUTOFF && !ctx->ops->keeps_stopped_domain;
}

char *snap_domain_agent_path(snap_ctx *ctx, const snap_domain_ref *ref)
{
    char *config = NULL;
    size_t len = 0;
    snap_err ignore;
    if (snap_domcfg_read(ctx->xen_statedir, ref->domid, ref->uuid, &config, &len,
                         &ignore))
        return NULL;
    char *path = agent_path_from_config(config, &ignore);
    free(config);
    return path;
}

/* Fills the QMP view of d from the device model's disk model. */
static void vdisk_attach_qmp(snap_vdisk *d, const snap_qmp_disk *q)
{
    d->served = true;
    d->node_name = snap_xstrdup(snap_qmp_disk_target(q));
    d->chain_len = q->chain_len;
    /* A "json:{...}" file name says nothing about the image's name. */
    if (q->chain_len && q->chain[q->chain_len - 1].file[0] == '/')
        d->root_image = snap_xstrdup(q->chain[q->chain_len - 1].file);
    for (size_t i = 0; i < q->chain_len; i++)
        if (q->chain[i].node_name)
            d->node_names = snap_strv_add(d->node_names, &d->n_node_names,
                                          snap_xstrdup(q->chain[i].node_name));
    if (q->chain_len)
        for (size_t i = 0; i < q->chain[0].n_snapshots; i++)
            d->snapshots = snap_strv_add(d->snapshots, &d->n_snapshots,
                                         snap_xstrdup(q->chain[0].snapshots[i].name));
}

/* QEMU's block driver for a libxl disk format, as xen-block maps it. */
static const char *qemu_driver(const char *format)
{
    if (!format || !strcmp(format, "raw") || !strcmp(format, "empty"))
        return "raw";
    if (!strcmp(format, "vhd"))
        return "vpc";
    return format;
}

/*
 * The QMP disk serving d: the one whose active image is d's current image
 * (xenstore params follow external snapshots), else Xen's own node-name
 * "<vdev>-<driver>" for a disk QEMU opened before any snapshot.
 */
static const snap_qmp_disk *match_qmp_disk(const snap_qmp_disks *qd, const snap_vdisk *d)
{
    size_t depth;
    const snap_qmp_disk *q =
        d->xs->path ? snap_qmp_disks_find_file(qd, d->xs->path, &depth) : NULL;
    if (q && depth == 0)
        return q;
    char node[300];
    snprintf(node, sizeof node, "%s-%s", d->xs->vdev, qemu_driver(d->xs->format));
    return snap_qmp_disks_find(qd, node);
}

/*
 * Whether the device model cannot open host paths (dm_restrict): the
 * process libxl recorded, else the socket's peer (which is not QEMU when
 * libxl made the socket and passed it, as it does for dm_restrict).
 * Unknown: false (QEMU is given paths, as before).
 */
static bool dm_confined(snap_ctx *ctx, const snap_domain *dom, snap_qmp *qmp)
{
    bool confined = false;
    snap_err e;
    pid_t pid = snap_xs_dm_pid(dom->ref.domid);
    if (pid > 0 && snap_pid_confined(pid, &confined, &e) == 0)
        return confined;
    if (snap_qmp_peer_confined(qmp, &confined, &e) == 0)
        return confined;
    snap_log(ctx->lg, XTL_DEBUG, "domain %s: %s; taking its device model as unconfined",
             dom->ref.name, e.msg);
    return false;
}

int snap_domain_qmp_open(snap_ctx *ctx, const snap_domain *dom, snap_qmp **qmp,
                         snap_err *err)
{
    int rc = 0;
    if (ctx->ops->qmp_lock && !ctx->qmp_lock)
        rc = ctx->ops->qmp_lock(ctx, &dom->ref, SNAP_QMP_TIMEOUT_MS, &ctx->qmp_lock, err);
    if (!rc)
        rc = snap_qmp_connect(dom->qmp_path, SNAP_QMP_TIMEOUT_MS, qmp, err);
    if (!rc) {
        snap_qmp_set_logger(*qmp, ctx->lg);
        ctx->qmp_confined = dm_confined(ctx, dom, *qmp);
        return 0;
    }
    snap_domain_qmp_close(ctx, NULL);
    return snap_err_context(err, "domain %s: device model", dom->ref.name);
}

/*
 * A confined device model's fdsets that no node uses any more (a refused
 * transaction, a merge, a run that died) go on the way out (snap_fdpass.h).
 */
static void collect_fdsets(snap_ctx *ctx, snap_qmp *qmp)
{
    size_t removed = 0;
    snap_err e;
    if (!qmp || !ctx->qmp_confined)
        return;
    if (snap_qmp_fdsets_collect(qmp, SNAP_QMP_TIMEOUT_MS, &removed, &e) != 0)
        snap_log(ctx->lg, XTL_WARN, "removing unused fdsets: %s", e.msg);
    else if (removed)
        snap_log(ctx->lg, XTL_DEBUG, "removed %zu unused fdset(s)", removed);
}

void snap_domain_qmp_close(snap_ctx *ctx, snap_qmp *qmp)
{
    collect_fdsets(ctx, qmp);
    ctx->qmp_confined = false;
    snap_qmp_close(qmp);
    if (ctx->qmp_lock && ctx->ops->qmp_unlock)
        ctx->ops->qmp_unlock(ctx->qmp_lock);
    ctx->qmp_lock = NULL;
}

int snap_domain_qmp_disks(snap_ctx *ctx, const snap_domain *dom, snap_qmp **qmp,
                          snap_qmp_disks *qd, snap_err *err)
{
    *qmp = NULL;
    if (!dom->qmp_path)
        return 0;
    int rc = snap_domain_qmp_open(ctx, dom, qmp, err);
    return rc ? rc : snap_qmp_query_disks(*qmp, qd, SNAP_QMP_TIMEOUT_MS, err);
}

static int resolve_qmp(snap_ctx *ctx, snap_domain *dom, snap_err *err)
{
    snap_qmp *qmp;
    snap_qmp_disks qd = {0};
    int rc = snap_domain_qmp_open(ctx, dom, &qmp, err);
    if (!rc) {
        snap_qmp_status st;
        snap_err ignored;
        rc = snap_qmp_query_disks(qmp, &qd, SNAP_QMP_TIMEOUT_MS, err);
        dom->io_error_stop =
            !rc && !snap_qmp_query_status(qmp, &st, SNAP_QMP_TIMEOUT_MS, &ignored) &&
            !strcmp(st.status, "io-error");
        snap_domain_qmp_close(ctx, qmp);
    }
    if (rc)
        return snap_err_context(err, "domain %s: device model", dom->ref.name);
    for (size_t i = 0; i < dom->n_disks; i++) {
        const snap_qmp_disk *q = match_qmp_disk(&qd, &dom->disks[i]);
        if (q)
            vdisk_attach_qmp(&dom->disks[i], q);
    }
    snap_qmp_disks_free(&qd);
    return 0;
}

static int resolve_disks(snap_domain *dom, snap_err *err)
{
    snap_xs *xs;
    size_t n = 0;
    int rc = snap_xs_open(&xs, err);
    if (rc)
        return rc;
    rc = snap_xs_domain_disks(xs, dom->ref.domid, &dom->xs_disks, &n, err);
    snap_xs_close(xs);
    if (rc)
        return snap_err_context(err, "domain %s: disks", dom->ref.name);
    dom->disks = snap_xcalloc(n, sizeof *dom->disks);
    for (size_t i = 0; i < n; i++)
        dom->disks[i].xs = &dom->xs_disks[i];
    dom->n_disks = n;
    for (size_t i = 0; i < n; i++)
        if (!dom->disks[i].xs->backend_agrees)
            return snap_err_set(
                err, SNAP_ERROR_INVAL,
                "domain %s, disk %s: xenstore backend params disagree with "
                "libxl's copy; refusing to touch an inconsistent disk",
                dom->ref.name, dom->disks[i].xs->vdev);
    return 0;
}

/*
 * A phy: disk whose block device is an LVM logical volume (device-mapper's
 * uuid says so, without running anything) is asked about with lvs, once
 * it is known to be the device blkback opened (physical-device); a failure
 * there is kept for the plan, which refuses the disk only if it is to be
 * snapshotted.
 */
static void resolve_lv(snap_ctx *ctx, snap_vdisk *d)
{
    struct stat sb;
    if (strcmp(d->xs->backend_type, "phy") || !d->xs->path || stat(d->xs->path, &sb) ||
        !S_ISBLK(sb.st_mode) ||
        !snap_lvm_dev_is_lv(NULL, major(sb.st_rdev), minor(sb.st_rdev), NULL))
        return;
    snap_lvm_opts o = {.lg = ctx->lg};
    snap_lv lv;
    snap_err e;
    if (d->xs->physical_device &&
        snap_lvm_check_physical_device(d->xs->vdev, d->xs->path, major(sb.st_rdev),
                                       minor(sb.st_rdev), d->xs->physical_device, &e)) {
        d->lv_error = snap_xstrdup(e.msg);
        d->lv_refused = true;
    } else if (snap_lvm_lookup(&o, d->xs->path, &lv, &e) == 0) {
        d->lv = snap_xcalloc(1, sizeof *d->lv);
        *d->lv = lv;
    } else {
        d->lv_error = snap_xstrdup(e.msg);
    }
}

static bool needs_device_model(const snap_domain *dom)
{
    for (size_t i = 0; i < dom->n_disks; i++)
        if (strcmp(dom->disks[i].xs->backend_type, "phy"))
            return true;
    return false;
}

/* "0" (any number of zeros) or dom0's usual name: never looked up. */
static bool names_domain0(const char *qualifier)
{
    size_t zeros = strspn(qualifier, "0");
    return (zeros && !qualifier[zeros]) || !strcmp(qualifier, "Domain-0");
}

static int refuse_domain0(snap_err *err)
{
    return snap_err_set(err, SNAP_ERROR_INVAL,
                        "domain 0 is Xen's control domain (dom0) and cannot be "
                        "snapshotted; name a guest domain");
}

int snap_domain_lookup(snap_ctx *ctx, const char *qualifier, unsigned flags,
                       snap_domain_ref *ref, snap_err *err)
{
    memset(ref, 0, sizeof *ref);
    if (names_domain0(qualifier))
        return refuse_domain0(err);
    bool identify = (flags & SNAP_LOOKUP_IDENTIFY) && ctx->ops->identify;
    int rc = identify ? ctx->ops->identify(ctx, qualifier, ref, err)
                      : ctx->ops->lookup(ctx, qualifier, ref, err);
    if (!rc && ref->domid == 0) { /* dom0 under another name */
        memset(ref, 0, sizeof *ref);
        return refuse_domain0(err);
    }
    return rc;
}

int snap_domain_resolve(snap_ctx *ctx, const char *qualifier, snap_domain *dom,
                        snap_err *err)
{
    memset(dom, 0, sizeof *dom);
    int rc = snap_domain_lookup(ctx, qualifier, 0, &dom->ref, err);
    if (rc)
        return rc;
    rc = resolve_disks(dom, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < dom->n_disks; i++)
        resolve_lv(ctx, &dom->disks[i]);
    rc = snap_domcfg_read(ctx->xen_statedir, dom->ref.domid, dom->ref.uuid, &dom->config,
                          &dom->config_len, err);
    if (rc)
        return snap_err_context(err, "domain %s: stored configuration", dom->ref.name);
    dom->agent_path = agent_path_from_config(dom->config, err);
    if (err->code == SNAP_ERROR_PROTOCOL)
        return snap_err_context(err, "domain %s", dom->ref.name);
    snap_err_clear(err);
    if (snap_domain_kept_shutdown(ctx, &dom->ref)) {
        dom->kept_dm_socket = snap_qmp_socket_path(ctx, dom->ref.domid);
        if (access(dom->kept_dm_socket, F_OK) != 0) {
            free(dom->kept_dm_socket);
            dom->kept_dm_socket = NULL;
        }
    }
    if (dom->ref.state != SNAP_DOMAIN_SHUTOFF) {
        dom->qmp_path = snap_qmp_socket_path(ctx, dom->ref.domid);
        /* a PV domain on phy: disks alone may run without any device model */
        if (!needs_device_model(dom) && access(dom->qmp_path, F_OK) != 0) {
            free(dom->qmp_path);
            dom->qmp_path = NULL;
        } else {
            rc = resolve_qmp(ctx, dom, err);
        }
    }
    return rc;
}
