/*
 * xlsim — `xl create` for hosts without Xen: internal interfaces.
 *
 * A domain is a QEMU process plus everything libxl 4.17 would leave behind
 * (xenstore nodes with libxl's permissions, the stored libxl-json config,
 * QMP socket in the run dir), so that xlsnap cannot tell it from a real one
 * except for hypervisor calls.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#ifndef XLSIM_H
#define XLSIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <inttypes.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <xenstore.h>
#include <yajl/yajl_tree.h>

#include "snap_base.h"

/* Where Xen keeps state and run files; overridable for tests. */
#define SIM_DEFAULT_STATEDIR "/var/lib/xen"
#define SIM_DEFAULT_RUNDIR   "/var/run/xen"
#define SIM_ENV_STATEDIR     "XLSNAP_XEN_STATEDIR"
#define SIM_ENV_RUNDIR       "XLSNAP_XEN_RUNDIR"
#define SIM_ENV_QEMU         "XLSIM_QEMU" /* QEMU binary; default qemu-system-x86_64 */

typedef struct sim_env {
    const char *statedir;
    const char *rundir;
    const char *qemu;
} sim_env;

/* Fills env from the environment (defaults: Xen's directories). */
void sim_env_init(sim_env *env);

/* ------------------------------------------------------------ config */

/*
 * Reads an xl domain config file into d_config (initialised by the caller)
 * the way xl's parse_config_data does for the keys xlsim supports; fills
 * the defaults libxl would (uuid, backend qdisk, channel devids, ...).
 */
int sim_config_read(const char *path, libxl_domain_config *d_config, snap_err *err);

/* libxl__device_disk_dev_number: "xvda" -> 51712; -1 if invalid. */
int sim_vdev_to_devid(const char *vdev);
/* The "<fmt>" of a qdisk backend's params ("qcow2", "aio", ...); NULL if none. */
const char *sim_disk_params_format(libxl_disk_format format);
/* The QEMU block driver xen-block uses for a format ("qcow2", "raw", "vpc"). */
const char *sim_disk_qemu_driver(libxl_disk_format format);

/* ------------------------------------------------------------ xenstore */

/* Connects to xenstored (XENSTORED_PATH honoured by libxenstore). */
struct xs_handle *sim_xs_open(snap_err *err);

/*
 * Allocates the lowest free domid >= 1 and writes every node libxl writes
 * for a new domain with d_config's devices, in one transaction.
 */
int sim_xs_create_domain(struct xs_handle *xs, const libxl_domain_config *d_config,
                         uint32_t *domid_out, snap_err *err);
/* Records the device model (image/device-model-pid, dm-version, dm state). */
int sim_xs_record_dm(struct xs_handle *xs, uint32_t domid, pid_t pid, snap_err *err);
/* Removes the domain's nodes (domain, vm, libxl, backends, device-model). */
int sim_xs_destroy_domain(struct xs_handle *xs, uint32_t domid, snap_err *err);

/* A domain's domid from a name or a number; SNAP_ERROR_NOTFOUND if none. */
int sim_xs_lookup(struct xs_handle *xs, const char *dom, uint32_t *domid_out,
                  snap_err *err);
/* Guest domids present under /local/domain, ascending (malloc'd). */
int sim_xs_list_domids(struct xs_handle *xs, uint32_t **ids_out, unsigned int *n_out,
                       snap_err *err);
/* /local/domain/<domid>/<rel> (malloc'd) or NULL. */
char *sim_xs_read_dom(struct xs_handle *xs, uint32_t domid, const char *rel);
/* The domain's uuid string from its /vm/<uuid> link (malloc'd) or NULL. */
char *sim_xs_dom_uuid(struct xs_handle *xs, uint32_t domid);
/* The device model's pid, or -1. */
pid_t sim_xs_dm_pid(struct xs_handle *xs, uint32_t domid);

/* ------------------------------------------------------------ userdata */

/* Stores d_config as the "libxl-json" userdata, under libxl's userdata lock. */
int sim_userdata_store_config(const sim_env *env, uint32_t domid, const char *uuid,
                              libxl_domain_config *d_config, snap_err *err);
/* Removes every userdata-*.<domid>.<uuid>.* file (libxl__userdata_destroyall). */
int sim_userdata_destroy_all(const sim_env *env, uint32_t domid, const char *uuid,
                             snap_err *err);

/* ------------------------------------------------------------ QEMU */

/* <rundir>/qmp-libxl-<domid> (malloc'd). */
char *sim_qmp_path(const sim_env *env, uint32_t domid);

/*
 * Starts QEMU for the domain, detached (own session, output to
 * <rundir>/qemu-dm-<name>.log), and waits until its QMP socket answers.
 * If QEMU exits first, fails with what QEMU printed.
 */
int sim_qemu_start(const sim_env *env, uint32_t domid,
                   const libxl_domain_config *d_config, bool paused, bool incoming,
                   pid_t *pid_out, snap_err *err);
/*
 * The user a restricted device model runs as, chosen as libxl 4.17 does
 * (libxl__domain_get_device_model_uid): device_model_user if set (even
 * without dm_restrict), else with dm_restrict "<uid>:<gid>" of the
 * xen-qemuuser-range-base user + domid, else xen-qemuuser-shared; neither
 * -> error, as is uid 0. *runas_out is NULL when QEMU runs as root.
 */
int sim_dm_runas(const libxl_domain_build_info *b, uint32_t domid, char **runas_out,
                 snap_err *err);
/* dm_restrict=1 (an unset defbool, as libxl's default: false). */
bool sim_dm_restricted(const libxl_domain_build_info *b);
/* <rundir>/qemu-root-<domid>: the empty chroot of a dm_restrict QEMU (malloc'd). */
char *sim_dm_chroot(const sim_env *env, uint32_t domid);
/* Makes that directory afresh (rmdir, mkdir 0000), as libxl does at each start. */
int sim_dm_make_chroot(const sim_env *env, uint32_t domid, snap_err *err);
/*
 * In the device model's child before exec: its own mount and IPC
 * namespaces and libxl's rlimits (sim_restrict.c says which and why not
 * all). 0, or -1 with the reason on stderr.
 */
int sim_dm_preexec_restrict(void);
/* The fd number a restricted QEMU gets its pre-opened QMP socket on. */
#define SIM_DM_QMP_FD 3
/*
 * libxl__pre_open_qmp_socket: a listening socket at path (an old one
 * removed), for QEMU to inherit; so the socket's peer credentials are
 * ours, not QEMU's, as on Xen.
 */
int sim_dm_pre_open_qmp(const char *path, int *fd_out, snap_err *err);
/*
 * Builds QEMU's argv (NULL-terminated, malloc'd strings); for tests and -n.
 * A dm_restrict domain gets -runas (when sim_dm_runas finds a user) and
 * -chroot, as libxl gives them.
 */
char **sim_qemu_argv(const sim_env *env, uint32_t domid,
                     const libxl_domain_config *d_config, bool paused, bool incoming);
void sim_argv_free(char **argv);
/*
 * Ends the device model: QMP quit (SIGTERM if QMP does not answer, SIGKILL
 * after timeout_ms), then waits for the process to be gone, because QEMU
 * keeps its image locks until it exits.
 */
int sim_qemu_stop(const sim_env *env, uint32_t domid, pid_t pid, int timeout_ms,
                  snap_err *err);
/* True if pid is a live (not zombie) process. */
bool sim_pid_alive(pid_t pid);

/* ------------------------------------------------------------ restart */

/*
 * Stores the xl config file's text as userdata "xl", as xl does, so the
 * domain can be started again later (relaunch/restore).
 */
int sim_userdata_store_xl(const sim_env *env, uint32_t domid, const char *uuid,
                          const char *cfg_path, snap_err *err);
/*
 * A new device model for an existing domain whose QEMU is gone: the config
 * from userdata "xl", its disks as the stored libxl-json says (they may have
 * been switched to other images since), same domid. With memory_file, QEMU
 * starts with -incoming defer and loads that migration stream (`xl restore`).
 * Ends paused or running.
 */
int sim_relaunch(const sim_env *env, uint32_t domid, const char *memory_file, bool paused,
                 snap_err *err);

/* ------------------------------------------------------------ QMP */

/*
 * Runs one QMP command without arguments on the domain's socket; *ret_out
 * (if not NULL) gets the "return" value, freed with yajl_tree_free.
 */
int sim_qmp_run(const char *qmp_path, const char *command, yajl_val *ret_out,
                int timeout_ms, snap_err *err);

/* ------------------------------------------------------------ list */

/* Prints the `xl list` table of the simulated domains; the exit status. */
int sim_list(const sim_env *env);

#endif
