/*
 * Tests of snap_lvm on outputs recorded from the real LVM tools
 * (tests/data/lvm/, README there says how): parsing lvs's JSON, telling a
 * logical volume from another block device by device-mapper's sysfs uuid,
 * snapshot volume names, and lvcreate/lvremove children run through
 * tests/data/lvm/fake-lvm, which replays the recorded outputs and logs
 * every call. This host has no device-mapper: the real volumes are made on
 * the nested Xen (check-xen).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_lvm.h"
#include "snap_lvm_revert.h"
#include "th.h"

static const char *recorded(const char *name)
{
    static char path[4][1024];
    static int next;
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/lvm/%s", name);
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s", th_top_path(rel));
    return p;
}

static char *read_recorded(const char *name)
{
    char *text = th_read_file(recorded(name));
    if (!text)
        th_fail_at(__FILE__, __LINE__, "cannot read %s", recorded(name));
    return text;
}

/* One volume's row of the recorded VG report, as lvs reports it alone. */
static char *recorded_row(const char *lv_name, const char *from, const char *to)
{
    char *vg = read_recorded("lvs-vg.json");
    char key[256];
    snprintf(key, sizeof key, "{\"lv_name\":\"%s\",", lv_name);
    char *row = vg ? strstr(vg, key) : NULL;
    char *end = row ? strchr(row, '}') : NULL;
    char *json = NULL;
    if (end) {
        *++end = '\0';
        char *r = snap_xstrdup(row);
        char *at = from ? strstr(r, from) : NULL;
        if (at) /* an edit: another lv_attr, as a running host shows it */
            memcpy(at, to, strlen(to));
        json = snap_xasprintf("{\"report\": [{\"lv\": [%s]}]}\n", r);
        free(r);
    }
    free(vg);
    return json;
}

static void test_parse_recorded_report(void)
{
    char *json = read_recorded("lvs-vg.json");
    snap_lv *lvs = NULL;
    size_t n = 0;
    snap_err err = {0};
    REQUIRE(json);
    int rc = snap_lvm_parse_lvs(json, &lvs, &n, &err);
    free(json);
    REQUIRE(rc == 0);
    REQUIRE(n == 5);
    CHECK_STR(lvs[0].name, "dom1-disk");
    CHECK_STR(lvs[0].vg, "xlsnaptest");
    CHECK(!lvs[0].thin && !lvs[0].classic_snapshot && !lvs[0].open);
    CHECK_INT(lvs[0].size, 16777216);
    CHECK(lvs[0].origin == NULL && lvs[0].pool == NULL && lvs[0].n_tags == 0);
    CHECK_STR(lvs[0].dm_path, "/dev/mapper/xlsnaptest-dom1--disk");
    CHECK_STR(lvs[1].name, "dom1-disk-xlsnap-s1");
    CHECK(lvs[1].classic_snapshot && !lvs[1].thin && !lvs[1].invalid);
    CHECK_STR(lvs[1].origin, "dom1-disk");
    CHECK(snap_lv_has_tag(&lvs[1], SNAP_LVM_TAG));
    CHECK_INT(lvs[1].size, 8388608);
    CHECK_STR(lvs[2].name, "dom2-root");
    CHECK(lvs[2].thin && !lvs[2].classic_snapshot);
    CHECK_STR(lvs[2].pool, "pool");
    CHECK_STR(lvs[3].origin, "dom2-root");
    CHECK(lvs[3].thin && snap_lv_has_tag(&lvs[3], SNAP_LVM_TAG));
    CHECK_STR(lvs[4].segtype, "thin-pool");
    CHECK(!lvs[4].thin && lvs[4].path == NULL); /* a pool has no /dev/vg path */
    char *full = snap_lv_full_name(&lvs[2]);
    CHECK_STR(full, "xlsnaptest/dom2-root");
    free(full);
    snap_lv_list_free(lvs, n);
}

static void expect_protocol_error(const char *json, const char *words)
{
    snap_lv *lvs = (snap_lv *)1;
    size_t n = 7;
    snap_err err = {0};
    CHECK_INT(snap_lvm_parse_lvs(json, &lvs, &n, &err), SNAP_ERROR_PROTOCOL);
    CHECK(lvs == NULL && n == 0);
    CHECK_CONTAINS(err.msg, words);
}

static void test_parse_rejects_what_it_cannot_trust(void)
{
    /* lvs without --units b --nosuffix (LVM's default "16.00m", recorded) */
    expect_protocol_error("{\"report\":[{\"lv\":[{\"lv_name\":\"dom1-disk\", "
                          "\"vg_name\":\"xlsnaptest\", \"lv_attr\":\"owi-XXs---\", "
                          "\"lv_size\":\"16.00m\"}]}]}",
                          "lv_size '16.00m' is not a number of bytes");
    expect_protocol_error("{\"report\":[{\"lv\":[{\"lv_name\":\"a\", \"vg_name\":\"v\", "
                          "\"lv_attr\":\"-wi-ao----\"}]}]}",
                          "lv_size '(missing)'");
    expect_protocol_error("{\"report\":[{\"lv\":[{\"vg_name\":\"v\"}]}]}", "lv_name");
    expect_protocol_error("{\"lv\":[]}", "no \"report\"");
    expect_protocol_error("  Volume group \"x\" not found", "");
    /* an empty report is no error: lvs lists nothing */
    char *json = read_recorded("lvs-no-such-lv.json");
    snap_lv *lvs = NULL;
    size_t n = 1;
    snap_err err = {0};
    CHECK_INT(snap_lvm_parse_lvs(json, &lvs, &n, &err), 0);
    CHECK_INT(n, 0);
    snap_lv_list_free(lvs, n);
    free(json);
}

static void write_sysfs(const char *majmin, const char *uuid, const char *name)
{
    char dir[1024], file[1100];
    snprintf(dir, sizeof dir, "%s/sys/dev/block/%s/dm", th_tmpdir(), majmin);
    char *cmd = snap_xasprintf("mkdir -p '%s'", dir);
    CHECK_INT(system(cmd), 0);
    free(cmd);
    snprintf(file, sizeof file, "%s/uuid", dir);
    CHECK(th_write_file(file, uuid));
    snprintf(file, sizeof file, "%s/name", dir);
    CHECK(th_write_file(file, name));
}

static void test_block_device_kinds(void)
{
    /* "LVM-" + the recorded VG's uuid + dom2-root's, dashes removed */
    const char *lv_uuid =
        "LVM-CCLACbvI2MrV45kOPZFsrcd2s5f1pdfXdG972vfbqebF8yBPzlEGph4hLXbRe6Gd";
    char *uuid = snap_xasprintf("%s\n", lv_uuid);
    write_sysfs("253:3", uuid, "xlsnaptest-dom2--root\n");
    free(uuid);
    char *real = snap_xasprintf("%s-real\n", lv_uuid);
    write_sysfs("253:4", real, "xlsnaptest-dom1--disk-real\n");
    free(real);
    write_sysfs("253:5", "CRYPT-LUKS2-0123456789abcdef-root\n", "root\n");
    char *sysfs = snap_xasprintf("%s/sys", th_tmpdir()), *dm_name = NULL;
    CHECK(snap_lvm_dev_is_lv(sysfs, 253, 3, &dm_name));
    CHECK_STR(dm_name, "xlsnaptest-dom2--root");
    free(dm_name);
    CHECK(!snap_lvm_dev_is_lv(sysfs, 253, 4, NULL)); /* a snapshot's hidden layer */
    CHECK(!snap_lvm_dev_is_lv(sysfs, 253, 5, NULL)); /* dm-crypt, not LVM */
    CHECK(!snap_lvm_dev_is_lv(sysfs, 8, 0, NULL));   /* no dm/ at all: a disk */
    free(sysfs);

    unsigned ma = 0, mi = 0;
    snap_err err = {0};
    CHECK_INT(snap_lvm_parse_physical_device("fd:3", &ma, &mi, &err), 0);
    CHECK(ma == 253 && mi == 3);
    CHECK_INT(snap_lvm_parse_physical_device("103:1a", &ma, &mi, &err), 0);
    CHECK(ma == 259 && mi == 26);
    const char *bad[] = {"", "fd", "fd:", ":3", "fd:3x", "fd:3:1", "zz:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(snap_lvm_parse_physical_device(bad[i], &ma, &mi, &err),
                  SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "physical-device 'zz:1'");
}

static bool lvm_name_ok(const char *s)
{
    if (!*s || *s == '-' || strlen(s) > 127)
        return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_.-",
                    *s))
            return false;
    return true;
}

static void test_snapshot_volume_names(void)
{
    char *n = snap_lvm_snapshot_name("dom2-root", "before-upgrade.1");
    CHECK_STR(n, "dom2-root-xlsnap-before-upgrade.1");
    free(n);
    char *a = snap_lvm_snapshot_name("root", "mon 9:00"),
         *b = snap_lvm_snapshot_name("root", "mon 9?00");
    CHECK(lvm_name_ok(a) && lvm_name_ok(b));
    CHECK(strncmp(a, "root-xlsnap-mon_9_00-", 21) == 0);
    CHECK(strcmp(a, b) != 0); /* same cleaned text, different hash */
    free(a);
    free(b);
    char long_lv[128], long_snap[201];
    memset(long_lv, 'v', 127);
    long_lv[127] = '\0';
    memset(long_snap, 's', 200);
    long_snap[200] = '\0';
    char *c = snap_lvm_snapshot_name(long_lv, long_snap);
    long_snap[199] = 't';
    char *d = snap_lvm_snapshot_name(long_lv, long_snap);
    CHECK(lvm_name_ok(c) && lvm_name_ok(d));
    CHECK(strcmp(c, d) != 0);
    free(c);
    free(d);
}

/* ------------------------------------------------------------ children */

static char state[1024];
static snap_lvm_opts opts;

static void state_file(const char *rel, const char *text)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", state, rel);
    if (!th_write_file(path, text))
        th_fail_at(__FILE__, __LINE__, "cannot write %s", path);
}

/* A fresh fake-lvm state: the recorded thin and classic volumes exist. */
static void fake_lvm_reset(void)
{
    snprintf(state, sizeof state, "%s/lvm-state", th_tmpdir());
    char *cmd = snap_xasprintf("rm -rf '%s' && mkdir -p '%s'/lvs '%s'/alias '%s'/made "
                               "'%s'/fail '%s'/hang",
                               state, state, state, state, state, state);
    CHECK_INT(system(cmd), 0);
    free(cmd);
    char *thin = read_recorded("lvs-thin.json"),
         *classic = read_recorded("lvs-classic.json");
    state_file("lvs/xlsnaptest_dom2-root.json", thin);
    state_file("lvs/xlsnaptest_dom1-disk.json", classic);
    state_file("alias/%dev%xlsnaptest%dom2-root", "xlsnaptest_dom2-root");
    state_file("alias/%dev%mapper%xlsnaptest-dom1--disk", "xlsnaptest_dom1-disk");
    free(thin);
    free(classic);
    setenv("FAKE_LVM_STATE", state, 1);
    opts = (snap_lvm_opts){.binary = recorded("fake-lvm"), .timeout_ms = 10000};
}

static char *fake_lvm_log(void)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/log", state);
    char *log = th_read_file(path);
    return log ? log : snap_xstrdup("");
}

static void test_lookup_through_lvs(void)
{
    fake_lvm_reset();
    snap_lv lv;
    snap_err err = {0};
    REQUIRE(snap_lvm_lookup(&opts, "/dev/xlsnaptest/dom2-root", &lv, &err) == 0);
    CHECK(lv.thin);
    CHECK_STR(lv.pool, "pool");
    snap_lv_dispose(&lv);
    REQUIRE(snap_lvm_lookup(&opts, "/dev/mapper/xlsnaptest-dom1--disk", &lv, &err) == 0);
    CHECK(!lv.thin && !lv.classic_snapshot);
    CHECK_STR(lv.name, "dom1-disk");
    snap_lv_dispose(&lv);
    /* a plain disk: LVM's own words (recorded from lvs on /dev/loop0) */
    state_file("alias/%dev%loop0", "replay:lvs-not-lv");
    CHECK_INT(snap_lvm_lookup(&opts, "/dev/loop0", &lv, &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "/dev/loop0 is not a logical volume LVM knows");
    CHECK_CONTAINS(err.msg, "Volume group \"loop0\" not found");
    char *log = fake_lvm_log();
    CHECK_CONTAINS(log,
                   "lvs --reportformat json --units b --nosuffix -o " SNAP_LVM_LVS_FIELDS
                   " /dev/xlsnaptest/dom2-root\n");
    free(log);
}

static void test_create_reports_each_failure(void)
{
    fake_lvm_reset();
    char *thin_row = recorded_row("dom2-root-xlsnap-s1", NULL, NULL);
    state_file("made/dom2-root-xlsnap-s1.json", thin_row);
    free(thin_row);
    state_file("fail/dom1-disk-xlsnap-s1", "");
    snap_lvm_snap_req reqs[] = {
        {.vg = "xlsnaptest",
         .origin = "dom2-root",
         .name = "dom2-root-xlsnap-s1",
         .thin = true},
        {.vg = "xlsnaptest",
         .origin = "dom1-disk",
         .name = "dom1-disk-xlsnap-s1",
         .cow_bytes = 8388608},
    };
    bool made[2] = {false, true};
    snap_err err = {0};
    CHECK(snap_lvm_create_snapshots(&opts, reqs, 2, 5000, made, &err) != 0);
    CHECK(made[0] && !made[1]);
    CHECK_CONTAINS(err.msg, "1 of 2 snapshot volumes not made, first: lvm lvcreate "
                            "--snapshot xlsnaptest/dom1-disk as dom1-disk-xlsnap-s1");
    CHECK_CONTAINS(err.msg, "exited with error status 3");
    CHECK_CONTAINS(err.msg, "Required device-mapper target(s) not detected");
    char *log = fake_lvm_log();
    CHECK_CONTAINS(log, "lvcreate --snapshot --name dom2-root-xlsnap-s1 --addtag xlsnap "
                        "xlsnaptest/dom2-root\n");
    CHECK_CONTAINS(log, "lvcreate --snapshot --size 8388608b --name dom1-disk-xlsnap-s1 "
                        "--addtag xlsnap xlsnaptest/dom1-disk\n");
    free(log);
    /* the thin snapshot exists now: lvs finds it */
    snap_lv lv;
    REQUIRE(snap_lvm_lookup(&opts, "xlsnaptest/dom2-root-xlsnap-s1", &lv, &err) == 0);
    CHECK_STR(lv.origin, "dom2-root");
    snap_lv_dispose(&lv);
    /* no size for a classic snapshot: refused before any child runs */
    reqs[1].cow_bytes = 0;
    CHECK_INT(snap_lvm_create_snapshots(&opts, &reqs[1], 1, 0, NULL, &err),
              SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "needs a copy-on-write size");
}

static void test_create_timeout_kills(void)
{
    fake_lvm_reset();
    state_file("hang/dom2-root-xlsnap-s2", "");
    snap_lvm_snap_req req = {.vg = "xlsnaptest",
                             .origin = "dom2-root",
                             .name = "dom2-root-xlsnap-s2",
                             .thin = true};
    bool made = true;
    snap_err err = {0};
    uint64_t t0 = snap_now_ms();
    CHECK(snap_lvm_create_snapshots(&opts, &req, 1, 300, &made, &err) != 0);
    CHECK(snap_now_ms() - t0 < 5000);
    CHECK(!made);
    CHECK_CONTAINS(err.msg, "was killed by timeout");
}

static void test_remove_only_what_xlsnap_made(void)
{
    fake_lvm_reset();
    char *thin = recorded_row("dom2-root-xlsnap-s1", NULL, NULL);
    char *open = recorded_row("dom1-disk-xlsnap-s1", "swi-XXs---", "swi-aos---");
    state_file("lvs/xlsnaptest_dom2-root-xlsnap-s1.json", thin);
    state_file("lvs/xlsnaptest_dom1-disk-xlsnap-s1.json", open);
    snap_lvm_snap_req reqs[] = {
        {.vg = "xlsnaptest", .origin = "dom2-root", .name = "dom2-root-xlsnap-s1"},
        {.vg = "xlsnaptest", .origin = "dom2-root", .name = "gone-already"},
        {.vg = "xlsnaptest", .origin = "x", .name = "dom2-root"}, /* no tag */
        {.vg = "xlsnaptest", .origin = "dom1-disk", .name = "dom1-disk-xlsnap-s1"},
    };
    snap_err err = {0};
    CHECK(snap_lvm_remove_snapshots(&opts, reqs, 4, &err) != 0);
    CHECK_CONTAINS(err.msg, "2 of 4 snapshot volumes not removed, first: "
                            "xlsnaptest/dom2-root has no LVM tag 'xlsnap'");
    char *log = fake_lvm_log();
    CHECK_CONTAINS(log, "lvremove --yes xlsnaptest/dom2-root-xlsnap-s1\n");
    CHECK(!strstr(log, "lvremove --yes xlsnaptest/dom2-root\n"));
    CHECK(!strstr(log, "lvremove --yes xlsnaptest/dom1-disk-xlsnap-s1"));
    free(log);
    snap_lv lv;
    CHECK_INT(snap_lvm_lookup(&opts, "xlsnaptest/dom2-root-xlsnap-s1", &lv, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_INT(snap_lvm_lookup(&opts, "xlsnaptest/dom2-root", &lv, &err), 0);
    snap_lv_dispose(&lv);
    /* the open one alone: refused as busy, with its name */
    CHECK_INT(snap_lvm_remove_snapshots(&opts, &reqs[3], 1, &err), SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, "xlsnaptest/dom1-disk-xlsnap-s1 is open");
    /* a snapshot of another origin is not ours to remove */
    free(open);
    open = recorded_row("dom1-disk-xlsnap-s1", NULL, NULL);
    state_file("lvs/xlsnaptest_dom1-disk-xlsnap-s1.json", open);
    reqs[3].origin = "dom9";
    CHECK_INT(snap_lvm_remove_snapshots(&opts, &reqs[3], 1, &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "is not a snapshot of dom9 (its origin: dom1-disk)");
    free(thin);
    free(open);
}

/* text with the first from replaced by to (malloc'd) */
static char *edited(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at)
        return snap_xstrdup(text);
    return snap_xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

/* The thin snapshot of s1 that a revert of dom2-root makes, as lvs would show it. */
static void fake_fresh_volume(void)
{
    char *row = recorded_row("dom2-root-xlsnap-s1", NULL, NULL);
    char *a = edited(row, "\"lv_name\":\"dom2-root-xlsnap-s1\"",
                     "\"lv_name\":\"dom2-root-xlsnap-rv\"");
    char *b = edited(a, "\"origin\":\"dom2-root\"", "\"origin\":\"dom2-root-xlsnap-s1\"");
    state_file("made/dom2-root-xlsnap-rv.json", b);
    state_file("lvs/xlsnaptest_dom2-root-xlsnap-s1.json", row);
    free(row);
    free(a);
    free(b);
}

/* dom2-root as lvs reports it now: origin (NULL: none) and tag. */
static void expect_volume(const char *name, const char *origin, bool tagged)
{
    snap_lv lv;
    snap_err err = {0};
    char *full = snap_xasprintf("xlsnaptest/%s", name);
    int rc = snap_lvm_lookup(&opts, full, &lv, &err);
    if (rc)
        th_fail_at(__FILE__, __LINE__, "%s: %s", full, err.msg);
    else if ((origin ? !lv.origin || strcmp(lv.origin, origin) : lv.origin != NULL) ||
             snap_lv_has_tag(&lv, SNAP_LVM_TAG) != tagged)
        th_fail_at(__FILE__, __LINE__, "%s: origin %s, tagged %d; want %s, %d", full,
                   lv.origin ? lv.origin : "none", snap_lv_has_tag(&lv, SNAP_LVM_TAG),
                   origin ? origin : "none", tagged);
    if (!rc)
        snap_lv_dispose(&lv);
    free(full);
}

static void expect_gone(const char *name)
{
    snap_lv lv;
    snap_err err = {0};
    char *full = snap_xasprintf("xlsnaptest/%s", name);
    if (snap_lvm_lookup(&opts, full, &lv, &err) != SNAP_ERROR_NOTFOUND)
        th_fail_at(__FILE__, __LINE__, "%s is still there", full);
    free(full);
}

/*
 * A thin revert swaps a new snapshot of s1 in under the volume's name,
 * keeps the old content as -pre until finished, and is undone from any
 * point (here: its last rename failed) from the names alone.
 */
static void test_thin_revert_swap(void)
{
    fake_lvm_reset();
    fake_fresh_volume();
    snap_lvm_swap sw;
    snap_err err = {0};
    REQUIRE(snap_lvm_swap_init(&sw, "xlsnaptest/dom2-root",
                               "xlsnaptest/dom2-root-xlsnap-s1", &err) == 0);
    CHECK_STR(sw.fresh, "dom2-root-xlsnap-rv");
    CHECK_INT(snap_lvm_swap_check(&opts, &sw, &err), 0);
    REQUIRE(snap_lvm_swap_apply(&opts, &sw, &err) == 0);
    expect_volume("dom2-root", "dom2-root-xlsnap-s1", false);
    expect_volume("dom2-root-xlsnap-pre", NULL, true);
    expect_volume("dom2-root-xlsnap-s1", "dom2-root", true); /* reusable */
    expect_gone("dom2-root-xlsnap-rv");
    char *log = fake_lvm_log();
    CHECK_CONTAINS(log, "lvcreate --snapshot --name dom2-root-xlsnap-rv --addtag xlsnap "
                        "xlsnaptest/dom2-root-xlsnap-s1\n"
                        "lvrename xlsnaptest dom2-root dom2-root-xlsnap-pre\n");
    CHECK_CONTAINS(log,
                   "lvchange --deltag xlsnap --setactivationskip n "
                   "xlsnaptest/dom2-root\nlvchange --activate y xlsnaptest/dom2-root\n");
    free(log);
    /* a leftover no journal covers is refused before anything changes */
    CHECK_INT(snap_lvm_swap_check(&opts, &sw, &err), SNAP_ERROR_EXISTS);
    CHECK_CONTAINS(err.msg,
                   "xlsnaptest/dom2-root-xlsnap-pre is left by an interrupted revert");
    REQUIRE(snap_lvm_swap_undo(&opts, &sw, &err) == 0);
    expect_volume("dom2-root", NULL, false);
    expect_gone("dom2-root-xlsnap-pre");
    expect_gone("dom2-root-xlsnap-rv");
    /* again, kept this time: the old content removed */
    fake_fresh_volume();
    REQUIRE(snap_lvm_swap_apply(&opts, &sw, &err) == 0);
    CHECK_INT(snap_lvm_swap_finish(&opts, &sw, &err), 0);
    expect_volume("dom2-root", "dom2-root-xlsnap-s1", false);
    expect_gone("dom2-root-xlsnap-pre");
    snap_lvm_swap_dispose(&sw);

    /* interrupted between its renames, then undone */
    fake_lvm_reset();
    fake_fresh_volume();
    state_file("fail/rename-dom2-root", "");
    REQUIRE(snap_lvm_swap_init(&sw, "xlsnaptest/dom2-root",
                               "xlsnaptest/dom2-root-xlsnap-s1", &err) == 0);
    CHECK(snap_lvm_swap_apply(&opts, &sw, &err) != 0);
    CHECK_CONTAINS(err.msg, "reverting xlsnaptest/dom2-root to dom2-root-xlsnap-s1");
    expect_gone("dom2-root");
    char *fail = snap_xasprintf("%s/fail/rename-dom2-root", state);
    CHECK_INT(unlink(fail), 0); /* the undo's own rename to dom2-root works */
    free(fail);
    CHECK_INT(snap_lvm_swap_undo(&opts, &sw, &err), 0);
    expect_volume("dom2-root", NULL, false);
    expect_gone("dom2-root-xlsnap-pre");
    expect_gone("dom2-root-xlsnap-rv");
    snap_lvm_swap_dispose(&sw);

    /* classic snapshots are merged instead (test_classic_revert_merge) */
    char *classic = recorded_row("dom1-disk-xlsnap-s1", NULL, NULL);
    state_file("lvs/xlsnaptest_dom1-disk-xlsnap-s1.json", classic);
    free(classic);
    REQUIRE(snap_lvm_swap_init(&sw, "xlsnaptest/dom1-disk",
                               "xlsnaptest/dom1-disk-xlsnap-s1", &err) == 0);
    CHECK_INT(snap_lvm_swap_check(&opts, &sw, &err), SNAP_ERROR_UNSUPPORTED);
    snap_lvm_swap_dispose(&sw);
    CHECK_INT(snap_lvm_swap_init(&sw, "xlsnaptest/a", "other/b", &err), SNAP_ERROR_INVAL);
    snap_lvm_swap_dispose(&sw);
}

/* One recorded report's single volume (REQUIREs there is one). */
static void parse_one(const char *name, snap_lv *lv)
{
    char *json = read_recorded(name);
    snap_lv *lvs = NULL;
    size_t n = 0;
    snap_err err = {0};
    int rc = snap_lvm_parse_lvs(json, &lvs, &n, &err);
    free(json);
    if (rc || n != 1)
        th_fail_at(__FILE__, __LINE__, "%s: rc %d, %zu volumes", name, rc, n);
    memset(lv, 0, sizeof *lv);
    if (n)
        *lv = lvs[0];
    free(lvs);
}

/* lv_attr as LVM 2.03.16 shows a classic snapshot's life, recorded in dom0 */
static void test_parse_merge_states(void)
{
    snap_lv lv;
    parse_one("lvs-classic-snap-active.json", &lv); /* swi-a-s--- */
    CHECK(lv.classic_snapshot && !lv.invalid && !lv.merging && !lv.merge_failed);
    CHECK_STR(lv.origin, "dom1-disk");
    snap_lv_dispose(&lv);
    parse_one("lvs-classic-invalid.json", &lv); /* swi-I-s---: full, invalidated */
    CHECK(lv.classic_snapshot && lv.invalid && !lv.merging);
    snap_lv_dispose(&lv);
    parse_one("lvs-merge-pending-origin.json", &lv); /* Owi-aos---: merge deferred */
    CHECK(lv.merging && !lv.classic_snapshot && lv.open && !lv.merge_failed);
    snap_lv_dispose(&lv);
    parse_one("lvs-merged-origin.json", &lv); /* -wi-a-----: merged, snapshot gone */
    CHECK(!lv.merging && !lv.classic_snapshot && !lv.open);
    snap_lv_dispose(&lv);
    /* a merging snapshot is hidden: lvs of it by name lists nothing, exit 0 */
    char *json = read_recorded("lvs-merge-pending-snap.json");
    snap_lv *lvs = NULL;
    size_t n = 1;
    snap_err err = {0};
    CHECK_INT(snap_lvm_parse_lvs(json, &lvs, &n, &err), 0);
    CHECK_INT(n, 0);
    snap_lv_list_free(lvs, n);
    free(json);
    /* a merge LVM reports failed: lv_attr[4] 'm' */
    char *failed = recorded_row("dom1-disk", "owi-XXs---", "Owi-mos---");
    CHECK_INT(snap_lvm_parse_lvs(failed, &lvs, &n, &err), 0);
    CHECK(n == 1 && lvs[0].merging && lvs[0].merge_failed);
    snap_lv_list_free(lvs, n);
    free(failed);
}

/* dom1-disk with its classic snapshot s1 as an active host shows them. */
static void fake_classic_pair(void)
{
    char *origin = read_recorded("lvs-classic-origin-active.json"),
         *snap = read_recorded("lvs-classic-snap-active.json");
    state_file("lvs/xlsnaptest_dom1-disk.json", origin);
    state_file("lvs/xlsnaptest_dom1-disk-xlsnap-s1.json", snap);
    free(origin);
    free(snap);
}

static void expect_merged(snap_lvm_swap *sw)
{
    snap_lv lv;
    snap_err err = {0};
    CHECK_INT(snap_lvm_merge_began(&opts, sw, &err), 1);
    expect_gone("dom1-disk-xlsnap-s1");
    if (snap_lvm_lookup(&opts, "xlsnaptest/dom1-disk", &lv, &err) == 0) {
        CHECK(!lv.merging && !lv.classic_snapshot);
        snap_lv_dispose(&lv);
    } else {
        th_fail_at(__FILE__, __LINE__, "dom1-disk: %s", err.msg);
    }
    CHECK_INT(snap_lvm_merge_finish(&opts, sw, &err), 0); /* again: done is fine */
}

/*
 * A revert to a classic snapshot merges it (lvconvert --merge): at once when
 * the origin is closed, else deferred by LVM until lvchange --refresh; the
 * snapshot volume is consumed either way. Refused before anything changes:
 * an invalidated snapshot, another origin's, a merge already pending.
 */
static void test_classic_revert_merge(void)
{
    fake_lvm_reset();
    fake_classic_pair();
    snap_lvm_swap sw;
    snap_err err = {0};
    REQUIRE(snap_lvm_swap_init(&sw, "xlsnaptest/dom1-disk",
                               "xlsnaptest/dom1-disk-xlsnap-s1", &err) == 0);
    CHECK_INT(snap_lvm_merge_check(&opts, &sw, &err), 0);
    CHECK_INT(snap_lvm_merge_began(&opts, &sw, &err), 0);
    REQUIRE(snap_lvm_merge_apply(&opts, &sw, &err) == 0);
    char *log = fake_lvm_log();
    CHECK_CONTAINS(log, "lvconvert --merge --yes xlsnaptest/dom1-disk-xlsnap-s1\n");
    CHECK(!strstr(log, "--refresh"));
    free(log);
    expect_merged(&sw);
    CHECK_INT(snap_lvm_merge_check(&opts, &sw, &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "xlsnaptest/dom1-disk-xlsnap-s1 is missing");

    /* the origin still open: LVM defers the merge; refresh runs it */
    fake_lvm_reset();
    fake_classic_pair();
    state_file("defer", "");
    REQUIRE(snap_lvm_merge_apply(&opts, &sw, &err) == 0);
    log = fake_lvm_log();
    CHECK_CONTAINS(log, "lvchange --refresh xlsnaptest/dom1-disk\n");
    free(log);
    expect_merged(&sw);

    /* interrupted with the merge pending (began), finished by recovery */
    fake_lvm_reset();
    fake_classic_pair();
    state_file("defer", "");
    state_file("stuck", "");
    CHECK_INT(snap_lvm_wait_merged(&opts, "xlsnaptest", "dom1-disk", 0, &err), 0);
    CHECK(snap_lvm_merge(&opts, "xlsnaptest", "dom1-disk-xlsnap-s1", &err) == 0);
    CHECK_INT(snap_lvm_wait_merged(&opts, "xlsnaptest", "dom1-disk", 700, &err),
              SNAP_ERROR_TIMEDOUT);
    CHECK_CONTAINS(err.msg, "the merge into xlsnaptest/dom1-disk is still going on");
    CHECK_INT(snap_lvm_merge_began(&opts, &sw, &err), 1);
    CHECK_INT(snap_lvm_merge_check(&opts, &sw, &err), SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, "a snapshot merge into xlsnaptest/dom1-disk is pending");
    char *stuck = snap_xasprintf("%s/stuck", state);
    CHECK_INT(unlink(stuck), 0);
    free(stuck);
    CHECK_INT(snap_lvm_merge_finish(&opts, &sw, &err), 0);
    expect_merged(&sw);
    snap_lvm_swap_dispose(&sw);

    /* refused: invalidated (full), and LVM's own refusal carried up */
    fake_lvm_reset();
    fake_classic_pair();
    char *invalid = read_recorded("lvs-classic-invalid.json");
    state_file("lvs/xlsnaptest_dom1-disk-xlsnap-s3.json", invalid);
    free(invalid);
    REQUIRE(snap_lvm_swap_init(&sw, "xlsnaptest/dom1-disk",
                               "xlsnaptest/dom1-disk-xlsnap-s3", &err) == 0);
    CHECK_INT(snap_lvm_merge_check(&opts, &sw, &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "LVM invalidated the classic snapshot "
                            "xlsnaptest/dom1-disk-xlsnap-s3");
    state_file("fail/merge-dom1-disk-xlsnap-s3", "");
    CHECK(snap_lvm_merge_apply(&opts, &sw, &err) != 0);
    CHECK_CONTAINS(err.msg, "merging xlsnaptest/dom1-disk-xlsnap-s3 into dom1-disk");
    CHECK_CONTAINS(err.msg, "Unable to merge invalidated snapshot LV");
    CHECK_INT(snap_lvm_merge_began(&opts, &sw, &err), 0);
    snap_lvm_swap_dispose(&sw);
    /* a snapshot of another volume, and a thin one, are not merged */
    REQUIRE(snap_lvm_swap_init(&sw, "xlsnaptest/dom2-root",
                               "xlsnaptest/dom1-disk-xlsnap-s1", &err) == 0);
    CHECK_INT(snap_lvm_merge_check(&opts, &sw, &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "is not a classic snapshot of dom2-root (its origin: "
                            "dom1-disk)");
    snap_lvm_swap_dispose(&sw);
}

/* blkback's physical-device against the device the path names now */
static void test_physical_device_check(void)
{
    snap_err err = {0};
    CHECK_INT(
        snap_lvm_check_physical_device("xvdb", "/dev/vg/l1-data", 254, 3, "fe:3", &err),
        0);
    CHECK_INT(
        snap_lvm_check_physical_device("xvdb", "/dev/vg/l1-data", 254, 3, "fe:1", &err),
        SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "disk xvdb: blkback serves device 254:1 (xenstore "
                            "physical-device fe:1), but /dev/vg/l1-data is device 254:3");
    CHECK_INT(
        snap_lvm_check_physical_device("xvdb", "/dev/vg/l1-data", 254, 3, "254:3", &err),
        SNAP_ERROR_INVAL); /* decimal would be 0x254 */
    CHECK_INT(
        snap_lvm_check_physical_device("xvdb", "/dev/vg/l1-data", 254, 3, "fe", &err),
        SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "disk xvdb: xenstore's backend");
}

/*
 * snapshot-verify reads a snapshot volume that is not active (thin ones
 * skip activation) after activating it for now (-K: LVM's metadata and the
 * volume's activation skip flag untouched), then deactivates it.
 */
static void test_read_only_activation(void)
{
    fake_lvm_reset();
    fake_classic_pair();
    snap_lv lv;
    snap_err err = {0};
    REQUIRE(snap_lvm_lookup(&opts, "xlsnaptest/dom1-disk-xlsnap-s1", &lv, &err) == 0);
    CHECK(lv.active); /* swi-a-s--- */
    snap_lv_dispose(&lv);
    REQUIRE(snap_lvm_lookup(&opts, "xlsnaptest/dom1-disk", &lv, &err) == 0);
    CHECK(lv.active); /* owi-a-s--- */
    snap_lv_dispose(&lv);
    REQUIRE(snap_lvm_lookup(&opts, "/dev/xlsnaptest/dom2-root", &lv, &err) == 0);
    CHECK(!lv.active); /* Vwi-XXtz--: recorded without device-mapper */
    snap_lv_dispose(&lv);
    CHECK_INT(snap_lvm_activate_transient(&opts, "xlsnaptest", "dom2-root", &err), 0);
    CHECK_INT(snap_lvm_deactivate(&opts, "xlsnaptest", "dom2-root", &err), 0);
    char *log = fake_lvm_log();
    CHECK_CONTAINS(log,
                   "lvchange --activate y --ignoreactivationskip xlsnaptest/dom2-root\n");
    CHECK_CONTAINS(log, "lvchange --activate n xlsnaptest/dom2-root\n");
    CHECK(!strstr(log, "setactivationskip") && !strstr(log, "--permission"));
    free(log);
    CHECK_INT(snap_lvm_activate_transient(&opts, "xlsnaptest", "gone", &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "lvm lvchange --activate y xlsnaptest/gone");
}

int main(void)
{
    th_plan(13);
    TH_RUN(test_parse_recorded_report);
    TH_RUN(test_parse_rejects_what_it_cannot_trust);
    TH_RUN(test_block_device_kinds);
    TH_RUN(test_snapshot_volume_names);
    TH_RUN(test_lookup_through_lvs);
    TH_RUN(test_create_reports_each_failure);
    TH_RUN(test_create_timeout_kills);
    TH_RUN(test_remove_only_what_xlsnap_made);
    TH_RUN(test_thin_revert_swap);
    TH_RUN(test_parse_merge_states);
    TH_RUN(test_classic_revert_merge);
    TH_RUN(test_physical_device_check);
    TH_RUN(test_read_only_activation);
    return th_finish();
}
