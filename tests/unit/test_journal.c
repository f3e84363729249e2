/*
 * Tests of the journal (lifecycle, every record, strict reading, dead-owner
 * detection across fork) and of the per-domain lock (contention between two
 * processes, bounded waits, other domains in parallel, release on death).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snap_journal.h"
#include "snap_lock.h"
#include "th.h"

#define UUID  "6b1c7e2a-3f4d-4e5a-9b8c-0d1e2f3a4b5c"
#define UUID2 "00000000-1111-2222-3333-444444444444"

static int open_store(snap_meta_store *st, const char *tag, const char *uuid)
{
    snap_err err;
    int rc = snap_meta_store_open(st, th_path(tag), uuid, "vm1", true, &err);
    if (rc < 0)
        th_note("store open: %s", err.msg);
    return rc;
}

static void fill_journal(snap_journal *j)
{
    snap_journal_init(j, SNAP_JOURNAL_CREATE, "s1");
    j->prev_current = strdup("s0");
    j->memory_created = strdup("/state/s1.save");
    snap_journal_disk *d = snap_journal_add_disk(j, "xvda");
    d->image = strdup("/img/a.qcow2");
    d->internal_created = strdup("s1");
    d->done = true;
    d = snap_journal_add_disk(j, "xvdb");
    d->image = strdup("/img/b.raw");
    d->overlay_created = strdup("/img/b.raw.s1.qcow2");
    d->has_old = true;
    d->old_params = strdup("aio:/img/b.raw");
    d->old_format = strdup("raw");
    d->old_pdev_path = strdup("/img/b.raw");
}

static void test_lifecycle_and_every_field(void)
{
    snap_meta_store st;
    snap_err err;
    REQUIRE(open_store(&st, "life", UUID) == 0);
    snap_journal j, k;
    bool found = true;
    CHECK_INT(snap_journal_load(&st, &k, &found, &err), 0);
    CHECK(!found);
    snap_journal_dispose(&k);
    fill_journal(&j);
    CHECK_INT(snap_journal_begin(&st, &j, &err), 0);
    CHECK_INT(j.owner_pid, getpid());
    CHECK(j.owner_start > 0 && j.started_ms > 0);
    int64_t lease = snap_realtime_ms() + 10000;
    snap_journal_set_watchdog(&j, getpid(), lease);
    CHECK_INT(snap_journal_set_phase(&st, &j, SNAP_PHASE_FROZEN, &err), 0);
    char *path = snap_meta_store_path(&st, ".journal.json");
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    REQUIRE(snap_journal_load(&st, &k, &found, &err) == 0 && found);
    CHECK_INT(k.op, SNAP_JOURNAL_CREATE);
    CHECK_STR(k.snapshot, "s1");
    CHECK_INT(k.phase, SNAP_PHASE_FROZEN);
    CHECK_INT(k.owner_pid, getpid());
    CHECK(k.owner_start == j.owner_start);
    CHECK_INT(k.started_ms, j.started_ms);
    CHECK(k.updated_ms >= k.started_ms);
    CHECK_INT(k.lease_deadline_ms, lease);
    CHECK_INT(k.watchdog_pid, getpid());
    CHECK_STR(k.prev_current, "s0");
    CHECK_STR(k.memory_created, "/state/s1.save");
    REQUIRE(k.n_disks == 2);
    CHECK_STR(k.disks[0].image, "/img/a.qcow2");
    CHECK_STR(k.disks[0].internal_created, "s1");
    CHECK(k.disks[0].done && !k.disks[0].has_old && !k.disks[0].overlay_created);
    snap_journal_disk *b = snap_journal_find_disk(&k, "xvdb");
    REQUIRE(b != NULL);
    CHECK_STR(b->overlay_created, "/img/b.raw.s1.qcow2");
    CHECK(b->has_old && !b->done);
    CHECK_STR(b->old_params, "aio:/img/b.raw");
    CHECK_STR(b->old_format, "raw");
    CHECK_STR(b->old_pdev_path, "/img/b.raw");
    CHECK(snap_journal_owner_alive(&k));
    CHECK(snap_journal_watchdog_alive(&k));
    CHECK(!snap_journal_lease_expired(&k, snap_realtime_ms()));
    CHECK(snap_journal_lease_expired(&k, lease));
    /* The same pid with another start time is another process (pid reuse). */
    k.owner_start++;
    CHECK(!snap_journal_owner_alive(&k));
    snap_journal_dispose(&k);
    /* One operation at a time: a second begin is refused, naming the first. */
    snap_journal other;
    snap_journal_init(&other, SNAP_JOURNAL_DELETE, "s0");
    CHECK_INT(snap_journal_begin(&st, &other, &err), SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, "domain vm1 has an unfinished create of snapshot 's1' (phase "
                            "frozen");
    CHECK_CONTAINS(err.msg, "still running");
    snap_journal_dispose(&other);
    CHECK_INT(snap_journal_finish(&st, &err), 0);
    CHECK(stat(path, &sb) < 0 && errno == ENOENT);
    CHECK_INT(snap_journal_load(&st, &k, &found, &err), 0);
    CHECK(!found);
    snap_journal_dispose(&k);
    free(path);
    snap_journal_dispose(&j);
    snap_meta_store_close(&st);
}

static void test_dead_owner_detected(void)
{
    snap_meta_store st;
    snap_err err;
    REQUIRE(open_store(&st, "dead", UUID) == 0);
    fflush(stdout);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        snap_journal j;
        fill_journal(&j);
        int rc = snap_journal_begin(&st, &j, NULL);
        rc = rc ? rc : snap_journal_set_phase(&st, &j, SNAP_PHASE_DISKS_DONE, NULL);
        _exit(rc ? 1 : 0); /* dies with the operation in flight */
    }
    int status;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snap_journal k;
    bool found = false;
    REQUIRE(snap_journal_load(&st, &k, &found, &err) == 0 && found);
    CHECK_INT(k.owner_pid, child);
    CHECK_INT(k.phase, SNAP_PHASE_DISKS_DONE);
    CHECK(!snap_journal_owner_alive(&k));
    snap_journal_dispose(&k);
    snap_journal j;
    snap_journal_init(&j, SNAP_JOURNAL_CREATE, "s2");
    CHECK_INT(snap_journal_begin(&st, &j, &err), SNAP_ERROR_BUSY);
    CHECK_CONTAINS(err.msg, "no longer running): it must be recovered first");
    snap_journal_dispose(&j);
    snap_meta_store_close(&st);
}

static void expect_bad_journal(snap_meta_store *st, const char *text, const char *msg)
{
    char *path = snap_meta_store_path(st, ".journal.json");
    CHECK(th_write_file(path, text));
    free(path);
    snap_journal k;
    bool found = true;
    snap_err err;
    snap_err_clear(&err);
    CHECK(snap_journal_load(st, &k, &found, &err) < 0);
    CHECK(!found);
    CHECK_CONTAINS(err.msg, ".journal.json");
    CHECK_CONTAINS(err.msg, msg);
    snap_journal_dispose(&k);
}

static void test_damaged_journal_is_reported(void)
{
    snap_meta_store st;
    REQUIRE(open_store(&st, "bad", UUID) == 0);
    snap_journal j;
    fill_journal(&j);
    char *good = snap_journal_to_json(&j);
    snap_journal_dispose(&j);
    expect_bad_journal(&st, "{\"version\": 1, \"operation\"", "invalid JSON");
    char *t = strdup(good);
    memcpy(strstr(t, "\"version\": 1"), "\"version\": 9", 12);
    expect_bad_journal(&st, t, "journal version 9 is not supported");
    free(t);
    t = strdup(good);
    memcpy(strstr(t, "\"create\""), "\"cr34te\"", 8);
    expect_bad_journal(&st, t, "field 'operation': unknown value");
    free(t);
    t = strdup(good);
    memcpy(strstr(t, "\"done\": false"), "\"done\": 0    ", 13);
    expect_bad_journal(&st, t, "field 'disks[1].done': expected true or false");
    free(t);
    free(good);
    snap_meta_store_close(&st);
}

/* ------------------------------------------------------------- lock */

/* Reads one byte from fd within timeout_ms; false on timeout or EOF. */
static bool wait_byte(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c;
    return poll(&p, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1;
}

/* A child that takes the lock of uuid, says so, and holds it until told (or 10 s). */
static pid_t locking_child(const char *tag, const char *uuid, int *ready_fd, int *go_fd)
{
    int ready[2], go[2];
    if (pipe(ready) < 0 || pipe(go) < 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        snap_meta_store st;
        snap_lock lock;
        if (snap_meta_store_open(&st, th_path(tag), uuid, "vm1", true, NULL) < 0 ||
            snap_lock_acquire(&st, &lock, 5000, NULL) < 0)
            _exit(1);
        if (write(ready[1], "L", 1) != 1)
            _exit(1);
        wait_byte(go[0], 10000);
        snap_lock_release(&lock);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    *ready_fd = ready[0];
    *go_fd = go[1];
    return pid;
}

/*
 * domain_state and a disk's merging flag (added after version 1 shipped):
 * they round-trip, a journal without them still reads (NULL / false), a
 * wrong type is rejected naming the field.
 */
static void test_optional_fields(void)
{
    snap_journal j, k;
    snap_err err;
    fill_journal(&j);
    char *old = snap_journal_to_json(&j);
    CHECK(!strstr(old, "domain_state") && !strstr(old, "merging") &&
          !strstr(old, "overlay_dir") && !strstr(old, "lvm_"));
    j.domain_state = strdup("paused");
    j.overlay_dir = strdup("/srv/overlays");
    j.disks[1].merging = true;
    /* issue 21: an LVM snapshot volume journaled before lvcreate runs */
    j.disks[1].lvm_created = strdup("vg0/root-xlsnap-s1");
    j.disks[1].lvm_origin = strdup("vg0/root");
    char *thin = snap_journal_to_json(&j);
    CHECK(!strstr(thin, "lvm_merge"));
    free(thin);
    j.disks[1].lvm_merge = true; /* a revert merging a classic snapshot volume */
    char *text = snap_journal_to_json(&j);
    CHECK_INT(snap_journal_from_json(&k, text, "new", &err), 0);
    CHECK_STR(k.domain_state, "paused");
    CHECK_STR(k.overlay_dir, "/srv/overlays");
    CHECK(!k.disks[0].merging && k.disks[1].merging);
    CHECK(k.disks[0].lvm_created == NULL && k.disks[0].lvm_origin == NULL);
    CHECK_STR(k.disks[1].lvm_created, "vg0/root-xlsnap-s1");
    CHECK_STR(k.disks[1].lvm_origin, "vg0/root");
    CHECK(k.disks[1].lvm_merge && !k.disks[0].lvm_merge);
    snap_journal_dispose(&k);
    CHECK_INT(snap_journal_from_json(&k, old, "old", &err), 0);
    CHECK(k.domain_state == NULL && k.overlay_dir == NULL && !k.disks[1].merging &&
          k.disks[1].lvm_created == NULL);
    snap_journal_dispose(&k);
    char *m = strstr(text, "\"merging\": true");
    REQUIRE(m);
    memcpy(m, "\"merging\": 1   ", 15);
    CHECK(snap_journal_from_json(&k, text, "bad", &err) != 0);
    CHECK_CONTAINS(err.msg, "disks[1].merging");
    free(text);
    free(old);
    snap_journal_dispose(&j);
}

/*
 * snapshot-delete --discard-journal's last step: the journal, whatever it
 * holds (garbage here), renamed beside itself and kept; nothing is replaced.
 */
static void test_move_aside(void)
{
    snap_meta_store st;
    snap_err err;
    REQUIRE(open_store(&st, "aside", UUID) == 0);
    char *path = snap_meta_store_path(&st, ".journal.json");
    REQUIRE(th_write_file(path, "garbage {"));
    snap_journal j;
    bool found = true;
    CHECK(snap_journal_load(&st, &j, &found, &err) != 0);
    CHECK_CONTAINS(err.msg, ".journal.json");
    char *aside = NULL;
    CHECK_INT(snap_journal_move_aside(&st, &aside, &err), 0);
    REQUIRE(aside != NULL);
    CHECK_CONTAINS(aside, "/.journal.json.discarded-");
    char *text = th_read_file(aside);
    CHECK_STR(text, "garbage {");
    free(text);
    CHECK_INT(snap_journal_load(&st, &j, &found, &err), 0);
    CHECK(!found);
    snap_journal_dispose(&j);
    free(aside);
    aside = NULL;
    CHECK_INT(snap_journal_move_aside(&st, &aside, &err), SNAP_ERROR_NOTFOUND);
    free(aside);
    free(path);
    snap_meta_store_close(&st);
}

static void test_lock_contention(void)
{
    snap_meta_store st, st2;
    snap_lock lock, lock2;
    snap_err err;
    REQUIRE(open_store(&st, "lock", UUID) == 0);
    REQUIRE(open_store(&st2, "lock", UUID2) == 0);
    int ready, go;
    pid_t child = locking_child("lock", UUID, &ready, &go);
    REQUIRE(child > 0);
    REQUIRE(wait_byte(ready, 5000));
    CHECK_INT(snap_lock_holder(&st), child);
    /* No wait: fails at once, naming the holder. */
    CHECK_INT(snap_lock_acquire(&st, &lock, 0, &err), SNAP_ERROR_BUSY);
    char want[128];
    snprintf(want, sizeof want,
             "domain vm1 is busy: another xlsnap (pid %d) is working on it", (int)child);
    CHECK_STR(err.msg, want);
    /* A bounded wait waits its bound, then fails. */
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_lock_acquire(&st, &lock, 300, &err), SNAP_ERROR_BUSY);
    uint64_t waited = snap_now_ms() - t0;
    CHECK(waited >= 300 && waited < 3000);
    /* Another domain is not held up. */
    CHECK_INT(snap_lock_acquire(&st2, &lock2, 0, &err), 0);
    snap_lock_release(&lock2);
    /* A waiter gets the lock as soon as the holder lets go. */
    CHECK(write(go, "G", 1) == 1);
    t0 = snap_now_ms();
    CHECK_INT(snap_lock_acquire(&st, &lock, 5000, &err), 0);
    CHECK(snap_now_ms() - t0 < 4000);
    CHECK_INT(snap_lock_holder(&st), getpid());
    snap_lock_release(&lock);
    CHECK_INT(snap_lock_holder(&st), 0);
    int status;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) &&
          WEXITSTATUS(status) == 0);
    close(ready);
    close(go);
    snap_meta_store_close(&st);
    snap_meta_store_close(&st2);
}

static void test_lock_dies_with_holder(void)
{
    snap_meta_store st;
    snap_lock lock;
    snap_err err;
    REQUIRE(open_store(&st, "lockkill", UUID) == 0);
    int ready, go;
    pid_t child = locking_child("lockkill", UUID, &ready, &go);
    REQUIRE(child > 0);
    REQUIRE(wait_byte(ready, 5000));
    CHECK_INT(snap_lock_acquire(&st, &lock, 0, &err), SNAP_ERROR_BUSY);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK_INT(snap_lock_acquire(&st, &lock, 1000, &err), 0);
    snap_lock_release(&lock);
    close(ready);
    close(go);
    /*
     * An owner that forks a helper (a freeze watchdog) and dies without
     * releasing: the helper must not keep the domain locked.
     */
    int sync[2], up[2];
    REQUIRE(pipe(sync) == 0 && pipe(up) == 0);
    fflush(stdout);
    pid_t owner = fork();
    if (owner == 0) {
        snap_lock held;
        close(sync[1]);
        if (snap_lock_acquire(&st, &held, 5000, NULL) < 0)
            _exit(1);
        if (fork() == 0) {
            snap_lock_forget_in_child(&held);
            /* Reported only once forgotten: the owner's death is then the last holder's.
             */
            if (write(up[1], "L", 1) != 1)
                _exit(1);
            wait_byte(sync[0], 10000);
            _exit(0);
        }
        _exit(0); /* dies holding the lock, without releasing it */
    }
    close(sync[0]);
    close(up[1]);
    CHECK(wait_byte(up[0], 5000));
    int status;
    CHECK(waitpid(owner, &status, 0) == owner && WIFEXITED(status) &&
          WEXITSTATUS(status) == 0);
    CHECK_INT(snap_lock_acquire(&st, &lock, 0, &err), 0);
    snap_lock_release(&lock);
    close(sync[1]); /* lets the helper go */
    close(up[0]);
    snap_meta_store_close(&st);
}

int main(void)
{
    th_plan(7);
    TH_RUN(test_lifecycle_and_every_field);
    TH_RUN(test_dead_owner_detected);
    TH_RUN(test_damaged_journal_is_reported);
    TH_RUN(test_optional_fields);
    TH_RUN(test_move_aside);
    TH_RUN(test_lock_contention);
    TH_RUN(test_lock_dies_with_holder);
    return th_finish();
}
