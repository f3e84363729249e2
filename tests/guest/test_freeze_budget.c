/*
 * The freeze budget kept end to end (issue 18, items 1, 2 and 5), through
 * the real `xlsnap` command on an xlsim domain running the test guest with
 * its writer (an fsync'd record every 20 ms on /mnt/vdb: a record that
 * waits is a frozen filesystem):
 *  - -N shows the freeze timeline and its worst cases;
 *  - a QEMU slow to answer the transaction: a proxy in front of the real
 *    QEMU's QMP socket holds the transaction's reply back. The guest is
 *    thawed within the budget + a margin (the writer's largest gap), and
 *    the snapshot ends as documented: under best-effort kept, recorded
 *    crash-consistent with the reason; under required rolled back; never
 *    answered (in time), rolled back (an external one: the overlay merged
 *    back, QEMU on its old image);
 *  - a freeze hook slower than the budget: thawed within budget + margin,
 *    best-effort falls back to crash-consistent, required refuses.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "snap_json.h"
#include "th.h"
#include "th_qemu.h"
#include "th_xlsim.h"

#define BOOT_TIMEOUT_MS 150000
#define BUDGET_MS       1000
#define BUDGET_ARG      "--freeze-budget=1000"
/* Thaw reply, TCG jitter, the writer's own 20 ms step: well under a second. */
#define MARGIN_MS 1500

static th_xlsim_dom b;
static bool b_up;

/* ------------------------------------------------------------ a slow QEMU */

/*
 * A relay in front of QEMU's QMP socket (moved aside to <path>.real) that
 * holds back what QEMU sends after a "transaction" command for delay_ms.
 * One client at a time, as QEMU serves them.
 */
typedef struct delay_proxy {
    char path[PATH_MAX], real[PATH_MAX + 8];
    int lfd, stop[2];
    int delay_ms;
    int held; /* transactions whose answer was held back */
    pthread_t thr;
} delay_proxy;

static int unix_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return -1;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Relays one client until either side closes or the proxy stops. */
static void relay(delay_proxy *p, int cfd)
{
    int ufd = unix_connect(p->real);
    char buf[65536], *held = NULL;
    size_t n_held = 0;
    uint64_t release_at = 0;
    while (ufd >= 0) {
        int wait = -1;
        if (release_at)
            wait = snap_now_ms() >= release_at ? 0 : (int)(release_at - snap_now_ms());
        struct pollfd f[3] = {{.fd = cfd, .events = POLLIN},
                              {.fd = ufd, .events = POLLIN},
                              {.fd = p->stop[0], .events = POLLIN}};
        if (poll(f, 3, wait) < 0 && errno != EINTR)
            break;
        if (f[2].revents)
            break;
        if (release_at && snap_now_ms() >= release_at) {
            if (!th_write_all(cfd, held, n_held))
                break;
            n_held = 0;
            release_at = 0;
        }
        if (f[0].revents) {
            ssize_t n = read(cfd, buf, sizeof buf);
            if (n <= 0 || !th_write_all(ufd, buf, (size_t)n))
                break;
            if (p->delay_ms && memmem(buf, (size_t)n, "\"transaction\"", 13)) {
                release_at = snap_now_ms() + (uint64_t)p->delay_ms;
                __atomic_add_fetch(&p->held, 1, __ATOMIC_SEQ_CST);
            }
        }
        if (f[1].revents) {
            ssize_t n = read(ufd, buf, sizeof buf);
            if (n <= 0)
                break;
            if (release_at) {
                held = realloc(held, n_held + (size_t)n);
                memcpy(held + n_held, buf, (size_t)n);
                n_held += (size_t)n;
            } else if (!th_write_all(cfd, buf, (size_t)n)) {
                break;
            }
        }
    }
    free(held);
    if (ufd >= 0)
        close(ufd);
    close(cfd);
}

static void *proxy_main(void *arg)
{
    delay_proxy *p = arg;
    for (;;) {
        struct pollfd f[2] = {{.fd = p->lfd, .events = POLLIN},
                              {.fd = p->stop[0], .events = POLLIN}};
        if (poll(f, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (f[1].revents)
            return NULL;
        int cfd = f[0].revents ? accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
        if (cfd >= 0)
            relay(p, cfd);
    }
}

/* Puts the proxy in front of d's QMP socket; false (a failure noted) if not. */
static bool proxy_start(delay_proxy *p, const th_xlsim_dom *d, int delay_ms)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", d->vm.qmp_path);
    snprintf(p->real, sizeof p->real, "%s.real", d->vm.qmp_path);
    p->delay_ms = delay_ms;
    if (rename(p->path, p->real) != 0) {
        th_fail_at(__FILE__, __LINE__, "rename %s: %s", p->path, strerror(errno));
        return false;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(p->path) < sizeof a.sun_path)
        memcpy(a.sun_path, p->path, strlen(p->path) + 1);
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->lfd, 4) != 0 || pipe2(p->stop, O_CLOEXEC) != 0 ||
        pthread_create(&p->thr, NULL, proxy_main, p) != 0) {
        th_fail_at(__FILE__, __LINE__, "proxy on %s: %s", p->path, strerror(errno));
        if (p->lfd >= 0)
            close(p->lfd);
        unlink(p->path);
        rename(p->real, p->path);
        return false;
    }
    return true;
}

/* Stops the proxy and puts QEMU's socket back; the number of answers it held. */
static int proxy_stop(delay_proxy *p)
{
    (void)!write(p->stop[1], "x", 1);
    pthread_join(p->thr, NULL);
    close(p->lfd);
    close(p->stop[0]);
    close(p->stop[1]);
    unlink(p->path);
    if (rename(p->real, p->path) != 0)
        th_fail_at(__FILE__, __LINE__, "rename back %s: %s", p->real, strerror(errno));
    return p->held;
}

/* ------------------------------------------------------------ the writer */

/* The guest's live writer log (malloc'd). */
static char *live_writer_log(void)
{
    char *out = NULL;
    if (th_xlsim_guest_sh(&b, "cat /mnt/vdb/writer.log", &out) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The last sequence number in the live log, 0 if none. */
static long writer_last_seq(void)
{
    char *text = live_writer_log();
    th_writer_log log;
    long last = text && th_writer_log_parse(text, &log) ? log.last : 0;
    free(text);
    return last;
}

/*
 * The longest the writer waited between two records after record from: the
 * time the filesystem was frozen (plus one 20 ms step), measured by the guest.
 */
static long writer_gap_since(long from)
{
    char *text = live_writer_log();
    long gap = -1, prev_ms = -1, n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        long seq, ms;
        if (sscanf(line, "%ld %ld", &seq, &ms) != 2 || seq < from)
            continue;
        if (prev_ms >= 0 && ms - prev_ms > gap)
            gap = ms - prev_ms;
        prev_ms = ms;
        n++;
    }
    free(text);
    th_note("writer: %ld records since %ld, largest gap %ld ms", n, from, gap);
    return gap;
}

/* Waits until the writer has put n more records after from (it runs again). */
static void wait_writer_past(long from, long n)
{
    for (int waited = 0; waited < 20000 && writer_last_seq() < from + n; waited += 200)
        usleep(200000);
}

/* ------------------------------------------------------------ helpers */

static bool up(void)
{
    if (!b_up)
        th_skip("the guest did not boot");
    return b_up;
}

static void check_thawed_at(const char *file, int line)
{
    char *status = th_xlsim_fsfreeze_status(&b);
    if (!status || strcmp(status, "thawed") != 0)
        th_fail_at(file, line, "guest filesystems: %s", status ? status : "(no answer)");
    free(status);
}
#define CHECK_THAWED() check_thawed_at(__FILE__, __LINE__)

/* snapshot-info --json's "quiesce" object (tree in *doc, to free). */
static yajl_val record_quiesce(const char *name, yajl_val *doc)
{
    th_cmd r;
    snap_err err = {0};
    th_xlsnap(&r, "snapshot-info", "--json", "b", name, NULL);
    *doc = r.rc == 0 ? snap_json_parse(r.out, "snapshot-info", &err) : NULL;
    th_cmd_free(&r);
    return snap_json_get_object(*doc, "quiesce");
}

static long long get_int(yajl_val obj, const char *key)
{
    long long v = -1;
    return snap_json_get_int(obj, key, &v) ? v : -1;
}

/* Sets the guest's fsfreeze hook: sleeps secs on "freeze". */
static bool set_freeze_hook_delay(int secs)
{
    char *sh = snap_xasprintf("printf '#!/bin/sh\\n[ \"$1\" = freeze ] && sleep %d\\n"
                              "exit 0\\n' >/etc/xlsnap/hook.new && chmod 755 "
                              "/etc/xlsnap/hook.new && mv /etc/xlsnap/hook.new "
                              "/etc/xlsnap/fsfreeze-hook",
                              secs);
    int rc = th_xlsim_guest_sh(&b, sh, NULL);
    free(sh);
    return rc == 0;
}

/* ------------------------------------------------------------ tests */

static void test_boot(void)
{
    th_xlsim_opts o = {.extra = "xlsnap.writer=vdb xlsnap.freeze_delay=0"};
    b_up = th_xlsim_create(&b, "b", &o) && th_xlsim_wait_agent(&b, BOOT_TIMEOUT_MS);
    CHECK(b_up);
    if (!b_up)
        return;
    wait_writer_past(0, 20);
    /* The domain's state directory, so failed creates leave the world as it was. */
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", "-q", "off", "b", "b0", NULL);
    CHECK_INT(r.rc, 0);
    th_cmd_free(&r);
}

/* -N states the timeline: every instant, and the worst cases in words. */
static void test_dry_run_shows_timeline(void)
{
    if (!up())
        return;
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-create", "-q", "required", "--freeze-timeout=5",
              "--freeze-budget=1500", "b", "n1", NULL);
    CHECK_INT(r.rc, 0);
    snap_err err = {0};
    yajl_val v = snap_json_parse(r.out, "plan", &err);
    yajl_val tl = snap_json_get_object(v, "freeze-timeline");
    CHECK_INT(get_int(tl, "freeze-timeout-ms"), 5000);
    CHECK_INT(get_int(tl, "budget-ms"), 1500);
    CHECK_INT(get_int(tl, "lease-ms"), 10000);
    CHECK_INT(get_int(tl, "freeze-reply-by-ms"), 1500);
    CHECK_INT(get_int(tl, "thaw-by-ms"), 1500);
    CHECK_INT(get_int(tl, "watchdog-ms"), 15000);
    yajl_val worst = snap_json_get_object(tl, "worst-case");
    CHECK_INT(get_int(worst, "frozen-at-most-ms"), 4500);
    CHECK_CONTAINS(snap_json_get_string(worst, "slow-answers"), "frozen at most 4500 ms");
    CHECK_CONTAINS(snap_json_get_string(worst, "qemu-hangs"), "thaw is sent at 1500 ms");
    CHECK_CONTAINS(snap_json_get_string(worst, "agent-hangs"), "until the agent answers");
    CHECK_CONTAINS(snap_json_get_string(worst, "xlsnap-hangs"), "at most 15000 ms");
    CHECK_CONTAINS(snap_json_get_string(worst, "xlsnap-dies"), "watchdog");
    yajl_tree_free(v);
    th_cmd_free(&r);
    /* Without a freeze there is no timeline. */
    th_xlsnap(&r, "-N", "snapshot-create", "-q", "off", "b", "n2", NULL);
    CHECK_INT(r.rc, 0);
    v = snap_json_parse(r.out, "plan", &err);
    CHECK(v && YAJL_IS_NULL(snap_json_get(v, "freeze-timeline")));
    yajl_tree_free(v);
    th_cmd_free(&r);
}

/*
 * Runs snapshot-create behind a proxy holding the transaction's answer back
 * delay_ms; checks the guest was thawed within the budget + margin.
 */
static void create_behind_slow_qemu(th_cmd *r, int delay_ms, const char *const argv[])
{
    delay_proxy p;
    r->rc = -1, r->out = r->err = NULL;
    if (!proxy_start(&p, &b, delay_ms))
        return;
    long from = writer_last_seq();
    uint64_t t0 = snap_now_ms();
    th_xlsnapv(r, argv);
    th_note("after %llu ms: %s", (unsigned long long)(snap_now_ms() - t0),
            th_cmd_describe(r));
    CHECK_INT(proxy_stop(&p), 1); /* the transaction's answer was held back */
    wait_writer_past(writer_last_seq(), 5);
    long gap = writer_gap_since(from);
    CHECK(gap > 0 && gap < BUDGET_MS + MARGIN_MS);
    CHECK_THAWED();
}

/* Best-effort: thawed at the budget, QEMU's late answer awaited, kept crash-consistent.
 */
static void test_late_transaction_best_effort(void)
{
    if (!up())
        return;
    const char *argv[] = {
        "snapshot-create", "-q", "best-effort", BUDGET_ARG, "b", "l1", NULL};
    th_cmd r;
    create_behind_slow_qemu(&r, 4000, argv);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "crash-consistent (QEMU answered the transaction ");
    CHECK_CONTAINS(r.err, "recorded as crash-consistent");
    th_cmd_free(&r);
    CHECK(th_qemu_img_has_snapshot(b.root, "l1"));
    CHECK(th_qemu_img_has_snapshot(b.data, "l1"));
    yajl_val doc, q = record_quiesce("l1", &doc);
    CHECK_STR(snap_json_get_string(q, "state"), "crash-consistent");
    CHECK_CONTAINS(snap_json_get_string(q, "reason"),
                   "the snapshot may postdate the thaw");
    yajl_val tl = snap_json_get_object(q, "freeze_timeline");
    CHECK_INT(get_int(tl, "thaw_by_ms"), BUDGET_MS);
    CHECK_INT(get_int(tl, "budget_ms"), BUDGET_MS);
    CHECK(get_int(q, "window_ms") < BUDGET_MS + MARGIN_MS);
    yajl_tree_free(doc);
    th_xlsnap(&r, "snapshot-info", "b", "l1", NULL);
    CHECK_CONTAINS(r.out, "Freeze limits:  thaw sent by 1000 ms after the freeze");
    th_cmd_free(&r);
}

/* Required: the same late answer is not a quiesced snapshot: rolled back. */
static void test_late_transaction_required(void)
{
    if (!up())
        return;
    char *before = th_world_capture(&b, TH_WORLD_LIVE);
    const char *argv[] = {
        "snapshot-create", "-q", "required", BUDGET_ARG, "b", "l2", NULL};
    th_cmd r;
    create_behind_slow_qemu(&r, 4000, argv);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "QEMU answered the transaction ");
    CHECK_CONTAINS(r.err, "not quiesced, as --quiesce=required wants: the snapshot is "
                          "rolled back");
    th_cmd_free(&r);
    CHECK(!th_qemu_img_has_snapshot(b.root, "l2"));
    CHECK(!th_qemu_img_has_snapshot(b.data, "l2"));
    char *after = th_world_capture(&b, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before), free(after);
}

/*
 * An external snapshot whose answer comes after the late wait too (1 s +
 * 10 s): rolled back, the overlays QEMU switched to merged back, QEMU and
 * xenstore on the old images, nothing recorded.
 */
static void test_transaction_never_answers(void)
{
    if (!up())
        return;
    char *before = th_world_capture(&b, TH_WORLD_LIVE);
    const char *argv[] = {"snapshot-create", "-e", "-q", "best-effort",
                          BUDGET_ARG,        "b",  "l3", NULL};
    th_cmd r;
    create_behind_slow_qemu(&r, 14000, argv);
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "the guest was thawed ");
    CHECK_CONTAINS(r.err, "sent no reply within 10000 ms more");
    th_cmd_free(&r);
    char *ovl = snap_xasprintf("%s/data.l3.qcow2", b.disk_dir);
    CHECK(access(ovl, F_OK) != 0);
    char *params = th_xlsim_backend(&b, "xvdb", "params");
    CHECK_CONTAINS(params, "data.qcow2");
    char *after = th_world_capture(&b, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    th_xlsnap(&r, "snapshot-list", "b", NULL);
    CHECK(r.rc == 0 && !strstr(r.out, "l3"));
    th_cmd_free(&r);
    free(before), free(after), free(ovl), free(params);
}

/* Runs a create with the freeze hook sleeping 4 s, past the 1 s budget. */
static void create_with_slow_hook(th_cmd *r, const char *policy, const char *name)
{
    r->rc = -1, r->out = r->err = NULL;
    if (!set_freeze_hook_delay(4))
        th_fail_at(__FILE__, __LINE__, "cannot set the guest's fsfreeze hook");
    long from = writer_last_seq();
    th_xlsnap(r, "snapshot-create", "-q", policy, BUDGET_ARG, "b", name, NULL);
    th_note("xlsnap: %s", th_cmd_describe(r));
    wait_writer_past(writer_last_seq(), 5);
    long gap = writer_gap_since(from);
    CHECK(gap > 0 && gap < BUDGET_MS + MARGIN_MS);
    CHECK_THAWED();
    set_freeze_hook_delay(0);
}

static void test_slow_freeze_hook_best_effort(void)
{
    if (!up())
        return;
    th_cmd r;
    create_with_slow_hook(&r, "best-effort", "h1");
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS(r.out, "crash-consistent (freeze failed: ");
    CHECK_CONTAINS(r.out, "no answer within the freeze budget of 1000 ms");
    th_cmd_free(&r);
    CHECK(th_qemu_img_has_snapshot(b.data, "h1"));
    yajl_val doc, q = record_quiesce("h1", &doc);
    CHECK_STR(snap_json_get_string(q, "state"), "crash-consistent");
    CHECK_INT(get_int(snap_json_get_object(q, "freeze_timeline"), "thaw_by_ms"),
              BUDGET_MS);
    yajl_tree_free(doc);
}

static void test_slow_freeze_hook_required(void)
{
    if (!up())
        return;
    char *before = th_world_capture(&b, TH_WORLD_LIVE);
    th_cmd r;
    create_with_slow_hook(&r, "required", "h2");
    CHECK_INT(r.rc, 1);
    CHECK_CONTAINS(r.err, "freeze: no answer within the freeze budget of 1000 ms");
    th_cmd_free(&r);
    CHECK(!th_qemu_img_has_snapshot(b.data, "h2"));
    char *after = th_world_capture(&b, TH_WORLD_LIVE);
    CHECK_WORLD(before, after);
    free(before), free(after);
}

int main(void)
{
    th_plan(7);
    TH_RUN(test_boot);
    TH_RUN(test_dry_run_shows_timeline);
    TH_RUN(test_late_transaction_best_effort);
    TH_RUN(test_late_transaction_required);
    TH_RUN(test_transaction_never_answers);
    TH_RUN(test_slow_freeze_hook_best_effort);
    TH_RUN(test_slow_freeze_hook_required);
    if (b_up)
        th_xlsim_destroy(&b);
    return th_finish();
}
