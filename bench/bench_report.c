/*
 * bench_report: turns the raw samples of a `make bench` run into the table
 * people read and the JSON file programs read.
 *
 *   bench_report SAMPLES RESULTS.json
 *
 * SAMPLES has one line per fact, in the order they were measured:
 *   meta KEY VALUE...                     (date, machine, ...)
 *   SECTION CASE METRIC VALUE             (one sample; a series is all the
 *                                          samples of one SECTION CASE METRIC)
 *   pending SECTION WHY...                (a measurement that cannot run yet)
 *   limit LABEL MAX SECTION CASE METRIC   (check: median <= MAX; '_' in
 *                                          LABEL is printed as ' ')
 *   ratio LABEL MAX S1 C1 M1 S2 C2 M2     (check: median1 / median2 <= MAX)
 *   floor LABEL MAX S C M S1 C1 M1 S2 C2 M2 K
 *                                         (check: median / floor <= MAX, where
 *                                          floor = max(median1, K x median2):
 *                                          e.g. a physical limit from the
 *                                          machine's CPU count)
 *   target LABEL OP BOUND S1 C1 M1 [S2 C2 M2]
 *                                         (an issue's target, printed apart as
 *                                          MET or NOT MET: median1 [/ median2]
 *                                          OP ("<=" or ">=") BOUND; OP
 *                                          "beside": a figure shown next to
 *                                          one, no verdict)
 *   target-floor LABEL S1 C1 M1 [S2 C2 M2] | REASON...
 *                                         (for target LABEL when not met: the
 *                                          measured floor, median1 [/ median2],
 *                                          and why; "{S C M}" in REASON is
 *                                          replaced by that series' median)
 * Every ratio is of medians measured in the same run.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_json.h"

#define FIELD_MAX 128

typedef struct series {
    char section[FIELD_MAX], kase[FIELD_MAX], metric[FIELD_MAX];
    double *v;
    size_t n;
} series;

typedef struct check {
    char label[FIELD_MAX];
    double value, max;
    bool known;   /* every series it needs was measured */
    double floor; /* of a "floor" check, printed beside it; else 0 */
} check;

typedef struct target {
    char label[FIELD_MAX];
    bool at_least; /* ">=": the value must reach the bound; else "<=" */
    bool beside;   /* no bound: shown next to a target */
    double bound, value;
    bool known;
    char *floor_reason; /* from its target-floor line, NULL without one */
    double floor;
    bool floor_known;
} target;

typedef struct report {
    target *t;
    size_t n_t;
    series *s;
    size_t n_s;
    check *c;
    size_t n_c;
    char **meta; /* "key value" lines */
    size_t n_meta;
    char **pending; /* "section why" lines */
    size_t n_pending;
} report;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static series *find(report *r, const char *sec, const char *kase, const char *metric)
{
    for (size_t i = 0; i < r->n_s; i++)
        if (!strcmp(r->s[i].section, sec) && !strcmp(r->s[i].kase, kase) &&
            !strcmp(r->s[i].metric, metric))
            return &r->s[i];
    return NULL;
}

static void add_sample(report *r, const char *sec, const char *kase, const char *metric,
                       double v)
{
    series *s = find(r, sec, kase, metric);
    if (!s) {
        r->s = snap_xrealloc(r->s, (r->n_s + 1) * sizeof *r->s);
        s = &r->s[r->n_s++];
        memset(s, 0, sizeof *s);
        snprintf(s->section, sizeof s->section, "%.127s", sec);
        snprintf(s->kase, sizeof s->kase, "%.127s", kase);
        snprintf(s->metric, sizeof s->metric, "%.127s", metric);
    }
    s->v = snap_xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = v;
}

/* Median of a sorted copy; NaN-free callers only (n > 0). */
static double median_of(const series *s)
{
    double *c = snap_xmalloc(s->n * sizeof *c);
    memcpy(c, s->v, s->n * sizeof *c);
    qsort(c, s->n, sizeof *c, cmp_double);
    double m = s->n % 2 ? c[s->n / 2] : (c[s->n / 2 - 1] + c[s->n / 2]) / 2;
    free(c);
    return m;
}

static double min_of(const series *s)
{
    double m = s->v[0];
    for (size_t i = 1; i < s->n; i++)
        m = s->v[i] < m ? s->v[i] : m;
    return m;
}

static double max_of(const series *s)
{
    double m = s->v[0];
    for (size_t i = 1; i < s->n; i++)
        m = s->v[i] > m ? s->v[i] : m;
    return m;
}

static bool median_at(report *r, const char *sec, const char *kase, const char *metric,
                      double *out)
{
    series *s = find(r, sec, kase, metric);
    if (s && s->n)
        *out = median_of(s);
    return s && s->n;
}

static check *add_check(report *r, const char *label, double max, bool known,
                        double value)
{
    r->c = snap_xrealloc(r->c, (r->n_c + 1) * sizeof *r->c);
    check *c = &r->c[r->n_c++];
    snprintf(c->label, sizeof c->label, "%.127s", label);
    for (char *u = strchr(c->label, '_'); u; u = strchr(u, '_'))
        *u = ' '; /* labels are one field in SAMPLES: '_' stands for ' ' */
    c->max = max;
    c->known = known;
    c->value = value;
    c->floor = 0;
    return c;
}

/* value / max(median1, k x median2) of a "floor" line (f: after the keyword). */
static void parse_floor(report *r, char f[][FIELD_MAX])
{
    double a = 0, w = 0, cpu = 0, k = atof(f[11]);
    bool known = median_at(r, f[2], f[3], f[4], &a) &&
                 median_at(r, f[5], f[6], f[7], &w) &&
                 median_at(r, f[8], f[9], f[10], &cpu);
    double fl = w > k * cpu ? w : k * cpu;
    known = known && fl > 0;
    check *c = add_check(r, f[0], atof(f[1]), known, known ? a / fl : 0);
    c->floor = known ? fl : 0;
}

/* One "limit" or "ratio" line (f: its fields, after the keyword). */
static void parse_check(report *r, const char *kind, char f[][FIELD_MAX], int n)
{
    double max = atof(f[1]), a = 0, b = 0;
    bool known = false;
    if (!strcmp(kind, "limit") && n == 5) {
        known = median_at(r, f[2], f[3], f[4], &a);
        add_check(r, f[0], max, known, a);
    } else if (!strcmp(kind, "ratio") && n == 8) {
        known = median_at(r, f[2], f[3], f[4], &a) &&
                median_at(r, f[5], f[6], f[7], &b) && b > 0;
        add_check(r, f[0], max, known, known ? a / b : 0);
    } else if (!strcmp(kind, "floor") && n == 12) {
        parse_floor(r, f);
    } else {
        fprintf(stderr, "bench_report: malformed %s line ignored\n", kind);
    }
}

/* LABEL of SAMPLES ('_' for ' ') as printed. */
static void label_copy(char *dst, const char *src)
{
    snprintf(dst, FIELD_MAX, "%.127s", src);
    for (char *u = strchr(dst, '_'); u; u = strchr(u, '_'))
        *u = ' ';
}

/* median(f[0..2]), or its ratio to median(f[3..5]) when n == 6. */
static bool value_of(report *r, char f[][FIELD_MAX], int n, double *out)
{
    double a = 0, b = 0;
    if (n != 3 && n != 6)
        return false;
    if (!median_at(r, f[0], f[1], f[2], &a))
        return false;
    if (n == 3) {
        *out = a;
        return true;
    }
    if (!median_at(r, f[3], f[4], f[5], &b) || b <= 0)
        return false;
    *out = a / b;
    return true;
}

/* target LABEL OP BOUND S1 C1 M1 [S2 C2 M2] (rest: after the keyword). */
static void parse_target(report *r, const char *rest)
{
    char f[9][FIELD_MAX], label[FIELD_MAX], op[FIELD_MAX], bound[FIELD_MAX];
    int n = sscanf(rest, "%127s %127s %127s %127s %127s %127s %127s %127s %127s", label,
                   op, bound, f[0], f[1], f[2], f[3], f[4], f[5]);
    if (n != 6 && n != 9) {
        fprintf(stderr, "bench_report: malformed target line ignored: %s\n", rest);
        return;
    }
    r->t = snap_xrealloc(r->t, (r->n_t + 1) * sizeof *r->t);
    target *t = &r->t[r->n_t++];
    memset(t, 0, sizeof *t);
    label_copy(t->label, label);
    t->at_least = !strcmp(op, ">=");
    t->beside = !strcmp(op, "beside");
    t->bound = atof(bound);
    t->known = value_of(r, f, n - 3, &t->value);
}

/* REASON with every "{S C M}" replaced by that series' median ("?": none). */
static char *expand_reason(report *r, const char *reason)
{
    size_t cap = strlen(reason) + 256, len = 0;
    char *out = snap_xmalloc(cap);
    for (const char *p = reason; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        char sec[FIELD_MAX], kase[FIELD_MAX], metric[FIELD_MAX], num[32] = "?";
        if (!close) {
            out[len++] = *p++;
        } else {
            double v;
            char inner[3 * FIELD_MAX];
            snprintf(inner, sizeof inner, "%.*s", (int)(close - p - 1), p + 1);
            if (sscanf(inner, "%127s %127s %127s", sec, kase, metric) == 3 &&
                median_at(r, sec, kase, metric, &v))
                snprintf(num, sizeof num, "%.1f", v);
            size_t k = strlen(num);
            memcpy(out + len, num, k);
            len += k;
            p = close + 1;
        }
        if (len + 64 > cap)
            out = snap_xrealloc(out, cap *= 2);
    }
    out[len] = 0;
    return out;
}

/* target-floor LABEL S1 C1 M1 [S2 C2 M2] | REASON (rest: after the keyword). */
static void parse_target_floor(report *r, const char *rest)
{
    char f[6][FIELD_MAX], label[FIELD_MAX], name[FIELD_MAX];
    const char *bar = strstr(rest, " | ");
    int n = sscanf(rest, "%127s %127s %127s %127s %127s %127s %127s", label, f[0], f[1],
                   f[2], f[3], f[4], f[5]);
    if (n >= 5 && !strcmp(f[3], "|"))
        n = 4; /* no second series */
    label_copy(name, label);
    target *t = NULL;
    for (size_t i = 0; i < r->n_t && !t; i++)
        t = strcmp(r->t[i].label, name) ? NULL : &r->t[i];
    if (!bar || (n != 4 && n != 7) || !t) {
        fprintf(stderr, "bench_report: malformed target-floor line ignored: %s\n", rest);
        return;
    }
    free(t->floor_reason);
    t->floor_known = value_of(r, f, n - 1, &t->floor);
    t->floor_reason = expand_reason(r, bar + 3);
}

static char **push_line(char **v, size_t *n, const char *line)
{
    v = snap_xrealloc(v, (*n + 1) * sizeof *v);
    v[(*n)++] = snap_xstrdup(line);
    return v;
}

static void parse_line(report *r, char *line)
{
    line[strcspn(line, "\n")] = 0;
    char kind[FIELD_MAX], f[12][FIELD_MAX];
    int consumed = 0;
    if (sscanf(line, "%127s %n", kind, &consumed) != 1 || kind[0] == '#')
        return;
    const char *rest = line + consumed;
    if (!strcmp(kind, "meta")) {
        r->meta = push_line(r->meta, &r->n_meta, rest);
        return;
    }
    if (!strcmp(kind, "target")) {
        parse_target(r, rest);
        return;
    }
    if (!strcmp(kind, "target-floor")) {
        parse_target_floor(r, rest);
        return;
    }
    if (!strcmp(kind, "pending")) {
        r->pending = push_line(r->pending, &r->n_pending, rest);
        return;
    }
    int n = sscanf(
        rest, "%127s %127s %127s %127s %127s %127s %127s %127s %127s %127s %127s %127s",
        f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]);
    if (!strcmp(kind, "limit") || !strcmp(kind, "ratio") || !strcmp(kind, "floor"))
        parse_check(r, kind, f, n);
    else if (n == 3)
        add_sample(r, kind, f[0], f[1], atof(f[2]));
    else
        fprintf(stderr, "bench_report: malformed line ignored: %s\n", line);
}

static void print_table(const report *r)
{
    const char *last = "";
    for (size_t i = 0; i < r->n_meta; i++)
        printf("%s\n", r->meta[i]);
    printf("\n%-10s %-26s %-18s %4s %10s %10s %10s\n", "Section", "Case", "Metric", "n",
           "median", "min", "max");
    for (size_t i = 0; i < r->n_s; i++) {
        const series *s = &r->s[i];
        printf("%-10s %-26s %-18s %4zu %10.3f %10.3f %10.3f\n",
               strcmp(last, s->section) ? s->section : "", s->kase, s->metric, s->n,
               median_of(s), min_of(s), max_of(s));
        last = s->section;
    }
    for (size_t i = 0; i < r->n_pending; i++)
        printf("%-10s PENDING: %s\n", "", r->pending[i]);
    printf("\nTargets (medians of this run):\n");
    for (size_t i = 0; i < r->n_c; i++) {
        const check *c = &r->c[i];
        if (c->known && c->floor > 0)
            printf("  %-52s %9.2f  (<= %g)  %s  (floor %.1f ms)\n", c->label, c->value,
                   c->max, c->value <= c->max ? "ok" : "MISSED", c->floor);
        else if (c->known)
            printf("  %-52s %9.2f  (<= %g)  %s\n", c->label, c->value, c->max,
                   c->value <= c->max ? "ok" : "MISSED");
        else
            printf("  %-52s %9s  (<= %g)  not measured\n", c->label, "-", c->max);
    }
}

static bool target_met(const target *t)
{
    return t->at_least ? t->value >= t->bound : t->value <= t->bound;
}

/* The targets, one line each, and for a missed one its floor. */
static void print_targets(const report *r)
{
    if (!r->n_t)
        return;
    printf("\nIssue targets (medians of this run):\n");
    for (size_t i = 0; i < r->n_t; i++) {
        const target *t = &r->t[i];
        const char *op = t->at_least ? ">=" : "<=";
        if (!t->known) {
            printf("  %-56s %7s  not measured\n", t->label, "-");
            continue;
        }
        if (t->beside) {
            printf("  %-56s %7.2f\n", t->label, t->value);
            continue;
        }
        printf("  %-56s %7.2f  (%s %g)  %s\n", t->label, t->value, op, t->bound,
               target_met(t) ? "MET" : "NOT MET");
        if (!target_met(t) && t->floor_reason && t->floor_known)
            printf("      floor %.2f: %s\n", t->floor, t->floor_reason);
        else if (!target_met(t) && t->floor_reason)
            printf("      floor not measured: %s\n", t->floor_reason);
    }
}

/* v, or null when it was not measured. */
static void gen_double_or_null(yajl_gen g, bool known, double v)
{
    if (known)
        yajl_gen_double(g, v);
    else
        snap_json_null(g);
}

static void gen_target(yajl_gen g, const target *t)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "target", t->label);
    snap_json_kv_str(g, "op", t->beside ? "beside" : t->at_least ? ">=" : "<=");
    snap_json_key(g, "bound");
    yajl_gen_double(g, t->bound);
    snap_json_key(g, "value");
    gen_double_or_null(g, t->known, t->value);
    snap_json_key(g, "met");
    if (t->known && !t->beside)
        snap_json_bool(g, target_met(t));
    else
        snap_json_null(g);
    if (t->known && !t->beside && !target_met(t) && t->floor_reason) {
        snap_json_key(g, "floor");
        gen_double_or_null(g, t->floor_known, t->floor);
        snap_json_kv_str(g, "floor_reason", t->floor_reason);
    }
    yajl_gen_map_close(g);
}

static void gen_series(yajl_gen g, const series *s)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "section", s->section);
    snap_json_kv_str(g, "case", s->kase);
    snap_json_kv_str(g, "metric", s->metric);
    snap_json_kv_int(g, "n", (long long)s->n);
    snap_json_key(g, "median");
    yajl_gen_double(g, median_of(s));
    snap_json_key(g, "min");
    yajl_gen_double(g, min_of(s));
    snap_json_key(g, "max");
    yajl_gen_double(g, max_of(s));
    snap_json_key(g, "samples");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < s->n; i++)
        yajl_gen_double(g, s->v[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

static void gen_check(yajl_gen g, const check *c)
{
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "target", c->label);
    snap_json_key(g, "max");
    yajl_gen_double(g, c->max);
    snap_json_key(g, "value");
    gen_double_or_null(g, c->known, c->value);
    if (c->floor > 0) {
        snap_json_key(g, "floor");
        yajl_gen_double(g, c->floor);
    }
    snap_json_key(g, "met");
    if (c->known)
        snap_json_bool(g, c->value <= c->max);
    else
        snap_json_null(g);
    yajl_gen_map_close(g);
}

/* "key value..." lines as one object. */
static void gen_meta(yajl_gen g, char **lines, size_t n)
{
    yajl_gen_map_open(g);
    for (size_t i = 0; i < n; i++) {
        char key[FIELD_MAX];
        int used = 0;
        if (sscanf(lines[i], "%127s %n", key, &used) == 1)
            snap_json_kv_str(g, key, lines[i] + used);
    }
    yajl_gen_map_close(g);
}

static int write_json(const report *r, const char *path)
{
    yajl_gen g = snap_json_gen_new(true);
    yajl_gen_map_open(g);
    snap_json_key(g, "meta");
    gen_meta(g, r->meta, r->n_meta);
    snap_json_key(g, "series");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_s; i++)
        gen_series(g, &r->s[i]);
    yajl_gen_array_close(g);
    snap_json_key(g, "pending");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_pending; i++)
        snap_json_str(g, r->pending[i]);
    yajl_gen_array_close(g);
    snap_json_key(g, "targets");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_c; i++)
        gen_check(g, &r->c[i]);
    yajl_gen_array_close(g);
    snap_json_key(g, "issue_targets");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_t; i++)
        gen_target(g, &r->t[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    size_t len;
    char *text = snap_json_gen_finish(g, &len);
    FILE *f = fopen(path, "w");
    bool ok = f && fwrite(text, 1, len, f) == len;
    ok = f && !fclose(f) && ok;
    free(text);
    if (!ok)
        perror(path);
    return ok ? 0 : 1;
}

static void report_free(report *r)
{
    for (size_t i = 0; i < r->n_s; i++)
        free(r->s[i].v);
    for (size_t i = 0; i < r->n_meta; i++)
        free(r->meta[i]);
    for (size_t i = 0; i < r->n_pending; i++)
        free(r->pending[i]);
    for (size_t i = 0; i < r->n_t; i++)
        free(r->t[i].floor_reason);
    free(r->t);
    free(r->s);
    free(r->c);
    free(r->meta);
    free(r->pending);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_report SAMPLES RESULTS.json\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    report r = {0};
    char line[4096];
    while (fgets(line, sizeof line, in))
        parse_line(&r, line);
    fclose(in);
    print_table(&r);
    print_targets(&r);
    int rc = write_json(&r, argv[2]);
    report_free(&r);
    return rc;
}
