/*
 * Overlay names do not grow with the backing chain (issue 15, fault 3).
 * Overlays used to be named after the image below them plus ".NAME", so
 * about 12 stacked snapshots with default names, or two 128-byte names,
 * hit "File name too long" far below the 32-deep chain limit. On kernel-less
 * simulated domains (th_baredom): the chain is stacked to its limit with
 * default names through QMP, and 128-byte names are stacked live, reverted
 * to and stacked again offline (qemu-img).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_json.h"
#include "snap_meta.h"
#include "snap_overlay_name.h"
#include "snap_plan.h"
#include "th.h"
#include "th_baredom.h"
#include "th_snaptest.h"

/* The file name part of path. */
static const char *file_part(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Images in vdev's backing chain, active included (qemu-img info -U), or -1. */
static int chain_depth(const th_xlsim_dom *d, const char *vdev)
{
    char *image = th_snap_active_image(d, vdev), *json = NULL;
    if (image)
        th_runl(&json, NULL, "qemu-img", "info", "-U", "--backing-chain", "--output=json",
                image, (char *)NULL);
    snap_err err = {0};
    yajl_val v = json ? snap_json_parse(json, "qemu-img info", &err) : NULL;
    int n = v && YAJL_IS_ARRAY(v) ? (int)snap_json_array_len(v) : -1;
    yajl_tree_free(v);
    free(json);
    free(image);
    return n;
}

/* Whether s is well-formed UTF-8 (structure only: lead and continuation bytes). */
static bool utf8_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int more = *p < 0x80             ? 0
                   : (*p & 0xe0) == 0xc0 ? 1
                   : (*p & 0xf0) == 0xe0 ? 2
                   : (*p & 0xf8) == 0xf0 ? 3
                                         : -1;
        if (more < 0)
            return false;
        for (p++; more > 0; more--, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* Both disks' active images are named at most max bytes, as valid UTF-8. */
static void check_active_names(const th_xlsim_dom *d, size_t max)
{
    const char *vdevs[] = {"xvda", "xvdb"};
    for (int i = 0; i < 2; i++) {
        char *image = th_snap_active_image(d, vdevs[i]);
        CHECK(image != NULL);
        if (!image)
            continue;
        const char *file = file_part(image);
        if (strlen(file) > max)
            th_fail_at(__FILE__, __LINE__, "%s: %s is %zu bytes long (at most %zu)",
                       vdevs[i], file, strlen(file), max);
        CHECK(utf8_ok(file)); /* cut at a character boundary */
        free(image);
    }
}

static int xlsnap_create(th_cmd *r, const char *dom, const char *name)
{
    return name ? th_xlsnap(r, "snapshot-create", "-q", "off", "-e", dom, name, NULL)
                : th_xlsnap(r, "snapshot-create", "-q", "off", "-e", dom, NULL);
}

/*
 * Default names, one external snapshot after another: every one succeeds
 * until the chain is SNAP_MAX_CHAIN images deep, then the limit (not the
 * file system) refuses, naming it.
 */
static void test_chain_to_its_limit(void)
{
    th_xlsim_dom d;
    REQUIRE(th_bare_create(&d, "deep"));
    int made = 0;
    th_cmd r = {0};
    for (int i = 0; i < SNAP_MAX_CHAIN + 1; i++) {
        if (xlsnap_create(&r, "deep", NULL) != 0)
            break;
        made++;
        /* "b." + a default name (a UTC time, maybe "-NN") + ".qcow2" */
        check_active_names(&d, 2 + 24 + 6);
        th_cmd_free(&r);
    }
    CHECK_INT(made, SNAP_MAX_CHAIN - 1);
    CHECK_INT(chain_depth(&d, "xvda"), SNAP_MAX_CHAIN);
    CHECK_INT(chain_depth(&d, "xvdb"), SNAP_MAX_CHAIN);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "32 images deep (limit 32)");
    if (strstr(r.err, "too long") || strstr(r.err, "leftover"))
        th_fail_at(__FILE__, __LINE__, "refused for the wrong reason: %s", r.err);
    th_cmd_free(&r);
    /* Refused again, for the same reason: nothing was left half made. */
    CHECK_INT(xlsnap_create(&r, "deep", NULL), 1);
    CHECK_CONTAINS(r.err, "(limit 32)");
    th_cmd_free(&r);
    CHECK_INT(chain_depth(&d, "xvdb"), SNAP_MAX_CHAIN);
    th_xlsim_destroy(&d);
}

/* A 128-byte name: ASCII, or two-byte characters the cut must not split. */
static char *long_name(const char *unit, size_t bytes)
{
    char *s = calloc(1, bytes + 1);
    for (size_t n = 0; n + strlen(unit) <= bytes; n += strlen(unit))
        strcat(s, unit);
    return s;
}

/*
 * Two 128-byte names stacked live, a revert to the second (offline: a new
 * overlay on the image the second was taken of) and a third long name
 * stacked on the reverted disk: every name stays within SNAP_OVERLAY_BASENAME_MAX and
 * apart.
 */
static void test_long_names_stay_bounded(void)
{
    th_xlsim_dom d;
    REQUIRE(th_bare_create(&d, "long"));
    char *n1 = long_name("a", SNAP_META_NAME_MAX), *n2 = long_name("\xc3\xa9", 128),
         *n3 = long_name("z", SNAP_META_NAME_MAX);
    CHECK_INT(strlen(n2), SNAP_META_NAME_MAX);
    XLSNAP_OK(NULL, "snapshot-create", "-q", "off", "-e", "long", n1);
    char *first = th_snap_active_image(&d, "xvdb");
    XLSNAP_OK(NULL, "snapshot-create", "-q", "off", "-e", "long", n2);
    check_active_names(&d, SNAP_OVERLAY_BASENAME_MAX);
    CHECK_INT(chain_depth(&d, "xvdb"), 3);
    char *second = th_snap_active_image(&d, "xvdb");
    REQUIRE(th_bare_shut_off(&d));
    XLSNAP_OK(NULL, "snapshot-revert", "long", n2);
    check_active_names(&d, SNAP_OVERLAY_BASENAME_MAX);
    char *reverted = th_snap_active_image(&d, "xvdb"), *backing = NULL;
    CHECK(reverted && second && strcmp(reverted, second) != 0);
    if (reverted)
        backing = th_snap_backing_of(reverted);
    CHECK_STR(backing, first); /* the revert overlay sits on n2's point */
    XLSNAP_OK(NULL, "snapshot-create", "-q", "off", "-e", "long", n3);
    check_active_names(&d, SNAP_OVERLAY_BASENAME_MAX);
    CHECK_INT(chain_depth(&d, "xvdb"), 4);
    free(backing);
    free(first);
    free(reverted);
    free(second);
    free(n1);
    free(n2);
    free(n3);
    th_xlsim_destroy(&d);
}

/* The naming rule itself: stems, tags, and the shortened form of long names. */
static void test_overlay_path_rule(void)
{
    const char *stems[][2] = {{"/img/data.qcow2", "data"},
                              {"/img/x.tar.gz", "x.tar"},
                              {"/img/noext", "noext"},
                              {"/img/.hidden", ".hidden"},
                              {"plain.raw", "plain"}};
    for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++) {
        char *stem = snap_image_stem(stems[i][0]);
        CHECK_STR(stem, stems[i][1]);
        free(stem);
    }
    char *p = snap_overlay_path("/img", "data", "e1", NULL);
    CHECK_STR(p, "/img/data.e1.qcow2");
    free(p);
    p = snap_overlay_path("/img", "data", "e1", "r2");
    CHECK_STR(p, "/img/data.e1.r2.qcow2");
    free(p);
    /* A 150-byte stem and two 127-byte names differing only in their last
     * byte, made of 3-byte characters after an "a": the kept 48 bytes would
     * end inside a character. */
    char *stem = long_name("s", 150), *euros = long_name("\xe2\x82\xac", 126);
    char *n1 = snap_xasprintf("a%s", euros), *n2 = strdup(n1);
    n2[126] = '\xad'; /* U+20AD instead of U+20AC */
    free(euros);
    char *p1 = snap_overlay_path("/img", stem, n1, "r1"),
         *p2 = snap_overlay_path("/img", stem, n2, "r1");
    CHECK(strlen(file_part(p1)) <= SNAP_OVERLAY_BASENAME_MAX);
    CHECK(utf8_ok(p1) && utf8_ok(p2));
    CHECK(strcmp(p1, p2) != 0);
    CHECK(strchr(p1, '~') && strstr(p1, ".r1.qcow2"));
    free(p1);
    free(p2);
    free(stem);
    free(n1);
    free(n2);
}

int main(void)
{
    th_plan(3);
    TH_RUN(test_overlay_path_rule);
    TH_RUN(test_chain_to_its_limit);
    TH_RUN(test_long_names_stay_bounded);
    return th_finish();
}
