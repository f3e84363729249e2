/*
 * qemu-img, run through snap_child (argv only, never a shell): internal
 * snapshots (-l via `info --output=json`, -c, -a, -d), `info` parsed into a
 * model (one image or the whole backing chain), overlay creation, `check`,
 * `commit` and `rebase`, and parallel snapshot operations over many images.
 *
 * Safety rules built in:
 *  - Writes never use -U (force-share). When a running QEMU holds an image,
 *    qemu-img cannot take its lock; that is reported as SNAP_ERROR_BUSY:
 *    "image /x.qcow2 is in use by a running QEMU; refusing to write it".
 *    Writing a qcow2 a VM uses corrupts it, so there is no override.
 *  - `snapshot -c` refuses a name the image already has (qemu-img itself would
 *    add a duplicate; QMP would not) and names made only of digits, because
 *    qemu-img's -a and -d match snapshot ids before names.
 *  - `snapshot -a`/`-d` refuse a name that is also another snapshot's id.
 *  - Overlays are created with O_EXCL semantics: never over an existing file.
 *  - `snapshot -c` opens the qcow2 image alone (backing null): it only
 *    touches the image's own tables; the image's own lock still applies.
 * Errors carry the command, the image and qemu-img's own words, e.g.
 * "qemu-img snapshot -d 'x' on /a.qcow2: qemu-img [77] exited with error
 * status 1: qemu-img: Could not delete snapshot 'x': snapshot not found".
 */
#ifndef SNAP_QEMUIMG_H
#define SNAP_QEMUIMG_H

#include <stdbool.h>
#include <stddef.h>

#include "snap_base.h"

#define SNAP_QIMG_DEFAULT_TIMEOUT_MS 120000

/* Options for every call; NULL means all defaults. */
typedef struct snap_qimg_opts {
    const char *binary;    /* NULL: "qemu-img" looked up in PATH */
    int timeout_ms;        /* per command; 0: SNAP_QIMG_DEFAULT_TIMEOUT_MS */
    int max_parallel;      /* parallel variants; 0: SNAP_CHILD_DEFAULT_PARALLEL */
    xentoollog_logger *lg; /* may be NULL */
} snap_qimg_opts;

/* Read-only calls may pass this to read an image a running QEMU holds (-U). */
#define SNAP_QIMG_FORCE_SHARE 1u

typedef struct snap_qimg_snapshot {
    char *id;
    char *name;
    long long vm_state_size;
    long long date_sec, date_nsec;
    long long vm_clock_sec, vm_clock_nsec;
    long long icount; /* -1 when qemu-img did not report it */
} snap_qimg_snapshot;

typedef struct snap_qimg_info {
    char *filename;
    char *format;            /* "qcow2", "raw", ... */
    long long virtual_size;  /* bytes */
    long long actual_size;   /* bytes on disk; -1 when unknown */
    long long cluster_size;  /* -1 when not applicable */
    char *backing_file;      /* as recorded in the image; NULL when none */
    char *full_backing_file; /* as qemu-img resolved it; NULL when none */
    char *backing_format;    /* NULL when not recorded */
    bool dirty;              /* "dirty-flag" */
    bool corrupt;            /* qcow2 "corrupt" bit */
    snap_qimg_snapshot *snapshots;
    size_t n_snapshots;
} snap_qimg_info;

/* An image and its backing files, top first. */
typedef struct snap_qimg_chain {
    snap_qimg_info *images;
    size_t n;
} snap_qimg_chain;

typedef struct snap_qimg_check {
    long long corruptions, leaks, check_errors;
    long long corruptions_fixed, leaks_fixed;
    long long image_end_offset, total_clusters; /* -1 when not reported */
    bool clean; /* no corruptions, leaks or check errors */
} snap_qimg_check;

/* `info --output=json PATH` (flags: SNAP_QIMG_FORCE_SHARE). */
int snap_qimg_info_get(const snap_qimg_opts *o, const char *path, unsigned flags,
                       snap_qimg_info *out, snap_err *err);
/* `info --output=json --backing-chain PATH`. */
int snap_qimg_chain_get(const snap_qimg_opts *o, const char *path, unsigned flags,
                        snap_qimg_chain *out, snap_err *err);
/*
 * snap_qimg_chain_get on n images in parallel children: chains[i] and
 * per_disk[i] (n entries each) get each image's chain or error (a failed
 * one's chain is empty). Returns 0 when every chain was read, otherwise the
 * first failure with a count. The caller disposes of every chain.
 */
int snap_qimg_chain_get_many(const snap_qimg_opts *o, const char *const paths[], size_t n,
                             unsigned flags, snap_qimg_chain *chains, snap_err *per_disk,
                             snap_err *err);
void snap_qimg_info_dispose(snap_qimg_info *info);
void snap_qimg_chain_dispose(snap_qimg_chain *chain);
/* The snapshot called name, or NULL. */
const snap_qimg_snapshot *snap_qimg_find_snapshot(const snap_qimg_info *info,
                                                  const char *name);

/* Parses qemu-img's JSON (exposed for tests). */
int snap_qimg_parse_info(const char *json, snap_qimg_info *out, snap_err *err);
int snap_qimg_parse_chain(const char *json, snap_qimg_chain *out, snap_err *err);
/* `check --output=json`'s report: PROTOCOL unless a JSON object naming a file. */
int snap_qimg_parse_check(const char *json, snap_qimg_check *out, snap_err *err);

/* Internal snapshots. EXISTS for a duplicate, NOTFOUND for a missing one. */
int snap_qimg_snapshot_create(const snap_qimg_opts *o, const char *path, const char *name,
                              snap_err *err);
int snap_qimg_snapshot_apply(const snap_qimg_opts *o, const char *path, const char *name,
                             snap_err *err);
int snap_qimg_snapshot_delete(const snap_qimg_opts *o, const char *path, const char *name,
                              snap_err *err);

typedef enum snap_qimg_snap_op {
    SNAP_QIMG_SNAP_CREATE,
    SNAP_QIMG_SNAP_APPLY,
    SNAP_QIMG_SNAP_DELETE,
} snap_qimg_snap_op;

/*
 * One snapshot operation on n images, in parallel children. First every
 * image is listed (in parallel) and checked (lock; for create a duplicate
 * name, for apply/delete a missing one); if any check fails no image is
 * written. Then the operation runs on
 * all of them; per_disk[i] (n entries) gets each image's outcome (code 0 on
 * success). Undoing a partial success is the caller's policy.
 */
int snap_qimg_snapshot_many(const snap_qimg_opts *o, snap_qimg_snap_op op,
                            const char *const paths[], size_t n, const char *name,
                            snap_err *per_disk, snap_err *err);

/*
 * The write step of snap_qimg_snapshot_many alone, without its listing, for a
 * caller that has itself listed every image without -U (so no running QEMU
 * held it; snap_qimg_chain_get_many with flags 0) and refused a duplicate or
 * missing name, moments before and under a lock that keeps other xlsnap runs
 * away: snapshot-create's plan. Saves one qemu-img per image. The write itself
 * never uses -U, so an image a QEMU opened since is still refused (BUSY) by
 * qemu-img's own lock; other images may be written by then (undoing them is
 * the caller's policy, as for any partial failure). Digit-only names are
 * refused here too.
 */
int snap_qimg_snapshot_many_prechecked(const snap_qimg_opts *o, snap_qimg_snap_op op,
                                       const char *const paths[], size_t n,
                                       const char *name, snap_err *per_disk,
                                       snap_err *err);

/*
 * `create -f qcow2 -b BASE -F BASE_FMT OVERLAY`. Refuses (EXISTS) when
 * OVERLAY exists. The name is reserved with open(O_CREAT|O_EXCL, 0600)
 * before qemu-img runs (qemu-img would silently overwrite); qemu-img then
 * writes into that file, which keeps mode 0600. On failure the placeholder is
 * removed if it is still ours (same inode). A process that deletes and
 * recreates the name between the two steps is not guarded against.
 */
int snap_qimg_create_overlay(const snap_qimg_opts *o, const char *overlay,
                             const char *base, const char *base_fmt, snap_err *err);

/*
 * Gives the overlay open as fd what the image under it (base) has: owner,
 * group and permission bits, as `xl create` gave the base for the device
 * model (which may run as another user, dm_restrict=1). The 0600 root-owned
 * file qemu-img leaves could not be opened by a deprivileged device model.
 */
int snap_qimg_copy_access(int fd, const char *overlay, const char *base, snap_err *err);

/*
 * snap_qimg_create_overlay for n overlays (overlays[i] over bases[i] of
 * format base_fmts[i]): every name is reserved first (O_EXCL), then the
 * qemu-img children run in parallel. All or none: when any name exists or
 * any create fails, every overlay this call reserved is removed again;
 * per_disk[i] (n entries) says which failed and why.
 */
int snap_qimg_create_overlay_many(const snap_qimg_opts *o, const char *const overlays[],
                                  const char *const bases[],
                                  const char *const base_fmts[], size_t n,
                                  snap_err *per_disk, snap_err *err);

/*
 * `check --output=json PATH`: 0 when the check ran (out says what it found,
 * corruptions included), an error when it could not run.
 */
int snap_qimg_check_image(const snap_qimg_opts *o, const char *path, unsigned flags,
                          snap_qimg_check *out, snap_err *err);

/* `commit PATH`: merges PATH into its backing file. */
int snap_qimg_commit(const snap_qimg_opts *o, const char *path, snap_err *err);

/*
 * `rebase [-u] -b NEW -F NEW_FMT PATH`. new_backing NULL or "" removes the
 * backing file (safe mode then copies all data in). unsafe only rewrites the
 * header: the caller guarantees the content matches.
 */
int snap_qimg_rebase(const snap_qimg_opts *o, const char *path, const char *new_backing,
                     const char *new_fmt, bool unsafe, snap_err *err);

/* True when qemu-img's stderr says another process holds the image's lock. */
bool snap_qimg_is_lock_error(const char *errout);

#endif
