/*
 * th_snaptest — the fixture the snapshot tests on a real guest share: one
 * xlsim domain booted with an agent, data written and read back on its data
 * disk (xvdb, mounted at /mnt/vdb in the guest), xlsnap commands that must
 * succeed, and checks on the images, the journal and the device model.
 *
 *     static th_xlsim_dom g;
 *     static void test_boot(void) { th_snap_boot(&g, "dl1"); }
 *     static void test_x(void)
 *     {
 *         if (!th_snap_guest_up(&g))
 *             return;
 *         REQUIRE(th_snap_write_disk(&g, "A"));
 *         SNAP_CREATE(&g, "-e", "e1");
 *         CHECK_GUEST_READS(&g, "A");
 *         CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.qcow2"));
 *     }
 */
#ifndef XLSNAP_TH_SNAPTEST_H
#define XLSNAP_TH_SNAPTEST_H

#include <stdbool.h>
#include <sys/types.h>

#include "th_xlsim.h"

#define TH_SNAP_BOOT_TIMEOUT_MS 120000

/*
 * th_xlsim_init, XLSNAP_XLSIM set to the built xlsim (for reverts that
 * restart the domain), th_xlsim_create with default options and a wait for
 * the agent (REQUIREs: the calling test stops at a failure). Tests then ask
 * th_snap_guest_up(d).
 */
void th_snap_boot(th_xlsim_dom *d, const char *name);
/* True once th_snap_boot(d) succeeded. */
bool th_snap_booted(const th_xlsim_dom *d);
/* th_snap_booted(d), and otherwise skips the test. */
bool th_snap_guest_up(const th_xlsim_dom *d);

/* <disk_dir>/<name>; one of 4 rotating static buffers. */
const char *th_snap_disk_file(const th_xlsim_dom *d, const char *name);
/* The files of the disk dir whose names match pattern, one a line (malloc'd). */
char *th_snap_disk_files(const th_xlsim_dom *d, const char *pattern);

/* Writes "text\n" to /mnt/vdb/state.txt in the guest and syncs. */
bool th_snap_write_disk(const th_xlsim_dom *d, const char *text);
/* Fails unless the guest reads want at the start of state.txt (caches dropped). */
void th_snap_check_guest_reads_at(const char *file, int line, const th_xlsim_dom *d,
                                  const char *want);
#define CHECK_GUEST_READS(d, want)                                                       \
    th_snap_check_guest_reads_at(__FILE__, __LINE__, d, want)

/* `xlsnap snapshot-create [opt] <dom> <name>`; fails (with its output) unless exit 0. */
void th_snap_create_at(const char *file, int line, const th_xlsim_dom *d, const char *opt,
                       const char *name);
#define SNAP_CREATE(d, opt, name) th_snap_create_at(__FILE__, __LINE__, d, opt, name)
/*
 * `xlsnap snapshot-delete [opt] <dom> <name>`: its exit code. Its stderr in
 * *err_out (malloc'd) when err_out is given, otherwise noted on failure.
 */
int th_snap_delete(const th_xlsim_dom *d, const char *opt, const char *name,
                   char **err_out);

/* The device model after a revert or restart is a new QEMU: adopt it (killed at exit). */
void th_snap_adopt_new_qemu(th_xlsim_dom *d);
/* `xlsim list` (malloc'd); NULL if it could not run. */
char *th_snap_xlsim_list(void);

/* The backing file recorded in image (qemu-img info -U; malloc'd) or NULL. */
char *th_snap_backing_of(const char *image);
/* qemu-img snapshot -l -U of image (malloc'd, "" when it fails). */
char *th_snap_table(const char *image);
/* Every .journal.json under XLSNAP_STATEDIR/snapshots, concatenated (malloc'd) or NULL.
 */
char *th_snap_journal_text(void);

/*
 * qemu-img check of image: no corruption (exit 2 and others fail). Leaks
 * (exit 3) are tolerated: a live image's refcounts may still be in QEMU's
 * cache, and an interrupted merge may leak clusters. live: the image is open
 * in a running QEMU (-U).
 */
void th_snap_check_image_at(const char *file, int line, const char *image, bool live);
#define CHECK_IMAGE_LIVE(image) th_snap_check_image_at(__FILE__, __LINE__, image, true)
#define CHECK_IMAGE_OFFLINE(image)                                                       \
    th_snap_check_image_at(__FILE__, __LINE__, image, false)

#endif
