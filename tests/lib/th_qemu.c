/* th_qemu — real QEMU processes and qcow2 images for tests; see th_qemu.h. */
#include "th_qemu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "th.h"

#define TH_QEMU_MAX_ARGS 128
#define TH_QEMU_START_MS 20000
#define TH_QEMU_POLL_US  10000

static char *th_qemu_rotating(void)
{
    static char bufs[8][4096];
    static int next;
    return bufs[next++ % 8];
}

/* Prints the tail of QEMU's log, so a failed start explains itself. */
static void th_qemu_note_log(const th_qemu *vm)
{
    char *log = th_read_file(vm->log_path);
    if (log) {
        size_t len = strlen(log);
        th_note("QEMU log %s: %s", vm->log_path, len > 2000 ? log + len - 2000 : log);
        free(log);
    }
}

/*
 * True when a unix socket bound to path is listening, read from
 * /proc/net/unix (a probing connect would take QMP's only client slot).
 */
static bool th_qemu_socket_listens(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    char line[4096 + 128];
    bool listening = false;
    if (!f)
        return false;
    while (!listening && fgets(line, sizeof line, f)) {
        /* Num RefCount Protocol Flags Type St Inode Path */
        unsigned long flags = 0;
        char sock_path[4096 + 1];
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4096s", &flags, sock_path) == 2 &&
            strcmp(sock_path, path) == 0)
            listening = (flags & 0x10000) != 0; /* __SO_ACCEPTCON */
    }
    fclose(f);
    return listening;
}

/* Waits until the QMP socket listens, while QEMU still runs. */
static bool th_qemu_wait_socket(th_qemu *vm)
{
    for (int waited = 0; waited < TH_QEMU_START_MS * 1000; waited += TH_QEMU_POLL_US) {
        if (th_qemu_socket_listens(vm->qmp_path))
            return true;
        if (!th_qemu_alive(vm)) {
            th_fail_at(__FILE__, __LINE__, "QEMU exited during start-up");
            return false;
        }
        usleep(TH_QEMU_POLL_US);
    }
    th_fail_at(__FILE__, __LINE__, "QEMU's QMP socket %s did not appear", vm->qmp_path);
    return false;
}

bool th_qemu_start(th_qemu *vm, const char *name, const char *const extra[])
{
    const char *argv[TH_QEMU_MAX_ARGS];
    char qmp_arg[4200], log_name[256], sock_name[256];
    int n = 0;

    memset(vm, 0, sizeof *vm);
    vm->pid = -1;
    snprintf(sock_name, sizeof sock_name, "%s.qmp", name);
    snprintf(log_name, sizeof log_name, "%s.log", name);
    snprintf(vm->qmp_path, sizeof vm->qmp_path, "%s", th_path(sock_name));
    snprintf(vm->log_path, sizeof vm->log_path, "%s", th_path(log_name));
    unlink(vm->qmp_path);
    snprintf(qmp_arg, sizeof qmp_arg, "unix:%s,server=on,wait=off", vm->qmp_path);

    static const char *const base[] = {
        "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-nodefaults",
        "-display",           "none",     "-S",  "-m",     "64",  "-qmp"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        argv[n++] = base[i];
    argv[n++] = qmp_arg;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (n >= TH_QEMU_MAX_ARGS - 1) {
            th_fail_at(__FILE__, __LINE__, "th_qemu_start: too many arguments");
            return false;
        }
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    vm->pid = th_spawn((char *const *)argv, vm->log_path);
    if (vm->pid < 0) {
        th_fail_at(__FILE__, __LINE__, "cannot start qemu-system-x86_64");
        return false;
    }
    if (!th_qemu_wait_socket(vm)) {
        th_qemu_note_log(vm);
        th_qemu_stop(vm);
        return false;
    }
    return true;
}

bool th_qemu_alive(th_qemu *vm)
{
    if (vm->pid <= 0)
        return false;
    if (th_wait(vm->pid, 0) == -1)
        return kill(vm->pid, 0) == 0;
    vm->pid = -1; /* it exited and is now reaped */
    return false;
}

void th_qemu_stop(th_qemu *vm)
{
    if (vm->pid > 0)
        th_kill(vm->pid);
    vm->pid = -1;
}

/* ------------------------------------------------------------- images */

const char *th_qemu_img_create(const char *name, const char *size, const char *backing)
{
    char *path = th_qemu_rotating();
    char *err = NULL;
    int rc;
    snprintf(path, 4096, "%s", th_path(name));
    if (backing)
        rc = th_runl(NULL, &err, "qemu-img", "create", "-q", "-f", "qcow2", "-b", backing,
                     "-F", "qcow2", path, size, (char *)NULL);
    else
        rc = th_runl(NULL, &err, "qemu-img", "create", "-q", "-f", "qcow2", path, size,
                     (char *)NULL);
    if (rc != 0) {
        th_fail_at(__FILE__, __LINE__, "qemu-img create %s: %s", path, err ? err : "");
        path = NULL;
    }
    free(err);
    return path;
}

const char *th_qemu_drive_arg(const char *path, const char *id)
{
    char *b = th_qemu_rotating();
    snprintf(b, 4096, "file=%s,if=none,id=%s,format=qcow2", path, id);
    return b;
}

int th_qemu_blockdev_args(const char *path, const char *vdev, const char *args[6],
                          char *owned[3])
{
    size_t need = strlen(path) + 3 * strlen(vdev) + 128;
    for (int i = 0; i < 3; i++)
        owned[i] = malloc(need);
    if (!owned[0] || !owned[1] || !owned[2]) {
        th_qemu_free_args(owned);
        return 0;
    }
    snprintf(owned[0], need, "driver=file,filename=%s,node-name=%s-file", path, vdev);
    snprintf(owned[1], need, "driver=qcow2,file=%s-file,node-name=%s-qcow2", vdev, vdev);
    snprintf(owned[2], need, "virtio-blk-pci,drive=%s-qcow2,id=%s", vdev, vdev);
    args[0] = "-blockdev";
    args[1] = owned[0];
    args[2] = "-blockdev";
    args[3] = owned[1];
    args[4] = "-device";
    args[5] = owned[2];
    return 6;
}

void th_qemu_free_args(char *owned[3])
{
    for (int i = 0; i < 3; i++) {
        free(owned[i]);
        owned[i] = NULL;
    }
}

bool th_qemu_img_has_snapshot(const char *path, const char *name)
{
    char *out = NULL, *err = NULL;
    bool found = false;
    int rc = th_runl(&out, &err, "qemu-img", "snapshot", "-l", "-U", path, (char *)NULL);
    if (rc != 0)
        th_note("qemu-img snapshot -l -U %s: %s", path, err ? err : "");
    /* Table rows: "ID  TAG  VM SIZE  DATE ...": match TAG as a whole word. */
    for (char *line = out ? strtok(out, "\n") : NULL; line && !found;
         line = strtok(NULL, "\n")) {
        char id[64], tag[256];
        found = sscanf(line, "%63s %255s", id, tag) == 2 && strcmp(tag, name) == 0;
    }
    free(out);
    free(err);
    return found;
}

char *th_qemu_img_info_chain(const char *path)
{
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, "qemu-img", "info", "-U", "--backing-chain",
                     "--output=json", path, (char *)NULL);
    if (rc != 0) {
        th_note("qemu-img info %s: %s", path, err ? err : "");
        free(out);
        out = NULL;
    }
    free(err);
    return out;
}

bool th_qemu_io_reads_pattern(const char *path, int pattern, const char *offset,
                              const char *len)
{
    char cmd[256], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "read -P 0x%02x %s %s", pattern & 0xff, offset, len);
    int rc = th_runl(&out, &err, "qemu-io", "-r", "-U", "-f", "qcow2", "-c", cmd, path,
                     (char *)NULL);
    /* qemu-io exits 0 even when the pattern differs: look for its complaint. */
    bool ok = rc == 0 && out && !strstr(out, "Pattern verification failed") &&
              strstr(out, "read ");
    /* A differing pattern is an answer; anything else is worth a note. */
    if (!ok && !(out && strstr(out, "Pattern verification failed")))
        th_note("qemu-io %s on %s: rc %d: %s%s", cmd, path, rc, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    return ok;
}
