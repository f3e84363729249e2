/* Printing of snapshot records for the xlsnap command (tables, tree, JSON). */
#ifndef XLSNAP_OUTPUT_H
#define XLSNAP_OUTPUT_H

#include <stddef.h>

#include "libsnap.h"

enum list_filter { LIST_ALL, LIST_ROOTS, LIST_LEAVES };

void print_created(const snap_info *info);
void print_list_table(snap_info **list, size_t n, enum list_filter filter);
void print_list_json(snap_info **list, size_t n, enum list_filter filter);
void print_tree(snap_info **list, size_t n);
void print_info(const snap_info *info);

#endif
