/*
 * libsnap — quiesced, atomic, revertible snapshots of Xen domains.
 *
 * The API follows libxl's conventions: a context (snap_ctx) carries a
 * xentoollog logger; functions return 0 on success or a negative SNAP_ERROR_*
 * code, and the context keeps a human-readable message saying what failed
 * (which disk, which command, what the peer said): snap_ctx_errmsg().
 *
 * Processes, signals and threads (libsnap(3) says more):
 *  - libsnap never changes the process's signal dispositions. qemu-img
 *    children are posix_spawn'ed, each in its own process group, and reaped
 *    by pid only (never waitpid(-1)); SIGCHLD set to SIG_IGN makes calls that
 *    run children fail with SNAP_ERROR_INVAL.
 *  - A quiesced snap_create starts a freeze watchdog, the helper program
 *    $(LIBEXECDIR)/xlsnap/xlsnap-freeze-watchdog (or $XLSNAP_WATCHDOG), with
 *    posix_spawn + exec, never a fork of the caller. It thaws the guest if
 *    the caller dies, and when the lease (freeze_timeout_ms +
 *    freeze_lease_ms) runs out with the guest still frozen: the call then
 *    fails, nothing recorded, the caller untouched (unless lease_expiry is
 *    SNAP_LEASE_KILL_CALLER). It is reaped by pid before the call returns.
 *  - Listing a large directory stats it over at most 3 threads, all joined
 *    before the call returns; no other thread is started.
 *  - A snap_ctx is not thread-safe: one per thread, or serialise the calls.
 *  - Environment: XLSNAP_STATEDIR, XLSNAP_XEN_STATEDIR, XLSNAP_XEN_RUNDIR,
 *    XENSTORED_PATH, XLSNAP_PLATFORM (snap_ctx_alloc), XLSNAP_XLSIM,
 *    XLSNAP_TRACE, XLSNAP_WATCHDOG, PATH (qemu-img), TMPDIR and
 *    XLSNAP_VERIFY_ROUTE (snap_verify), and the test hooks
 *    XLSNAP_TEST_PAUSE_AFTER_FREEZE / XLSNAP_TEST_PAUSE_IN_REVERT /
 *    XLSNAP_TEST_PAUSE_IN_VERIFY / XLSNAP_TEST_PAUSE_AFTER_GROUP_MEMBER.
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
#define SNAP_OK             0
#define SNAP_ERROR_FAIL     -1 /* unspecified failure */
#define SNAP_ERROR_INVAL    -2 /* bad argument or input */
#define SNAP_ERROR_NOTFOUND -3 /* no such domain, disk, snapshot or file */
#define SNAP_ERROR_EXISTS   -4 /* name or file already exists */
#define SNAP_ERROR_TIMEDOUT -5 /* a peer did not answer in time */
#define SNAP_ERROR_PROTOCOL -6 /* a peer sent something malformed or unexpected */
#define SNAP_ERROR_PEER     -7 /* a peer reported an error (QMP, agent, qemu-img) */
#define SNAP_ERROR_IO       -8 /* a local system call failed */
#define SNAP_ERROR_BUSY     -9 /* locked, or an image is in use by a running QEMU */
/* -10 is reserved: libsnap aborts on out-of-memory, as libxl does. */
#define SNAP_ERROR_CLOSED       -11 /* a peer closed the connection */
#define SNAP_ERROR_UNSUPPORTED  -12 /* not possible for this domain, disk or format */
#define SNAP_ERROR_GUEST_FROZEN -13 /* the guest's filesystems may still be frozen */

/* A short constant name for a return code ("timed out", "busy", ...). */
const char *snap_strerror(int rc);

/*
 * Text for a terminal: NULL when s is safe to print as it is; else a
 * malloc'd copy with each byte that is not UTF-8 as \xNN and each control
 * (C0, DEL, C1) or Unicode bidirectional control as \u{NNNN}. Records
 * written by hand or by older versions may hold anything: a caller printing
 * names, descriptions or messages should pass them through this.
 */
char *snap_text_escape(const char *s);

/*
 * Feature macros, as libxl's LIBXL_HAVE_*: a caller tests for a feature
 * with #ifdef instead of comparing versions. Each names what it adds; the
 * first set describes the API of libsnap.so.1.
 */
#define LIBSNAP_HAVE_LIST_EACH       1 /* snap_list_each */
#define LIBSNAP_HAVE_SUMMARY         1 /* snap_summary, snap_list_summaries */
#define LIBSNAP_HAVE_ENUM_TO_STRING  1 /* snap_*_to_string */
#define LIBSNAP_HAVE_DOMAIN_STATE    1 /* snap_info.domain_state is an enum */
#define LIBSNAP_HAVE_TEXT_ESCAPE     1 /* snap_text_escape */
#define LIBSNAP_HAVE_CTX_ALLOC_LIBXL 1 /* snap_ctx_alloc_libxl */
#define LIBSNAP_HAVE_LEASE_EXPIRY    1 /* snap_create_params.lease_expiry */
#define LIBSNAP_HAVE_FREEZE_LIMITS   1 /* snap_info.freeze_thaw_by_ms, ... */
#define LIBSNAP_HAVE_SNAPSHOT_VERIFY 1 /* snap_verify, snap_info.verification */
#define LIBSNAP_HAVE_LVM             1 /* SNAP_METHOD_LVM*, snap_create_params.lvm_cow_* */
/* snap_create_params.freeze_mounts and .no_freeze; snap_info.consistency and
 * .filesystems; snap_summary.consistency; snap_consistency_to_string,
 * snap_fs_outcome_to_string */
#define LIBSNAP_HAVE_FREEZE_MOUNTS 1
/* snap_group_create, _list, _get, _revert, _delete; snap_info.group (issue 20) */
#define LIBSNAP_HAVE_SNAPSHOT_GROUPS 1
#define LIBSNAP_HAVE_GROUP_PLAN      1 /* snap_group_create_plan */
#define LIBSNAP_HAVE_GROUP_SHUT_OFF  1 /* snap_group_member.shut_off */
#define LIBSNAP_HAVE_GROUP_LEVEL     1 /* snap_group_consistency */

/* ------------------------------------------------------------------ context */

typedef struct snap_ctx snap_ctx;
struct xentoollog_logger;

/*
 * Where the hypervisor-facing operations go (domain lookup, pause/unpause,
 * memory save/restore). AUTO picks LIBXL when a Xen privcmd device exists
 * (/dev/xen/privcmd or /proc/xen/privcmd) and SIM (xlsim's simulated dom0:
 * xenstore + QMP) otherwise. The environment variable XLSNAP_PLATFORM
 * ("libxl" or "sim") overrides AUTO.
 */
typedef enum snap_platform_kind {
    SNAP_PLATFORM_AUTO = 0,
    SNAP_PLATFORM_LIBXL,
    SNAP_PLATFORM_SIM,
} snap_platform_kind;

/*
 * Allocates a context. lg receives progress and diagnostics (may be NULL).
 * Directories default to Xen's and xlsnap's own, overridable by environment:
 *   XLSNAP_STATEDIR      xlsnap's metadata and journal  (/var/lib/xlsnap)
 *   XLSNAP_XEN_STATEDIR  libxl's userdata directory     (/var/lib/xen)
 *   XLSNAP_XEN_RUNDIR    QMP sockets qmp-libxl-<domid>  (/var/run/xen)
 *   XENSTORED_PATH       the xenstore socket (libxenstore's own variable)
 */
int snap_ctx_alloc(snap_ctx **pctx, snap_platform_kind platform,
                   struct xentoollog_logger *lg);

/*
 * Allocates a context on the caller's own libxl context (xl passes its
 * global ctx and logger): libsnap then opens no libxl context of its own and
 * does every libxl call on lctx, from the calling thread, inside the calling
 * snap_* function. lctx is borrowed: snap_ctx_free() leaves it alone, and it
 * must outlive the snap_ctx. The platform is SNAP_PLATFORM_LIBXL unless
 * XLSNAP_PLATFORM=sim selects the simulated dom0 (tests; lctx is then
 * unused). lctx NULL: SNAP_ERROR_INVAL.
 */
struct libxl__ctx; /* libxl_ctx (libxl.h) */
int snap_ctx_alloc_libxl(snap_ctx **pctx, struct libxl__ctx *lctx,
                         struct xentoollog_logger *lg);
void snap_ctx_free(snap_ctx *ctx);
/* The message of the last failed call on ctx ("" when none). */
const char *snap_ctx_errmsg(const snap_ctx *ctx);
/* The platform actually in use (never AUTO). */
snap_platform_kind snap_ctx_platform(const snap_ctx *ctx);

/* ------------------------------------------------------------------ create */

typedef enum snap_method {
    SNAP_METHOD_AUTO = 0, /* internal for qcow2 disks, external otherwise */
    SNAP_METHOD_INTERNAL,
    SNAP_METHOD_EXTERNAL,
    /*
     * LIBSNAP_HAVE_LVM: a phy: disk on an LVM logical volume always gets a
     * snapshot volume, whatever the caller asked for the image disks:
     * a thin snapshot of a thin volume, a classic (copy-on-write) one of
     * any other. Never a value of snap_create_params.method.
     */
    SNAP_METHOD_LVM_THIN,
    SNAP_METHOD_LVM,
} snap_method;

typedef enum snap_quiesce_policy {
    SNAP_QUIESCE_AUTO =
        0,            /* best-effort when the domain has an agent channel, else off */
    SNAP_QUIESCE_OFF, /* crash-consistent */
    SNAP_QUIESCE_BEST_EFFORT, /* freeze if the agent answers, else crash-consistent */
    SNAP_QUIESCE_REQUIRED,    /* refuse unless the guest's filesystems freeze */
} snap_quiesce_policy;

/*
 * What the freeze watchdog does when the lease (freeze_timeout_ms +
 * freeze_lease_ms after the freeze was sent) runs out with the call still
 * holding the guest frozen.
 */
typedef enum snap_lease_expiry {
    SNAP_LEASE_THAW_ONLY = 0, /* thaw the guest; the call fails, nothing recorded */
    SNAP_LEASE_KILL_CALLER, /* SIGKILL the calling process, then thaw (a CLI's choice) */
} snap_lease_expiry;

/* Progress of long steps (memory save): bytes done of total (total 0 = unknown). */
typedef void snap_progress_fn(void *opaque, const char *what, uint64_t done,
                              uint64_t total);

typedef struct snap_create_params {
    const char *name;        /* NULL: generated from the current time */
    const char *description; /* may be NULL */
    snap_method method;
    const char *const *disks; /* vdevs to include (n_disks of them); NULL: all */
    size_t n_disks;
    const char *overlay_dir; /* external overlays; NULL: beside each base image */
    snap_quiesce_policy quiesce;
    int freeze_timeout_ms; /* agent freeze reply timeout; 0: default (10000) */
    int freeze_budget_ms;  /* thaw by this long after the freeze; 0: no budget */
    int freeze_lease_ms;   /* thawed by a watchdog if xlsnap dies; 0: default (10000) */
    bool memory;           /* also save the domain's memory (checkpoint) */
    bool dry_run;          /* plan only: change nothing */
    snap_progress_fn *progress;
    void *progress_opaque;
    snap_lease_expiry lease_expiry; /* default THAW_ONLY */
    /*
     * Which of the guest's filesystems to freeze (LIBSNAP_HAVE_FREEZE_MOUNTS),
     * by mountpoint as the guest agent's guest-get-fsinfo lists them: only
     * freeze_mounts (NULL: every one the agent lists), minus no_freeze. A
     * mountpoint the agent does not list is refused (SNAP_ERROR_NOTFOUND)
     * before anything is frozen or recorded. Either needs a freeze: with
     * quiesce OFF they are SNAP_ERROR_INVAL.
     */
    const char *const *freeze_mounts;
    size_t n_freeze_mounts;
    const char *const *no_freeze;
    size_t n_no_freeze;
    /*
     * LIBSNAP_HAVE_LVM: the copy-on-write space of each classic LVM
     * snapshot: lvm_cow_bytes when > 0, else lvm_cow_percent (1-100) of
     * the volume's size, else 20%. Once the guest has rewritten that much
     * of the volume, LVM invalidates the snapshot (its content is lost).
     * Thin snapshots take no space up front: they share the pool.
     */
    uint64_t lvm_cow_bytes;
    int lvm_cow_percent;
} snap_create_params;

void snap_create_params_init(snap_create_params *params);

/* The domain's run state (at snapshot time, in a record). */
typedef enum snap_domain_state {
    SNAP_DOMAIN_RUNNING = 0,
    SNAP_DOMAIN_PAUSED,
    SNAP_DOMAIN_SHUTOFF, /* exists in the toolstack, no device model serving its disks */
    SNAP_DOMAIN_UNKNOWN, /* not recorded: the entry of an interrupted create */
} snap_domain_state;

/*
 * The names libsnap uses for these values in records, plans and output
 * ("running", "internal", "best-effort", ...); "unknown" for any other
 * value (AUTO included). Constant strings.
 */
const char *snap_domain_state_to_string(snap_domain_state state);
const char *snap_method_to_string(snap_method method);
const char *snap_quiesce_policy_to_string(snap_quiesce_policy policy);

/*
 * What a snapshot's disks hold of the guest's filesystems (libsnap(3) and
 * xlsnap(1) say exactly what each level guarantees):
 *  - QUIESCED: every filesystem the guest agent listed was frozen (its
 *    data flushed, no journal to replay) while the disks were snapshotted;
 *  - PARTIAL ("partially-quiesced"): some were frozen, others were not
 *    (excluded, unfreezable, or not confirmed): snap_info.filesystems names
 *    them; those are crash-consistent;
 *  - CRASH ("crash-consistent"): nothing was frozen: as after a power cut.
 */
typedef enum snap_consistency {
    SNAP_CONSISTENCY_CRASH = 0,
    SNAP_CONSISTENCY_PARTIAL,
    SNAP_CONSISTENCY_QUIESCED,
} snap_consistency;

/* What happened to one of the guest's filesystems in the freeze. */
typedef enum snap_fs_outcome {
    SNAP_FS_FROZEN = 0,
    SNAP_FS_SKIPPED, /* left alone on purpose (excluded, cannot freeze): reason */
    SNAP_FS_FAILED,  /* meant to be frozen but not (or not confirmed): reason */
} snap_fs_outcome;

/* "quiesced", "partially-quiesced", "crash-consistent"; "frozen", "skipped",
 * "failed"; "unknown" for any other value. Constant strings. */
const char *snap_consistency_to_string(snap_consistency c);
const char *snap_fs_outcome_to_string(snap_fs_outcome o);

/* ------------------------------------------------------------------ records */

/* What checking one filesystem at the snapshot point found (snap_verify). */
typedef enum snap_fs_state {
    SNAP_FS_CLEAN = 0,      /* no journal to replay, the checker found nothing */
    SNAP_FS_NEEDS_RECOVERY, /* its journal/log was not replayed: crash-consistent */
    SNAP_FS_ERRORS,         /* the checker (e2fsck -fn, xfs_repair -n) found errors */
    SNAP_FS_UNCHECKED,      /* could not be checked (tool missing, timeout, ...) */
    SNAP_FS_NO_FILESYSTEM,  /* no ext2/3/4 or XFS filesystem on that disk */
} snap_fs_state;

typedef struct snap_fs_verdict {
    char *vdev;    /* the disk */
    int partition; /* 0: the whole disk; else the partition's number (1-based) */
    char *fstype;  /* "ext4", "ext3", "ext2", "xfs", "none", ... */
    snap_fs_state state;
    char *detail; /* what was found, in a few words; "" when clean */
} snap_fs_verdict;

/* A snapshot's last verification, as recorded. */
typedef struct snap_verification {
    int64_t time_sec; /* UTC, when it was verified */
    bool clean;       /* at least one CLEAN, the others CLEAN or NO_FILESYSTEM */
    size_t n_fs;
    snap_fs_verdict *fs;
} snap_verification;

/* "clean", "needs-recovery", "errors", "unchecked", "no-filesystem". */
const char *snap_fs_state_to_string(snap_fs_state state);

typedef struct snap_disk_info {
    char *vdev;          /* "xvda" */
    char *backend;       /* "qdisk", "phy", ... */
    snap_method method;  /* INTERNAL, EXTERNAL, LVM_THIN or LVM */
    char *format;        /* format of the snapshotted image */
    char *base_path;     /* the image (LVM: the volume's path) snapshotted
                            (external: now a backing file) */
    char *overlay_path;  /* external only: the new active image */
    char *internal_name; /* internal: the qcow2 snapshot's name; LVM: the
                            snapshot volume, "vg/lv" */
} snap_disk_info;

typedef struct snap_fs_info {
    char *mountpoint; /* in the guest: "/srv/db" */
    char *type;       /* "ext4" */
    char *device;     /* the guest's block device: "vdb", "dm-0" */
    snap_fs_outcome outcome;
    char *reason; /* SKIPPED or FAILED: why; NULL when FROZEN */
} snap_fs_info;

typedef struct snap_info {
    char *name;
    char *description;    /* "" when none */
    char *parent;         /* NULL for a root */
    int64_t creation_sec; /* UTC */
    int32_t creation_nsec;
    char *domain_name;
    char *domain_uuid;
    snap_domain_state domain_state; /* at snapshot time */
    bool current;                   /* the domain's current snapshot */
    bool incomplete;                /* an interrupted operation is journaled for it */
    size_t n_disks;
    snap_disk_info *disks;
    size_t n_excluded;
    char **excluded;                    /* vdevs left out */
    snap_quiesce_policy quiesce_policy; /* REQUIRED, BEST_EFFORT or OFF (AUTO: unknown) */
    bool quiesced;     /* every filesystem was frozen (consistency QUIESCED) */
    int frozen_count;  /* filesystems frozen */
    int64_t frozen_ms; /* freeze window, freeze sent -> thaw reply */
    bool thaw_ok;
    char *memory_path; /* NULL: disk-only snapshot */
    uint64_t memory_size;
    size_t n_children;
    char *json; /* the whole record, as stored (JSON) */
    /* Overlays that external reverts to this snapshot created and that are
     * not its own (the domain's active images, or states later reverts left
     * behind); snapshot-delete removes those nothing else uses. Paths; NULL
     * when none. */
    size_t n_revert_overlays;
    char **revert_overlays;
    /* Why the snapshot is crash-consistent although a freeze was wanted (the
     * freeze failed or timed out under best-effort, or QEMU answered the
     * transaction only after the thaw); NULL: no such reason. */
    char *quiesce_reason;
    /* The limits the freeze window was held to, in ms after the freeze was
     * sent (xlsnap(1), "Freeze timeline"): the thaw sent by thaw_by, the
     * guest frozen at most worst if every peer answered (slowly), the
     * watchdog's thaw at watchdog. All 0 when the record has none (no
     * freeze attempted, or an older record). */
    int freeze_thaw_by_ms, freeze_worst_ms, freeze_watchdog_ms;
    /* The last snap_verify of this snapshot; NULL: never verified. */
    snap_verification *verification;
    /* LIBSNAP_HAVE_FREEZE_MOUNTS: the level, and each of the guest's
     * filesystems with what the freeze did to it (n_filesystems 0: the agent
     * did not list them, or no freeze was attempted; records older than
     * this have none either, and consistency QUIESCED or CRASH). */
    snap_consistency consistency;
    size_t n_filesystems;
    snap_fs_info *filesystems;
    /* LIBSNAP_HAVE_SNAPSHOT_GROUPS: the consistency group this snapshot is a
     * member of (snap_group_create); NULL: none. */
    char *group;
} snap_info;

void snap_info_free(snap_info *info);
void snap_info_list_free(snap_info **list, size_t n);

/*
 * What a table or tree of snapshots shows, read from the store's index
 * without parsing each record (snap_list_summaries).
 */
typedef struct snap_summary {
    char *name;
    char *description; /* "" when none */
    char *parent;      /* NULL for a root */
    int64_t creation_sec;
    int32_t creation_nsec;
    snap_domain_state domain_state;
    bool current;
    bool incomplete;
    size_t n_disks;
    unsigned n_internal, n_external; /* disks by method (LVM: the rest of n_disks) */
    size_t n_excluded;
    bool quiesced;   /* consistency QUIESCED */
    bool has_memory; /* a memory image was saved */
    size_t n_children;
    snap_consistency consistency; /* LIBSNAP_HAVE_FREEZE_MOUNTS */
} snap_summary;

void snap_summary_list_free(snap_summary **list, size_t n);

/*
 * Takes a snapshot of domain (a name, a domid, or a UUID no domain has as its
 * name; every call below takes the same). On success *info_out (if
 * not NULL) receives the record. With params->dry_run, nothing changes and
 * *plan_out (if not NULL) receives the plan as JSON (malloc'd).
 */
int snap_create(snap_ctx *ctx, const char *domain, const snap_create_params *params,
                snap_info **info_out, char **plan_out);

/*
 * The domain's snapshots in creation order (*list_out malloc'd, free with
 * snap_info_list_free). Damaged metadata (a record that cannot be read, a
 * .current naming no record, a parent cycle) returns SNAP_ERROR_PROTOCOL,
 * the message naming the first damaged file, AND still sets *list_out and
 * *n_out to the readable snapshots: free the list whenever *list_out is not
 * NULL. On other errors *list_out is NULL and *n_out 0.
 */
int snap_list(snap_ctx *ctx, const char *domain, snap_info ***list_out, size_t *n_out);
/*
 * Like snap_list, from the store's index instead of every full record (a
 * list of 10,000 in milliseconds): what a table or tree shows. Free with
 * snap_summary_list_free. Damaged metadata: as snap_list
 * (SNAP_ERROR_PROTOCOL with the readable part).
 */
int snap_list_summaries(snap_ctx *ctx, const char *domain, snap_summary ***list_out,
                        size_t *n_out);

/*
 * Like snap_list, without holding the list: fn gets each snapshot in
 * creation order as soon as its record is read, and the snap_info is freed
 * when fn returns (copy what you keep), so memory stays flat however many
 * snapshots the domain has. fn returns 0 to go on; any other value stops the
 * walk and is returned as it is. Damaged metadata: SNAP_ERROR_PROTOCOL after
 * fn saw the snapshots up to the first unreadable record.
 */
typedef int snap_info_fn(const snap_info *info, void *opaque);
int snap_list_each(snap_ctx *ctx, const char *domain, snap_info_fn *fn, void *opaque);

/* One snapshot by name. */
int snap_info_get(snap_ctx *ctx, const char *domain, const char *name,
                  snap_info **info_out);

/* ------------------------------------------------------------------ verify */

typedef struct snap_verify_params {
    int timeout_ms; /* the whole verification; 0: default (600000) */
} snap_verify_params;

void snap_verify_params_init(snap_verify_params *params);

/*
 * Checks the filesystems of snapshot name as they are at the snapshot point,
 * without writing to any image: each disk is opened read-only with
 * force-share (safe while the domain's QEMU runs on it): an external
 * snapshot's base image (the overlay's backing file), an internal one's
 * qcow2 snapshot (loaded read-only by qemu-nbd), exported as a raw file
 * through qemu-storage-daemon's FUSE export. On that file, each ext2/3/4
 * filesystem (the whole disk, or MBR/GPT partitions) is read: the
 * superblock's needs_recovery flag (set while mounted read-write: only a
 * freeze or an unmount clears it) and `e2fsck -fn`; XFS with
 * `xfs_repair -n` when installed. Needs /dev/fuse, qemu-nbd,
 * qemu-storage-daemon and e2fsck. An LVM disk is read on its snapshot
 * volume, a block device opened read-only (one not active, as thin
 * snapshots are not, activated read-only for the check and deactivated
 * after it). The domain lock is held throughout.
 *
 * Returns 0 when the check ran, whatever it found: the result is recorded
 * in the snapshot's record ("verification") and *info_out (if not NULL)
 * receives the record with it. An error (no such snapshot, a missing image,
 * a tool that would not start, the time limit) records nothing. Every
 * process, export and temporary file it made is gone when it returns; what
 * a verification killed meanwhile left in $TMPDIR is removed by the next.
 */
int snap_verify(snap_ctx *ctx, const char *domain, const char *name,
                const snap_verify_params *params, snap_info **info_out);

/* ------------------------------------------------------------------ revert / delete */

typedef enum snap_revert_state {
    SNAP_REVERT_STATE_AS_SNAPSHOT = 0, /* as the domain was at snapshot time */
    SNAP_REVERT_STATE_RUNNING,
    SNAP_REVERT_STATE_PAUSED,
} snap_revert_state;

typedef struct snap_revert_params {
    snap_revert_state state;
    /*
     * Required to revert to a disk-only snapshot of a running domain, to
     * one with classic LVM snapshot volumes (merged: consumed), and to
     * revert a domain Xen keeps shut down (on_poweroff="preserve"): it is
     * destroyed, its disks reverted, and it boots afresh (paused with
     * SNAP_REVERT_STATE_PAUSED).
     */
    bool force;
    bool dry_run;
    snap_progress_fn *progress;
    void *progress_opaque;
} snap_revert_params;

void snap_revert_params_init(snap_revert_params *params);
/*
 * Reverts domain to snapshot name. With params->dry_run nothing changes and
 * *plan_out (if not NULL) receives the plan as JSON (malloc'd), as for
 * snap_create.
 */
int snap_revert(snap_ctx *ctx, const char *domain, const char *name,
                const snap_revert_params *params, char **plan_out);

typedef enum snap_delete_scope {
    SNAP_DELETE_ONE = 0,       /* the snapshot; its children are reparented */
    SNAP_DELETE_CHILDREN,      /* the snapshot and all its descendants */
    SNAP_DELETE_CHILDREN_ONLY, /* only its descendants */
} snap_delete_scope;

typedef struct snap_delete_params {
    snap_delete_scope scope;
    bool metadata_only; /* forget the records, leave storage alone */
    bool dry_run;
} snap_delete_params;

void snap_delete_params_init(snap_delete_params *params);
/* Deletes snapshot name (see snap_delete_scope); plan_out as for snap_revert. */
int snap_delete(snap_ctx *ctx, const char *domain, const char *name,
                const snap_delete_params *params, char **plan_out);

/*
 * Moves domain's journal aside (<dir>/.journal.json.discarded-<UTC time>,
 * path in *moved_to, malloc'd, when not NULL) when recovery cannot use it:
 * unreadable, or its owner dead. A journal a live xlsnap owns is refused.
 * First a running domain's guest agent is asked whether the filesystems
 * are frozen and they are thawed; a paused domain stays paused (logged).
 * Nothing the interrupted operation made is undone: it is logged.
 */
int snap_discard_journal(snap_ctx *ctx, const char *domain, char **moved_to);

/* ------------------------------------------------------------------ groups */

/*
 * Consistency groups (LIBSNAP_HAVE_SNAPSHOT_GROUPS): one snapshot across
 * several domains, cut inside one shared window. Each member is an ordinary
 * snapshot of its domain, named after the group (snap_info.group set); a
 * group record in <statedir>/groups/<group>.json ties them together.
 */
typedef struct snap_group_member {
    char *domain_name;
    char *domain_uuid;
    char *snapshot; /* the member snapshot's name (the group's) */
    snap_consistency consistency;
    int frozen_count;  /* filesystems frozen */
    int64_t window_ms; /* this domain's own window: freeze sent -> thaw answered
                        * (quiesced), or pause -> unpause (crash-consistent) */
    bool shut_off;     /* the domain was shut off: its disks cut by qemu-img
                        * before the window; its level does not lower the
                        * group's */
} snap_group_member;

typedef struct snap_group_info {
    char *name;
    int64_t creation_sec; /* UTC */
    int32_t creation_nsec;
    /* Frozen together (each member's level in members[].consistency; the
     * record's "consistency" is the lowest); else paused: crash-consistent. */
    bool quiesced;
    /* The shared window: the first freeze sent (or pause) to the last thaw
     * answered (or unpause), in ms. */
    int64_t window_ms;
    size_t n_members;
    snap_group_member *members; /* sorted by domain name */
    char *json;                 /* the group record, as stored */
} snap_group_info;

void snap_group_info_free(snap_group_info *info);
void snap_group_info_list_free(snap_group_info **list, size_t n);
/*
 * The group's level (LIBSNAP_HAVE_GROUP_LEVEL), as its record states it:
 * the lowest of its running members' levels, crash-consistent when the
 * group was paused for the cut. A shut-off member does not lower it.
 */
snap_consistency snap_group_consistency(const snap_group_info *info);

/*
 * Snapshots the n domains together as group `group` (also each member
 * snapshot's name; params->name is ignored, params->memory is refused;
 * params->dry_run: the checks only, as snap_group_create_plan). The
 * domains are locked in name order, their journals recovered; every
 * domain is planned before anything is touched. Quiesced (every member
 * has an agent and quiesce is not OFF): all guests are frozen in
 * parallel under one budget (params->freeze_budget_ms, counted from the
 * first freeze), every disk of every domain is cut by one QMP transaction
 * per QEMU, all sent in parallel inside the shared frozen window, then all
 * are thawed. Crash-consistent (quiesce OFF, or a member without agent
 * under best-effort): every domain is paused for the cut instead. A
 * shut-off domain is cut by qemu-img (and lvcreate) children before any
 * freeze or pause, and counts for neither (members[].shut_off). All or
 * nothing: if any member fails to freeze, or its transaction fails, every
 * member is rolled back and every guest thawed (resumed). Crash safety:
 * each member is journaled with the group's name and the group record is
 * the commit point; a member journal whose group record was never written
 * is rolled back by the next command on that domain.
 */
int snap_group_create(snap_ctx *ctx, const char *group, const char *const *domains,
                      size_t n, const snap_create_params *params,
                      snap_group_info **info_out);
/*
 * snap_group_create, and with params->dry_run its plan: nothing changes
 * (no journal, no record, no freeze, no pause; the groups directory is not
 * made) and *plan_out (if not NULL) receives the plan as JSON (malloc'd):
 * "group", "domains", "cut" ("quiesced": every member is running with an
 * agent and quiesce is not OFF; else "paused"), "how", and "members", each
 * member's plan as snap_create's, in lock (name) order. Refused as the real
 * run is: an existing group, a domain named twice, a member that cannot be
 * snapshotted (the error names it). A member's own pending journal is
 * recovered first, as for snap_create's dry run; pending group operations
 * naming a member are only noted (the real run finishes them).
 */
int snap_group_create_plan(snap_ctx *ctx, const char *group, const char *const *domains,
                           size_t n, const snap_create_params *params,
                           snap_group_info **info_out, char **plan_out);
/* Every group record, by name. */
int snap_group_list(snap_ctx *ctx, snap_group_info ***list_out, size_t *n_out);
/* One group record. SNAP_ERROR_NOTFOUND when there is none. */
int snap_group_get(snap_ctx *ctx, const char *group, snap_group_info **info_out);
/*
 * Reverts every member of group to its member snapshot (snap_revert with
 * params, domain by domain in name order). Before anything changes, every
 * member must still be the group's and pass a dry run of its revert: the
 * first that does not is the error and nothing was changed. Then the
 * group operation is journaled in the groups directory, and the members
 * run one by one, each marked done. A failure after that names the members
 * already reverted. A caller that dies leaves the journal: the next
 * snap_create, snap_revert or snap_delete (not a dry run) of any member, or
 * the group's own revert or delete, first finishes it for the members not
 * done, with the same parameters (calling this again finishes it and does
 * no more); snap_list and snap_info_get log a note. params->dry_run: the
 * checks only.
 */
int snap_group_revert(snap_ctx *ctx, const char *group, const snap_revert_params *params);
/*
 * Deletes every member snapshot of group (snap_delete, scope ONE: children
 * reparented), then the group record. A member already gone (deleted on
 * its own) is skipped; the others are dry-run first, as for
 * snap_group_revert, and journaled the same way: an interrupted group
 * delete is finished by the next command on any member or on the group.
 */
int snap_group_delete(snap_ctx *ctx, const char *group, const snap_delete_params *params);

#ifdef __cplusplus
}
#endif
#endif
