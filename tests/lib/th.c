/* th — xlsnap's small test harness; see th.h. */
#include "th.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_MAX_CHILDREN 64

static int th_passed, th_failed, th_skipped;
static int th_planned = -1;
static int th_outside_failures; /* recorded with no test running: setup, teardown */
static bool th_cur_failed, th_cur_skipped;
static const char *th_cur_name;
static char th_dir[4096];
static pid_t th_children[TH_MAX_CHILDREN];
static bool th_adopted[TH_MAX_CHILDREN]; /* not our child: poll, do not waitpid */
static bool th_hooks_installed;

static void th_note_v(const char *fmt, va_list ap)
{
    fputs("# ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void th_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    th_note_v(fmt, ap);
    va_end(ap);
}

void th_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    printf("#   %s:%d: %s: ", file, line, th_cur_name ? th_cur_name : "(setup)");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (th_cur_name)
        th_cur_failed = true;
    else
        th_outside_failures++;
}

void th_plan(int tests)
{
    th_planned = tests;
    printf("plan: %d\n", tests);
    fflush(stdout);
}

void th_skip(const char *fmt, ...)
{
    va_list ap;
    fputs("#   skip: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    th_cur_skipped = true;
}

void th_run_test(const char *name, void (*fn)(void))
{
    struct timespec a, b;
    th_cur_name = name;
    th_cur_failed = th_cur_skipped = false;
    clock_gettime(CLOCK_MONOTONIC, &a);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    if (th_cur_failed) {
        th_failed++;
        printf("FAIL %s (%ld ms)\n", name, ms);
    } else if (th_cur_skipped) {
        th_skipped++;
        printf("SKIP %s\n", name);
    } else {
        th_passed++;
        printf("PASS %s (%ld ms)\n", name, ms);
    }
    fflush(stdout);
    th_cur_name = NULL;
}

/* ------------------------------------------------------------ cleanup */

static void th_kill_all(void)
{
    for (int i = 0; i < TH_MAX_CHILDREN; i++)
        if (th_children[i] > 0)
            th_kill(th_children[i]);
}

static int th_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void th_cleanup(void)
{
    th_kill_all();
    if (th_dir[0] && !getenv("TH_KEEP"))
        nftw(th_dir, th_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void th_on_signal(int sig)
{
    /* Kill what we started, then die of the same signal. */
    for (int i = 0; i < TH_MAX_CHILDREN; i++)
        if (th_children[i] > 0)
            kill(th_children[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void th_install_hooks(void)
{
    if (th_hooks_installed)
        return;
    th_hooks_installed = true;
    atexit(th_cleanup);
    signal(SIGINT, th_on_signal);
    signal(SIGTERM, th_on_signal);
    signal(SIGHUP, th_on_signal);
    signal(SIGPIPE, SIG_IGN);
}

int th_finish(void)
{
    int ran = th_passed + th_failed + th_skipped;
    if (th_planned < 0) {
        printf("FAIL plan: no th_plan() in main: how many tests should have run?\n");
        th_failed++;
    } else if (ran != th_planned) {
        printf("FAIL plan: %d tests planned, %d ran\n", th_planned, ran);
        th_failed++;
    }
    if (th_outside_failures) {
        printf("FAIL outside any test: %d failure(s) in setup or teardown (see above)\n",
               th_outside_failures);
        th_failed += th_outside_failures;
    }
    printf("%d passed, %d failed, %d skipped\n", th_passed, th_failed, th_skipped);
    fflush(stdout);
    return th_failed ? 1 : 0;
}

/* ------------------------------------------------------------ paths */

const char *th_tmpdir(void)
{
    if (!th_dir[0]) {
        const char *base = getenv("TMPDIR");
        th_install_hooks();
        snprintf(th_dir, sizeof th_dir, "%s/xlsnap-test.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(th_dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return th_dir;
}

static char *th_rotating(void)
{
    static char bufs[8][4096];
    static int next;
    return bufs[next++ % 8];
}

const char *th_path(const char *name)
{
    char *b = th_rotating();
    snprintf(b, 4096, "%s/%s", th_tmpdir(), name);
    return b;
}

unsigned long long th_traced_at(const char *path, const char *event)
{
    char name[64];
    unsigned long long ns, last = 0;
    FILE *f = path ? fopen(path, "r") : NULL;
    while (f && fscanf(f, "%63s %llu", name, &ns) == 2)
        if (!strcmp(name, event))
            last = ns;
    if (f)
        fclose(f);
    return last;
}

const char *th_build_path(const char *name)
{
    const char *d = getenv("XLSNAP_BUILDDIR");
    char *b = th_rotating();
    snprintf(b, 4096, "%s/%s", d ? d : "build", name);
    return b;
}

const char *th_top_path(const char *name)
{
    const char *d = getenv("XLSNAP_TOP");
    char *b = th_rotating();
    snprintf(b, 4096, "%s/%s", d ? d : ".", name);
    return b;
}

/* ------------------------------------------------------------ processes */

static void th_register_as(pid_t pid, bool adopted)
{
    for (int i = 0; i < TH_MAX_CHILDREN; i++)
        if (th_children[i] <= 0) {
            th_children[i] = pid;
            th_adopted[i] = adopted;
            return;
        }
    fprintf(stderr, "th: too many children\n");
    kill(pid, SIGKILL);
}

static void th_register(pid_t pid)
{
    th_register_as(pid, false);
}

void th_adopt(pid_t pid)
{
    th_install_hooks();
    if (pid > 0)
        th_register_as(pid, true);
}

static bool th_is_adopted(pid_t pid)
{
    for (int i = 0; i < TH_MAX_CHILDREN; i++)
        if (th_children[i] == pid)
            return th_adopted[i];
    return false;
}

bool th_pid_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

int th_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void th_unregister(pid_t pid)
{
    for (int i = 0; i < TH_MAX_CHILDREN; i++)
        if (th_children[i] == pid)
            th_children[i] = 0;
}

pid_t th_spawn(char *const argv[], const char *log_path)
{
    th_install_hooks();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log_path ? log_path : "/dev/null",
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        execvp(argv[0], argv);
        fprintf(stderr, "th: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    th_register(pid);
    return pid;
}

int th_wait(pid_t pid, int timeout_ms)
{
    int status;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            th_unregister(pid);
            return status;
        }
        if (r < 0) {
            th_unregister(pid);
            return -1;
        }
        if (waited >= timeout_ms)
            return -1;
        usleep(10000);
    }
}

void th_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    if (th_is_adopted(pid)) {
        kill(pid, SIGTERM);
        for (int waited = 0; waited < 5000 && th_pid_alive(pid); waited += 20)
            usleep(20000);
        if (th_pid_alive(pid))
            kill(pid, SIGKILL);
        th_unregister(pid);
        return;
    }
    if (kill(pid, SIGTERM) == 0 && th_wait(pid, 5000) != -1)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    th_unregister(pid);
}

bool th_wait_for_socket(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return false;
    strcpy(sa.sun_path, path);
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(fd);
            return true;
        }
        if (fd >= 0)
            close(fd);
        usleep(20000);
    }
    return false;
}

/* Reads fd to EOF into a malloc'd NUL-terminated buffer. */
static char *th_slurp_fd(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (cap - len < 2048) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

int th_run(char *const argv[], char **out, char **err)
{
    char opath[64], epath[64];
    snprintf(opath, sizeof opath, "/tmp/th-out.XXXXXX");
    snprintf(epath, sizeof epath, "/tmp/th-err.XXXXXX");
    int ofd = mkstemp(opath), efd = mkstemp(epath);
    if (ofd < 0 || efd < 0)
        return -1;
    unlink(opath);
    unlink(epath);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        execvp(argv[0], argv);
        fprintf(stderr, "th: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status = -1;
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    if (out)
        *out = th_slurp_fd(ofd);
    if (err)
        *err = th_slurp_fd(efd);
    close(ofd);
    close(efd);
    if (pid < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int th_runl(char **out, char **err, const char *arg0, ...)
{
    const char *argv[64];
    int n = 0;
    va_list ap;
    argv[n++] = arg0;
    va_start(ap, arg0);
    while (n < 63 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    return th_run((char *const *)argv, out, err);
}

char *th_read_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *s = th_slurp_fd(fd);
    close(fd);
    return s;
}

bool th_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* ------------------------------------------------------------ xenstored */

pid_t th_start_xenstored(const char **socket_out)
{
    static char sock[4096];
    char ready_fd_s[16];
    int pipefd[2];
    snprintf(sock, sizeof sock, "%s", th_path("xenstored.sock"));
    if (pipe(pipefd) < 0)
        return -1;
    snprintf(ready_fd_s, sizeof ready_fd_s, "%d", pipefd[1]);
    char *argv[] = {(char *)th_build_path("xlsnap-xenstored"),
                    "--foreground",
                    "--socket",
                    sock,
                    "--ready-fd",
                    ready_fd_s,
                    NULL};
    pid_t pid = th_spawn(argv, th_path("xenstored.log"));
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        th_fail_at(__FILE__, __LINE__, "cannot start xenstored");
        return -1;
    }
    /* The daemon writes to the ready fd once it listens. */
    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    char c;
    bool ready = poll(&p, 1, TH_READY_TIMEOUT_MS) == 1 && read(pipefd[0], &c, 1) == 1;
    close(pipefd[0]);
    if (!ready) {
        th_fail_at(__FILE__, __LINE__, "xenstored did not become ready (see %s)",
                   th_path("xenstored.log"));
        th_kill(pid);
        return -1;
    }
    setenv("XENSTORED_PATH", sock, 1);
    if (socket_out)
        *socket_out = sock;
    return pid;
}

bool th_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

long th_proc_euid(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *st = th_read_file(path);
    const char *u = st ? strstr(st, "\nUid:") : NULL;
    long real = -1, eff = -1;
    if (u)
        sscanf(u, "\nUid: %ld %ld", &real, &eff);
    free(st);
    return eff;
}
