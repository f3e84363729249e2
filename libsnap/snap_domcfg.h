/*
 * The stored libxl domain configuration: the "libxl-json" userdata file.
 *
 * libxl keeps each domain's configuration as JSON in
 *   <statedir>/userdata-d.<domid>.<uuid>.libxl-json
 * and libxl_retrieve_domain_configuration() takes the disks' pdev_path and
 * format from it. After an external snapshot switches a disk to a new
 * overlay, this file must say so, or the next `xl save`/migrate/reboot goes
 * back to the old image. This module reads and edits that file with libxl's
 * own userdata protocol (tools/libs/light/libxl_internal.c and libxl_dom.c,
 * Xen 4.17): the same lock file and flock dance, the same temp file +
 * rename, the same mode and the same trailing NUL.
 *
 * Not installed; private to libsnap.
 */
#ifndef SNAP_DOMCFG_H
#define SNAP_DOMCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap_base.h"

/* libxl's XEN_LIB_DIR; XLSNAP_XEN_STATEDIR overrides it (shared with xlsim). */
#define SNAP_DOMCFG_DEFAULT_STATEDIR "/var/lib/xen"
#define SNAP_DOMCFG_STATEDIR_ENV     "XLSNAP_XEN_STATEDIR"

/*
 * The state directory to use: `override` when not NULL, else
 * $XLSNAP_XEN_STATEDIR when set and non-empty, else /var/lib/xen. Not copied.
 */
const char *snap_domcfg_statedir(const char *override);

/*
 * libxl__userdata_path(): <statedir>/userdata-<wh>.<domid>.<uuid>.<userid>
 * (wh is "d" data, "n" new/temp, "l" lock). Malloc'd.
 */
char *snap_domcfg_userdata_path(const char *statedir, uint32_t domid, const char *uuid,
                                const char *wh, const char *userid);

/* ----------------------------------------------------------- lock */

typedef struct snap_domcfg_lock snap_domcfg_lock;

/*
 * Takes libxl's domain userdata lock (libxl__lock_domain_userdata):
 * userdata-l.<domid>.<uuid>.domain-userdata-lock, flock(LOCK_EX), retried
 * when the file was unlinked and recreated meanwhile. timeout_ms < 0 blocks
 * like libxl; otherwise gives up with SNAP_ERROR_BUSY after timeout_ms.
 */
int snap_domcfg_lock_acquire(const char *statedir, uint32_t domid, const char *uuid,
                             int timeout_ms, snap_domcfg_lock **out, snap_err *err);
/*
 * The same protocol on another of libxl's userdata locks, e.g.
 * "qmp-socket-lock" (libxl__ev_qmplock: serialises use of the QMP socket).
 */
int snap_userdata_lock_acquire(const char *statedir, uint32_t domid, const char *uuid,
                               const char *lock_id, int timeout_ms,
                               snap_domcfg_lock **out, snap_err *err);
/* Releases as libxl__unlock_file does: unlink, then close. NULL is a no-op. */
void snap_domcfg_lock_release(snap_domcfg_lock *lock);

/* ----------------------------------------------------------- raw file */

/*
 * Reads the whole libxl-json file (bytes as stored, which for libxl includes
 * a trailing NUL; *data is also NUL-terminated past *len). NOTFOUND if absent,
 * INVAL if empty (libxl treats an empty file as an error too).
 */
int snap_domcfg_read(const char *statedir, uint32_t domid, const char *uuid, char **data,
                     size_t *len, snap_err *err);
/*
 * Writes the file as libxl__userdata_store does: userdata-n.<...> created
 * 0600 and truncated, written, closed, renamed over userdata-d.<...>. We also
 * fsync the temp file before the rename (libxl does not): a crash must not
 * leave a renamed but empty configuration. Callers hold the lock.
 */
int snap_domcfg_store(const char *statedir, uint32_t domid, const char *uuid,
                      const char *data, size_t len, snap_err *err);

/* ----------------------------------------------------------- disks */

/* One disk change: set the disk with this vdev to pdev_path/format. */
typedef struct snap_domcfg_disk_change {
    const char *vdev;
    const char *pdev_path;
    const char *format; /* as libxl_disk_format_to_string: "qcow2", "raw"... */
} snap_domcfg_disk_change;

/* A disk as stored: pdev_path and format, NULL when the key is absent. */
typedef struct snap_domcfg_disk {
    char *vdev;
    char *pdev_path;
    char *format;
} snap_domcfg_disk;

/* True for the names libxl_disk_format_from_string accepts (lower case). */
bool snap_domcfg_format_valid(const char *format);

/* Looks a disk up by vdev in a libxl-json text. NOTFOUND if no such disk. */
int snap_domcfg_find_disk(const char *json, const char *vdev, snap_domcfg_disk *out,
                          snap_err *err);
void snap_domcfg_disk_dispose(snap_domcfg_disk *d);

/*
 * Pure text transform: applies the changes to a libxl-json document (data,
 * len as stored). Existing values are replaced in place, byte ranges
 * outside them untouched; a key the disk lacks forces a regeneration of
 * the whole document with yajl (beautified, key order kept, numbers kept
 * verbatim: what libxl itself writes). *out is malloc'd, NUL-terminated past
 * *out_len.
 */
int snap_domcfg_edit_disks(const char *data, size_t len,
                           const snap_domcfg_disk_change *changes, size_t n, char **out,
                           size_t *out_len, snap_err *err);

/*
 * Under the userdata lock: reads the stored config, applies the changes,
 * stores it. Undoing is another change back to the old values (the journal
 * keeps them). lock_timeout_ms as for snap_domcfg_lock_acquire.
 */
int snap_domcfg_set_disks(const char *statedir, uint32_t domid, const char *uuid,
                          const snap_domcfg_disk_change *changes, size_t n,
                          int lock_timeout_ms, snap_err *err);

#endif
