/* Printing of snapshot records for the xlsnap command (tables, tree, JSON). */
#ifndef XLSNAP_OUTPUT_H
#define XLSNAP_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "libsnap.h"

enum list_filter { LIST_ALL, LIST_ROOTS, LIST_LEAVES };

/*
 * s as it may reach a terminal: itself when it holds no control character,
 * bidirectional control or invalid UTF-8 (snap_text.h), else a copy with
 * those escaped (\xNN, \u{NNNN}), valid until 16 later calls (one printf may
 * take several). Records of older versions or edited by hand may hold
 * anything; text output shows every stored string through this.
 */
const char *term_safe(const char *s);

/*
 * JSON text with DEL and the C1 controls, which yajl leaves raw inside
 * strings, as \u007f..\u009f (same JSON value; outside strings JSON is
 * ASCII). Valid like term_safe's result.
 */
const char *json_term_safe(const char *json);

void print_created(const snap_info *info);
void print_list_table(snap_summary **list, size_t n, enum list_filter filter);
/* --json: records printed as snap_list_each hands them over, as one array. */
typedef struct json_list_printer {
    enum list_filter filter;
    bool opened; /* "[" printed */
    size_t printed;
} json_list_printer;
int json_list_print_one(const snap_info *info, void *printer); /* a snap_info_fn */
void json_list_print_end(json_list_printer *p);
void print_tree(snap_summary **list, size_t n);
void print_info(const snap_info *info);
/* A verification: "Verified: <time> UTC: clean" and a row per filesystem. */
void print_verification(const snap_verification *v);
/* snapshot-verify's (and create --verify's) report. */
void print_verified(const snap_info *info);
#ifdef LIBSNAP_HAVE_SNAPSHOT_GROUPS
/* Consistency groups: created, listed (snapshot-list --groups), one shown. */
void print_group_created(const snap_group_info *g);
void print_group_list(snap_group_info **list, size_t n);
void print_group_info(const snap_group_info *g);
#endif

#endif
