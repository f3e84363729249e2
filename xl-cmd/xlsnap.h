/*
 * xlsnap — private header of the xlsnap program, the front end that is
 * not xl. Follows xl's conventions (tools/xl/xl.h): a command table of
 * cmd_spec, global options -v -N -f, per-command options through
 * SWITCH_FOREACH_OPT, EXIT_SUCCESS/EXIT_FAILURE, exit 2 for usage errors.
 * The commands themselves are xlsnap_cmd.h's, shared with xl.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#ifndef XLSNAP_H
#define XLSNAP_H

#include <stdbool.h>
#include <xentoollog.h>

#include "xlsnap_cmd.h"

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

/* Set by main() from the global options, as in xl (with xlsnap_cmd.h's). */
extern xentoollog_level minmsglevel;
extern xentoollog_logger *logger;

#endif
