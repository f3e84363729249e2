/*
 * External overlays for a device model that cannot open host paths (Xen's
 * dm_restrict=1: QEMU runs as another user, chrooted). libsnap makes each
 * overlay itself, opens it and hands QEMU the descriptor; QEMU adds it as a
 * node, and the transaction's blockdev-snapshot actions put the nodes on
 * top (snap_qmp_fdset.c is the protocol, this is the policy).
 *
 * The held descriptors, and what each covers:
 *  - QEMU's copy in the fdset (opaque "libsnap:<overlay>") stays while the
 *    node uses it: it is how libsnap still knows the node's path, since
 *    QEMU calls the file "/dev/fdset/N" (snap_qmp_disks_resolve_fdsets), so
 *    a rollback finds the overlay it must merge back before removing it;
 *  - the original images stay open in QEMU as the new overlays' backing
 *    nodes: no image is reopened by path, so a refused transaction leaves
 *    the disks on the very descriptors they had;
 *  - libsnap's own descriptor is closed once QEMU holds its copy;
 *  - a merge base's set (a read-only and a read-write fd) stays while its
 *    node does: a commit into it, now or later, takes the read-write one,
 *    and QEMU's return to read-only after an intermediate commit the other.
 * Sets that no node uses any more (a refused transaction, a merge, a run
 * that died) are removed on the way out (snap_domain_qmp_close).
 */
#ifndef SNAP_FDPASS_H
#define SNAP_FDPASS_H

#include "snap_plan.h"

typedef struct snap_fdpass_disk {
    const snap_plan_disk *pd;
    bool file_made;  /* the overlay file exists because of us */
    long long fdset; /* -1: none added */
    bool node_added;
} snap_fdpass_disk;

typedef struct snap_fdpass {
    snap_fdpass_disk *d;
    size_t n;
} snap_fdpass;

/*
 * For every external disk of plan: the overlay made (qemu-img, backing
 * named in its header; owner, group and mode copied from the image under
 * it), opened read-write, added to a new fdset, and a qcow2 node named
 * pd->overlay_node added on it. Before the freeze. On failure, what was
 * done is undone (snap_fdpass_abort) and the error names the disk.
 */
int snap_fdpass_prepare(snap_ctx *ctx, snap_qmp *qmp, const snap_plan *plan,
                        snap_fdpass *fp, snap_err *err);
/* The transaction was refused or never sent: nodes deleted, sets removed, files unlinked.
 */
void snap_fdpass_abort(snap_ctx *ctx, snap_qmp *qmp, snap_fdpass *fp);
void snap_fdpass_dispose(snap_fdpass *fp);

/*
 * Before a live merge of q's image at depth into the one below it (the
 * base), on a confined QEMU: a base QEMU opened by itself from an image
 * header at start (an auto-named node, "#blockNNN") is open read-only, and
 * a commit would reopen it read-write by path, which the chroot forbids.
 * So each auto-named image from the base up to the nearest named node
 * above it is opened here (O_RDONLY and O_RDWR, into one fdset each,
 * opaque "libsnap:<path>"), added as a new node "<vdev>-fd<set>" with the
 * same backing, and the named node is reopened onto them
 * (blockdev-reopen): the commit then gets its read-write descriptor from
 * the set, and QEMU makes the base read-only again itself after an
 * intermediate commit (again from the set). The sets stay while the nodes
 * do (snap_fdpass.h, above). *replaced: the chain's node names changed
 * (query the disks again). On failure the new nodes are deleted and the
 * sets removed before returning: the chain is as it was.
 */
int snap_fdpass_open_merge_base(snap_ctx *ctx, snap_qmp *qmp, const snap_qmp_disk *q,
                                size_t depth, const char *vdev, bool *replaced,
                                snap_err *err);

#endif
