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

#include "xlsnap_output.h"

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

/* "quiesced", "crash-consistent" — what the guest's filesystems saw. */
static const char *consistency(const snap_info *s)
{
    return s->quiesced ? "quiesced" : "crash-consistent";
}

/* "internal", "external" or "mixed" over the snapshot's disks. */
static const char *location(const snap_info *s)
{
    if (s->n_internal && s->n_external)
        return "mixed";
    return s->n_internal ? "internal" : s->n_external ? "external" : "none";
}

static bool included(const snap_info *s, enum list_filter filter)
{
    switch (filter) {
    case LIST_ROOTS: return s->parent == NULL;
    case LIST_LEAVES: return s->n_children == 0;
    default: return true;
    }
}

void print_created(const snap_info *s)
{
    printf("Snapshot %s of domain %s created: %zu disk%s (%s), ", s->name, s->domain_name,
           s->n_disks, s->n_disks == 1 ? "" : "s", location(s));
    if (s->quiesced)
        printf("quiesced: %d filesystem%s frozen for %lld ms", s->frozen_count,
               s->frozen_count == 1 ? "" : "s", (long long)s->frozen_ms);
    else
        printf("crash-consistent");
    if (s->memory_path)
        printf(", with memory");
    printf(".\n");
}

void print_list_table(snap_info **list, size_t n, enum list_filter filter)
{
    char tbuf[32];
    bool incomplete = false;
    printf("%-32s %-19s  %-8s %-9s %5s  %-16s %-6s %s\n", "Name", "Creation time (UTC)",
           "State", "Location", "Disks", "Consistency", "Memory", "Parent");
    for (size_t i = 0; i < n; i++) {
        const snap_info *s = list[i];
        if (!included(s, filter))
            continue;
        char name[64];
        incomplete = incomplete || s->incomplete;
        snprintf(name, sizeof name, "%s%s", s->name,
                 s->current ? " *" : (s->incomplete ? " !" : ""));
        printf("%-32s %-19s  %-8s %-9s %5zu  %-16s %-6s %s\n", name,
               fmt_time(s->creation_sec, tbuf, sizeof tbuf), s->domain_state, location(s),
               s->n_disks, consistency(s), s->has_memory ? "yes" : "no",
               s->parent ? s->parent : "-");
    }
    printf(
        "(* current snapshot; ! interrupted operation: the next xlsnap command on the\n"
        "domain finishes or rolls it back)\n");
}

void print_list_json(snap_info **list, size_t n, enum list_filter filter)
{
    bool first = true;
    printf("[");
    for (size_t i = 0; i < n; i++) {
        if (!included(list[i], filter))
            continue;
        printf("%s\n%s", first ? "" : ",", list[i]->json);
        first = false;
    }
    printf("%s]\n", first ? "" : "\n");
}

/* Tree printing: children found by sorting indices on parent name. */
struct tree_ctx {
    snap_info **list;
    size_t n;
    size_t *by_parent; /* indices of non-roots, sorted by parent name */
    size_t n_by_parent;
};

/* qsort has no context argument: the list being sorted, set by print_tree. */
static snap_info **tree_sort_list;
static int by_parent_cmp(const void *a, const void *b)
{
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int c = strcmp(tree_sort_list[ia]->parent, tree_sort_list[ib]->parent);
    /* Siblings keep creation order. */
    return c ? c : (ia > ib) - (ia < ib);
}

static void print_subtree(const struct tree_ctx *t, size_t idx, char *prefix, size_t plen)
{
    const snap_info *s = t->list[idx];
    printf("%s%s\n", s->name, s->current ? " *" : "");
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
        const snap_info *c = t->list[t->by_parent[k]];
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

void print_tree(snap_info **list, size_t n)
{
    struct tree_ctx t = {.list = list, .n = n};
    t.by_parent = calloc(n ? n : 1, sizeof *t.by_parent);
    char *prefix = calloc(4096, 1);
    if (!t.by_parent || !prefix) {
        perror("xlsnap");
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

void print_info(const snap_info *s)
{
    char tbuf[32];
    printf("%-15s %s\n", "Name:", s->name);
    printf("%-15s %s (%s)\n", "Domain:", s->domain_name, s->domain_uuid);
    printf("%-15s %s\n",
           "Description:", s->description && *s->description ? s->description : "-");
    printf("%-15s %s UTC\n", "Created:", fmt_time(s->creation_sec, tbuf, sizeof tbuf));
    printf("%-15s %s\n", "Current:", s->current ? "yes" : "no");
    printf("%-15s %s\n", "State:", s->domain_state);
    printf("%-15s %s\n", "Location:", location(s));
    printf("%-15s %s\n", "Parent:", s->parent ? s->parent : "-");
    printf("%-15s %zu\n", "Children:", s->n_children);
    if (s->quiesced)
        printf("%-15s quiesced (%d filesystem%s frozen for %lld ms, thawed %s)\n",
               "Consistency:", s->frozen_count, s->frozen_count == 1 ? "" : "s",
               (long long)s->frozen_ms, s->thaw_ok ? "ok" : "with errors");
    else
        printf("%-15s crash-consistent (quiesce policy %s)\n",
               "Consistency:", s->quiesce_policy);
    if (s->memory_path)
        printf("%-15s %s (%llu MiB)\n", "Memory:", s->memory_path,
               (unsigned long long)(s->memory_size >> 20));
    else
        printf("%-15s no (disk-only)\n", "Memory:");
    if (s->incomplete)
        printf("%-15s an interrupted operation is journaled for this snapshot\n",
               "Warning:");
    printf("\n%-6s %-8s %-9s %-7s %s\n", "Disk", "Backend", "Method", "Format", "Files");
    for (size_t i = 0; i < s->n_disks; i++) {
        const snap_disk_info *d = &s->disks[i];
        if (!strcmp(d->method, "external"))
            printf("%-6s %-8s %-9s %-7s %s <- %s\n", d->vdev, d->backend, d->method,
                   d->format, d->base_path, d->overlay_path ? d->overlay_path : "?");
        else
            printf("%-6s %-8s %-9s %-7s %s @ %s\n", d->vdev, d->backend, d->method,
                   d->format, d->base_path,
                   d->internal_name ? d->internal_name : s->name);
    }
    for (size_t i = 0; i < s->n_excluded; i++)
        printf("%-6s %-8s %-9s\n", s->excluded[i], "-", "excluded");
}
