/*
 * th_qemu — real QEMU processes and qcow2 images for tests.
 *
 *     th_qemu vm;
 *     const char *disk = th_qemu_img_create("a.qcow2", "64M", NULL);
 *     const char *args[] = {"-drive", th_qemu_drive_arg(disk, "drive0"),
 *                           "-device", "virtio-blk-pci,drive=drive0,id=vda", NULL};
 *     REQUIRE(th_qemu_start(&vm, "vm", args));
 *     ... snap_qmp_connect(vm.qmp_path, ...) ...
 *     th_qemu_stop(&vm);          // also happens at exit (th_spawn registry)
 *
 * QEMU runs as `qemu-system-x86_64 -machine q35 -accel tcg -nodefaults
 * -display none -S -qmp unix:<tmpdir>/<name>.qmp,server=on,wait=off <args>`:
 * no guest, paused in prelaunch; the block layer and QMP work all the same.
 * Its stdout/stderr go to <tmpdir>/<name>.log.
 */
#ifndef XLSNAP_TH_QEMU_H
#define XLSNAP_TH_QEMU_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct th_qemu {
    pid_t pid;           /* -1 when not running */
    char qmp_path[4096]; /* the QMP socket */
    char log_path[4096]; /* QEMU's stdout + stderr */
} th_qemu;

/*
 * Starts QEMU with the extra arguments (NULL-terminated, may be NULL) and
 * waits until its QMP socket listens (without connecting to it: QMP serves
 * one client). False (with a failure and QEMU's log recorded) on error.
 */
bool th_qemu_start(th_qemu *vm, const char *name, const char *const extra[]);
/* Stops QEMU by PID (SIGTERM, then SIGKILL) and waits, so image locks are gone. */
void th_qemu_stop(th_qemu *vm);
/* True while the QEMU process lives. */
bool th_qemu_alive(th_qemu *vm);

/*
 * `qemu-img create -f qcow2 [-b backing -F qcow2] <tmpdir>/name size`.
 * Returns the image's path (static rotating buffer, as th_path), NULL on failure.
 */
const char *th_qemu_img_create(const char *name, const char *size, const char *backing);

/* "file=<path>,if=none,id=<id>,format=qcow2" (rotating buffer). */
const char *th_qemu_drive_arg(const char *path, const char *id);
/*
 * Fills args with the -blockdev pair Xen's qdisk uses for vdev (node-names
 * "<vdev>-file" and "<vdev>-qcow2") and a virtio-blk device with id vdev.
 * args needs room for 6 entries; the strings are malloc'd into *owned
 * (free with th_qemu_free_args). Returns the number of entries written.
 */
int th_qemu_blockdev_args(const char *path, const char *vdev, const char *args[6],
                          char *owned[3]);
void th_qemu_free_args(char *owned[3]);

/*
 * `qemu-img snapshot -l -U path`: true when a snapshot named name is listed.
 * The image may be in use by a running QEMU (read-only, force-share).
 */
bool th_qemu_img_has_snapshot(const char *path, const char *name);
/* `qemu-img info -U --backing-chain --output=json path`, malloc'd; NULL on failure. */
char *th_qemu_img_info_chain(const char *path);
/*
 * `qemu-io -r -U -c "read -P pattern offset len" path`: true when the image
 * reads back that byte pattern there.
 */
bool th_qemu_io_reads_pattern(const char *path, int pattern, const char *offset,
                              const char *len);

#endif
