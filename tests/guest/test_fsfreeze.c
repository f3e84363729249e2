/*
 * Per-filesystem quiesce on a real guest (issue 18, items 3 and 5): one
 * xlsim domain whose guest has two ext4 disks (/mnt/vda on xvda, /mnt/vdb on
 * xvdb, with the writer appending a record every 20 ms to /mnt/vdb), /mnt/vdb
 * bind-mounted again at /mnt/vdb-bind, a tmpfs at /mnt/scratch, and an
 * fsfreeze hook logging each freeze qemu-ga begins.
 *
 * What was frozen is read from the effects, not from xlsnap's word: each
 * snapshot is external, holding the window open 3 s
 * (XLSNAP_TEST_PAUSE_AFTER_FREEZE); a frozen /mnt/vdb shows as a gap of
 * the window's length in the writer's log, an unfrozen one does not; and
 * in the snapshot's images an ext4 that was frozen has no needs_recovery,
 * one that was not has it (mounted read-write, never cleanly closed).
 * Last, the hook unmounts an asked-for filesystem just before qemu-ga
 * freezes, which then freezes fewer than asked without a word.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "th.h"
#include "th_guest.h"
#include "th_snaptest.h"

#define PAUSE_MS     "3000"
#define FROZEN_GAP   2800 /* a frozen writer: at least the held window */
#define UNFROZEN_GAP 2000 /* an unfrozen one keeps writing through it */
#define HOOK_LOG     "/run/fsfreeze-hook.log"

static th_xlsim_dom g;

/* The last record's sequence number in the live guest's writer log. */
static long last_record(void)
{
    char *text = th_snap_writer_log(&g);
    th_writer_log log = {0};
    if (text)
        th_writer_log_parse(text, &log);
    free(text);
    return log.last;
}

/* The largest step between the uptimes of records after record `after`. */
static long max_gap_after(long after)
{
    char *text = th_snap_writer_log(&g);
    long prev_ms = -1, gap = 0;
    for (char *line = text; line && *line;) {
        long seq, ms;
        if (sscanf(line, "%ld %ld", &seq, &ms) == 2 && seq >= after) {
            if (prev_ms >= 0 && ms - prev_ms > gap)
                gap = ms - prev_ms;
            prev_ms = ms;
        }
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return gap;
}

/* Freezes qemu-ga began (its hook's "freeze" lines). */
static int hook_freezes(void)
{
    char *out = NULL;
    int rc = th_xlsim_guest_sh(&g, "grep -c freeze " HOOK_LOG " || true", &out);
    int n = rc == 0 && out ? atoi(out) : -1;
    free(out);
    return n;
}

/*
 * snapshot-create -e holding the frozen window PAUSE_MS open; must exit 0
 * and, with want, say it on stdout.
 */
static bool create_held(const char *opt, const char *name, const char *want)
{
    th_cmd r;
    setenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE", PAUSE_MS, 1);
    th_xlsnap(&r, "snapshot-create", "-e", "--quiesce=required", opt, g.name, name, NULL);
    unsetenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE");
    bool ok = r.rc == 0;
    if (!ok)
        th_fail_at(__FILE__, __LINE__, "snapshot-create %s: %s", opt,
                   th_cmd_describe(&r));
    else if (want)
        CHECK_CONTAINS(r.out, want);
    th_cmd_free(&r);
    return ok;
}

/*
 * needs_recovery of the ext4 of disk ("root", "data") at snapshot name: the
 * backing file of the overlay the snapshot made, which holds that point.
 */
static int needs_recovery(const char *disk, const char *name)
{
    char file[128];
    snprintf(file, sizeof file, "%s.%s.qcow2", disk, name);
    char *base = th_snap_backing_of(th_snap_disk_file(&g, file));
    const char *raw = base ? th_image_to_raw(base) : NULL;
    free(base);
    return raw ? th_ext4_needs_recovery(raw) : -1;
}

static char *info(const char *name, bool json)
{
    th_cmd r;
    if (json)
        th_xlsnap(&r, "snapshot-info", "--json", g.name, name, NULL);
    else
        th_xlsnap(&r, "snapshot-info", g.name, name, NULL);
    CHECK_INT(r.rc, 0);
    char *out = r.out;
    r.out = NULL;
    th_cmd_free(&r);
    return out;
}

static void test_boot(void)
{
    th_xlsim_dom *doms[] = {&g};
    const char *names[] = {"fz"};
    th_snap_boot_all_with(
        doms, names, 1, 20,
        "xlsnap.freeze_hook=1 xlsnap.tmpfs=/mnt/scratch xlsnap.bind=vdb");
    char *mounts = NULL;
    CHECK_INT(th_xlsim_guest_sh(&g, "cat /proc/mounts", &mounts), 0);
    CHECK_CONTAINS_ALL(mounts, " /mnt/scratch tmpfs ", " /mnt/vdb-bind ext4 ");
    free(mounts);
}

/*
 * A mountpoint the agent does not list (the tmpfs; a typo) is refused before
 * any freeze: no hook call, no record, no journal, nothing in the disk dir.
 */
static void test_unknown_mountpoint_refused_before_freeze(void)
{
    int freezes = hook_freezes();
    th_snap_refresh_index(&g);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "--freeze-mounts=/mnt/vda,/mnt/scratch", g.name,
              "bad1", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS_ALL(r.err, "mountpoint /mnt/scratch (to freeze) is not a filesystem",
                       "/mnt/vdb-bind (ext4), /mnt/vdb (ext4), /mnt/vda (ext4)", "tmpfs");
    th_cmd_free(&r);
    th_xlsnap(&r, "snapshot-create", "--quiesce=best-effort", "--no-freeze=/mnt/vdc",
              g.name, "bad2", NULL);
    CHECK_INT(r.rc, 1); /* a wrong name is no reason to fall back */
    CHECK_CONTAINS(r.err, "mountpoint /mnt/vdc (not to freeze) is not a filesystem");
    th_cmd_free(&r);
    CHECK_INT(hook_freezes(), freezes);
    CHECK_SNAP_GONE(&g, "bad1");
    CHECK_SNAP_GONE(&g, "bad2");
    CHECK_WORLD_KEPT(&g, before);
}

/* --freeze-mounts=/mnt/vda: the writer's /mnt/vdb keeps writing, is not clean. */
static void test_freeze_mounts_subset(void)
{
    long from = last_record();
    int freezes = hook_freezes();
    REQUIRE(create_held("--freeze-mounts=/mnt/vda", "sub",
                        "(external), partially-quiesced: 1 filesystem frozen for "));
    CHECK_INT(hook_freezes(), freezes + 1);
    long gap = max_gap_after(from);
    if (gap >= UNFROZEN_GAP)
        th_fail_at(__FILE__, __LINE__, "the writer on unfrozen /mnt/vdb paused %ld ms",
                   gap);
    CHECK_INT(needs_recovery("root", "sub"), 0); /* /mnt/vda: frozen */
    CHECK_INT(needs_recovery("data", "sub"), 1); /* /mnt/vdb: not */
    char *text = info("sub", false);
    CHECK_CONTAINS_ALL(text, "partially-quiesced (1 filesystem frozen",
                       "/mnt/vda (ext4, vda): frozen\n",
                       "/mnt/vdb (ext4, vdb): skipped, not chosen (freeze-mounts)",
                       "/mnt/vdb-bind (ext4, vdb): skipped, not chosen (freeze-mounts)");
    free(text);
}

/*
 * --no-freeze=/mnt/vda: /mnt/vdb frozen (the writer stops for the window),
 * and with it its bind mount, asked for once (the agent's count matches).
 */
static void test_no_freeze_excludes(void)
{
    long from = last_record();
    REQUIRE(create_held("--no-freeze=/mnt/vda", "nofz",
                        "; not frozen: /mnt/vda (excluded (no-freeze))."));
    long gap = max_gap_after(from);
    if (gap < FROZEN_GAP)
        th_fail_at(__FILE__, __LINE__, "the writer on frozen /mnt/vdb paused only %ld ms",
                   gap);
    CHECK_INT(needs_recovery("root", "nofz"), 1);
    CHECK_INT(needs_recovery("data", "nofz"), 0);
    char *json = info("nofz", true);
    CHECK_CONTAINS_ALL(json, "\"state\": \"partially-quiesced\"",
                       "\"mountpoint\": \"/mnt/vda\"", "\"outcome\": \"skipped\"",
                       "\"reason\": \"excluded (no-freeze)\"",
                       "\"reason\": \"same filesystem as /mnt/vdb (device vdb)\"",
                       "\"frozen_count\": 1");
    free(json);
}

/* By default every filesystem the agent lists is frozen: quiesced, both clean. */
static void test_default_quiesces_all(void)
{
    REQUIRE(create_held("--freeze-timeout=10", "all",
                        "(external), quiesced: 2 filesystems frozen for "));
    CHECK_INT(needs_recovery("root", "all"), 0);
    CHECK_INT(needs_recovery("data", "all"), 0);
    char *text = info("all", false);
    CHECK_CONTAINS_ALL(text, "Consistency:    quiesced (2 filesystems frozen",
                       "/mnt/vdb-bind (ext4, vdb): frozen, same filesystem as /mnt/vdb");
    free(text);
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", g.name, NULL);
    CHECK_CONTAINS_ALL(r.out, "partially-quiesced", "quiesced");
    th_cmd_free(&r);
}

/*
 * The agent freezes fewer than asked (the hook unmounts /mnt/vda first, so
 * qemu-ga skips it silently): --quiesce=required refuses and thaws;
 * best-effort keeps the snapshot, nothing asked counted as frozen.
 */
static void test_short_count(void)
{
    char *out = NULL;
    CHECK_INT(th_xlsim_guest_sh(&g, "echo /mnt/vda >/run/fsfreeze-umount", &out), 0);
    free(out);
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "-e", "--quiesce=required", g.name, "short", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "freeze: the agent froze 1 of the 2 filesystems asked "
                          "(/mnt/vdb, /mnt/vda)");
    th_cmd_free(&r);
    CHECK_SNAP_GONE(&g, "short");
    char *status = th_xlsim_fsfreeze_status(&g);
    CHECK_STR(status, "thawed");
    free(status);
    out = NULL;
    CHECK_INT(th_xlsim_guest_sh(&g,
                                "mount -t ext4 /dev/vda /mnt/vda && "
                                "echo /mnt/vda >/run/fsfreeze-umount",
                                &out),
              0);
    free(out);
    th_xlsnap(&r, "snapshot-create", "-e", "--quiesce=best-effort", g.name, "short2",
              NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "partially-quiesced: 1 filesystem frozen",
                       "/mnt/vda (not confirmed: the agent froze 1 of the 2 filesystems");
    CHECK_CONTAINS(r.err, "the agent froze 1 of the 2 filesystems asked");
    th_cmd_free(&r);
    char *json = info("short2", true);
    CHECK_CONTAINS_ALL(json, "\"state\": \"partially-quiesced\"",
                       "\"outcome\": \"failed\"");
    free(json);
    out = NULL;
    CHECK_INT(th_xlsim_guest_sh(&g, "mount -t ext4 /dev/vda /mnt/vda", &out), 0);
    free(out);
}

int main(void)
{
    th_plan(6);
    th_run_test("test_boot", test_boot);
    TH_SNAP_RUN(test_freeze_mounts_subset);
    TH_SNAP_RUN(test_unknown_mountpoint_refused_before_freeze);
    TH_SNAP_RUN(test_no_freeze_excludes);
    TH_SNAP_RUN(test_default_quiesces_all);
    TH_SNAP_RUN(test_short_count);
    return th_snap_finish();
}
