/* The scripted QMP/agent peer of the wire fuzzers; see fuzz_peer.h. */
#include "fuzz_peer.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* How long the peer waits for a request before sending the next segment. */
#define PEER_IDLE_MS 5
/* How long it waits for the client to close once the script has run out. */
#define PEER_LINGER_MS 3000

struct fuzz_peer {
    char dir[64];
    char path[128];
    int listen_fd;
    pthread_t thread;
    const uint8_t *data;
    size_t len, off;
    bool greet, out_closed;
    char last_id[128];
    char rbuf[1 << 16];
    size_t rlen;
};

static fuzz_peer *the_peer;

static void peer_cleanup(void)
{
    if (!the_peer)
        return;
    close(the_peer->listen_fd);
    unlink(the_peer->path);
    rmdir(the_peer->dir);
}

fuzz_peer *fuzz_peer_new(void)
{
    fuzz_peer *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    snprintf(p->dir, sizeof p->dir, "/tmp/xlsnap-fuzz.XXXXXX");
    if (!mkdtemp(p->dir))
        abort();
    snprintf(p->path, sizeof p->path, "%s/peer.sock", p->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p->path);
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(p->listen_fd, 4) != 0)
        abort();
    the_peer = p;
    atexit(peer_cleanup);
    return p;
}

const char *fuzz_peer_path(const fuzz_peer *p)
{
    return p->path;
}

/* Sends text with every "@ID@" replaced by the last request's id token. */
static void peer_send_substituted(fuzz_peer *p, int fd, const uint8_t *seg, size_t n)
{
    size_t idlen = strlen(p->last_id);
    char *out = malloc(n * (idlen > 4 ? idlen : 4) / 4 + 2);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 4 && memcmp(seg + i, "@ID@", 4) == 0) {
            memcpy(out + o, p->last_id, idlen);
            o += idlen;
            i += 4;
        } else {
            out[o++] = (char)seg[i++];
        }
    }
    if (o && send(fd, out, o, MSG_NOSIGNAL) < 0)
        p->out_closed = true;
    free(out);
}

/* Sends the next segment (each ends with the '\n' of its separator). */
static void peer_send_next(fuzz_peer *p, int fd)
{
    const uint8_t *start = p->data + p->off;
    size_t left = p->len - p->off;
    const uint8_t *sep = memmem(start, left, "\n\n", 2);
    size_t n = sep ? (size_t)(sep - start) + 1 : left;
    peer_send_substituted(p, fd, start, n);
    p->off += sep ? n + 1 : n;
}

/* Remembers the JSON token after "id": in a request line (string or number). */
static void peer_note_id(fuzz_peer *p, const char *line, size_t len)
{
    const char *k = memmem(line, len, "\"id\":", 5);
    if (!k)
        return;
    const char *v = k + 5, *end = line + len, *e = v;
    if (e < end && *e == '"') {
        const char *q = memchr(e + 1, '"', (size_t)(end - e - 1));
        e = q ? q + 1 : end;
    } else {
        while (e < end && (*e == '-' || (*e >= '0' && *e <= '9')))
            e++;
    }
    size_t n =
        (size_t)(e - v) < sizeof p->last_id - 1 ? (size_t)(e - v) : sizeof p->last_id - 1;
    memcpy(p->last_id, v, n);
    p->last_id[n] = '\0';
}

/* Answers every complete request line buffered; false when the client left. */
static bool peer_read_requests(fuzz_peer *p, int fd)
{
    ssize_t r = read(fd, p->rbuf + p->rlen, sizeof p->rbuf - p->rlen);
    if (r <= 0)
        return false;
    p->rlen += (size_t)r;
    char *nl;
    while ((nl = memchr(p->rbuf, '\n', p->rlen))) {
        size_t n = (size_t)(nl - p->rbuf) + 1;
        peer_note_id(p, p->rbuf, n);
        if (!p->out_closed && p->off < p->len)
            peer_send_next(p, fd);
        memmove(p->rbuf, p->rbuf + n, p->rlen - n);
        p->rlen -= n;
    }
    if (p->rlen == sizeof p->rbuf) /* a request without end: forget it */
        p->rlen = 0;
    return true;
}

static void peer_serve(fuzz_peer *p, int fd)
{
    if (p->greet)
        peer_send_next(p, fd);
    for (;;) {
        if (!p->out_closed && p->off >= p->len) {
            shutdown(fd, SHUT_WR);
            p->out_closed = true;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int n = poll(&pf, 1, p->out_closed ? PEER_LINGER_MS : PEER_IDLE_MS);
        if (n < 0)
            break;
        if (n == 0) {
            if (p->out_closed)
                break;
            peer_send_next(p, fd);
            continue;
        }
        if (!peer_read_requests(p, fd))
            break;
    }
}

static void *peer_main(void *arg)
{
    fuzz_peer *p = arg;
    struct pollfd pf = {.fd = p->listen_fd, .events = POLLIN};
    if (poll(&pf, 1, PEER_LINGER_MS) != 1)
        return NULL; /* the client never connected */
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return NULL;
    peer_serve(p, fd);
    close(fd);
    return NULL;
}

void fuzz_peer_start(fuzz_peer *p, const uint8_t *data, size_t len, bool greet)
{
    p->data = data;
    p->len = len;
    p->off = 0;
    p->greet = greet;
    p->out_closed = false;
    p->rlen = 0;
    snprintf(p->last_id, sizeof p->last_id, "0");
    if (pthread_create(&p->thread, NULL, peer_main, p) != 0)
        abort();
}

void fuzz_peer_join(fuzz_peer *p)
{
    pthread_join(p->thread, NULL);
}
