/*
 * XLSNAP_TRACE: where a command's time goes (snap_trace.c). The lowest
 * layer of libsnap: any file may stamp an event, and this one calls none.
 */
#ifndef SNAP_TRACE_H
#define SNAP_TRACE_H

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

#endif
