/*
 * Consistency groups (issue 20) through the real `xlsnap` command on xlsim
 * domains: ga and gb run the guest's writer (an fsync'd record every 20 ms
 * on xvdb), gh's fsfreeze hook sleeps 8 s (its freeze times out under
 * --freeze-timeout=2). The four (gs too) boot side by side.
 *
 * A quiesced group of ga and gb: both cut inside their frozen windows (each
 * base image's ext4 is clean, without a journal to replay; each writer log
 * at the cut is a complete prefix of the live one, and the writer stalled at
 * the cut), the group record and its members listed. Then all or nothing:
 * a member whose freeze fails, a member whose transaction fails inside the
 * shared window, xlsnap SIGKILLed inside the window and after the members
 * were recorded but before the group was: every time no domain keeps a
 * member snapshot (storage, xenstore, libxl config, metadata as before) and
 * every guest is thawed. Then a crash-consistent group (--quiesce=off),
 * which pauses both domains for the cut, group deletes and reverts. Last
 * xlsnap SIGKILLed once the first member (ga) of a group revert, then of a
 * group delete, is done: a command on the other member (gb) finishes the
 * group first (gb reverted, or its member deleted), then runs.
 *
 * -N --group plans a group and changes nothing, and refuses what the real
 * run refuses. gs boots, then is shut off: a group of ga and gs is
 * quiesced, gs's member cut by qemu-img before the window; gs's member is
 * undone when gh's freeze fails, and when ga's transaction fails after
 * gs's overlay was made.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap_json.h"
#include "th.h"
#include "th_guest.h"
#include "th_qemu.h"
#include "th_snaptest.h"
#include "th_xlsim.h"

#define BOOT_TIMEOUT_MS 150000
#define MIN_RECORDS     20

static th_xlsim_dom ga, gb, gh, gs;
static bool all_up;

/* ------------------------------------------------------------ helpers */

/* The group record's path (it exists once the group is committed). */
static const char *group_record(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/groups/%s.json", th_xlsim_statedir(), name);
    return path;
}

/* The journal of a group revert or delete in progress. */
static const char *group_journal(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/groups/.%s.op.json", th_xlsim_statedir(), name);
    return path;
}

/* Starts xlsnap with a test hook and waits until it says it reached it. */
static pid_t start_paused_at(const char *const argv[], const char *log, const char *hook,
                             const char *said, const char *pause_ms)
{
    const char *full[16] = {th_build_path("xlsnap")};
    for (int i = 0; argv[i] && i < 14; i++)
        full[i + 1] = argv[i];
    setenv(hook, pause_ms, 1);
    pid_t pid = th_spawn((char *const *)full, log);
    unsetenv(hook);
    for (int waited = 0; pid > 0 && waited < 60000; waited += 50) {
        char *text = th_read_file(log);
        bool in = text && strstr(text, said);
        free(text);
        if (in)
            return pid;
        usleep(50000);
    }
    char *text = th_read_file(log);
    th_fail_at(__FILE__, __LINE__, "xlsnap never reached '%s': %s", said,
               text ? text : "");
    free(text);
    th_kill(pid);
    return -1;
}

/* Every "<seq> <ms>" line: the ms of record seq, -1 when absent. */
static long record_ms(const char *log, long seq)
{
    char key[32];
    int n = snprintf(key, sizeof key, "%ld ", seq);
    for (const char *p = log; p && *p;) {
        if (!strncmp(p, key, (size_t)n))
            return strtol(p + n, NULL, 10);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

/*
 * d's base image (the snapshot point of an external snapshot) holds a clean
 * ext4 whose writer log is a complete prefix of the live one, and the
 * writer stalled at the cut (the freeze held it).
 */
static void check_cut_inside_window(th_xlsim_dom *d)
{
    const char *raw = th_image_to_raw(d->data);
    REQUIRE(raw);
    CHECK_INT(th_ext4_needs_recovery(raw), 0);
    CHECK_INT(th_ext4_fsck(raw), 0);
    char *base_text = th_ext4_cat(raw, "/writer.log");
    REQUIRE(th_snap_wait_for_records(d, MIN_RECORDS * 3));
    char *live_text = th_snap_writer_log(d);
    th_writer_log base, live;
    REQUIRE(base_text && live_text);
    CHECK(th_writer_log_parse(base_text, &base));
    CHECK(th_writer_log_parse(live_text, &live));
    CHECK(base.records >= MIN_RECORDS);
    CHECK(live.last > base.last);
    CHECK(strncmp(live_text, base_text, strlen(base_text)) == 0);
    /* The record after the cut was stamped before its write blocked on the
     * frozen filesystem: the stall shows in one of the two steps after it. */
    long next = record_ms(live_text, base.last + 1);
    long after = record_ms(live_text, base.last + 2);
    long stall = next - base.last_ms > after - next ? next - base.last_ms : after - next;
    th_note("%s: cut after record %ld; the writer stalled %ld ms there (longest step "
            "%ld ms)",
            d->name, base.last, stall, live.max_gap_ms);
    CHECK(next > 0 && after > 0);
    CHECK(stall >= 60); /* three writer periods: held by the freeze */
    free(base_text);
    free(live_text);
}

/* ------------------------------------------------------------ tests */

static void test_boot(void)
{
    th_xlsim_opts writer = {.extra = "xlsnap.writer=vdb"};
    th_xlsim_opts hang = {.extra = "xlsnap.freeze_delay=8"};
    REQUIRE(th_xlsim_init());
    bool ca = th_xlsim_create(&ga, "ga", &writer);
    bool cb = th_xlsim_create(&gb, "gb", &writer);
    bool ch = th_xlsim_create(&gh, "gh", &hang);
    bool cs = th_xlsim_create(&gs, "gs", NULL);
    bool ua = ca && th_xlsim_wait_agent(&ga, BOOT_TIMEOUT_MS);
    bool ub = cb && th_xlsim_wait_agent(&gb, BOOT_TIMEOUT_MS);
    bool uh = ch && th_xlsim_wait_agent(&gh, BOOT_TIMEOUT_MS);
    bool us = cs && th_xlsim_wait_agent(&gs, BOOT_TIMEOUT_MS);
    /* gs is shut off: an offline member, its disks cut by qemu-img. */
    bool off = us && th_xlsim_poweroff(&gs, 60000);
    all_up = ua && ub && uh && off && th_snap_wait_for_records(&ga, MIN_RECORDS) &&
             th_snap_wait_for_records(&gb, MIN_RECORDS);
    CHECK(all_up);
}

static void test_group_quiesced(void)
{
    th_cmd r;
    REQUIRE(all_up);
    /* Named out of order: members are locked and listed by name. */
    th_xlsnap(&r, "snapshot-create", "-e", "--quiesce=required", "--group=g1", "gb", "ga",
              NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "Group g1 created: 2 domains, quiesced (all frozen together), "
                          "shared window ");
    CHECK_CONTAINS(r.out, "(ga ");
    th_note("%s", r.out);
    th_cmd_free(&r);
    CHECK(access(group_record("g1"), F_OK) == 0);
    CHECK_ACTIVE_IMAGE(&ga, "xvdb", "data.g1.qcow2");
    CHECK_ACTIVE_IMAGE(&gb, "xvdb", "data.g1.qcow2");
    CHECK_ACTIVE_IMAGE(&gb, "xvda", "root.g1.qcow2");
    CHECK_GUEST_THAWED(&ga);
    CHECK_GUEST_THAWED(&gb);
    check_cut_inside_window(&ga);
    check_cut_inside_window(&gb);
    char *journals = th_snap_journal_text();
    CHECK_STR(journals, "");
    free(journals);
}

static void test_group_list_info(void)
{
    th_cmd r;
    REQUIRE(access(group_record("g1"), F_OK) == 0);
    th_xlsnap(&r, "snapshot-list", "--groups", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "g1 ");
    CHECK_CONTAINS(r.out, " quiesced ");
    CHECK_CONTAINS(r.out, " ga,gb\n");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", "--group", "g1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "Group:          g1\n",
                       "Consistency:    quiesced (every domain frozen in one shared "
                       "window)",
                       "Members:        2\n", "\nga ", "\ngb ");
    th_note("%s", r.out);
    th_cmd_free(&r);
    /* Each member is an ordinary snapshot of its domain, marked as the group's. */
    th_xlsnap(&r, "snapshot-info", "ga", "g1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "Group:          g1 (snapshot-info --group g1)",
                       "Consistency:    quiesced", "Current:        yes");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", "--json", "gb", "g1", NULL);
    CHECK_CONTAINS(r.out, "\"group\": \"g1\"");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", "--group", "nosuch", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "no group 'nosuch'");
    th_cmd_free(&r);
    /* A name already taken is refused before any domain is touched. */
    th_xlsnap(&r, "snapshot-create", "--group=g1", "ga", "gb", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "group 'g1' already exists");
    th_cmd_free(&r);
}

/* gh's freeze times out: ga, frozen meanwhile, is thawed and keeps nothing. */
static void test_group_freeze_fails(void)
{
    th_cmd r;
    REQUIRE(all_up);
    /* gh's first snapshot makes its state directory (a failed create leaves it). */
    REQUIRE(XLSNAP_OK(NULL, "snapshot-create", "--quiesce=off", "gh", "h0"));
    char *before_a = th_world_capture(&ga, TH_WORLD_LIVE);
    char *before_h = th_world_capture(&gh, TH_WORLD_LIVE);
    th_xlsnap(&r, "snapshot-create", "--freeze-timeout=2", "--group=g2", "ga", "gh",
              NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS_ALL(r.err, "gh",
                       "group 'g2' was rolled back: no domain kept a member "
                       "snapshot");
    th_note("%s", r.err);
    th_cmd_free(&r);
    CHECK(access(group_record("g2"), F_OK) != 0);
    CHECK(!th_qemu_img_has_snapshot(ga.data, "g2"));
    CHECK(!th_qemu_img_has_snapshot(gh.data, "g2"));
    CHECK_GUEST_THAWED(&ga);
    CHECK_GUEST_THAWED(&gh);
    CHECK_WORLD_KEPT(&ga, before_a);
    CHECK_WORLD_KEPT(&gh, before_h);
}

/* The records in d's writer log (0 when it cannot be read). */
static long writer_records(const th_xlsim_dom *d)
{
    char *text = th_snap_writer_log(d);
    th_writer_log log;
    long n = text && th_writer_log_parse(text, &log) ? log.records : 0;
    free(text);
    return n;
}

/*
 * -N --group prints the group's plan (a header naming it and its cut, each
 * member's plan) and changes nothing: no member snapshot in any qcow2
 * table, no group record, no journal, no guest frozen (a freeze would stop
 * at the test hook and say so); the writers keep writing.
 */
static void test_group_dry_run(void)
{
    th_cmd r;
    REQUIRE(all_up);
    char *before_a = th_world_capture(&ga, TH_WORLD_LIVE);
    char *before_b = th_world_capture(&gb, TH_WORLD_LIVE);
    char *img_a = th_snap_active_image(&ga, "xvdb");
    char *img_b = th_snap_active_image(&gb, "xvdb");
    REQUIRE(img_a && img_b);
    char *table_a = th_snap_table(img_a), *table_b = th_snap_table(img_b);
    long records_a = writer_records(&ga), records_b = writer_records(&gb);
    setenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE", "60000", 1);
    th_xlsnap(&r, "-N", "snapshot-create", "--quiesce=required", "--group=g6", "gb", "ga",
              NULL);
    unsetenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE");
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "\"group\": \"g6\"", "\"domains\": 2",
                       "\"cut\": \"quiesced\"", "shared frozen window",
                       "\"domain\": \"ga\"", "\"domain\": \"gb\"", "\"snapshot\": \"g6\"",
                       "\"vdev\": \"xvdb\"");
    CHECK(strstr(r.out, "\"domain\": \"ga\"") < strstr(r.out, "\"domain\": \"gb\""));
    CHECK(!r.err || !strstr(r.err, "test hook"));
    th_note("%s", r.out);
    th_cmd_free(&r);
    CHECK(access(group_record("g6"), F_OK) != 0);
    char *journals = th_snap_journal_text();
    CHECK_STR(journals, "");
    free(journals);
    CHECK(access(group_journal("g6"), F_OK) != 0);
    char *after_a = th_snap_table(img_a), *after_b = th_snap_table(img_b);
    CHECK_STR(after_a, table_a);
    CHECK_STR(after_b, table_b);
    CHECK_GUEST_THAWED(&ga);
    CHECK_GUEST_THAWED(&gb);
    CHECK(th_snap_wait_for_records(&ga, records_a + 10));
    CHECK(th_snap_wait_for_records(&gb, records_b + 10));
    CHECK_WORLD_KEPT(&ga, before_a);
    CHECK_WORLD_KEPT(&gb, before_b);
    /* Crash-consistent: the plan says both are paused for the cut. */
    th_xlsnap(&r, "-N", "snapshot-create", "--quiesce=off", "--group=g6", "ga", "gb",
              NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "\"cut\": \"paused\"", "every domain paused");
    th_cmd_free(&r);
    CHECK(access(group_record("g6"), F_OK) != 0);
    free(table_a), free(table_b), free(after_a), free(after_b), free(img_a), free(img_b);
}

/* -N refuses what the real run refuses, naming the group or the member. */
static void test_group_dry_run_refused(void)
{
    th_cmd r;
    REQUIRE(all_up);
    REQUIRE(access(group_record("g1"), F_OK) == 0);
    th_xlsnap(&r, "-N", "snapshot-create", "--group=g1", "ga", "gb", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "group 'g1' already exists");
    CHECK_STR(r.out, "");
    th_cmd_free(&r);
    th_xlsnap(&r, "-N", "snapshot-create", "--group=g7", "ga", "gb", "ga", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "domain ga is named twice");
    th_cmd_free(&r);
    /* gh already has a snapshot h0 (test_group_freeze_fails): gh is named. */
    th_xlsnap(&r, "-N", "snapshot-create", "--group=h0", "ga", "gh", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS_ALL(r.err, "group h0: domain gh cannot be snapshotted", "h0");
    CHECK_STR(r.out, "");
    th_note("%s", r.err);
    th_cmd_free(&r);
    th_xlsnap(&r, "-N", "snapshot-create", "--group=g7", "ga", "nosuchdom", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "nosuchdom");
    th_cmd_free(&r);
    CHECK(access(group_record("g7"), F_OK) != 0);
    CHECK(access(group_record("h0"), F_OK) != 0);
    char *journals = th_snap_journal_text();
    CHECK_STR(journals, "");
    free(journals);
}

/* gb's transaction fails inside the shared window (its overlay path taken). */
static void test_group_transaction_fails(void)
{
    REQUIRE(all_up);
    char *before_a = th_world_capture(&ga, TH_WORLD_LIVE);
    char *before_b = th_world_capture(&gb, TH_WORLD_LIVE);
    char *ov_b = snap_xasprintf("%s/data.g3.qcow2", gb.disk_dir);
    char *ov_a = snap_xasprintf("%s/data.g3.qcow2", ga.disk_dir);
    const char *argv[] = {"snapshot-create", "-e", "--group=g3", "ga", "gb", NULL};
    pid_t pid = start_paused_at(argv, th_path("g3.log"), "XLSNAP_TEST_PAUSE_AFTER_FREEZE",
                                "test hook: frozen", "3000");
    REQUIRE(pid > 0);
    CHECK(mkdir(ov_b, 0700) == 0);
    int status = th_wait(pid, 90000);
    char *log = th_read_file(th_path("g3.log"));
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK_CONTAINS_ALL(log, "domain gb", "data.g3.qcow2",
                       "group 'g3' was rolled back: no domain kept a member snapshot");
    th_note("xlsnap: %s", log ? log : "");
    rmdir(ov_b);
    CHECK(access(ov_a, F_OK) != 0); /* ga's overlay, made, is gone */
    CHECK(access(group_record("g3"), F_OK) != 0);
    CHECK_GUEST_THAWED(&ga);
    CHECK_GUEST_THAWED(&gb);
    CHECK_WORLD_KEPT(&ga, before_a);
    CHECK_WORLD_KEPT(&gb, before_b);
    free(log), free(ov_a), free(ov_b);
}

/*
 * xlsnap SIGKILLed at hook: the watchdogs thaw the guests, and the next
 * command on each member rolls its part back (the group never recorded).
 */
static void sigkill_at(const char *group, const char *hook, const char *said)
{
    REQUIRE(all_up);
    char *before_a = th_world_capture(&ga, TH_WORLD_LIVE);
    char *before_b = th_world_capture(&gb, TH_WORLD_LIVE);
    char arg[64];
    snprintf(arg, sizeof arg, "--group=%s", group);
    const char *argv[] = {"snapshot-create", "-e", arg, "ga", "gb", NULL};
    pid_t pid = start_paused_at(argv, th_path("kill.log"), hook, said, "60000");
    REQUIRE(pid > 0);
    char *journals = th_snap_journal_text();
    CHECK(journals && strstr(journals, group) != NULL);
    free(journals);
    kill(pid, SIGKILL);
    CHECK(th_wait(pid, 10000) != -1);
    sleep(2); /* the watchdogs (if any was armed) thaw at once on EOF */
    /* The next command on each member recovers it: rolled back. */
    const th_xlsim_dom *const members[] = {&ga, &gb};
    for (size_t i = 0; i < 2; i++) {
        th_cmd r;
        th_xlsnap(&r, "-N", "snapshot-create", members[i]->name, "probe", NULL);
        CHECK_INT(r.rc, 0);
        CHECK_CONTAINS(r.err, "rolling back snapshot");
        th_note("recovery of %s: %s", members[i]->name, r.err);
        th_cmd_free(&r);
    }
    CHECK(access(group_record(group), F_OK) != 0);
    /* The dead run's groups lock is free: the next group command takes it at
     * once (and clears the dead holder's pid from it). */
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "--group=g1", "ga", "gb", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "group 'g1' already exists");
    th_cmd_free(&r);
    journals = th_snap_journal_text();
    CHECK_STR(journals, "");
    free(journals);
    CHECK_GUEST_THAWED(&ga);
    CHECK_GUEST_THAWED(&gb);
    CHECK_WORLD_KEPT(&ga, before_a);
    CHECK_WORLD_KEPT(&gb, before_b);
}

static void test_group_sigkill_in_window(void)
{
    sigkill_at("g4", "XLSNAP_TEST_PAUSE_AFTER_FREEZE", "test hook: frozen");
}

static void test_group_sigkill_before_group_record(void)
{
    sigkill_at("g5", "XLSNAP_TEST_PAUSE_BEFORE_GROUP_RECORD",
               "test hook: members recorded");
}

/* No freeze: both domains paused for the cut, running again afterwards. */
static void test_group_crash_consistent(void)
{
    th_cmd r;
    REQUIRE(all_up);
    th_xlsnap(&r, "snapshot-create", "--quiesce=off", "--group=g6", "ga", "gb", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "Group g6 created: 2 domains, crash-consistent (all paused "
                          "together)");
    CHECK_CONTAINS(r.err, "pausing all 2 domains for the cut");
    th_cmd_free(&r);
    char *img_a = th_snap_active_image(&ga, "xvdb"),
         *img_b = th_snap_active_image(&gb, "xvdb");
    CHECK(img_a && th_qemu_img_has_snapshot(img_a, "g6"));
    CHECK(img_b && th_qemu_img_has_snapshot(img_b, "g6"));
    free(img_a), free(img_b);
    th_xlsnap(&r, "snapshot-info", "--group", "g6", NULL);
    CHECK_CONTAINS(r.out, "crash-consistent (every domain paused for the cut)");
    th_cmd_free(&r);
    /* Both run again: the writers go on. */
    char *log = th_snap_writer_log(&ga);
    th_writer_log before;
    CHECK(log && th_writer_log_parse(log, &before));
    CHECK(th_snap_wait_for_records(&ga, before.last + 10));
    CHECK(th_snap_wait_for_records(&gb, MIN_RECORDS));
    free(log);
}

/*
 * gb's member of g6 forgotten (its record only): a group revert is refused
 * before ga, which could be reverted, is touched; a group delete deletes
 * ga's member and the group, and leaves gb alone.
 */
static void test_group_member_missing(void)
{
    th_cmd r;
    REQUIRE(all_up);
    REQUIRE(XLSNAP_OK(NULL, "snapshot-delete", "--metadata", "gb", "g6"));
    char *before_a = th_world_capture(&ga, TH_WORLD_LIVE);
    char *before_b = th_world_capture(&gb, TH_WORLD_LIVE);
    th_xlsnap(&r, "snapshot-revert", "--force", "--group", "g6", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS_ALL(r.err, "group g6: domain gb: ", "nothing was changed");
    th_cmd_free(&r);
    CHECK_WORLD_KEPT(&ga, before_a);
    CHECK_WORLD_KEPT(&gb, before_b);
    char *img_a = th_snap_active_image(&ga, "xvdb");
    CHECK(img_a && th_qemu_img_has_snapshot(img_a, "g6"));
    th_xlsnap(&r, "snapshot-delete", "--group", "g6", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "Group g6 deleted");
    th_cmd_free(&r);
    CHECK(img_a && !th_qemu_img_has_snapshot(img_a, "g6"));
    CHECK_SNAP_GONE(&ga, "g6");
    CHECK(access(group_record("g6"), F_OK) != 0);
    /* gb's storage is left alone (its record was forgotten, not its image's entry). */
    char *img_b = th_snap_active_image(&gb, "xvdb");
    CHECK(img_b && th_qemu_img_has_snapshot(img_b, "g6"));
    free(img_a), free(img_b);
}

/*
 * "a before G" and "b before G" on ga's and gb's disks, the group G of
 * both, then "a after G" and "b after G": what a revert must undo.
 */
static bool group_between_writes(const char *group)
{
    char *text[4] = {
        snap_xasprintf("a before %s", group), snap_xasprintf("b before %s", group),
        snap_xasprintf("a after %s", group), snap_xasprintf("b after %s", group)};
    char *opt = snap_xasprintf("--group=%s", group);
    bool ok = th_snap_write_disk(&ga, text[0]) && th_snap_write_disk(&gb, text[1]) &&
              XLSNAP_OK(NULL, "snapshot-create", opt, "ga", "gb") &&
              th_snap_write_disk(&ga, text[2]) && th_snap_write_disk(&gb, text[3]);
    for (size_t i = 0; i < 4; i++)
        free(text[i]);
    free(opt);
    return ok;
}

/*
 * A group revert: without --force (disk-only snapshots of running domains)
 * refused before any change; with it, both domains boot afresh on their
 * disks as the group cut them.
 */
static void test_group_revert(void)
{
    th_cmd r;
    REQUIRE(all_up);
    REQUIRE(group_between_writes("g7"));
    char *before_a = th_world_capture(&ga, TH_WORLD_LIVE);
    char *before_b = th_world_capture(&gb, TH_WORLD_LIVE);
    th_xlsnap(&r, "snapshot-revert", "--group", "g7", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS_ALL(r.err, "group g7: domain ga cannot be reverted", "--force",
                       "nothing was changed");
    th_cmd_free(&r);
    CHECK_WORLD_KEPT(&ga, before_a);
    CHECK_WORLD_KEPT(&gb, before_b);
    th_xlsnap(&r, "snapshot-revert", "--force", "--group", "g7", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "Group g7 reverted");
    th_cmd_free(&r);
    th_snap_adopt_new_qemu(&ga);
    th_snap_adopt_new_qemu(&gb);
    REQUIRE(th_snap_wait_agent(&ga) && th_snap_wait_agent(&gb));
    CHECK_GUEST_READS(&ga, "a before g7");
    CHECK_GUEST_READS(&gb, "b before g7");
    CHECK_SNAP_CURRENT(&ga, "g7");
    CHECK_SNAP_CURRENT(&gb, "g7");
}

#define HOOK_MEMBER "XLSNAP_TEST_PAUSE_AFTER_GROUP_MEMBER"
#define SAID_MEMBER "test hook: first member done"

/*
 * Runs the group command argv until its first member (ga) is done, checks
 * the journal says so (the op, ga done, gb not), and SIGKILLs it.
 */
static bool kill_after_first_member(const char *const argv[], const char *group,
                                    const char *op)
{
    char *log = snap_xasprintf("%s.log", group); /* its own: no earlier hook line */
    pid_t pid = start_paused_at(argv, th_path(log), HOOK_MEMBER, SAID_MEMBER, "60000");
    free(log);
    if (pid <= 0)
        return false;
    char *j = th_read_file(group_journal(group));
    char *want_op = snap_xasprintf("\"op\": \"%s\"", op);
    CHECK_CONTAINS_ALL(j, want_op, "\"domain\": \"ga\"", "\"domain\": \"gb\"");
    const char *done = j ? strstr(j, "\"done\": true") : NULL;
    const char *left = j ? strstr(j, "\"done\": false") : NULL;
    CHECK(done && left && done < left && !strstr(done + 1, "\"done\": true"));
    free(want_op);
    free(j);
    kill(pid, SIGKILL);
    return th_wait(pid, 10000) != -1;
}

/* A reader on gb only notes the pending group operation: it stays. */
static void check_reader_notes(const char *group, const char *op)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", "gb", NULL);
    CHECK_INT(r.rc, 0);
    char *want = snap_xasprintf("group '%s', whose %s was interrupted (done: ga; not "
                                "yet: gb)",
                                group, op);
    CHECK_CONTAINS(r.err, want);
    free(want);
    th_cmd_free(&r);
    CHECK(access(group_journal(group), F_OK) == 0);
}

/*
 * A group revert killed after ga: a snapshot-create of gb reverts gb first
 * (both then at g8: their disks' current snapshot and the guests' files),
 * then takes its snapshot.
 */
static void test_group_revert_sigkill(void)
{
    th_cmd r;
    REQUIRE(all_up);
    REQUIRE(group_between_writes("g8"));
    const char *argv[] = {"snapshot-revert", "--force", "--group", "g8", NULL};
    REQUIRE(kill_after_first_member(argv, "g8", "revert"));
    th_snap_adopt_new_qemu(&ga); /* ga was reverted: a new QEMU */
    check_reader_notes("g8", "revert");
    CHECK_GUEST_READS(&gb, "b after g8"); /* not reverted yet */
    th_xlsnap(&r, "snapshot-create", "--quiesce=off", "gb", "p8", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "group g8: finishing the interrupted group revert");
    th_note("%s", r.err);
    th_cmd_free(&r);
    th_snap_adopt_new_qemu(&gb);
    CHECK(access(group_journal("g8"), F_OK) != 0);
    char *journals = th_snap_journal_text();
    CHECK_STR(journals, "");
    free(journals);
    REQUIRE(th_snap_wait_agent(&ga) && th_snap_wait_agent(&gb));
    CHECK_GUEST_READS(&ga, "a before g8");
    CHECK_GUEST_READS(&gb, "b before g8");
    CHECK_SNAP_CURRENT(&ga, "g8");
    CHECK_SNAP_CURRENT(&gb, "p8"); /* the command itself ran, on the reverted disk */
    char *img_b = th_snap_active_image(&gb, "xvdb");
    CHECK(img_b && th_qemu_img_has_snapshot(img_b, "g8"));
    CHECK(img_b && th_qemu_img_has_snapshot(img_b, "p8"));
    free(img_b);
    th_xlsnap(&r, "snapshot-info", "gb", "p8", NULL);
    CHECK_CONTAINS(r.out, "g8");
    th_cmd_free(&r);
}

/*
 * A group delete killed after ga: a snapshot-delete of gb's p8 deletes
 * gb's member and the group record first, then p8.
 */
static void test_group_delete_sigkill(void)
{
    th_cmd r;
    REQUIRE(all_up);
    REQUIRE(
        XLSNAP_OK(NULL, "snapshot-create", "--quiesce=off", "--group=g9", "ga", "gb"));
    char *img_a = th_snap_active_image(&ga, "xvdb");
    char *img_b = th_snap_active_image(&gb, "xvdb");
    REQUIRE(img_a && img_b);
    CHECK(th_qemu_img_has_snapshot(img_a, "g9") && th_qemu_img_has_snapshot(img_b, "g9"));
    const char *argv[] = {"snapshot-delete", "--group", "g9", NULL};
    REQUIRE(kill_after_first_member(argv, "g9", "delete"));
    CHECK_SNAP_GONE(&ga, "g9");
    CHECK(!th_qemu_img_has_snapshot(img_a, "g9"));
    check_reader_notes("g9", "delete");
    CHECK_SNAP_EXISTS(&gb, "g9");
    CHECK(access(group_record("g9"), F_OK) == 0);
    th_xlsnap(&r, "snapshot-delete", "gb", "p8", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "group g9: finishing the interrupted group delete");
    th_note("%s", r.err);
    th_cmd_free(&r);
    CHECK_SNAP_GONE(&gb, "g9");
    CHECK_SNAP_GONE(&gb, "p8"); /* the command itself ran */
    CHECK(!th_qemu_img_has_snapshot(img_b, "g9"));
    CHECK(!th_qemu_img_has_snapshot(img_b, "p8"));
    CHECK(th_qemu_img_has_snapshot(img_b, "g8")); /* nothing else went */
    CHECK(access(group_record("g9"), F_OK) != 0);
    CHECK(access(group_journal("g9"), F_OK) != 0);
    char *journals = th_snap_journal_text();
    CHECK_STR(journals, "");
    free(journals);
    th_xlsnap(&r, "snapshot-list", "--groups", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(r.out && !strstr(r.out, "g9 "));
    th_cmd_free(&r);
    free(img_a), free(img_b);
}

/*
 * A group delete killed after ga: readers and a dry run only note it;
 * running it again finishes it, and no more.
 */
static void test_group_delete_rerun(void)
{
    th_cmd r;
    REQUIRE(all_up);
    REQUIRE(
        XLSNAP_OK(NULL, "snapshot-create", "--quiesce=off", "--group=g10", "ga", "gb"));
    char *img_b = th_snap_active_image(&gb, "xvdb");
    REQUIRE(img_b && th_qemu_img_has_snapshot(img_b, "g10"));
    const char *argv[] = {"snapshot-delete", "--group", "g10", NULL};
    REQUIRE(kill_after_first_member(argv, "g10", "delete"));
    th_xlsnap(&r, "snapshot-info", "--group", "g10", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err,
                   "group 'g10': its delete was interrupted (done: ga; not yet: gb)");
    th_cmd_free(&r);
    CHECK(th_qemu_img_has_snapshot(img_b, "g10")); /* the reader changed nothing */
    /* A dry run only notes it too: the journal and gb's member stay as they were. */
    char *journal = th_read_file(group_journal("g10"));
    th_xlsnap(&r, "-N", "snapshot-delete", "--group", "g10", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "its delete was interrupted");
    th_cmd_free(&r);
    char *after = th_read_file(group_journal("g10"));
    CHECK(journal && after && !strcmp(journal, after));
    free(journal), free(after);
    CHECK_SNAP_EXISTS(&gb, "g10");
    th_xlsnap(&r, "snapshot-delete", "--group", "g10", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.err, "group g10: finishing the interrupted group delete");
    CHECK_CONTAINS(r.out, "Group g10 deleted");
    th_cmd_free(&r);
    CHECK_SNAP_GONE(&ga, "g10");
    CHECK_SNAP_GONE(&gb, "g10");
    CHECK(!th_qemu_img_has_snapshot(img_b, "g10"));
    CHECK(access(group_record("g10"), F_OK) != 0);
    CHECK(access(group_journal("g10"), F_OK) != 0);
    free(img_b);
}

/*
 * A running domain (ga, frozen) and a shut-off one (gs, qemu-img): one
 * quiesced group, gs's member in its qcow2 images; -N plans it the same.
 */
static void test_group_shut_off_member(void)
{
    th_cmd r;
    REQUIRE(all_up);
    th_xlsnap(&r, "-N", "snapshot-create", "--quiesce=required", "--group=g11", "ga",
              "gs", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "\"cut\": \"quiesced\"", "\"state\": \"shutoff\"",
                       "\"via\": \"qemu-img\"");
    th_cmd_free(&r);
    CHECK(!th_qemu_img_has_snapshot(gs.data, "g11"));
    char *img_a = th_snap_active_image(&ga, "xvdb");
    REQUIRE(img_a);
    th_xlsnap(&r, "snapshot-create", "--quiesce=required", "--group=g11", "gs", "ga",
              NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out,
                       "Group g11 created: 2 domains, quiesced (all frozen together)",
                       "gs shut off");
    th_note("%s%s", r.out, r.err ? r.err : "");
    th_cmd_free(&r);
    CHECK(access(group_record("g11"), F_OK) == 0);
    CHECK(th_qemu_img_has_snapshot(gs.root, "g11"));
    CHECK(th_qemu_img_has_snapshot(gs.data, "g11"));
    CHECK(th_qemu_img_has_snapshot(img_a, "g11"));
    CHECK_GUEST_THAWED(&ga);
    th_xlsnap(&r, "snapshot-info", "--group", "g11", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "Consistency:    quiesced (every domain frozen", "\ngs ",
                       " shut off\n");
    th_note("%s", r.out);
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-info", "gs", "g11", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "Group:          g11");
    th_cmd_free(&r);
    char *journals = th_snap_journal_text();
    CHECK_STR(journals, "");
    free(journals);
    free(img_a);
}

/*
 * gh's freeze fails after gs's member was cut (before the window): both
 * undone, gs's qcow2 tables and world as before, gh thawed.
 */
static void test_group_shut_off_undone(void)
{
    th_cmd r;
    REQUIRE(all_up);
    /* LIVE for gs too: qemu-img wrote its images (the member made, then
     * removed); their snapshot tables and chains still count. */
    char *before_s = th_world_capture(&gs, TH_WORLD_LIVE);
    char *before_h = th_world_capture(&gh, TH_WORLD_LIVE);
    th_xlsnap(&r, "snapshot-create", "--freeze-timeout=2", "--group=g12", "gs", "gh",
              NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS_ALL(r.err, "gh",
                       "group 'g12' was rolled back: no domain kept a member snapshot");
    CHECK_CONTAINS(r.err, "rolling back snapshot 'g12' of domain gs");
    th_note("%s", r.err);
    th_cmd_free(&r);
    CHECK(access(group_record("g12"), F_OK) != 0);
    CHECK(!th_qemu_img_has_snapshot(gs.root, "g12"));
    CHECK(!th_qemu_img_has_snapshot(gs.data, "g12"));
    CHECK(!th_qemu_img_has_snapshot(gh.data, "g12"));
    CHECK_GUEST_THAWED(&gh);
    CHECK_WORLD_KEPT(&gs, before_s);
    CHECK_WORLD_KEPT(&gh, before_h);
}

/*
 * gs's member is cut before the window (its overlay is there while ga is
 * frozen); ga's transaction then fails (its overlay path taken): both
 * undone, gs's overlay removed, both worlds as before.
 */
static void test_group_shut_off_undone_after_cut(void)
{
    REQUIRE(all_up);
    char *before_a = th_world_capture(&ga, TH_WORLD_LIVE);
    char *before_s = th_world_capture(&gs, TH_WORLD_LIVE);
    char *ov_a = snap_xasprintf("%s/data.g13.qcow2", ga.disk_dir);
    char *ov_s = snap_xasprintf("%s/data.g13.qcow2", gs.disk_dir);
    const char *argv[] = {"snapshot-create", "-e", "--group=g13", "ga", "gs", NULL};
    pid_t pid =
        start_paused_at(argv, th_path("g13.log"), "XLSNAP_TEST_PAUSE_AFTER_FREEZE",
                        "test hook: frozen", "3000");
    REQUIRE(pid > 0);
    CHECK(access(ov_s, F_OK) == 0); /* gs cut already */
    CHECK(mkdir(ov_a, 0700) == 0);
    int status = th_wait(pid, 90000);
    char *log = th_read_file(th_path("g13.log"));
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK_CONTAINS_ALL(log, "domain ga", "rolling back snapshot 'g13' of domain gs",
                       "group 'g13' was rolled back: no domain kept a member snapshot");
    th_note("xlsnap: %s", log ? log : "");
    rmdir(ov_a);
    CHECK(access(ov_s, F_OK) != 0);
    CHECK(access(group_record("g13"), F_OK) != 0);
    CHECK_GUEST_THAWED(&ga);
    CHECK_WORLD_KEPT(&ga, before_a);
    CHECK_WORLD_KEPT(&gs, before_s);
    free(log), free(ov_a), free(ov_s);
}

/*
 * The group of a running and a shut-off member reverts (checks only) and
 * is deleted like any: gs's member leaves its qcow2 images (qemu-img).
 */
static void test_group_shut_off_delete(void)
{
    th_cmd r;
    REQUIRE(access(group_record("g11"), F_OK) == 0);
    th_xlsnap(&r, "-N", "snapshot-revert", "--force", "--group", "g11", NULL);
    CHECK_INT(r.rc, 0);
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-delete", "--group", "g11", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "Group g11 deleted");
    th_cmd_free(&r);
    CHECK_SNAP_GONE(&ga, "g11");
    CHECK_SNAP_GONE(&gs, "g11");
    CHECK(!th_qemu_img_has_snapshot(gs.root, "g11"));
    CHECK(!th_qemu_img_has_snapshot(gs.data, "g11"));
    CHECK(access(group_record("g11"), F_OK) != 0);
    /* A group of shut-off domains alone: no window, nothing paused. */
    th_xlsnap(&r, "-N", "snapshot-create", "--group=g14", "gs", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "\"cut\": \"none\"", "no guest frozen or paused");
    th_cmd_free(&r);
    CHECK(!th_qemu_img_has_snapshot(gs.data, "g14"));
    th_xlsnap(&r, "snapshot-create", "--group=g14", "gs", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "Group g14 created: 1 domain, crash-consistent");
    CHECK(r.err == NULL || strstr(r.err, "pausing") == NULL);
    th_cmd_free(&r);
    CHECK(th_qemu_img_has_snapshot(gs.data, "g14"));
}

int main(void)
{
    th_plan(19);
    TH_RUN(test_boot);
    TH_RUN(test_group_quiesced);
    TH_RUN(test_group_list_info);
    TH_RUN(test_group_freeze_fails);
    TH_RUN(test_group_dry_run);
    TH_RUN(test_group_dry_run_refused);
    TH_RUN(test_group_transaction_fails);
    TH_RUN(test_group_sigkill_in_window);
    TH_RUN(test_group_sigkill_before_group_record);
    TH_RUN(test_group_crash_consistent);
    TH_RUN(test_group_member_missing);
    TH_RUN(test_group_revert);
    TH_RUN(test_group_revert_sigkill);
    TH_RUN(test_group_delete_sigkill);
    TH_RUN(test_group_delete_rerun);
    TH_RUN(test_group_shut_off_member);
    TH_RUN(test_group_shut_off_undone);
    TH_RUN(test_group_shut_off_undone_after_cut);
    TH_RUN(test_group_shut_off_delete);
    th_xlsim_destroy(&ga);
    th_xlsim_destroy(&gb);
    th_xlsim_destroy(&gh);
    th_xlsim_destroy(&gs);
    return th_finish();
}
