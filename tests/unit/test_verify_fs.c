/*
 * The filesystem half of snap_verify on raw images made here (mkfs.ext4,
 * partition tables written byte by byte): whole disks, MBR and GPT
 * partitions, an extended partition, a partition without a filesystem,
 * needs_recovery and errors found, the verdict's conclusion, and the
 * record's "verification" member read back as written.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_json.h"
#include "snap_meta.h"
#include "snap_verify.h"
#include "th.h"

#define MiB (1024 * 1024ull)

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static bool write_at(const char *path, const void *buf, size_t len, uint64_t off)
{
    int fd = open(path, O_WRONLY);
    bool ok = fd >= 0 && pwrite(fd, buf, len, (off_t)off) == (ssize_t)len;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A sparse file of mib MiB with an ext4 at offset (mkfs.ext4 -E offset). */
static const char *make_disk(const char *name, unsigned mib, uint64_t offset,
                             unsigned fs_mib)
{
    const char *path = th_path(name);
    char size[32], opt[64], blocks[32];
    snprintf(size, sizeof size, "%uM", mib);
    snprintf(opt, sizeof opt, "offset=%llu", (unsigned long long)offset);
    snprintf(blocks, sizeof blocks, "%uM", fs_mib);
    CHECK_INT(th_runl(NULL, NULL, "truncate", "-s", size, path, (char *)NULL), 0);
    if (fs_mib)
        CHECK_INT(th_runl(NULL, NULL, "mkfs.ext4", "-q", "-F", "-E", opt, path, blocks,
                          (char *)NULL),
                  0);
    return path;
}

static void mbr_slot(unsigned char *mbr, int slot, unsigned char type, uint64_t start,
                     uint64_t len)
{
    unsigned char *p = mbr + 446 + 16 * slot;
    p[4] = type;
    put_le32(p + 8, (uint32_t)(start / 512));
    put_le32(p + 12, (uint32_t)(len / 512));
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
}

/* Checks path into a fresh verification (freed by the caller). */
static snap_verification *check(const char *path, const char *vdev)
{
    snap_verification *v = snap_xcalloc(1, sizeof *v);
    snap_err err = {0};
    int rc = snap_vfy_check_raw(path, vdev, snap_deadline_in(60000), NULL, v, &err);
    if (rc)
        th_fail_at(__FILE__, __LINE__, "check %s: %s", path, err.msg);
    snap_vfy_conclude(v);
    return v;
}

static void test_whole_disk_clean(void)
{
    snap_verification *v = check(make_disk("whole.raw", 32, 0, 32), "xvda");
    REQUIRE(v->n_fs == 1);
    CHECK_STR(v->fs[0].vdev, "xvda");
    CHECK_INT(v->fs[0].partition, 0);
    CHECK_STR(v->fs[0].fstype, "ext4");
    CHECK_INT(v->fs[0].state, SNAP_FS_CLEAN);
    CHECK_STR(v->fs[0].detail, "");
    CHECK(v->clean);
    snap_verification_free(v);
}

static void test_mbr_partitions(void)
{
    const char *path = make_disk("mbr.raw", 64, 1 * MiB, 32);
    unsigned char mbr[512] = {0};
    mbr_slot(mbr, 0, 0x83, 1 * MiB, 32 * MiB);
    mbr_slot(mbr, 1, 0x83, 40 * MiB, 8 * MiB); /* nothing in it */
    mbr_slot(mbr, 3, 0x05, 50 * MiB, 8 * MiB); /* extended */
    REQUIRE(write_at(path, mbr, sizeof mbr, 0));
    snap_verification *v = check(path, "xvdb");
    REQUIRE(v->n_fs == 3);
    CHECK_INT(v->fs[0].partition, 1);
    CHECK_STR(v->fs[0].fstype, "ext4");
    CHECK_INT(v->fs[0].state, SNAP_FS_CLEAN);
    CHECK_INT(v->fs[1].partition, 2);
    CHECK_INT(v->fs[1].state, SNAP_FS_NO_FILESYSTEM);
    CHECK_INT(v->fs[2].partition, 4);
    CHECK_STR(v->fs[2].fstype, "extended");
    CHECK_INT(v->fs[2].state, SNAP_FS_UNCHECKED);
    CHECK(!v->clean); /* the logical partitions were not checked */
    snap_verification_free(v);
}

static void test_gpt_partition(void)
{
    const char *path = make_disk("gpt.raw", 64, 2 * MiB, 32);
    unsigned char mbr[512] = {0}, hdr[512] = {0}, entry[128] = {0};
    mbr_slot(mbr, 0, 0xee, 512, 63 * MiB);
    memcpy(hdr, "EFI PART", 8);
    put_le64(hdr + 72, 2);   /* entries at LBA 2 */
    put_le32(hdr + 80, 128); /* entries */
    put_le32(hdr + 84, 128); /* entry size */
    memset(entry, 0xaf, 16); /* a non-zero type GUID */
    put_le64(entry + 32, 2 * MiB / 512);
    put_le64(entry + 40, 34 * MiB / 512 - 1);
    REQUIRE(write_at(path, mbr, sizeof mbr, 0) && write_at(path, hdr, sizeof hdr, 512) &&
            write_at(path, entry, sizeof entry, 1024 + 128)); /* entry 2 */
    snap_verification *v = check(path, "xvdc");
    REQUIRE(v->n_fs == 1);
    CHECK_INT(v->fs[0].partition, 2);
    CHECK_STR(v->fs[0].fstype, "ext4");
    CHECK_INT(v->fs[0].state, SNAP_FS_CLEAN);
    CHECK(v->clean);
    snap_verification_free(v);
}

/* The needs_recovery flag as a mounted, unfrozen ext4 leaves it on disk. */
static void test_needs_recovery_found(void)
{
    const char *path = make_disk("dirty.raw", 32, 0, 32);
    unsigned char b;
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0 && pread(fd, &b, 1, 1024 + 0x60) == 1);
    close(fd);
    b |= 0x04;
    REQUIRE(write_at(path, &b, 1, 1024 + 0x60));
    snap_verification *v = check(path, "xvda");
    REQUIRE(v->n_fs == 1);
    CHECK_INT(v->fs[0].state, SNAP_FS_NEEDS_RECOVERY);
    CHECK_CONTAINS(v->fs[0].detail, "needs_recovery");
    CHECK(!v->clean);
    snap_verification_free(v);
}

/* A wrong link count, then a cleared root inode (e2fsck -fn gives up): errors. */
static void test_errors_found(void)
{
    const char *path = make_disk("broken.raw", 32, 0, 32);
    CHECK_INT(th_runl(NULL, NULL, "debugfs", "-w", "-R",
                      "set_inode_field <2> links_count 7", path, (char *)NULL),
              0);
    snap_verification *v = check(path, "xvda");
    REQUIRE(v->n_fs == 1);
    CHECK_INT(v->fs[0].state, SNAP_FS_ERRORS);
    CHECK_CONTAINS(v->fs[0].detail, "e2fsck -fn found");
    CHECK_CONTAINS(v->fs[0].detail, "Inode 2 ref count is 7");
    CHECK(!v->clean);
    snap_verification_free(v);
    CHECK_INT(th_runl(NULL, NULL, "debugfs", "-w", "-R", "clri <2>", path, (char *)NULL),
              0);
    v = check(path, "xvda");
    REQUIRE(v->n_fs == 1);
    CHECK_INT(v->fs[0].state, SNAP_FS_ERRORS);
    CHECK_CONTAINS(v->fs[0].detail, "oot");
    snap_verification_free(v);
}

static void test_empty_disk_and_conclusion(void)
{
    snap_verification *v = check(make_disk("empty.raw", 8, 0, 0), "xvdd");
    REQUIRE(v->n_fs == 1);
    CHECK_STR(v->fs[0].fstype, "none");
    CHECK_INT(v->fs[0].state, SNAP_FS_NO_FILESYSTEM);
    CHECK(!v->clean); /* nothing was verified */
    snap_verification *w = check(th_path("whole.raw"), "xvda");
    /* A clean disk beside one without a filesystem: clean. */
    v->fs = snap_xrealloc(v->fs, 2 * sizeof *v->fs);
    v->fs[v->n_fs++] = w->fs[0];
    w->n_fs = 0;
    snap_vfy_conclude(v);
    CHECK(v->clean);
    snap_verification_free(w);
    snap_verification_free(v);
}

/* The record's member: written, read back the same; a bad state refused. */
static void test_record_round_trip(void)
{
    snap_verification *v = check(th_path("mbr.raw"), "xvdb");
    v->time_sec = 1700000000;
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_key(g, "verification");
    snap_meta_gen_verification(g, v);
    yajl_gen_map_close(g);
    char *text = snap_json_gen_finish(g, NULL);
    snap_err err = {0};
    yajl_val root = snap_json_parse(text, "t", &err);
    REQUIRE(root);
    snap_meta_reader r = {"t", &err, ""};
    snap_verification *back = NULL;
    CHECK_INT(snap_meta_parse_verification(&r, root, &back), 0);
    REQUIRE(back && back->n_fs == v->n_fs);
    CHECK_INT(back->time_sec, 1700000000);
    CHECK_INT(back->fs[2].state, SNAP_FS_UNCHECKED);
    CHECK_STR(back->fs[2].detail, v->fs[2].detail);
    CHECK_INT(back->fs[0].partition, 1);
    snap_verification_free(back);
    yajl_tree_free(root);

    char *bad = strstr(text, "\"unchecked\"");
    REQUIRE(bad);
    memcpy(bad + 1, "Unchecke", 8);
    root = snap_json_parse(text, "t", &err);
    REQUIRE(root);
    CHECK(snap_meta_parse_verification(&r, root, &back) != 0);
    CHECK_CONTAINS(err.msg, "verification.filesystems[2].state");
    yajl_tree_free(root);
    free(text);
    snap_verification_free(v);
}

int main(void)
{
    th_plan(7);
    TH_RUN(test_whole_disk_clean);
    TH_RUN(test_mbr_partitions);
    TH_RUN(test_gpt_partition);
    TH_RUN(test_needs_recovery_found);
    TH_RUN(test_errors_found);
    TH_RUN(test_empty_disk_and_conclusion);
    TH_RUN(test_record_round_trip);
    return th_finish();
}
