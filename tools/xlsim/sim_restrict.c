/*
 * dm_restrict=1, as libxl 4.17 applies it to a local device model
 * (tools/libs/light/libxl_dm.c, libxl_linux.c): QEMU runs as another user
 * (-runas), chrooted to an empty mode-0000 directory (-chroot
 * <rundir>/qemu-root-<domid>), in its own mount and IPC namespaces, with
 * libxl's rlimits. So, as on Xen, it opens its disks at start and can open
 * nothing by host path afterwards.
 *
 * The QMP socket is made here and passed, as libxl does, so its peer
 * credentials are not QEMU's (libsnap must find the device model another
 * way: xenstore's image/device-model-pid).
 *
 * Stricter than libxl: libxl 4.17 adds -runas for HVM device models only
 * (a PV/PVH one stays root, chrooted); xlsim runs every restricted QEMU as
 * the chosen user.
 *
 * Left out, and why: -xen-domid-restrict (QEMU refuses it without the Xen
 * accelerator; it restricts hypercalls, which xlsim has none of), libxl's
 * -S + cont startup notification (nothing to do with confinement), and
 * RLIMIT_FSIZE = 256 KiB: Linux refuses every write at
 * an offset past the limit (not only growth), so under it the guest cannot
 * write its disks at all (docs/design.md, "Deprivileged device models").
 */
#include <errno.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xlsim.h"

#define QEMU_USER_SHARED     "xen-qemuuser-shared"     /* LIBXL_QEMU_USER_SHARED */
#define QEMU_USER_RANGE_BASE "xen-qemuuser-range-base" /* LIBXL_QEMU_USER_RANGE_BASE */

static bool user_by_name(const char *name, struct passwd *pw, char *buf, size_t len)
{
    struct passwd *found = NULL;
    return getpwnam_r(name, pw, buf, len, &found) == 0 && found;
}

/* libxl's range: base uid + domid, refused when that uid is someone else's. */
static int range_user(const struct passwd *base, uint32_t domid, char **runas_out,
                      snap_err *err)
{
    uid_t uid = base->pw_uid + domid;
    struct passwd pw, *clash = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &clash) == 0 && clash)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "wanted to use uid %ld (%s + %u) but that is user %s !",
                            (long)uid, QEMU_USER_RANGE_BASE, domid, clash->pw_name);
    if (uid == 0)
        return snap_err_set(err, SNAP_ERROR_INVAL, "intended_uid is 0 (root)!");
    *runas_out = snap_xasprintf("%ld:%ld", (long)uid, (long)base->pw_gid);
    return 0;
}

bool sim_dm_restricted(const libxl_domain_build_info *b)
{
    return !libxl_defbool_is_default(b->dm_restrict) && libxl_defbool_val(b->dm_restrict);
}

int sim_dm_runas(const libxl_domain_build_info *b, uint32_t domid, char **runas_out,
                 snap_err *err)
{
    struct passwd pw;
    char buf[4096];
    *runas_out = NULL;
    const char *user = b->device_model_user;
    if (!user && !sim_dm_restricted(b))
        return 0; /* "dm_restrict disabled, starting QEMU as root" */
    if (user && !user_by_name(user, &pw, buf, sizeof buf))
        return snap_err_set(err, SNAP_ERROR_INVAL, "Couldn't find device_model_user %s",
                            user);
    if (!user && user_by_name(QEMU_USER_RANGE_BASE, &pw, buf, sizeof buf))
        return range_user(&pw, domid, runas_out, err);
    if (!user && !user_by_name((user = QEMU_USER_SHARED), &pw, buf, sizeof buf))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "Could not find user %s or range base pseudo-user %s, cannot "
                            "restrict",
                            QEMU_USER_SHARED, QEMU_USER_RANGE_BASE);
    if (pw.pw_uid == 0)
        return snap_err_set(err, SNAP_ERROR_INVAL, "intended_uid is 0 (root)!");
    *runas_out = snap_xstrdup(user);
    return 0;
}

char *sim_dm_chroot(const sim_env *env, uint32_t domid)
{
    return snap_xasprintf("%s/qemu-root-%u", env->rundir, domid);
}

int sim_dm_make_chroot(const sim_env *env, uint32_t domid, snap_err *err)
{
    char *dir = sim_dm_chroot(env, domid);
    int rc = 0;
    /* libxl: an old chroot should be empty (QEMU could not write it). */
    if (rmdir(dir) < 0 && errno != ENOENT)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno,
                            "failed to remove existing chroot dir %s", dir);
    else if (mkdir(dir, 0000) < 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "failed to create chroot dir %s",
                            dir);
    free(dir);
    return rc;
}

/* In the child, before exec; a message on stderr (QEMU's log) and -1 on failure. */
int sim_dm_preexec_restrict(void)
{
    static const struct {
        int resource;
        rlim_t limit;
    } limits[] = {
        {RLIMIT_CORE, 0},
        {RLIMIT_MSGQUEUE, 0},
        {RLIMIT_LOCKS, 0},
        {RLIMIT_MEMLOCK, 0},
    };
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC) < 0) {
        dprintf(2, "xlsim: unshare Mount and IPC namespace failed: %s\n",
                strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct rlimit r = {limits[i].limit, limits[i].limit};
        if (setrlimit(limits[i].resource, &r) < 0) {
            dprintf(2, "xlsim: setting rlimit %d failed: %s\n", limits[i].resource,
                    strerror(errno));
            return -1;
        }
    }
    return 0;
}

int sim_dm_pre_open_qmp(const char *path, int *fd_out, snap_err *err)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof un.sun_path)
        return snap_err_set(err, SNAP_ERROR_INVAL, "QEMU's QMP socket %s: path too long",
                            path);
    memcpy(un.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* inherited by QEMU: no CLOEXEC */
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "socket() failed");
    if (unlink(path) < 0 && errno != ENOENT) {
        snap_err_errno(err, SNAP_ERROR_IO, errno, "removing %s", path);
    } else if (bind(fd, (struct sockaddr *)&un, sizeof un) < 0) {
        snap_err_errno(err, SNAP_ERROR_IO, errno, "bind('%s') failed", path);
    } else if (listen(fd, 1) < 0) {
        snap_err_errno(err, SNAP_ERROR_IO, errno, "listen() failed");
    } else {
        *fd_out = fd;
        return 0;
    }
    close(fd);
    return err->code;
}
