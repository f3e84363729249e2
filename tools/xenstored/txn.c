/* Transaction: per-transaction node copies, conflict checks, commit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "txn.h"
#include "watch.h"

/* A node touched inside a transaction (upstream: struct accessed_node). */
struct accessed {
    char *name;
    uint64_t generation; /* global generation seen at first read */
    bool check_gen;      /* first access was a read: verify at commit */
    bool modified;
    bool fire_watch, watch_exact;
    struct xsd_node *copy; /* the transaction's node; NULL = absent */
};

struct xsd_txn {
    struct xsd_txn *next;
    uint32_t id;
    bool fail; /* out of memory on the way: refuse to commit */
    struct accessed *acc;
    size_t nacc, cap;
};

struct xsd_txn *xsd_txn_new(uint32_t id)
{
    struct xsd_txn *t = calloc(1, sizeof(*t));
    if (t)
        t->id = id;
    return t;
}

void xsd_txn_free(struct xsd_txn *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nacc; i++) {
        free(t->acc[i].name);
        xsd_node_free(t->acc[i].copy);
    }
    free(t->acc);
    free(t);
}

uint32_t xsd_txn_id(const struct xsd_txn *t)
{
    return t->id;
}

struct xsd_txn **xsd_txn_nextp(struct xsd_txn *t)
{
    return &t->next;
}

static struct accessed *find_accessed(struct xsd_txn *t, const char *name)
{
    for (size_t i = 0; i < t->nacc; i++)
        if (strcmp(t->acc[i].name, name) == 0)
            return &t->acc[i];
    return NULL;
}

static struct accessed *add_accessed(struct xsd_txn *t, const char *name)
{
    if (t->nacc == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct accessed *a = realloc(t->acc, cap * sizeof(*a));
        if (!a)
            goto nomem;
        t->acc = a;
        t->cap = cap;
    }
    struct accessed *a = &t->acc[t->nacc];
    memset(a, 0, sizeof(*a));
    a->name = strdup(name);
    if (!a->name)
        goto nomem;
    a->generation = XSD_NO_GENERATION;
    t->nacc++;
    return a;
nomem:
    t->fail = true;
    errno = ENOMEM;
    return NULL;
}

struct xsd_node *xsd_db_read(struct xsd_txn *t, const char *name)
{
    if (!t) {
        struct xsd_node *n = xsd_store_get(name);
        if (!n)
            errno = ENOENT;
        return n;
    }
    struct accessed *a = find_accessed(t, name);
    if (!a) {
        const struct xsd_node *g = xsd_store_get(name);
        struct xsd_node *copy = g ? xsd_node_dup(g) : NULL;
        if ((g && !copy) || !(a = add_accessed(t, name))) {
            xsd_node_free(copy);
            t->fail = true;
            errno = ENOMEM;
            return NULL;
        }
        a->generation = g ? g->generation : XSD_NO_GENERATION;
        a->check_gen = true;
        a->copy = copy;
    }
    if (!a->copy)
        errno = ENOENT;
    return a->copy;
}

int xsd_db_write(struct xsd_txn *t, struct xsd_node *n)
{
    n->generation = xsd_store_next_generation();
    if (!t) {
        if (xsd_store_put(n) < 0) {
            if (xsd_store_get(n->name) != n)
                xsd_node_free(n);
            return ENOMEM;
        }
        return 0;
    }
    struct accessed *a = find_accessed(t, n->name);
    if (!a && !(a = add_accessed(t, n->name))) {
        xsd_node_free(n);
        return ENOMEM;
    }
    if (a->copy != n)
        xsd_node_free(a->copy);
    a->copy = n;
    a->modified = true;
    return 0;
}

int xsd_db_delete(struct xsd_txn *t, const char *name)
{
    if (!t) {
        xsd_store_delete(name);
        return 0;
    }
    struct accessed *a = find_accessed(t, name);
    if (!a && !(a = add_accessed(t, name)))
        return ENOMEM;
    xsd_node_free(a->copy);
    a->copy = NULL;
    a->modified = true;
    return 0;
}

void xsd_db_changed(struct xsd_txn *t, const char *name, bool exact)
{
    if (!t) {
        xsd_watch_fire(name, exact);
        return;
    }
    struct accessed *a = find_accessed(t, name);
    if (!a) {
        t->fail = true;
        return;
    }
    /* A non-exact event replaces an exact one, not the other way round. */
    if (!a->fire_watch) {
        a->fire_watch = true;
        a->watch_exact = exact;
    } else if (!exact) {
        a->watch_exact = false;
    }
}

static bool conflicts(const struct xsd_txn *t)
{
    for (size_t i = 0; i < t->nacc; i++) {
        const struct accessed *a = &t->acc[i];
        if (!a->check_gen)
            continue;
        const struct xsd_node *g = xsd_store_get(a->name);
        if ((g ? g->generation : XSD_NO_GENERATION) != a->generation)
            return true;
    }
    return false;
}

int xsd_txn_commit(struct xsd_txn *t)
{
    if (t->fail)
        return ENOMEM;
    if (conflicts(t))
        return EAGAIN;
    for (size_t i = 0; i < t->nacc; i++) {
        struct accessed *a = &t->acc[i];
        if (!a->modified)
            continue;
        if (a->copy) {
            struct xsd_node *n = a->copy;
            a->copy = NULL;
            if (xsd_db_write(NULL, n) != 0)
                xsd_log("commit of transaction %u: out of memory storing %s", t->id,
                        a->name);
        } else {
            xsd_db_delete(NULL, a->name);
        }
        if (a->fire_watch)
            xsd_watch_fire(a->name, a->watch_exact);
    }
    return 0;
}
