/*
 * The domain as the orchestrator sees it, resolved from the platform,
 * xenstore, the stored libxl config and its device model's QMP
 * (snap_domain.c), and the QMP connection to its device model. Not
 * installed.
 */
#ifndef SNAP_DOMAIN_H
#define SNAP_DOMAIN_H

#include "snap_internal.h"
#include "snap_lvm.h"
#include "snap_qmp.h"
#include "snap_xs.h"

/* Guest-agent channel name libxl users give qemu-ga. */
#define SNAP_AGENT_CHANNEL "org.qemu.guest_agent.0"
/* QMP commands outside the frozen window (inside it: snap_timeline.h). */
#define SNAP_QMP_TIMEOUT_MS 10000
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
    /* phy: disks on an LVM logical volume: what lvs says, or why it could not */
    snap_lv *lv;
    char *lv_error;
    bool lv_refused; /* lv_error is a refusal to show as it is (the wrong device) */
} snap_vdisk;

typedef struct snap_domain {
    snap_domain_ref ref;
    snap_vdisk *disks;
    size_t n_disks;
    snap_xs_disk *xs_disks; /* owned; disks[i].xs points into it */
    char *qmp_path;         /* NULL when no device model runs */
    /*
     * Shut down but kept by Xen (on_poweroff="preserve"), its device model
     * still running: that QMP socket. QEMU still holds its qdisk images
     * (locked) until the domain is destroyed. NULL otherwise.
     */
    char *kept_dm_socket;
    char *agent_path;   /* the agent channel's socket, NULL when none */
    bool io_error_stop; /* QEMU stopped the guest on an I/O error (io-error) */
    char *config;       /* the stored libxl-json, as stored (NUL-terminated) */
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
/*
 * Shut down but kept by Xen (on_poweroff="preserve", `xl list` state s):
 * on a platform that forgets a stopped domain, a shut-off domain it still
 * lists. Its backends hold its disks until it is destroyed.
 */
bool snap_domain_kept_shutdown(const snap_ctx *ctx, const snap_domain_ref *ref);

/* Finds the domain and everything about its disks; validates consistency. */
int snap_domain_resolve(snap_ctx *ctx, const char *qualifier, snap_domain *dom,
                        snap_err *err);
void snap_domain_dispose(snap_domain *dom);
snap_vdisk *snap_domain_find_disk(snap_domain *dom, const char *vdev);

#endif
