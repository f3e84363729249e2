/* A table from names to indexes into an array; see snap_name_hash.h. */
#include "snap_name_hash.h"

#include <string.h>

/* FNV-1a. */
static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

void snap_name_hash_init(snap_name_hash *h, size_t n)
{
    h->size = 16;
    while (h->size < 2 * n)
        h->size *= 2;
    h->slots = snap_xcalloc(h->size, sizeof *h->slots);
    snap_prefault(h->slots, h->size * sizeof *h->slots);
}

size_t snap_name_hash_slot(const snap_name_hash *h, const char *name,
                           const char *(*key)(const void *, size_t), const void *ctx)
{
    size_t mask = h->size - 1, s = hash_str(name) & mask;
    while (h->slots[s] && strcmp(key(ctx, h->slots[s] - 1), name) != 0)
        s = (s + 1) & mask;
    return s;
}
