/*
 * Tests of snap_qemuimg against the real qemu-img (and qemu-io to write and
 * verify data, and a real QEMU to hold an image's lock). Every image lives in
 * th_tmpdir(). Fake qemu-img scripts appear only to observe concurrency and
 * to inject a hang.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_child.h"
#include "snap_qemuimg.h"
#include "th.h"
#include "th_qemu.h"

static int initial_fds;

/* Our children that still exist (zombies included), from /proc/<pid>/stat. */
static int our_children(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], line[1024];
        long ppid;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(line, sizeof line, f)) {
            char *p = strrchr(line, ')');
            if (p && sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == (long)getpid())
                n++;
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

/* A fresh 1 MiB qcow2 in the tmpdir; returns its path (static rotating). */
static const char *make_image(const char *name)
{
    const char *path = th_path(name);
    unlink(path);
    if (th_runl(NULL, NULL, "qemu-img", "create", "-q", "-f", "qcow2", path, "1M", NULL))
        th_fail_at(__FILE__, __LINE__, "qemu-img create %s failed", path);
    return path;
}

/* Runs one qemu-io command on a qcow2 image; returns its exit code. */
static int qemu_io(const char *path, const char *cmd)
{
    return th_runl(NULL, NULL, "qemu-io", "-f", "qcow2", "-c", cmd, path, NULL);
}

static size_t snapshot_count(const char *path)
{
    snap_qimg_info info;
    snap_err err;
    if (snap_qimg_info_get(NULL, path, SNAP_QIMG_FORCE_SHARE, &info, &err)) {
        th_note("info %s: %s", path, err.msg);
        return (size_t)-1;
    }
    size_t n = info.n_snapshots;
    snap_qimg_info_dispose(&info);
    return n;
}

static void test_parse_info_model(void)
{
    const char *json =
        "{\"snapshots\":[{\"icount\":0,\"vm-clock-nsec\":5,\"name\":\"s1\","
        "\"date-sec\":1700000000,\"date-nsec\":15550000,\"vm-clock-sec\":3,\"id\":\"1\","
        "\"vm-state-size\":4096}],\"virtual-size\":1048576,\"filename\":\"ov.qcow2\","
        "\"cluster-size\":65536,\"format\":\"qcow2\",\"actual-size\":200704,"
        "\"format-specific\":{\"type\":\"qcow2\",\"data\":{\"corrupt\":true}},"
        "\"full-backing-filename\":\"/d/base.qcow2\",\"backing-filename\":\"base.qcow2\","
        "\"backing-filename-format\":\"qcow2\",\"dirty-flag\":true}";
    snap_qimg_info info;
    snap_err err;
    REQUIRE(snap_qimg_parse_info(json, &info, &err) == 0);
    CHECK_STR(info.filename, "ov.qcow2");
    CHECK_STR(info.format, "qcow2");
    CHECK_INT(info.virtual_size, 1048576);
    CHECK_INT(info.cluster_size, 65536);
    CHECK_STR(info.backing_file, "base.qcow2");
    CHECK_STR(info.full_backing_file, "/d/base.qcow2");
    CHECK_STR(info.backing_format, "qcow2");
    CHECK(info.dirty && info.corrupt);
    REQUIRE(info.n_snapshots == 1);
    const snap_qimg_snapshot *s = snap_qimg_find_snapshot(&info, "s1");
    REQUIRE(s);
    CHECK_STR(s->id, "1");
    CHECK_INT(s->vm_state_size, 4096);
    CHECK_INT(s->date_sec, 1700000000);
    CHECK_INT(s->date_nsec, 15550000);
    CHECK_INT(s->vm_clock_sec, 3);
    CHECK_INT(s->vm_clock_nsec, 5);
    CHECK_INT(s->icount, 0);
    CHECK(!snap_qimg_find_snapshot(&info, "s2"));
    snap_qimg_info_dispose(&info);

    snap_qimg_chain chain;
    CHECK_INT(snap_qimg_parse_chain("{\"filename\":\"x\"}", &chain, &err),
              SNAP_ERROR_PROTOCOL);
    CHECK_INT(snap_qimg_parse_info("{\"filename\":", &info, &err), SNAP_ERROR_PROTOCOL);
    CHECK_INT(snap_qimg_parse_info("[]", &info, &err), SNAP_ERROR_PROTOCOL);
}

static void test_snapshot_create_apply_restores_data(void)
{
    const char *img = make_image("a.qcow2");
    snap_err err;
    REQUIRE(qemu_io(img, "write -P 0xaa 0 64k") == 0);
    CHECK_INT(snap_qimg_snapshot_create(NULL, img, "before", &err), 0);
    REQUIRE(qemu_io(img, "write -P 0xbb 0 64k") == 0);
    CHECK(qemu_io(img, "read -P 0xaa 0 64k") != 0);

    snap_qimg_info info;
    REQUIRE(snap_qimg_info_get(NULL, img, 0, &info, &err) == 0);
    CHECK_STR(info.format, "qcow2");
    CHECK_INT(info.virtual_size, 1 << 20);
    REQUIRE(info.n_snapshots == 1);
    CHECK_STR(info.snapshots[0].name, "before");
    CHECK_STR(info.snapshots[0].id, "1");
    CHECK_INT(info.snapshots[0].vm_state_size, 0);
    CHECK(info.snapshots[0].date_sec > 1600000000);
    snap_qimg_info_dispose(&info);

    CHECK_INT(snap_qimg_snapshot_apply(NULL, img, "before", &err), 0);
    CHECK_INT(qemu_io(img, "read -P 0xaa 0 64k"), 0);
    CHECK_INT(snapshot_count(img), 1);
}

static void test_snapshot_duplicate_and_digit_names_refused(void)
{
    const char *img = make_image("dup.qcow2");
    snap_err err;
    REQUIRE(snap_qimg_snapshot_create(NULL, img, "s1", &err) == 0);
    CHECK_INT(snap_qimg_snapshot_create(NULL, img, "s1", &err), SNAP_ERROR_EXISTS);
    char want[4200];
    snprintf(want, sizeof want, "image %s already has a snapshot named 's1' (id 1)", img);
    CHECK_STR(err.msg, want);
    CHECK_INT(snap_qimg_snapshot_create(NULL, img, "42", &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "made of digits");
    CHECK_INT(snapshot_count(img), 1);
    /* "1" is s1's id: qemu-img -d 1 would delete s1. */
    CHECK_INT(snap_qimg_snapshot_delete(NULL, img, "1", &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "'1' is the id of snapshot 's1'");
    CHECK_INT(snapshot_count(img), 1);
}

static void test_snapshot_delete_and_missing_errors_verbatim(void)
{
    const char *img = make_image("del.qcow2");
    snap_err err;
    REQUIRE(snap_qimg_snapshot_create(NULL, img, "s1", &err) == 0);
    REQUIRE(snap_qimg_snapshot_create(NULL, img, "s2", &err) == 0);
    CHECK_INT(snap_qimg_snapshot_delete(NULL, img, "s1", &err), 0);
    snap_qimg_info info;
    REQUIRE(snap_qimg_info_get(NULL, img, 0, &info, &err) == 0);
    CHECK_INT(info.n_snapshots, 1);
    CHECK(!snap_qimg_find_snapshot(&info, "s1") && snap_qimg_find_snapshot(&info, "s2"));
    snap_qimg_info_dispose(&info);

    CHECK_INT(snap_qimg_snapshot_delete(NULL, img, "nope", &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "qemu-img snapshot -d 'nope' on ");
    CHECK_CONTAINS(err.msg, "exited with error status 1: qemu-img: Could not delete "
                            "snapshot 'nope': snapshot not found");
    CHECK_INT(snap_qimg_snapshot_apply(NULL, img, "nope", &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "qemu-img: Could not apply snapshot 'nope': Failed to load "
                            "snapshot: No such file or directory");
    CHECK_INT(snap_qimg_snapshot_create(NULL, th_path("absent.qcow2"), "x", &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "absent.qcow2': No such file or directory");
}

/* A qemu-img wrapper that logs its lifetime, so concurrency is observable. */
static const char *make_timing_wrapper(void)
{
    const char *path = th_path("qemu-img-timed");
    char text[1024];
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "echo \"start $(date +%%s%%N)\" >> %s\n"
             "sleep 1\n"
             "qemu-img \"$@\"; rc=$?\n"
             "echo \"end $(date +%%s%%N)\" >> %s\n"
             "exit $rc\n",
             th_path("timing.log"), th_path("timing.log"));
    if (!th_write_file(path, text) || chmod(path, 0755) != 0)
        th_fail_at(__FILE__, __LINE__, "cannot write %s", path);
    return path;
}

/* Highest number of wrapper runs alive at once, from the timing log. */
static int peak_from_log(const char *log)
{
    char *text = th_read_file(log);
    long long ev[64];
    int kinds[64], n = 0, alive = 0, peak = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line && n < 64;
         line = strtok(NULL, "\n")) {
        kinds[n] = strncmp(line, "start", 5) == 0 ? 1 : -1;
        ev[n++] = atoll(strchr(line, ' ') + 1);
    }
    free(text);
    for (int i = 0; i < n; i++) { /* events sorted by time */
        for (int j = i + 1; j < n; j++)
            if (ev[j] < ev[i]) {
                long long t = ev[i];
                int k = kinds[i];
                ev[i] = ev[j], kinds[i] = kinds[j];
                ev[j] = t, kinds[j] = k;
            }
        alive += kinds[i];
        peak = alive > peak ? alive : peak;
    }
    return peak;
}

static void test_parallel_create_on_eight_images(void)
{
    char names[8][32];
    const char *paths[8];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "par%d.qcow2", i);
        paths[i] = strdup(make_image(names[i]));
    }
    snap_qimg_opts o = {.binary = make_timing_wrapper(), .max_parallel = 8};
    snap_err per[8], err;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(
        snap_qimg_snapshot_many(&o, SNAP_QIMG_SNAP_CREATE, paths, 8, "p1", per, &err), 0);
    uint64_t took = snap_now_ms() - t0;
    /* 16 runs (list + create per image) of >= 1 s each: serially >= 16 s.
     * Wall time is noisy on a shared machine; the overlap of lifetimes is not. */
    th_note("8 images, list + create in parallel: %llu ms", (unsigned long long)took);
    CHECK(peak_from_log(th_path("timing.log")) >= 6);
    CHECK_INT(our_children(), 0);
    for (int i = 0; i < 8; i++) {
        CHECK_INT(per[i].code, 0);
        CHECK_INT(snapshot_count(paths[i]), 1);
    }
    /* One duplicate: the check fails on that image and nothing is written. */
    REQUIRE(snap_qimg_snapshot_create(NULL, paths[3], "p2", &err) == 0);
    CHECK_INT(
        snap_qimg_snapshot_many(NULL, SNAP_QIMG_SNAP_CREATE, paths, 8, "p2", per, &err),
        SNAP_ERROR_EXISTS);
    CHECK_CONTAINS(err.msg, "1 of 8 images failed the check (none written), first: ");
    CHECK_INT(per[3].code, SNAP_ERROR_EXISTS);
    CHECK_INT(per[0].code, 0);
    CHECK_INT(snapshot_count(paths[0]), 1);
    CHECK_INT(snapshot_count(paths[3]), 2);
    /* Apply p2 exists on one image only: refused before anything is written. */
    REQUIRE(qemu_io(paths[0], "write -P 0xdd 0 64k") == 0);
    CHECK_INT(
        snap_qimg_snapshot_many(NULL, SNAP_QIMG_SNAP_APPLY, paths, 8, "p2", per, &err),
        SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "7 of 8 images failed the check (none written), first: "
                            "image ");
    CHECK_CONTAINS(per[0].msg, "has no snapshot named 'p2'");
    CHECK_INT(per[3].code, 0);
    CHECK_INT(qemu_io(paths[0], "read -P 0xdd 0 64k"), 0);
    /* Apply p1 everywhere: the 0xdd write on image 0 is rolled back. */
    CHECK_INT(
        snap_qimg_snapshot_many(NULL, SNAP_QIMG_SNAP_APPLY, paths, 8, "p1", per, &err),
        0);
    CHECK_INT(qemu_io(paths[0], "read -P 0 0 64k"), 0);
    /* Delete p1 everywhere in parallel. */
    CHECK_INT(
        snap_qimg_snapshot_many(NULL, SNAP_QIMG_SNAP_DELETE, paths, 8, "p1", per, &err),
        0);
    CHECK_INT(snapshot_count(paths[7]), 0);
    CHECK_INT(snapshot_count(paths[3]), 1);
    for (int i = 0; i < 8; i++)
        free((char *)paths[i]);
}

/* Chains of several images read in parallel; a missing one is named, the others kept. */
static void test_chain_get_many(void)
{
    const char *base = strdup(make_image("cm-base.qcow2"));
    const char *ovl = th_path("cm-ovl.qcow2");
    const char *solo = strdup(make_image("cm-solo.qcow2"));
    const char *missing = th_path("cm-missing.qcow2");
    snap_err err;
    REQUIRE(snap_qimg_create_overlay(NULL, ovl, base, "qcow2", &err) == 0);
    REQUIRE(snap_qimg_snapshot_create(NULL, solo, "s1", &err) == 0);
    snap_qimg_opts o = {.binary = make_timing_wrapper(), .max_parallel = 8};
    unlink(th_path("timing.log"));
    const char *paths[] = {ovl, solo, missing};
    snap_qimg_chain chains[3];
    snap_err per[3];
    CHECK_INT(snap_qimg_chain_get_many(&o, paths, 3, 0, chains, per, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK(peak_from_log(th_path("timing.log")) >= 2);
    CHECK_CONTAINS(err.msg, "1 of 3 images could not be read, first: ");
    CHECK_CONTAINS(err.msg, missing);
    CHECK_INT(per[0].code, 0);
    CHECK_INT(per[1].code, 0);
    CHECK_INT(per[2].code, SNAP_ERROR_NOTFOUND);
    REQUIRE(chains[0].n == 2);
    CHECK_STR(chains[0].images[0].filename, ovl);
    CHECK_STR(chains[0].images[1].filename, base);
    REQUIRE(chains[1].n == 1);
    REQUIRE(chains[1].images[0].n_snapshots == 1);
    CHECK_STR(chains[1].images[0].snapshots[0].name, "s1");
    CHECK_INT(chains[2].n, 0);
    for (int i = 0; i < 3; i++)
        snap_qimg_chain_dispose(&chains[i]);
    /* All readable: 0, and the same model as snap_qimg_chain_get. */
    CHECK_INT(snap_qimg_chain_get_many(NULL, paths, 2, 0, chains, per, &err), 0);
    CHECK_INT(chains[0].n, 2);
    CHECK_INT(chains[1].images[0].n_snapshots, 1);
    for (int i = 0; i < 2; i++)
        snap_qimg_chain_dispose(&chains[i]);
    free((char *)base);
    free((char *)solo);
}

/* The write step alone: one qemu-img per image, all alive at once; names still checked.
 */
static void test_prechecked_create_writes_only(void)
{
    char names[4][32];
    const char *paths[4];
    for (int i = 0; i < 4; i++) {
        snprintf(names[i], sizeof names[i], "pre%d.qcow2", i);
        paths[i] = strdup(make_image(names[i]));
    }
    snap_qimg_opts o = {.binary = make_timing_wrapper(), .max_parallel = 8};
    unlink(th_path("timing.log"));
    snap_err per[4], err;
    CHECK_INT(snap_qimg_snapshot_many_prechecked(&o, SNAP_QIMG_SNAP_CREATE, paths, 4,
                                                 "q1", per, &err),
              0);
    /* Exactly 4 runs (no listing), overlapping. */
    char *log = th_read_file(th_path("timing.log"));
    int starts = 0;
    for (char *p = log; p && (p = strstr(p, "start")); p++)
        starts++;
    free(log);
    CHECK_INT(starts, 4);
    CHECK(peak_from_log(th_path("timing.log")) >= 3);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(per[i].code, 0);
        CHECK_INT(snapshot_count(paths[i]), 1);
    }
    CHECK_INT(snap_qimg_snapshot_many_prechecked(NULL, SNAP_QIMG_SNAP_CREATE, paths, 4,
                                                 "123", per, &err),
              SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "made of digits");
    CHECK_INT(snapshot_count(paths[0]), 1);
    for (int i = 0; i < 4; i++)
        free((char *)paths[i]);
}

static void test_overlay_create_and_backing_chain(void)
{
    const char *base = make_image("base.qcow2");
    const char *ovl = th_path("ovl.qcow2");
    snap_err err;
    REQUIRE(qemu_io(base, "write -P 0xaa 0 64k") == 0);
    REQUIRE(snap_qimg_create_overlay(NULL, ovl, base, "qcow2", &err) == 0);
    struct stat st;
    REQUIRE(stat(ovl, &st) == 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    snap_qimg_chain chain;
    REQUIRE(snap_qimg_chain_get(NULL, ovl, 0, &chain, &err) == 0);
    REQUIRE(chain.n == 2);
    CHECK_STR(chain.images[0].filename, ovl);
    CHECK_STR(chain.images[0].backing_file, base);
    CHECK_STR(chain.images[0].backing_format, "qcow2");
    CHECK_STR(chain.images[1].filename, base);
    CHECK(!chain.images[1].backing_file);
    snap_qimg_chain_dispose(&chain);
    CHECK_INT(qemu_io(ovl, "read -P 0xaa 0 64k"), 0);

    /* An existing overlay is never overwritten. */
    REQUIRE(qemu_io(ovl, "write -P 0xcc 64k 64k") == 0);
    CHECK_INT(snap_qimg_create_overlay(NULL, ovl, base, "qcow2", &err),
              SNAP_ERROR_EXISTS);
    CHECK_CONTAINS(err.msg, "already exists; refusing to overwrite it");
    CHECK_INT(qemu_io(ovl, "read -P 0xcc 64k 64k"), 0);

    /* A failed create leaves no placeholder behind. */
    const char *bad = th_path("bad-ovl.qcow2");
    CHECK(snap_qimg_create_overlay(NULL, bad, th_path("no-base.qcow2"), "qcow2", &err) !=
          0);
    CHECK_CONTAINS(err.msg, "qemu-img create on ");
    CHECK(access(bad, F_OK) != 0);
}

/* Overlays of several images in parallel; all or none. */
static void test_overlay_many_all_or_none(void)
{
    const char *bases[3], *ovls[3], *fmts[] = {"qcow2", "qcow2", "qcow2"};
    char name[32];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "om-base%d.qcow2", i);
        bases[i] = strdup(make_image(name));
        snprintf(name, sizeof name, "om-ovl%d.qcow2", i);
        ovls[i] = strdup(th_path(name));
    }
    snap_qimg_opts o = {.binary = make_timing_wrapper(), .max_parallel = 8};
    unlink(th_path("timing.log"));
    snap_err per[3], err;
    CHECK_INT(snap_qimg_create_overlay_many(&o, ovls, bases, fmts, 3, per, &err), 0);
    CHECK(peak_from_log(th_path("timing.log")) >= 2);
    for (int i = 0; i < 3; i++) {
        snap_qimg_info info;
        struct stat st;
        REQUIRE(snap_qimg_info_get(NULL, ovls[i], 0, &info, &err) == 0);
        CHECK_STR(info.backing_file, bases[i]);
        snap_qimg_info_dispose(&info);
        CHECK(stat(ovls[i], &st) == 0 && (st.st_mode & 0777) == 0600);
        unlink(ovls[i]);
    }
    /* One name taken: nothing created, the existing file untouched. */
    REQUIRE(th_write_file(ovls[1], "not an overlay"));
    CHECK_INT(snap_qimg_create_overlay_many(NULL, ovls, bases, fmts, 3, per, &err),
              SNAP_ERROR_EXISTS);
    CHECK_CONTAINS(err.msg, "1 of 3 images failed (no overlay left), first: overlay ");
    CHECK_INT(per[1].code, SNAP_ERROR_EXISTS);
    CHECK(access(ovls[0], F_OK) != 0);
    CHECK(access(ovls[2], F_OK) != 0);
    char *text = th_read_file(ovls[1]);
    CHECK_STR(text, "not an overlay");
    free(text);
    unlink(ovls[1]);
    /* One base missing: its create fails, the overlays made beside it are removed. */
    const char *bad[] = {bases[0], th_path("om-nobase.qcow2"), bases[2]};
    CHECK(snap_qimg_create_overlay_many(NULL, ovls, bad, fmts, 3, per, &err) != 0);
    CHECK_INT(per[0].code, 0);
    CHECK(per[1].code != 0);
    CHECK_CONTAINS(per[1].msg, "qemu-img create on ");
    for (int i = 0; i < 3; i++) {
        CHECK(access(ovls[i], F_OK) != 0);
        free((char *)bases[i]);
        free((char *)ovls[i]);
    }
}

static void test_commit_merges_into_base(void)
{
    const char *base = make_image("cbase.qcow2");
    const char *ovl = th_path("covl.qcow2");
    snap_err err;
    REQUIRE(qemu_io(base, "write -P 0xaa 0 64k") == 0);
    REQUIRE(snap_qimg_create_overlay(NULL, ovl, base, "qcow2", &err) == 0);
    REQUIRE(qemu_io(ovl, "write -P 0xbb 0 64k") == 0);
    CHECK(qemu_io(base, "read -P 0xbb 0 64k") != 0);
    CHECK_INT(snap_qimg_commit(NULL, ovl, &err), 0);
    CHECK_INT(qemu_io(base, "read -P 0xbb 0 64k"), 0);
}

static void test_rebase_safe_and_unsafe(void)
{
    const char *base = make_image("rbase.qcow2");
    const char *other = make_image("rother.qcow2");
    const char *ovl = th_path("rovl.qcow2");
    snap_err err;
    REQUIRE(qemu_io(base, "write -P 0xaa 0 64k") == 0);
    REQUIRE(snap_qimg_create_overlay(NULL, ovl, base, "qcow2", &err) == 0);
    /* Unsafe: only the header changes. */
    CHECK_INT(snap_qimg_rebase(NULL, ovl, other, "qcow2", true, &err), 0);
    snap_qimg_info info;
    REQUIRE(snap_qimg_info_get(NULL, ovl, 0, &info, &err) == 0);
    CHECK_STR(info.backing_file, other);
    snap_qimg_info_dispose(&info);
    CHECK(qemu_io(ovl, "read -P 0xaa 0 64k") != 0);
    /* Back onto base unsafely, then safely drop the backing file: data copied in. */
    CHECK_INT(snap_qimg_rebase(NULL, ovl, base, "qcow2", true, &err), 0);
    CHECK_INT(snap_qimg_rebase(NULL, ovl, NULL, NULL, false, &err), 0);
    REQUIRE(snap_qimg_info_get(NULL, ovl, 0, &info, &err) == 0);
    CHECK(!info.backing_file);
    snap_qimg_info_dispose(&info);
    CHECK_INT(qemu_io(ovl, "read -P 0xaa 0 64k"), 0);
    CHECK_INT(snap_qimg_rebase(NULL, ovl, base, NULL, false, &err), SNAP_ERROR_INVAL);
}

/* Copies src to dst and points L1 entry 0 of dst at a misaligned L2 table. */
static bool corrupt_copy(const char *src, const char *dst)
{
    if (th_runl(NULL, NULL, "cp", src, dst, NULL) != 0)
        return false;
    int fd = open(dst, O_RDWR | O_CLOEXEC);
    unsigned char b[8];
    bool ok = fd >= 0 && pread(fd, b, 8, 40) == 8; /* header: l1_table_offset */
    unsigned long long l1 = 0, entry = 0;
    for (int i = 0; ok && i < 8; i++)
        l1 = l1 << 8 | b[i];
    ok = ok && pread(fd, b, 8, (off_t)l1) == 8;
    for (int i = 0; ok && i < 8; i++)
        entry = entry << 8 | b[i];
    entry |= 0x200;
    for (int i = 7; ok && i >= 0; i--, entry >>= 8)
        b[i] = (unsigned char)entry;
    ok = ok && pwrite(fd, b, 8, (off_t)l1) == 8;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_check_reports_corruption(void)
{
    const char *img = make_image("chk.qcow2");
    const char *bad = th_path("chk-bad.qcow2");
    snap_qimg_check res;
    snap_err err;
    REQUIRE(qemu_io(img, "write -P 0xaa 0 64k") == 0);
    REQUIRE(snap_qimg_check_image(NULL, img, 0, &res, &err) == 0);
    CHECK(res.clean);
    CHECK(res.total_clusters > 0);
    REQUIRE(corrupt_copy(img, bad));
    REQUIRE(snap_qimg_check_image(NULL, bad, 0, &res, &err) == 0);
    CHECK(!res.clean);
    CHECK(res.corruptions > 0);
    th_note("corrupted copy: %lld corruptions, %lld leaks", res.corruptions, res.leaks);
    REQUIRE(snap_qimg_check_image(NULL, img, 0, &res, &err) == 0);
    CHECK(res.clean);
    CHECK_INT(snap_qimg_check_image(NULL, th_path("none.qcow2"), 0, &res, &err),
              SNAP_ERROR_NOTFOUND);
}

static void test_hanging_qemu_img_times_out(void)
{
    const char *fake = th_path("qemu-img-hangs");
    REQUIRE(th_write_file(fake, "#!/bin/sh\necho 'hanging' >&2\nexec sleep 100\n"));
    REQUIRE(chmod(fake, 0755) == 0);
    snap_qimg_opts o = {.binary = fake, .timeout_ms = 400};
    snap_qimg_info info;
    snap_err err;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_qimg_info_get(&o, th_path("x.qcow2"), 0, &info, &err),
              SNAP_ERROR_TIMEDOUT);
    CHECK(snap_now_ms() - t0 < 3000);
    CHECK_CONTAINS(err.msg, "qemu-img info on ");
    CHECK_CONTAINS(err.msg, "was killed by timeout after 0.4 s: hanging");
    CHECK_INT(our_children(), 0);
}

/* Waits until a running QEMU holds img (qemu-img cannot lock it). */
static bool wait_locked(const char *img)
{
    for (int i = 0; i < 200; i++) {
        snap_qimg_info info;
        snap_err err;
        int rc = snap_qimg_info_get(NULL, img, 0, &info, &err);
        snap_qimg_info_dispose(&info);
        if (rc == SNAP_ERROR_BUSY)
            return true;
        usleep(50000);
    }
    return false;
}

static void test_image_held_by_qemu_is_refused(void)
{
    const char *img = make_image("locked.qcow2");
    const char *other = make_image("free.qcow2");
    snap_err err;
    REQUIRE(snap_qimg_snapshot_create(NULL, img, "old", &err) == 0);
    th_qemu vm;
    const char *args[] = {"-drive", th_qemu_drive_arg(img, "d0"), NULL};
    REQUIRE(th_qemu_start(&vm, "holder", args));
    REQUIRE(wait_locked(img));

    CHECK_INT(snap_qimg_snapshot_create(NULL, img, "new", &err), SNAP_ERROR_BUSY);
    char want[4200];
    snprintf(want, sizeof want,
             "image %s is in use by a running QEMU; refusing to write it", img);
    CHECK_CONTAINS(err.msg, want);
    CHECK_CONTAINS(err.msg, "Failed to get shared \"write\" lock");
    CHECK_INT(snap_qimg_snapshot_delete(NULL, img, "old", &err), SNAP_ERROR_BUSY);
    CHECK_INT(snap_qimg_commit(NULL, img, &err), SNAP_ERROR_BUSY);
    const char *both[] = {other, img};
    snap_err per[2];
    CHECK_INT(
        snap_qimg_snapshot_many(NULL, SNAP_QIMG_SNAP_CREATE, both, 2, "new", per, &err),
        SNAP_ERROR_BUSY);
    CHECK_INT(per[0].code, 0);
    CHECK_INT(per[1].code, SNAP_ERROR_BUSY);
    /* Without the listing, qemu-img's own lock still refuses the held image
     * (the free one is written: undoing it is the caller's policy). */
    const char *other2 = strdup(make_image("free2.qcow2"));
    const char *both2[] = {other2, img};
    CHECK_INT(snap_qimg_snapshot_many_prechecked(NULL, SNAP_QIMG_SNAP_CREATE, both2, 2,
                                                 "new", per, &err),
              SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, want);
    CHECK_INT(per[0].code, 0);
    CHECK_INT(per[1].code, SNAP_ERROR_BUSY);
    CHECK_INT(snapshot_count(other2), 1);
    free((char *)other2);
    /* Read-only with force-share still works while QEMU runs. */
    snap_qimg_info info;
    CHECK_INT(snap_qimg_info_get(NULL, img, SNAP_QIMG_FORCE_SHARE, &info, &err), 0);
    CHECK_INT(info.n_snapshots, 1);
    snap_qimg_info_dispose(&info);
    th_qemu_stop(&vm);
    /* Unchanged: only "old", and the free image was not written either. */
    REQUIRE(snap_qimg_info_get(NULL, img, 0, &info, &err) == 0);
    CHECK_INT(info.n_snapshots, 1);
    CHECK(snap_qimg_find_snapshot(&info, "old") != NULL);
    snap_qimg_info_dispose(&info);
    CHECK_INT(snapshot_count(other), 0);
}

/*
 * snapshot -c opens the image alone (no backing chain): the snapshot still
 * captures the overlay's own data, the backing file stays recorded, the
 * image checks clean, and a QEMU holding the chain still blocks both layers.
 */
static void test_snapshot_on_overlay_opens_image_alone(void)
{
    const char *base = strdup(make_image("al-base.qcow2"));
    const char *ovl = th_path("al-ovl.qcow2");
    snap_err err;
    REQUIRE(qemu_io(base, "write -P 0xaa 0 128k") == 0);
    REQUIRE(snap_qimg_create_overlay(NULL, ovl, base, "qcow2", &err) == 0);
    REQUIRE(qemu_io(ovl, "write -P 0xbb 64k 64k") == 0);
    CHECK_INT(snap_qimg_snapshot_create(NULL, ovl, "s", &err), 0);
    REQUIRE(qemu_io(ovl, "write -P 0xcc 64k 64k") == 0);
    CHECK_INT(snap_qimg_snapshot_apply(NULL, ovl, "s", &err), 0);
    CHECK_INT(qemu_io(ovl, "read -P 0xbb 64k 64k"), 0);
    CHECK_INT(qemu_io(ovl, "read -P 0xaa 0 64k"), 0);
    snap_qimg_info info;
    REQUIRE(snap_qimg_info_get(NULL, ovl, 0, &info, &err) == 0);
    CHECK_STR(info.backing_file, base);
    CHECK_STR(info.backing_format, "qcow2");
    CHECK_INT(info.n_snapshots, 1);
    snap_qimg_info_dispose(&info);
    snap_qimg_check chk;
    CHECK_INT(snap_qimg_check_image(NULL, ovl, 0, &chk, &err), 0);
    CHECK(chk.clean);
    CHECK_INT(snapshot_count(base), 0);

    th_qemu vm;
    const char *args[] = {"-drive", th_qemu_drive_arg(ovl, "d0"), NULL};
    REQUIRE(th_qemu_start(&vm, "chain-holder", args));
    REQUIRE(wait_locked(ovl));
    CHECK_INT(snap_qimg_snapshot_create(NULL, ovl, "t", &err), SNAP_ERROR_BUSY);
    CHECK_INT(snap_qimg_snapshot_create(NULL, base, "t", &err), SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, "refusing to write it");
    const char *both[] = {ovl, base};
    snap_err per[2];
    CHECK_INT(snap_qimg_snapshot_many_prechecked(NULL, SNAP_QIMG_SNAP_CREATE, both, 2,
                                                 "t", per, &err),
              SNAP_ERROR_BUSY);
    CHECK_INT(per[0].code, SNAP_ERROR_BUSY);
    CHECK_INT(per[1].code, SNAP_ERROR_BUSY);
    th_qemu_stop(&vm);
    CHECK_INT(snapshot_count(ovl), 1);
    CHECK_INT(snapshot_count(base), 0);
    /* Proof that the chain is not opened: it works with the backing file away. */
    const char *away = th_path("al-base.away");
    REQUIRE(rename(base, away) == 0);
    CHECK_INT(snap_qimg_snapshot_create(NULL, ovl, "u", &err), 0);
    REQUIRE(rename(away, base) == 0);
    CHECK_INT(snapshot_count(ovl), 2);
    free((char *)base);
}

static void test_no_leaks_no_zombies(void)
{
    /* With pidfds or without (valgrind: children polled), nothing stays open. */
    CHECK_INT(th_count_fds(), initial_fds);
    CHECK_INT(our_children(), 0);
}

int main(void)
{
    th_plan(16);
    th_tmpdir();
    initial_fds = th_count_fds();
    TH_RUN(test_parse_info_model);
    TH_RUN(test_snapshot_create_apply_restores_data);
    TH_RUN(test_snapshot_duplicate_and_digit_names_refused);
    TH_RUN(test_snapshot_delete_and_missing_errors_verbatim);
    TH_RUN(test_parallel_create_on_eight_images);
    TH_RUN(test_chain_get_many);
    TH_RUN(test_prechecked_create_writes_only);
    TH_RUN(test_overlay_create_and_backing_chain);
    TH_RUN(test_overlay_many_all_or_none);
    TH_RUN(test_commit_merges_into_base);
    TH_RUN(test_rebase_safe_and_unsafe);
    TH_RUN(test_check_reports_corruption);
    TH_RUN(test_hanging_qemu_img_times_out);
    TH_RUN(test_image_held_by_qemu_is_refused);
    TH_RUN(test_snapshot_on_overlay_opens_image_alone);
    TH_RUN(test_no_leaks_no_zombies);
    return th_finish();
}
