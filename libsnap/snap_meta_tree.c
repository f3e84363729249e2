/*
 * Listing a domain's snapshots (with the .index cache) and the tree derived
 * from their parent links; see snap_meta.h.
 *
 * Listing cost: one readdir and one fstatat per snapshot, plus one parse of
 * the index; a record file is parsed only when its (inode, size, mtime,
 * ctime) differs from the index, and the index is rewritten only then.
 * Name lookups go through a hash table, so everything but the sort into
 * creation order is linear in the number of snapshots.
 */
#include "snap_meta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "snap_json.h"

#define INDEX_FILE    ".index"
#define INDEX_VERSION 1

/* ------------------------------------------------------------- name hash */

/* Open addressing over indexes into an array of names; slot 0 = empty. */
typedef struct name_hash {
    size_t *slots;
    size_t size; /* a power of two, at least twice the entries */
} name_hash;

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void nh_init(name_hash *h, size_t n)
{
    h->size = 16;
    while (h->size < 2 * n)
        h->size *= 2;
    h->slots = snap_xcalloc(h->size, sizeof *h->slots);
}

/* The slot holding name, or the empty slot where it would go. */
static size_t nh_slot(const name_hash *h, const char *name,
                      const char *(*key)(const void *, size_t), const void *ctx)
{
    size_t mask = h->size - 1, s = hash_str(name) & mask;
    while (h->slots[s] && strcmp(key(ctx, h->slots[s] - 1), name) != 0)
        s = (s + 1) & mask;
    return s;
}

/* ------------------------------------------------------------- entries */

void snap_meta_entry_dispose(snap_meta_entry *e)
{
    free(e->name);
    free(e->parent);
    free(e->description);
    memset(e, 0, sizeof *e);
}

void snap_meta_entry_from_meta(snap_meta_entry *e, const snap_meta *m)
{
    memset(e, 0, sizeof *e);
    e->name = snap_xstrdup(m->name);
    e->parent = m->parent ? snap_xstrdup(m->parent) : NULL;
    e->description = m->description ? snap_xstrdup(m->description) : NULL;
    e->ctime_sec = m->ctime_sec;
    e->ctime_nsec = m->ctime_nsec;
    e->domstate = m->domain.state;
    e->n_disks = (unsigned)m->n_disks;
    for (size_t i = 0; i < m->n_disks; i++) {
        if (m->disks[i].method == SNAP_METHOD_INTERNAL)
            e->n_internal++;
        else
            e->n_external++;
    }
    e->n_excluded = (unsigned)m->n_excluded;
    e->consistency = m->quiesce.state;
    e->has_memory = m->has_memory;
}

/* One snapshot file found in the directory, with its cache key. */
typedef struct listed {
    snap_meta_entry e;
    long long key[6]; /* inode, size, mtime s/ns, ctime s/ns */
    bool have_entry;
} listed;

typedef struct listing {
    listed *items;
    size_t n, cap;
    char **problems;
    size_t n_problems;
    bool dirty; /* the index must be rewritten */
} listing;

static void add_problem(char ***problems, size_t *n, char *msg)
{
    *problems = snap_xrealloc(*problems, (*n + 1) * sizeof **problems);
    (*problems)[(*n)++] = msg;
}

static void stat_key(const struct stat *sb, long long key[6])
{
    key[0] = (long long)sb->st_ino;
    key[1] = (long long)sb->st_size;
    key[2] = (long long)sb->st_mtim.tv_sec;
    key[3] = sb->st_mtim.tv_nsec;
    key[4] = (long long)sb->st_ctim.tv_sec;
    key[5] = sb->st_ctim.tv_nsec;
}

/* Considers one directory entry: a "<valid name>.json" regular file is listed. */
static void consider_file(snap_meta_store *st, listing *l, const char *fname)
{
    size_t len = strlen(fname);
    if (fname[0] == '.' || len <= 5 || strcmp(fname + len - 5, ".json") != 0)
        return;
    char *name = snap_xstrdup(fname);
    name[len - 5] = '\0';
    struct stat sb;
    if (!snap_meta_name_valid(name)) {
        add_problem(
            &l->problems, &l->n_problems,
            snap_xasprintf("%s/%s: not a valid snapshot name, ignored", st->dir, fname));
    } else if (fstatat(st->dirfd, fname, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        /* Removed while we listed: it is simply gone. */
    } else if (!S_ISREG(sb.st_mode)) {
        add_problem(&l->problems, &l->n_problems,
                    snap_xasprintf("%s/%s: not a regular file, ignored", st->dir, fname));
    } else {
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 64;
            l->items = snap_xrealloc(l->items, l->cap * sizeof *l->items);
        }
        listed *it = &l->items[l->n++];
        memset(it, 0, sizeof *it);
        it->e.name = name;
        stat_key(&sb, it->key);
        return;
    }
    free(name);
}

static int read_dir(snap_meta_store *st, listing *l, snap_err *err)
{
    int fd = dup(st->dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot read %s", st->dir);
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        consider_file(st, l, de->d_name);
    closedir(d);
    return 0;
}

/* ------------------------------------------------------------- the index */

/*
 * .index is a cache, never the truth:
 *   {"version": 1, "entries": [[name, inode, size, mtime_s, mtime_ns, ctime_s,
 *     ctime_ns, parent, description, created_s, created_ns, domstate, disks,
 *     internal, external, excluded, consistency, memory], ...]}
 * (positional arrays: a tenth of the parse work of objects with keys).
 */
enum {
    IX_NAME,
    IX_KEY,
    IX_PARENT = 7,
    IX_DESC,
    IX_CSEC,
    IX_CNSEC,
    IX_STATE,
    IX_DISKS,
    IX_INT,
    IX_EXT,
    IX_EXCL,
    IX_CONS,
    IX_MEM,
    IX_LEN
};

/*
 * The index is read with yajl's event parser straight into rows: yajl_tree
 * would allocate a node per value and grows arrays one element at a time,
 * which made 10,000 rows quadratic.
 */
typedef struct index_parse {
    int depth; /* 1: root object, 2: entries array, 3: a row */
    int key;   /* member of the root being read: 1 version, 2 entries, 0 other */
    long long version;
    int col;    /* column within the current row */
    listed row; /* the row being read */
    listed *rows;
    size_t n, cap;
} index_parse;

static int ix_value_ok(index_parse *p, int col_lo, int col_hi)
{
    return p->depth == 3 && p->col >= col_lo && p->col <= col_hi;
}

static int ix_null(void *ctx)
{
    index_parse *p = ctx;
    if (!(ix_value_ok(p, IX_PARENT, IX_DESC)))
        return 0;
    p->col++;
    return 1;
}

static int ix_bool(void *ctx, int b)
{
    index_parse *p = ctx;
    if (!ix_value_ok(p, IX_MEM, IX_MEM))
        return 0;
    p->row.e.has_memory = b != 0;
    p->col++;
    return 1;
}

static int ix_int(void *ctx, long long v)
{
    index_parse *p = ctx;
    if (p->depth == 1 && p->key == 1) {
        p->version = v;
        return 1;
    }
    if (!ix_value_ok(p, IX_KEY, IX_CONS) || p->col == IX_PARENT || p->col == IX_DESC ||
        v < 0 || v > INT64_MAX / 2)
        return 0;
    snap_meta_entry *e = &p->row.e;
    switch (p->col) {
    case IX_CSEC: e->ctime_sec = v; break;
    case IX_CNSEC: e->ctime_nsec = (int32_t)(v % 1000000000); break;
    case IX_STATE:
        if (v > SNAP_DOMAIN_SHUTOFF)
            return 0;
        e->domstate = (snap_domain_state)v;
        break;
    case IX_DISKS: e->n_disks = (unsigned)v; break;
    case IX_INT: e->n_internal = (unsigned)v; break;
    case IX_EXT: e->n_external = (unsigned)v; break;
    case IX_EXCL: e->n_excluded = (unsigned)v; break;
    case IX_CONS:
        if (v > SNAP_META_CRASH_CONSISTENT)
            return 0;
        e->consistency = (snap_meta_consistency)v;
        break;
    default: p->row.key[p->col - IX_KEY] = v; break;
    }
    p->col++;
    return 1;
}

static int ix_string(void *ctx, const unsigned char *s, size_t len)
{
    index_parse *p = ctx;
    if (!(ix_value_ok(p, IX_NAME, IX_NAME) || ix_value_ok(p, IX_PARENT, IX_DESC)))
        return 0;
    char *copy = snap_xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    char **slot = p->col == IX_NAME     ? &p->row.e.name
                  : p->col == IX_PARENT ? &p->row.e.parent
                                        : &p->row.e.description;
    *slot = copy;
    p->col++;
    return 1;
}

static int ix_map_key(void *ctx, const unsigned char *s, size_t len)
{
    index_parse *p = ctx;
    p->key = len == 7 && memcmp(s, "version", 7) == 0   ? 1
             : len == 7 && memcmp(s, "entries", 7) == 0 ? 2
                                                        : 0;
    return p->depth == 1 && p->key != 0;
}

static int ix_start_map(void *ctx)
{
    index_parse *p = ctx;
    return p->depth++ == 0;
}

static int ix_end_map(void *ctx)
{
    index_parse *p = ctx;
    return p->depth-- == 1;
}

static int ix_start_array(void *ctx)
{
    index_parse *p = ctx;
    if (!((p->depth == 1 && p->key == 2) || p->depth == 2))
        return 0;
    if (p->depth++ == 2) {
        memset(&p->row, 0, sizeof p->row);
        p->col = 0;
    }
    return 1;
}

static int ix_end_array(void *ctx)
{
    index_parse *p = ctx;
    if (p->depth-- != 3)
        return 1;
    if (p->col != IX_LEN || !p->row.e.name)
        return 0;
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->rows = snap_xrealloc(p->rows, p->cap * sizeof *p->rows);
    }
    p->rows[p->n++] = p->row;
    memset(&p->row, 0, sizeof p->row);
    return 1;
}

static const yajl_callbacks index_callbacks = {
    ix_null,      ix_bool,    ix_int,     NULL,           NULL,        ix_string,
    ix_start_map, ix_map_key, ix_end_map, ix_start_array, ix_end_array};

static void rows_free(listed *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snap_meta_entry_dispose(&rows[i].e);
    free(rows);
}

/* The index's rows (*n of them); none when it is missing, damaged or stale in format. */
static listed *read_index(snap_meta_store *st, size_t *n)
{
    char *text = NULL;
    size_t len = 0;
    index_parse p;
    memset(&p, 0, sizeof p);
    *n = 0;
    if (snap_meta_store_read(st, INDEX_FILE, &text, &len, NULL) < 0)
        return NULL;
    yajl_handle h = yajl_alloc(&index_callbacks, NULL, &p);
    bool ok = h && yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
              yajl_complete_parse(h) == yajl_status_ok && p.version == INDEX_VERSION;
    if (h)
        yajl_free(h);
    free(text);
    snap_meta_entry_dispose(&p.row.e); /* a row cut short by an error */
    if (!ok) {
        rows_free(p.rows, p.n);
        return NULL;
    }
    *n = p.n;
    return p.rows;
}

static const char *row_name_at(const void *ctx, size_t i)
{
    return ((const listed *)ctx)[i].e.name;
}

/* Takes what it can from the index; anything missing or stale marks it dirty. */
static void apply_index(snap_meta_store *st, listing *l)
{
    size_t n = 0, used = 0;
    listed *rows = read_index(st, &n);
    name_hash h;
    nh_init(&h, n);
    for (size_t i = 0; i < n; i++) {
        size_t s = nh_slot(&h, rows[i].e.name, row_name_at, rows);
        if (!h.slots[s])
            h.slots[s] = i + 1;
    }
    for (size_t i = 0; i < l->n; i++) {
        listed *it = &l->items[i];
        size_t s = nh_slot(&h, it->e.name, row_name_at, rows);
        listed *row = h.slots[s] ? &rows[h.slots[s] - 1] : NULL;
        if (!row || memcmp(row->key, it->key, sizeof it->key) != 0)
            continue;
        /* Move the row's entry over; the row keeps an equal name for the hash. */
        char *name = it->e.name;
        it->e = row->e;
        memset(&row->e, 0, sizeof row->e);
        row->e.name = name;
        it->have_entry = true;
        used++;
    }
    l->dirty = used != n || used != l->n;
    free(h.slots);
    rows_free(rows, n);
}

static void gen_index_row(yajl_gen g, const listed *it)
{
    const snap_meta_entry *e = &it->e;
    yajl_gen_array_open(g);
    snap_json_str(g, e->name);
    for (int k = 0; k < 6; k++)
        snap_json_int(g, it->key[k]);
    snap_json_str(g, e->parent);
    snap_json_str(g, e->description);
    snap_json_int(g, e->ctime_sec);
    snap_json_int(g, e->ctime_nsec);
    snap_json_int(g, e->domstate);
    snap_json_int(g, e->n_disks);
    snap_json_int(g, e->n_internal);
    snap_json_int(g, e->n_external);
    snap_json_int(g, e->n_excluded);
    snap_json_int(g, e->consistency);
    snap_json_bool(g, e->has_memory);
    yajl_gen_array_close(g);
}

/* Best effort: a reader without write access simply lists without caching. */
static void write_index(snap_meta_store *st, const listing *l)
{
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_kv_int(g, "version", INDEX_VERSION);
    snap_json_key(g, "entries");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].have_entry)
            gen_index_row(g, &l->items[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    size_t len;
    char *text = snap_json_gen_finish(g, &len);
    snap_meta_store_write(st, INDEX_FILE, text, len, NULL);
    free(text);
}

/* Parses the record files the index did not cover; damaged ones are dropped. */
static void load_missing(snap_meta_store *st, listing *l)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        listed *it = &l->items[i];
        if (!it->have_entry) {
            snap_meta m;
            snap_err err;
            snap_err_clear(&err);
            if (snap_meta_load(st, it->e.name, &m, &err) == 0) {
                free(it->e.name);
                snap_meta_entry_from_meta(&it->e, &m);
                it->have_entry = true;
                snap_meta_dispose(&m);
            } else if (err.code != SNAP_ERROR_NOTFOUND) {
                add_problem(&l->problems, &l->n_problems, snap_xstrdup(err.msg));
            }
        }
        if (it->have_entry)
            l->items[kept++] = *it;
        else
            snap_meta_entry_dispose(&it->e);
    }
    l->n = kept;
}

/* ------------------------------------------------------------- the tree */

void snap_meta_tree_init(snap_meta_tree *t)
{
    memset(t, 0, sizeof *t);
    t->current = SNAP_META_NONE;
}

void snap_meta_tree_dispose(snap_meta_tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        snap_meta_entry_dispose(&t->nodes[i].e);
        free(t->nodes[i].children);
    }
    free(t->nodes);
    for (size_t i = 0; i < t->n_problems; i++)
        free(t->problems[i]);
    free(t->problems);
    free(t->hash_);
    snap_meta_tree_init(t);
}

static int by_creation(const void *a, const void *b)
{
    const snap_meta_entry *x = a, *y = b;
    if (x->ctime_sec != y->ctime_sec)
        return x->ctime_sec < y->ctime_sec ? -1 : 1;
    if (x->ctime_nsec != y->ctime_nsec)
        return x->ctime_nsec < y->ctime_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

static const char *node_name_at(const void *ctx, size_t i)
{
    return ((const snap_meta_tree *)ctx)->nodes[i].e.name;
}

size_t snap_meta_tree_find(const snap_meta_tree *t, const char *name)
{
    if (!name || !t->hash_size_)
        return SNAP_META_NONE;
    name_hash h = {t->hash_, t->hash_size_};
    size_t s = nh_slot(&h, name, node_name_at, t);
    return h.slots[s] ? h.slots[s] - 1 : SNAP_META_NONE;
}

static void tree_problem(snap_meta_tree *t, char *msg)
{
    add_problem(&t->problems, &t->n_problems, msg);
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

/* Children lists in creation order, then depths from the roots down. */
static void link_children(snap_meta_tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->nodes[i].parent != SNAP_META_NONE)
            t->nodes[t->nodes[i].parent].n_children++;
    for (size_t i = 0; i < t->n; i++) {
        snap_meta_node *nd = &t->nodes[i];
        nd->children =
            nd->n_children ? snap_xmalloc(nd->n_children * sizeof(size_t)) : NULL;
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

void snap_meta_tree_build(snap_meta_tree *t, snap_meta_entry *entries, size_t n,
                          const char *current)
{
    qsort(entries, n, sizeof *entries, by_creation);
    t->nodes = snap_xcalloc(n, sizeof *t->nodes);
    t->n = n;
    for (size_t i = 0; i < n; i++)
        t->nodes[i].e = entries[i];
    free(entries);
    name_hash h;
    nh_init(&h, n);
    for (size_t i = 0; i < n; i++)
        h.slots[nh_slot(&h, t->nodes[i].e.name, node_name_at, t)] = i + 1;
    t->hash_ = h.slots;
    t->hash_size_ = h.size;
    link_parents(t);
    link_children(t);
    t->current = snap_meta_tree_find(t, current);
    if (current && t->current == SNAP_META_NONE)
        tree_problem(t,
                     snap_xasprintf("the current snapshot '%s' does not exist", current));
}

int snap_meta_tree_load(snap_meta_store *st, snap_meta_tree *t, snap_err *err)
{
    snap_meta_tree_init(t);
    listing l = {0};
    int rc = read_dir(st, &l, err);
    char *current = NULL;
    if (rc == 0) {
        apply_index(st, &l);
        load_missing(st, &l);
        if (l.dirty)
            write_index(st, &l);
        snap_err cerr;
        if (snap_meta_get_current(st, &current, &cerr) < 0)
            add_problem(&l.problems, &l.n_problems, snap_xstrdup(cerr.msg));
    }
    /* The listing's items become the tree's entries, in place. */
    snap_meta_entry *entries = snap_xmalloc((l.n ? l.n : 1) * sizeof *entries);
    for (size_t i = 0; i < l.n; i++)
        entries[i] = l.items[i].e;
    free(l.items);
    snap_meta_tree_build(t, entries, l.n, current);
    free(current);
    /* Problems found while listing come first. */
    for (size_t i = 0; i < t->n_problems; i++)
        add_problem(&l.problems, &l.n_problems, t->problems[i]);
    free(t->problems);
    t->problems = l.problems;
    t->n_problems = l.n_problems;
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
