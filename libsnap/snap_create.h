/*
 * snapshot-create's steps for one member of a consistency group
 * (snap_group.c orchestrates N of them): the same plan, journal, freeze,
 * transaction, thaw, switch and record as snap_create, cut into phases so
 * that the group runs each phase on every member before the next (in
 * parallel for the freeze, the transaction and the thaw). Not installed.
 *
 * A shut-off member (offline) has no QEMU and no window: its disks are
 * cut by snap_create_member_cut_offline (qemu-img and lvcreate children,
 * as snapshot-create's offline create) before any guest is frozen or
 * paused; connect, cut and thaw skip it; commit and rollback as any.
 *
 * A member's phases, each skipped once mb->rc is set:
 *   prepare (session: lock, recovery; plan; agent; journal "planned")
 *   -> connect (QMP, overlays, the transaction built; no QMP for a domain
 *      whose disks are all LVM volumes)
 *   -> freeze | pause -> cut (the transaction, then the LVM snapshot
 *      volumes) -> thaw | unpause
 *   -> commit (switch, record with the group's name, "metadata-done")
 *   ... group record written ... -> finish (journal cleared).
 * On any failure of any member: rollback of every journaled member.
 */
#ifndef SNAP_CREATE_H
#define SNAP_CREATE_H

#include "snap_fdpass.h"
#include "snap_journal.h"
#include "snap_meta.h"
#include "snap_plan.h"
#include "snap_qmp.h"
#include "snap_quiesce.h"
#include "snap_session.h"

typedef struct snap_create_member {
    const char *domain; /* as the caller named it */
    bool offline;       /* shut off: cut by qemu-img before any window */
    snap_session s;
    bool session_open;
    snap_plan plan;
    bool planned;
    snap_quiesce *q; /* NULL: not quiesced */
    snap_journal j;
    bool journaled;
    snap_qmp *qmp;
    snap_qmp_tx *tx;
    snap_fdpass fp;
    bool by_fd;
    bool tx_sent;
    int tx_rc;
    bool paused_by_us;
    uint64_t pause_ms, unpause_ms; /* crash-consistent groups: snap_now_ms() */
    snap_quiesce_result qres;
    bool io_stopped;
    snap_meta m;
    int rc; /* the member's first failure, in err */
    snap_err err;
} snap_create_member;

/* Session, plan and agent (no QMP yet); then the journal, naming group. */
int snap_create_member_prepare(snap_ctx *ctx, snap_create_member *mb, const char *domain,
                               const snap_create_params *p, const char *group);
/*
 * A member's dry run: the checks of prepare (session, plan, a shut-off
 * domain's plan too, room, parent) and nothing written; its plan as
 * snapshot-create -N's JSON (malloc'd), and whether it would be frozen (a
 * running domain with an agent, quiesce not off). ctx only logs.
 */
int snap_create_member_dry_run(snap_ctx *ctx, const char *domain,
                               const snap_create_params *p, char **plan_json,
                               bool *would_freeze, bool *offline, snap_err *err);
/* The group is crash-consistent: no freeze (the agent is closed). */
void snap_create_member_no_quiesce(snap_create_member *mb);
/* QMP connected, overlays prepared, the transaction built. */
int snap_create_member_connect(snap_ctx *ctx, snap_create_member *mb);
/* A shut-off member's disks, snapshotted (no-op for a running or paused one). */
int snap_create_member_cut_offline(snap_ctx *ctx, snap_create_member *mb);
/* Freezes (thread-safe against other members). A best-effort fall-back fails. */
int snap_create_member_freeze(snap_ctx *ctx, snap_create_member *mb);
/* Pauses a running domain (crash-consistent groups). */
int snap_create_member_pause(snap_ctx *ctx, snap_create_member *mb);
int snap_create_member_unpause(snap_ctx *ctx, snap_create_member *mb);
/* What is left of the member's window for its cut. */
int snap_create_member_tx_timeout_ms(const snap_create_member *mb);
/*
 * The member's cut, as snapshot-create's: its QMP transaction (qdisk disks),
 * then its lvcreate children (LVM volumes) in what the transaction left of
 * timeout_ms when frozen (thread-safe; ctx only logs).
 */
int snap_create_member_cut(snap_ctx *ctx, snap_create_member *mb, int timeout_ms);
/* Thaws (thread-safe), checks QEMU's state; the member's window in qres. */
int snap_create_member_thaw(snap_ctx *ctx, snap_create_member *mb);
/* Milliseconds since the member's freeze was sent (0: none was). */
int64_t snap_create_member_since_freeze_ms(const snap_create_member *mb);
/* Closes QMP (the snapshot's identities read first when all went well). */
void snap_create_member_disconnect(snap_ctx *ctx, snap_create_member *mb);
/* Switches the disks, writes the record marked as group's, "metadata-done". */
int snap_create_member_commit(snap_ctx *ctx, snap_create_member *mb, const char *group);
/* Rolls a journaled member back (0: nothing left of it); its error in err. */
int snap_create_member_rollback(snap_ctx *ctx, snap_create_member *mb, snap_err *err);
/* Clears the journal: the member is kept. */
int snap_create_member_finish(snap_create_member *mb);
/* Thaws a guest still frozen, frees everything, releases the lock. */
void snap_create_member_dispose(snap_create_member *mb);

#endif
