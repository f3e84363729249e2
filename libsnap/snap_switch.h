/*
 * Switching disks to other images in the toolstack's view: xenstore and
 * the stored libxl config (snap_switch.c). Not installed.
 */
#ifndef SNAP_SWITCH_H
#define SNAP_SWITCH_H

#include "snap_internal.h"

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

#endif
