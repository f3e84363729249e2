/*
 * snap_xs against the project's xenstored through the real libxenstore.
 * xenstore is populated the way libxl 4.17 does it for a PV domain with
 * qdisk disks (libxl__device_generic_add + device_disk_add).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

#include "snap_xs.h"
#include "th.h"

#define DOMID 5
#define UUID  "6f1c2e3a-9b4d-4c5e-8f70-112233445566"

typedef struct fake_disk {
    const char *vdev;
    int devid;
    const char *type;   /* qdisk | phy */
    const char *params; /* as libxl writes it */
    bool rw, cdrom;
} fake_disk;

static const fake_disk qdisks[] = {
    {"xvda", 51712, "qdisk", "qcow2:/var/lib/xen/images/g1 root.qcow2", true, false},
    {"xvdb", 51728, "qdisk", "aio:/var/lib/xen/images/g1-data.img", false, false},
};

static const char *xs_sock;

static bool xs_started(void)
{
    static int state; /* 0 not tried, 1 up, -1 failed */
    if (!state)
        state = th_start_xenstored(&xs_sock) > 0 ? 1 : -1;
    return state == 1;
}

static struct xs_handle *raw_open(void)
{
    return xs_open(0);
}

static bool wr(struct xs_handle *h, xs_transaction_t t, const char *path, const char *val)
{
    return xs_write(h, t, path, val, (unsigned)strlen(val));
}

/* Writes "k1", "v1", ..., NULL under dir. */
static bool writev(struct xs_handle *h, xs_transaction_t t, const char *dir,
                   const char *const *kv)
{
    char path[512];
    for (; kv[0]; kv += 2) {
        snprintf(path, sizeof path, "%s/%s", dir, kv[0]);
        if (!wr(h, t, path, kv[1]))
            return false;
    }
    return true;
}

/* libxl__device_generic_add for one vbd, in one transaction. */
static bool add_disk(struct xs_handle *h, int domid, const fake_disk *d)
{
    char fe[256], be[256], lx[256], devid[16], dom[16];
    char lx_fe[300], lx_be[300], fe_be[300], be_fe[300];
    const char *kind = strcmp(d->type, "qdisk") == 0 ? "qdisk" : "vbd";
    snprintf(fe, sizeof fe, "/local/domain/%d/device/vbd/%d", domid, d->devid);
    snprintf(be, sizeof be, "/local/domain/0/backend/%s/%d/%d", kind, domid, d->devid);
    snprintf(lx, sizeof lx, "/libxl/%d/device/vbd/%d", domid, d->devid);
    snprintf(devid, sizeof devid, "%d", d->devid);
    snprintf(dom, sizeof dom, "%d", domid);
    snprintf(lx_fe, sizeof lx_fe, "%s/frontend", lx);
    snprintf(lx_be, sizeof lx_be, "%s/backend", lx);
    snprintf(fe_be, sizeof fe_be, "%s/backend", fe);
    snprintf(be_fe, sizeof be_fe, "%s/frontend", be);
    struct xs_permissions fe_perms[2] = {{(unsigned)domid, XS_PERM_NONE},
                                         {0, XS_PERM_READ}};
    struct xs_permissions be_perms[2] = {{0, XS_PERM_NONE},
                                         {(unsigned)domid, XS_PERM_READ}};
    const char *const fents[] = {"backend-id",
                                 "0",
                                 "state",
                                 "1",
                                 "virtual-device",
                                 devid,
                                 "device-type",
                                 d->cdrom ? "cdrom" : "disk",
                                 NULL};
    const char *const bents[] = {"params",
                                 d->params,
                                 "frontend-id",
                                 dom,
                                 "online",
                                 "1",
                                 "removable",
                                 d->cdrom ? "1" : "0",
                                 "bootable",
                                 "1",
                                 "state",
                                 "1",
                                 "dev",
                                 d->vdev,
                                 "type",
                                 d->type,
                                 "mode",
                                 d->rw ? "w" : "r",
                                 "device-type",
                                 d->cdrom ? "cdrom" : "disk",
                                 "discard-enable",
                                 d->rw ? "1" : "0",
                                 NULL};
    for (;;) {
        xs_transaction_t t = xs_transaction_start(h);
        bool ok = t != XBT_NULL && (xs_rm(h, t, lx) || errno == ENOENT) &&
                  wr(h, t, lx_fe, fe) && wr(h, t, lx_be, be) && xs_mkdir(h, t, fe) &&
                  xs_set_permissions(h, t, fe, fe_perms, 2) && wr(h, t, fe_be, be) &&
                  writev(h, t, fe, fents) && xs_mkdir(h, t, be) &&
                  xs_set_permissions(h, t, be, be_perms, 2) && wr(h, t, be_fe, fe) &&
                  writev(h, t, be, bents) && writev(h, t, lx, bents);
        if (!ok) {
            if (t != XBT_NULL)
                xs_transaction_end(h, t, true);
            return false;
        }
        if (xs_transaction_end(h, t, false))
            return true;
        if (errno != EAGAIN)
            return false;
    }
}

/* A domain as libxl leaves it: name, vm path, and its disks. */
static bool add_domain(int domid, const char *name, const char *uuid,
                       const fake_disk *disks, size_t n)
{
    struct xs_handle *h = raw_open();
    char path[256], vm[128];
    bool ok = h != NULL;
    snprintf(vm, sizeof vm, "/vm/%s", uuid);
    snprintf(path, sizeof path, "/local/domain/%d/name", domid);
    ok = ok && wr(h, XBT_NULL, path, name);
    snprintf(path, sizeof path, "/local/domain/%d/vm", domid);
    ok = ok && wr(h, XBT_NULL, path, vm);
    snprintf(path, sizeof path, "%s/uuid", vm);
    ok = ok && wr(h, XBT_NULL, path, uuid);
    for (size_t i = 0; ok && i < n; i++)
        ok = add_disk(h, domid, &disks[i]);
    xs_close(h);
    return ok;
}

/* A fresh daemon population per test: domain 0 plus the given domain. */
static bool setup(void)
{
    if (!xs_started())
        return false;
    struct xs_handle *h = raw_open();
    bool ok = h && (xs_rm(h, XBT_NULL, "/libxl") || errno == ENOENT) &&
              (xs_rm(h, XBT_NULL, "/vm") || errno == ENOENT) &&
              (xs_rm(h, XBT_NULL, "/local") || errno == ENOENT) &&
              wr(h, XBT_NULL, "/local/domain/0/name", "Domain-0");
    xs_close(h);
    return ok && add_domain(DOMID, "guest1", UUID, qdisks, 2);
}

static char *raw_read(const char *path)
{
    struct xs_handle *h = raw_open();
    unsigned len;
    char *v = h ? xs_read(h, XBT_NULL, path, &len) : NULL;
    xs_close(h);
    return v;
}

static bool raw_write(const char *path, const char *val)
{
    struct xs_handle *h = raw_open();
    bool ok = h && wr(h, XBT_NULL, path, val);
    xs_close(h);
    return ok;
}

/* ------------------------------------------------------------ tests */

static void test_open_fails_clearly(void)
{
    const char *saved = getenv("XENSTORED_PATH");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("XENSTORED_PATH", th_path("no-such.sock"), 1);
    snap_xs *xs = NULL;
    snap_err err = {0};
    CHECK_INT(snap_xs_open(&xs, &err), SNAP_ERROR_IO);
    CHECK_CONTAINS(err.msg, "no-such.sock");
    CHECK(xs == NULL);
    if (keep)
        setenv("XENSTORED_PATH", keep, 1);
    else
        unsetenv("XENSTORED_PATH");
    free(keep);
}

static void test_domain_lookup(void)
{
    REQUIRE(setup());
    snap_xs *xs;
    snap_err err = {0};
    REQUIRE(snap_xs_open(&xs, &err) == 0);
    uint32_t *ids = NULL;
    size_t n = 0;
    CHECK_INT(snap_xs_list_domains(xs, &ids, &n, &err), 0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_INT(ids[0], 0);
        CHECK_INT(ids[1], DOMID);
    }
    free(ids);
    char *s = NULL;
    CHECK_INT(snap_xs_domain_name(xs, DOMID, &s, &err), 0);
    CHECK_STR(s, "guest1");
    free(s);
    uint32_t domid = 0;
    CHECK_INT(snap_xs_domid_by_name(xs, "guest1", &domid, &err), 0);
    CHECK_INT(domid, DOMID);
    CHECK_INT(snap_xs_domid_by_name(xs, "nosuch", &domid, &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "nosuch");
    CHECK_INT(snap_xs_domain_name(xs, 77, &s, &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "no domain 77");
    s = NULL;
    CHECK_INT(snap_xs_domain_uuid(xs, DOMID, &s, &err), 0);
    CHECK_STR(s, UUID);
    free(s);
    REQUIRE(raw_write("/local/domain/5/vm", "/vm/not-a-uuid"));
    CHECK_INT(snap_xs_domain_uuid(xs, DOMID, &s, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "not-a-uuid");
    snap_xs_close(xs);
}

static void test_disk_model(void)
{
    REQUIRE(setup());
    snap_xs *xs;
    snap_err err = {0};
    REQUIRE(snap_xs_open(&xs, &err) == 0);
    snap_xs_disk *d = NULL;
    size_t n = 0;
    REQUIRE(snap_xs_domain_disks(xs, DOMID, &d, &n, &err) == 0);
    REQUIRE(n == 2);
    CHECK_INT(d[0].devid, 51712);
    CHECK_STR(d[0].vdev, "xvda");
    CHECK_STR(d[0].backend_type, "qdisk");
    CHECK_STR(d[0].backend_kind, "qdisk");
    CHECK_INT(d[0].backend_domid, 0);
    CHECK_STR(d[0].format, "qcow2");
    CHECK_STR(d[0].path, "/var/lib/xen/images/g1 root.qcow2");
    CHECK(d[0].readwrite && !d[0].is_cdrom && !d[0].removable && d[0].backend_agrees);
    CHECK_STR(d[0].backend_path, "/local/domain/0/backend/qdisk/5/51712");
    CHECK_STR(d[0].frontend_path, "/local/domain/5/device/vbd/51712");
    CHECK_STR(d[0].libxl_path, "/libxl/5/device/vbd/51712");
    CHECK_INT(d[1].devid, 51728);
    CHECK_STR(d[1].vdev, "xvdb");
    CHECK_STR(d[1].format, "raw"); /* libxl's "aio:" */
    CHECK_STR(d[1].path, "/var/lib/xen/images/g1-data.img");
    CHECK(!d[1].readwrite);
    snap_xs_disks_free(d, n);
    /* A backend that diverged from libxl's copy is reported. */
    REQUIRE(raw_write("/local/domain/0/backend/qdisk/5/51728/params", "aio:/other"));
    REQUIRE(snap_xs_domain_disks(xs, DOMID, &d, &n, &err) == 0);
    CHECK(n == 2 && d[0].backend_agrees && !d[1].backend_agrees);
    snap_xs_disks_free(d, n);
    /* No disks at all is not an error. */
    REQUIRE(snap_xs_domain_disks(xs, 0, &d, &n, &err) == 0);
    CHECK_INT(n, 0);
    snap_xs_disks_free(d, n);
    /* A damaged libxl copy is named in the error. */
    REQUIRE(raw_write("/libxl/5/device/vbd/51712/backend", "/nonsense"));
    CHECK_INT(snap_xs_domain_disks(xs, DOMID, &d, &n, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "/libxl/5/device/vbd/51712/backend");
    snap_xs_close(xs);
}

static void check_params(int devid, const char *want)
{
    char be[128], lx[128];
    snprintf(be, sizeof be, "/local/domain/0/backend/qdisk/5/%d/params", devid);
    snprintf(lx, sizeof lx, "/libxl/5/device/vbd/%d/params", devid);
    char *a = raw_read(be), *b = raw_read(lx);
    CHECK_STR(a, want);
    CHECK_STR(b, want);
    free(a);
    free(b);
}

static void test_set_params_both_copies_and_back(void)
{
    REQUIRE(setup());
    snap_xs *xs;
    snap_err err = {0};
    REQUIRE(snap_xs_open(&xs, &err) == 0);
    REQUIRE(snap_xs_disk_set_params(xs, DOMID, "xvda", "qcow2",
                                    "/var/lib/xen/images/g1.snap-1.qcow2", &err) == 0);
    check_params(51712, "qcow2:/var/lib/xen/images/g1.snap-1.qcow2");
    check_params(51728, "aio:/var/lib/xen/images/g1-data.img"); /* untouched */
    char *type = raw_read("/local/domain/0/backend/qdisk/5/51712/type");
    CHECK_STR(type, "qdisk");
    free(type);
    /* The backend keeps its permissions: owner dom0, readable by the guest. */
    struct xs_handle *h = raw_open();
    unsigned np = 0;
    struct xs_permissions *p = xs_get_permissions(
        h, XBT_NULL, "/local/domain/0/backend/qdisk/5/51712/params", &np);
    CHECK(p && np == 2 && p[0].id == 0 && p[1].id == DOMID && p[1].perms == XS_PERM_READ);
    free(p);
    xs_close(h);
    /* The model reads the new values back. */
    snap_xs_disk *d = NULL;
    size_t n = 0;
    REQUIRE(snap_xs_domain_disks(xs, DOMID, &d, &n, &err) == 0);
    CHECK(n == 2 && strcmp(d[0].path, "/var/lib/xen/images/g1.snap-1.qcow2") == 0);
    snap_xs_disks_free(d, n);
    /* Switching back, as a rollback does, restores both copies. */
    CHECK_INT(snap_xs_disk_set_params(xs, DOMID, "xvda", "qcow2",
                                      "/var/lib/xen/images/g1 root.qcow2", &err),
              0);
    check_params(51712, "qcow2:/var/lib/xen/images/g1 root.qcow2");
    /* raw is spelled "aio" for qdisk, as libxl does. */
    CHECK_INT(snap_xs_disk_set_params(xs, DOMID, "xvdb", "raw", "/new/data.img", &err),
              0);
    check_params(51728, "aio:/new/data.img");
    snap_xs_close(xs);
}

static void test_set_params_refusals(void)
{
    REQUIRE(setup());
    static const fake_disk phy[] = {{"xvdc", 51744, "phy", "/dev/vg0/g2", true, false}};
    REQUIRE(add_domain(6, "guest2", "0e5a9d1c-1111-2222-3333-444455556666", phy, 1));
    snap_xs *xs;
    snap_err err = {0};
    REQUIRE(snap_xs_open(&xs, &err) == 0);
    CHECK_INT(snap_xs_disk_set_params(xs, DOMID, "xvdz", "qcow2", "/x", &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "no disk xvdz");
    CHECK_INT(snap_xs_disk_set_params(xs, 6, "xvdc", "qcow2", "/x.qcow2", &err),
              SNAP_ERROR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "phy backend serves raw only");
    char *v = raw_read("/local/domain/0/backend/vbd/6/51744/params");
    CHECK_STR(v, "/dev/vg0/g2");
    free(v);
    CHECK_INT(snap_xs_disk_set_params(xs, 6, "xvdc", "raw", "/dev/vg0/g2-snap", &err), 0);
    v = raw_read("/libxl/6/device/vbd/51744/params");
    CHECK_STR(v, "/dev/vg0/g2-snap");
    free(v);
    CHECK_INT(snap_xs_disk_set_params(xs, DOMID, "xvda", "vmdk", "/x", &err),
              SNAP_ERROR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "vmdk");
    check_params(51712, "qcow2:/var/lib/xen/images/g1 root.qcow2");
    snap_xs_close(xs);
}

/* ------------------------------------------------------------ retries */

typedef struct conflict {
    struct xs_handle *other; /* a second connection */
    int conflicts_left;      /* attempts on which to write behind our back */
    int attempts;
} conflict;

/* Reads a node, lets another connection change it, then writes: EAGAIN. */
static int conflicting_body(snap_xs *xs, xs_transaction_t t, void *opaque, snap_err *err)
{
    conflict *c = opaque;
    c->attempts++;
    char *v = NULL;
    int rc = snap_xs_read(xs, t, "/test/counter", &v, err);
    if (rc)
        return rc;
    if (c->conflicts_left > 0) {
        c->conflicts_left--;
        char other[32];
        snprintf(other, sizeof other, "other-%d", c->attempts);
        if (!wr(c->other, XBT_NULL, "/test/counter", other))
            return snap_err_set(err, SNAP_ERROR_IO, "second connection write");
    }
    char next[64];
    snprintf(next, sizeof next, "%s+ours", v);
    free(v);
    return snap_xs_write(xs, t, "/test/counter", next, err);
}

static void test_transaction_retries_on_conflict(void)
{
    REQUIRE(setup());
    REQUIRE(raw_write("/test/counter", "start"));
    snap_xs *xs;
    snap_err err = {0};
    REQUIRE(snap_xs_open(&xs, &err) == 0);
    conflict c = {.other = raw_open(), .conflicts_left = 1};
    REQUIRE(c.other);
    CHECK_INT(snap_xs_transaction(xs, "counter", conflicting_body, &c, &err), 0);
    CHECK_INT(c.attempts, 2);
    char *v = raw_read("/test/counter");
    CHECK_STR(v, "other-1+ours"); /* the retry saw the other write */
    free(v);
    xs_close(c.other);
    snap_xs_close(xs);
}

static void test_transaction_gives_up(void)
{
    REQUIRE(setup());
    REQUIRE(raw_write("/test/counter", "start"));
    snap_xs *xs;
    snap_err err = {0};
    REQUIRE(snap_xs_open(&xs, &err) == 0);
    snap_xs_set_retry(xs, 3, 1);
    conflict c = {.other = raw_open(), .conflicts_left = 1000};
    REQUIRE(c.other);
    CHECK_INT(snap_xs_transaction(xs, "bump counter", conflicting_body, &c, &err),
              SNAP_ERROR_BUSY);
    CHECK_INT(c.attempts, 3);
    CHECK_CONTAINS(err.msg, "bump counter");
    CHECK_CONTAINS(err.msg, "gave up after 3 attempts");
    char *v = raw_read("/test/counter");
    CHECK_STR(v, "other-3"); /* none of our writes committed */
    free(v);
    xs_close(c.other);
    snap_xs_close(xs);
}

/* A body error aborts: nothing it wrote is committed, the error has context. */
static int failing_body(snap_xs *xs, xs_transaction_t t, void *opaque, snap_err *err)
{
    (void)opaque;
    int rc = snap_xs_write(xs, t, "/test/partial", "half", err);
    return rc ? rc : snap_err_set(err, SNAP_ERROR_INVAL, "body refused");
}

static void test_transaction_body_error_aborts(void)
{
    REQUIRE(setup());
    snap_xs *xs;
    snap_err err = {0};
    REQUIRE(snap_xs_open(&xs, &err) == 0);
    CHECK_INT(snap_xs_transaction(xs, "partial", failing_body, NULL, &err),
              SNAP_ERROR_INVAL);
    CHECK_STR(err.msg, "xenstore transaction partial: body refused");
    char *v = raw_read("/test/partial");
    CHECK(v == NULL);
    free(v);
    /* The device vanished under libxl's sanity check: nothing written. */
    struct xs_handle *h = raw_open();
    CHECK(xs_rm(h, XBT_NULL, "/libxl/5/device/vbd/51712/frontend"));
    xs_close(h);
    CHECK_INT(snap_xs_disk_set_params(xs, DOMID, "xvda", "qcow2", "/x", &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "/libxl/5/device/vbd/51712/frontend does not exist");
    check_params(51712, "qcow2:/var/lib/xen/images/g1 root.qcow2");
    snap_xs_close(xs);
}

int main(void)
{
    th_plan(8);
    TH_RUN(test_open_fails_clearly);
    TH_RUN(test_domain_lookup);
    TH_RUN(test_disk_model);
    TH_RUN(test_set_params_both_copies_and_back);
    TH_RUN(test_set_params_refusals);
    TH_RUN(test_transaction_retries_on_conflict);
    TH_RUN(test_transaction_gives_up);
    TH_RUN(test_transaction_body_error_aborts);
    return th_finish();
}
