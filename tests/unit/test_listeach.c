/*
 * snap_list_each, the streaming listing behind `snapshot-list --json`: the
 * same snapshots, order and JSON as snap_list, one at a time (each freed
 * after the callback: ASan and valgrind see any misuse); a callback can stop
 * the walk; damaged metadata still delivers the readable records; a domain
 * without snapshots or an unknown one never calls the callback. Records are
 * real files of the store; the domain is found through the project's
 * xenstored (XLSNAP_PLATFORM=sim).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libsnap.h"
#include "snap_meta.h"
#include "snap_meta_io.h"
#include "th.h"
#include "th_meta.h"

#define UUID    "8c2b1d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
#define DOMID   "7"
#define N       300
#define NAMELEN 32

/* xenstored with domain vm1 (and an empty vm2), the store with N records of vm1. */
static void populate_once(void)
{
    static bool done;
    if (!done) {
        REQUIRE(th_start_xenstored(NULL) > 0);
        REQUIRE(th_runl(NULL, NULL, "xenstore-write", "/local/domain/" DOMID "/name",
                        "vm1", "/local/domain/" DOMID "/vm", "/vm/" UUID,
                        "/local/domain/8/name", "vm2", "/local/domain/8/vm",
                        "/vm/11111111-2222-4333-8444-555555555555", NULL) == 0);
        setenv("XLSNAP_STATEDIR", th_path("state"), 1);
        setenv("XLSNAP_PLATFORM", "sim", 1);
        snap_meta_store st;
        snap_err err;
        REQUIRE(snap_meta_store_open(&st, th_path("state"), UUID, "vm1", true, &err) ==
                0);
        for (int i = 0; i < N; i++) {
            snap_meta m;
            th_meta_chain_record(&m, i, "vm1", UUID);
            REQUIRE(snap_meta_save(&st, &m, false, &err) == 0);
            snap_meta_dispose(&m);
        }
        snap_meta_store_close(&st);
        done = true;
    }
}

struct seen {
    size_t n, stop_after;
    char names[N + 2][NAMELEN];
    char *json[N + 2];
};

static int remember(const snap_info *info, void *opaque)
{
    struct seen *s = opaque;
    if (s->n >= N + 2)
        return 99; /* more snapshots than exist: fails the test's check of rc */
    snprintf(s->names[s->n], NAMELEN, "%s", info->name);
    s->json[s->n] = strdup(info->json);
    s->n++;
    return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->json[i]);
}

static void test_same_as_snap_list(void)
{
    snap_ctx *ctx = NULL;
    populate_once();
    REQUIRE(snap_ctx_alloc(&ctx, SNAP_PLATFORM_AUTO, NULL) == 0);
    static struct seen s;
    CHECK_INT(snap_list_each(ctx, "vm1", remember, &s), 0);
    snap_info **list = NULL;
    size_t n = 0;
    CHECK_INT(snap_list(ctx, "vm1", &list, &n), 0);
    REQUIRE(n == N && s.n == N);
    for (size_t i = 0; i < n; i++) {
        CHECK_STR(s.names[i], list[i]->name);
        CHECK_STR(s.json[i], list[i]->json);
    }
    CHECK_STR(s.names[0], "s0000");
    CHECK_STR(s.names[N - 1], "s0299");
    CHECK_CONTAINS(s.json[42], "\"description\": \"record 42\"");
    snap_info_list_free(list, n);
    seen_free(&s);
    snap_ctx_free(ctx);
}

static void test_callback_stops_the_walk(void)
{
    snap_ctx *ctx = NULL;
    populate_once();
    REQUIRE(snap_ctx_alloc(&ctx, SNAP_PLATFORM_AUTO, NULL) == 0);
    static struct seen s;
    s.stop_after = 3;
    CHECK_INT(snap_list_each(ctx, "vm1", remember, &s), 7);
    CHECK_INT(s.n, 3);
    CHECK_STR(s.names[2], "s0002");
    seen_free(&s);
    snap_ctx_free(ctx);
}

static void test_damaged_record_others_delivered(void)
{
    snap_ctx *ctx = NULL;
    populate_once();
    REQUIRE(snap_ctx_alloc(&ctx, SNAP_PLATFORM_AUTO, NULL) == 0);
    char *dir = snap_xasprintf("%s/snapshots/%s", th_path("state"), UUID);
    char *bad = snap_xasprintf("%s/broken.json", dir);
    REQUIRE(th_write_file(bad, "{\"version\": 1, \"name\": "));
    static struct seen s;
    CHECK_INT(snap_list_each(ctx, "vm1", remember, &s), SNAP_ERROR_PROTOCOL);
    CHECK_INT(s.n, N);
    CHECK_CONTAINS(snap_ctx_errmsg(ctx), "broken.json");
    seen_free(&s);
    REQUIRE(remove(bad) == 0);
    free(bad);
    free(dir);
    snap_ctx_free(ctx);
}

static void test_no_snapshots_or_no_domain(void)
{
    snap_ctx *ctx = NULL;
    populate_once();
    REQUIRE(snap_ctx_alloc(&ctx, SNAP_PLATFORM_AUTO, NULL) == 0);
    static struct seen s;
    CHECK_INT(snap_list_each(ctx, "vm2", remember, &s), 0);
    CHECK_INT(s.n, 0);
    int rc = snap_list_each(ctx, "nosuchdomain", remember, &s);
    CHECK(rc != 0);
    CHECK_INT(s.n, 0);
    CHECK_CONTAINS(snap_ctx_errmsg(ctx), "nosuchdomain");
    snap_ctx_free(ctx);
}

int main(void)
{
    th_plan(4);
    TH_RUN(test_same_as_snap_list);
    TH_RUN(test_callback_stops_the_walk);
    TH_RUN(test_damaged_record_others_delivered);
    TH_RUN(test_no_snapshots_or_no_domain);
    return th_finish();
}
