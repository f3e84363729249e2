/*
 * Looking inside a guest through its agent (guest-exec, guest-file-read),
 * for the tests and the demo. Not part of libsnap.
 */
#ifndef QGA_GUEST_H
#define QGA_GUEST_H

#include "snap_agent.h"

/* ------------------------------------------------------------ inside the guest */

typedef struct qga_exec_result {
    int exitcode;    /* -1 when a signal ended it */
    int signal;      /* that signal, else 0 */
    char *out, *err; /* captured stdout and stderr, NUL-terminated */
    size_t out_len, err_len;
    bool truncated; /* the agent cut the output (its capture limit) */
} qga_exec_result;

/*
 * guest-exec of argv (NULL-terminated; argv[0] an absolute path in the
 * guest) with output captured, then guest-exec-status until it exits, all
 * within timeout_ms. Returns 0 once it ran to the end, whatever its exit code.
 */
int qga_guest_exec(snap_agent *ag, const char *const argv[], int timeout_ms,
                   qga_exec_result *res, snap_err *err);
void qga_exec_result_dispose(qga_exec_result *res);

/*
 * guest-file-open/read/close: the whole file (at most max_bytes) into
 * *data_out (malloc'd, NUL-terminated), within timeout_ms.
 */
int qga_read_file(snap_agent *ag, const char *path, size_t max_bytes, int timeout_ms,
                  char **data_out, size_t *len_out, snap_err *err);

#endif
