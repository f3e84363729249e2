/*
 * Force-included (-include) into xl-cmd's sources for the CLI fuzzer only,
 * which also builds them with -Dmain=xlsnap_main -Dexit=xlsnap_fuzz_exit
 * -Datexit=xlsnap_fuzz_atexit: the command's exit() paths (def_getopt's usage
 * errors, xlsnap_ctx's failures) return to the fuzzer with a longjmp instead
 * of ending it, and atexit handlers run at the end of each input.
 */
#ifndef XLSNAP_FUZZ_CLI_SHIM_H
#define XLSNAP_FUZZ_CLI_SHIM_H

int xlsnap_main(int argc, char **argv);
void xlsnap_fuzz_exit(int status) __attribute__((noreturn));
int xlsnap_fuzz_atexit(void (*fn)(void));

#endif
