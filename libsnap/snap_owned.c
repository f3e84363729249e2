/* Removing only the files an operation made; see snap_owned.h. */
#include "snap_owned.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *snap_owned_dir(const char *path)
{
    char *p = snap_xstrdup(path);
    char *d = snap_xstrdup(dirname(p));
    free(p);
    return d;
}

/* The free slot of v; running out is a programming error (fixed callers). */
static size_t free_slot(char *const *v)
{
    size_t n = 0;
    while (n < SNAP_OWNED_MAX && v[n])
        n++;
    if (n == SNAP_OWNED_MAX)
        abort();
    return n;
}

void snap_owned_add_dir(snap_owned *o, const char *dir)
{
    if (dir)
        o->dirs[free_slot(o->dirs)] = snap_xstrdup(dir);
}

char *snap_owned_escape(const char *s)
{
    char *e = snap_xmalloc(2 * strlen(s) + 1), *o = e;
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return e;
}

void snap_owned_add_pattern(snap_owned *o, char *pattern)
{
    o->names[free_slot(o->names)] = pattern;
}

void snap_owned_dispose(snap_owned *o)
{
    for (size_t i = 0; i < SNAP_OWNED_MAX; i++) {
        free(o->dirs[i]);
        free(o->names[i]);
    }
    memset(o, 0, sizeof *o);
}

/* The canonical form of one of o's directories equal to path's, or NULL. */
static char *allowed_dir(const char *path, const snap_owned *o)
{
    char *d = snap_owned_dir(path);
    char *real = realpath(d, NULL);
    free(d);
    for (size_t i = 0; real && i < SNAP_OWNED_MAX && o->dirs[i]; i++) {
        char *want = realpath(o->dirs[i], NULL);
        bool same = want && !strcmp(want, real);
        free(want);
        if (same)
            return real;
    }
    free(real);
    return NULL;
}

static bool name_allowed(const char *base, const snap_owned *o)
{
    for (size_t i = 0; i < SNAP_OWNED_MAX && o->names[i]; i++)
        if (fnmatch(o->names[i], base, 0) == 0)
            return true;
    return false;
}

/*
 * NULL when path may go (*dirfd open on its directory, *base its name in
 * it; a missing file: *dirfd -1), else the reason.
 */
static char *check(const char *path, const snap_owned *o, int *dirfd, char **base)
{
    *dirfd = -1;
    *base = NULL;
    if (path[0] != '/')
        return snap_xstrdup("not an absolute path");
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT)
        return NULL; /* nothing to remove (its directory may be gone too) */
    char *dir = allowed_dir(path, o);
    if (!dir)
        return snap_xasprintf("not in a directory where xlsnap creates %ss", o->what);
    char *p = snap_xstrdup(path);
    *base = snap_xstrdup(basename(p));
    free(p);
    char *why = NULL;
    if (!name_allowed(*base, o))
        why = snap_xasprintf("not a name xlsnap gives this %s", o->what);
    int fd = why ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (!why && fd < 0)
        why = snap_xasprintf("cannot open %s: %s", dir, strerror(errno));
    else if (!why && fstatat(fd, *base, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        why = errno == ENOENT ? NULL : snap_xasprintf("%s", strerror(errno));
    else if (!why && S_ISLNK(sb.st_mode))
        why = snap_xstrdup("a symlink");
    else if (!why && !S_ISREG(sb.st_mode))
        why = snap_xstrdup("not a regular file");
    else if (!why)
        *dirfd = fd, fd = -1;
    if (fd >= 0)
        close(fd);
    free(dir);
    return why;
}

char *snap_owned_refusal(const char *path, const snap_owned *o)
{
    int dirfd;
    char *base;
    char *why = check(path, o, &dirfd, &base);
    if (dirfd >= 0)
        close(dirfd);
    free(base);
    return why;
}

int snap_owned_remove(xentoollog_logger *lg, const char *path, const snap_owned *o,
                      snap_err *err)
{
    int dirfd, rc = 0;
    char *base;
    char *why = check(path, o, &dirfd, &base);
    if (why)
        snap_log(lg, XTL_WARN, "not removing %s %s named by xlsnap's metadata: %s",
                 o->what, path, why);
    else if (dirfd >= 0 && unlinkat(dirfd, base, 0) != 0 && errno != ENOENT)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "removing %s %s", o->what, path);
    if (dirfd >= 0)
        close(dirfd);
    free(base);
    free(why);
    return rc;
}
