/*
 * Listing a domain's snapshots, with the .index cache; see snap_list_index.h.
 *
 * Listing cost: one readdir and one fstatat per snapshot (over a few threads
 * in a large directory), plus one parse of the index; a record file is parsed
 * only when its (inode, size, mtime, ctime) differs from the index, and the
 * index is rewritten only then.
 * Name lookups go through a hash table, so everything but the sort into
 * creation order is linear in the number of snapshots.
 */
#include "snap_list_index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_meta_io.h"
#include "snap_name_hash.h"

#define INDEX_FILE ".index"

/* ------------------------------------------------------------- the listing */

/*
 * One snapshot file found in the directory: its cache key here, its entry in
 * the node of the same index (the nodes become the tree's, without a copy).
 */
typedef struct listed {
    long long key[6]; /* inode, size, mtime s/ns, ctime s/ns */
    bool stat_ok;     /* fstatat worked (else: removed while we listed, simply gone) */
    bool is_reg;
    bool have_entry;
} listed;

typedef struct listing {
    listed *items;
    snap_meta_node *nodes;
    size_t n, cap;
    char **problems;
    size_t n_problems;
    bool dirty; /* the index must be rewritten */
} listing;

static void stat_key(const struct stat *sb, long long key[6])
{
    key[0] = (long long)sb->st_ino;
    key[1] = (long long)sb->st_size;
    key[2] = (long long)sb->st_mtim.tv_sec;
    key[3] = sb->st_mtim.tv_nsec;
    key[4] = (long long)sb->st_ctim.tv_sec;
    key[5] = sb->st_ctim.tv_nsec;
}

/* Considers one directory entry: a "<valid name>.json" file is a candidate. */
static void consider_file(snap_meta_store *st, listing *l, const char *fname)
{
    size_t len = strlen(fname);
    if (fname[0] == '.' || len <= 5 || strcmp(fname + len - 5, ".json") != 0)
        return;
    char *name = snap_xstrdup(fname);
    name[len - 5] = '\0';
    if (!snap_meta_name_valid(name)) {
        l->problems = snap_strv_add(
            l->problems, &l->n_problems,
            snap_xasprintf("%s/%s: not a valid snapshot name, ignored", st->dir, fname));
        free(name);
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = snap_xrealloc(l->items, l->cap * sizeof *l->items);
        l->nodes = snap_xrealloc(l->nodes, l->cap * sizeof *l->nodes);
        snap_prefault(l->items + l->n, (l->cap - l->n) * sizeof *l->items);
        snap_prefault(l->nodes + l->n, (l->cap - l->n) * sizeof *l->nodes);
    }
    memset(&l->items[l->n], 0, sizeof *l->items);
    memset(&l->nodes[l->n], 0, sizeof *l->nodes);
    l->nodes[l->n++].e.name = name;
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

/* ------------------------------------------------------------- stat */

/*
 * Every record file is stat'ed on every listing (an edit in place keeps the
 * directory's mtime, so nothing cheaper can tell a stale index entry). Like
 * git's preload-index, a large directory spreads these syscalls over a few
 * threads. Work is claimed in chunks from a shared counter, each thread
 * writing only the items of its chunks, and the caller takes chunks too: on a
 * busy machine a helper that is not scheduled in time simply finds nothing
 * left, so the caller never waits for a thread that has not started (helpers
 * are detached; the last one out frees the shared state).
 */
#define STAT_PARALLEL_MIN 256 /* below this, thread start-up costs more than it saves */
#define STAT_THREADS_MAX  4
#define STAT_CHUNK        64

typedef struct stat_work {
    int dirfd;
    listed *items;
    const snap_meta_node *nodes; /* their names */
    size_t n;
    atomic_size_t next; /* first item not claimed yet */
    size_t done;        /* items stat'ed, under lock */
    int refs;           /* the caller and the helpers still running, under lock */
    pthread_mutex_t lock;
    pthread_cond_t all_done;
} stat_work;

static void stat_one(int dirfd, const char *name, listed *it)
{
    char fname[SNAP_META_NAME_MAX + sizeof ".json"];
    size_t len = strlen(name);
    struct stat sb;
    memcpy(fname, name, len);
    memcpy(fname + len, ".json", sizeof ".json");
    if (fstatat(dirfd, fname, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    it->stat_ok = true;
    it->is_reg = S_ISREG(sb.st_mode);
    stat_key(&sb, it->key);
}

static void stat_work_release(stat_work *w)
{
    pthread_mutex_lock(&w->lock);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (last) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->all_done);
        free(w);
    }
}

/* Stats chunks until none is left. */
static void stat_work_run(stat_work *w)
{
    for (;;) {
        size_t first = atomic_fetch_add(&w->next, STAT_CHUNK);
        if (first >= w->n)
            return;
        size_t end = first + STAT_CHUNK < w->n ? first + STAT_CHUNK : w->n;
        for (size_t i = first; i < end; i++)
            stat_one(w->dirfd, w->nodes[i].e.name, &w->items[i]);
        pthread_mutex_lock(&w->lock);
        w->done += end - first;
        if (w->done == w->n)
            pthread_cond_broadcast(&w->all_done);
        pthread_mutex_unlock(&w->lock);
    }
}

static void *stat_helper_main(void *arg)
{
    stat_work_run(arg);
    stat_work_release(arg);
    return NULL;
}

/* Helpers beside the caller: one per CPU it may run on (taskset, cpusets), up to a limit.
 */
static size_t stat_helpers(size_t n)
{
    cpu_set_t set;
    if (n < STAT_PARALLEL_MIN)
        return 0;
    long cpus = sched_getaffinity(0, sizeof set, &set) == 0
                    ? CPU_COUNT(&set)
                    : sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus <= 1)
        return 0;
    return (cpus < STAT_THREADS_MAX ? (size_t)cpus : STAT_THREADS_MAX) - 1;
}

/*
 * Starts a helper on w (with every signal blocked: handlers stay the
 * caller's); false when none could be started (the caller does the work).
 */
static bool start_helper(stat_work *w, pthread_t *thread)
{
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pthread_mutex_lock(&w->lock);
    w->refs++;
    pthread_mutex_unlock(&w->lock);
    bool started = pthread_create(thread, NULL, stat_helper_main, w) == 0;
    if (!started) {
        pthread_mutex_lock(&w->lock);
        w->refs--; /* the caller still holds one: w stays */
        pthread_mutex_unlock(&w->lock);
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return started;
}

/* Fills every item's key; returns once all are done. */
static void stat_items(snap_meta_store *st, listing *l)
{
    stat_work *w = snap_xcalloc(1, sizeof *w);
    w->dirfd = st->dirfd;
    w->items = l->items;
    w->nodes = l->nodes;
    w->n = l->n;
    w->refs = 1; /* the caller's */
    atomic_init(&w->next, 0);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->all_done, NULL);
    pthread_t threads[STAT_THREADS_MAX];
    size_t started = 0;
    for (size_t i = stat_helpers(l->n); i > 0; i--)
        started += start_helper(w, &threads[started]);
    stat_work_run(w);
    pthread_mutex_lock(&w->lock);
    while (w->done < w->n) /* chunks helpers claimed and are still on */
        pthread_cond_wait(&w->all_done, &w->lock);
    pthread_mutex_unlock(&w->lock);
    /* No thread of ours outlives the call (libsnap(3), threads). */
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    stat_work_release(w);
}

/* Drops files removed while we listed; anything but a regular file is a problem. */
static void keep_regular_files(snap_meta_store *st, listing *l)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        listed *it = &l->items[i];
        if (it->stat_ok && it->is_reg) {
            l->nodes[kept] = l->nodes[i];
            l->items[kept++] = *it;
            continue;
        }
        if (it->stat_ok)
            l->problems =
                snap_strv_add(l->problems, &l->n_problems,
                              snap_xasprintf("%s/%s.json: not a regular file, ignored",
                                             st->dir, l->nodes[i].e.name));
        free(l->nodes[i].e.name);
    }
    l->n = kept;
}

/* ------------------------------------------------------------- the index */

/*
 * .index is a cache, never the truth. One header line, then one line per
 * snapshot, in creation order, fields separated by tabs:
 *   xlsnap-index 2
 *   "name" ino size mtime_s mtime_ns ctime_s ctime_ns "parent" "description"
 *     created_s created_ns domstate disks internal external excluded
 *     consistency memory(0/1)
 * Strings are quoted with \\ \" and \xHH escapes (so no tab or newline inside);
 * a missing parent or description is "-". A line format read with memchr is
 * a fifth of the cost of yajl on the same rows. The file is mapped, not read
 * (its pages come from the page cache, no copy) and never written to: each
 * string is decoded straight into its own copy.
 * Anything malformed discards the whole index, which is then rebuilt.
 */
#define INDEX_HEADER "xlsnap-index 2\n"

enum {
    IX_NAME,
    IX_KEY,
    IX_PARENT = 7,
    IX_DESC,
    IX_CSEC,
    IX_CNSEC,
    IX_STATE,
    IX_LEN = 18
};

/*
 * An index row. Its name is decoded into name_buf (a name too long to be
 * valid stays empty: it matches no file); parent and description are
 * malloc'd copies that take_row moves and ix_row_dispose frees otherwise.
 */
typedef struct index_row {
    snap_meta_entry e;
    long long key[6];
    char name_buf[SNAP_META_NAME_MAX + 1];
} index_row;

static void ix_row_dispose(index_row *r)
{
    free(r->e.parent);
    free(r->e.description);
    r->e.parent = r->e.description = NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Decodes the quoted field f[0..len) into out (room for len - 1 bytes) when
 * out is not NULL; checks it either way. Returns the decoded length, or -1
 * when it is not a valid quoted field.
 */
static long ix_unquote(const char *f, size_t len, char *out)
{
    if (len < 2 || f[0] != '"' || f[len - 1] != '"')
        return -1;
    long n = 0;
    for (size_t r = 1; r < len - 1; r++) {
        char c = f[r];
        if (c != '"' && c != '\\') {
            if (out)
                out[n] = c;
            n++;
            continue;
        }
        /* A bare quote, or a backslash that would escape the closing one. */
        if (c == '"' || r + 1 >= len - 1)
            return -1;
        c = f[++r];
        if (c == 'x' && r + 2 < len - 1) {
            int hi = hex_value(f[r + 1]), lo = hex_value(f[r + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -1;
            c = (char)(hi << 4 | lo);
            r += 2;
        } else if (c != '\\' && c != '"') {
            return -1;
        }
        if (out)
            out[n] = c;
        n++;
    }
    if (out)
        out[n] = '\0';
    return n;
}

/* A number field at *p (at most 19 digits, up to INT64_MAX / 2); *p moves past it. */
static bool ix_number(const char **p, const char *end, long long *v)
{
    const char *f = *p, *lim = end - *p > 19 ? *p + 19 : end;
    unsigned long long n = 0;
    for (; f < lim && (unsigned)(*f - '0') <= 9; f++)
        n = n * 10 + (unsigned)(*f - '0');
    if (f == *p || (f < end && (unsigned)(*f - '0') <= 9) ||
        n > (unsigned long long)(INT64_MAX / 2))
        return false;
    *v = (long long)n;
    *p = f;
    return true;
}

/* String field col at *p (up to the next tab), decoded into r; *p moves past it. */
static bool ix_string(const char **p, const char *end, int col, index_row *r)
{
    const char *f = *p, *tab = memchr(f, '\t', (size_t)(end - f));
    size_t len = (size_t)((tab ? tab : end) - f);
    *p = f + len;
    if (col != IX_NAME && len == 1 && f[0] == '-')
        return true; /* none */
    if (col == IX_NAME) {
        char *buf = len - 1 <= sizeof r->name_buf ? r->name_buf : NULL;
        r->e.name = r->name_buf;
        return ix_unquote(f, len, buf) >= 0;
    }
    char *out = len >= 2 ? snap_xmalloc(len - 1) : NULL;
    if (col == IX_PARENT)
        r->e.parent = out;
    else
        r->e.description = out;
    return out && ix_unquote(f, len, out) >= 0;
}

static bool ix_set_number(index_row *r, int col, long long v)
{
    snap_meta_entry *e = &r->e;
    switch (col) {
    case IX_CSEC: e->ctime_sec = v; return true;
    case IX_CNSEC: e->ctime_nsec = (int32_t)v; return v < 1000000000;
    case IX_STATE: e->domstate = (snap_domain_state)v; return v <= SNAP_DOMAIN_SHUTOFF;
    case IX_STATE + 1: e->n_disks = (unsigned)v; return v <= UINT32_MAX;
    case IX_STATE + 2: e->n_internal = (unsigned)v; return v <= UINT32_MAX;
    case IX_STATE + 3: e->n_external = (unsigned)v; return v <= UINT32_MAX;
    case IX_STATE + 4: e->n_excluded = (unsigned)v; return v <= UINT32_MAX;
    case IX_STATE + 5:
        e->consistency = (snap_meta_consistency)v;
        return v <= SNAP_META_PARTIALLY_QUIESCED;
    case IX_STATE + 6: e->has_memory = v != 0; return v <= 1;
    default: r->key[col - IX_KEY] = v; return true;
    }
}

/* Parses the line [line, end) into r, checking every field. */
static bool ix_parse_line(const char *line, const char *end, index_row *r)
{
    memset(&r->e, 0, sizeof r->e);
    r->name_buf[0] = '\0';
    const char *p = line;
    for (int col = 0; col < IX_LEN; col++) {
        if (col > 0 && (p >= end || *p++ != '\t'))
            return false;
        long long v;
        if (col == IX_NAME || col == IX_PARENT || col == IX_DESC) {
            if (!ix_string(&p, end, col, r))
                return false;
        } else if (!ix_number(&p, end, &v) || !ix_set_number(r, col, v)) {
            return false;
        }
    }
    return p == end;
}

/* The index mapped read-only (*len bytes after a valid header), or NULL. */
static char *map_index(snap_meta_store *st, size_t *len)
{
    int fd = openat(st->dirfd, INDEX_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    char *text = NULL;
    size_t hlen = strlen(INDEX_HEADER);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size > hlen &&
        (uint64_t)sb.st_size <= SNAP_STATE_FILE_MAX) {
        *len = (size_t)sb.st_size;
        text = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
        text = text == MAP_FAILED ? NULL : text;
    }
    close(fd);
    if (text && (memcmp(text, INDEX_HEADER, hlen) != 0 || text[*len - 1] != '\n' ||
                 memchr(text, '\0', *len))) {
        munmap(text, *len);
        text = NULL;
    }
    return text;
}

static const char *item_name_at(const void *ctx, size_t i)
{
    return ((const snap_meta_node *)ctx)[i].e.name;
}

/* Item i takes the index row's summary (its strings move). */
static void take_row(listing *l, size_t i, index_row *r)
{
    snap_meta_entry *e = &l->nodes[i].e;
    char *name = e->name;
    *e = r->e;
    e->name = name;
    r->e.parent = r->e.description = NULL;
    l->items[i].have_entry = true;
}

/* Undoes take_row for the n items listed in order. */
static void forget_rows(listing *l, const size_t *order, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        snap_meta_entry *e = &l->nodes[order[k]].e;
        char *name = e->name;
        free(e->parent);
        free(e->description);
        memset(e, 0, sizeof *e);
        e->name = name;
        l->items[order[k]].have_entry = false;
    }
}

/* The item row r describes, unchanged since (its key matches), or NULL. */
static listed *row_item(listing *l, const snap_name_hash *h, const index_row *r,
                        size_t *idx)
{
    size_t s = snap_name_hash_slot(h, r->name_buf, item_name_at, l->nodes);
    listed *it = h->slots[s] ? &l->items[h->slots[s] - 1] : NULL;
    if (!it || it->have_entry || memcmp(r->key, it->key, sizeof it->key) != 0)
        return NULL;
    *idx = h->slots[s] - 1;
    return it;
}

/*
 * Takes what it can from the index, row by row (no copy of the rows). order
 * receives the items' indexes: those the index covered, in the index's order
 * (creation order, so the tree finds them sorted), then the others. Anything
 * missing or stale marks the index dirty; a malformed row discards it all.
 */
static void apply_index(snap_meta_store *st, listing *l, size_t *order)
{
    size_t len = 0, rows = 0, used = 0, idx;
    char *text = map_index(st, &len);
    snap_name_hash h;
    snap_name_hash_init(&h, l->n);
    for (size_t i = 0; i < l->n; i++) {
        size_t s = snap_name_hash_slot(&h, l->nodes[i].e.name, item_name_at, l->nodes);
        if (!h.slots[s])
            h.slots[s] = i + 1;
    }
    for (const char *line = text ? text + strlen(INDEX_HEADER) : NULL;
         line && line < text + len; rows++) {
        const char *nl = memchr(line, '\n', (size_t)(text + len - line));
        index_row r;
        if (!ix_parse_line(line, nl, &r)) {
            ix_row_dispose(&r);
            forget_rows(l, order, used);
            used = rows = 0;
            break;
        }
        if (row_item(l, &h, &r, &idx)) {
            take_row(l, idx, &r);
            order[used++] = idx;
        }
        ix_row_dispose(&r);
        line = nl + 1;
    }
    l->dirty = used != rows || used != l->n;
    for (size_t i = 0; i < l->n; i++)
        if (!l->items[i].have_entry)
            order[used++] = i;
    free(h.slots);
    if (text)
        munmap(text, len);
}

/* A growing byte buffer for writing the index. */
typedef struct ix_buf {
    char *data;
    size_t len, cap;
} ix_buf;

static void ix_buf_add(ix_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = b->cap ? 2 * b->cap : 4096;
        while (b->cap < b->len + n)
            b->cap *= 2;
        b->data = snap_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* Appends s quoted (see the format above), or "-" for NULL. */
static void ix_put_str(ix_buf *b, const char *s)
{
    if (!s) {
        ix_buf_add(b, "-", 1);
        return;
    }
    ix_buf_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ix_buf_add(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[5];
            snprintf(esc, sizeof esc, "\\x%02x", c);
            ix_buf_add(b, esc, 4);
        } else {
            ix_buf_add(b, p, 1);
        }
    }
    ix_buf_add(b, "\"", 1);
}

static void ix_put_row(ix_buf *b, const listed *it, const snap_meta_entry *e)
{
    char num[256];
    ix_put_str(b, e->name);
    int len =
        snprintf(num, sizeof num, "\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t", it->key[0],
                 it->key[1], it->key[2], it->key[3], it->key[4], it->key[5]);
    ix_buf_add(b, num, (size_t)len);
    ix_put_str(b, e->parent);
    ix_buf_add(b, "\t", 1);
    ix_put_str(b, e->description);
    len = snprintf(num, sizeof num, "\t%lld\t%d\t%d\t%u\t%u\t%u\t%u\t%d\t%d\n",
                   (long long)e->ctime_sec, (int)e->ctime_nsec, (int)e->domstate,
                   e->n_disks, e->n_internal, e->n_external, e->n_excluded,
                   (int)e->consistency, e->has_memory ? 1 : 0);
    ix_buf_add(b, num, (size_t)len);
}

/* Best effort: a reader without write access simply lists without caching. */
static void write_index(snap_meta_store *st, const listing *l, const size_t *order,
                        size_t n)
{
    ix_buf b = {0};
    ix_buf_add(&b, INDEX_HEADER, strlen(INDEX_HEADER));
    for (size_t k = 0; k < n; k++)
        ix_put_row(&b, &l->items[order[k]], &l->nodes[order[k]].e);
    snap_meta_store_write(st, INDEX_FILE, b.data, b.len, NULL);
    free(b.data);
}

/*
 * Parses the record files the index did not cover; damaged ones are dropped
 * (left without an entry, their name freed). Items stay where they are.
 */
static void load_missing(snap_meta_store *st, listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        snap_meta_entry *e = &l->nodes[i].e;
        if (l->items[i].have_entry)
            continue;
        snap_meta m;
        snap_err err;
        snap_err_clear(&err);
        if (snap_meta_load_hinted(st, e->name, &m, &err) == 0) {
            free(e->name);
            snap_meta_entry_from_meta(e, &m);
            l->items[i].have_entry = true;
            snap_meta_dispose(&m);
            continue;
        }
        if (err.code != SNAP_ERROR_NOTFOUND)
            l->problems =
                snap_strv_add(l->problems, &l->n_problems, snap_xstrdup(err.msg));
        snap_meta_entry_dispose(e);
    }
}

/* ------------------------------------------------------------- the nodes */

static int by_creation_at(const void *a, const void *b, void *nodes)
{
    const snap_meta_node *nd = nodes;
    return snap_meta_entry_by_creation(&nd[*(const size_t *)a].e,
                                       &nd[*(const size_t *)b].e);
}

/* Reorders nodes[0..n) so that node k is the one order[k] was (order is consumed). */
static void permute_nodes(snap_meta_node *nodes, size_t *order, size_t n)
{
    const size_t done = SNAP_META_NONE;
    for (size_t k = 0; k < n; k++) {
        if (order[k] == done)
            continue;
        snap_meta_node first = nodes[k];
        size_t j = k;
        while (order[j] != k) { /* along the cycle through k */
            size_t from = order[j];
            nodes[j] = nodes[from];
            order[j] = done;
            j = from;
        }
        nodes[j] = first;
        order[j] = done;
    }
}

/*
 * The listing's nodes with an entry become the caller's, in order (moved in
 * place; those without one, already disposed, go last and are cut off). A
 * changed listing is sorted first and written back as the index, in creation
 * order, so that the next load needs no sort.
 */
static void listing_to_nodes(snap_meta_store *st, listing *l, size_t *order,
                             snap_meta_node **nodes, size_t *n)
{
    size_t kept = 0;
    for (size_t k = 0; k < l->n; k++)
        if (l->items[order[k]].have_entry)
            order[kept++] = order[k];
    for (size_t i = 0, k = kept; i < l->n; i++)
        if (!l->items[i].have_entry)
            order[k++] = i;
    if (l->dirty) {
        qsort_r(order, kept, sizeof *order, by_creation_at, l->nodes);
        write_index(st, l, order, kept);
    }
    permute_nodes(l->nodes, order, l->n);
    *nodes = l->nodes ? l->nodes : snap_xcalloc(1, sizeof **nodes);
    *n = kept;
    l->nodes = NULL;
}

int snap_list_index_load(snap_meta_store *st, snap_meta_node **nodes, size_t *n,
                         char ***problems, size_t *n_problems, snap_err *err)
{
    listing l = {0};
    int rc = read_dir(st, &l, err);
    size_t *order = snap_xmalloc((l.n ? l.n : 1) * sizeof *order);
    snap_prefault(order, l.n * sizeof *order);
    if (rc == 0) {
        stat_items(st, &l);
        keep_regular_files(st, &l);
        apply_index(st, &l, order);
        load_missing(st, &l);
    }
    listing_to_nodes(st, &l, order, nodes, n);
    free(order);
    free(l.items);
    *problems = l.problems;
    *n_problems = l.n_problems;
    return rc;
}
