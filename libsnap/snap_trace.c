/*
 * XLSNAP_TRACE (see snap_trace.h): events stamped in memory, written to the
 * file after the frozen window and at exit, so that no I/O happens inside
 * the window. Only the process that first traced writes (not the helpers
 * it spawns, such as the freeze watchdog).
 */
#include "snap_trace.h"

#include <fcntl.h>
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

/* The events after the window's flush (records, journal, exit) at exit. */
static void trace_at_exit(void)
{
    snap_trace("exit");
    snap_trace_flush();
}

void snap_trace(const char *event)
{
    static int enabled = -1;
    if (enabled < 0) {
        /* One process traces: not the helpers it spawns (the watchdog). */
        const char *owner = getenv("XLSNAP_TRACE_PID");
        enabled = getenv("XLSNAP_TRACE") && (!owner || atol(owner) == getpid());
        if (enabled) {
            char pid[24];
            snprintf(pid, sizeof pid, "%ld", (long)getpid());
            setenv("XLSNAP_TRACE_PID", pid, 1);
            atexit(trace_at_exit);
        }
    }
    if (!enabled)
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

/* XLSNAP_TRACE: the process's start-up (exec, dynamic loading) ends here. */
__attribute__((constructor)) static void trace_library_loaded(void)
{
    snap_trace("lib-loaded");
}
