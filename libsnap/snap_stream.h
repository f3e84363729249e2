/*
 * A bounded, deadline-driven line stream over a connected socket: what both
 * QMP and qemu-ga speak (one JSON document per '\n'-terminated line).
 * Every read and write takes an absolute deadline (snap_deadline_in()) so no
 * peer can hang the caller; lines longer than max_line are a protocol error.
 */
#ifndef SNAP_STREAM_H
#define SNAP_STREAM_H

#include "snap_base.h"

typedef struct snap_stream {
    int fd;    /* -1 when closed */
    char *buf; /* bytes received but not yet returned */
    size_t len, cap;
    size_t max_line; /* longest acceptable line, in bytes */
    bool skipping;   /* dropping the rest of an over-long line */
    char peer[256];  /* for messages, e.g. "QMP /run/xen/qmp-libxl-3" */
} snap_stream;

/*
 * Connects to a unix socket, waiting at most timeout_ms for it to accept.
 * The fd is non-blocking and close-on-exec.
 */
int snap_unix_connect(const char *path, int timeout_ms, int *fd_out, snap_err *err);

/* Takes ownership of fd. peer names the other side in error messages. */
void snap_stream_init(snap_stream *s, int fd, const char *peer, size_t max_line);
void snap_stream_close(snap_stream *s);

int snap_stream_write_all(snap_stream *s, const void *data, size_t len, uint64_t deadline,
                          snap_err *err);

/*
 * Reads one line. On success *line_out is a malloc'd NUL-terminated string
 * without the '\n' (and without a trailing '\r'), *len_out its length.
 * Errors: SNAP_ERROR_TIMEDOUT (nothing consumed beyond what was buffered),
 * SNAP_ERROR_CLOSED (EOF or reset; a partial last line is reported),
 * SNAP_ERROR_PROTOCOL (line longer than max_line: that line is dropped, and
 * the next call skips what is left of it and returns the line after),
 * SNAP_ERROR_IO.
 */
int snap_stream_read_line(snap_stream *s, char **line_out, size_t *len_out,
                          uint64_t deadline, snap_err *err);

/* True when a complete line is already buffered (no system call). */
bool snap_stream_has_line(const snap_stream *s);

#endif
