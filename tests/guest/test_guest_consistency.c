/*
 * Snapshot consistency on a real guest (issue 4, item 3), on a simulated
 * dom0: two domains made by `xlsim create` from
 * tools/xlsim/examples/guest.cfg.in boot side by side, each with the guest's
 * writer appending fsync'd records to its data disk (xvdb, /mnt/vdb). On one,
 * libsnap's agent client (snap_agent) reached through the channel socket of
 * the config freezes the guest's filesystems, a QMP blockdev-snapshot-sync
 * of xvdb-qcow2 follows on xlsim's QMP socket, then the thaw; offline, the
 * base image's ext4 has no needs_recovery, e2fsck finds it clean, and its
 * writer log is complete and exactly the live log's prefix. The other domain
 * takes the same snapshot without freeze and its base needs recovery, which
 * is what makes the first case meaningful.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_agent.h"
#include "snap_qmp.h"
#include "th.h"
#include "th_guest.h"
#include "th_qemu.h"
#include "th_snaptest.h"

#define MIN_RECORDS 20

/* ------------------------------------------------ the writer-log parser */

static void test_writer_log_parse(void)
{
    th_writer_log log;
    CHECK(th_writer_log_parse("7 100\n8 120\n9 200\n", &log));
    CHECK_INT(log.first, 7);
    CHECK_INT(log.last, 9);
    CHECK_INT(log.records, 3);
    CHECK_INT(log.max_gap_ms, 80);
    CHECK_INT(log.last_ms, 200);

    CHECK(!th_writer_log_parse("1 10\n2 20\n4 40\n", &log));
    CHECK_CONTAINS(log.problem, "record 4 follows record 2");
    CHECK(!th_writer_log_parse("1 10\n2 20\n3 3", &log));
    CHECK_CONTAINS(log.problem, "record 3 is cut short");
    CHECK_INT(log.records, 2);
    CHECK(!th_writer_log_parse("1 10\n\n2 20\n", &log));
    CHECK_CONTAINS(log.problem, "malformed");
    CHECK(!th_writer_log_parse("", &log));
    CHECK_CONTAINS(log.problem, "no records");
}

/* ------------------------------------------------ the two domains */

static th_xlsim_dom frozen_dom, unfrozen_dom;

/*
 * Creates both domains first, then waits for both (they boot in parallel)
 * until each writer has put MIN_RECORDS records on its disk.
 */
static void test_boot_two_domains(void)
{
    th_xlsim_dom *const doms[] = {&frozen_dom, &unfrozen_dom};
    const char *const names[] = {"frozen", "unfrozen"};
    th_snap_boot_all(doms, names, 2, MIN_RECORDS);
    REQUIRE(th_snap_booted(&frozen_dom));
    /* The agent socket is the one the config's channel names. */
    char *cfg = th_read_file(frozen_dom.cfg_path);
    CHECK_CONTAINS(cfg, frozen_dom.vm.agent_path);
    free(cfg);
}

/* ------------------------------------------------ helpers */

/* Freezes every filesystem of the guest (both disks) with libsnap's client. */
static bool freeze(snap_agent *ag)
{
    snap_err err = {0};
    snap_agent_freeze_result res;
    if (snap_agent_freeze(ag, NULL, 0, 20000, 5000, &res, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "freeze: %s", err.msg);
        return false;
    }
    CHECK_INT(res.state, SNAP_AGENT_FROZEN);
    CHECK_INT(res.frozen, 2); /* /mnt/vda and /mnt/vdb */
    return res.state == SNAP_AGENT_FROZEN;
}

static void thaw(snap_agent *ag)
{
    snap_err err = {0};
    snap_agent_freeze_result res;
    if (snap_agent_thaw(ag, 10000, 5000, &res, &err) != 0)
        th_fail_at(__FILE__, __LINE__, "thaw: %s", err.msg);
    CHECK_INT(res.state, SNAP_AGENT_THAWED);
    CHECK_INT(res.thawed, 2);
}

/* blockdev-snapshot-sync of xvdb-qcow2 (the node name xen-block gives it). */
static bool snapshot_xvdb(const th_xlsim_dom *d, const char *overlay)
{
    snap_err err = {0};
    snap_qmp *qmp = NULL;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, NULL, "xvdb-qcow2", "xvdb-snap", overlay, "qcow2");
    int rc = snap_qmp_connect(d->vm.qmp_path, 10000, &qmp, &err);
    if (rc == 0)
        rc = snap_qmp_transaction(qmp, tx, 10000, &err);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "%s: snapshot of xvdb-qcow2: %s", d->name,
                   err.msg);
    snap_qmp_close(qmp);
    snap_qmp_tx_free(tx);
    return rc == 0;
}

/* The overlay QEMU created sits on the base image. */
static void check_chain(const char *overlay, const char *base)
{
    char *chain = th_qemu_img_info_chain(overlay);
    CHECK_CONTAINS(chain, base);
    free(chain);
}

/* The base's writer log is complete and is exactly the start of the live log. */
static void check_writer_logs(const char *base_text, const char *live_text)
{
    th_writer_log base, live;
    REQUIRE(base_text && live_text);
    if (!th_writer_log_parse(base_text, &base))
        th_fail_at(__FILE__, __LINE__, "base writer log: %s", base.problem);
    if (!th_writer_log_parse(live_text, &live))
        th_fail_at(__FILE__, __LINE__, "live writer log: %s", live.problem);
    CHECK(base.records >= MIN_RECORDS);
    CHECK_INT(base.first, 1);
    /* Records went on after the thaw, continuing the base's numbering. */
    CHECK(live.last > base.last);
    CHECK(strncmp(live_text, base_text, strlen(base_text)) == 0);
    th_note("base holds records 1..%ld; live log 1..%ld, longest pause %ld ms", base.last,
            live.last, live.max_gap_ms);
}

/* ------------------------------------------------ the cases */

static void test_frozen_snapshot_is_consistent(void)
{
    th_xlsim_dom *d = &frozen_dom;
    const char *overlay = th_path("frozen-data.snap.qcow2");
    snap_agent *ag = NULL;
    snap_err err = {0};
    if (snap_agent_open(d->vm.agent_path, 10000, NULL, &ag, &err) != 0)
        th_fail_at(__FILE__, __LINE__, "agent: %s", err.msg);
    REQUIRE(ag);
    bool frozen = freeze(ag);
    bool snapped = frozen && snapshot_xvdb(d, overlay);
    thaw(ag);
    snap_agent_close(ag);
    REQUIRE(snapped);
    usleep(300000); /* the writer goes on, into the overlay */

    /* Offline, while the domain runs on the overlay. */
    check_chain(overlay, d->data);
    const char *raw = th_image_to_raw(d->data);
    REQUIRE(raw);
    CHECK_INT(th_ext4_needs_recovery(raw), 0);
    CHECK_INT(th_ext4_fsck(raw), 0);
    char *base_log = th_ext4_cat(raw, "/writer.log");
    char *live = th_snap_writer_log(d);
    check_writer_logs(base_log, live);
    free(base_log);
    free(live);
    CHECK(th_snap_destroy(d));
}

/* The control: the same snapshot without freeze is only crash-consistent. */
static void test_unfrozen_snapshot_needs_recovery(void)
{
    th_xlsim_dom *d = &unfrozen_dom;
    const char *overlay = th_path("unfrozen-data.snap.qcow2");
    REQUIRE(snapshot_xvdb(d, overlay));
    check_chain(overlay, d->data);
    const char *raw = th_image_to_raw(d->data);
    REQUIRE(raw);
    CHECK_INT(th_ext4_needs_recovery(raw), 1);
    CHECK(th_snap_destroy(d));
}

int main(void)
{
    th_plan(4);
    TH_RUN(test_writer_log_parse);
    TH_RUN(test_boot_two_domains);
    TH_SNAP_RUN(test_frozen_snapshot_is_consistent);
    TH_SNAP_RUN(test_unfrozen_snapshot_needs_recovery);
    return th_snap_finish();
}
