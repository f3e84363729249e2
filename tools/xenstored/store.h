/*
 * Tree store: nodes (value, permissions, ordered children, generation),
 * the global table of nodes keyed by absolute path, path rules and the
 * permission string format.
 */
#ifndef XSD_STORE_H
#define XSD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#define XSD_NO_GENERATION UINT64_MAX
#define XSD_DOM0_PATH     "/local/domain/0"

enum { XSD_PERM_NONE = 0, XSD_PERM_READ = 1, XSD_PERM_WRITE = 2 };

struct xsd_perm {
    unsigned int id;
    unsigned int bits; /* XSD_PERM_* */
};

struct xsd_node {
    char *name; /* absolute path */
    uint64_t generation;
    struct xsd_perm *perms; /* perms[0] is the owner */
    unsigned int nperms;
    char *data;
    unsigned int datalen;
    char *children; /* NUL-terminated base names, in creation order */
    unsigned int childlen;
};

/* Node objects. All return NULL / -1 with errno set on out of memory. */
struct xsd_node *xsd_node_new(const char *name, const struct xsd_perm *perms,
                              unsigned int nperms);
struct xsd_node *xsd_node_dup(const struct xsd_node *n);
void xsd_node_free(struct xsd_node *n);
int xsd_node_set_data(struct xsd_node *n, const void *data, unsigned int len);
int xsd_node_set_perms(struct xsd_node *n, const struct xsd_perm *perms,
                       unsigned int num);
int xsd_node_add_child(struct xsd_node *n, const char *base);
/* Removes base from the children list; false when it is not there. */
bool xsd_node_del_child(struct xsd_node *n, const char *base);

/* Path rules of upstream xenstored (is_valid_nodename). */
bool xsd_path_valid(const char *path);
/* Relative paths resolve under /local/domain/0; "@..." and absolute stay. malloc'd. */
char *xsd_path_canonical(const char *path);
/* Parent of an absolute path other than "/" (malloc'd). */
char *xsd_path_parent(const char *path);
/* Base name of an absolute path other than "/". */
const char *xsd_path_base(const char *path);
/* parent/base (malloc'd). */
char *xsd_path_child(const char *parent, const char *base);
/* Upstream is_child(): child is parent, or below it; everything is below "/". */
bool xsd_path_is_child(const char *child, const char *parent);

/* Parses num perm strings ("r5", "n0"...). false with errno EINVAL. */
bool xsd_perms_parse(const char *strings, unsigned int num, struct xsd_perm *out);
/* "b0\0r5\0" form (malloc'd), length in *len. */
char *xsd_perms_format(const struct xsd_perm *perms, unsigned int num, unsigned int *len);

/* The global table. */
struct xsd_node *xsd_store_get(const char *name);
/* Inserts or replaces (freeing the old node) n; the store owns n. */
int xsd_store_put(struct xsd_node *n);
void xsd_store_delete(const char *name);
uint64_t xsd_store_next_generation(void);
/* Creates the initial tree: / /local /local/domain /local/domain/0 /tool, "n0". */
int xsd_store_init(void);
void xsd_store_clear(void);

#endif
