/*
 * th — xlsnap's small test harness.
 *
 * A test program defines test functions and runs them from main():
 *
 *     static void test_read_write(void) { CHECK(x == 1); REQUIRE(p); ... }
 *     int main(void) { th_plan(1); TH_RUN(test_read_write); return th_finish(); }
 *
 * CHECK* record a failure and carry on; REQUIRE* record it and return from
 * the current test function. th_finish() prints "N passed, N failed, N skipped"
 * (the line tests/run sums) and returns the exit status.
 *
 * Counting that cannot lie: th_plan(n) declares how many tests main() runs
 * and prints "plan: n" (tests/run checks it too). th_finish() counts as
 * failures a run of another number of tests, a missing plan, and every failure
 * recorded outside a test (setup in main(), teardown), which no test owns.
 *
 * Process hygiene: every process started with th_spawn() is registered and
 * killed (by PID) at exit, on SIGINT/SIGTERM and on a failed REQUIRE path;
 * th_tmpdir() is removed at exit unless TH_KEEP=1.
 */
#ifndef XLSNAP_TH_H
#define XLSNAP_TH_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

void th_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void th_run_test(const char *name, void (*fn)(void));
/* Declares how many tests (TH_RUN and the like) this program runs; call it first. */
void th_plan(int tests);
/* Marks the current test skipped (call it, then return). */
void th_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int th_finish(void);
/* Prints a diagnostic line (prefixed with "# "). */
void th_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TH_RUN(fn) th_run_test(#fn, fn)

/*
 * How long a daemon a test starts (xlsnap-xenstored) may take to say it is
 * ready: generous, as under valgrind on a busy machine start-up alone can
 * take over ten seconds. Only a broken daemon makes a test wait this long.
 */
#define TH_READY_TIMEOUT_MS 60000

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond))                                                                     \
            th_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);                          \
    } while (0)
#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            th_fail_at(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                        \
            return;                                                                      \
        }                                                                                \
    } while (0)
#define CHECK_INT(a, b)                                                                  \
    do {                                                                                 \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);                        \
        if (th_a_ != th_b_)                                                              \
            th_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, th_a_,      \
                       th_b_);                                                           \
    } while (0)
#define CHECK_STR(a, b)                                                                  \
    do {                                                                                 \
        const char *th_a_ = (a), *th_b_ = (b);                                           \
        if (!th_a_ || !th_b_ || strcmp(th_a_, th_b_) != 0)                               \
            th_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,         \
                       th_a_ ? th_a_ : "(null)", th_b_ ? th_b_ : "(null)");              \
    } while (0)
/* Checks that haystack contains needle. */
#define CHECK_CONTAINS(haystack, needle)                                                 \
    do {                                                                                 \
        const char *th_h_ = (haystack), *th_n_ = (needle);                               \
        if (!th_h_ || !strstr(th_h_, th_n_))                                             \
            th_fail_at(__FILE__, __LINE__, "%s contains \"%s\": got \"%s\"", #haystack,  \
                       th_n_, th_h_ ? th_h_ : "(null)");                                 \
    } while (0)

/* A private directory for this test program, removed at exit. */
const char *th_tmpdir(void);
/* th_tmpdir()/name, in a static rotating buffer (valid for 8 calls). */
const char *th_path(const char *name);
/* $XLSNAP_BUILDDIR/name (the build this test belongs to). */
const char *th_build_path(const char *name);
/* $XLSNAP_TOP/name (the source tree). */
const char *th_top_path(const char *name);
/* The last "EVENT <ns>" of an XLSNAP_TRACE file, 0 when absent. */
unsigned long long th_traced_at(const char *path, const char *event);

/*
 * Starts argv[0] (searched in PATH) with stdout+stderr to log_path (or
 * /dev/null when NULL). Returns the pid, registered for killing at exit;
 * -1 on failure.
 */
pid_t th_spawn(char *const argv[], const char *log_path);
/*
 * Registers a process the test did not start itself (e.g. the QEMU that
 * `xlsim create` leaves running) so that it is killed at exit and on signals
 * like th_spawn's children. th_kill() stops it (polling, not waitpid).
 */
void th_adopt(pid_t pid);
/* Exists and is not a zombie: PID 1 here does not reap orphans, so kill(pid, 0)
 * alone would call an exited orphan alive. */
bool th_pid_alive(pid_t pid);
/* How many entries /proc/self/fd lists (-1 if it cannot be read): compare two
 * counts to find leaked descriptors. */
int th_count_fds(void);
/* Sends SIGTERM, waits up to 5 s, then SIGKILL; unregisters. */
void th_kill(pid_t pid);
/* Waits for a registered child to exit by itself; returns its wait status or -1 on
 * timeout. */
int th_wait(pid_t pid, int timeout_ms);
/* Polls until path exists (and, for sockets, accepts a connection). */
bool th_wait_for_socket(const char *path, int timeout_ms);

/*
 * Runs argv to completion (no shell), capturing stdout into *out (malloc'd,
 * NUL-terminated, may be NULL) and stderr into *err. Returns the exit code,
 * or -1 if it could not run or was killed by a signal.
 */
int th_run(char *const argv[], char **out, char **err);
/* th_run of a NULL-terminated list of string arguments. */
int th_runl(char **out, char **err, const char *arg0, ...) __attribute__((sentinel));

/* Reads a whole file (malloc'd, NUL-terminated); NULL on error. */
char *th_read_file(const char *path);
bool th_write_file(const char *path, const char *text);
/* Writes all n bytes to fd, retrying short writes and EINTR. */
bool th_write_all(int fd, const char *p, size_t n);
/* The effective uid of process pid (/proc/<pid>/status), -1 if unknown. */
long th_proc_euid(pid_t pid);

/*
 * Starts the project's xenstored on a private socket inside th_tmpdir() and
 * points XENSTORED_PATH at it. Returns the pid, or -1 (with a failure recorded).
 */
pid_t th_start_xenstored(const char **socket_out);

#endif
