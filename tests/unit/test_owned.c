/*
 * Tests of the rule that decides which files named by metadata xlsnap may
 * remove (snap_owned.c): only in the directories given, only with the names
 * given (snapshot names matched literally, even with glob characters), only
 * regular files; a refused file is left and the refusal says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_meta.h"
#include "snap_overlay_name.h"
#include "snap_owned.h"
#include "th.h"

static char *make_file(const char *dir, const char *name)
{
    char *p = snap_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("data\n", f);
        fclose(f);
    }
    return p;
}

/* The memory-file rule of snapshot name in dir. */
static void memory_rule(snap_owned *o, const char *dir, const char *name)
{
    memset(o, 0, sizeof *o);
    o->what = "memory file";
    snap_owned_add_dir(o, dir);
    char *lit = snap_owned_escape(name);
    snap_owned_add_pattern(o, snap_xasprintf("%s.mem", lit));
    free(lit);
}

/* snap_owned_remove of path under o: 0 returned, and whether it is gone. */
static bool removed(const char *path, const snap_owned *o)
{
    snap_err err;
    CHECK_INT(snap_owned_remove(NULL, path, o, &err), 0);
    struct stat sb;
    return lstat(path, &sb) != 0 && errno == ENOENT;
}

static void test_only_in_its_directory_with_its_name(void)
{
    const char *store = th_path("store"), *other = th_path("other");
    REQUIRE(mkdir(store, 0700) == 0 && mkdir(other, 0700) == 0);
    snap_owned o;
    memory_rule(&o, store, "s1");
    char *mine = make_file(store, "s1.mem");
    char *record = make_file(store, "base.json");
    char *outside = make_file(other, "s1.mem");
    char *dotdot = snap_xasprintf("%s/../other/s1.mem", store);
    char *why = snap_owned_refusal(outside, &o);
    CHECK(why && strstr(why, "not in a directory where xlsnap creates memory files"));
    free(why);
    why = snap_owned_refusal(record, &o);
    CHECK(why && strstr(why, "not a name"));
    free(why);
    CHECK(!removed(outside, &o));
    CHECK(!removed(dotdot, &o));
    CHECK(!removed(record, &o));
    why = snap_owned_refusal("relative/s1.mem", &o);
    CHECK(why && strstr(why, "not an absolute path"));
    free(why);
    CHECK(snap_owned_refusal(mine, &o) == NULL);
    CHECK(removed(mine, &o));
    CHECK(removed(mine, &o)); /* already gone: fine */
    snap_owned_dispose(&o);
    free(mine);
    free(record);
    free(outside);
    free(dotdot);
}

static void test_only_regular_files(void)
{
    const char *store = th_path("store2"), *other = th_path("other2");
    REQUIRE(mkdir(store, 0700) == 0 && mkdir(other, 0700) == 0);
    snap_owned o;
    memory_rule(&o, store, "s1");
    char *target = make_file(other, "precious");
    char *link = snap_xasprintf("%s/s1.mem", store);
    REQUIRE(symlink(target, link) == 0);
    char *why = snap_owned_refusal(link, &o);
    CHECK(why && strstr(why, "symlink"));
    free(why);
    CHECK(!removed(link, &o));
    CHECK(access(target, F_OK) == 0);
    REQUIRE(unlink(link) == 0 && mkdir(link, 0700) == 0);
    why = snap_owned_refusal(link, &o);
    CHECK(why && strstr(why, "not a regular file"));
    free(why);
    CHECK(!removed(link, &o));
    snap_owned_dispose(&o);
    free(target);
    free(link);
}

/* Snapshot names may hold * ? [ ]: they match only themselves. */
static void test_names_match_literally(void)
{
    const char *store = th_path("store3");
    REQUIRE(mkdir(store, 0700) == 0);
    snap_owned o;
    memory_rule(&o, store, "*");
    char *other = make_file(store, "base.mem");
    char *star = make_file(store, "*.mem");
    CHECK(!removed(other, &o));
    CHECK(removed(star, &o));
    snap_owned_dispose(&o);
    memory_rule(&o, store, "[ab]\\");
    char *a = make_file(store, "a.mem");
    char *lit = make_file(store, "[ab]\\.mem");
    CHECK(!removed(a, &o));
    CHECK(removed(lit, &o));
    snap_owned_dispose(&o);
    free(other);
    free(star);
    free(a);
    free(lit);
}

/* The overlays a create and a revert make, beside the image or in overlay_dir. */
static void test_overlay_rules(void)
{
    const char *img = th_path("img"), *ovl = th_path("ovl"), *other = th_path("o3");
    REQUIRE(mkdir(img, 0700) == 0 && mkdir(ovl, 0700) == 0 && mkdir(other, 0700) == 0);
    char *image = make_file(img, "data.qcow2");
    snap_owned o = {0};
    snap_owned_create_overlay(&o, image, "xvdb", "e1", ovl);
    char *beside = make_file(img, "data.e1.qcow2");
    char *in_dir = make_file(ovl, "data.e1.xvdb.qcow2");
    char *elsewhere = make_file(other, "data.e1.qcow2");
    char *wrong = make_file(img, "data.e2.qcow2");
    CHECK(!removed(elsewhere, &o));
    CHECK(!removed(wrong, &o));
    CHECK(removed(beside, &o));
    char *other_stem = make_file(img, "orig.e1.qcow2"); /* a chain's original image */
    CHECK(removed(other_stem, &o));
    free(other_stem);
    /* a long name, shortened as snap_overlay_path shortens it */
    char long_name[160];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    snap_owned_dispose(&o);
    snap_owned_create_overlay(&o, image, "xvdb", long_name, NULL);
    char *stem = snap_xasprintf("%0120d", 7);
    char *shortened = snap_overlay_path(img, stem, long_name, "xvdb");
    CHECK(strchr(shortened, '~') != NULL);
    REQUIRE(th_write_file(shortened, "x"));
    CHECK(removed(shortened, &o));
    free(shortened);
    free(stem);
    snap_owned_dispose(&o);
    snap_owned_create_overlay(&o, image, "xvdb", "e1", ovl);
    CHECK(removed(in_dir, &o));
    snap_owned_dispose(&o);
    snap_owned_create_overlay(&o, image, "xvdb", "e1", NULL);
    in_dir = (free(in_dir), make_file(ovl, "data.e1.qcow2"));
    CHECK(!removed(in_dir, &o)); /* no overlay dir given */
    snap_owned_dispose(&o);
    char *snap_overlay = snap_xasprintf("%s/data.e1.qcow2", ovl);
    snap_meta_disk md = {
        .vdev = "xvdb", .base_path = image, .overlay_path = snap_overlay};
    snap_owned_revert_overlay(&o, &md, "e1");
    char *r1 = make_file(ovl, "data.e1.r1.qcow2");
    char *r2 = make_file(img, "data.e1.r12.qcow2");
    char *rx = make_file(img, "data.e1.rx.qcow2");
    CHECK(!removed(rx, &o));
    CHECK(!removed(in_dir, &o)); /* the snapshot's own overlay */
    CHECK(removed(r1, &o));
    CHECK(removed(r2, &o));
    snap_owned_dispose(&o);
    free(image), free(beside), free(in_dir), free(elsewhere), free(wrong);
    free(snap_overlay), free(r1), free(r2), free(rx);
}

int main(void)
{
    th_plan(4);
    TH_RUN(test_only_in_its_directory_with_its_name);
    TH_RUN(test_only_regular_files);
    TH_RUN(test_names_match_literally);
    TH_RUN(test_overlay_rules);
    return th_finish();
}
