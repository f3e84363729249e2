/*
 * The xenstore side of a simulated domain: the nodes libxl 4.17 writes when
 * it creates a domain (libxl__domain_make, libxl__build_post), adds its
 * disks and channels (device_disk_add, libxl__device_console_add through
 * libxl__device_generic_add) and starts its device model, with libxl's
 * permissions; and their removal on destroy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "xlsim.h"

#define XENBUS_STATE_INITIALISING "1"
#define XENBUS_STATE_CONNECTED    "4"
#define XENCONSOLE_LIMIT          "1048576" /* LIBXL_XENCONSOLE_LIMIT */
#define XENCONSOLE_PROTOCOL       "vt100"   /* LIBXL_XENCONSOLE_PROTOCOL */
#define MAX_GUEST_DOMID           0x7FEF    /* DOMID_FIRST_RESERVED - 1 */

/* Writes within one transaction; the first failure is kept and the rest skipped. */
typedef struct xs_writer {
    struct xs_handle *xs;
    xs_transaction_t t;
    snap_err *err;
    int rc;
} xs_writer;

static void w_fail(xs_writer *w, const char *what, const char *path)
{
    if (!w->rc)
        w->rc =
            snap_err_errno(w->err, SNAP_ERROR_IO, errno, "xenstore %s %s", what, path);
}

static void w_write(xs_writer *w, const char *path, const char *value)
{
    if (!w->rc && !xs_write(w->xs, w->t, path, value, strlen(value)))
        w_fail(w, "write", path);
}

static void w_writef(xs_writer *w, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void w_writef(xs_writer *w, const char *path, const char *fmt, ...)
{
    va_list ap;
    char *value;
    va_start(ap, fmt);
    if (vasprintf(&value, fmt, ap) < 0)
        abort();
    va_end(ap);
    w_write(w, path, value);
    free(value);
}

static void w_rm(xs_writer *w, const char *path)
{
    if (!w->rc && !xs_rm(w->xs, w->t, path) && errno != ENOENT)
        w_fail(w, "rm", path);
}

/* libxl__xs_mknod: an empty node with the given permissions. */
static void w_mknod(xs_writer *w, const char *path, struct xs_permissions *perms,
                    unsigned int n)
{
    if (!w->rc && !xs_mkdir(w->xs, w->t, path))
        w_fail(w, "mkdir", path);
    if (!w->rc && !xs_set_permissions(w->xs, w->t, path, perms, n))
        w_fail(w, "set_permissions", path);
}

static void w_mknodf(xs_writer *w, struct xs_permissions *perms, unsigned int n,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void w_mknodf(xs_writer *w, struct xs_permissions *perms, unsigned int n,
                     const char *fmt, ...)
{
    va_list ap;
    char *path;
    va_start(ap, fmt);
    if (vasprintf(&path, fmt, ap) < 0)
        abort();
    va_end(ap);
    w_mknod(w, path, perms, n);
    free(path);
}

/* A NULL-terminated key/value list written under dir (libxl__xs_writev). */
static void w_writev(xs_writer *w, const char *dir, const char *const *kvs)
{
    for (; kvs && kvs[0]; kvs += 2) {
        char *path = snap_xasprintf("%s/%s", dir, kvs[0]);
        w_write(w, path, kvs[1]);
        free(path);
    }
}

static void w_writev_perms(xs_writer *w, const char *dir, const char *const *kvs,
                           struct xs_permissions *perms, unsigned int n)
{
    for (; kvs && kvs[0]; kvs += 2) {
        char *path = snap_xasprintf("%s/%s", dir, kvs[0]);
        w_write(w, path, kvs[1]);
        if (!w->rc && !xs_set_permissions(w->xs, w->t, path, perms, n))
            w_fail(w, "set_permissions", path);
        free(path);
    }
}

/* ---------------------------------------------------------------- devices */

typedef struct sim_device {
    uint32_t domid, backend_domid;
    int devid;
    const char *kind;         /* frontend kind: "vbd", "console" */
    const char *backend_kind; /* "qdisk", "console" */
    const char *const *back, *const *front, *const *ro_front;
} sim_device;

static char *frontend_path(const sim_device *dev)
{
    /* Console 0 lives at /local/domain/<domid>/console (libxl_device.c). */
    if (!strcmp(dev->kind, "console") && dev->devid == 0)
        return snap_xasprintf("/local/domain/%u/console", dev->domid);
    return snap_xasprintf("/local/domain/%u/device/%s/%d", dev->domid, dev->kind,
                          dev->devid);
}

static void write_frontend(xs_writer *w, const sim_device *dev, const char *fe,
                           const char *be)
{
    struct xs_permissions fe_perms[2] = {{dev->domid, XS_PERM_NONE},
                                         {dev->backend_domid, XS_PERM_READ}};
    struct xs_permissions ro_perms[2] = {{dev->backend_domid, XS_PERM_NONE},
                                         {dev->domid, XS_PERM_READ}};
    bool ro = !strcmp(dev->kind, "console") && dev->devid == 0;
    w_rm(w, fe);
    w_mknod(w, fe, ro ? ro_perms : fe_perms, 2);
    char *p = snap_xasprintf("%s/backend", fe);
    w_write(w, p, be);
    free(p);
    w_writev_perms(w, fe, dev->front, fe_perms, 2);
    w_writev_perms(w, fe, dev->ro_front, ro_perms, 2);
}

/* libxl__device_generic_add: frontend, backend and libxl's own copy. */
static void device_generic_add(xs_writer *w, const sim_device *dev)
{
    struct xs_permissions be_perms[2] = {{dev->backend_domid, XS_PERM_NONE},
                                         {dev->domid, XS_PERM_READ}};
    char *fe = frontend_path(dev);
    char *be = snap_xasprintf("/local/domain/%u/backend/%s/%u/%d", dev->backend_domid,
                              dev->backend_kind, dev->domid, dev->devid);
    char *lx =
        snap_xasprintf("/libxl/%u/device/%s/%d", dev->domid, dev->kind, dev->devid);
    char *p;
    w_rm(w, lx);
    w_write(w, p = snap_xasprintf("%s/frontend", lx), fe), free(p);
    w_write(w, p = snap_xasprintf("%s/backend", lx), be), free(p);
    write_frontend(w, dev, fe, be);
    w_rm(w, be);
    w_mknod(w, be, be_perms, 2);
    w_write(w, p = snap_xasprintf("%s/frontend", be), fe), free(p);
    w_writev(w, be, dev->back);
    /* The libxl copy is only ever read by libxl, never updated by backends. */
    w_writev(w, lx, dev->back);
    free(fe);
    free(be);
    free(lx);
}

/* A NULL-terminated key/value list built in libxl's append order. */
typedef struct kv_list {
    const char *kv[48];
    int n;
} kv_list;

static void kv_add(kv_list *l, const char *key, const char *value)
{
    if (l->n + 3 > (int)(sizeof l->kv / sizeof *l->kv))
        abort(); /* a programming error: the lists here are fixed */
    l->kv[l->n++] = key;
    l->kv[l->n++] = value;
    l->kv[l->n] = NULL;
}

static void add_disk(xs_writer *w, uint32_t domid, const libxl_device_disk *disk)
{
    int devid = sim_vdev_to_devid(disk->vdev);
    char *params = snap_xasprintf("%s:%s", sim_disk_params_format(disk->format),
                                  disk->pdev_path ? disk->pdev_path : "");
    char *domid_s = snap_xasprintf("%u", domid);
    char *devid_s = snap_xasprintf("%d", devid);
    char *bdomid_s = snap_xasprintf("%u", disk->backend_domid);
    const char *dtype = disk->is_cdrom ? "cdrom" : "disk";
    kv_list back = {.n = 0}, front = {.n = 0};
    kv_add(&back, "params", params);
    kv_add(&back, "frontend-id", domid_s);
    kv_add(&back, "online", "1");
    kv_add(&back, "removable", disk->removable ? "1" : "0");
    kv_add(&back, "bootable", "1");
    kv_add(&back, "state", XENBUS_STATE_INITIALISING);
    kv_add(&back, "dev", disk->vdev);
    kv_add(&back, "type", "qdisk");
    kv_add(&back, "mode", disk->readwrite ? "w" : "r");
    kv_add(&back, "device-type", dtype);
    if (disk->direct_io_safe)
        kv_add(&back, "direct-io-safe", "1");
    kv_add(&back, "discard-enable", libxl_defbool_val(disk->discard_enable) ? "1" : "0");
    kv_add(&front, "backend-id", bdomid_s);
    kv_add(&front, "state", XENBUS_STATE_INITIALISING);
    kv_add(&front, "virtual-device", devid_s);
    kv_add(&front, "device-type", dtype);
    sim_device dev = {.domid = domid,
                      .backend_domid = disk->backend_domid,
                      .devid = devid,
                      .kind = "vbd",
                      .backend_kind = "qdisk",
                      .back = back.kv,
                      .front = front.kv};
    device_generic_add(w, &dev);
    free(params);
    free(domid_s);
    free(devid_s);
    free(bdomid_s);
}

/* A channel is a console served by QEMU (libxl__init_console_from_channel). */
static void add_channel(xs_writer *w, uint32_t domid, const libxl_device_channel *chn)
{
    bool sock = chn->connection == LIBXL_CHANNEL_CONNECTION_SOCKET;
    char *domid_s = snap_xasprintf("%u", domid);
    char *bdomid_s = snap_xasprintf("%u", chn->backend_domid);
    char *output = sock ? snap_xasprintf("chardev:libxl-channel%d", chn->devid)
                        : snap_xstrdup("pty");
    kv_list back = {.n = 0}, front = {.n = 0}, ro_front = {.n = 0};
    kv_add(&back, "frontend-id", domid_s);
    kv_add(&back, "online", "1");
    kv_add(&back, "state", XENBUS_STATE_INITIALISING);
    kv_add(&back, "protocol", XENCONSOLE_PROTOCOL);
    kv_add(&back, "name", chn->name);
    kv_add(&back, "connection", sock ? "socket" : "pty");
    if (sock)
        kv_add(&back, "path", chn->u.socket.path);
    kv_add(&ro_front, "name", chn->name);
    kv_add(&ro_front, "limit", XENCONSOLE_LIMIT);
    kv_add(&ro_front, "type", "ioemu");
    kv_add(&ro_front, "output", output);
    kv_add(&ro_front, "tty", "");
    kv_add(&front, "backend-id", bdomid_s);
    kv_add(&front, "state", XENBUS_STATE_INITIALISING);
    kv_add(&front, "protocol", XENCONSOLE_PROTOCOL);
    sim_device dev = {.domid = domid,
                      .backend_domid = chn->backend_domid,
                      .devid = chn->devid,
                      .kind = "console",
                      .backend_kind = "console",
                      .back = back.kv,
                      .front = front.kv,
                      .ro_front = ro_front.kv};
    device_generic_add(w, &dev);
    free(domid_s);
    free(bdomid_s);
    free(output);
}

/* The primary console of a PV/PVH domain, served by xenconsoled on Xen. */
static void add_primary_console(xs_writer *w, uint32_t domid)
{
    char *domid_s = snap_xasprintf("%u", domid);
    const char *back[] = {"frontend-id", domid_s,
                          "online",      "1",
                          "state",       XENBUS_STATE_INITIALISING,
                          "protocol",    XENCONSOLE_PROTOCOL,
                          NULL};
    const char *front[] = {"backend-id", "0", NULL};
    const char *ro_front[] = {
        "limit", XENCONSOLE_LIMIT, "type", "xenconsoled", "output", "pty", "tty",
        "",      "port",           "2",    "ring-ref",    "0",      NULL};
    sim_device dev = {.domid = domid,
                      .backend_domid = 0,
                      .devid = 0,
                      .kind = "console",
                      .backend_kind = "console",
                      .back = back,
                      .front = front,
                      .ro_front = ro_front};
    device_generic_add(w, &dev);
    free(domid_s);
}

/* ---------------------------------------------------------------- domain */

/* libxl__domain_make: the domain's skeleton with libxl's permissions. */
static void make_domain(xs_writer *w, uint32_t id, const libxl_domain_config *d,
                        const char *uuid)
{
    struct xs_permissions noperm[1] = {{0, XS_PERM_NONE}};
    struct xs_permissions roperm[2] = {{0, XS_PERM_NONE}, {id, XS_PERM_READ}};
    struct xs_permissions rwperm[1] = {{id, XS_PERM_NONE}};
    bool hvm = d->c_info.type == LIBXL_DOMAIN_TYPE_HVM;
    char *dom = snap_xasprintf("/local/domain/%u", id);
    char *vm = snap_xasprintf("/vm/%s", uuid);
    char *lx = snap_xasprintf("/libxl/%u", id);
    char *p;
    w_rm(w, dom), w_mknod(w, dom, roperm, 2);
    w_rm(w, vm), w_mknod(w, vm, roperm, 2);
    w_rm(w, lx), w_mknod(w, lx, noperm, 1);
    w_mknodf(w, noperm, 1, "%s/device", lx);
    w_write(w, p = snap_xasprintf("%s/vm", dom), vm), free(p);
    w_write(w, p = snap_xasprintf("%s/name", dom), d->c_info.name), free(p);
    static const char *const ro_dirs[] = {"cpu", "memory", "device", "control"};
    for (size_t i = 0; i < sizeof ro_dirs / sizeof *ro_dirs; i++)
        w_mknodf(w, roperm, 2, "%s/%s", dom, ro_dirs[i]);
    w_mknodf(w, rwperm, 1, "%s/device/suspend/event-channel", dom);
    if (hvm)
        w_mknodf(w, roperm, 2, "%s/hvmloader", dom);
    static const char *const rw_dirs[] = {"control/shutdown",
                                          "control/feature-poweroff",
                                          "control/feature-reboot",
                                          "control/feature-suspend",
                                          "control/sysrq",
                                          "data",
                                          "drivers",
                                          "feature",
                                          "attr",
                                          "error"};
    for (size_t i = 0; i < sizeof rw_dirs / sizeof *rw_dirs; i++)
        w_mknodf(w, rwperm, 1, "%s/%s", dom, rw_dirs[i]);
    if (hvm) {
        w_mknodf(w, rwperm, 1, "%s/control/feature-s3", dom);
        w_mknodf(w, rwperm, 1, "%s/control/feature-s4", dom);
    }
    w_write(w, p = snap_xasprintf("%s/uuid", vm), uuid), free(p);
    w_write(w, p = snap_xasprintf("%s/name", vm), d->c_info.name), free(p);
    w_write(w,
            p = snap_xasprintf("%s/control/platform-feature-multiprocessor-suspend", dom),
            "1"),
        free(p);
    w_write(w, p = snap_xasprintf("%s/control/platform-feature-xs_reset_watches", dom),
            "1"),
        free(p);
    w_write(w, p = snap_xasprintf("%s/type", lx),
            libxl_domain_type_to_string(d->c_info.type)),
        free(p);
    free(dom);
    free(vm);
    free(lx);
}

/* libxl__build_post and the "vments" of libxl__domain_build. */
static void build_post(xs_writer *w, uint32_t id, const libxl_domain_config *d,
                       const char *uuid)
{
    const libxl_domain_build_info *b = &d->b_info;
    char *dom = snap_xasprintf("/local/domain/%u", id);
    char *vm = snap_xasprintf("/vm/%s", uuid);
    char *p;
    w_writef(w, p = snap_xasprintf("%s/memory/static-max", dom), "%" PRIu64,
             b->max_memkb),
        free(p);
    w_writef(w, p = snap_xasprintf("%s/memory/target", dom), "%" PRIu64, b->target_memkb),
        free(p);
    w_write(w, p = snap_xasprintf("%s/memory/videoram", dom), "0"), free(p);
    w_writef(w, p = snap_xasprintf("%s/domid", dom), "%u", id), free(p);
    /* No hypervisor: the store ring values are placeholders. */
    w_write(w, p = snap_xasprintf("%s/store/port", dom), "1"), free(p);
    w_write(w, p = snap_xasprintf("%s/store/ring-ref", dom), "0"), free(p);
    for (int i = 0; i < b->max_vcpus; i++) {
        w_write(w, p = snap_xasprintf("%s/cpu/%d/availability", dom, i),
                libxl_bitmap_test(&b->avail_vcpus, i) ? "online" : "offline");
        free(p);
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    w_writef(w, p = snap_xasprintf("%s/start_time", vm), "%jd.%02d", (intmax_t)now.tv_sec,
             (int)now.tv_usec / 10000),
        free(p);
    if (d->c_info.type == LIBXL_DOMAIN_TYPE_HVM) {
        w_write(w, p = snap_xasprintf("%s/rtc/timeoffset", vm), ""), free(p);
        w_write(w, p = snap_xasprintf("%s/image/ostype", vm), "hvm"), free(p);
        w_write(w, p = snap_xasprintf("%s/platform/device-model", dom), "qemu_xen"),
            free(p);
    } else if (d->c_info.type == LIBXL_DOMAIN_TYPE_PV) {
        const char *const kvs[] = {"image/ostype",
                                   "linux",
                                   "image/kernel",
                                   b->kernel,
                                   b->ramdisk ? "image/ramdisk" : NULL,
                                   b->ramdisk,
                                   NULL};
        w_writev(w, vm, kvs);
        if (b->cmdline)
            w_write(w, p = snap_xasprintf("%s/image/cmdline", vm), b->cmdline), free(p);
    }
    free(dom);
    free(vm);
}

/* The domain's name must be unique (libxl__domain_rename). */
static int check_name_free(xs_writer *w, const char *name)
{
    unsigned int n = 0;
    char **ids = xs_directory(w->xs, w->t, "/local/domain", &n);
    int rc = 0;
    for (unsigned int i = 0; ids && i < n && !rc; i++) {
        char *path = snap_xasprintf("/local/domain/%s/name", ids[i]);
        char *other = xs_read(w->xs, w->t, path, NULL);
        if (other && !strcmp(other, name))
            rc = snap_err_set(w->err, SNAP_ERROR_EXISTS,
                              "Domain with name \"%s\" already exists (domid %s).", name,
                              ids[i]);
        free(other);
        free(path);
    }
    free(ids);
    return rc;
}

/* The lowest domid >= 1 without a /local/domain/<domid>. */
static uint32_t lowest_free_domid(xs_writer *w)
{
    unsigned int n = 0;
    char **ids = xs_directory(w->xs, w->t, "/local/domain", &n);
    uint32_t id = 1;
    for (bool taken = true; taken && id <= MAX_GUEST_DOMID;) {
        taken = false;
        for (unsigned int i = 0; ids && i < n && !taken; i++)
            taken = strtoul(ids[i], NULL, 10) == id;
        if (taken)
            id++;
    }
    free(ids);
    return id;
}

/* On a real host xen-init-dom0 names dom0; do it if nobody did. */
static void ensure_dom0(xs_writer *w)
{
    char *name = xs_read(w->xs, w->t, "/local/domain/0/name", NULL);
    if (!name) {
        w_write(w, "/local/domain/0/name", "Domain-0");
        w_write(w, "/local/domain/0/domid", "0");
    }
    free(name);
}

static int create_in_transaction(xs_writer *w, const libxl_domain_config *d,
                                 const char *uuid, uint32_t *domid_out)
{
    ensure_dom0(w);
    if (w->rc || check_name_free(w, d->c_info.name))
        return w->rc ? w->rc : w->err->code;
    uint32_t id = lowest_free_domid(w);
    if (id > MAX_GUEST_DOMID)
        return snap_err_set(w->err, SNAP_ERROR_BUSY, "no free domid");
    make_domain(w, id, d, uuid);
    build_post(w, id, d, uuid);
    if (d->c_info.type != LIBXL_DOMAIN_TYPE_HVM)
        add_primary_console(w, id);
    for (int i = 0; i < d->num_disks; i++)
        add_disk(w, id, &d->disks[i]);
    for (int i = 0; i < d->num_channels; i++)
        add_channel(w, id, &d->channels[i]);
    *domid_out = id;
    return w->rc;
}

int sim_xs_create_domain(struct xs_handle *xs, const libxl_domain_config *d_config,
                         uint32_t *domid_out, snap_err *err)
{
    char uuid[40];
    snprintf(uuid, sizeof uuid, LIBXL_UUID_FMT, LIBXL_UUID_BYTES(d_config->c_info.uuid));
    for (int attempt = 0; attempt < 100; attempt++) {
        xs_writer w = {.xs = xs, .t = xs_transaction_start(xs), .err = err};
        if (w.t == XBT_NULL)
            return snap_err_errno(err, SNAP_ERROR_IO, errno,
                                  "xenstore transaction start");
        int rc = create_in_transaction(&w, d_config, uuid, domid_out);
        if (rc) {
            xs_transaction_end(xs, w.t, true);
            return rc;
        }
        if (xs_transaction_end(xs, w.t, false))
            return 0;
        if (errno != EAGAIN)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "xenstore transaction end");
    }
    return snap_err_set(err, SNAP_ERROR_BUSY, "xenstore transaction kept conflicting");
}

/* ---------------------------------------------------------------- after start */

/*
 * The connection states a running QEMU backend and guest frontend reach;
 * xen-block also reports hotplug-status (xen-bus does, legacy consoles not).
 */
static void mark_connected(xs_writer *w, uint32_t domid, const char *kind,
                           const char *backend_kind, bool hotplug_status)
{
    char *be_dir = snap_xasprintf("/local/domain/0/backend/%s/%u", backend_kind, domid);
    unsigned int n = 0;
    char **devids = xs_directory(w->xs, w->t, be_dir, &n);
    for (unsigned int i = 0; devids && i < n; i++) {
        char *p;
        w_write(w, p = snap_xasprintf("%s/%s/state", be_dir, devids[i]),
                XENBUS_STATE_CONNECTED),
            free(p);
        if (hotplug_status)
            w_write(w, p = snap_xasprintf("%s/%s/hotplug-status", be_dir, devids[i]),
                    "connected"),
                free(p);
        if (!strcmp(devids[i], "0"))
            continue; /* the primary console is not a QEMU device */
        w_write(w,
                p = snap_xasprintf("/local/domain/%u/device/%s/%s/state", domid, kind,
                                   devids[i]),
                XENBUS_STATE_CONNECTED),
            free(p);
    }
    free(devids);
    free(be_dir);
}

int sim_xs_record_dm(struct xs_handle *xs, uint32_t domid, pid_t pid, snap_err *err)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        xs_writer w = {.xs = xs, .t = xs_transaction_start(xs), .err = err};
        char *p;
        w_writef(&w, p = snap_xasprintf("/local/domain/%u/image/device-model-pid", domid),
                 "%d", (int)pid),
            free(p);
        w_write(&w, p = snap_xasprintf("/libxl/%u/dm-version", domid), "qemu_xen"),
            free(p);
        w_write(&w, p = snap_xasprintf("/local/domain/0/device-model/%u/state", domid),
                "running"),
            free(p);
        mark_connected(&w, domid, "vbd", "qdisk", true);
        mark_connected(&w, domid, "console", "console", false);
        if (w.rc) {
            xs_transaction_end(xs, w.t, true);
            return w.rc;
        }
        if (xs_transaction_end(xs, w.t, false))
            return 0;
        if (errno != EAGAIN)
            return snap_err_errno(err, SNAP_ERROR_IO, errno, "xenstore transaction end");
    }
    return snap_err_set(err, SNAP_ERROR_BUSY, "xenstore transaction kept conflicting");
}

/* ---------------------------------------------------------------- destroy */

static void destroy_in_transaction(xs_writer *w, uint32_t domid, const char *uuid)
{
    unsigned int n = 0;
    char **kinds = xs_directory(w->xs, w->t, "/local/domain/0/backend", &n);
    char *p;
    for (unsigned int i = 0; kinds && i < n; i++)
        w_rm(w, p = snap_xasprintf("/local/domain/0/backend/%s/%u", kinds[i], domid)),
            free(p);
    free(kinds);
    w_rm(w, p = snap_xasprintf("/local/domain/0/device-model/%u", domid)), free(p);
    if (uuid)
        w_rm(w, p = snap_xasprintf("/vm/%s", uuid)), free(p);
    w_rm(w, p = snap_xasprintf("/libxl/%u", domid)), free(p);
    w_rm(w, p = snap_xasprintf("/local/domain/%u", domid)), free(p);
}

int sim_xs_destroy_domain(struct xs_handle *xs, uint32_t domid, snap_err *err)
{
    char *uuid = sim_xs_dom_uuid(xs, domid);
    int rc = snap_err_set(err, SNAP_ERROR_BUSY, "xenstore transaction kept conflicting");
    for (int attempt = 0; attempt < 100 && rc == SNAP_ERROR_BUSY; attempt++) {
        xs_writer w = {.xs = xs, .t = xs_transaction_start(xs), .err = err};
        if (w.t == XBT_NULL) {
            rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "xenstore transaction start");
            break;
        }
        destroy_in_transaction(&w, domid, uuid);
        if (w.rc) {
            xs_transaction_end(xs, w.t, true);
            rc = w.rc;
        } else if (xs_transaction_end(xs, w.t, false)) {
            snap_err_clear(err);
            rc = 0;
        } else if (errno != EAGAIN) {
            rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "xenstore transaction end");
        }
    }
    free(uuid);
    return rc;
}

/* ---------------------------------------------------------------- lookup */

struct xs_handle *sim_xs_open(snap_err *err)
{
    struct xs_handle *xs = xs_open(0);
    if (!xs) {
        const char *path = getenv("XENSTORED_PATH");
        snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot connect to xenstored at %s",
                       path ? path : "its default socket");
    }
    return xs;
}

char *sim_xs_read_dom(struct xs_handle *xs, uint32_t domid, const char *rel)
{
    char *path = snap_xasprintf("/local/domain/%u/%s", domid, rel);
    char *value = xs_read(xs, XBT_NULL, path, NULL);
    free(path);
    return value;
}

char *sim_xs_dom_uuid(struct xs_handle *xs, uint32_t domid)
{
    char *vm = sim_xs_read_dom(xs, domid, "vm");
    char *uuid = NULL;
    if (vm && !strncmp(vm, "/vm/", 4))
        uuid = snap_xstrdup(vm + 4);
    free(vm);
    return uuid;
}

pid_t sim_xs_dm_pid(struct xs_handle *xs, uint32_t domid)
{
    char *s = sim_xs_read_dom(xs, domid, "image/device-model-pid");
    long pid = s ? strtol(s, NULL, 10) : -1;
    free(s);
    return pid > 0 ? (pid_t)pid : -1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int sim_xs_list_domids(struct xs_handle *xs, uint32_t **ids_out, unsigned int *n_out,
                       snap_err *err)
{
    unsigned int n = 0, k = 0;
    char **names = xs_directory(xs, XBT_NULL, "/local/domain", &n);
    if (!names && errno != ENOENT)
        return snap_err_errno(err, SNAP_ERROR_IO, errno,
                              "xenstore directory /local/domain");
    uint32_t *ids = snap_xcalloc(n ? n : 1, sizeof *ids);
    for (unsigned int i = 0; i < n; i++) {
        char *end;
        unsigned long id = strtoul(names[i], &end, 10);
        if (!*end && id > 0 && id <= MAX_GUEST_DOMID)
            ids[k++] = (uint32_t)id;
    }
    free(names);
    qsort(ids, k, sizeof *ids, cmp_u32);
    *ids_out = ids;
    *n_out = k;
    return 0;
}

int sim_xs_lookup(struct xs_handle *xs, const char *dom, uint32_t *domid_out,
                  snap_err *err)
{
    uint32_t *ids;
    unsigned int n;
    int rc = sim_xs_list_domids(xs, &ids, &n, err);
    if (rc)
        return rc;
    char *end;
    unsigned long want = strtoul(dom, &end, 10);
    bool numeric = *dom && !*end;
    rc =
        snap_err_set(err, SNAP_ERROR_NOTFOUND, "%s is an invalid domain identifier", dom);
    for (unsigned int i = 0; i < n && rc; i++) {
        char *name = numeric ? NULL : sim_xs_read_dom(xs, ids[i], "name");
        if (numeric ? ids[i] == want : (name && !strcmp(name, dom))) {
            *domid_out = ids[i];
            snap_err_clear(err);
            rc = 0;
        }
        free(name);
    }
    free(ids);
    return rc;
}
