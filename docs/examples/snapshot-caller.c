/*
 * snapshot-caller DOMAIN SNAPSHOT [REVERT_TO] — a libxl API caller using libsnap.
 *
 * What a management daemon or backup agent would do: it already has its own
 * libxl context and logger, so it hands them to libsnap
 * (snap_ctx_alloc_libxl) instead of letting libsnap open a second context.
 * Then it takes the snapshot SNAPSHOT, lists the domain's snapshots and
 * reverts the domain to REVERT_TO (default: the new snapshot).
 *
 * Build (installed libsnap and Xen's libraries):
 *     cc -o snapshot-caller snapshot-caller.c \
 *        $(pkg-config --cflags --libs libsnap xenlight xentoollog)
 *
 * libsnap starts no thread that outlives a call, changes no signal
 * disposition and reaps its children by pid (libsnap(3), "Processes,
 * signals and threads"), so this program could just as well be multi-
 * threaded with its own SIGCHLD handler. One snap_ctx must not be used by
 * two threads at once.
 */
#include <stdio.h>
#include <stdlib.h>

#include <libsnap.h>
#include <libxl.h>
#include <xentoollog.h>

/* Prints a failed libsnap call's message, which names what went wrong. */
static int failed(snap_ctx *sctx, const char *what, int rc)
{
    fprintf(stderr, "snapshot-caller: %s: %s (%s)\n", what, snap_ctx_errmsg(sctx),
            snap_strerror(rc));
    return rc;
}

static int create_list_revert(snap_ctx *sctx, const char *domain, const char *name,
                              const char *revert_to)
{
    /* Create: every parameter defaults through _init (internal snapshots
     * for qcow2 disks, quiesced when the guest has an agent). */
    snap_create_params cp;
    snap_create_params_init(&cp);
    cp.name = name;
    cp.description = "taken by docs/examples/snapshot-caller";
    snap_info *info = NULL;
    int rc = snap_create(sctx, domain, &cp, &info, NULL);
    if (rc)
        return failed(sctx, "create", rc);
    printf("created %s: %zu disk(s), %s\n", info->name, info->n_disks,
           info->quiesced ? "quiesced" : "crash-consistent");
    snap_info_free(info);

    /* List: the records, in creation order. */
    snap_info **list = NULL;
    size_t n = 0;
    rc = snap_list(sctx, domain, &list, &n);
    if (rc) {
        snap_info_list_free(list, n); /* may hold the readable part: see libsnap(3) */
        return failed(sctx, "list", rc);
    }
    for (size_t i = 0; i < n; i++)
        printf("snapshot %s%s\n", list[i]->name, list[i]->current ? " (current)" : "");
    snap_info_list_free(list, n);

    /* Revert: the domain's disks go back to the snapshot. */
    snap_revert_params rp;
    snap_revert_params_init(&rp);
    rp.force = true; /* a disk-only snapshot of a running domain needs it */
    rc = snap_revert(sctx, domain, revert_to, &rp, NULL);
    if (rc)
        return failed(sctx, "revert", rc);
    printf("reverted %s to %s\n", domain, revert_to);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: snapshot-caller DOMAIN SNAPSHOT [REVERT_TO]\n");
        return 2;
    }
    /* The caller's own logger and libxl context, as it has them anyway. */
    xentoollog_logger_stdiostream *logger =
        xtl_createlogger_stdiostream(stderr, XTL_WARN, 0);
    libxl_ctx *lctx = NULL;
    if (!logger ||
        libxl_ctx_alloc(&lctx, LIBXL_VERSION, 0, (xentoollog_logger *)logger) != 0) {
        fprintf(stderr, "snapshot-caller: cannot open a libxl context\n");
        return 1;
    }
    /* libsnap borrows both: they must outlive sctx, and are freed by us. */
    snap_ctx *sctx = NULL;
    int rc = snap_ctx_alloc_libxl(&sctx, lctx, (struct xentoollog_logger *)logger);
    if (rc)
        fprintf(stderr, "snapshot-caller: snap_ctx_alloc_libxl: %s\n", snap_strerror(rc));
    else
        rc = create_list_revert(sctx, argv[1], argv[2], argc == 4 ? argv[3] : argv[2]);
    snap_ctx_free(sctx);
    libxl_ctx_free(lctx);
    xtl_logger_destroy((xentoollog_logger *)logger);
    return rc ? 1 : 0;
}
