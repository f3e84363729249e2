/*
 * Printing of snapshot records: xl-style tables for people, JSON for
 * programs (the stored records themselves).
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libsnap.h"
#include "xlsnap_cmd.h"
#include "xlsnap_output.h"

#define TERM_SLOTS 16

/* Keeps escaped (malloc'd) for TERM_SLOTS more calls and returns it. */
static const char *keep_escaped(char *escaped)
{
    static char *slots[TERM_SLOTS];
    static unsigned next;
    free(slots[next]);
    slots[next] = escaped;
    next = (next + 1) % TERM_SLOTS;
    return escaped;
}

const char *term_safe(const char *s)
{
    char *escaped = s ? snap_text_escape(s) : NULL;
    return escaped ? keep_escaped(escaped) : s;
}

/* DEL, or the first byte of a C1 control's UTF-8 form (C2 80..C2 9F). */
static bool json_unescaped_control(const unsigned char *p)
{
    return p[0] == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
}

const char *json_term_safe(const char *json)
{
    const unsigned char *s = (const unsigned char *)json;
    size_t n = 0, len = strlen(json);
    for (size_t i = 0; i < len; i++)
        n += json_unescaped_control(s + i);
    if (!n)
        return json;
    char *out = malloc(len + 6 * n + 1), *o = out;
    if (!out) {
        perror(xlsnap_progname);
        exit(EXIT_FAILURE);
    }
    for (size_t i = 0; i < len; i++) {
        if (!json_unescaped_control(s + i)) {
            *o++ = (char)s[i];
            continue;
        }
        unsigned cp = s[i] == 0x7f ? 0x7f : s[i + 1];
        o += sprintf(o, "\\u%04x", cp);
        i += s[i] == 0xc2; /* both bytes of a C1 control */
    }
    *o = '\0';
    return keep_escaped(out);
}

static const char *fmt_time(int64_t sec, char *buf, size_t len)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (sec == 0) /* an interrupted create has no record yet */
        return "-";
    if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, len, "%lld", (long long)sec);
    return buf;
}

/* The filesystems not frozen, "/mnt/a (excluded (no-freeze)), ..." (static buffer). */
static const char *unfrozen_list(const snap_info *s)
{
    static char buf[2048];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_filesystems && used < sizeof buf; i++) {
        const snap_fs_info *f = &s->filesystems[i];
        if (f->outcome == SNAP_FS_FROZEN)
            continue;
        int w = snprintf(buf + used, sizeof buf - used, "%s%s (%s)", used ? ", " : "",
                         term_safe(f->mountpoint),
                         f->reason ? term_safe(f->reason)
                                   : snap_fs_outcome_to_string(f->outcome));
        used += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

/* "internal", "external", "lvm" or "mixed" over the snapshot's disks. */
static const char *location(unsigned n_internal, unsigned n_external, size_t n_disks)
{
    size_t n_lvm = n_disks - n_internal - n_external;
    if ((n_internal != 0) + (n_external != 0) + (n_lvm != 0) > 1)
        return "mixed";
    return n_internal ? "internal" : n_external ? "external" : n_lvm ? "lvm" : "none";
}

static const char *info_location(const snap_info *s)
{
    unsigned n_internal = 0, n_external = 0;
    for (size_t i = 0; i < s->n_disks; i++) {
        n_internal += s->disks[i].method == SNAP_METHOD_INTERNAL;
        n_external += s->disks[i].method == SNAP_METHOD_EXTERNAL;
    }
    return location(n_internal, n_external, s->n_disks);
}

static bool included(const char *parent, size_t n_children, enum list_filter filter)
{
    switch (filter) {
    case LIST_ROOTS: return parent == NULL;
    case LIST_LEAVES: return n_children == 0;
    default: return true;
    }
}

void print_created(const snap_info *s)
{
    printf("Snapshot %s of domain %s created: %zu disk%s (%s), ", term_safe(s->name),
           term_safe(s->domain_name), s->n_disks, s->n_disks == 1 ? "" : "s",
           info_location(s));
    if (s->consistency != SNAP_CONSISTENCY_CRASH)
        printf("%s: %d filesystem%s frozen for %lld ms",
               snap_consistency_to_string(s->consistency), s->frozen_count,
               s->frozen_count == 1 ? "" : "s", (long long)s->frozen_ms);
    if (s->consistency == SNAP_CONSISTENCY_PARTIAL)
        printf("; not frozen: %s", unfrozen_list(s));
    else if (s->consistency == SNAP_CONSISTENCY_QUIESCED)
        ;
    else if (s->quiesce_reason)
        printf("crash-consistent (%s)", s->quiesce_reason);
    else
        printf("crash-consistent");
    if (s->memory_path)
        printf(", with memory");
    printf(".\n");
}

static const char *verification_word(const snap_verification *v)
{
    return v->clean ? "clean" : "NOT clean";
}

void print_verification(const snap_verification *v)
{
    char tbuf[32];
    printf("%-15s %s UTC: %s\n", "Verified:", fmt_time(v->time_sec, tbuf, sizeof tbuf),
           verification_word(v));
    printf("%-6s %-4s %-8s %-15s %s\n", "Disk", "Part", "Type", "State", "Detail");
    for (size_t i = 0; i < v->n_fs; i++) {
        const snap_fs_verdict *f = &v->fs[i];
        char part[16];
        snprintf(part, sizeof part, "%d", f->partition);
        printf("%-6s %-4s %-8s %-15s %s\n", term_safe(f->vdev), f->partition ? part : "-",
               term_safe(f->fstype), snap_fs_state_to_string(f->state),
               *f->detail ? term_safe(f->detail) : "-");
    }
}

void print_verified(const snap_info *s)
{
    const snap_verification *v = s->verification;
    size_t n = 0;
    for (size_t i = 0; i < v->n_fs; i++)
        n += v->fs[i].state != SNAP_FS_NO_FILESYSTEM;
    printf("Snapshot %s of domain %s verified: %s (%zu filesystem%s checked).\n",
           term_safe(s->name), term_safe(s->domain_name), verification_word(v), n,
           n == 1 ? "" : "s");
    print_verification(v);
}

/*
 * The table is built in a buffer and written with fwrite: 10,000 rows of
 * printf cost a third of a list's CPU. The buffer is written out whenever it
 * fills, so that it stays a few pages however long the list (every fresh page
 * costs a page fault).
 */
#define OUT_CHUNK 65536

typedef struct out_buf {
    char *data;
    size_t len, cap;
} out_buf;

static void out_flush(out_buf *b)
{
    fwrite(b->data, 1, b->len, stdout);
    b->len = 0;
}

/* Room for n more bytes: written out first when the buffer is full. */
static void out_reserve(out_buf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    if (b->len)
        out_flush(b);
    if (n <= b->cap)
        return;
    size_t cap = n > OUT_CHUNK ? n : OUT_CHUNK;
    char *data = realloc(b->data, cap);
    if (!data) {
        perror(xlsnap_progname);
        exit(EXIT_FAILURE);
    }
    b->data = data;
    b->cap = cap;
}

/* Appends len bytes of s, then spaces up to width (room reserved by the caller). */
static void out_put(out_buf *b, const char *s, size_t len, size_t width)
{
    memcpy(b->data + b->len, s, len);
    b->len += len;
    if (len < width) {
        memset(b->data + b->len, ' ', width - len);
        b->len += width - len;
    }
}

/* s left-aligned in width columns (like "%-*s"), then sep. */
static void out_col(out_buf *b, const char *s, size_t width, const char *sep)
{
    size_t len = strlen(s), slen = strlen(sep);
    out_reserve(b, (len > width ? len : width) + slen);
    out_put(b, s, len, width);
    out_put(b, sep, slen, 0);
}

/* Writes value's last digits into buf[0..width) right-aligned (like "%*u"). */
static void put_digits(char *buf, int width, unsigned long long value, char fill)
{
    for (int i = width - 1; i >= 0; i--) {
        buf[i] = (char)('0' + value % 10);
        value /= 10;
        if (!value && fill == ' ')
            while (--i >= 0)
                buf[i] = ' ';
    }
}

/*
 * "YYYY-MM-DD HH:MM:SS" of a UTC time like fmt_time, without strftime's
 * locale machinery (a fifth of a 10,000-row table's CPU); days to civil
 * date as in Howard Hinnant's days_from_civil inverse.
 */
static const char *fmt_time_fast(int64_t sec, char *buf, size_t len)
{
    if (sec <= 0 || sec >= 253402300800LL) /* outside years 1970..9999 */
        return fmt_time(sec, buf, len);
    long long days = sec / 86400, rem = sec % 86400;
    long long z = days + 719468, era = z / 146097, doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    memcpy(buf, "0000-00-00 00:00:00", 20);
    put_digits(buf, 4, (unsigned long long)year, '0');
    put_digits(buf + 5, 2, (unsigned long long)month, '0');
    put_digits(buf + 8, 2, (unsigned long long)day, '0');
    put_digits(buf + 11, 2, (unsigned long long)(rem / 3600), '0');
    put_digits(buf + 14, 2, (unsigned long long)(rem / 60 % 60), '0');
    put_digits(buf + 17, 2, (unsigned long long)(rem % 60), '0');
    return buf;
}

#define OUT_LIT(b, lit) out_put(b, lit, sizeof lit - 1, 0)

static void print_list_row(out_buf *b, const snap_summary *s)
{
    char tbuf[32], disks[24] = {0};
    const char *mark = s->current ? " *" : (s->incomplete ? " !" : "");
    const char *name = term_safe(s->name);
    const char *parent = s->parent ? term_safe(s->parent) : "-";
    const char *where = location(s->n_internal, s->n_external, s->n_disks),
               *how = snap_consistency_to_string(s->consistency);
    const char *memory = s->has_memory ? "yes" : "no";
    const char *state = snap_domain_state_to_string(s->domain_state);
    size_t name_len = strlen(name), mark_len = strlen(mark), parent_len = strlen(parent);
    size_t state_len = strlen(state);
    if (s->n_disks < 100000)
        put_digits(disks, 5, s->n_disks, ' ');
    else
        snprintf(disks, sizeof disks, "%zu", s->n_disks);
    /* Every column at its widest, plus the separators. */
    out_reserve(b, name_len + mark_len + 32 + state_len + parent_len + sizeof disks + 96);
    out_put(b, name, name_len, 0);
    out_put(b, mark, mark_len, name_len < 32 ? 32 - name_len : 0);
    OUT_LIT(b, " ");
    /* Not always 19 bytes: an interrupted create's row has "-". */
    const char *when = fmt_time_fast(s->creation_sec, tbuf, sizeof tbuf);
    out_put(b, when, strlen(when), 19);
    OUT_LIT(b, "  ");
    out_put(b, state, state_len, 8);
    OUT_LIT(b, " ");
    out_put(b, where, strlen(where), 9);
    OUT_LIT(b, " ");
    out_put(b, disks, strlen(disks), 0);
    OUT_LIT(b, "  ");
    out_put(b, how, strlen(how), 16);
    OUT_LIT(b, " ");
    out_put(b, memory, strlen(memory), 6);
    OUT_LIT(b, " ");
    out_put(b, parent, parent_len, 0);
    OUT_LIT(b, "\n");
}

void print_list_table(snap_summary **list, size_t n, enum list_filter filter)
{
    out_buf b = {0};
    fflush(stdout); /* whatever was printf'ed comes first */
    out_col(&b, "Name", 32, " ");
    out_col(&b, "Creation time (UTC)", 19, "  ");
    out_col(&b, "State", 8, " ");
    out_col(&b, "Location", 9, " ");
    out_col(&b, "Disks", 0, "  ");
    out_col(&b, "Consistency", 16, " ");
    out_col(&b, "Memory", 6, " ");
    out_col(&b, "Parent", 0, "\n");
    bool any_current = false, any_incomplete = false;
    for (size_t i = 0; i < n; i++)
        if (included(list[i]->parent, list[i]->n_children, filter)) {
            print_list_row(&b, list[i]);
            any_current = any_current || list[i]->current;
            any_incomplete = any_incomplete || (!list[i]->current && list[i]->incomplete);
        }
    /* The legend explains only the marks shown. */
    if (any_current && any_incomplete)
        out_col(&b,
                "(* current snapshot; ! interrupted operation: the next snapshot command "
                "on the\ndomain finishes or rolls it back)\n",
                0, "");
    else if (any_current)
        out_col(&b, "(* current snapshot)\n", 0, "");
    else if (any_incomplete)
        out_col(&b,
                "(! interrupted operation: the next snapshot command on the domain "
                "finishes or\nrolls it back)\n",
                0, "");
    out_flush(&b);
    free(b.data);
}

int json_list_print_one(const snap_info *s, void *printer)
{
    json_list_printer *p = printer;
    if (!p->opened)
        printf("[");
    p->opened = true;
    if (included(s->parent, s->n_children, p->filter)) {
        printf("%s\n%s", p->printed ? "," : "", json_term_safe(s->json));
        p->printed++;
    }
    return 0;
}

void json_list_print_end(json_list_printer *p)
{
    printf("%s%s]\n", p->opened ? "" : "[", p->printed ? "\n" : "");
}

/* Tree printing: children found by sorting indices on parent name. */
struct tree_ctx {
    snap_summary **list;
    size_t n;
    size_t *by_parent; /* indices of non-roots, sorted by parent name */
    size_t n_by_parent;
};

/* qsort has no context argument: the list being sorted, set by print_tree. */
static snap_summary **tree_sort_list;
static int by_parent_cmp(const void *a, const void *b)
{
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int c = strcmp(tree_sort_list[ia]->parent, tree_sort_list[ib]->parent);
    /* Siblings keep creation order. */
    return c ? c : (ia > ib) - (ia < ib);
}

static void print_subtree(const struct tree_ctx *t, size_t idx, char *prefix, size_t plen)
{
    const snap_summary *s = t->list[idx];
    printf("%s%s\n", term_safe(s->name), s->current ? " *" : "");
    /* Children are a contiguous run in by_parent. */
    size_t lo = 0, hi = t->n_by_parent;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(t->list[t->by_parent[mid]]->parent, s->name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < t->n_by_parent; k++) {
        const snap_summary *c = t->list[t->by_parent[k]];
        if (strcmp(c->parent, s->name) != 0)
            break;
        bool last = k + 1 >= t->n_by_parent ||
                    strcmp(t->list[t->by_parent[k + 1]]->parent, s->name) != 0;
        printf("%s  |\n%s  +- ", prefix, prefix);
        if (plen + 8 < 4096) {
            strcpy(prefix + plen, last ? "     " : "  |  ");
            print_subtree(t, t->by_parent[k], prefix, plen + 5);
            prefix[plen] = '\0';
        }
    }
}

void print_tree(snap_summary **list, size_t n)
{
    struct tree_ctx t = {.list = list, .n = n};
    t.by_parent = calloc(n ? n : 1, sizeof *t.by_parent);
    char *prefix = calloc(4096, 1);
    if (!t.by_parent || !prefix) {
        perror(xlsnap_progname);
        exit(EXIT_FAILURE);
    }
    for (size_t i = 0; i < n; i++)
        if (list[i]->parent)
            t.by_parent[t.n_by_parent++] = i;
    tree_sort_list = list;
    qsort(t.by_parent, t.n_by_parent, sizeof *t.by_parent, by_parent_cmp);
    for (size_t i = 0; i < n; i++)
        if (!list[i]->parent) {
            print_subtree(&t, i, prefix, 0);
            printf("\n");
        }
    free(prefix);
    free(t.by_parent);
}

/* The guest's filesystems and what the freeze did to each (records since issue 18). */
static void print_filesystems(const snap_info *s)
{
    for (size_t i = 0; i < s->n_filesystems; i++) {
        const snap_fs_info *f = &s->filesystems[i];
        printf("%-15s %s (%s, %s): %s", i ? "" : "Filesystems:", term_safe(f->mountpoint),
               f->type ? term_safe(f->type) : "?", f->device ? term_safe(f->device) : "?",
               snap_fs_outcome_to_string(f->outcome));
        if (f->reason)
            printf(", %s", term_safe(f->reason));
        printf("\n");
    }
}

void print_info(const snap_info *s)
{
    char tbuf[32];
    printf("%-15s %s\n", "Name:", term_safe(s->name));
    printf("%-15s %s (%s)\n", "Domain:", term_safe(s->domain_name),
           term_safe(s->domain_uuid));
    printf("%-15s %s\n", "Description:",
           s->description && *s->description ? term_safe(s->description) : "-");
    printf("%-15s %s UTC\n", "Created:", fmt_time(s->creation_sec, tbuf, sizeof tbuf));
    printf("%-15s %s\n", "Current:", s->current ? "yes" : "no");
    printf("%-15s %s\n", "State:", snap_domain_state_to_string(s->domain_state));
    printf("%-15s %s\n", "Location:", info_location(s));
    printf("%-15s %s\n", "Parent:", s->parent ? term_safe(s->parent) : "-");
    printf("%-15s %zu\n", "Children:", s->n_children);
#ifdef LIBSNAP_HAVE_SNAPSHOT_GROUPS
    if (s->group)
        printf("%-15s %s (snapshot-info --group %s)\n", "Group:", term_safe(s->group),
               term_safe(s->group));
#endif
    if (s->consistency != SNAP_CONSISTENCY_CRASH)
        printf("%-15s %s (%d filesystem%s frozen for %lld ms, thawed %s)\n",
               "Consistency:", snap_consistency_to_string(s->consistency),
               s->frozen_count, s->frozen_count == 1 ? "" : "s", (long long)s->frozen_ms,
               s->thaw_ok ? "ok" : "with errors");
    else
        printf("%-15s crash-consistent (quiesce policy %s%s%s)\n",
               "Consistency:", snap_quiesce_policy_to_string(s->quiesce_policy),
               s->quiesce_reason ? "; " : "",
               s->quiesce_reason ? term_safe(s->quiesce_reason) : "");
#ifdef LIBSNAP_HAVE_FREEZE_LIMITS
    if (s->freeze_thaw_by_ms)
        printf("%-15s thaw sent by %d ms after the freeze, frozen at most %d ms if "
               "every peer answers, watchdog thaw at %d ms\n",
               "Freeze limits:", s->freeze_thaw_by_ms, s->freeze_worst_ms,
               s->freeze_watchdog_ms);
#endif
    print_filesystems(s);
    if (s->memory_path)
        printf("%-15s %s (%llu MiB)\n", "Memory:", term_safe(s->memory_path),
               (unsigned long long)(s->memory_size >> 20));
    else
        printf("%-15s no (disk-only)\n", "Memory:");
    if (s->incomplete)
        printf("%-15s an interrupted operation is journaled for this snapshot\n",
               "Warning:");
    printf("\n%-6s %-8s %-9s %-7s %s\n", "Disk", "Backend", "Method", "Format", "Files");
    for (size_t i = 0; i < s->n_disks; i++) {
        const snap_disk_info *d = &s->disks[i];
        const char *method = snap_method_to_string(d->method);
        if (d->method == SNAP_METHOD_EXTERNAL)
            printf("%-6s %-8s %-9s %-7s %s <- %s\n", term_safe(d->vdev),
                   term_safe(d->backend), method, term_safe(d->format),
                   term_safe(d->base_path),
                   d->overlay_path ? term_safe(d->overlay_path) : "?");
        else
            printf("%-6s %-8s %-9s %-7s %s @ %s\n", term_safe(d->vdev),
                   term_safe(d->backend), method, term_safe(d->format),
                   term_safe(d->base_path),
                   term_safe(d->internal_name ? d->internal_name : s->name));
    }
    for (size_t i = 0; i < s->n_excluded; i++)
        printf("%-6s %-8s %-9s\n", term_safe(s->excluded[i]), "-", "excluded");
    if (s->verification) {
        putchar('\n');
        print_verification(s->verification);
    }
    /* Overlays of earlier reverts: snapshot-delete of this snapshot removes them. */
    for (size_t i = 0; i < s->n_revert_overlays; i++)
        printf("%s%s\n", i ? "                " : "\nOld overlays:   ",
               term_safe(s->revert_overlays[i]));
}

#ifdef LIBSNAP_HAVE_SNAPSHOT_GROUPS
/* A member's own window ("N ms"), or "shut off": it had none. */
static const char *member_window(const snap_group_member *m, char *buf, size_t len)
{
    if (m->shut_off)
        return "shut off";
    snprintf(buf, len, "%lld ms", (long long)m->window_ms);
    return buf;
}

void print_group_created(const snap_group_info *g)
{
    printf("Group %s created: %zu domain%s, %s, shared window %lld ms",
           term_safe(g->name), g->n_members, g->n_members == 1 ? "" : "s",
           g->quiesced ? "quiesced (all frozen together)"
                       : "crash-consistent (all paused together)",
           (long long)g->window_ms);
    for (size_t i = 0; i < g->n_members; i++) {
        char window[32];
        printf("%s%s %s", i ? ", " : " (", term_safe(g->members[i].domain_name),
               member_window(&g->members[i], window, sizeof window));
    }
    printf(").\n");
}

void print_group_list(snap_group_info **list, size_t n)
{
    char tbuf[32];
    printf("%-32s %-20s %-17s %9s %s\n", "Group", "Creation time (UTC)", "Consistency",
           "Window", "Members");
    for (size_t i = 0; i < n; i++) {
        const snap_group_info *g = list[i];
        printf("%-32s %-20s %-17s %6lld ms ", term_safe(g->name),
               fmt_time(g->creation_sec, tbuf, sizeof tbuf),
               snap_consistency_to_string(snap_group_consistency(g)),
               (long long)g->window_ms);
        for (size_t k = 0; k < g->n_members; k++)
            printf("%s%s", k ? "," : "", term_safe(g->members[k].domain_name));
        printf("\n");
    }
}

void print_group_info(const snap_group_info *g)
{
    char tbuf[32];
    printf("%-15s %s\n", "Group:", term_safe(g->name));
    printf("%-15s %s UTC\n", "Created:", fmt_time(g->creation_sec, tbuf, sizeof tbuf));
    printf("%-15s %s (%s)\n",
           "Consistency:", snap_consistency_to_string(snap_group_consistency(g)),
           g->quiesced ? "every domain frozen in one shared window"
                       : "every domain paused for the cut");
    printf("%-15s %lld ms (%s)\n", "Window:", (long long)g->window_ms,
           g->quiesced ? "first freeze sent to last thaw answered"
                       : "first pause to last unpause");
    printf("%-15s %zu\n\n", "Members:", g->n_members);
    printf("%-20s %-36s %-20s %-17s %s\n", "Domain", "UUID", "Snapshot", "Consistency",
           "Own window");
    for (size_t i = 0; i < g->n_members; i++) {
        const snap_group_member *m = &g->members[i];
        char window[32];
        printf("%-20s %-36s %-20s %-17s %s\n", term_safe(m->domain_name),
               term_safe(m->domain_uuid), term_safe(m->snapshot),
               snap_consistency_to_string(m->consistency),
               member_window(m, window, sizeof window));
    }
}
#endif
