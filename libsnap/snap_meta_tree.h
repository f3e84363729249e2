/*
 * The tree of a domain's snapshots, derived from their records' parent
 * links (snap_meta_tree.c). Not installed.
 */
#ifndef SNAP_META_TREE_H
#define SNAP_META_TREE_H

#include "snap_meta.h"

#define SNAP_META_NONE ((size_t)-1)

typedef struct snap_meta_node {
    snap_meta_entry e;
    size_t parent;    /* index, or SNAP_META_NONE for roots */
    size_t *children; /* indexes, in creation order */
    size_t n_children;
    unsigned depth;       /* 0 for roots */
    bool dangling_parent; /* names a parent that does not exist (shown as a root) */
    bool in_cycle;        /* its parent chain looped (shown as a root) */
} snap_meta_node;

typedef struct snap_meta_tree {
    snap_meta_node *nodes; /* in creation order (time, then name) */
    size_t n;
    size_t current;  /* index, or SNAP_META_NONE */
    char **problems; /* hand-edit damage found: unreadable files, cycles, ... */
    size_t n_problems;
    size_t *hash_; /* private: name lookup */
    size_t hash_size_;
} snap_meta_tree;

void snap_meta_tree_init(snap_meta_tree *t);
void snap_meta_tree_dispose(snap_meta_tree *t);
/*
 * Lists the domain's snapshots and derives the tree. Uses and refreshes the
 * .index cache (entries keyed by inode, size, mtime and ctime of each file;
 * the per-snapshot files are always the truth). Damaged files are reported
 * in t->problems and left out, not fatal.
 */
int snap_meta_tree_load(snap_meta_store *st, snap_meta_tree *t, snap_err *err);
/*
 * Builds the tree from entries (ownership of the array and its strings passes
 * to t) and current's name (may be NULL). For callers with their own entries.
 */
void snap_meta_tree_build(snap_meta_tree *t, snap_meta_entry *entries, size_t n,
                          const char *current);

size_t snap_meta_tree_find(const snap_meta_tree *t, const char *name);
/* Descendants of node i in depth-first pre-order (malloc'd, *n set; i excluded). */
size_t *snap_meta_tree_descendants(const snap_meta_tree *t, size_t i, size_t *n);
/* Roots (resp. leaves) in creation order (malloc'd, *n set). */
size_t *snap_meta_tree_roots(const snap_meta_tree *t, size_t *n);
size_t *snap_meta_tree_leaves(const snap_meta_tree *t, size_t *n);

/*
 * Makes every child of name a child of new_parent (NULL: they become roots),
 * one atomic write per child. Idempotent: re-running it after a crash
 * finishes the job. Used by delete before snap_meta_remove.
 */
int snap_meta_reparent_children(snap_meta_store *st, const char *name,
                                const char *new_parent, snap_err *err);

#endif
