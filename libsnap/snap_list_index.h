/*
 * Listing a domain's snapshots (snap_list_index.c), for snap_meta_tree.c
 * only: every "<name>.json" in the store is stat'ed (over a few threads in a
 * large directory) and summarised from the .index cache when its inode,
 * size, mtime and ctime match the cached row, else parsed; a changed
 * listing is written back as the index. The per-snapshot files are always
 * the truth: the index is a cache, rebuilt whenever it is stale or
 * malformed. Not installed.
 */
#ifndef SNAP_LIST_INDEX_H
#define SNAP_LIST_INDEX_H

#include "snap_meta_tree.h"

/*
 * The snapshots of st: *nodes (malloc'd, never NULL) holds *n nodes, each
 * with its summary (e) filled and nothing else, in creation order when the
 * index covered them all; *problems (malloc'd strings) the damage found:
 * unreadable records, invalid names, files that are not regular.
 */
int snap_list_index_load(snap_meta_store *st, snap_meta_node **nodes, size_t *n,
                         char ***problems, size_t *n_problems, snap_err *err);

#endif
