/*
 * xlsnap — safe snapshots for Xen domains, with xl's conventions.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xlsnap.h"
#include "xlsnap_output.h"

int dryrun_only;
int force_execution;
xentoollog_level minmsglevel = XTL_PROGRESS;
xentoollog_logger *logger;
const char *const xlsnap_progname = "xlsnap";
static snap_ctx *ctx;

void help(const char *command)
{
    const struct cmd_spec *cmd = command ? cmdtable_lookup(command) : NULL;
    if (!cmd) {
        printf("Usage xlsnap [-vfN] <subcommand> [args]\n\n");
        printf("xlsnap full list of subcommands:\n\n");
        for (int i = 0; i < cmdtable_len; i++)
            printf(" %-19s %s\n", cmd_table[i].cmd_name, cmd_table[i].cmd_desc);
        printf("\nGlobal options:\n"
               " -v   more verbose (repeat for more)\n"
               " -N   dry run: print what would be done, change nothing\n"
               " -f   force\n");
        return;
    }
    printf("Usage: xlsnap [-v%s] %s %s\n\n%s.\n\n", cmd->can_dryrun ? "N" : "",
           cmd->cmd_name, cmd->cmd_usage, cmd->cmd_desc);
    if (cmd->cmd_option)
        printf("Options:\n\n%s\n", cmd->cmd_option);
}

int def_getopt(int argc, char *const argv[], const char *optstring,
               const struct option *longopts, const char *helpstr, int reqargs)
{
    static const struct option def_options[] = {COMMON_LONG_OPTS};
    int opt;
    if (!longopts)
        longopts = def_options;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) == '?') {
        if (optopt == 'h') {
            help(helpstr);
            exit(0);
        }
        if (optopt)
            fprintf(stderr, "option `%s' not supported.\n",
                    term_safe((char[]){(char)optopt, '\0'}));
        else
            fprintf(stderr, "option `%s' not supported.\n", term_safe(argv[optind - 1]));
        exit(2);
    }
    if (opt == 'h') {
        help(helpstr);
        exit(0);
    }
    if (opt != -1)
        return opt;
    if (argc - optind <= reqargs - 1) {
        fprintf(stderr, "'xlsnap %s' requires at least %d argument%s.\n\n", helpstr,
                reqargs, reqargs > 1 ? "s" : "");
        help(helpstr);
        exit(2);
    }
    return -1;
}

/*
 * libsnap's log lines quote names from records, paths and what QEMU or the
 * agent said: they reach stderr escaped (snap_text_escape), like text output.
 */
typedef struct {
    xentoollog_logger vtable;
    xentoollog_logger *inner;
} escaping_logger;

static void escaping_vmessage(xentoollog_logger *lg, xentoollog_level level, int errnoval,
                              const char *context, const char *format, va_list al)
    __attribute__((format(printf, 5, 0)));

static void escaping_vmessage(xentoollog_logger *lg, xentoollog_level level, int errnoval,
                              const char *context, const char *format, va_list al)
{
    escaping_logger *el = (escaping_logger *)lg;
    if (level < minmsglevel)
        return;
    char *msg = NULL;
    if (vasprintf(&msg, format, al) < 0)
        return;
    char *safe = snap_text_escape(msg);
    xtl_log(el->inner, level, errnoval, context, "%s", safe ? safe : msg);
    free(safe);
    free(msg);
}

static void escaping_progress(xentoollog_logger *lg, const char *context,
                              const char *doing_what, int percent, unsigned long done,
                              unsigned long total)
{
    escaping_logger *el = (escaping_logger *)lg;
    char *safe = snap_text_escape(doing_what);
    xtl_progress(el->inner, context, safe ? safe : doing_what, done, total);
    (void)percent;
    free(safe);
}

static void escaping_destroy(xentoollog_logger *lg)
{
    escaping_logger *el = (escaping_logger *)lg;
    xtl_logger_destroy(el->inner);
    free(el);
}

static xentoollog_logger *escaping_logger_new(xentoollog_logger *inner)
{
    escaping_logger *el = calloc(1, sizeof *el);
    if (!el) {
        perror("xlsnap");
        exit(EXIT_FAILURE);
    }
    el->vtable.vmessage = escaping_vmessage;
    el->vtable.progress = escaping_progress;
    el->vtable.destroy = escaping_destroy;
    el->inner = inner;
    return &el->vtable;
}

static void xlsnap_cleanup(void)
{
    snap_ctx_free(ctx);
    ctx = NULL;
    if (logger)
        xtl_logger_destroy(logger);
    logger = NULL;
}

snap_ctx *xlsnap_ctx(void)
{
    if (ctx)
        return ctx;
    int rc = snap_ctx_alloc(&ctx, SNAP_PLATFORM_AUTO, logger);
    if (rc) {
        fprintf(stderr, "xlsnap: cannot initialise: %s\n",
                ctx ? snap_ctx_errmsg(ctx) : snap_strerror(rc));
        exit(EXIT_FAILURE);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "+vfN")) >= 0) {
        switch (opt) {
        case 'v':
            if (minmsglevel > XTL_DEBUG)
                minmsglevel--;
            break;
        case 'N': dryrun_only = 1; break;
        case 'f': force_execution = 1; break;
        default: fprintf(stderr, "unknown global option\n"); exit(EXIT_FAILURE);
        }
    }
    const char *cmd = argv[optind];
    if (!cmd) {
        help(NULL);
        exit(EXIT_FAILURE);
    }
    argc -= optind;
    argv += optind;
    optind = 1;

    unsigned flags = isatty(STDERR_FILENO) ? 0 : XTL_STDIOSTREAM_HIDE_PROGRESS;
    logger = escaping_logger_new(
        (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, minmsglevel, flags));
    atexit(xlsnap_cleanup);

    const struct cmd_spec *spec = cmdtable_lookup(cmd);
    int ret;
    if (spec) {
        if (dryrun_only && !spec->can_dryrun) {
            fprintf(stderr, "command does not implement -N (dryrun) option\n");
            ret = EXIT_FAILURE;
        } else {
            ret = spec->cmd_impl(argc, argv);
        }
    } else if (!strcmp(cmd, "help")) {
        help(argv[1]);
        ret = EXIT_SUCCESS;
    } else {
        fprintf(stderr, "command not implemented\n");
        ret = EXIT_FAILURE;
    }
    if (fflush(stdout) || ferror(stdout)) {
        perror("stdout");
        ret = EXIT_FAILURE;
    }
    return ret;
}
