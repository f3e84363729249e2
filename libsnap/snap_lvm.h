/*
 * LVM, for `phy:` disks on logical volumes (issue 21): is a block device an
 * LVM logical volume (device-mapper's sysfs uuid), what `lvs` says about it
 * (thin or classic, its pool, origin, tags), and snapshot volumes made and
 * removed by `lvm lvcreate` / `lvm lvremove` children run in parallel on
 * snap_child (argv only, never a shell). No policy: which disks, when, and
 * what to undo are the orchestrator's.
 *
 * Safety rules built in:
 *  - Every snapshot volume libsnap makes carries the LVM tag "xlsnap"
 *    (SNAP_LVM_TAG); removal refuses a volume without it, one whose origin
 *    is not the one expected, and one that is open (a domain's blkback, a
 *    mount): libsnap never removes a volume a domain uses.
 *  - A volume that is already gone counts as removed, so undoing a create
 *    whose lvcreate was killed mid-way is the same call as undoing one that
 *    finished.
 *  - Names are made of LVM's own alphabet (snap_lvm_snapshot_name), never
 *    passed through a shell, and checked free before anything is made.
 * Errors carry the command, the volume and LVM's own words, e.g.
 * "lvm lvcreate --snapshot xlsnaptest/dom2-root: lvm [77] exited with error
 * status 5: Volume group "xlsnaptest" has insufficient free space".
 * Recorded outputs of the real tools: tests/data/lvm/ (test_lvm.c). Not
 * installed.
 */
#ifndef SNAP_LVM_H
#define SNAP_LVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap_base.h"

#define SNAP_LVM_TAG                "xlsnap"
#define SNAP_LVM_DEFAULT_TIMEOUT_MS 60000
/*
 * A classic snapshot's copy-on-write space when the caller gives none: this
 * share of the origin's size. Once the guest has rewritten that much of the
 * origin after the snapshot, the snapshot is full and LVM invalidates it
 * (its data is lost): size it for the writes expected while it is kept.
 */
#define SNAP_LVM_DEFAULT_COW_PERCENT 20

/* Options for every call; NULL means all defaults. */
typedef struct snap_lvm_opts {
    const char *binary;    /* NULL: "lvm" looked up in PATH */
    int timeout_ms;        /* per command; 0: SNAP_LVM_DEFAULT_TIMEOUT_MS */
    int max_parallel;      /* 0: SNAP_CHILD_DEFAULT_PARALLEL */
    xentoollog_logger *lg; /* may be NULL */
} snap_lvm_opts;

/* One logical volume as `lvs --reportformat json` reports it. */
typedef struct snap_lv {
    char *vg, *name; /* "xlsnaptest", "dom2-root" */
    char *uuid;
    char *attr;    /* lv_attr, 10 characters ("Vwi-aotz--") */
    char *segtype; /* "thin", "linear", "striped", "thin-pool"... */
    char *pool;    /* thin volumes: their pool; else NULL */
    char *origin;  /* snapshots: the volume they were taken of; else NULL */
    char *path;    /* "/dev/vg/lv" (NULL for hidden volumes) */
    char *dm_path; /* "/dev/mapper/vg-lv" */
    char **tags;
    size_t n_tags;
    uint64_t size;         /* bytes */
    bool thin;             /* a thin volume (segtype "thin"): snapshots need no size */
    bool classic_snapshot; /* a classic (COW) snapshot: lv_attr[0] 's' or 'S' */
    bool invalid;          /* a classic snapshot LVM invalidated (full): lv_attr[4] 'I' */
    /*
     * A classic snapshot merge (lvconvert --merge) not finished: the origin
     * shows lv_attr[0] 'O' (the merging snapshot 'S' is hidden, lvs of it by
     * name lists nothing) until LVM removes the snapshot once merged.
     */
    bool merging;
    bool merge_failed; /* lv_attr[4] 'm' or 'M' */
    bool open;         /* in use: a domain's backend or a mount holds it */
    bool active;       /* its device exists: lv_attr[4] 'a' */
} snap_lv;

/* "vg/lv" (malloc'd), the form LVM's commands take. */
char *snap_lv_full_name(const snap_lv *lv);
bool snap_lv_has_tag(const snap_lv *lv, const char *tag);
/* "vg/lv" split into *vg and *lv (malloc'd); SNAP_ERROR_INVAL when not that form. */
int snap_lvm_split_name(const char *full, char **vg, char **lv, snap_err *err);
void snap_lv_dispose(snap_lv *lv);
void snap_lv_list_free(snap_lv *lvs, size_t n);

/*
 * Parses `lvs --reportformat json --units b --nosuffix -o SNAP_LVM_LVS_FIELDS`
 * output (every value a string, as LVM writes it).
 */
#define SNAP_LVM_LVS_FIELDS                                                              \
    "lv_name,vg_name,lv_attr,segtype,pool_lv,origin,lv_size,lv_path,lv_dm_path,"         \
    "lv_uuid,lv_tags,data_percent,snap_percent"
int snap_lvm_parse_lvs(const char *json, snap_lv **lvs, size_t *n, snap_err *err);

/*
 * Is block device major:minor a logical volume? Reads device-mapper's
 * <sysfs>/dev/block/M:m/dm/uuid ("LVM-" + VG and LV uuids; LVM's hidden
 * layers such as "-real", "-cow", "-tpool" are not volumes a domain is
 * given). sysfs NULL: "/sys". On true, *dm_name (may be NULL) gets the
 * device-mapper name ("vg-lv", malloc'd).
 */
bool snap_lvm_dev_is_lv(const char *sysfs, unsigned major, unsigned minor,
                        char **dm_name);
/* xenstore's backend "physical-device": "fe:1" (hex major:minor). */
int snap_lvm_parse_physical_device(const char *s, unsigned *major, unsigned *minor,
                                   snap_err *err);

/*
 * Is the block device path names now (rdev, from stat) the one blkback
 * opened (its xenstore "physical-device")? A volume renamed, removed or
 * replaced since would otherwise have the wrong one snapshotted: refused
 * (SNAP_ERROR_INVAL), naming disk vdev, both devices and path.
 */
int snap_lvm_check_physical_device(const char *vdev, const char *path, unsigned major,
                                   unsigned minor, const char *physical_device,
                                   snap_err *err);

/*
 * What LVM says about one volume, given as a path (/dev/vg/lv,
 * /dev/mapper/vg-lv) or vg/lv. SNAP_ERROR_NOTFOUND when it is not a
 * logical volume LVM knows.
 */
int snap_lvm_lookup(const snap_lvm_opts *o, const char *volume, snap_lv *lv,
                    snap_err *err);

/*
 * The snapshot volume's name for snapshot `snap` of volume `lv`:
 * "<lv>-xlsnap-<snap>" when that is a valid LV name of at most 127
 * characters; otherwise the characters LVM does not take become '_', the
 * volume's part is shortened, and an FNV-1a hash of the snapshot's name is
 * appended, so different snapshot names keep different volumes (malloc'd).
 */
char *snap_lvm_snapshot_name(const char *lv, const char *snap);

/* One snapshot volume to make: of vg/origin, named name. */
typedef struct snap_lvm_snap_req {
    const char *vg, *name;
    const char *origin; /* removal: NULL checks no origin */
    bool thin;          /* thin snapshot: no size, shares the pool */
    uint64_t cow_bytes; /* classic: copy-on-write space (> 0) */
} snap_lvm_snap_req;

/*
 * Makes every snapshot volume at once, in parallel lvcreate children,
 * each killed after timeout_ms (<= 0: the opts' timeout), all reaped
 * before it returns. made[i] (n entries, may be NULL) says which lvcreate
 * exited 0; one killed or failed may still have left its volume, so undo
 * with snap_lvm_remove_snapshots over every request, made or not. Returns
 * the first failure (in request order) with how many failed.
 */
int snap_lvm_create_snapshots(const snap_lvm_opts *o, const snap_lvm_snap_req *reqs,
                              size_t n, int timeout_ms, bool *made, snap_err *err);

/*
 * Removes the snapshot volumes reqs[i].vg/reqs[i].name (origin checked,
 * the tag required, open volumes refused; a volume already gone is
 * removed), lvremove children in parallel. Every volume is tried; returns
 * the first failure with how many failed.
 */
int snap_lvm_remove_snapshots(const snap_lvm_opts *o, const snap_lvm_snap_req *reqs,
                              size_t n, snap_err *err);

/*
 * `lvconvert --merge --yes vg/snap`: the classic snapshot's content is
 * written back into its origin, which must be closed for the merge to
 * start at once (else LVM defers it to the origin's next activation and
 * still exits 0); lvconvert waits for the merge, then removes the snapshot
 * volume. Its timeout is SNAP_LVM_MERGE_TIMEOUT_MS: the merge goes on in
 * the kernel if it is killed (snap_lvm_wait_merged finishes it).
 */
#define SNAP_LVM_MERGE_TIMEOUT_MS (60 * 60 * 1000)
int snap_lvm_merge(const snap_lvm_opts *o, const char *vg, const char *snap,
                   snap_err *err);
/*
 * Until vg/origin has no merge pending: a deferred or orphaned merge (its
 * lvconvert gone) is started with `lvchange --refresh` (which also has LVM
 * remove the snapshot volume once merged), then lvs is polled, for at most
 * timeout_ms (<= 0: SNAP_LVM_MERGE_TIMEOUT_MS). A merge LVM reports failed
 * is an error naming the volume.
 */
int snap_lvm_wait_merged(const snap_lvm_opts *o, const char *vg, const char *origin,
                         int timeout_ms, snap_err *err);

/* `lvrename vg from to`. */
int snap_lvm_rename(const snap_lvm_opts *o, const char *vg, const char *from,
                    const char *to, snap_err *err);
/*
 * `lvchange` of vg/lv: the xlsnap tag added (tag > 0) or removed (< 0),
 * and, when activate, activation skip cleared and the volume activated (a
 * thin snapshot made the volume a domain uses).
 */
int snap_lvm_change(const snap_lvm_opts *o, const char *vg, const char *lv, int tag,
                    bool activate, snap_err *err);

/*
 * Activates vg/lv for now (lvchange -ay -K: a thin snapshot skips
 * activation): LVM's metadata does not change, the volume's flags stay as
 * they are. Device-mapper cannot load a thin volume's table read-only
 * (LVM's read_only_volume_list makes the reload fail with EINVAL), so a
 * caller that must only read sets the device read-only itself (BLKROSET)
 * and deactivates it again with snap_lvm_deactivate.
 */
int snap_lvm_activate_transient(const snap_lvm_opts *o, const char *vg, const char *lv,
                                snap_err *err);
int snap_lvm_deactivate(const snap_lvm_opts *o, const char *vg, const char *lv,
                        snap_err *err);

#endif
