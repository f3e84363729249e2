/*
 * The simulated domain itself: a QEMU whose command line mirrors what libxl
 * gives the device model (QMP sockets, channel chardevs, -nodefaults,
 * -no-user-config) and whose disks carry the node-names Xen's xen-block
 * backend uses (<vdev>-<driver>), so QMP clients address them the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xlsim.h"

#define START_TIMEOUT_MS 30000
#define LOG_TAIL_BYTES   2000

void sim_env_init(sim_env *env)
{
    const char *s;
    env->statedir = (s = getenv(SIM_ENV_STATEDIR)) && *s ? s : SIM_DEFAULT_STATEDIR;
    env->rundir = (s = getenv(SIM_ENV_RUNDIR)) && *s ? s : SIM_DEFAULT_RUNDIR;
    env->qemu = (s = getenv(SIM_ENV_QEMU)) && *s ? s : "qemu-system-x86_64";
}

char *sim_qmp_path(const sim_env *env, uint32_t domid)
{
    return snap_xasprintf("%s/qmp-libxl-%u", env->rundir, domid);
}

static char *log_path(const sim_env *env, const libxl_domain_config *d)
{
    return snap_xasprintf("%s/qemu-dm-%s.log", env->rundir, d->c_info.name);
}

/* KVM only when /dev/kvm is writable AND the CPU shows vmx/svm (test-guest.md). */
static bool kvm_usable(void)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0)
        return false;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found =
            !strncmp(line, "flags", 5) && (strstr(line, " vmx") || strstr(line, " svm"));
    fclose(f);
    return found;
}

/* ---------------------------------------------------------------- argv */

typedef struct argv_builder {
    char **v;
    size_t n, cap;
} argv_builder;

static void arg(argv_builder *a, char *owned)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = snap_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = owned;
    a->v[a->n] = NULL;
}

static void args2(argv_builder *a, const char *opt, char *owned_value)
{
    arg(a, snap_xstrdup(opt));
    arg(a, owned_value);
}

/* One qdisk as xen-block would open it: file node + format node + device. */
static void disk_args(argv_builder *a, const libxl_device_disk *disk)
{
    const char *drv = sim_disk_qemu_driver(disk->format);
    const char *ro = disk->readwrite ? "" : ",read-only=on";
    const char *discard = libxl_defbool_val(disk->discard_enable) ? ",discard=unmap" : "";
    /* QEMU's option syntax doubles a comma inside a value. */
    size_t len = strlen(disk->pdev_path);
    char *path = snap_xmalloc(2 * len + 1), *q = path;
    for (const char *p = disk->pdev_path; *p; p++)
        if ((*q++ = *p) == ',')
            *q++ = ',';
    *q = '\0';
    args2(a, "-blockdev",
          snap_xasprintf("driver=file,filename=%s,node-name=%s-file%s%s", path,
                         disk->vdev, ro, discard));
    args2(a, "-blockdev",
          snap_xasprintf("driver=%s,file=%s-file,node-name=%s-%s%s%s", drv, disk->vdev,
                         disk->vdev, drv, ro, discard));
    args2(
        a, "-device",
        snap_xasprintf("virtio-blk-pci,drive=%s-%s,id=%s", disk->vdev, drv, disk->vdev));
    free(path);
}

/* Channels: libxl's chardevs (libxl-channel<devid>) on a virtio-serial bus. */
static void channel_args(argv_builder *a, const libxl_domain_config *d)
{
    if (!d->num_channels)
        return;
    args2(a, "-device", snap_xstrdup("virtio-serial-pci,id=xlsim-serial0"));
    for (int i = 0; i < d->num_channels; i++) {
        const libxl_device_channel *c = &d->channels[i];
        if (c->connection == LIBXL_CHANNEL_CONNECTION_SOCKET)
            args2(a, "-chardev",
                  snap_xasprintf("socket,id=libxl-channel%d,path=%s,server=on,wait=off",
                                 c->devid, c->u.socket.path));
        else
            args2(a, "-chardev", snap_xasprintf("pty,id=libxl-channel%d", c->devid));
        args2(a, "-device",
              snap_xasprintf("virtserialport,bus=xlsim-serial0.0,chardev=libxl-channel%d,"
                             "name=%s",
                             c->devid, c->name));
    }
}

static int count_online(const libxl_domain_build_info *b)
{
    int n = 0;
    for (int i = 0; i < b->max_vcpus; i++)
        n += libxl_bitmap_test(&b->avail_vcpus, i) ? 1 : 0;
    return n ? n : 1;
}

static void machine_args(argv_builder *a, const libxl_domain_config *d, bool paused,
                         bool incoming)
{
    const libxl_domain_build_info *b = &d->b_info;
    if (kvm_usable()) {
        args2(a, "-accel", snap_xstrdup("kvm"));
        args2(a, "-cpu", snap_xstrdup("host"));
    } else {
        args2(a, "-accel", snap_xstrdup("tcg,thread=multi"));
        args2(a, "-cpu", snap_xstrdup("max"));
    }
    args2(a, "-m", snap_xasprintf("%" PRIu64 "M", (b->target_memkb + 1023) / 1024));
    /*
     * Xen populates a domain's memory when it creates it. Without this, the
     * first memory checkpoint is what touches the never-used RAM (QEMU reads
     * every page for its zero check): on hosts without a shared zero page that
     * allocates and clears ~400 MiB while the guest is paused (10x slower).
     */
    arg(a, snap_xstrdup("-mem-prealloc"));
    args2(a, "-smp", snap_xasprintf("%d,maxcpus=%d", count_online(b), b->max_vcpus));
    if (b->kernel)
        args2(a, "-kernel", snap_xstrdup(b->kernel));
    if (b->ramdisk)
        args2(a, "-initrd", snap_xstrdup(b->ramdisk));
    if (b->cmdline)
        args2(a, "-append", snap_xstrdup(b->cmdline));
    /* Xen keeps a powered-off domain only when asked to (on_poweroff=preserve). */
    if (d->on_poweroff == LIBXL_ACTION_ON_SHUTDOWN_PRESERVE)
        arg(a, snap_xstrdup("-no-shutdown"));
    if (d->on_reboot == LIBXL_ACTION_ON_SHUTDOWN_DESTROY)
        arg(a, snap_xstrdup("-no-reboot"));
    if (paused)
        arg(a, snap_xstrdup("-S"));
    /* A restore: the state arrives later through migrate-incoming (xl restore). */
    if (incoming)
        args2(a, "-incoming", snap_xstrdup("defer"));
}

/* libxl's order: -chroot with the display options, -runas last. */
static void restrict_args(argv_builder *a, const sim_env *env, uint32_t domid,
                          const libxl_domain_config *d)
{
    char *runas = NULL;
    snap_err ignored; /* sim_qemu_start checks the user before building argv */
    if (sim_dm_restricted(&d->b_info))
        args2(a, "-chroot", sim_dm_chroot(env, domid));
    if (sim_dm_runas(&d->b_info, domid, &runas, &ignored) == 0 && runas)
        args2(a, "-runas", runas);
}

char **sim_qemu_argv(const sim_env *env, uint32_t domid, const libxl_domain_config *d,
                     bool paused, bool incoming)
{
    argv_builder a = {0};
    arg(&a, snap_xstrdup(env->qemu));
    args2(&a, "-name", snap_xstrdup(d->c_info.name));
    /* libxl opens a dm_restrict QEMU's QMP socket itself and passes it (fd 3 here). */
    if (sim_dm_restricted(&d->b_info))
        args2(&a, "-chardev",
              snap_xasprintf("socket,id=libxl-cmd,fd=%d,server=on,wait=off",
                             SIM_DM_QMP_FD));
    else
        args2(&a, "-chardev",
              snap_xasprintf("socket,id=libxl-cmd,path=%s/qmp-libxl-%u,server=on,"
                             "wait=off",
                             env->rundir, domid));
    args2(&a, "-mon", snap_xstrdup("chardev=libxl-cmd,mode=control"));
    args2(&a, "-chardev",
          snap_xasprintf("socket,id=libxenstat-cmd,path=%s/qmp-libxenstat-%u,server=on,"
                         "wait=off",
                         env->rundir, domid));
    args2(&a, "-mon", snap_xstrdup("chardev=libxenstat-cmd,mode=control"));
    arg(&a, snap_xstrdup("-nodefaults"));
    arg(&a, snap_xstrdup("-no-user-config"));
    args2(&a, "-display", snap_xstrdup("none"));
    args2(&a, "-serial", snap_xasprintf("file:%s/console-%u.log", env->rundir, domid));
    args2(&a, "-pidfile", snap_xasprintf("%s/qemu-dm-%u.pid", env->rundir, domid));
    machine_args(&a, d, paused, incoming);
    for (int i = 0; i < d->num_disks; i++)
        disk_args(&a, &d->disks[i]);
    channel_args(&a, d);
    restrict_args(&a, env, domid, d);
    return a.v;
}

void sim_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

/* ---------------------------------------------------------------- processes */

bool sim_pid_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* "pid (comm) S ...": the state follows the last ')'. */
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/*
 * True if pid's command line names this domain's libxenstat QMP socket
 * (guards against pid reuse; the libxl one may be a passed fd).
 */
static bool pid_is_our_qemu(pid_t pid, const char *qmp_path)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char *arg = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getdelim(&arg, &cap, '\0', f) > 0)
        found = strstr(arg, qmp_path) != NULL;
    free(arg);
    fclose(f);
    return found;
}

/* The end of QEMU's log, for error messages. */
static char *log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return snap_xstrdup("(no output)");
    char buf[LOG_TAIL_BYTES + 1];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0, SEEK_SET);
    size_t n = fread(buf, 1, LOG_TAIL_BYTES, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return snap_xstrdup(n ? buf : "(no output)");
}

/*
 * In the child: own session, stdin from /dev/null, output to the log, exec.
 * qmp_fd >= 0: the pre-opened QMP socket, passed as SIM_DM_QMP_FD.
 */
static void exec_qemu(char **argv, const char *logfile, bool restricted, int qmp_fd)
{
    setsid();
    int in = open("/dev/null", O_RDONLY);
    int out = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(127);
    if (qmp_fd >= 0 && dup2(qmp_fd, SIM_DM_QMP_FD) < 0)
        _exit(127);
    close_range(qmp_fd >= 0 ? SIM_DM_QMP_FD + 1 : 3, ~0u, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (restricted && sim_dm_preexec_restrict() < 0)
        _exit(127);
    execvp(argv[0], argv);
    dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Waits until QEMU's main loop answers QMP (machine set up), or it exits. */
static int wait_started(pid_t pid, const char *qmp, const char *logfile, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(START_TIMEOUT_MS);
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            char *tail = log_tail(logfile);
            int rc = snap_err_set(
                err, SNAP_ERROR_PEER, "QEMU [%d] %s %d at start: %s", (int)pid,
                WIFEXITED(status) ? "exited with status" : "was killed by signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
            free(tail);
            return rc;
        }
        snap_err probe;
        if (sim_qmp_run(qmp, "query-status", NULL, 500, &probe) == 0)
            return 0;
        if (snap_deadline_poll_ms(deadline) == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                "QEMU [%d] did not answer on %s within %d s: %s",
                                (int)pid, qmp, START_TIMEOUT_MS / 1000, probe.msg);
        usleep(50 * 1000);
    }
}

/* A restricted QEMU's user and chroot, checked and made before it starts. */
static int prepare_restriction(const sim_env *env, uint32_t domid,
                               const libxl_domain_config *d, snap_err *err)
{
    char *runas = NULL;
    int rc = sim_dm_runas(&d->b_info, domid, &runas, err);
    free(runas);
    if (!rc && sim_dm_restricted(&d->b_info))
        rc = sim_dm_make_chroot(env, domid, err);
    return rc;
}

int sim_qemu_start(const sim_env *env, uint32_t domid, const libxl_domain_config *d,
                   bool paused, bool incoming, pid_t *pid_out, snap_err *err)
{
    int prc = prepare_restriction(env, domid, d, err);
    if (prc)
        return snap_err_context(err, "device model of domain %u", domid);
    char **argv = sim_qemu_argv(env, domid, d, paused, incoming);
    char *qmp = sim_qmp_path(env, domid);
    char *logfile = log_path(env, d);
    unlink(qmp); /* a stale socket from an earlier domain with this domid */
    int qmp_fd = -1, rc = 0;
    if (sim_dm_restricted(&d->b_info))
        rc = sim_dm_pre_open_qmp(qmp, &qmp_fd, err);
    pid_t pid = rc ? -1 : fork();
    if (!rc && pid < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "fork");
    else if (pid == 0)
        exec_qemu(argv, logfile, sim_dm_restricted(&d->b_info), qmp_fd);
    if (qmp_fd >= 0)
        close(qmp_fd); /* QEMU has it */
    if (!rc)
        rc = wait_started(pid, qmp, logfile, err);
    if (rc && pid > 0 && sim_pid_alive(pid)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (!rc)
        *pid_out = pid;
    sim_argv_free(argv);
    free(qmp);
    free(logfile);
    return rc ? snap_err_context(err, "device model of domain %u", domid) : 0;
}

static bool wait_gone(pid_t pid, int timeout_ms)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    while (sim_pid_alive(pid)) {
        if (snap_deadline_poll_ms(deadline) == 0)
            return false;
        /* Reap it if it happens to be our child (create's cleanup path). */
        waitpid(pid, NULL, WNOHANG);
        usleep(20 * 1000);
    }
    return true;
}

int sim_qemu_stop(const sim_env *env, uint32_t domid, pid_t pid, int timeout_ms,
                  snap_err *err)
{
    char *qmp = sim_qmp_path(env, domid);
    int rc = 0;
    char *xenstat = snap_xasprintf("%s/qmp-libxenstat-%u", env->rundir, domid);
    bool ours = pid > 0 && sim_pid_alive(pid) && pid_is_our_qemu(pid, xenstat);
    free(xenstat);
    if (ours) {
        snap_err qerr;
        if (sim_qmp_run(qmp, "quit", NULL, 3000, &qerr) != 0)
            kill(pid, SIGTERM); /* QMP busy or wedged: the signal still ends it */
        if (!wait_gone(pid, timeout_ms)) {
            kill(pid, SIGKILL);
            if (!wait_gone(pid, 5000))
                rc =
                    snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                 "QEMU [%d] of domain %u does not exit", (int)pid, domid);
        }
    }
    if (!rc) {
        unlink(qmp);
        char *p = snap_xasprintf("%s/qmp-libxenstat-%u", env->rundir, domid);
        unlink(p);
        free(p);
        p = snap_xasprintf("%s/qemu-dm-%u.pid", env->rundir, domid);
        unlink(p);
        free(p);
    }
    free(qmp);
    return rc;
}
