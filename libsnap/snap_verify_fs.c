/*
 * Filesystems on one raw disk image, found and checked read-only: the
 * ext2/3/4 superblock (needs_recovery: set on disk while the filesystem is
 * mounted read-write; only a freeze or an unmount clears it, so an image
 * taken of a mounted, unfrozen ext4 always shows it) and `e2fsck -fn`, XFS
 * with `xfs_repair -n`. Partitions: MBR primary slots and GPT entries.
 * See snap_verify.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap_child.h"
#include "snap_meta.h"
#include "snap_verify.h"

#define SECTOR 512u
/* ext2/3/4 superblock: at 1024 bytes, fields at these offsets within it. */
#define EXT_SB_OFFSET        1024u
#define EXT_MAGIC_OFF        0x38
#define EXT_STATE_OFF        0x3a
#define EXT_COMPAT_OFF       0x5c
#define EXT_INCOMPAT_OFF     0x60
#define EXT_ROCOMPAT_OFF     0x64
#define EXT_MAGIC            0xef53
#define EXT_STATE_ERROR      0x0002
#define EXT_COMPAT_JOURNAL   0x0004
#define EXT_INCOMPAT_RECOVER 0x0004
/* incompat extents, 64bit, flex_bg; ro_compat huge_file, gdt_csum, metadata_csum */
#define EXT4_INCOMPAT   (0x0040 | 0x0080 | 0x0200)
#define EXT4_ROCOMPAT   (0x0008 | 0x0010 | 0x0400)
#define GPT_MAX_ENTRIES 128
#define DETAIL_MAX      400

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const unsigned char *p)
{
    return le16(p) | le16(p + 2) << 16;
}

static uint64_t le64(const unsigned char *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        done += (size_t)r;
    }
    return true;
}

/* Recognises the filesystem starting at f->offset (kind stays NONE otherwise). */
static void probe(int fd, snap_vfy_fs *f)
{
    unsigned char sb[1024];
    snprintf(f->fstype, sizeof f->fstype, "none");
    if (read_at(fd, sb, 4, f->offset) && !memcmp(sb, "XFSB", 4)) {
        f->kind = SNAP_VFY_XFS;
        snprintf(f->fstype, sizeof f->fstype, "xfs");
        return;
    }
    if (!read_at(fd, sb, sizeof sb, f->offset + EXT_SB_OFFSET) ||
        le16(sb + EXT_MAGIC_OFF) != EXT_MAGIC)
        return;
    uint32_t compat = le32(sb + EXT_COMPAT_OFF), incompat = le32(sb + EXT_INCOMPAT_OFF);
    uint32_t rocompat = le32(sb + EXT_ROCOMPAT_OFF);
    f->kind = SNAP_VFY_EXT;
    f->needs_recovery = (incompat & EXT_INCOMPAT_RECOVER) != 0;
    f->error_state = (le16(sb + EXT_STATE_OFF) & EXT_STATE_ERROR) != 0;
    const char *t = (incompat & EXT4_INCOMPAT) || (rocompat & EXT4_ROCOMPAT) ? "ext4"
                    : compat & EXT_COMPAT_JOURNAL                            ? "ext3"
                                                                             : "ext2";
    snprintf(f->fstype, sizeof f->fstype, "%s", t);
}

static snap_vfy_fs *add_fs(snap_vfy_fs **v, size_t *n, int part, uint64_t off,
                           uint64_t size)
{
    *v = snap_xrealloc(*v, (*n + 1) * sizeof **v);
    snap_vfy_fs *f = &(*v)[(*n)++];
    memset(f, 0, sizeof *f);
    f->partition = part;
    f->offset = off;
    f->size = size;
    return f;
}

/* The GPT at LBA 1: each used entry's filesystem. False when there is none. */
static bool scan_gpt(int fd, uint64_t disk_size, snap_vfy_fs **v, size_t *n)
{
    unsigned char h[92], e[128];
    if (!read_at(fd, h, sizeof h, SECTOR) || memcmp(h, "EFI PART", 8))
        return false;
    uint64_t table = le64(h + 72) * SECTOR;
    uint32_t count = le32(h + 80), esize = le32(h + 84);
    if (esize < sizeof e || count > GPT_MAX_ENTRIES)
        count = esize < sizeof e ? 0 : GPT_MAX_ENTRIES;
    static const unsigned char unused[16];
    for (uint32_t i = 0; i < count; i++) {
        if (!read_at(fd, e, sizeof e, table + (uint64_t)i * esize))
            break;
        uint64_t first = le64(e + 32) * SECTOR, last = le64(e + 40) * SECTOR;
        if (!memcmp(e, unused, 16) || last < first || first >= disk_size)
            continue;
        probe(fd, add_fs(v, n, (int)i + 1, first, last - first + SECTOR));
    }
    return true;
}

/* The MBR's primary slots (a protective 0xEE one means GPT). */
static bool scan_mbr(int fd, uint64_t disk_size, snap_vfy_fs **v, size_t *n)
{
    unsigned char mbr[SECTOR];
    if (!read_at(fd, mbr, sizeof mbr, 0) || mbr[510] != 0x55 || mbr[511] != 0xaa)
        return false;
    for (int i = 0; i < 4; i++)
        if (mbr[446 + 16 * i + 4] == 0xee)
            return scan_gpt(fd, disk_size, v, n);
    bool any = false;
    for (int i = 0; i < 4; i++) {
        const unsigned char *p = mbr + 446 + 16 * i;
        uint64_t start = (uint64_t)le32(p + 8) * SECTOR,
                 len = (uint64_t)le32(p + 12) * SECTOR;
        if (!p[4] || !len || start >= disk_size)
            continue;
        any = true;
        snap_vfy_fs *f = add_fs(v, n, i + 1, start, len);
        if (p[4] == 0x05 || p[4] == 0x0f || p[4] == 0x85) {
            f->kind = SNAP_VFY_EXTENDED;
            snprintf(f->fstype, sizeof f->fstype, "extended");
        } else {
            probe(fd, f);
        }
    }
    return any;
}

int snap_vfy_scan(int fd, uint64_t disk_size, snap_vfy_fs **out, size_t *n, snap_err *err)
{
    unsigned char first[SECTOR];
    *out = NULL;
    *n = 0;
    if (!read_at(fd, first, sizeof first, 0))
        return snap_err_errno(err, SNAP_ERROR_IO, errno ? errno : EIO,
                              "cannot read the disk's first sector");
    snap_vfy_fs whole = {.size = disk_size};
    probe(fd, &whole);
    if (whole.kind == SNAP_VFY_NONE && scan_mbr(fd, disk_size, out, n))
        return 0;
    *add_fs(out, n, 0, 0, disk_size) = whole;
    return 0;
}

/* ------------------------------------------------------------ checkers */

/* Appends s (a line of a checker's output) to detail, "; "-separated, capped. */
static void detail_add(char *detail, const char *s, size_t len)
{
    size_t have = strlen(detail);
    if (have + 8 >= DETAIL_MAX)
        return;
    snprintf(detail + have, DETAIL_MAX - have, "%s%.*s", have ? "; " : "", (int)len, s);
}

/*
 * What e2fsck -n said beyond its progress lines: the problems it found,
 * the first few of them.
 */
static void summarise_e2fsck(const char *out, const char *path, char *detail)
{
    int kept = 0;
    for (const char *l = out; l && *l && kept < 4;) {
        const char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        bool noise = !len || !strncmp(l, "Pass ", 5) || !strncmp(l, "e2fsck ", 7) ||
                     !strncmp(l, path, strlen(path)) ||
                     !strncmp(l, "Warning: skipping", 17);
        if (!noise) {
            detail_add(detail, l, len);
            kept++;
        }
        l = end ? end + 1 : NULL;
    }
}

static int remaining_ms(uint64_t deadline)
{
    int ms = snap_deadline_poll_ms(deadline);
    return ms == 0 ? 1 : ms;
}

static void check_ext(const char *path, const snap_vfy_fs *f, uint64_t deadline,
                      snap_fs_verdict *out)
{
    char dev[4096 + 32], detail[DETAIL_MAX] = "";
    if (f->offset)
        snprintf(dev, sizeof dev, "%s?offset=%llu", path, (unsigned long long)f->offset);
    else
        snprintf(dev, sizeof dev, "%s", path);
    const char *argv[] = {"e2fsck", "-fn", dev, NULL};
    snap_child_opts co = {.timeout_ms = remaining_ms(deadline), .capture_stdout = true};
    snap_child_result r;
    snap_err err;
    snap_child_run("e2fsck", argv, &co, &r, &err);
    int code = r.reaped && WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
    if (f->needs_recovery)
        snprintf(detail, sizeof detail,
                 "journal not replayed (needs_recovery set): it was in use, not frozen");
    if (f->error_state)
        detail_add(detail, "the superblock records errors", 29);
    /* 4: errors left uncorrected (-n corrects none); with 8 it gave up on them. */
    if (code >= 0 && (code & 4)) {
        detail_add(detail, "e2fsck -fn found", 16);
        summarise_e2fsck(r.out, dev, detail);
        summarise_e2fsck(r.errout, dev, detail);
    }
    if (code == 0 || (code >= 0 && (code & 4))) {
        out->state = f->needs_recovery              ? SNAP_FS_NEEDS_RECOVERY
                     : (code & 4) || f->error_state ? SNAP_FS_ERRORS
                                                    : SNAP_FS_CLEAN;
    } else {
        out->state = SNAP_FS_UNCHECKED;
        if (r.started && !r.timed_out && code >= 0) {
            char what[48];
            snprintf(what, sizeof what, "e2fsck -fn exited with status %d", code);
            detail_add(detail, what, strlen(what));
            summarise_e2fsck(r.errout, dev, detail);
        } else {
            detail_add(detail, r.err.msg, strlen(r.err.msg));
        }
    }
    out->detail = snap_xstrdup(detail);
    snap_child_result_dispose(&r);
}

static void check_xfs(const char *path, const snap_vfy_fs *f, uint64_t deadline,
                      snap_fs_verdict *out)
{
    if (f->offset) {
        out->state = SNAP_FS_UNCHECKED;
        out->detail = snap_xstrdup("XFS in a partition is not checked");
        return;
    }
    const char *argv[] = {"xfs_repair", "-n", "-f", path, NULL};
    snap_child_opts co = {.timeout_ms = remaining_ms(deadline), .capture_stdout = true};
    snap_child_result r;
    snap_err err;
    char detail[DETAIL_MAX] = "";
    snap_child_run("xfs_repair", argv, &co, &r, &err);
    int code = r.reaped && WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
    if (!r.started) {
        out->state = SNAP_FS_UNCHECKED;
        snprintf(detail, sizeof detail, "xfs_repair is not installed");
    } else if (code == 0) {
        out->state = SNAP_FS_CLEAN;
    } else if (strstr(r.errout, "log") && strstr(r.errout, "replay")) {
        out->state = SNAP_FS_NEEDS_RECOVERY;
        snprintf(detail, sizeof detail, "log not replayed: it was in use, not frozen");
    } else if (code == 1) {
        out->state = SNAP_FS_ERRORS;
        detail_add(detail, "xfs_repair -n found", 19);
        summarise_e2fsck(r.out, path, detail);
    } else {
        out->state = SNAP_FS_UNCHECKED;
        detail_add(detail, r.err.msg, strlen(r.err.msg));
    }
    out->detail = snap_xstrdup(detail);
    snap_child_result_dispose(&r);
}

static void check_one(const char *path, const snap_vfy_fs *f, uint64_t deadline,
                      snap_fs_verdict *out)
{
    switch (f->kind) {
    case SNAP_VFY_EXT: check_ext(path, f, deadline, out); break;
    case SNAP_VFY_XFS: check_xfs(path, f, deadline, out); break;
    case SNAP_VFY_EXTENDED:
        out->state = SNAP_FS_UNCHECKED;
        out->detail = snap_xstrdup("extended partition: its logical partitions are "
                                   "not checked");
        break;
    case SNAP_VFY_NONE:
        out->state = SNAP_FS_NO_FILESYSTEM;
        out->detail = snap_xstrdup("no ext2/3/4 or XFS filesystem found");
        break;
    }
}

int snap_vfy_check_raw(const char *path, const char *vdev, uint64_t deadline,
                       xentoollog_logger *lg, snap_verification *v, snap_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return snap_err_errno(err, SNAP_ERROR_IO, e, "disk %s: cannot open %s", vdev,
                              path);
    }
    snap_vfy_fs *fs = NULL;
    size_t n = 0;
    /* a block device (an LVM snapshot volume) has no st_size: its end tells */
    off_t end = S_ISBLK(st.st_mode) ? lseek(fd, 0, SEEK_END) : st.st_size;
    int rc = snap_vfy_scan(fd, end > 0 ? (uint64_t)end : 0, &fs, &n, err);
    close(fd);
    if (rc)
        return snap_err_context(err, "disk %s", vdev);
    v->fs = snap_xrealloc(v->fs, (v->n_fs + n) * sizeof *v->fs);
    for (size_t i = 0; i < n; i++) {
        snap_fs_verdict *out = &v->fs[v->n_fs++];
        memset(out, 0, sizeof *out);
        out->vdev = snap_xstrdup(vdev);
        out->partition = fs[i].partition;
        out->fstype = snap_xstrdup(fs[i].fstype);
        check_one(path, &fs[i], deadline, out);
        snap_log(lg, XTL_DEBUG, "disk %s partition %d (%s): %s%s%s", vdev, out->partition,
                 out->fstype, snap_fs_state_to_string(out->state),
                 *out->detail ? ": " : "", out->detail);
    }
    free(fs);
    return 0;
}

void snap_vfy_conclude(snap_verification *v)
{
    bool any_clean = false, all_ok = true;
    for (size_t i = 0; i < v->n_fs; i++) {
        any_clean = any_clean || v->fs[i].state == SNAP_FS_CLEAN;
        all_ok = all_ok && (v->fs[i].state == SNAP_FS_CLEAN ||
                            v->fs[i].state == SNAP_FS_NO_FILESYSTEM);
    }
    v->clean = any_clean && all_ok;
}
