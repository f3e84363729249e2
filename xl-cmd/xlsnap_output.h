/* Printing of snapshot records for the xlsnap command (tables, tree, JSON). */
#ifndef XLSNAP_OUTPUT_H
#define XLSNAP_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "libsnap.h"

enum list_filter { LIST_ALL, LIST_ROOTS, LIST_LEAVES };

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

#endif
