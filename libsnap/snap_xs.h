/*
 * xenstore helpers on the real libxenstore: transactions that retry on
 * EAGAIN, a domain's disks read the way libxl reads them, and a disk's
 * backend params rewritten the way libxl writes them.
 *
 * Paths (Xen 4.17, tools/libs/light/libxl_device.c and libxl_disk.c):
 *   /libxl/<domid>/device/vbd/<devid>/                   libxl's trusted copy
 *   /local/domain/<bdom>/backend/{qdisk|vbd}/<domid>/<devid>/   the backend
 *   /local/domain/<domid>/device/vbd/<devid>/            the frontend
 *
 * Not installed; private to libsnap.
 */
#ifndef SNAP_XS_H
#define SNAP_XS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <xenstore.h>

#include "snap_base.h"

typedef struct snap_xs snap_xs;

/* xs_open(0): $XENSTORED_PATH selects the daemon's socket. */
int snap_xs_open(snap_xs **out, snap_err *err);
void snap_xs_close(snap_xs *xs); /* NULL ok */
struct xs_handle *snap_xs_handle(snap_xs *xs);
/*
 * Bounds snap_xs_transaction: at most max_attempts tries, sleeping about
 * backoff_ms << attempt (capped at 200 ms, with jitter) between them.
 * Defaults: 10 attempts, 2 ms.
 */
void snap_xs_set_retry(snap_xs *xs, int max_attempts, int backoff_ms);

/* ----------------------------------------------------------- transactions */

/* A transaction body returns this (> 0) to ask for a fresh attempt. */
#define SNAP_XS_RETRY 1

/*
 * The body of a transaction: may run several times, so it must only act
 * through t and on state it resets itself. Returns 0 to commit, a negative
 * SNAP_ERROR_* to abort, SNAP_XS_RETRY to abort and try again.
 */
typedef int snap_xs_txn_fn(snap_xs *xs, xs_transaction_t t, void *opaque, snap_err *err);

/*
 * Runs fn inside xs_transaction_start/end, retrying when the commit (or a
 * step of fn) fails with EAGAIN. `what` names the operation in errors.
 * Returns SNAP_ERROR_BUSY once the attempts are exhausted.
 */
int snap_xs_transaction(snap_xs *xs, const char *what, snap_xs_txn_fn *fn, void *opaque,
                        snap_err *err);

/*
 * Primitives with errors naming the path. Inside a transaction, EAGAIN
 * returns SNAP_XS_RETRY. snap_xs_read: NOTFOUND when absent;
 * snap_xs_read_opt: 0 with *out = NULL when absent.
 */
int snap_xs_read(snap_xs *xs, xs_transaction_t t, const char *path, char **out,
                 snap_err *err);
int snap_xs_read_opt(snap_xs *xs, xs_transaction_t t, const char *path, char **out,
                     snap_err *err);
int snap_xs_write(snap_xs *xs, xs_transaction_t t, const char *path, const char *value,
                  snap_err *err);
/* Entries of a directory (free(*names) frees them all); NOTFOUND if absent. */
int snap_xs_directory(snap_xs *xs, xs_transaction_t t, const char *path, char ***names,
                      unsigned *n, snap_err *err);

/* ----------------------------------------------------------- domains */

/* Domain ids under /local/domain, ascending. */
int snap_xs_list_domains(snap_xs *xs, uint32_t **ids, size_t *n, snap_err *err);
/* /local/domain/<domid>/name. */
int snap_xs_domain_name(snap_xs *xs, uint32_t domid, char **name, snap_err *err);
/* The domain whose name is `name` (the lowest id if several); NOTFOUND. */
int snap_xs_domid_by_name(snap_xs *xs, const char *name, uint32_t *domid, snap_err *err);
/* The uuid from /local/domain/<domid>/vm ("/vm/<uuid>"), checked for shape. */
int snap_xs_domain_uuid(snap_xs *xs, uint32_t domid, char **uuid, snap_err *err);

/* ----------------------------------------------------------- disks */

/* A disk as libxl knows it (libxl__disk_from_xenstore), plus where it lives. */
typedef struct snap_xs_disk {
    int devid;
    char *vdev;         /* "xvda" (libxl copy's "dev") */
    char *backend_type; /* "qdisk", "phy", "standalone" (its "type") */
    char *backend_kind; /* "qdisk" or "vbd": the backend path's kind */
    uint32_t backend_domid;
    char *params;   /* as stored: "qcow2:/p" (qdisk), "/dev/x" (phy) */
    char *format;   /* libxl_disk_format_to_string: qcow2, raw, empty... */
    char *path;     /* pdev_path */
    bool readwrite; /* mode "w" */
    bool is_cdrom;  /* device-type "cdrom" */
    bool removable;
    bool backend_agrees; /* the backend's params equal libxl's copy */
    /* blkback's "physical-device" ("fe:1", hex major:minor): the device it
     * opened, written once it did; NULL for qdisk or before */
    char *physical_device;
    char *libxl_path, *backend_path, *frontend_path;
} snap_xs_disk;

/* Every disk of a domain (read in one transaction), by ascending devid. */
int snap_xs_domain_disks(snap_xs *xs, uint32_t domid, snap_xs_disk **disks, size_t *n,
                         snap_err *err);
void snap_xs_disks_free(snap_xs_disk *disks, size_t n);

/*
 * The backend "params" libxl writes for a disk (libxl_disk.c): qdisk
 * "<fmt>:<path>" with fmt from libxl__device_disk_string_of_format (raw and
 * empty are "aio"); phy the bare path (raw only). NULL + err if impossible.
 */
char *snap_xs_params_for(const char *backend_type, const char *format, const char *path,
                         snap_err *err);

/*
 * Points disk vdev of domid at path/format: in ONE transaction, as
 * libxl's cdrom_insert_inserted does, writes "type" and "params" to the
 * backend and to libxl's copy, after checking libxl's copy still has its
 * "frontend". Undoing is switching back (the journal keeps the old images).
 */
int snap_xs_disk_set_params(snap_xs *xs, uint32_t domid, const char *vdev,
                            const char *format, const char *path, snap_err *err);
/* One disk's new image, for snap_xs_disks_set_params. */
typedef struct snap_xs_params_change {
    const char *vdev;
    const char *format;
    const char *path;
} snap_xs_params_change;

/* The same for n disks in ONE transaction (all switch or none). */
int snap_xs_disks_set_params(snap_xs *xs, uint32_t domid,
                             const snap_xs_params_change *changes, size_t n,
                             snap_err *err);

/* The device model's pid as libxl (and xlsim) record it
 * (/local/domain/<domid>/image/device-model-pid); -1 if unknown. */
pid_t snap_xs_dm_pid(uint32_t domid);

#endif
