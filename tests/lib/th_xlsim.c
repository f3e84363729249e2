/* th_xlsim — a simulated dom0 for tests; see th_xlsim.h. */
#include "th_xlsim.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xenstore.h>

#include "snap_base.h"
#include "snap_json.h"
#include "th.h"

#define TH_XLSIM_MAX_ARGS   64
#define TH_SMALL_FILE_BYTES (1 << 20)

/* ------------------------------------------------------------ the dom0 */

static bool th_xlsim_ready;

const char *th_xlsim_statedir(void)
{
    static char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/xlsnap", th_tmpdir());
    return dir;
}

const char *th_xlsim_xen_statedir(void)
{
    static char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/xen", th_tmpdir());
    return dir;
}

const char *th_xlsim_rundir(void)
{
    static char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/run", th_tmpdir());
    return dir;
}

bool th_xlsim_init(void)
{
    if (th_xlsim_ready)
        return true;
    if (mkdir(th_xlsim_xen_statedir(), 0700) != 0 ||
        mkdir(th_xlsim_rundir(), 0700) != 0) {
        th_fail_at(__FILE__, __LINE__, "mkdir under %s: %s", th_tmpdir(),
                   strerror(errno));
        return false;
    }
    setenv("XLSNAP_XEN_STATEDIR", th_xlsim_xen_statedir(), 1);
    setenv("XLSNAP_XEN_RUNDIR", th_xlsim_rundir(), 1);
    setenv("XLSNAP_STATEDIR", th_xlsim_statedir(), 1);
    setenv("XLSNAP_PLATFORM", "sim", 1);
    /* The sim platform restarts domains through xlsim: use the one under test. */
    setenv("XLSNAP_XLSIM", th_build_path("xlsim"), 1);
    if (th_start_xenstored(NULL) < 0)
        return false;
    th_xlsim_ready = true;
    return true;
}

/* ------------------------------------------------------------ small helpers */

/* Replaces every occurrence of from in *text by to (reallocating *text). */
static void th_replace_all(char **text, const char *from, const char *to)
{
    size_t flen = strlen(from);
    char *p;
    size_t start = 0;
    while ((p = strstr(*text + start, from))) {
        size_t at = (size_t)(p - *text);
        char *next = snap_xasprintf("%.*s%s%s", (int)at, *text, to, p + flen);
        free(*text);
        *text = next;
        start = at + strlen(to);
    }
}

/* Removes the line that starts with prefix (and its newline). */
static void th_drop_line(char *text, const char *prefix)
{
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            memmove(line, nl ? nl + 1 : line + strlen(line),
                    strlen(nl ? nl + 1 : line + strlen(line)) + 1);
            return;
        }
        line = nl ? nl + 1 : NULL;
    }
}

static int th_xlsim_run(char **out, char **err, const char *cmd, const char *arg)
{
    return th_runl(out, err, th_build_path("xlsim"), cmd, arg, (char *)NULL);
}

/* ------------------------------------------------------------ domains */

static char *th_xlsim_config_text(const th_xlsim_dom *d, const th_xlsim_opts *o,
                                  const char *guest_dir)
{
    char *text = th_read_file(th_top_path("tools/xlsim/examples/guest.cfg.in"));
    if (!text)
        return NULL;
    /* The disk list ends with data.qcow2's entry: extra disks go after it. */
    char *disks = snap_xstrdup("data.qcow2'");
    for (int i = 0; o->extra_disks && o->extra_disks[i]; i++) {
        char *more = snap_xasprintf("%s,\n            '%s'", disks, o->extra_disks[i]);
        free(disks);
        disks = more;
    }
    th_replace_all(&text, "data.qcow2'", disks);
    free(disks);
    if (o->no_agent)
        th_drop_line(text, "channel");
    th_replace_all(&text, "@NAME@", d->name);
    th_replace_all(&text, "@GUEST_DIR@", guest_dir);
    th_replace_all(&text, "@DISK_DIR@", d->disk_dir);
    th_replace_all(&text, "@RUN_DIR@", th_xlsim_rundir());
    th_replace_all(&text, "@EXTRA@", o->extra ? o->extra : "");
    if (o->extra_cfg) {
        char *more = snap_xasprintf("%s%s\n", text, o->extra_cfg);
        free(text);
        text = more;
    }
    return text;
}

static bool th_xlsim_mkdisk(const char *path, int size_mb)
{
    char size[16], *err = NULL;
    snprintf(size, sizeof size, "%d", size_mb);
    int rc =
        th_runl(NULL, &err, "bash", th_top_path("tools/guest/mkdisk"), path, size, NULL);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "mkdisk %s %s failed (exit %d): %s", path, size,
                   rc, err ? err : "");
    free(err);
    return rc == 0;
}

static void th_xlsim_fill_paths(th_xlsim_dom *d, const char *name, const th_xlsim_opts *o)
{
    memset(d, 0, sizeof *d);
    d->vm.pid = -1;
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->disk_dir, sizeof d->disk_dir, "%s/%s-disks", th_tmpdir(), name);
    snprintf(d->root, sizeof d->root, "%s/%s-disks/root.qcow2", th_tmpdir(), name);
    snprintf(d->data, sizeof d->data, "%s/%s-disks/data.qcow2", th_tmpdir(), name);
    snprintf(d->cfg_path, sizeof d->cfg_path, "%s/%s.cfg", th_tmpdir(), name);
    snprintf(d->vm.agent_path, sizeof d->vm.agent_path, "%s/qga-%s.sock",
             th_xlsim_rundir(), name);
    snprintf(d->vm.log_path, sizeof d->vm.log_path, "%s/qemu-dm-%s.log",
             th_xlsim_rundir(), name);
    d->has_agent = !o->no_agent;
}

/* After `xlsim create`: the domid, QMP socket, console and QEMU's pid. */
static bool th_xlsim_adopt(th_xlsim_dom *d)
{
    char *out = NULL, *err = NULL;
    int rc = th_xlsim_run(&out, &err, "domid", d->name);
    d->domid = rc == 0 && out ? (unsigned)strtoul(out, NULL, 10) : 0;
    free(out);
    free(err);
    if (d->domid == 0) {
        th_fail_at(__FILE__, __LINE__, "xlsim domid %s failed (exit %d)", d->name, rc);
        return false;
    }
    const char *run = th_xlsim_rundir();
    snprintf(d->vm.qmp_path, sizeof d->vm.qmp_path, "%s/qmp-libxl-%u", run, d->domid);
    snprintf(d->vm.serial_path, sizeof d->vm.serial_path, "%s/console-%u.log", run,
             d->domid);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/qemu-dm-%u.pid", run, d->domid);
    char *pid_text = th_read_file(path);
    d->vm.pid = pid_text ? (pid_t)strtol(pid_text, NULL, 10) : -1;
    free(pid_text);
    if (d->vm.pid <= 0) {
        th_fail_at(__FILE__, __LINE__, "no QEMU pid in %s", path);
        return false;
    }
    th_adopt(d->vm.pid);
    return true;
}

bool th_xlsim_create(th_xlsim_dom *d, const char *name, const th_xlsim_opts *opts)
{
    th_xlsim_opts none = {0};
    const th_xlsim_opts *o = opts ? opts : &none;
    th_xlsim_fill_paths(d, name, o);
    const char *guest_dir = th_guest_dir();
    if (!th_xlsim_init() || !guest_dir)
        return false;
    if (mkdir(d->disk_dir, 0700) != 0 && errno != EEXIST) {
        th_fail_at(__FILE__, __LINE__, "mkdir %s: %s", d->disk_dir, strerror(errno));
        return false;
    }
    if (!th_xlsim_mkdisk(d->root, o->root_mb ? o->root_mb : 64) ||
        !th_xlsim_mkdisk(d->data, o->data_mb ? o->data_mb : 32))
        return false;
    char *cfg = th_xlsim_config_text(d, o, guest_dir);
    bool ok = cfg && th_write_file(d->cfg_path, cfg);
    free(cfg);
    if (!ok) {
        th_fail_at(__FILE__, __LINE__, "cannot write %s", d->cfg_path);
        return false;
    }
    char *out = NULL, *err = NULL;
    int rc = th_xlsim_run(&out, &err, "create", d->cfg_path);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "xlsim create %s: exit %d: %s%s", d->cfg_path, rc,
                   out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc == 0 && th_xlsim_adopt(d);
}

bool th_xlsim_wait_agent(const th_xlsim_dom *d, int timeout_ms)
{
    uint64_t start = snap_now_ms();
    if (!th_guest_wait_ready(&d->vm, timeout_ms))
        return false;
    if (!d->has_agent)
        return true;
    int left = timeout_ms - (int)(snap_now_ms() - start);
    th_agent *ga = th_agent_connect(d->vm.agent_path, left > 1000 ? left : 1000);
    if (!ga)
        th_fail_at(__FILE__, __LINE__, "%s: the agent does not answer on %s", d->name,
                   d->vm.agent_path);
    th_agent_close(ga);
    return ga != NULL;
}

bool th_xlsim_destroy(th_xlsim_dom *d)
{
    char *out = NULL, *err = NULL;
    int rc = th_xlsim_run(&out, &err, "destroy", d->name);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "xlsim destroy %s: exit %d: %s%s", d->name, rc,
                   out ? out : "", err ? err : "");
    free(out);
    free(err);
    /* xlsim waited for QEMU to be gone; stop tracking it (kills it if not). */
    th_guest_stop(&d->vm);
    return rc == 0;
}

bool th_xlsim_poweroff(th_xlsim_dom *d, int timeout_ms)
{
    th_agent *ga = th_agent_connect(d->vm.agent_path, 20000);
    bool sent = ga && th_agent_send(ga, "guest-shutdown");
    bool exited = sent && th_guest_wait_exit(&d->vm, timeout_ms);
    th_agent_close(ga);
    if (!exited)
        th_fail_at(__FILE__, __LINE__, "%s: QEMU still runs after guest-shutdown (%s)",
                   d->name, sent ? "sent" : "agent unreachable");
    return exited;
}

bool th_xlsim_pause(const th_xlsim_dom *d, bool pause)
{
    char *err = NULL;
    int rc = th_xlsim_run(NULL, &err, pause ? "pause" : "unpause", d->name);
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "xlsim %s %s: exit %d: %s",
                   pause ? "pause" : "unpause", d->name, rc, err ? err : "");
    free(err);
    return rc == 0;
}

char *th_xlsim_fsfreeze_status(const th_xlsim_dom *d)
{
    th_agent *ga = th_agent_connect(d->vm.agent_path, 20000);
    char *error = NULL;
    yajl_val v =
        ga ? th_agent_execute(ga, "guest-fsfreeze-status", NULL, NULL, 10000, &error)
           : NULL;
    char *status = v && YAJL_IS_STRING(v) ? snap_xstrdup(YAJL_GET_STRING(v)) : NULL;
    if (!status)
        th_fail_at(__FILE__, __LINE__, "%s: guest-fsfreeze-status: %s", d->name,
                   error ? error : "no answer");
    yajl_tree_free(v);
    free(error);
    th_agent_close(ga);
    return status;
}

int th_xlsim_guest_sh(const th_xlsim_dom *d, const char *script, char **out)
{
    th_agent *ga = th_agent_connect(d->vm.agent_path, 20000);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    int rc = ga ? th_agent_exec(ga, argv, out) : -1;
    th_agent_close(ga);
    return rc;
}

/* ------------------------------------------------------------ xenstore, config */

char *th_xs_read(const char *path)
{
    struct xs_handle *xs = xs_open(0);
    if (!xs)
        return NULL;
    unsigned int len = 0;
    char *v = xs_read(xs, XBT_NULL, path, &len);
    xs_close(xs);
    return v;
}

/* libxl__device_disk_dev_number for xvd[a-z]. */
static int th_xvd_devid(const char *vdev)
{
    if (strlen(vdev) != 4 || strncmp(vdev, "xvd", 3) != 0 || vdev[3] < 'a' ||
        vdev[3] > 'z')
        return -1;
    return (202 << 8) | ((vdev[3] - 'a') << 4);
}

char *th_xlsim_backend(const th_xlsim_dom *d, const char *vdev, const char *key)
{
    char path[256];
    snprintf(path, sizeof path, "/local/domain/0/backend/qdisk/%u/%d/%s", d->domid,
             th_xvd_devid(vdev), key);
    return th_xs_read(path);
}

/* The userdata file's path for the domain (malloc'd), found by its domid. */
static char *th_userdata_path(const th_xlsim_dom *d)
{
    DIR *dir = opendir(th_xlsim_xen_statedir());
    char prefix[64], *found = NULL;
    snprintf(prefix, sizeof prefix, "userdata-d.%u.", d->domid);
    for (struct dirent *e = dir ? readdir(dir) : NULL; e && !found; e = readdir(dir)) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && n > 11 &&
            strcmp(e->d_name + n - 11, ".libxl-json") == 0)
            found = snap_xasprintf("%s/%s", th_xlsim_xen_statedir(), e->d_name);
    }
    if (dir)
        closedir(dir);
    return found;
}

char *th_xlsim_userdata(const th_xlsim_dom *d)
{
    char *path = th_userdata_path(d);
    char *text = path ? th_read_file(path) : NULL;
    free(path);
    return text;
}

/* ------------------------------------------------------------ xlsnap */

/*
 * XLSNAP_WRAPPER="valgrind --error-exitcode=9 ..." runs xlsnap under it
 * (words split on spaces; make check-valgrind's guest run uses it).
 */
#define TH_WRAPPER_MAX 16

int th_xlsnapv(th_cmd *r, const char *const argv[])
{
    const char *full[TH_XLSIM_MAX_ARGS + TH_WRAPPER_MAX + 2];
    int n = 0;
    const char *wrapper = getenv("XLSNAP_WRAPPER");
    char *words = wrapper ? snap_xstrdup(wrapper) : NULL, *save = NULL;
    for (char *w = words ? strtok_r(words, " ", &save) : NULL; w && n < TH_WRAPPER_MAX;
         w = strtok_r(NULL, " ", &save))
        full[n++] = w;
    full[n++] = th_build_path("xlsnap");
    for (int i = 0; argv[i] && n < TH_XLSIM_MAX_ARGS + TH_WRAPPER_MAX; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    r->out = r->err = NULL;
    r->rc = th_run((char *const *)full, &r->out, &r->err);
    free(words);
    if (!r->out)
        r->out = snap_xstrdup("");
    if (!r->err)
        r->err = snap_xstrdup("");
    return r->rc;
}

int th_xlsnap(th_cmd *r, const char *arg, ...)
{
    const char *argv[TH_XLSIM_MAX_ARGS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && n < TH_XLSIM_MAX_ARGS; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return th_xlsnapv(r, argv);
}

void th_cmd_free(th_cmd *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

const char *th_cmd_describe(const th_cmd *r)
{
    static char buf[8192];
    snprintf(buf, sizeof buf, "exit %d; stdout: %s; stderr: %s", r->rc,
             r->out ? r->out : "", r->err ? r->err : "");
    return buf;
}

/* ------------------------------------------------------------ the world */

typedef struct th_buf {
    char *s;
    size_t len, cap;
} th_buf;

static void th_buf_addf(th_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void th_buf_addf(th_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *piece = NULL;
    int n = vasprintf(&piece, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = snap_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, piece, (size_t)n + 1);
    b->len += (size_t)n;
    free(piece);
}

/* FNV-1a of a file's bytes: enough to notice any change in a small file. */
static uint64_t th_hash_file(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    FILE *f = fopen(path, "rb");
    int c;
    while (f && (c = getc(f)) != EOF)
        h = (h ^ (uint64_t)(unsigned char)c) * 1099511628211ull;
    if (f)
        fclose(f);
    return h;
}

static bool th_is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot &&
           (!strcmp(dot, ".qcow2") || !strcmp(dot, ".raw") || !strcmp(dot, ".img"));
}

static int th_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a directory, sorted (malloc'd array of malloc'd names). */
static char **th_sorted_dir(const char *path, size_t *n_out)
{
    DIR *dir = opendir(path);
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e = dir ? readdir(dir) : NULL; e; e = readdir(dir)) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        names = snap_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = snap_xstrdup(e->d_name);
    }
    if (dir)
        closedir(dir);
    if (n)
        qsort(names, n, sizeof *names, th_cmp_str);
    *n_out = n;
    return names;
}

/* Each element's file, format and backing file from `qemu-img info --backing-chain`. */
static void th_world_chain(th_buf *b, const char *image)
{
    char *json = NULL;
    th_runl(&json, NULL, "qemu-img", "info", "-U", "--backing-chain", "--output=json",
            image, (char *)NULL);
    snap_err err = {0};
    yajl_val v = json ? snap_json_parse(json, "qemu-img info", &err) : NULL;
    for (size_t i = 0; v && i < snap_json_array_len(v); i++) {
        yajl_val el = snap_json_array_at(v, i);
        const char *bf = snap_json_get_string(el, "backing-filename");
        th_buf_addf(b, "  chain %s %s backing=%s\n", snap_json_get_string(el, "filename"),
                    snap_json_get_string(el, "format"), bf ? bf : "-");
    }
    if (!v)
        th_buf_addf(b, "  chain unreadable\n");
    yajl_tree_free(v);
    free(json);
}

/* `qemu-img snapshot -l -U`, each line prefixed for the diff. */
static void th_world_table(th_buf *b, const char *image)
{
    char *out = NULL;
    th_runl(&out, NULL, "qemu-img", "snapshot", "-l", "-U", image, (char *)NULL);
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"))
        th_buf_addf(b, "  table %s\n", line);
    free(out);
}

static void th_world_disk_dir(th_buf *b, const th_xlsim_dom *d, unsigned flags)
{
    size_t n;
    char **names = th_sorted_dir(d->disk_dir, &n);
    for (size_t i = 0; i < n; i++) {
        char *path = snap_xasprintf("%s/%s", d->disk_dir, names[i]);
        struct stat st;
        bool image = th_is_image_name(names[i]);
        if (lstat(path, &st) != 0) {
            th_buf_addf(b, "disk-dir %s vanished\n", names[i]);
        } else if ((flags & TH_WORLD_LIVE) && image) {
            th_buf_addf(b, "disk-dir %s mode=%o\n", names[i], (unsigned)st.st_mode);
        } else {
            th_buf_addf(b, "disk-dir %s mode=%o size=%lld mtime=%lld.%09ld", names[i],
                        (unsigned)st.st_mode, (long long)st.st_size,
                        (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
            if (S_ISREG(st.st_mode) && st.st_size < TH_SMALL_FILE_BYTES)
                th_buf_addf(b, " hash=%016llx", (unsigned long long)th_hash_file(path));
            th_buf_addf(b, "\n");
        }
        if (image && S_ISREG(st.st_mode)) {
            th_world_table(b, path);
            th_world_chain(b, path);
        }
        free(path);
        free(names[i]);
    }
    free(names);
}

static void th_world_xenstore(th_buf *b, const th_xlsim_dom *d)
{
    char paths[3][128];
    snprintf(paths[0], sizeof paths[0], "/local/domain/0/backend/qdisk/%u", d->domid);
    snprintf(paths[1], sizeof paths[1], "/libxl/%u", d->domid);
    snprintf(paths[2], sizeof paths[2], "/local/domain/%u/device", d->domid);
    for (int i = 0; i < 3; i++) {
        char *out = NULL;
        th_runl(&out, NULL, "xenstore-ls", "-f", paths[i], (char *)NULL);
        for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"))
            th_buf_addf(b, "xenstore %s\n", line);
        free(out);
    }
}

static th_buf *th_world_meta_buf;
static size_t th_world_meta_skip;

static int th_world_meta_entry(const char *path, const struct stat *st, int type,
                               struct FTW *ftw)
{
    (void)ftw;
    const char *rel = path + th_world_meta_skip;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    /* Lock files carry no state: one left behind by a failed run is no change. */
    if (type == FTW_F && st->st_size == 0 && strstr(base, "lock"))
        return 0;
    /*
     * .index is a cache derived from the records: creating or rebuilding it
     * (any list does) is no change.
     */
    if (type == FTW_F && !strcmp(base, ".index"))
        return 0;
    if (type == FTW_F)
        th_buf_addf(th_world_meta_buf, "meta %s mode=%o size=%lld hash=%016llx\n", rel,
                    (unsigned)st->st_mode, (long long)st->st_size,
                    (unsigned long long)th_hash_file(path));
    else
        th_buf_addf(th_world_meta_buf, "meta %s type=%d\n", rel, type);
    return 0;
}

char *th_world_capture(const th_xlsim_dom *d, unsigned flags)
{
    th_buf b = {0};
    th_buf_addf(&b, "world of %s (domid %u)\n", d->name, d->domid);
    th_world_disk_dir(&b, d, flags);
    th_world_xenstore(&b, d);
    char *userdata = th_xlsim_userdata(d);
    th_buf_addf(&b, "userdata %s\n", userdata ? userdata : "(none)");
    free(userdata);
    /* nftw visits in directory order: sort the lines afterwards. */
    th_buf meta = {0};
    th_world_meta_buf = &meta;
    th_world_meta_skip = strlen(th_xlsim_statedir());
    if (access(th_xlsim_statedir(), F_OK) == 0)
        nftw(th_xlsim_statedir(), th_world_meta_entry, 16, FTW_PHYS);
    char **lines = NULL;
    size_t n = 0;
    for (char *line = meta.s ? strtok(meta.s, "\n") : NULL; line;
         line = strtok(NULL, "\n")) {
        lines = snap_xrealloc(lines, (n + 1) * sizeof *lines);
        lines[n++] = line;
    }
    if (n)
        qsort(lines, n, sizeof *lines, th_cmp_str);
    for (size_t i = 0; i < n; i++)
        th_buf_addf(&b, "%s\n", lines[i]);
    free(lines);
    free(meta.s);
    return b.s;
}

/* Appends to report the lines of a that are not in b (prefixed by sign). */
static void th_world_missing(th_buf *report, const char *a, const char *b, char sign)
{
    char *copy = snap_xstrdup(a);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *needle = snap_xasprintf("%s\n", line);
        bool found = strncmp(b, needle, strlen(needle)) == 0;
        char *nl_needle = snap_xasprintf("\n%s", needle);
        found = found || strstr(b, nl_needle);
        if (!found)
            th_buf_addf(report, "  %c %s\n", sign, line);
        free(needle);
        free(nl_needle);
    }
    free(copy);
}

bool th_world_same_at(const char *file, int line, const char *before, const char *after)
{
    if (!before || !after) {
        th_fail_at(file, line, "world capture missing");
        return false;
    }
    if (strcmp(before, after) == 0)
        return true;
    th_buf report = {0};
    th_buf_addf(&report, "the world changed:\n");
    th_world_missing(&report, before, after, '-');
    th_world_missing(&report, after, before, '+');
    th_fail_at(file, line, "%s", report.s);
    free(report.s);
    return false;
}
