/*
 * The platform on a real Xen dom0: libxl does what needs the hypervisor.
 * A libxl context is opened per call: xlsnap commands are short-lived, and a
 * long-held context would keep libxl's event machinery (and its SIGCHLD
 * handling) alive inside the caller's process. A caller with its own context
 * (xl; snap_ctx_alloc_libxl) lends it instead: no second context.
 * Static functions are named plat_*: the libxl_ prefix is libxl's own.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xenstore.h>

#include "snap_domcfg.h"
#include "snap_internal.h"
#include "snap_meta_store.h"

static int plat_open(snap_ctx *ctx, libxl_ctx **lctx, snap_err *err)
{
    if (ctx->lctx) { /* the caller's (snap_ctx_alloc_libxl) */
        *lctx = ctx->lctx;
        return 0;
    }
    int rc = libxl_ctx_alloc(lctx, LIBXL_VERSION, 0, ctx->lg);
    if (rc)
        return snap_err_set(
            err, SNAP_ERROR_FAIL,
            "cannot open libxl (rc=%d): is this a Xen dom0 with xenstored "
            "running? (XLSNAP_PLATFORM=sim selects the simulated dom0)",
            rc);
    return 0;
}

/* Ends what plat_open began: a borrowed context stays the caller's. */
static void plat_close(snap_ctx *ctx, libxl_ctx *lctx)
{
    if (lctx != ctx->lctx)
        libxl_ctx_free(lctx);
}

/* dom from libxl's info on domid (name: libxl's, else fallback). */
static void fill_ref(libxl_ctx *lctx, const libxl_dominfo *info, const char *fallback,
                     snap_domain_ref *dom)
{
    char *name = libxl_domid_to_name(lctx, info->domid);
    memset(dom, 0, sizeof *dom);
    dom->domid = info->domid;
    snprintf(dom->name, sizeof dom->name, "%s", name ? name : fallback);
    free(name);
    snprintf(dom->uuid, sizeof dom->uuid, LIBXL_UUID_FMT, LIBXL_UUID_BYTES(info->uuid));
    dom->state = info->paused ? SNAP_DOMAIN_PAUSED : SNAP_DOMAIN_RUNNING;
    if (info->shutdown || info->dying)
        dom->state = SNAP_DOMAIN_SHUTOFF;
}

/* The domain whose UUID is uuid, among those libxl lists (NOTFOUND: none). */
static int find_by_uuid(libxl_ctx *lctx, const char *uuid, snap_domain_ref *dom,
                        snap_err *err)
{
    libxl_uuid want;
    int n = 0, rc;
    if (libxl_uuid_from_string(&want, uuid))
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s is not a UUID", uuid);
    libxl_dominfo *list = libxl_list_domain(lctx, &n);
    if (!list)
        return snap_err_set(err, SNAP_ERROR_FAIL,
                            "cannot list the domains (libxl_list_domain)");
    rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "no domain has UUID %s", uuid);
    for (int i = 0; i < n; i++)
        if (!libxl_uuid_compare(&list[i].uuid, &want)) {
            fill_ref(lctx, &list[i], uuid, dom);
            snap_err_clear(err);
            rc = 0;
            break;
        }
    libxl_dominfo_list_free(list, n);
    return rc;
}

static int plat_lookup_uuid(snap_ctx *ctx, const char *uuid, snap_domain_ref *dom,
                            snap_err *err)
{
    libxl_ctx *lctx;
    memset(dom, 0, sizeof *dom);
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    rc = find_by_uuid(lctx, uuid, dom, err);
    plat_close(ctx, lctx);
    return rc;
}

/* A domid, else a name (libxl's rule), else a UUID. */
static int plat_lookup(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                       snap_err *err)
{
    libxl_ctx *lctx;
    libxl_dominfo info;
    uint32_t domid;
    memset(dom, 0, sizeof *dom); /* no uuid on failure (snap_records relies on it) */
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    libxl_dominfo_init(&info);
    if (libxl_domain_qualifier_to_domid(lctx, qualifier, &domid)) {
        if (snap_uuid_valid(qualifier) && find_by_uuid(lctx, qualifier, dom, err) == 0)
            goto out;
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
    fill_ref(lctx, &info, qualifier, dom);
out:
    libxl_dominfo_dispose(&info);
    plat_close(ctx, lctx);
    return rc;
}

static int plat_set_paused(snap_ctx *ctx, const snap_domain_ref *dom, bool pause,
                           snap_err *err)
{
    libxl_ctx *lctx;
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    int lrc = pause ? libxl_domain_pause(lctx, dom->domid, NULL)
                    : libxl_domain_unpause(lctx, dom->domid, NULL);
    plat_close(ctx, lctx);
    if (lrc)
        return snap_err_set(err, SNAP_ERROR_FAIL,
                            "libxl_domain_%s of domain %s failed (rc=%d)",
                            pause ? "pause" : "unpause", dom->name, lrc);
    return 0;
}

/* shutdown reason "suspend": the guest suspended itself (libxl_domain_suspend_only). */
static int plat_is_suspended(libxl_ctx *lctx, uint32_t domid, bool *suspended)
{
    libxl_dominfo info;
    libxl_dominfo_init(&info);
    int lrc = libxl_domain_info(lctx, &info, domid);
    *suspended =
        !lrc && info.shutdown && info.shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND;
    libxl_dominfo_dispose(&info);
    return lrc;
}

/*
 * pause/unpause serve memory checkpoints only (snap_memory.c): pause, disk
 * snapshots, save, resume. A paused PV guest cannot answer libxl's suspend
 * request, and unpausing it for the save would let it write after the disk
 * snapshots. So on Xen "pause" is the guest's own suspend: it stops issuing
 * I/O (blkfront replays what was in flight on resume), QEMU still serves QMP
 * for the disk snapshots, and libxl then saves the suspended domain.
 */
static int plat_pause(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    libxl_ctx *lctx;
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    int lrc = libxl_domain_suspend_only(lctx, dom->domid, NULL);
    plat_close(ctx, lctx);
    if (lrc)
        return snap_err_set(err, SNAP_ERROR_FAIL,
                            "domain %s did not suspend for the checkpoint "
                            "(libxl_domain_suspend_only rc=%d)",
                            dom->name, lrc);
    return 0;
}

/* Undoes libxl_pause: a suspended guest resumes where it was (suspend_cancel). */
static int plat_unpause(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    libxl_ctx *lctx;
    bool suspended = false;
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    plat_is_suspended(lctx, dom->domid, &suspended);
    int lrc = suspended ? libxl_domain_resume(lctx, dom->domid, 1, NULL)
                        : libxl_domain_unpause(lctx, dom->domid, NULL);
    plat_close(ctx, lctx);
    if (lrc)
        return snap_err_set(err, SNAP_ERROR_FAIL,
                            "libxl_domain_%s of domain %s failed (rc=%d)",
                            suspended ? "resume" : "unpause", dom->name, lrc);
    return 0;
}

/* xl's save file header (tools/xl/xl_saverestore.c), so `xl restore` reads ours. */
static const char xl_save_magic[32] = "Xen saved domain, xl format\n \0 \r";
#define XL_MANDATORY_FLAG_JSON     (1U << 0)
#define XL_MANDATORY_FLAG_STREAMV2 (1U << 1)

typedef struct xl_save_header {
    char magic[32];
    uint32_t byteorder; /* 0x01020304 in the writer's order */
    uint32_t mandatory_flags;
    uint32_t optional_flags;
    uint32_t optional_data_len;
} xl_save_header;

static int write_all(int fd, const void *buf, size_t len, snap_err *err)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "writing the save header");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Header + (u32 length, config JSON with its NUL), as xl save writes them. */
static int write_xl_header(int fd, const char *config, snap_err *err)
{
    uint32_t clen = (uint32_t)strlen(config) + 1;
    xl_save_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, xl_save_magic, sizeof h.magic);
    h.byteorder = 0x01020304;
    h.mandatory_flags = XL_MANDATORY_FLAG_JSON | XL_MANDATORY_FLAG_STREAMV2;
    h.optional_data_len = (uint32_t)sizeof clen + clen;
    int rc = write_all(fd, &h, sizeof h, err);
    if (!rc)
        rc = write_all(fd, &clen, sizeof clen, err);
    if (!rc)
        rc = write_all(fd, config, clen, err);
    return rc;
}

/* Checks the header and leaves fd at the libxl stream. */
static int read_xl_header(int fd, const char *path, snap_err *err)
{
    xl_save_header h;
    if (read(fd, &h, sizeof h) != (ssize_t)sizeof h ||
        memcmp(h.magic, xl_save_magic, sizeof h.magic) || h.byteorder != 0x01020304)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "%s is not a memory checkpoint in xl's save format", path);
    if (!(h.mandatory_flags & XL_MANDATORY_FLAG_STREAMV2))
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "%s: legacy (v1) libxl stream not supported", path);
    if (lseek(fd, (off_t)h.optional_data_len, SEEK_CUR) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", path);
    return 0;
}

/*
 * libxl_domain_suspend asks the guest to suspend (control/shutdown =
 * "suspend") and waits for its acknowledgement, which a guest already
 * suspended by plat_pause never gives (60 s, then failure). This thread
 * acknowledges for it, the way the guest would (clearing the node); libxl
 * then finds the domain suspended and saves it.
 */
typedef struct suspend_acker {
    pthread_t thread;
    struct xs_handle *xs;
    char path[64];
    atomic_bool stop;
} suspend_acker;

static void *suspend_acker_main(void *opaque)
{
    suspend_acker *a = opaque;
    struct pollfd pfd = {.fd = xs_fileno(a->xs), .events = POLLIN};
    while (!atomic_load(&a->stop)) {
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        unsigned int n;
        char **ev = xs_read_watch(a->xs, &n);
        free(ev);
        unsigned int len;
        char *v = xs_read(a->xs, XBT_NULL, a->path, &len);
        if (v && !strcmp(v, "suspend"))
            xs_write(a->xs, XBT_NULL, a->path, "", 0);
        free(v);
    }
    return NULL;
}

static int suspend_acker_start(suspend_acker *a, uint32_t domid, snap_err *err)
{
    memset(a, 0, sizeof *a);
    snprintf(a->path, sizeof a->path, "/local/domain/%u/control/shutdown", domid);
    a->xs = xs_open(0);
    if (!a->xs || !xs_watch(a->xs, a->path, "xlsnap-ack")) {
        int e = errno;
        if (a->xs)
            xs_close(a->xs);
        return snap_err_errno(err, SNAP_ERROR_FAIL, e, "xenstore watch on %s", a->path);
    }
    int e = pthread_create(&a->thread, NULL, suspend_acker_main, a);
    if (e) {
        xs_close(a->xs);
        return snap_err_errno(err, SNAP_ERROR_FAIL, e, "thread for %s", a->path);
    }
    return 0;
}

static void suspend_acker_stop(suspend_acker *a)
{
    atomic_store(&a->stop, true);
    pthread_join(a->thread, NULL);
    xs_unwatch(a->xs, a->path, "xlsnap-ack");
    xs_close(a->xs);
}

/* Header (with the domain's config, as `xl save` writes it), then libxl's stream. */
static int save_domain(libxl_ctx *lctx, const snap_domain_ref *dom, int fd, snap_err *err)
{
    libxl_domain_config dc;
    libxl_domain_config_init(&dc);
    int rc = 0, lrc = libxl_retrieve_domain_configuration(lctx, dom->domid, &dc, NULL);
    char *json = lrc ? NULL : libxl_domain_config_to_json(lctx, &dc);
    if (!json)
        rc = snap_err_set(err, SNAP_ERROR_FAIL,
                          "domain %s: cannot retrieve its configuration (rc=%d)",
                          dom->name, lrc);
    if (!rc)
        rc = write_xl_header(fd, json, err);
    if (!rc && (lrc = libxl_domain_suspend(lctx, dom->domid, fd, 0, NULL)) != 0)
        rc = snap_err_set(err, SNAP_ERROR_FAIL,
                          "libxl_domain_suspend of domain %s failed (rc=%d)", dom->name,
                          lrc);
    free(json);
    libxl_domain_config_dispose(&dc);
    return rc;
}

/*
 * A domain suspended by plat_pause is saved as it is; one paused by its
 * user (xl pause) must run to answer the suspend request.
 */
static int plat_save_memory(snap_ctx *ctx, const snap_domain_ref *dom, int fd,
                            snap_progress_fn *progress, void *opaque, snap_err *err)
{
    libxl_ctx *lctx;
    bool suspended = false;
    suspend_acker acker;
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    plat_is_suspended(lctx, dom->domid, &suspended);
    if (suspended)
        rc = suspend_acker_start(&acker, dom->domid, err);
    else if (libxl_domain_unpause(lctx, dom->domid, NULL))
        rc = snap_err_set(err, SNAP_ERROR_FAIL, "cannot unpause domain %s to suspend it",
                          dom->name);
    if (progress && !rc)
        progress(opaque, "Saving memory", 0, 0);
    if (!rc)
        rc = save_domain(lctx, dom, fd, err);
    if (suspended)
        suspend_acker_stop(&acker);
    plat_close(ctx, lctx);
    return rc;
}

/* What `xl save -c` does after the save: resume the suspended domain. */
static int plat_resume_after_save(snap_ctx *ctx, const snap_domain_ref *dom, bool running,
                                  snap_err *err)
{
    libxl_ctx *lctx;
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    int lrc = libxl_domain_resume(lctx, dom->domid, 1, NULL);
    plat_close(ctx, lctx);
    if (lrc)
        return snap_err_set(err, SNAP_ERROR_FAIL,
                            "libxl_domain_resume of domain %s failed (rc=%d)", dom->name,
                            lrc);
    return running ? 0 : plat_set_paused(ctx, dom, true, err);
}

static int plat_stop(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    libxl_ctx *lctx;
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    int lrc = libxl_domain_destroy(lctx, dom->domid, NULL);
    plat_close(ctx, lctx);
    if (lrc)
        return snap_err_set(err, SNAP_ERROR_FAIL,
                            "libxl_domain_destroy of domain %s failed (rc=%d)", dom->name,
                            lrc);
    return 0;
}

/* Creates the domain (paused, as libxl leaves it), afresh or from a checkpoint. */
static int plat_create(libxl_ctx *lctx, libxl_domain_config *dc, uint32_t *domid,
                       const char *memory_path, snap_err *err)
{
    int lrc, rc = 0;
    if (!memory_path) {
        lrc = libxl_domain_create_new(lctx, dc, domid, NULL, NULL);
        return lrc ? snap_err_set(err, SNAP_ERROR_FAIL,
                                  "libxl_domain_create_new failed (rc=%d)", lrc)
                   : 0;
    }
    int fd = open(memory_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno, "memory checkpoint %s",
                              memory_path);
    rc = read_xl_header(fd, memory_path, err);
    if (!rc) {
        libxl_domain_restore_params params;
        libxl_domain_restore_params_init(&params);
        params.stream_version = 2;
        lrc = libxl_domain_create_restore(lctx, dc, domid, fd, -1, &params, NULL, NULL);
        libxl_domain_restore_params_dispose(&params);
        if (lrc)
            rc = snap_err_set(err, SNAP_ERROR_FAIL,
                              "libxl_domain_create_restore from %s failed (rc=%d)",
                              memory_path, lrc);
    }
    close(fd);
    return rc;
}

static int plat_start(snap_ctx *ctx, snap_domain_ref *dom, const char *config,
                      const char *memory_path, bool paused, snap_err *err)
{
    libxl_ctx *lctx;
    libxl_domain_config dc;
    uint32_t domid = 0;
    int rc = plat_open(ctx, &lctx, err);
    if (rc)
        return rc;
    libxl_domain_config_init(&dc);
    int lrc = libxl_domain_config_from_json(lctx, &dc, config);
    if (lrc) {
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "domain %s: stored configuration does not parse (rc=%d)",
                          dom->name, lrc);
        goto out;
    }
    rc = plat_create(lctx, &dc, &domid, memory_path, err);
    if (rc)
        snap_err_context(err, "domain %s", dom->name);
    if (!rc) {
        dom->domid = domid;
        if (!paused && libxl_domain_unpause(lctx, domid, NULL))
            rc =
                snap_err_set(err, SNAP_ERROR_FAIL, "cannot unpause domain %s", dom->name);
        dom->state = paused ? SNAP_DOMAIN_PAUSED : SNAP_DOMAIN_RUNNING;
    }
out:
    libxl_domain_config_dispose(&dc);
    plat_close(ctx, lctx);
    return rc;
}

/* ------------------------------------------------------------ QMP lock */

/* libxl__ev_qmplock_init's userdata id (checked in libxenlight.so 4.17). */
#define QMP_LOCK_USERID "qmp-socket-lock"

struct snap_qmp_lock {
    snap_domcfg_lock *lock;
};

/* libxl's own lock file protocol on userdata-l.<domid>.<uuid>.qmp-socket-lock. */
static int plat_qmp_lock(snap_ctx *ctx, const snap_domain_ref *dom, int timeout_ms,
                         snap_qmp_lock **out, snap_err *err)
{
    snap_domcfg_lock *lock;
    int rc = snap_userdata_lock_acquire(ctx->xen_statedir, dom->domid, dom->uuid,
                                        QMP_LOCK_USERID, timeout_ms, &lock, err);
    if (rc)
        return snap_err_context(err,
                                "domain %s: libxl's QMP lock (is libxl talking to "
                                "its device model?)",
                                dom->name);
    *out = snap_xmalloc(sizeof **out);
    (*out)->lock = lock;
    return 0;
}

static void plat_qmp_unlock(snap_qmp_lock *lock)
{
    if (!lock)
        return;
    snap_domcfg_lock_release(lock->lock);
    free(lock);
}

const snap_platform_ops snap_platform_libxl = {
    .name = "libxl",
    .lookup = plat_lookup,
    .lookup_uuid = plat_lookup_uuid,
    .pause = plat_pause,
    .unpause = plat_unpause,
    .save_memory = plat_save_memory,
    .resume_after_save = plat_resume_after_save,
    .stop = plat_stop,
    .start = plat_start,
    .keeps_stopped_domain = false,
    .qmp_lock = plat_qmp_lock,
    .qmp_unlock = plat_qmp_unlock,
};
