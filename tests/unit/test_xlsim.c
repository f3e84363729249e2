/*
 * xlsim against the project's xenstored and real QEMU (TCG, no guest kernel:
 * an HVM domain created paused sits in its firmware). Asserts the effects
 * xlsnap relies on: xenstore keys and permissions as libxl writes them, the
 * stored libxl-json, QEMU's block node-names, and clean teardown.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <xenstore.h>

#include "snap_json.h"
#include "snap_qmp.h"
#include "th.h"

#define MAX_DMS 16

static struct xs_handle *xs;
static pid_t dm_pids[MAX_DMS]; /* QEMUs xlsim started, killed at exit if left */
static int n_dm_pids;

/* Alive and not a zombie (an orphaned QEMU may wait for PID 1 to reap it). */
static bool pid_running(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *stat = th_read_file(path);
    const char *p = stat ? strrchr(stat, ')') : NULL;
    bool running = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    free(stat);
    return running;
}

static void kill_leftover_dms(void)
{
    for (int i = 0; i < n_dm_pids; i++)
        if (dm_pids[i] > 0 && kill(dm_pids[i], 0) == 0)
            kill(dm_pids[i], SIGKILL);
}

/* Runs build/xlsim with up to 3 arguments; returns its exit code. */
static int xlsim(char **out, char **err, const char *a, const char *b, const char *c)
{
    char *o = NULL, *e = NULL;
    int rc = th_runl(&o, &e, th_build_path("xlsim"), a, b, c, (char *)NULL);
    if (rc != 0 && e)
        th_note("xlsim %s %s: rc %d: %s", a, b ? b : "", rc, e);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

static char *xs_get(const char *path)
{
    return xs_read(xs, XBT_NULL, path, NULL);
}

/* Checks a xenstore value (freeing what it read). */
#define CHECK_XS(path, want)                                                             \
    do {                                                                                 \
        char *v_ = xs_get(path);                                                         \
        CHECK_STR(v_, want);                                                             \
        free(v_);                                                                        \
    } while (0)

/* The node's permissions as "n0,r1". */
static char *xs_perms(const char *path)
{
    unsigned int n = 0;
    struct xs_permissions *p = xs_get_permissions(xs, XBT_NULL, path, &n);
    if (!p)
        return NULL;
    char *s = calloc(1, 16 * n + 1);
    for (unsigned int i = 0; i < n; i++) {
        char c = p[i].perms == XS_PERM_NONE    ? 'n'
                 : p[i].perms == XS_PERM_READ  ? 'r'
                 : p[i].perms == XS_PERM_WRITE ? 'w'
                                               : 'b';
        sprintf(s + strlen(s), "%s%c%u", i ? "," : "", c, p[i].id);
    }
    free(p);
    return s;
}

#define CHECK_PERMS(path, want)                                                          \
    do {                                                                                 \
        char *p_ = xs_perms(path);                                                       \
        CHECK_STR(p_, want);                                                             \
        free(p_);                                                                        \
    } while (0)

static bool xs_exists(const char *path)
{
    char *v = xs_get(path);
    free(v);
    return v != NULL;
}

/* Writes the two-disk example (tools/xlsim/examples) for domain name, its
 * images and agent socket in dir. */
static const char *write_config_in(const char *dir, const char *name, const char *extra)
{
    char *tmpl = th_read_file(th_top_path("tools/xlsim/examples/two-disks.cfg.in"));
    if (!tmpl)
        return NULL;
    size_t cap = strlen(tmpl) * 2 + 4096, len = 0;
    char *out = calloc(1, cap);
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "@DIR@", 5)) {
            len += (size_t)snprintf(out + len, cap - len, "%s", dir);
            p += 5;
        } else if (!strncmp(p, "xlsim-demo", 10)) {
            len += (size_t)snprintf(out + len, cap - len, "%s", name);
            p += 10;
        } else {
            out[len++] = *p++;
        }
    }
    if (extra)
        snprintf(out + len, cap - len, "%s\n", extra);
    char file[256];
    snprintf(file, sizeof file, "%s.cfg", name);
    const char *path = th_path(file);
    bool ok = th_write_file(path, out);
    free(out);
    free(tmpl);
    return ok ? path : NULL;
}

static const char *write_config(const char *name, const char *extra)
{
    return write_config_in(th_tmpdir(), name, extra);
}

static bool make_images(const char *dir)
{
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/a.qcow2", dir);
    snprintf(b, sizeof b, "%s/b.qcow2", dir);
    return (mkdir(dir, 0700) == 0 || errno == EEXIST) &&
           th_runl(NULL, NULL, "qemu-img", "create", "-q", "-f", "qcow2", a, "64M",
                   (char *)NULL) == 0 &&
           th_runl(NULL, NULL, "qemu-img", "create", "-q", "-f", "qcow2", b, "32M",
                   (char *)NULL) == 0;
}

/* Creates a paused domain from the example; returns its domid or -1. */
static int create_paused_in(const char *dir, const char *name)
{
    const char *cfg = write_config_in(dir, name, NULL);
    if (!cfg || xlsim(NULL, NULL, "create", "-p", cfg) != 0)
        return -1;
    char *out = NULL;
    if (xlsim(&out, NULL, "domid", name, NULL) != 0)
        return -1;
    int domid = atoi(out);
    free(out);
    char path[64];
    snprintf(path, sizeof path, "/local/domain/%d/image/device-model-pid", domid);
    char *pid = xs_get(path);
    if (pid && n_dm_pids < MAX_DMS)
        dm_pids[n_dm_pids++] = atoi(pid);
    free(pid);
    return domid;
}

static int create_paused(const char *name)
{
    return create_paused_in(th_tmpdir(), name);
}

static pid_t dm_pid_of(int domid)
{
    char path[64];
    snprintf(path, sizeof path, "/local/domain/%d/image/device-model-pid", domid);
    char *s = xs_get(path);
    pid_t pid = s ? atoi(s) : -1;
    free(s);
    return pid;
}

static char *vm_uuid(int domid)
{
    char path[64];
    snprintf(path, sizeof path, "/local/domain/%d/vm", domid);
    char *vm = xs_get(path);
    char *uuid = vm && !strncmp(vm, "/vm/", 4) ? strdup(vm + 4) : NULL;
    free(vm);
    return uuid;
}

static const char *userdata_file(int domid, const char *uuid)
{
    char name[200];
    snprintf(name, sizeof name, "state/userdata-d.%d.%s.libxl-json", domid, uuid);
    return th_path(name);
}

static const char *qmp_path(int domid)
{
    char name[64];
    snprintf(name, sizeof name, "run/qmp-libxl-%d", domid);
    return th_path(name);
}

/* ------------------------------------------------------------------ tests */

static void check_disk_nodes(int domid, int devid, const char *vdev, const char *image,
                             const char *mode)
{
    char be[128], fe[128], lx[128], p[256], params[512], fe_s[128];
    snprintf(be, sizeof be, "/local/domain/0/backend/qdisk/%d/%d", domid, devid);
    snprintf(fe, sizeof fe, "/local/domain/%d/device/vbd/%d", domid, devid);
    snprintf(lx, sizeof lx, "/libxl/%d/device/vbd/%d", domid, devid);
    snprintf(params, sizeof params, "qcow2:%s", th_path(image));
    snprintf(fe_s, sizeof fe_s, "%d", domid);
    char owner_be[32], owner_fe[32];
    snprintf(owner_be, sizeof owner_be, "n0,r%d", domid);
    snprintf(owner_fe, sizeof owner_fe, "n%d,r0", domid);
#define K(dir, key) (snprintf(p, sizeof p, "%s/%s", dir, key), p)
    CHECK_XS(K(be, "params"), params);
    CHECK_XS(K(be, "frontend"), fe);
    CHECK_XS(K(be, "frontend-id"), fe_s);
    CHECK_XS(K(be, "online"), "1");
    CHECK_XS(K(be, "removable"), "0");
    CHECK_XS(K(be, "bootable"), "1");
    CHECK_XS(K(be, "dev"), vdev);
    CHECK_XS(K(be, "type"), "qdisk");
    CHECK_XS(K(be, "mode"), mode);
    CHECK_XS(K(be, "device-type"), "disk");
    CHECK_XS(K(be, "discard-enable"), mode[0] == 'w' ? "1" : "0");
    CHECK_XS(K(be, "state"), "4");
    CHECK_PERMS(be, owner_be);
    CHECK_PERMS(K(be, "params"), owner_be);
    CHECK_XS(K(fe, "backend"), be);
    CHECK_XS(K(fe, "backend-id"), "0");
    snprintf(fe_s, sizeof fe_s, "%d", devid);
    CHECK_XS(K(fe, "virtual-device"), fe_s);
    CHECK_XS(K(fe, "device-type"), "disk");
    CHECK_PERMS(fe, owner_fe);
    CHECK_PERMS(K(fe, "virtual-device"), owner_fe);
    /* libxl's trusted copy: what libxl_device_disk_list reads. */
    CHECK_XS(K(lx, "params"), params);
    CHECK_XS(K(lx, "frontend"), fe);
    CHECK_XS(K(lx, "backend"), be);
    CHECK_XS(K(lx, "dev"), vdev);
    CHECK_XS(K(lx, "state"), "1");
    CHECK_PERMS(lx, "n0");
#undef K
}

static void check_stored_config(int domid, const char *uuid, const char *name)
{
    const char *file = userdata_file(domid, uuid);
    struct stat st;
    REQUIRE(stat(file, &st) == 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    char *text = th_read_file(file);
    REQUIRE(text);
    CHECK_INT(st.st_size, (long long)strlen(text) + 1); /* libxl stores the NUL */
    snap_err err;
    yajl_val cfg = snap_json_parse(text, "libxl-json", &err);
    free(text);
    REQUIRE(cfg);
    yajl_val c_info = snap_json_get_object(cfg, "c_info");
    CHECK_STR(snap_json_get_string(c_info, "name"), name);
    CHECK_STR(snap_json_get_string(c_info, "uuid"), uuid);
    CHECK_STR(snap_json_get_string(c_info, "type"), "hvm");
    yajl_val disks = snap_json_get_array(cfg, "disks");
    CHECK_INT(snap_json_array_len(disks), 2);
    const char *vdevs[] = {"xvda", "xvdb"}, *images[] = {"a.qcow2", "b.qcow2"};
    for (size_t i = 0; i < 2 && i < snap_json_array_len(disks); i++) {
        yajl_val d = snap_json_array_at(disks, i);
        CHECK_STR(snap_json_get_string(d, "vdev"), vdevs[i]);
        CHECK_STR(snap_json_get_string(d, "pdev_path"), th_path(images[i]));
        CHECK_STR(snap_json_get_string(d, "format"), "qcow2");
        CHECK_STR(snap_json_get_string(d, "backend"), "qdisk");
    }
    yajl_val chans = snap_json_get_array(cfg, "channels");
    REQUIRE(snap_json_array_len(chans) == 1);
    yajl_val ch = snap_json_array_at(chans, 0);
    CHECK_STR(snap_json_get_string(ch, "name"), "org.qemu.guest_agent.0");
    long long devid = -1;
    CHECK(snap_json_get_int(ch, "devid", &devid) && devid == 1);
    yajl_tree_free(cfg);
}

static void check_qemu_disks(int domid)
{
    snap_qmp *qmp = NULL;
    snap_err err;
    REQUIRE(snap_qmp_connect(qmp_path(domid), 5000, &qmp, &err) == 0);
    snap_qmp_disks disks = {0};
    int rc = snap_qmp_query_disks(qmp, &disks, 5000, &err);
    snap_qmp_status st;
    CHECK(snap_qmp_query_status(qmp, &st, 5000, &err) == 0 && !st.running);
    snap_qmp_close(qmp);
    REQUIRE(rc == 0);
    const snap_qmp_disk *a = snap_qmp_disks_find(&disks, "xvda-qcow2");
    const snap_qmp_disk *b = snap_qmp_disks_find(&disks, "xvdb-qcow2");
    CHECK(a && b);
    if (a && b) {
        CHECK_STR(a->node_name, "xvda-qcow2");
        CHECK_STR(a->device, "");
        CHECK_STR(a->chain[0].file, th_path("a.qcow2"));
        CHECK_STR(a->chain[0].format, "qcow2");
        CHECK(!a->read_only);
        CHECK_STR(b->chain[0].file, th_path("b.qcow2"));
        CHECK(b->read_only);
    }
    snap_qmp_disks_free(&disks);
}

static bool socket_accepts(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_create_registers_like_libxl(void)
{
    int domid = create_paused("sim-a");
    REQUIRE(domid == 1);
    char *uuid = vm_uuid(domid);
    REQUIRE(uuid);
    char p[256];
    CHECK_XS("/local/domain/1/name", "sim-a");
    CHECK_XS("/local/domain/1/domid", "1");
    CHECK_PERMS("/local/domain/1", "n0,r1");
    CHECK_PERMS("/local/domain/1/control/shutdown", "n1");
    CHECK_XS("/local/domain/1/memory/target", "131072");
    CHECK_XS("/local/domain/1/cpu/0/availability", "online");
    snprintf(p, sizeof p, "/vm/%s/uuid", uuid);
    CHECK_XS(p, uuid);
    snprintf(p, sizeof p, "/vm/%s/name", uuid);
    CHECK_XS(p, "sim-a");
    CHECK_XS("/libxl/1/type", "hvm");
    CHECK_XS("/libxl/1/dm-version", "qemu_xen");
    CHECK_XS("/local/domain/0/device-model/1/state", "running");
    pid_t pid = dm_pid_of(domid);
    CHECK(pid > 0 && pid_running(pid));
    check_disk_nodes(domid, 51712, "xvda", "a.qcow2", "w");
    check_disk_nodes(domid, 51728, "xvdb", "b.qcow2", "r");
    /* The agent channel: a console served by QEMU, devid 1. */
    CHECK_XS("/local/domain/0/backend/console/1/1/name", "org.qemu.guest_agent.0");
    CHECK_XS("/local/domain/0/backend/console/1/1/connection", "socket");
    CHECK_XS("/local/domain/0/backend/console/1/1/path", th_path("qga.sock"));
    CHECK_XS("/local/domain/1/device/console/1/output", "chardev:libxl-channel1");
    CHECK_PERMS("/local/domain/1/device/console/1/name", "n0,r1");
    CHECK(socket_accepts(th_path("qga.sock")));
    check_stored_config(domid, uuid, "sim-a");
    check_qemu_disks(domid);
    free(uuid);
}

static void test_list_pause_unpause(void)
{
    char *out = NULL;
    REQUIRE(xlsim(&out, NULL, "list", NULL, NULL) == 0);
    CHECK_CONTAINS(out, "Name                                        ID   Mem VCPUs");
    CHECK_CONTAINS(
        out, "sim-a                                        1   128     1     --p---");
    free(out);
    CHECK_INT(xlsim(NULL, NULL, "unpause", "sim-a", NULL), 0);
    REQUIRE(xlsim(&out, NULL, "list", NULL, NULL) == 0);
    CHECK_CONTAINS(
        out, "sim-a                                        1   128     1     r-----");
    free(out);
    CHECK_INT(xlsim(NULL, NULL, "pause", "1", NULL), 0);
    snap_qmp *qmp = NULL;
    snap_err err;
    snap_qmp_status st = {.running = true};
    REQUIRE(snap_qmp_connect(qmp_path(1), 5000, &qmp, &err) == 0);
    CHECK(snap_qmp_query_status(qmp, &st, 5000, &err) == 0);
    snap_qmp_close(qmp);
    CHECK(!st.running);
    CHECK_STR(st.status, "paused");
}

static void test_domids_lowest_free_and_names_unique(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", th_path("b"));
    REQUIRE(make_images(dir));
    int second = create_paused_in(dir, "sim-b");
    CHECK_INT(second, 2);
    /* Same name again: refused, and nothing of it is left behind. */
    const char *cfg = write_config_in(dir, "sim-b", NULL);
    char *err = NULL;
    CHECK_INT(xlsim(NULL, &err, "create", "-p", cfg), 1);
    CHECK_CONTAINS(err, "Domain with name \"sim-b\" already exists");
    free(err);
    CHECK(!xs_exists("/local/domain/3"));
    CHECK_INT(xlsim(NULL, NULL, "destroy", "sim-b", NULL), 0);
}

static void test_destroy_removes_everything(void)
{
    pid_t pid = dm_pid_of(1);
    char *uuid = vm_uuid(1);
    REQUIRE(pid > 0 && uuid);
    char vm[128];
    snprintf(vm, sizeof vm, "/vm/%s", uuid);
    CHECK_INT(xlsim(NULL, NULL, "destroy", "sim-a", NULL), 0);
    CHECK(!pid_running(pid)); /* the process is gone, not just told to quit */
    CHECK(!xs_exists("/local/domain/1"));
    CHECK(!xs_exists("/local/domain/0/backend/qdisk/1"));
    CHECK(!xs_exists("/local/domain/0/backend/console/1"));
    CHECK(!xs_exists("/local/domain/0/device-model/1"));
    CHECK(!xs_exists("/libxl/1"));
    CHECK(!xs_exists(vm));
    CHECK(access(userdata_file(1, uuid), F_OK) != 0);
    CHECK(access(qmp_path(1), F_OK) != 0);
    /* QEMU released its image locks: qemu-img may write the image now. */
    CHECK_INT(th_runl(NULL, NULL, "qemu-img", "snapshot", "-c", "after-destroy",
                      th_path("a.qcow2"), (char *)NULL),
              0);
    /* The freed domid is reused. */
    CHECK_INT(create_paused("sim-c"), 1);
    CHECK_INT(xlsim(NULL, NULL, "destroy", "1", NULL), 0);
    free(uuid);
}

/* A failed create leaves no domain, no stored config and no sockets. */
static void check_nothing_left(void)
{
    CHECK(!xs_exists("/local/domain/1"));
    CHECK(!xs_exists("/libxl/1"));
    CHECK(!xs_exists("/local/domain/0/backend/qdisk/1"));
    char *out = NULL;
    th_runl(&out, NULL, "ls", th_path("state"), th_path("run"), (char *)NULL);
    CHECK(!out || !strstr(out, "userdata-d."));
    CHECK(!out || !strstr(out, "qmp-libxl-"));
    free(out);
}

static void test_errors(void)
{
    char *err = NULL;
    CHECK_INT(xlsim(NULL, &err, "destroy", "no-such-domain", NULL), 1);
    CHECK_CONTAINS(err, "no-such-domain is an invalid domain identifier");
    free(err);
    CHECK_INT(xlsim(NULL, NULL, "pause", "42", NULL), 1);
    CHECK_INT(xlsim(NULL, NULL, "frobnicate", NULL, NULL), 2);
    /* Syntax error: libxlutil's report reaches the user. */
    th_write_file(th_path("bad.cfg"), "name = \"x\"\nmemory = = 3\n");
    CHECK_INT(xlsim(NULL, &err, "create", th_path("bad.cfg"), NULL), 1);
    CHECK_CONTAINS(err, "bad.cfg");
    CHECK_CONTAINS(err, "syntax error");
    free(err);
    /* A kernel that does not exist. */
    const char *cfg = write_config("sim-nokernel", "kernel = \"/nonexistent/vmlinux\"");
    CHECK_INT(xlsim(NULL, &err, "create", cfg, NULL), 1);
    CHECK_CONTAINS(err, "kernel /nonexistent/vmlinux: No such file or directory");
    free(err);
    check_nothing_left();
    /* An image that does not exist: QEMU's own words, then a full cleanup. */
    unlink(th_path("b.qcow2"));
    cfg = write_config("sim-noimage", NULL);
    CHECK_INT(xlsim(NULL, &err, "create", "-p", cfg), 1);
    CHECK_CONTAINS(err, "Could not open");
    CHECK_CONTAINS(err, "b.qcow2");
    free(err);
    check_nothing_left();
    /* Disks only through QEMU: phy is refused with the disk named. */
    th_write_file(th_path("phy.cfg"), "name = \"p\"\ntype = \"hvm\"\n"
                                      "disk = [ 'format=raw, vdev=xvda, access=rw, "
                                      "backendtype=phy, target=/dev/null' ]\n");
    CHECK_INT(xlsim(NULL, &err, "create", th_path("phy.cfg"), NULL), 1);
    CHECK_CONTAINS(err, "disk xvda: backendtype phy");
    free(err);
}

static void test_dry_run_names_nodes_like_xen_block(void)
{
    const char *cfg = write_config("sim-dry", NULL);
    char *out = NULL;
    REQUIRE(xlsim(&out, NULL, "create", "-n", cfg) == 0);
    CHECK_CONTAINS(out, "node-name=xvda-qcow2");
    CHECK_CONTAINS(out, "-device virtio-blk-pci,drive=xvdb-qcow2,id=xvdb");
    CHECK_CONTAINS(out, "-chardev socket,id=libxl-channel1,path=");
    CHECK_CONTAINS(out, "name=org.qemu.guest_agent.0");
    CHECK_CONTAINS(out, "-accel tcg,thread=multi");
    free(out);
    CHECK(!xs_exists("/local/domain/1"));
}

int main(void)
{
    th_plan(6);
    setenv("XLSNAP_XEN_STATEDIR", th_path("state"), 1);
    setenv("XLSNAP_XEN_RUNDIR", th_path("run"), 1);
    if (th_start_xenstored(NULL) < 0 || !make_images(th_tmpdir()))
        return th_finish();
    atexit(kill_leftover_dms);
    xs = xs_open(0);
    if (!xs) {
        th_fail_at(__FILE__, __LINE__, "xs_open: %s", strerror(errno));
        return th_finish();
    }
    TH_RUN(test_dry_run_names_nodes_like_xen_block);
    TH_RUN(test_create_registers_like_libxl);
    TH_RUN(test_list_pause_unpause);
    TH_RUN(test_domids_lowest_free_and_names_unique);
    TH_RUN(test_destroy_removes_everything);
    TH_RUN(test_errors);
    xs_close(xs);
    kill_leftover_dms();
    return th_finish();
}
