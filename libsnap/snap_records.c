/*
 * snapshot-list and snapshot-info: records read from the metadata store,
 * turned into the public snap_info. Listing needs no lock (writers replace
 * files atomically); an operation journaled for a snapshot marks it
 * incomplete until the next xlsnap run on the domain recovers it.
 */
#include <stdlib.h>
#include <string.h>

#include "snap_agent.h"
#include "snap_domain.h"
#include "snap_group_store.h"
#include "snap_meta_io.h"
#include "snap_meta_tree.h"
#include "snap_revert_record.h"

/* The domain's store for reading; NOTFOUND when it has never had a snapshot. */
static int open_for_reading(snap_ctx *ctx, const char *domain, snap_domain_ref *ref,
                            snap_meta_store *st, snap_err *err)
{
    int rc = snap_domain_lookup(ctx, domain, SNAP_LOOKUP_IDENTIFY, ref, err);
    /* Readers take no lock and change nothing: they only say what to do. */
    if (rc == SNAP_ERROR_NOTFOUND && snap_domain_vanished(ctx, domain))
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "domain %s does not exist: an interrupted snapshot-revert "
                            "destroyed it; snapshot-revert, -create or -delete of it "
                            "finishes or rolls back that revert and creates it again",
                            domain);
    if (!rc)
        snap_group_note_pending(ctx->lg, ctx->statedir, ref->name, ref->uuid);
    if (!rc)
        rc = snap_meta_store_open(st, ctx->statedir, ref->uuid, ref->name, false, err);
    return rc;
}

#define FROZEN_QUERY_TIMEOUT_MS 2000

/*
 * What the guest's agent says of its filesystems, briefly (nobody else talks
 * to it: the run that froze it and its watchdog are dead); *why is set when
 * it cannot tell.
 */
static snap_agent_fs_state ask_agent_fs_state(snap_ctx *ctx, const snap_domain_ref *ref,
                                              snap_err *why)
{
    snap_agent_fs_state st = SNAP_AGENT_UNKNOWN;
    snap_agent *ag = NULL;
    char *path = snap_domain_agent_path(ctx, ref);
    if (!path)
        snap_err_set(why, SNAP_ERROR_NOTFOUND, "no agent channel in its stored config");
    else if (ref->state == SNAP_DOMAIN_PAUSED)
        snap_err_set(why, SNAP_ERROR_BUSY, "the domain is paused");
    else if (snap_agent_open(path, FROZEN_QUERY_TIMEOUT_MS, NULL, &ag, why) == 0)
        snap_agent_fsfreeze_status(ag, FROZEN_QUERY_TIMEOUT_MS, &st, why);
    snap_agent_close(ag);
    free(path);
    return st;
}

/*
 * A run that died after sending a freeze and before recording the thaw
 * (phase "frozen"), whose watchdog died too, may have left the guest's
 * filesystems frozen; only the next command that recovers the journal
 * thaws them. Readers change nothing: they ask the agent and say so.
 */
static void warn_if_left_frozen(snap_ctx *ctx, const snap_domain_ref *ref,
                                const snap_journal *j)
{
    if (j->phase != SNAP_PHASE_FROZEN || ref->state == SNAP_DOMAIN_SHUTOFF ||
        snap_journal_owner_alive(j) || snap_journal_watchdog_alive(j))
        return;
    snap_err why;
    snap_err_clear(&why);
    snap_agent_fs_state st = ask_agent_fs_state(ctx, ref, &why);
    if (st == SNAP_AGENT_THAWED) /* the watchdog did its job */
        return;
    char *state = st == SNAP_AGENT_FROZEN
                      ? snap_xstrdup("they are still frozen (its agent says so)")
                      : snap_xasprintf("they may still be frozen (its agent cannot tell: "
                                       "%s)",
                                       why.msg);
    snap_log(ctx->lg, XTL_WARN,
             "domain %s: the interrupted %s of snapshot '%s' froze the guest's "
             "filesystems and neither xlsnap (pid %d) nor its watchdog thawed them: %s; "
             "writes in the guest hang until the next snapshot-create, "
             "snapshot-revert or snapshot-delete of %s while it runs, which thaws them "
             "first and rolls the %s back",
             ref->name, snap_journal_op_name(j->op), j->snapshot, (int)j->owner_pid,
             state, ref->name, snap_journal_op_name(j->op));
    free(state);
}

/* The snapshot an unrecovered journal is about, or NULL (malloc'd). */
static char *journaled_snapshot(snap_ctx *ctx, const snap_domain_ref *ref,
                                snap_meta_store *st, char **journal_json)
{
    snap_journal j;
    bool found = false;
    snap_err ignore;
    char *name = NULL;
    if (snap_journal_load(st, &j, &found, &ignore) == 0 && found) {
        warn_if_left_frozen(ctx, ref, &j);
        name = snap_xstrdup(j.snapshot);
        if (journal_json)
            *journal_json = snap_journal_to_json(&j);
        snap_journal_dispose(&j);
    }
    return name;
}

/*
 * A create that died before writing its record has only the journal: list
 * it as incomplete so the user sees it until the next run recovers it.
 */
#define INCOMPLETE_DESCRIPTION "interrupted operation (see the journal)"

static snap_info *incomplete_info(const snap_domain_ref *ref, const char *name,
                                  char *journal_json)
{
    snap_info *s = snap_xcalloc(1, sizeof *s);
    s->name = snap_xstrdup(name);
    s->description = snap_xstrdup(INCOMPLETE_DESCRIPTION);
    s->domain_name = snap_xstrdup(ref->name);
    s->domain_uuid = snap_xstrdup(ref->uuid);
    s->domain_state = SNAP_DOMAIN_UNKNOWN;
    s->quiesce_policy = SNAP_QUIESCE_AUTO;
    s->incomplete = true;
    s->json = journal_json;
    return s;
}

static snap_summary *incomplete_summary(const char *name)
{
    snap_summary *s = snap_xcalloc(1, sizeof *s);
    s->name = snap_xstrdup(name);
    s->description = snap_xstrdup(INCOMPLETE_DESCRIPTION);
    s->domain_state = SNAP_DOMAIN_UNKNOWN;
    s->incomplete = true;
    return s;
}

static int load_info(snap_meta_store *st, const snap_meta_tree *t, const char *name,
                     const char *journaled, snap_info **out, snap_err *err)
{
    snap_meta m;
    int rc = snap_meta_load_hinted(st, name, &m, err);
    if (rc)
        return rc;
    snap_info *s = snap_info_from_meta(&m);
    size_t i = snap_meta_tree_find(t, name);
    if (i != SNAP_META_NONE) {
        s->n_children = t->nodes[i].n_children;
        s->current = t->current == i;
    }
    s->incomplete = journaled && !strcmp(journaled, name);
    snap_meta_dispose(&m);
    *out = s;
    return 0;
}

/*
 * Node i of the tree as a summary (no record is read). Its strings move over
 * from the tree (10,000 copies fewer): the tree must not look names up
 * afterwards.
 */
static snap_summary *summary_of(snap_meta_tree *t, size_t i, const char *journaled)
{
    snap_meta_entry *e = &t->nodes[i].e;
    snap_summary *s = snap_xcalloc(1, sizeof *s);
    s->name = e->name;
    s->description = e->description ? e->description : snap_xstrdup("");
    s->parent = e->parent;
    e->name = e->description = e->parent = NULL;
    s->creation_sec = e->ctime_sec;
    s->creation_nsec = e->ctime_nsec;
    s->domain_state = e->domstate;
    s->current = t->current == i;
    s->incomplete = journaled && !strcmp(journaled, s->name);
    s->n_disks = e->n_disks;
    s->n_internal = e->n_internal;
    s->n_external = e->n_external;
    s->n_excluded = e->n_excluded;
    s->quiesced = e->consistency == SNAP_META_QUIESCED;
    s->consistency = snap_meta_consistency_public(e->consistency);
    s->has_memory = e->has_memory;
    s->n_children = t->nodes[i].n_children;
    return s;
}

/*
 * Damaged metadata (unreadable records, a dangling .current, cycles) fails
 * the listing with PROTOCOL naming the first problem; every problem is also
 * logged at XTL_DETAIL (shown by one xlsnap -v) so a user can see them all.
 */
static int report_damage(snap_ctx *ctx, const snap_meta_tree *t, snap_err *err)
{
    if (!t->n_problems)
        return 0;
    for (size_t i = 0; i < t->n_problems; i++)
        snap_log(ctx->lg, XTL_DETAIL, "damaged metadata: %s", t->problems[i]);
    if (t->n_problems == 1)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL, "damaged metadata: %s",
                            t->problems[0]);
    return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                        "damaged metadata: %s (and %zu more problem%s, -v lists them)",
                        t->problems[0], t->n_problems - 1, t->n_problems > 2 ? "s" : "");
}

/*
 * Takes over each snapshot of a walk (a snap_info, or a snap_summary in a
 * walk of summaries); non-zero stops the walk.
 */
typedef int records_fn(void *item, void *opaque);

/*
 * Hands the domain's snapshots to fn in creation order: whole records when
 * full, else summaries from the index (a domain that never had a snapshot:
 * none). Damaged metadata returns PROTOCOL after the readable part (up to the
 * first unreadable record) was handed over. When fn stops the walk, *stopped
 * is its value and 0 is returned.
 */
static int walk_records(snap_ctx *ctx, const char *domain, bool full, records_fn *fn,
                        void *opaque, int *stopped)
{
    snap_err *err = &ctx->err;
    snap_domain_ref ref;
    snap_meta_store st;
    snap_meta_tree t;
    snap_err_clear(err);
    *stopped = 0;
    int rc = open_for_reading(ctx, domain, &ref, &st, err);
    if (rc == SNAP_ERROR_NOTFOUND && ref.uuid[0]) {
        snap_err_clear(err); /* a domain without snapshots */
        return 0;
    }
    if (rc)
        return snap_ctx_fail(ctx, err);
    snap_meta_tree_init(&t);
    rc = snap_meta_tree_load(&st, &t, err);
    char *journal_json = NULL;
    char *journaled = journaled_snapshot(ctx, &ref, &st, &journal_json);
    bool journal_only = journaled && snap_meta_tree_find(&t, journaled) == SNAP_META_NONE;
    for (size_t i = 0; i < t.n && !rc && !*stopped; i++) {
        void *item = NULL;
        if (full)
            rc = load_info(&st, &t, t.nodes[i].e.name, journaled, (snap_info **)&item,
                           err);
        else
            item = summary_of(&t, i, journaled);
        if (!rc)
            *stopped = fn(item, opaque);
    }
    if (!rc && !*stopped && journal_only) {
        void *item = full ? (void *)incomplete_info(&ref, journaled, journal_json)
                          : (void *)incomplete_summary(journaled);
        if (full)
            journal_json = NULL;
        *stopped = fn(item, opaque);
    }
    free(journal_json);
    if (!rc && !*stopped)
        rc = report_damage(ctx, &t, err);
    free(journaled);
    snap_meta_tree_dispose(&t);
    snap_meta_store_close(&st);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}

struct records_vector {
    void **v;
    size_t n, cap;
};

static int collect_record(void *info, void *opaque)
{
    struct records_vector *rv = opaque;
    if (rv->n == rv->cap) {
        rv->cap = rv->cap ? 2 * rv->cap : 64;
        rv->v = snap_xrealloc(rv->v, rv->cap * sizeof *rv->v);
    }
    rv->v[rv->n++] = info;
    return 0;
}

/* *list_out: snap_info ** when full, snap_summary ** when not. */
static int list_records(snap_ctx *ctx, const char *domain, bool full, void ***list_out,
                        size_t *n_out)
{
    struct records_vector rv = {NULL, 0, 0};
    int stopped;
    int rc = walk_records(ctx, domain, full, collect_record, &rv, &stopped);
    if (rc && rc != SNAP_ERROR_PROTOCOL) {
        if (full)
            snap_info_list_free((snap_info **)rv.v, rv.n);
        else
            snap_summary_list_free((snap_summary **)rv.v, rv.n);
        *list_out = NULL;
        *n_out = 0;
        return rc;
    }
    /* Damaged metadata: the readable part is still handed out. */
    *list_out = rv.v ? rv.v : snap_xcalloc(1, sizeof *rv.v);
    *n_out = rv.n;
    return rc;
}

int snap_list(snap_ctx *ctx, const char *domain, snap_info ***list_out, size_t *n_out)
{
    return list_records(ctx, domain, true, (void ***)list_out, n_out);
}

int snap_list_summaries(snap_ctx *ctx, const char *domain, snap_summary ***list_out,
                        size_t *n_out)
{
    return list_records(ctx, domain, false, (void ***)list_out, n_out);
}

struct records_each {
    snap_info_fn *fn;
    void *opaque;
};

static int deliver_record(void *info, void *opaque)
{
    struct records_each *each = opaque;
    int r = each->fn(info, each->opaque);
    snap_info_free(info);
    return r;
}

int snap_list_each(snap_ctx *ctx, const char *domain, snap_info_fn *fn, void *opaque)
{
    struct records_each each = {fn, opaque};
    int stopped;
    int rc = walk_records(ctx, domain, true, deliver_record, &each, &stopped);
    return stopped ? stopped : rc;
}

int snap_info_get(snap_ctx *ctx, const char *domain, const char *name, snap_info **out)
{
    snap_err *err = &ctx->err;
    snap_domain_ref ref;
    snap_meta_store st;
    snap_meta_tree t;
    snap_err_clear(err);
    *out = NULL;
    int rc = open_for_reading(ctx, domain, &ref, &st, err);
    if (rc == SNAP_ERROR_NOTFOUND && ref.uuid[0])
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "domain %s has no snapshot '%s'",
                          ref.name, name);
    if (rc)
        return snap_ctx_fail(ctx, err);
    snap_meta_tree_init(&t);
    rc = snap_meta_tree_load(&st, &t, err);
    char *journaled = journaled_snapshot(ctx, &ref, &st, NULL);
    if (!rc)
        rc = load_info(&st, &t, name, journaled, out, err);
    free(journaled);
    snap_meta_tree_dispose(&t);
    snap_meta_store_close(&st);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}
