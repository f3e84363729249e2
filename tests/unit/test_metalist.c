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
#include "th.h"

#define UUID "5d0c3f7e-2b1a-4c9d-8e7f-6a5b4c3d2e1f"
#define N    600 /* above the threshold for parallel stat, a few slices */

static void fill(snap_meta *m, int i)
{
    snap_meta_init(m);
    m->name = snap_xasprintf("s%04d", i);
    m->description = strdup("original text");
    m->ctime_sec = 1795000000 + i;
    m->parent = i ? snap_xasprintf("s%04d", i - 1) : NULL;
    m->domain.name = strdup("vm1");
    m->domain.uuid = strdup(UUID);
    m->domain.state = SNAP_DOMAIN_RUNNING;
    snap_meta_disk *d = snap_meta_add_disk(m);
    d->vdev = strdup("xvda");
    d->backend = strdup("qdisk");
    d->method = SNAP_METHOD_INTERNAL;
    d->format = strdup("qcow2");
    d->base_path = strdup("/img/a.qcow2");
    d->qemu_snap_name = strdup(m->name);
    m->quiesce.policy = SNAP_QUIESCE_BEST_EFFORT;
    m->quiesce.state = SNAP_META_CRASH_CONSISTENT;
}

static char *record_path(snap_meta_store *st, int i)
{
    char fname[32];
    snprintf(fname, sizeof fname, "s%04d.json", i);
    return snap_meta_store_path(st, fname);
}

/* Writes the N records straight into the directory (no fsync: this is about reading). */
static void populate(snap_meta_store *st)
{
    for (int i = 0; i < N; i++) {
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

static void test_edits_seen_in_every_slice(void)
{
    snap_meta_store st;
    snap_meta_tree t;
    snap_err err;
    REQUIRE(snap_meta_store_open(&st, th_path("slices"), UUID, "vm1", true, &err) == 0);
    populate(&st);
    CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0); /* writes the index */
    CHECK_INT(t.n, N);
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
    for (size_t i = 1; i < t.n; i++)
        CHECK(t.nodes[i - 1].e.ctime_sec < t.nodes[i].e.ctime_sec);
    CHECK_INT(t.nodes[N - 2].depth, (N - 1) - 311); /* s0599 below root s0311 */
    snap_meta_tree_dispose(&t);

    /* The rewritten index carries the edits: a second load agrees. */
    CHECK_INT(snap_meta_tree_load(&st, &t, &err), 0);
    CHECK_INT(t.n, N - 1);
    CHECK_STR(description_of(&t, N - 1), "EDITEDBY text");
    snap_meta_tree_dispose(&t);
    snap_meta_store_close(&st);
}

int main(void)
{
    TH_RUN(test_edits_seen_in_every_slice);
    return th_finish();
}
