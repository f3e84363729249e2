/* The per-domain lock; see snap_lock.h. */
#include "snap_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_FILE    ".lock"
#define LOCK_POLL_MS 20

pid_t snap_lock_holder(snap_meta_store *st)
{
    char *text = NULL;
    if (snap_meta_store_read(st, LOCK_FILE, &text, NULL, NULL) < 0)
        return 0;
    char *end;
    long pid = strtol(text, &end, 10);
    bool ok =
        end != text && (*end == '\n' || *end == '\0') && pid > 0 && pid < (1L << 22);
    free(text);
    return ok ? (pid_t)pid : 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls LOCK_NB rather than blocking, so that the wait has a bound. */
static int wait_for_lock(snap_meta_store *st, int fd, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "flock %s/%s", st->dir,
                                  LOCK_FILE);
        int left = snap_deadline_poll_ms(deadline);
        if (left == 0)
            break;
        sleep_ms(left < 0 || left > LOCK_POLL_MS ? LOCK_POLL_MS : left);
    }
    pid_t holder = snap_lock_holder(st);
    if (holder > 0)
        return snap_err_set(err, SNAP_ERROR_BUSY,
                            "domain %s is busy: another xlsnap (pid %d) is working on it",
                            st->label, (int)holder);
    return snap_err_set(err, SNAP_ERROR_BUSY,
                        "domain %s is busy: another xlsnap is working on it", st->label);
}

int snap_lock_acquire(snap_meta_store *st, snap_lock *lock, int timeout_ms, snap_err *err)
{
    lock->fd = -1;
    int fd =
        openat(st->dirfd, LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot open %s/%s", st->dir,
                              LOCK_FILE);
    int rc = wait_for_lock(st, fd, timeout_ms, err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    /* The pid only feeds messages: failing to record it is not fatal. */
    bool recorded = fchmod(fd, 0600) == 0 && ftruncate(fd, 0) == 0 &&
                    pwrite(fd, pid, (size_t)len, 0) == len;
    (void)recorded;
    lock->fd = fd;
    return 0;
}

void snap_lock_release(snap_lock *lock)
{
    if (lock->fd < 0)
        return;
    /* Clear the pid first: a waiter must never name a process that has left. */
    bool cleared = ftruncate(lock->fd, 0) == 0; /* if not, the next holder overwrites */
    (void)cleared;
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    lock->fd = -1;
}

void snap_lock_forget_in_child(snap_lock *lock)
{
    if (lock->fd >= 0)
        close(lock->fd);
    lock->fd = -1;
}
