/* Read-only qcow2 header and snapshot table reader; see snap_qcow2.h. */
#include "snap_qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QCOW2_MAGIC         0x514649fbu /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN 72u
#define QCOW2_V3_HEADER_LEN 104u
#define MIN_CLUSTER_BITS    9u
#define MAX_CLUSTER_BITS    21u
#define MAX_BACKING_NAME    1023u
#define MAX_BACKING_FORMAT  15u /* QEMU keeps 16 bytes with the NUL */
#define MAX_L1_BYTES        (32u << 20)
#define MAX_REFTABLE_BYTES  (8u << 20)
#define SNAPSHOT_HEADER_LEN 40u
#define EXT_END             0x00000000u
#define EXT_BACKING_FORMAT  0xe2792acau
#define EXT_CRYPTO_HEADER   0x0537be77u
#define EXT_DATA_FILE       0x44415441u
#define INCOMPAT_DIRTY      (1ull << 0)
#define INCOMPAT_CORRUPT    (1ull << 1)
#define INCOMPAT_DATA_FILE  (1ull << 2)
#define INCOMPAT_KNOWN      0x1full /* dirty, corrupt, data file, compression, ext. L2 */
#define WINDOW_MIN          (64u << 10)

/* ------------------------------------------------------------ bytes */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* A copy of len bytes as a C string, ending at the first NUL as QEMU's does. */
static char *string_of(const uint8_t *p, size_t len)
{
    size_t n = strnlen((const char *)p, len);
    char *s = snap_xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/*
 * A window onto the source: reads at least WINDOW_MIN bytes at a time, so a
 * snapshot table of a thousand entries costs a few reads, not thousands.
 */
typedef struct window {
    const snap_qcow2_source *src;
    uint8_t *buf;
    uint64_t start;
    size_t len, cap;
} window;

/* *p: the len bytes at off; an error when the source ends before them. */
static int window_get(window *w, uint64_t off, size_t len, const uint8_t **p,
                      snap_err *err)
{
    if (off >= w->start && len <= w->len && off - w->start <= w->len - len) {
        *p = w->buf + (off - w->start);
        return 0;
    }
    if (off > w->src->size || len > w->src->size - off)
        return snap_err_set(
            err, SNAP_ERROR_PROTOCOL,
            "image %s: truncated: %zu bytes at offset %llu are past its end "
            "(%llu bytes)",
            w->src->name, len, (unsigned long long)off, (unsigned long long)w->src->size);
    size_t want = len > WINDOW_MIN ? len : WINDOW_MIN;
    if (want > w->src->size - off)
        want = (size_t)(w->src->size - off);
    if (want > w->cap) {
        w->buf = snap_xrealloc(w->buf, want);
        w->cap = want;
    }
    w->len = 0;
    int rc = w->src->read(w->src->opaque, w->buf, want, off, err);
    if (rc)
        return rc;
    w->start = off;
    w->len = want;
    *p = w->buf;
    return 0;
}

/* ------------------------------------------------------------ header */

typedef struct qheader {
    uint32_t version, cluster_bits, crypt_method, l1_size, refcount_table_clusters;
    uint32_t nb_snapshots, refcount_order, header_length, backing_file_size;
    uint64_t backing_file_offset, size, l1_table_offset, refcount_table_offset;
    uint64_t snapshots_offset, incompatible;
} qheader;

static void decode_header(const uint8_t *p, bool v3, qheader *h)
{
    h->version = be32(p + 4);
    h->backing_file_offset = be64(p + 8);
    h->backing_file_size = be32(p + 16);
    h->cluster_bits = be32(p + 20);
    h->size = be64(p + 24);
    h->crypt_method = be32(p + 32);
    h->l1_size = be32(p + 36);
    h->l1_table_offset = be64(p + 40);
    h->refcount_table_offset = be64(p + 48);
    h->refcount_table_clusters = be32(p + 56);
    h->nb_snapshots = be32(p + 60);
    h->snapshots_offset = be64(p + 64);
    h->incompatible = v3 ? be64(p + 72) : 0;
    h->refcount_order = v3 ? be32(p + 96) : 4;
    h->header_length = v3 ? be32(p + 100) : QCOW2_V2_HEADER_LEN;
}

/* Reads the fixed header; UNSUPPORTED when it is not a qcow2 v2/v3 at all. */
static int read_header(window *w, qheader *h, snap_err *err)
{
    const char *name = w->src->name;
    if (w->src->size < QCOW2_V2_HEADER_LEN)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s is not a qcow2 image (%llu bytes: shorter than a "
                            "qcow2 header)",
                            name, (unsigned long long)w->src->size);
    const uint8_t *p;
    int rc = window_get(w, 0, QCOW2_V2_HEADER_LEN, &p, err);
    if (rc)
        return rc;
    if (be32(p) != QCOW2_MAGIC)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "image %s is not a qcow2 image",
                            name);
    uint32_t version = be32(p + 4);
    if (version != 2 && version != 3)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s: qcow2 version %u (only 2 and 3 are read here)",
                            name, version);
    if (version == 3 && (rc = window_get(w, 0, QCOW2_V3_HEADER_LEN, &p, err)))
        return snap_err_context(err, "qcow2 version 3 header");
    decode_header(p, version == 3, h);
    return 0;
}

/* The header's features: unknown incompatible ones and those left to qemu-img. */
static int check_features(const qheader *h, const char *name, snap_err *err)
{
    uint64_t unknown = h->incompatible & ~INCOMPAT_KNOWN;
    if (unknown) {
        unsigned bit = (unsigned)__builtin_ctzll(unknown);
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s: unknown qcow2 incompatible feature bit %u (0x%llx "
                            "set in 0x%llx): the image needs a newer reader",
                            name, bit, 1ull << bit, (unsigned long long)h->incompatible);
    }
    if (h->incompatible & INCOMPAT_DATA_FILE)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s: qcow2 with an external data file", name);
    if (h->crypt_method)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s: encrypted qcow2 (method %u)", name,
                            h->crypt_method);
    return 0;
}

/* An offset of a cluster-aligned table of entries x entry_len bytes, at most max. */
static int check_table(const qheader *h, uint64_t offset, uint64_t entries,
                       uint64_t entry_len, uint64_t max, const char *what,
                       const char *name, snap_err *err)
{
    if (entries > max / entry_len)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: %s too large (%llu entries)", name, what,
                            (unsigned long long)entries);
    if (offset > INT64_MAX - entries * entry_len ||
        (offset & ((1ull << h->cluster_bits) - 1)))
        return snap_err_set(err, SNAP_ERROR_PROTOCOL, "image %s: %s offset %llu invalid",
                            name, what, (unsigned long long)offset);
    return 0;
}

/* The fixed header's sizes and offsets, as QEMU's qcow2_do_open checks them. */
static int check_header(const qheader *h, const char *name, snap_err *err)
{
    if (h->cluster_bits < MIN_CLUSTER_BITS || h->cluster_bits > MAX_CLUSTER_BITS)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: qcow2 cluster bits %u out of range (%u-%u)", name,
                            h->cluster_bits, MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
    uint64_t cluster = 1ull << h->cluster_bits;
    if (h->version == 3 &&
        (h->header_length < QCOW2_V3_HEADER_LEN || h->header_length > cluster))
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: qcow2 header length %u invalid (%u to %llu)", name,
                            h->header_length, QCOW2_V3_HEADER_LEN,
                            (unsigned long long)cluster);
    if (h->refcount_order > 6)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: qcow2 refcount order %u (at most 6)", name,
                            h->refcount_order);
    if (h->size > INT64_MAX)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: virtual size %llu too large", name,
                            (unsigned long long)h->size);
    if (h->nb_snapshots > SNAP_QCOW2_MAX_SNAPSHOTS)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: %u snapshots (at most %u)", name, h->nb_snapshots,
                            SNAP_QCOW2_MAX_SNAPSHOTS);
    int rc = check_table(h, h->refcount_table_offset, h->refcount_table_clusters, cluster,
                         MAX_REFTABLE_BYTES, "refcount table", name, err);
    if (!rc)
        rc = check_table(h, h->l1_table_offset, h->l1_size, 8, MAX_L1_BYTES, "L1 table",
                         name, err);
    if (!rc)
        rc = check_table(h, h->snapshots_offset, h->nb_snapshots, SNAPSHOT_HEADER_LEN,
                         SNAPSHOT_HEADER_LEN * (uint64_t)SNAP_QCOW2_MAX_SNAPSHOTS,
                         "snapshot table", name, err);
    return rc ? rc : check_features(h, name, err);
}

/* The backing file name, stored in the first cluster (1023 bytes at most). */
static int read_backing_name(window *w, const qheader *h, snap_qimg_info *out,
                             snap_err *err)
{
    const char *name = w->src->name;
    uint64_t cluster = 1ull << h->cluster_bits;
    if (!h->backing_file_offset)
        return 0;
    if (h->backing_file_offset > cluster)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: backing file name offset %llu is past the first "
                            "cluster",
                            name, (unsigned long long)h->backing_file_offset);
    if (h->backing_file_size > MAX_BACKING_NAME ||
        h->backing_file_size > cluster - h->backing_file_offset)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: backing file name too long (%u bytes)", name,
                            h->backing_file_size);
    const uint8_t *p;
    if (window_get(w, h->backing_file_offset, h->backing_file_size, &p, err))
        return snap_err_context(err, "backing file name");
    char *s = string_of(p, h->backing_file_size);
    if (*s)
        out->backing_file = s;
    else
        free(s); /* an empty name is no backing file, for QEMU too */
    return 0;
}

/* One header extension: the backing format is kept, some are left to qemu-img. */
static int read_extension(window *w, uint32_t type, uint64_t off, uint32_t len,
                          snap_qimg_info *out, snap_err *err)
{
    const char *name = w->src->name;
    if (type == EXT_DATA_FILE)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s: qcow2 with an external data file", name);
    if (type == EXT_CRYPTO_HEADER)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s: qcow2 with an encryption header", name);
    if (type != EXT_BACKING_FORMAT)
        return 0; /* feature names, bitmaps, unknown ones: QEMU skips them too */
    if (len > MAX_BACKING_FORMAT)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: backing format extension of %u bytes (at most %u)",
                            name, len, MAX_BACKING_FORMAT);
    const uint8_t *p;
    if (window_get(w, off, len, &p, err))
        return snap_err_context(err, "backing format extension");
    free(out->backing_format);
    out->backing_format = string_of(p, len);
    return 0;
}

/*
 * Header extensions: from the end of the header to the backing file name
 * (or the end of the first cluster), each 8 bytes of type and length and its
 * data padded to 8, until an end marker.
 */
static int read_extensions(window *w, const qheader *h, snap_qimg_info *out,
                           snap_err *err)
{
    uint64_t off = h->header_length;
    uint64_t end =
        h->backing_file_offset ? h->backing_file_offset : 1ull << h->cluster_bits;
    while (off < end) {
        const uint8_t *p;
        if (window_get(w, off, 8, &p, err))
            return snap_err_context(err, "header extension at offset %llu",
                                    (unsigned long long)off);
        uint32_t type = be32(p), len = be32(p + 4);
        off += 8;
        if (type == EXT_END)
            return 0;
        if (off > end || len > end - off)
            return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                                "image %s: header extension 0x%08x of %u bytes at offset "
                                "%llu runs past offset %llu",
                                w->src->name, type, len, (unsigned long long)(off - 8),
                                (unsigned long long)end);
        int rc = read_extension(w, type, off, len, out, err);
        if (rc)
            return rc;
        off += ((uint64_t)len + 7) & ~7ull;
    }
    return 0;
}

/* ------------------------------------------------------------ snapshots */

/* The fields of one snapshot entry, from its header and extra data. */
static void decode_snapshot(const uint8_t *p, const uint8_t *extra, uint32_t extra_len,
                            snap_qimg_snapshot *s)
{
    uint64_t clock = be64(p + 24);
    s->date_sec = be32(p + 16);
    s->date_nsec = be32(p + 20);
    s->vm_clock_sec = (long long)(clock / 1000000000u);
    s->vm_clock_nsec = (long long)(clock % 1000000000u);
    s->vm_state_size = be32(p + 32);
    if (extra_len >= 8)
        s->vm_state_size = (long long)be64(extra);
    s->icount = -1;
    if (extra_len >= 24 && be64(extra + 16) != UINT64_MAX)
        s->icount = (long long)be64(extra + 16);
}

/* Entry i at *off (8-aligned): header, extra data, id, name; *off moves past it. */
static int read_snapshot(window *w, uint32_t i, uint64_t *off, snap_qimg_snapshot *s,
                         snap_err *err)
{
    const char *name = w->src->name;
    const uint8_t *p;
    if (window_get(w, *off, SNAPSHOT_HEADER_LEN, &p, err))
        return snap_err_context(err, "snapshot %u", i);
    uint8_t head[SNAPSHOT_HEADER_LEN];
    memcpy(head, p, sizeof head); /* the window may move below */
    uint16_t id_len = be16(head + 12), name_len = be16(head + 14);
    uint32_t extra_len = be32(head + 36);
    if (extra_len > SNAP_QCOW2_MAX_EXTRA_DATA)
        return snap_err_set(
            err, SNAP_ERROR_PROTOCOL,
            "image %s: snapshot %u has %u bytes of extra data (at most %u)", name, i,
            extra_len, SNAP_QCOW2_MAX_EXTRA_DATA);
    uint64_t at = *off + SNAPSHOT_HEADER_LEN;
    size_t body = (size_t)extra_len + id_len + name_len;
    if (window_get(w, at, body, &p, err))
        return snap_err_context(err, "snapshot %u", i);
    decode_snapshot(head, p, extra_len, s);
    /* QEMU lists at most 127 bytes of an id and 255 of a name (QEMUSnapshotInfo). */
    s->id = string_of(p + extra_len, id_len < 127 ? id_len : 127);
    s->name = string_of(p + extra_len + id_len, name_len < 255 ? name_len : 255);
    *off = at + body;
    return 0;
}

/* The snapshot table: nb_snapshots entries, 64 MiB at most in all. */
static int read_snapshots(window *w, const qheader *h, snap_qimg_info *out, snap_err *err)
{
    uint64_t off = h->snapshots_offset, size = w->src->size;
    /* Each entry takes 40 bytes at least: no table larger than the image. */
    if (off > size || (uint64_t)h->nb_snapshots * SNAPSHOT_HEADER_LEN > size - off)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "image %s: truncated: %u snapshots cannot fit between offset "
                            "%llu and its end (%llu bytes)",
                            w->src->name, h->nb_snapshots, (unsigned long long)off,
                            (unsigned long long)size);
    out->snapshots = snap_xcalloc(h->nb_snapshots, sizeof *out->snapshots);
    for (uint32_t i = 0; i < h->nb_snapshots; i++) {
        off = (off + 7) & ~7ull;
        int rc = read_snapshot(w, i, &off, &out->snapshots[i], err);
        if (rc)
            return rc;
        out->n_snapshots = i + 1;
        if (off - h->snapshots_offset > SNAP_QCOW2_MAX_SNAPSHOTS_SIZE)
            return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                                "image %s: snapshot table larger than %u bytes",
                                w->src->name, SNAP_QCOW2_MAX_SNAPSHOTS_SIZE);
    }
    return 0;
}

/* ------------------------------------------------------------ parse */

int snap_qcow2_parse(const snap_qcow2_source *src, snap_qimg_info *out, snap_err *err)
{
    window w = {.src = src};
    qheader h = {0};
    memset(out, 0, sizeof *out);
    int rc = read_header(&w, &h, err);
    if (!rc)
        rc = check_header(&h, src->name, err);
    if (!rc)
        rc = read_backing_name(&w, &h, out, err);
    if (!rc)
        rc = read_extensions(&w, &h, out, err);
    if (!rc)
        rc = read_snapshots(&w, &h, out, err);
    free(w.buf);
    if (rc) {
        snap_qimg_info_dispose(out);
        return rc;
    }
    out->filename = snap_xstrdup(src->name);
    out->format = snap_xstrdup("qcow2");
    out->virtual_size = (long long)(h.size & ~511ull); /* whole sectors, as QEMU */
    out->actual_size = -1;
    out->cluster_size = 1ll << h.cluster_bits;
    out->dirty = h.incompatible & INCOMPAT_DIRTY;
    out->corrupt = h.incompatible & INCOMPAT_CORRUPT;
    return 0;
}

typedef struct buffer_source {
    const uint8_t *data;
} buffer_source;

static int buffer_read(void *opaque, void *buf, size_t len, uint64_t offset,
                       snap_err *err)
{
    (void)err; /* window_get keeps reads inside size */
    memcpy(buf, ((const buffer_source *)opaque)->data + offset, len);
    return 0;
}

int snap_qcow2_parse_buffer(const void *data, size_t len, const char *name,
                            snap_qimg_info *out, snap_err *err)
{
    buffer_source b = {data};
    snap_qcow2_source src = {buffer_read, &b, len, name};
    return snap_qcow2_parse(&src, out, err);
}

/* ------------------------------------------------------------ files */

typedef struct file_source {
    int fd;
} file_source;

static int file_read(void *opaque, void *buf, size_t len, uint64_t offset, snap_err *err)
{
    int fd = ((const file_source *)opaque)->fd;
    for (size_t done = 0; done < len;) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "read at offset %llu",
                                  (unsigned long long)(offset + done));
        if (r == 0)
            return snap_err_set(err, SNAP_ERROR_PROTOCOL, "truncated at offset %llu",
                                (unsigned long long)(offset + done));
        done += (size_t)r;
    }
    return 0;
}

/* QEMU's path_has_protocol(): "proto:..." before any '/'. */
static bool has_protocol(const char *path)
{
    return path[strcspn(path, ":/")] == ':';
}

/*
 * Whether another process holds the image the way a running QEMU does: the
 * OFD lock bytes of QEMU's file-posix (100 + permission bit: held by a user
 * of it; 200 + bit: held by one that does not share it). qemu-img info
 * fails when someone has write permission (byte 101) and we also stop at
 * resize (103, a writer too) and at an unshared consistent read (200).
 */
static int check_not_held(int fd, const char *path, snap_err *err)
{
    static const off_t bytes[] = {101, 103, 200};
    for (size_t i = 0; i < SNAP_N_OF(bytes); i++) {
        struct flock fl = {
            .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = bytes[i], .l_len = 1};
        if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
            return snap_err_errno(err, SNAP_ERROR_UNSUPPORTED, errno,
                                  "image %s: testing its lock", path);
        if (fl.l_type != F_UNLCK)
            return snap_err_set(err, SNAP_ERROR_BUSY,
                                "image %s: another process holds its lock (byte %lld)",
                                path, (long long)bytes[i]);
    }
    return 0;
}

/* A regular file opened read-only, its lock tested unless flags say force-share. */
static int open_image(const char *path, unsigned flags, struct stat *sb, snap_err *err)
{
    if (!*path || has_protocol(path))
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "image %s: a protocol or json: file name", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return snap_err_errno(err, errno == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO,
                              errno, "image %s", path);
    int rc = 0;
    if (fstat(fd, sb) != 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "image %s", path);
    else if (!S_ISREG(sb->st_mode))
        rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "image %s: not a regular file",
                          path);
    else if (!(flags & SNAP_QIMG_FORCE_SHARE))
        rc = check_not_held(fd, path, err);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

/* QEMU's bdrv_get_full_backing_filename_from_filename for plain paths. */
static void full_backing_name(snap_qimg_info *info)
{
    const char *b = info->backing_file;
    if (!b)
        return;
    if (b[0] == '/' || has_protocol(b)) {
        info->full_backing_file = snap_xstrdup(b);
        return;
    }
    const char *slash = strrchr(info->filename, '/');
    int dir = slash ? (int)(slash - info->filename + 1) : 0;
    info->full_backing_file = snap_xasprintf("%.*s%s", dir, info->filename, b);
}

/* One image of a chain, as qemu-img info reports it; fmt NULL: probed (qcow2 only). */
static int image_info(const char *path, const char *fmt, unsigned flags,
                      snap_qimg_info *out, snap_err *err)
{
    memset(out, 0, sizeof *out);
    if (fmt && strcmp(fmt, "qcow2") && strcmp(fmt, "raw"))
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "image %s: format %s", path,
                            fmt);
    struct stat sb;
    int fd = open_image(path, flags, &sb, err);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (fmt && !strcmp(fmt, "raw")) {
        out->filename = snap_xstrdup(path);
        out->format = snap_xstrdup("raw");
        out->virtual_size = (long long)(((uint64_t)sb.st_size + 511) & ~511ull);
        out->cluster_size = -1;
    } else {
        file_source f = {fd};
        snap_qcow2_source src = {file_read, &f, (uint64_t)sb.st_size, path};
        rc = snap_qcow2_parse(&src, out, err);
        if (rc == SNAP_ERROR_IO)
            snap_err_context(err, "image %s", path);
    }
    close(fd);
    if (!rc) {
        out->actual_size = (long long)sb.st_blocks * 512;
        full_backing_name(out);
    }
    return rc;
}

int snap_qcow2_chain_get(const char *path, unsigned flags, snap_qimg_chain *out,
                         snap_err *err)
{
    memset(out, 0, sizeof *out);
    const char *next = path, *fmt = NULL;
    int rc = 0;
    while (next && !rc) {
        for (size_t i = 0; i < out->n; i++)
            if (!strcmp(out->images[i].filename, next))
                rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                                  "image %s: its backing chain loops at %s", path, next);
        if (!rc && out->n >= SNAP_QCOW2_MAX_CHAIN)
            rc = snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                              "image %s: backing chain deeper than %d images", path,
                              SNAP_QCOW2_MAX_CHAIN);
        if (rc)
            break;
        out->images = snap_xrealloc(out->images, (out->n + 1) * sizeof *out->images);
        rc = image_info(next, fmt, flags, &out->images[out->n], err);
        if (rc)
            break;
        const snap_qimg_info *got = &out->images[out->n++];
        next = got->full_backing_file;
        fmt = got->backing_format;
    }
    if (rc)
        snap_qimg_chain_dispose(out);
    return rc;
}

/* The first failure, with a count, as snap_qimg_chain_get_many words it. */
static int many_verdict(const snap_err *per_disk, size_t n, size_t failed, snap_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (per_disk[i].code)
            return snap_err_set(err, per_disk[i].code,
                                "%zu of %zu images could not be read, first: %s", failed,
                                n, per_disk[i].msg);
    return snap_err_set(err, SNAP_ERROR_FAIL, "%zu of %zu images could not be read",
                        failed, n);
}

/* The images snap_qcow2_chain_get could not read, through qemu-img children. */
static void ask_qemu_img(const snap_qimg_opts *o, const char *const paths[],
                         const size_t *which, size_t k, unsigned flags,
                         snap_qimg_chain *chains, snap_err *per_disk)
{
    const char **sub = snap_xcalloc(k, sizeof *sub);
    snap_qimg_chain *got = snap_xcalloc(k, sizeof *got);
    snap_err *sub_err = snap_xcalloc(k, sizeof *sub_err);
    snap_err ignored;
    for (size_t j = 0; j < k; j++)
        sub[j] = paths[which[j]];
    snap_qimg_chain_get_many(o, sub, k, flags, got, sub_err, &ignored);
    for (size_t j = 0; j < k; j++) {
        chains[which[j]] = got[j];
        per_disk[which[j]] = sub_err[j];
    }
    free(sub);
    free(got);
    free(sub_err);
}

int snap_qcow2_chain_get_many(const snap_qimg_opts *o, const char *const paths[],
                              size_t n, unsigned flags, snap_qimg_chain *chains,
                              snap_err *per_disk, snap_err *err)
{
    size_t *which = snap_xcalloc(n ? n : 1, sizeof *which), k = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        snap_err_clear(&per_disk[i]);
        snap_err why;
        if (snap_qcow2_chain_get(paths[i], flags, &chains[i], &why) == 0)
            continue;
        snap_log(o ? o->lg : NULL, XTL_DEBUG, "%s; asking qemu-img", why.msg);
        which[k++] = i;
    }
    if (k)
        ask_qemu_img(o, paths, which, k, flags, chains, per_disk);
    free(which);
    for (size_t i = 0; i < n; i++)
        failed += per_disk[i].code != 0;
    return failed ? many_verdict(per_disk, n, failed, err) : 0;
}
