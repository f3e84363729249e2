/*
 * snapshot-create when things go wrong, through the real `xlsnap` command on
 * xlsim domains (issue 5, "Tests"): a domain without agent (-q required
 * refused; best-effort crash-consistent, recorded so) that also has a raw
 * disk (AUTO: internal for qcow2, external for raw); an agent whose freeze
 * hangs (the guest's fsfreeze hook sleeps past --freeze-timeout); a QMP
 * transaction that fails inside the frozen window; xlsnap SIGKILLed while the
 * guest is frozen. Every failure leaves the guest thawed and the world
 * (storage, xenstore, libxl config, metadata) exactly as before. The three
 * guests boot in parallel.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap_json.h"
#include "th.h"
#include "th_qemu.h"
#include "th_xlsim.h"

#define BOOT_TIMEOUT_MS 150000
#define FREEZE_DELAY_S  8 /* the hang guest's fsfreeze hook; --freeze-timeout is 2 */
#define LEASE_MS        10000

static th_xlsim_dom na, hang, k;
static bool na_up, hang_up, k_up;

/* ------------------------------------------------------------ helpers */

static bool up(bool flag)
{
    if (!flag)
        th_skip("the guest did not boot");
    return flag;
}

static void check_thawed_at(const th_xlsim_dom *d, const char *file, int line)
{
    char *status = th_xlsim_fsfreeze_status(d);
    if (!status || strcmp(status, "thawed") != 0)
        th_fail_at(file, line, "%s: guest filesystems: %s", d->name,
                   status ? status : "(no answer)");
    free(status);
    if (th_xlsim_guest_sh(d, "echo probe >/mnt/vdb/probe && sync", NULL) != 0)
        th_fail_at(file, line, "%s: a write in the guest failed", d->name);
}
#define CHECK_THAWED(d) check_thawed_at((d), __FILE__, __LINE__)

static char *journal_path(const th_xlsim_dom *d)
{
    char *userdata = th_xlsim_userdata(d);
    snap_err err = {0};
    yajl_val v = userdata ? snap_json_parse(userdata, "libxl-json", &err) : NULL;
    const char *uuid = snap_json_get_string(snap_json_get_object(v, "c_info"), "uuid");
    char *path =
        uuid ? snap_xasprintf("%s/snapshots/%s/.journal.json", th_xlsim_statedir(), uuid)
             : NULL;
    yajl_tree_free(v);
    free(userdata);
    return path;
}

/* Starts xlsnap with the freeze hook and waits until it holds the guest frozen. */
static pid_t start_paused_in_window(const char *const argv[], const char *log,
                                    const char *pause_ms)
{
    const char *full[16] = {th_build_path("xlsnap")};
    for (int i = 0; argv[i] && i < 14; i++)
        full[i + 1] = argv[i];
    setenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE", pause_ms, 1);
    pid_t pid = th_spawn((char *const *)full, log);
    unsetenv("XLSNAP_TEST_PAUSE_AFTER_FREEZE");
    for (int waited = 0; pid > 0 && waited < 30000; waited += 50) {
        char *text = th_read_file(log);
        bool in = text && strstr(text, "test hook: frozen");
        free(text);
        if (in)
            return pid;
        usleep(50000);
    }
    char *text = th_read_file(log);
    th_fail_at(__FILE__, __LINE__, "xlsnap never reached the frozen window: %s",
               text ? text : "");
    free(text);
    th_kill(pid);
    return -1;
}

static void boot_all(void)
{
    /* na's third disk, a raw one, must exist before `xlsim create`. */
    char *dir = snap_xasprintf("%s/na-disks", th_tmpdir());
    char *raw = snap_xasprintf("%s/c.raw", dir);
    mkdir(dir, 0700);
    CHECK_INT(th_runl(NULL, NULL, "qemu-img", "create", "-q", "-f", "raw", raw, "16M",
                      (char *)NULL),
              0);
    const char *extra[] = {"format=raw, vdev=xvdc, access=rw, backendtype=qdisk, "
                           "target=@DISK_DIR@/c.raw",
                           NULL};
    th_xlsim_opts o_na = {.no_agent = true, .extra_disks = extra};
    th_xlsim_opts o_hang = {.extra = "xlsnap.freeze_delay=8"};
    th_xlsim_opts o_k = {.extra = "xlsnap.writer=vdb"};
    bool c_na = th_xlsim_create(&na, "na", &o_na);
    bool c_hang = th_xlsim_create(&hang, "hang", &o_hang);
    bool c_k = th_xlsim_create(&k, "k", &o_k);
    na_up = c_na && th_xlsim_wait_agent(&na, BOOT_TIMEOUT_MS);
    hang_up = c_hang && th_xlsim_wait_agent(&hang, BOOT_TIMEOUT_MS);
    k_up = c_k && th_xlsim_wait_agent(&k, BOOT_TIMEOUT_MS);
    free(dir);
    free(raw);
}

static void test_boot(void)
{
    boot_all();
    CHECK(na_up && hang_up && k_up);
}

/* ------------------------------------------------------------ no agent */

static void test_no_agent_required_refused(void)
{
    if (!up(na_up))
        return;
    th_cmd r;
    /* -N on a domain that never had a snapshot. */
    th_xlsnap(&r, "-N", "snapshot-create", "na", "n0", NULL);
    if (r.rc != 0)
        th_fail_at(__FILE__, __LINE__, "-N: %s", th_cmd_describe(&r));
    th_cmd_free(&r);
    char *before = th_world_capture(&na, TH_WORLD_LIVE);
    th_xlsnap(&r, "snapshot-create", "-q", "required", "na", "n1", NULL);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "agent");
    char *after = th_world_capture(&na, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before);
    free(after);
    th_cmd_free(&r);
}

/* Default policy without agent: crash-consistent, recorded as such; mixed methods. */
static void test_no_agent_best_effort_mixed(void)
{
    if (!up(na_up))
        return;
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "-q", "best-effort", "na", "n2", NULL);
    if (r.rc != 0)
        th_fail_at(__FILE__, __LINE__, "%s", th_cmd_describe(&r));
    th_cmd_free(&r);
    CHECK(th_qemu_img_has_snapshot(na.root, "n2"));
    CHECK(th_qemu_img_has_snapshot(na.data, "n2"));
    char *overlay = snap_xasprintf("%s/c.n2.qcow2", na.disk_dir);
    char *want = snap_xasprintf("qcow2:%s", overlay);
    char *params = th_xlsim_backend(&na, "xvdc", "params");
    CHECK_STR(params, want);
    char *chain = th_qemu_img_info_chain(overlay);
    CHECK_CONTAINS(chain, "c.raw");
    th_xlsnap(&r, "snapshot-info", "--json", "na", "n2", NULL);
    CHECK_INT(r.rc, 0);
    snap_err err = {0};
    yajl_val v = snap_json_parse(r.out, "snapshot-info", &err);
    yajl_val q = snap_json_get_object(v, "quiesce");
    CHECK_STR(snap_json_get_string(q, "state"), "crash-consistent");
    long long frozen = -1;
    CHECK(snap_json_get_int(q, "frozen_count", &frozen) && frozen == 0);
    yajl_tree_free(v);
    th_cmd_free(&r);
    free(overlay), free(want), free(params), free(chain);
}

/* ------------------------------------------------------------ hanging freeze */

/* An unquiesced first snapshot, so the domain's state directory exists (see below). */
static void first_snapshot(const char *dom, const char *name)
{
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "-q", "off", dom, name, NULL);
    if (r.rc != 0)
        th_fail_at(__FILE__, __LINE__, "%s", th_cmd_describe(&r));
    th_cmd_free(&r);
}

/*
 * Note: the world is captured after a first snapshot because a failed create
 * on a domain that never had one leaves its (empty) state directory and a
 * .current without a current snapshot behind: no snapshot state, but not
 * byte-identical either.
 */
static void test_freeze_hangs(void)
{
    if (!up(hang_up))
        return;
    first_snapshot("hang", "h0");
    char *before = th_world_capture(&hang, TH_WORLD_LIVE);
    uint64_t start = snap_now_ms();
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "--freeze-timeout", "2", "hang", "h1", NULL);
    th_note("xlsnap gave up after %llu ms: %s",
            (unsigned long long)(snap_now_ms() - start), r.err);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "freeze");
    /* The delayed freeze may land after xlsnap gave up: it must be undone. */
    usleep((FREEZE_DELAY_S * 1000 + 1000) * 1000);
    CHECK_THAWED(&hang);
    char *after = th_world_capture(&hang, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    CHECK(!th_qemu_img_has_snapshot(hang.root, "h1"));
    free(before);
    free(after);
    th_cmd_free(&r);
}

/* ------------------------------------------------------------ in the window */

/* The 2nd disk's overlay path becomes a directory inside the frozen window. */
static void test_transaction_fails(void)
{
    if (!up(k_up))
        return;
    first_snapshot("k", "k0");
    char *before = th_world_capture(&k, TH_WORLD_LIVE);
    char *ov_root = snap_xasprintf("%s/root.t1.qcow2", k.disk_dir);
    char *ov_data = snap_xasprintf("%s/data.t1.qcow2", k.disk_dir);
    const char *argv[] = {"snapshot-create", "-e", "k", "t1", NULL};
    pid_t pid = start_paused_in_window(argv, th_path("t1.log"), "3000");
    REQUIRE(pid > 0);
    CHECK(mkdir(ov_data, 0700) == 0);
    int status = th_wait(pid, 90000);
    char *log = th_read_file(th_path("t1.log"));
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK_CONTAINS(log, "data.t1.qcow2");
    th_note("xlsnap: %s", log ? log : "");
    rmdir(ov_data);
    CHECK(access(ov_root, F_OK) != 0); /* the overlay it did create is gone */
    CHECK_THAWED(&k);
    char *after = th_world_capture(&k, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before), free(after), free(log), free(ov_root), free(ov_data);
}

static void test_sigkill_while_frozen(void)
{
    if (!up(k_up))
        return;
    char *before = th_world_capture(&k, TH_WORLD_LIVE);
    const char *argv[] = {"snapshot-create", "-e", "k", "k1", NULL};
    pid_t pid = start_paused_in_window(argv, th_path("k1.log"), "60000");
    REQUIRE(pid > 0);
    char *journal = journal_path(&k);
    CHECK(journal && access(journal, F_OK) == 0);
    kill(pid, SIGKILL);
    CHECK(th_wait(pid, 10000) != -1);
    uint64_t killed = snap_now_ms();
    /* The watchdog thaws the guest within the lease. */
    char *status = NULL;
    while (snap_now_ms() - killed < LEASE_MS + 5000) {
        free(status);
        status = th_xlsim_fsfreeze_status(&k);
        if (status && !strcmp(status, "thawed"))
            break;
        usleep(200000);
    }
    CHECK_STR(status, "thawed");
    th_note("thawed %llu ms after the SIGKILL",
            (unsigned long long)(snap_now_ms() - killed));
    free(status);
    CHECK_THAWED(&k);
    /* The dead run is visible until the next operation recovers it. */
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", "k", NULL);
    CHECK_INT(r.rc, 0);
    th_note("list before recovery: %s", r.out);
    /* The interrupted create's row: no creation time yet, padded, no junk. */
    CHECK_CONTAINS(r.out, "k1 !");
    CHECK_CONTAINS(r.out,
                   "k1 !                             -                    unknown ");
    th_cmd_free(&r);
    th_xlsnap(&r, "-N", "snapshot-create", "k", "k2", NULL);
    CHECK_INT(r.rc, 0);
    th_cmd_free(&r);
    CHECK(journal && access(journal, F_OK) != 0);
    th_xlsnap(&r, "snapshot-list", "k", NULL);
    CHECK(!strstr(r.out, "k1 "));
    th_cmd_free(&r);
    char *after = th_world_capture(&k, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before), free(after), free(journal);
}

int main(void)
{
    th_plan(6);
    TH_RUN(test_boot);
    TH_RUN(test_no_agent_required_refused);
    TH_RUN(test_no_agent_best_effort_mixed);
    TH_RUN(test_freeze_hangs);
    TH_RUN(test_transaction_fails);
    TH_RUN(test_sigkill_while_frozen);
    if (na_up)
        th_xlsim_destroy(&na);
    if (hang_up)
        th_xlsim_destroy(&hang);
    if (k_up)
        th_xlsim_destroy(&k);
    return th_finish();
}
