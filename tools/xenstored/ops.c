/* Requests: dispatch, tree operations and transactions (upstream core). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ops.h"
#include "store.h"
#include "txn.h"
#include "watch.h"

/*
 * The node at a request's path (relative paths under /local/domain/0) as the
 * view sees it; *canon gets the canonical path (free it). NULL with errno
 * EINVAL for a missing or invalid path, ENOENT when absent.
 */
static struct xsd_node *get_node(struct xsd_txn *t, const char *path, char **canon)
{
    *canon = NULL;
    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    *canon = xsd_path_canonical(path);
    if (!*canon) {
        errno = ENOMEM;
        return NULL;
    }
    if (!xsd_path_valid(*canon)) {
        errno = EINVAL;
        return NULL;
    }
    return xsd_db_read(t, *canon);
}

/* Creates name and any missing ancestors; new nodes inherit their parent's perms. */
static int create_node(struct xsd_txn *t, const char *name, const void *data,
                       unsigned int len)
{
    char *pname = xsd_path_parent(name);
    if (!pname)
        return ENOMEM;
    int rc = 0;
    struct xsd_node *parent = xsd_db_read(t, pname);
    if (!parent && errno == ENOENT && strcmp(pname, "/") != 0) {
        rc = create_node(t, pname, NULL, 0);
        parent = rc ? NULL : xsd_db_read(t, pname);
    }
    free(pname);
    if (!parent)
        return rc ? rc : errno;
    struct xsd_node *n = xsd_node_new(name, parent->perms, parent->nperms);
    if (!n || xsd_node_set_data(n, data, len) < 0 ||
        xsd_node_add_child(parent, xsd_path_base(name)) < 0) {
        xsd_node_free(n);
        return ENOMEM;
    }
    rc = xsd_db_write(t, parent);
    if (rc) {
        xsd_node_free(n);
        return rc;
    }
    return xsd_db_write(t, n);
}

static int do_read(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    char *name;
    struct xsd_node *n = get_node(t, xsd_onearg(in), &name);
    free(name);
    if (!n)
        return errno;
    xsd_reply(c, in, XS_READ, n->data, n->datalen);
    return 0;
}

static int do_write(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    const char *vec[1];
    char *name;
    int rc = 0;
    /* Values may hold NULs: only the first string is the path. */
    if (xsd_get_strings(in, vec, 1) < 1)
        return EINVAL;
    unsigned int off = (unsigned int)strlen(vec[0]) + 1;
    struct xsd_node *n = get_node(t, vec[0], &name);
    if (!n && errno != ENOENT)
        rc = errno;
    else if (!n)
        rc = create_node(t, name, in->buf + off, in->used - off);
    else if (xsd_node_set_data(n, in->buf + off, in->used - off) < 0)
        rc = ENOMEM;
    else
        rc = xsd_db_write(t, n);
    if (!rc) {
        xsd_db_changed(t, name, false);
        xsd_reply_ok(c, in);
    }
    free(name);
    return rc;
}

static int do_mkdir(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    char *name;
    int rc = 0;
    struct xsd_node *n = get_node(t, xsd_onearg(in), &name);
    if (!n && errno != ENOENT)
        rc = errno;
    else if (!n && !(rc = create_node(t, name, NULL, 0)))
        xsd_db_changed(t, name, false);
    if (!rc)
        xsd_reply_ok(c, in); /* an existing node is fine */
    free(name);
    return rc;
}

/* Deletes name and everything below, children first, firing a watch per node. */
static int rm_subtree(struct xsd_txn *t, const char *name, const char *root)
{
    struct xsd_node *n = xsd_db_read(t, name);
    if (!n)
        return errno == ENOENT ? 0 : errno;
    char *children = malloc(n->childlen + 1);
    unsigned int childlen = n->childlen;
    if (!children)
        return ENOMEM;
    if (childlen)
        memcpy(children, n->children, childlen);
    int rc = 0;
    for (unsigned int i = 0; i < childlen && !rc;
         i += (unsigned int)strlen(children + i) + 1) {
        char *cname = xsd_path_child(name, children + i);
        rc = cname ? rm_subtree(t, cname, root) : ENOMEM;
        free(cname);
    }
    free(children);
    if (rc)
        return rc;
    /* Watches on removed descendants fire exactly; the root fires upwards too. */
    xsd_db_changed(t, name, strcmp(name, root) != 0);
    return xsd_db_delete(t, name);
}

static int rm_node(struct xsd_txn *t, const char *name)
{
    char *pname = xsd_path_parent(name);
    if (!pname)
        return ENOMEM;
    int rc = xsd_db_read(t, pname) ? 0 : errno == ENOMEM ? ENOMEM : EINVAL;
    if (!rc)
        rc = rm_subtree(t, name, name);
    /* Read the parent again: the subtree walk may have moved transaction copies. */
    struct xsd_node *parent = rc ? NULL : xsd_db_read(t, pname);
    free(pname);
    if (rc)
        return rc;
    if (!parent || !xsd_node_del_child(parent, xsd_path_base(name))) {
        xsd_log("corrupt tree: %s is not listed in its parent", name);
        return EIO;
    }
    return xsd_db_write(t, parent);
}

static int do_rm(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    char *name, *pname;
    int rc;
    struct xsd_node *n = get_node(t, xsd_onearg(in), &name);
    if (!n && errno == ENOENT) {
        /* Absent is fine when the parent exists. */
        if (!(pname = xsd_path_parent(name)))
            rc = ENOMEM;
        else
            rc = xsd_db_read(t, pname) ? 0 : errno;
        free(pname);
    } else if (!n) {
        rc = errno;
    } else {
        rc = strcmp(name, "/") == 0 ? EINVAL : rm_node(t, name);
    }
    if (!rc)
        xsd_reply_ok(c, in);
    free(name);
    return rc;
}

static int do_directory(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    char *name;
    struct xsd_node *n = get_node(t, xsd_onearg(in), &name);
    free(name);
    if (!n)
        return errno;
    /* Over XENSTORE_PAYLOAD_MAX this answers E2BIG: clients use DIRECTORY_PART. */
    xsd_reply(c, in, XS_DIRECTORY, n->children, n->childlen);
    return 0;
}

/* DIRECTORY_PART path|offset| -> gencnt|names from offset, "" at the end (upstream). */
static int do_directory_part(struct xsd_conn *c, const struct xsd_req *in,
                             struct xsd_txn *t)
{
    char *name, gen[24];
    if (xsd_count_strings(in->buf, in->used) != 2)
        return EINVAL;
    struct xsd_node *n = get_node(t, in->buf, &name);
    free(name);
    if (!n)
        return errno;
    unsigned int off = (unsigned int)atoi(in->buf + strlen(in->buf) + 1);
    unsigned int genlen = (unsigned int)snprintf(gen, sizeof(gen), "%llu",
                                                 (unsigned long long)n->generation) +
                          1;
    if (off >= n->childlen) {
        gen[genlen] = '\0';
        xsd_reply(c, in, XS_DIRECTORY_PART, gen, genlen + 1);
        return 0;
    }
    unsigned int len = 0, maxlen = XENSTORE_PAYLOAD_MAX - genlen - 1;
    const char *child = n->children + off;
    while (len + strlen(child) < maxlen) {
        len += (unsigned int)strlen(child) + 1;
        child += strlen(child) + 1;
        if (off + len == n->childlen)
            break;
    }
    char *data = malloc(genlen + len + 1);
    if (!data)
        return ENOMEM;
    memcpy(data, gen, genlen);
    memcpy(data + genlen, n->children + off, len);
    if (off + len == n->childlen)
        data[genlen + len++] = '\0';
    xsd_reply(c, in, XS_DIRECTORY_PART, data, genlen + len);
    free(data);
    return 0;
}

static int do_get_perms(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    char *name;
    unsigned int len;
    struct xsd_node *n = get_node(t, xsd_onearg(in), &name);
    free(name);
    if (!n)
        return errno;
    char *s = xsd_perms_format(n->perms, n->nperms, &len);
    if (!s)
        return ENOMEM;
    xsd_reply(c, in, XS_GET_PERMS, s, len);
    free(s);
    return 0;
}

/* SET_PERMS path|perm|+ ; parses the perms first, as upstream does. */
static int do_set_perms(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    unsigned int num = xsd_count_strings(in->buf, in->used);
    if (num < 2)
        return EINVAL;
    num--;
    struct xsd_perm *perms = calloc(num, sizeof(*perms));
    if (!perms)
        return ENOMEM;
    int rc = 0;
    char *name = NULL;
    if (!xsd_perms_parse(in->buf + strlen(in->buf) + 1, num, perms)) {
        rc = EINVAL;
    } else if (in->buf[0] == '@') {
        rc = xsd_set_special_perms(in->buf, perms, num);
    } else {
        struct xsd_node *n = get_node(t, in->buf, &name);
        if (!n)
            rc = errno;
        else if (xsd_node_set_perms(n, perms, num) < 0)
            rc = ENOMEM;
        else if (!(rc = xsd_db_write(t, n)))
            xsd_db_changed(t, name, false);
    }
    if (!rc)
        xsd_reply_ok(c, in);
    free(name);
    free(perms);
    return rc;
}

static struct xsd_txn *find_txn(struct xsd_conn *c, uint32_t id)
{
    for (struct xsd_txn *t = c->txns; t; t = *xsd_txn_nextp(t))
        if (xsd_txn_id(t) == id)
            return t;
    return NULL;
}

static int do_transaction_start(struct xsd_conn *c, const struct xsd_req *in,
                                struct xsd_txn *t)
{
    char id[16];
    if (t)
        return EBUSY; /* no nested transactions */
    uint32_t tid;
    do
        tid = c->next_txn_id++;
    while (tid == 0 || find_txn(c, tid));
    struct xsd_txn *nt = xsd_txn_new(tid);
    if (!nt)
        return ENOMEM;
    *xsd_txn_nextp(nt) = c->txns;
    c->txns = nt;
    snprintf(id, sizeof(id), "%u", tid);
    xsd_reply(c, in, XS_TRANSACTION_START, id, (unsigned int)strlen(id) + 1);
    return 0;
}

static void unlink_txn(struct xsd_conn *c, struct xsd_txn *t)
{
    for (struct xsd_txn **tp = &c->txns; *tp; tp = xsd_txn_nextp(*tp))
        if (*tp == t) {
            *tp = *xsd_txn_nextp(t);
            return;
        }
}

static int do_transaction_end(struct xsd_conn *c, const struct xsd_req *in,
                              struct xsd_txn *t)
{
    const char *arg = xsd_onearg(in);
    if (!arg || (strcmp(arg, "T") != 0 && strcmp(arg, "F") != 0))
        return EINVAL;
    if (!t)
        return ENOENT;
    unlink_txn(c, t);
    int rc = strcmp(arg, "T") == 0 ? xsd_txn_commit(t) : 0;
    xsd_txn_free(t);
    if (!rc)
        xsd_reply_ok(c, in);
    return rc;
}

void xsd_txn_clear_all(struct xsd_conn *c)
{
    while (c->txns) {
        struct xsd_txn *t = c->txns;
        c->txns = *xsd_txn_nextp(t);
        xsd_txn_free(t);
    }
}

#define NOTID 1u /* the handler ignores tx_id */

static const struct {
    xsd_handler *fn;
    unsigned int flags;
} handlers[XS_TYPE_COUNT] = {
    [XS_CONTROL] = {xsd_do_control, 0},
    [XS_DIRECTORY] = {do_directory, 0},
    [XS_READ] = {do_read, 0},
    [XS_GET_PERMS] = {do_get_perms, 0},
    [XS_WATCH] = {xsd_do_watch, NOTID},
    [XS_UNWATCH] = {xsd_do_unwatch, NOTID},
    [XS_TRANSACTION_START] = {do_transaction_start, 0},
    [XS_TRANSACTION_END] = {do_transaction_end, 0},
    [XS_INTRODUCE] = {xsd_do_introduce, 0},
    [XS_RELEASE] = {xsd_do_release, 0},
    [XS_GET_DOMAIN_PATH] = {xsd_do_get_domain_path, 0},
    [XS_WRITE] = {do_write, 0},
    [XS_MKDIR] = {do_mkdir, 0},
    [XS_RM] = {do_rm, 0},
    [XS_SET_PERMS] = {do_set_perms, 0},
    [XS_IS_DOMAIN_INTRODUCED] = {xsd_do_is_domain_introduced, 0},
    [XS_RESUME] = {xsd_do_resume, 0},
    [XS_SET_TARGET] = {xsd_do_set_target, 0},
    [XS_RESET_WATCHES] = {xsd_do_reset_watches, 0},
    [XS_DIRECTORY_PART] = {do_directory_part, 0},
};

void xsd_process(struct xsd_conn *c, const struct xsd_req *in)
{
    uint32_t type = in->hdr.type;
    if (type >= XS_TYPE_COUNT || !handlers[type].fn) {
        xsd_log("connection %u: unknown operation %u", c->id, type);
        xsd_reply_error(c, in, ENOSYS);
        return;
    }
    struct xsd_txn *t = NULL;
    if (!(handlers[type].flags & NOTID) && in->hdr.tx_id) {
        t = find_txn(c, in->hdr.tx_id);
        if (!t) {
            xsd_reply_error(c, in, ENOENT);
            return;
        }
    }
    int rc = handlers[type].fn(c, in, t);
    if (rc)
        xsd_reply_error(c, in, rc);
}
