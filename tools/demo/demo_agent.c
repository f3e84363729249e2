/*
 * xlsnap-demo-agent — the demo's window into the guest, through qemu-ga, and
 * into its device model, through QMP.
 *
 *   xlsnap-demo-agent wait SOCKET SECONDS   wait until the agent answers guest-sync
 *   xlsnap-demo-agent sh SOCKET 'COMMAND'   run /bin/sh -c COMMAND in the guest, print
 *                                           its output, exit with its exit code
 *   xlsnap-demo-agent chain QMP_SOCKET VDEV print QEMU's backing chain of disk VDEV
 *                                           (query-block), active image first, one
 *                                           file a line
 *
 * Exit 0 ok, 1 failure (message on stderr), 2 usage; `sh` returns the guest
 * command's own code. The demo needs this because a fresh Debian machine has
 * no tool that speaks qemu-ga's protocol on a unix socket; it is libsnap's
 * own agent client (snap_agent) behind a command line. Never point it at
 * the host's own qemu-ga: it only runs what it is given, but the demo's guest
 * is the only place it belongs.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qga_guest.h"
#include "snap_qmp.h"

#define EXEC_WAIT_MS 30000

/* Runs /bin/sh -c command in the guest; returns its exit code, or -1 with err set. */
static int agent_sh(snap_agent *ag, const char *command, snap_err *err)
{
    const char *const argv[] = {"/bin/sh", "-c", command, NULL};
    qga_exec_result res;
    if (qga_guest_exec(ag, argv, EXEC_WAIT_MS, &res, err) != 0)
        return -1;
    fwrite(res.out, 1, res.out_len, stdout);
    fwrite(res.err, 1, res.err_len, stderr);
    int code = res.exitcode;
    if (res.signal)
        snap_err_set(err, SNAP_ERROR_PEER, "the guest command died by signal %d: %s",
                     res.signal, command);
    qga_exec_result_dispose(&res);
    return code;
}

static int usage(void)
{
    fprintf(stderr, "usage: xlsnap-demo-agent wait SOCKET SECONDS\n"
                    "       xlsnap-demo-agent sh SOCKET COMMAND\n"
                    "       xlsnap-demo-agent chain QMP_SOCKET VDEV\n");
    return 2;
}

/* What QEMU itself says disk vdev runs on: shows that a merge pivoted it. */
static int qemu_chain(const char *qmp_path, const char *vdev)
{
    snap_qmp *qmp = NULL;
    snap_qmp_disks disks = {0};
    snap_err err = {0};
    int rc = snap_qmp_connect(qmp_path, 10000, &qmp, &err);
    if (!rc)
        rc = snap_qmp_query_disks(qmp, &disks, 10000, &err);
    const snap_qmp_disk *q = rc ? NULL : snap_qmp_disks_find(&disks, vdev);
    if (!rc && !q)
        rc = snap_err_set(&err, SNAP_ERROR_NOTFOUND, "QEMU has no disk %s", vdev);
    for (size_t i = 0; q && i < q->chain_len; i++)
        printf("%s\n", q->chain[i].file);
    snap_qmp_disks_free(&disks);
    snap_qmp_close(qmp);
    if (rc)
        fprintf(stderr, "xlsnap-demo-agent: %s\n", err.msg);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return usage();
    if (strcmp(argv[1], "chain") == 0)
        return qemu_chain(argv[2], argv[3]);
    bool wait_only = strcmp(argv[1], "wait") == 0;
    if (!wait_only && strcmp(argv[1], "sh") != 0)
        return usage();
    int timeout_ms = wait_only ? atoi(argv[3]) * 1000 : 10000;
    snap_agent *ag = NULL;
    snap_err err = {0};
    if (snap_agent_open_wait(argv[2], timeout_ms, NULL, &ag, &err) != 0) {
        fprintf(stderr, "xlsnap-demo-agent: %s\n", err.msg);
        return 1;
    }
    int rc = wait_only ? 0 : agent_sh(ag, argv[3], &err);
    snap_agent_close(ag);
    if (rc < 0) {
        fprintf(stderr, "xlsnap-demo-agent: %s\n", err.msg);
        return 1;
    }
    return rc;
}
