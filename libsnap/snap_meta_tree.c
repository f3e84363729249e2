/*
 * The tree of a domain's snapshots, derived from their parent links (the
 * summaries come from the listing, snap_list_index.c); see
 * snap_meta_tree.h. Name lookups go through a hash table, so building the
 * tree is linear in the number of snapshots but for the sort into creation
 * order (which the listing usually makes a single pass).
 */
#include "snap_meta_tree.h"

#include <stdlib.h>
#include <string.h>

#include "snap_list_index.h"
#include "snap_meta_io.h"
#include "snap_name_hash.h"

/* ------------------------------------------------------------- the tree */

void snap_meta_tree_init(snap_meta_tree *t)
{
    memset(t, 0, sizeof *t);
    t->current = SNAP_META_NONE;
}

void snap_meta_tree_dispose(snap_meta_tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        snap_meta_entry_dispose(&t->nodes[i].e);
    free(t->nodes);
    snap_strv_free(t->problems, t->n_problems);
    free(t->hash_);
    snap_meta_tree_init(t);
}

/*
 * Nodes from the index come sorted: one pass instead of qsort's n log n.
 * (An entry is the first member of a node, so snap_meta_entry_by_creation sorts nodes
 * too.)
 */
static void sort_nodes(snap_meta_tree *t)
{
    for (size_t i = 1; i < t->n; i++)
        if (snap_meta_entry_by_creation(&t->nodes[i - 1].e, &t->nodes[i].e) > 0) {
            qsort(t->nodes, t->n, sizeof *t->nodes, snap_meta_entry_by_creation);
            return;
        }
}

static const char *node_name_at(const void *ctx, size_t i)
{
    return ((const snap_meta_tree *)ctx)->nodes[i].e.name;
}

size_t snap_meta_tree_find(const snap_meta_tree *t, const char *name)
{
    if (!name || !t->hash_size_)
        return SNAP_META_NONE;
    snap_name_hash h = {t->hash_, t->hash_size_};
    size_t s = snap_name_hash_slot(&h, name, node_name_at, t);
    return h.slots[s] ? h.slots[s] - 1 : SNAP_META_NONE;
}

static void tree_problem(snap_meta_tree *t, char *msg)
{
    t->problems = snap_strv_add(t->problems, &t->n_problems, msg);
}

/* Walks up from start; a parent chain that comes back on itself is cut. */
static void break_cycle_from(snap_meta_tree *t, size_t start, unsigned char *mark)
{
    size_t i = start;
    while (i != SNAP_META_NONE && mark[i] == 0) {
        mark[i] = 1; /* on the current walk */
        i = t->nodes[i].parent;
    }
    if (i != SNAP_META_NONE && mark[i] == 1) {
        /* i is on a loop: flag its members, then cut at the oldest one. */
        size_t oldest = i, j = i;
        do {
            t->nodes[j].in_cycle = true;
            oldest = j < oldest ? j : oldest;
            j = t->nodes[j].parent;
        } while (j != i);
        tree_problem(t, snap_xasprintf("snapshot '%s': parent links form a cycle; shown "
                                       "as a root",
                                       t->nodes[oldest].e.name));
        t->nodes[oldest].parent = SNAP_META_NONE;
    }
    for (i = start; i != SNAP_META_NONE && mark[i] == 1; i = t->nodes[i].parent)
        mark[i] = 2; /* settled */
}

static void link_parents(snap_meta_tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        snap_meta_node *nd = &t->nodes[i];
        nd->parent = snap_meta_tree_find(t, nd->e.parent);
        if (nd->e.parent && nd->parent == SNAP_META_NONE) {
            nd->dangling_parent = true;
            tree_problem(t, snap_xasprintf("snapshot '%s': parent '%s' does not exist; "
                                           "shown as a root",
                                           nd->e.name, nd->e.parent));
        }
    }
    unsigned char *mark = snap_xcalloc(t->n, 1);
    for (size_t i = 0; i < t->n; i++)
        if (!mark[i])
            break_cycle_from(t, i, mark);
    free(mark);
}

/*
 * Children lists in creation order, then depths from the roots down. The
 * lists share one block (pool: t->n slots, as every node has one parent at
 * most) instead of a malloc per node.
 */
static void link_children(snap_meta_tree *t, size_t *pool)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->nodes[i].parent != SNAP_META_NONE)
            t->nodes[t->nodes[i].parent].n_children++;
    for (size_t i = 0, used = 0; i < t->n; i++) {
        snap_meta_node *nd = &t->nodes[i];
        nd->children = nd->n_children ? pool + used : NULL;
        used += nd->n_children;
        nd->n_children = 0;
    }
    for (size_t i = 0; i < t->n; i++)
        if (t->nodes[i].parent != SNAP_META_NONE) {
            snap_meta_node *p = &t->nodes[t->nodes[i].parent];
            p->children[p->n_children++] = i;
        }
    size_t *queue = snap_xmalloc((t->n ? t->n : 1) * sizeof *queue), head = 0, tail = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->nodes[i].parent == SNAP_META_NONE)
            queue[tail++] = i;
    while (head < tail) {
        snap_meta_node *nd = &t->nodes[queue[head++]];
        for (size_t c = 0; c < nd->n_children; c++) {
            t->nodes[nd->children[c]].depth = nd->depth + 1;
            queue[tail++] = nd->children[c];
        }
    }
    free(queue);
}

/*
 * Links t->nodes (t->n of them, filled): sorted, hashed, parents and children
 * found. The name hash and the children lists share t->hash_.
 */
static void link_tree(snap_meta_tree *t, const char *current)
{
    sort_nodes(t);
    snap_name_hash h;
    snap_name_hash_init(&h, t->n);
    h.slots = snap_xrealloc(h.slots, (h.size + t->n) * sizeof *h.slots);
    snap_prefault(h.slots, (h.size + t->n) * sizeof *h.slots);
    for (size_t i = 0; i < t->n; i++)
        h.slots[snap_name_hash_slot(&h, t->nodes[i].e.name, node_name_at, t)] = i + 1;
    t->hash_ = h.slots;
    t->hash_size_ = h.size;
    link_parents(t);
    link_children(t, h.slots + h.size);
    t->current = snap_meta_tree_find(t, current);
    if (current && t->current == SNAP_META_NONE)
        tree_problem(t,
                     snap_xasprintf("the current snapshot '%s' does not exist", current));
}

void snap_meta_tree_build(snap_meta_tree *t, snap_meta_entry *entries, size_t n,
                          const char *current)
{
    t->nodes = snap_xcalloc(n ? n : 1, sizeof *t->nodes);
    t->n = n;
    for (size_t i = 0; i < n; i++)
        t->nodes[i].e = entries[i];
    free(entries);
    link_tree(t, current);
}

int snap_meta_tree_load(snap_meta_store *st, snap_meta_tree *t, snap_err *err)
{
    snap_meta_tree_init(t);
    char **problems = NULL, *current = NULL;
    size_t n_problems = 0;
    int rc = snap_list_index_load(st, &t->nodes, &t->n, &problems, &n_problems, err);
    snap_err cerr;
    if (rc == 0 && snap_meta_get_current(st, &current, &cerr) < 0)
        problems = snap_strv_add(problems, &n_problems, snap_xstrdup(cerr.msg));
    link_tree(t, current);
    free(current);
    /* Problems found while listing come first. */
    for (size_t i = 0; i < t->n_problems; i++)
        problems = snap_strv_add(problems, &n_problems, t->problems[i]);
    free(t->problems);
    t->problems = problems;
    t->n_problems = n_problems;
    return rc;
}

int snap_meta_reparent_children(snap_meta_store *st, const char *name,
                                const char *new_parent, snap_err *err)
{
    snap_meta_tree t;
    int rc = snap_meta_tree_load(st, &t, err);
    for (size_t i = 0; rc == 0 && i < t.n; i++) {
        const snap_meta_entry *e = &t.nodes[i].e;
        if (!e->parent || strcmp(e->parent, name) != 0)
            continue;
        if (new_parent && strcmp(new_parent, e->name) == 0) {
            rc = snap_err_set(err, SNAP_ERROR_INVAL,
                              "cannot make snapshot '%s' its own parent", e->name);
            break;
        }
        snap_meta m;
        rc = snap_meta_load(st, e->name, &m, err);
        if (rc < 0)
            break;
        free(m.parent);
        m.parent = new_parent ? snap_xstrdup(new_parent) : NULL;
        rc = snap_meta_save(st, &m, false, err);
        snap_meta_dispose(&m);
    }
    snap_meta_tree_dispose(&t);
    if (rc < 0)
        snap_err_context(err, "reparenting the children of snapshot '%s'", name);
    return rc;
}

/* ------------------------------------------------------------- queries */

size_t *snap_meta_tree_descendants(const snap_meta_tree *t, size_t i, size_t *n)
{
    size_t *out = snap_xmalloc((t->n ? t->n : 1) * sizeof *out), count = 0;
    size_t *stack = snap_xmalloc((t->n ? t->n : 1) * sizeof *stack), top = 0;
    const snap_meta_node *nd = &t->nodes[i];
    for (size_t c = nd->n_children; c-- > 0;)
        stack[top++] = nd->children[c];
    while (top > 0) {
        size_t j = stack[--top];
        out[count++] = j;
        for (size_t c = t->nodes[j].n_children; c-- > 0;)
            stack[top++] = t->nodes[j].children[c];
    }
    free(stack);
    *n = count;
    return out;
}

static size_t *select_nodes(const snap_meta_tree *t, bool roots, size_t *n)
{
    size_t *out = snap_xmalloc((t->n ? t->n : 1) * sizeof *out), count = 0;
    for (size_t i = 0; i < t->n; i++)
        if (roots ? t->nodes[i].parent == SNAP_META_NONE : t->nodes[i].n_children == 0)
            out[count++] = i;
    *n = count;
    return out;
}

size_t *snap_meta_tree_roots(const snap_meta_tree *t, size_t *n)
{
    return select_nodes(t, true, n);
}

size_t *snap_meta_tree_leaves(const snap_meta_tree *t, size_t *n)
{
    return select_nodes(t, false, n);
}
