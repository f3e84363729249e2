/*
 * Snapshots of a domain whose device model is deprivileged (issue 19):
 * xlsim's dm_restrict=1 runs QEMU as libxl would (-runas, -chroot to an
 * empty mode-0000 directory, own mount/IPC namespaces), so QEMU cannot open
 * any host path after it started. A small HVM domain with no guest kernel
 * (its firmware runs) is enough.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_qmp.h"
#include "th.h"
#include "th_qemu.h"
#include "th_xlsim.h"

#define T_MS 30000

static char dom_name[] = "dp";
static unsigned domid;
static pid_t dm_pid = -1;
static struct passwd nobody;

static int xlsim(char **out, char **err, const char *a, const char *b, const char *c)
{
    return th_runl(out, err, th_build_path("xlsim"), a, b, c, (char *)NULL);
}

/* Two rw qcow2 disks owned by nobody (mode 0640), dm_restrict=1 as nobody. */
static const char *write_config(const char *name, const char *restrict_lines)
{
    char *cfg = snap_xasprintf(
        "name = \"%s\"\ntype = \"hvm\"\nmemory = 128\nvcpus = 1\n"
        "disk = [ 'format=qcow2, vdev=xvda, access=rw, backendtype=qdisk, "
        "target=%s',\n 'format=qcow2, vdev=xvdb, access=rw, backendtype=qdisk, "
        "target=%s' ]\n%s\n",
        name, th_path("a.qcow2"), th_path("b.qcow2"), restrict_lines);
    char file[128];
    snprintf(file, sizeof file, "%s.cfg", name);
    const char *path = th_path(file);
    bool ok = th_write_file(path, cfg);
    free(cfg);
    return ok ? path : NULL;
}

static char *xs_dom(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "/local/domain/%u/%s", domid, rel);
    return th_xs_read(path);
}

static snap_qmp *connect_dm(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/qmp-libxl-%u", th_xlsim_rundir(), domid);
    snap_qmp *q = NULL;
    snap_err err;
    if (snap_qmp_connect(path, T_MS, &q, &err)) {
        th_note("QMP: %s", err.msg);
        return NULL;
    }
    return q;
}

/* "uid" of /proc/<pid>/status (effective). */
static long proc_euid(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *st = th_read_file(path);
    const char *u = st ? strstr(st, "\nUid:") : NULL;
    long real = -1, eff = -1;
    if (u)
        sscanf(u, "\nUid: %ld %ld", &real, &eff);
    free(st);
    return eff;
}

/* QEMU runs as nobody in <rundir>/qemu-root-<domid>, an empty mode-0000 dir. */
static void test_restricted_like_libxl(void)
{
    char *out = NULL, *err = NULL;
    const char *cfg = write_config(dom_name, "dm_restrict = 1\ndevice_model_user = "
                                             "\"nobody\"");
    REQUIRE(cfg);
    REQUIRE(xlsim(&out, NULL, "create", "-n", cfg) == 0);
    CHECK_CONTAINS(out, "-runas nobody");
    CHECK_CONTAINS(out, "-chroot ");
    free(out);
    int rc = xlsim(NULL, &err, "create", cfg, NULL);
    if (rc)
        th_note("xlsim create: %s", err ? err : "?");
    free(err);
    REQUIRE(rc == 0);
    REQUIRE(xlsim(&out, NULL, "domid", dom_name, NULL) == 0);
    domid = (unsigned)atoi(out);
    free(out);
    char *pid = xs_dom("image/device-model-pid");
    REQUIRE(pid);
    dm_pid = atoi(pid);
    free(pid);
    th_adopt(dm_pid);
    CHECK_INT(proc_euid(dm_pid), nobody.pw_uid);
    char link[64], root[4096], want[4096];
    snprintf(link, sizeof link, "/proc/%d/root", (int)dm_pid);
    ssize_t n = readlink(link, root, sizeof root - 1);
    REQUIRE(n > 0);
    root[n] = '\0';
    snprintf(want, sizeof want, "%s/qemu-root-%u", th_xlsim_rundir(), domid);
    CHECK_STR(root, want);
    struct stat st;
    CHECK(stat(want, &st) == 0 && (st.st_mode & 07777) == 0);
    snap_qmp *q = connect_dm();
    REQUIRE(q);
    bool confined = false;
    snap_err e;
    CHECK(snap_qmp_peer_confined(q, &confined, &e) == 0 && confined);
    snap_qmp_close(q);
}

/* Without device_model_user, libxl's users or libxl's refusal. */
static void test_restrict_needs_a_user(void)
{
    struct passwd *shared = getpwnam("xen-qemuuser-shared");
    struct passwd *range = getpwnam("xen-qemuuser-range-base");
    if (shared || range) {
        th_skip("this host has a xen-qemuuser-* user");
        return;
    }
    char *err = NULL;
    const char *cfg = write_config("dp-nouser", "dm_restrict = 1");
    REQUIRE(cfg);
    CHECK_INT(xlsim(NULL, &err, "create", "-p", cfg), 1);
    CHECK_CONTAINS(err, "Could not find user xen-qemuuser-shared or range base "
                        "pseudo-user xen-qemuuser-range-base, cannot restrict");
    free(err);
    char *out = NULL;
    CHECK(xlsim(&out, NULL, "domid", "dp-nouser", NULL) != 0);
    free(out);
}

int main(void)
{
    th_plan(2);
    struct passwd *pw = getpwnam("nobody");
    if (!pw) {
        th_skip("no user nobody");
        return th_finish();
    }
    nobody = *pw;
    if (!th_xlsim_init())
        return th_finish();
    /* Images as an administrator might give them to the QEMU user. */
    if (!th_qemu_img_create("a.qcow2", "64M", NULL) ||
        !th_qemu_img_create("b.qcow2", "32M", NULL) ||
        chown(th_path("a.qcow2"), nobody.pw_uid, nobody.pw_gid) != 0 ||
        chown(th_path("b.qcow2"), nobody.pw_uid, nobody.pw_gid) != 0 ||
        chmod(th_path("a.qcow2"), 0640) != 0 || chmod(th_path("b.qcow2"), 0640) != 0) {
        th_fail_at(__FILE__, __LINE__, "cannot make the images");
        return th_finish();
    }
    TH_RUN(test_restricted_like_libxl);
    TH_RUN(test_restrict_needs_a_user);
    xlsim(NULL, NULL, "destroy", dom_name, NULL);
    return th_finish();
}
