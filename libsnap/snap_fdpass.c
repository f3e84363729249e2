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

int snap_fdpass_check_merge(snap_ctx *ctx, const snap_qmp_disk *q, size_t depth,
                            snap_err *err)
{
    if (depth + 1 >= q->chain_len)
        return 0; /* the merge itself says what is wrong */
    const snap_qmp_image *base = &q->chain[depth + 1];
    if (!ctx->qmp_confined || (base->node_name && base->node_name[0] != '#'))
        return 0;
    return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                        "the device model runs deprivileged (dm_restrict) and opened %s "
                        "read-only from a backing-file header when it started: it cannot "
                        "reopen it for writing to merge into it; delete the snapshot "
                        "while the domain is shut down (qemu-img does the merge)",
                        base->file);
}
