/*
 * bench_migrate: QEMU's own memory save, without xlsnap: the floor a memory
 * checkpoint is compared with in `make bench`.
 *
 *   bench_migrate [--internal NAME] QMP_SOCKET FILE
 *
 * does what a user of plain QEMU would: stop; migrate to FILE (an fd passed
 * with getfd); wait for the MIGRATION event saying it completed; fsync;
 * cont. The migration throttle is lifted and events are enabled before the
 * guest is stopped (setup, not part of the pause). No records, no writeback
 * while QEMU writes. With --internal, what a checkpoint adds: one QMP
 * transaction of internal snapshots NAME of every disk, after the stop and
 * before the migration (deleted again after the cont), so the save's fsync
 * can be compared with xlsnap's, which follows the same disk snapshots.
 * Prints
 *   "<paused_ms> <migrate_ms> <fsync_ms> <resume_ms> <bytes> <disks_ms>"
 * (paused: stop sent -> cont answered; migrate: getfd sent -> the MIGRATION
 * event saying completed; disks: the transaction, 0 without --internal). FILE is
 * created or truncated.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <stdbool.h>
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

/* One transaction of internal snapshots name of every disk (tx NULL: none). */
static int snapshot_disks(snap_qmp *q, const snap_qmp_tx *tx, snap_err *err)
{
    if (!tx)
        return 0;
    int rc = snap_qmp_transaction(q, tx, QMP_TIMEOUT_MS, err);
    return rc ? snap_err_context(err, "internal snapshots") : 0;
}

/*
 * stop; [disk snapshots]; getfd + migrate; wait; fsync; cont.
 * t[]: stop, stopped, snapshotted, completed, synced, resumed.
 */
static int bare_save(snap_qmp *q, const snap_qmp_tx *tx, int fd, double t[6],
                     snap_err *err)
{
    t[0] = now_ms();
    int rc = snap_qmp_stop(q, QMP_TIMEOUT_MS, err);
    t[1] = now_ms();
    if (!rc)
        rc = snapshot_disks(q, tx, err);
    t[2] = now_ms();
    if (!rc)
        rc = snap_qmp_execute_with_fd(q, "getfd", fdname_arg, NULL, fd, NULL,
                                      QMP_TIMEOUT_MS, err);
    if (!rc)
        rc = snap_qmp_execute(q, "migrate", uri_arg, NULL, NULL, QMP_TIMEOUT_MS, err);
    if (!rc)
        rc = wait_completed(q, err);
    t[3] = now_ms();
    if (!rc && fsync(fd) < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "fsync");
    t[4] = now_ms();
    if (!rc)
        rc = snap_qmp_cont(q, QMP_TIMEOUT_MS, err);
    t[5] = now_ms();
    return rc;
}

/* The transaction snapshotting every disk as name; NULL for a plain save. */
static snap_qmp_tx *disks_tx(snap_qmp *q, const char *name, snap_qmp_disks *disks,
                             snap_err *err)
{
    if (!name)
        return NULL;
    if (snap_qmp_query_disks(q, disks, QMP_TIMEOUT_MS, err))
        return NULL;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    for (size_t i = 0; i < disks->n; i++)
        snap_qmp_tx_add_internal(tx, snap_qmp_disk_target(&disks->disk[i]), name);
    return tx;
}

/* Removes what disks_tx's transaction made; the first error is kept. */
static int delete_snapshots(snap_qmp *q, const char *name, const snap_qmp_disks *disks,
                            int rc, snap_err *err)
{
    for (size_t i = 0; name && i < disks->n; i++) {
        snap_err e = {0};
        if (snap_qmp_delete_internal(q, snap_qmp_disk_target(&disks->disk[i]), name,
                                     QMP_TIMEOUT_MS, &e) &&
            !rc)
            rc = snap_err_set(err, e.code, "deleting %s: %s", name, e.msg);
    }
    return rc;
}

static int run(const char *sock, const char *path, const char *name, snap_err *err)
{
    snap_qmp *q;
    snap_qmp_disks disks = {0};
    snap_qmp_tx *tx = NULL;
    int rc = snap_qmp_connect(sock, QMP_TIMEOUT_MS, &q, err);
    if (rc)
        return snap_err_context(err, "QMP %s", sock);
    rc = snap_qmp_migration_events_on(q, QMP_TIMEOUT_MS, err);
    if (!rc)
        rc = snap_qmp_execute(q, "migrate-set-parameters", no_throttle, NULL, NULL,
                              QMP_TIMEOUT_MS, err);
    if (!rc && name && !(tx = disks_tx(q, name, &disks, err)))
        rc = err->code;
    int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!rc && fd < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", path);
    double t[6];
    struct stat sb;
    bool snapped = false;
    if (!rc) {
        rc = bare_save(q, tx, fd, t, err);
        snapped = true; /* a failed transaction made none, and deleting says so */
    }
    if (!rc && fstat(fd, &sb) < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", path);
    if (!rc)
        printf("%.3f %.3f %.3f %.3f %lld %.3f\n", t[5] - t[0], t[3] - t[2], t[4] - t[3],
               t[5] - t[4], (long long)sb.st_size, t[2] - t[1]);
    if (snapped)
        rc = delete_snapshots(q, name, &disks, rc, err);
    if (fd >= 0)
        close(fd);
    snap_qmp_tx_free(tx);
    snap_qmp_disks_free(&disks);
    snap_qmp_close(q);
    return rc;
}

int main(int argc, char **argv)
{
    const char *name = NULL;
    if (argc == 5 && !strcmp(argv[1], "--internal")) {
        name = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: bench_migrate [--internal NAME] QMP_SOCKET FILE\n");
        return 2;
    }
    snap_err err = {0};
    if (run(argv[1], argv[2], name, &err)) {
        fprintf(stderr, "bench_migrate: %s\n", err.msg);
        return 1;
    }
    return 0;
}
