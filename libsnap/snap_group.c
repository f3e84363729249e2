/*
 * Consistency groups (issue 20): one snapshot across several domains.
 *
 * snap_group_create orchestrates one snapshot-create per domain
 * (snap_create.h), phase by phase across the members:
 *
 *   groups lock -> every member prepared, in domain-name order (its lock,
 *   its journal recovered, its plan, its agent, its journal "planned" naming
 *   the group) -> quiesced: QMP connected, all frozen in parallel, each
 *   member cut in parallel inside the shared window (one QMP transaction
 *   per QEMU, then the lvcreate children of its LVM volumes: a member
 *   whose disks are all LVM volumes needs no QEMU), all thawed in parallel
 *   | crash-consistent: all paused in parallel, QMP connected, the cuts in
 *   parallel, all unpaused -> every member
 *   recorded (marked as the group's, "metadata-done") -> the group record
 *   written: the commit point -> every member's journal cleared.
 *
 * All or nothing: a member that fails any phase stops the group before the
 * next one, and every journaled member is rolled back (snap_rollback.c, the
 * code recovery uses), every guest thawed or resumed first. After a crash
 * the next command on any member finds its journal: a member whose group
 * record was never written is rolled back, at any phase (snap_recover.c).
 *
 * snap_group_revert and snap_group_delete check every member (a dry run of
 * each) under the groups lock, then journal the operation in the groups
 * directory (snap_group_store.h: the members in order, which are done)
 * before the first member changes, and run the members one by one, the
 * journal rewritten durably after each (snap_group_pending.c); it is
 * removed once the operation is complete (for a delete: after the group
 * record). After a crash, the next create, revert or delete of any member,
 * or of the group, rolls it forward first (snap_ops.c, and below).
 *
 * Lock order, never broken: the groups directory's lock first, then the
 * domains' locks in domain-name order (each member operation takes and
 * drops its own). A single-domain operation that finds a pending group
 * operation naming its domain finishes it before taking its domain lock,
 * under the groups lock. So two group operations (or a group and a
 * single-domain one) never wait for each other in a cycle. The groups lock
 * is never taken twice by one process (a second flock of the same file
 * would wait for ever): under it, the members run through snap_ops.h, the
 * internal path that skips the pending-group check.
 *
 * Threads: the freeze, the transactions and the thaw of the members run on
 * one thread per member, joined before the next phase; each member's agent,
 * QMP connection, journal and error are its own, and the context is only
 * used for logging there.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_create.h"
#include "snap_group_pending.h"
#include "snap_json.h"
#include "snap_lock.h"
#include "snap_ops.h"
#include "snap_trace.h"

typedef struct group_run {
    snap_ctx *ctx;
    const char *name;
    snap_create_member *mb;
    size_t n;
    bool quiesced;
    int tx_timeout_ms;
    int64_t window_ms;
} group_run;

typedef void member_step(group_run *g, snap_create_member *mb);

typedef struct step_arg {
    group_run *g;
    snap_create_member *mb;
    member_step *fn;
} step_arg;

static void *step_thread(void *opaque)
{
    step_arg *a = opaque;
    a->fn(a->g, a->mb);
    return NULL;
}

/* Runs fn on every member at once (a thread each), and waits for all. */
static void each_in_parallel(group_run *g, member_step *fn)
{
    pthread_t *t = snap_xcalloc(g->n, sizeof *t);
    bool *started = snap_xcalloc(g->n, sizeof *started);
    step_arg *args = snap_xcalloc(g->n, sizeof *args);
    sigset_t all, saved; /* the caller's signals stay on the caller's threads */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    for (size_t i = 0; i < g->n; i++) {
        args[i] = (step_arg){g, &g->mb[i], fn};
        started[i] = pthread_create(&t[i], NULL, step_thread, &args[i]) == 0;
        if (!started[i]) /* no thread: run it here, the window just grows */
            fn(g, &g->mb[i]);
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    for (size_t i = 0; i < g->n; i++)
        if (started[i])
            pthread_join(t[i], NULL);
    free(t);
    free(started);
    free(args);
}

static void step_freeze(group_run *g, snap_create_member *mb)
{
    snap_create_member_freeze(g->ctx, mb);
}

static void step_pause(group_run *g, snap_create_member *mb)
{
    snap_create_member_pause(g->ctx, mb);
}

static void step_unpause(group_run *g, snap_create_member *mb)
{
    snap_create_member_unpause(g->ctx, mb);
}

static void step_cut(group_run *g, snap_create_member *mb)
{
    snap_create_member_cut(g->ctx, mb, g->tx_timeout_ms);
}

static void step_thaw(group_run *g, snap_create_member *mb)
{
    snap_create_member_thaw(g->ctx, mb);
}

/* The first failed member, or NULL. */
static snap_create_member *first_failed(const group_run *g)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->mb[i].rc)
            return &g->mb[i];
    return NULL;
}

static void connect_all(group_run *g)
{
    for (size_t i = 0; i < g->n && !first_failed(g); i++)
        snap_create_member_connect(g->ctx, &g->mb[i]);
}

static void disconnect_all(group_run *g)
{
    for (size_t i = 0; i < g->n; i++)
        snap_create_member_disconnect(g->ctx, &g->mb[i]);
}

/*
 * Freeze all, cut all, thaw all. One budget: every cut (transaction, then
 * LVM volumes) gets what is left of the member window that ends first. The group's
 * window: from the first freeze sent to the last thaw answered.
 */
static void cut_quiesced(group_run *g)
{
    connect_all(g);
    if (first_failed(g))
        return;
    snap_trace("group-freeze");
    each_in_parallel(g, step_freeze);
    if (!first_failed(g)) {
        g->tx_timeout_ms = snap_create_member_tx_timeout_ms(&g->mb[0]);
        for (size_t i = 1; i < g->n; i++) {
            int t = snap_create_member_tx_timeout_ms(&g->mb[i]);
            g->tx_timeout_ms = t < g->tx_timeout_ms ? t : g->tx_timeout_ms;
        }
        snap_test_hook_pause("XLSNAP_TEST_PAUSE_AFTER_FREEZE", "frozen");
        snap_trace("group-tx-sent");
        each_in_parallel(g, step_cut);
        snap_trace("group-tx-replied");
    }
    each_in_parallel(g, step_thaw); /* every member, whatever failed */
    snap_trace("group-thawed");
    for (size_t i = 0; i < g->n; i++) { /* the earliest freeze, now the last thaw is in */
        int64_t since_freeze = snap_create_member_since_freeze_ms(&g->mb[i]);
        g->window_ms = since_freeze > g->window_ms ? since_freeze : g->window_ms;
    }
    disconnect_all(g);
    snap_trace_flush();
}

/* No freeze for some member: every domain paused for the cut instead. */
static void cut_paused(group_run *g)
{
    size_t live = 0;
    for (size_t i = 0; i < g->n; i++)
        live += !g->mb[i].offline;
    snap_log(g->ctx->lg, XTL_NOTICE,
             "group %s: not every member can be quiesced: pausing all %zu domains%s for "
             "the cut (crash-consistent)",
             g->name, live, live < g->n ? " not shut off" : "");
    for (size_t i = 0; i < g->n; i++)
        snap_create_member_no_quiesce(&g->mb[i]);
    snap_trace("group-pause");
    each_in_parallel(g, step_pause);
    connect_all(g);
    if (!first_failed(g)) {
        g->tx_timeout_ms = SNAP_QMP_TIMEOUT_MS;
        snap_test_hook_pause("XLSNAP_TEST_PAUSE_AFTER_FREEZE", "frozen");
        each_in_parallel(g, step_cut);
    }
    each_in_parallel(g, step_thaw); /* no freeze: checks QEMU's state */
    disconnect_all(g);
    each_in_parallel(g, step_unpause);
    snap_trace("group-unpaused");
    uint64_t first = 0, last = 0;
    for (size_t i = 0; i < g->n; i++) {
        const snap_create_member *mb = &g->mb[i];
        if (!mb->pause_ms)
            continue;
        first = !first || mb->pause_ms < first ? mb->pause_ms : first;
        last = mb->unpause_ms > last ? mb->unpause_ms : last;
    }
    g->window_ms = last > first ? (int64_t)(last - first) : 0;
    snap_trace_flush();
}

/*
 * Undoes every journaled member, last first; err (the first failure) gets
 * what the rollback could not do, or that nothing was kept.
 */
static void rollback_all(group_run *g, snap_err *err)
{
    bool clean = true;
    for (size_t i = g->n; i-- > 0;) {
        snap_err rerr;
        if (snap_create_member_rollback(g->ctx, &g->mb[i], &rerr) != 0) {
            clean = false;
            snap_err_append(err, "; and then %s", rerr.msg);
        }
    }
    if (clean)
        snap_err_append(err,
                        "; group '%s' was rolled back: no domain kept a member snapshot",
                        g->name);
}

/* The group record from the members just recorded (domain-name order). */
static snap_group_info *group_info_of(const group_run *g)
{
    snap_group_info *gi = snap_xcalloc(1, sizeof *gi);
    gi->name = snap_xstrdup(g->name);
    gi->creation_sec = g->mb[0].m.ctime_sec;
    gi->creation_nsec = g->mb[0].m.ctime_nsec;
    gi->quiesced = g->quiesced;
    gi->window_ms = g->window_ms;
    gi->n_members = g->n;
    gi->members = snap_xcalloc(g->n, sizeof *gi->members);
    for (size_t i = 0; i < g->n; i++) {
        const snap_meta *m = &g->mb[i].m;
        gi->members[i] = (snap_group_member){
            .domain_name = snap_xstrdup(m->domain.name),
            .domain_uuid = snap_xstrdup(m->domain.uuid),
            .snapshot = snap_xstrdup(m->name),
            .consistency = snap_meta_consistency_public(m->quiesce.state),
            .frozen_count = m->quiesce.frozen_count,
            .window_ms = g->mb[i].qres.window_ms,
            .shut_off = g->mb[i].offline,
        };
    }
    gi->json = snap_group_record_to_json(gi);
    return gi;
}

/* Records every member, then the group (the commit point), then clears the journals. */
static int commit_all(group_run *g, snap_meta_store *gst, snap_group_info **out,
                      snap_err *err)
{
    for (size_t i = 0; i < g->n && !first_failed(g); i++)
        snap_create_member_commit(g->ctx, &g->mb[i], g->name);
    snap_create_member *bad = first_failed(g);
    if (bad) {
        *err = bad->err;
        return bad->rc;
    }
    snap_group_info *gi = group_info_of(g);
    snap_test_hook_pause("XLSNAP_TEST_PAUSE_BEFORE_GROUP_RECORD", "members recorded");
    int rc = snap_group_record_save(gst, gi, err);
    if (rc) {
        snap_group_info_free(gi);
        return rc;
    }
    for (size_t i = 0; i < g->n; i++) /* a journal left is finished by recovery */
        snap_create_member_finish(&g->mb[i]);
    *out = gi;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The domains in lock order (sorted by name); duplicates refused. */
static int sorted_domains(const char *const *domains, size_t n, const char ***out,
                          snap_err *err)
{
    const char **v = snap_xcalloc(n, sizeof *v);
    memcpy(v, domains, n * sizeof *v);
    qsort(v, n, sizeof *v, by_name);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (!strcmp(v[i - 1], v[i]))
            rc = snap_err_set(err, SNAP_ERROR_INVAL, "domain %s is named twice", v[i]);
    if (rc)
        free(v);
    else
        *out = v;
    return rc;
}

static int check_group_params(const char *group, size_t n, const snap_create_params *p,
                              snap_err *err)
{
    if (!group)
        return snap_err_set(err, SNAP_ERROR_INVAL, "a group needs a name");
    int rc = snap_meta_new_name_check(group, err);
    if (rc)
        return snap_err_context(err, "group name");
    if (n < 1)
        return snap_err_set(err, SNAP_ERROR_INVAL, "group %s: no domain given", group);
    if (p->memory)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "group %s: a memory checkpoint is not supported for a "
                            "consistency group",
                            group);
    return 0;
}

/* Every member prepared, then cut, then committed or rolled back. */
static int group_create_locked(group_run *g, snap_meta_store *gst,
                               const snap_create_params *params, const char **order,
                               snap_group_info **out, snap_err *err)
{
    snap_create_params p = *params;
    p.name = g->name;
    bool frozen = true, live = false; /* shut-off members need no freeze */
    for (size_t i = 0; i < g->n && !first_failed(g); i++) {
        snap_create_member_prepare(g->ctx, &g->mb[i], order[i], &p, g->name);
        live = live || !g->mb[i].offline;
        frozen = frozen && (g->mb[i].offline || g->mb[i].q);
    }
    g->quiesced = live && frozen;
    /* Their disks do not change: cut before the window, which they would lengthen. */
    for (size_t i = 0; i < g->n && !first_failed(g); i++)
        snap_create_member_cut_offline(g->ctx, &g->mb[i]);
    if (!first_failed(g) && live) { /* all shut off: no window at all */
        if (g->quiesced)
            cut_quiesced(g);
        else
            cut_paused(g);
    }
    snap_create_member *bad = first_failed(g);
    int rc = bad ? bad->rc : commit_all(g, gst, out, err);
    if (bad)
        *err = bad->err;
    if (rc)
        rollback_all(g, err);
    return rc;
}

/* Under the groups lock: a group of that name must not exist yet. */
static int refuse_existing_group(snap_meta_store *gst, const char *group, snap_err *err)
{
    snap_group_info *old = NULL;
    int rc = snap_group_record_load(gst, group, &old, err);
    snap_group_info_free(old);
    if (rc != SNAP_ERROR_NOTFOUND)
        return snap_err_set(err, SNAP_ERROR_EXISTS, "group '%s' already exists", group);
    snap_err_clear(err);
    return 0;
}

/*
 * Under the groups lock: the members' pending group operations finished
 * first, then the group made unless it exists.
 */
static int create_new_group(snap_ctx *ctx, snap_meta_store *gst, const char *group,
                            const char **order, size_t n,
                            const snap_create_params *params, snap_group_info **info_out,
                            snap_err *err)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++)
        rc = snap_group_finish_for_domain_locked(ctx, gst, order[i], err);
    if (!rc)
        rc = refuse_existing_group(gst, group, err);
    if (rc)
        return rc;
    group_run g = {ctx, group, snap_xcalloc(n, sizeof *g.mb), n, false, 0, 0};
    snap_group_info *gi = NULL;
    rc = group_create_locked(&g, gst, params, order, &gi, err);
    for (size_t i = g.n; i-- > 0;)
        snap_create_member_dispose(&g.mb[i]);
    free(g.mb);
    if (info_out)
        *info_out = gi;
    else
        snap_group_info_free(gi);
    return rc;
}

/* ------------------------------------------------------------ dry run */

/*
 * The group's plan: a header naming the group and its cut (live: a member
 * runs, so there is a window; frozen: every running member would be
 * frozen), each member's plan.
 */
static char *group_plan_json(const char *group, bool live, bool frozen,
                             char *const *plans, size_t n)
{
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "group", group);
    snap_json_kv_int(g, "domains", (long long)n);
    snap_json_kv_str(g, "cut", !live ? "none" : frozen ? "quiesced" : "paused");
    snap_json_kv_str(g, "how",
                     !live    ? "every domain is shut off: its disks are snapshotted "
                                "as they are, no guest frozen or paused"
                     : frozen ? "every guest frozen in parallel under one budget, every "
                                "disk cut in the shared frozen window (one QMP "
                                "transaction per QEMU), all thawed"
                              : "crash-consistent: every domain paused for the cut, "
                                "then unpaused");
    snap_json_key(g, "members");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++) {
        snap_err ignore;
        yajl_val v = snap_json_parse(plans[i], "a member's plan", &ignore);
        snap_json_tree(g, v); /* our own JSON: it parses */
        yajl_tree_free(v);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    return snap_json_gen_finish(g, NULL);
}

/*
 * Every member checked and planned as the real run would, in lock order;
 * the first that cannot be snapshotted is the error. Nothing is journaled,
 * frozen or paused; pending group operations on a member are only noted.
 */
static int plan_members(snap_ctx *ctx, const char *group, const char **order, size_t n,
                        const snap_create_params *params, char **plan_out, snap_err *err)
{
    snap_create_params p = *params;
    p.name = group;
    char **plans = snap_xcalloc(n, sizeof *plans);
    bool frozen = true, live = false; /* as group_create_locked decides */
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        bool freezes = false, offline = false;
        snap_group_note_pending(ctx->lg, ctx->statedir, order[i], order[i]);
        rc = snap_create_member_dry_run(ctx, order[i], &p, &plans[i], &freezes, &offline,
                                        err);
        if (rc)
            snap_err_context(err, "group %s: domain %s cannot be snapshotted", group,
                             order[i]);
        live = live || !offline;
        frozen = frozen && (offline || freezes);
    }
    if (!rc && plan_out)
        *plan_out = group_plan_json(group, live, frozen, plans, n);
    for (size_t i = 0; i < n; i++)
        free(plans[i]);
    free(plans);
    return rc;
}

/* The dry run: refused as the real run would be, under the groups lock if any. */
static int plan_group(snap_ctx *ctx, const char *group, const char **order, size_t n,
                      const snap_create_params *params, char **plan_out, snap_err *err)
{
    snap_meta_store gst;
    snap_lock lock;
    /* No groups directory yet: no group exists, and none is made here. */
    int rc = snap_meta_store_open_groups(&gst, ctx->statedir, false, err);
    if (rc == SNAP_ERROR_NOTFOUND) {
        snap_err_clear(err);
        return plan_members(ctx, group, order, n, params, plan_out, err);
    }
    if (rc)
        return rc;
    rc = snap_lock_acquire(&gst, &lock, SNAP_LOCK_TIMEOUT_MS, err);
    if (!rc) {
        rc = refuse_existing_group(&gst, group, err);
        if (!rc)
            rc = plan_members(ctx, group, order, n, params, plan_out, err);
        snap_lock_release(&lock);
    }
    snap_meta_store_close(&gst);
    return rc;
}

/* Under a new or existing groups store's lock: the group made (create_new_group). */
static int create_group(snap_ctx *ctx, const char *group, const char **order, size_t n,
                        const snap_create_params *params, snap_group_info **info_out,
                        snap_err *err)
{
    snap_meta_store gst;
    snap_lock lock;
    int rc = snap_meta_store_open_groups(&gst, ctx->statedir, true, err);
    if (rc)
        return rc;
    rc = snap_lock_acquire(&gst, &lock, SNAP_LOCK_TIMEOUT_MS, err);
    if (!rc) {
        rc = create_new_group(ctx, &gst, group, order, n, params, info_out, err);
        snap_lock_release(&lock);
    }
    snap_meta_store_close(&gst);
    return rc;
}

/* The group made, or with params->dry_run its plan: the same checks first. */
static int create_or_plan(snap_ctx *ctx, const char *group, const char *const *domains,
                          size_t n, const snap_create_params *params,
                          snap_group_info **info_out, char **plan_out)
{
    snap_err *err = &ctx->err;
    const char **order = NULL;
    snap_err_clear(err);
    if (info_out)
        *info_out = NULL;
    if (plan_out)
        *plan_out = NULL;
    snap_trace(params->dry_run ? "group-create-plan" : "group-create");
    int rc = check_group_params(group, n, params, err);
    if (!rc)
        rc = sorted_domains(domains, n, &order, err);
    if (!rc) {
        snap_err local; /* the member calls reuse ctx->err */
        snap_err_clear(&local);
        rc = params->dry_run
                 ? plan_group(ctx, group, order, n, params, plan_out, &local)
                 : create_group(ctx, group, order, n, params, info_out, &local);
        if (rc)
            *err = local;
    }
    free(order);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}

int snap_group_create_plan(snap_ctx *ctx, const char *group, const char *const *domains,
                           size_t n, const snap_create_params *params,
                           snap_group_info **info_out, char **plan_out)
{
    return create_or_plan(ctx, group, domains, n, params, info_out, plan_out);
}

int snap_group_create(snap_ctx *ctx, const char *group, const char *const *domains,
                      size_t n, const snap_create_params *params,
                      snap_group_info **info_out)
{
    return create_or_plan(ctx, group, domains, n, params, info_out, NULL);
}

/* Logs a note when group has an operation a dead xlsnap left journaled. */
static void note_group_op(snap_ctx *ctx, snap_meta_store *gst, const char *group)
{
    snap_group_op *op = NULL;
    snap_err ignore;
    if (snap_group_op_load(gst, group, &op, &ignore) == SNAP_ERROR_NOTFOUND)
        return;
    if (!op) {
        snap_log(ctx->lg, XTL_WARN, "note: group '%s': %s", group, ignore.msg);
        return;
    }
    char *done = snap_group_op_members(op, true),
         *left = snap_group_op_members(op, false);
    snap_log(ctx->lg, XTL_NOTICE,
             "note: group '%s': its %s was interrupted (done: %s; not yet: %s); the "
             "next snapshot-create, -revert or -delete of a member, or of the group, "
             "finishes it",
             group, snap_group_op_kind_name(op->kind), done, left);
    free(done);
    free(left);
    snap_group_op_free(op);
}

/* The groups' store, for a group that must exist (a valid name, else NOTFOUND). */
static int open_existing_group(snap_ctx *ctx, const char *group, snap_meta_store *gst,
                               snap_err *err)
{
    int rc = snap_meta_new_name_check(group, err);
    if (!rc)
        rc = snap_meta_store_open_groups(gst, ctx->statedir, false, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "no group '%s'", group);
    return rc;
}

int snap_group_get(snap_ctx *ctx, const char *group, snap_group_info **info_out)
{
    snap_err *err = &ctx->err;
    snap_meta_store gst;
    snap_err_clear(err);
    *info_out = NULL;
    int rc = open_existing_group(ctx, group, &gst, err);
    if (rc)
        return snap_ctx_fail(ctx, err);
    note_group_op(ctx, &gst, group);
    rc = snap_group_record_load(&gst, group, info_out, err);
    snap_meta_store_close(&gst);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}

int snap_group_list(snap_ctx *ctx, snap_group_info ***list_out, size_t *n_out)
{
    snap_err *err = &ctx->err;
    snap_meta_store gst;
    char **names = NULL;
    size_t n = 0;
    snap_err_clear(err);
    *list_out = NULL;
    *n_out = 0;
    int rc = snap_meta_store_open_groups(&gst, ctx->statedir, false, err);
    if (rc == SNAP_ERROR_NOTFOUND) { /* no group was ever made */
        snap_err_clear(err);
        return 0;
    }
    if (rc)
        return snap_ctx_fail(ctx, err);
    rc = snap_group_record_names(&gst, &names, &n, err);
    snap_group_info **list = snap_xcalloc(n + 1, sizeof *list);
    size_t got = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        note_group_op(ctx, &gst, names[i]);
        if ((rc = snap_group_record_load(&gst, names[i], &list[got], err)) == 0)
            got++;
    }
    snap_strv_free(names, n);
    snap_meta_store_close(&gst);
    if (rc) {
        snap_group_info_list_free(list, got);
        return snap_ctx_fail(ctx, err);
    }
    *list_out = list;
    *n_out = got;
    return 0;
}

/* ------------------------------------------------------------ revert, delete */

/*
 * Each member of g in turn: its snapshot must be there and be the group's
 * (missing ones skipped, and *missing set, when allowed). The member's
 * problem goes to err with its domain.
 */
static int check_members(snap_ctx *ctx, const snap_group_info *g, bool allow_missing,
                         bool *missing, snap_err *err)
{
    for (size_t i = 0; i < g->n_members; i++) {
        const snap_group_member *m = &g->members[i];
        snap_info *info = NULL;
        int rc = snap_info_get(ctx, m->domain_uuid, m->snapshot, &info);
        missing[i] = rc == SNAP_ERROR_NOTFOUND && allow_missing;
        if (missing[i])
            continue;
        if (rc)
            return snap_err_set(err, rc, "group %s: domain %s: %s; nothing was changed",
                                g->name, m->domain_name, snap_ctx_errmsg(ctx));
        bool ours = info->group && !strcmp(info->group, g->name);
        snap_info_free(info);
        if (!ours)
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "group %s: snapshot '%s' of domain %s is not a member of "
                                "the group; nothing was changed",
                                g->name, m->snapshot, m->domain_name);
    }
    return 0;
}

/* A dry run of the member's revert or delete (snap_ops.h: the groups lock is ours). */
static int dry_run_member(snap_ctx *ctx, const snap_group_op *op,
                          const snap_group_op_member *m)
{
    char *plan = NULL;
    int rc;
    if (op->kind == SNAP_GROUP_OP_REVERT) {
        snap_revert_params p;
        snap_revert_params_init(&p);
        p.force = op->force;
        p.state = op->state;
        p.dry_run = true;
        rc = snap_revert_domain(ctx, m->domain_uuid, m->snapshot, &p, &plan);
    } else {
        snap_delete_params p;
        snap_delete_params_init(&p);
        p.metadata_only = op->metadata_only;
        p.dry_run = true;
        rc = snap_delete_domain(ctx, m->domain_uuid, m->snapshot, &p, &plan);
    }
    free(plan);
    return rc;
}

/* The journal of op on g's members present (missing ones left out). */
static snap_group_op *op_of(const snap_group_info *g, const bool *missing,
                            snap_group_op_kind kind)
{
    snap_group_op *op = snap_xcalloc(1, sizeof *op);
    op->group = snap_xstrdup(g->name);
    op->kind = kind;
    op->members = snap_xcalloc(g->n_members, sizeof *op->members);
    for (size_t i = 0; i < g->n_members; i++) {
        if (missing[i])
            continue;
        const snap_group_member *m = &g->members[i];
        op->members[op->n_members++] = (snap_group_op_member){
            .domain_name = snap_xstrdup(m->domain_name),
            .domain_uuid = snap_xstrdup(m->domain_uuid),
            .snapshot = snap_xstrdup(m->snapshot),
        };
    }
    return op;
}

/*
 * Every member dry-run first (the first refusal stops the group before
 * anything changed); then, unless dry_run, the journal written and the
 * members run in domain-name order (snap_group_pending.c). A delete whose
 * members are all gone already just removes the record.
 */
static int run_journaled(snap_ctx *ctx, snap_meta_store *gst, const snap_group_info *g,
                         snap_group_op *op, bool dry_run, snap_err *err)
{
    const char *verb = op->kind == SNAP_GROUP_OP_DELETE ? "deleted" : "reverted";
    for (size_t i = 0; i < op->n_members; i++)
        if (dry_run_member(ctx, op, &op->members[i]) != 0)
            return snap_err_set(
                err, ctx->err.code,
                "group %s: domain %s cannot be %s: %s; nothing was changed", g->name,
                op->members[i].domain_name, verb, snap_ctx_errmsg(ctx));
    if (dry_run)
        return 0;
    if (!op->n_members)
        return snap_group_record_remove(gst, g->name, err);
    return snap_group_op_run(ctx, gst, op, err);
}

/*
 * First what a dead xlsnap left journaled: the group's own operation
 * (*done when it was this one: finishing it is the command), then any
 * other naming one of the group's members.
 */
static int finish_pending(snap_ctx *ctx, snap_meta_store *gst, const char *group,
                          snap_group_op_kind kind, bool *done, snap_err *err)
{
    bool found = false;
    snap_group_op_kind was = kind;
    *done = false;
    int rc = snap_group_finish_group_locked(ctx, gst, group, &found, &was, err);
    if (rc || (found && was == kind)) {
        *done = !rc;
        return rc;
    }
    snap_group_info *g = NULL;
    rc = snap_group_record_load(gst, group, &g, err);
    for (size_t i = 0; !rc && i < g->n_members; i++)
        rc =
            snap_group_finish_for_domain_locked(ctx, gst, g->members[i].domain_uuid, err);
    snap_group_info_free(g);
    return rc;
}

typedef struct group_op_args {
    snap_group_op_kind kind;
    bool dry_run;
    const snap_revert_params *revert;
    const snap_delete_params *del;
} group_op_args;

/* Under the groups lock: the pending first, then the group's members. */
static int group_op_locked(snap_ctx *ctx, snap_meta_store *gst, const char *group,
                           const group_op_args *a, snap_err *err)
{
    bool done = false;
    int rc = a->dry_run ? 0 : finish_pending(ctx, gst, group, a->kind, &done, err);
    if (rc || done)
        return rc;
    if (a->dry_run)
        note_group_op(ctx, gst, group);
    snap_group_info *g = NULL;
    rc = snap_group_record_load(gst, group, &g, err);
    if (rc)
        return rc;
    bool *missing = snap_xcalloc(g->n_members, sizeof *missing);
    rc = check_members(ctx, g, a->kind == SNAP_GROUP_OP_DELETE, missing, err);
    snap_group_op *op = rc ? NULL : op_of(g, missing, a->kind);
    if (op && a->revert) {
        op->force = a->revert->force;
        op->state = a->revert->state;
        op->progress = a->revert->progress;
        op->progress_opaque = a->revert->progress_opaque;
    }
    if (op && a->del)
        op->metadata_only = a->del->metadata_only;
    if (op)
        rc = run_journaled(ctx, gst, g, op, a->dry_run, err);
    snap_group_op_free(op);
    free(missing);
    snap_group_info_free(g);
    return rc;
}

/* Runs a's operation on group under the groups lock. */
static int with_group(snap_ctx *ctx, const char *group, const group_op_args *a)
{
    snap_err *err = &ctx->err;
    snap_meta_store gst;
    snap_lock lock;
    snap_err_clear(err);
    int rc = open_existing_group(ctx, group, &gst, err);
    if (rc)
        return snap_ctx_fail(ctx, err);
    rc = snap_lock_acquire(&gst, &lock, SNAP_LOCK_TIMEOUT_MS, err);
    if (!rc) {
        snap_err local; /* the member calls reuse ctx->err */
        snap_err_clear(&local);
        if ((rc = group_op_locked(ctx, &gst, group, a, &local)) != 0)
            *err = local;
        snap_lock_release(&lock);
    }
    snap_meta_store_close(&gst);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}

int snap_group_revert(snap_ctx *ctx, const char *group, const snap_revert_params *params)
{
    group_op_args a = {SNAP_GROUP_OP_REVERT, params->dry_run, params, NULL};
    return with_group(ctx, group, &a);
}

/* Members first (one missing: deleted already), the record last. */
int snap_group_delete(snap_ctx *ctx, const char *group, const snap_delete_params *params)
{
    if (params->scope != SNAP_DELETE_ONE) {
        snap_err_set(&ctx->err, SNAP_ERROR_INVAL,
                     "group %s: a group's members are deleted one each", group);
        return snap_ctx_fail(ctx, &ctx->err);
    }
    group_op_args a = {SNAP_GROUP_OP_DELETE, params->dry_run, NULL, params};
    return with_group(ctx, group, &a);
}
