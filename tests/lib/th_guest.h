/*
 * th_guest — the real test guest (tools/guest) for tests: build or find it,
 * boot it under QEMU, talk to its qemu-ga, and inspect disk images offline.
 *
 *     const char *disks[] = {th_guest_mkdisk("a.qcow2", 64), NULL};
 *     th_guest_vm vm;
 *     REQUIRE(th_guest_start(&vm, "vm", disks, "xlsnap.writer=vda"));
 *     REQUIRE(th_guest_wait_ready(&vm, 60000));
 *     th_agent *ga = th_agent_connect(vm.agent_path, 10000);   // a snap_agent
 *     char *mounts = th_agent_read_file(ga, "/proc/mounts");
 *     ...
 *     const char *raw = th_image_to_raw(disks[0]);
 *     CHECK_INT(th_ext4_needs_recovery(raw), 0);
 *
 * Everything lives in th_tmpdir(); QEMU goes through th_spawn(), so it is
 * killed at exit even when a test fails. Helpers record a failure (with the
 * tool's output) when something cannot be done, and return NULL/false/-1.
 */
#ifndef XLSNAP_TH_GUEST_H
#define XLSNAP_TH_GUEST_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "qga_guest.h"
#include "snap_json.h"

/* ------------------------------------------------------------ the guest */

/*
 * The directory holding vmlinux and initrd.img, from tools/guest/build-guest
 * (run once per test program; cached across runs). NULL on failure.
 */
const char *th_guest_dir(void);
/* tools/guest/mkdisk: an empty ext4 in a qcow2 at th_tmpdir()/name (rotating buffer). */
const char *th_guest_mkdisk(const char *name, int size_mb);

/* --------------------------------------------------------- plain QEMU */

typedef struct th_guest_vm {
    pid_t pid; /* -1 when not running */
    char qmp_path[PATH_MAX];
    char agent_path[PATH_MAX];  /* the org.qemu.guest_agent.0 chardev socket */
    char serial_path[PATH_MAX]; /* the guest's console */
    char log_path[PATH_MAX];    /* QEMU's stdout + stderr */
} th_guest_vm;

/*
 * Boots the guest under QEMU (TCG unless usable KVM), disks (NULL-terminated
 * qcow2 paths) attached as xvda, xvdb, ... the way Xen's qdisk does: -blockdev
 * with node-names "<vdev>-qcow2" on virtio-blk. append: extra kernel command
 * line options (NULL for none). Returns once QMP listens.
 */
bool th_guest_start(th_guest_vm *vm, const char *name, const char *const disks[],
                    const char *append);
/* Waits for the guest's "XLSNAP-GUEST-READY" console line (agent started). */
bool th_guest_wait_ready(const th_guest_vm *vm, int timeout_ms);
/*
 * Waits for QEMU to exit by itself; true if it did within timeout_ms. Also
 * works on a QEMU the test did not fork (th_adopt()ed, e.g. xlsim's).
 */
bool th_guest_wait_exit(th_guest_vm *vm, int timeout_ms);
/* Kills QEMU (by PID) if it still runs. */
void th_guest_stop(th_guest_vm *vm);
/* True when /dev/kvm is writable and the CPU shows vmx or svm. */
bool th_guest_kvm_usable(void);

/* ------------------------------------------- the agent, for tests */

/*
 * libsnap's agent client (snap_agent) with test-friendly failure handling:
 * each helper records a failure (th_fail_at) with the client's message when
 * it cannot do its job. Connecting waits for an agent that is not up yet.
 */
typedef snap_agent th_agent;

th_agent *th_agent_connect(const char *path, int timeout_ms);
void th_agent_close(th_agent *ga);
/*
 * snap_agent_execute: the "return" value (free with yajl_tree_free), or NULL
 * with the client's error (malloc'd) in *error_out (may be NULL). Records no
 * failure: a test may expect one.
 */
yajl_val th_agent_execute(th_agent *ga, const char *cmd, snap_json_members_fn *args,
                          const void *opaque, int timeout_ms, char **error_out);
/* Sends cmd without waiting for a reply (guest-shutdown sends none). */
bool th_agent_send(th_agent *ga, const char *cmd);
/* guest-file-open/read/close: the whole file, malloc'd; NULL on failure. */
char *th_agent_read_file(th_agent *ga, const char *path);
/*
 * guest-exec of argv (NULL-terminated, absolute argv[0]) with captured output;
 * waits for it and returns its exit code (-1 on failure), stdout in *out.
 */
int th_agent_exec(th_agent *ga, const char *const argv[], char **out);

/* ------------------------------------------------ offline image checks */

/*
 * `qemu-img convert -U -O raw image` into th_tmpdir(); works on a base image
 * while a VM runs on its overlay. Returns the raw path (rotating buffer).
 */
const char *th_image_to_raw(const char *image);
/* `dumpe2fs -h`: 1 when the ext4 has needs_recovery set, 0 when not, -1 on error. */
int th_ext4_needs_recovery(const char *raw);
/* `e2fsck -fn`'s exit code (0: clean), -1 when it could not run. */
int th_ext4_fsck(const char *raw);
/* `debugfs -R "cat path"`: the file's contents, malloc'd; NULL if absent. */
char *th_ext4_cat(const char *raw, const char *path);

/* ------------------------------------------------ the guest's writer log */

typedef struct th_writer_log {
    long records;     /* complete "<seq> <uptime-ms>" lines */
    long first, last; /* first and last sequence numbers */
    long last_ms;     /* uptime of the last record */
    long max_gap_ms;  /* largest uptime step between consecutive records */
    bool contiguous;  /* seq first..last with no hole, nothing malformed */
    char problem[160];
} th_writer_log;

/* Parses a writer.log; false (with problem set) when it is not contiguous. */
bool th_writer_log_parse(const char *text, th_writer_log *log);

#endif
