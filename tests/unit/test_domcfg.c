/*
 * snap_domcfg against real libxl-json: configs are parsed from xl config text
 * with libxlutil and serialised by libxl itself, then stored the way libxl
 * stores them (0600, trailing NUL).
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libxl.h>
#include <libxl_uuid.h>
#include <libxlutil.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap_domcfg.h"
#include "snap_json.h"
#include "th.h"

#define DOMID 7

static const char *const guest_cfg =
    "name = \"guest1\"\n"
    "type = \"pv\"\n"
    "memory = 256\n"
    "kernel = \"/boot/vmlinuz\"\n"
    "disk = [ 'format=qcow2,vdev=xvda,access=rw,backendtype=qdisk,"
    "target=/var/lib/xen/images/guest1 root.qcow2',\n"
    "         '/dev/vg0/guest1-data,raw,xvdb,rw',\n"
    "         'vdev=xvdc,devtype=cdrom,access=ro,format=raw,target=/iso/inst.iso' ]\n";

/* ------------------------------------------------------------ fixtures */

/* xl's way: libxlutil parses the config, one xlu_disk_parse per disk. */
static bool parse_xl_config(const char *text, libxl_domain_config *d)
{
    XLU_Config *cfg = xlu_cfg_init(stderr, "test config");
    const char *s;
    long mem;
    XLU_ConfigList *vbds;
    bool ok = cfg && !xlu_cfg_readdata(cfg, text, (int)strlen(text)) &&
              !xlu_cfg_get_string(cfg, "name", &s, 0) &&
              !xlu_cfg_get_long(cfg, "memory", &mem, 0);
    libxl_domain_config_init(d);
    if (ok) {
        d->c_info.name = strdup(s);
        d->c_info.type = LIBXL_DOMAIN_TYPE_PV;
        libxl_uuid_generate(&d->c_info.uuid);
        libxl_domain_build_info_init_type(&d->b_info, d->c_info.type);
        d->b_info.target_memkb = d->b_info.max_memkb = (uint64_t)mem * 1024;
        ok = !xlu_cfg_get_list(cfg, "disk", &vbds, 0, 0);
    }
    const char *spec;
    while (ok && (spec = xlu_cfg_get_listitem(vbds, d->num_disks)) != NULL) {
        d->disks = realloc(d->disks, (d->num_disks + 1) * sizeof *d->disks);
        libxl_device_disk *disk = &d->disks[d->num_disks++];
        libxl_device_disk_init(disk);
        ok = xlu_disk_parse(cfg, 1, &spec, disk) == 0;
    }
    if (cfg)
        xlu_cfg_destroy(cfg);
    return ok;
}

/* Stores d as libxl__set_domain_configuration does: JSON + NUL, 0600, rename. */
static bool store_as_libxl(const char *statedir, const libxl_domain_config *d,
                           char uuid[LIBXL_UUID_FMTLEN + 1])
{
    char *json = libxl_domain_config_to_json(NULL, (libxl_domain_config *)d);
    if (!json)
        return false;
    snprintf(uuid, LIBXL_UUID_FMTLEN + 1, LIBXL_UUID_FMT,
             LIBXL_UUID_BYTES(d->c_info.uuid));
    char *tmp = snap_domcfg_userdata_path(statedir, DOMID, uuid, "n", "libxl-json");
    char *dst = snap_domcfg_userdata_path(statedir, DOMID, uuid, "d", "libxl-json");
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
    size_t len = strlen(json) + 1;
    bool ok = fd >= 0 && write(fd, json, len) == (ssize_t)len;
    ok = fd >= 0 && close(fd) == 0 && ok && rename(tmp, dst) == 0;
    free(json);
    free(tmp);
    free(dst);
    return ok;
}

typedef struct fixture {
    char statedir[4096];
    char uuid[LIBXL_UUID_FMTLEN + 1];
    char *orig; /* file bytes as libxl stored them */
    size_t orig_len;
} fixture;

static char *file_bytes(const fixture *f, size_t *len)
{
    snap_err err = {0};
    char *data = NULL;
    if (snap_domcfg_read(f->statedir, DOMID, f->uuid, &data, len, &err))
        th_note("read: %s", err.msg);
    return data;
}

/* A fresh state dir holding libxl's JSON for guest_cfg (tweak may edit it). */
static bool fixture_setup(fixture *f, const char *name,
                          void (*tweak)(libxl_domain_config *))
{
    memset(f, 0, sizeof *f);
    snprintf(f->statedir, sizeof f->statedir, "%s", th_path(name));
    libxl_domain_config d;
    bool ok = mkdir(f->statedir, 0700) == 0 && parse_xl_config(guest_cfg, &d);
    if (ok && tweak)
        tweak(&d);
    ok = ok && store_as_libxl(f->statedir, &d, f->uuid);
    libxl_domain_config_dispose(&d);
    if (ok)
        f->orig = file_bytes(f, &f->orig_len);
    return ok && f->orig;
}

static void fixture_free(fixture *f)
{
    free(f->orig);
}

static size_t count_glob(const fixture *f, const char *pattern)
{
    char *p = snap_xasprintf("%s/%s", f->statedir, pattern);
    glob_t g;
    size_t n = glob(p, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
    if (n || g.gl_pathv)
        globfree(&g);
    free(p);
    return n;
}

static int file_mode(const fixture *f)
{
    char *p = snap_domcfg_userdata_path(f->statedir, DOMID, f->uuid, "d", "libxl-json");
    struct stat st;
    int mode = stat(p, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
    free(p);
    return mode;
}

/* ------------------------------------------------------------ tree diff */

/* Appends to diffs (";"-separated) every path where a and b differ. */
static void tree_diff(yajl_val a, yajl_val b, const char *path, char *diffs, size_t cap)
{
    char sub[512];
    size_t used = strlen(diffs);
    if (a && b && YAJL_IS_OBJECT(a) && YAJL_IS_OBJECT(b)) {
        for (size_t i = 0; i < a->u.object.len; i++) {
            snprintf(sub, sizeof sub, "%s/%s", path, a->u.object.keys[i]);
            tree_diff(a->u.object.values[i], snap_json_get(b, a->u.object.keys[i]), sub,
                      diffs, cap);
        }
        for (size_t i = 0; i < b->u.object.len; i++)
            if (!snap_json_get(a, b->u.object.keys[i])) {
                used = strlen(diffs);
                snprintf(diffs + used, cap - used, "%s/%s+;", path, b->u.object.keys[i]);
            }
        return;
    }
    if (a && b && YAJL_IS_ARRAY(a) && YAJL_IS_ARRAY(b) &&
        a->u.array.len == b->u.array.len) {
        for (size_t i = 0; i < a->u.array.len; i++) {
            snprintf(sub, sizeof sub, "%s/%zu", path, i);
            tree_diff(a->u.array.values[i], b->u.array.values[i], sub, diffs, cap);
        }
        return;
    }
    yajl_gen ga = snap_json_gen_new(false), gb = snap_json_gen_new(false);
    snap_json_tree(ga, a);
    snap_json_tree(gb, b);
    char *ta = snap_json_gen_finish(ga, NULL), *tb = snap_json_gen_finish(gb, NULL);
    if (!a || !b || strcmp(ta, tb) != 0)
        snprintf(diffs + used, cap - used, "%s%s;", path, b ? "" : "-");
    free(ta);
    free(tb);
}

/* The paths where two JSON texts differ, e.g. "/disks/0/pdev_path;". */
static char *json_diff(const char *a, const char *b)
{
    snap_err err = {0};
    yajl_val ta = snap_json_parse(a, "a", &err), tb = snap_json_parse(b, "b", &err);
    char *diffs = calloc(1, 4096);
    if (!ta || !tb)
        snprintf(diffs, 4096, "unparsable: %s", err.msg);
    else
        tree_diff(ta, tb, "", diffs, 4096);
    yajl_tree_free(ta);
    yajl_tree_free(tb);
    return diffs;
}

/* orig with the first occurrence of `from` replaced by `to`. */
static char *replace_once(const char *orig, size_t len, const char *from, const char *to,
                          size_t *out_len)
{
    const char *at = strstr(orig, from);
    if (!at)
        return NULL;
    size_t pre = (size_t)(at - orig), fl = strlen(from), tl = strlen(to);
    char *out = malloc(len - fl + tl + 1);
    memcpy(out, orig, pre);
    memcpy(out + pre, to, tl);
    memcpy(out + pre + tl, at + fl, len - pre - fl);
    *out_len = len - fl + tl;
    out[*out_len] = '\0';
    return out;
}

/* ------------------------------------------------------------ tests */

static void test_paths_and_statedir(void)
{
    unsetenv(SNAP_DOMCFG_STATEDIR_ENV);
    CHECK_STR(snap_domcfg_statedir(NULL), "/var/lib/xen");
    setenv(SNAP_DOMCFG_STATEDIR_ENV, "/srv/xenstate", 1);
    CHECK_STR(snap_domcfg_statedir(NULL), "/srv/xenstate");
    CHECK_STR(snap_domcfg_statedir("/x"), "/x");
    char *p = snap_domcfg_userdata_path(NULL, 3, "0b5e2c1a-aaaa-bbbb-cccc-0123456789ab",
                                        "d", "libxl-json");
    CHECK_STR(p, "/srv/xenstate/userdata-d.3.0b5e2c1a-aaaa-bbbb-cccc-0123456789ab."
                 "libxl-json");
    free(p);
    p = snap_domcfg_userdata_path("/var/lib/xen", 12, "u", "l", "domain-userdata-lock");
    CHECK_STR(p, "/var/lib/xen/userdata-l.12.u.domain-userdata-lock");
    free(p);
    unsetenv(SNAP_DOMCFG_STATEDIR_ENV);
}

static void test_find_disks_in_libxl_json(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "find", NULL));
    snap_err err = {0};
    snap_domcfg_disk d = {0};
    CHECK_INT(snap_domcfg_find_disk(f.orig, "xvda", &d, &err), 0);
    CHECK_STR(d.pdev_path, "/var/lib/xen/images/guest1 root.qcow2");
    CHECK_STR(d.format, "qcow2");
    snap_domcfg_disk_dispose(&d);
    CHECK_INT(snap_domcfg_find_disk(f.orig, "xvdb", &d, &err), 0);
    CHECK_STR(d.pdev_path, "/dev/vg0/guest1-data");
    CHECK_STR(d.format, "raw");
    snap_domcfg_disk_dispose(&d);
    CHECK_INT(snap_domcfg_find_disk(f.orig, "xvdz", &d, &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "xvdz");
    fixture_free(&f);
}

static void test_update_changes_only_that_disk(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "one", NULL));
    snap_err err = {0};
    snap_domcfg_disk_change ch = {"xvda", "/var/lib/xen/images/guest1.snap-1.qcow2",
                                  "qcow2"};
    REQUIRE(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, 1000, &err) == 0);
    size_t len, exp_len;
    char *now = file_bytes(&f, &len);
    REQUIRE(now);
    /* Byte for byte: only the value changed, libxl's trailing NUL kept. */
    char *expect =
        replace_once(f.orig, f.orig_len, "\"/var/lib/xen/images/guest1 root.qcow2\"",
                     "\"/var/lib/xen/images/guest1.snap-1.qcow2\"", &exp_len);
    REQUIRE(expect);
    CHECK_INT(len, exp_len);
    CHECK(len == exp_len && memcmp(now, expect, len) == 0);
    CHECK_INT(now[len - 1], '\0');
    char *diff = json_diff(f.orig, now);
    CHECK_STR(diff, "/disks/0/pdev_path;");
    CHECK_INT(file_mode(&f), 0600);
    CHECK_INT(count_glob(&f, "userdata-n.*"), 0);
    CHECK_INT(count_glob(&f, "*.domain-userdata-lock"), 0);
    free(diff);
    free(expect);
    free(now);
    fixture_free(&f);
}

static void test_update_two_disks_with_format(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "two", NULL));
    snap_err err = {0};
    snap_domcfg_disk_change ch[] = {
        {"xvdb", "/var/lib/xen/images/data \"quoted\"\\.qcow2", "qcow2"},
        {"xvda", "/var/lib/xen/images/root-2.qcow2", NULL},
    };
    REQUIRE(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, ch, 2, -1, &err) == 0);
    size_t len;
    char *now = file_bytes(&f, &len);
    REQUIRE(now);
    char *diff = json_diff(f.orig, now);
    CHECK_STR(diff, "/disks/0/pdev_path;/disks/1/pdev_path;/disks/1/format;");
    snap_domcfg_disk d = {0};
    CHECK_INT(snap_domcfg_find_disk(now, "xvdb", &d, &err), 0);
    CHECK_STR(d.pdev_path, ch[0].pdev_path);
    CHECK_STR(d.format, "qcow2");
    snap_domcfg_disk_dispose(&d);
    /* Everything before the first disk is the same bytes. */
    const char *first = strstr(f.orig, "\"disks\"");
    REQUIRE(first);
    CHECK(memcmp(now, f.orig, (size_t)(first - f.orig)) == 0);
    free(diff);
    free(now);
    fixture_free(&f);
}

/* A disk whose format libxl left out (UNKNOWN is not written). */
static void drop_xvdb_format(libxl_domain_config *d)
{
    d->disks[1].format = LIBXL_DISK_FORMAT_UNKNOWN;
}

static void test_absent_key_regenerates_in_order(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "absent", drop_xvdb_format));
    snap_err err = {0};
    snap_domcfg_disk d = {0};
    REQUIRE(snap_domcfg_find_disk(f.orig, "xvdb", &d, &err) == 0);
    CHECK(d.format == NULL);
    snap_domcfg_disk_dispose(&d);
    snap_domcfg_disk_change ch = {"xvdb", "/img/data.qcow2", "qcow2"};
    REQUIRE(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, -1, &err) == 0);
    size_t len;
    char *now = file_bytes(&f, &len);
    REQUIRE(now);
    char *diff = json_diff(f.orig, now);
    CHECK_STR(diff, "/disks/1/pdev_path;/disks/1/format+;");
    /* Regenerated the way libxl writes: same layout outside the disk. */
    const char *first = strstr(f.orig, "\"disks\"");
    REQUIRE(first);
    CHECK(memcmp(now, f.orig, (size_t)(first - f.orig)) == 0);
    CHECK_INT(now[len - 1], '\0');
    free(diff);
    free(now);
    fixture_free(&f);
}

static void test_switch_back_restores_original_bytes(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "rollback", NULL));
    snap_err err = {0};
    snap_domcfg_disk_change ch = {"xvda", "/snap/overlay.qcow2", "qcow2"};
    REQUIRE(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, -1, &err) == 0);
    /* A rollback switches back to the old values the journal kept. */
    snap_domcfg_disk_change back = {"xvda", "/var/lib/xen/images/guest1 root.qcow2",
                                    "qcow2"};
    CHECK_INT(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &back, 1, 1000, &err), 0);
    size_t len;
    char *now = file_bytes(&f, &len);
    CHECK(now && len == f.orig_len && memcmp(now, f.orig, len) == 0);
    CHECK_INT(file_mode(&f), 0600);
    CHECK_INT(count_glob(&f, "userdata-n.*"), 0);
    free(now);
    fixture_free(&f);
}

static void test_switch_back_after_libxl_rewrote(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "rewrite", NULL));
    snap_err err = {0};
    snap_domcfg_disk_change ch = {"xvda", "/snap/overlay.qcow2", "qcow2"};
    REQUIRE(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, -1, &err) == 0);
    /* libxl changes something else meanwhile (e.g. mem-set). */
    size_t len, rlen;
    char *now = file_bytes(&f, &len);
    REQUIRE(now);
    char *rewritten = replace_once(now, len, "262144", "524288", &rlen);
    REQUIRE(rewritten);
    REQUIRE(snap_domcfg_store(f.statedir, DOMID, f.uuid, rewritten, rlen, &err) == 0);
    snap_domcfg_disk_change back = {"xvda", "/var/lib/xen/images/guest1 root.qcow2",
                                    "qcow2"};
    CHECK_INT(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &back, 1, -1, &err), 0);
    char *after = file_bytes(&f, &len);
    REQUIRE(after);
    /* libxl's change stays; only the disk went back. */
    char *diff = json_diff(f.orig, after);
    CHECK_STR(diff, "/b_info/max_memkb;");
    free(diff);
    free(after);
    free(rewritten);
    free(now);
    fixture_free(&f);
}

/*
 * Two libxl-style holders (flock, unlink before close): A holds the lock for
 * hold_s; on release it unlinks the file and, before closing, B locks a
 * fresh file at the same path for 0.6 s and marks <statedir>/b-done when it
 * lets go. A waiter that locked A's old inode and did not re-check the path
 * would run while B still holds the lock.
 */
static pid_t start_lock_holders(const fixture *f, const char *hold_s, char **ready)
{
    char *lock = snap_domcfg_userdata_path(f->statedir, DOMID, f->uuid, "l",
                                           "domain-userdata-lock");
    *ready = snap_xasprintf("%s/holder-ready", f->statedir);
    char *b_ready = snap_xasprintf("%s/b-ready", f->statedir);
    char *b_done = snap_xasprintf("%s/b-done", f->statedir);
    char *argv[] = {"sh",
                    "-c",
                    "set -e; exec 9<>\"$1\"; flock 9; : >\"$2\"; sleep \"$3\"; "
                    "rm -f \"$1\"; "
                    "(exec 9>&-; exec 8<>\"$1\"; flock 8; : >\"$4\"; sleep 0.6; "
                    ": >\"$5\"; rm -f \"$1\") & "
                    "while [ ! -e \"$4\" ]; do sleep 0.01; done; exec 9>&-; wait",
                    "holder",
                    lock,
                    *ready,
                    (char *)hold_s,
                    b_ready,
                    b_done,
                    NULL};
    pid_t pid = th_spawn(argv, th_path("holder.log"));
    free(lock);
    free(b_ready);
    free(b_done);
    for (int i = 0; pid > 0 && i < 500 && access(*ready, F_OK) != 0; i++)
        usleep(10000);
    return pid;
}

static void test_lock_held_by_another_process(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "lock", NULL));
    char *ready = NULL;
    pid_t holder = start_lock_holders(&f, "0.5", &ready);
    REQUIRE(holder > 0);
    CHECK(access(ready, F_OK) == 0);
    snap_err err = {0};
    snap_domcfg_disk_change ch = {"xvda", "/snap/locked.qcow2", "qcow2"};
    /* With a timeout: gives up, says which lock, leaves the file alone. */
    CHECK_INT(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, 150, &err),
              SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, "domain-userdata-lock");
    size_t len;
    char *now = file_bytes(&f, &len);
    CHECK(now && len == f.orig_len && memcmp(now, f.orig, len) == 0);
    free(now);
    /* Blocking: must wait out both A and B (the inode re-check). */
    CHECK_INT(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, -1, &err), 0);
    char *b_done = snap_xasprintf("%s/b-done", f.statedir);
    CHECK(access(b_done, F_OK) == 0);
    free(b_done);
    int status = th_wait(holder, 5000);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snap_domcfg_disk d = {0};
    now = file_bytes(&f, &len);
    CHECK(now && snap_domcfg_find_disk(now, "xvda", &d, &err) == 0);
    CHECK_STR(d.pdev_path, "/snap/locked.qcow2");
    CHECK_INT(count_glob(&f, "*.domain-userdata-lock"), 0);
    snap_domcfg_disk_dispose(&d);
    free(now);
    free(ready);
    fixture_free(&f);
}

/* Each failing change must leave the stored file exactly as it was. */
static void check_refused(const fixture *f, const snap_domcfg_disk_change *ch, size_t n,
                          int want_rc, const char *want_msg)
{
    snap_err err = {0};
    CHECK_INT(snap_domcfg_set_disks(f->statedir, DOMID, f->uuid, ch, n, 1000, &err),
              want_rc);
    CHECK_CONTAINS(err.msg, want_msg);
    size_t len;
    char *now = file_bytes(f, &len);
    CHECK(now && len == f->orig_len && memcmp(now, f->orig, len) == 0);
    CHECK_INT(count_glob(f, "userdata-n.*"), 0);
    CHECK_INT(count_glob(f, "*.domain-userdata-lock"), 0);
    free(now);
}

static void test_refused_changes(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "refuse", NULL));
    snap_domcfg_disk_change unknown = {"xvdq", "/x.qcow2", "qcow2"};
    check_refused(&f, &unknown, 1, SNAP_ERROR_NOTFOUND, "no disk with vdev xvdq");
    snap_domcfg_disk_change badfmt = {"xvda", "/x.qcow2", "qcow3"};
    check_refused(&f, &badfmt, 1, SNAP_ERROR_INVAL,
                  "\"qcow3\" is not a libxl disk format");
    snap_domcfg_disk_change twice[] = {{"xvda", "/a", NULL}, {"xvda", "/b", NULL}};
    check_refused(&f, twice, 2, SNAP_ERROR_INVAL, "disk xvda changed twice");
    /* One bad change spoils the whole batch. */
    snap_domcfg_disk_change mixed[] = {{"xvda", "/a", "qcow2"}, {"hdz", "/b", NULL}};
    check_refused(&f, mixed, 2, SNAP_ERROR_NOTFOUND, "hdz");
    fixture_free(&f);
}

static void test_bad_stored_files(void)
{
    fixture f;
    REQUIRE(fixture_setup(&f, "bad", NULL));
    snap_err err = {0};
    snap_domcfg_disk_change ch = {"xvda", "/x.qcow2", "qcow2"};
    CHECK_INT(snap_domcfg_set_disks(f.statedir, DOMID + 1, f.uuid, &ch, 1, 1000, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "userdata-d.8.");
    char *path = snap_domcfg_userdata_path(f.statedir, DOMID, f.uuid, "d", "libxl-json");
    REQUIRE(th_write_file(path, ""));
    CHECK_INT(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, 1000, &err),
              SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "is empty");
    REQUIRE(th_write_file(path, "{\"disks\": [ {\"vdev\": \"xvda\", "));
    CHECK_INT(snap_domcfg_set_disks(f.statedir, DOMID, f.uuid, &ch, 1, 1000, &err),
              SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "invalid libxl-json");
    char *text = th_read_file(path);
    CHECK_STR(text, "{\"disks\": [ {\"vdev\": \"xvda\", ");
    free(text);
    free(path);
    fixture_free(&f);
}

int main(void)
{
    th_plan(10);
    TH_RUN(test_paths_and_statedir);
    TH_RUN(test_find_disks_in_libxl_json);
    TH_RUN(test_update_changes_only_that_disk);
    TH_RUN(test_update_two_disks_with_format);
    TH_RUN(test_absent_key_regenerates_in_order);
    TH_RUN(test_switch_back_restores_original_bytes);
    TH_RUN(test_switch_back_after_libxl_rewrote);
    TH_RUN(test_lock_held_by_another_process);
    TH_RUN(test_refused_changes);
    TH_RUN(test_bad_stored_files);
    return th_finish();
}
