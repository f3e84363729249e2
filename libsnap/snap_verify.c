/*
 * snap_verify: a snapshot's filesystems checked at the snapshot point,
 * never writing to an image (libsnap.h says what is checked).
 *
 * Each disk is exported read-only as a raw file, by two server children:
 *   qemu-nbd --read-only [--load-snapshot=snapshot.name=N] on the image
 *     opened with force-share (an internal snapshot's qcow2 table entry, or
 *     an external snapshot's base, the overlay's backing file, which QEMU
 *     only reads: safe while the domain runs). qemu-nbd, not
 *     qemu-storage-daemon, because only qemu-nbd/qemu-img can load an
 *     internal snapshot read-only. It serves one client and exits after it.
 *   qemu-storage-daemon: an NBD client of that server with a FUSE export
 *     (writable=off) on a file, which e2fsck reads like a disk.
 * Where either is missing or /dev/fuse cannot be opened (Debian's
 * qemu-system-xen does not pull in qemu-storage-daemon, so a stock Xen dom0
 * has none), the snapshot point is copied instead: `qemu-img convert -U
 * [-l snapshot.name=N] -O raw` into the temporary directory (sparse; it
 * takes the space and time of the data the disk holds).
 * XLSNAP_VERIFY_ROUTE=fuse|copy forces one (tests).
 * Both are reaped, the export unmounted and the temporary directory
 * removed on every path out. A verification that was killed (SIGKILL, ^C:
 * the servers are in their own process groups) leaves them, its mount and
 * its directory, which names its owner's pid and its servers' pids: the
 * next verification removes them once that owner is dead. The result goes
 * into the record under the domain lock, which is held throughout (no
 * revert or delete can move the images meanwhile).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "snap_child.h"
#include "snap_lvm.h"
#include "snap_meta_io.h"
#include "snap_qsnap_identity.h"
#include "snap_session.h"
#include "snap_verify.h"

#define VERIFY_DEFAULT_TIMEOUT_MS 600000
#define EXPORT_READY_TIMEOUT_MS   30000
#define SERVER_STOP_GRACE_MS      5000
#define FUSE_SUPER_MAGIC          0x65735546
#define EXPORT_START_TRIES        3

void snap_verify_params_init(snap_verify_params *p)
{
    memset(p, 0, sizeof *p);
}

/* A QEMU option value with its commas doubled (malloc'd). */
static char *qemu_opt_escape(const char *s)
{
    size_t n = strlen(s), commas = 0;
    for (size_t i = 0; i < n; i++)
        commas += s[i] == ',';
    char *out = snap_xmalloc(n + commas + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        *o++ = s[i];
        if (s[i] == ',')
            *o++ = ',';
    }
    *o = 0;
    return out;
}

typedef enum vroute { ROUTE_FUSE, ROUTE_COPY } vroute;

/* One disk's export: the servers and the files in the work directory. */
typedef struct vexport {
    vroute route;
    const char *workdir;
    char *sock, *raw, *nbd_err, *qsd_err;
    snap_child_bg nbd, qsd;
} vexport;

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char *dirs = snap_xstrdup(path && *path ? path : "/bin:/usr/bin"), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(dirs, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char *cand = snap_xasprintf("%s/%s", d, prog);
        found = access(cand, X_OK) == 0;
        free(cand);
    }
    free(dirs);
    return found;
}

/* The FUSE export when everything it needs is there, else the copy. */
static vroute choose_route(xentoollog_logger *lg)
{
    const char *forced = getenv("XLSNAP_VERIFY_ROUTE");
    if (forced && !strcmp(forced, "copy"))
        return ROUTE_COPY;
    if (forced && !strcmp(forced, "fuse"))
        return ROUTE_FUSE;
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    const char *missing = fd < 0                            ? "/dev/fuse"
                          : !in_path("qemu-storage-daemon") ? "qemu-storage-daemon"
                          : !in_path("qemu-nbd")            ? "qemu-nbd"
                                                            : NULL;
    if (!missing)
        return ROUTE_FUSE;
    snap_log(lg, XTL_INFO, "no %s: copying each snapshot point with qemu-img convert",
             missing);
    return ROUTE_COPY;
}

static bool is_fuse_mounted(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == FUSE_SUPER_MAGIC;
}

/* A FUSE mount, live or with its daemon dead (ENOTCONN): detach it. */
static void detach_mount(const char *path)
{
    struct statfs sf;
    if (is_fuse_mounted(path) || (statfs(path, &sf) < 0 && errno == ENOTCONN))
        umount2(path, MNT_DETACH);
}

static const char *verify_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    return tmp && *tmp ? tmp : "/tmp";
}

/* Appends "pid\n" to dir/name (the owner, or a server started). */
static void note_pid(const char *dir, const char *name, pid_t pid)
{
    char *path = snap_xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dprintf(fd, "%ld\n", (long)pid);
        close(fd);
    }
    free(path);
}

/* The pids listed in dir/name (malloc'd, *n of them). */
static pid_t *read_pids(const char *dir, const char *name, size_t *n)
{
    char *path = snap_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    pid_t *v = NULL;
    long pid;
    *n = 0;
    while (f && fscanf(f, "%ld", &pid) == 1 && *n < 16) {
        v = snap_xrealloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = (pid_t)pid;
    }
    if (f)
        fclose(f);
    free(path);
    return v;
}

/* True when pid runs a program whose command line names dir (ours, not reused). */
static bool runs_in(pid_t pid, const char *dir)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (len <= 0)
        return false;
    for (ssize_t i = 0; i < len; i++)
        buf[i] = buf[i] ? buf[i] : ' ';
    buf[len] = 0;
    return strstr(buf, dir) != NULL;
}

/* Kills a dead verification's servers, detaches its mounts, removes dir. */
static void reap_stale_dir(const char *dir, xentoollog_logger *lg)
{
    size_t n = 0;
    pid_t *servers = read_pids(dir, "servers", &n);
    for (size_t i = 0; i < n; i++)
        if (servers[i] > 1 && runs_in(servers[i], dir)) {
            kill(-servers[i], SIGKILL);
            kill(servers[i], SIGKILL);
            for (int t = 0; t < 200 && runs_in(servers[i], dir); t++)
                usleep(10000);
        }
    free(servers);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = snap_xasprintf("%s/%s", dir, e->d_name);
        detach_mount(path);
        unlink(path);
        free(path);
    }
    if (d)
        closedir(d);
    if (rmdir(dir) == 0)
        snap_log(lg, XTL_WARN, "removed what a killed verification left behind: %s", dir);
}

/* Every work directory in $TMPDIR whose owner is dead. */
static void reap_stale_workdirs(xentoollog_logger *lg)
{
    const char *tmp = verify_tmpdir();
    DIR *d = opendir(tmp);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "xlsnap-verify.", 14))
            continue;
        char *dir = snap_xasprintf("%s/%s", tmp, e->d_name);
        size_t n = 0;
        pid_t *owner = read_pids(dir, "owner", &n);
        /* No owner yet: a run that is starting now. */
        if (n == 1 && owner[0] > 0 && kill(owner[0], 0) < 0 && errno == ESRCH)
            reap_stale_dir(dir, lg);
        free(owner);
        free(dir);
    }
    if (d)
        closedir(d);
}

static void vexport_paths(vexport *x, const char *workdir, size_t disk)
{
    memset(x, 0, sizeof *x);
    x->workdir = workdir;
    x->sock = snap_xasprintf("%s/d%zu.nbd", workdir, disk);
    x->raw = snap_xasprintf("%s/d%zu.raw", workdir, disk);
    x->nbd_err = snap_xasprintf("%s/d%zu.nbd.log", workdir, disk);
    x->qsd_err = snap_xasprintf("%s/d%zu.qsd.log", workdir, disk);
}

/* Stops both servers and removes every file (a stale FUSE mount included). */
static void vexport_close(vexport *x)
{
    snap_child_bg_stop(&x->qsd, SERVER_STOP_GRACE_MS);
    /* A daemon that had to be killed leaves its mount behind. */
    if (x->raw)
        detach_mount(x->raw);
    snap_child_bg_stop(&x->nbd, SERVER_STOP_GRACE_MS);
    char *files[] = {x->sock, x->raw, x->nbd_err, x->qsd_err};
    for (size_t i = 0; i < SNAP_N_OF(files); i++) {
        if (files[i])
            unlink(files[i]);
        free(files[i]);
    }
    memset(x, 0, sizeof *x);
}

/* Waits until ready() holds, failing when server exits or the time is up. */
static int wait_ready(snap_child_bg *server, bool (*ready)(const char *),
                      const char *path, uint64_t deadline, snap_err *err)
{
    for (;;) {
        if (ready(path))
            return 0;
        if (snap_child_bg_exited(server, err))
            return err->code;
        if (snap_deadline_poll_ms(deadline) == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT, "%s did not get ready in time",
                                server->what);
        usleep(20000);
    }
}

static bool is_socket(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int start_nbd(vexport *x, const snap_meta_disk *md, uint64_t deadline,
                     snap_err *err)
{
    struct stat st;
    /* QEMU's file driver takes regular files only: an LVM volume is a host_device. */
    bool blockdev = stat(md->base_path, &st) == 0 && S_ISBLK(st.st_mode);
    char *file = qemu_opt_escape(md->base_path);
    char *opts = snap_xasprintf("driver=%s,read-only=on,force-share=on,file.driver=%s,"
                                "file.filename=%s",
                                md->format, blockdev ? "host_device" : "file", file);
    char *sockarg = snap_xasprintf("--socket=%s", x->sock);
    char *load = NULL;
    const char *argv[8] = {"qemu-nbd", "--read-only", sockarg};
    size_t n = 3;
    if (md->method == SNAP_METHOD_INTERNAL) {
        char *name = qemu_opt_escape(md->qemu_snap_name);
        load = snap_xasprintf("--load-snapshot=snapshot.name=%s", name);
        free(name);
        argv[n++] = load;
    }
    argv[n++] = "--image-opts";
    argv[n++] = opts;
    int rc = snap_child_bg_start(&x->nbd, "qemu-nbd", argv, x->nbd_err, err);
    if (!rc)
        note_pid(x->workdir, "servers", x->nbd.pid);
    if (!rc)
        rc = wait_ready(&x->nbd, is_socket, x->sock, deadline, err);
    free(file);
    free(opts);
    free(sockarg);
    free(load);
    return rc;
}

static int start_fuse_export(vexport *x, uint64_t deadline, snap_err *err)
{
    char *sock = qemu_opt_escape(x->sock), *raw = qemu_opt_escape(x->raw);
    char *bdev = snap_xasprintf("driver=nbd,node-name=snap,server.type=unix,"
                                "server.path=%s,read-only=on",
                                sock);
    char *exp = snap_xasprintf("type=fuse,id=snap,node-name=snap,mountpoint=%s,"
                               "writable=off",
                               raw);
    const char *argv[] = {
        "qemu-storage-daemon", "--blockdev", bdev, "--export", exp, NULL};
    int rc = snap_child_bg_start(&x->qsd, "qemu-storage-daemon", argv, x->qsd_err, err);
    if (!rc)
        note_pid(x->workdir, "servers", x->qsd.pid);
    if (!rc)
        rc = wait_ready(&x->qsd, is_fuse_mounted, x->raw, deadline, err);
    free(sock);
    free(raw);
    free(bdev);
    free(exp);
    return rc;
}

/*
 * Exports disk md's snapshot point as x->raw. The NBD socket appears a
 * moment before qemu-nbd listens on it: a daemon that found it refusing is
 * started again.
 */
/* The copy route: qemu-img convert -U of the snapshot point into x->raw. */
static int copy_out(vexport *x, const snap_meta_disk *md, uint64_t deadline,
                    snap_err *err)
{
    char *load = NULL;
    const char *argv[12] = {"qemu-img", "convert", "-U", "-f", md->format, "-O", "raw"};
    size_t n = 7;
    if (md->method == SNAP_METHOD_INTERNAL) {
        load = snap_xasprintf("snapshot.name=%s", md->qemu_snap_name);
        argv[n++] = "-l";
        argv[n++] = load;
    }
    argv[n++] = md->base_path;
    argv[n++] = x->raw;
    int ms = snap_deadline_poll_ms(deadline);
    snap_child_opts co = {.timeout_ms = ms == 0 ? 1 : ms};
    int rc = snap_child_run("qemu-img", argv, &co, NULL, err);
    free(load);
    return rc;
}

static int vexport_open(vexport *x, const snap_meta_disk *md, uint64_t deadline,
                        snap_err *err)
{
    if (x->route == ROUTE_COPY)
        return copy_out(x, md, deadline, err);
    int fd = open(x->raw, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create %s", x->raw);
    close(fd);
    uint64_t ready_by = snap_deadline_in(EXPORT_READY_TIMEOUT_MS);
    if (ready_by > deadline)
        ready_by = deadline;
    int rc = start_nbd(x, md, ready_by, err);
    for (int i = 0; !rc && i < EXPORT_START_TRIES; i++) {
        rc = start_fuse_export(x, ready_by, err);
        if (!rc || !strstr(err->msg, "Connection refused"))
            break;
        snap_child_bg_stop(&x->qsd, SERVER_STOP_GRACE_MS);
        usleep(50000);
    }
    return rc;
}

/* An LVM snapshot volume that is there and holds its data (not merged, not invalid). */
static int check_lvm_point(const snap_meta_disk *md, snap_err *err)
{
    if (md->lvm_merged)
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "disk %s: its classic snapshot volume %s was merged into %s "
                            "by a revert and no longer exists",
                            md->vdev, md->lvm_snapshot, md->lvm_volume);
    snap_lvm_opts o = {0};
    snap_lv lv;
    int rc = snap_lvm_lookup(&o, md->lvm_snapshot, &lv, err);
    if (rc)
        return snap_err_context(err, "disk %s: snapshot volume", md->vdev);
    if (lv.invalid)
        rc = snap_err_set(
            err, SNAP_ERROR_IO,
            "disk %s: LVM invalidated the classic snapshot %s (its "
            "copy-on-write space filled up, lv_attr %s): its content is lost",
            md->vdev, md->lvm_snapshot, lv.attr);
    snap_lv_dispose(&lv);
    return rc;
}

/* Refuses a disk whose snapshot point is gone: a clear error, nothing started. */
static int check_snapshot_point(const snap_meta_disk *md, snap_err *err)
{
    struct stat st;
    /* an LVM disk's base_path is the live volume, not the snapshot */
    if (snap_method_is_lvm(md->method))
        return check_lvm_point(md, err);
    if (stat(md->base_path, &st) < 0)
        return snap_err_errno(err, errno == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_IO,
                              errno, "disk %s: image %s", md->vdev, md->base_path);
    if (md->method != SNAP_METHOD_INTERNAL)
        return 0;
    snap_qimg_info info;
    int rc = snap_qimg_info_get(NULL, md->base_path, SNAP_QIMG_FORCE_SHARE, &info, err);
    if (rc)
        return snap_err_context(err, "disk %s", md->vdev);
    const snap_qimg_snapshot *s = snap_qimg_find_snapshot(&info, md->qemu_snap_name);
    if (!s)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND,
                          "disk %s: internal snapshot '%s' is not in %s's snapshot table",
                          md->vdev, md->qemu_snap_name, md->base_path);
    else {
        snap_meta_qsnap_stamp now = snap_qsnap_stamp_of_qimg(s);
        rc = snap_qsnap_check(md, s->id, &now, "refusing to verify it", err);
    }
    snap_qimg_info_dispose(&info);
    return rc;
}

/*
 * Makes the block device at path read-only in the kernel (BLKROSET): no
 * write through it can reach the volume, whoever would issue it.
 */
static int set_device_read_only(const char *path, snap_err *err)
{
    int one = 1, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ioctl(fd, BLKROSET, &one) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return snap_err_errno(err, SNAP_ERROR_IO, e,
                              "cannot make %s read-only (BLKROSET)", path);
    }
    close(fd);
    return 0;
}

/*
 * An LVM snapshot volume is a block device: its filesystems are checked
 * there, opened read-only. One not active (thin snapshots skip activation)
 * is activated for the check, made read-only in the kernel before anything
 * reads it (device-mapper cannot load a thin table read-only), and
 * deactivated after it, whatever the check found.
 */
static int verify_lvm_disk(snap_ctx *ctx, const snap_meta_disk *md, uint64_t deadline,
                           snap_verification *v, snap_err *err)
{
    snap_lvm_opts o = {.lg = ctx->lg};
    snap_lv lv;
    int rc = snap_lvm_lookup(&o, md->lvm_snapshot, &lv, err);
    if (rc)
        return snap_err_context(err, "disk %s", md->vdev);
    bool activate = !lv.active;
    snap_log(ctx->lg, XTL_INFO, "verifying disk %s (LVM snapshot volume %s%s)", md->vdev,
             md->lvm_snapshot, activate ? ", activated read-only for it" : "");
    char *path = lv.path && *lv.path ? snap_xstrdup(lv.path)
                                     : snap_xasprintf("/dev/%s/%s", lv.vg, lv.name);
    if (activate)
        rc = snap_lvm_activate_transient(&o, lv.vg, lv.name, err);
    if (activate && !rc)
        rc = set_device_read_only(path, err);
    if (!rc)
        rc = snap_vfy_check_raw(path, md->vdev, deadline, ctx->lg, v, err);
    snap_err derr;
    if (activate && snap_lvm_deactivate(&o, lv.vg, lv.name, &derr)) {
        if (!rc)
            *err = derr;
        else
            snap_log(ctx->lg, XTL_WARN, "%s", derr.msg);
        rc = rc ? rc : derr.code;
    }
    free(path);
    snap_lv_dispose(&lv);
    return rc ? snap_err_context(err, "disk %s", md->vdev) : 0;
}

static int verify_disk(snap_ctx *ctx, const snap_meta_disk *md, const char *workdir,
                       size_t i, uint64_t deadline, snap_verification *v, snap_err *err)
{
    if (snap_method_is_lvm(md->method))
        return verify_lvm_disk(ctx, md, deadline, v, err);
    vexport x;
    vexport_paths(&x, workdir, i);
    x.route = choose_route(ctx->lg);
    snap_log(ctx->lg, XTL_INFO, "verifying disk %s (%s%s%s) via %s", md->vdev,
             md->base_path, md->method == SNAP_METHOD_INTERNAL ? " @ " : "",
             md->method == SNAP_METHOD_INTERNAL ? md->qemu_snap_name : "",
             x.route == ROUTE_COPY ? "a qemu-img copy" : "a FUSE export");
    int rc = vexport_open(&x, md, deadline, err);
    if (!rc)
        snap_test_hook_pause("XLSNAP_TEST_PAUSE_IN_VERIFY", "snapshot point exported");
    if (rc)
        snap_err_context(err, "disk %s: %s %s read-only", md->vdev,
                         x.route == ROUTE_COPY ? "copying" : "exporting", md->base_path);
    else
        rc = snap_vfy_check_raw(x.raw, md->vdev, deadline, ctx->lg, v, err);
    vexport_close(&x);
    return rc;
}

/* Checks every disk of m into a new verification (*out on success). */
static int verify_disks(snap_ctx *ctx, const snap_meta *m, int timeout_ms,
                        snap_verification **out, snap_err *err)
{
    for (size_t i = 0; i < m->n_disks; i++) {
        int rc = check_snapshot_point(&m->disks[i], err);
        if (rc)
            return rc;
    }
    reap_stale_workdirs(ctx->lg);
    char *workdir = snap_xasprintf("%s/xlsnap-verify.XXXXXX", verify_tmpdir());
    if (!mkdtemp(workdir)) {
        int rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create %s", workdir);
        free(workdir);
        return rc;
    }
    note_pid(workdir, "owner", getpid());
    uint64_t deadline = snap_deadline_in(timeout_ms);
    snap_verification *v = snap_xcalloc(1, sizeof *v);
    int rc = 0;
    for (size_t i = 0; !rc && i < m->n_disks; i++)
        rc = verify_disk(ctx, &m->disks[i], workdir, i, deadline, v, err);
    char *owner = snap_xasprintf("%s/owner", workdir);
    char *servers = snap_xasprintf("%s/servers", workdir);
    unlink(owner);
    unlink(servers);
    free(owner);
    free(servers);
    if (rmdir(workdir) < 0)
        snap_log(ctx->lg, XTL_WARN, "cannot remove %s: %s", workdir, strerror(errno));
    free(workdir);
    if (rc) {
        snap_verification_free(v);
        return rc;
    }
    v->time_sec = (int64_t)time(NULL);
    snap_vfy_conclude(v);
    *out = v;
    return 0;
}

static int verify_locked(snap_ctx *ctx, snap_session *s, const char *name,
                         const snap_verify_params *p, snap_info **info_out, snap_err *err)
{
    snap_meta m;
    snap_verification *v = NULL;
    int rc = snap_meta_load_hinted(&s->st, name, &m, err);
    if (rc)
        return rc;
    rc = verify_disks(
        ctx, &m, p->timeout_ms > 0 ? p->timeout_ms : VERIFY_DEFAULT_TIMEOUT_MS, &v, err);
    if (rc) {
        snap_err_context(err, "snapshot '%s'", name);
    } else {
        snap_verification_free(m.verification);
        m.verification = v;
        rc = snap_meta_save(&s->st, &m, false, err);
    }
    if (!rc && info_out) {
        char *current = NULL;
        *info_out = snap_info_from_meta(&m);
        if (!snap_meta_get_current(&s->st, &current, err) && current)
            (*info_out)->current = !strcmp(current, m.name);
        free(current);
    }
    snap_meta_dispose(&m);
    return rc;
}

int snap_verify(snap_ctx *ctx, const char *domain, const char *name,
                const snap_verify_params *params, snap_info **info_out)
{
    snap_verify_params defaults;
    snap_err *err = &ctx->err;
    snap_session s;
    snap_err_clear(err);
    if (info_out)
        *info_out = NULL;
    if (!params) {
        snap_verify_params_init(&defaults);
        params = &defaults;
    }
    if (!domain || !name) {
        snap_err_set(err, SNAP_ERROR_INVAL, "snap_verify: domain and name needed");
        return snap_ctx_fail(ctx, err);
    }
    int rc = snap_session_open(ctx, domain, 0, &s, err);
    if (!rc)
        rc = verify_locked(ctx, &s, name, params, info_out, err);
    snap_session_close(&s);
    return rc ? snap_ctx_fail(ctx, err) : 0;
}
