/* LVM's command-line tools on snap_child; see snap_lvm.h. */
#include "snap_lvm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_child.h"
#include "snap_json.h"

#define MAX_ARGS    20
#define LV_NAME_MAX 127 /* NAME_LEN - 1 in LVM's lib/metadata/metadata-exported.h */

/* An argv under construction (borrowed strings). */
typedef struct largv {
    const char *v[MAX_ARGS + 1];
    int n;
} largv;

static void larg(largv *a, const char *s)
{
    if (a->n < MAX_ARGS)
        a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void largv_init(largv *a, const snap_lvm_opts *o, const char *command)
{
    a->n = 0;
    larg(a, o && o->binary ? o->binary : "lvm");
    larg(a, command);
}

static snap_child_opts child_opts(const snap_lvm_opts *o, int timeout_ms, bool out)
{
    snap_child_opts co = {.capture_stdout = out};
    co.timeout_ms = timeout_ms > 0       ? timeout_ms
                    : o && o->timeout_ms ? o->timeout_ms
                                         : SNAP_LVM_DEFAULT_TIMEOUT_MS;
    return co;
}

static snap_child_group *group_new(const snap_lvm_opts *o)
{
    return snap_child_group_new(o ? o->max_parallel : 0, o ? o->lg : NULL);
}

/* ------------------------------------------------------------ volumes */

char *snap_lv_full_name(const snap_lv *lv)
{
    return snap_xasprintf("%s/%s", lv->vg, lv->name);
}

int snap_lvm_split_name(const char *full, char **vg, char **lv, snap_err *err)
{
    const char *slash = full ? strchr(full, '/') : NULL;
    *vg = *lv = NULL;
    if (!slash || slash == full || !slash[1] || strchr(slash + 1, '/'))
        return snap_err_set(err, SNAP_ERROR_INVAL, "'%s' is not a volume's vg/lv name",
                            full ? full : "(null)");
    *vg = snap_xasprintf("%.*s", (int)(slash - full), full);
    *lv = snap_xstrdup(slash + 1);
    return 0;
}

bool snap_lv_has_tag(const snap_lv *lv, const char *tag)
{
    for (size_t i = 0; i < lv->n_tags; i++)
        if (!strcmp(lv->tags[i], tag))
            return true;
    return false;
}

void snap_lv_dispose(snap_lv *lv)
{
    if (!lv)
        return;
    free(lv->vg);
    free(lv->name);
    free(lv->uuid);
    free(lv->attr);
    free(lv->segtype);
    free(lv->pool);
    free(lv->origin);
    free(lv->path);
    free(lv->dm_path);
    snap_strv_free(lv->tags, lv->n_tags);
    memset(lv, 0, sizeof *lv);
}

void snap_lv_list_free(snap_lv *lvs, size_t n)
{
    for (size_t i = 0; lvs && i < n; i++)
        snap_lv_dispose(&lvs[i]);
    free(lvs);
}

/* A report field: NULL when absent or empty (LVM writes "" for "none"). */
static char *field(yajl_val row, const char *key)
{
    const char *s = snap_json_get_string(row, key);
    return s && *s ? snap_xstrdup(s) : NULL;
}

static int parse_size(yajl_val row, uint64_t *out, snap_err *err)
{
    const char *s = snap_json_get_string(row, "lv_size");
    char *end = NULL;
    errno = 0;
    unsigned long long v = s ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *end || errno)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "lvs: lv_size '%s' is not a number of bytes (--units b "
                            "--nosuffix)",
                            s ? s : "(missing)");
    *out = v;
    return 0;
}

/* lv_tags: "a,b,c" (LVM's list separator for tags). */
static void parse_tags(const char *s, snap_lv *lv)
{
    char *copy = snap_xstrdup(s ? s : ""), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        lv->tags = snap_strv_add(lv->tags, &lv->n_tags, snap_xstrdup(t));
    free(copy);
}

static int parse_row(yajl_val row, snap_lv *lv, snap_err *err)
{
    lv->name = field(row, "lv_name");
    lv->vg = field(row, "vg_name");
    lv->attr = field(row, "lv_attr");
    if (!lv->name || !lv->vg || !lv->attr || strlen(lv->attr) < 6)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "lvs: a volume without lv_name, vg_name or lv_attr");
    lv->segtype = field(row, "segtype");
    lv->pool = field(row, "pool_lv");
    lv->origin = field(row, "origin");
    lv->path = field(row, "lv_path");
    lv->dm_path = field(row, "lv_dm_path");
    lv->uuid = field(row, "lv_uuid");
    parse_tags(snap_json_get_string(row, "lv_tags"), lv);
    /* lv_attr: [0] volume type, [5] device open (lvs(8)) */
    lv->thin = (lv->segtype && !strcmp(lv->segtype, "thin")) || lv->attr[0] == 'V';
    lv->classic_snapshot = lv->attr[0] == 's' || lv->attr[0] == 'S';
    /* [4] state: (I)nvalid snapshot, invalid (S)uspended, merge failed (m, M) */
    lv->invalid = lv->classic_snapshot && (lv->attr[4] == 'I' || lv->attr[4] == 'S');
    lv->merging = lv->attr[0] == 'O' || lv->attr[0] == 'S';
    lv->merge_failed = lv->attr[4] == 'm' || lv->attr[4] == 'M';
    lv->open = lv->attr[5] == 'o';
    lv->active = lv->attr[4] == 'a';
    int rc = parse_size(row, &lv->size, err);
    return rc ? snap_err_context(err, "volume %s/%s", lv->vg, lv->name) : 0;
}

int snap_lvm_parse_lvs(const char *json, snap_lv **lvs, size_t *n, snap_err *err)
{
    *lvs = NULL;
    *n = 0;
    yajl_val root = snap_json_parse(json ? json : "", "lvs --reportformat json", err);
    if (!root)
        return err ? err->code : SNAP_ERROR_PROTOCOL;
    yajl_val report = snap_json_get_array(root, "report");
    int rc = report ? 0
                    : snap_err_set(err, SNAP_ERROR_PROTOCOL,
                                   "lvs: no \"report\" array in its JSON output");
    for (size_t r = 0; !rc && r < snap_json_array_len(report); r++) {
        yajl_val rows = snap_json_get_array(snap_json_array_at(report, r), "lv");
        size_t m = snap_json_array_len(rows);
        *lvs = realloc(*lvs, (*n + m + 1) * sizeof **lvs);
        if (!*lvs)
            abort();
        for (size_t i = 0; !rc && i < m; i++) {
            memset(&(*lvs)[*n], 0, sizeof **lvs);
            rc = parse_row(snap_json_array_at(rows, i), &(*lvs)[(*n)++], err);
        }
    }
    yajl_tree_free(root);
    if (rc) {
        snap_lv_list_free(*lvs, *n);
        *lvs = NULL;
        *n = 0;
    }
    return rc;
}

/* ------------------------------------------------------------ devices */

bool snap_lvm_dev_is_lv(const char *sysfs, unsigned major, unsigned minor, char **dm_name)
{
    char path[512], uuid[256] = "", name[256] = "";
    snprintf(path, sizeof path, "%s/dev/block/%u:%u/dm/uuid", sysfs ? sysfs : "/sys",
             major, minor);
    FILE *f = fopen(path, "re");
    if (!f)
        return false; /* not a device-mapper device */
    bool got = fgets(uuid, sizeof uuid, f) != NULL;
    fclose(f);
    uuid[strcspn(uuid, "\n")] = '\0';
    /* "LVM-" + 32 + 32 characters; hidden layers add "-real", "-cow"... */
    if (!got || strncmp(uuid, "LVM-", 4) || strlen(uuid) != 4 + 64)
        return false;
    if (dm_name) {
        snprintf(path, sizeof path, "%s/dev/block/%u:%u/dm/name", sysfs ? sysfs : "/sys",
                 major, minor);
        f = fopen(path, "re");
        if (f && fgets(name, sizeof name, f))
            name[strcspn(name, "\n")] = '\0';
        if (f)
            fclose(f);
        *dm_name = snap_xstrdup(name);
    }
    return true;
}

int snap_lvm_parse_physical_device(const char *s, unsigned *major, unsigned *minor,
                                   snap_err *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long ma = s ? strtoul(s, &end, 16) : 0;
    bool ok = s && end != s && *end == ':' && !errno;
    const char *mi_s = ok ? end + 1 : "";
    unsigned long mi = ok ? strtoul(mi_s, &end, 16) : 0;
    ok = ok && end != mi_s && !*end && !errno && ma <= 0xfff && mi <= 0xfffff;
    if (!ok)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "physical-device '%s' is not <major>:<minor> in hex",
                            s ? s : "(missing)");
    *major = (unsigned)ma;
    *minor = (unsigned)mi;
    return 0;
}

int snap_lvm_check_physical_device(const char *vdev, const char *path, unsigned major,
                                   unsigned minor, const char *physical_device,
                                   snap_err *err)
{
    unsigned ma, mi;
    int rc = snap_lvm_parse_physical_device(physical_device, &ma, &mi, err);
    if (rc)
        return snap_err_context(err, "disk %s: xenstore's backend", vdev);
    if (ma == major && mi == minor)
        return 0;
    return snap_err_set(err, SNAP_ERROR_INVAL,
                        "disk %s: blkback serves device %u:%u (xenstore physical-device "
                        "%s), but %s is device %u:%u now (renamed, removed or replaced "
                        "since the domain started): refusing to snapshot another volume "
                        "than the one the domain uses",
                        vdev, ma, mi, physical_device, path, major, minor);
}

/* ------------------------------------------------------------ lvs */

/* LVM's words for "no such volume" (lvs, lvremove on a name or a path). */
static bool is_missing_error(const char *errout)
{
    return errout && (strstr(errout, "Failed to find logical volume") ||
                      (strstr(errout, "Volume group \"") && strstr(errout, "not found")));
}

static void lvs_argv(largv *a, const snap_lvm_opts *o, const char *volume)
{
    largv_init(a, o, "lvs");
    larg(a, "--reportformat");
    larg(a, "json");
    larg(a, "--units");
    larg(a, "b");
    larg(a, "--nosuffix");
    larg(a, "-o");
    larg(a, SNAP_LVM_LVS_FIELDS);
    larg(a, volume);
}

/* A finished lvs child on one volume into lv. */
static int judge_lookup(const snap_child_result *r, const char *volume, snap_lv *lv,
                        snap_err *err)
{
    memset(lv, 0, sizeof *lv);
    if (r->rc && is_missing_error(r->errout))
        return snap_err_set(err, SNAP_ERROR_NOTFOUND,
                            "%s is not a logical volume LVM knows: %s", volume,
                            r->errout);
    if (r->rc) {
        *err = r->err;
        return snap_err_context(err, "lvm lvs %s", volume);
    }
    snap_lv *lvs = NULL;
    size_t n = 0;
    int rc = snap_lvm_parse_lvs(r->out, &lvs, &n, err);
    if (rc)
        return snap_err_context(err, "lvm lvs %s", volume);
    if (n != 1) {
        snap_lv_list_free(lvs, n);
        return snap_err_set(err, n ? SNAP_ERROR_PROTOCOL : SNAP_ERROR_NOTFOUND,
                            "lvm lvs %s: %zu volumes reported, expected one", volume, n);
    }
    *lv = lvs[0];
    free(lvs);
    return 0;
}

int snap_lvm_lookup(const snap_lvm_opts *o, const char *volume, snap_lv *lv,
                    snap_err *err)
{
    largv a;
    lvs_argv(&a, o, volume);
    snap_child_opts co = child_opts(o, 0, true);
    snap_child_result r;
    snap_child_run("lvm", a.v, &co, &r, NULL);
    int rc = judge_lookup(&r, volume, lv, err);
    snap_child_result_dispose(&r);
    return rc;
}

/* ------------------------------------------------------------ names */

/* LVM's alphabet for volume names (lvm(8), "VALID NAMES"). */
static bool lv_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '_' || c == '.' || c == '-';
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

char *snap_lvm_snapshot_name(const char *lv, const char *snap)
{
    char *plain = snap_xasprintf("%s-xlsnap-%s", lv, snap);
    bool valid = strlen(plain) <= LV_NAME_MAX;
    for (const char *c = snap; *c && valid; c++)
        valid = lv_name_char(*c);
    if (valid)
        return plain;
    free(plain);
    /* lv part <= 64, "-xlsnap-", snap part <= 45, "-", 8 hex digits: <= 126 */
    char *clean = snap_xasprintf("%.45s", snap);
    for (char *c = clean; *c; c++)
        if (!lv_name_char(*c))
            *c = '_';
    char *name = snap_xasprintf("%.64s-xlsnap-%s-%08" PRIx32, lv, clean, fnv1a(snap));
    free(clean);
    return name;
}

/* ------------------------------------------------------------ create, remove */

static void lvcreate_argv(largv *a, const snap_lvm_opts *o, const snap_lvm_snap_req *q,
                          char *size_buf, size_t size_len, char *origin_buf,
                          size_t origin_len)
{
    snprintf(origin_buf, origin_len, "%s/%s", q->vg, q->origin);
    largv_init(a, o, "lvcreate");
    larg(a, "--snapshot");
    if (!q->thin) {
        snprintf(size_buf, size_len, "%" PRIu64 "b", q->cow_bytes);
        larg(a, "--size");
        larg(a, size_buf);
    }
    larg(a, "--name");
    larg(a, q->name);
    larg(a, "--addtag");
    larg(a, SNAP_LVM_TAG);
    larg(a, origin_buf);
}

/* "N of M <stage>, first: <why>" from the first failed child. */
static int group_verdict(snap_err *per, size_t n, size_t failed, const char *stage,
                         snap_err *err)
{
    for (size_t i = 0; failed && i < n; i++)
        if (per[i].code)
            return snap_err_set(err, per[i].code,
                                "%zu of %zu snapshot volumes %s, first: %s", failed, n,
                                stage, per[i].msg);
    return 0;
}

int snap_lvm_create_snapshots(const snap_lvm_opts *o, const snap_lvm_snap_req *reqs,
                              size_t n, int timeout_ms, bool *made, snap_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!reqs[i].thin && !reqs[i].cow_bytes)
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "classic snapshot %s/%s of %s needs a copy-on-write size",
                                reqs[i].vg, reqs[i].name, reqs[i].origin);
    snap_child_group *g = group_new(o);
    snap_child_opts co = child_opts(o, timeout_ms, false);
    for (size_t i = 0; i < n; i++) {
        largv a;
        char size[32], origin[512];
        lvcreate_argv(&a, o, &reqs[i], size, sizeof size, origin, sizeof origin);
        snap_child_group_add(g, "lvm", a.v, &co);
    }
    snap_child_group_run(g, NULL);
    snap_err *per = snap_xcalloc(n ? n : 1, sizeof *per);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        const snap_child_result *r = snap_child_group_result(g, i);
        if (made)
            made[i] = r->rc == 0;
        if (!r->rc)
            continue;
        per[i] = r->err;
        snap_err_context(&per[i], "lvm lvcreate --snapshot %s/%s as %s", reqs[i].vg,
                         reqs[i].origin, reqs[i].name);
        failed++;
    }
    snap_child_group_free(g);
    int rc = group_verdict(per, n, failed, "not made", err);
    free(per);
    return rc;
}

/* May vg/name be removed as the snapshot of origin that libsnap made? */
static int check_removable(const snap_lv *lv, const snap_lvm_snap_req *q, snap_err *err)
{
    if (!snap_lv_has_tag(lv, SNAP_LVM_TAG))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "%s/%s has no LVM tag '%s': not a volume xlsnap made, "
                            "not removing it",
                            q->vg, q->name, SNAP_LVM_TAG);
    /* a thin snapshot outlives its origin; its origin field is then empty */
    if (q->origin && (lv->origin ? strcmp(lv->origin, q->origin) : !lv->thin))
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "%s/%s is not a snapshot of %s (its origin: %s), not "
                            "removing it",
                            q->vg, q->name, q->origin, lv->origin ? lv->origin : "none");
    if (lv->open)
        return snap_err_set(
            err, SNAP_ERROR_BUSY,
            "%s/%s is open (a domain or a mount uses it), not removing it", q->vg,
            q->name);
    return 0;
}

/* Looks every volume up in parallel; keep[i] says which to remove. */
static size_t check_all_removable(const snap_lvm_opts *o, const snap_lvm_snap_req *reqs,
                                  size_t n, bool *keep, snap_err *per)
{
    /* no logger: a volume already gone is an answer here, not an error to log */
    snap_child_group *g = snap_child_group_new(o ? o->max_parallel : 0, NULL);
    snap_child_opts co = child_opts(o, 0, true);
    char **names = snap_xcalloc(n ? n : 1, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        largv a;
        names[i] = snap_xasprintf("%s/%s", reqs[i].vg, reqs[i].name);
        lvs_argv(&a, o, names[i]);
        snap_child_group_add(g, "lvm", a.v, &co);
    }
    snap_child_group_run(g, NULL);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        snap_lv lv;
        int rc = judge_lookup(snap_child_group_result(g, i), names[i], &lv, &per[i]);
        if (!rc)
            rc = check_removable(&lv, &reqs[i], &per[i]);
        snap_lv_dispose(&lv);
        keep[i] = rc == 0;
        if (rc == SNAP_ERROR_NOTFOUND)
            per[i].code = 0; /* already gone: removed */
        else
            failed += rc != 0;
        free(names[i]);
    }
    free(names);
    snap_child_group_free(g);
    return failed;
}

int snap_lvm_remove_snapshots(const snap_lvm_opts *o, const snap_lvm_snap_req *reqs,
                              size_t n, snap_err *err)
{
    snap_err *per = snap_xcalloc(n ? n : 1, sizeof *per);
    bool *remove = snap_xcalloc(n ? n : 1, sizeof *remove);
    size_t failed = check_all_removable(o, reqs, n, remove, per);
    snap_child_group *g = group_new(o);
    snap_child_opts co = child_opts(o, 0, false);
    size_t *index = snap_xcalloc(n ? n : 1, sizeof *index);
    char **names = snap_xcalloc(n ? n : 1, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        if (!remove[i])
            continue;
        largv a;
        names[i] = snap_xasprintf("%s/%s", reqs[i].vg, reqs[i].name);
        largv_init(&a, o, "lvremove");
        larg(&a, "--yes");
        larg(&a, names[i]);
        index[i] = snap_child_group_add(g, "lvm", a.v, &co);
    }
    snap_child_group_run(g, NULL);
    for (size_t i = 0; i < n; i++) {
        const snap_child_result *r =
            remove[i] ? snap_child_group_result(g, index[i]) : NULL;
        if (r && r->rc && !is_missing_error(r->errout)) {
            per[i] = r->err;
            snap_err_context(&per[i], "lvm lvremove %s", names[i]);
            failed++;
        }
        free(names[i]);
    }
    snap_child_group_free(g);
    int rc = group_verdict(per, n, failed, "not removed", err);
    free(names);
    free(index);
    free(remove);
    free(per);
    return rc;
}

/* ------------------------------------------------------------ rename, change */

/* One lvm command on a volume, its failure worded with the command. */
static int run_one_timed(const snap_lvm_opts *o, const largv *a, int timeout_ms,
                         const char *what, const char *volume, snap_err *err)
{
    snap_child_opts co = child_opts(o, timeout_ms, false);
    snap_child_result r;
    snap_child_run("lvm", a->v, &co, &r, NULL);
    int rc = r.rc;
    if (rc) {
        *err = r.err;
        snap_err_context(err, "lvm %s %s", what, volume);
        rc = is_missing_error(r.errout) ? (err->code = SNAP_ERROR_NOTFOUND) : err->code;
    }
    snap_child_result_dispose(&r);
    return rc;
}

static int run_one(const snap_lvm_opts *o, const largv *a, const char *what,
                   const char *volume, snap_err *err)
{
    return run_one_timed(o, a, 0, what, volume, err);
}

int snap_lvm_rename(const snap_lvm_opts *o, const char *vg, const char *from,
                    const char *to, snap_err *err)
{
    largv a;
    largv_init(&a, o, "lvrename");
    larg(&a, vg);
    larg(&a, from);
    larg(&a, to);
    char *what = snap_xasprintf("%s/%s to %s", vg, from, to);
    int rc = run_one(o, &a, "lvrename", what, err);
    free(what);
    return rc;
}

int snap_lvm_change(const snap_lvm_opts *o, const char *vg, const char *lv, int tag,
                    bool activate, snap_err *err)
{
    largv a;
    char *full = snap_xasprintf("%s/%s", vg, lv);
    largv_init(&a, o, "lvchange");
    if (tag) {
        larg(&a, tag > 0 ? "--addtag" : "--deltag");
        larg(&a, SNAP_LVM_TAG);
    }
    if (activate) {
        larg(&a, "--setactivationskip");
        larg(&a, "n");
    }
    larg(&a, full);
    int rc = tag || activate ? run_one(o, &a, "lvchange", full, err) : 0;
    if (!rc && activate) { /* activation apart: LVM's command forms keep them apart */
        largv_init(&a, o, "lvchange");
        larg(&a, "--activate");
        larg(&a, "y");
        larg(&a, full);
        rc = run_one(o, &a, "lvchange", full, err);
    }
    free(full);
    return rc;
}

/* lvchange --activate y|n of vg/lv; skip: also a volume LVM skips by default. */
static int lvchange_activate(const snap_lvm_opts *o, const char *vg, const char *lv,
                             bool on, bool skip, snap_err *err)
{
    largv a;
    char *full = snap_xasprintf("%s/%s", vg, lv);
    largv_init(&a, o, "lvchange");
    larg(&a, "--activate");
    larg(&a, on ? "y" : "n");
    if (skip)
        larg(&a, "--ignoreactivationskip");
    larg(&a, full);
    int rc =
        run_one(o, &a, on ? "lvchange --activate y" : "lvchange --activate n", full, err);
    free(full);
    return rc;
}

int snap_lvm_activate_transient(const snap_lvm_opts *o, const char *vg, const char *lv,
                                snap_err *err)
{
    return lvchange_activate(o, vg, lv, true, true, err);
}

int snap_lvm_deactivate(const snap_lvm_opts *o, const char *vg, const char *lv,
                        snap_err *err)
{
    return lvchange_activate(o, vg, lv, false, false, err);
}

/* ------------------------------------------------------------ merge */

int snap_lvm_merge(const snap_lvm_opts *o, const char *vg, const char *snap,
                   snap_err *err)
{
    largv a;
    char *full = snap_xasprintf("%s/%s", vg, snap);
    largv_init(&a, o, "lvconvert");
    larg(&a, "--merge");
    larg(&a, "--yes");
    larg(&a, full);
    int rc =
        run_one_timed(o, &a, SNAP_LVM_MERGE_TIMEOUT_MS, "lvconvert --merge", full, err);
    free(full);
    return rc;
}

/* 1: vg/origin has a merge pending, 0: none, < 0: lvs failed or the merge did. */
static int merge_pending(const snap_lvm_opts *o, const char *full, snap_err *err)
{
    snap_lv lv;
    int rc = snap_lvm_lookup(o, full, &lv, err);
    if (rc)
        return -1;
    bool pending = lv.merging, failed = lv.merge_failed;
    snap_lv_dispose(&lv);
    if (!failed)
        return pending;
    snap_err_set(err, SNAP_ERROR_IO,
                 "LVM reports the merge of a snapshot into %s failed (lv_attr 'm'): "
                 "see lvs -a and the kernel log",
                 full);
    return -1;
}

int snap_lvm_wait_merged(const snap_lvm_opts *o, const char *vg, const char *origin,
                         int timeout_ms, snap_err *err)
{
    char *full = snap_xasprintf("%s/%s", vg, origin);
    uint64_t deadline =
        snap_now_ms() +
        (uint64_t)(timeout_ms > 0 ? timeout_ms : SNAP_LVM_MERGE_TIMEOUT_MS);
    int pending = merge_pending(o, full, err);
    if (pending > 0) { /* deferred, or its lvconvert is gone: LVM polls it again */
        largv a;
        largv_init(&a, o, "lvchange");
        larg(&a, "--refresh");
        larg(&a, full);
        if (run_one(o, &a, "lvchange --refresh", full, err))
            pending = -1;
    }
    while (pending > 0 && snap_now_ms() < deadline) {
        usleep(500 * 1000);
        pending = merge_pending(o, full, err);
    }
    if (pending > 0)
        snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                     "the merge into %s is still going on after %d s (lvs -a %s)", full,
                     (timeout_ms > 0 ? timeout_ms : SNAP_LVM_MERGE_TIMEOUT_MS) / 1000,
                     vg);
    free(full);
    return pending ? err->code : 0;
}
