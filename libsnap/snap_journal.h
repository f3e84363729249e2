/*
 * The journal: the one in-flight operation of a domain, in
 * <statedir>/snapshots/<uuid>/.journal.json (a dot-file, like every
 * non-snapshot file of the directory, so no snapshot name can collide).
 *
 * The orchestrator writes it before touching anything (phase "planned") and
 * rewrites it atomically at each phase change, recording what it created and
 * what it replaced (undo records), so that after a crash the next run holding
 * the domain lock can roll the operation back or forward. This module keeps
 * the records; the recovery policy belongs to the orchestrator.
 * Not installed.
 */
#ifndef SNAP_JOURNAL_H
#define SNAP_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "snap_base.h"
#include "snap_meta_store.h"

#define SNAP_JOURNAL_VERSION 1

typedef enum snap_journal_op {
    SNAP_JOURNAL_CREATE,
    SNAP_JOURNAL_REVERT,
    SNAP_JOURNAL_DELETE,
} snap_journal_op;

/*
 * Phases, in the order operations go through them (each operation uses a
 * subset): create: planned, [memory-saved], frozen, disks-done, thawed,
 * xenstore-done, metadata-done; revert: planned, domain-stopped,
 * disks-done, xenstore-done, config-done, domain-started, metadata-done;
 * delete: planned, disks-done, xenstore-done, config-done, metadata-done.
 */
typedef enum snap_journal_phase {
    SNAP_PHASE_PLANNED,
    SNAP_PHASE_DOMAIN_STOPPED,
    SNAP_PHASE_MEMORY_SAVED,
    SNAP_PHASE_FROZEN,
    SNAP_PHASE_DISKS_DONE,
    SNAP_PHASE_THAWED,
    SNAP_PHASE_XENSTORE_DONE,
    SNAP_PHASE_CONFIG_DONE,
    SNAP_PHASE_DOMAIN_STARTED,
    SNAP_PHASE_METADATA_DONE,
} snap_journal_phase;

const char *snap_journal_op_name(snap_journal_op op);       /* "create" */
const char *snap_journal_phase_name(snap_journal_phase ph); /* "disks-done" */

/* Undo record of one disk. Strings malloc'd; NULL: nothing of that kind. */
typedef struct snap_journal_disk {
    char *vdev;
    char *image;            /* the image operated on */
    char *internal_created; /* internal snapshot this operation created on image */
    char *overlay_created;  /* overlay file this operation created */
    bool has_old;           /* the old backend values below were recorded */
    char *old_params;       /* xenstore backend "params" before the change */
    char *old_format;       /* ... and "format"/config format */
    char *old_pdev_path;    /* libxl config pdev_path before the change */
    bool done;              /* this disk's storage step completed */
    /* delete: image began to change (a merge into it, or the removal of its
     * internal snapshot); only then is a missing overlay or internal snapshot
     * this delete's own doing */
    bool merging;
    /* LVM: create: the snapshot volume it may make ("vg/lv", tagged xlsnap)
     * of lvm_origin; revert: the thin volume it re-makes of the snapshot
     * volume lvm_origin (snap_lvm_revert.h). Journaled before any lvm runs. */
    char *lvm_created;
    char *lvm_origin;
    /* revert to a classic snapshot: lvm_origin is merged into lvm_created
     * (lvconvert --merge, snap_lvm_revert.h), nothing is made */
    bool lvm_merge;
} snap_journal_disk;

typedef struct snap_journal {
    snap_journal_op op;
    char *snapshot;
    snap_journal_phase phase;
    pid_t owner_pid; /* set by begin */
    uint64_t owner_start;
    int64_t started_ms; /* CLOCK_REALTIME */
    int64_t updated_ms;
    int64_t lease_deadline_ms; /* freeze lease (CLOCK_REALTIME ms); 0: none */
    pid_t watchdog_pid;        /* 0: none */
    uint64_t watchdog_start;
    char *prev_current;   /* the current snapshot before the operation */
    char *memory_created; /* memory file this operation created */
    /* create: the overlay directory given (canonical), where overlays may be
     * besides each image's own directory; NULL: none given. */
    char *overlay_dir;
    /* The domain's state before the operation ("running", "paused",
     * "shutoff", or SNAP_JOURNAL_KEPT_SHUTDOWN), for recovery to restart it
     * accordingly; NULL: not recorded (journals of older xlsnap versions). */
    char *domain_state;
    /* create: the consistency group this snapshot is a member of (issue 20);
     * NULL: none. A member whose group record was never written is rolled
     * back by recovery even at metadata-done (snap_recover.c). */
    char *group;
    snap_journal_disk *disks;
    size_t n_disks;
} snap_journal;

/*
 * domain_state of a revert of a domain Xen kept shut down (on_poweroff=
 * "preserve"), which the revert destroys: rolled back, the domain is
 * created again paused and not booted (Xen cannot create it shut down);
 * gone forward, it is booted afresh on its reverted disks.
 */
#define SNAP_JOURNAL_KEPT_SHUTDOWN "kept-shutdown"

void snap_journal_init(snap_journal *j, snap_journal_op op, const char *snapshot);
void snap_journal_dispose(snap_journal *j);
/* Appends a disk record (valid until the next append). */
snap_journal_disk *snap_journal_add_disk(snap_journal *j, const char *vdev);
snap_journal_disk *snap_journal_find_disk(snap_journal *j, const char *vdev);
/* Records the watchdog (its start time read from /proc for pid-reuse safety). */
void snap_journal_set_watchdog(snap_journal *j, pid_t pid, int64_t lease_deadline_ms);

/*
 * Writes a new journal owned by the calling process. A journal left by an
 * earlier operation is SNAP_ERROR_BUSY naming it: it must be recovered and
 * finished first. Call with the domain lock held.
 */
int snap_journal_begin(snap_meta_store *st, snap_journal *j, snap_err *err);
/* Rewrites the journal atomically (after changing j). */
int snap_journal_update(snap_meta_store *st, snap_journal *j, snap_err *err);
/* Sets the phase and rewrites. */
int snap_journal_set_phase(snap_meta_store *st, snap_journal *j, snap_journal_phase ph,
                           snap_err *err);
/* The operation is over (done or rolled back): removes the journal. */
int snap_journal_finish(snap_meta_store *st, snap_err *err);
/*
 * Loads the journal into j (initialised here). *found false (and 0) when
 * there is none. A damaged journal is an error naming the file and field.
 */
int snap_journal_load(snap_meta_store *st, snap_journal *j, bool *found, snap_err *err);

/*
 * Renames the journal (whatever it holds, a symlink itself) to
 * .journal.json.discarded-<UTC time> in the same directory, never over an
 * existing file; *moved_to: its path (malloc'd).
 */
int snap_journal_move_aside(snap_meta_store *st, char **moved_to, snap_err *err);

/* The owner (resp. watchdog) process still runs: same pid and start time. */
bool snap_journal_owner_alive(const snap_journal *j);
bool snap_journal_watchdog_alive(const snap_journal *j);
/* The freeze lease has run out at now_ms (CLOCK_REALTIME). */
bool snap_journal_lease_expired(const snap_journal *j, int64_t now_ms);

char *snap_journal_to_json(const snap_journal *j);
int snap_journal_from_json(snap_journal *j, const char *text, const char *what,
                           snap_err *err);

#endif
