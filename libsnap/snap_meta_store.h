/*
 * The per-domain state directory: <statedir>/snapshots/<domain-uuid>/.
 *
 * statedir is xlsnap's own state directory: an explicit parameter, else the
 * environment variable XLSNAP_STATEDIR, else /var/lib/xlsnap. Every directory
 * on the way is 0700; every file in it is 0600 and written atomically (temp
 * file opened O_EXCL|O_NOFOLLOW, fsync, rename, fsync of the directory).
 *
 * Files in a domain directory:
 *   <name>.json          one per snapshot (snap_meta.h); names never start
 *                        with '.', so they cannot collide with the rest:
 *   .current             pointer to the current snapshot (snap_meta_io.h)
 *   .index               cache of snapshot summaries (snap_list_index.h)
 *   .lock                per-domain lock, holder pid (snap_lock.h)
 *   .journal.json        the in-flight operation (snap_journal.h)
 *   .revert-domain.json  the config of a domain a revert destroyed
 *                        (snap_revert_record.h)
 *   .<file>.tmp.<pid>.<random>  temp files of an atomic write in progress
 * Not installed.
 */
#ifndef SNAP_META_STORE_H
#define SNAP_META_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "snap_base.h"

#define SNAP_STATEDIR_DEFAULT "/var/lib/xlsnap"
#define SNAP_STATEDIR_ENV     "XLSNAP_STATEDIR"
/* Largest state file read back (a snapshot with an embedded domain config). */
#define SNAP_STATE_FILE_MAX (16u << 20)

/* An open domain directory. */
typedef struct snap_meta_store {
    char *statedir;
    char *uuid;
    char *label; /* domain name (or uuid) for messages */
    char *dir;   /* <statedir>/snapshots/<uuid> */
    int dirfd;   /* O_DIRECTORY descriptor of dir; every access is relative to it */
} snap_meta_store;

/* explicit_dir when not NULL/empty, else $XLSNAP_STATEDIR, else the default. */
const char *snap_statedir_resolve(const char *explicit_dir);

/* True for a canonical lower- or upper-case 8-4-4-4-12 hex UUID. */
bool snap_uuid_valid(const char *uuid);

/*
 * Opens the directory of domain uuid (label: its name for messages, may be
 * NULL). With create, makes the missing directories 0700; without, a missing
 * directory is SNAP_ERROR_NOTFOUND. Symlinks are refused at the last level.
 */
int snap_meta_store_open(snap_meta_store *st, const char *statedir, const char *uuid,
                         const char *label, bool create, snap_err *err);
/*
 * Opens <statedir>/groups, the consistency groups' records (snap_group_store.h),
 * as a store: the same durable writes and the same lock (snap_lock.h).
 */
int snap_meta_store_open_groups(snap_meta_store *st, const char *statedir, bool create,
                                snap_err *err);
void snap_meta_store_close(snap_meta_store *st);

/* <dir>/<fname>, malloc'd. */
char *snap_meta_store_path(const snap_meta_store *st, const char *fname);

/*
 * Replaces fname with data atomically: after a crash either the old or the
 * new content is there, never a mix. The file ends 0600.
 */
int snap_meta_store_write(snap_meta_store *st, const char *fname, const char *data,
                          size_t len, snap_err *err);
/*
 * Reads fname (no symlinks, at most SNAP_STATE_FILE_MAX) into a malloc'd
 * NUL-terminated buffer. Missing file: SNAP_ERROR_NOTFOUND.
 */
int snap_meta_store_read(snap_meta_store *st, const char *fname, char **out,
                         size_t *len_out, snap_err *err);
/* Unlinks fname and syncs the directory; a missing file is not an error. */
int snap_meta_store_unlink(snap_meta_store *st, const char *fname, snap_err *err);
/*
 * Removes temp files left by writers that died between write and rename
 * (their pid is not alive any more). Returns how many were removed.
 */
int snap_meta_store_clean_temps(snap_meta_store *st);

/* ------------------------------------------------------------ processes */

/* Milliseconds on CLOCK_REALTIME (meaningful across processes and reboots). */
int64_t snap_realtime_ms(void);
/*
 * The start time of pid in clock ticks since boot (/proc/<pid>/stat field 22),
 * which with the pid identifies a process across pid reuse. 0 if it is gone.
 */
uint64_t snap_proc_start_time(pid_t pid);
/* pid is alive and is still the process that had start_time (0: any). */
bool snap_proc_alive(pid_t pid, uint64_t start_time);

#endif
