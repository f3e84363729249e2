/*
 * Listing a large snapshot directory (snap_meta_tree_load): with hundreds of
 * records the files are stat'ed by several threads, each over its own slice,
 * and the .index rows are applied one by one. Whatever slice a file falls in,
 * an edit in place must be seen, a removed file must vanish, and what is not
 * a regular file must be reported, exactly as with a few records.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_meta.h"
#include "snap_meta_io.h"
#include "snap_meta_tree.h"
#include "th.h"
#include "th_meta.h"

#define UUID "5d0c3f7e-2b1a-4c9d-8e7f-6a5b4c3d2e1f"
#define N    600 /* above the threshold for parallel stat, a few slices */

/* Record i of the chain, with a description an in-place edit can change. */
static void fill(snap_meta *m, int i)
{
    th_meta_chain_record(m, i, "vm1", UUID);
    free(m->description);
    m->description = strdup("original text");
}

static char *record_path(snap_meta_store *st, int i)
{
    char fname[32];
    snprintf(fname, sizeof fname, "s%04d.json", i);
    return snap_meta_store_path(st, fname);
}

/*
 * Writes the N records straight into the directory (no fsync: this is about
 * reading), out of creation order so that directory order (creation order of
 * the files on many file systems) differs from the snapshots' own.
 */
static void populate(snap_meta_store *st)
{
    for (int k = 0; k < N; k++) {
        int i = k * 7 % N; /* 7 and N are coprime: every i once */
        snap_meta m;
        fill(&m, i);
        char *text = snap_meta_to_json(&m), *path = record_path(st, i);
        if (!th_write_file(path, text))
            th_fail_at(__FILE__, __LINE__, "cannot write %s", path);
        free(path);
        free(text);
        snap_meta_dispose(&m);
    }
}

/*
 * Rewrites "original" as "EDITEDBY" in record i in place: same inode, same
 * size, and its mtime put back, so only the ctime tells the change.
 */
static bool edit_in_place(snap_meta_store *st, int i)
{
    char *path = record_path(st, i), *text = th_read_file(path);
    char *at = text ? strstr(text, "original") : NULL;
    struct stat sb;
    bool ok = at && stat(path, &sb) == 0;
    int fd = ok ? open(path, O_WRONLY) : -1;
    ok = fd >= 0 && pwrite(fd, "EDITEDBY", 8, at - text) == 8;
    if (fd >= 0)
        close(fd);
    struct timespec times[2] = {sb.st_atim, sb.st_mtim};
    ok = ok && utimensat(AT_FDCWD, path, times, 0) == 0;
    free(text);
    free(path);
    return ok;
}

static const char *description_of(const snap_meta_tree *t, int i)
{
    char name[32];
    snprintf(name, sizeof name, "s%04d", i);
    size_t k = snap_meta_tree_find(t, name);
    return k == SNAP_META_NONE ? NULL : t->nodes[k].e.description;
}

/* Nodes in creation order, each with its own summary (name and time agree). */
static void check_order(const snap_meta_tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%04d", (int)(t->nodes[i].e.ctime_sec - 1795000000));
        CHECK_STR(t->nodes[i].e.name, name);
        CHECK(i == 0 || t->nodes[i - 1].e.ctime_sec < t->nodes[i].e.ctime_sec);
        CHECK_INT(t->nodes[i].e.n_internal, 1);
    }
}

static void test_edits_seen_in_every_slice(void)
{
    snap_meta_store st;
    snap_meta_tree t;
    snap_err err;
    REQUIRE(snap_meta_store_open(&st, th_path("slices"), UUID, "vm1", true, &err) == 0);
    populate(&st);
    CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0); /* writes the index */
    CHECK_INT(t.n, N);
    check_order(&t);
    snap_meta_tree_dispose(&t);
    CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0); /* from the index */
    CHECK_INT(t.n, N);
    CHECK_STR(description_of(&t, N / 2), "original text");
    snap_meta_tree_dispose(&t);

    /* File times tick coarsely (a jiffy): let the clock move past the index's. */
    usleep(20000);
    const int edited[] = {0, 149, 150, N / 2, 451, N - 1};
    for (size_t k = 0; k < sizeof edited / sizeof *edited; k++)
        REQUIRE(edit_in_place(&st, edited[k]));
    char *gone = record_path(&st, 310);
    CHECK(unlink(gone) == 0);
    free(gone);
    char *dir = snap_meta_store_path(&st, "adir.json");
    CHECK(mkdir(dir, 0700) == 0);
    free(dir);

    CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0);
    CHECK_INT(t.n, N - 1);
    for (size_t k = 0; k < sizeof edited / sizeof *edited; k++)
        CHECK_STR(description_of(&t, edited[k]), "EDITEDBY text");
    CHECK_STR(description_of(&t, 1), "original text");
    CHECK_STR(description_of(&t, N - 2), "original text");
    CHECK(description_of(&t, 310) == NULL);
    /* s0311 lost its parent: shown as a root, reported. */
    REQUIRE(t.n_problems == 2);
    CHECK_CONTAINS(t.problems[0], "adir.json: not a regular file");
    CHECK_CONTAINS(t.problems[1], "parent 's0310' does not exist");
    /* Creation order holds, and the chain is intact around the hole. */
    check_order(&t);
    CHECK_INT(t.nodes[N - 2].depth, (N - 1) - 311); /* s0599 below root s0311 */
    snap_meta_tree_dispose(&t);

    /* The rewritten index carries the edits: a second load agrees. */
    CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0);
    CHECK_INT(t.n, N - 1);
    CHECK_STR(description_of(&t, N - 1), "EDITEDBY text");
    snap_meta_tree_dispose(&t);
    snap_meta_store_close(&st);
}

/* Index rows are decoded field by field: odd strings survive the round trip. */
/* Threads of this process now (/proc/self/task entries). */
static int thread_count(void)
{
    char buf[256];
    FILE *f = fopen("/proc/self/status", "r");
    int n = -1;
    while (f && fgets(buf, sizeof buf, f))
        if (sscanf(buf, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* Listing's stat threads are all gone when the call returns (libsnap(3)). */
static void test_no_thread_outlives_a_listing(void)
{
    snap_meta_store st;
    snap_meta_tree t;
    snap_err err;
    REQUIRE(snap_meta_store_open(&st, th_path("threads"), UUID, "vm1", true, &err) == 0);
    populate(&st);
    int before = thread_count();
    for (int round = 0; round < 5; round++) {
        CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0);
        CHECK_INT(thread_count(), before);
        snap_meta_tree_dispose(&t);
    }
    snap_meta_store_close(&st);
}

static void test_index_strings_round_trip(void)
{
    static const char *odd =
        "quote \" backslash \\ tab\tnewline\n\x01 \x7f \xc3\xa9 \\x41";
    snap_meta_store st;
    snap_meta_tree t;
    snap_err err;
    REQUIRE(snap_meta_store_open(&st, th_path("odd"), UUID, "vm1", true, &err) == 0);
    snap_meta m;
    fill(&m, 0);
    free(m.description);
    m.description = strdup(odd);
    REQUIRE(snap_meta_save(&st, &m, false, &err) == 0);
    snap_meta_dispose(&m);
    fill(&m, 1);
    free(m.parent);
    m.parent = strdup("s0000");
    REQUIRE(snap_meta_save(&st, &m, false, &err) == 0);
    snap_meta_dispose(&m);
    for (int pass = 0; pass < 2; pass++) { /* from the files, then from the index */
        CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0);
        REQUIRE(t.n == 2);
        CHECK_STR(t.nodes[0].e.description, odd);
        CHECK(t.nodes[0].e.parent == NULL);
        CHECK_STR(t.nodes[1].e.parent, "s0000");
        CHECK_INT(t.nodes[1].parent, 0);
        CHECK_INT(t.n_problems, 0);
        snap_meta_tree_dispose(&t);
    }
    char *ix = snap_meta_store_path(&st, ".index"), *text = th_read_file(ix);
    REQUIRE(text != NULL);
    CHECK_CONTAINS(text, "\"quote \\\" backslash \\\\ tab\\x09newline\\x0a\\x01 \\x7f");
    free(text);
    free(ix);
    snap_meta_store_close(&st);
}

/* row (one index line, no newline) with field col replaced by value (NULL: dropped). */
static char *with_field(const char *row, int col, const char *value)
{
    char *out = strdup(""), *copy = strdup(row), *save = NULL;
    int i = 0;
    for (char *f = strtok_r(copy, "\t", &save); f; f = strtok_r(NULL, "\t", &save), i++) {
        const char *v = i == col ? value : f;
        if (!v)
            continue;
        char *next = snap_xasprintf("%s%s%s", out, *out ? "\t" : "", v);
        free(out);
        out = next;
    }
    free(copy);
    return out;
}

/*
 * A damaged index is never half trusted. The damaged rows below keep the
 * file's real key (so a parser that accepted them would use them): each makes
 * the whole index void, the record is read again and the index rewritten. A
 * well-formed row with that key is used as it is (the control).
 */
static void test_damaged_index_rows(void)
{
    static const struct {
        int col;
        const char *value;
        const char *why;
    } cases[] = {
        {8, "\"from the index\"", NULL}, /* the control: trusted */
        {8, "\"d\\\"", "an escaped closing quote"},
        {8, "\"a\"b\"", "a bare quote"},
        {8, "\"\\x00\"", "an escaped NUL"},
        {8, "\"\\q\"", "an unknown escape"},
        {9, "12345678901234567890", "20 digits"},
        {9, "-5", "a sign"},
        {17, NULL, "a field short"},
        {17, "0\t0", "a field too many"},
    };
    snap_meta_store st;
    snap_meta_tree t;
    snap_err err;
    REQUIRE(snap_meta_store_open(&st, th_path("damaged"), UUID, "vm1", true, &err) == 0);
    snap_meta m;
    fill(&m, 0);
    REQUIRE(snap_meta_save(&st, &m, false, &err) == 0);
    snap_meta_dispose(&m);
    CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0); /* writes the index */
    snap_meta_tree_dispose(&t);
    char *ix = snap_meta_store_path(&st, ".index"), *good = th_read_file(ix);
    REQUIRE(good && strncmp(good, "xlsnap-index 2\n", 15) == 0);
    char *row = strdup(good + 15);
    row[strcspn(row, "\n")] = '\0';
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *bad = with_field(row, cases[i].col, cases[i].value);
        char *text = snap_xasprintf("xlsnap-index 2\n%s\n", bad);
        CHECK(th_write_file(ix, text));
        free(text);
        CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0);
        REQUIRE(t.n == 1);
        if (!cases[i].why) {
            CHECK_STR(t.nodes[0].e.description, "from the index");
        } else {
            th_note("index row with %s: rebuilt", cases[i].why);
            CHECK_STR(t.nodes[0].e.description, "original text");
            CHECK_INT(t.nodes[0].e.ctime_sec, 1795000000);
            text = th_read_file(ix);
            CHECK(text && strcmp(text, good) == 0);
            free(text);
        }
        CHECK_INT(t.n_problems, 0);
        snap_meta_tree_dispose(&t);
        free(bad);
    }
    free(row);
    free(good);
    free(ix);
    snap_meta_store_close(&st);
}

int main(void)
{
    th_plan(4);
    TH_RUN(test_edits_seen_in_every_slice);
    TH_RUN(test_no_thread_outlives_a_listing);
    TH_RUN(test_index_strings_round_trip);
    TH_RUN(test_damaged_index_rows);
    return th_finish();
}
