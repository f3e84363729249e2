/*
 * Fuzzes the metadata store's .index cache reader through snap_meta_tree_load
 * on a real store directory holding three good records (a, b, c). The input
 * is the .index text; "@a@", "@b@" and "@c@" in it are replaced by the real
 * (inode, size, mtime, ctime) key of that record, so fuzzed rows can match
 * and be trusted. Whatever the index says, the records are the truth: the
 * tree always has exactly a, b and c, links are consistent, and a second
 * load (from the index the first one rewrote) gives the same tree.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snap_meta.h"
#include "snap_meta_io.h"
#include "snap_meta_tree.h"
#include "snap_meta_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static const char *const names[] = {"a", "b", "c"};
#define N_RECORDS 3
static snap_meta_store store;
static char keys[N_RECORDS][160];
static char topdir[] = "/tmp/fuzz-index.XXXXXX";

static const char record_json[] =
    "{\"version\": 1, \"name\": \"x\", \"description\": null,"
    " \"creation_time\": {\"sec\": 100, \"nsec\": 0}, \"parent\": null,"
    " \"domain\": {\"name\": \"vm1\", \"uuid\": \"6b1c7e2a-3f4d-4e5a-9b8c-0d1e2f3a4b5c\","
    " \"domid\": null, \"state\": \"shutoff\"}, \"disks\": [], \"excluded_disks\": [],"
    " \"quiesce\": {\"policy\": \"off\", \"agent_present\": false, \"frozen_count\": 0,"
    " \"window_ms\": 0, \"thaw_ok\": false, \"state\": \"crash-consistent\"},"
    " \"memory\": null, \"config\": null}";

static void die(const char *what, const snap_err *err)
{
    fprintf(stderr, "fuzz_index: %s: %s\n", what, err ? err->msg : "");
    abort();
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(path);
}

/* libFuzzer ends with exit(): the store goes with the process. */
static void remove_store(void)
{
    snap_meta_store_close(&store);
    nftw(topdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* a <- b <- c, saved once per process; keys[] as the index writes them. */
static void setup_store(void)
{
    snap_err err;
    if (!mkdtemp(topdir))
        die("mkdtemp", NULL);
    atexit(remove_store);
    if (snap_meta_store_open(&store, topdir, "6b1c7e2a-3f4d-4e5a-9b8c-0d1e2f3a4b5c",
                             "vm1", true, &err))
        die("store open", &err);
    for (int i = 0; i < N_RECORDS; i++) {
        snap_meta m;
        if (snap_meta_from_json(&m, record_json, "fixture", &err))
            die("fixture", &err);
        free(m.name);
        m.name = snap_xstrdup(names[i]);
        m.parent = i ? snap_xstrdup(names[i - 1]) : NULL;
        m.ctime_sec = 100 + i;
        if (snap_meta_save(&store, &m, true, &err))
            die("save", &err);
        snap_meta_dispose(&m);
        char *path = snap_meta_store_path(&store, "");
        char *file = snap_xasprintf("%s%s.json", path, names[i]);
        struct stat sb;
        if (stat(file, &sb) < 0)
            die(file, NULL);
        snprintf(keys[i], sizeof keys[i], "%lld\t%lld\t%lld\t%ld\t%lld\t%ld",
                 (long long)sb.st_ino, (long long)sb.st_size,
                 (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
                 (long long)sb.st_ctim.tv_sec, sb.st_ctim.tv_nsec);
        free(file);
        free(path);
    }
}

/* The input with @a@/@b@/@c@ replaced by the records' keys (malloc'd). */
static char *expand_keys(const uint8_t *data, size_t len, size_t *out_len)
{
    char *out = snap_xmalloc(len * 60 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int k = -1;
        for (int r = 0; r < N_RECORDS && i + 2 < len; r++)
            if (data[i] == '@' && data[i + 1] == names[r][0] && data[i + 2] == '@')
                k = r;
        if (k < 0) {
            out[o++] = (char)data[i];
            continue;
        }
        size_t kl = strlen(keys[k]);
        memcpy(out + o, keys[k], kl);
        o += kl;
        i += 2;
    }
    *out_len = o;
    return out;
}

static void check_tree(const snap_meta_tree *t)
{
    if (t->n != N_RECORDS)
        die("the tree does not have exactly the records", NULL);
    for (int r = 0; r < N_RECORDS; r++)
        if (snap_meta_tree_find(t, names[r]) == SNAP_META_NONE)
            die("a record is missing from the tree", NULL);
    for (size_t i = 0; i < t->n; i++) {
        const snap_meta_node *nd = &t->nodes[i];
        if (nd->parent != SNAP_META_NONE && nd->parent >= t->n)
            die("parent index out of range", NULL);
        for (size_t c = 0; c < nd->n_children; c++)
            if (nd->children[c] >= t->n || t->nodes[nd->children[c]].parent != i)
                die("child link inconsistent", NULL);
        size_t nd_n;
        free(snap_meta_tree_descendants(t, i, &nd_n));
        if (nd_n >= t->n)
            die("a node descends from itself", NULL);
    }
    size_t nr, nl;
    free(snap_meta_tree_roots(t, &nr));
    free(snap_meta_tree_leaves(t, &nl));
    if (!nr || !nl)
        die("no root or no leaf", NULL);
}

static bool same_tree(const snap_meta_tree *x, const snap_meta_tree *y)
{
    for (size_t i = 0; i < x->n; i++) {
        const snap_meta_entry *a = &x->nodes[i].e, *b = &y->nodes[i].e;
        if (strcmp(a->name, b->name) || !a->parent != !b->parent ||
            (a->parent && strcmp(a->parent, b->parent)) || a->ctime_sec != b->ctime_sec ||
            a->n_disks != b->n_disks || x->nodes[i].parent != y->nodes[i].parent)
            return false;
    }
    return x->n == y->n && x->current == y->current;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static bool ready;
    if (!ready) {
        setup_store();
        ready = true;
    }
    size_t text_len;
    char *text = expand_keys(data, len, &text_len);
    snap_err err;
    if (snap_meta_store_write(&store, ".index", text, text_len, &err))
        die("write .index", &err);
    free(text);
    snap_meta_tree first, second;
    if (snap_meta_tree_load(&store, &first, &err))
        die("tree load", &err);
    check_tree(&first);
    if (snap_meta_tree_load(&store, &second, &err))
        die("tree reload", &err);
    check_tree(&second);
    if (!same_tree(&first, &second))
        die("the rewritten index gives another tree", NULL);
    snap_meta_tree_dispose(&first);
    snap_meta_tree_dispose(&second);
    return 0;
}
