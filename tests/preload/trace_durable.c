/*
 * trace_durable — an LD_PRELOAD shim for test_durability: logs, one line per
 * call, what a process does to the files under one directory, so that a test
 * can prove the order write -> fsync(file) -> rename -> fsync(dir).
 *
 *   XLSNAP_TRACE_DIR=<dir> XLSNAP_TRACE_LOG=<file> LD_PRELOAD=libtrace_durable.so cmd
 *
 * Lines (fields separated by a tab, paths absolute and resolved):
 *   write PATH | fsync PATH | rename FROM TO | unlink PATH | mkdir PATH
 *   spawn PROGRAM   (posix_spawn: a step that may depend on what is on disk)
 * Only paths under XLSNAP_TRACE_DIR are logged (spawns always). The shim
 * removes itself from LD_PRELOAD so the programs the process starts (qemu-img)
 * are not traced. Built without sanitizers; its own I/O is raw syscalls.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_FDS 4096

static char trace_dir[PATH_MAX];
static size_t trace_dir_len;
static int log_fd = -1;
static char *fd_paths[MAX_FDS]; /* the traced path an fd was opened on, or NULL */
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Under valgrind --trace-children, a traced program is started again by
 * valgrind's launcher (valgrind.bin), with the program's environment, before
 * the program itself is loaded: the shim is for the program, so the launcher
 * must leave LD_PRELOAD (and the log) alone.
 */
static bool in_valgrind_launcher(void)
{
    char exe[PATH_MAX];
    long n = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    const char *base = strrchr(exe, '/');
    return strncmp(base ? base + 1 : exe, "valgrind", 8) == 0;
}

__attribute__((constructor)) static void trace_init(void)
{
    const char *dir = getenv("XLSNAP_TRACE_DIR"), *log = getenv("XLSNAP_TRACE_LOG");
    if (in_valgrind_launcher())
        return;
    unsetenv("LD_PRELOAD");
    if (!dir || !log)
        return;
    if (!realpath(dir, trace_dir)) /* not created yet: as given */
        snprintf(trace_dir, sizeof trace_dir, "%s", dir);
    trace_dir_len = strlen(trace_dir);
    log_fd = (int)syscall(SYS_openat, AT_FDCWD, log,
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static bool traced(const char *path)
{
    return log_fd >= 0 && path && strncmp(path, trace_dir, trace_dir_len) == 0 &&
           (path[trace_dir_len] == '/' || path[trace_dir_len] == '\0');
}

static void emit(const char *op, const char *a, const char *b)
{
    char line[2 * PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s\t%s%s%s\n", op, a, b ? "\t" : "", b ? b : "");
    if (n > 0 && (size_t)n < sizeof line)
        syscall(SYS_write, log_fd, line, (size_t)n);
}

/* The absolute path of name relative to dirfd (or the cwd); out is PATH_MAX. */
static bool resolve_at(int dirfd, const char *name, char *out)
{
    char base[PATH_MAX];
    if (name[0] == '/') {
        snprintf(out, PATH_MAX, "%s", name);
        return true;
    }
    long n;
    if (dirfd == AT_FDCWD) {
        n = syscall(SYS_getcwd, base, sizeof base);
        n = n > 0 ? (long)strlen(base) : -1;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        n = syscall(SYS_readlinkat, AT_FDCWD, link, base, sizeof base - 1);
    }
    if (n <= 0)
        return false;
    base[n] = '\0';
    return snprintf(out, PATH_MAX, "%s/%s", base, name) < PATH_MAX;
}

static void remember_fd(int fd)
{
    char link[64], path[PATH_MAX];
    if (fd < 0 || fd >= MAX_FDS || log_fd < 0)
        return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = syscall(SYS_readlinkat, AT_FDCWD, link, path, sizeof path - 1);
    char *copy = NULL;
    if (n > 0) {
        path[n] = '\0';
        if (traced(path))
            copy = strdup(path);
    }
    pthread_mutex_lock(&fd_lock);
    free(fd_paths[fd]);
    fd_paths[fd] = copy;
    pthread_mutex_unlock(&fd_lock);
}

static void fd_event(const char *op, int fd)
{
    if (fd < 0 || fd >= MAX_FDS)
        return;
    pthread_mutex_lock(&fd_lock);
    if (fd_paths[fd])
        emit(op, fd_paths[fd], NULL);
    pthread_mutex_unlock(&fd_lock);
}

static void path_event(const char *op, int dirfd, const char *name)
{
    char path[PATH_MAX];
    if (log_fd >= 0 && name && resolve_at(dirfd, name, path) && traced(path))
        emit(op, path, NULL);
}

#define NEXT(type, name, args)                                                           \
    static type(*real_##name) args;                                                      \
    if (!real_##name)                                                                    \
        real_##name = (type(*) args)dlsym(RTLD_NEXT, #name);

/* Reads the optional mode argument of open-like calls. */
#define MODE_ARG(flags, last)                                                            \
    mode_t mode = 0;                                                                     \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                               \
        va_list ap;                                                                      \
        va_start(ap, last);                                                              \
        mode = va_arg(ap, mode_t);                                                       \
        va_end(ap);                                                                      \
    }

int open(const char *path, int flags, ...)
{
    NEXT(int, open, (const char *, int, ...));
    MODE_ARG(flags, flags);
    int fd = real_open(path, flags, mode);
    remember_fd(fd);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    NEXT(int, open64, (const char *, int, ...));
    MODE_ARG(flags, flags);
    int fd = real_open64(path, flags, mode);
    remember_fd(fd);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    NEXT(int, openat, (int, const char *, int, ...));
    MODE_ARG(flags, flags);
    int fd = real_openat(dirfd, path, flags, mode);
    remember_fd(fd);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    NEXT(int, openat64, (int, const char *, int, ...));
    MODE_ARG(flags, flags);
    int fd = real_openat64(dirfd, path, flags, mode);
    remember_fd(fd);
    return fd;
}

/* _FORTIFY_SOURCE's variants (open without a constant mode argument). */
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
    NEXT(int, __open_2, (const char *, int));
    int fd = real___open_2(path, flags);
    remember_fd(fd);
    return fd;
}

int __openat_2(int dirfd, const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags)
{
    NEXT(int, __openat_2, (int, const char *, int));
    int fd = real___openat_2(dirfd, path, flags);
    remember_fd(fd);
    return fd;
}

int close(int fd)
{
    NEXT(int, close, (int));
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&fd_lock);
        free(fd_paths[fd]);
        fd_paths[fd] = NULL;
        pthread_mutex_unlock(&fd_lock);
    }
    return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    NEXT(ssize_t, write, (int, const void *, size_t));
    ssize_t n = real_write(fd, buf, len);
    if (n > 0)
        fd_event("write", fd);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    NEXT(ssize_t, pwrite, (int, const void *, size_t, off_t));
    ssize_t n = real_pwrite(fd, buf, len, off);
    if (n > 0)
        fd_event("write", fd);
    return n;
}

int fsync(int fd)
{
    NEXT(int, fsync, (int));
    int rc = real_fsync(fd);
    if (rc == 0)
        fd_event("fsync", fd);
    return rc;
}

int fdatasync(int fd)
{
    NEXT(int, fdatasync, (int));
    int rc = real_fdatasync(fd);
    if (rc == 0)
        fd_event("fsync", fd);
    return rc;
}

static void rename_event(int olddirfd, const char *from, int newdirfd, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (log_fd >= 0 && resolve_at(olddirfd, from, a) && resolve_at(newdirfd, to, b) &&
        (traced(a) || traced(b)))
        emit("rename", a, b);
}

int rename(const char *from, const char *to)
{
    NEXT(int, rename, (const char *, const char *));
    int rc = real_rename(from, to);
    if (rc == 0)
        rename_event(AT_FDCWD, from, AT_FDCWD, to);
    return rc;
}

int renameat(int olddirfd, const char *from, int newdirfd, const char *to)
{
    NEXT(int, renameat, (int, const char *, int, const char *));
    int rc = real_renameat(olddirfd, from, newdirfd, to);
    if (rc == 0)
        rename_event(olddirfd, from, newdirfd, to);
    return rc;
}

int renameat2(int olddirfd, const char *from, int newdirfd, const char *to,
              unsigned flags)
{
    NEXT(int, renameat2, (int, const char *, int, const char *, unsigned));
    int rc = real_renameat2(olddirfd, from, newdirfd, to, flags);
    if (rc == 0)
        rename_event(olddirfd, from, newdirfd, to);
    return rc;
}

int unlink(const char *path)
{
    NEXT(int, unlink, (const char *));
    int rc = real_unlink(path);
    if (rc == 0)
        path_event("unlink", AT_FDCWD, path);
    return rc;
}

int unlinkat(int dirfd, const char *path, int flags)
{
    NEXT(int, unlinkat, (int, const char *, int));
    int rc = real_unlinkat(dirfd, path, flags);
    if (rc == 0)
        path_event(flags & AT_REMOVEDIR ? "rmdir" : "unlink", dirfd, path);
    return rc;
}

int mkdir(const char *path, mode_t mode)
{
    NEXT(int, mkdir, (const char *, mode_t));
    int rc = real_mkdir(path, mode);
    if (rc == 0)
        path_event("mkdir", AT_FDCWD, path);
    return rc;
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    NEXT(int, mkdirat, (int, const char *, mode_t));
    int rc = real_mkdirat(dirfd, path, mode);
    if (rc == 0)
        path_event("mkdir", dirfd, path);
    return rc;
}

static void spawn_event(const char *prog)
{
    if (log_fd >= 0)
        emit("spawn", prog ? prog : "?", NULL);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
    NEXT(int, posix_spawn,
         (pid_t *, const char *, const posix_spawn_file_actions_t *,
          const posix_spawnattr_t *, char *const[], char *const[]));
    spawn_event(path);
    return real_posix_spawn(pid, path, fa, at, argv, envp);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
    NEXT(int, posix_spawnp,
         (pid_t *, const char *, const posix_spawn_file_actions_t *,
          const posix_spawnattr_t *, char *const[], char *const[]));
    spawn_event(file);
    return real_posix_spawnp(pid, file, fa, at, argv, envp);
}
