/*
 * Overlay file names (snap_overlay_name.c). Not installed.
 */
#ifndef SNAP_OVERLAY_NAME_H
#define SNAP_OVERLAY_NAME_H

#include "snap_base.h"

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

#endif
