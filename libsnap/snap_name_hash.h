/*
 * A table from names to indexes into an array the caller owns (the
 * snapshots of a listing, the nodes of a tree), by open addressing: slot s
 * holds index + 1, 0 is empty. Not installed.
 */
#ifndef SNAP_NAME_HASH_H
#define SNAP_NAME_HASH_H

#include <stddef.h>

#include "snap_base.h"

typedef struct snap_name_hash {
    size_t *slots; /* malloc'd; free(slots) disposes */
    size_t size;   /* a power of two, at least twice the entries */
} snap_name_hash;

/* Room for n names, all slots empty. */
void snap_name_hash_init(snap_name_hash *h, size_t n);
/*
 * The slot holding name, or the empty slot where it would go; key(ctx, i)
 * is the name of index i.
 */
size_t snap_name_hash_slot(const snap_name_hash *h, const char *name,
                           const char *(*key)(const void *, size_t), const void *ctx);

#endif
