/*
 * bench_migrate: QEMU's own memory save, without xlsnap: the floor a memory
 * checkpoint is compared with in `make bench`.
 *
 *   bench_migrate QMP_SOCKET FILE
 *
 * does what a user of plain QEMU would: stop; migrate to FILE (an fd passed
 * with getfd); wait for the MIGRATION event saying it completed; fsync;
 * cont. The migration throttle is lifted and events are enabled before the
 * guest is stopped (setup, not part of the pause). No disk snapshots, no
 * records, no writeback while QEMU writes. Prints
 *   "<paused_ms> <migrate_ms> <fsync_ms> <resume_ms> <bytes>"
 * (paused: stop sent -> cont answered; migrate: stopped -> completed event). FILE is
 * created or truncated.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snap_qmp.h"

#define QMP_TIMEOUT_MS  10000
#define SAVE_TIMEOUT_MS 120000
#define FDNAME          "bench-migrate"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Same limit as xlsnap sets: QEMU's default 128 MiB/s would make a slow floor. */
static void no_throttle(yajl_gen g, const void *opaque)
{
    (void)opaque;
    snap_json_kv_int(g, "max-bandwidth", 64LL << 30);
}

static void fdname_arg(yajl_gen g, const void *opaque)
{
    (void)opaque;
    snap_json_kv_str(g, "fdname", FDNAME);
}

static void uri_arg(yajl_gen g, const void *opaque)
{
    (void)opaque;
    snap_json_kv_str(g, "uri", "fd:" FDNAME);
}

/* Waits for the end of the migration; 0 when QEMU says it completed. */
static int wait_completed(snap_qmp *q, snap_err *err)
{
    snap_qmp_event *ev = NULL;
    int rc = snap_qmp_wait_event(q, "MIGRATION", snap_qmp_migration_ended, NULL,
                                 SAVE_TIMEOUT_MS, &ev, err);
    if (rc)
        return snap_err_context(err, "waiting for the MIGRATION event");
    const char *s = snap_json_get_string(ev->data, "status");
    if (strcmp(s, "completed") != 0)
        rc = snap_err_set(err, SNAP_ERROR_PEER, "migration %s", s);
    snap_qmp_event_free(ev);
    return rc;
}

/* stop; getfd + migrate; wait; fsync; cont. t[]: stop, stopped, sent, synced, resumed. */
static int bare_save(snap_qmp *q, int fd, double t[5], snap_err *err)
{
    t[0] = now_ms();
    int rc = snap_qmp_stop(q, QMP_TIMEOUT_MS, err);
    t[1] = now_ms();
    if (!rc)
        rc = snap_qmp_execute_with_fd(q, "getfd", fdname_arg, NULL, fd, NULL,
                                      QMP_TIMEOUT_MS, err);
    if (!rc)
        rc = snap_qmp_execute(q, "migrate", uri_arg, NULL, NULL, QMP_TIMEOUT_MS, err);
    if (!rc)
        rc = wait_completed(q, err);
    t[2] = now_ms();
    if (!rc && fsync(fd) < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "fsync");
    t[3] = now_ms();
    if (!rc)
        rc = snap_qmp_cont(q, QMP_TIMEOUT_MS, err);
    t[4] = now_ms();
    return rc;
}

static int run(const char *sock, const char *path, snap_err *err)
{
    snap_qmp *q;
    int rc = snap_qmp_connect(sock, QMP_TIMEOUT_MS, &q, err);
    if (rc)
        return snap_err_context(err, "QMP %s", sock);
    rc = snap_qmp_migration_events_on(q, QMP_TIMEOUT_MS, err);
    if (!rc)
        rc = snap_qmp_execute(q, "migrate-set-parameters", no_throttle, NULL, NULL,
                              QMP_TIMEOUT_MS, err);
    int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!rc && fd < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", path);
    double t[5];
    struct stat sb;
    if (!rc)
        rc = bare_save(q, fd, t, err);
    if (!rc && fstat(fd, &sb) < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", path);
    if (!rc)
        printf("%.3f %.3f %.3f %.3f %lld\n", t[4] - t[0], t[2] - t[1], t[3] - t[2],
               t[4] - t[3], (long long)sb.st_size);
    if (fd >= 0)
        close(fd);
    snap_qmp_close(q);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_migrate QMP_SOCKET FILE\n");
        return 2;
    }
    snap_err err = {0};
    if (run(argv[1], argv[2], &err)) {
        fprintf(stderr, "bench_migrate: %s\n", err.msg);
        return 1;
    }
    return 0;
}
