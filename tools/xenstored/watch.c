/* Watch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "watch.h"

struct xsd_watch {
    struct xsd_watch *next;
    char *node; /* canonical path or @special */
    char *token;
    bool relative; /* registered relative to /local/domain/0 */
};

/* Upstream get_watch_path(): relative watches see relative event paths. */
static const char *event_path(const struct xsd_watch *w, const char *name)
{
    if (!w->relative)
        return name;
    name += strlen(XSD_DOM0_PATH);
    return *name == '/' ? name + 1 : name;
}

void xsd_watch_fire(const char *name, bool exact)
{
    for (struct xsd_conn *c = xsd_conn_list(); c; c = c->next)
        for (struct xsd_watch *w = c->watches; w; w = w->next) {
            bool match =
                exact ? strcmp(name, w->node) == 0 : xsd_path_is_child(name, w->node);
            if (match)
                xsd_send_event(c, event_path(w, name), w->token);
        }
}

static void free_watch(struct xsd_watch *w)
{
    free(w->node);
    free(w->token);
    free(w);
}

void xsd_watch_clear(struct xsd_conn *c)
{
    while (c->watches) {
        struct xsd_watch *w = c->watches;
        c->watches = w->next;
        free_watch(w);
    }
}

/* Canonical watch path, or NULL with errno (EINVAL for a bad path). */
static char *watch_path(const char *path, bool *relative)
{
    *relative = false;
    if (path[0] == '@') {
        if (strlen(path) > XENSTORE_REL_PATH_MAX) {
            errno = EINVAL;
            return NULL;
        }
        return strdup(path);
    }
    *relative = path[0] != '/';
    char *canon = xsd_path_canonical(path);
    if (canon && !xsd_path_valid(canon)) {
        free(canon);
        errno = EINVAL;
        return NULL;
    }
    return canon;
}

int xsd_do_watch(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    const char *vec[2];
    bool relative;
    (void)t;
    if (xsd_get_strings(in, vec, 2) != 2)
        return EINVAL;
    char *node = watch_path(vec[0], &relative);
    if (!node)
        return errno;
    struct xsd_watch **wp = &c->watches;
    for (; *wp; wp = &(*wp)->next)
        if (strcmp((*wp)->node, node) == 0 && strcmp((*wp)->token, vec[1]) == 0) {
            free(node);
            return EEXIST;
        }
    struct xsd_watch *w = calloc(1, sizeof(*w));
    if (!w || !(w->token = strdup(vec[1]))) {
        free(w);
        free(node);
        return ENOMEM;
    }
    w->node = node;
    w->relative = relative;
    *wp = w; /* appended: events keep registration order */
    xsd_reply_ok(c, in);
    /* Fire once up front, as upstream does: simplifies clients. */
    xsd_send_event(c, event_path(w, w->node), w->token);
    return 0;
}

int xsd_do_unwatch(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    const char *vec[2];
    (void)t;
    if (xsd_get_strings(in, vec, 2) != 2)
        return EINVAL;
    char *node = xsd_path_canonical(vec[0]);
    if (!node)
        return ENOMEM;
    for (struct xsd_watch **wp = &c->watches; *wp; wp = &(*wp)->next) {
        struct xsd_watch *w = *wp;
        if (strcmp(w->node, node) == 0 && strcmp(w->token, vec[1]) == 0) {
            *wp = w->next;
            free_watch(w);
            free(node);
            xsd_reply_ok(c, in);
            return 0;
        }
    }
    free(node);
    return ENOENT;
}
