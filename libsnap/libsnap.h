/*
 * libsnap — quiesced, atomic, revertible snapshots of Xen domains.
 *
 * The API follows libxl's conventions: a context (snap_ctx) carries a
 * xentoollog logger; functions return 0 on success or a negative SNAP_ERROR_*
 * code, and the context keeps a human-readable message saying what failed
 * (which disk, which command, what the peer said): snap_ctx_errmsg().
 *
 * Copyright (C) 2026 The xlsnap authors. LGPL-2.1-only (see COPYING).
 */
#ifndef LIBSNAP_H
#define LIBSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. 0 is success; every error is negative. */
#define SNAP_OK 0
#define SNAP_ERROR_FAIL -1        /* unspecified failure */
#define SNAP_ERROR_INVAL -2       /* bad argument or input */
#define SNAP_ERROR_NOTFOUND -3    /* no such domain, disk, snapshot or file */
#define SNAP_ERROR_EXISTS -4      /* name or file already exists */
#define SNAP_ERROR_TIMEDOUT -5    /* a peer did not answer in time */
#define SNAP_ERROR_PROTOCOL -6    /* a peer sent something malformed or unexpected */
#define SNAP_ERROR_PEER -7        /* a peer reported an error (QMP, agent, qemu-img) */
#define SNAP_ERROR_IO -8          /* a local system call failed */
#define SNAP_ERROR_BUSY -9        /* locked, or an image is in use by a running QEMU */
#define SNAP_ERROR_NOMEM -10      /* out of memory */
#define SNAP_ERROR_CLOSED -11     /* a peer closed the connection */
#define SNAP_ERROR_UNSUPPORTED -12 /* not possible for this domain, disk or format */
#define SNAP_ERROR_GUEST_FROZEN -13 /* the guest's filesystems may still be frozen */

/* A short constant name for a return code ("timed out", "busy", ...). */
const char *snap_strerror(int rc);

#ifdef __cplusplus
}
#endif
#endif
