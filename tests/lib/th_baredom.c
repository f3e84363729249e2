/* th_baredom — a kernel-less simulated domain; see th_baredom.h. */
#include "th_baredom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_base.h"
#include "th.h"

/* The two-disk example with both disks writable and no agent channel. */
static char *th_bare_config(const th_xlsim_dom *d)
{
    return snap_xasprintf(
        "name = \"%s\"\ntype = \"hvm\"\nmemory = 128\nvcpus = 1\n"
        "disk = [ 'format=qcow2, vdev=xvda, access=rw, backendtype=qdisk, target=%s',\n"
        "         'format=qcow2, vdev=xvdb, access=rw, backendtype=qdisk, target=%s' ]\n",
        d->name, d->root, d->data);
}

static bool th_bare_images(const th_xlsim_dom *d)
{
    if (mkdir(d->disk_dir, 0700) != 0 && errno != EEXIST) {
        th_fail_at(__FILE__, __LINE__, "mkdir %s: %s", d->disk_dir, strerror(errno));
        return false;
    }
    const char *images[] = {d->root, d->data};
    for (int i = 0; i < 2; i++) {
        char *err = NULL;
        int rc = th_runl(NULL, &err, "qemu-img", "create", "-q", "-f", "qcow2", images[i],
                         "16M", (char *)NULL);
        if (rc != 0)
            th_fail_at(__FILE__, __LINE__, "qemu-img create %s: %s", images[i],
                       err ? err : "");
        free(err);
        if (rc != 0)
            return false;
    }
    return true;
}

/* The domid, QMP socket and QEMU pid of a domain `xlsim create` made. */
static bool th_bare_adopt(th_xlsim_dom *d)
{
    char *out = NULL;
    int rc = th_runl(&out, NULL, th_build_path("xlsim"), "domid", d->name, (char *)NULL);
    d->domid = rc == 0 && out ? (unsigned)strtoul(out, NULL, 10) : 0;
    free(out);
    const char *run = th_xlsim_rundir();
    snprintf(d->vm.qmp_path, sizeof d->vm.qmp_path, "%s/qmp-libxl-%u", run, d->domid);
    char path[4200];
    snprintf(path, sizeof path, "%s/qemu-dm-%u.pid", run, d->domid);
    char *pid_text = th_read_file(path);
    d->vm.pid = pid_text ? (pid_t)strtol(pid_text, NULL, 10) : -1;
    free(pid_text);
    if (d->domid == 0 || d->vm.pid <= 0) {
        th_fail_at(__FILE__, __LINE__, "%s: no domid or QEMU pid (%s)", d->name, path);
        return false;
    }
    th_adopt(d->vm.pid);
    return true;
}

bool th_bare_create(th_xlsim_dom *d, const char *name)
{
    memset(d, 0, sizeof *d);
    d->vm.pid = -1;
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->disk_dir, sizeof d->disk_dir, "%s/%s-disks", th_tmpdir(), name);
    snprintf(d->root, sizeof d->root, "%s/%s-disks/a.qcow2", th_tmpdir(), name);
    snprintf(d->data, sizeof d->data, "%s/%s-disks/b.qcow2", th_tmpdir(), name);
    snprintf(d->cfg_path, sizeof d->cfg_path, "%s/%s.cfg", th_tmpdir(), name);
    if (!th_xlsim_init() || !th_bare_images(d))
        return false;
    char *cfg = th_bare_config(d);
    bool ok = th_write_file(d->cfg_path, cfg);
    free(cfg);
    char *out = NULL, *err = NULL;
    int rc = ok ? th_runl(&out, &err, th_build_path("xlsim"), "create", "-p", d->cfg_path,
                          (char *)NULL)
                : -1;
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "xlsim create %s: exit %d: %s%s", d->cfg_path, rc,
                   out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc == 0 && th_bare_adopt(d);
}

bool th_bare_shut_off(th_xlsim_dom *d)
{
    th_kill(d->vm.pid); /* SIGTERM, polled until gone (an adopted process) */
    bool gone = !th_pid_alive(d->vm.pid);
    if (!gone)
        th_fail_at(__FILE__, __LINE__, "%s: QEMU %d still runs", d->name, (int)d->vm.pid);
    d->vm.pid = -1;
    return gone;
}

bool th_bare_relaunch(th_xlsim_dom *d)
{
    char *err = NULL;
    int rc = th_runl(NULL, &err, th_build_path("xlsim"), "relaunch", "-p", d->name,
                     (char *)NULL);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "xlsim relaunch %s: exit %d: %s", d->name, rc,
                   err ? err : "");
    free(err);
    return rc == 0 && th_bare_adopt(d);
}
