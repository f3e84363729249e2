/* Connection: clients, framing, output queues, the poll loop. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "ops.h"
#include "watch.h"

/* A client that stops reading may not make us hoard memory without bound. */
#define OUT_BACKLOG_MAX (64u << 20)
#define READ_CHUNK      65536

static struct xsd_conn *conns;
static unsigned int next_conn_id = 1;

struct xsd_conn *xsd_conn_list(void)
{
    return conns;
}

static void queue_msg(struct xsd_conn *c, struct xsd_msg *m)
{
    if (!m) {
        xsd_log("connection %u: out of memory queueing a reply", c->id);
        return;
    }
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
    c->out_bytes += m->size;
}

void xsd_reply(struct xsd_conn *c, const struct xsd_req *in, uint32_t type,
               const void *data, unsigned int len)
{
    if (len > XENSTORE_PAYLOAD_MAX) {
        xsd_reply_error(c, in, E2BIG);
        return;
    }
    queue_msg(c, xsd_msg_new(type, in->hdr.req_id, in->hdr.tx_id, data, len));
}

void xsd_reply_ok(struct xsd_conn *c, const struct xsd_req *in)
{
    xsd_reply(c, in, in->hdr.type, "OK", sizeof("OK"));
}

void xsd_reply_error(struct xsd_conn *c, const struct xsd_req *in, int err)
{
    const char *name = xsd_errno_name(err);
    xsd_reply(c, in, XS_ERROR, name, (unsigned int)strlen(name) + 1);
}

static bool event_pending(const struct xsd_conn *c, const char *payload, unsigned int len)
{
    for (const struct xsd_msg *m = c->out_head; m; m = m->next)
        /* A partly written message no longer counts as pending. */
        if (m->watch_event && m->size == XSD_HDR_LEN + len &&
            !(m == c->out_head && c->out_off) &&
            !memcmp(xsd_msg_payload(m), payload, len))
            return true;
    return false;
}

void xsd_send_event(struct xsd_conn *c, const char *path, const char *token)
{
    size_t plen = strlen(path) + 1, len = plen + strlen(token) + 1;
    if (len > XENSTORE_PAYLOAD_MAX)
        return; /* as upstream: over-long events are not sent */
    char *payload = malloc(len);
    if (!payload)
        return;
    memcpy(payload, path, plen);
    memcpy(payload + plen, token, len - plen);
    /* Upstream drops an event identical to one still queued (not for @special). */
    if (path[0] == '@' || !event_pending(c, payload, (unsigned int)len))
        queue_msg(c, xsd_msg_new(XS_WATCH_EVENT, 0, 0, payload, (unsigned int)len));
    free(payload);
}

static void conn_free(struct xsd_conn *c)
{
    xsd_watch_clear(c);
    xsd_txn_clear_all(c);
    while (c->out_head) {
        struct xsd_msg *m = c->out_head;
        c->out_head = m->next;
        free(m);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c->ibuf);
    free(c);
}

static void conn_drop(struct xsd_conn *c)
{
    for (struct xsd_conn **cp = &conns; *cp; cp = &(*cp)->next)
        if (*cp == c) {
            *cp = c->next;
            break;
        }
    conn_free(c);
}

void xsd_conn_close_all(void)
{
    while (conns)
        conn_drop(conns);
}

static void accept_clients(int listen_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                xsd_log("accept: %s", strerror(errno));
            return;
        }
        struct xsd_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            xsd_log("out of memory accepting a client");
            close(fd);
            continue;
        }
        c->fd = fd;
        c->id = next_conn_id++;
        c->next_txn_id = 1;
        c->next = conns;
        conns = c;
    }
}

/* Processes every complete message in c's input; false when c must be dropped. */
static bool process_input(struct xsd_conn *c)
{
    size_t off = 0;
    while (c->ilen - off >= XSD_HDR_LEN) {
        struct xsd_req in;
        memcpy(&in.hdr, c->ibuf + off, XSD_HDR_LEN);
        if (in.hdr.len > XENSTORE_PAYLOAD_MAX) {
            xsd_log("connection %u: %s with payload length %u > %u: dropping it", c->id,
                    xsd_type_name(in.hdr.type), in.hdr.len, XENSTORE_PAYLOAD_MAX);
            return false;
        }
        if (c->ilen - off - XSD_HDR_LEN < in.hdr.len)
            break;
        in.buf = c->ibuf + off + XSD_HDR_LEN;
        in.used = in.hdr.len;
        xsd_process(c, &in);
        off += XSD_HDR_LEN + in.hdr.len;
    }
    memmove(c->ibuf, c->ibuf + off, c->ilen - off);
    c->ilen -= off;
    return true;
}

/* Reads what is available; false when c is closed or broken. */
static bool read_input(struct xsd_conn *c)
{
    if (c->icap - c->ilen < READ_CHUNK) {
        char *b = realloc(c->ibuf, c->ilen + READ_CHUNK);
        if (!b) {
            xsd_log("connection %u: out of memory reading", c->id);
            return false;
        }
        c->ibuf = b;
        c->icap = c->ilen + READ_CHUNK;
    }
    ssize_t n = read(c->fd, c->ibuf + c->ilen, c->icap - c->ilen);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0) {
        if (c->ilen)
            xsd_log("connection %u closed in the middle of a message", c->id);
        return false;
    }
    c->ilen += (size_t)n;
    return process_input(c);
}

/* Writes queued output; false when c is broken. */
static bool flush_output(struct xsd_conn *c)
{
    while (c->out_head) {
        struct xsd_msg *m = c->out_head;
        ssize_t n =
            send(c->fd, m->bytes + c->out_off, m->size - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->out_off += (size_t)n;
        if (c->out_off < m->size)
            continue;
        c->out_head = m->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->out_bytes -= m->size;
        c->out_off = 0;
        free(m);
    }
    return true;
}

static void flush_all(void)
{
    struct xsd_conn *c = conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (!flush_output(c)) {
            conn_drop(c);
        } else if (c->out_bytes > OUT_BACKLOG_MAX) {
            xsd_log(
                "connection %u does not read its replies (%zu bytes queued): dropping it",
                c->id, c->out_bytes);
            conn_drop(c);
        }
    }
}

/* Fills pfd (listener first); returns the count, or 0 on out of memory. */
static size_t build_pollfds(int listen_fd, struct pollfd **pfd, size_t *cap)
{
    size_t n = 1;
    for (struct xsd_conn *c = conns; c; c = c->next)
        n++;
    if (n > *cap) {
        struct pollfd *p = realloc(*pfd, n * sizeof(*p));
        if (!p)
            return 0;
        *pfd = p;
        *cap = n;
    }
    (*pfd)[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    n = 1;
    for (struct xsd_conn *c = conns; c; c = c->next, n++)
        (*pfd)[n] =
            (struct pollfd){.fd = c->fd, .events = POLLIN | (c->out_head ? POLLOUT : 0)};
    return n;
}

static void handle_events(const struct pollfd *pfd, size_t n)
{
    /* pfd[1..n) follow the connection list, which only shrinks in here. */
    struct xsd_conn *c = conns, *next;
    for (size_t i = 1; i < n && c; i++, c = next) {
        next = c->next;
        if (!pfd[i].revents)
            continue;
        bool ok = true;
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
            ok = read_input(c);
        if (ok && (pfd[i].revents & POLLOUT))
            ok = flush_output(c);
        if (!ok)
            conn_drop(c);
    }
}

int xsd_serve(int listen_fd, volatile sig_atomic_t *stop, const sigset_t *wait_mask)
{
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    while (!*stop) {
        size_t n = build_pollfds(listen_fd, &pfd, &cap);
        if (!n) {
            xsd_log("out of memory building the poll set");
            free(pfd);
            return -1;
        }
        if (ppoll(pfd, n, NULL, wait_mask) < 0) {
            if (errno == EINTR)
                continue;
            xsd_log("poll: %s", strerror(errno));
            free(pfd);
            return -1;
        }
        handle_events(pfd, n);
        if (pfd[0].revents & POLLIN)
            accept_clients(listen_fd);
        flush_all();
    }
    free(pfd);
    return 0;
}
