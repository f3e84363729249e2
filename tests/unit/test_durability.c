/*
 * Durability of xlsnap's state: every journal, record, .current and .index
 * write reaches the disk before the step that depends on it. xlsnap runs on
 * an offline domain of the simulated dom0 (qemu-img only, no guest) under the
 * LD_PRELOAD shim tests/preload/trace_durable.c, which logs the writes,
 * fsyncs, renames, unlinks, mkdirs and program spawns that touch the state
 * directory; the trace must show, for every file:
 *   write(tmp) -> fsync(tmp) -> rename(tmp, file) -> fsync(dir)
 * with the directory synced before anything else happens (another rename or
 * unlink, a spawned qemu-img, the end of the run), unlinks and mkdirs
 * followed the same way by a sync of their directory, and no state file
 * written in place. Removing any fsync of libsnap's durable-write path
 * (snap_meta_store.c) fails these tests.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "th.h"
#include "th_xlsim.h"

#define DOM        "dur1"
#define MAX_EVENTS 4096

typedef struct event {
    char *op, *a, *b; /* b: a rename's target, else NULL */
} event;

typedef struct trace {
    event ev[MAX_EVENTS];
    size_t n;
    char *text;
} trace;

static bool domain_ready;

/* ------------------------------------------------------------ the trace */

static bool trace_parse(trace *t, char *text)
{
    memset(t, 0, sizeof *t);
    t->text = text;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (t->n == MAX_EVENTS)
            return false;
        event *e = &t->ev[t->n++];
        e->op = line;
        char *tab = strchr(line, '\t');
        if (!tab)
            return false;
        *tab = '\0';
        e->a = tab + 1;
        if ((tab = strchr(e->a, '\t'))) {
            *tab = '\0';
            e->b = tab + 1;
        }
    }
    return true;
}

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The directory part of path, in a rotating static buffer. */
static const char *dir_of(const char *path)
{
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 4096, "%s", path);
    char *s = strrchr(b, '/');
    if (s)
        *s = '\0';
    return b;
}

static bool is_op(const event *e, const char *op)
{
    return strcmp(e->op, op) == 0;
}

/* A lock file is not state: xlsnap may write its owner into it in place. */
static bool is_lock(const char *path)
{
    return strcmp(base_of(path), ".lock") == 0;
}

/* Changes a directory's entries (what only a sync of the directory keeps). */
static bool changes_names(const event *e)
{
    return is_op(e, "rename") || is_op(e, "unlink") || is_op(e, "mkdir") ||
           is_op(e, "rmdir");
}

/* The path whose directory entry event e changes. */
static const char *named(const event *e)
{
    return e->b ? e->b : e->a;
}

typedef struct verdict {
    int problems;
    bool report; /* record each problem as a test failure */
    const char *what;
} verdict;

static void problem(verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(verdict *v, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->problems++;
    if (v->report)
        th_fail_at(__FILE__, __LINE__, "%s: %s", v->what, msg);
}

/* rename(tmp, file) at i: tmp was fsynced after its last write, before i. */
static void check_file_synced(const trace *t, size_t i, verdict *v)
{
    const char *tmp = t->ev[i].a;
    bool synced = false;
    for (size_t j = i; j-- > 0;) {
        const event *e = &t->ev[j];
        if (strcmp(e->a, tmp) != 0 || e->b)
            continue;
        if (is_op(e, "fsync")) {
            synced = true;
            break;
        }
        if (is_op(e, "write"))
            break;
    }
    if (!synced)
        problem(v, "rename %s -> %s: the temp file was not fsynced after its last write",
                base_of(tmp), base_of(t->ev[i].b));
}

/* A name change at i: its directory is fsynced before the next name change,
 * spawned program or the end of the run. */
static void check_dir_synced(const trace *t, size_t i, verdict *v)
{
    const char *dir = dir_of(named(&t->ev[i]));
    for (size_t j = i + 1; j < t->n; j++) {
        const event *e = &t->ev[j];
        if (is_op(e, "fsync") && strcmp(e->a, dir) == 0)
            return;
        if (changes_names(e) || is_op(e, "spawn")) {
            problem(v, "%s %s: directory not fsynced before %s %s", t->ev[i].op,
                    base_of(named(&t->ev[i])), e->op, base_of(named(e)));
            return;
        }
    }
    problem(v, "%s %s: directory not fsynced before the end of the run", t->ev[i].op,
            base_of(named(&t->ev[i])));
}

/* A write must go to a temp file that a rename later makes the real one. */
static void check_not_in_place(const trace *t, size_t i, verdict *v)
{
    const char *path = t->ev[i].a;
    if (is_lock(path))
        return;
    for (size_t j = i + 1; j < t->n; j++)
        if (is_op(&t->ev[j], "rename") && strcmp(t->ev[j].a, path) == 0)
            return;
    problem(v, "%s written in place (never renamed over a state file)", base_of(path));
}

static int check_trace(const trace *t, const char *what, bool report)
{
    verdict v = {.report = report, .what = what};
    for (size_t i = 0; i < t->n; i++) {
        const event *e = &t->ev[i];
        if (is_op(e, "rename"))
            check_file_synced(t, i, &v);
        if (changes_names(e) && !is_lock(named(e)))
            check_dir_synced(t, i, &v);
        if (is_op(e, "write"))
            check_not_in_place(t, i, &v);
    }
    return v.problems;
}

/* Counts events op whose (target) path's last component is name. */
static int count_events(const trace *t, const char *op, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (is_op(&t->ev[i], op) && strcmp(base_of(named(&t->ev[i])), name) == 0)
            n++;
    return n;
}

/* ------------------------------------------------------------ running xlsnap */

/* Runs xlsnap (argv without "xlsnap") under the shim; REQUIREs exit 0. */
static bool run_traced(trace *t, const char *const argv[])
{
    static int runs;
    char name[64];
    snprintf(name, sizeof name, "trace-%d.log", ++runs);
    const char *log = th_path(name);
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_saved = asan ? strdup(asan) : NULL;
    char asan_opts[1024];
    /* the shim comes before the sanitizer runtime in the sanitizer build */
    snprintf(asan_opts, sizeof asan_opts, "%s%sverify_asan_link_order=0",
             asan ? asan : "", asan ? ":" : "");
    setenv("ASAN_OPTIONS", asan_opts, 1);
    setenv("XLSNAP_TRACE_DIR", th_xlsim_statedir(), 1);
    setenv("XLSNAP_TRACE_LOG", log, 1);
    setenv("LD_PRELOAD", th_build_path("tests/libtrace_durable.so"), 1);
    th_cmd r;
    th_xlsnapv(&r, argv);
    unsetenv("LD_PRELOAD");
    unsetenv("XLSNAP_TRACE_DIR");
    unsetenv("XLSNAP_TRACE_LOG");
    if (asan_saved)
        setenv("ASAN_OPTIONS", asan_saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_saved);
    bool ok = r.rc == 0;
    if (!ok)
        th_fail_at(__FILE__, __LINE__, "xlsnap %s %s: %s", argv[0], argv[1],
                   th_cmd_describe(&r));
    th_cmd_free(&r);
    char *text = th_read_file(log);
    if (!text) {
        th_fail_at(__FILE__, __LINE__, "no trace at %s: the shim did not run", log);
        return false;
    }
    if (!trace_parse(t, text)) {
        th_fail_at(__FILE__, __LINE__, "%s: malformed or too long", log);
        return false;
    }
    th_note("xlsnap %s: %zu traced events", argv[0], t->n);
    return ok;
}

/* Runs xlsnap under the shim and checks the whole trace; t is the caller's. */
#define TRACED(t, ...)                                                                   \
    do {                                                                                 \
        const char *const argv_[] = {__VA_ARGS__, NULL};                                 \
        REQUIRE(run_traced((t), argv_));                                                 \
        CHECK_INT(check_trace((t), argv_[0], true), 0);                                  \
    } while (0)

static void trace_free(trace *t)
{
    free(t->text);
    t->text = NULL;
}

/* ------------------------------------------------------------ the checker */

static int check_text(const char *text)
{
    trace t;
    char *copy = strdup(text);
    if (!trace_parse(&t, copy)) {
        free(copy);
        return -1;
    }
    int n = check_trace(&t, "synthetic", false);
    trace_free(&t);
    return n;
}

/* The rules on hand-written traces: each broken ordering is one problem. */
static void test_rules_catch_missing_fsyncs(void)
{
    static const char good[] = "write\t/s/d/.f.tmp\n"
                               "fsync\t/s/d/.f.tmp\n"
                               "rename\t/s/d/.f.tmp\t/s/d/f\n"
                               "fsync\t/s/d\n"
                               "spawn\t/usr/bin/qemu-img\n"
                               "unlink\t/s/d/f\n"
                               "fsync\t/s/d\n"
                               "write\t/s/d/.lock\n";
    CHECK_INT(check_text(good), 0);
    CHECK_INT(check_text("write\t/s/d/.f.tmp\n"
                         "rename\t/s/d/.f.tmp\t/s/d/f\n"
                         "fsync\t/s/d\n"),
              1);
    CHECK_INT(check_text("write\t/s/d/.f.tmp\n"
                         "fsync\t/s/d/.f.tmp\n"
                         "write\t/s/d/.f.tmp\n"
                         "rename\t/s/d/.f.tmp\t/s/d/f\n"
                         "fsync\t/s/d\n"),
              1);
    CHECK_INT(check_text("write\t/s/d/.f.tmp\n"
                         "fsync\t/s/d/.f.tmp\n"
                         "rename\t/s/d/.f.tmp\t/s/d/f\n"
                         "spawn\t/usr/bin/qemu-img\n"
                         "fsync\t/s/d\n"),
              1);
    CHECK_INT(check_text("write\t/s/d/.f.tmp\n"
                         "fsync\t/s/d/.f.tmp\n"
                         "rename\t/s/d/.f.tmp\t/s/d/f\n"),
              1);
    CHECK_INT(check_text("unlink\t/s/d/f\n"
                         "rename\t/s/d/.g.tmp\t/s/d/g\n"
                         "fsync\t/s/d\n"),
              2); /* the unlink's sync, the rename's temp file */
    CHECK_INT(check_text("mkdir\t/s/d\n"
                         "fsync\t/s/d\n"),
              1); /* /s/d's own sync does not keep its name in /s */
    CHECK_INT(check_text("write\t/s/d/f\n"), 1);
}

/* ------------------------------------------------------------ the domain */

/* An offline domain of the simulated dom0: created paused from the two-disk
 * example (no guest), then its QEMU killed, as after a crash of the domain. */
static void test_offline_domain(void)
{
    REQUIRE(th_xlsim_init());
    REQUIRE(mkdir(th_xlsim_statedir(), 0700) == 0);
    const char *dir = th_path("disks");
    REQUIRE(mkdir(dir, 0700) == 0);
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/a.qcow2", dir);
    snprintf(b, sizeof b, "%s/b.qcow2", dir);
    REQUIRE(th_runl(NULL, NULL, "qemu-img", "create", "-q", "-f", "qcow2", a, "16M",
                    (char *)NULL) == 0);
    REQUIRE(th_runl(NULL, NULL, "qemu-img", "create", "-q", "-f", "qcow2", b, "16M",
                    (char *)NULL) == 0);
    char *cfg = th_read_file(th_top_path("tools/xlsim/examples/two-disks.cfg.in"));
    REQUIRE(cfg);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    for (const char *p = cfg; *p;) {
        if (!strncmp(p, "@DIR@", 5))
            fputs(dir, out), p += 5;
        else if (!strncmp(p, "xlsim-demo", 10))
            fputs(DOM, out), p += 10;
        else if (!strncmp(p, "access=ro", 9))
            fputs("access=rw", out), p += 9;
        else
            fputc(*p++, out);
    }
    fclose(out);
    free(cfg);
    const char *cfg_path = th_path(DOM ".cfg");
    bool written = th_write_file(cfg_path, text);
    free(text);
    REQUIRE(written);
    char *err = NULL;
    int rc = th_runl(NULL, &err, th_build_path("xlsim"), "create", "-p", cfg_path,
                     (char *)NULL);
    if (rc != 0)
        th_note("xlsim create: %s", err ? err : "");
    free(err);
    REQUIRE(rc == 0);
    char *domid = NULL;
    REQUIRE(th_runl(&domid, NULL, th_build_path("xlsim"), "domid", DOM, (char *)NULL) ==
            0);
    char node[128];
    snprintf(node, sizeof node, "/local/domain/%d/image/device-model-pid", atoi(domid));
    free(domid);
    char *pid = th_xs_read(node);
    REQUIRE(pid && atoi(pid) > 0);
    th_adopt(atoi(pid));
    th_kill(atoi(pid));
    CHECK(!th_pid_alive(atoi(pid)));
    free(pid);
    domain_ready = true;
}

/* ------------------------------------------------------------ the operations */

/* The first create also makes the domain's directories. */
static void test_create_internal(void)
{
    REQUIRE(domain_ready);
    trace t = {0};
    TRACED(&t, "snapshot-create", "-q", "off", "-i", DOM, "s1");
    CHECK_INT(count_events(&t, "mkdir", "snapshots"), 1);
    CHECK(count_events(&t, "rename", ".journal.json") >= 2);
    CHECK_INT(count_events(&t, "rename", "s1.json"), 1);
    CHECK_INT(count_events(&t, "rename", ".current"), 1);
    CHECK_INT(count_events(&t, "unlink", ".journal.json"), 1);
    CHECK(count_events(&t, "spawn", "qemu-img") >= 2);
    trace_free(&t);
}

static void test_revert_internal(void)
{
    REQUIRE(domain_ready);
    trace t = {0};
    TRACED(&t, "snapshot-create", "-q", "off", "-i", DOM, "s2");
    trace_free(&t);
    TRACED(&t, "snapshot-revert", DOM, "s1");
    CHECK(count_events(&t, "rename", ".journal.json") >= 2);
    CHECK_INT(count_events(&t, "rename", ".current"), 1);
    CHECK_INT(count_events(&t, "unlink", ".journal.json"), 1);
    CHECK(count_events(&t, "spawn", "qemu-img") >= 2);
    trace_free(&t);
}

static void test_create_external(void)
{
    REQUIRE(domain_ready);
    trace t = {0};
    TRACED(&t, "snapshot-create", "-q", "off", "-e", DOM, "s3");
    CHECK(count_events(&t, "rename", ".journal.json") >= 2);
    CHECK_INT(count_events(&t, "rename", "s3.json"), 1);
    CHECK_INT(count_events(&t, "rename", ".current"), 1);
    CHECK_INT(count_events(&t, "unlink", ".journal.json"), 1);
    trace_free(&t);
}

/* The index is a cache, but a torn one would be trusted by the next reader. */
static void test_list_writes_index(void)
{
    REQUIRE(domain_ready);
    trace t = {0};
    TRACED(&t, "snapshot-list", DOM);
    CHECK_INT(count_events(&t, "rename", ".index"), 1);
    trace_free(&t);
}

/* Deleting the active external snapshot merges it (qemu-img commit). */
static void test_delete_external(void)
{
    REQUIRE(domain_ready);
    trace t = {0};
    TRACED(&t, "snapshot-delete", DOM, "s3");
    CHECK(count_events(&t, "rename", ".journal.json") >= 2);
    CHECK_INT(count_events(&t, "unlink", "s3.json"), 1);
    CHECK_INT(count_events(&t, "unlink", ".journal.json"), 1);
    CHECK(count_events(&t, "spawn", "qemu-img") >= 1);
    trace_free(&t);
}

static void test_delete_metadata(void)
{
    REQUIRE(domain_ready);
    trace t = {0};
    TRACED(&t, "snapshot-delete", "--metadata", DOM, "s2");
    CHECK_INT(count_events(&t, "unlink", "s2.json"), 1);
    CHECK_INT(count_events(&t, "unlink", ".journal.json"), 1);
    trace_free(&t);
}

int main(void)
{
    th_plan(8);
    TH_RUN(test_rules_catch_missing_fsyncs);
    TH_RUN(test_offline_domain);
    TH_RUN(test_create_internal);
    TH_RUN(test_revert_internal);
    TH_RUN(test_create_external);
    TH_RUN(test_list_writes_index);
    TH_RUN(test_delete_external);
    TH_RUN(test_delete_metadata);
    return th_finish();
}
