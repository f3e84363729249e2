/*
 * libsnap's private view of the context and the platform interface. Not
 * installed.
 */
#ifndef SNAP_INTERNAL_H
#define SNAP_INTERNAL_H

#include "libsnap.h"
#include "snap_base.h"

/* A domain as the platform knows it. */
typedef struct snap_domain_ref {
    uint32_t domid;
    char name[256];
    char uuid[40]; /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
    snap_domain_state state;
} snap_domain_ref;

/* A held QMP socket lock (platform-specific). */
typedef struct snap_qmp_lock snap_qmp_lock;

/*
 * What needs a hypervisor, behind one small interface: real Xen through
 * libxl (snap_platform_libxl.c), or xlsim's simulated dom0 (snap_platform_sim.c).
 */
typedef struct snap_platform_ops {
    const char *name;
    /* Finds a domain by name or domid (or UUID, when no domain has that name). */
    int (*lookup)(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                  snap_err *err);
    /*
     * Like lookup, without asking the domain's device model anything (state
     * only tells SHUTOFF from the others): readers (list, info) must not
     * queue behind another client of a one-client QMP socket. NULL: lookup
     * asks none already.
     */
    int (*identify)(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                    snap_err *err);
    /*
     * Finds the domain with this UUID; SNAP_ERROR_NOTFOUND when none exists.
     * A domain keeps its UUID across a revert's stop/start (Xen gives it a
     * new domid, and a destroyed domain has no name): recovery uses this.
     */
    int (*lookup_uuid)(snap_ctx *ctx, const char *uuid, snap_domain_ref *dom,
                       snap_err *err);
    int (*pause)(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err);
    int (*unpause)(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err);
    /*
     * What the save needs that outlasts a connection to the device model,
     * sent before the domain is paused so that the pause does not wait for
     * it (sim: QEMU's migration events and bandwidth). NULL: nothing.
     */
    int (*prepare_save_memory)(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err);
    /*
     * Memory checkpoint of a paused domain into fd, in the format start()
     * restores (libxl: xl's save format; sim: QEMU's migration stream),
     * after prepare_save_memory(). The domain stays paused;
     * resume_after_save() makes it usable again (running, or paused when
     * running is false).
     */
    int (*save_memory)(snap_ctx *ctx, const snap_domain_ref *dom, int fd,
                       snap_progress_fn *progress, void *opaque, snap_err *err);
    int (*resume_after_save)(snap_ctx *ctx, const snap_domain_ref *dom, bool running,
                             snap_err *err);
    /* Ends the domain's execution; afterwards no process holds its disks. */
    int (*stop)(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err);
    /*
     * Starts the domain from config (libxl-json text), restoring memory_path
     * when not NULL, else booting afresh; ends paused or running. dom->domid
     * is updated (a new domain on Xen, the same on the sim).
     */
    int (*start)(snap_ctx *ctx, snap_domain_ref *dom, const char *config,
                 const char *memory_path, bool paused, snap_err *err);
    /* After stop() the domain stays known (xenstore, stored config): the sim. */
    bool keeps_stopped_domain;
    /*
     * QEMU serves one client per QMP socket and libxl takes its userdata lock
     * "qmp-socket-lock" around each of its QMP connections (libxl_qmp.c,
     * libxl__ev_qmplock), so a tool holding the socket stalls libxl instead of
     * queueing behind it. Take this around every connect..close of the
     * domain's QMP socket, briefly. NULL when the platform needs no lock.
     */
    int (*qmp_lock)(snap_ctx *ctx, const snap_domain_ref *dom, int timeout_ms,
                    snap_qmp_lock **lock, snap_err *err);
    void (*qmp_unlock)(snap_qmp_lock *lock); /* NULL lock: no-op */
} snap_platform_ops;

extern const snap_platform_ops snap_platform_sim;
extern const snap_platform_ops snap_platform_libxl;

struct snap_ctx {
    xentoollog_logger *lg;
    snap_platform_kind platform;
    const snap_platform_ops *ops;
    snap_err err;
    char *statedir;          /* xlsnap's own: metadata, journal, locks */
    char *xen_statedir;      /* libxl's userdata */
    char *xen_rundir;        /* QMP sockets */
    snap_qmp_lock *qmp_lock; /* held while a domain's QMP socket is open */
    bool qmp_confined;       /* that QEMU cannot open host paths (dm_restrict) */
    struct libxl__ctx *lctx; /* the caller's (snap_ctx_alloc_libxl): never freed here */
};

/*
 * <xen_rundir>/qmp-libxl-<domid>: the QMP socket libxl (and xlsim) give a
 * device model (malloc'd). Inline: the platforms use it, and snap_ctx.c,
 * which chooses the platform, must not be called back by them.
 */
static inline char *snap_qmp_socket_path(const snap_ctx *ctx, uint32_t domid)
{
    return snap_xasprintf("%s/qmp-libxl-%u", ctx->xen_rundir, domid);
}

/* Returns rc after copying err into ctx (the message snap_ctx_errmsg shows). */
int snap_ctx_fail(snap_ctx *ctx, const snap_err *err);

#endif
