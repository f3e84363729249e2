/* External overlays passed to a confined device model by descriptor; see snap_fdpass.h.
 */
#include "snap_fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_qemuimg.h"

/* One disk: file, descriptor, fdset, node. */
static int prepare_disk(snap_ctx *ctx, snap_qmp *qmp, snap_fdpass_disk *fd_disk,
                        snap_err *err)
{
    const snap_plan_disk *pd = fd_disk->pd;
    snap_qimg_opts o = {.lg = ctx->lg};
    int rc = snap_qimg_create_overlay(&o, pd->overlay_path, pd->disk->xs->path,
                                      pd->disk->xs->format, err);
    if (rc)
        return rc;
    fd_disk->file_made = true;
    int fd = open(pd->overlay_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "open %s", pd->overlay_path);
    rc = snap_qimg_copy_access(fd, pd->overlay_path, pd->disk->xs->path, err);
    char *opaque = snap_xasprintf(SNAP_QMP_FDSET_OPAQUE_PREFIX "%s", pd->overlay_path);
    if (!rc)
        rc = snap_qmp_add_fd(qmp, fd, -1, opaque, &fd_disk->fdset, NULL,
                             SNAP_QMP_TIMEOUT_MS, err);
    free(opaque);
    close(fd); /* QEMU holds its own copy now */
    if (!rc)
        rc = snap_qmp_blockdev_add_qcow2_fdset(qmp, pd->overlay_node, fd_disk->fdset,
                                               SNAP_QMP_TIMEOUT_MS, err);
    fd_disk->node_added = rc == 0;
    return rc;
}

int snap_fdpass_prepare(snap_ctx *ctx, snap_qmp *qmp, const snap_plan *plan,
                        snap_fdpass *fp, snap_err *err)
{
    memset(fp, 0, sizeof *fp);
    fp->d = snap_xcalloc(plan->n_disks + 1, sizeof *fp->d);
    for (size_t i = 0; i < plan->n_disks; i++)
        if (plan->disks[i].method == SNAP_METHOD_EXTERNAL && plan->disks[i].via_qmp)
            fp->d[fp->n++] = (snap_fdpass_disk){.pd = &plan->disks[i], .fdset = -1};
    int rc = 0;
    for (size_t i = 0; i < fp->n && !rc; i++) {
        rc = prepare_disk(ctx, qmp, &fp->d[i], err);
        if (rc)
            snap_err_context(err,
                             "disk %s: overlay %s for a device model that cannot "
                             "open it by path",
                             fp->d[i].pd->disk->xs->vdev, fp->d[i].pd->overlay_path);
    }
    if (rc)
        snap_fdpass_abort(ctx, qmp, fp);
    return rc;
}

void snap_fdpass_abort(snap_ctx *ctx, snap_qmp *qmp, snap_fdpass *fp)
{
    for (size_t i = 0; i < fp->n; i++) {
        snap_fdpass_disk *fd_disk = &fp->d[i];
        const char *path = fd_disk->pd->overlay_path;
        snap_err e;
        if (fd_disk->node_added && snap_qmp_blockdev_del(qmp, fd_disk->pd->overlay_node,
                                                         SNAP_QMP_TIMEOUT_MS, &e) != 0)
            snap_log(ctx->lg, XTL_WARN, "overlay node %s: %s", fd_disk->pd->overlay_node,
                     e.msg);
        fd_disk->node_added = false;
        if (fd_disk->fdset >= 0 &&
            snap_qmp_remove_fd(qmp, fd_disk->fdset, -1, SNAP_QMP_TIMEOUT_MS, &e) != 0)
            snap_log(ctx->lg, XTL_WARN, "fdset %lld of %s: %s", fd_disk->fdset, path,
                     e.msg);
        fd_disk->fdset = -1;
        if (fd_disk->file_made && unlink(path) < 0 && errno != ENOENT)
            snap_log(ctx->lg, XTL_WARN, "leftover overlay %s not removed: %s", path,
                     strerror(errno));
        fd_disk->file_made = false;
    }
}

void snap_fdpass_dispose(snap_fdpass *fp)
{
    free(fp->d);
    memset(fp, 0, sizeof *fp);
}

/* One image of a chain put on an fdset of its own (a read-only and a read-write fd). */
typedef struct merge_image {
    const snap_qmp_image *img;
    char node[32];
    long long fdset;
    bool added;
} merge_image;

static int pass_image(snap_qmp *qmp, merge_image *mi, snap_err *err)
{
    const char *path = mi->img->file;
    char *opaque = snap_xasprintf(SNAP_QMP_FDSET_OPAQUE_PREFIX "%s", path);
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        int fd = open(path, (k ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "open %s", path);
            break;
        }
        rc = snap_qmp_add_fd(qmp, fd, mi->fdset, opaque, &mi->fdset, NULL,
                             SNAP_QMP_TIMEOUT_MS, err);
        close(fd); /* QEMU holds its own copy now */
    }
    free(opaque);
    return rc;
}

/* The new nodes deleted (the upper ones first: they hold the lower), the sets removed.
 */
static void merge_images_undo(snap_ctx *ctx, snap_qmp *qmp, merge_image *mi, size_t n)
{
    snap_err e;
    for (size_t i = 0; i < n; i++)
        if (mi[i].added &&
            snap_qmp_blockdev_del(qmp, mi[i].node, SNAP_QMP_TIMEOUT_MS, &e) != 0)
            snap_log(ctx->lg, XTL_WARN, "node %s: %s", mi[i].node, e.msg);
    for (size_t i = 0; i < n; i++)
        if (mi[i].fdset >= 0 &&
            snap_qmp_remove_fd(qmp, mi[i].fdset, -1, SNAP_QMP_TIMEOUT_MS, &e) != 0)
            snap_log(ctx->lg, XTL_WARN, "fdset %lld of %s: %s", mi[i].fdset,
                     mi[i].img->file, e.msg);
}

/*
 * chain[first..last] each put on an fdset and a new node, bottom up (each
 * new node's backing is the one below it), then the named node above them,
 * chain[first - 1], reopened onto the top new one.
 */
static int replace_images(snap_ctx *ctx, snap_qmp *qmp, const snap_qmp_disk *q,
                          size_t first, size_t last, const char *vdev, snap_err *err)
{
    size_t n = last - first + 1;
    merge_image *mi = snap_xcalloc(n, sizeof *mi);
    snap_qmp_node_opts opts;
    const snap_qmp_image *anchor = &q->chain[first - 1];
    int rc =
        snap_qmp_node_options(qmp, anchor->node_name, &opts, SNAP_QMP_TIMEOUT_MS, err);
    const char *below = last + 1 < q->chain_len ? q->chain[last + 1].node_name : NULL;
    if (!rc && last + 1 < q->chain_len && !below)
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL, "QEMU did not name the node of %s",
                          q->chain[last + 1].file);
    /* mi[0] is the top new node, mi[n - 1] the base. */
    for (size_t i = 0; i < n; i++)
        mi[i] = (merge_image){.img = &q->chain[first + i], .fdset = -1};
    for (size_t i = n; i-- > 0 && !rc;) {
        rc = pass_image(qmp, &mi[i], err);
        snprintf(mi[i].node, sizeof mi[i].node, "%s-fd%lld", vdev, mi[i].fdset);
        if (!rc)
            rc = snap_qmp_blockdev_add_fdset_image(qmp, mi[i].node, mi[i].img->format,
                                                   mi[i].fdset, below, &opts,
                                                   SNAP_QMP_TIMEOUT_MS, err);
        mi[i].added = rc == 0;
        below = mi[i].node;
    }
    if (!rc)
        rc = snap_qmp_reopen_backing(qmp, anchor->node_name, anchor->format, mi[0].node,
                                     SNAP_QMP_TIMEOUT_MS, err);
    if (rc)
        merge_images_undo(ctx, qmp, mi, n);
    free(mi);
    return rc;
}

int snap_fdpass_open_merge_base(snap_ctx *ctx, snap_qmp *qmp, const snap_qmp_disk *q,
                                size_t depth, const char *vdev, bool *replaced,
                                snap_err *err)
{
    *replaced = false;
    if (depth + 1 >= q->chain_len)
        return 0; /* the merge itself says what is wrong */
    const snap_qmp_image *base = &q->chain[depth + 1];
    if (!ctx->qmp_confined || (base->node_name && base->node_name[0] != '#'))
        return 0; /* a node QEMU was given by name: opened read-write */
    /* The nearest node above the base that QEMU was given by name. */
    size_t first = depth + 1;
    while (first > 0 &&
           (!q->chain[first - 1].node_name || q->chain[first - 1].node_name[0] == '#'))
        first--;
    int rc = first == 0
                 ? snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                                "no image above %s has a node name to reopen", base->file)
                 : replace_images(ctx, qmp, q, first, depth + 1, vdev, err);
    *replaced = rc == 0;
    return rc ? snap_err_context(err,
                                 "disk %s: the device model runs deprivileged "
                                 "(dm_restrict) and opened %s read-only by path; "
                                 "passing it as a descriptor",
                                 vdev, base->file)
              : 0;
}
