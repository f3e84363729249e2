/* Child processes driven by one poll() loop; see snap_child.h. */
#include "snap_child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Without a pidfd, each running child is polled with waitpid(WNOHANG) this often. */
#define TICK_MS 10

enum child_state { CHILD_PENDING, CHILD_RUNNING, CHILD_DONE };

struct child {
    snap_child_result r;
    char **argv;
    snap_child_opts opts;
    enum child_state state;
    int out_fd, err_fd, pidfd;
    uint64_t deadline, kill_at; /* SNAP_DEADLINE_NEVER when unset */
    bool term_sent, kill_sent;
};

struct snap_child_group {
    struct child *c;
    size_t n, cap;
    int max_parallel;
    xentoollog_logger *lg;
    bool ran;
};

/* ------------------------------------------------------------ exit wording */

void snap_child_describe_status(char *buf, size_t len, const char *what, pid_t pid,
                                int status)
{
    long p = (long)pid;
    if (WIFEXITED(status)) {
        int st = WEXITSTATUS(status);
        if (st)
            snprintf(buf, len, "%s [%ld] exited with error status %d", what, p, st);
        else
            snprintf(buf, len, "%s [%ld] exited with status zero", what, p);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *str = strsignal(sig);
        const char *core = WCOREDUMP(status) ? " (core dumped)" : "";
        if (str)
            snprintf(buf, len, "%s [%ld] died due to fatal signal %s%s", what, p, str,
                     core);
        else
            snprintf(buf, len, "%s [%ld] died due to unknown fatal signal number %d%s",
                     what, p, sig, core);
    } else if (WIFSTOPPED(status)) {
        snprintf(buf, len, "%s [%ld] stopped by signal %d", what, p, WSTOPSIG(status));
    } else {
        snprintf(buf, len, "%s [%ld] gave unknown wait status 0x%x", what, p,
                 (unsigned)status);
    }
}

static void describe_timeout(char *buf, size_t len, const struct child *c)
{
    int ms = c->opts.timeout_ms;
    if (ms % 1000 == 0)
        snprintf(buf, len, "%s [%ld] was killed by timeout after %d s", c->r.what,
                 (long)c->r.pid, ms / 1000);
    else
        snprintf(buf, len, "%s [%ld] was killed by timeout after %.1f s", c->r.what,
                 (long)c->r.pid, ms / 1000.0);
}

/* Captured stderr as one line: trailing blanks cut, newlines as "; ". */
static void flatten_stderr(const char *in, char *out, size_t len)
{
    size_t n = strlen(in), o = 0;
    while (n && (in[n - 1] == '\n' || in[n - 1] == '\r' || in[n - 1] == ' '))
        n--;
    for (size_t i = 0; i < n && o + 3 < len; i++) {
        if (in[i] == '\n') {
            out[o++] = ';';
            out[o++] = ' ';
        } else if (in[i] != '\r') {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* Sets c->r.rc and c->r.err from how the child ended. */
static void judge_child(struct child *c)
{
    char what[512], text[SNAP_ERRMSG_MAX];
    int code;
    if (!c->r.reaped) {
        snprintf(what, sizeof what, "%s [%ld] status lost (reaped by someone else)",
                 c->r.what, (long)c->r.pid);
        code = SNAP_ERROR_FAIL;
    } else if (c->r.timed_out) {
        describe_timeout(what, sizeof what, c);
        code = SNAP_ERROR_TIMEDOUT;
    } else if (WIFEXITED(c->r.status) && WEXITSTATUS(c->r.status) == 0) {
        c->r.rc = 0;
        snap_err_clear(&c->r.err);
        return;
    } else {
        snap_child_describe_status(what, sizeof what, c->r.what, c->r.pid, c->r.status);
        code = WIFEXITED(c->r.status) ? SNAP_ERROR_PEER : SNAP_ERROR_FAIL;
    }
    flatten_stderr(c->r.errout ? c->r.errout : "", text, sizeof text);
    if (text[0])
        c->r.rc = snap_err_set(&c->r.err, code, "%s: %s", what, text);
    else
        c->r.rc = snap_err_set(&c->r.err, code, "%s", what);
}

/* ------------------------------------------------------------ exit notification */

static atomic_int pidfd_support = -1; /* -1 unknown, 0 no, 1 yes */
static atomic_bool force_polling;

void snap_child_force_polling(bool on)
{
    force_polling = on;
}

bool snap_child_uses_pidfd(void)
{
    return !force_polling && pidfd_support != 0;
}

/* A pidfd for pid, or -1 (recording that the kernel has none on ENOSYS). */
static int open_pidfd(pid_t pid)
{
    if (!snap_child_uses_pidfd())
        return -1;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        pidfd_support = 1;
        return fd; /* pidfds are always close-on-exec */
    }
    if (errno == ENOSYS || errno == EPERM)
        pidfd_support = 0;
    return -1;
}

/* ------------------------------------------------------------ groups */

snap_child_group *snap_child_group_new(int max_parallel, xentoollog_logger *lg)
{
    snap_child_group *g = snap_xcalloc(1, sizeof *g);
    g->max_parallel = max_parallel > 0 ? max_parallel : SNAP_CHILD_DEFAULT_PARALLEL;
    g->lg = lg;
    return g;
}

static char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return snap_xstrdup(slash ? slash + 1 : path);
}

size_t snap_child_group_add(snap_child_group *g, const char *what,
                            const char *const argv[], const snap_child_opts *opts)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->c = snap_xrealloc(g->c, g->cap * sizeof *g->c);
    }
    struct child *c = &g->c[g->n];
    memset(c, 0, sizeof *c);
    size_t argc = 0;
    while (argv[argc])
        argc++;
    c->argv = snap_xcalloc(argc + 1, sizeof *c->argv);
    for (size_t i = 0; i < argc; i++)
        c->argv[i] = snap_xstrdup(argv[i]);
    if (opts)
        c->opts = *opts;
    if (!c->opts.term_grace_ms)
        c->opts.term_grace_ms = SNAP_CHILD_DEFAULT_GRACE_MS;
    if (!c->opts.max_stdout)
        c->opts.max_stdout = SNAP_CHILD_DEFAULT_MAX_STDOUT;
    if (!c->opts.max_stderr)
        c->opts.max_stderr = SNAP_CHILD_DEFAULT_MAX_STDERR;
    c->r.what = what ? snap_xstrdup(what) : basename_of(argc ? argv[0] : "(none)");
    c->out_fd = c->err_fd = c->pidfd = -1;
    c->deadline = c->kill_at = SNAP_DEADLINE_NEVER;
    return g->n++;
}

size_t snap_child_group_count(const snap_child_group *g)
{
    return g->n;
}

const snap_child_result *snap_child_group_result(const snap_child_group *g, size_t i)
{
    return i < g->n ? &g->c[i].r : NULL;
}

void snap_child_result_dispose(snap_child_result *res)
{
    if (!res)
        return;
    free(res->what);
    free(res->out);
    free(res->errout);
    memset(res, 0, sizeof *res);
}

void snap_child_group_free(snap_child_group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++) {
        struct child *c = &g->c[i];
        for (char **a = c->argv; *a; a++)
            free(*a);
        free(c->argv);
        snap_child_result_dispose(&c->r);
    }
    free(g->c);
    free(g);
}

/* ------------------------------------------------------------ spawning */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* File actions: stdin /dev/null, stdout to a pipe or /dev/null, stderr to a pipe. */
static int child_file_actions(posix_spawn_file_actions_t *fa, int out_w, int err_w)
{
    int rc = posix_spawn_file_actions_init(fa);
    if (rc)
        return rc;
    rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc && out_w >= 0)
        rc = posix_spawn_file_actions_adddup2(fa, out_w, 1);
    else if (!rc)
        rc = posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(fa, err_w, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Descriptors a caller forgot to mark close-on-exec stay out of the child. */
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
    if (rc)
        posix_spawn_file_actions_destroy(fa);
    return rc;
}

int snap_child_spawnattr_init(posix_spawnattr_t *at, short detach)
{
    sigset_t all, none;
    int rc = posix_spawnattr_init(at);
    if (rc)
        return rc;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigemptyset(&none);
    rc = posix_spawnattr_setflags(at, detach | POSIX_SPAWN_SETSIGDEF |
                                          POSIX_SPAWN_SETSIGMASK);
    if (!rc && detach == POSIX_SPAWN_SETPGROUP)
        rc = posix_spawnattr_setpgroup(at, 0);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(at, &all);
    if (!rc)
        rc = posix_spawnattr_setsigmask(at, &none);
    if (rc)
        posix_spawnattr_destroy(at);
    return rc;
}

/*
 * Finds argv0 the way execvp() would (PATH, default "/bin:/usr/bin"), so a
 * missing program is reported the same whatever posix_spawn's implementation
 * (some cannot report exec failures and exit 127 instead).
 */
static int resolve_program(const char *argv0, char **path_out)
{
    if (strchr(argv0, '/')) {
        *path_out = snap_xstrdup(argv0);
        return access(argv0, X_OK) == 0 ? 0 : errno;
    }
    const char *path = getenv("PATH");
    int rc = ENOENT;
    char *dirs = snap_xstrdup(path && *path ? path : "/bin:/usr/bin"), *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *cand = snap_xasprintf("%s/%s", *d ? d : ".", argv0);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(cand, X_OK) == 0) {
                *path_out = cand;
                free(dirs);
                return 0;
            }
            rc = EACCES;
        }
        free(cand);
    }
    free(dirs);
    *path_out = NULL;
    return rc;
}

static int start_failed(struct child *c, int errnum, const char *doing)
{
    int code = errnum == ENOENT || errnum == EACCES ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO;
    c->r.rc = snap_err_errno(&c->r.err, code, errnum, "%s: %s %s", c->r.what, doing,
                             c->argv[0] ? c->argv[0] : "(empty argv)");
    c->r.errout = snap_xstrdup("");
    c->state = CHILD_DONE;
    return c->r.rc;
}

static int spawn_child(struct child *c, pid_t *pid_out)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char *prog = NULL;
    int rc = resolve_program(c->argv[0], &prog);
    if (rc)
        goto out;
    if ((c->opts.capture_stdout && pipe2(outp, O_CLOEXEC | O_NONBLOCK) < 0) ||
        pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
        rc = errno;
        goto out;
    }
    /* The child's ends must block: programs do not expect EAGAIN on stderr. */
    fcntl(errp[1], F_SETFL, 0);
    if (outp[1] >= 0)
        fcntl(outp[1], F_SETFL, 0);
    rc = child_file_actions(&fa, outp[1], errp[1]);
    if (rc)
        goto out;
    /* Own process group: a timeout kills what the child started too. */
    rc = snap_child_spawnattr_init(&at, POSIX_SPAWN_SETPGROUP);
    if (!rc) {
        rc = posix_spawn(pid_out, prog, &fa, &at, c->argv, environ);
        posix_spawnattr_destroy(&at);
    }
    posix_spawn_file_actions_destroy(&fa);
    if (!rc) {
        c->out_fd = outp[0];
        c->err_fd = errp[0];
        outp[0] = errp[0] = -1;
    }
out:
    free(prog);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    return rc;
}

static void start_child(snap_child_group *g, struct child *c)
{
    pid_t pid = 0;
    if (!c->argv[0])
        return (void)start_failed(c, EINVAL, "cannot run");
    int rc = spawn_child(c, &pid);
    if (rc) {
        start_failed(c, rc, "cannot run");
        snap_log(g->lg, XTL_ERROR, "%s", c->r.err.msg);
        return;
    }
    c->r.pid = pid;
    c->r.started = true;
    c->r.start_ms = snap_now_ms();
    c->state = CHILD_RUNNING;
    c->pidfd = open_pidfd(pid);
    if (c->opts.timeout_ms > 0)
        c->deadline = c->r.start_ms + (uint64_t)c->opts.timeout_ms;
    snap_log(g->lg, XTL_DEBUG, "%s [%ld] started (%s)", c->r.what, (long)pid, c->argv[0]);
}

/* ------------------------------------------------------------ the loop */

/* Appends what fd has to *buf, keeping at most max bytes; closes fd at EOF. */
static void read_pipe(int *fd, char **buf, size_t *len, size_t max, bool *truncated)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(*fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close_fd(fd);
            return;
        }
        size_t keep = *len < max ? max - *len : 0;
        if ((size_t)n > keep)
            *truncated = true;
        else
            keep = (size_t)n;
        if (keep) {
            *buf = snap_xrealloc(*buf, *len + keep + 1);
            memcpy(*buf + *len, chunk, keep);
            *len += keep;
            (*buf)[*len] = '\0';
        }
    }
}

static void read_child_pipes(struct child *c)
{
    if (c->out_fd >= 0)
        read_pipe(&c->out_fd, &c->r.out, &c->r.out_len, c->opts.max_stdout,
                  &c->r.out_truncated);
    if (c->err_fd >= 0)
        read_pipe(&c->err_fd, &c->r.errout, &c->r.errout_len, c->opts.max_stderr,
                  &c->r.errout_truncated);
}

static void finish_child(snap_child_group *g, struct child *c)
{
    /* What the child wrote is in the pipes; a grandchild may hold them open. */
    read_child_pipes(c);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    close_fd(&c->pidfd);
    c->r.end_ms = snap_now_ms();
    if (!c->r.errout)
        c->r.errout = snap_xstrdup("");
    if (c->opts.capture_stdout && !c->r.out)
        c->r.out = snap_xstrdup("");
    c->state = CHILD_DONE;
    judge_child(c);
    snap_log(g->lg, c->r.rc ? XTL_ERROR : XTL_DEBUG, "%s",
             c->r.rc ? c->r.err.msg : "child exited with status zero");
}

/* Reaps c if it has exited (never blocks); returns true when it is done. */
static bool try_reap(snap_child_group *g, struct child *c)
{
    int status;
    pid_t r;
    do
        r = waitpid(c->r.pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return false;
    if (r == c->r.pid) {
        c->r.status = status;
        c->r.reaped = true;
    }
    /* r < 0 (ECHILD): someone else reaped it; judge_child says so. */
    finish_child(g, c);
    return true;
}

static void signal_child(struct child *c, int sig)
{
    /* The pid is ours until reaped, so neither number can have been reused. */
    kill(-c->r.pid, sig);
    kill(c->r.pid, sig);
}

static void enforce_timeout(struct child *c, uint64_t now)
{
    if (!c->term_sent && now >= c->deadline) {
        c->r.timed_out = c->term_sent = true;
        signal_child(c, SIGTERM);
        c->kill_at = now + (uint64_t)c->opts.term_grace_ms;
    } else if (c->term_sent && !c->kill_sent && now >= c->kill_at) {
        c->kill_sent = true;
        signal_child(c, SIGKILL);
    }
}

static uint64_t next_wakeup(const snap_child_group *g, bool ticking)
{
    uint64_t at = ticking ? snap_now_ms() + TICK_MS : SNAP_DEADLINE_NEVER;
    for (size_t i = 0; i < g->n; i++) {
        const struct child *c = &g->c[i];
        if (c->state != CHILD_RUNNING)
            continue;
        uint64_t t = c->term_sent ? (c->kill_sent ? SNAP_DEADLINE_NEVER : c->kill_at)
                                  : c->deadline;
        if (t < at)
            at = t;
    }
    return at;
}

/* Starts pending children while fewer than max_parallel run. */
static size_t start_pending(snap_child_group *g, size_t running)
{
    for (size_t i = 0; i < g->n && running < (size_t)g->max_parallel; i++) {
        if (g->c[i].state != CHILD_PENDING)
            continue;
        start_child(g, &g->c[i]);
        if (g->c[i].state == CHILD_RUNNING)
            running++;
    }
    return running;
}

/* One poll() round over every running child's pipes and pidfd. */
static int poll_round(snap_child_group *g, struct pollfd *pfd)
{
    size_t np = 0;
    bool ticking = !snap_child_uses_pidfd();
    for (size_t i = 0; i < g->n; i++) {
        struct child *c = &g->c[i];
        if (c->state != CHILD_RUNNING)
            continue;
        int fds[3] = {c->out_fd, c->err_fd, c->pidfd};
        for (int k = 0; k < 3; k++)
            if (fds[k] >= 0)
                pfd[np++] = (struct pollfd){.fd = fds[k], .events = POLLIN};
        ticking = ticking || c->pidfd < 0;
    }
    int r = poll(pfd, np, snap_deadline_poll_ms(next_wakeup(g, ticking)));
    if (r < 0 && errno != EINTR)
        return -errno;
    return 0;
}

/* Kills and reaps every running child: the loop itself failed. */
static void abandon_all(snap_child_group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        struct child *c = &g->c[i];
        if (c->state == CHILD_PENDING)
            start_failed(c, ECANCELED, "not started");
        if (c->state != CHILD_RUNNING)
            continue;
        signal_child(c, SIGKILL);
        while (waitpid(c->r.pid, &c->r.status, 0) < 0 && errno == EINTR)
            ;
        c->r.reaped = true;
        finish_child(g, c);
    }
}

static int run_loop(snap_child_group *g, snap_err *err)
{
    struct pollfd *pfd = snap_xcalloc(g->n * 3, sizeof *pfd);
    size_t running = start_pending(g, 0);
    int rc = 0;
    while (running > 0) {
        int prc = poll_round(g, pfd);
        if (prc < 0) {
            rc = snap_err_errno(err, SNAP_ERROR_IO, -prc, "waiting for child processes");
            abandon_all(g);
            break;
        }
        uint64_t now = snap_now_ms();
        for (size_t i = 0; i < g->n; i++) {
            struct child *c = &g->c[i];
            if (c->state != CHILD_RUNNING)
                continue;
            read_child_pipes(c);
            if (try_reap(g, c))
                running--;
            else
                enforce_timeout(c, now);
        }
        running = start_pending(g, running);
    }
    free(pfd);
    return rc;
}

static bool sigchld_ignored(void)
{
    struct sigaction cur;
    if (sigaction(SIGCHLD, NULL, &cur) < 0)
        return false;
    return (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN) ||
           (cur.sa_flags & SA_NOCLDWAIT);
}

/* The group's overall verdict: the first failure, with a count. */
static int group_verdict(const snap_child_group *g, snap_err *err)
{
    size_t failed = 0, first = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->c[i].r.rc && failed++ == 0)
            first = i;
    if (!failed)
        return 0;
    const snap_child_result *r = &g->c[first].r;
    if (g->n == 1)
        return snap_err_set(err, r->rc, "%s", r->err.msg);
    return snap_err_set(err, r->rc, "%zu of %zu commands failed, first: %s", failed, g->n,
                        r->err.msg);
}

int snap_child_group_run(snap_child_group *g, snap_err *err)
{
    if (g->ran)
        return snap_err_set(err, SNAP_ERROR_INVAL, "child group already ran");
    g->ran = true;
    if (sigchld_ignored())
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "SIGCHLD is ignored (SIG_IGN or SA_NOCLDWAIT): exit statuses "
                            "of child processes cannot be collected");
    int rc = run_loop(g, err);
    return rc ? rc : group_verdict(g, err);
}

/* ------------------------------------------------------------ one child */

int snap_child_run(const char *what, const char *const argv[],
                   const snap_child_opts *opts, snap_child_result *res, snap_err *err)
{
    snap_child_group *g = snap_child_group_new(1, NULL);
    snap_child_group_add(g, what, argv, opts);
    int rc = snap_child_group_run(g, err);
    if (res) {
        *res = g->c[0].r;
        memset(&g->c[0].r, 0, sizeof g->c[0].r);
    }
    snap_child_group_free(g);
    return rc;
}

/* ------------------------------------------------------------ server children */

int snap_child_bg_start(snap_child_bg *bg, const char *what, const char *const argv[],
                        const char *errpath, snap_err *err)
{
    memset(bg, 0, sizeof *bg);
    bg->what = snap_xstrdup(what);
    bg->errpath = snap_xstrdup(errpath);
    char *prog = NULL;
    int rc = resolve_program(argv[0], &prog);
    if (rc) {
        snap_err_errno(err,
                       rc == ENOENT || rc == EACCES ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO,
                       rc, "%s: cannot run %s", what, argv[0]);
        return err->code;
    }
    int errfd = open(errpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    rc = errfd < 0 ? errno : child_file_actions(&fa, -1, errfd);
    if (!rc) {
        rc = snap_child_spawnattr_init(&at, POSIX_SPAWN_SETPGROUP);
        if (!rc) {
            rc = posix_spawn(&bg->pid, prog, &fa, &at, (char *const *)argv, environ);
            posix_spawnattr_destroy(&at);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    if (errfd >= 0)
        close(errfd);
    free(prog);
    if (rc) {
        bg->pid = 0;
        return snap_err_errno(err, SNAP_ERROR_IO, rc, "%s: cannot run %s", what, argv[0]);
    }
    return 0;
}

/* The first line(s) the child wrote to stderr, for a message ("" when none). */
static void bg_errout(const snap_child_bg *bg, char *buf, size_t len)
{
    buf[0] = 0;
    int fd = open(bg->errpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    for (size_t i = strlen(buf); i > 0 && (buf[i - 1] == '\n' || buf[i - 1] == ' '); i--)
        buf[i - 1] = 0;
}

bool snap_child_bg_exited(snap_child_bg *bg, snap_err *err)
{
    if (!bg->pid)
        return true;
    pid_t r;
    while ((r = waitpid(bg->pid, &bg->status, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return false;
    char desc[256], out[1024];
    snap_child_describe_status(desc, sizeof desc, bg->what, bg->pid, bg->status);
    bg->pid = 0;
    bg_errout(bg, out, sizeof out);
    snap_err_set(err, SNAP_ERROR_PEER, "%s%s%s", desc, *out ? ": " : "", out);
    return true;
}

/* Waits up to ms for the child to exit; true when reaped. */
static bool bg_wait(snap_child_bg *bg, int ms)
{
    uint64_t deadline = snap_deadline_in(ms);
    for (;;) {
        pid_t r = waitpid(bg->pid, &bg->status, WNOHANG);
        if (r == bg->pid || (r < 0 && errno == ECHILD))
            return true;
        if (snap_deadline_poll_ms(deadline) == 0)
            return false;
        usleep(TICK_MS * 1000);
    }
}

void snap_child_bg_stop(snap_child_bg *bg, int grace_ms)
{
    if (bg->pid) {
        /* Ours until reaped: the numbers cannot have been reused. */
        kill(-bg->pid, SIGTERM);
        kill(bg->pid, SIGTERM);
        if (!bg_wait(bg, grace_ms > 0 ? grace_ms : SNAP_CHILD_DEFAULT_GRACE_MS)) {
            kill(-bg->pid, SIGKILL);
            kill(bg->pid, SIGKILL);
            while (waitpid(bg->pid, &bg->status, 0) < 0 && errno == EINTR)
                ;
        }
        bg->pid = 0;
    }
    free(bg->what);
    free(bg->errpath);
    bg->what = bg->errpath = NULL;
}
