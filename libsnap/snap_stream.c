/* Deadline-bounded line stream over a unix socket; see snap_stream.h. */
#include "snap_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int snap_unix_connect(const char *path, int timeout_ms, int *fd_out, snap_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return snap_err_set(err, SNAP_ERROR_INVAL, "socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        *fd_out = fd;
        return 0;
    }
    int e = errno;
    if (e == EAGAIN || e == EINPROGRESS) {
        /* Listener's backlog is full: wait for it to accept. */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r = poll(&p, 1, timeout_ms);
        socklen_t sl = sizeof e;
        if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == 0 && e == 0) {
            *fd_out = fd;
            return 0;
        }
        close(fd);
        if (r == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                "connect to %s: no answer within %d ms", path,
                                timeout_ms);
        return snap_err_errno(err, SNAP_ERROR_IO, e, "connect to %s", path);
    }
    close(fd);
    return snap_err_errno(
        err, e == ENOENT || e == ECONNREFUSED ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO, e,
        "connect to %s", path);
}

void snap_stream_init(snap_stream *s, int fd, const char *peer, size_t max_line)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->max_line = max_line;
    snprintf(s->peer, sizeof s->peer, "%s", peer ? peer : "peer");
}

void snap_stream_close(snap_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

int snap_stream_write_all(snap_stream *s, const void *data, size_t len, uint64_t deadline,
                          snap_err *err)
{
    const char *p = data;
    if (s->fd < 0)
        return snap_err_set(err, SNAP_ERROR_CLOSED, "%s: connection is closed", s->peer);
    while (len > 0) {
        ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* The peer went away (QEMU or the agent died): say it in words. */
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            return snap_err_errno(err, SNAP_ERROR_CLOSED, errno,
                                  "%s closed the connection (write)", s->peer);
        if (n < 0 && errno != EAGAIN)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "%s: write", s->peer);
        struct pollfd pf = {.fd = s->fd, .events = POLLOUT};
        int r = poll(&pf, 1, snap_deadline_poll_ms(deadline));
        if (r == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                "%s: timed out writing a request", s->peer);
        if (r < 0 && errno != EINTR)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "%s: poll", s->peer);
    }
    return 0;
}

bool snap_stream_has_line(const snap_stream *s)
{
    return s->len > 0 && memchr(s->buf, '\n', s->len) != NULL;
}

/* Moves the first line (through '\n') out of the buffer. */
static void snap_stream_take_line(snap_stream *s, size_t nl, char **line_out,
                                  size_t *len_out)
{
    size_t l = nl;
    if (l > 0 && s->buf[l - 1] == '\r')
        l--;
    char *line = snap_xmalloc(l + 1);
    memcpy(line, s->buf, l);
    line[l] = '\0';
    memmove(s->buf, s->buf + nl + 1, s->len - nl - 1);
    s->len -= nl + 1;
    *line_out = line;
    if (len_out)
        *len_out = l;
}

/* Receives more bytes into the buffer; 0 on data, or an error code. */
static int snap_stream_fill(snap_stream *s, uint64_t deadline, snap_err *err)
{
    for (;;) {
        if (s->cap - s->len < 4096) {
            size_t ncap = s->cap ? s->cap * 2 : 8192;
            s->buf = snap_xrealloc(s->buf, ncap);
            s->cap = ncap;
        }
        ssize_t n = recv(s->fd, s->buf + s->len, s->cap - s->len, 0);
        if (n > 0) {
            s->len += (size_t)n;
            return 0;
        }
        if (n == 0)
            return snap_err_set(err, SNAP_ERROR_CLOSED, "%s closed the connection%s",
                                s->peer, s->len ? " in the middle of a line" : "");
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return snap_err_set(err, SNAP_ERROR_CLOSED, "%s reset the connection",
                                s->peer);
        if (errno != EAGAIN)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "%s: read", s->peer);
        struct pollfd pf = {.fd = s->fd, .events = POLLIN};
        int r = poll(&pf, 1, snap_deadline_poll_ms(deadline));
        if (r == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT, "%s did not answer in time",
                                s->peer);
        if (r < 0 && errno != EINTR)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "%s: poll", s->peer);
    }
}

/*
 * Drops buffered bytes of an over-long line up to and including its '\n'.
 * Returns true when the line's end was found (complete lines after it stay).
 */
static bool snap_stream_skip_long_line(snap_stream *s)
{
    char *nl = s->len ? memchr(s->buf, '\n', s->len) : NULL;
    if (!nl) {
        s->len = 0;
        return false;
    }
    size_t drop = (size_t)(nl - s->buf) + 1;
    memmove(s->buf, s->buf + drop, s->len - drop);
    s->len -= drop;
    s->skipping = false;
    return true;
}

int snap_stream_read_line(snap_stream *s, char **line_out, size_t *len_out,
                          uint64_t deadline, snap_err *err)
{
    size_t scanned = 0;
    *line_out = NULL;
    if (s->fd < 0)
        return snap_err_set(err, SNAP_ERROR_CLOSED, "%s: connection is closed", s->peer);
    for (;;) {
        if (s->skipping && !snap_stream_skip_long_line(s)) {
            int rc = snap_stream_fill(s, deadline, err);
            if (rc)
                return rc;
            continue;
        }
        char *nl =
            s->len > scanned ? memchr(s->buf + scanned, '\n', s->len - scanned) : NULL;
        if (nl) {
            size_t at = (size_t)(nl - s->buf);
            if (at > s->max_line)
                break;
            snap_stream_take_line(s, at, line_out, len_out);
            return 0;
        }
        scanned = s->len;
        if (s->len > s->max_line)
            break;
        int rc = snap_stream_fill(s, deadline, err);
        if (rc)
            return rc;
    }
    s->skipping = true;
    snap_stream_skip_long_line(s);
    return snap_err_set(err, SNAP_ERROR_PROTOCOL, "%s sent a line longer than %zu bytes",
                        s->peer, s->max_line);
}
