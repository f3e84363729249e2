/*
 * The platform on xlsim's simulated dom0 (no hypervisor): domains are found
 * in xenstore exactly where libxl registers them, and their "vCPUs" are the
 * device-model QEMU's, paused and resumed through QMP stop/cont.
 * A domain whose QEMU is gone (device-model-pid dead or absent) is shut off:
 * its images are released and may be handled offline with qemu-img.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "snap_child.h"
#include "snap_internal.h"
#include "snap_meta_store.h"
#include "snap_qmp.h"
#include "snap_xs.h"

#define SIM_QMP_TIMEOUT_MS   5000
#define SIM_SAVE_TIMEOUT_MS  600000
#define SIM_STOP_TIMEOUT_MS  15000
#define SIM_START_TIMEOUT_MS 180000

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

/* A short QMP session with the domain's device model (close with snap_qmp_close). */
static int sim_qmp_open(snap_ctx *ctx, const snap_domain_ref *dom, snap_qmp **qmp,
                        snap_err *err)
{
    char *path = snap_qmp_socket_path(ctx, dom->domid);
    int rc = snap_qmp_connect(path, SIM_QMP_TIMEOUT_MS, qmp, err);
    free(path);
    if (!rc)
        snap_qmp_set_logger(*qmp, ctx->lg);
    return rc;
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
    int rc = sim_qmp_open(ctx, dom, &qmp, err);
    if (rc)
        return snap_err_context(err, "domain %s: device model", dom->name);
    rc = snap_qmp_query_status(qmp, &st, SIM_QMP_TIMEOUT_MS, err);
    snap_qmp_close(qmp);
    if (rc)
        return snap_err_context(err, "domain %s", dom->name);
    dom->state = st.running ? SNAP_DOMAIN_RUNNING : SNAP_DOMAIN_PAUSED;
    return 0;
}

/*
 * An unknown qualifier, explained (xl's rule: all digits is a domid, else a
 * case-sensitive name): a domain NAMED like the missing domid, or a name
 * that differs only in case, is pointed at.
 */
static int sim_unknown_domain(snap_xs *xs, const char *qualifier, bool as_domid,
                              snap_err *err)
{
    uint32_t *ids = NULL, hit = 0;
    size_t n = 0;
    char *hit_name = NULL;
    snap_err ignore;
    if (snap_xs_list_domains(xs, &ids, &n, &ignore))
        n = 0;
    for (size_t i = 0; i < n && !hit_name; i++) {
        char *name = NULL;
        if (snap_xs_domain_name(xs, ids[i], &name, &ignore) == 0 &&
            (as_domid ? !strcmp(name, qualifier) : !strcasecmp(name, qualifier))) {
            hit = ids[i];
            hit_name = name;
        } else {
            free(name);
        }
    }
    free(ids);
    int rc;
    if (hit_name && as_domid)
        rc = snap_err_set(
            err, SNAP_ERROR_NOTFOUND,
            "%s is an invalid domain identifier: all digits is a domain id "
            "(as in xl) and there is no domain %s; the domain named '%s' has "
            "id %u",
            qualifier, qualifier, hit_name, hit);
    else if (hit_name)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                          "%s is an invalid domain identifier: no domain has that name "
                          "(names are case-sensitive; domain %u is '%s')",
                          qualifier, hit, hit_name);
    else
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "%s is an invalid domain identifier",
                          qualifier);
    free(hit_name);
    return rc;
}

/* The domid whose xenstore vm UUID is uuid (case-insensitive); false: none. */
static bool sim_domid_by_uuid(snap_xs *xs, const char *uuid, uint32_t *domid)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    bool found = false;
    snap_err ignore;
    if (snap_xs_list_domains(xs, &ids, &n, &ignore))
        n = 0;
    for (size_t i = 0; i < n && !found; i++) {
        char *u = NULL;
        found = snap_xs_domain_uuid(xs, ids[i], &u, &ignore) == 0 && !strcasecmp(u, uuid);
        if (found)
            *domid = ids[i];
        free(u);
    }
    free(ids);
    return found;
}

/* The domain qualifier names; its run state asked of QEMU when with_state. */
static int sim_find(snap_ctx *ctx, const char *qualifier, bool with_state,
                    snap_domain_ref *dom, snap_err *err)
{
    snap_xs *xs;
    uint32_t domid;
    char *name = NULL, *uuid = NULL;
    int rc = snap_xs_open(&xs, err);
    if (rc)
        return rc;
    memset(dom, 0, sizeof *dom);
    bool as_domid = parse_domid(qualifier, &domid);
    if ((!as_domid && snap_xs_domid_by_name(xs, qualifier, &domid, err)) ||
        snap_xs_domain_name(xs, domid, &name, err)) {
        if (!as_domid && snap_uuid_valid(qualifier) &&
            sim_domid_by_uuid(xs, qualifier, &domid)) {
            char id[16];
            snprintf(id, sizeof id, "%u", domid);
            free(name);
            snap_xs_close(xs);
            return sim_find(ctx, id, with_state, dom, err);
        }
        rc = sim_unknown_domain(xs, qualifier, as_domid, err);
        goto out;
    }
    dom->domid = domid;
    snprintf(dom->name, sizeof dom->name, "%s", name);
    if (domid == 0) /* dom0 has no vm UUID: the caller refuses it by domid */
        goto out;
    rc = snap_xs_domain_uuid(xs, domid, &uuid, err);
    if (rc)
        goto out;
    snprintf(dom->uuid, sizeof dom->uuid, "%s", uuid);
    /* Without asking QEMU: shut off or not, paused or running unknown. */
    dom->state = sim_dm_alive(xs, domid) ? SNAP_DOMAIN_RUNNING : SNAP_DOMAIN_SHUTOFF;
    if (with_state && dom->state != SNAP_DOMAIN_SHUTOFF)
        rc = sim_query_state(ctx, dom, err);
out:
    free(name);
    free(uuid);
    snap_xs_close(xs);
    return rc;
}

static int sim_lookup(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                      snap_err *err)
{
    return sim_find(ctx, qualifier, true, dom, err);
}

static int sim_identify(snap_ctx *ctx, const char *qualifier, snap_domain_ref *dom,
                        snap_err *err)
{
    return sim_find(ctx, qualifier, false, dom, err);
}

static int sim_lookup_uuid(snap_ctx *ctx, const char *uuid, snap_domain_ref *dom,
                           snap_err *err)
{
    snap_xs *xs;
    uint32_t domid = 0;
    int rc = snap_xs_open(&xs, err);
    if (rc)
        return rc;
    bool found = sim_domid_by_uuid(xs, uuid, &domid);
    snap_xs_close(xs);
    if (!found)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND, "no domain has UUID %s", uuid);
    char id[16];
    snprintf(id, sizeof id, "%u", domid);
    return sim_lookup(ctx, id, dom, err);
}

static int sim_set_paused(snap_ctx *ctx, const snap_domain_ref *dom, bool pause,
                          snap_err *err)
{
    snap_qmp *qmp;
    int rc = sim_qmp_open(ctx, dom, &qmp, err);
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

typedef struct sim_progress {
    snap_progress_fn *fn;
    void *opaque;
} sim_progress;

static void sim_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
    sim_progress *p = opaque;
    if (p->fn)
        p->fn(p->opaque, "Saving memory", done, total);
}

/* QEMU keeps its migration settings: set them before the pause, not in it. */
static int sim_prepare_save_memory(snap_ctx *ctx, const snap_domain_ref *dom,
                                   snap_err *err)
{
    snap_qmp *qmp;
    int rc = sim_qmp_open(ctx, dom, &qmp, err);
    if (!rc) {
        rc = snap_qmp_migrate_prepare(qmp, SIM_QMP_TIMEOUT_MS, err);
        snap_qmp_close(qmp);
    }
    return rc ? snap_err_context(err, "preparing to save the memory of domain %s",
                                 dom->name)
              : 0;
}

/* QEMU is stopped already: its migration stream is the checkpoint. */
static int sim_save_memory(snap_ctx *ctx, const snap_domain_ref *dom, int fd,
                           snap_progress_fn *progress, void *opaque, snap_err *err)
{
    snap_qmp *qmp;
    sim_progress p = {progress, opaque};
    int rc = sim_qmp_open(ctx, dom, &qmp, err);
    if (!rc) {
        rc = snap_qmp_migrate_prepared_to_fd(qmp, fd, sim_progress_cb, &p,
                                             SIM_SAVE_TIMEOUT_MS, err);
        snap_qmp_close(qmp);
    }
    return rc ? snap_err_context(err, "saving the memory of domain %s", dom->name) : 0;
}

/*
 * After a completed migration QEMU sits in "postmigrate" with its images
 * inactive; only `cont` activates them again. A domain that stays paused is
 * therefore continued and stopped at once (its vCPUs run for a moment).
 */
static int sim_resume_after_save(snap_ctx *ctx, const snap_domain_ref *dom, bool running,
                                 snap_err *err)
{
    snap_qmp *qmp;
    int rc = sim_qmp_open(ctx, dom, &qmp, err);
    if (!rc) {
        rc = snap_qmp_cont(qmp, SIM_QMP_TIMEOUT_MS, err);
        if (!rc && !running)
            rc = snap_qmp_stop(qmp, SIM_QMP_TIMEOUT_MS, err);
        snap_qmp_close(qmp);
    }
    return rc ? snap_err_context(err, "resuming domain %s", dom->name) : 0;
}

static bool sim_wait_gone(pid_t pid, int timeout_ms)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    while (snap_proc_alive(pid, 0)) {
        if (snap_deadline_poll_ms(deadline) == 0)
            return false;
        usleep(20 * 1000);
    }
    return true;
}

/* QMP quit, then waits for the process: QEMU holds its image locks until it exits. */
static int sim_stop(snap_ctx *ctx, const snap_domain_ref *dom, snap_err *err)
{
    pid_t pid = snap_xs_dm_pid(dom->domid);
    if (pid <= 0 || !snap_proc_alive(pid, 0))
        return 0;
    snap_qmp *qmp;
    snap_err qerr;
    if (sim_qmp_open(ctx, dom, &qmp, &qerr) == 0) {
        snap_qmp_execute(qmp, "quit", NULL, NULL, NULL, SIM_QMP_TIMEOUT_MS, &qerr);
        snap_qmp_close(qmp);
    } else {
        snap_log(ctx->lg, XTL_WARN, "domain %s: %s; sending SIGTERM to QEMU [%d]",
                 dom->name, qerr.msg, (int)pid);
        kill(pid, SIGTERM);
    }
    if (!sim_wait_gone(pid, SIM_STOP_TIMEOUT_MS)) {
        kill(pid, SIGKILL);
        if (!sim_wait_gone(pid, 5000))
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                "domain %s: QEMU [%d] does not exit", dom->name,
                                (int)pid);
    }
    return 0;
}

/* xlsim's binary: $XLSNAP_XLSIM, else "xlsim" in PATH. */
static const char *sim_xlsim_binary(void)
{
    const char *b = getenv("XLSNAP_XLSIM");
    return b && *b ? b : "xlsim";
}

/*
 * `xlsim restore [-p] <domid> <file>` or `xlsim relaunch [-p] <domid>`: a
 * new device model for the same domain, from its stored configuration
 * (which the caller already pointed at the right images).
 */
static int sim_start(snap_ctx *ctx, snap_domain_ref *dom, const char *config,
                     const char *memory_path, bool paused, snap_err *err)
{
    (void)config;
    char domid[16];
    snprintf(domid, sizeof domid, "%u", dom->domid);
    const char *argv[7];
    size_t n = 0;
    argv[n++] = sim_xlsim_binary();
    argv[n++] = memory_path ? "restore" : "relaunch";
    if (paused)
        argv[n++] = "-p";
    argv[n++] = domid;
    if (memory_path)
        argv[n++] = memory_path;
    argv[n] = NULL;
    snap_child_opts o = {.timeout_ms = SIM_START_TIMEOUT_MS};
    snap_child_result res;
    int rc = snap_child_run("xlsim", argv, &o, &res, err);
    snap_child_result_dispose(&res);
    (void)ctx;
    if (rc)
        return snap_err_context(err, "%s domain %s",
                                memory_path ? "restoring" : "starting", dom->name);
    dom->state = paused ? SNAP_DOMAIN_PAUSED : SNAP_DOMAIN_RUNNING;
    return 0;
}

const snap_platform_ops snap_platform_sim = {
    .name = "sim",
    .lookup = sim_lookup,
    .identify = sim_identify,
    .lookup_uuid = sim_lookup_uuid,
    .pause = sim_pause,
    .unpause = sim_unpause,
    .prepare_save_memory = sim_prepare_save_memory,
    .save_memory = sim_save_memory,
    .resume_after_save = sim_resume_after_save,
    .stop = sim_stop,
    .start = sim_start,
    .keeps_stopped_domain = true,
};
