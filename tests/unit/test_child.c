/*
 * Tests of snap_child: real programs (sh, sleep, cat, head) run through the
 * library's argv spawner; exit wording, capture, timeouts, parallel groups,
 * reaping and descriptor hygiene. sh is used here as a test program only:
 * the library itself never involves a shell.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap_child.h"
#include "th.h"

/* A reaped (or never started) pid leaves no /proc entry, zombies do. */
static bool pid_gone(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%ld", (long)pid);
    return pid <= 0 || access(p, F_OK) != 0;
}

/* Processes of group pgid that are not zombies, from /proc/<pid>/stat. */
static int live_members(pid_t pgid)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], state;
        long grp;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        /* comm may hold spaces: parse after its closing parenthesis. */
        char line[1024];
        if (fgets(line, sizeof line, f)) {
            char *p = strrchr(line, ')');
            if (p && sscanf(p + 1, " %c %*d %ld", &state, &grp) == 2 && grp == pgid &&
                state != 'Z')
                n++;
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

static void test_exit_status_wording(void)
{
    char buf[256];
    snap_child_describe_status(buf, sizeof buf, "qemu-img", 1234, 1 << 8);
    CHECK_STR(buf, "qemu-img [1234] exited with error status 1");
    snap_child_describe_status(buf, sizeof buf, "qemu-img", 1234, SIGKILL);
    CHECK_STR(buf, "qemu-img [1234] died due to fatal signal Killed");
    snap_child_describe_status(buf, sizeof buf, "qemu-img", 1234, SIGSEGV | 0x80);
    CHECK_STR(buf, "qemu-img [1234] died due to fatal signal Segmentation fault "
                   "(core dumped)");
}

static void test_error_status_and_stderr_in_message(void)
{
    const char *argv[] = {"sh", "-c", "echo 'first line' >&2; echo oops >&2; exit 3",
                          NULL};
    snap_child_result r;
    snap_err err;
    CHECK_INT(snap_child_run(NULL, argv, NULL, &r, &err), SNAP_ERROR_PEER);
    char want[128];
    snprintf(want, sizeof want, "sh [%ld] exited with error status 3: first line; oops",
             (long)r.pid);
    CHECK_STR(err.msg, want);
    CHECK_STR(r.errout, "first line\noops\n");
    CHECK(r.reaped && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3);
    CHECK(pid_gone(r.pid));
    snap_child_result_dispose(&r);
}

static void test_stdout_captured_and_stdin_is_null(void)
{
    const char *argv[] = {"sh", "-c", "cat; printf 'out\\n'; printf err >&2", NULL};
    snap_child_opts o = {.capture_stdout = true, .timeout_ms = 10000};
    snap_child_result r;
    snap_err err;
    CHECK_INT(snap_child_run("catter", argv, &o, &r, &err), 0);
    CHECK_STR(r.out, "out\n");
    CHECK_INT(r.out_len, 4);
    CHECK_STR(r.errout, "err");
    CHECK_STR(r.what, "catter");
    snap_child_result_dispose(&r);
}

static void test_capture_is_capped_without_blocking_child(void)
{
    /* 300 KB on stderr: far beyond the pipe buffer and the 1000-byte cap. */
    const char *argv[] = {"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x >&2", NULL};
    snap_child_opts o = {.max_stderr = 1000, .timeout_ms = 10000};
    snap_child_result r;
    snap_err err;
    CHECK_INT(snap_child_run(NULL, argv, &o, &r, &err), 0);
    CHECK_INT(r.errout_len, 1000);
    CHECK_INT(strlen(r.errout), 1000);
    CHECK(r.errout_truncated);
    CHECK(r.errout[999] == 'x');
    snap_child_result_dispose(&r);
}

static void test_killed_by_signal(void)
{
    const char *argv[] = {"sh", "-c", "kill -KILL $$", NULL};
    snap_child_result r;
    snap_err err;
    CHECK_INT(snap_child_run(NULL, argv, NULL, &r, &err), SNAP_ERROR_FAIL);
    char want[128];
    snprintf(want, sizeof want, "sh [%ld] died due to fatal signal Killed", (long)r.pid);
    CHECK_STR(err.msg, want);
    CHECK(pid_gone(r.pid));
    snap_child_result_dispose(&r);
}

static void test_hanging_child_killed_by_timeout(void)
{
    const char *argv[] = {"sleep", "100", NULL};
    snap_child_opts o = {.timeout_ms = 300};
    snap_child_result r;
    snap_err err;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_child_run(NULL, argv, &o, &r, &err), SNAP_ERROR_TIMEDOUT);
    uint64_t took = snap_now_ms() - t0;
    CHECK(took >= 300 && took < 2000);
    char want[128];
    snprintf(want, sizeof want, "sleep [%ld] was killed by timeout after 0.3 s",
             (long)r.pid);
    CHECK_STR(err.msg, want);
    CHECK(r.timed_out && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGTERM);
    CHECK(pid_gone(r.pid));
    snap_child_result_dispose(&r);
}

static void test_term_ignoring_child_gets_sigkill(void)
{
    /* The shell and its sleep both ignore SIGTERM: only SIGKILL ends them. */
    const char *argv[] = {"sh", "-c", "trap '' TERM; echo armed >&2; sleep 100; true",
                          NULL};
    snap_child_opts o = {.timeout_ms = 2000, .term_grace_ms = 300};
    snap_child_result r;
    snap_err err;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_child_run("stubborn", argv, &o, &r, &err), SNAP_ERROR_TIMEDOUT);
    uint64_t took = snap_now_ms() - t0;
    CHECK(took >= 2300 && took < 5000);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
    CHECK_CONTAINS(err.msg, "was killed by timeout after 2 s: armed");
    /* Nothing of the process group runs any more (the orphaned sleep may
     * linger as a zombie until this machine's init reaps it). SIGKILL is
     * delivered asynchronously: give the group a bounded moment to die. */
    int live = live_members(r.pid);
    for (int waited = 0; live && waited < 3000; waited += 20) {
        usleep(20000);
        live = live_members(r.pid);
    }
    CHECK_INT(live, 0);
    snap_child_result_dispose(&r);
}

static void test_grandchild_holding_pipe_does_not_hang(void)
{
    const char *argv[] = {"sh", "-c", "sleep 30 & echo bye >&2; exit 0", NULL};
    snap_child_result r;
    snap_err err;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_child_run(NULL, argv, NULL, &r, &err), 0);
    CHECK(snap_now_ms() - t0 < 5000);
    CHECK_STR(r.errout, "bye\n");
    kill(-r.pid, SIGKILL); /* the orphaned sleep is in the child's group */
    snap_child_result_dispose(&r);
}

static void test_missing_program_reported(void)
{
    const char *argv[] = {"xlsnap-no-such-program", "x", NULL};
    snap_child_result r;
    snap_err err;
    CHECK_INT(snap_child_run(NULL, argv, NULL, &r, &err), SNAP_ERROR_NOTFOUND);
    CHECK_STR(err.msg, "xlsnap-no-such-program: cannot run xlsnap-no-such-program: No "
                       "such file or directory");
    CHECK(!r.started);
    snap_child_result_dispose(&r);
}

/* Peak number of children alive at once, from their start/end times. */
static int peak_overlap(const snap_child_group *g)
{
    int peak = 0;
    for (size_t i = 0; i < snap_child_group_count(g); i++) {
        uint64_t t = snap_child_group_result(g, i)->start_ms;
        int alive = 0;
        for (size_t j = 0; j < snap_child_group_count(g); j++) {
            const snap_child_result *r = snap_child_group_result(g, j);
            alive += r->start_ms <= t && t < r->end_ms;
        }
        peak = alive > peak ? alive : peak;
    }
    return peak;
}

static void test_group_runs_in_parallel_and_reaps_all(void)
{
    snap_child_group *g = snap_child_group_new(8, NULL);
    const char *argv[] = {"sleep", "0.5", NULL};
    for (int i = 0; i < 8; i++)
        snap_child_group_add(g, NULL, argv, NULL);
    snap_err err;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_child_group_run(g, &err), 0);
    uint64_t took = snap_now_ms() - t0;
    th_note("8 x sleep 0.5 in parallel took %llu ms", (unsigned long long)took);
    CHECK(took >= 500 && took < 4000); /* serially: >= 4000 */
    CHECK_INT(peak_overlap(g), 8);
    for (size_t i = 0; i < 8; i++)
        CHECK(pid_gone(snap_child_group_result(g, i)->pid));
    CHECK_INT(snap_child_group_run(g, &err), SNAP_ERROR_INVAL);
    snap_child_group_free(g);
}

static void test_group_bounded_concurrency(void)
{
    snap_child_group *g = snap_child_group_new(2, NULL);
    const char *argv[] = {"sleep", "0.2", NULL};
    for (int i = 0; i < 6; i++)
        snap_child_group_add(g, NULL, argv, NULL);
    snap_err err;
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_child_group_run(g, &err), 0);
    CHECK(snap_now_ms() - t0 >= 600);
    CHECK_INT(peak_overlap(g), 2);
    snap_child_group_free(g);
}

static void test_group_verdict_names_first_failure(void)
{
    snap_child_group *g = snap_child_group_new(0, NULL);
    const char *ok[] = {"true", NULL};
    const char *bad1[] = {"sh", "-c", "echo one >&2; exit 4", NULL};
    const char *bad2[] = {"false", NULL};
    snap_child_group_add(g, "ok", ok, NULL);
    snap_child_group_add(g, "bad1", bad1, NULL);
    snap_child_group_add(g, "bad2", bad2, NULL);
    snap_err err;
    CHECK_INT(snap_child_group_run(g, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "2 of 3 commands failed, first: bad1 [");
    CHECK_CONTAINS(err.msg, "exited with error status 4: one");
    CHECK_INT(snap_child_group_result(g, 0)->rc, 0);
    CHECK_INT(snap_child_group_result(g, 2)->rc, SNAP_ERROR_PEER);
    CHECK_CONTAINS(snap_child_group_result(g, 2)->err.msg, "exited with error status 1");
    snap_child_group_free(g);
}

static void test_no_fd_leaks_and_child_sees_only_stdio(void)
{
    int before = th_count_fds();
    /* A descriptor the caller forgot to mark close-on-exec. */
    int leaky = open("/dev/null", O_RDONLY);
    REQUIRE(leaky >= 0);
    REQUIRE(dup2(leaky, 50) == 50);
    close(leaky);
    /* ls lists its own descriptors: stdio and the directory it reads (3). */
    const char *argv[] = {"ls", "/proc/self/fd", NULL};
    snap_child_opts o = {.capture_stdout = true};
    snap_child_result r;
    snap_err err;
    CHECK_INT(snap_child_run(NULL, argv, &o, &r, &err), 0);
    CHECK_STR(r.out, "0\n1\n2\n3\n");
    snap_child_result_dispose(&r);
    close(50);
    for (int i = 0; i < 20; i++) {
        const char *f[] = {"false", NULL};
        snap_child_run(NULL, f, NULL, NULL, NULL);
    }
    CHECK_INT(th_count_fds(), before);
}

static volatile sig_atomic_t caller_sigchlds, caller_displaced;
static void caller_handler(int sig)
{
    /* Called while another handler is installed: someone chained to us. */
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) == 0 && cur.sa_handler != caller_handler)
        caller_displaced = 1;
    caller_sigchlds++;
}

/*
 * Without pidfds (forced here), children are polled: the caller's SIGCHLD
 * handler stays installed throughout and sees every exit itself.
 */
static void test_polling_leaves_sigchld_to_the_caller(void)
{
    struct sigaction mine = {.sa_handler = caller_handler}, now;
    sigemptyset(&mine.sa_mask);
    REQUIRE(sigaction(SIGCHLD, &mine, NULL) == 0);
    caller_sigchlds = caller_displaced = 0;
    snap_child_force_polling(true);
    CHECK(!snap_child_uses_pidfd());
    int before = th_count_fds();
    snap_child_group *g = snap_child_group_new(4, NULL);
    const char *argv[] = {"sh", "-c", "sleep 0.2; exit 2", NULL};
    for (int i = 0; i < 4; i++)
        snap_child_group_add(g, NULL, argv, NULL);
    snap_err err;
    CHECK_INT(snap_child_group_run(g, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "4 of 4 commands failed");
    for (size_t i = 0; i < 4; i++) {
        const snap_child_result *r = snap_child_group_result(g, i);
        CHECK(r->reaped && WEXITSTATUS(r->status) == 2);
        CHECK(pid_gone(r->pid));
    }
    CHECK(peak_overlap(g) == 4);
    snap_child_group_free(g);
    snap_child_force_polling(false);
    CHECK(caller_sigchlds >= 1);
    CHECK(!caller_displaced);
    REQUIRE(sigaction(SIGCHLD, NULL, &now) == 0);
    CHECK(now.sa_handler == caller_handler && !(now.sa_flags & SA_SIGINFO));
    CHECK_INT(th_count_fds(), before);
    signal(SIGCHLD, SIG_DFL);
}

static void test_sigchld_ignored_is_refused(void)
{
    signal(SIGCHLD, SIG_IGN);
    const char *argv[] = {"true", NULL};
    snap_err err;
    CHECK_INT(snap_child_run(NULL, argv, NULL, NULL, &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "SIGCHLD is ignored");
    signal(SIGCHLD, SIG_DFL);
}

int main(void)
{
    th_plan(15);
    TH_RUN(test_exit_status_wording);
    TH_RUN(test_error_status_and_stderr_in_message);
    TH_RUN(test_stdout_captured_and_stdin_is_null);
    TH_RUN(test_capture_is_capped_without_blocking_child);
    TH_RUN(test_killed_by_signal);
    TH_RUN(test_hanging_child_killed_by_timeout);
    TH_RUN(test_term_ignoring_child_gets_sigkill);
    TH_RUN(test_grandchild_holding_pipe_does_not_hang);
    TH_RUN(test_missing_program_reported);
    TH_RUN(test_group_runs_in_parallel_and_reaps_all);
    TH_RUN(test_group_bounded_concurrency);
    TH_RUN(test_group_verdict_names_first_failure);
    TH_RUN(test_no_fd_leaks_and_child_sees_only_stdio);
    TH_RUN(test_polling_leaves_sigchld_to_the_caller);
    TH_RUN(test_sigchld_ignored_is_refused);
    return th_finish();
}
