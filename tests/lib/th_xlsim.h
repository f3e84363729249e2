/*
 * th_xlsim — a simulated dom0 for tests: the project's xenstored, xlsim
 * domains running the real test guest, the built xlsnap command, and a
 * "world" capture to prove that a failed command changed nothing.
 *
 *     REQUIRE(th_xlsim_init());                    // xenstored + environment
 *     th_xlsim_opts o = {.extra = "xlsnap.writer=vdb"};
 *     th_xlsim_dom d;
 *     REQUIRE(th_xlsim_create(&d, "g1", &o));       // mkdisk, cfg, `xlsim create`
 *     REQUIRE(th_xlsim_wait_agent(&d, 90000));      // console ready + agent answers
 *     char *before = th_world_capture(&d, TH_WORLD_LIVE);
 *     th_cmd r;
 *     th_xlsnap(&r, "snapshot-create", "-q", "required", "g1", "s1", NULL);
 *     CHECK_INT(r.rc, 1);
 *     char *after = th_world_capture(&d, TH_WORLD_LIVE);
 *     CHECK_WORLD(before, after);
 *     th_cmd_free(&r);
 *     th_xlsim_destroy(&d);                         // `xlsim destroy`
 *
 * th_xlsim_init() sets, under th_tmpdir(): XENSTORED_PATH (xenstored.sock),
 * XLSNAP_XEN_STATEDIR (xen/), XLSNAP_XEN_RUNDIR (run/), XLSNAP_STATEDIR
 * (xlsnap/) and XLSNAP_PLATFORM=sim, so xlsim, xlsnap and libsnap calls in
 * the test all see the same dom0. Each domain's disks live in
 * th_tmpdir()/<name>-disks/ (root.qcow2 = xvda, data.qcow2 = xvdb). The QEMU
 * that `xlsim create` leaves running is th_adopt()ed: killed at exit even when
 * a test fails.
 */
#ifndef XLSNAP_TH_XLSIM_H
#define XLSNAP_TH_XLSIM_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "th_guest.h"

/* ------------------------------------------------------------ the dom0 */

/* Starts xenstored and sets the environment (once per program; later calls: no-op). */
bool th_xlsim_init(void);
/* The directories th_xlsim_init() set up. */
const char *th_xlsim_statedir(void);     /* XLSNAP_STATEDIR: xlsnap's metadata */
const char *th_xlsim_xen_statedir(void); /* XLSNAP_XEN_STATEDIR: libxl userdata */
const char *th_xlsim_rundir(void);       /* XLSNAP_XEN_RUNDIR: QMP sockets, consoles */

/* ------------------------------------------------------------ domains */

typedef struct th_xlsim_opts {
    const char *extra;              /* extra kernel options, e.g. "xlsnap.writer=vdb" */
    bool no_agent;                  /* leave out the org.qemu.guest_agent.0 channel */
    const char *const *extra_disks; /* NULL-terminated xl disk specs; "@DISK_DIR@" is
                                       replaced, e.g. "format=raw, vdev=xvdc, access=rw,
                                       backendtype=qdisk, target=@DISK_DIR@/c.raw" */
    int root_mb, data_mb;           /* disk sizes (default 64 and 32) */
    const char *extra_cfg; /* lines appended to the config, e.g. "dm_restrict=1" */
} th_xlsim_opts;

typedef struct th_xlsim_dom {
    char name[64];
    unsigned domid;
    /* pid: the adopted QEMU (-1 once gone); qmp_path: <rundir>/qmp-libxl-<domid>;
     * agent_path: the channel socket; serial_path: the console log; log_path:
     * QEMU's output. th_guest_wait_ready/th_guest_wait_exit work on it. */
    th_guest_vm vm;
    char disk_dir[PATH_MAX];
    char root[PATH_MAX], data[PATH_MAX]; /* xvda and xvdb images */
    char cfg_path[PATH_MAX];
    bool has_agent;
} th_xlsim_dom;

/*
 * Makes the domain's disks (mkdisk; extra disks are the caller's business),
 * writes its config from tools/xlsim/examples/guest.cfg.in, runs
 * `xlsim create` and adopts its QEMU. Does not wait for the guest to boot.
 */
bool th_xlsim_create(th_xlsim_dom *d, const char *name, const th_xlsim_opts *opts);
/*
 * Waits for the guest's ready line on its console, then (with an agent
 * channel) for the agent to answer guest-sync.
 */
bool th_xlsim_wait_agent(const th_xlsim_dom *d, int timeout_ms);
/* `xlsim destroy`: QEMU gone, the domain's xenstore nodes and userdata removed. */
bool th_xlsim_destroy(th_xlsim_dom *d);
/*
 * Powers the guest off from inside (agent guest-shutdown) and waits for QEMU
 * to exit. The domain stays in xenstore: an offline domain for xlsnap.
 */
bool th_xlsim_poweroff(th_xlsim_dom *d, int timeout_ms);
/* `xlsim pause` / `xlsim unpause`. */
bool th_xlsim_pause(const th_xlsim_dom *d, bool pause);

/* Agent helpers on the domain's channel (connect, command, close). */
/* guest-fsfreeze-status: "thawed", "frozen" (malloc'd); NULL on failure. */
char *th_xlsim_fsfreeze_status(const th_xlsim_dom *d);
/* Runs `sh -c script` in the guest; its exit code, -1 on failure; stdout in *out. */
int th_xlsim_guest_sh(const th_xlsim_dom *d, const char *script, char **out);

/* xenstore-read of path (malloc'd, no trailing newline); NULL if absent. */
char *th_xs_read(const char *path);
/* /local/domain/0/backend/qdisk/<domid>/<devid>/<key> of the disk vdev (malloc'd). */
char *th_xlsim_backend(const th_xlsim_dom *d, const char *vdev, const char *key);
/* The domain's stored libxl-json config (malloc'd); NULL if absent. */
char *th_xlsim_userdata(const th_xlsim_dom *d);

/* ------------------------------------------------------------ xlsnap */

typedef struct th_cmd {
    int rc; /* exit code; -1 if it could not run or died by a signal */
    char *out, *err;
} th_cmd;

/* Runs the built xlsnap with the arguments (NULL-terminated); returns r->rc. */
int th_xlsnap(th_cmd *r, const char *arg, ...) __attribute__((sentinel));
int th_xlsnapv(th_cmd *r, const char *const argv[]); /* argv without "xlsnap" */
void th_cmd_free(th_cmd *r);
/* The command's output for a failure message: "exit N; stdout: ...; stderr: ...". */
const char *th_cmd_describe(const th_cmd *r);

/* ------------------------------------------------------------ the world */

/*
 * A text description of everything xlsnap could change for the domain:
 * the files in its disk dir (name, size, mtime, a hash of small files), the
 * snapshot table (`qemu-img snapshot -l -U`) and backing chain of every
 * image there, the xenstore backend and /libxl nodes of the domain, its
 * libxl-json userdata bytes, and xlsnap's metadata dir (paths, sizes,
 * hashes; lock files excepted: an empty lock file is not state).
 * TH_WORLD_LIVE: a running guest may write to its images, so their size
 * and mtime are left out (tables and chains still count).
 */
#define TH_WORLD_LIVE 1u
char *th_world_capture(const th_xlsim_dom *d, unsigned flags);
/* Records a failure listing the lines that differ; true when equal. */
bool th_world_same_at(const char *file, int line, const char *before, const char *after);
#define CHECK_WORLD(before, after) th_world_same_at(__FILE__, __LINE__, (before), (after))

#endif
