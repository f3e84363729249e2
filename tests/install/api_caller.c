/*
 * The tiny libsnap API caller that tests/scripts/install.sh builds against the
 * INSTALLED header and pkg-config file (not the source tree), to prove that
 * an outside program can use the library as installed.
 *
 *   api_caller DOMAIN   with XLSNAP_PLATFORM=sim and XENSTORED_PATH set: lists
 *                       DOMAIN's snapshots, expecting SNAP_ERROR_NOTFOUND with a
 *                       message naming the domain (DOMAIN must not exist).
 *
 * Exit 0 when every expectation holds; prints what it saw either way.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <libsnap.h>
#include <stdio.h>
#include <string.h>

static int expect(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: api_caller DOMAIN\n");
        return 2;
    }
    const char *domain = argv[1];
    snap_ctx *ctx = NULL;
    int rc = snap_ctx_alloc(&ctx, SNAP_PLATFORM_AUTO, NULL);
    if (rc != SNAP_OK) {
        printf("FAILED: snap_ctx_alloc: %s: %s\n", snap_strerror(rc),
               ctx ? snap_ctx_errmsg(ctx) : "");
        snap_ctx_free(ctx);
        return 1;
    }
    int failures = expect(snap_ctx_platform(ctx) == SNAP_PLATFORM_SIM,
                          "XLSNAP_PLATFORM=sim selects the simulated platform");

    snap_info **list = NULL;
    size_t n = 0;
    rc = snap_list(ctx, domain, &list, &n);
    const char *msg = snap_ctx_errmsg(ctx);
    printf("snap_list(\"%s\"): rc %d (%s): %s\n", domain, rc, snap_strerror(rc), msg);
    failures +=
        expect(rc == SNAP_ERROR_NOTFOUND, "a missing domain is SNAP_ERROR_NOTFOUND");
    failures += expect(strstr(msg, domain) != NULL, "the message names the domain");
    if (rc == SNAP_OK)
        snap_info_list_free(list, n);

#if !defined(LIBSNAP_HAVE_SUMMARY) || !defined(LIBSNAP_HAVE_ENUM_TO_STRING)
#error "libsnap.h lacks the feature macros of libsnap.so.1"
#endif
    failures +=
        expect(!strcmp(snap_domain_state_to_string(SNAP_DOMAIN_PAUSED), "paused") &&
                   !strcmp(snap_method_to_string(SNAP_METHOD_EXTERNAL), "external") &&
                   !strcmp(snap_quiesce_policy_to_string(SNAP_QUIESCE_BEST_EFFORT),
                           "best-effort") &&
                   !strcmp(snap_domain_state_to_string(SNAP_DOMAIN_UNKNOWN), "unknown"),
               "the enums' names are the records' names");

    snap_create_params params;
    snap_create_params_init(&params);
    failures += expect(params.method == SNAP_METHOD_AUTO && !params.dry_run,
                       "snap_create_params_init gives the defaults");
    snap_ctx_free(ctx);
    return failures ? 1 : 0;
}
