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

#endif
