/*
 * snap_ctx_alloc_libxl: a libsnap context on the caller's libxl context.
 * There is no hypervisor here, so the few libxl functions the lookup path
 * calls are replaced by this program's own definitions (the executable's
 * symbols win over libxenlight's): they record which libxl context libsnap
 * used, opened and freed. The caller's context must be used, never opened
 * anew, and never freed, by the calls or by snap_ctx_free.
 */
#include <stdlib.h>

#include <libxl.h>
#include <libxl_utils.h>

#include "libsnap.h"
#include "th.h"

static struct {
    int allocs, frees;
    libxl_ctx *freed;     /* last context passed to libxl_ctx_free */
    libxl_ctx *looked_up; /* context of the last domain lookup */
} seen;

/* Stands for libxl's own context: libsnap must only pass its address around. */
static char own_ctx_storage, callers_ctx_storage;
#define OWN_CTX     ((libxl_ctx *)&own_ctx_storage)
#define CALLERS_CTX ((libxl_ctx *)&callers_ctx_storage)

int libxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags, xentoollog_logger *lg)
{
    (void)version, (void)flags, (void)lg;
    seen.allocs++;
    *pctx = OWN_CTX;
    return 0;
}

int libxl_ctx_free(libxl_ctx *ctx)
{
    seen.frees++;
    seen.freed = ctx;
    return 0;
}

/* Every domain is unknown: the lookup stops here with NOTFOUND. */
int libxl_domain_qualifier_to_domid(libxl_ctx *ctx, const char *name, uint32_t *domid)
{
    (void)name;
    seen.looked_up = ctx;
    *domid = 0;
    return ERROR_INVAL;
}

static void reset_env(void)
{
    unsetenv("XLSNAP_PLATFORM");
    setenv("XLSNAP_STATEDIR", th_path("state"), 1);
    memset(&seen, 0, sizeof seen);
}

/* The caller's context serves the lookup; libsnap opens and frees none. */
static void test_borrowed_ctx_used_never_freed(void)
{
    reset_env();
    snap_ctx *ctx = NULL;
    REQUIRE(snap_ctx_alloc_libxl(&ctx, CALLERS_CTX, NULL) == 0);
    CHECK_INT(snap_ctx_platform(ctx), SNAP_PLATFORM_LIBXL);
    snap_info *info = NULL;
    CHECK_INT(snap_info_get(ctx, "vm1", "s1", &info), SNAP_ERROR_NOTFOUND);
    CHECK_STR(snap_ctx_errmsg(ctx), "vm1 is an invalid domain identifier");
    CHECK(seen.looked_up == CALLERS_CTX);
    snap_ctx_free(ctx);
    CHECK_INT(seen.allocs, 0);
    CHECK_INT(seen.frees, 0);
}

/* The stubs do see libsnap's own contexts: without a borrowed one, open + free. */
static void test_own_ctx_opened_and_freed(void)
{
    reset_env();
    snap_ctx *ctx = NULL;
    REQUIRE(snap_ctx_alloc(&ctx, SNAP_PLATFORM_LIBXL, NULL) == 0);
    snap_info *info = NULL;
    CHECK_INT(snap_info_get(ctx, "vm1", "s1", &info), SNAP_ERROR_NOTFOUND);
    CHECK(seen.looked_up == OWN_CTX);
    CHECK_INT(seen.allocs, 1);
    CHECK_INT(seen.frees, 1);
    CHECK(seen.freed == OWN_CTX);
    snap_ctx_free(ctx);
}

/* XLSNAP_PLATFORM=sim (tests of xl on the simulated dom0) wins over the ctx. */
static void test_sim_override_ignores_ctx(void)
{
    reset_env();
    setenv("XLSNAP_PLATFORM", "sim", 1);
    snap_ctx *ctx = NULL;
    REQUIRE(snap_ctx_alloc_libxl(&ctx, CALLERS_CTX, NULL) == 0);
    CHECK_INT(snap_ctx_platform(ctx), SNAP_PLATFORM_SIM);
    snap_ctx_free(ctx);
    setenv("XLSNAP_PLATFORM", "bogus", 1);
    CHECK_INT(snap_ctx_alloc_libxl(&ctx, CALLERS_CTX, NULL), SNAP_ERROR_INVAL);
    CHECK(strstr(snap_ctx_errmsg(ctx), "XLSNAP_PLATFORM=bogus") != NULL);
    snap_ctx_free(ctx);
    CHECK_INT(seen.allocs + seen.frees, 0);
    unsetenv("XLSNAP_PLATFORM");
}

static void test_null_ctx_refused(void)
{
    reset_env();
    snap_ctx *ctx = (snap_ctx *)&own_ctx_storage;
    CHECK_INT(snap_ctx_alloc_libxl(&ctx, NULL, NULL), SNAP_ERROR_INVAL);
    CHECK(ctx == NULL);
}

int main(void)
{
    th_plan(4);
    TH_RUN(test_borrowed_ctx_used_never_freed);
    TH_RUN(test_own_ctx_opened_and_freed);
    TH_RUN(test_sim_override_ignores_ctx);
    TH_RUN(test_null_ctx_refused);
    return th_finish();
}
