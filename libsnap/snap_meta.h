/*
 * Snapshot metadata: one JSON file per snapshot, <dir>/<name>.json in the
 * domain directory of snap_meta_store.h. This header: names and records
 * (snap_meta.c); storing them, snap_meta_io.h; the tree derived from them,
 * snap_meta_tree.h.
 *
 * Snapshot names (snap_meta_name_valid): 1..128 bytes of valid UTF-8 (no
 * overlong forms, no surrogates), no '/', no control characters (C0, DEL,
 * C1; so no newlines or tabs), not starting with '.' or '-'. Such a name is
 * a safe file name, a safe command-line argument and never collides with
 * the store's own dot-files.
 *
 * Default names (snap_meta_name_default): the UTC creation time as
 * "2026-11-22T04-31-05Z" (ISO 8601 with '-' for ':', which file systems,
 * scp and Windows shares all accept; it sorts in time order), with "-2",
 * "-3"... appended when that name is taken.
 *
 * File format (version 1; other versions are refused): see snap_meta_to_json.
 * Reading is strict: a known field of the wrong type, a missing required
 * field or a name that differs from the file name is an error naming the
 * file and the field. Unknown fields are ignored (forward compatible).
 *
 * The current snapshot lives in its own tiny file, .current
 * ({"version":1,"current":"<name>"|null}): moving it is one atomic rename of
 * one small file, whatever the number of snapshots, and it never rewrites
 * a snapshot's record (a per-snapshot "current_since" stamp would need two
 * writes or trust in clocks that may step backwards).
 *
 * Writers must hold the domain lock (snap_lock.h); readers need not.
 * Not installed.
 */
#ifndef SNAP_META_H
#define SNAP_META_H

#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "snap_base.h"
#include "snap_internal.h"
#include "snap_meta_store.h"
#include "snap_timeline.h"

#define SNAP_META_VERSION  1
#define SNAP_META_NAME_MAX 128

/* ------------------------------------------------------------- names */

/* Checks the rule above; the error says what is wrong with which name. */
int snap_meta_name_check(const char *name, snap_err *err);
/*
 * A name for a new snapshot: the rule above, and no Unicode bidirectional
 * controls either (snap_text.h). Existing records with such a name stay
 * readable (older versions accepted them); their names print escaped.
 */
int snap_meta_new_name_check(const char *name, snap_err *err);
bool snap_meta_name_valid(const char *name);
/* ------------------------------------------------------------- records */

/*
 * snap_method and snap_quiesce_policy come from libsnap.h and the domain
 * state from snap_internal.h; a record never holds an AUTO value.
 */
typedef enum snap_meta_consistency {
    SNAP_META_QUIESCED,
    SNAP_META_CRASH_CONSISTENT,
    SNAP_META_PARTIALLY_QUIESCED, /* some filesystems frozen: see quiesce.filesystems */
} snap_meta_consistency;

/* Enum <-> record string ("running", "internal", "best-effort", "crash-consistent"). */
const char *snap_meta_consistency_name(snap_meta_consistency c);
/* The public level of a record's consistency. */
snap_consistency snap_meta_consistency_public(snap_meta_consistency c);
/* 0 and *out set, or -1 for an unknown string (AUTO is never accepted). */
int snap_meta_domstate_parse(const char *s, snap_domain_state *out);
int snap_meta_method_parse(const char *s, snap_method *out);
int snap_meta_policy_parse(const char *s, snap_quiesce_policy *out);
int snap_meta_consistency_parse(const char *s, snap_meta_consistency *out);
int snap_meta_fs_outcome_parse(const char *s, snap_fs_outcome *out);

/*
 * What tells one entry of a qcow2 snapshot table from another of the same
 * name: QEMU reuses names and ids once an entry is gone, so an internal
 * snapshot deleted and re-created by hand would pass for xlsnap's. Recorded
 * when the snapshot is taken (as QMP query-block / qemu-img info list it),
 * compared before a revert or delete touches it. Records older than this
 * have none (known false): they are trusted by name, as before.
 */
typedef struct snap_meta_qsnap_stamp {
    bool known;
    long long date_sec, date_nsec;         /* when QEMU made the entry */
    long long vm_clock_sec, vm_clock_nsec; /* the guest clock it recorded */
    long long vm_state_size;               /* bytes of VM state saved with it */
} snap_meta_qsnap_stamp;

/* One snapshotted disk. Strings are malloc'd; NULL means "none". */
typedef struct snap_meta_disk {
    char *vdev;    /* "xvda" */
    char *backend; /* "qdisk", "phy", ... */
    snap_method method;
    char *format;    /* format of base_path: "qcow2", "raw" */
    char *base_path; /* internal: the image snapshotted; external: the new backing file */
    char *overlay_path;   /* external: the overlay created on top (required) */
    char *overlay_format; /* external (required) */
    char *qemu_snap_name; /* internal: name in the qcow2 snapshot table (required) */
    char *qemu_snap_id;   /* internal: its id, when known */
    snap_meta_qsnap_stamp qemu_snap_stamp; /* internal: the rest of its identity */
    char *node_before;                     /* qdisk: top node-name before the snapshot */
    char *node_after; /* qdisk external: node-name of the new overlay */
    /* LVM (snap_lvm.h): the volume snapshotted and its snapshot volume, "vg/lv" */
    char *lvm_volume;
    char *lvm_snapshot;
    /* classic LVM: a revert merged lvm_snapshot into lvm_volume (lvconvert
     * --merge consumed it): it no longer exists, no revert to it again */
    bool lvm_merged;
} snap_meta_disk;

/* A snapshot volume of LVM's (snap_lvm.h), not a qcow2 snapshot or overlay. */
static inline bool snap_method_is_lvm(snap_method m)
{
    return m == SNAP_METHOD_LVM_THIN || m == SNAP_METHOD_LVM;
}

/* One of the guest's filesystems and what the freeze did to it. */
typedef struct snap_meta_fs {
    char *mountpoint, *type, *device;
    snap_fs_outcome outcome;
    char *reason; /* NULL when frozen */
} snap_meta_fs;

typedef struct snap_meta_quiesce {
    snap_quiesce_policy policy;
    bool agent_present;
    int frozen_count;  /* filesystems the agent froze */
    int64_t window_ms; /* time from freeze sent to thaw answered */
    bool thaw_ok;
    snap_meta_consistency state;
    char *reason; /* why crash-consistent although a freeze was wanted; NULL: none */
    /* The limits the freeze window was held to (snap_timeline.h); absent in
     * records of domains not quiesced, and of older versions. */
    bool has_timeline;
    snap_freeze_timeline timeline;
    /* "filesystems": optional (absent in older records and when the agent
     * did not list them) */
    snap_meta_fs *filesystems;
    size_t n_filesystems;
} snap_meta_quiesce;

typedef struct snap_meta {
    char *name;
    char *description; /* NULL: none */
    int64_t ctime_sec; /* creation time, UTC */
    int32_t ctime_nsec;
    char *parent; /* NULL: a root */
    struct {
        char *name;
        char *uuid;
        int domid; /* -1 when the domain was shut off */
        snap_domain_state state;
    } domain;
    snap_meta_disk *disks;
    size_t n_disks;
    char **excluded; /* vdevs left out of the snapshot */
    size_t n_excluded;
    snap_meta_quiesce quiesce;
    bool has_memory;
    char *memory_path;
    uint64_t memory_size;
    yajl_val config; /* libxl-json domain config, owned (yajl_tree_free); NULL: none */
    /* Overlays external reverts to this snapshot created on its images (the
     * domain's active one, or states later reverts left behind), so that
     * info shows them and delete cleans them up. Optional in the record
     * ("revert_overlays", absent when empty). */
    char **revert_overlays;
    size_t n_revert_overlays;
    /* The last verification (snap_verify); NULL: never verified. Optional in
     * the record ("verification", absent when never verified). */
    snap_verification *verification;
    /* The consistency group this snapshot is a member of (snap_group.c);
     * NULL: none. Optional in the record ("group", absent when none). */
    char *group;
} snap_meta;

void snap_meta_init(snap_meta *m);
void snap_meta_dispose(snap_meta *m);
/* Appends a zeroed disk and returns it (valid until the next append). */
snap_meta_disk *snap_meta_add_disk(snap_meta *m);
void snap_meta_add_excluded(snap_meta *m, const char *vdev);
/* Appends a filesystem outcome (strings copied; reason may be NULL). */
void snap_meta_add_fs(snap_meta_quiesce *q, const char *mountpoint, const char *type,
                      const char *device, snap_fs_outcome outcome, const char *reason);
/* Records a revert overlay (once). */
void snap_meta_add_revert_overlay(snap_meta *m, const char *path);
/* Replaces the embedded config with the parsed JSON text (NULL: none). */
int snap_meta_set_config_text(snap_meta *m, const char *json, snap_err *err);
/* Sets the creation time to now. */
void snap_meta_stamp_now(snap_meta *m);

/* A snap_meta as the public snap_info (n_children, current filled by caller). */
snap_info *snap_info_from_meta(const snap_meta *m);
/* The summary of a snapshot that listing needs (kept in the .index cache,
 * snap_list_index.c). */
typedef struct snap_meta_entry {
    char *name;
    char *parent;
    char *description;
    int64_t ctime_sec;
    int32_t ctime_nsec;
    snap_domain_state domstate;
    unsigned n_disks, n_internal, n_external, n_excluded;
    snap_meta_consistency consistency;
    bool has_memory;
} snap_meta_entry;

/* Summary of a full record (strings copied). */
void snap_meta_entry_from_meta(snap_meta_entry *e, const snap_meta *m);
void snap_meta_entry_dispose(snap_meta_entry *e);
/* Creation order (time, then name) of two entries, for qsort. */
int snap_meta_entry_by_creation(const void *a, const void *b);

/* Semantic checks done before every store and after every load. */
int snap_meta_validate(const snap_meta *m, const char *what, snap_err *err);
/* The file's JSON text (beautified), malloc'd. */
char *snap_meta_to_json(const snap_meta *m);
/*
 * Parses a file's text into m (initialised here). what names the source in
 * errors ("<path>: field 'disks[1].vdev': expected a string").
 */
int snap_meta_from_json(snap_meta *m, const char *text, const char *what, snap_err *err);

/*
 * Strict readers of parsed JSON files (shared with the journal). Errors say
 * "<what>: field '<prefix><key>': expected a string". Nullable strings and
 * objects may also be null or absent (-> NULL).
 */
typedef struct snap_meta_reader {
    const char *what; /* the file */
    snap_err *err;
    const char *prefix; /* "" or "disks[1]." */
} snap_meta_reader;

/*
 * text parsed as JSON (a damaged file is SNAP_ERROR_INVAL) and its root
 * handed to read_root with a reader naming the file what; read_root's rc.
 */
typedef int snap_meta_root_fn(const snap_meta_reader *r, yajl_val root, void *obj);
int snap_meta_read_document(const char *text, const char *what,
                            snap_meta_root_fn *read_root, void *obj, snap_err *err);
/* root is an object whose "version" is expected; kind names the file's
 * kind in the error ("metadata", "journal", "group record"). */
int snap_meta_read_version(const snap_meta_reader *r, yajl_val root, const char *kind,
                           long long expected);
int snap_meta_field_err(const snap_meta_reader *r, const char *key, const char *msg);
int snap_meta_read_str(const snap_meta_reader *r, yajl_val obj, const char *key,
                       bool nullable, char **out);
int snap_meta_read_int(const snap_meta_reader *r, yajl_val obj, const char *key,
                       long long min, long long max, long long *out);
int snap_meta_read_bool(const snap_meta_reader *r, yajl_val obj, const char *key,
                        bool *out);
int snap_meta_read_obj(const snap_meta_reader *r, yajl_val obj, const char *key,
                       bool nullable, yajl_val *out);

/*
 * The record's "verification" member (snap_meta_verify.c):
 * {"time_sec": N, "clean": bool, "filesystems": [{"disk": "xvda",
 *  "partition": 0, "type": "ext4", "state": "clean", "detail": ""}, ...]}
 */
void snap_meta_gen_verification(yajl_gen g, const snap_verification *v);
/* Reads root's "verification" (absent or null: *out NULL). */
int snap_meta_parse_verification(const snap_meta_reader *r, yajl_val root,
                                 snap_verification **out);
snap_verification *snap_verification_dup(const snap_verification *v);
void snap_verification_free(snap_verification *v);
/* Enum <-> record string; -1 for an unknown string. */
int snap_fs_state_parse(const char *s, snap_fs_state *out);
#endif
