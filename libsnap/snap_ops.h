/*
 * The single-domain operations themselves (snap_create.c, snap_revert.c,
 * snap_delete.c), without what their public entry points (snap_ops.c) do
 * first: finish an interrupted group operation naming the domain. The
 * group code (snap_group.c, snap_group_pending.c) calls these: it holds
 * the groups lock already, and taking it again would deadlock. Not
 * installed.
 */
#ifndef SNAP_OPS_H
#define SNAP_OPS_H

#include "libsnap.h"

int snap_create_domain(snap_ctx *ctx, const char *domain, const snap_create_params *p,
                       snap_info **info_out, char **plan_out);
int snap_revert_domain(snap_ctx *ctx, const char *domain, const char *name,
                       const snap_revert_params *p, char **plan_out);
int snap_delete_domain(snap_ctx *ctx, const char *domain, const char *name,
                       const snap_delete_params *p, char **plan_out);

#endif
