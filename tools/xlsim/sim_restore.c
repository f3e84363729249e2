/*
 * Starting a simulated domain again after its device model was stopped
 * (xlsnap's revert): `xlsim relaunch` boots it afresh, `xlsim restore`
 * loads a memory checkpoint into a QEMU started with -incoming defer, the
 * way `xl restore` rebuilds a domain from a save file. The domain keeps its
 * domid, xenstore nodes and stored config; its disks are taken from the
 * stored libxl-json, which xlsnap points at the reverted images.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_domcfg.h"
#include "snap_qmp.h"
#include "xlsim.h"

#define INCOMING_TIMEOUT_MS 600000
#define QMP_TIMEOUT_MS      5000
#define STOP_TIMEOUT_MS     10000

int sim_userdata_store_xl(const sim_env *env, uint32_t domid, const char *uuid,
                          const char *cfg_path, snap_err *err)
{
    FILE *in = fopen(cfg_path, "r");
    if (!in)
        return snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno, "%s", cfg_path);
    char *path = snap_domcfg_userdata_path(env->statedir, domid, uuid, "d", "xl");
    char *tmp = snap_domcfg_userdata_path(env->statedir, domid, uuid, "n", "xl");
    int rc = 0;
    FILE *out = fopen(tmp, "w");
    if (!out)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", tmp);
    char buf[8192];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", tmp);
    if (out && (fclose(out) != 0 || chmod(tmp, 0600) != 0) && !rc)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "%s", tmp);
    if (!rc && rename(tmp, path) != 0)
        rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "rename %s", tmp);
    if (rc)
        unlink(tmp);
    fclose(in);
    free(path);
    free(tmp);
    return rc ? snap_err_context(err, "storing the xl config") : 0;
}

/* Every disk as the stored libxl-json says now (xlsnap may have switched it). */
static int apply_stored_disks(const sim_env *env, uint32_t domid, const char *uuid,
                              libxl_domain_config *d, snap_err *err)
{
    char *json = NULL;
    size_t len;
    int rc = snap_domcfg_read(env->statedir, domid, uuid, &json, &len, err);
    for (int i = 0; i < d->num_disks && !rc; i++) {
        libxl_device_disk *disk = &d->disks[i];
        snap_domcfg_disk sd = {0};
        rc = snap_domcfg_find_disk(json, disk->vdev, &sd, err);
        if (!rc && sd.pdev_path) {
            free(disk->pdev_path);
            disk->pdev_path = snap_xstrdup(sd.pdev_path);
        }
        if (!rc && sd.format && libxl_disk_format_from_string(sd.format, &disk->format))
            rc = snap_err_set(err, SNAP_ERROR_INVAL, "disk %s: unknown format %s",
                              disk->vdev, sd.format);
        snap_domcfg_disk_dispose(&sd);
    }
    free(json);
    return rc ? snap_err_context(err, "stored configuration of domain %u", domid) : 0;
}

static void fdname_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "fdname", opaque);
}

static void uri_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "uri", opaque);
}

/* Polls until QEMU leaves "inmigrate"; a failed load makes QEMU exit. */
static int wait_incoming(snap_qmp *qmp, pid_t pid, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(INCOMING_TIMEOUT_MS);
    for (;;) {
        snap_qmp_status st;
        int rc = snap_qmp_query_status(qmp, &st, QMP_TIMEOUT_MS, err);
        if (rc)
            return sim_pid_alive(pid)
                       ? rc
                       : snap_err_set(err, SNAP_ERROR_PEER,
                                      "QEMU [%d] exited while loading the memory file",
                                      (int)pid);
        if (strcmp(st.status, "inmigrate") != 0)
            return 0;
        if (snap_deadline_poll_ms(deadline) == 0)
            return snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                                "loading the memory file did not finish in %d s",
                                INCOMING_TIMEOUT_MS / 1000);
        usleep(20 * 1000);
    }
}

/* getfd + migrate-incoming fd:NAME, then waits for the state to be loaded. */
static int load_memory(const char *qmp_path, pid_t pid, const char *file, bool paused,
                       snap_err *err)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno, "memory file %s", file);
    snap_qmp *qmp;
    int rc = snap_qmp_connect(qmp_path, QMP_TIMEOUT_MS, &qmp, err);
    if (!rc) {
        rc = snap_qmp_execute_with_fd(qmp, "getfd", fdname_args, "xlsim-incoming", fd,
                                      NULL, QMP_TIMEOUT_MS, err);
        if (!rc)
            rc = snap_qmp_execute(qmp, "migrate-incoming", uri_args, "fd:xlsim-incoming",
                                  NULL, QMP_TIMEOUT_MS, err);
        if (!rc)
            rc = wait_incoming(qmp, pid, err);
        if (!rc && !paused)
            rc = snap_qmp_cont(qmp, QMP_TIMEOUT_MS, err);
        snap_qmp_close(qmp);
    }
    close(fd);
    return rc ? snap_err_context(err, "restoring from %s", file) : 0;
}

static int relaunch_config(const sim_env *env, uint32_t domid, const char *uuid,
                           libxl_domain_config *d, snap_err *err)
{
    char *path = snap_domcfg_userdata_path(env->statedir, domid, uuid, "d", "xl");
    int rc = access(path, R_OK) == 0
                 ? sim_config_read(path, d, err)
                 : snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno,
                                  "domain %u has no stored xl config %s", domid, path);
    free(path);
    return rc ? rc : apply_stored_disks(env, domid, uuid, d, err);
}

int sim_relaunch(const sim_env *env, uint32_t domid, const char *memory_file, bool paused,
                 snap_err *err)
{
    struct xs_handle *xs = sim_xs_open(err);
    if (!xs)
        return err->code;
    char *uuid = sim_xs_dom_uuid(xs, domid);
    pid_t old = sim_xs_dm_pid(xs, domid);
    libxl_domain_config d;
    libxl_domain_config_init(&d);
    pid_t pid = -1;
    int rc = 0;
    if (!uuid)
        rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "domain %u has no uuid", domid);
    else if (old > 0 && sim_pid_alive(old))
        rc = snap_err_set(err, SNAP_ERROR_BUSY,
                          "domain %u still has a device model (QEMU [%d])", domid,
                          (int)old);
    if (!rc)
        rc = relaunch_config(env, domid, uuid, &d, err);
    if (!rc)
        rc = sim_qemu_start(env, domid, &d, paused || memory_file, memory_file != NULL,
                            &pid, err);
    if (!rc)
        rc = sim_xs_record_dm(xs, domid, pid, err);
    if (!rc && memory_file) {
        char *qmp = sim_qmp_path(env, domid);
        rc = load_memory(qmp, pid, memory_file, paused, err);
        free(qmp);
    } else if (!rc && !paused) {
        char *qmp = sim_qmp_path(env, domid);
        rc = sim_qmp_run(qmp, "cont", NULL, QMP_TIMEOUT_MS, err);
        free(qmp);
    }
    if (rc && pid > 0) {
        snap_err ignored;
        sim_qemu_stop(env, domid, pid, STOP_TIMEOUT_MS, &ignored);
    }
    libxl_domain_config_dispose(&d);
    free(uuid);
    xs_close(xs);
    return rc ? snap_err_context(err, "domain %u", domid) : 0;
}
