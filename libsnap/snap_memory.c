/*
 * Memory checkpoints. The order is what makes memory and disks agree:
 * pause (QEMU drains in-flight I/O) -> disk snapshots -> memory saved ->
 * resume. Nothing the guest does can fall between the disk snapshots and
 * the memory image, so no filesystem freeze is needed (and a frozen guest
 * would be restored frozen). The file goes beside the snapshot's record,
 * 0600: it holds the guest's memory, secrets included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_memory.h"
#include "snap_owned.h"
#include "snap_trace.h"

char *snap_memory_path(const snap_meta_store *st, const char *name)
{
    return snap_xasprintf("%s/%s.mem", st->dir, name);
}

int snap_memory_pause(snap_ctx *ctx, snap_session *s, snap_memory_save *ms, snap_err *err)
{
    int rc = ctx->ops->prepare_save_memory
                 ? ctx->ops->prepare_save_memory(ctx, &s->dom.ref, err)
                 : 0;
    if (rc || s->dom.ref.state != SNAP_DOMAIN_RUNNING)
        return rc;
    rc = ctx->ops->pause(ctx, &s->dom.ref, err);
    if (!rc) {
        ms->paused_by_us = true;
        snap_trace("memory-paused"); /* XLSNAP_TRACE: how long the guest stays paused */
    }
    return rc;
}

int snap_memory_write(snap_ctx *ctx, snap_session *s, snap_journal *j,
                      snap_memory_save *ms, snap_progress_fn *progress, void *opaque,
                      snap_err *err)
{
    j->memory_created = snap_xstrdup(ms->path);
    int rc = snap_journal_update(&s->st, j, err);
    if (rc)
        return rc;
    int fd = open(ms->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return snap_err_errno(err, errno == EEXIST ? SNAP_ERROR_EXISTS : SNAP_ERROR_IO,
                              errno, "memory file %s", ms->path);
    uint64_t t0 = snap_now_ms();
    snap_trace("memory-save-start");
    rc = ctx->ops->save_memory(ctx, &s->dom.ref, fd, progress, opaque, err);
    snap_trace("memory-save-sent");
    if (!rc && fsync(fd) < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "memory file %s: fsync", ms->path);
    snap_trace("memory-save-synced");
    struct stat sb;
    if (!rc && fstat(fd, &sb) == 0)
        ms->size = (uint64_t)sb.st_size;
    close(fd);
    if (rc) {
        unlink(ms->path);
        return snap_err_context(err, "memory file %s", ms->path);
    }
    if (progress)
        progress(opaque, "Saving memory", ms->size, ms->size);
    snap_log(ctx->lg, XTL_INFO, "domain %s: memory saved to %s (%llu MiB, %llu ms)",
             s->dom.ref.name, ms->path, (unsigned long long)(ms->size >> 20),
             (unsigned long long)(snap_now_ms() - t0));
    return snap_journal_set_phase(&s->st, j, SNAP_PHASE_MEMORY_SAVED, err);
}

int snap_memory_resume(snap_ctx *ctx, snap_session *s, snap_memory_save *ms, bool saved,
                       snap_err *err)
{
    int rc = 0;
    if (saved)
        rc = ctx->ops->resume_after_save(ctx, &s->dom.ref, ms->paused_by_us, err);
    else if (ms->paused_by_us)
        rc = ctx->ops->unpause(ctx, &s->dom.ref, err);
    if (!rc && ms->paused_by_us) {
        snap_trace("memory-resumed");
        snap_trace_flush();
    }
    if (!rc)
        ms->paused_by_us = false;
    return rc;
}

void snap_memory_save_dispose(snap_memory_save *ms)
{
    free(ms->path);
    memset(ms, 0, sizeof *ms);
}

int snap_memory_remove(snap_ctx *ctx, const snap_meta_store *st, const char *name,
                       const char *path, snap_err *err)
{
    if (!path)
        return 0;
    snap_owned o = {.what = "memory file"};
    snap_owned_add_dir(&o, st->dir);
    char *lit = snap_owned_escape(name);
    snap_owned_add_pattern(&o, snap_xasprintf("%s.mem", lit));
    free(lit);
    int rc = snap_owned_remove(ctx->lg, path, &o, err);
    snap_owned_dispose(&o);
    return rc;
}
