/* The libsnap context: platform choice, directories, last error. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_domcfg.h"
#include "snap_internal.h"
#include "snap_meta.h"
#include "snap_meta_store.h"
#include "snap_trace.h"

static char *env_or(const char *var, const char *dflt)
{
    const char *v = getenv(var);
    return snap_xstrdup(v && *v ? v : dflt);
}

/* AUTO: a Xen privcmd device means a real hypervisor; XLSNAP_PLATFORM overrides. */
static int choose_platform(snap_platform_kind want, snap_platform_kind *out,
                           snap_err *err)
{
    const char *env = getenv("XLSNAP_PLATFORM");
    if (want == SNAP_PLATFORM_AUTO && env && *env) {
        if (!strcmp(env, "libxl"))
            want = SNAP_PLATFORM_LIBXL;
        else if (!strcmp(env, "sim"))
            want = SNAP_PLATFORM_SIM;
        else
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "XLSNAP_PLATFORM=%s: expected \"libxl\" or \"sim\"", env);
    }
    if (want == SNAP_PLATFORM_AUTO)
        want = access("/dev/xen/privcmd", F_OK) == 0 ||
                       access("/proc/xen/privcmd", F_OK) == 0
                   ? SNAP_PLATFORM_LIBXL
                   : SNAP_PLATFORM_SIM;
    *out = want;
    return 0;
}

int snap_ctx_alloc_libxl(snap_ctx **pctx, struct libxl__ctx *lctx, xentoollog_logger *lg)
{
    if (!lctx) {
        *pctx = NULL;
        return SNAP_ERROR_INVAL;
    }
    /* A libxl context proves a hypervisor: AUTO would only consult privcmd. */
    const char *env = getenv("XLSNAP_PLATFORM");
    int rc =
        snap_ctx_alloc(pctx, env && *env ? SNAP_PLATFORM_AUTO : SNAP_PLATFORM_LIBXL, lg);
    if (*pctx)
        (*pctx)->lctx = lctx;
    return rc;
}

int snap_ctx_alloc(snap_ctx **pctx, snap_platform_kind platform, xentoollog_logger *lg)
{
    snap_trace("ctx-alloc"); /* XLSNAP_TRACE: the command's own work starts */
    snap_ctx *ctx = snap_xcalloc(1, sizeof *ctx);
    ctx->lg = lg;
    /* Each default is resolved where its directory is used, and only there. */
    ctx->statedir = snap_xstrdup(snap_statedir_resolve(NULL));
    ctx->xen_statedir = snap_xstrdup(snap_domcfg_statedir(NULL));
    ctx->xen_rundir = env_or("XLSNAP_XEN_RUNDIR", "/var/run/xen");
    *pctx = ctx;
    int rc = choose_platform(platform, &ctx->platform, &ctx->err);
    if (rc)
        return rc;
    ctx->ops =
        ctx->platform == SNAP_PLATFORM_LIBXL ? &snap_platform_libxl : &snap_platform_sim;
    snap_log(lg, XTL_DEBUG, "platform %s, state %s, xen state %s, run %s", ctx->ops->name,
             ctx->statedir, ctx->xen_statedir, ctx->xen_rundir);
    return 0;
}

void snap_ctx_free(snap_ctx *ctx)
{
    if (!ctx)
        return;
    free(ctx->statedir);
    free(ctx->xen_statedir);
    free(ctx->xen_rundir);
    free(ctx);
}

const char *snap_ctx_errmsg(const snap_ctx *ctx)
{
    return ctx ? ctx->err.msg : "";
}

snap_platform_kind snap_ctx_platform(const snap_ctx *ctx)
{
    return ctx->platform;
}

int snap_ctx_fail(snap_ctx *ctx, const snap_err *err)
{
    if (err != &ctx->err)
        ctx->err = *err;
    snap_log(ctx->lg, XTL_DEBUG, "error %d: %s", err->code, err->msg);
    return err->code ? err->code : SNAP_ERROR_FAIL;
}

void snap_create_params_init(snap_create_params *p)
{
    memset(p, 0, sizeof *p);
}

void snap_revert_params_init(snap_revert_params *p)
{
    memset(p, 0, sizeof *p);
}

void snap_delete_params_init(snap_delete_params *p)
{
    memset(p, 0, sizeof *p);
}

void snap_info_free(snap_info *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->disks && i < s->n_disks; i++) {
        snap_disk_info *d = &s->disks[i];
        free(d->vdev);
        free(d->backend);
        free(d->format);
        free(d->base_path);
        free(d->overlay_path);
        free(d->internal_name);
    }
    free(s->disks);
    snap_strv_free(s->excluded, s->n_excluded);
    snap_strv_free(s->revert_overlays, s->n_revert_overlays);
    free(s->quiesce_reason);
    snap_verification_free(s->verification);
    for (size_t i = 0; s->filesystems && i < s->n_filesystems; i++) {
        free(s->filesystems[i].mountpoint);
        free(s->filesystems[i].type);
        free(s->filesystems[i].device);
        free(s->filesystems[i].reason);
    }
    free(s->filesystems);
    free(s->name);
    free(s->description);
    free(s->parent);
    free(s->group);
    free(s->domain_name);
    free(s->domain_uuid);
    free(s->memory_path);
    free(s->json);
    free(s);
}

void snap_info_list_free(snap_info **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snap_info_free(list[i]);
    free(list);
}

static void snap_summary_free(snap_summary *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->description);
    free(s->parent);
    free(s);
}

void snap_summary_list_free(snap_summary **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snap_summary_free(list[i]);
    free(list);
}
