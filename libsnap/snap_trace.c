/*
 * XLSNAP_TRACE (see snap_trace.h): events stamped in memory, written to the
 * file after the frozen window and at exit, so that no I/O happens inside
 * the window. Only the process that first traced writes (not the helpers
 * it spawns, such as the freeze watchdog).
 */
#include "snap_trace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct {
    const char *event; /* a string literal */
    uint64_t ns;
} trace_events[256];
static size_t trace_n;

static int trace_enabled = -1; /* -1: not decided yet (trace_on) */

/* The events after the window's flush (records, journal, exit) at exit. */
static void trace_at_exit(void)
{
    snap_trace("exit");
    snap_trace_flush();
}

/* Whether this process traces, decided once (a group's threads may ask). */
static bool trace_on(void)
{
    int enabled = __atomic_load_n(&trace_enabled, __ATOMIC_ACQUIRE);
    if (enabled >= 0)
        return enabled;
    /* One process traces: not the helpers it spawns (the watchdog). */
    const char *owner = getenv("XLSNAP_TRACE_PID");
    enabled = getenv("XLSNAP_TRACE") && (!owner || atol(owner) == getpid());
    if (enabled) {
        char pid[24];
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        setenv("XLSNAP_TRACE_PID", pid, 1);
        atexit(trace_at_exit);
    }
    __atomic_store_n(&trace_enabled, enabled, __ATOMIC_RELEASE);
    return enabled;
}

void snap_trace(const char *event)
{
    if (!trace_on())
        return;
    /* A group's members stamp events from threads of their own (snap_group.c). */
    size_t i = __atomic_fetch_add(&trace_n, 1, __ATOMIC_RELAXED);
    if (i >= sizeof trace_events / sizeof trace_events[0]) {
        __atomic_fetch_sub(&trace_n, 1, __ATOMIC_RELAXED);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    trace_events[i].event = event;
    trace_events[i].ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void snap_trace_flush(void)
{
    const char *path = getenv("XLSNAP_TRACE");
    int fd = path && trace_n ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)
                             : -1;
    for (size_t i = 0; fd >= 0 && i < trace_n; i++)
        dprintf(fd, "%s %llu\n", trace_events[i].event,
                (unsigned long long)trace_events[i].ns);
    if (fd >= 0)
        close(fd);
    trace_n = 0;
}

struct snap_trace_watch {
    pthread_t thread;
    int fd, stop[2]; /* stop: a pipe whose write end ends the wait */
    const char *event;
    bool stamped; /* by the thread; read after the join */
};

static void *trace_watch_run(void *opaque)
{
    snap_trace_watch *w = opaque;
    struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN},
                          {.fd = w->stop[0], .events = POLLIN}};
    int n;
    do
        n = poll(p, 2, -1);
    while (n < 0);
    if (p[0].revents) { /* also when told to stop as the answer came: it came */
        snap_trace(w->event);
        w->stamped = true;
    }
    return NULL;
}

snap_trace_watch *snap_trace_when_readable(int fd, const char *event)
{
    if (!trace_on() || fd < 0)
        return NULL;
    snap_trace_watch *w = calloc(1, sizeof *w);
    if (!w || pipe2(w->stop, O_CLOEXEC)) {
        free(w);
        return NULL;
    }
    w->fd = fd;
    w->event = event;
    if (pthread_create(&w->thread, NULL, trace_watch_run, w)) {
        close(w->stop[0]);
        close(w->stop[1]);
        free(w);
        return NULL;
    }
    return w;
}

void snap_trace_watch_end(snap_trace_watch *w, bool arrived)
{
    if (!w)
        return;
    while (write(w->stop[1], "", 1) < 0 && errno == EINTR)
        ;
    pthread_join(w->thread, NULL);
    if (arrived && !w->stamped)
        snap_trace(w->event);
    close(w->stop[0]);
    close(w->stop[1]);
    free(w);
}

/* XLSNAP_TRACE: the process's start-up (exec, dynamic loading) ends here. */
__attribute__((constructor)) static void trace_library_loaded(void)
{
    snap_trace("lib-loaded");
}
