/* QMP client core: connection, greeting, commands, events; see snap_qmp.h. */
#include "snap_qmp.h"
#include "snap_trace.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "snap_stream.h"

typedef struct qmp_event_node {
    snap_qmp_event *ev;
    struct qmp_event_node *next;
} qmp_event_node;

struct snap_qmp {
    snap_stream s;
    char path[256];
    int major, minor, micro;
    char *package;
    unsigned long long next_id;
    /* Set when the stream is out of step (overlong line, EOF, garbage). */
    bool broken;
    /* The command whose reply timed out, until another is sent ("": none). */
    char late_id[32], late_cmd[64];
    xentoollog_logger *lg;
    qmp_event_node *ev_head, *ev_tail;
    size_t ev_len, ev_dropped;
};

/* How much of a peer's line goes into error and log messages. */
#define QMP_QUOTE_MAX 160

/* ------------------------------------------------------------- events */

void snap_qmp_event_free(snap_qmp_event *ev)
{
    if (!ev)
        return;
    free(ev->name);
    yajl_tree_free(ev->data);
    free(ev);
}

static void qmp_queue_event(snap_qmp *q, snap_qmp_event *ev)
{
    if (q->ev_len >= SNAP_QMP_MAX_EVENTS) {
        /* Nobody is reading events: keep the newest, count the loss. */
        snap_qmp_event_free(snap_qmp_next_event(q));
        q->ev_dropped++;
    }
    qmp_event_node *n = snap_xcalloc(1, sizeof *n);
    n->ev = ev;
    if (q->ev_tail)
        q->ev_tail->next = n;
    else
        q->ev_head = n;
    q->ev_tail = n;
    q->ev_len++;
}

/* Removes node n (whose predecessor is prev, or NULL) and returns its event. */
static snap_qmp_event *qmp_unlink_event(snap_qmp *q, qmp_event_node *prev,
                                        qmp_event_node *n)
{
    if (prev)
        prev->next = n->next;
    else
        q->ev_head = n->next;
    if (q->ev_tail == n)
        q->ev_tail = prev;
    q->ev_len--;
    snap_qmp_event *ev = n->ev;
    free(n);
    return ev;
}

snap_qmp_event *snap_qmp_next_event(snap_qmp *q)
{
    return q->ev_head ? qmp_unlink_event(q, NULL, q->ev_head) : NULL;
}

size_t snap_qmp_events_queued(const snap_qmp *q)
{
    return q->ev_len;
}

size_t snap_qmp_events_dropped(const snap_qmp *q)
{
    return q->ev_dropped;
}

/* True once deadline has passed: ends loops a chatty peer could keep going. */
static bool qmp_out_of_time(uint64_t deadline)
{
    return snap_deadline_poll_ms(deadline) == 0;
}

/* Takes the first queued event matching name and filter, if any. */
static snap_qmp_event *qmp_take_event(snap_qmp *q, const char *name,
                                      snap_qmp_event_filter *filter, void *opaque)
{
    qmp_event_node *prev = NULL;
    for (qmp_event_node *n = q->ev_head; n; prev = n, n = n->next)
        if (strcmp(n->ev->name, name) == 0 && (!filter || filter(n->ev, opaque)))
            return qmp_unlink_event(q, prev, n);
    return NULL;
}

/* Detaches member key from object v so it survives yajl_tree_free(v). */
static yajl_val qmp_detach(yajl_val v, const char *key)
{
    if (!YAJL_IS_OBJECT(v))
        return NULL;
    for (size_t i = 0; i < v->u.object.len; i++)
        if (strcmp(v->u.object.keys[i], key) == 0) {
            yajl_val m = v->u.object.values[i];
            v->u.object.values[i] = NULL;
            return m;
        }
    return NULL;
}

/* Turns an event message into a queued event; frees doc. */
static void qmp_event_from_doc(snap_qmp *q, yajl_val doc)
{
    snap_qmp_event *ev = snap_xcalloc(1, sizeof *ev);
    ev->name = snap_xstrdup(snap_json_get_string(doc, "event"));
    yajl_val ts = snap_json_get_object(doc, "timestamp");
    snap_json_get_int(ts, "seconds", &ev->seconds);
    snap_json_get_int(ts, "microseconds", &ev->microseconds);
    ev->data = qmp_detach(doc, "data");
    yajl_tree_free(doc);
    snap_log(q->lg, XTL_DEBUG, "QMP %s: event %s", q->path, ev->name);
    qmp_queue_event(q, ev);
}

/* ------------------------------------------------------------- reading */

/* Marks the connection unusable and returns the error code. */
static int qmp_break(snap_qmp *q, snap_err *err)
{
    q->broken = true;
    return err->code;
}

/*
 * Reads one message. Events are queued (*reply_out = NULL); a reply (a
 * "return" or "error" message) is handed over in *reply_out.
 */
static int qmp_read_message(snap_qmp *q, uint64_t deadline, yajl_val *reply_out,
                            snap_err *err)
{
    char *line = NULL;
    *reply_out = NULL;
    int rc = snap_stream_read_line(&q->s, &line, NULL, deadline, err);
    if (rc == SNAP_ERROR_TIMEDOUT)
        return rc;
    if (rc)
        return qmp_break(q, err);
    snap_log(q->lg, XTL_DEBUG, "QMP %s <- %.*s", q->path, QMP_QUOTE_MAX, line);
    yajl_val doc = snap_json_parse(line, q->s.peer, err);
    if (!doc || !YAJL_IS_OBJECT(doc)) {
        if (doc)
            snap_err_set(err, SNAP_ERROR_PROTOCOL, "%s sent a non-object: %.*s",
                         q->s.peer, QMP_QUOTE_MAX, line);
        yajl_tree_free(doc);
        free(line);
        return qmp_break(q, err);
    }
    if (snap_json_get_string(doc, "event")) {
        free(line);
        qmp_event_from_doc(q, doc);
        return 0;
    }
    if (snap_json_get(doc, "return") || snap_json_get_object(doc, "error")) {
        free(line);
        *reply_out = doc;
        return 0;
    }
    snap_err_set(err, SNAP_ERROR_PROTOCOL, "%s sent an unexpected message: %.*s",
                 q->s.peer, QMP_QUOTE_MAX, line);
    yajl_tree_free(doc);
    free(line);
    return qmp_break(q, err);
}

int snap_qmp_poll_events(snap_qmp *q, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    if (q->broken)
        return snap_err_set(err, SNAP_ERROR_CLOSED,
                            "%s: connection unusable after an earlier error", q->s.peer);
    for (;;) {
        yajl_val reply = NULL;
        snap_err local; /* running out of time is this call's normal end */
        int rc = qmp_read_message(q, deadline, &reply, &local);
        if (rc == SNAP_ERROR_TIMEDOUT)
            return 0;
        if (rc) {
            *err = local;
            return rc;
        }
        if (reply) /* Left over from a command that timed out: nobody waits. */
            yajl_tree_free(reply);
        if (qmp_out_of_time(deadline))
            return 0;
    }
}

int snap_qmp_wait_event(snap_qmp *q, const char *name, snap_qmp_event_filter *filter,
                        void *opaque, int timeout_ms, snap_qmp_event **ev_out,
                        snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    bool read_once = false;
    *ev_out = NULL;
    for (;;) {
        /* Only the first pass scans the queue; later only a new tail can match. */
        bool tail_matches = q->ev_tail && strcmp(q->ev_tail->ev->name, name) == 0 &&
                            (!filter || filter(q->ev_tail->ev, opaque));
        snap_qmp_event *ev =
            !read_once || tail_matches ? qmp_take_event(q, name, filter, opaque) : NULL;
        if (ev) {
            *ev_out = ev;
            return 0;
        }
        if (q->broken)
            return snap_err_set(err, SNAP_ERROR_CLOSED,
                                "%s: connection unusable after an earlier error",
                                q->s.peer);
        yajl_val reply = NULL;
        /* After one read, the clock decides: a peer may flood other events. */
        int rc = read_once && qmp_out_of_time(deadline)
                     ? SNAP_ERROR_TIMEDOUT
                     : qmp_read_message(q, deadline, &reply, err);
        yajl_tree_free(reply);
        read_once = true;
        if (rc == SNAP_ERROR_TIMEDOUT)
            return snap_err_set(err, rc, "%s: no %s event within %d ms", q->s.peer, name,
                                timeout_ms);
        if (rc)
            return snap_err_context(err, "waiting for %s event", name);
    }
}

/* ------------------------------------------------------------- commands */

/* Sends the first bytes of data together with fd (SCM_RIGHTS); returns bytes sent. */
static int qmp_send_fd(snap_qmp *q, const char *data, size_t len, int fd,
                       uint64_t deadline, size_t *sent, snap_err *err)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    for (;;) {
        ssize_t n = sendmsg(q->s.fd, &mh, MSG_NOSIGNAL);
        if (n > 0) {
            *sent = (size_t)n;
            return 0;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return snap_err_errno(err, errno == EPIPE ? SNAP_ERROR_CLOSED : SNAP_ERROR_IO,
                                  errno, "%s: sending a file descriptor", q->s.peer);
        struct pollfd pf = {.fd = q->s.fd, .events = POLLOUT};
        if (n < 0 && errno == EAGAIN &&
            poll(&pf, 1, snap_deadline_poll_ms(deadline)) == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                "%s: timed out sending a file descriptor", q->s.peer);
    }
}

static int qmp_send(snap_qmp *q, const char *text, size_t len, int fd, uint64_t deadline,
                    snap_err *err)
{
    size_t sent = 0;
    snap_log(q->lg, XTL_DEBUG, "QMP %s -> %.*s", q->path, (int)len - 1, text);
    if (fd >= 0) {
        int rc = qmp_send_fd(q, text, len, fd, deadline, &sent, err);
        if (rc)
            return rc;
    }
    return snap_stream_write_all(&q->s, text + sent, len - sent, deadline, err);
}

/* Turns an error reply into SNAP_ERROR_PEER "<class>: <desc>" (desc verbatim). */
static int qmp_reply_error(yajl_val error, snap_err *err)
{
    const char *cls = snap_json_get_string(error, "class");
    const char *desc = snap_json_get_string(error, "desc");
    return snap_err_set(err, SNAP_ERROR_PEER, "%s: %s", cls ? cls : "(no class)",
                        desc ? desc : "(no description)");
}

/*
 * Reads until the reply to command id. Replies to other ids were left by
 * commands that timed out: dropped. An id-less error is QEMU failing to
 * parse what was sent, so it answers the command in flight.
 */
static int qmp_await_reply(snap_qmp *q, const char *id, uint64_t deadline,
                           yajl_val *ret_out, snap_err *err)
{
    for (;;) {
        yajl_val reply = NULL;
        int rc = qmp_read_message(q, deadline, &reply, err);
        if (rc)
            return rc;
        if (!reply) {
            if (qmp_out_of_time(deadline)) /* a peer flooding events */
                return snap_err_set(err, SNAP_ERROR_TIMEDOUT, "out of time");
            continue;
        }
        yajl_val rid = snap_json_get(reply, "id");
        yajl_val error = snap_json_get_object(reply, "error");
        bool ours = rid ? YAJL_IS_STRING(rid) && strcmp(rid->u.string, id) == 0 : !!error;
        if (!ours) {
            snap_log(q->lg, XTL_DEBUG, "QMP %s: dropping a stale reply", q->path);
            yajl_tree_free(reply);
            if (qmp_out_of_time(deadline))
                return snap_err_set(err, SNAP_ERROR_TIMEDOUT, "out of time");
            continue;
        }
        rc = error ? qmp_reply_error(error, err) : 0;
        if (!rc && ret_out)
            *ret_out = qmp_detach(reply, "return");
        yajl_tree_free(reply);
        return rc;
    }
}

static int qmp_execute_fd(snap_qmp *q, const char *cmd, snap_qmp_args_fn *args,
                          const void *opaque, int fd, yajl_val *ret_out, int timeout_ms,
                          snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    char id[32];
    if (ret_out)
        *ret_out = NULL;
    if (q->broken)
        return snap_err_set(err, SNAP_ERROR_CLOSED,
                            "QMP %s: %s: connection unusable after an earlier error", cmd,
                            q->s.peer);
    snap_trace("qmp-cmd");
    snprintf(id, sizeof id, "libsnap-%llu", ++q->next_id);
    q->late_id[0] = '\0';
    size_t len;
    char *text = snap_json_qapi_command(NULL, cmd, args, opaque, id, &len);
    int rc = qmp_send(q, text, len, fd, deadline, err);
    free(text);
    if (rc) {
        /* A half-sent command would garble the next one. */
        q->broken = true;
        return snap_err_context(err, "QMP %s", cmd);
    }
    rc = qmp_await_reply(q, id, deadline, ret_out, err);
    snap_trace("qmp-done");
    if (rc == SNAP_ERROR_TIMEDOUT && !q->broken) {
        snprintf(q->late_id, sizeof q->late_id, "%s", id);
        snprintf(q->late_cmd, sizeof q->late_cmd, "%s", cmd);
    }
    if (rc == SNAP_ERROR_TIMEDOUT)
        return snap_err_set(err, rc, "QMP %s: %s sent no reply within %d ms", cmd,
                            q->s.peer, timeout_ms);
    if (rc)
        return snap_err_context(err, "QMP %s", cmd);
    return 0;
}

int snap_qmp_await_late_reply(snap_qmp *q, yajl_val *ret_out, int timeout_ms,
                              snap_err *err)
{
    if (ret_out)
        *ret_out = NULL;
    if (!q->late_id[0] || q->broken)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "QMP %s: no command is awaiting a late reply", q->s.peer);
    int rc = qmp_await_reply(q, q->late_id, snap_deadline_in(timeout_ms), ret_out, err);
    if (rc == SNAP_ERROR_TIMEDOUT)
        return snap_err_set(err, rc, "QMP %s: %s sent no reply within %d ms more",
                            q->late_cmd, q->s.peer, timeout_ms);
    q->late_id[0] = '\0';
    return rc ? snap_err_context(err, "QMP %s", q->late_cmd) : 0;
}

int snap_qmp_execute(snap_qmp *q, const char *cmd, snap_qmp_args_fn *args,
                     const void *opaque, yajl_val *ret_out, int timeout_ms, snap_err *err)
{
    return qmp_execute_fd(q, cmd, args, opaque, -1, ret_out, timeout_ms, err);
}

int snap_qmp_execute_with_fd(snap_qmp *q, const char *cmd, snap_qmp_args_fn *args,
                             const void *opaque, int fd, yajl_val *ret_out,
                             int timeout_ms, snap_err *err)
{
    if (fd < 0)
        return snap_err_set(err, SNAP_ERROR_INVAL, "QMP %s: no file descriptor", cmd);
    return qmp_execute_fd(q, cmd, args, opaque, fd, ret_out, timeout_ms, err);
}

/* Emits the members of a parsed object. */
static void qmp_tree_args(yajl_gen g, const void *opaque)
{
    const struct yajl_val_s *args = opaque;
    for (size_t i = 0; i < args->u.object.len; i++) {
        snap_json_key(g, args->u.object.keys[i]);
        snap_json_tree(g, args->u.object.values[i]);
    }
}

int snap_qmp_execute_tree(snap_qmp *q, const char *cmd, yajl_val args, yajl_val *ret_out,
                          int timeout_ms, snap_err *err)
{
    if (args && !YAJL_IS_OBJECT(args))
        return snap_err_set(err, SNAP_ERROR_INVAL, "QMP %s: arguments must be an object",
                            cmd);
    return snap_qmp_execute(q, cmd, args ? qmp_tree_args : NULL, args, ret_out,
                            timeout_ms, err);
}

/* ------------------------------------------------------------- connection */

/* Reads and checks the greeting: {"QMP": {"version": {"qemu": {...}}}}. */
static int qmp_read_greeting(snap_qmp *q, uint64_t deadline, int timeout_ms,
                             snap_err *err)
{
    char *line = NULL;
    int rc = snap_stream_read_line(&q->s, &line, NULL, deadline, err);
    if (rc == SNAP_ERROR_TIMEDOUT)
        return snap_err_set(err, rc,
                            "%s: no greeting within %d ms (QEMU serves one QMP client "
                            "at a time: is another client connected?)",
                            q->s.peer, timeout_ms);
    if (rc)
        return snap_err_context(err, "waiting for the QMP greeting");
    snap_err local;
    yajl_val doc = snap_json_parse(line, q->s.peer, &local);
    yajl_val greet = snap_json_get_object(doc, "QMP");
    yajl_val ver = snap_json_get_object(snap_json_get_object(greet, "version"), "qemu");
    long long major = 0, minor = 0, micro = 0;
    if (!ver || !snap_json_get_int(ver, "major", &major) ||
        !snap_json_get_int(ver, "minor", &minor)) {
        snap_err_set(err, SNAP_ERROR_PROTOCOL, "%s: not a QMP greeting: %.*s", q->s.peer,
                     QMP_QUOTE_MAX, line);
        yajl_tree_free(doc);
        free(line);
        return err->code;
    }
    snap_json_get_int(ver, "micro", &micro);
    q->major = (int)major;
    q->minor = (int)minor;
    q->micro = (int)micro;
    const char *pkg =
        snap_json_get_string(snap_json_get_object(greet, "version"), "package");
    q->package = snap_xstrdup(pkg ? pkg : "");
    yajl_tree_free(doc);
    free(line);
    return 0;
}

int snap_qmp_connect(const char *path, int timeout_ms, snap_qmp **qmp_out, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    int fd;
    *qmp_out = NULL;
    snap_trace("qmp-connect");
    int rc = snap_unix_connect(path, timeout_ms, &fd, err);
    if (rc)
        return snap_err_context(err, "QMP");
    snap_qmp *q = snap_xcalloc(1, sizeof *q);
    char peer[300];
    snprintf(peer, sizeof peer, "QMP %s", path);
    snprintf(q->path, sizeof q->path, "%s", path);
    snap_stream_init(&q->s, fd, peer, SNAP_QMP_MAX_REPLY);
    rc = qmp_read_greeting(q, deadline, timeout_ms, err);
    if (!rc)
        rc = snap_qmp_execute(q, "qmp_capabilities", NULL, NULL, NULL,
                              snap_deadline_poll_ms(deadline), err);
    if (rc) {
        snap_qmp_close(q);
        return rc;
    }
    snap_trace("qmp-ready"); /* greeting read, capabilities negotiated */
    *qmp_out = q;
    return 0;
}

void snap_qmp_close(snap_qmp *q)
{
    if (!q)
        return;
    snap_stream_close(&q->s);
    while (q->ev_head)
        snap_qmp_event_free(snap_qmp_next_event(q));
    free(q->package);
    free(q);
}

void snap_qmp_set_logger(snap_qmp *q, xentoollog_logger *lg)
{
    q->lg = lg;
}

void snap_qmp_version(const snap_qmp *q, int *major, int *minor, int *micro)
{
    if (major)
        *major = q->major;
    if (minor)
        *minor = q->minor;
    if (micro)
        *micro = q->micro;
}

const char *snap_qmp_package(const snap_qmp *q)
{
    return q->package;
}

bool snap_qmp_version_at_least(const snap_qmp *q, int major, int minor)
{
    return q->major > major || (q->major == major && q->minor >= minor);
}

int snap_qmp_peer_pid(const snap_qmp *q, pid_t *pid_out, snap_err *err)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(q->s.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "%s: SO_PEERCRED", q->s.peer);
    *pid_out = cred.pid;
    return 0;
}
