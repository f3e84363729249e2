/* The stored libxl domain configuration (libxl-json userdata); see snap_domcfg.h. */
#include "snap_domcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#include "snap_json.h"

#define USERID_CONFIG "libxl-json"
#define USERID_LOCK   "domain-userdata-lock"

const char *snap_domcfg_statedir(const char *override)
{
    if (override)
        return override;
    const char *env = getenv(SNAP_DOMCFG_STATEDIR_ENV);
    return env && *env ? env : SNAP_DOMCFG_DEFAULT_STATEDIR;
}

char *snap_domcfg_userdata_path(const char *statedir, uint32_t domid, const char *uuid,
                                const char *wh, const char *userid)
{
    /* libxl__userdata_path: XEN_LIB_DIR "/userdata-%s.%u.%s.%s" */
    return snap_xasprintf("%s/userdata-%s.%u.%s.%s", snap_domcfg_statedir(statedir), wh,
                          domid, uuid, userid);
}

/* ------------------------------------------------------------ lock */

struct snap_domcfg_lock {
    char *path;
    int fd;
};

/* flock(LOCK_EX) blocking like libxl, or polled until the deadline. */
static int lock_fd(int fd, const char *path, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    int op = timeout_ms < 0 ? LOCK_EX : LOCK_EX | LOCK_NB;
    unsigned pause_us = 1000;
    while (flock(fd, op) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "flock %s", path);
        if (snap_deadline_poll_ms(deadline) == 0)
            return snap_err_set(err, SNAP_ERROR_BUSY,
                                "%s: still locked by another process after "
                                "%d ms (libxl busy with this domain?)",
                                path, timeout_ms);
        usleep(pause_us);
        if (pause_us < 50000)
            pause_us *= 2;
    }
    return 0;
}

/* True when path still names the inode fd refers to (libxl__lock_file). */
static int lock_is_current(int fd, const char *path, bool *current, snap_err *err)
{
    struct stat fst, st;
    if (fstat(fd, &fst) != 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "fstat %s", path);
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "stat %s", path);
        *current = false;
        return 0;
    }
    *current = st.st_dev == fst.st_dev && st.st_ino == fst.st_ino;
    return 0;
}

int snap_domcfg_lock_acquire(const char *statedir, uint32_t domid, const char *uuid,
                             int timeout_ms, snap_domcfg_lock **out, snap_err *err)
{
    return snap_userdata_lock_acquire(statedir, domid, uuid, USERID_LOCK, timeout_ms, out,
                                      err);
}

int snap_userdata_lock_acquire(const char *statedir, uint32_t domid, const char *uuid,
                               const char *lock_id, int timeout_ms,
                               snap_domcfg_lock **out, snap_err *err)
{
    char *path = snap_domcfg_userdata_path(statedir, domid, uuid, "l", lock_id);
    /*
     * Mirrors libxl__lock_file: open O_RDWR|O_CREAT 0666, flock(LOCK_EX),
     * then check the path still names our inode. A holder unlinks the file
     * before closing it when it unlocks, so a lock won on an unlinked inode
     * protects nothing: close and start again.
     */
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) {
            int rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot open lock file %s",
                                    path);
            free(path);
            return rc;
        }
        bool current = false;
        int rc = lock_fd(fd, path, timeout_ms, err);
        if (!rc)
            rc = lock_is_current(fd, path, &current, err);
        if (rc) {
            close(fd);
            free(path);
            return rc;
        }
        if (current) {
            snap_domcfg_lock *lock = snap_xmalloc(sizeof *lock);
            lock->path = path;
            lock->fd = fd;
            *out = lock;
            return 0;
        }
        close(fd);
    }
}

void snap_domcfg_lock_release(snap_domcfg_lock *lock)
{
    if (!lock)
        return;
    /* libxl__unlock_file: unlink before close, or a waiter that opened the
     * old file could win a lock nobody else can see. */
    unlink(lock->path);
    close(lock->fd);
    free(lock->path);
    free(lock);
}

/* ------------------------------------------------------------ raw file */

static int read_fd_all(int fd, char **data, size_t *len)
{
    size_t n = 0, cap = 8192;
    char *buf = snap_xmalloc(cap);
    for (;;) {
        if (cap - n < 4096)
            buf = snap_xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int snap_domcfg_read(const char *statedir, uint32_t domid, const char *uuid, char **data,
                     size_t *len, snap_err *err)
{
    char *path = snap_domcfg_userdata_path(statedir, domid, uuid, "d", USERID_CONFIG);
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = snap_err_errno(err, errno == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO,
                            errno, "stored domain config %s", path);
        goto out;
    }
    int e = read_fd_all(fd, data, len);
    close(fd);
    if (e) {
        rc = snap_err_errno(err, SNAP_ERROR_IO, e, "reading %s", path);
        goto out;
    }
    if (*len == 0) {
        free(*data);
        *data = NULL;
        rc =
            snap_err_set(err, SNAP_ERROR_INVAL, "stored domain config %s is empty", path);
    }
out:
    free(path);
    return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int snap_domcfg_store(const char *statedir, uint32_t domid, const char *uuid,
                      const char *data, size_t len, snap_err *err)
{
    char *final = snap_domcfg_userdata_path(statedir, domid, uuid, "d", USERID_CONFIG);
    char *tmp = snap_domcfg_userdata_path(statedir, domid, uuid, "n", USERID_CONFIG);
    int rc = 0;
    /* libxl__userdata_store: O_RDWR|O_CREAT|O_TRUNC, 0600, then rename. */
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create %s", tmp);
        goto out;
    }
    int e = write_all(fd, data, len);
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, final) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        rc = snap_err_errno(err, SNAP_ERROR_IO, e, "cannot write/rename %s for %s", tmp,
                            final);
    }
out:
    free(tmp);
    free(final);
    return rc;
}

/* ------------------------------------------------------------ locating */

static const char *const disk_formats[] = {"unknown", "qcow",  "qcow2", "vhd",
                                           "raw",     "empty", "qed"};

bool snap_domcfg_format_valid(const char *format)
{
    for (size_t i = 0; format && i < sizeof disk_formats / sizeof *disk_formats; i++)
        if (strcmp(format, disk_formats[i]) == 0)
            return true;
    return false;
}

void snap_domcfg_disk_dispose(snap_domcfg_disk *d)
{
    if (!d)
        return;
    free(d->vdev);
    free(d->pdev_path);
    free(d->format);
    memset(d, 0, sizeof *d);
}

/* Byte range [start, end) of a member's value in the text. */
typedef struct span {
    size_t start, end;
    bool present;
} span;

typedef struct disk_loc {
    snap_domcfg_disk val; /* vdev, pdev_path, format as parsed */
    span pdev_path, format;
} disk_loc;

/*
 * Walks the text with yajl's event parser, which reports how many bytes it
 * has consumed at each event: that gives the exact position of every value
 * under "disks"[i], so a value can be replaced without touching a byte
 * around it.
 */
typedef struct locator {
    yajl_handle h;
    const char *text;
    int depth;          /* open containers */
    bool key_is_disks;  /* last key at depth 1 was "disks" */
    bool in_disks;      /* inside the top-level "disks" array */
    const char *member; /* disk member a scalar would belong to */
    size_t key_end;     /* offset just past that member's key */
    disk_loc *disks;
    size_t n;
} locator;

static void loc_scalar(locator *l, const char *s, size_t len, bool is_null)
{
    if (!l->in_disks || l->depth != 3 || !l->member || l->n == 0)
        return;
    disk_loc *d = &l->disks[l->n - 1];
    size_t end = yajl_get_bytes_consumed(l->h);
    size_t start = l->key_end;
    while (start < end && strchr(" \t\r\n:", l->text[start]))
        start++;
    char *copy = is_null ? NULL : strndup(s, len);
    span *sp = NULL;
    if (strcmp(l->member, "vdev") == 0) {
        free(d->val.vdev);
        d->val.vdev = copy;
    } else if (strcmp(l->member, "pdev_path") == 0) {
        free(d->val.pdev_path);
        d->val.pdev_path = copy;
        sp = &d->pdev_path;
    } else if (strcmp(l->member, "format") == 0) {
        free(d->val.format);
        d->val.format = copy;
        sp = &d->format;
    } else {
        free(copy);
    }
    if (sp)
        *sp = (span){start, end, true};
    l->member = NULL;
}

static int loc_null(void *ctx)
{
    loc_scalar(ctx, NULL, 0, true);
    return 1;
}

static int loc_bool(void *ctx, int b)
{
    (void)b;
    loc_scalar(ctx, NULL, 0, true);
    return 1;
}

static int loc_number(void *ctx, const char *s, size_t len)
{
    loc_scalar(ctx, s, len, false);
    return 1;
}

static int loc_string(void *ctx, const unsigned char *s, size_t len)
{
    loc_scalar(ctx, (const char *)s, len, false);
    return 1;
}

static int loc_key(void *ctx, const unsigned char *key, size_t len)
{
    locator *l = ctx;
    if (l->depth == 1)
        l->key_is_disks = len == 5 && memcmp(key, "disks", 5) == 0;
    if (l->in_disks && l->depth == 3) {
        static const char *const wanted[] = {"vdev", "pdev_path", "format"};
        l->member = NULL;
        for (size_t i = 0; i < 3; i++)
            if (strlen(wanted[i]) == len && memcmp(key, wanted[i], len) == 0)
                l->member = wanted[i];
        l->key_end = yajl_get_bytes_consumed(l->h);
    }
    return 1;
}

static int loc_start_map(void *ctx)
{
    locator *l = ctx;
    l->depth++;
    if (l->in_disks && l->depth == 3) {
        l->disks = snap_xrealloc(l->disks, (l->n + 1) * sizeof *l->disks);
        memset(&l->disks[l->n++], 0, sizeof *l->disks);
    }
    l->member = NULL;
    return 1;
}

static int loc_start_array(void *ctx)
{
    locator *l = ctx;
    l->depth++;
    if (l->depth == 2 && l->key_is_disks)
        l->in_disks = true;
    l->member = NULL;
    return 1;
}

static int loc_end(void *ctx)
{
    locator *l = ctx;
    if (l->depth == 2)
        l->in_disks = false;
    l->depth--;
    l->member = NULL;
    return 1;
}

static void locs_free(disk_loc *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snap_domcfg_disk_dispose(&d[i].val);
    free(d);
}

/* Locates every disk of a libxl-json text of len bytes (no NUL needed). */
static int locate_disks(const char *text, size_t len, disk_loc **out, size_t *n,
                        snap_err *err)
{
    static const yajl_callbacks cb = {
        .yajl_null = loc_null,
        .yajl_boolean = loc_bool,
        .yajl_number = loc_number,
        .yajl_string = loc_string,
        .yajl_start_map = loc_start_map,
        .yajl_map_key = loc_key,
        .yajl_end_map = loc_end,
        .yajl_start_array = loc_start_array,
        .yajl_end_array = loc_end,
    };
    locator l = {.text = text};
    l.h = yajl_alloc(&cb, NULL, &l);
    if (!l.h)
        abort();
    yajl_status st = yajl_parse(l.h, (const unsigned char *)text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(l.h);
    if (st != yajl_status_ok) {
        unsigned char *msg = yajl_get_error(l.h, 0, NULL, 0);
        snap_err_set(err, SNAP_ERROR_PROTOCOL, "invalid libxl-json: %s", msg);
        yajl_free_error(l.h, msg);
        yajl_free(l.h);
        locs_free(l.disks, l.n);
        return SNAP_ERROR_PROTOCOL;
    }
    yajl_free(l.h);
    *out = l.disks;
    *n = l.n;
    return 0;
}

/* The JSON text is what precedes libxl's trailing NUL. */
static size_t json_len(const char *data, size_t len)
{
    const char *nul = memchr(data, '\0', len);
    return nul ? (size_t)(nul - data) : len;
}

static disk_loc *find_loc(disk_loc *d, size_t n, const char *vdev)
{
    for (size_t i = 0; i < n; i++)
        if (d[i].val.vdev && strcmp(d[i].val.vdev, vdev) == 0)
            return &d[i];
    return NULL;
}

static void disk_copy(snap_domcfg_disk *dst, const snap_domcfg_disk *src)
{
    dst->vdev = src->vdev ? snap_xstrdup(src->vdev) : NULL;
    dst->pdev_path = src->pdev_path ? snap_xstrdup(src->pdev_path) : NULL;
    dst->format = src->format ? snap_xstrdup(src->format) : NULL;
}

int snap_domcfg_find_disk(const char *json, const char *vdev, snap_domcfg_disk *out,
                          snap_err *err)
{
    disk_loc *locs;
    size_t n;
    int rc = locate_disks(json, strlen(json), &locs, &n, err);
    if (rc)
        return rc;
    disk_loc *d = find_loc(locs, n, vdev);
    if (d)
        disk_copy(out, &d->val);
    else
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                          "no disk with vdev %s in the stored config", vdev);
    locs_free(locs, n);
    return rc;
}

/* ------------------------------------------------------------ editing */

/* A JSON string literal for s, made by yajl (same escaping as libxl's). */
static char *json_string_literal(const char *s)
{
    yajl_gen g = snap_json_gen_new(false);
    snap_json_str(g, s);
    return snap_json_gen_finish(g, NULL);
}

typedef struct replacement {
    span at;
    char *text;
} replacement;

static int cmp_replacement(const void *a, const void *b)
{
    const replacement *x = a, *y = b;
    return x->at.start < y->at.start ? -1 : x->at.start > y->at.start;
}

/* Splices the replacements (non-overlapping) into data. */
static char *splice_text(const char *data, size_t len, replacement *r, size_t nr,
                         size_t *out_len)
{
    qsort(r, nr, sizeof *r, cmp_replacement);
    size_t cap = len + 1;
    for (size_t i = 0; i < nr; i++)
        cap += strlen(r[i].text);
    char *out = snap_xmalloc(cap);
    size_t o = 0, pos = 0;
    for (size_t i = 0; i < nr; i++) {
        memcpy(out + o, data + pos, r[i].at.start - pos);
        o += r[i].at.start - pos;
        size_t tl = strlen(r[i].text);
        memcpy(out + o, r[i].text, tl);
        o += tl;
        pos = r[i].at.end;
    }
    memcpy(out + o, data + pos, len - pos);
    o += len - pos;
    out[o] = '\0';
    *out_len = o;
    return out;
}

static char *edit_in_place(const char *data, size_t len, disk_loc *locs, size_t nlocs,
                           const snap_domcfg_disk_change *ch, size_t n, size_t *out_len)
{
    replacement *r = snap_xcalloc(2 * n + 1, sizeof *r);
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        disk_loc *d = find_loc(locs, nlocs, ch[i].vdev);
        if (ch[i].pdev_path)
            r[nr++] = (replacement){d->pdev_path, json_string_literal(ch[i].pdev_path)};
        if (ch[i].format)
            r[nr++] = (replacement){d->format, json_string_literal(ch[i].format)};
    }
    char *out = splice_text(data, len, r, nr, out_len);
    for (size_t i = 0; i < nr; i++)
        free(r[i].text);
    free(r);
    return out;
}

/* --- regeneration, for a disk lacking a key we must set */

typedef struct regen {
    yajl_gen g;
    const snap_domcfg_disk_change *ch;
    size_t n;
} regen;

static void emit(regen *rg, yajl_val v, int depth, bool in_disks);

static const snap_domcfg_disk_change *change_for(const regen *rg, yajl_val disk)
{
    const char *vdev = snap_json_get_string(disk, "vdev");
    for (size_t i = 0; vdev && i < rg->n; i++)
        if (strcmp(rg->ch[i].vdev, vdev) == 0)
            return &rg->ch[i];
    return NULL;
}

/* A disk object with the change applied: keys kept in order, new ones last. */
static void emit_disk(regen *rg, yajl_val disk, const snap_domcfg_disk_change *c)
{
    bool had_path = false, had_format = false;
    yajl_gen_map_open(rg->g);
    for (size_t i = 0; i < disk->u.object.len; i++) {
        const char *k = disk->u.object.keys[i];
        snap_json_key(rg->g, k);
        if (strcmp(k, "pdev_path") == 0 && c->pdev_path) {
            snap_json_str(rg->g, c->pdev_path);
            had_path = true;
        } else if (strcmp(k, "format") == 0 && c->format) {
            snap_json_str(rg->g, c->format);
            had_format = true;
        } else {
            emit(rg, disk->u.object.values[i], 4, false);
        }
    }
    if (c->pdev_path && !had_path)
        snap_json_kv_str(rg->g, "pdev_path", c->pdev_path);
    if (c->format && !had_format)
        snap_json_kv_str(rg->g, "format", c->format);
    yajl_gen_map_close(rg->g);
}

static void emit(regen *rg, yajl_val v, int depth, bool in_disks)
{
    if (YAJL_IS_OBJECT(v)) {
        const snap_domcfg_disk_change *c = in_disks ? change_for(rg, v) : NULL;
        if (c) {
            emit_disk(rg, v, c);
            return;
        }
        yajl_gen_map_open(rg->g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            snap_json_key(rg->g, v->u.object.keys[i]);
            bool disks = depth == 1 && strcmp(v->u.object.keys[i], "disks") == 0;
            emit(rg, v->u.object.values[i], depth + 1, disks);
        }
        yajl_gen_map_close(rg->g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(rg->g);
        for (size_t i = 0; i < v->u.array.len; i++)
            emit(rg, v->u.array.values[i], depth + 1, in_disks);
        yajl_gen_array_close(rg->g);
    } else {
        snap_json_tree(rg->g, v); /* scalars; numbers keep their text */
    }
}

static char *regenerate(const char *data, size_t jlen, size_t len,
                        const snap_domcfg_disk_change *ch, size_t n, size_t *out_len,
                        snap_err *err)
{
    char *text = strndup(data, jlen);
    yajl_val root = snap_json_parse(text, "stored domain config", err);
    free(text);
    if (!root)
        return NULL;
    /* libxl writes with yajl_gen_beautify and yajl's default indent. */
    regen rg = {snap_json_gen_new(true), ch, n};
    emit(&rg, root, 1, false);
    yajl_tree_free(root);
    size_t glen;
    char *gen = snap_json_gen_finish(rg.g, &glen);
    /* Keep what followed the JSON text (libxl's trailing NUL). */
    char *out = snap_xmalloc(glen + (len - jlen) + 1);
    memcpy(out, gen, glen);
    memcpy(out + glen, data + jlen, len - jlen);
    out[glen + len - jlen] = '\0';
    *out_len = glen + len - jlen;
    free(gen);
    return out;
}

/* Checks the changes make sense for these disks. */
static int check_changes(disk_loc *locs, size_t nlocs, const snap_domcfg_disk_change *ch,
                         size_t n, bool *need_regen, snap_err *err)
{
    *need_regen = false;
    for (size_t i = 0; i < n; i++) {
        if (!ch[i].vdev)
            return snap_err_set(err, SNAP_ERROR_INVAL, "disk change without vdev");
        if (ch[i].format && !snap_domcfg_format_valid(ch[i].format))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "disk %s: \"%s\" is not a libxl disk format", ch[i].vdev,
                                ch[i].format);
        disk_loc *d = find_loc(locs, nlocs, ch[i].vdev);
        if (!d)
            return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                                "no disk with vdev %s in the stored config", ch[i].vdev);
        if (find_loc(d + 1, nlocs - (size_t)(d - locs) - 1, ch[i].vdev))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "stored config has two disks with vdev %s", ch[i].vdev);
        for (size_t j = 0; j < i; j++)
            if (strcmp(ch[j].vdev, ch[i].vdev) == 0)
                return snap_err_set(err, SNAP_ERROR_INVAL, "disk %s changed twice",
                                    ch[i].vdev);
        if ((ch[i].pdev_path && !d->pdev_path.present) ||
            (ch[i].format && !d->format.present))
            *need_regen = true;
    }
    return 0;
}

/* Re-reads the result: every change must be there, or we write nothing. */
static int verify_changes(const char *data, size_t len, const snap_domcfg_disk_change *ch,
                          size_t n, snap_err *err)
{
    disk_loc *locs;
    size_t nlocs;
    int rc = locate_disks(data, json_len(data, len), &locs, &nlocs, err);
    if (rc)
        return snap_err_context(err, "edited config");
    for (size_t i = 0; i < n && !rc; i++) {
        disk_loc *d = find_loc(locs, nlocs, ch[i].vdev);
        if (!d ||
            (ch[i].pdev_path &&
             (!d->val.pdev_path || strcmp(d->val.pdev_path, ch[i].pdev_path))) ||
            (ch[i].format && (!d->val.format || strcmp(d->val.format, ch[i].format))))
            rc = snap_err_set(err, SNAP_ERROR_FAIL,
                              "edited config does not hold the new values of "
                              "disk %s (internal error)",
                              ch[i].vdev);
    }
    locs_free(locs, nlocs);
    return rc;
}

int snap_domcfg_edit_disks(const char *data, size_t len,
                           const snap_domcfg_disk_change *changes, size_t n, char **out,
                           size_t *out_len, snap_err *err)
{
    size_t jlen = json_len(data, len), nlocs;
    disk_loc *locs;
    bool need_regen;
    int rc = locate_disks(data, jlen, &locs, &nlocs, err);
    if (rc)
        return rc;
    rc = check_changes(locs, nlocs, changes, n, &need_regen, err);
    char *res = NULL;
    size_t res_len = 0;
    if (!rc && need_regen)
        res = regenerate(data, jlen, len, changes, n, &res_len, err);
    else if (!rc)
        res = edit_in_place(data, len, locs, nlocs, changes, n, &res_len);
    locs_free(locs, nlocs);
    if (!rc && !res)
        rc = err->code;
    if (!rc)
        rc = verify_changes(res, res_len, changes, n, err);
    if (rc) {
        free(res);
        return rc;
    }
    *out = res;
    *out_len = res_len;
    return 0;
}

/* ------------------------------------------------------------ update */

/* Read, edit, store; the caller holds the lock. */
static int update_locked(const char *statedir, uint32_t domid, const char *uuid,
                         const snap_domcfg_disk_change *ch, size_t n, snap_err *err)
{
    char *data = NULL, *edited = NULL;
    size_t len = 0, elen = 0;
    int rc = snap_domcfg_read(statedir, domid, uuid, &data, &len, err);
    if (!rc)
        rc = snap_domcfg_edit_disks(data, len, ch, n, &edited, &elen, err);
    if (!rc)
        rc = snap_domcfg_store(statedir, domid, uuid, edited, elen, err);
    free(data);
    free(edited);
    return rc;
}

int snap_domcfg_set_disks(const char *statedir, uint32_t domid, const char *uuid,
                          const snap_domcfg_disk_change *changes, size_t n,
                          int lock_timeout_ms, snap_err *err)
{
    const char *dir = snap_domcfg_statedir(statedir);
    snap_domcfg_lock *lock = NULL;
    int rc = snap_domcfg_lock_acquire(dir, domid, uuid, lock_timeout_ms, &lock, err);
    if (!rc)
        rc = update_locked(dir, domid, uuid, changes, n, err);
    snap_domcfg_lock_release(lock);
    return rc ? snap_err_context(err, "domain %u: updating stored config", domid) : 0;
}
