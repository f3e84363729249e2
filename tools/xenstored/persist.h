/*
 * Persistence: --load / --save of the whole tree as text, one node per
 * line in tree order: "<path>\t<perm>,<perm>...\t<value as hex>".
 */
#ifndef XSD_PERSIST_H
#define XSD_PERSIST_H

/* Both return 0, or -1 after logging what went wrong (file and line). */
int xsd_tree_save(const char *path);
/* Replaces the store with the file's tree. */
int xsd_tree_load(const char *path);

#endif
