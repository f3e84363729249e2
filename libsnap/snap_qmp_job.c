/* QMP block jobs: query-jobs, waiting, dismissing, active commit; see snap_qmp.h. */
#include "snap_qmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Re-asks query-jobs at least this often, should an event be missed. */
#define QMP_JOB_POLL_MS 500
/* Cleanup steps after a failure get this long each. */
#define QMP_JOB_CLEANUP_MS 5000

void snap_qmp_job_clear(snap_qmp_job *job)
{
    free(job->error);
    memset(job, 0, sizeof *job);
}

static void qmp_parse_job(yajl_val v, snap_qmp_job *job)
{
    const char *s;
    snprintf(job->id, sizeof job->id, "%s", (s = snap_json_get_string(v, "id")) ? s : "");
    snprintf(job->type, sizeof job->type, "%s",
             (s = snap_json_get_string(v, "type")) ? s : "");
    snprintf(job->status, sizeof job->status, "%s",
             (s = snap_json_get_string(v, "status")) ? s : "");
    snap_json_get_int(v, "current-progress", &job->current_progress);
    snap_json_get_int(v, "total-progress", &job->total_progress);
    s = snap_json_get_string(v, "error");
    job->error = s ? snap_xstrdup(s) : NULL;
}

int snap_qmp_query_job(snap_qmp *q, const char *job_id, snap_qmp_job *job, int timeout_ms,
                       snap_err *err)
{
    yajl_val ret = NULL;
    memset(job, 0, sizeof *job);
    int rc = snap_qmp_execute(q, "query-jobs", NULL, NULL, &ret, timeout_ms, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < snap_json_array_len(ret); i++) {
        yajl_val v = snap_json_array_at(ret, i);
        const char *id = snap_json_get_string(v, "id");
        if (id && strcmp(id, job_id) == 0) {
            qmp_parse_job(v, job);
            yajl_tree_free(ret);
            return 0;
        }
    }
    yajl_tree_free(ret);
    return snap_err_set(err, SNAP_ERROR_NOTFOUND, "QMP query-jobs: no job %s", job_id);
}

static bool qmp_event_is_job(const snap_qmp_event *ev, void *opaque)
{
    const char *id = snap_json_get_string(ev->data, "id");
    return id && strcmp(id, (const char *)opaque) == 0;
}

/* Statuses from which a job never moves on by itself. */
static bool qmp_job_ended(const char *status)
{
    return strcmp(status, "concluded") == 0 || strcmp(status, "null") == 0;
}

int snap_qmp_wait_job(snap_qmp *q, const char *job_id, const char *status,
                      snap_qmp_job *job, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    for (;;) {
        int rc = snap_qmp_query_job(q, job_id, job, snap_deadline_poll_ms(deadline), err);
        if (rc)
            return rc;
        if (strcmp(job->status, status) == 0)
            return 0;
        if (qmp_job_ended(job->status))
            return snap_err_set(err, SNAP_ERROR_PEER, "job %s %s before reaching %s: %s",
                                job_id, job->status, status,
                                job->error ? job->error : "(QEMU gave no reason)");
        int left = snap_deadline_poll_ms(deadline);
        if (left == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                "job %s: still %s, not %s, after %d ms", job_id,
                                job->status, status, timeout_ms);
        snap_qmp_job_clear(job);
        snap_qmp_event *ev = NULL;
        rc = snap_qmp_wait_event(
            q, "JOB_STATUS_CHANGE", qmp_event_is_job, (void *)job_id,
            left >= 0 && left < QMP_JOB_POLL_MS ? left : QMP_JOB_POLL_MS, &ev, err);
        snap_qmp_event_free(ev);
        if (rc && rc != SNAP_ERROR_TIMEDOUT)
            return rc;
    }
}

static void qmp_id_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "id", opaque);
}

static void qmp_device_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "device", opaque);
}

int snap_qmp_job_dismiss(snap_qmp *q, const char *job_id, int timeout_ms, snap_err *err)
{
    return snap_qmp_execute(q, "job-dismiss", qmp_id_args, (void *)job_id, NULL,
                            timeout_ms, err);
}

typedef struct qmp_commit_args {
    const char *job_id, *device, *base_node;
} qmp_commit_args;

static void qmp_commit_args_gen(yajl_gen g, const void *opaque)
{
    const qmp_commit_args *a = opaque;
    snap_json_kv_str(g, "job-id", a->job_id);
    snap_json_kv_str(g, "device", a->device);
    if (a->base_node)
        snap_json_kv_str(g, "base-node", a->base_node);
    /* Keep the job after it ends, so its error can be read, then dismiss it. */
    snap_json_kv_bool(g, "auto-dismiss", false);
}

/* After a failure: cancel (an active commit then leaves the chain as it was), dismiss. */
static void qmp_job_abandon(snap_qmp *q, const char *job_id)
{
    snap_err ignored;
    snap_qmp_job job;
    if (snap_qmp_query_job(q, job_id, &job, QMP_JOB_CLEANUP_MS, &ignored))
        return;
    if (!qmp_job_ended(job.status))
        snap_qmp_execute(q, "job-cancel", qmp_id_args, (void *)job_id, NULL,
                         QMP_JOB_CLEANUP_MS, &ignored);
    snap_qmp_job_clear(&job);
    if (snap_qmp_wait_job(q, job_id, "concluded", &job, QMP_JOB_CLEANUP_MS, &ignored) ==
        0)
        snap_qmp_job_dismiss(q, job_id, QMP_JOB_CLEANUP_MS, &ignored);
    snap_qmp_job_clear(&job);
}

/* The steps after block-commit started: ready, complete, concluded without error. */
static int qmp_commit_finish(snap_qmp *q, const char *job_id, uint64_t deadline,
                             snap_err *err)
{
    snap_qmp_job job;
    int rc =
        snap_qmp_wait_job(q, job_id, "ready", &job, snap_deadline_poll_ms(deadline), err);
    snap_qmp_job_clear(&job);
    if (!rc)
        rc = snap_qmp_execute(q, "block-job-complete", qmp_device_args, (void *)job_id,
                              NULL, snap_deadline_poll_ms(deadline), err);
    if (!rc)
        rc = snap_qmp_wait_job(q, job_id, "concluded", &job,
                               snap_deadline_poll_ms(deadline), err);
    if (!rc && job.error)
        rc = snap_err_set(err, SNAP_ERROR_PEER, "job %s failed: %s", job_id, job.error);
    snap_qmp_job_clear(&job);
    return rc;
}

int snap_qmp_commit_active(snap_qmp *q, const char *target, const char *base_node,
                           const char *job_id, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    qmp_commit_args a = {job_id, target, base_node};
    if (!target || !job_id)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "block-commit needs a disk and a job id");
    int rc = snap_qmp_execute(q, "block-commit", qmp_commit_args_gen, &a, NULL,
                              timeout_ms, err);
    if (rc)
        return snap_err_context(err, "disk %s", target);
    rc = qmp_commit_finish(q, job_id, deadline, err);
    if (rc) {
        qmp_job_abandon(q, job_id);
        return snap_err_context(err, "disk %s: commit", target);
    }
    rc = snap_qmp_job_dismiss(q, job_id, snap_deadline_poll_ms(deadline), err);
    return rc ? snap_err_context(err, "disk %s", target) : 0;
}
