/*
 * QMP client: one short-lived connection to a QEMU monitor socket.
 *
 * QEMU serves ONE client per QMP socket (a second client gets no greeting
 * until the first leaves), so: connect, do the job, snap_qmp_close() promptly.
 *
 * Protocol handling (see docs in qemu-facts.md):
 *  - the greeting is read under the connect timeout (version kept), then
 *    qmp_capabilities is negotiated;
 *  - every command carries an id "libsnap-N"; one command is in flight at a
 *    time; replies with another id (left over from a command that timed out)
 *    are discarded; an id-less error reply (QEMU's JSON parse errors) is the
 *    answer to the command in flight;
 *  - events arriving at any time are queued in order (bounded: the oldest are
 *    dropped past SNAP_QMP_MAX_EVENTS) for snap_qmp_next_event/wait_event;
 *  - a peer error becomes SNAP_ERROR_PEER with the text
 *    "QMP <command>: <class>: <desc>", desc verbatim;
 *  - a line longer than the reply limit (SNAP_QMP_MAX_REPLY unless changed)
 *    is refused, and so is any further use of that connection.
 *
 * Every call takes its own timeout in milliseconds (< 0: no limit) and an
 * err that must not be NULL.
 */
#ifndef SNAP_QMP_H
#define SNAP_QMP_H

#include <stdint.h>
#include <sys/types.h>

#include "snap_json.h"

#define SNAP_QMP_MAX_REPLY  (8u << 20) /* bytes in one reply or event line */
#define SNAP_QMP_MAX_EVENTS 4096       /* queued events kept */

typedef struct snap_qmp snap_qmp;

/* ------------------------------------------------------------- connection */

/*
 * Connects to the QMP socket at path, reads the greeting and negotiates
 * capabilities, all within timeout_ms. A QEMU busy with another client
 * gives no greeting: that is SNAP_ERROR_TIMEDOUT with a message saying so.
 */
int snap_qmp_connect(const char *path, int timeout_ms, snap_qmp **qmp_out, snap_err *err);
/* Closes the connection (QEMU then serves its next client) and frees. NULL ok. */
void snap_qmp_close(snap_qmp *qmp);
/* Debug log of every command and reply; lg may be NULL. */
void snap_qmp_set_logger(snap_qmp *qmp, xentoollog_logger *lg);

/* QEMU's version from the greeting, e.g. 7.2.22; package string may be "". */
void snap_qmp_version(const snap_qmp *qmp, int *major, int *minor, int *micro);
const char *snap_qmp_package(const snap_qmp *qmp);
/* True when QEMU is at least major.minor. */
bool snap_qmp_version_at_least(const snap_qmp *qmp, int major, int minor);
/* The pid of the QEMU at the other end of the socket (SO_PEERCRED). */
int snap_qmp_peer_pid(const snap_qmp *qmp, pid_t *pid_out, snap_err *err);

/* ------------------------------------------------------------- commands */

/*
 * Emits the members of the "arguments" object (keys and values) into g;
 * the object itself is opened and closed by the caller of the function.
 */
typedef snap_json_members_fn snap_qmp_args_fn;

/*
 * Runs one command. args may be NULL (no "arguments"). On success, when
 * ret_out is not NULL, *ret_out is the "return" value (a yajl tree the
 * caller frees with yajl_tree_free).
 */
int snap_qmp_execute(snap_qmp *qmp, const char *cmd, snap_qmp_args_fn *args,
                     const void *opaque, yajl_val *ret_out, int timeout_ms,
                     snap_err *err);
/* snap_qmp_execute with arguments taken from a parsed tree (an object or NULL). */
int snap_qmp_execute_tree(snap_qmp *qmp, const char *cmd, yajl_val args,
                          yajl_val *ret_out, int timeout_ms, snap_err *err);
/* Like snap_qmp_execute, passing fd to QEMU (SCM_RIGHTS) with the command. */
int snap_qmp_execute_with_fd(snap_qmp *qmp, const char *cmd, snap_qmp_args_fn *args,
                             const void *opaque, int fd, yajl_val *ret_out,
                             int timeout_ms, snap_err *err);

/*
 * After a command timed out (SNAP_ERROR_TIMEDOUT, its request fully sent)
 * and before any other is sent: waits up to timeout_ms more for its reply,
 * as snap_qmp_execute would have. SNAP_ERROR_INVAL when no command timed out.
 */
int snap_qmp_await_late_reply(snap_qmp *qmp, yajl_val *ret_out, int timeout_ms,
                              snap_err *err);

/* ------------------------------------------------------------- events */

typedef struct snap_qmp_event {
    char *name;        /* "STOP", "JOB_STATUS_CHANGE", ... */
    yajl_val data;     /* the "data" object, or NULL */
    long long seconds; /* QEMU's timestamp */
    long long microseconds;
} snap_qmp_event;

void snap_qmp_event_free(snap_qmp_event *ev);

/* Pops the oldest queued event without any I/O; NULL when none is queued. */
snap_qmp_event *snap_qmp_next_event(snap_qmp *qmp);
/* Reads whatever QEMU sends within timeout_ms, queuing events; 0 or an error. */
int snap_qmp_poll_events(snap_qmp *qmp, int timeout_ms, snap_err *err);
/* Number of events queued, and how many were dropped because the queue was full. */
size_t snap_qmp_events_queued(const snap_qmp *qmp);
size_t snap_qmp_events_dropped(const snap_qmp *qmp);

typedef bool snap_qmp_event_filter(const snap_qmp_event *ev, void *opaque);

/*
 * Waits for the first event named name (and accepted by filter, when not
 * NULL), taking it from the queue if it already arrived; other events stay
 * queued in order. SNAP_ERROR_TIMEDOUT when it does not come in time.
 */
int snap_qmp_wait_event(snap_qmp *qmp, const char *name, snap_qmp_event_filter *filter,
                        void *opaque, int timeout_ms, snap_qmp_event **ev_out,
                        snap_err *err);

/* ------------------------------------------------------------- run state */

typedef struct snap_qmp_status {
    bool running;
    char status[32]; /* "running", "paused", "prelaunch", "postmigrate", ... */
} snap_qmp_status;

int snap_qmp_stop(snap_qmp *qmp, int timeout_ms, snap_err *err);
int snap_qmp_cont(snap_qmp *qmp, int timeout_ms, snap_err *err);
int snap_qmp_query_status(snap_qmp *qmp, snap_qmp_status *st, int timeout_ms,
                          snap_err *err);

/* ------------------------------------------------------------- disks */

typedef struct snap_qmp_snapshot {
    char *id;
    char *name;
    long long vm_state_size;
    long long date_sec, date_nsec;
    long long vm_clock_sec, vm_clock_nsec;
} snap_qmp_snapshot;

/* One image of a backing chain. */
typedef struct snap_qmp_image {
    char *file;   /* file name as QEMU opened it */
    char *format; /* "qcow2", "raw", ... */
    /* Format node's name; NULL if QEMU did not list it. Backing nodes are found
     * by file name + driver, so a file opened twice may name either node. */
    char *node_name;
    snap_qmp_snapshot *snapshots;
    size_t n_snapshots;
} snap_qmp_image;

typedef struct snap_qmp_disk {
    char *device;    /* drive id ("drive0", "ide0-hd0"); "" for -blockdev disks */
    char *qdev;      /* QOM path or id of the device; may be "" */
    char *node_name; /* root (active layer) node-name, e.g. "xvda-qcow2" */
    bool read_only;
    /* chain[0] is the active image, chain[1] its backing file, ... */
    snap_qmp_image *chain;
    size_t chain_len;
} snap_qmp_disk;

typedef struct snap_qmp_disks {
    snap_qmp_disk *disk;
    size_t n;
} snap_qmp_disks;

/*
 * query-block + query-named-block-nodes as a disk model. Drives without a
 * medium (empty CD-ROMs) are left out. Images QEMU opened from libsnap's
 * fdsets are named by their paths (snap_qmp_disks_resolve_fdsets).
 */
int snap_qmp_query_disks(snap_qmp *qmp, snap_qmp_disks *disks, int timeout_ms,
                         snap_err *err);
void snap_qmp_disks_free(snap_qmp_disks *disks);
/*
 * The disk known by name: drive id, root node-name, qdev id ("xvda" for
 * /machine/peripheral/xvda/...), or a node-name of its chain. NULL if none.
 */
const snap_qmp_disk *snap_qmp_disks_find(const snap_qmp_disks *disks, const char *name);
/*
 * The disk whose backing chain holds the image file (at any depth: *depth 0
 * is the active image), or NULL.
 */
const snap_qmp_disk *snap_qmp_disks_find_file(const snap_qmp_disks *disks,
                                              const char *file, size_t *depth);
/* What QMP block commands accept for this disk: the drive id, else the root node-name. */
const char *snap_qmp_disk_target(const snap_qmp_disk *disk);
/* The snapshot of the disk's active image named name, or NULL. */
const snap_qmp_snapshot *snap_qmp_disk_find_snapshot(const snap_qmp_disk *disk,
                                                     const char *name);

/* ------------------------------------------------------------- transactions */

typedef struct snap_qmp_tx snap_qmp_tx;

snap_qmp_tx *snap_qmp_tx_new(void);
void snap_qmp_tx_free(snap_qmp_tx *tx);
size_t snap_qmp_tx_len(const snap_qmp_tx *tx);
/* blockdev-snapshot-internal-sync; target: a drive id or a root node-name. */
void snap_qmp_tx_add_internal(snap_qmp_tx *tx, const char *target, const char *name);
/*
 * blockdev-snapshot-sync to a new overlay file (absolute path) in format.
 * Either device (a drive id; snapshot_node_name optional) or node_name (then
 * snapshot_node_name is required by QEMU); pass NULL for the other.
 */
void snap_qmp_tx_add_external(snap_qmp_tx *tx, const char *device, const char *node_name,
                              const char *snapshot_node_name, const char *snapshot_file,
                              const char *format);
/*
 * Runs the actions as one atomic QMP transaction. Before sending, refuses
 * (SNAP_ERROR_EXISTS) an overlay file that already exists, because QEMU
 * would silently overwrite it. When QEMU rejects the transaction, overlay
 * files it created for earlier actions are removed (QEMU leaves them).
 */
int snap_qmp_transaction(snap_qmp *qmp, const snap_qmp_tx *tx, int timeout_ms,
                         snap_err *err);
/*
 * After snap_qmp_transaction timed out on this connection (and nothing else
 * was sent since): waits up to timeout_ms more for QEMU's late answer, with
 * the same cleanup when it is a rejection. SNAP_ERROR_TIMEDOUT again when
 * it does not come; SNAP_ERROR_INVAL when no command is awaiting an answer.
 */
int snap_qmp_transaction_await(snap_qmp *qmp, const snap_qmp_tx *tx, int timeout_ms,
                               snap_err *err);
/* "file": {"driver": "file", "filename": "/dev/fdset/ID"}: a node's file child
 * on an fdset (snap_qmp_fdset.c). */
void snap_qmp_gen_fdset_file(yajl_gen g, long long fdset_id);
/*
 * blockdev-snapshot: node (a root node-name) gets the already added node
 * overlay_node on top of it, as its backing file. Nothing is opened by path:
 * the form for a QEMU that cannot open files (snap_qmp_blockdev_add_qcow2_fdset).
 */
void snap_qmp_tx_add_external_node(snap_qmp_tx *tx, const char *node,
                                   const char *overlay_node);
/* blockdev-snapshot-delete-internal-sync (not a transaction action in QEMU). */
int snap_qmp_delete_internal(snap_qmp *qmp, const char *target, const char *name,
                             int timeout_ms, snap_err *err);

/* ------------------------------------------------------------- fd passing */

/*
 * For a QEMU that cannot open host paths (Xen's dm_restrict=1: -runas,
 * -chroot): libsnap opens the file and passes the descriptor (snap_qmp_fdset.c).
 */

/*
 * add-fd: passes fd (SCM_RIGHTS; the caller keeps its own) into fdset
 * fdset_id, or into a new fdset when fdset_id < 0. opaque (may be NULL) is
 * a note QEMU shows in query-fdsets. *fdset_id_out / *qemu_fd_out (either may
 * be NULL) get the set and QEMU's number for its copy.
 */
int snap_qmp_add_fd(snap_qmp *qmp, int fd, long long fdset_id, const char *opaque,
                    long long *fdset_id_out, int *qemu_fd_out, int timeout_ms,
                    snap_err *err);
/*
 * remove-fd: one fd of the set (qemu_fd >= 0) or the whole set. QEMU closes
 * the fds once no node uses a copy of them any more (the set stays listed
 * until then).
 */
int snap_qmp_remove_fd(snap_qmp *qmp, long long fdset_id, int qemu_fd, int timeout_ms,
                       snap_err *err);

typedef struct snap_qmp_fdset_fd {
    int fd;       /* QEMU's number */
    char *opaque; /* may be NULL */
} snap_qmp_fdset_fd;

typedef struct snap_qmp_fdset {
    long long id;
    snap_qmp_fdset_fd *fds;
    size_t n;
} snap_qmp_fdset;

typedef struct snap_qmp_fdsets {
    snap_qmp_fdset *set;
    size_t n;
} snap_qmp_fdsets;

int snap_qmp_query_fdsets(snap_qmp *qmp, snap_qmp_fdsets *sets, int timeout_ms,
                          snap_err *err);
void snap_qmp_fdsets_free(snap_qmp_fdsets *sets);
/* The set numbered id, or NULL. */
const snap_qmp_fdset *snap_qmp_fdsets_find(const snap_qmp_fdsets *sets, long long id);

/*
 * blockdev-add of a qcow2 node named node_name on the file "/dev/fdset/N"
 * (an fd of that set with the right access mode, O_RDWR for a writable
 * node), with "backing": null: its backing file is not opened (by path);
 * blockdev-snapshot then attaches it.
 */
int snap_qmp_blockdev_add_qcow2_fdset(snap_qmp *qmp, const char *node_name,
                                      long long fdset_id, int timeout_ms, snap_err *err);
int snap_qmp_blockdev_del(snap_qmp *qmp, const char *node_name, int timeout_ms,
                          snap_err *err);

/*
 * Replacing an image QEMU opened by path with one on an fdset, for a QEMU
 * that cannot reopen paths (snap_qmp_reopen.c): blockdev-add of the new
 * node with the old one's backing node, then blockdev-reopen of the node
 * above with the new node as its backing.
 */
typedef struct snap_qmp_node_opts {
    bool read_only;
    bool cache_direct, cache_no_flush;
    char detect_zeroes[16]; /* "off", "on", "unmap" */
} snap_qmp_node_opts;
/* The options of node_name that a blockdev-reopen would reset (query-named-block-nodes).
 */
int snap_qmp_node_options(snap_qmp *qmp, const char *node_name, snap_qmp_node_opts *out,
                          int timeout_ms, snap_err *err);
/* The name of node_name's child in role ("file", "backing"), malloc'd
 * (x-debug-query-block-graph); SNAP_ERROR_NOTFOUND when it has none. */
int snap_qmp_node_child(snap_qmp *qmp, const char *node_name, const char *role,
                        char **child_out, int timeout_ms, snap_err *err);
/*
 * blockdev-add of a read-only node (format, e.g. "qcow2") on "/dev/fdset/N"
 * whose backing is the existing node backing_node (NULL: none), with the
 * cache options of opts. The file node is implicit: reopening the node
 * read-write (a commit into it) makes QEMU dup the set's O_RDWR fd.
 */
int snap_qmp_blockdev_add_fdset_image(snap_qmp *qmp, const char *node_name,
                                      const char *format, long long fdset_id,
                                      const char *backing_node,
                                      const snap_qmp_node_opts *opts, int timeout_ms,
                                      snap_err *err);
/*
 * blockdev-reopen of node_name (format) onto backing_node, keeping its file
 * child and the options a reopen would otherwise reset (cache, detect-zeroes,
 * read-only). Its old backing node, if nothing else holds it, goes.
 */
int snap_qmp_reopen_backing(snap_qmp *qmp, const char *node_name, const char *format,
                            const char *backing_node, int timeout_ms, snap_err *err);
/*
 * libsnap's fdsets carry the opaque "libsnap:<path>" and stay while a node
 * uses them: QEMU calls such a file "/dev/fdset/N" (query-block), and the
 * set is how libsnap still knows its path.
 */
#define SNAP_QMP_FDSET_OPAQUE_PREFIX "libsnap:"
/* The path of one of libsnap's sets ("libsnap:<path>"), or NULL. */
const char *snap_qmp_fdset_path(const snap_qmp_fdset *set);
/* The fdset an image name ("/dev/fdset/N" or QEMU's "json:{...}") stands for, or -1. */
long long snap_qmp_fdset_of_file(const char *file);
/* Replaces "/dev/fdset/N" image names with the paths of libsnap's sets. */
int snap_qmp_disks_resolve_fdsets(snap_qmp *qmp, snap_qmp_disks *disks, int timeout_ms,
                                  snap_err *err);
/*
 * After a failure, a merge, or a run that died: blockdev-del of the qcow2
 * nodes on libsnap's fdsets that no disk's chain holds any more, then
 * remove-fd of every libsnap fdset no block node uses. *removed (may be
 * NULL): how many sets.
 */
int snap_qmp_fdsets_collect(snap_qmp *qmp, int timeout_ms, size_t *removed,
                            snap_err *err);
/*
 * *confined: QEMU process pid runs as another user than us or chrooted
 * (/proc/<pid>/status, /proc/<pid>/root), so it cannot be given host paths
 * to open. SNAP_ERROR_NOTFOUND when pid is not a QEMU (/proc/<pid>/comm).
 */
int snap_pid_confined(pid_t pid, bool *confined, snap_err *err);
/*
 * snap_pid_confined of the socket's peer (SO_PEERCRED). That is the
 * process that listened: QEMU, unless another made the socket and passed
 * it (libxl pre-opens a dm_restrict QEMU's): then SNAP_ERROR_NOTFOUND.
 */
int snap_qmp_peer_confined(snap_qmp *qmp, bool *confined, snap_err *err);

/* ------------------------------------------------------------- migration */

/* Turns on QEMU's MIGRATION events (the "events" migration capability). */
int snap_qmp_migration_events_on(snap_qmp *qmp, int timeout_ms, snap_err *err);
/* snap_qmp_wait_event filter: a MIGRATION event saying the migration ended
 * (completed, failed or cancelled). */
bool snap_qmp_migration_ended(const snap_qmp_event *ev, void *opaque);

/* Progress of a migration: bytes sent and QEMU's estimate of the total. */
typedef void snap_qmp_progress_fn(uint64_t transferred, uint64_t total, void *opaque);

/*
 * Saves the VM state into fd (the caller keeps its own fd; QEMU gets a copy
 * through getfd): raises max-bandwidth, migrate "fd:NAME", then waits for
 * QEMU's MIGRATION event saying completed, asking query-migrate for progress
 * meanwhile and for the reason of a failure (QEMU's error-desc verbatim). On
 * timeout the migration is cancelled. Stop the VM first for a consistent image.
 * Afterwards QEMU sits in "postmigrate" (cont before migrating again), and the
 * raised max-bandwidth stays set in that QEMU.
 */
int snap_qmp_migrate_to_fd(snap_qmp *qmp, int fd, snap_qmp_progress_fn *progress,
                           void *opaque, int timeout_ms, snap_err *err);
/*
 * The part of snap_qmp_migrate_to_fd that QEMU keeps across connections
 * (the MIGRATION events on, max-bandwidth raised), to send before the guest
 * is paused; then snap_qmp_migrate_prepared_to_fd, on any connection, does
 * the rest. Fails when QEMU refuses either.
 */
int snap_qmp_migrate_prepare(snap_qmp *qmp, int timeout_ms, snap_err *err);
int snap_qmp_migrate_prepared_to_fd(snap_qmp *qmp, int fd, snap_qmp_progress_fn *progress,
                                    void *opaque, int timeout_ms, snap_err *err);
/* The same into a new file (created 0600, must not exist; removed on failure). */
int snap_qmp_migrate_to_file(snap_qmp *qmp, const char *path,
                             snap_qmp_progress_fn *progress, void *opaque, int timeout_ms,
                             snap_err *err);

/* ------------------------------------------------------------- jobs */

typedef struct snap_qmp_job {
    char id[128];
    char type[32];   /* "commit", "snapshot-save", ... */
    char status[32]; /* "running", "ready", "concluded", ... */
    long long current_progress, total_progress;
    char *error; /* QEMU's error text, or NULL */
} snap_qmp_job;

/* query-jobs for one job id: SNAP_ERROR_NOTFOUND when QEMU has no such job. */
int snap_qmp_query_job(snap_qmp *qmp, const char *job_id, snap_qmp_job *job,
                       int timeout_ms, snap_err *err);
void snap_qmp_job_clear(snap_qmp_job *job);
/* Waits (events + query-jobs) until the job reaches status (or concludes). */
int snap_qmp_wait_job(snap_qmp *qmp, const char *job_id, const char *status,
                      snap_qmp_job *job, int timeout_ms, snap_err *err);
int snap_qmp_job_dismiss(snap_qmp *qmp, const char *job_id, int timeout_ms,
                         snap_err *err);

/*
 * Active-layer commit of disk target (drive id or root node-name) into
 * base_node (NULL: the bottom of the chain): block-commit with job_id,
 * wait for ready, block-job-complete, wait for concluded, check the job's
 * error, job-dismiss. On failure the job is cancelled and dismissed; the
 * chain is then unchanged (an active commit only pivots on completion).
 */
int snap_qmp_commit_active(snap_qmp *qmp, const char *target, const char *base_node,
                           const char *job_id, int timeout_ms, snap_err *err);

#endif
