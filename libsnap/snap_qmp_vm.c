/* QMP run state and memory-state saving (migration to a file); see snap_qmp.h. */
#include "snap_qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_trace.h"

/* Saving to a local file: do not let QEMU's 128 MiB/s default throttle it. */
#define QMP_MIGRATE_BANDWIDTH (64LL << 30)
/*
 * How often query-migrate is asked for progress. The end of the save is not
 * polled for: QEMU's MIGRATION event wakes us. Each query is a round trip
 * through QEMU's main loop while the guest is paused and the save runs: ten
 * a second are enough for a progress display (it was a hundred); every 10 ms
 * only when QEMU would not send the event. (No writeback is started while
 * QEMU writes: QEMU 7.2 flushes the guest's disks when the migration
 * completes, and that flush waited for the file's writes, so the total
 * stayed the same; measured in docs/performance.md.)
 */
#define QMP_MIGRATE_POLL_MS           100
#define QMP_MIGRATE_POLL_NO_EVENTS_MS 10

int snap_qmp_stop(snap_qmp *q, int timeout_ms, snap_err *err)
{
    return snap_qmp_execute(q, "stop", NULL, NULL, NULL, timeout_ms, err);
}

int snap_qmp_cont(snap_qmp *q, int timeout_ms, snap_err *err)
{
    return snap_qmp_execute(q, "cont", NULL, NULL, NULL, timeout_ms, err);
}

int snap_qmp_query_status(snap_qmp *q, snap_qmp_status *st, int timeout_ms, snap_err *err)
{
    yajl_val ret = NULL;
    memset(st, 0, sizeof *st);
    int rc = snap_qmp_execute(q, "query-status", NULL, NULL, &ret, timeout_ms, err);
    if (rc)
        return rc;
    const char *status = snap_json_get_string(ret, "status");
    if (!status || !snap_json_get_bool(ret, "running", &st->running)) {
        yajl_tree_free(ret);
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "QMP query-status: reply lacks status/running");
    }
    snprintf(st->status, sizeof st->status, "%s", status);
    yajl_tree_free(ret);
    return 0;
}

/* ------------------------------------------------------------- migration */

typedef struct qmp_kv {
    const char *key;
    const char *str;
    long long num;
} qmp_kv;

/* One string member (num unused) or, with str NULL, one integer member. */
static void qmp_kv_args(yajl_gen g, const void *opaque)
{
    const qmp_kv *kv = opaque;
    if (kv->str)
        snap_json_kv_str(g, kv->key, kv->str);
    else
        snap_json_kv_int(g, kv->key, kv->num);
}

/* Reads status, progress and error of query-migrate. */
static int qmp_query_migrate(snap_qmp *q, char *status, size_t status_len,
                             uint64_t *transferred, uint64_t *total, char **error,
                             int timeout_ms, snap_err *err)
{
    yajl_val ret = NULL;
    int rc = snap_qmp_execute(q, "query-migrate", NULL, NULL, &ret, timeout_ms, err);
    if (rc)
        return rc;
    const char *s = snap_json_get_string(ret, "status");
    snprintf(status, status_len, "%s", s ? s : "");
    yajl_val ram = snap_json_get_object(ret, "ram");
    long long t = 0, n = 0;
    if (snap_json_get_int(ram, "transferred", &t))
        *transferred = (uint64_t)t;
    if (snap_json_get_int(ram, "total", &n))
        *total = (uint64_t)n;
    const char *e = snap_json_get_string(ret, "error-desc");
    *error = e ? snap_xstrdup(e) : NULL;
    yajl_tree_free(ret);
    return 0;
}

/* Emits "capabilities": [{"capability": "events", "state": true}]. */
static void qmp_events_capability(yajl_gen g, const void *opaque)
{
    (void)opaque;
    snap_json_key(g, "capabilities");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "capability", "events");
    snap_json_kv_bool(g, "state", true);
    yajl_gen_map_close(g);
    yajl_gen_array_close(g);
}

int snap_qmp_migration_events_on(snap_qmp *q, int timeout_ms, snap_err *err)
{
    return snap_qmp_execute(q, "migrate-set-capabilities", qmp_events_capability, NULL,
                            NULL, timeout_ms, err);
}

bool snap_qmp_migration_ended(const snap_qmp_event *ev, void *opaque)
{
    (void)opaque;
    const char *s = snap_json_get_string(ev->data, "status");
    return s &&
           (!strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled"));
}

/*
 * After QEMU's "completed" event: the last progress report says done, with
 * the bytes the file got. False when fd is no regular file (then a query
 * reports it).
 */
static bool report_done(int fd, snap_qmp_progress_fn *progress, void *opaque)
{
    struct stat st;
    if (!progress)
        return true;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    progress((uint64_t)st.st_size, (uint64_t)st.st_size, opaque);
    return true;
}

/*
 * Asks query-migrate for progress until completed/failed/cancelled, sleeping
 * on the socket until QEMU's MIGRATION event says it ended (or the poll
 * interval passed); other events stay queued. A "completed" event ends the
 * wait without another round trip (the guest is paused meanwhile): events
 * of an earlier migration were dropped before this one started.
 */
static int qmp_migrate_wait(snap_qmp *q, int fd, snap_qmp_progress_fn *progress,
                            void *opaque, int poll_ms, uint64_t deadline, snap_err *err)
{
    uint64_t transferred = 0, total = 0;
    for (;;) {
        char status[32], *error = NULL;
        int rc = qmp_query_migrate(q, status, sizeof status, &transferred, &total, &error,
                                   snap_deadline_poll_ms(deadline), err);
        if (rc)
            return rc;
        if (progress)
            progress(transferred, total, opaque);
        if (strcmp(status, "completed") == 0)
            return 0;
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            snap_err_set(err, SNAP_ERROR_PEER, "QMP migrate: migration %s: %s", status,
                         error ? error : "(QEMU gave no reason)");
            free(error);
            return err->code;
        }
        free(error);
        if (snap_deadline_poll_ms(deadline) == 0)
            return snap_err_set(
                err, SNAP_ERROR_TIMEDOUT,
                "QMP migrate: still %s after the time limit (%llu of %llu "
                "bytes)",
                status, (unsigned long long)transferred, (unsigned long long)total);
        int wait = snap_deadline_poll_ms(deadline);
        snap_qmp_event *ev = NULL;
        rc = snap_qmp_wait_event(q, "MIGRATION", snap_qmp_migration_ended, NULL,
                                 wait >= 0 && wait < poll_ms ? wait : poll_ms, &ev, err);
        const char *s = rc ? NULL : snap_json_get_string(ev->data, "status");
        bool completed = s && strcmp(s, "completed") == 0;
        snap_qmp_event_free(ev);
        if (completed && report_done(fd, progress, opaque))
            return 0; /* failed or cancelled: the query says why */
        if (rc && rc != SNAP_ERROR_TIMEDOUT)
            return rc;
    }
}

/* Drops the queued MIGRATION events of an earlier migration on this connection. */
static void qmp_drop_migration_events(snap_qmp *q)
{
    snap_qmp_event *ev = NULL;
    snap_err ignored;
    while (snap_qmp_wait_event(q, "MIGRATION", NULL, NULL, 0, &ev, &ignored) == 0) {
        snap_qmp_event_free(ev);
        ev = NULL;
    }
}

int snap_qmp_migrate_prepare(snap_qmp *q, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    qmp_kv bw = {"max-bandwidth", NULL, QMP_MIGRATE_BANDWIDTH};
    int rc = snap_qmp_migration_events_on(q, timeout_ms, err);
    if (!rc)
        rc = snap_qmp_execute(q, "migrate-set-parameters", qmp_kv_args, &bw, NULL,
                              snap_deadline_poll_ms(deadline), err);
    return rc;
}

/* getfd, migrate and the wait; poll_ms: between progress queries. */
static int qmp_migrate_fd(snap_qmp *q, int fd, int poll_ms,
                          snap_qmp_progress_fn *progress, void *opaque, uint64_t deadline,
                          snap_err *err)
{
    static const char fdname[] = "libsnap-migrate";
    qmp_kv name = {"fdname", fdname, 0};
    qmp_kv uri = {"uri", "fd:libsnap-migrate", 0};
    snap_err ignored;

    int rc = snap_qmp_execute_with_fd(q, "getfd", qmp_kv_args, &name, fd, NULL,
                                      snap_deadline_poll_ms(deadline), err);
    bool taken = false;
    if (!rc) {
        /* any earlier migration's events arrived before getfd's answer */
        qmp_drop_migration_events(q);
        snap_trace("migrate-sent"); /* XLSNAP_TRACE: the setup above is done */
        rc = snap_qmp_execute(q, "migrate", qmp_kv_args, &uri, NULL,
                              snap_deadline_poll_ms(deadline), err);
        taken = rc == 0;
        if (!rc)
            rc = qmp_migrate_wait(q, fd, progress, opaque, poll_ms, deadline, err);
        if (rc == SNAP_ERROR_TIMEDOUT)
            snap_qmp_execute(q, "migrate_cancel", NULL, NULL, NULL, 2000, &ignored);
    }
    /* QEMU takes the fd out of its table when it accepts the migrate command
     * (monitor_get_fd); if it did not, release it. No round trip otherwise:
     * the guest is paused meanwhile. */
    if (!taken)
        snap_qmp_execute(q, "closefd", qmp_kv_args, &name, NULL, 2000, &ignored);
    return rc;
}

int snap_qmp_migrate_to_fd(snap_qmp *q, int fd, snap_qmp_progress_fn *progress,
                           void *opaque, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    qmp_kv bw = {"max-bandwidth", NULL, QMP_MIGRATE_BANDWIDTH};
    snap_err ignored;
    /* The MIGRATION event ends the wait at once; without it, polling still does. */
    int poll_ms =
        snap_qmp_migration_events_on(q, snap_deadline_poll_ms(deadline), &ignored) == 0
            ? QMP_MIGRATE_POLL_MS
            : QMP_MIGRATE_POLL_NO_EVENTS_MS;
    int rc = snap_qmp_execute(q, "migrate-set-parameters", qmp_kv_args, &bw, NULL,
                              snap_deadline_poll_ms(deadline), err);
    return rc ? rc : qmp_migrate_fd(q, fd, poll_ms, progress, opaque, deadline, err);
}

int snap_qmp_migrate_prepared_to_fd(snap_qmp *q, int fd, snap_qmp_progress_fn *progress,
                                    void *opaque, int timeout_ms, snap_err *err)
{
    return qmp_migrate_fd(q, fd, QMP_MIGRATE_POLL_MS, progress, opaque,
                          snap_deadline_in(timeout_ms), err);
}

int snap_qmp_migrate_to_file(snap_qmp *q, const char *path,
                             snap_qmp_progress_fn *progress, void *opaque, int timeout_ms,
                             snap_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return snap_err_errno(err, errno == EEXIST ? SNAP_ERROR_EXISTS : SNAP_ERROR_IO,
                              errno, "memory state file %s", path);
    int rc = snap_qmp_migrate_to_fd(q, fd, progress, opaque, timeout_ms, err);
    if (!rc && fsync(fd) < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "fsync");
    close(fd);
    if (rc) {
        unlink(path);
        return snap_err_context(err, "saving memory state to %s", path);
    }
    return 0;
}
