/*
 * Journal recovery (snap_recover.c), for snap_session.c. Not installed.
 */
#ifndef SNAP_RECOVER_H
#define SNAP_RECOVER_H

#include "snap_session.h"

/*
 * Rolls back (or forward) the operation journaled in s's store when its
 * owner is gone; *recovered says whether there was one (the domain's
 * disks may have changed). SNAP_ERROR_BUSY while a live xlsnap owns it.
 */
int snap_recover_journal(snap_ctx *ctx, snap_session *s, bool *recovered, snap_err *err);

#endif
