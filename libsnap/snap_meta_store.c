/* The per-domain state directory and its atomic files; see snap_meta_store.h. */
#include "snap_meta_store.h"
#include "snap_trace.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *snap_statedir_resolve(const char *explicit_dir)
{
    if (explicit_dir && *explicit_dir)
        return explicit_dir;
    const char *env = getenv(SNAP_STATEDIR_ENV);
    return env && *env ? env : SNAP_STATEDIR_DEFAULT;
}

bool snap_uuid_valid(const char *uuid)
{
    if (!uuid || strlen(uuid) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? uuid[i] != '-' : !isxdigit((unsigned char)uuid[i]))
            return false;
    }
    return true;
}

/* mkdir -p with mode 0700 for the missing components of path. */
static int make_dirs(const char *path, snap_err *err)
{
    char *p = snap_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create %s", p);
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    free(p);
    return rc;
}

/* Opens (creating when asked) directory name below dirfd, refusing symlinks. */
static int open_subdir(int dirfd, const char *name, const char *path, bool create,
                       snap_err *err)
{
    if (create && mkdirat(dirfd, name, 0700) == 0) {
        /* umask may have taken bits away; the mode must be exactly 0700. */
        if (fchmodat(dirfd, name, 0700, 0) < 0)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "chmod %s", path);
        /* The new name is durable only once its parent is synced: else a crash
         * can lose the directory and the journal written into it. */
        if (fsync(dirfd) < 0)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "fsync the parent of %s",
                                  path);
    } else if (create && errno != EEXIST) {
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create %s", path);
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return snap_err_errno(err, errno == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO,
                              errno, "cannot open directory %s", path);
    return fd;
}

/* <statedir>/<sub>/<name> (name NULL: <statedir>/<sub>), made when asked. */
static int open_state_subdir(snap_meta_store *st, const char *sub, const char *name,
                             bool create, snap_err *err)
{
    if (create && make_dirs(st->statedir, err) < 0)
        return err->code;
    int top = open(st->statedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0)
        return snap_err_errno(err, errno == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO,
                              errno, "cannot open state directory %s", st->statedir);
    char *snaps_path = snap_xasprintf("%s/%s", st->statedir, sub);
    int snaps = open_subdir(top, sub, snaps_path, create, err);
    free(snaps_path);
    close(top);
    if (snaps < 0 || !name)
        return snaps;
    int fd = open_subdir(snaps, name, st->dir, create, err);
    close(snaps);
    return fd;
}

static int open_domain_dir(snap_meta_store *st, bool create, snap_err *err)
{
    return open_state_subdir(st, "snapshots", st->uuid, create, err);
}

int snap_meta_store_open_groups(snap_meta_store *st, const char *statedir, bool create,
                                snap_err *err)
{
    memset(st, 0, sizeof *st);
    st->dirfd = -1;
    st->statedir = snap_xstrdup(snap_statedir_resolve(statedir));
    st->uuid = snap_xstrdup("groups");
    st->label = snap_xstrdup("groups");
    st->dir = snap_xasprintf("%s/groups", st->statedir);
    int fd = open_state_subdir(st, "groups", NULL, create, err);
    if (fd < 0) {
        snap_meta_store_close(st);
        return fd;
    }
    st->dirfd = fd;
    return 0;
}

int snap_meta_store_open(snap_meta_store *st, const char *statedir, const char *uuid,
                         const char *label, bool create, snap_err *err)
{
    memset(st, 0, sizeof *st);
    st->dirfd = -1;
    if (!snap_uuid_valid(uuid))
        return snap_err_set(err, SNAP_ERROR_INVAL, "invalid domain uuid '%s'",
                            uuid ? uuid : "(null)");
    st->statedir = snap_xstrdup(snap_statedir_resolve(statedir));
    st->uuid = snap_xstrdup(uuid);
    st->label = snap_xstrdup(label && *label ? label : uuid);
    st->dir = snap_xasprintf("%s/snapshots/%s", st->statedir, uuid);
    int fd = open_domain_dir(st, create, err);
    if (fd < 0) {
        snap_meta_store_close(st);
        return fd;
    }
    st->dirfd = fd;
    return 0;
}

void snap_meta_store_close(snap_meta_store *st)
{
    if (st->dirfd >= 0)
        close(st->dirfd);
    free(st->statedir);
    free(st->uuid);
    free(st->label);
    free(st->dir);
    memset(st, 0, sizeof *st);
    st->dirfd = -1;
}

char *snap_meta_store_path(const snap_meta_store *st, const char *fname)
{
    return snap_xasprintf("%s/%s", st->dir, fname);
}

/* Creates a fresh temp file next to fname; its name goes to tmp. */
static int open_temp(snap_meta_store *st, const char *fname, char *tmp, size_t tmp_size,
                     snap_err *err)
{
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned rnd = (unsigned)snap_now_ms() * 2654435761u ^ (unsigned)getpid() << 16 ^
                       ++counter * 40503u;
        snprintf(tmp, tmp_size, ".%s.tmp.%d.%08x", fname, (int)getpid(), rnd);
        int fd = openat(st->dirfd, tmp,
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create %s/%s",
                                  st->dir, tmp);
    }
    return snap_err_set(err, SNAP_ERROR_IO, "cannot create a temp file for %s/%s",
                        st->dir, fname);
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int snap_meta_store_write(snap_meta_store *st, const char *fname, const char *data,
                          size_t len, snap_err *err)
{
    char tmp[NAME_MAX + 64];
    snap_trace("store-write"); /* a journal or record file, durably */
    int fd = open_temp(st, fname, tmp, sizeof tmp, err);
    if (fd < 0)
        return fd;
    const char *step = NULL;
    if (fchmod(fd, 0600) < 0)
        step = "chmod";
    else if (write_all(fd, data, len) < 0)
        step = "write";
    else if (fsync(fd) < 0)
        step = "fsync";
    int saved = errno;
    if (close(fd) < 0 && !step) {
        step = "close";
        saved = errno;
    }
    if (!step && renameat(st->dirfd, tmp, st->dirfd, fname) < 0) {
        step = "rename";
        saved = errno;
    }
    if (step) {
        unlinkat(st->dirfd, tmp, 0);
        return snap_err_errno(err, SNAP_ERROR_IO, saved, "%s %s/%s", step, st->dir,
                              fname);
    }
    /* The rename is durable only once the directory itself is synced. */
    if (fsync(st->dirfd) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "fsync %s", st->dir);
    snap_trace("store-synced");
    return 0;
}

static int read_fd(int fd, const char *path, char **out, size_t *len_out, snap_err *err)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "stat %s", path);
    if (!S_ISREG(sb.st_mode))
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: not a regular file", path);
    if ((uint64_t)sb.st_size > SNAP_STATE_FILE_MAX)
        return snap_err_set(err, SNAP_ERROR_INVAL, "%s: larger than %u bytes", path,
                            SNAP_STATE_FILE_MAX);
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    char *buf = snap_xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > SNAP_STATE_FILE_MAX) {
                free(buf);
                return snap_err_set(err, SNAP_ERROR_INVAL, "%s: too large", path);
            }
            cap *= 2;
            buf = snap_xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "read %s", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    if (len_out)
        *len_out = len;
    return 0;
}

int snap_meta_store_read(snap_meta_store *st, const char *fname, char **out,
                         size_t *len_out, snap_err *err)
{
    *out = NULL;
    char *path = snap_meta_store_path(st, fname);
    int rc;
    int fd = openat(st->dirfd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO;
        if (errno == ELOOP)
            rc = snap_err_set(err, SNAP_ERROR_INVAL, "%s: is a symlink, refused", path);
        else
            snap_err_errno(err, rc, errno, "cannot open %s", path);
    } else {
        rc = read_fd(fd, path, out, len_out, err);
        close(fd);
    }
    free(path);
    return rc;
}

int snap_meta_store_unlink(snap_meta_store *st, const char *fname, snap_err *err)
{
    if (unlinkat(st->dirfd, fname, 0) < 0) {
        if (errno == ENOENT)
            return 0;
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot remove %s/%s", st->dir,
                              fname);
    }
    if (fsync(st->dirfd) < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "fsync %s", st->dir);
    return 0;
}

/* The writer pid of a temp name ".<file>.tmp.<pid>.<8 hex>", or 0. */
static pid_t temp_owner(const char *name)
{
    if (name[0] != '.')
        return 0;
    const char *t = strstr(name, ".tmp.");
    const char *last = NULL;
    while (t) { /* the last ".tmp." wins: fname itself may contain one */
        last = t;
        t = strstr(t + 1, ".tmp.");
    }
    if (!last)
        return 0;
    char *end;
    long pid = strtol(last + 5, &end, 10);
    if (pid <= 0 || pid > INT_MAX || *end != '.' || strlen(end + 1) != 8)
        return 0;
    for (const char *h = end + 1; *h; h++)
        if (!isxdigit((unsigned char)*h))
            return 0;
    return (pid_t)pid;
}

int snap_meta_store_clean_temps(snap_meta_store *st)
{
    int fd = dup(st->dirfd);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    rewinddir(d);
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        pid_t owner = temp_owner(de->d_name);
        if (owner > 0 && owner != getpid() && !snap_proc_alive(owner, 0) &&
            unlinkat(st->dirfd, de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int64_t snap_realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads /proc/<pid>/stat: start time (field 22) and state (field 3). */
static uint64_t proc_stat(pid_t pid, char *state_out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and parentheses: start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    char state = '?';
    unsigned long long start = 0;
    if (sscanf(p + 1,
               " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
               "%*s %*s %llu",
               &state, &start) != 2)
        return 0;
    if (state_out)
        *state_out = state;
    return start;
}

uint64_t snap_proc_start_time(pid_t pid)
{
    return pid > 0 ? proc_stat(pid, NULL) : 0;
}

bool snap_proc_alive(pid_t pid, uint64_t start_time)
{
    if (pid <= 0)
        return false;
    char state = '?';
    uint64_t now = proc_stat(pid, &state);
    if (now == 0) /* no /proc: kill(0) cannot see reuse, so err towards alive */
        return kill(pid, 0) == 0 || errno == EPERM;
    /* A zombie has exited; only its parent has not reaped it yet. */
    if (state == 'Z' || state == 'X')
        return false;
    return start_time == 0 || now == start_time;
}
