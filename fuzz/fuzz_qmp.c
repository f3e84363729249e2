/*
 * Fuzzes the QMP client (snap_qmp*): greeting, replies, errors, events and
 * stale replies, through the real socket code, against a scripted peer (see
 * fuzz_peer.h: segments separated by an empty line, "@ID@" = the id of the
 * request being answered). The client runs the commands snapshot-create uses.
 */
#include <stdlib.h>

#include "fuzz_peer.h"
#include "snap_qmp.h"

#define FUZZ_TIMEOUT_MS 500

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void qmp_fuzz_disks(snap_qmp *q, snap_err *err)
{
    snap_qmp_disks disks = {0};
    if (snap_qmp_query_disks(q, &disks, FUZZ_TIMEOUT_MS, err) == 0) {
        for (size_t i = 0; i < disks.n; i++) {
            (void)snap_qmp_disk_target(&disks.disk[i]);
            (void)snap_qmp_disk_find_snapshot(&disks.disk[i], "s1");
        }
        (void)snap_qmp_disks_find(&disks, "xvda");
    }
    snap_qmp_disks_free(&disks);
}

static void qmp_fuzz_snapshot(snap_qmp *q, snap_err *err)
{
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_internal(tx, "xvda-qcow2", "s1");
    snap_qmp_tx_add_external(tx, "", "xvdb-qcow2", "xvdb-s1", "/tmp/none.qcow2", "qcow2");
    (void)snap_qmp_transaction(q, tx, FUZZ_TIMEOUT_MS, err);
    snap_qmp_tx_free(tx);
    (void)snap_qmp_delete_internal(q, "xvda-qcow2", "s1", FUZZ_TIMEOUT_MS, err);
}

static void qmp_fuzz_jobs(snap_qmp *q, snap_err *err)
{
    snap_qmp_job job = {0};
    (void)snap_qmp_commit_active(q, "xvda-qcow2", "xvda-base", "commit0", FUZZ_TIMEOUT_MS,
                                 err);
    (void)snap_qmp_wait_job(q, "commit0", "ready", &job, FUZZ_TIMEOUT_MS, err);
    snap_qmp_job_clear(&job);
    (void)snap_qmp_query_job(q, "commit0", &job, FUZZ_TIMEOUT_MS, err);
    snap_qmp_job_clear(&job);
    (void)snap_qmp_job_dismiss(q, "commit0", FUZZ_TIMEOUT_MS, err);
}

static void qmp_fuzz_session(snap_qmp *q)
{
    snap_err err;
    snap_qmp_status st;
    (void)snap_qmp_version_at_least(q, 8, 0);
    (void)snap_qmp_query_status(q, &st, FUZZ_TIMEOUT_MS, &err);
    qmp_fuzz_disks(q, &err);
    (void)snap_qmp_stop(q, FUZZ_TIMEOUT_MS, &err);
    qmp_fuzz_snapshot(q, &err);
    (void)snap_qmp_cont(q, FUZZ_TIMEOUT_MS, &err);
    qmp_fuzz_jobs(q, &err);
    snap_qmp_event *ev = NULL;
    (void)snap_qmp_wait_event(q, "BLOCK_JOB_COMPLETED", NULL, NULL, 20, &ev, &err);
    snap_qmp_event_free(ev);
    (void)snap_qmp_poll_events(q, 0, &err);
    while ((ev = snap_qmp_next_event(q)))
        snap_qmp_event_free(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static fuzz_peer *peer;
    if (!peer)
        peer = fuzz_peer_new();
    fuzz_peer_start(peer, data, len, true);
    snap_qmp *q = NULL;
    snap_err err;
    if (snap_qmp_connect(fuzz_peer_path(peer), FUZZ_TIMEOUT_MS, &q, &err) == 0)
        qmp_fuzz_session(q);
    snap_qmp_close(q);
    fuzz_peer_join(peer);
    return 0;
}
