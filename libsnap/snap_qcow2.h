/*
 * A read-only qcow2 header and snapshot-table reader: what `qemu-img info
 * --output=json [--backing-chain]` reports about a qcow2 image (format,
 * virtual size, backing file name and format, dirty and corrupt bits, the
 * internal snapshots with id, name, date, VM clock, VM state size and
 * icount), without a qemu-img child (~14 ms CPU each). Follows QEMU's
 * docs/interop/qcow2.txt and the checks of QEMU 7.2's qcow2_do_open: every
 * size, offset, count and length is bounds-checked, and anything unexpected
 * is an error naming the image and what was wrong.
 *
 * It never decides alone what qemu-img would have said about an image it
 * does not fully understand: the chain readers below hand every image they
 * cannot read (another format, an external data file, encryption, a lock
 * another process holds, a malformed header, a protocol or json: file name)
 * to qemu-img, so results and errors (BUSY for an image a running QEMU holds)
 * stay what they were.
 */
#ifndef SNAP_QCOW2_H
#define SNAP_QCOW2_H

#include <stddef.h>
#include <stdint.h>

#include "snap_qemuimg.h"

/* QEMU's own limits (block/qcow2.h), refused beyond. */
#define SNAP_QCOW2_MAX_SNAPSHOTS      65536
#define SNAP_QCOW2_MAX_SNAPSHOTS_SIZE (64u << 20) /* bytes of snapshot table */
#define SNAP_QCOW2_MAX_EXTRA_DATA     1024
/* Backing chains deeper than this are left to qemu-img. */
#define SNAP_QCOW2_MAX_CHAIN 256

/*
 * Where the bytes come from: read(opaque, buf, len, offset, err) fills buf
 * completely or returns an error. size: how many bytes the source holds.
 */
typedef struct snap_qcow2_source {
    int (*read)(void *opaque, void *buf, size_t len, uint64_t offset, snap_err *err);
    void *opaque;
    uint64_t size;
    const char *name; /* the image, in messages and as out->filename */
} snap_qcow2_source;

/*
 * Parses a qcow2 image from src into out (filename = src->name, format
 * "qcow2", full_backing_file and actual_size left NULL / -1).
 * UNSUPPORTED: not a qcow2 version 2 or 3, or a feature left to qemu-img
 * (external data file, encryption, an unknown incompatible feature bit);
 * PROTOCOL: malformed. out is empty on error.
 */
int snap_qcow2_parse(const snap_qcow2_source *src, snap_qimg_info *out, snap_err *err);
/* snap_qcow2_parse on len bytes in memory (tests, fuzzing). */
int snap_qcow2_parse_buffer(const void *data, size_t len, const char *name,
                            snap_qimg_info *out, snap_err *err);

/*
 * What `qemu-img info --output=json --backing-chain path` gives, read here
 * (qcow2 and raw images, formats named in the headers or a qcow2 probed by
 * its magic). Unless flags has SNAP_QIMG_FORCE_SHARE, an image whose lock
 * another process holds the way a running QEMU does is BUSY. Any error
 * means: ask qemu-img.
 */
int snap_qcow2_chain_get(const char *path, unsigned flags, snap_qimg_chain *out,
                         snap_err *err);

/*
 * snap_qimg_chain_get_many's contract and results, with each chain read by
 * snap_qcow2_chain_get and only the images it cannot read (see above) given
 * to qemu-img children, in parallel. Errors are qemu-img's, as before.
 */
int snap_qcow2_chain_get_many(const snap_qimg_opts *o, const char *const paths[],
                              size_t n, unsigned flags, snap_qimg_chain *chains,
                              snap_err *per_disk, snap_err *err);

#endif
