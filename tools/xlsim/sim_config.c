/*
 * Reading an xl domain config into libxl_domain_config, after xl's
 * parse_config_data (tools/xl/xl_parse.c, Xen 4.17), for the keys a
 * simulated domain uses. Unknown keys are ignored, as xl ignores keys it
 * does not use; keys xlsim cannot honour (phy disks, ...) are refused.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxlutil.h>

#include "xlsim.h"

/* ---------------------------------------------------------------- disks */

/* device_virtdisk_matches() of libxl_device.c: "xvdab3" -> index, partition. */
static bool virtdisk_matches(const char *virtpath, const char *devtype, int *index_r,
                             int max_index, int *partition_r, int max_partition)
{
    size_t tl = strlen(devtype);
    if (strncmp(virtpath, devtype, tl) != 0)
        return false;
    /* The drive letters are a base-26 number, "a" = 0, "aa" = 26. */
    const char *p = virtpath + tl;
    *index_r = -1;
    while (*p >= 'a' && *p <= 'z') {
        *index_r = (*index_r + 1) * 26 + (*p - 'a');
        p++;
        if (*index_r > max_index)
            return false;
    }
    if (!*p) {
        *partition_r = 0;
        return true;
    }
    if (*p == '0')
        return false; /* no leading zeroes in partition numbers */
    char *ep;
    unsigned long pl = strtoul(p, &ep, 10);
    if (pl > (unsigned long)max_partition || *ep)
        return false;
    *partition_r = (int)pl;
    return true;
}

int sim_vdev_to_devid(const char *vdev)
{
    int disk, partition, used = -1;
    if ((sscanf(vdev, "d%ip%i%n", &disk, &partition, &used) >= 2 &&
         used == (int)strlen(vdev) && disk >= 0 && disk < (1 << 20) && partition >= 0 &&
         partition < 256) ||
        virtdisk_matches(vdev, "xvd", &disk, (1 << 20) - 1, &partition, 255)) {
        if (disk <= 15 && partition <= 15)
            return (202 << 8) | (disk << 4) | partition;
        return (1 << 28) | (disk << 8) | partition;
    }
    char *ep;
    errno = 0;
    unsigned long ul = strtoul(vdev, &ep, 0);
    if (!errno && *vdev && !*ep && ul <= INT_MAX)
        return (int)ul;
    if (virtdisk_matches(vdev, "hd", &disk, 3, &partition, 63))
        return ((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | partition;
    if (virtdisk_matches(vdev, "sd", &disk, 15, &partition, 15))
        return (8 << 8) | (disk << 4) | partition;
    return -1;
}

const char *sim_disk_params_format(libxl_disk_format format)
{
    switch (format) {
    case LIBXL_DISK_FORMAT_QCOW: return "qcow";
    case LIBXL_DISK_FORMAT_QCOW2: return "qcow2";
    case LIBXL_DISK_FORMAT_VHD: return "vhd";
    case LIBXL_DISK_FORMAT_RAW:
    case LIBXL_DISK_FORMAT_EMPTY: return "aio";
    case LIBXL_DISK_FORMAT_QED: return "qed";
    default: return NULL;
    }
}

const char *sim_disk_qemu_driver(libxl_disk_format format)
{
    /* hw/block/xen-block.c: "aio" is raw, "vhd" is QEMU's vpc. */
    switch (format) {
    case LIBXL_DISK_FORMAT_QCOW: return "qcow";
    case LIBXL_DISK_FORMAT_QCOW2: return "qcow2";
    case LIBXL_DISK_FORMAT_VHD: return "vpc";
    case LIBXL_DISK_FORMAT_RAW: return "raw";
    case LIBXL_DISK_FORMAT_QED: return "qed";
    default: return NULL;
    }
}

/* libxl__device_disk_setdefault, restricted to what QEMU can serve. */
static int disk_setdefault(libxl_device_disk *disk, snap_err *err)
{
    if (disk->backend == LIBXL_DISK_BACKEND_UNKNOWN)
        disk->backend = LIBXL_DISK_BACKEND_QDISK;
    if (disk->backend != LIBXL_DISK_BACKEND_QDISK)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "disk %s: backendtype %s: xlsim serves disks only "
                            "through QEMU (backendtype=qdisk)",
                            disk->vdev, libxl_disk_backend_to_string(disk->backend));
    if (disk->is_cdrom)
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                            "disk %s: CD-ROM devices are not simulated", disk->vdev);
    if (!sim_disk_qemu_driver(disk->format))
        return snap_err_set(err, SNAP_ERROR_UNSUPPORTED, "disk %s: format %s", disk->vdev,
                            libxl_disk_format_to_string(disk->format));
    if (sim_vdev_to_devid(disk->vdev) < 0)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "disk %s: invalid or unsupported virtual disk identifier",
                            disk->vdev);
    libxl_defbool_setdefault(&disk->discard_enable, !!disk->readwrite);
    libxl_defbool_setdefault(&disk->colo_enable, false);
    libxl_defbool_setdefault(&disk->colo_restore_enable, false);
    disk->backend_domid = 0;
    return 0;
}

static int parse_disks(XLU_Config *cfg, libxl_domain_config *d, FILE *report,
                       snap_err *err)
{
    XLU_ConfigList *vbds;
    if (xlu_cfg_get_list(cfg, "disk", &vbds, NULL, 0))
        return 0;
    const char *spec;
    for (int i = 0; (spec = xlu_cfg_get_listitem(vbds, i)) != NULL; i++) {
        d->disks = snap_xrealloc(d->disks, (size_t)(i + 1) * sizeof(*d->disks));
        libxl_device_disk *disk = &d->disks[i];
        libxl_device_disk_init(disk);
        d->num_disks = i + 1;
        if (xlu_disk_parse(cfg, 1, &spec, disk)) {
            fflush(report);
            return snap_err_set(err, SNAP_ERROR_INVAL, "disk '%s': cannot parse", spec);
        }
        int rc = disk_setdefault(disk, err);
        if (rc)
            return rc;
        for (int j = 0; j < i; j++)
            if (sim_vdev_to_devid(d->disks[j].vdev) == sim_vdev_to_devid(disk->vdev))
                return snap_err_set(err, SNAP_ERROR_EXISTS,
                                    "disk %s: virtual device already used by %s",
                                    disk->vdev, d->disks[j].vdev);
    }
    return 0;
}

/* ---------------------------------------------------------------- channels */

static char *trimmed(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    return strndup(s, len);
}

/* One "key=value" of a channel spec, as xl's channel parser reads it. */
static int channel_pair(libxl_device_channel *chn, char **path, const char *pair,
                        size_t len, snap_err *err)
{
    const char *eq = memchr(pair, '=', len);
    if (!eq)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "failed to parse channel configuration: %.*s", (int)len,
                            pair);
    char *key = trimmed(pair, (size_t)(eq - pair));
    char *value = trimmed(eq + 1, len - (size_t)(eq - pair) - 1);
    int rc = 0;
    if (!strcmp(key, "name")) {
        free(chn->name);
        chn->name = value, value = NULL;
    } else if (!strcmp(key, "path")) {
        free(*path);
        *path = value, value = NULL;
    } else if (!strcmp(key, "backend")) {
        free(chn->backend_domname);
        chn->backend_domname = value, value = NULL;
    } else if (!strcmp(key, "connection")) {
        if (!strcmp(value, "pty"))
            chn->connection = LIBXL_CHANNEL_CONNECTION_PTY;
        else if (!strcmp(value, "socket"))
            chn->connection = LIBXL_CHANNEL_CONNECTION_SOCKET;
        else
            rc = snap_err_set(err, SNAP_ERROR_INVAL, "unknown channel connection '%s'",
                              value);
    }
    free(key);
    free(value);
    return rc;
}

static int parse_channel(const char *spec, libxl_device_channel *chn, snap_err *err)
{
    char *path = NULL;
    int rc = 0;
    for (const char *p = spec; !rc && *p;) {
        size_t len = strcspn(p, ",");
        rc = channel_pair(chn, &path, p, len, err);
        p += len + (p[len] == ',');
    }
    if (!rc && chn->connection == LIBXL_CHANNEL_CONNECTION_UNKNOWN)
        rc = snap_err_set(err, SNAP_ERROR_INVAL, "channel has unknown 'connection'");
    if (!rc && chn->connection == LIBXL_CHANNEL_CONNECTION_SOCKET) {
        if (!path)
            rc = snap_err_set(err, SNAP_ERROR_INVAL,
                              "channel connection 'socket' requires path=..");
        else
            chn->u.socket.path = path, path = NULL;
    }
    if (!rc && !chn->name)
        rc = snap_err_set(err, SNAP_ERROR_INVAL, "channel %d has no name", chn->devid);
    free(path);
    return rc;
}

static int parse_channels(XLU_Config *cfg, libxl_domain_config *d, snap_err *err)
{
    XLU_ConfigList *list;
    if (xlu_cfg_get_list(cfg, "channel", &list, NULL, 0))
        return 0;
    const char *spec;
    for (int i = 0; (spec = xlu_cfg_get_listitem(list, i)) != NULL; i++) {
        d->channels = snap_xrealloc(d->channels, (size_t)(i + 1) * sizeof(*d->channels));
        libxl_device_channel *chn = &d->channels[i];
        libxl_device_channel_init(chn);
        d->num_channels = i + 1;
        /*
         * libxl maps channels to consoles from devid 1 (0 is the primary
         * console). xl 4.17 wrongly passes devid 0 for the first one; xlsim
         * behaves as fixed xl does ("tools/xl: fix channel configuration").
         */
        chn->devid = i + 1;
        int rc = parse_channel(spec, chn, err);
        if (rc)
            return snap_err_context(err, "channel '%s'", spec);
    }
    return 0;
}

/* ---------------------------------------------------------------- domain */

static int parse_type(XLU_Config *cfg, libxl_domain_create_info *c_info, snap_err *err)
{
    const char *buf;
    c_info->type = LIBXL_DOMAIN_TYPE_PV;
    if (!xlu_cfg_get_string(cfg, "type", &buf, 0)) {
        if (!strcmp(buf, "hvm"))
            c_info->type = LIBXL_DOMAIN_TYPE_HVM;
        else if (!strcmp(buf, "pv"))
            c_info->type = LIBXL_DOMAIN_TYPE_PV;
        else if (!strcmp(buf, "pvh"))
            c_info->type = LIBXL_DOMAIN_TYPE_PVH;
        else
            return snap_err_set(err, SNAP_ERROR_INVAL, "Invalid domain type %s.", buf);
    } else if (!xlu_cfg_get_string(cfg, "builder", &buf, 0)) {
        /* Deprecated since Xen 4.10, still read by xl. */
        c_info->type = !strcmp(buf, "hvm") ? LIBXL_DOMAIN_TYPE_HVM : LIBXL_DOMAIN_TYPE_PV;
    }
    return 0;
}

static int parse_action(XLU_Config *cfg, const char *key, const char *dflt,
                        libxl_action_on_shutdown *out, snap_err *err)
{
    const char *buf;
    if (xlu_cfg_get_string(cfg, key, &buf, 0))
        buf = dflt;
    /* xl spells the actions with '-', libxl's enum strings use '_'. */
    char *name = snap_xstrdup(buf);
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
    int rc = libxl_action_on_shutdown_from_string(name, out);
    free(name);
    if (rc)
        return snap_err_set(err, SNAP_ERROR_INVAL, "Unknown %s action \"%s\" specified",
                            key, buf);
    return 0;
}

/* parse_cmdline of xl_parse.c: cmdline, else "root=<root> <extra>". */
static char *parse_cmdline(XLU_Config *cfg)
{
    const char *cmdline = NULL, *root = NULL, *extra = NULL;
    xlu_cfg_get_string(cfg, "cmdline", &cmdline, 0);
    xlu_cfg_get_string(cfg, "root", &root, 0);
    xlu_cfg_get_string(cfg, "extra", &extra, 0);
    if (cmdline)
        return snap_xstrdup(cmdline);
    if (root && extra)
        return snap_xasprintf("root=%s %s", root, extra);
    if (root)
        return snap_xasprintf("root=%s", root);
    return extra ? snap_xstrdup(extra) : NULL;
}

static int parse_build_info(XLU_Config *cfg, libxl_domain_build_info *b, snap_err *err)
{
    long l, vcpus = 1;
    if (!xlu_cfg_get_long(cfg, "memory", &l, 0))
        b->target_memkb = (uint64_t)l * 1024;
    if (!xlu_cfg_get_long(cfg, "maxmem", &l, 0))
        b->max_memkb = (uint64_t)l * 1024;
    /* libxl's default is 32 MiB; xl fills max from target. */
    if (b->target_memkb == LIBXL_MEMKB_DEFAULT)
        b->target_memkb = b->max_memkb != LIBXL_MEMKB_DEFAULT ? b->max_memkb : 32768;
    if (b->max_memkb == LIBXL_MEMKB_DEFAULT)
        b->max_memkb = b->target_memkb;
    if (!xlu_cfg_get_long(cfg, "vcpus", &l, 0))
        vcpus = l;
    if (vcpus < 1 || vcpus > 64)
        return snap_err_set(err, SNAP_ERROR_INVAL, "vcpus = %ld: out of range", vcpus);
    b->max_vcpus = (int)vcpus;
    if (!xlu_cfg_get_long(cfg, "maxvcpus", &l, 0))
        b->max_vcpus = (int)l;
    if (b->max_vcpus < vcpus)
        return snap_err_set(err, SNAP_ERROR_INVAL, "maxvcpus < vcpus");
    /* libxl_bitmap_alloc needs a libxl ctx; the layout is public (freed by dispose). */
    b->avail_vcpus.size = (uint32_t)(b->max_vcpus + 7) / 8;
    b->avail_vcpus.map = snap_xcalloc(b->avail_vcpus.size, 1);
    for (long i = 0; i < vcpus; i++)
        libxl_bitmap_set(&b->avail_vcpus, (int)i);
    xlu_cfg_replace_string(cfg, "kernel", &b->kernel, 0);
    xlu_cfg_replace_string(cfg, "ramdisk", &b->ramdisk, 0);
    b->cmdline = parse_cmdline(cfg);
    if (!b->kernel && b->type != LIBXL_DOMAIN_TYPE_HVM)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "a %s domain needs kernel= (xlsim runs no bootloader)",
                            libxl_domain_type_to_string(b->type));
    b->device_model_version = LIBXL_DEVICE_MODEL_VERSION_QEMU_XEN;
    /* xl's keys (unset dm_restrict: false, sim_dm_restricted). */
    xlu_cfg_get_defbool(cfg, "dm_restrict", &b->dm_restrict, 0);
    xlu_cfg_replace_string(cfg, "device_model_user", &b->device_model_user, 0);
    return 0;
}

static int parse_domain(XLU_Config *cfg, libxl_domain_config *d, FILE *report,
                        snap_err *err)
{
    libxl_domain_create_info *c_info = &d->c_info;
    const char *buf;
    int rc = parse_type(cfg, c_info, err);
    if (rc)
        return rc;
    if (xlu_cfg_replace_string(cfg, "name", &c_info->name, 0))
        return snap_err_set(err, SNAP_ERROR_INVAL, "Domain name must be specified.");
    if (!xlu_cfg_get_string(cfg, "uuid", &buf, 0)) {
        if (libxl_uuid_from_string(&c_info->uuid, buf))
            return snap_err_set(err, SNAP_ERROR_INVAL, "Failed to parse UUID: %s", buf);
    } else {
        libxl_uuid_generate(&c_info->uuid);
    }
    libxl_domain_build_info_init_type(&d->b_info, c_info->type);
    if ((rc = parse_build_info(cfg, &d->b_info, err)) ||
        (rc = parse_action(cfg, "on_poweroff", "destroy", &d->on_poweroff, err)) ||
        (rc = parse_action(cfg, "on_reboot", "restart", &d->on_reboot, err)) ||
        (rc = parse_action(cfg, "on_watchdog", "destroy", &d->on_watchdog, err)) ||
        (rc = parse_action(cfg, "on_crash", "destroy", &d->on_crash, err)) ||
        (rc = parse_action(cfg, "on_soft_reset", "soft-reset", &d->on_soft_reset, err)) ||
        (rc = parse_disks(cfg, d, report, err)) || (rc = parse_channels(cfg, d, err)))
        return rc;
    return 0;
}

/* Appends what libxlutil reported (parse errors) to the error message. */
static int with_report(snap_err *err, char *report_text)
{
    size_t n = report_text ? strlen(report_text) : 0;
    while (n && report_text[n - 1] == '\n')
        report_text[--n] = '\0';
    if (n && !strstr(err->msg, report_text)) {
        size_t used = strlen(err->msg);
        snprintf(err->msg + used, sizeof err->msg - used, ": %s", report_text);
    }
    return err->code;
}

int sim_config_read(const char *path, libxl_domain_config *d_config, snap_err *err)
{
    char *report_text = NULL;
    size_t report_len = 0;
    FILE *report = open_memstream(&report_text, &report_len);
    if (!report)
        return snap_err_errno(err, SNAP_ERROR_IO, errno, "config %s", path);
    XLU_Config *cfg = xlu_cfg_init(report, path);
    int rc;
    if (!cfg) {
        rc = snap_err_set(err, SNAP_ERROR_FAIL, "cannot allocate the config parser");
    } else {
        int e = xlu_cfg_readfile(cfg, path);
        if (e)
            rc = snap_err_errno(err, e == ENOENT ? SNAP_ERROR_NOTFOUND : SNAP_ERROR_INVAL,
                                e, "Failed to parse config");
        else
            rc = parse_domain(cfg, d_config, report, err);
        xlu_cfg_destroy(cfg);
    }
    fclose(report);
    if (rc) {
        with_report(err, report_text);
        snap_err_context(err, "config %s", path);
    }
    free(report_text);
    return rc;
}
