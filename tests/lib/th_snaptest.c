/* The shared fixture of the snapshot tests on a real guest: see th_snaptest.h. */
#include "th_snaptest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_qmp.h"
#include "th.h"

/* ------------------------------------------------------------ booting */

/* The domains th_snap_boot_all brought up and nobody destroyed since. */
static th_xlsim_dom *booted[8];
/* The last th_snap_boot_all succeeded: the tests that follow may run. */
static bool boot_ok;

static void mark_booted(th_xlsim_dom *d)
{
    for (size_t i = 0; i < sizeof booted / sizeof booted[0]; i++)
        if (!booted[i]) {
            booted[i] = d;
            return;
        }
    th_fail_at(__FILE__, __LINE__, "more than %zu booted domains",
               sizeof booted / sizeof booted[0]);
}

static const char *boot_extra_cfg;

void th_snap_set_extra_cfg(const char *lines)
{
    boot_extra_cfg = lines;
}

void th_snap_boot_all(th_xlsim_dom *const doms[], const char *const names[], size_t n,
                      long min_records)
{
    th_snap_boot_all_with(doms, names, n, min_records, NULL);
}

void th_snap_boot_all_with(th_xlsim_dom *const doms[], const char *const names[],
                           size_t n, long min_records, const char *extra)
{
    boot_ok = false;
    REQUIRE(th_xlsim_init());
    setenv("XLSNAP_XLSIM", th_build_path("xlsim"), 1);
    th_xlsim_opts o = {.extra_cfg = boot_extra_cfg};
    char options[512];
    snprintf(options, sizeof options, "%s%s%s",
             min_records > 0 ? "xlsnap.writer=vdb xlsnap.writer_ms=20" : "",
             min_records > 0 && extra ? " " : "", extra ? extra : "");
    if (options[0])
        o.extra = options;
    for (size_t i = 0; i < n; i++)
        REQUIRE(th_xlsim_create(doms[i], names[i], &o));
    for (size_t i = 0; i < n; i++) {
        REQUIRE(th_snap_wait_agent(doms[i]));
        if (min_records > 0)
            REQUIRE(th_snap_wait_for_records(doms[i], min_records));
    }
    for (size_t i = 0; i < n; i++)
        mark_booted(doms[i]);
    boot_ok = true;
}

/* What th_snap_run_boot and th_snap_run_test hand to the test they run. */
static th_xlsim_dom *boot_dom;
static const char *boot_name;
static long boot_records;
static void (*guard_fn)(void);

static void test_boot(void)
{
    th_snap_boot_all(&boot_dom, &boot_name, 1, boot_records);
}

void th_snap_run_boot(th_xlsim_dom *d, const char *name, long min_records)
{
    boot_dom = d;
    boot_name = name;
    boot_records = min_records;
    th_run_test("test_boot", test_boot);
}

bool th_snap_booted(const th_xlsim_dom *d)
{
    for (size_t i = 0; i < sizeof booted / sizeof booted[0]; i++)
        if (booted[i] == d)
            return true;
    return false;
}

static void run_guarded(void)
{
    if (boot_ok)
        guard_fn();
    else
        th_skip("the guest did not boot");
}

void th_snap_run_test(const char *name, void (*fn)(void))
{
    guard_fn = fn;
    th_run_test(name, run_guarded);
}

bool th_snap_destroy(th_xlsim_dom *d)
{
    for (size_t i = 0; i < sizeof booted / sizeof booted[0]; i++)
        if (booted[i] == d)
            booted[i] = NULL;
    return th_xlsim_destroy(d);
}

int th_snap_finish(void)
{
    for (size_t i = 0; i < sizeof booted / sizeof booted[0]; i++)
        if (booted[i])
            th_snap_destroy(booted[i]);
    return th_finish();
}

/* ------------------------------------------------------------ the guest */

const char *th_snap_disk_file(const th_xlsim_dom *d, const char *name)
{
    static char buf[4][PATH_MAX + 256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d->disk_dir, name);
    return buf[k];
}

/* out, or "" after recording a failure: an absence check ("no x in the
 * listing") must never pass because the listing could not be made. */
static char *listing_or_fail(const char *what, int rc, char *out, char *err)
{
    if (rc != 0 || !out) {
        th_fail_at(__FILE__, __LINE__, "%s: exit %d: %s", what, rc, err ? err : "");
        free(out);
        out = NULL;
    }
    free(err);
    return out ? out : strdup("");
}

char *th_snap_disk_files(const th_xlsim_dom *d, const char *pattern)
{
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, "find", d->disk_dir, "-name", pattern, (char *)NULL);
    char what[PATH_MAX + 64];
    snprintf(what, sizeof what, "find %s -name %s", d->disk_dir, pattern);
    return listing_or_fail(what, rc, out, err);
}

bool th_snap_write_disk(const th_xlsim_dom *d, const char *text)
{
    char script[160];
    snprintf(script, sizeof script, "echo %s >/mnt/vdb/state.txt && sync", text);
    return th_xlsim_guest_sh(d, script, NULL) == 0;
}

void th_snap_check_guest_reads_at(const char *file, int line, const th_xlsim_dom *d,
                                  const char *want)
{
    char *out = NULL;
    th_xlsim_guest_sh(d, "sync; echo 3 >/proc/sys/vm/drop_caches; cat /mnt/vdb/state.txt",
                      &out);
    if (!out || strncmp(out, want, strlen(want)))
        th_fail_at(file, line, "guest reads \"%s\", want %s", out ? out : "(nothing)",
                   want);
    free(out);
}

char *th_snap_writer_log(const th_xlsim_dom *d)
{
    th_agent *ga = th_agent_connect(d->vm.agent_path, 20000);
    char *text = ga ? th_agent_read_file(ga, TH_SNAP_WRITER_LOG) : NULL;
    th_agent_close(ga);
    return text;
}

bool th_snap_wait_for_records(const th_xlsim_dom *d, long n)
{
    for (int tries = 0; tries < 150; tries++) {
        char *text = th_snap_writer_log(d);
        th_writer_log log;
        bool ok = text && th_writer_log_parse(text, &log) && log.records >= n;
        free(text);
        if (ok)
            return true;
        usleep(200000);
    }
    th_fail_at(__FILE__, __LINE__, "%s: the writer wrote fewer than %ld records", d->name,
               n);
    return false;
}

/* ------------------------------------------------------------ xlsnap */

bool th_snap_xlsnap_ok_at(const char *file, int line, th_cmd *r, const char *arg, ...)
{
    const char *argv[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && n + 1 < sizeof argv / sizeof argv[0];
         a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    th_cmd own;
    th_cmd *res = r ? r : &own;
    th_xlsnapv(res, argv);
    bool ok = res->rc == 0;
    if (!ok)
        th_fail_at(file, line, "xlsnap %s: %s", arg, th_cmd_describe(res));
    if (!r)
        th_cmd_free(&own);
    return ok;
}

/* `xlsnap <cmd> [opt] <dom> <name>` into r. */
static int run_on_snapshot(th_cmd *r, const char *cmd, const char *opt,
                           const th_xlsim_dom *d, const char *name)
{
    if (opt)
        return th_xlsnap(r, cmd, opt, d->name, name, NULL);
    return th_xlsnap(r, cmd, d->name, name, NULL);
}

/* run_on_snapshot, which must exit 0 (the failure noted at file:line). */
static bool run_on_snapshot_ok(const char *file, int line, const char *cmd,
                               const char *opt, const th_xlsim_dom *d, const char *name)
{
    th_cmd r;
    run_on_snapshot(&r, cmd, opt, d, name);
    bool ok = r.rc == 0;
    if (!ok)
        th_fail_at(file, line, "%s %s %s: %s", cmd, d->name, name, th_cmd_describe(&r));
    th_cmd_free(&r);
    return ok;
}

bool th_snap_create_at(const char *file, int line, const th_xlsim_dom *d, const char *opt,
                       const char *name)
{
    return run_on_snapshot_ok(file, line, "snapshot-create", opt, d, name);
}

bool th_snap_layers_at(const char *file, int line, const th_xlsim_dom *d, const char *opt,
                       ...)
{
    va_list ap;
    va_start(ap, opt);
    bool ok = true, is_text = true;
    for (const char *s = va_arg(ap, const char *); ok && s;
         s = va_arg(ap, const char *), is_text = !is_text) {
        if (!is_text)
            ok = th_snap_create_at(file, line, d, opt, s);
        else if (!(ok = th_snap_write_disk(d, s)))
            th_fail_at(file, line, "writing %s to the data disk of %s", s, d->name);
    }
    va_end(ap);
    return ok;
}

int th_snap_delete(const th_xlsim_dom *d, const char *opt, const char *name,
                   char **err_out)
{
    th_cmd r;
    int rc = run_on_snapshot(&r, "snapshot-delete", opt, d, name);
    if (rc && !err_out)
        th_note("%s", th_cmd_describe(&r));
    if (err_out)
        *err_out = r.err ? strdup(r.err) : NULL;
    th_cmd_free(&r);
    return rc;
}

bool th_snap_revert_at(const char *file, int line, th_xlsim_dom *d, const char *opt,
                       const char *name)
{
    bool ok = run_on_snapshot_ok(file, line, "snapshot-revert", opt, d, name);
    th_snap_adopt_new_qemu(d);
    return ok;
}

bool th_snap_wait_agent(const th_xlsim_dom *d)
{
    return th_xlsim_wait_agent(d, TH_SNAP_BOOT_TIMEOUT_MS);
}

void th_snap_refresh_index(const th_xlsim_dom *d)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", d->name, NULL);
    th_cmd_free(&r);
}

void th_snap_check_thawed_at(const char *file, int line, const th_xlsim_dom *d)
{
    char *status = th_xlsim_fsfreeze_status(d);
    if (!status || strcmp(status, "thawed") != 0)
        th_fail_at(file, line, "%s: guest filesystems: %s", d->name,
                   status ? status : "(no answer)");
    free(status);
    if (th_xlsim_guest_sh(d, "echo probe >/mnt/vdb/probe && sync", NULL) != 0)
        th_fail_at(file, line, "%s: a write in the guest failed", d->name);
}

void th_snap_check_world_kept_at(const char *file, int line, const th_xlsim_dom *d,
                                 char *before)
{
    char *after = th_world_capture(d, TH_WORLD_LIVE);
    th_world_same_at(file, line, before, after);
    free(before);
    free(after);
}

void th_snap_check_current_at(const char *file, int line, const th_xlsim_dom *d,
                              const char *name)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", d->name, name, NULL);
    if (r.rc != 0 || !r.out || !strstr(r.out, "Current:        yes"))
        th_fail_at(file, line, "%s is not current: %s", name, th_cmd_describe(&r));
    th_cmd_free(&r);
}

void th_snap_check_info_rc_at(const char *file, int line, const th_xlsim_dom *d,
                              const char *name, int rc)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-info", d->name, name, NULL);
    if (r.rc != rc)
        th_fail_at(file, line, "snapshot-info %s: want exit %d: %s", name, rc,
                   th_cmd_describe(&r));
    th_cmd_free(&r);
}

void th_snap_check_recovers_at(const char *file, int line, const th_xlsim_dom *d,
                               const char *expect)
{
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-create", d->name, "probe", NULL);
    if (r.rc != 0 || !r.err || !strstr(r.err, expect))
        th_fail_at(file, line, "recovery, want \"%s\": %s", expect, th_cmd_describe(&r));
    th_cmd_free(&r);
    char *journal = th_snap_journal_text();
    if (!journal || *journal)
        th_fail_at(file, line, "a journal is left: %s", journal ? journal : "(no find)");
    free(journal);
}

/* ------------------------------------------------------------ dom0 and images */

void th_snap_adopt_new_qemu(th_xlsim_dom *d)
{
    char path[96];
    snprintf(path, sizeof path, "/local/domain/%u/image/device-model-pid", d->domid);
    char *pid_s = th_xs_read(path);
    pid_t pid = pid_s ? (pid_t)strtol(pid_s, NULL, 10) : -1;
    free(pid_s);
    if (pid > 0 && pid != d->vm.pid) {
        th_adopt(pid);
        d->vm.pid = pid;
    }
}

char *th_snap_xlsim_list(void)
{
    char *out = NULL;
    th_runl(&out, NULL, th_build_path("xlsim"), "list", (char *)NULL);
    return out;
}

char *th_snap_active_image(const th_xlsim_dom *d, const char *vdev)
{
    char *params = th_xlsim_backend(d, vdev, "params");
    char *colon = params ? strchr(params, ':') : NULL;
    char *path = colon ? strdup(colon + 1) : NULL;
    free(params);
    return path;
}

void th_snap_check_active_at(const char *file, int line, const th_xlsim_dom *d,
                             const char *vdev, const char *image)
{
    char *params = th_xlsim_backend(d, vdev, "params");
    char want[PATH_MAX + 300];
    snprintf(want, sizeof want, "qcow2:%s", th_snap_disk_file(d, image));
    if (!params || strcmp(params, want) != 0)
        th_fail_at(file, line, "%s params \"%s\", want \"%s\"", vdev,
                   params ? params : "(null)", want);
    free(params);
}

char *th_snap_qemu_chain(const th_xlsim_dom *d, const char *vdev)
{
    snap_err err = {0};
    snap_qmp *qmp = NULL;
    snap_qmp_disks disks = {0};
    char *chain = NULL;
    if (snap_qmp_connect(d->vm.qmp_path, 10000, &qmp, &err) != 0 ||
        snap_qmp_query_disks(qmp, &disks, 10000, &err) != 0) {
        th_fail_at(__FILE__, __LINE__, "QMP query-block on %s: %s", d->vm.qmp_path,
                   err.msg);
    } else {
        const snap_qmp_disk *q = snap_qmp_disks_find(&disks, vdev);
        if (!q)
            th_fail_at(__FILE__, __LINE__, "QEMU of %s has no disk %s", d->name, vdev);
        for (size_t i = 0; q && i < q->chain_len; i++) {
            char *longer = snap_xasprintf("%s%s\n", chain ? chain : "", q->chain[i].file);
            free(chain);
            chain = longer;
        }
    }
    snap_qmp_disks_free(&disks);
    snap_qmp_close(qmp);
    return chain;
}

char *th_snap_read_paused(const th_xlsim_dom *d, const char *image, const char *path)
{
    if (!th_xlsim_pause(d, true)) /* the failure is recorded */
        return NULL;
    const char *raw = th_image_to_raw(image);
    char *text = raw ? th_ext4_cat(raw, path) : NULL;
    th_xlsim_pause(d, false);
    return text;
}

char *th_snap_backing_of(const char *image)
{
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, "qemu-img", "info", "-U", image, (char *)NULL);
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "qemu-img info -U %s", image);
    out = listing_or_fail(what, rc, out, err);
    char *b = out ? strstr(out, "backing file: ") : NULL;
    char *res = NULL;
    if (b) {
        b += strlen("backing file: ");
        res = strndup(b, strcspn(b, "\n"));
    }
    free(out);
    return res;
}

char *th_snap_table(const char *image)
{
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, "qemu-img", "snapshot", "-l", "-U", image, (char *)NULL);
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "qemu-img snapshot -l -U %s", image);
    return listing_or_fail(what, rc, out, err);
}

char *th_snap_journal_text(void)
{
    char *out = NULL;
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/snapshots", th_xlsim_statedir());
    th_runl(&out, NULL, "find", dir, "-name", ".journal.json", "-print", "-exec", "cat",
            "{}", ";", (char *)NULL);
    return out;
}

void th_snap_check_image_at(const char *file, int line, const char *image, bool live)
{
    char *out = NULL, *err = NULL;
    int rc = live ? th_runl(&out, &err, "qemu-img", "check", "-U", image, (char *)NULL)
                  : th_runl(&out, &err, "qemu-img", "check", image, (char *)NULL);
    if (rc != 0 && rc != 3)
        th_fail_at(file, line, "qemu-img check %s: %d: %s%s", image, rc, out ? out : "",
                   err ? err : "");
    free(out);
    free(err);
}

/* ------------------------------------------------------------ text */

void th_snap_check_contains_all_at(const char *file, int line, const char *what,
                                   const char *text, ...)
{
    va_list ap;
    va_start(ap, text);
    for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
        if (!text || !strstr(text, n))
            th_fail_at(file, line, "%s contains \"%s\": got \"%s\"", what, n,
                       text ? text : "(null)");
    va_end(ap);
}
