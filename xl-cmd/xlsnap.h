/*
 * xlsnap — private header of the command. Follows xl's conventions
 * (tools/xl/xl.h): a command table of cmd_spec, global options -v -N -f,
 * per-command options through SWITCH_FOREACH_OPT, EXIT_SUCCESS/EXIT_FAILURE,
 * exit 2 for usage errors.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#ifndef XLSNAP_H
#define XLSNAP_H

#include <getopt.h>
#include <stdbool.h>
#include <xentoollog.h>

#include "libsnap.h"

struct cmd_spec {
    const char *cmd_name;
    int (*cmd_impl)(int argc, char **argv);
    bool can_dryrun;
    bool modifies;
    const char *cmd_desc;
    const char *cmd_usage;
    const char *cmd_option;
};

extern const struct cmd_spec cmd_table[];
extern const int cmdtable_len;
/* Exact name, else a unique prefix; NULL when unknown or ambiguous. */
const struct cmd_spec *cmdtable_lookup(const char *s);

/* Globals set by main() from the global options, as in xl. */
extern int dryrun_only;     /* -N */
extern int force_execution; /* -f */
extern xentoollog_level minmsglevel;
extern xentoollog_logger *logger;

void help(const char *command);

/*
 * xl's def_getopt: -h prints help and exits 0; an unknown option prints
 * "option `x' not supported." and exits 2; too few arguments print
 * "'xlsnap CMD' requires at least N argument(s)." plus help and exit 2.
 */
int def_getopt(int argc, char *const argv[], const char *optstring,
               const struct option *longopts, const char *helpstr, int reqargs);

#define COMMON_LONG_OPTS                                                                 \
    {"help", 0, 0, 'h'},                                                                 \
    {                                                                                    \
        NULL, 0, 0, 0                                                                    \
    }

#define SWITCH_FOREACH_OPT(opt, opts, longopts, commandname, num_required_opts)          \
    for ((opt) = def_getopt(argc, argv, "h" opts, (longopts), (commandname),             \
                            (num_required_opts));                                        \
         (opt) != -1; (opt) = def_getopt(argc, argv, "h" opts, (longopts),               \
                                         (commandname), (num_required_opts)))            \
        switch (opt)

/* A libsnap context on the chosen platform, or exit(EXIT_FAILURE) with the reason. */
snap_ctx *xlsnap_ctx(void);

int main_snapshot_create(int argc, char **argv);
int main_snapshot_revert(int argc, char **argv);
int main_snapshot_delete(int argc, char **argv);
int main_snapshot_list(int argc, char **argv);
int main_snapshot_info(int argc, char **argv);

#endif
