/* xenstore helpers on libxenstore; see snap_xs.h. */
#include "snap_xs.h"
#include "snap_trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRY_CAP_MS 200

struct snap_xs {
    struct xs_handle *h;
    int max_attempts;
    int backoff_ms;
    unsigned rand_state;
};

int snap_xs_open(snap_xs **out, snap_err *err)
{
    snap_trace("xs-open");
    struct xs_handle *h = xs_open(0);
    if (!h) {
        const char *sock = getenv("XENSTORED_PATH");
        return snap_err_errno(err, SNAP_ERROR_IO, errno,
                              "cannot connect to xenstored (%s)",
                              sock ? sock : "default socket");
    }
    snap_xs *xs = snap_xcalloc(1, sizeof *xs);
    xs->h = h;
    xs->max_attempts = 10;
    xs->backoff_ms = 2;
    xs->rand_state = (unsigned)getpid() ^ (unsigned)snap_now_ms();
    snap_trace("xs-opened");
    *out = xs;
    return 0;
}

void snap_xs_close(snap_xs *xs)
{
    if (!xs)
        return;
    xs_close(xs->h);
    free(xs);
}

struct xs_handle *snap_xs_handle(snap_xs *xs)
{
    return xs->h;
}

void snap_xs_set_retry(snap_xs *xs, int max_attempts, int backoff_ms)
{
    xs->max_attempts = max_attempts > 0 ? max_attempts : 1;
    xs->backoff_ms = backoff_ms >= 0 ? backoff_ms : 0;
}

/* ------------------------------------------------------------ transactions */

/*
 * Sleeps between attempts: exponential, capped, and jittered so that two
 * tools that collided do not collide again in lockstep.
 */
static void backoff(snap_xs *xs, int attempt)
{
    long ms = xs->backoff_ms;
    for (int i = 0; i < attempt && ms < RETRY_CAP_MS; i++)
        ms *= 2;
    if (ms > RETRY_CAP_MS)
        ms = RETRY_CAP_MS;
    if (ms <= 0)
        return;
    long us = ms * 1000;
    us = us / 2 + (long)(rand_r(&xs->rand_state) % (unsigned)(us / 2 + 1));
    usleep((useconds_t)us);
}

int snap_xs_transaction(snap_xs *xs, const char *what, snap_xs_txn_fn *fn, void *opaque,
                        snap_err *err)
{
    for (int attempt = 0; attempt < xs->max_attempts; attempt++) {
        if (attempt)
            backoff(xs, attempt - 1);
        snap_trace("xs-txn");
        xs_transaction_t t = xs_transaction_start(xs->h);
        if (t == XBT_NULL)
            return snap_err_errno(err, SNAP_ERROR_IO, errno,
                                  "xenstore transaction %s: cannot start", what);
        int rc = fn(xs, t, opaque, err);
        if (rc != 0) {
            xs_transaction_end(xs->h, t, true);
            if (rc == SNAP_XS_RETRY)
                continue;
            return snap_err_context(err, "xenstore transaction %s", what);
        }
        if (xs_transaction_end(xs->h, t, false)) {
            snap_trace("xs-txn-done");
            return 0;
        }
        if (errno != EAGAIN)
            return snap_err_errno(err, SNAP_ERROR_IO, errno,
                                  "xenstore transaction %s: commit failed", what);
    }
    return snap_err_set(err, SNAP_ERROR_BUSY,
                        "xenstore transaction %s: gave up after %d attempts: "
                        "EAGAIN, concurrent updates kept conflicting",
                        what, xs->max_attempts);
}

/* Maps a failed xs_* call: EAGAIN inside a transaction means "try again". */
static int xs_failure(xs_transaction_t t, int e, snap_err *err, const char *op,
                      const char *path)
{
    if (e == EAGAIN && t != XBT_NULL)
        return SNAP_XS_RETRY;
    int code = e == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO;
    return snap_err_errno(err, code, e, "xenstore %s %s", op, path);
}

int snap_xs_read(snap_xs *xs, xs_transaction_t t, const char *path, char **out,
                 snap_err *err)
{
    unsigned len;
    char *v = xs_read(xs->h, t, path, &len);
    if (!v)
        return xs_failure(t, errno, err, "read", path);
    *out = v;
    return 0;
}

int snap_xs_read_opt(snap_xs *xs, xs_transaction_t t, const char *path, char **out,
                     snap_err *err)
{
    unsigned len;
    *out = xs_read(xs->h, t, path, &len);
    if (!*out && errno != ENOENT)
        return xs_failure(t, errno, err, "read", path);
    return 0;
}

int snap_xs_write(snap_xs *xs, xs_transaction_t t, const char *path, const char *value,
                  snap_err *err)
{
    if (!xs_write(xs->h, t, path, value, (unsigned)strlen(value)))
        return xs_failure(t, errno, err, "write", path);
    return 0;
}

int snap_xs_directory(snap_xs *xs, xs_transaction_t t, const char *path, char ***names,
                      unsigned *n, snap_err *err)
{
    *names = xs_directory(xs->h, t, path, n);
    if (!*names)
        return xs_failure(t, errno, err, "directory", path);
    return 0;
}

/* ------------------------------------------------------------ domains */

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    if (!s || !*s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int snap_xs_list_domains(snap_xs *xs, uint32_t **ids, size_t *n, snap_err *err)
{
    char **names;
    unsigned count;
    int rc = snap_xs_directory(xs, XBT_NULL, "/local/domain", &names, &count, err);
    if (rc)
        return rc;
    *ids = snap_xcalloc(count ? count : 1, sizeof **ids);
    *n = 0;
    for (unsigned i = 0; i < count; i++)
        if (parse_u32(names[i], &(*ids)[*n]))
            (*n)++;
    free(names);
    qsort(*ids, *n, sizeof **ids, cmp_u32);
    return 0;
}

int snap_xs_domain_name(snap_xs *xs, uint32_t domid, char **name, snap_err *err)
{
    char path[64];
    snprintf(path, sizeof path, "/local/domain/%u/name", domid);
    int rc = snap_xs_read(xs, XBT_NULL, path, name, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        snap_err_set(err, rc, "no domain %u (no %s)", domid, path);
    return rc;
}

int snap_xs_domid_by_name(snap_xs *xs, const char *name, uint32_t *domid, snap_err *err)
{
    uint32_t *ids;
    size_t n;
    int rc = snap_xs_list_domains(xs, &ids, &n, err);
    if (rc)
        return rc;
    rc = SNAP_ERROR_NOTFOUND;
    for (size_t i = 0; i < n && rc; i++) {
        char *got = NULL;
        snap_err ignored = {0};
        /* A domain may vanish while we look: skip it. */
        if (snap_xs_domain_name(xs, ids[i], &got, &ignored) == 0 &&
            strcmp(got, name) == 0) {
            *domid = ids[i];
            rc = 0;
        }
        free(got);
    }
    free(ids);
    if (rc)
        snap_err_set(err, rc, "%s is not the name of a domain in xenstore", name);
    return rc;
}

static bool uuid_shaped(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

int snap_xs_domain_uuid(snap_xs *xs, uint32_t domid, char **uuid, snap_err *err)
{
    char path[64];
    char *vm = NULL;
    snprintf(path, sizeof path, "/local/domain/%u/vm", domid);
    int rc = snap_xs_read(xs, XBT_NULL, path, &vm, err);
    if (rc)
        return rc;
    /* libxl__domain_make writes vm = "/vm/<uuid>". */
    const char *slash = strrchr(vm, '/');
    const char *u = slash ? slash + 1 : vm;
    if (strncmp(vm, "/vm/", 4) != 0 || !uuid_shaped(u)) {
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL, "%s is \"%s\", not /vm/<uuid>", path,
                          vm);
    } else {
        *uuid = snap_xstrdup(u);
    }
    free(vm);
    return rc;
}

/* ------------------------------------------------------------ disks */

static void disk_dispose(snap_xs_disk *d)
{
    free(d->vdev);
    free(d->backend_type);
    free(d->backend_kind);
    free(d->params);
    free(d->physical_device);
    free(d->format);
    free(d->path);
    free(d->libxl_path);
    free(d->backend_path);
    free(d->frontend_path);
    memset(d, 0, sizeof *d);
}

void snap_xs_disks_free(snap_xs_disk *disks, size_t n)
{
    for (size_t i = 0; disks && i < n; i++)
        disk_dispose(&disks[i]);
    free(disks);
}

/* Reads <dir>/<key>; a missing required key is an error naming the path. */
static int read_key(snap_xs *xs, xs_transaction_t t, const char *dir, const char *key,
                    bool required, char **out, snap_err *err)
{
    char *path = snap_xasprintf("%s/%s", dir, key);
    int rc = snap_xs_read_opt(xs, t, path, out, err);
    if (!rc && !*out && required)
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL, "missing xenstore node %s", path);
    free(path);
    return rc;
}

/* "qcow2:/p" -> format qcow2, path /p; "aio:" means raw (libxl's spelling). */
static void split_params(snap_xs_disk *d)
{
    const char *p = d->params ? d->params : "";
    const char *colon = strchr(p, ':');
    if (strcmp(d->backend_type, "qdisk") != 0) {
        d->format = snap_xstrdup("raw");
        d->path = snap_xstrdup(p);
    } else if (!*p) {
        d->format = snap_xstrdup("empty");
        d->path = snap_xstrdup("");
    } else if (!colon) {
        d->format = snap_xstrdup("unknown");
        d->path = snap_xstrdup(p);
    } else {
        char *fmt = strndup(p, (size_t)(colon - p));
        static const char *const known[] = {"qcow", "qcow2", "vhd", "qed", "raw"};
        const char *name = strcmp(fmt, "aio") == 0 ? "raw" : "unknown";
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (strcmp(fmt, known[i]) == 0)
                name = known[i];
        d->format = snap_xstrdup(name);
        d->path = snap_xstrdup(colon + 1);
        free(fmt);
    }
}

/* The libxl copy's keys (libxl__disk_from_xenstore) and the backend's params. */
static int read_libxl_copy(snap_xs *xs, xs_transaction_t t, snap_xs_disk *d,
                           snap_err *err)
{
    char *mode = NULL, *devtype = NULL, *removable = NULL;
    const char *dir = d->libxl_path;
    int rc = read_key(xs, t, dir, "backend", true, &d->backend_path, err);
    if (!rc)
        rc = read_key(xs, t, dir, "frontend", false, &d->frontend_path, err);
    if (!rc)
        rc = read_key(xs, t, dir, "params", false, &d->params, err);
    if (!rc)
        rc = read_key(xs, t, dir, "type", true, &d->backend_type, err);
    if (!rc)
        rc = read_key(xs, t, dir, "dev", true, &d->vdev, err);
    if (!rc)
        rc = read_key(xs, t, dir, "mode", true, &mode, err);
    if (!rc)
        rc = read_key(xs, t, dir, "device-type", true, &devtype, err);
    if (!rc)
        rc = read_key(xs, t, dir, "removable", false, &removable, err);
    if (!rc) {
        d->readwrite = strcmp(mode, "w") == 0;
        d->is_cdrom = strcmp(devtype, "cdrom") == 0;
        d->removable = removable && atoi(removable) != 0;
    }
    free(mode);
    free(devtype);
    free(removable);
    return rc;
}

static int read_disk(snap_xs *xs, xs_transaction_t t, uint32_t domid, const char *devid_s,
                     snap_xs_disk *d, snap_err *err)
{
    uint32_t devid, fe_dom, be_devid;
    char kind[16];
    if (!parse_u32(devid_s, &devid))
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "domain %u: bad vbd device id \"%s\"", domid, devid_s);
    d->devid = (int)devid;
    d->libxl_path = snap_xasprintf("/libxl/%u/device/vbd/%u", domid, devid);
    int rc = read_libxl_copy(xs, t, d, err);
    if (rc)
        return rc;
    if (sscanf(d->backend_path, "/local/domain/%u/backend/%15[a-z]/%u/%u",
               &d->backend_domid, kind, &fe_dom, &be_devid) != 4)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "%s/backend: unexpected backend path \"%s\"", d->libxl_path,
                            d->backend_path);
    d->backend_kind = snap_xstrdup(kind);
    split_params(d);
    char *be_params = NULL;
    rc = read_key(xs, t, d->backend_path, "params", false, &be_params, err);
    if (!rc)
        d->backend_agrees = (!be_params && !d->params) ||
                            (be_params && d->params && !strcmp(be_params, d->params));
    free(be_params);
    if (!rc && !strcmp(d->backend_kind, "vbd"))
        rc = read_key(xs, t, d->backend_path, "physical-device", false,
                      &d->physical_device, err);
    return rc;
}

typedef struct disks_read {
    uint32_t domid;
    snap_xs_disk *disks;
    size_t n;
} disks_read;

static int cmp_disk(const void *a, const void *b)
{
    const snap_xs_disk *x = a, *y = b;
    return x->devid < y->devid ? -1 : x->devid > y->devid;
}

static int read_disks_txn(snap_xs *xs, xs_transaction_t t, void *opaque, snap_err *err)
{
    disks_read *r = opaque;
    snap_xs_disks_free(r->disks, r->n); /* a previous attempt's */
    r->disks = NULL;
    r->n = 0;
    char *dir = snap_xasprintf("/libxl/%u/device/vbd", r->domid);
    char **names = NULL;
    unsigned count = 0;
    int rc = snap_xs_directory(xs, t, dir, &names, &count, err);
    if (rc == SNAP_ERROR_NOTFOUND)
        rc = 0; /* a domain without disks */
    r->disks = snap_xcalloc(count ? count : 1, sizeof *r->disks);
    for (unsigned i = 0; !rc && i < count; i++) {
        rc = read_disk(xs, t, r->domid, names[i], &r->disks[i], err);
        r->n = i + 1;
    }
    free(names);
    free(dir);
    return rc;
}

int snap_xs_domain_disks(snap_xs *xs, uint32_t domid, snap_xs_disk **disks, size_t *n,
                         snap_err *err)
{
    disks_read r = {.domid = domid};
    char what[64];
    snprintf(what, sizeof what, "reading disks of domain %u", domid);
    int rc = snap_xs_transaction(xs, what, read_disks_txn, &r, err);
    if (rc) {
        snap_xs_disks_free(r.disks, r.n);
        return rc;
    }
    qsort(r.disks, r.n, sizeof *r.disks, cmp_disk);
    *disks = r.disks;
    *n = r.n;
    return 0;
}

/* ------------------------------------------------------------ updating */

/* libxl__device_disk_string_of_format, from libxl_disk_format_to_string names. */
static const char *qdisk_format_string(const char *format)
{
    static const char *const map[][2] = {
        {"qcow", "qcow"}, {"qcow2", "qcow2"}, {"vhd", "vhd"},
        {"raw", "aio"},   {"empty", "aio"},   {"qed", "qed"},
    };
    for (size_t i = 0; format && i < sizeof map / sizeof *map; i++)
        if (strcmp(format, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

char *snap_xs_params_for(const char *backend_type, const char *format, const char *path,
                         snap_err *err)
{
    if (backend_type && strcmp(backend_type, "qdisk") == 0) {
        const char *f = qdisk_format_string(format);
        if (!f) {
            snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "qdisk cannot serve format \"%s\"",
                         format ? format : "");
            return NULL;
        }
        return snap_xasprintf("%s:%s", f, path);
    }
    if (backend_type && strcmp(backend_type, "phy") == 0) {
        if (!format || strcmp(format, "raw") != 0) {
            snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                         "a phy backend serves raw only, not %s", format);
            return NULL;
        }
        return snap_xstrdup(path);
    }
    snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "cannot set params of a %s backend",
                 backend_type ? backend_type : "(unknown)");
    return NULL;
}

/* One disk being switched: where its entries are, read in each attempt. */
typedef struct disk_update {
    const char *vdev;
    char *libxl_path;   /* found once, before the transaction */
    char *backend_path; /* the rest per attempt */
    char *type;         /* unchanged, rewritten as libxl does */
} disk_update;

static void disk_update_dispose(disk_update *u)
{
    free(u->libxl_path);
    free(u->backend_path);
    free(u->type);
}

typedef struct set_params {
    const snap_xs_params_change *changes; /* the new values, n of them */
    disk_update *u;                       /* n of them */
    size_t n;
} set_params;

/* libxl__xs_writev of {type, params} under dir; NULL params removes it. */
static int write_type_params(snap_xs *xs, xs_transaction_t t, const char *dir,
                             const char *type, const char *params, snap_err *err)
{
    char *tp = snap_xasprintf("%s/type", dir), *pp = snap_xasprintf("%s/params", dir);
    int rc = snap_xs_write(xs, t, tp, type, err);
    if (!rc && params)
        rc = snap_xs_write(xs, t, pp, params, err);
    else if (!rc && !xs_rm(snap_xs_handle(xs), t, pp) && errno != ENOENT)
        rc = xs_failure(t, errno, err, "rm", pp);
    free(tp);
    free(pp);
    return rc;
}

/*
 * Writes go only to this disk's own backend directory: the path libxl
 * recorded must be /local/domain/<backend-domid>/backend/<kind>/<domid>/<devid>
 * for the same domid and devid as the /libxl/<domid>/device/vbd/<devid> entry.
 */
static int check_backend_path(const char *libxl_path, const char *backend, snap_err *err)
{
    unsigned domid, devid, bdom, bdomid, bdevid;
    char kind[64];
    int n = -1;
    if (sscanf(libxl_path, "/libxl/%u/device/vbd/%u", &domid, &devid) == 2 &&
        sscanf(backend, "/local/domain/%u/backend/%63[a-z0-9_]/%u/%u%n", &bdom, kind,
               &bdomid, &bdevid, &n) == 4 &&
        n == (int)strlen(backend) && bdomid == domid && bdevid == devid)
        return 0;
    return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                        "%s/backend is '%s', not this disk's backend directory: refusing "
                        "to write there",
                        libxl_path, backend);
}

/* Reads what the update needs into u. */
static int read_for_update(snap_xs *xs, xs_transaction_t t, disk_update *u, snap_err *err)
{
    char *frontend = NULL, *dev = NULL;
    free(u->backend_path);
    free(u->type);
    u->backend_path = u->type = NULL;
    /* libxl's sanity check: the device must still exist. */
    int rc = read_key(xs, t, u->libxl_path, "frontend", false, &frontend, err);
    if (!rc && !frontend)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                          "%s/frontend does not exist (disk %s being removed?)",
                          u->libxl_path, u->vdev);
    free(frontend);
    if (!rc)
        rc = read_key(xs, t, u->libxl_path, "dev", true, &dev, err);
    if (!rc && strcmp(dev, u->vdev) != 0)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "%s is now %s, not %s", u->libxl_path,
                          dev, u->vdev);
    free(dev);
    if (!rc)
        rc = read_key(xs, t, u->libxl_path, "backend", true, &u->backend_path, err);
    if (!rc)
        rc = check_backend_path(u->libxl_path, u->backend_path, err);
    if (!rc)
        rc = read_key(xs, t, u->libxl_path, "type", true, &u->type, err);
    return rc;
}

static int set_one(snap_xs *xs, xs_transaction_t t, const snap_xs_params_change *c,
                   disk_update *u, snap_err *err)
{
    int rc = read_for_update(xs, t, u, err);
    if (rc)
        return rc;
    char *params = snap_xs_params_for(u->type, c->format, c->path, err);
    if (!params)
        return err->code;
    /* Backend first, then libxl's copy: the order cdrom_insert_inserted uses. */
    rc = write_type_params(xs, t, u->backend_path, u->type, params, err);
    if (!rc)
        rc = write_type_params(xs, t, u->libxl_path, u->type, params, err);
    free(params);
    return rc;
}

static int set_params_txn(snap_xs *xs, xs_transaction_t t, void *opaque, snap_err *err)
{
    set_params *s = opaque;
    int rc = 0;
    for (size_t i = 0; i < s->n && !rc; i++)
        rc = set_one(xs, t, &s->changes[i], &s->u[i], err);
    return rc;
}

/* libxl's copy of each disk whose "dev" is vdev (one read of the disk list). */
static int find_libxl_paths(snap_xs *xs, uint32_t domid, const snap_xs_params_change *c,
                            disk_update *u, size_t n, snap_err *err)
{
    snap_xs_disk *disks = NULL;
    size_t nd = 0;
    int rc = snap_xs_domain_disks(xs, domid, &disks, &nd, err);
    for (size_t k = 0; k < n && !rc; k++) {
        for (size_t i = 0; i < nd && !u[k].libxl_path; i++)
            if (strcmp(disks[i].vdev, c[k].vdev) == 0)
                u[k].libxl_path = snap_xstrdup(disks[i].libxl_path);
        if (!u[k].libxl_path)
            rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                              "domain %u has no disk %s in xenstore", domid, c[k].vdev);
    }
    snap_xs_disks_free(disks, nd);
    return rc;
}

int snap_xs_disks_set_params(snap_xs *xs, uint32_t domid,
                             const snap_xs_params_change *changes, size_t n,
                             snap_err *err)
{
    disk_update *u = snap_xcalloc(n ? n : 1, sizeof *u);
    set_params s = {.changes = changes, .u = u, .n = n};
    for (size_t i = 0; i < n; i++)
        u[i].vdev = changes[i].vdev;
    char what[128];
    snprintf(what, sizeof what, "setting params of %zu disk%s of domain %u", n,
             n == 1 ? "" : "s", domid);
    int rc = find_libxl_paths(xs, domid, changes, u, n, err);
    if (!rc)
        rc = snap_xs_transaction(xs, what, set_params_txn, &s, err);
    for (size_t i = 0; i < n; i++)
        disk_update_dispose(&u[i]);
    free(u);
    return rc;
}

int snap_xs_disk_set_params(snap_xs *xs, uint32_t domid, const char *vdev,
                            const char *format, const char *path, snap_err *err)
{
    snap_xs_params_change c = {.vdev = vdev, .format = format, .path = path};
    return snap_xs_disks_set_params(xs, domid, &c, 1, err);
}

pid_t snap_xs_dm_pid(uint32_t domid)
{
    snap_xs *xs;
    snap_err ignored;
    char path[96], *pid_s = NULL;
    if (snap_xs_open(&xs, &ignored))
        return -1;
    snprintf(path, sizeof path, "/local/domain/%u/image/device-model-pid", domid);
    snap_xs_read_opt(xs, XBT_NULL, path, &pid_s, &ignored);
    snap_xs_close(xs);
    long pid = pid_s ? strtol(pid_s, NULL, 10) : -1;
    free(pid_s);
    return pid > 0 ? (pid_t)pid : -1;
}
