/*
 * Consistency group records (issue 20): <statedir>/groups/<group>.json, one
 * per group, written once every member snapshot is recorded: the group's
 * commit point (snap_group.c, snap_recover.c). Not installed.
 *
 * {"version": 1, "name", "creation_time": {"sec", "nsec"},
 *  "consistency": "quiesced" | "crash-consistent", "window_ms",
 *  "members": [{"domain", "uuid", "snapshot", "consistency",
 *               "frozen_count", "window_ms"}, ...]}
 *
 * A group revert or delete in progress is journaled beside its record, in
 * <statedir>/groups/.<group>.op.json (hidden: never listed as a group):
 *
 * {"version": 1, "group", "op": "revert" | "delete", "owner_pid",
 *  "force", "state": "as-snapshot" | "running" | "paused", "metadata_only",
 *  "members": [{"domain", "uuid", "snapshot", "done"}, ...]}
 *
 * written before the first member changes, rewritten after each member is
 * done and removed once the operation is complete (snap_group_pending.c).
 *
 * Read strictly, as snapshot records are (snap_meta.h). Writers hold the
 * groups directory's lock (snap_lock.h on snap_meta_store_open_groups).
 */
#ifndef SNAP_GROUP_STORE_H
#define SNAP_GROUP_STORE_H

#include "libsnap.h"
#include "snap_base.h"
#include "snap_meta_store.h"

/* The record's JSON text (malloc'd). */
char *snap_group_record_to_json(const snap_group_info *g);
/* Parses text (what names it in errors) into a new *out. */
int snap_group_record_from_json(const char *text, const char *what, snap_group_info **out,
                                snap_err *err);
/* Writes g durably as <name>.json in gst (replacing any). */
int snap_group_record_save(snap_meta_store *gst, const snap_group_info *g, snap_err *err);
/* Loads <name>.json: SNAP_ERROR_NOTFOUND when there is none. */
int snap_group_record_load(snap_meta_store *gst, const char *name, snap_group_info **out,
                           snap_err *err);
/* Removes <name>.json (none: not an error). */
int snap_group_record_remove(snap_meta_store *gst, const char *name, snap_err *err);
/*
 * Whether statedir holds the record of group name naming domain uuid as a
 * member (journal recovery: a member of a group never committed is rolled
 * back). An unreadable record counts as present: recovery never undoes a
 * member on a guess.
 */
bool snap_group_record_has_member(const char *statedir, const char *name,
                                  const char *uuid);
/* The names of the records in gst, sorted (malloc'd vector of malloc'd names). */
int snap_group_record_names(snap_meta_store *gst, char ***names_out, size_t *n_out,
                            snap_err *err);

/* ------------------------------------------------------------ group op journal */

typedef enum snap_group_op_kind {
    SNAP_GROUP_OP_REVERT,
    SNAP_GROUP_OP_DELETE,
} snap_group_op_kind;

typedef struct snap_group_op_member {
    char *domain_name;
    char *domain_uuid;
    char *snapshot;
    bool done;
} snap_group_op_member;

/* A journaled group revert or delete, with the parameters that matter. */
typedef struct snap_group_op {
    char *group;
    snap_group_op_kind kind;
    int owner_pid;
    bool force;              /* revert */
    snap_revert_state state; /* revert */
    bool metadata_only;      /* delete */
    size_t n_members;
    snap_group_op_member *members; /* in the order they are run */
    /* Not journaled: the live caller's progress callback (revert). */
    snap_progress_fn *progress;
    void *progress_opaque;
} snap_group_op;

const char *snap_group_op_kind_name(snap_group_op_kind kind);
void snap_group_op_free(snap_group_op *op);
/* The journal's JSON text (malloc'd). */
char *snap_group_op_to_json(const snap_group_op *op);
/* Parses text (what names it in errors) into a new *out. */
int snap_group_op_from_json(const char *text, const char *what, snap_group_op **out,
                            snap_err *err);
/* Writes op durably as .<group>.op.json in gst (replacing any). */
int snap_group_op_save(snap_meta_store *gst, const snap_group_op *op, snap_err *err);
/* Loads group's journal: SNAP_ERROR_NOTFOUND when there is none. */
int snap_group_op_load(snap_meta_store *gst, const char *group, snap_group_op **out,
                       snap_err *err);
/* Removes group's journal durably (none: not an error). */
int snap_group_op_remove(snap_meta_store *gst, const char *group, snap_err *err);
/* The groups with a journal in gst, sorted (malloc'd vector of malloc'd names). */
int snap_group_op_names(snap_meta_store *gst, char ***names_out, size_t *n_out,
                        snap_err *err);
/* Whether op names the domain known as name or uuid (either may be NULL). */
bool snap_group_op_names_domain(const snap_group_op *op, const char *name,
                                const char *uuid);
/*
 * The journaled group operations in statedir naming that domain, read
 * without the lock (a hint: act on them only after taking it). An unreadable
 * journal names no domain: the group's own revert or delete reports it.
 */
void snap_group_op_pending(const char *statedir, const char *name, const char *uuid,
                           snap_group_op ***ops_out, size_t *n_out);
void snap_group_op_list_free(snap_group_op **ops, size_t n);
/* "a, b": the domains of op's members done (or not), malloc'd; "none" for none. */
char *snap_group_op_members(const snap_group_op *op, bool done);
/*
 * For readers (list, info) and dry runs: logs a note (lg) for each journaled
 * group operation naming the domain, unless this process runs it. Changes
 * nothing.
 */
void snap_group_note_pending(xentoollog_logger *lg, const char *statedir,
                             const char *name, const char *uuid);

#endif
