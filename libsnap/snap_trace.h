/*
 * XLSNAP_TRACE: where a command's time goes (snap_trace.c). The lowest
 * layer of libsnap: any file may stamp an event, and this one calls none.
 */
#ifndef SNAP_TRACE_H
#define SNAP_TRACE_H

#include <stdbool.h>

/*
 * Opt-in timing trace of the freeze window (for `make bench`): with
 * XLSNAP_TRACE=<file> set, snap_trace stamps an event (freeze-sent,
 * freeze-replied, tx-sent, tx-replied, thaw-sent, thaw-replied) in memory,
 * CLOCK_MONOTONIC nanoseconds; snap_trace_flush appends "<event> <ns>" lines
 * to the file once the window is over, so no I/O happens inside it. Beyond
 * the window, the phases of a whole command: lib-loaded, ctx-alloc, plan,
 * QMP and xenstore connects, the watchdog, journal and record writes, xenstore
 * transactions and exit (flushed at exit); an event may repeat.
 */
void snap_trace(const char *event);
void snap_trace_flush(void);

/*
 * Stamps EVENT when FD first has something to read, however busy the caller
 * is then: a thread polls FD until then (the guest agent's first answer on
 * a fresh connection, which xlsnap reads only later). NULL when tracing is
 * off. snap_trace_watch_end stops the thread and frees the watch (NULL: no
 * effect); call it before FD is closed. ARRIVED: the caller has read what
 * arrived; the event is stamped now if the thread, not scheduled in time,
 * did not see it (the caller was then blocked reading, so now is when).
 */
typedef struct snap_trace_watch snap_trace_watch;
snap_trace_watch *snap_trace_when_readable(int fd, const char *event);
void snap_trace_watch_end(snap_trace_watch *w, bool arrived);

#endif
