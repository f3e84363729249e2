/*
 * th_snaptest — the fixture the snapshot tests on a real guest share: xlsim
 * domains booted with an agent (and optionally the guest's writer), data
 * written and read back on the data disk (xvdb, mounted at /mnt/vdb in the
 * guest), xlsnap commands that must succeed, and checks on the images, the
 * journal, xenstore and the device model.
 *
 *     static th_xlsim_dom g;
 *     static void test_x(void)
 *     {
 *         REQUIRE(SNAP_LAYERS(&g, "-e", "A", "e1", "B"));
 *         CHECK_GUEST_READS(&g, "B");
 *         CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.qcow2"));
 *     }
 *     int main(void)
 *     {
 *         th_snap_run_boot(&g, "dl1", 0);
 *         TH_SNAP_RUN(test_x);          // skipped when the guest did not boot
 *         return th_snap_finish();      // destroys what is still booted
 *     }
 */
#ifndef XLSNAP_TH_SNAPTEST_H
#define XLSNAP_TH_SNAPTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "th_xlsim.h"

#define TH_SNAP_BOOT_TIMEOUT_MS 120000
#define TH_SNAP_WRITER_LOG      "/mnt/vdb/writer.log"

/* ------------------------------------------------------------ booting */

/*
 * th_xlsim_init, XLSNAP_XLSIM set to the built xlsim (for reverts that
 * restart a domain), then every domain created first and waited for after,
 * so they boot side by side. min_records > 0: the guests run the writer
 * (a record every 20 ms to xvdb) and count as booted once it wrote that
 * many. REQUIREs: a failure is recorded and no domain counts as booted.
 */
void th_snap_boot_all(th_xlsim_dom *const doms[], const char *const names[], size_t n,
                      long min_records);
/* Lines the next th_snap_boot_all appends to each domain's config (NULL: none). */
void th_snap_set_extra_cfg(const char *lines);
/* th_snap_boot_all with extra kernel options for the guest (tools/guest/init). */
void th_snap_boot_all_with(th_xlsim_dom *const doms[], const char *const names[],
                           size_t n, long min_records, const char *extra);
/* th_snap_boot_all of one domain, run as the test "test_boot". */
void th_snap_run_boot(th_xlsim_dom *d, const char *name, long min_records);
/* True once d booted (and was not destroyed by th_snap_destroy since). */
bool th_snap_booted(const th_xlsim_dom *d);
/* Runs fn as a test when the last boot succeeded; otherwise the test is skipped. */
void th_snap_run_test(const char *name, void (*fn)(void));
#define TH_SNAP_RUN(fn) th_snap_run_test(#fn, fn)
/* th_xlsim_destroy; d no longer counts as booted. */
bool th_snap_destroy(th_xlsim_dom *d);
/* Destroys the domains still booted, then th_finish(). */
int th_snap_finish(void);

/* ------------------------------------------------------------ the guest */

/* <disk_dir>/<name>; one of 4 rotating static buffers. */
const char *th_snap_disk_file(const th_xlsim_dom *d, const char *name);
/* The files of the disk dir whose names match pattern, one a line (malloc'd);
 * when find fails, a failure is recorded (and "" returned). */
char *th_snap_disk_files(const th_xlsim_dom *d, const char *pattern);

/* Writes "text\n" to /mnt/vdb/state.txt in the guest and syncs. */
bool th_snap_write_disk(const th_xlsim_dom *d, const char *text);
/* Fails unless the guest reads want at the start of state.txt (caches dropped). */
void th_snap_check_guest_reads_at(const char *file, int line, const th_xlsim_dom *d,
                                  const char *want);
#define CHECK_GUEST_READS(d, want)                                                       \
    th_snap_check_guest_reads_at(__FILE__, __LINE__, d, want)

/* The writer's log as the live guest sees it (malloc'd); NULL on failure. */
char *th_snap_writer_log(const th_xlsim_dom *d);
/* Waits until the writer's log holds at least n records; fails if it never does. */
bool th_snap_wait_for_records(const th_xlsim_dom *d, long n);

/* ------------------------------------------------------------ xlsnap */

/*
 * Runs xlsnap with the arguments and fails (with its output) unless it exits
 * 0. r: the result, for the caller to check and th_cmd_free; NULL: dropped.
 */
bool th_snap_xlsnap_ok_at(const char *file, int line, th_cmd *r, const char *arg, ...)
    __attribute__((sentinel));
#define XLSNAP_OK(r, ...)                                                                \
    th_snap_xlsnap_ok_at(__FILE__, __LINE__, r, __VA_ARGS__, (char *)NULL)

/* `xlsnap snapshot-create [opt] <dom> <name>`; fails (with its output) unless exit 0. */
bool th_snap_create_at(const char *file, int line, const th_xlsim_dom *d, const char *opt,
                       const char *name);
#define SNAP_CREATE(d, opt, name) th_snap_create_at(__FILE__, __LINE__, d, opt, name)
/*
 * A history on the data disk: text, snapshot name, text, ..., text
 * (NULL-terminated): each text written (th_snap_write_disk), each name
 * snapshotted with SNAP_CREATE(d, opt, name). False at the first failure.
 */
bool th_snap_layers_at(const char *file, int line, const th_xlsim_dom *d, const char *opt,
                       ...) __attribute__((sentinel));
#define SNAP_LAYERS(d, opt, ...)                                                         \
    th_snap_layers_at(__FILE__, __LINE__, d, opt, __VA_ARGS__, (char *)NULL)
/*
 * `xlsnap snapshot-delete [opt] <dom> <name>`: its exit code. Its stderr in
 * *err_out (malloc'd) when err_out is given, otherwise noted on failure.
 */
int th_snap_delete(const th_xlsim_dom *d, const char *opt, const char *name,
                   char **err_out);
/*
 * `xlsnap snapshot-revert [opt] <dom> <name>`, which must exit 0, then the
 * domain's (new) QEMU adopted. A revert that boots afresh still has to wait
 * for the agent.
 */
bool th_snap_revert_at(const char *file, int line, th_xlsim_dom *d, const char *opt,
                       const char *name);
#define SNAP_REVERT(d, opt, name) th_snap_revert_at(__FILE__, __LINE__, d, opt, name)
/* th_xlsim_wait_agent with the boot timeout. */
bool th_snap_wait_agent(const th_xlsim_dom *d);

/* `snapshot-list` of d: brings xlsnap's .index cache up to date before a world capture.
 */
void th_snap_refresh_index(const th_xlsim_dom *d);
/* Captures d's world again, fails unless it equals before; frees before. */
void th_snap_check_world_kept_at(const char *file, int line, const th_xlsim_dom *d,
                                 char *before);
#define CHECK_WORLD_KEPT(d, before)                                                      \
    th_snap_check_world_kept_at(__FILE__, __LINE__, d, before)

/* d's agent says "thawed" and a write to /mnt/vdb in the guest succeeds. */
void th_snap_check_thawed_at(const char *file, int line, const th_xlsim_dom *d);
#define CHECK_GUEST_THAWED(d) th_snap_check_thawed_at(__FILE__, __LINE__, d)

/* snapshot-info <dom> <name> exits 0 and says "Current: yes". */
void th_snap_check_current_at(const char *file, int line, const th_xlsim_dom *d,
                              const char *name);
#define CHECK_SNAP_CURRENT(d, name) th_snap_check_current_at(__FILE__, __LINE__, d, name)
/* snapshot-info <dom> <name> exits with rc (0: the record is there, 1: it is not). */
void th_snap_check_info_rc_at(const char *file, int line, const th_xlsim_dom *d,
                              const char *name, int rc);
#define CHECK_SNAP_EXISTS(d, name)                                                       \
    th_snap_check_info_rc_at(__FILE__, __LINE__, d, name, 0)
#define CHECK_SNAP_GONE(d, name) th_snap_check_info_rc_at(__FILE__, __LINE__, d, name, 1)
/*
 * After an interrupted command: the next one (`-N snapshot-create <dom>
 * probe`) exits 0, says expect on stderr, and leaves no journal behind.
 */
void th_snap_check_recovers_at(const char *file, int line, const th_xlsim_dom *d,
                               const char *expect);
#define CHECK_RECOVERS(d, expect) th_snap_check_recovers_at(__FILE__, __LINE__, d, expect)

/* ------------------------------------------------------------ dom0 and images */

/* The device model after a revert or restart is a new QEMU: adopt it (killed at exit). */
void th_snap_adopt_new_qemu(th_xlsim_dom *d);
/* `xlsim list` (malloc'd); NULL if it could not run. */
char *th_snap_xlsim_list(void);
/* The image disk vdev is on per xenstore ("qcow2:/path" -> "/path"; malloc'd) or NULL. */
char *th_snap_active_image(const th_xlsim_dom *d, const char *vdev);
/* xenstore's params of disk vdev are exactly "qcow2:<disk_dir>/<file>". */
void th_snap_check_active_at(const char *file, int line, const th_xlsim_dom *d,
                             const char *vdev, const char *image);
#define CHECK_ACTIVE_IMAGE(d, vdev, image)                                               \
    th_snap_check_active_at(__FILE__, __LINE__, d, vdev, image)

/*
 * QEMU's backing chain of disk vdev as query-block shows it: the image files,
 * active image first, one a line (malloc'd). NULL (a failure recorded) when
 * QMP cannot be asked or QEMU has no such disk.
 */
char *th_snap_qemu_chain(const th_xlsim_dom *d, const char *vdev);
/*
 * path's contents in the ext4 of image, read while the domain is paused
 * (`xlsim pause`: QEMU's I/O drained and flushed, so the image files hold
 * everything the guest wrote), then unpaused. Malloc'd; NULL if unreadable.
 */
char *th_snap_read_paused(const th_xlsim_dom *d, const char *image, const char *path);

/* The backing file recorded in image (qemu-img info -U; malloc'd) or NULL when
 * it has none; a failed qemu-img is a recorded failure, never "no backing". */
char *th_snap_backing_of(const char *image);
/* qemu-img snapshot -l -U of image (malloc'd); a failed qemu-img is a recorded
 * failure (and "" returned), so "not in the table" never passes by accident. */
char *th_snap_table(const char *image);
/*
 * Every .journal.json under XLSNAP_STATEDIR/snapshots, its path then its
 * text (malloc'd): "" when there is none, NULL if find could not run.
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

/* ------------------------------------------------------------ text */

/* Fails for each needle (a NULL-terminated list) that text does not contain. */
void th_snap_check_contains_all_at(const char *file, int line, const char *what,
                                   const char *text, ...) __attribute__((sentinel));
#define CHECK_CONTAINS_ALL(text, ...)                                                    \
    th_snap_check_contains_all_at(__FILE__, __LINE__, #text, text, __VA_ARGS__,          \
                                  (char *)NULL)

#endif
