/*
 * snapshot-create: plan -> journal -> freeze -> one QMP transaction -> thaw
 * -> xenstore + stored config -> metadata -> journal cleared. Offline disks
 * are snapshotted by qemu-img children instead of QMP. Any failure after the
 * journal is written is undone from the journal (snap_rollback.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "snap_agent.h"
#include "snap_create.h"
#include "snap_fdpass.h"
#include "snap_fsfreeze.h"
#include "snap_lvm.h"
#include "snap_memory.h"
#include "snap_meta_io.h"
#include "snap_ops.h"
#include "snap_qcow2.h"
#include "snap_qemuimg.h"
#include "snap_qsnap_identity.h"
#include "snap_quiesce.h"
#include "snap_rollback.h"
#include "snap_switch.h"
#include "snap_text.h"
#include "snap_trace.h"

/* Journals every file and snapshot this run may create, before creating any. */
static void journal_intent(snap_journal *j, const snap_plan *plan, char *prev_current)
{
    j->prev_current = prev_current;
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        snap_journal_disk *jd = snap_journal_add_disk(j, pd->disk->xs->vdev);
        jd->image = snap_xstrdup(pd->disk->xs->path);
        if (snap_method_is_lvm(pd->method)) {
            jd->lvm_created = snap_xasprintf("%s/%s", pd->disk->lv->vg, pd->lvm_name);
            jd->lvm_origin = snap_lv_full_name(pd->disk->lv);
        } else if (pd->method == SNAP_METHOD_INTERNAL)
            jd->internal_created = snap_xstrdup(plan->name);
        else
            jd->overlay_created = snap_xstrdup(pd->overlay_path);
    }
}

/* by_fd: the overlays are nodes already added (snap_fdpass.h), not files for QEMU. */
static snap_qmp_tx *build_transaction(const snap_plan *plan, bool by_fd)
{
    snap_qmp_tx *tx = snap_qmp_tx_new();
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        if (!pd->via_qmp)
            continue;
        if (pd->method == SNAP_METHOD_INTERNAL)
            snap_qmp_tx_add_internal(tx, pd->disk->node_name, plan->name);
        else if (by_fd)
            snap_qmp_tx_add_external_node(tx, pd->disk->node_name, pd->overlay_node);
        else
            snap_qmp_tx_add_external(tx, NULL, pd->disk->node_name, pd->overlay_node,
                                     pd->overlay_path, "qcow2");
    }
    return tx;
}

/*
 * Test hook, for tests/guest/test_create_*.c only: XLSNAP_TEST_PAUSE_AFTER_FREEZE=<ms>
 * holds the frozen window open (after the freeze is journaled, before the
 * transaction) and says so on stderr, so a test can act inside the window
 * (SIGKILL xlsnap, break an overlay path) deterministically.
 */
static void test_hook_pause_after_freeze(void)
{
    snap_test_hook_pause("XLSNAP_TEST_PAUSE_AFTER_FREEZE", "frozen");
}

/* The file a disk's snapshot writes: its overlay, or the image itself. */
static const char *written_file(const snap_plan_disk *pd)
{
    return pd->method == SNAP_METHOD_EXTERNAL ? pd->overlay_path : pd->disk->xs->path;
}

/* The directory that holds (or would hold) path (malloc'd). */
static char *dir_of(const char *path)
{
    char *dir = snap_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    return dir;
}

/* Less than 1 MiB left for root on the file system that holds (or would hold) path. */
static bool on_full_fs(const char *path)
{
    char *dir = dir_of(path);
    struct statvfs sv;
    bool full = statvfs(dir, &sv) == 0 && (uint64_t)sv.f_bfree * sv.f_frsize < (1u << 20);
    free(dir);
    return full;
}

/*
 * Free space the guest needs right after a live snapshot, for each file it
 * then writes to (a new overlay, or the image itself for an internal
 * snapshot): the first write to each cluster after the snapshot allocates a
 * new one in that file, and a guest just thawed flushes its dirty page cache
 * at once. When that does not fit, QEMU stops the guest on ENOSPC
 * (werror=enospc) in the middle of the thaw. The estimate, documented in
 * xlsnap(1): 64 MiB per such file, summed per file system; far more than a
 * new overlay's metadata (a few 64 KiB clusters) and the first seconds of
 * writes of a small guest, little next to a disk image.
 * XLSNAP_TEST_WRITE_RESERVE=<bytes> changes it, for tests only (0: no check).
 */
#define WRITE_RESERVE_BYTES (64ull << 20)

static uint64_t write_reserve(void)
{
    const char *v = getenv("XLSNAP_TEST_WRITE_RESERVE");
    return v ? strtoull(v, NULL, 10) : WRITE_RESERVE_BYTES;
}

/*
 * Refuses, before anything is frozen or written, a file system short of room
 * (a running domain's: a paused one writes nothing until the user resumes it).
 */
static int check_room(const snap_plan *plan, snap_err *err)
{
    uint64_t reserve = write_reserve();
    dev_t *dev = snap_xcalloc(plan->n_disks + 1, sizeof *dev);
    bool *known = snap_xcalloc(plan->n_disks + 1, sizeof *known);
    int rc = 0;
    for (size_t i = 0; i < plan->n_disks; i++) {
        char *dir = dir_of(written_file(&plan->disks[i]));
        struct stat st;
        known[i] = plan->disks[i].via_qmp && stat(dir, &st) == 0;
        dev[i] = known[i] ? st.st_dev : 0;
        free(dir);
    }
    for (size_t i = 0; reserve && i < plan->n_disks && !rc; i++) {
        char *dir = dir_of(written_file(&plan->disks[i]));
        char vdevs[512] = "";
        size_t n = 0, used = 0;
        for (size_t k = 0; known[i] && k < plan->n_disks; k++)
            if (known[k] && dev[k] == dev[i] && used < sizeof vdevs) {
                int w = snprintf(vdevs + used, sizeof vdevs - used, "%s%s", n ? ", " : "",
                                 plan->disks[k].disk->xs->vdev);
                used += w > 0 ? (size_t)w : 0;
                n++;
            }
        struct statvfs sv;
        uint64_t avail = 0;
        if (n && statvfs(dir, &sv) == 0)
            avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        if (n && avail < n * reserve)
            rc = snap_err_set(
                err, SNAP_ERROR_IO,
                "not enough free space in %s for the guest's writes after the snapshot "
                "(disk%s %s): %llu KiB free, %llu KiB wanted (%llu KiB per disk written "
                "there; see xlsnap(1)); free space there%s",
                dir, n == 1 ? "" : "s", vdevs, (unsigned long long)(avail >> 10),
                (unsigned long long)(n * reserve >> 10),
                (unsigned long long)(reserve >> 10),
                plan->disks[i].method == SNAP_METHOD_EXTERNAL
                    ? " or put the overlays elsewhere (--overlay-dir)"
                    : "");
        free(dir);
    }
    free(dev);
    free(known);
    return rc;
}

/*
 * QEMU rejects a transaction without saying which action failed ("Could not
 * write qcow2 header: No space left on device"): name the disks and files
 * involved, only those on a full file system when that is the complaint.
 */
static void name_failed_disks(const snap_plan *plan, snap_err *err)
{
    bool nospace = strstr(err->msg, "No space left") != NULL;
    size_t n_full = 0;
    for (size_t i = 0; nospace && i < plan->n_disks; i++)
        n_full += on_full_fs(written_file(&plan->disks[i]));
    char ctx[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < plan->n_disks && len < sizeof ctx; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        bool full = pd->via_qmp && n_full && on_full_fs(written_file(pd));
        if (!pd->via_qmp || (n_full && !full))
            continue;
        int w = snprintf(ctx + len, sizeof ctx - len, "%sdisk %s, %s %s%s",
                         len ? "; " : "", pd->disk->xs->vdev,
                         pd->method == SNAP_METHOD_EXTERNAL ? "overlay" : "image",
                         written_file(pd), full ? " (file system full)" : "");
        len += w > 0 ? (size_t)w : 0;
    }
    if (len)
        snap_err_context(err, "%s", ctx);
}

/* What QEMU now lists for the internal snapshot just taken on pd's image. */
static int keep_identity(snap_plan_disk *pd, const char *name, const char *id,
                         snap_meta_qsnap_stamp stamp, bool listed, snap_err *err)
{
    if (!listed)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "disk %s: %s does not list the internal snapshot '%s' just "
                            "taken",
                            pd->disk->xs->vdev, pd->disk->xs->path, name);
    pd->qemu_snap_id = snap_xstrdup(id);
    pd->qemu_snap_stamp = stamp;
    return 0;
}

/* Records the id, date and clock of each internal snapshot from query-block. */
static int identities_from_qmp(snap_qmp *qmp, snap_plan *plan, snap_err *err)
{
    snap_qmp_disks qd;
    bool any = false;
    for (size_t i = 0; i < plan->n_disks; i++)
        any = any || plan->disks[i].method == SNAP_METHOD_INTERNAL;
    if (!any)
        return 0;
    int rc = snap_qmp_query_disks(qmp, &qd, SNAP_QMP_TIMEOUT_MS, err);
    if (rc)
        return snap_err_context(err, "listing the internal snapshots just taken");
    for (size_t i = 0; !rc && i < plan->n_disks; i++) {
        snap_plan_disk *pd = &plan->disks[i];
        if (pd->method != SNAP_METHOD_INTERNAL)
            continue;
        const snap_qmp_disk *q = snap_qmp_disks_find(&qd, pd->disk->node_name);
        const snap_qmp_snapshot *e =
            q ? snap_qmp_disk_find_snapshot(q, plan->name) : NULL;
        rc = keep_identity(pd, plan->name, e ? e->id : NULL,
                           e ? snap_qsnap_stamp_of_qmp(e) : (snap_meta_qsnap_stamp){0},
                           e != NULL, err);
    }
    snap_qmp_disks_free(&qd);
    return rc;
}

/* The disk and file a QMP node-name stands for in this plan. */
static void describe_node(const snap_plan *plan, const char *node, char *buf, size_t len)
{
    snprintf(buf, len, "block node %s", node ? node : "?");
    for (size_t i = 0; node && i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        if ((pd->overlay_node && !strcmp(pd->overlay_node, node)) ||
            (pd->disk->node_name && !strcmp(pd->disk->node_name, node)))
            snprintf(buf, len, "disk %s, file %s", pd->disk->xs->vdev, written_file(pd));
    }
}

/* The BLOCK_IO_ERROR events QEMU queued, in words ("" when none). */
static void describe_io_errors(snap_qmp *qmp, const snap_plan *plan, char *out,
                               size_t len)
{
    snap_err ignored;
    snap_qmp_event *ev;
    size_t used = 0;
    out[0] = '\0';
    snap_qmp_poll_events(qmp, 0, &ignored);
    while ((ev = snap_qmp_next_event(qmp))) {
        const char *node = snap_json_get_string(ev->data, "node-name");
        const char *reason = snap_json_get_string(ev->data, "reason");
        const char *op = snap_json_get_string(ev->data, "operation");
        char what[1024];
        describe_node(plan, node, what, sizeof what);
        if (!strcmp(ev->name, "BLOCK_IO_ERROR") && used < len && !strstr(out, what)) {
            int w = snprintf(out + used, len - used, "%s%s (%s: %s)", used ? "; " : "",
                             what, op ? op : "?", reason ? reason : "?");
            used += w > 0 ? (size_t)w : 0;
        }
        snap_qmp_event_free(ev);
    }
}

/*
 * QEMU stops the guest on ENOSPC (werror=enospc): a guest whose first
 * writes after the thaw do not fit stops in (or just after) the window.
 * SNAP_ERROR_IO naming the disks and files when QEMU's run state is io-error.
 */
static int check_io_stop(snap_qmp *qmp, const snap_plan *plan, snap_err *err)
{
    snap_qmp_status st;
    snap_err ignored;
    if (snap_qmp_query_status(qmp, &st, 1000, &ignored) != 0 ||
        strcmp(st.status, "io-error") != 0)
        return 0;
    char what[1536];
    describe_io_errors(qmp, plan, what, sizeof what);
    return snap_err_set(err, SNAP_ERROR_IO,
                        "QEMU stopped the guest on an I/O error just after the snapshot: "
                        "%s",
                        what[0] ? what : "(QEMU did not say which disk)");
}

/*
 * The transaction timed out inside the window (its time, up to the
 * timeline's thaw_by, ran out) and the guest is thawed now: QEMU's late
 * answer decides (snap_timeline.h, xlsnap(1)). Answered: the snapshot may
 * postdate the thaw, so under best-effort it stands, recorded
 * crash-consistent, and under required it is rolled back. Rejected or not
 * answered: rolled back.
 */
static int await_late_answer(snap_ctx *ctx, snap_qmp *qmp, const snap_plan *plan,
                             snap_quiesce *q, const snap_qmp_tx *tx,
                             snap_quiesce_result *qres, snap_err *err)
{
    const snap_freeze_timeline *tl = snap_quiesce_timeline(q);
    snap_err lerr;
    snap_log(ctx->lg, XTL_WARN,
             "snapshot %s: QEMU did not answer the transaction by %d ms after the "
             "freeze: the guest is thawed; awaiting QEMU's answer %d ms more",
             plan->name, tl->thaw_by_ms, tl->late_answer_ms);
    int rc = snap_qmp_transaction_await(qmp, tx, tl->late_answer_ms, &lerr);
    if (rc) {
        if (rc == SNAP_ERROR_PEER)
            name_failed_disks(plan, &lerr);
        snap_err_append(err,
                        "; the guest was thawed %lld ms after the freeze was sent; "
                        "then %s",
                        (long long)qres->window_ms, lerr.msg);
        return rc;
    }
    snap_quiesce_late_snapshot(q, snap_quiesce_elapsed_ms(q), qres);
    if (plan->quiesce == SNAP_QUIESCE_REQUIRED)
        return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                            "%s: not quiesced, as --quiesce=required wants: the snapshot "
                            "is rolled back",
                            qres->reason);
    snap_log(ctx->lg, XTL_WARN, "snapshot %s: %s: recorded as crash-consistent",
             plan->name, qres->reason);
    snap_err_clear(err);
    return 0;
}

/*
 * The thaw (q may be NULL), QEMU's late answer when the transaction ran out
 * of the window's time (tx_sent), then QEMU's run state: the window's
 * errors first.
 */
static int finish_window(snap_ctx *ctx, snap_qmp *qmp, const snap_plan *plan,
                         snap_quiesce *q, const snap_qmp_tx *tx, bool tx_sent,
                         snap_quiesce_result *qres, bool *io_stopped, int rc,
                         snap_err *err)
{
    snap_err terr;
    bool late = tx_sent && rc == SNAP_ERROR_TIMEDOUT && snap_quiesce_in_window(q);
    int trc = snap_quiesce_thaw(q, qmp, qres, &terr);
    if (late && !trc)
        rc = await_late_answer(ctx, qmp, plan, q, tx, qres, err);
    if (tx_sent && !rc && check_io_stop(qmp, plan, err) != 0) {
        *io_stopped = true;
        if (trc)
            snap_err_append(err, "; %s", terr.msg);
        return SNAP_ERROR_IO;
    }
    if (trc) { /* the guest's state first: it may still be frozen */
        if (rc)
            snap_err_append(&terr, "; %s", err->msg);
        *err = terr;
        return trc;
    }
    return rc;
}

/*
 * A device model that cannot open host paths (dm_restrict) gets its new
 * overlays as descriptors, made and added before the freeze (snap_fdpass.h).
 * When libsnap cannot tell, QEMU is given paths, as before.
 */
static int prepare_overlays(snap_ctx *ctx, snap_qmp *qmp, const snap_plan *plan,
                            bool *by_fd, snap_fdpass *fp, snap_err *err)
{
    bool external = false;
    memset(fp, 0, sizeof *fp);
    *by_fd = false;
    for (size_t i = 0; i < plan->n_disks; i++)
        external = external || (plan->disks[i].method == SNAP_METHOD_EXTERNAL &&
                                plan->disks[i].via_qmp);
    if (!external || !ctx->qmp_confined) /* snap_domain_qmp_open found out */
        return 0;
    *by_fd = true;
    snap_log(ctx->lg, XTL_DETAIL,
             "the device model runs confined: passing the overlays as descriptors");
    return snap_fdpass_prepare(ctx, qmp, plan, fp, err);
}

static bool plan_has(const snap_plan *plan, bool lvm)
{
    for (size_t i = 0; i < plan->n_disks; i++)
        if (lvm ? snap_method_is_lvm(plan->disks[i].method) : plan->disks[i].via_qmp)
            return true;
    return false;
}

/*
 * One snapshot volume per LVM disk, the lvcreate children in parallel, all
 * ended by timeout_ms. What they made on failure is the rollback's (every
 * volume is journaled before). XLSNAP_TRACE: lvm-start/end.
 */
static int snapshot_volumes(snap_ctx *ctx, const snap_plan *plan, int timeout_ms,
                            snap_err *err)
{
    snap_lvm_snap_req *reqs = snap_xcalloc(plan->n_disks, sizeof *reqs);
    size_t n = 0;
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        if (snap_method_is_lvm(pd->method))
            reqs[n++] = (snap_lvm_snap_req){.vg = pd->disk->lv->vg,
                                            .origin = pd->disk->lv->name,
                                            .name = pd->lvm_name,
                                            .thin = pd->method == SNAP_METHOD_LVM_THIN,
                                            .cow_bytes = pd->lvm_cow_bytes};
    }
    snap_lvm_opts o = {.lg = ctx->lg};
    snap_trace("lvm-start");
    int rc = n ? snap_lvm_create_snapshots(&o, reqs, n, timeout_ms, NULL, err) : 0;
    snap_trace("lvm-end");
    free(reqs);
    return rc;
}

/*
 * LVM has no snapshot across volumes: without a freeze, a domain with more
 * than one disk to snapshot and an LVM one among them is paused meanwhile
 * (blkback and QEMU finish the requests in flight), so that every volume
 * is cut at the same instant: crash-consistent, not torn.
 */
static bool needs_pause(const snap_session *s, const snap_plan *plan,
                        const snap_quiesce *q)
{
    return plan_has(plan, true) && plan->n_disks > 1 && !snap_quiesce_in_window(q) &&
           s->dom.ref.state == SNAP_DOMAIN_RUNNING;
}

/*
 * The QMP transaction (when a disk is QEMU's), then the snapshot volumes.
 * Inside the frozen window both fit in timeout_ms, what is left of it (the
 * thaw is due then): the volumes get what the transaction left. Outside
 * one, each has its own timeout. A group member's cut too.
 */
static int cut_disks(snap_ctx *ctx, snap_qmp *qmp, snap_plan *plan, snap_quiesce *q,
                     snap_qmp_tx *tx, int timeout_ms, bool *tx_sent, int *tx_rc,
                     snap_err *err)
{
    uint64_t start = snap_now_ms();
    int rc = 0;
    if (qmp) {
        *tx_sent = true;
        snap_trace("tx-sent");
        rc = snap_qmp_transaction(qmp, tx, timeout_ms, err);
        snap_trace("tx-replied");
        *tx_rc = rc;
        if (rc == SNAP_ERROR_PEER)
            name_failed_disks(plan, err);
    }
    bool in_window = snap_quiesce_in_window(q);
    int left = timeout_ms - (int)(snap_now_ms() - start);
    if (!rc && in_window && plan_has(plan, true) && left <= 1)
        rc = snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                          "the frozen window's time (thaw by %d ms after the freeze) ran "
                          "out before the LVM snapshots were taken",
                          snap_quiesce_timeline(q)->thaw_by_ms);
    if (!rc) /* in the window: what is left of it; else lvm's own timeout */
        rc = snapshot_volumes(ctx, plan, in_window ? left : 0, err);
    return rc;
}

/*
 * Freeze, transaction, thaw: the transaction is the only thing inside the
 * frozen window (QMP is connected and the actions built beforehand), and it
 * gets what is left of the window (snap_quiesce_tx_timeout_ms).
 * *io_stopped: QEMU stopped the guest on an I/O error meanwhile.
 */
static int snapshot_via_qmp(snap_ctx *ctx, snap_session *s, snap_plan *plan,
                            snap_quiesce *q, snap_journal *j, snap_quiesce_result *qres,
                            bool *io_stopped, snap_err *err)
{
    snap_qmp *qmp = NULL;
    snap_fdpass fp = {0};
    bool by_fd = false;
    /* Connected (and QMP-locked) before the freeze: nothing to wait for inside it. */
    int rc = plan_has(plan, false) ? snap_domain_qmp_open(ctx, &s->dom, &qmp, err) : 0;
    if (rc)
        return rc;
    if (qmp)
        rc = prepare_overlays(ctx, qmp, plan, &by_fd, &fp, err);
    snap_qmp_tx *tx = build_transaction(plan, by_fd);
    if (!rc && q)
        rc = snap_quiesce_freeze(ctx, q, &s->st, j, err);
    if (!rc && q && !snap_quiesce_fell_back(q))
        test_hook_pause_after_freeze();
    if (!rc && snap_quiesce_in_window(q) && snap_quiesce_tx_timeout_ms(q) <= 1)
        rc = snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                          "the frozen window's time (thaw by %d ms after the freeze) ran "
                          "out before the transaction was sent",
                          snap_quiesce_timeline(q)->thaw_by_ms);
    bool tx_sent = false, paused = false;
    int tx_rc = 0;
    if (!rc && needs_pause(s, plan, q)) {
        rc = ctx->ops->pause(ctx, &s->dom.ref, err);
        paused = rc == 0;
        if (paused) /* nothing froze it: say how the cut stays consistent */
            snap_log(ctx->lg, XTL_DETAIL,
                     "domain %s paused for the cut of its %zu disks (not frozen)",
                     s->dom.ref.name, plan->n_disks);
    }
    if (!rc)
        rc = cut_disks(ctx, qmp, plan, q, tx, snap_quiesce_tx_timeout_ms(q), &tx_sent,
                       &tx_rc, err);
    snap_err perr;
    if (paused && ctx->ops->unpause(ctx, &s->dom.ref, &perr) && !rc) {
        *err = perr;
        rc = snap_err_context(err, "resuming the domain after its LVM snapshots");
    }
    /* a transaction answered in time awaits nothing late, whatever failed after */
    rc = finish_window(ctx, qmp, plan, q, tx, tx_sent && (!rc || tx_rc), qres, io_stopped,
                       rc, err);
    snap_trace_flush(); /* XLSNAP_TRACE: after the window */
    /* Refused or never sent: the added nodes are nobody's. After a timeout
     * (answered late or not) the rollback removes the files and the fdset
     * collection (snap_domain_qmp_close) the nodes nobody took. */
    if (by_fd && (!tx_sent || tx_rc == SNAP_ERROR_PEER))
        snap_fdpass_abort(ctx, qmp, &fp);
    if (!rc && qmp)
        rc = identities_from_qmp(qmp, plan, err);
    if (qmp)
        snap_domain_qmp_close(ctx, qmp);
    snap_qmp_tx_free(tx);
    snap_fdpass_dispose(&fp);
    return rc ? snap_err_context(err, "domain %s", s->dom.ref.name) : 0;
}

/* Overlays for the external disks, created in parallel (none left on failure). */
static int create_overlays_offline(const snap_qimg_opts *o, const snap_plan *plan,
                                   snap_err *err)
{
    size_t n = 0, cap = plan->n_disks;
    const char **ovl = snap_xcalloc(cap, sizeof *ovl),
               **base = snap_xcalloc(cap, sizeof *base),
               **fmt = snap_xcalloc(cap, sizeof *fmt);
    const snap_plan_disk **pds = snap_xcalloc(cap, sizeof *pds);
    snap_err *per_disk = snap_xcalloc(cap, sizeof *per_disk);
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        if (pd->method != SNAP_METHOD_EXTERNAL)
            continue;
        pds[n] = pd;
        ovl[n] = pd->overlay_path;
        base[n] = pd->disk->xs->path;
        fmt[n++] = pd->disk->xs->format;
    }
    int rc = n ? snap_qimg_create_overlay_many(o, ovl, base, fmt, n, per_disk, err) : 0;
    for (size_t i = 0; rc && i < n; i++)
        if (per_disk[i].code) { /* the first failed disk, in its own words */
            *err = per_disk[i];
            snap_err_context(err, "disk %s", pds[i]->disk->xs->vdev);
            break;
        }
    free(ovl);
    free(base);
    free(fmt);
    free(pds);
    free(per_disk);
    return rc;
}

/*
 * Records the id and date of each internal snapshot (paths: their n images),
 * read from the qcow2 headers (snap_qcow2.h) rather than by n more children.
 */
static int identities_from_qemu_img(const snap_qimg_opts *o, snap_plan *plan,
                                    const char *const paths[], size_t n, snap_err *err)
{
    snap_qimg_chain *chains = snap_xcalloc(n, sizeof *chains);
    snap_err *per_disk = snap_xcalloc(n, sizeof *per_disk);
    int rc = snap_qcow2_chain_get_many(o, paths, n, 0, chains, per_disk, err);
    size_t k = 0; /* paths[] holds the internal disks in plan order */
    for (size_t i = 0; !rc && i < plan->n_disks; i++) {
        snap_plan_disk *pd = &plan->disks[i];
        if (pd->method != SNAP_METHOD_INTERNAL)
            continue;
        const snap_qimg_snapshot *e =
            chains[k].n ? snap_qimg_find_snapshot(&chains[k].images[0], plan->name)
                        : NULL;
        rc = keep_identity(pd, plan->name, e ? e->id : NULL,
                           e ? snap_qsnap_stamp_of_qimg(e) : (snap_meta_qsnap_stamp){0},
                           e != NULL, err);
        k++;
    }
    for (size_t i = 0; i < n; i++)
        snap_qimg_chain_dispose(&chains[i]);
    free(chains);
    free(per_disk);
    return rc;
}

/*
 * Offline: internal snapshots in parallel qemu-img children, then overlays
 * (in parallel too). The plan listed every image without -U (no running
 * QEMU held it) and refused a name an image already has, under the domain
 * lock, moments ago: no second listing before the writes.
 * XLSNAP_TRACE: offline-write-start/end.
 */
static int snapshot_via_qemu_img(snap_ctx *ctx, snap_plan *plan, snap_err *err)
{
    snap_qimg_opts o = {.lg = ctx->lg}; /* -vvv: when each child ran */
    const char **paths = snap_xcalloc(plan->n_disks, sizeof *paths);
    snap_err *per_disk = snap_xcalloc(plan->n_disks, sizeof *per_disk);
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < plan->n_disks; i++)
        if (plan->disks[i].method == SNAP_METHOD_INTERNAL)
            paths[n++] = plan->disks[i].disk->xs->path;
    snap_trace("offline-write-start");
    if (n)
        rc = snap_qimg_snapshot_many_prechecked(&o, SNAP_QIMG_SNAP_CREATE, paths, n,
                                                plan->name, per_disk, err);
    if (!rc)
        rc = create_overlays_offline(&o, plan, err);
    if (!rc)
        rc = snapshot_volumes(ctx, plan, 0, err);
    snap_trace("offline-write-end");
    if (!rc && n)
        rc = identities_from_qemu_img(&o, plan, paths, n, err);
    snap_trace_flush();
    free(paths);
    free(per_disk);
    return rc;
}

/* Journals DISKS_DONE, then points xenstore and the stored config at the new
 * overlays (their old values journaled first). */
static int switch_to_overlays(snap_ctx *ctx, snap_session *s, const snap_plan *plan,
                              snap_journal *j, snap_err *err)
{
    snap_disk_switch *sw = snap_xcalloc(plan->n_disks, sizeof *sw);
    size_t n = 0;
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        if (pd->method != SNAP_METHOD_EXTERNAL)
            continue;
        snap_journal_disk *jd = snap_journal_find_disk(j, pd->disk->xs->vdev);
        jd->has_old = true;
        jd->old_params = snap_xstrdup(pd->disk->xs->params);
        jd->old_format = snap_xstrdup(pd->disk->xs->format);
        jd->old_pdev_path = snap_xstrdup(pd->disk->xs->path);
        sw[n++] = (snap_disk_switch){pd->disk->xs->vdev, "qcow2", pd->overlay_path};
    }
    /* One durable write: the disks' phase and, for overlays, the params to
     * restore (a crash between two such writes left no state this lacks). */
    j->phase = SNAP_PHASE_DISKS_DONE;
    int rc = snap_journal_update(&s->st, j, err);
    /* No config-done after the switch: a create's rollback restores the
     * journaled params whichever of the two phases it finds. */
    if (n && !rc)
        rc = snap_switch_disks(ctx, &s->dom.ref, sw, n, err);
    free(sw);
    return rc;
}

static void record_disks(snap_meta *m, const snap_plan *plan)
{
    for (size_t i = 0; i < plan->n_disks; i++) {
        const snap_plan_disk *pd = &plan->disks[i];
        snap_meta_disk *md = snap_meta_add_disk(m);
        md->vdev = snap_xstrdup(pd->disk->xs->vdev);
        md->backend = snap_xstrdup(pd->disk->xs->backend_type);
        md->method = pd->method;
        md->format = snap_xstrdup(pd->disk->xs->format);
        md->base_path = snap_xstrdup(pd->disk->xs->path);
        if (pd->via_qmp)
            md->node_before = snap_xstrdup(pd->disk->node_name);
        if (snap_method_is_lvm(pd->method)) {
            md->lvm_volume = snap_lv_full_name(pd->disk->lv);
            md->lvm_snapshot = snap_xasprintf("%s/%s", pd->disk->lv->vg, pd->lvm_name);
        } else if (pd->method == SNAP_METHOD_EXTERNAL) {
            md->overlay_path = snap_xstrdup(pd->overlay_path);
            md->overlay_format = snap_xstrdup("qcow2");
            md->node_after = pd->overlay_node ? snap_xstrdup(pd->overlay_node) : NULL;
        } else {
            md->qemu_snap_name = snap_xstrdup(plan->name);
            md->qemu_snap_id = pd->qemu_snap_id ? snap_xstrdup(pd->qemu_snap_id) : NULL;
            md->qemu_snap_stamp = pd->qemu_snap_stamp;
        }
    }
    for (size_t i = 0; i < plan->n_excluded; i++)
        snap_meta_add_excluded(m, plan->excluded[i]);
}

static int record_snapshot(snap_session *s, const snap_plan *plan,
                           const snap_quiesce_result *qres, const snap_memory_save *ms,
                           const char *parent, const char *group, snap_meta *m,
                           snap_err *err)
{
    snap_meta_init(m);
    m->name = snap_xstrdup(plan->name);
    m->group = group ? snap_xstrdup(group) : NULL;
    m->description = snap_xstrdup(plan->description);
    snap_meta_stamp_now(m);
    m->parent = parent ? snap_xstrdup(parent) : NULL;
    m->domain.name = snap_xstrdup(s->dom.ref.name);
    m->domain.uuid = snap_xstrdup(s->dom.ref.uuid);
    m->domain.domid =
        s->dom.ref.state == SNAP_DOMAIN_SHUTOFF ? -1 : (int)s->dom.ref.domid;
    m->domain.state = s->dom.ref.state;
    record_disks(m, plan);
    m->quiesce.policy = plan->quiesce;
    m->quiesce.agent_present = s->dom.agent_path != NULL;
    m->quiesce.frozen_count = qres->frozen_count;
    m->quiesce.window_ms = qres->window_ms;
    m->quiesce.thaw_ok = !qres->attempted || qres->thaw_ok;
    m->quiesce.state = qres->frozen ? SNAP_META_QUIESCED : SNAP_META_CRASH_CONSISTENT;
    m->quiesce.reason = qres->reason ? snap_xstrdup(qres->reason) : NULL;
    m->quiesce.has_timeline = qres->attempted;
    m->quiesce.timeline = plan->timeline;
    if (qres->filesystems) /* may lower the level: partially quiesced */
        snap_fs_selection_record(qres->filesystems, &m->quiesce);
    if (ms->path) {
        m->has_memory = true;
        m->memory_path = snap_xstrdup(ms->path);
        m->memory_size = ms->size;
    }
    int rc = snap_meta_set_config_text(m, s->dom.config, err);
    if (!rc)
        rc = snap_meta_save(&s->st, m, true, err);
    if (!rc)
        rc = snap_meta_set_current(&s->st, m->name, err);
    return rc;
}

/* No device model and no running guest: qemu-img and lvcreate, no window. */
static int plan_is_offline(const snap_session *s, const snap_plan *plan)
{
    return plan->n_disks && !plan_has(plan, false) &&
           s->dom.ref.state == SNAP_DOMAIN_SHUTOFF;
}

/*
 * Checkpoint: pause, disks in one transaction, memory, resume (also after a
 * failure, before the rollback: the domain must not stay paused by us).
 */
static int snapshot_with_memory(snap_ctx *ctx, snap_session *s, snap_plan *plan,
                                snap_journal *j, const snap_create_params *p,
                                snap_memory_save *ms, bool *io_stopped, snap_err *err)
{
    snap_quiesce_result none = {0};
    ms->path = snap_memory_path(&s->st, plan->name);
    int rc = snap_memory_pause(ctx, s, ms, err);
    if (rc)
        return rc;
    bool attempted = false;
    rc = snapshot_via_qmp(ctx, s, plan, NULL, j, &none, io_stopped, err);
    if (!rc) {
        attempted = true;
        rc = snap_memory_write(ctx, s, j, ms, p->progress, p->progress_opaque, err);
    }
    snap_err rerr;
    int rrc = snap_memory_resume(ctx, s, ms, attempted, &rerr);
    if (rrc && !rc) {
        *err = rerr;
        rc = rrc;
    } else if (rrc) {
        snap_err_context(err, "domain left paused (%s)", rerr.msg);
    }
    return rc;
}

/* Everything after the journal is written; on failure the caller rolls back. */
static int create_journaled(snap_ctx *ctx, snap_session *s, snap_plan *plan,
                            const snap_create_params *p, snap_quiesce *q, snap_journal *j,
                            snap_meta *m, bool *io_stopped, snap_err *err)
{
    snap_quiesce_result qres = {0};
    snap_memory_save ms = {0};
    int rc = plan->memory ? snapshot_with_memory(ctx, s, plan, j, p, &ms, io_stopped, err)
             : plan_is_offline(s, plan)
                 ? snapshot_via_qemu_img(ctx, plan, err)
                 : snapshot_via_qmp(ctx, s, plan, q, j, &qres, io_stopped, err);
    if (!rc) /* journals DISKS_DONE */
        rc = switch_to_overlays(ctx, s, plan, j, err);
    if (!rc)
        rc = record_snapshot(s, plan, &qres, &ms, j->prev_current, NULL, m, err);
    if (!rc)
        rc = snap_journal_set_phase(&s->st, j, SNAP_PHASE_METADATA_DONE, err);
    snap_memory_save_dispose(&ms);
    return rc;
}

/*
 * The new snapshot's parent must have a readable record: building on a
 * damaged one would hide the damage under a new branch of the tree.
 */
static int create_check_parent(snap_meta_store *st, const char *current, snap_err *err)
{
    if (!current)
        return 0;
    snap_meta m;
    int rc = snap_meta_load(st, current, &m, err);
    if (rc == SNAP_ERROR_NOTFOUND) {
        snap_err_clear(err); /* a dangling .current: the new snapshot is a root */
        return 0;
    }
    if (rc)
        return snap_err_context(err, "the current snapshot '%s' (the new one's parent)",
                                current);
    snap_meta_dispose(&m);
    return 0;
}

/* The directories of the files the guest writes after the snapshot, for a message. */
static void written_dirs(const snap_plan *plan, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < plan->n_disks && used < len; i++) {
        char *dir = dir_of(written_file(&plan->disks[i]));
        if (!strstr(out, dir)) {
            int w = snprintf(out + used, len - used, "%s%s", used ? " and " : "", dir);
            used += w > 0 ? (size_t)w : 0;
        }
        free(dir);
    }
}

/*
 * QEMU stopped the guest on an I/O error during the create (already said in
 * err). Once rolled back, its disks are what they were before the create
 * (overlays merged back into their images): where the guest ran, so it is
 * resumed as the user had it, and its interrupted thaw completes. Otherwise
 * err says what state it is left in and what to do.
 */
static void resume_after_io_stop(snap_ctx *ctx, snap_session *s, const snap_plan *plan,
                                 snap_quiesce *q, bool rolled_back, snap_err *err)
{
    const char *name = s->dom.ref.name;
    snap_err e;
    if (rolled_back && s->dom.ref.state == SNAP_DOMAIN_RUNNING &&
        ctx->ops->unpause(ctx, &s->dom.ref, &e) == 0) {
        bool pending = snap_quiesce_thaw_pending(q);
        int trc = snap_quiesce_thaw_after_resume(q, &e);
        snap_err_append(err, "; snapshot '%s' was rolled back and domain %s resumed%s%s",
                        plan->name, name,
                        trc       ? ", but "
                        : pending ? ", its filesystems thawed"
                                  : "",
                        trc ? e.msg : "");
        return;
    }
    char dirs[1024];
    written_dirs(plan, dirs, sizeof dirs);
    snap_err_append(
        err,
        "; domain %s is left paused by QEMU (run state io-error)%s: free space in "
        "%s, then run `xl unpause %s`%s",
        name,
        snap_quiesce_thaw_pending(q)
            ? " with the guest's thaw unfinished (it completes once the guest runs)"
            : "",
        dirs, name,
        rolled_back ? ""
                    : "; the next xlsnap command on it then rolls back the "
                      "snapshot");
}

/*
 * The agent's questions asked as soon as the session's lock is held
 * (snap_session_open_then), before the domain's state and disks are read:
 * qemu-ga polls a channel no host process holds only every 100 ms, so its
 * first answer on a fresh connection takes up to that long, and xlsnap's
 * own work before the freeze hides as much of it as it can.
 */
typedef struct first_ask {
    const snap_create_params *p;
    struct snap_agent *ag; /* NULL: not asked */
    char *agent_path;
    uint32_t domid;
    bool tried; /* failed or not: the plan's prepare tries again and reports */
} first_ask;

static void ask_agent_first(snap_ctx *ctx, const snap_domain_ref *ref, void *opaque)
{
    first_ask *fa = opaque;
    if (!snap_quiesce_asks_early(
            fa->p)) /* no config read for a create that will not ask */
        return;
    fa->tried = true;
    fa->agent_path = snap_domain_agent_path(ctx, ref);
    fa->domid = ref->domid;
    fa->ag = snap_quiesce_ask_first(ctx, ref, fa->agent_path, fa->p);
}

/* The first ask's connection if it is to the domain the session resolved. */
static struct snap_agent *take_first_ask(first_ask *fa, const snap_domain *dom)
{
    struct snap_agent *ag = fa->ag;
    fa->ag = NULL;
    if (ag && dom->ref.state != SNAP_DOMAIN_RUNNING) {
        /* Asked before the state was read: a paused guest answers no
         * drain, and the next client's resync skips what it answers later. */
        snap_agent_abandon(ag);
        ag = NULL;
    } else if (ag && (fa->domid != dom->ref.domid || !dom->agent_path ||
                      strcmp(fa->agent_path, dom->agent_path))) {
        snap_quiesce_ask_discard(ag); /* another domain by now */
        ag = NULL;
    }
    return ag;
}

static int create_in_session(snap_ctx *ctx, snap_session *s, const snap_create_params *p,
                             first_ask *fa, snap_meta *m, char **plan_out, snap_err *err)
{
    snap_plan plan;
    snap_quiesce *q = NULL;
    snap_journal j;
    char *current = NULL;
    /* The guest answers the agent's questions while the plan is made. */
    struct snap_agent *asked = take_first_ask(fa, &s->dom);
    if (!asked && !fa->tried) /* a journal was recovered first */
        asked = snap_quiesce_ask_early(ctx, &s->dom, p);
    int rc = snap_plan_create(ctx, &s->dom, &s->st, p, &plan, err);
    snap_trace("planned");
    if (!rc && s->dom.ref.state == SNAP_DOMAIN_RUNNING)
        rc = check_room(&plan, err);
    if (!rc && p->dry_run && plan_out)
        *plan_out = snap_plan_to_json(&plan, &s->dom);
    if (rc || p->dry_run)
        goto out_plan;
    rc = snap_meta_get_current(&s->st, &current, err);
    if (!rc)
        rc = create_check_parent(&s->st, current, err);
    if (!rc) {
        rc = snap_quiesce_prepare_asked(ctx, &s->dom, &plan, asked, &q, err);
        asked = NULL; /* q's now */
    }
    if (rc) {
        free(current); /* not yet the journal's */
        goto out_plan;
    }
    snap_journal_init(&j, SNAP_JOURNAL_CREATE, plan.name);
    journal_intent(&j, &plan, current);
    j.overlay_dir = p->overlay_dir ? realpath(p->overlay_dir, NULL) : NULL;
    rc = snap_journal_begin(&s->st, &j, err);
    if (!rc) {
        bool io_stopped = false;
        rc = create_journaled(ctx, s, &plan, p, q, &j, m, &io_stopped, err);
        if (!io_stopped) {
            snap_quiesce_free(q); /* thaws if still frozen */
            q = NULL;
        }
        if (rc) {
            snap_err rerr;
            int rrc = snap_rollback_create(ctx, s, &j, &rerr);
            if (rrc)
                snap_err_append(err, "; and then %s", rerr.msg);
            if (io_stopped)
                resume_after_io_stop(ctx, s, &plan, q, rrc == 0, err);
        } else {
            rc = snap_journal_finish(&s->st, err);
        }
    }
    snap_journal_dispose(&j); /* owns current */
out_plan:
    snap_quiesce_ask_discard(asked);
    snap_quiesce_free(q);
    snap_plan_dispose(&plan);
    return rc;
}

/*
 * The user's text, checked before the domain is even looked up: a name or
 * description that could reach a terminal as control sequences or reordered
 * by bidirectional controls is refused (snap_text.h), not stored.
 */
static int check_create_text(const snap_create_params *p, snap_err *err)
{
    int rc = p->name ? snap_meta_new_name_check(p->name, err) : 0;
    if (!rc && p->description)
        rc = snap_text_check("the description", p->description, err);
    return rc;
}

int snap_create_domain(snap_ctx *ctx, const char *domain, const snap_create_params *p,
                       snap_info **info_out, char **plan_out)
{
    snap_session s;
    snap_meta m;
    snap_err *err = &ctx->err;
    snap_err_clear(err);
    if (info_out)
        *info_out = NULL;
    if (plan_out)
        *plan_out = NULL;
    snap_trace("create");
    if (check_create_text(p, err))
        return snap_ctx_fail(ctx, err);
    snap_meta_init(&m);
    /* -N too: the lock and the name check need the domain's directory (an
     * empty directory is no snapshot state); a fresh domain has none yet. */
    unsigned flags = SNAP_SESSION_CREATE_DIR;
    if (!p->dry_run)
        flags |= SNAP_SESSION_RECOVER_VANISHED;
    first_ask fa = {.p = p};
    int rc = snap_session_open_then(ctx, domain, flags, ask_agent_first, &fa, &s, err);
    if (!rc)
        rc = create_in_session(ctx, &s, p, &fa, &m, plan_out, err);
    snap_quiesce_ask_discard(fa.ag); /* the session failed */
    free(fa.agent_path);
    if (!rc && info_out && !p->dry_run) {
        *info_out = snap_info_from_meta(&m);
        (*info_out)->current = true;
    }
    snap_meta_dispose(&m);
    snap_session_close(&s);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}

/* ------------------------------------------------------------ group members */

/* Records a member's first failure (later ones are consequences). */
static int member_fail(snap_create_member *mb, int rc, const snap_err *err)
{
    if (rc && !mb->rc) {
        mb->rc = rc;
        mb->err = *err;
    }
    return mb->rc;
}

/* The plan and its checks: what create_in_session does before the agent. */
static int member_plan(snap_ctx *ctx, snap_create_member *mb, const snap_create_params *p,
                       char **current, snap_err *err)
{
    snap_session *s = &mb->s;
    int rc = snap_plan_create(ctx, &s->dom, &s->st, p, &mb->plan, err);
    mb->planned = true; /* a failed plan is disposed too, as create_in_session does */
    mb->offline = !rc && plan_is_offline(s, &mb->plan);
    if (!rc && s->dom.ref.state == SNAP_DOMAIN_RUNNING)
        rc = check_room(&mb->plan, err);
    if (!rc)
        rc = snap_meta_get_current(&s->st, current, err);
    if (!rc)
        rc = create_check_parent(&s->st, *current, err);
    return rc;
}

/* A running member with an agent is frozen unless quiesce is off. */
static bool member_would_freeze(const snap_create_member *mb)
{
    const snap_domain *dom = &mb->s.dom;
    return mb->plan.quiesce != SNAP_QUIESCE_OFF && dom->agent_path &&
           dom->ref.state == SNAP_DOMAIN_RUNNING;
}

int snap_create_member_dry_run(snap_ctx *ctx, const char *domain,
                               const snap_create_params *p, char **plan_json,
                               bool *would_freeze, bool *offline, snap_err *err)
{
    snap_create_member mb;
    char *current = NULL;
    memset(&mb, 0, sizeof mb);
    snap_meta_init(&mb.m);
    *plan_json = NULL;
    *would_freeze = false;
    *offline = false;
    /* As snapshot-create -N: the domain's lock, no vanished domain recovered. */
    int rc = snap_session_open(ctx, domain, SNAP_SESSION_CREATE_DIR, &mb.s, err);
    mb.session_open = rc == 0;
    if (!rc)
        rc = member_plan(ctx, &mb, p, &current, err);
    if (!rc) {
        *plan_json = snap_plan_to_json(&mb.plan, &mb.s.dom);
        *would_freeze = member_would_freeze(&mb);
        *offline = mb.offline;
    }
    free(current);
    snap_create_member_dispose(&mb); /* nothing was journaled, nor frozen */
    return rc;
}

int snap_create_member_prepare(snap_ctx *ctx, snap_create_member *mb, const char *domain,
                               const snap_create_params *p, const char *group)
{
    snap_err err;
    char *current = NULL;
    memset(mb, 0, sizeof *mb);
    mb->domain = domain;
    snap_meta_init(&mb->m);
    int rc = snap_session_open(ctx, domain,
                               SNAP_SESSION_CREATE_DIR | SNAP_SESSION_RECOVER_VANISHED,
                               &mb->s, &err);
    mb->session_open = rc == 0;
    if (!rc)
        rc = member_plan(ctx, mb, p, &current, &err);
    if (!rc)
        rc = snap_quiesce_prepare(ctx, &mb->s.dom, &mb->plan, &mb->q, &err);
    if (rc) {
        free(current);
        return member_fail(mb, rc, &err);
    }
    snap_journal_init(&mb->j, SNAP_JOURNAL_CREATE, mb->plan.name);
    journal_intent(&mb->j, &mb->plan, current); /* owns current */
    mb->j.overlay_dir = p->overlay_dir ? realpath(p->overlay_dir, NULL) : NULL;
    mb->j.group = snap_xstrdup(group);
    mb->journaled = true;
    rc = snap_journal_begin(&mb->s.st, &mb->j, &err);
    if (rc)
        mb->journaled = false; /* nothing written: nothing to roll back */
    return member_fail(mb, rc, &err);
}

void snap_create_member_no_quiesce(snap_create_member *mb)
{
    snap_quiesce_free(mb->q); /* never froze: closes the agent */
    mb->q = NULL;
}

int snap_create_member_connect(snap_ctx *ctx, snap_create_member *mb)
{
    snap_err err;
    if (mb->rc || mb->offline)
        return mb->rc;
    /* A member whose disks are all LVM volumes needs no QEMU (it may have none). */
    int rc = plan_has(&mb->plan, false)
                 ? snap_domain_qmp_open(ctx, &mb->s.dom, &mb->qmp, &err)
                 : 0;
    if (!rc && mb->qmp)
        rc = prepare_overlays(ctx, mb->qmp, &mb->plan, &mb->by_fd, &mb->fp, &err);
    if (!rc)
        mb->tx = build_transaction(&mb->plan, mb->by_fd);
    return member_fail(mb, rc, &err);
}

int snap_create_member_cut_offline(snap_ctx *ctx, snap_create_member *mb)
{
    snap_err err;
    if (mb->rc || !mb->offline)
        return mb->rc;
    int rc = snapshot_via_qemu_img(ctx, &mb->plan, &err);
    if (rc)
        snap_err_context(&err, "domain %s (shut off)", mb->s.dom.ref.name);
    return member_fail(mb, rc, &err);
}

int snap_create_member_freeze(snap_ctx *ctx, snap_create_member *mb)
{
    snap_err err;
    if (mb->rc || !mb->q)
        return mb->rc;
    int rc = snap_quiesce_freeze(ctx, mb->q, &mb->s.st, &mb->j, &err);
    if (!rc && snap_quiesce_fell_back(mb->q))
        rc = snap_err_set(&err, SNAP_ERROR_PEER,
                          "domain %s: its filesystems did not freeze (the guest is "
                          "thawed): a consistency group is cut quiesced or not at all",
                          mb->s.dom.ref.name);
    return member_fail(mb, rc, &err);
}

int snap_create_member_pause(snap_ctx *ctx, snap_create_member *mb)
{
    snap_err err;
    if (mb->rc || mb->s.dom.ref.state != SNAP_DOMAIN_RUNNING)
        return mb->rc;
    mb->pause_ms = snap_now_ms();
    int rc = ctx->ops->pause(ctx, &mb->s.dom.ref, &err);
    mb->paused_by_us = rc == 0;
    return member_fail(mb, rc, &err);
}

int snap_create_member_unpause(snap_ctx *ctx, snap_create_member *mb)
{
    snap_err err;
    if (!mb->paused_by_us)
        return 0;
    int rc = ctx->ops->unpause(ctx, &mb->s.dom.ref, &err);
    mb->unpause_ms = snap_now_ms();
    mb->paused_by_us = rc != 0;
    mb->qres.window_ms = (int64_t)(mb->unpause_ms - mb->pause_ms);
    return member_fail(mb, rc, &err);
}

int snap_create_member_tx_timeout_ms(const snap_create_member *mb)
{
    return snap_quiesce_tx_timeout_ms(mb->q);
}

int snap_create_member_cut(snap_ctx *ctx, snap_create_member *mb, int timeout_ms)
{
    snap_err err;
    if (mb->rc || mb->offline) /* cut before the window */
        return mb->rc;
    if (snap_quiesce_in_window(mb->q) && timeout_ms <= 1)
        return member_fail(mb,
                           snap_err_set(&err, SNAP_ERROR_TIMEDOUT,
                                        "domain %s: the group's frozen window ran out "
                                        "before its cut began",
                                        mb->s.dom.ref.name),
                           &err);
    int rc = cut_disks(ctx, mb->qmp, &mb->plan, mb->q, mb->tx, timeout_ms, &mb->tx_sent,
                       &mb->tx_rc, &err);
    if (rc)
        snap_err_context(&err, "domain %s", mb->s.dom.ref.name);
    return member_fail(mb, rc, &err);
}

int snap_create_member_thaw(snap_ctx *ctx, snap_create_member *mb)
{
    if (mb->offline) /* no QEMU, nothing frozen */
        return mb->rc;
    snap_err err = mb->err;
    /* a transaction answered in time awaits nothing late, whatever failed after */
    bool tx_unsettled = mb->tx_sent && (!mb->rc || mb->tx_rc);
    int rc = finish_window(ctx, mb->qmp, &mb->plan, mb->q, mb->tx, tx_unsettled,
                           &mb->qres, &mb->io_stopped, mb->rc, &err);
    if (!rc && mb->q && mb->qres.reason) /* the transaction landed after the thaw */
        rc = snap_err_set(&err, SNAP_ERROR_TIMEDOUT,
                          "domain %s: %s: its cut is not inside the group's window",
                          mb->s.dom.ref.name, mb->qres.reason);
    if (rc && !mb->rc) {
        mb->rc = rc;
        mb->err = err;
    } else if (rc) {
        mb->err = err; /* finish_window put the guest's state first */
    }
    return mb->rc;
}

int64_t snap_create_member_since_freeze_ms(const snap_create_member *mb)
{
    return mb->q ? snap_quiesce_elapsed_ms(mb->q) : 0;
}

void snap_create_member_disconnect(snap_ctx *ctx, snap_create_member *mb)
{
    snap_err err;
    if (!mb->qmp)
        return;
    if (mb->by_fd && (!mb->tx_sent || mb->tx_rc == SNAP_ERROR_PEER))
        snap_fdpass_abort(ctx, mb->qmp, &mb->fp);
    if (!mb->rc && mb->tx_sent && !mb->tx_rc && /* another member may have failed */
        identities_from_qmp(mb->qmp, &mb->plan, &err) != 0)
        member_fail(mb, err.code, &err);
    snap_domain_qmp_close(ctx, mb->qmp);
    mb->qmp = NULL;
}

int snap_create_member_commit(snap_ctx *ctx, snap_create_member *mb, const char *group)
{
    snap_err err;
    snap_memory_save none = {0};
    if (mb->rc)
        return mb->rc;
    int rc = switch_to_overlays(ctx, &mb->s, &mb->plan, &mb->j, &err);
    if (!rc)
        rc = record_snapshot(&mb->s, &mb->plan, &mb->qres, &none, mb->j.prev_current,
                             group, &mb->m, &err);
    if (!rc)
        rc = snap_journal_set_phase(&mb->s.st, &mb->j, SNAP_PHASE_METADATA_DONE, &err);
    return member_fail(mb, rc, &err);
}

int snap_create_member_rollback(snap_ctx *ctx, snap_create_member *mb, snap_err *err)
{
    if (!mb->journaled)
        return 0;
    snap_create_member_disconnect(ctx, mb);
    if (!mb->io_stopped) {
        snap_quiesce_free(mb->q); /* thaws if still frozen */
        mb->q = NULL;
    }
    int rc = snap_rollback_create(ctx, &mb->s, &mb->j, err);
    mb->journaled = rc != 0;
    return rc;
}

int snap_create_member_finish(snap_create_member *mb)
{
    snap_err err;
    int rc = snap_journal_finish(&mb->s.st, &err);
    mb->journaled = rc != 0;
    return member_fail(mb, rc, &err);
}

void snap_create_member_dispose(snap_create_member *mb)
{
    if (mb->qmp)
        snap_qmp_close(mb->qmp);
    snap_qmp_tx_free(mb->tx);
    snap_fdpass_dispose(&mb->fp);
    snap_quiesce_free(mb->q);
    if (mb->j.snapshot)
        snap_journal_dispose(&mb->j);
    if (mb->planned)
        snap_plan_dispose(&mb->plan);
    snap_meta_dispose(&mb->m);
    if (mb->session_open)
        snap_session_close(&mb->s);
    memset(mb, 0, sizeof *mb);
}
