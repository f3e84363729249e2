/*
 * Internal snapshot identity (snap_qsnap_identity.c): is the entry QEMU
 * lists now the one the record describes? Not installed.
 */
#ifndef SNAP_QSNAP_IDENTITY_H
#define SNAP_QSNAP_IDENTITY_H

#include "snap_meta.h"
#include "snap_qemuimg.h"
#include "snap_qmp.h"

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

#endif
