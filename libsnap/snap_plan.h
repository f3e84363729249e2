/*
 * The plan of a snapshot: which disks, which method, which files, which
 * quiesce policy, checked before anything is touched (snap_plan.c). Not
 * installed.
 */
#ifndef SNAP_PLAN_H
#define SNAP_PLAN_H

#include "snap_domain.h"
#include "snap_meta.h"
#include "snap_meta_store.h"
#include "snap_timeline.h"

/* Longest backing chain an external snapshot may grow. */
#define SNAP_MAX_CHAIN 32
/* Defaults when the caller leaves the freeze timeout or the lease unset (<= 0). */
#define SNAP_DEFAULT_FREEZE_TIMEOUT_MS 10000
#define SNAP_DEFAULT_LEASE_MS          10000

typedef struct snap_plan_disk {
    snap_vdisk *disk;
    snap_method method; /* INTERNAL, EXTERNAL, LVM_THIN or LVM */
    bool via_qmp;       /* in the QMP transaction; else qemu-img children */
    char *overlay_path; /* EXTERNAL */
    char *overlay_node; /* EXTERNAL via QMP: the new node's name */
    /* INTERNAL, once taken: the entry as QEMU lists it (for the record) */
    char *qemu_snap_id;
    snap_meta_qsnap_stamp qemu_snap_stamp;
    /* LVM_THIN or LVM: snapshot volume vg/lvm_name of vg/lv (disk->lv) */
    char *lvm_name;
    uint64_t lvm_cow_bytes; /* LVM (classic): its copy-on-write space */
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

#endif
