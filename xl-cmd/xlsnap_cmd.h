/*
 * The snapshot-* commands (option parsing, calls into libsnap, output),
 * shared by two front ends: the xlsnap program (xlsnap.c) and Xen's own xl
 * (tools/xl/xl_snapshot.c of the patch series in xl-cmd/xen-4.17/). Both
 * link libxlsnapcmd.a (xlsnap_snapshot.c, xlsnap_output.c), so their
 * options, output and exit codes are the same code.
 *
 * What a front end provides, with xl's names and signatures (tools/xl/xl.h,
 * xl_utils.h): the globals set by its global options -N and -f, help() and
 * def_getopt(), plus the two below (xlsnap_progname, xlsnap_ctx).
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#ifndef XLSNAP_CMD_H
#define XLSNAP_CMD_H

#include <getopt.h>

#include "libsnap.h"

extern int dryrun_only;     /* -N */
extern int force_execution; /* -f */

/* Prints the help of command (NULL: every command). */
void help(const char *command);

/*
 * xl's def_getopt: -h prints help and exits 0; an unknown option prints
 * "option `x' not supported." and exits 2; too few arguments print
 * "'PROG CMD' requires at least N argument(s)." plus help and exit 2.
 */
int def_getopt(int argc, char *const argv[], const char *optstring,
               const struct option *longopts, const char *helpstr, int reqargs);

/* As in xl_utils.h (kept if the front end's own definition came first). */
#ifndef COMMON_LONG_OPTS
#define COMMON_LONG_OPTS                                                                 \
    {"help", 0, 0, 'h'},                                                                 \
    {                                                                                    \
        0, 0, 0, 0                                                                       \
    }
#endif
#ifndef SWITCH_FOREACH_OPT
#define SWITCH_FOREACH_OPT(opt, opts, longopts, commandname, num_required_opts)          \
    while (((opt) = def_getopt(argc, argv, "h" opts, (longopts), (commandname),          \
                               (num_required_opts))) != -1)                              \
        switch (opt)
#endif

/* The program name in messages: "xl" or "xlsnap" ("'xl snapshot-list' ..."). */
extern const char *const xlsnap_progname;

/*
 * The front end's libsnap context (xl: on its own libxl ctx, through
 * snap_ctx_alloc_libxl), allocated on first use; exits with EXIT_FAILURE
 * and the reason when libsnap cannot start.
 */
snap_ctx *xlsnap_ctx(void);

int main_snapshot_create(int argc, char **argv);
int main_snapshot_revert(int argc, char **argv);
int main_snapshot_delete(int argc, char **argv);
int main_snapshot_list(int argc, char **argv);
int main_snapshot_info(int argc, char **argv);
int main_snapshot_verify(int argc, char **argv);

#endif
