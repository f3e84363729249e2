/*
 * Verification of a snapshot's filesystems at the snapshot point (the
 * public snap_verify, libsnap.h): the pieces that work on one raw disk image
 * (a file: the FUSE export of the snapshot point, or any raw image in
 * tests). Not installed.
 */
#ifndef SNAP_VERIFY_H
#define SNAP_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "snap_base.h"

typedef enum snap_vfy_kind {
    SNAP_VFY_NONE,     /* nothing recognised */
    SNAP_VFY_EXT,      /* ext2/3/4 */
    SNAP_VFY_XFS,      /* XFS */
    SNAP_VFY_EXTENDED, /* an MBR extended partition (logical ones are not scanned) */
} snap_vfy_kind;

/* One filesystem (or candidate) found on a disk. */
typedef struct snap_vfy_fs {
    int partition;   /* 0: the whole disk; else 1-based (MBR slot or GPT entry) */
    uint64_t offset; /* bytes from the start of the disk */
    uint64_t size;   /* bytes; the rest of the disk for the whole disk */
    snap_vfy_kind kind;
    char fstype[12];     /* "ext4", "ext3", "ext2", "xfs", "none", "extended" */
    bool needs_recovery; /* ext: the superblock's needs_recovery (RECOVER) flag */
    bool error_state;    /* ext: the superblock says errors were detected */
} snap_vfy_fs;

/*
 * Finds the filesystems of a raw disk of disk_size bytes read through fd:
 * one on the whole disk, else those in the partitions of an MBR (primary
 * slots) or a GPT. *out (malloc'd, *n entries) is never empty: a disk with
 * nothing recognised gets one SNAP_VFY_NONE entry.
 */
int snap_vfy_scan(int fd, uint64_t disk_size, snap_vfy_fs **out, size_t *n,
                  snap_err *err);

/*
 * Scans the raw image at path and checks every filesystem on it without
 * writing (e2fsck -fn, xfs_repair -n), children bounded by deadline
 * (snap_deadline_in). Appends one verdict per filesystem, disk named vdev,
 * to v. An error only when the image cannot be read at all.
 */
int snap_vfy_check_raw(const char *path, const char *vdev, uint64_t deadline,
                       xentoollog_logger *lg, snap_verification *v, snap_err *err);

/*
 * v->clean from its verdicts: at least one CLEAN and every other CLEAN or
 * NO_FILESYSTEM (a disk without a filesystem, swap say, has nothing to verify).
 */
void snap_vfy_conclude(snap_verification *v);

#endif
