/*
 * snapshot-verify and snapshot-create --verify on a real guest (issue 18,
 * items 4 and 5), on a simulated dom0: one booted guest whose writer
 * appends fsync'd records to xvdb while both disks (ext4, /mnt/vda and
 * /mnt/vdb) stay mounted read-write. A crash-consistent snapshot
 * (--quiesce=off) of a mounted ext4 always has needs_recovery on disk, so
 * verification must find it dirty; a quiesced one was frozen (the freeze
 * flushes the journal) and must be clean. Internal and external snapshots;
 * verification never changes an image (the bases' bytes are hashed before
 * and after) and leaves no process, mount or temporary file behind; the
 * result is recorded (snapshot-info, --json). Failures (unknown snapshot,
 * missing image) exit 1 with a clear message and record nothing.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_base.h"
#include "th.h"
#include "th_snaptest.h"

#define MIN_RECORDS 20

static th_xlsim_dom g;

/* ------------------------------------------------------------ helpers */

/* sha256 of a file (malloc'd); a failure is recorded and NULL returned. */
static char *hash_of(const char *path)
{
    char *out = NULL;
    if (th_runl(&out, NULL, "sha256sum", path, (char *)NULL) != 0 || !out) {
        th_fail_at(__FILE__, __LINE__, "sha256sum %s failed", path);
        free(out);
        return NULL;
    }
    char *sp = strchr(out, ' ');
    if (sp)
        *sp = 0;
    return out;
}

/* Nothing left in the verify's TMPDIR, and no FUSE mount anywhere under it. */
static void check_cleaned_up(const char *file, int line)
{
    DIR *d = opendir(th_path("vtmp"));
    struct dirent *e;
    int entries = 0;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            entries++;
    if (d)
        closedir(d);
    if (!d || entries)
        th_fail_at(file, line, "the verify's TMPDIR holds %d entries", entries);
    char *mounts = th_read_file("/proc/self/mounts");
    if (!mounts || strstr(mounts, th_path("vtmp")))
        th_fail_at(file, line, "a mount under the verify's TMPDIR is left");
    free(mounts);
    char *ps = NULL;
    th_runl(&ps, NULL, "ps", "-eo", "args", (char *)NULL);
    if (!ps || strstr(ps, th_path("vtmp")))
        th_fail_at(file, line, "a qemu-nbd or qemu-storage-daemon is left: %s",
                   ps ? ps : "(ps failed)");
    free(ps);
}
#define CHECK_CLEANED_UP() check_cleaned_up(__FILE__, __LINE__)

/* snapshot-info (text and --json) shows the recorded verification. */
static void check_recorded(const char *name, const char *state, const char *verdict)
{
    th_cmd r;
    CHECK_INT(th_xlsnap(&r, "snapshot-info", g.name, name, (char *)NULL), 0);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "snapshot-info", r.out,
                                  "Verified:", verdict, "xvda", "xvdb", state,
                                  (char *)NULL);
    th_cmd_free(&r);
    CHECK_INT(th_xlsnap(&r, "snapshot-info", "--json", g.name, name, (char *)NULL), 0);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "snapshot-info --json", r.out,
                                  "\"verification\"", "\"time_sec\"", "\"filesystems\"",
                                  state, (char *)NULL);
    th_cmd_free(&r);
}

/* ------------------------------------------------------------ the cases */

static void test_crash_consistent_internal_is_dirty(void)
{
    th_cmd r;
    REQUIRE(th_snap_wait_for_records(&g, MIN_RECORDS));
    /* The writer runs: both ext4s are mounted read-write, unfrozen. */
    int rc = th_xlsnap(&r, "snapshot-create", "--quiesce=off", "-i", "--verify", g.name,
                       "c1", (char *)NULL);
    CHECK_INT(rc, 1);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "create --verify", r.out,
                                  "Snapshot c1 of domain", "created", "crash-consistent",
                                  "verified: NOT clean", "needs-recovery",
                                  "needs_recovery", (char *)NULL);
    th_note("%s", r.out);
    th_cmd_free(&r);
    /* The snapshot stays (it is what was asked for), marked dirty. */
    char *table = th_snap_table(th_snap_disk_file(&g, "data.qcow2"));
    CHECK_CONTAINS(table, "c1");
    free(table);
    check_recorded("c1", "needs-recovery", "NOT clean");
    CHECK_CLEANED_UP();
}

static void test_quiesced_internal_is_clean(void)
{
    th_cmd r;
    int rc = th_xlsnap(&r, "snapshot-create", "--quiesce=required", "-i", "--verify",
                       g.name, "q1", (char *)NULL);
    CHECK_INT(rc, 0);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "create --verify", r.out,
                                  "quiesced", "verified: clean (2 filesystems checked)",
                                  (char *)NULL);
    if (strstr(r.out, "needs-recovery"))
        th_fail_at(__FILE__, __LINE__, "a quiesced snapshot needs recovery: %s", r.out);
    th_cmd_free(&r);
    check_recorded("q1", "clean", "clean");
    /* Verifying again by hand gives the same answer. */
    CHECK_INT(th_xlsnap(&r, "snapshot-verify", g.name, "q1", (char *)NULL), 0);
    CHECK_CONTAINS(r.out, "verified: clean");
    th_cmd_free(&r);
    CHECK_CLEANED_UP();
}

/* External: the bases (the overlays' backing files) are read, never written. */
static void test_external_verified_read_only(void)
{
    th_cmd r;
    const char *data = th_snap_disk_file(&g, "data.qcow2");
    REQUIRE(XLSNAP_OK(NULL, "snapshot-create", "--quiesce=required", "-e", g.name, "e1"));
    char *before = hash_of(data);
    CHECK_INT(th_xlsnap(&r, "snapshot-verify", g.name, "e1", (char *)NULL), 0);
    CHECK_CONTAINS(r.out, "verified: clean (2 filesystems checked)");
    th_cmd_free(&r);
    char *after = hash_of(data);
    CHECK_STR(before, after);
    free(before);
    free(after);
    check_recorded("e1", "clean", "clean");

    /* A crash-consistent external one, the writer still running. */
    REQUIRE(th_snap_wait_for_records(&g, MIN_RECORDS + 20));
    REQUIRE(XLSNAP_OK(NULL, "snapshot-create", "--quiesce=off", "-e", g.name, "e2"));
    const char *data2 = th_snap_disk_file(&g, "data.e1.qcow2");
    before = hash_of(data2);
    CHECK_INT(th_xlsnap(&r, "snapshot-verify", "--json", g.name, "e2", (char *)NULL), 1);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "verify --json", r.out,
                                  "\"clean\": false", "needs-recovery", (char *)NULL);
    th_cmd_free(&r);
    after = hash_of(data2);
    CHECK_STR(before, after);
    free(before);
    free(after);
    CHECK_CLEANED_UP();
}

/*
 * Without qemu-storage-daemon (a stock Debian dom0) the snapshot point is
 * copied with qemu-img convert -U instead: the same verdicts, internal and
 * external, and the copies are gone afterwards.
 */
static void test_copy_route_same_verdicts(void)
{
    th_cmd r;
    setenv("XLSNAP_VERIFY_ROUTE", "copy", 1);
    CHECK_INT(th_xlsnap(&r, "-v", "snapshot-verify", g.name, "c1", (char *)NULL), 1);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "verify c1 by copy", r.out,
                                  "verified: NOT clean", "needs-recovery", (char *)NULL);
    CHECK_CONTAINS(r.err, "verifying disk xvdb");
    CHECK_CONTAINS(r.err, "via a qemu-img copy");
    th_cmd_free(&r);
    CHECK_INT(th_xlsnap(&r, "snapshot-verify", g.name, "e1", (char *)NULL), 0);
    CHECK_CONTAINS(r.out, "verified: clean (2 filesystems checked)");
    th_cmd_free(&r);
    unsetenv("XLSNAP_VERIFY_ROUTE");
    CHECK_CLEANED_UP();
}

/* True when the verify's TMPDIR has a FUSE mount and a server under it. */
static bool leftovers_present(void)
{
    char *mounts = th_read_file("/proc/self/mounts"), *ps = NULL;
    th_runl(&ps, NULL, "ps", "-eo", "args", (char *)NULL);
    bool mount = mounts && strstr(mounts, th_path("vtmp"));
    bool server = ps && strstr(ps, "qemu-storage-daemon") && strstr(ps, th_path("vtmp"));
    free(mounts);
    free(ps);
    return mount && server;
}

/*
 * A verification killed while its export is up (SIGKILL; ^C does the same:
 * the servers have their own process groups) leaves its servers, mount and
 * directory; the next verification removes them, and says so.
 */
static void test_killed_verify_cleaned_up_next_time(void)
{
    const char *log = th_path("killed-verify.log");
    setenv("XLSNAP_VERIFY_ROUTE", "fuse", 1);
    setenv("XLSNAP_TEST_PAUSE_IN_VERIFY", "60000", 1);
    char *argv[] = {(char *)th_build_path("xlsnap"), "snapshot-verify", (char *)g.name,
                    "q1", NULL};
    pid_t pid = th_spawn(argv, log);
    unsetenv("XLSNAP_TEST_PAUSE_IN_VERIFY");
    REQUIRE(pid > 0);
    char *text = NULL;
    for (int i = 0; i < 400; i++) {
        free(text);
        text = th_read_file(log);
        if (text && strstr(text, "test hook"))
            break;
        usleep(50000);
    }
    CHECK_CONTAINS(text, "test hook: snapshot point exported");
    free(text);
    kill(pid, SIGKILL);
    th_wait(pid, 10000);
    CHECK(leftovers_present());

    th_cmd r;
    CHECK_INT(th_xlsnap(&r, "snapshot-verify", g.name, "q1", (char *)NULL), 0);
    CHECK_CONTAINS(r.err, "removed what a killed verification left behind");
    CHECK_CONTAINS(r.out, "verified: clean");
    th_cmd_free(&r);
    unsetenv("XLSNAP_VERIFY_ROUTE");
    CHECK(!leftovers_present());
    CHECK_CLEANED_UP();
}

/* Clear errors, exit 1, and the record left as it was. */
static void test_failures_change_nothing(void)
{
    th_cmd r;
    CHECK_INT(th_xlsnap(&r, "snapshot-verify", g.name, "nosuch", (char *)NULL), 1);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "verify nosuch", r.err,
                                  "snapshot-verify failed", "nosuch", (char *)NULL);
    th_cmd_free(&r);

    /* e1's base of xvdb moved away (QEMU keeps its open descriptor). */
    char *info_before = NULL, *info_after = NULL;
    CHECK_INT(th_xlsnap(&r, "snapshot-info", "--json", g.name, "e1", (char *)NULL), 0);
    info_before = snap_xstrdup(r.out);
    th_cmd_free(&r);
    const char *data = th_snap_disk_file(&g, "data.qcow2");
    char *aside = snap_xasprintf("%s.aside", data);
    REQUIRE(rename(data, aside) == 0);
    int rc = th_xlsnap(&r, "snapshot-verify", g.name, "e1", (char *)NULL);
    CHECK(rename(aside, data) == 0);
    CHECK_INT(rc, 1);
    th_snap_check_contains_all_at(__FILE__, __LINE__, "verify, image missing", r.err,
                                  "disk xvdb", "data.qcow2", "No such file",
                                  (char *)NULL);
    th_cmd_free(&r);
    CHECK_INT(th_xlsnap(&r, "snapshot-info", "--json", g.name, "e1", (char *)NULL), 0);
    info_after = snap_xstrdup(r.out);
    th_cmd_free(&r);
    CHECK_STR(info_before, info_after);
    free(info_before);
    free(info_after);
    free(aside);
    CHECK_CLEANED_UP();
}

int main(void)
{
    th_plan(7);
    /* Every verify of this program puts its work directory here. */
    if (th_runl(NULL, NULL, "mkdir", "-p", th_path("vtmp"), (char *)NULL) != 0)
        th_fail_at(__FILE__, __LINE__, "cannot make %s", th_path("vtmp"));
    setenv("TMPDIR", th_path("vtmp"), 1);
    th_snap_run_boot(&g, "vf1", MIN_RECORDS);
    TH_SNAP_RUN(test_crash_consistent_internal_is_dirty);
    TH_SNAP_RUN(test_quiesced_internal_is_clean);
    TH_SNAP_RUN(test_external_verified_read_only);
    TH_SNAP_RUN(test_copy_route_same_verdicts);
    TH_SNAP_RUN(test_failures_change_nothing);
    TH_SNAP_RUN(test_killed_verify_cleaned_up_next_time);
    return th_snap_finish();
}
