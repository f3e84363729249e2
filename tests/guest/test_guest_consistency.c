/*
 * Snapshot consistency on a real guest (issue 4, item 3): while the guest's
 * writer appends fsync'd records to its data disk, take a QMP
 * blockdev-snapshot-sync on xvda-qcow2 and prove offline what the base image
 * holds. With the agent's freeze around it, the base's ext4 is clean (no
 * needs_recovery, e2fsck clean) and the writer log in it is complete and
 * exactly the live log's prefix; without freeze the base needs recovery,
 * which is what makes the first case meaningful.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "snap_agent.h"
#include "snap_qmp.h"
#include "th.h"
#include "th_guest.h"
#include "th_qemu.h"

#define BOOT_TIMEOUT_MS 90000
#define MIN_RECORDS     20
#define FREEZE_DELAY_S  1 /* the guest's fsfreeze hook delays the freeze this long */

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

/* ------------------------------------------------ helpers */

/* Waits until the writer has put at least n records on its disk. */
static bool wait_for_records(const th_guest_vm *vm, long n)
{
    th_agent *ga = th_agent_connect(vm->agent_path, 30000);
    bool ok = false;
    for (int tries = 0; ga && !ok && tries < 100; tries++) {
        char *text = th_agent_read_file(ga, "/mnt/vda/writer.log");
        th_writer_log log;
        ok = text && th_writer_log_parse(text, &log) && log.records >= n;
        free(text);
        if (!ok)
            usleep(200000);
    }
    th_agent_close(ga);
    return ok;
}

static void freeze_or_thaw(const th_guest_vm *vm, snap_agent **ag, bool freeze)
{
    snap_err err = {0};
    snap_agent_freeze_result res;
    if (!*ag && snap_agent_open(vm->agent_path, 10000, NULL, ag, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "agent: %s", err.msg);
        return;
    }
    uint64_t start = snap_now_ms();
    int rc = freeze ? snap_agent_freeze(*ag, NULL, 0, 20000, 5000, &res, &err)
                    : snap_agent_thaw(*ag, 10000, 5000, &res, &err);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "%s: %s", freeze ? "freeze" : "thaw", err.msg);
    CHECK_INT(res.state, freeze ? SNAP_AGENT_FROZEN : SNAP_AGENT_THAWED);
    if (freeze) {
        CHECK_INT(res.frozen, 1); /* /mnt/vda */
        /* The guest's hook (xlsnap.freeze_delay) ran before the freeze. */
        CHECK(snap_now_ms() - start >= FREEZE_DELAY_S * 1000);
    }
}

static void snapshot_xvda(const th_guest_vm *vm, const char *overlay)
{
    snap_err err = {0};
    snap_qmp *qmp = NULL;
    snap_qmp_tx *tx = snap_qmp_tx_new();
    snap_qmp_tx_add_external(tx, NULL, "xvda-qcow2", "xvda-snap", overlay, "qcow2");
    if (snap_qmp_connect(vm->qmp_path, 10000, &qmp, &err) != 0 ||
        snap_qmp_transaction(qmp, tx, 10000, &err) != 0)
        th_fail_at(__FILE__, __LINE__, "snapshot of xvda-qcow2: %s", err.msg);
    snap_qmp_close(qmp);
    snap_qmp_tx_free(tx);
}

/* Reads the live writer log through the agent, then powers the guest off. */
static char *live_log_and_shutdown(th_guest_vm *vm)
{
    th_agent *ga = th_agent_connect(vm->agent_path, 30000);
    char *live = ga ? th_agent_read_file(ga, "/mnt/vda/writer.log") : NULL;
    if (ga)
        th_agent_send(ga, "guest-shutdown");
    CHECK(th_guest_wait_exit(vm, 30000));
    th_agent_close(ga);
    th_guest_stop(vm);
    return live;
}

/* Boots a guest whose writer runs on xvda (/mnt/vda) and waits for records. */
static bool boot_writer_guest(th_guest_vm *vm, const char *name, const char **base)
{
    char disk_name[64];
    snprintf(disk_name, sizeof disk_name, "%s-base.qcow2", name);
    *base = th_guest_mkdisk(disk_name, 64);
    if (!*base)
        return false;
    const char *disks[] = {*base, NULL};
    char append[128];
    snprintf(append, sizeof append,
             "xlsnap.writer=vda xlsnap.writer_ms=20 "
             "xlsnap.freeze_delay=%d",
             FREEZE_DELAY_S);
    if (!th_guest_start(vm, name, disks, append) ||
        !th_guest_wait_ready(vm, BOOT_TIMEOUT_MS))
        return false;
    if (!wait_for_records(vm, MIN_RECORDS)) {
        th_fail_at(__FILE__, __LINE__, "%s: the writer wrote fewer than %d records", name,
                   MIN_RECORDS);
        return false;
    }
    return true;
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

static void test_frozen_snapshot_is_consistent(void)
{
    th_guest_vm vm;
    const char *base;
    snap_agent *ag = NULL;
    REQUIRE(boot_writer_guest(&vm, "frozen", &base));
    char overlay[4096];
    snprintf(overlay, sizeof overlay, "%s", th_path("frozen-overlay.qcow2"));

    freeze_or_thaw(&vm, &ag, true);
    snapshot_xvda(&vm, overlay);
    freeze_or_thaw(&vm, &ag, false);
    snap_agent_close(ag);
    usleep(300000); /* the writer goes on, into the overlay */

    /* Offline, while the VM runs on the overlay. */
    check_chain(overlay, base);
    const char *raw = th_image_to_raw(base);
    REQUIRE(raw);
    CHECK_INT(th_ext4_needs_recovery(raw), 0);
    CHECK_INT(th_ext4_fsck(raw), 0);
    char *base_log = th_ext4_cat(raw, "/writer.log");
    char *live_log = live_log_and_shutdown(&vm);
    check_writer_logs(base_log, live_log);
    free(base_log);
    free(live_log);
}

/* The control: the same snapshot without freeze is only crash-consistent. */
static void test_unfrozen_snapshot_needs_recovery(void)
{
    th_guest_vm vm;
    const char *base;
    REQUIRE(boot_writer_guest(&vm, "unfrozen", &base));
    char overlay[4096];
    snprintf(overlay, sizeof overlay, "%s", th_path("unfrozen-overlay.qcow2"));

    snapshot_xvda(&vm, overlay);
    check_chain(overlay, base);
    const char *raw = th_image_to_raw(base);
    char *live_log = live_log_and_shutdown(&vm);
    REQUIRE(raw);
    CHECK_INT(th_ext4_needs_recovery(raw), 1);
    free(live_log);
}

int main(void)
{
    TH_RUN(test_writer_log_parse);
    TH_RUN(test_frozen_snapshot_is_consistent);
    TH_RUN(test_unfrozen_snapshot_needs_recovery);
    return th_finish();
}
