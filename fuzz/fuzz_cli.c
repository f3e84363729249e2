/*
 * Fuzzes xlsnap's command line in-process: the input is argv (arguments
 * separated by NUL bytes), main() runs as xlsnap_main with its exit() calls
 * turned into a longjmp (cli_shim.h). The environment points at a xenstored
 * socket and state directories that do not exist, so a command that parses
 * goes as far as it can and fails when it needs the platform: no domain,
 * file or daemon is ever touched.
 */
#include <fcntl.h>
#include <getopt.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_shim.h"
#include "xlsnap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CLI_MAX_ARGS 64

static jmp_buf cli_exit_jmp;
static void (*cli_atexit_fns[8])(void);
static int cli_n_atexit;

int xlsnap_fuzz_atexit(void (*fn)(void))
{
    if (cli_n_atexit < 8)
        cli_atexit_fns[cli_n_atexit++] = fn;
    return 0;
}

void xlsnap_fuzz_exit(int status)
{
    longjmp(cli_exit_jmp, status == 0 ? 256 : status);
}

static void cli_run_atexit(void)
{
    while (cli_n_atexit > 0)
        cli_atexit_fns[--cli_n_atexit]();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("XENSTORED_PATH", "/nonexistent/xlsnap-fuzz/xenstored.sock", 1);
    setenv("XLSNAP_STATEDIR", "/nonexistent/xlsnap-fuzz/state", 1);
    setenv("XLSNAP_XEN_STATEDIR", "/nonexistent/xlsnap-fuzz/xen", 1);
    setenv("XLSNAP_XEN_RUNDIR", "/nonexistent/xlsnap-fuzz/run", 1);
    setenv("XLSNAP_PLATFORM", "sim", 1);
    return 0;
}

/* Splits data at NUL bytes into argv (argv[0] = "xlsnap"); returns argc. */
static int cli_split(char *buf, size_t len, char **argv)
{
    int argc = 0;
    argv[argc++] = "xlsnap";
    size_t start = 0;
    for (size_t i = 0; i <= len && argc < CLI_MAX_ARGS; i++)
        if (i == len || buf[i] == '\0') {
            buf[i] = '\0';
            argv[argc++] = buf + start;
            start = i + 1;
        }
    argv[argc] = NULL;
    return argc;
}

static void cli_reset_globals(void)
{
    optind = 0; /* glibc: full getopt re-initialisation */
    opterr = 1;
    dryrun_only = 0;
    force_execution = 0;
    minmsglevel = XTL_PROGRESS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *buf = malloc(len + 1);
    memcpy(buf, data, len);
    char *argv[CLI_MAX_ARGS + 1];
    int argc = cli_split(buf, len, argv);
    cli_reset_globals();
    fflush(stdout);
    int saved_out = dup(1), saved_err = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    if (setjmp(cli_exit_jmp) == 0)
        (void)xlsnap_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    cli_run_atexit();
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(devnull);
    free(buf);
    return 0;
}
