/* Tree store: nodes, the global node table, paths and perm strings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "wire.h"

/* ------------------------------------------------------------ nodes */

struct xsd_node *xsd_node_new(const char *name, const struct xsd_perm *perms,
                              unsigned int nperms)
{
    struct xsd_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = strdup(name);
    n->generation = XSD_NO_GENERATION;
    if (!n->name || xsd_node_set_perms(n, perms, nperms) < 0) {
        xsd_node_free(n);
        return NULL;
    }
    return n;
}

static void *memdup_or_null(const void *p, size_t len, bool *failed)
{
    if (!len)
        return NULL;
    void *q = malloc(len);
    if (!q)
        *failed = true;
    else
        memcpy(q, p, len);
    return q;
}

struct xsd_node *xsd_node_dup(const struct xsd_node *n)
{
    struct xsd_node *d = calloc(1, sizeof(*d));
    bool failed = false;
    if (!d)
        return NULL;
    *d = *n;
    d->name = strdup(n->name);
    d->perms = memdup_or_null(n->perms, n->nperms * sizeof(*n->perms), &failed);
    d->data = memdup_or_null(n->data, n->datalen, &failed);
    d->children = memdup_or_null(n->children, n->childlen, &failed);
    if (!d->name || failed) {
        xsd_node_free(d);
        return NULL;
    }
    return d;
}

void xsd_node_free(struct xsd_node *n)
{
    if (!n)
        return;
    free(n->name);
    free(n->perms);
    free(n->data);
    free(n->children);
    free(n);
}

int xsd_node_set_data(struct xsd_node *n, const void *data, unsigned int len)
{
    bool failed = false;
    char *copy = memdup_or_null(data, len, &failed);
    if (failed)
        return -1;
    free(n->data);
    n->data = copy;
    n->datalen = len;
    return 0;
}

int xsd_node_set_perms(struct xsd_node *n, const struct xsd_perm *perms, unsigned int num)
{
    bool failed = false;
    struct xsd_perm *copy = memdup_or_null(perms, num * sizeof(*perms), &failed);
    if (failed)
        return -1;
    free(n->perms);
    n->perms = copy;
    n->nperms = num;
    return 0;
}

int xsd_node_add_child(struct xsd_node *n, const char *base)
{
    size_t blen = strlen(base) + 1;
    char *c = realloc(n->children, n->childlen + blen);
    if (!c)
        return -1;
    memcpy(c + n->childlen, base, blen);
    n->children = c;
    n->childlen += (unsigned int)blen;
    return 0;
}

bool xsd_node_del_child(struct xsd_node *n, const char *base)
{
    for (unsigned int i = 0; i < n->childlen;
         i += (unsigned int)strlen(n->children + i) + 1) {
        if (strcmp(n->children + i, base) == 0) {
            unsigned int len = (unsigned int)strlen(base) + 1;
            memmove(n->children + i, n->children + i + len, n->childlen - i - len);
            n->childlen -= len;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ paths */

bool xsd_path_valid(const char *path)
{
    size_t len = strlen(path);
    int local_off = 0;
    unsigned int domid;
    if (path[0] != '/')
        return false;
    if (len > 1 && path[len - 1] == '/')
        return false;
    if (strstr(path, "//"))
        return false;
    /* As upstream: the length limit counts from below /local/domain/<id>/. */
    if (sscanf(path, "/local/domain/%5u/%n", &domid, &local_off) != 1)
        local_off = 0;
    if (len > (size_t)local_off + XENSTORE_REL_PATH_MAX)
        return false;
    return strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "abcdefghijklmnopqrstuvwxyz"
                        "0123456789-/_@") == len;
}

char *xsd_path_canonical(const char *path)
{
    if (path[0] == '/' || path[0] == '@')
        return strdup(path);
    return xsd_path_child(XSD_DOM0_PATH, path);
}

char *xsd_path_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return NULL;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

const char *xsd_path_base(const char *path)
{
    return strrchr(path, '/') + 1;
}

char *xsd_path_child(const char *parent, const char *base)
{
    char *p = NULL;
    int rc = strcmp(parent, "/") == 0 ? asprintf(&p, "/%s", base)
                                      : asprintf(&p, "%s/%s", parent, base);
    return rc < 0 ? NULL : p;
}

bool xsd_path_is_child(const char *child, const char *parent)
{
    size_t len = strlen(parent);
    if (strcmp(parent, "/") == 0)
        return true;
    if (strncmp(child, parent, len) != 0)
        return false;
    return child[len] == '/' || child[len] == '\0';
}

/* ------------------------------------------------------------ perms */

bool xsd_perms_parse(const char *strings, unsigned int num, struct xsd_perm *out)
{
    const char *p = strings;
    for (unsigned int i = 0; i < num; i++, p += strlen(p) + 1) {
        switch (*p) {
        case 'r': out[i].bits = XSD_PERM_READ; break;
        case 'w': out[i].bits = XSD_PERM_WRITE; break;
        case 'b': out[i].bits = XSD_PERM_READ | XSD_PERM_WRITE; break;
        case 'n': out[i].bits = XSD_PERM_NONE; break;
        default: errno = EINVAL; return false;
        }
        char *end;
        /* Upstream parses with strtol(base 0) and keeps the low 32 bits. */
        out[i].id = (unsigned int)strtol(p + 1, &end, 0);
        if (*end || !p[1]) {
            errno = EINVAL;
            return false;
        }
    }
    return true;
}

char *xsd_perms_format(const struct xsd_perm *perms, unsigned int num, unsigned int *len)
{
    static const char letters[] = {'n', 'r', 'w', 'b'};
    char *out = malloc((size_t)num * 16 + 1);
    if (!out)
        return NULL;
    *len = 0;
    for (unsigned int i = 0; i < num; i++)
        *len += (unsigned int)sprintf(out + *len, "%c%i", letters[perms[i].bits & 3],
                                      (int)perms[i].id) +
                1;
    return out;
}

/* ------------------------------------------------------------ table */

struct slot {
    struct slot *next;
    struct xsd_node *node;
};

static struct {
    struct slot **buckets;
    size_t nbuckets, count;
    uint64_t generation;
} store;

static size_t hash_name(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct slot **find_slot(const char *name)
{
    if (!store.nbuckets)
        return NULL;
    struct slot **sp = &store.buckets[hash_name(name) % store.nbuckets];
    while (*sp && strcmp((*sp)->node->name, name) != 0)
        sp = &(*sp)->next;
    return sp;
}

static int grow_table(void)
{
    size_t n = store.nbuckets ? store.nbuckets * 2 : 256;
    struct slot **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < store.nbuckets; i++) {
        struct slot *s = store.buckets[i], *next;
        for (; s; s = next) {
            next = s->next;
            size_t h = hash_name(s->node->name) % n;
            s->next = b[h];
            b[h] = s;
        }
    }
    free(store.buckets);
    store.buckets = b;
    store.nbuckets = n;
    return 0;
}

struct xsd_node *xsd_store_get(const char *name)
{
    struct slot **sp = find_slot(name);
    return sp && *sp ? (*sp)->node : NULL;
}

int xsd_store_put(struct xsd_node *n)
{
    if (store.count >= store.nbuckets && grow_table() < 0)
        return -1;
    struct slot **sp = find_slot(n->name);
    if (*sp) {
        if ((*sp)->node != n)
            xsd_node_free((*sp)->node);
        (*sp)->node = n;
        return 0;
    }
    struct slot *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    s->next = NULL;
    s->node = n;
    *sp = s;
    store.count++;
    return 0;
}

void xsd_store_delete(const char *name)
{
    struct slot **sp = find_slot(name);
    if (!sp || !*sp)
        return;
    struct slot *s = *sp;
    *sp = s->next;
    xsd_node_free(s->node);
    free(s);
    store.count--;
}

uint64_t xsd_store_next_generation(void)
{
    return ++store.generation;
}

void xsd_store_clear(void)
{
    for (size_t i = 0; i < store.nbuckets; i++) {
        struct slot *s = store.buckets[i], *next;
        for (; s; s = next) {
            next = s->next;
            xsd_node_free(s->node);
            free(s);
        }
    }
    free(store.buckets);
    store.buckets = NULL;
    store.nbuckets = store.count = 0;
}

static int init_node(const char *name, const char *children[])
{
    static const struct xsd_perm dom0_none = {.id = 0, .bits = XSD_PERM_NONE};
    struct xsd_node *n = xsd_node_new(name, &dom0_none, 1);
    if (!n)
        return -1;
    for (; *children; children++)
        if (xsd_node_add_child(n, *children) < 0) {
            xsd_node_free(n);
            return -1;
        }
    n->generation = xsd_store_next_generation();
    if (xsd_store_put(n) < 0) {
        xsd_node_free(n);
        return -1;
    }
    return 0;
}

int xsd_store_init(void)
{
    const char *root[] = {"local", "tool", NULL}, *local[] = {"domain", NULL},
               *domain[] = {"0", NULL}, *none[] = {NULL};
    if (init_node("/", root) < 0 || init_node("/local", local) < 0 ||
        init_node("/local/domain", domain) < 0 || init_node(XSD_DOM0_PATH, none) < 0 ||
        init_node("/tool", none) < 0)
        return -1;
    return 0;
}
