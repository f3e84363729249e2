/* A QMP peer that refuses one command and forwards the rest; see th_qmp_proxy.h. */
#include "th_qmp_proxy.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "snap_json.h"
#include "th.h"

#define MAX_FDS 8

struct th_qmp_proxy {
    char path[4096], real[4200];
    char *refuse, *desc;
    int listen_fd, stop[2];
    pthread_t thread;
    atomic_int refused;
};

typedef struct proxy_link {
    int client, qemu;
    char *cbuf, *qbuf; /* bytes not yet forwarded, up to a newline */
    size_t clen, qlen;
    int fds[MAX_FDS]; /* received from the client, for the next line to QEMU */
    size_t nfds;
} proxy_link;

/* One line to QEMU, with the descriptors the client passed before it. */
static bool send_line(proxy_link *l, const char *line, size_t n)
{
    struct iovec iov = {(void *)line, n};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (l->nfds) {
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * l->nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * l->nfds);
        memcpy(CMSG_DATA(c), l->fds, sizeof(int) * l->nfds);
    }
    ssize_t w = sendmsg(l->qemu, &msg, MSG_NOSIGNAL);
    for (size_t i = 0; i < l->nfds; i++)
        close(l->fds[i]);
    l->nfds = 0;
    if (w <= 0)
        return false;
    return (size_t)w == n || th_write_all(l->qemu, line + w, n - (size_t)w);
}

/* The refused command's reply, with the request's id; true when line is that command. */
static bool refuse_line(th_qmp_proxy *p, proxy_link *l, const char *line, size_t n)
{
    char *text = strndup(line, n);
    char ebuf[64];
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof ebuf);
    const char *cmd = snap_json_get_string(v, "execute");
    bool hit = cmd && !strcmp(cmd, p->refuse);
    if (hit) {
        const char *id = snap_json_get_string(v, "id");
        char *reply =
            snap_xasprintf("{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}, "
                           "\"id\": \"%s\"}\r\n",
                           p->desc, id ? id : "");
        th_write_all(l->client, reply, strlen(reply));
        free(reply);
        for (size_t i = 0; i < l->nfds; i++)
            close(l->fds[i]);
        l->nfds = 0;
        atomic_fetch_add(&p->refused, 1);
    }
    yajl_tree_free(v);
    free(text);
    return hit;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, data, n);
    *len += n;
}

/* Client -> QEMU: whole lines, fds attached; false when the client left. */
static bool from_client(th_qmp_proxy *p, proxy_link *l)
{
    char data[65536];
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {data, sizeof data};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(l->client, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (l->nfds < MAX_FDS)
                    l->fds[l->nfds++] = fd;
                else
                    close(fd);
            }
    append(&l->cbuf, &l->clen, data, (size_t)n);
    char *nl;
    while ((nl = memchr(l->cbuf, '\n', l->clen))) {
        size_t len = (size_t)(nl - l->cbuf) + 1;
        if (!refuse_line(p, l, l->cbuf, len) && !send_line(l, l->cbuf, len))
            return false;
        memmove(l->cbuf, l->cbuf + len, l->clen - len);
        l->clen -= len;
    }
    return true;
}

/* QEMU -> client: whole lines, so that a refusal never lands inside one. */
static bool from_qemu(proxy_link *l)
{
    char data[65536];
    ssize_t n = read(l->qemu, data, sizeof data);
    if (n <= 0)
        return false;
    append(&l->qbuf, &l->qlen, data, (size_t)n);
    char *nl = NULL;
    for (char *s = l->qbuf; s < l->qbuf + l->qlen; s++)
        if (*s == '\n')
            nl = s;
    if (!nl)
        return true;
    size_t len = (size_t)(nl - l->qbuf) + 1;
    bool ok = th_write_all(l->client, l->qbuf, len);
    memmove(l->qbuf, l->qbuf + len, l->qlen - len);
    l->qlen -= len;
    return ok;
}

static bool set_sun_path(struct sockaddr_un *a, const char *path)
{
    size_t n = strlen(path);
    if (n >= sizeof a->sun_path)
        return false;
    memcpy(a->sun_path, path, n + 1);
    return true;
}

static int connect_real(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (!set_sun_path(&a, path))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Serves one client until either side leaves; false when asked to stop. */
static bool serve(th_qmp_proxy *p, int client)
{
    proxy_link l = {.client = client, .qemu = connect_real(p->real)};
    bool go_on = true;
    while (l.qemu >= 0) {
        struct pollfd pf[3] = {
            {client, POLLIN, 0}, {l.qemu, POLLIN, 0}, {p->stop[0], POLLIN, 0}};
        if (poll(pf, 3, -1) < 0 && errno != EINTR)
            break;
        if (pf[2].revents) {
            go_on = false;
            break;
        }
        if ((pf[0].revents && !from_client(p, &l)) || (pf[1].revents && !from_qemu(&l)))
            break;
    }
    for (size_t i = 0; i < l.nfds; i++)
        close(l.fds[i]);
    if (l.qemu >= 0)
        close(l.qemu);
    close(client);
    free(l.cbuf);
    free(l.qbuf);
    return go_on;
}

static void *proxy_main(void *arg)
{
    th_qmp_proxy *p = arg;
    for (;;) {
        struct pollfd pf[2] = {{p->listen_fd, POLLIN, 0}, {p->stop[0], POLLIN, 0}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (pf[1].revents)
            return NULL;
        int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0 && !serve(p, c))
            return NULL;
    }
}

th_qmp_proxy *th_qmp_proxy_start(const char *path, const char *refuse, const char *desc)
{
    th_qmp_proxy *p = calloc(1, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    snprintf(p->real, sizeof p->real, "%s.real", path);
    p->refuse = strdup(refuse);
    p->desc = strdup(desc);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (!set_sun_path(&a, path) || strlen(p->real) >= sizeof a.sun_path) {
        th_note("proxy: %s is too long for a socket", path);
        goto fail;
    }
    if (rename(path, p->real) != 0) {
        th_note("proxy: moving %s aside: %s", path, strerror(errno));
        goto fail;
    }
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->listen_fd, 4) != 0 || pipe(p->stop) != 0 ||
        pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        th_note("proxy on %s: %s", path, strerror(errno));
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        unlink(path);
        rename(p->real, path);
        goto fail;
    }
    return p;
fail:
    free(p->refuse);
    free(p->desc);
    free(p);
    return NULL;
}

int th_qmp_proxy_refused(th_qmp_proxy *p)
{
    return atomic_load(&p->refused);
}

void th_qmp_proxy_stop(th_qmp_proxy *p)
{
    if (!p)
        return;
    if (write(p->stop[1], "x", 1) != 1)
        th_note("proxy: cannot signal its thread");
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
    close(p->stop[0]);
    close(p->stop[1]);
    unlink(p->path);
    if (rename(p->real, p->path) != 0)
        th_note("proxy: moving %s back: %s", p->real, strerror(errno));
    free(p->refuse);
    free(p->desc);
    free(p);
}
