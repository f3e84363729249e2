/* fake_peer — a scripted peer on a private unix socket; see fake_peer.h. */
#include "fake_peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "snap_json.h"
#include "th.h"

#define FP_ID_PLACEHOLDER "%ID%"

struct fake_peer {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int listen_fd, conn_fd;
    int stop_rd, stop_wr;
    fake_step *steps;
    size_t n_steps;
    pthread_t thread;
    bool running;

    /* Shared with the test thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t done;
    bool finished, failed;
    char error[1024];
    char **lines;
    size_t n_lines, cap_lines;
    int connections;

    /* Peer thread only. */
    char *in;
    size_t in_len, in_cap;
    char *id;   /* JSON text of the last captured id */
    bool quiet; /* after the script: failures are not the script's */
};

/* Result of a step: go on, fail (error set), or stop requested. */
enum { FP_OK = 0, FP_FAILED = -1, FP_STOPPED = 1, FP_READY = 2 };

static int fp_fail(fake_peer *fp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fp_fail(fake_peer *fp, const char *fmt, ...)
{
    va_list ap;
    if (fp->quiet)
        return FP_FAILED;
    pthread_mutex_lock(&fp->mu);
    va_start(ap, fmt);
    vsnprintf(fp->error, sizeof fp->error, fmt, ap);
    va_end(ap);
    fp->failed = true;
    pthread_mutex_unlock(&fp->mu);
    return FP_FAILED;
}

static uint64_t fp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Waits until fd is ready for events (fd -1: only sleeps), the stop pipe is
 * written, or ms elapse (-1: no limit). Returns FP_READY, 0 (timed out) or FP_STOPPED.
 */
static int fp_wait(fake_peer *fp, int fd, short events, int ms)
{
    uint64_t end = ms < 0 ? 0 : fp_now_ms() + (uint64_t)ms;
    for (;;) {
        struct pollfd p[2] = {{.fd = fp->stop_rd, .events = POLLIN},
                              {.fd = fd, .events = events}};
        int left = -1;
        if (ms >= 0) {
            uint64_t now = fp_now_ms();
            left = now >= end ? 0 : (int)(end - now);
        }
        int r = poll(p, fd >= 0 ? 2 : 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[0].revents)
            return FP_STOPPED;
        if (r == 0)
            return 0;
        return FP_READY;
    }
}

static void fp_close_conn(fake_peer *fp)
{
    if (fp->conn_fd >= 0)
        close(fp->conn_fd);
    fp->conn_fd = -1;
    fp->in_len = 0;
}

static int fp_accept(fake_peer *fp, int ms)
{
    fp_close_conn(fp);
    int r = fp_wait(fp, fp->listen_fd, POLLIN, ms);
    if (r == FP_STOPPED)
        return FP_STOPPED;
    if (r == 0)
        return fp_fail(fp, "no connection within %d ms", ms);
    fp->conn_fd = accept4(fp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fp->conn_fd < 0)
        return fp_fail(fp, "accept: %s", strerror(errno));
    pthread_mutex_lock(&fp->mu);
    fp->connections++;
    pthread_mutex_unlock(&fp->mu);
    return FP_OK;
}

static int fp_send_all(fake_peer *fp, const char *p, size_t len)
{
    if (fp->conn_fd < 0)
        return fp_fail(fp, "send: no connection");
    while (len > 0) {
        ssize_t n = send(fp->conn_fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return fp_fail(fp, "send: %s", strerror(errno));
        int r = fp_wait(fp, fp->conn_fd, POLLOUT, -1);
        if (r == FP_STOPPED)
            return FP_STOPPED;
    }
    return FP_OK;
}

/* Sends data with every "%ID%" replaced by the captured id. */
static int fp_send_step(fake_peer *fp, const fake_step *st)
{
    const char *id = fp->id ? fp->id : "null";
    const char *p = st->data, *end = st->data + st->len;
    while (p < end) {
        const char *hit =
            memmem(p, (size_t)(end - p), FP_ID_PLACEHOLDER, strlen(FP_ID_PLACEHOLDER));
        size_t chunk = hit ? (size_t)(hit - p) : (size_t)(end - p);
        int rc = fp_send_all(fp, p, chunk);
        if (rc == FP_OK && hit)
            rc = fp_send_all(fp, id, strlen(id));
        if (rc != FP_OK)
            return rc;
        p += chunk + (hit ? strlen(FP_ID_PLACEHOLDER) : 0);
    }
    return FP_OK;
}

static int fp_fill_step(fake_peer *fp, const fake_step *st)
{
    char block[65536];
    memset(block, st->data && st->data[0] ? st->data[0] : 'x', sizeof block);
    for (size_t left = st->len; left > 0;) {
        size_t n = left < sizeof block ? left : sizeof block;
        int rc = fp_send_all(fp, block, n);
        if (rc != FP_OK)
            return rc;
        left -= n;
    }
    return FP_OK;
}

/* Reads one line (malloc'd, without '\n') into *out; ms -1 waits until stopped. */
static int fp_read_line(fake_peer *fp, char **out, int ms)
{
    for (;;) {
        char *nl = fp->in_len ? memchr(fp->in, '\n', fp->in_len) : NULL;
        if (nl) {
            size_t l = (size_t)(nl - fp->in);
            *out = snap_xmalloc(l + 1);
            memcpy(*out, fp->in, l);
            (*out)[l] = '\0';
            memmove(fp->in, nl + 1, fp->in_len - l - 1);
            fp->in_len -= l + 1;
            return FP_OK;
        }
        if (fp->conn_fd < 0)
            return fp_fail(fp, "expected a line but there is no connection");
        int r = fp_wait(fp, fp->conn_fd, POLLIN, ms);
        if (r == FP_STOPPED)
            return FP_STOPPED;
        if (r == 0)
            return fp_fail(fp, "no line within %d ms", ms);
        if (fp->in_cap - fp->in_len < 4096) {
            fp->in_cap = fp->in_cap ? fp->in_cap * 2 : 8192;
            fp->in = snap_xrealloc(fp->in, fp->in_cap);
        }
        ssize_t n = recv(fp->conn_fd, fp->in + fp->in_len, fp->in_cap - fp->in_len, 0);
        if (n == 0)
            return fp_fail(fp, "the client closed the connection%s",
                           fp->in_len ? " in the middle of a line" : "");
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return fp_fail(fp, "recv: %s", strerror(errno));
        if (n > 0)
            fp->in_len += (size_t)n;
    }
}

static void fp_record_line(fake_peer *fp, char *line)
{
    pthread_mutex_lock(&fp->mu);
    if (fp->n_lines == fp->cap_lines) {
        fp->cap_lines = fp->cap_lines ? fp->cap_lines * 2 : 16;
        fp->lines = snap_xrealloc(fp->lines, fp->cap_lines * sizeof *fp->lines);
    }
    fp->lines[fp->n_lines++] = line;
    pthread_mutex_unlock(&fp->mu);
}

/* Remembers the JSON text of the line's "id" (or "arguments"."id"). */
static void fp_capture_id(fake_peer *fp, const char *line)
{
    while (*line == '\xff')
        line++;
    snap_err err;
    yajl_val v = snap_json_parse(line, "request", &err);
    if (!v)
        return;
    yajl_val id = snap_json_get(v, "id");
    if (!id)
        id = snap_json_get(snap_json_get_object(v, "arguments"), "id");
    if (id) {
        yajl_gen g = snap_json_gen_new(false);
        snap_json_tree(g, id);
        free(fp->id);
        fp->id = snap_json_gen_finish(g, NULL);
    }
    yajl_tree_free(v);
}

static int fp_expect_step(fake_peer *fp, size_t i, const fake_step *st)
{
    char *line = NULL;
    int rc = fp_read_line(fp, &line, st->ms > 0 ? st->ms : -1);
    if (rc != FP_OK)
        return rc;
    fp_record_line(fp, line);
    fp_capture_id(fp, line);
    if (st->data && !strstr(line, st->data))
        return fp_fail(fp, "step %zu: expected a line containing \"%s\", got \"%.200s\"",
                       i, st->data, line);
    return FP_OK;
}

static int fp_run_step(fake_peer *fp, size_t i)
{
    const fake_step *st = &fp->steps[i];
    switch (st->op) {
    case FAKE_OP_SEND: return fp_send_step(fp, st);
    case FAKE_OP_FILL: return fp_fill_step(fp, st);
    case FAKE_OP_EXPECT: return fp_expect_step(fp, i, st);
    case FAKE_OP_SLEEP:
        return fp_wait(fp, -1, 0, st->ms) == FP_STOPPED ? FP_STOPPED : FP_OK;
    case FAKE_OP_CLOSE: fp_close_conn(fp); return FP_OK;
    case FAKE_OP_ACCEPT: return fp_accept(fp, st->ms);
    }
    return fp_fail(fp, "step %zu: unknown op %d", i, (int)st->op);
}

/* After the script: keep the connection open, recording what arrives. */
static void fp_idle(fake_peer *fp)
{
    while (fp->conn_fd >= 0) {
        char *line = NULL;
        int r = fp_read_line(fp, &line, -1);
        if (r != FP_OK)
            break;
        fp_record_line(fp, line);
    }
    fp_wait(fp, -1, 0, -1);
}

static void *fp_thread(void *opaque)
{
    fake_peer *fp = opaque;
    int rc = fp_accept(fp, -1);
    for (size_t i = 0; rc == FP_OK && i < fp->n_steps; i++) {
        rc = fp_run_step(fp, i);
        if (rc == FP_OK) {
            pthread_mutex_lock(&fp->mu);
            fp->done = i + 1;
            pthread_mutex_unlock(&fp->mu);
        }
    }
    pthread_mutex_lock(&fp->mu);
    fp->finished = true;
    pthread_cond_broadcast(&fp->cv);
    pthread_mutex_unlock(&fp->mu);
    fp->quiet = true;
    if (rc == FP_OK)
        fp_idle(fp);
    fp_close_conn(fp);
    return NULL;
}

static fake_step *fp_copy_script(const fake_step *steps, size_t n)
{
    fake_step *copy = snap_xcalloc(n ? n : 1, sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        copy[i] = steps[i];
        if (steps[i].op == FAKE_OP_SEND && steps[i].len == 0)
            copy[i].len = strlen(steps[i].data);
        if (steps[i].data) {
            size_t l = steps[i].op == FAKE_OP_SEND ? copy[i].len : strlen(steps[i].data);
            char *d = snap_xmalloc(l + 1);
            memcpy(d, steps[i].data, l);
            d[l] = '\0';
            copy[i].data = d;
        }
    }
    return copy;
}

static int fp_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

fake_peer *fake_peer_start(const char *path, const fake_step *steps, size_t n)
{
    int pipefd[2];
    int lfd = fp_listen(path);
    if (lfd < 0) {
        th_fail_at(__FILE__, __LINE__, "fake_peer: listen on %s: %s", path,
                   strerror(errno));
        return NULL;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        th_fail_at(__FILE__, __LINE__, "fake_peer: pipe: %s", strerror(errno));
        close(lfd);
        return NULL;
    }
    fake_peer *fp = snap_xcalloc(1, sizeof *fp);
    snprintf(fp->path, sizeof fp->path, "%s", path);
    fp->listen_fd = lfd;
    fp->conn_fd = -1;
    fp->stop_rd = pipefd[0];
    fp->stop_wr = pipefd[1];
    fp->steps = fp_copy_script(steps, n);
    fp->n_steps = n;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&fp->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&fp->mu, NULL);
    if (pthread_create(&fp->thread, NULL, fp_thread, fp) != 0) {
        th_fail_at(__FILE__, __LINE__, "fake_peer: pthread_create failed");
        fake_peer_free(fp);
        return NULL;
    }
    fp->running = true;
    return fp;
}

bool fake_peer_wait(fake_peer *fp, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&fp->mu);
    while (!fp->finished && pthread_cond_timedwait(&fp->cv, &fp->mu, &ts) == 0)
        ;
    bool ok = fp->finished && !fp->failed && fp->done == fp->n_steps;
    pthread_mutex_unlock(&fp->mu);
    return ok;
}

void fake_peer_stop(fake_peer *fp)
{
    if (!fp->running)
        return;
    ssize_t w;
    do
        w = write(fp->stop_wr, "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(fp->thread, NULL);
    fp->running = false;
    if (fp->listen_fd >= 0)
        close(fp->listen_fd);
    fp->listen_fd = -1;
}

void fake_peer_free(fake_peer *fp)
{
    if (!fp)
        return;
    fake_peer_stop(fp);
    if (fp->listen_fd >= 0)
        close(fp->listen_fd);
    close(fp->stop_rd);
    close(fp->stop_wr);
    unlink(fp->path);
    for (size_t i = 0; i < fp->n_steps; i++)
        free((char *)fp->steps[i].data);
    free(fp->steps);
    for (size_t i = 0; i < fp->n_lines; i++)
        free(fp->lines[i]);
    free(fp->lines);
    free(fp->in);
    free(fp->id);
    pthread_mutex_destroy(&fp->mu);
    pthread_cond_destroy(&fp->cv);
    free(fp);
}

size_t fake_peer_steps_done(fake_peer *fp)
{
    pthread_mutex_lock(&fp->mu);
    size_t n = fp->done;
    pthread_mutex_unlock(&fp->mu);
    return n;
}

size_t fake_peer_n_received(fake_peer *fp)
{
    pthread_mutex_lock(&fp->mu);
    size_t n = fp->n_lines;
    pthread_mutex_unlock(&fp->mu);
    return n;
}

const char *fake_peer_received(fake_peer *fp, size_t i)
{
    pthread_mutex_lock(&fp->mu);
    const char *l = i < fp->n_lines ? fp->lines[i] : NULL;
    pthread_mutex_unlock(&fp->mu);
    return l;
}

size_t fake_peer_count_received(fake_peer *fp, const char *needle)
{
    size_t count = 0;
    pthread_mutex_lock(&fp->mu);
    for (size_t i = 0; i < fp->n_lines; i++)
        if (strstr(fp->lines[i], needle))
            count++;
    pthread_mutex_unlock(&fp->mu);
    return count;
}

int fake_peer_connections(fake_peer *fp)
{
    pthread_mutex_lock(&fp->mu);
    int n = fp->connections;
    pthread_mutex_unlock(&fp->mu);
    return n;
}

const char *fake_peer_error(fake_peer *fp)
{
    pthread_mutex_lock(&fp->mu);
    const char *e = fp->error;
    pthread_mutex_unlock(&fp->mu);
    return e;
}
