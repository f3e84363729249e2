/*
 * The orchestrator's private model: a domain resolved from the platform,
 * xenstore, the stored libxl config and its device model's QMP; the plan of
 * a snapshot; and the steps create/revert/delete are built from.
 * Policy lives here; protocol lives in the clients (snap_qmp, snap_agent,
 * snap_xs, snap_domcfg, snap_qemuimg, snap_meta). Not installed.
 */
#ifndef SNAP_ORCH_H
#define SNAP_ORCH_H

#include "snap_internal.h"
#include "snap_journal.h"
#include "snap_lock.h"
#include "snap_meta.h"
#include "snap_meta_io.h"
#include "snap_meta_tree.h"
#include "snap_qemuimg.h"
#include "snap_qmp.h"
#include "snap_timeline.h"
#include "snap_xs.h"

/* Guest-agent channel name libxl users give qemu-ga. */
#define SNAP_AGENT_CHANNEL "org.qemu.guest_agent.0"
/* Longest backing chain an external snapshot may grow. */
#define SNAP_MAX_CHAIN 32
/* QMP commands outside the frozen window (inside it: snap_timeline.h). */
#define SNAP_QMP_TIMEOUT_MS            10000
#define SNAP_LOCK_TIMEOUT_MS           30000
#define SNAP_DEFAULT_FREEZE_TIMEOUT_MS 10000
#define SNAP_DEFAULT_LEASE_MS          10000
/* A block-commit (merge) may copy a whole image: minutes, not seconds. */
#define SNAP_COMMIT_TIMEOUT_MS 600000

/* One disk of the domain as xlsnap sees it. */
typedef struct snap_vdisk {
    snap_xs_disk *xs;  /* what xenstore (libxl's copy + backend) says */
    bool served;       /* a running device model has its image open */
    char *node_name;   /* QMP: its active node ("xvda-qcow2" or an overlay's) */
    size_t chain_len;  /* images in its backing chain, active included */
    char *root_image;  /* the chain's bottom (the disk's original image), or NULL */
    char **node_names; /* every node-name in the chain (for new unique ones) */
    size_t n_node_names;
    char **snapshots; /* internal snapshot names on the active image */
    size_t n_snapshots;
} snap_vdisk;

typedef struct snap_domain {
    snap_domain_ref ref;
    snap_vdisk *disks;
    size_t n_disks;
    snap_xs_disk *xs_disks; /* owned; disks[i].xs points into it */
    char *qmp_path;         /* NULL when no device model runs */
    char *agent_path;       /* the agent channel's socket, NULL when none */
    bool io_error_stop;     /* QEMU stopped the guest on an I/O error (io-error) */
    char *config;           /* the stored libxl-json, as stored (NUL-terminated) */
    size_t config_len;
} snap_domain;

/*
 * Connects to the domain's device model under the toolstack's QMP lock
 * (libxl's qmp-socket-lock on Xen: libxl and xlsnap must not talk to the same
 * one-client QMP socket at once). One such connection per ctx at a time;
 * close it promptly with snap_domain_qmp_close, which releases the lock.
 */
int snap_domain_qmp_open(snap_ctx *ctx, const snap_domain *dom, snap_qmp **qmp,
                         snap_err *err);
void snap_domain_qmp_close(snap_ctx *ctx, snap_qmp *qmp);
/*
 * When a device model runs the domain (dom->qmp_path): connects to it as
 * snap_domain_qmp_open does and lists its disks into qd; else *qmp is NULL
 * and qd stays empty. Either way, close with snap_domain_qmp_close and
 * free qd with snap_qmp_disks_free.
 */
int snap_domain_qmp_disks(snap_ctx *ctx, const snap_domain *dom, snap_qmp **qmp,
                          snap_qmp_disks *qd, snap_err *err);

/*
 * Finds a domain through the platform, refusing domain 0 (Xen's control
 * domain: its disks are dom0's own, and it has no device model). Flags:
 * SNAP_LOOKUP_IDENTIFY for readers (name, domid and UUID only; nothing is
 * asked of the device model, so another xlsnap holding its QMP socket does
 * not make them wait).
 */
#define SNAP_LOOKUP_IDENTIFY 1u
int snap_domain_lookup(snap_ctx *ctx, const char *qualifier, unsigned flags,
                       snap_domain_ref *ref, snap_err *err);

/* The agent channel's socket from the domain's stored config; NULL: none known. */
char *snap_domain_agent_path(snap_ctx *ctx, const snap_domain_ref *ref);

/* Finds the domain and everything about its disks; validates consistency. */
int snap_domain_resolve(snap_ctx *ctx, const char *qualifier, snap_domain *dom,
                        snap_err *err);
void snap_domain_dispose(snap_domain *dom);
snap_vdisk *snap_domain_find_disk(snap_domain *dom, const char *vdev);

/* ------------------------------------------------------------------ plan */

typedef struct snap_plan_disk {
    snap_vdisk *disk;
    snap_method method; /* INTERNAL or EXTERNAL */
    bool via_qmp;       /* in the QMP transaction; else qemu-img children */
    char *overlay_path; /* EXTERNAL */
    char *overlay_node; /* EXTERNAL via QMP: the new node's name */
    /* INTERNAL, once taken: the entry as QEMU lists it (for the record) */
    char *qemu_snap_id;
    snap_meta_qsnap_stamp qemu_snap_stamp;
} snap_plan_disk;

typedef struct snap_plan {
    char *name;
    char *description;
    snap_quiesce_policy quiesce; /* resolved: never AUTO */
    bool memory;
    snap_freeze_timeline timeline; /* every wait of the freeze window */
    snap_lease_expiry lease_expiry;
    snap_plan_disk *disks;
    size_t n_disks;
    char **excluded;
    size_t n_excluded;
    char **notes; /* why disks were excluded, what policy was chosen */
    size_t n_notes;
    /* mountpoints to freeze (none: all) and not to (snap_fsfreeze.h) */
    char **freeze_mounts, **no_freeze;
    size_t n_freeze_mounts, n_no_freeze;
} snap_plan;

/* Checks everything a create needs before anything is touched. */
int snap_plan_create(snap_ctx *ctx, snap_domain *dom, snap_meta_store *st,
                     const snap_create_params *params, snap_plan *plan, snap_err *err);
void snap_plan_dispose(snap_plan *plan);
/* The plan as JSON, for -N (malloc'd). */
char *snap_plan_to_json(const snap_plan *plan, const snap_domain *dom);

/* ------------------------------------------------------------------ overlay names */

/*
 * Overlays are "<dir>/<stem>.<snapshot>[.<tag>].qcow2": stem is the disk's
 * ORIGINAL image (the bottom of its backing chain) without its extension,
 * so the length does not grow with the chain; tag tells apart two overlays
 * of one snapshot (a vdev, a revert's "r<k>"). A name longer than
 * SNAP_OVERLAY_BASENAME_MAX bytes keeps a prefix of the stem and of the
 * snapshot name plus a 64-bit hash of the whole snapshot name (valid UTF-8
 * stays valid). Callers still refuse a name that exists: never overwrite.
 */
#define SNAP_OVERLAY_BASENAME_MAX 200
/* The file name of image without its directory and last extension (malloc'd). */
char *snap_image_stem(const char *image);
/* The overlay path for dir, stem, snapshot name and optional tag (malloc'd). */
char *snap_overlay_path(const char *dir, const char *stem, const char *name,
                        const char *tag);
/* The stem of the bottom of image's backing chain (qemu-img info -U). */
int snap_chain_root_stem(const char *image, char **stem, snap_err *err);

/* ------------------------------------------------------------------ internal identity */

/* The identity QEMU lists for an internal snapshot, beyond name and id. */
snap_meta_qsnap_stamp snap_qsnap_stamp_of_qmp(const snap_qmp_snapshot *s);
snap_meta_qsnap_stamp snap_qsnap_stamp_of_qimg(const snap_qimg_snapshot *s);
/*
 * Refuses (SNAP_ERROR_INVAL, ending with refusal) when md's internal
 * snapshot as listed now (id_now, now) is not the entry the record
 * describes: another id, or another date, clock or size. What the record
 * does not hold is not compared (older records: trusted by name).
 */
int snap_qsnap_check(const snap_meta_disk *md, const char *id_now,
                     const snap_meta_qsnap_stamp *now, const char *refusal,
                     snap_err *err);
/* snap_qsnap_check against md->base_path's table (qemu-img info -U); absent: 0. */
int snap_qsnap_check_image(const snap_meta_disk *md, const char *refusal, snap_err *err);

/* ------------------------------------------------------------------ quiesce */

/* The outcome of a freeze window, for the record. */
typedef struct snap_quiesce_result {
    bool attempted;
    bool frozen;
    int frozen_count;
    int64_t window_ms; /* freeze sent -> thaw answered */
    bool thaw_ok;
    /* QEMU stopped the guest (run state io-error) before it answered the thaw:
     * the thaw completes when it runs again. */
    bool guest_stopped;
    const char *reason; /* best-effort fell back to crash-consistent: why (q owns it) */
    /* each filesystem's outcome (q owns it); NULL: the agent listed none */
    const struct snap_fs_selection *filesystems;
} snap_quiesce_result;

typedef struct snap_quiesce snap_quiesce;
/*
 * Opens the agent and checks it can freeze. With policy REQUIRED any problem
 * is an error; with BEST_EFFORT it is logged and *q is NULL (crash-consistent).
 */
int snap_quiesce_prepare(snap_ctx *ctx, const snap_domain *dom, const snap_plan *plan,
                         snap_quiesce **q, snap_err *err);
/*
 * Starts the lease watchdog (journaled), then freezes. On failure the guest is
 * thawed (or the error says it may not be) and the watchdog released. Under
 * BEST_EFFORT a freeze that fails or times out but leaves the guest known to
 * be thawed is no error: 0 is returned, snap_quiesce_fell_back() tells, and
 * the snapshot is crash-consistent (the thaw then reports the reason).
 */
int snap_quiesce_freeze(snap_ctx *ctx, snap_quiesce *q, snap_meta_store *st,
                        snap_journal *j, snap_err *err);
/* Milliseconds since the freeze was sent. */
int64_t snap_quiesce_elapsed_ms(const snap_quiesce *q);
/* Best-effort fell back to a crash-consistent snapshot after a failed freeze. */
bool snap_quiesce_fell_back(const snap_quiesce *q);
/*
 * How long the QMP transaction inside the window may take: until the
 * timeline's thaw_by (what is left of the budget, or of the lease once the
 * thaw's own time is set aside); SNAP_QMP_TIMEOUT_MS when nothing is frozen.
 */
int snap_quiesce_tx_timeout_ms(const snap_quiesce *q);
/* The guest is frozen by q and not yet thawed (a timeout now is the window's). */
bool snap_quiesce_in_window(const snap_quiesce *q);
/* The timeline q obeys (the plan's). */
const snap_freeze_timeline *snap_quiesce_timeline(const snap_quiesce *q);
/*
 * QEMU answered the transaction only after the thaw (answered_ms after the
 * freeze was sent): res (filled by snap_quiesce_thaw) becomes crash-consistent
 * with the reason, which q owns.
 */
void snap_quiesce_late_snapshot(snap_quiesce *q, int64_t answered_ms,
                                snap_quiesce_result *res);
/*
 * Thaws, releases the watchdog, fills res. Safe to call when not frozen. With
 * qmp (may be NULL), a thaw that gets no prompt answer is checked against
 * QEMU's run state: a guest QEMU stopped on an I/O error cannot answer, so
 * the thaw is not waited for (res->guest_stopped, SNAP_ERROR_GUEST_FROZEN)
 * and the watchdog is released: xlsnap, not the watchdog, reports that.
 */
int snap_quiesce_thaw(snap_quiesce *q, snap_qmp *qmp, snap_quiesce_result *res,
                      snap_err *err);
/*
 * After QEMU stopped the guest inside the window and the domain was resumed:
 * waits for the thaw to complete (status, thaw again if still frozen).
 */
int snap_quiesce_thaw_after_resume(snap_quiesce *q, snap_err *err);
/* The thaw was sent but not answered because QEMU stopped the guest. */
bool snap_quiesce_thaw_pending(const snap_quiesce *q);
/* Closes the agent (thawing first if still frozen and not stopped). NULL ok. */
void snap_quiesce_free(snap_quiesce *q);
/*
 * Thaws a guest a dead xlsnap left frozen (journal recovery): connects to the
 * agent and thaws when its status is not "thawed".
 */
int snap_quiesce_recover(snap_ctx *ctx, const char *agent_path, snap_err *err);
/* The freeze watchdog's thaw: a connection of its own (retried for open_timeout_ms). */
int snap_quiesce_thaw_new_connection(const char *agent_path, int open_timeout_ms,
                                     snap_err *err);
/* snap_trace, snap_trace_flush: see snap_trace.h. */
#include "snap_trace.h"

/* ------------------------------------------------------------------ disks */

/* A disk pointed at another image. */
typedef struct snap_disk_switch {
    const char *vdev;
    const char *format;
    const char *path;
} snap_disk_switch;

/*
 * Points disks at other images in xenstore (one transaction) and in the
 * stored libxl config (under libxl's userdata lock). Journal the old values
 * first: a failure between the two is undone by rolling back.
 */
int snap_switch_disks(snap_ctx *ctx, const snap_domain_ref *ref,
                      const snap_disk_switch *sw, size_t n, snap_err *err);

/* ------------------------------------------------------------------ sessions */

/* An operation's hold on a domain: its store, lock and (recovered) journal. */
typedef struct snap_session {
    snap_domain dom;
    snap_meta_store st;
    snap_lock lock;
    bool st_open;
} snap_session;

/* What snap_session_open may do besides finding the domain. */
enum {
    SNAP_SESSION_CREATE_DIR = 1 << 0, /* make the domain's state directory */
    /* bring back a domain an interrupted revert destroyed (not for -N) */
    SNAP_SESSION_RECOVER_VANISHED = 1 << 1,
    /* leave the journal alone (snap_discard_journal decides about it) */
    SNAP_SESSION_KEEP_JOURNAL = 1 << 2,
};

/*
 * Resolves the domain, opens its state directory, takes the domain lock and
 * finishes or rolls back any operation a dead xlsnap left journaled.
 */
int snap_session_open(snap_ctx *ctx, const char *qualifier, unsigned flags,
                      snap_session *s, snap_err *err);
void snap_session_close(snap_session *s);

#endif
