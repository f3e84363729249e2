/*
 * snap_qcow2, the direct reader of qcow2 headers and snapshot tables, against
 * what the real `qemu-img info --output=json --backing-chain` says about the
 * same images (parsed by snap_qimg_parse_chain): version 2 and 3 images,
 * with and without backing files (relative, absolute, raw, format not
 * recorded), snapshots made by qemu-img (vm-state-size 0, icount), by QEMU's
 * savevm (VM state) and by QMP (no icount), long and non-ASCII names, dirty
 * and corrupt bits, and a 1000-snapshot table. Then damaged headers give
 * errors naming the image and what is wrong, and images another QEMU holds
 * give the same BUSY error as through qemu-img.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_qcow2.h"
#include "snap_qemuimg.h"
#include "snap_qmp.h"
#include "th.h"
#include "th_qemu.h"

/* Runs a command; fails the test (with its stderr) when it fails. */
#define RUN_OK(...)                                                                      \
    do {                                                                                 \
        char *e_ = NULL;                                                                 \
        if (th_runl(NULL, &e_, __VA_ARGS__, (char *)NULL) != 0)                          \
            th_fail_at(__FILE__, __LINE__, "%s failed: %s", #__VA_ARGS__, e_ ? e_ : ""); \
        free(e_);                                                                        \
    } while (0)

static void same_snapshot(const char *img, const snap_qimg_snapshot *a,
                          const snap_qimg_snapshot *b)
{
    if (strcmp(a->id, b->id) || strcmp(a->name, b->name) ||
        a->vm_state_size != b->vm_state_size || a->date_sec != b->date_sec ||
        a->date_nsec != b->date_nsec || a->vm_clock_sec != b->vm_clock_sec ||
        a->vm_clock_nsec != b->vm_clock_nsec || a->icount != b->icount)
        th_fail_at(
            __FILE__, __LINE__,
            "%s: snapshot %s '%s' (%lld %lld.%lld %lld.%lld %lld) != qemu-img's %s "
            "'%s' (%lld %lld.%lld %lld.%lld %lld)",
            img, a->id, a->name, a->vm_state_size, a->date_sec, a->date_nsec,
            a->vm_clock_sec, a->vm_clock_nsec, a->icount, b->id, b->name,
            b->vm_state_size, b->date_sec, b->date_nsec, b->vm_clock_sec,
            b->vm_clock_nsec, b->icount);
}

static bool same_opt_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void same_image(const snap_qimg_info *a, const snap_qimg_info *b)
{
    CHECK_STR(a->filename, b->filename);
    CHECK_STR(a->format, b->format);
    CHECK_INT(a->virtual_size, b->virtual_size);
    CHECK_INT(a->actual_size, b->actual_size);
    CHECK_INT(a->cluster_size, b->cluster_size);
    if (!same_opt_str(a->backing_file, b->backing_file) ||
        !same_opt_str(a->full_backing_file, b->full_backing_file) ||
        !same_opt_str(a->backing_format, b->backing_format))
        th_fail_at(__FILE__, __LINE__,
                   "%s: backing %s / %s / %s != qemu-img's %s / %s / %s", a->filename,
                   a->backing_file, a->full_backing_file, a->backing_format,
                   b->backing_file, b->full_backing_file, b->backing_format);
    CHECK_INT(a->dirty, b->dirty);
    CHECK_INT(a->corrupt, b->corrupt);
    CHECK_INT(a->n_snapshots, b->n_snapshots);
    for (size_t i = 0; i < a->n_snapshots && i < b->n_snapshots; i++)
        same_snapshot(a->filename, &a->snapshots[i], &b->snapshots[i]);
}

/* snap_qcow2's chain of path equals qemu-img's; returns the chain's length. */
static size_t compare_chain(const char *path)
{
    char *json = NULL, *errout = NULL;
    snap_qimg_chain want, got;
    snap_err err;
    size_t n = 0;
    if (th_runl(&json, &errout, "qemu-img", "info", "--output=json", "--backing-chain",
                path, (char *)NULL) != 0) {
        th_fail_at(__FILE__, __LINE__, "qemu-img info %s: %s", path, errout);
    } else if (snap_qimg_parse_chain(json, &want, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "qemu-img info %s: %s", path, err.msg);
    } else {
        if (snap_qcow2_chain_get(path, 0, &got, &err) != 0) {
            th_fail_at(__FILE__, __LINE__, "snap_qcow2 on %s: %s", path, err.msg);
        } else {
            CHECK_INT(got.n, want.n);
            for (size_t i = 0; i < got.n && i < want.n; i++)
                same_image(&got.images[i], &want.images[i]);
            n = got.n;
            snap_qimg_chain_dispose(&got);
        }
        snap_qimg_chain_dispose(&want);
    }
    free(json);
    free(errout);
    return n;
}

static const char *image(const char *name, const char *compat, const char *size)
{
    const char *path = th_path(name);
    char opt[64];
    snprintf(opt, sizeof opt, "compat=%s", compat);
    unlink(path);
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-o", opt, path, size);
    return path;
}

/* `savevm` through QEMU's monitor: snapshots with VM state, no icount. */
static void savevm(const char *path, const char *const names[], size_t n)
{
    char script[4096] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(script + strlen(script), sizeof script - strlen(script), "savevm %s\n",
                 names[i]);
    strcat(script, "quit\n");
    const char *in = th_path("savevm.txt");
    REQUIRE(th_write_file(in, script));
    char drive[4400];
    snprintf(drive, sizeof drive, "file=%s,if=none,id=d0,format=qcow2", path);
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "qemu-system-x86_64 -machine none -nodefaults -display none -monitor stdio "
             "-drive '%s' <'%s' >/dev/null",
             drive, in);
    RUN_OK("sh", "-c", cmd);
}

static void test_plain_images(void)
{
    CHECK_INT(compare_chain(image("v3-empty.qcow2", "1.1", "16M")), 1);
    CHECK_INT(compare_chain(image("v2-empty.qcow2", "0.10", "16M")), 1);
    /* Sizes qemu-img rounds (to 512 bytes) and a 2 MiB cluster. */
    CHECK_INT(compare_chain(image("odd.qcow2", "1.1", "1000001")), 1);
    const char *big = th_path("bigcluster.qcow2");
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", big, "1G");
    CHECK_INT(compare_chain(big), 1);
    const char *small = th_path("smallcluster.qcow2");
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", small,
           "64M");
    CHECK_INT(compare_chain(small), 1);
}

static void test_snapshots_by_qemu_img(void)
{
    char longname[256];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *names[] = {"first", "with space", "\xc3\xa9t\xc3\xa9-utf8", longname,
                           "x"};
    const char *compats[] = {"1.1", "0.10"};
    for (size_t c = 0; c < 2; c++) {
        char file[64];
        snprintf(file, sizeof file, "snaps-%s.qcow2", compats[c]);
        const char *path = strdup(image(file, compats[c], "32M"));
        RUN_OK("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", path);
        for (size_t i = 0; i < SNAP_N_OF(names); i++)
            RUN_OK("qemu-img", "snapshot", "-c", names[i], path);
        RUN_OK("qemu-img", "snapshot", "-d", "with space", path); /* a hole in the ids */
        RUN_OK("qemu-img", "snapshot", "-c", "after-delete", path);
        CHECK_INT(compare_chain(path), 1);
        snap_qimg_chain got;
        snap_err err;
        REQUIRE(snap_qcow2_chain_get(path, 0, &got, &err) == 0);
        CHECK_INT(got.images[0].n_snapshots, 5);
        CHECK_STR(got.images[0].snapshots[2].name, longname);
        CHECK_INT(got.images[0].snapshots[0].vm_state_size, 0);
        snap_qimg_chain_dispose(&got);
        free((char *)path);
    }
}

static void test_snapshots_with_vm_state(void)
{
    const char *compats[] = {"1.1", "0.10"};
    const char *names[] = {"vm1", "vm2"};
    for (size_t c = 0; c < 2; c++) {
        char file[64];
        snprintf(file, sizeof file, "vm-%s.qcow2", compats[c]);
        const char *path = strdup(image(file, compats[c], "16M"));
        RUN_OK("qemu-img", "snapshot", "-c", "disk-only", path);
        savevm(path, names, 2);
        CHECK_INT(compare_chain(path), 1);
        snap_qimg_chain got;
        snap_err err;
        REQUIRE(snap_qcow2_chain_get(path, 0, &got, &err) == 0);
        REQUIRE(got.images[0].n_snapshots == 3);
        CHECK(got.images[0].snapshots[1].vm_state_size > 0);
        CHECK(got.images[0].snapshots[2].vm_clock_nsec +
                  got.images[0].snapshots[2].vm_clock_sec >
              0);
        snap_qimg_chain_dispose(&got);
        free((char *)path);
    }
}

/*
 * Hides the backing format extension (qemu-img 7.2 no longer writes images
 * without one) by renaming it to an unknown type, which QEMU skips.
 */
static bool forget_backing_format(const char *path)
{
    static const unsigned char ext[4] = {0xe2, 0x79, 0x2a, 0xca};
    unsigned char head[4096];
    int fd = open(path, O_RDWR);
    bool ok = fd >= 0 && pread(fd, head, sizeof head, 0) == (ssize_t)sizeof head;
    size_t at = 72;
    while (ok && at + 4 <= sizeof head && memcmp(head + at, ext, 4))
        at += 4;
    ok = ok && at + 4 <= sizeof head && pwrite(fd, "\x11\x11\x11\x11", 4, (off_t)at) == 4;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_backing_chains(void)
{
    const char *raw = strdup(th_path("base.raw"));
    RUN_OK("sh", "-c", "head -c 1000000 /dev/zero >\"$0\"", raw); /* not a 512 multiple */
    const char *mid = strdup(th_path("mid.qcow2"));
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b",
           "base.raw", "-F", "raw", mid, "1M");
    RUN_OK("qemu-img", "snapshot", "-c", "in-mid", mid);
    const char *top = strdup(th_path("top.qcow2"));
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top);
    CHECK_INT(compare_chain(top), 3);
    /* A relative name, resolved against the image's directory. */
    const char *rel = strdup(th_path("rel.qcow2"));
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-b", "top.qcow2", "-F", "qcow2",
           rel);
    CHECK_INT(compare_chain(rel), 4);
    /* The format not recorded: probed (qcow2 by its magic). */
    const char *unfmt = strdup(th_path("unformatted.qcow2"));
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-b", top, "-F", "qcow2", unfmt);
    REQUIRE(forget_backing_format(unfmt));
    CHECK_INT(compare_chain(unfmt), 4);
    /* A relative path given: names stay relative, as qemu-img prints them. */
    char cwd[4096];
    REQUIRE(getcwd(cwd, sizeof cwd));
    REQUIRE(chdir(th_tmpdir()) == 0);
    CHECK_INT(compare_chain("rel.qcow2"), 4);
    REQUIRE(chdir(cwd) == 0);
    free((char *)raw);
    free((char *)mid);
    free((char *)top);
    free((char *)rel);
    free((char *)unfmt);
}

/* Sets bits in the 64-bit big-endian field at offset (a byte of it: byte_off). */
static bool or_byte(const char *path, off_t offset, unsigned char bits)
{
    int fd = open(path, O_RDWR);
    unsigned char b = 0;
    bool ok = fd >= 0 && pread(fd, &b, 1, offset) == 1;
    b |= bits;
    ok = ok && pwrite(fd, &b, 1, offset) == 1;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_dirty_and_corrupt_bits(void)
{
    const char *path = strdup(image("dirty.qcow2", "1.1", "16M"));
    RUN_OK("qemu-img", "snapshot", "-c", "s", path);
    REQUIRE(or_byte(path, 79, 0x01)); /* incompatible features: dirty */
    CHECK_INT(compare_chain(path), 1);
    REQUIRE(or_byte(path, 79, 0x02)); /* and corrupt */
    CHECK_INT(compare_chain(path), 1);
    snap_qimg_chain got;
    snap_err err;
    REQUIRE(snap_qcow2_chain_get(path, 0, &got, &err) == 0);
    CHECK(got.images[0].dirty);
    CHECK(got.images[0].corrupt);
    snap_qimg_chain_dispose(&got);
    free((char *)path);
}

/* Adds 1000 snapshots through QMP (one transaction; QMP-made: no icount). */
static bool thousand_snapshots(const char *path)
{
    th_qemu vm;
    char drive[4400];
    snprintf(drive, sizeof drive,
             "file=%s,if=none,id=d0,format=qcow2,cache=unsafe,aio=io_uring", path);
    const char *args[] = {"-drive", drive, NULL};
    if (!th_qemu_start(&vm, "thousand", args))
        return false;
    snap_qmp *q;
    snap_err err;
    bool ok = snap_qmp_connect(vm.qmp_path, 10000, &q, &err) == 0;
    if (ok) {
        snap_qmp_tx *tx = snap_qmp_tx_new();
        for (int i = 0; i < 1000; i++) {
            char name[32];
            snprintf(name, sizeof name, "t-%04d", i);
            snap_qmp_tx_add_internal(tx, "d0", name);
        }
        ok = snap_qmp_transaction(q, tx, 600000, &err) == 0;
        snap_qmp_tx_free(tx);
        snap_qmp_close(q);
    }
    if (!ok)
        th_note("1000 snapshots: %s", err.msg);
    th_qemu_stop(&vm);
    return ok;
}

/*
 * The 1000-snapshot image takes QEMU about a minute to make (each snapshot
 * rewrites the whole table): it is made once per QEMU version and kept in
 * the cache directory (${XLSNAP_CACHE:-~/.cache/xlsnap}/qcow2/).
 */
static const char *cached_thousand(void)
{
    static char path[4200];
    char *ver = NULL;
    th_runl(&ver, NULL, "qemu-img", "--version", (char *)NULL);
    unsigned long h = 5381;
    for (const char *p = ver ? ver : ""; *p && *p != '\n'; p++)
        h = h * 33 + (unsigned char)*p;
    free(ver);
    const char *cache = getenv("XLSNAP_CACHE"), *xdg = getenv("XDG_CACHE_HOME");
    char dir[4096];
    if (cache && *cache)
        snprintf(dir, sizeof dir, "%s/qcow2", cache);
    else if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/xlsnap/qcow2", xdg);
    else
        snprintf(dir, sizeof dir, "%s/.cache/xlsnap/qcow2", getenv("HOME"));
    snprintf(path, sizeof path, "%s/thousand-%08lx.qcow2", dir, h & 0xfffffffful);
    if (access(path, R_OK) == 0)
        return path;
    const char *fresh = strdup(image("thousand-new.qcow2", "1.1", "16M"));
    bool ok = thousand_snapshots(fresh);
    char *tmp = snap_xasprintf("%s.%d", path, (int)getpid());
    if (ok && !th_runl(NULL, NULL, "mkdir", "-p", dir, (char *)NULL))
        ok = !th_runl(NULL, NULL, "cp", fresh, tmp, (char *)NULL) &&
             rename(tmp, path) == 0;
    free(tmp);
    free((char *)fresh);
    return ok ? path : NULL;
}

static void test_thousand_snapshots(void)
{
    const char *cached = cached_thousand();
    REQUIRE(cached);
    const char *path = th_path("thousand.qcow2");
    RUN_OK("cp", cached, path);
    RUN_OK("qemu-img", "snapshot", "-c", "by-qemu-img", path); /* icount among none */
    CHECK_INT(compare_chain(path), 1);
    snap_qimg_chain got;
    snap_err err;
    REQUIRE(snap_qcow2_chain_get(path, 0, &got, &err) == 0);
    CHECK_INT(got.images[0].n_snapshots, 1001);
    CHECK_INT(got.images[0].snapshots[999].icount, -1);
    CHECK_STR(got.images[0].snapshots[999].name, "t-0999");
    snap_qimg_chain_dispose(&got);
}

/* ------------------------------------------------------------ damage */

static unsigned char *load(const char *path, size_t *len)
{
    char *text = NULL;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    *len = (size_t)sb.st_size;
    text = malloc(*len ? *len : 1);
    if (text && pread(fd, text, *len, 0) != (ssize_t)*len) {
        free(text);
        text = NULL;
    }
    close(fd);
    return (unsigned char *)text;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Parses a damaged copy: the error's code and that its message names it all. */
static void check_damage(const unsigned char *img, size_t len, size_t at,
                         const unsigned char *bytes, size_t n, int code, const char *says)
{
    unsigned char *copy = malloc(len);
    memcpy(copy, img, len);
    memcpy(copy + at, bytes, n);
    snap_qimg_info info;
    snap_err err;
    int rc = snap_qcow2_parse_buffer(copy, len, "dmg.qcow2", &info, &err);
    if (rc != code)
        th_fail_at(__FILE__, __LINE__, "damage at %zu: rc %d, want %d (%s)", at, rc, code,
                   rc ? err.msg : "parsed");
    else {
        CHECK_CONTAINS(err.msg, "image dmg.qcow2");
        CHECK_CONTAINS(err.msg, says);
    }
    free(copy);
}

/* Every length in the first 4 KiB and around the table, some in between, all. */
static size_t next_prefix(size_t n, size_t len, size_t table)
{
    if (n < 4096 || (n >= table && n < table + 256))
        return n + 1;
    return n < len && n + 509 > len ? len : n + 509;
}

static void test_damaged_headers_are_refused(void)
{
    const char *path = image("dmg.qcow2", "1.1", "16M");
    RUN_OK("qemu-img", "snapshot", "-c", "s1", path);
    RUN_OK("qemu-img", "snapshot", "-c", "s2", path);
    size_t len = 0;
    unsigned char *img = load(path, &len);
    REQUIRE(img && len > 4096);
    snap_qimg_info info;
    snap_err err;
    REQUIRE(snap_qcow2_parse_buffer(img, len, "dmg.qcow2", &info, &err) == 0);
    CHECK_INT(info.n_snapshots, 2);
    snap_qimg_info_dispose(&info);
    size_t table = (size_t)get64(img + 64);
    REQUIRE(table + 80 < len);
    unsigned char b[4];
    check_damage(img, len, 79, (const unsigned char[]){0x20}, 1, SNAP_ERROR_UNSUPPORTED,
                 "unknown qcow2 incompatible feature bit 5 (0x20");
    check_damage(img, len, 75, (const unsigned char[]){0x01}, 1, SNAP_ERROR_UNSUPPORTED,
                 "incompatible feature bit 32");
    check_damage(img, len, 79, (const unsigned char[]){0x04}, 1, SNAP_ERROR_UNSUPPORTED,
                 "external data file");
    check_damage(img, len, 0, (const unsigned char[]){'X'}, 1, SNAP_ERROR_UNSUPPORTED,
                 "is not a qcow2 image");
    put32(b, 4);
    check_damage(img, len, 4, b, 4, SNAP_ERROR_UNSUPPORTED, "qcow2 version 4");
    put32(b, 30);
    check_damage(img, len, 20, b, 4, SNAP_ERROR_PROTOCOL, "cluster bits 30");
    put32(b, 1);
    check_damage(img, len, 32, b, 4, SNAP_ERROR_UNSUPPORTED, "encrypted");
    put32(b, 70000);
    check_damage(img, len, 60, b, 4, SNAP_ERROR_PROTOCOL, "70000 snapshots");
    put32(b, 200); /* more entries than the table holds: runs off the end */
    check_damage(img, len, 60, b, 4, SNAP_ERROR_PROTOCOL, "truncated");
    put32(b, 2000);
    check_damage(img, len, table + 36, b, 4, SNAP_ERROR_PROTOCOL,
                 "snapshot 0 has 2000 bytes of extra data (at most 1024)");
    check_damage(img, len, 71, (const unsigned char[]){0x08}, 1, SNAP_ERROR_PROTOCOL,
                 "snapshot table offset");
    put32(b, 7);
    check_damage(img, len, 100, b, 4, SNAP_ERROR_PROTOCOL, "header length 7");
    /* A backing file name past the first cluster, or longer than 1023 bytes. */
    check_damage(img, len, 8, (const unsigned char[]){0, 0, 0, 0, 0, 0x01, 0, 8}, 8,
                 SNAP_ERROR_PROTOCOL, "past the first cluster");
    check_damage(img, len, 8,
                 (const unsigned char[]){0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x04, 0}, 12,
                 SNAP_ERROR_PROTOCOL, "backing file name too long (1024 bytes)");
    /* A header extension longer than the space left for it. */
    check_damage(img, len, 112,
                 (const unsigned char[]){0x12, 0x34, 0x56, 0x78, 0, 0x01, 0, 0}, 8,
                 SNAP_ERROR_PROTOCOL, "header extension 0x12345678 of 65536 bytes");
    check_damage(img, len, 112,
                 (const unsigned char[]){0xe2, 0x79, 0x2a, 0xca, 0, 0, 0, 20}, 8,
                 SNAP_ERROR_PROTOCOL, "backing format extension of 20 bytes");
    check_damage(img, len, 112,
                 (const unsigned char[]){0x44, 0x41, 0x54, 0x41, 0, 0, 0, 4}, 8,
                 SNAP_ERROR_UNSUPPORTED, "external data file");
    /* Prefixes of the image: a clean error or a parse, never a crash. */
    size_t parsed = 0;
    for (size_t n = 0; n <= len; n = next_prefix(n, len, table)) {
        if (snap_qcow2_parse_buffer(img, n, "prefix.qcow2", &info, &err) == 0) {
            parsed++;
            snap_qimg_info_dispose(&info);
        } else if (!strstr(err.msg, "prefix.qcow2")) {
            th_fail_at(__FILE__, __LINE__, "prefix %zu: %s", n, err.msg);
            break;
        }
    }
    th_note("%zu prefixes parse (the snapshot table is near the file's end)", parsed);
    CHECK(parsed > 0);
    free(img);
}

/* ------------------------------------------------------------ locks */

/* msg with "[<pid>]" as "[N]" (rotating buffers: two at a time). */
static const char *without_pids(const char *msg)
{
    static char out[2][SNAP_ERRMSG_MAX];
    static int k;
    char *o = out[k++ % 2], *start = o;
    for (const char *p = msg; *p && o < start + SNAP_ERRMSG_MAX - 4; p++) {
        *o++ = *p;
        if (*p == '[' && p[1] >= '0' && p[1] <= '9') {
            *o++ = 'N';
            while (p[1] >= '0' && p[1] <= '9')
                p++;
        }
    }
    *o = '\0';
    return start;
}

static void test_held_image_is_busy_as_through_qemu_img(void)
{
    const char *base = strdup(image("held-base.qcow2", "1.1", "16M"));
    const char *top = strdup(th_path("held-top.qcow2"));
    const char *free_img = strdup(image("not-held.qcow2", "1.1", "16M"));
    RUN_OK("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top);
    th_qemu vm;
    const char *args[] = {"-drive", th_qemu_drive_arg(top, "d0"), NULL};
    REQUIRE(th_qemu_start(&vm, "holder", args));
    snap_qimg_chain got;
    snap_err err;
    int rc = SNAP_ERROR_FAIL;
    for (int i = 0; i < 200 && (rc = snap_qcow2_chain_get(top, 0, &got, &err)) == 0;
         i++) {
        snap_qimg_chain_dispose(&got);
        usleep(50000);
    }
    CHECK_INT(rc, SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, "another process holds its lock (byte 101)");
    /* The backing file QEMU only reads: qemu-img info reads it too, and so do we. */
    CHECK_INT(compare_chain(base), 1);
    /* Force-share (qemu-img -U) reads the held image. */
    CHECK_INT(snap_qcow2_chain_get(top, SNAP_QIMG_FORCE_SHARE, &got, &err), 0);
    CHECK_INT(got.n, 2);
    snap_qimg_chain_dispose(&got);
    /* Through the many-image call: the same outcome and words as qemu-img's. */
    const char *paths[] = {free_img, top};
    snap_qimg_chain a[2], b[2];
    snap_err pa[2], pb[2], ea, eb;
    int ra = snap_qcow2_chain_get_many(NULL, paths, 2, 0, a, pa, &ea);
    int rb = snap_qimg_chain_get_many(NULL, paths, 2, 0, b, pb, &eb);
    CHECK_INT(ra, SNAP_ERROR_BUSY);
    CHECK_INT(rb, ra);
    CHECK_INT(pa[0].code, 0);
    CHECK_INT(pa[1].code, SNAP_ERROR_BUSY);
    CHECK_INT(a[0].n, 1);
    CHECK_STR(without_pids(pa[1].msg), without_pids(pb[1].msg));
    CHECK_STR(without_pids(ea.msg), without_pids(eb.msg));
    CHECK_CONTAINS(pa[1].msg, "is in use by a running QEMU");
    for (int i = 0; i < 2; i++) {
        snap_qimg_chain_dispose(&a[i]);
        snap_qimg_chain_dispose(&b[i]);
    }
    th_qemu_stop(&vm);
    CHECK_INT(compare_chain(top), 2);
    free((char *)base);
    free((char *)top);
    free((char *)free_img);
}

/* Images the reader leaves to qemu-img still come back, read by qemu-img. */
static void test_other_formats_fall_back_to_qemu_img(void)
{
    const char *raw = strdup(th_path("plain.raw"));
    RUN_OK("qemu-img", "create", "-q", "-f", "raw", raw, "1M");
    const char *vmdk = strdup(th_path("other.vmdk"));
    RUN_OK("qemu-img", "create", "-q", "-f", "vmdk", vmdk, "1M");
    const char *paths[] = {raw, vmdk, th_path("missing.qcow2")};
    snap_qimg_chain c[3];
    snap_err per[3], err;
    CHECK_INT(snap_qcow2_chain_get_many(NULL, paths, 3, 0, c, per, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_STR(c[0].images[0].format, "raw");
    CHECK_STR(c[1].images[0].format, "vmdk");
    CHECK_INT(per[2].code, SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "1 of 3 images could not be read, first: ");
    CHECK_CONTAINS(err.msg, "qemu-img info --backing-chain on ");
    for (int i = 0; i < 3; i++)
        snap_qimg_chain_dispose(&c[i]);
    free((char *)raw);
    free((char *)vmdk);
}

int main(void)
{
    th_plan(9);
    TH_RUN(test_plain_images);
    TH_RUN(test_snapshots_by_qemu_img);
    TH_RUN(test_snapshots_with_vm_state);
    TH_RUN(test_backing_chains);
    TH_RUN(test_dirty_and_corrupt_bits);
    TH_RUN(test_thousand_snapshots);
    TH_RUN(test_damaged_headers_are_refused);
    TH_RUN(test_held_image_is_busy_as_through_qemu_img);
    TH_RUN(test_other_formats_fall_back_to_qemu_img);
    return th_finish();
}
