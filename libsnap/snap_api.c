/*
 * Public entry points whose work lives elsewhere: snapshot-revert is in
 * snap_revert.c, snapshot-delete in snap_delete.c. Kept for the parameter
 * helpers' neighbours in snap_ctx.c.
 */
#include "snap_internal.h"
