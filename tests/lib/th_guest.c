/* th_guest — the real test guest for tests; see th_guest.h. */
#include "th_guest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "th.h"
#include "th_qemu.h"

#define TH_GUEST_MAX_DISKS 8

/* ------------------------------------------------------------ the guest */

const char *th_guest_dir(void)
{
    static char dir[PATH_MAX];
    if (dir[0])
        return dir;
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, "bash", th_top_path("tools/guest/build-guest"), NULL);
    /* The last line of stdout is the guest's directory. */
    char *last = NULL;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"))
        last = line;
    if (rc != 0 || !last) {
        th_fail_at(__FILE__, __LINE__, "tools/guest/build-guest failed (exit %d): %s", rc,
                   err ? err : "");
    } else {
        snprintf(dir, sizeof dir, "%s", last);
    }
    free(out);
    free(err);
    return dir[0] ? dir : NULL;
}

const char *th_guest_mkdisk(const char *name, int size_mb)
{
    const char *path = th_path(name);
    char size[16], *err = NULL;
    snprintf(size, sizeof size, "%d", size_mb);
    int rc =
        th_runl(NULL, &err, "bash", th_top_path("tools/guest/mkdisk"), path, size, NULL);
    if (rc != 0) {
        th_fail_at(__FILE__, __LINE__, "mkdisk %s %s failed (exit %d): %s", path, size,
                   rc, err ? err : "");
        path = NULL;
    }
    free(err);
    return path;
}

bool th_guest_kvm_usable(void)
{
    if (access("/dev/kvm", W_OK) != 0)
        return false;
    char *cpuinfo = th_read_file("/proc/cpuinfo");
    bool hw = cpuinfo && (strstr(cpuinfo, " vmx") || strstr(cpuinfo, " svm"));
    free(cpuinfo);
    return hw;
}

/* --------------------------------------------------------- plain QEMU */

typedef struct th_argv {
    const char *arg[96];
    int n;
    char *owned[3 * TH_GUEST_MAX_DISKS + 8];
    int n_owned;
} th_argv;

static void th_argv_add(th_argv *a, const char *s)
{
    if (a->n < (int)(sizeof a->arg / sizeof a->arg[0]) - 1)
        a->arg[a->n++] = s;
}

static const char *th_argv_own(th_argv *a, char *s)
{
    a->owned[a->n_owned++] = s;
    return s;
}

static void th_argv_free(th_argv *a)
{
    for (int i = 0; i < a->n_owned; i++)
        free(a->owned[i]);
}

static void th_guest_paths(th_guest_vm *vm, const char *name)
{
    snprintf(vm->qmp_path, sizeof vm->qmp_path, "%s/%s.qmp", th_tmpdir(), name);
    snprintf(vm->agent_path, sizeof vm->agent_path, "%s/%s.qga", th_tmpdir(), name);
    snprintf(vm->serial_path, sizeof vm->serial_path, "%s/%s.serial", th_tmpdir(), name);
    snprintf(vm->log_path, sizeof vm->log_path, "%s/%s.log", th_tmpdir(), name);
}

/* The QEMU command line of the guest (see tools/guest/init for the guest side). */
static bool th_guest_argv(th_argv *a, const th_guest_vm *vm, const char *dir,
                          const char *const disks[], const char *append)
{
    bool kvm = th_guest_kvm_usable();
    const char *fixed[] = {"qemu-system-x86_64",
                           "-accel",
                           kvm ? "kvm" : "tcg,thread=multi",
                           "-cpu",
                           kvm ? "host" : "max",
                           "-m",
                           "256M",
                           "-smp",
                           "1",
                           "-nodefaults",
                           "-no-user-config",
                           "-display",
                           "none",
                           "-no-reboot",
                           "-device",
                           "virtio-serial-pci",
                           NULL};
    for (int i = 0; fixed[i]; i++)
        th_argv_add(a, fixed[i]);
    th_argv_add(a, "-kernel");
    th_argv_add(a, th_argv_own(a, snap_xasprintf("%s/vmlinux", dir)));
    th_argv_add(a, "-initrd");
    th_argv_add(a, th_argv_own(a, snap_xasprintf("%s/initrd.img", dir)));
    th_argv_add(a, "-append");
    th_argv_add(a, th_argv_own(a, snap_xasprintf("console=ttyS0 quiet panic=-1 %s",
                                                 append ? append : "")));
    th_argv_add(a, "-serial");
    th_argv_add(a, th_argv_own(a, snap_xasprintf("file:%s", vm->serial_path)));
    th_argv_add(a, "-chardev");
    th_argv_add(a,
                th_argv_own(a, snap_xasprintf("socket,id=qga0,path=%s,server=on,wait=off",
                                              vm->agent_path)));
    th_argv_add(a, "-device");
    th_argv_add(a, "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0");
    th_argv_add(a, "-qmp");
    th_argv_add(
        a, th_argv_own(a, snap_xasprintf("unix:%s,server=on,wait=off", vm->qmp_path)));
    for (int i = 0; disks && disks[i]; i++) {
        if (i >= TH_GUEST_MAX_DISKS)
            return false;
        const char *args[6];
        char vdev[8];
        snprintf(vdev, sizeof vdev, "xvd%c", 'a' + i);
        int n = th_qemu_blockdev_args(disks[i], vdev, args, a->owned + a->n_owned);
        if (n != 6)
            return false;
        a->n_owned += 3;
        for (int j = 0; j < n; j++)
            th_argv_add(a, args[j]);
    }
    a->arg[a->n] = NULL;
    return true;
}

bool th_guest_start(th_guest_vm *vm, const char *name, const char *const disks[],
                    const char *append)
{
    vm->pid = -1;
    th_guest_paths(vm, name);
    const char *dir = th_guest_dir();
    if (!dir)
        return false;
    th_argv a = {.n = 0};
    bool ok = th_guest_argv(&a, vm, dir, disks, append);
    if (ok)
        vm->pid = th_spawn((char *const *)a.arg, vm->log_path);
    th_argv_free(&a);
    if (vm->pid < 0 || !th_wait_for_socket(vm->qmp_path, 20000)) {
        char *log = th_read_file(vm->log_path);
        th_fail_at(__FILE__, __LINE__, "QEMU for %s did not start: %s", name,
                   log ? log : "(no log)");
        free(log);
        th_guest_stop(vm);
        return false;
    }
    return true;
}

/* True while QEMU runs; a dead QEMU is left unreaped for th_wait/th_kill. */
static bool th_guest_alive(const th_guest_vm *vm)
{
    siginfo_t info = {.si_pid = 0};
    if (vm->pid <= 0)
        return false;
    if (waitid(P_PID, (id_t)vm->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD && th_pid_alive(vm->pid);
    return info.si_pid == 0;
}

bool th_guest_wait_ready(const th_guest_vm *vm, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        char *serial = th_read_file(vm->serial_path);
        bool ready = serial && strstr(serial, "XLSNAP-GUEST-READY");
        free(serial);
        if (ready)
            return true;
        if (!th_guest_alive(vm))
            break;
        usleep(50000);
    }
    char *serial = th_read_file(vm->serial_path), *log = th_read_file(vm->log_path);
    th_fail_at(__FILE__, __LINE__, "guest not ready after %d ms; console: %s; qemu: %s",
               timeout_ms, serial ? serial : "(none)", log ? log : "(none)");
    free(serial);
    free(log);
    return false;
}

bool th_guest_wait_exit(th_guest_vm *vm, int timeout_ms)
{
    if (vm->pid <= 0)
        return true;
    if (waitpid(vm->pid, NULL, WNOHANG) < 0 && errno == ECHILD) {
        /* Not our child (adopted): poll until it is gone, then forget it. */
        for (int waited = 0; th_pid_alive(vm->pid); waited += 20) {
            if (waited >= timeout_ms)
                return false;
            usleep(20000);
        }
        th_kill(vm->pid);
        vm->pid = -1;
        return true;
    }
    if (th_wait(vm->pid, timeout_ms) == -1)
        return false;
    vm->pid = -1;
    return true;
}

void th_guest_stop(th_guest_vm *vm)
{
    if (vm->pid > 0)
        th_kill(vm->pid);
    vm->pid = -1;
}

/* --------------------------------------------- the agent, through snap_agent */

#define TH_AGENT_CALL_MS  10000
#define TH_AGENT_EXEC_MS  20000
#define TH_AGENT_MAX_FILE (16u << 20)

th_agent *th_agent_connect(const char *path, int timeout_ms)
{
    snap_agent *ag = NULL;
    snap_err err = {0};
    if (snap_agent_open_wait(path, timeout_ms, NULL, &ag, &err) != 0)
        th_fail_at(__FILE__, __LINE__, "agent %s: %s", path, err.msg);
    return ag;
}

void th_agent_close(th_agent *ga)
{
    snap_agent_close(ga);
}

yajl_val th_agent_execute(th_agent *ga, const char *cmd, snap_json_members_fn *args,
                          const void *opaque, int timeout_ms, char **error_out)
{
    yajl_val ret = NULL;
    snap_err err = {0};
    if (error_out)
        *error_out = NULL;
    if (snap_agent_execute(ga, cmd, args, opaque, &ret, timeout_ms, &err) != 0 &&
        error_out)
        *error_out = snap_xstrdup(err.msg);
    return ret;
}

bool th_agent_send(th_agent *ga, const char *cmd)
{
    snap_err err = {0};
    int rc = snap_agent_send(ga, cmd, NULL, NULL, TH_AGENT_CALL_MS, &err);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "agent %s: %s", cmd, err.msg);
    return rc == 0;
}

char *th_agent_read_file(th_agent *ga, const char *path)
{
    char *data = NULL;
    snap_err err = {0};
    if (qga_read_file(ga, path, TH_AGENT_MAX_FILE, TH_AGENT_CALL_MS, &data, NULL,
                             &err) != 0)
        th_fail_at(__FILE__, __LINE__, "%s", err.msg);
    return data;
}

int th_agent_exec(th_agent *ga, const char *const argv[], char **out)
{
    qga_exec_result res;
    snap_err err = {0};
    if (out)
        *out = NULL;
    if (qga_guest_exec(ga, argv, TH_AGENT_EXEC_MS, &res, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    if (out) {
        *out = res.out;
        res.out = NULL;
    }
    int code = res.exitcode;
    qga_exec_result_dispose(&res);
    return code;
}

/* ------------------------------------------------ offline image checks */

const char *th_image_to_raw(const char *image)
{
    const char *base = strrchr(image, '/');
    char name[256];
    snprintf(name, sizeof name, "%s.raw", base ? base + 1 : image);
    const char *raw = th_path(name);
    char *err = NULL;
    int rc =
        th_runl(NULL, &err, "qemu-img", "convert", "-U", "-O", "raw", image, raw, NULL);
    if (rc != 0) {
        th_fail_at(__FILE__, __LINE__, "qemu-img convert %s: %s", image, err ? err : "");
        raw = NULL;
    }
    free(err);
    return raw;
}

int th_ext4_needs_recovery(const char *raw)
{
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, "dumpe2fs", "-h", raw, NULL);
    int result = -1;
    const char *features = out ? strstr(out, "Filesystem features:") : NULL;
    if (rc == 0 && features) {
        const char *eol = strchr(features, '\n');
        const char *hit = strstr(features, "needs_recovery");
        result = hit && (!eol || hit < eol);
    } else {
        th_fail_at(__FILE__, __LINE__, "dumpe2fs -h %s (exit %d): %s", raw, rc,
                   err ? err : "");
    }
    free(out);
    free(err);
    return result;
}

int th_ext4_fsck(const char *raw)
{
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, "e2fsck", "-fn", raw, NULL);
    if (rc != 0)
        th_note("e2fsck -fn %s: exit %d\n%s%s", raw, rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc;
}

char *th_ext4_cat(const char *raw, const char *path)
{
    char *out = NULL, *err = NULL, *request = snap_xasprintf("cat %s", path);
    int rc = th_runl(&out, &err, "debugfs", "-R", request, raw, NULL);
    /* debugfs exits 0 even for a missing file; it says so on stderr. */
    if (rc != 0 || (err && strstr(err, "File not found"))) {
        th_note("debugfs %s %s: %s", request, raw, err ? err : "");
        free(out);
        out = NULL;
    }
    free(request);
    free(err);
    return out;
}

/* ------------------------------------------------ the guest's writer log */

__attribute__((format(printf, 2, 3))) static bool th_writer_problem(th_writer_log *log,
                                                                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (log->contiguous)
        vsnprintf(log->problem, sizeof log->problem, fmt, ap);
    va_end(ap);
    log->contiguous = false;
    return false;
}

bool th_writer_log_parse(const char *text, th_writer_log *log)
{
    *log = (th_writer_log){.contiguous = true};
    long prev_ms = -1;
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            return th_writer_problem(log, "record %ld is cut short (after %ld records)",
                                     log->last + 1, log->records);
        char *end;
        errno = 0;
        long seq = strtol(p, &end, 10), ms = -1;
        if (end != p && *end == ' ')
            ms = strtol(end + 1, &end, 10);
        if (errno || ms < 0 || end != eol)
            return th_writer_problem(log, "malformed line after record %ld (%ld records)",
                                     log->last, log->records);
        if (log->records == 0)
            log->first = seq;
        else if (seq != log->last + 1)
            return th_writer_problem(log, "record %ld follows record %ld", seq,
                                     log->last);
        if (prev_ms >= 0 && ms - prev_ms > log->max_gap_ms)
            log->max_gap_ms = ms - prev_ms;
        prev_ms = ms;
        log->last = seq;
        log->last_ms = ms;
        log->records++;
        p = eol + 1;
    }
    if (log->records == 0)
        return th_writer_problem(log, "no records");
    return true;
}
