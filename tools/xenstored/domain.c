/*
 * Domain: INTRODUCE / RELEASE / RESUME / SET_TARGET bookkeeping (no
 * hypervisor here: a domain is "introduced" once a toolstack says so),
 * GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, RESET_WATCHES and CONTROL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ops.h"
#include "store.h"
#include "watch.h"

/* From xen/include/public/xen.h (that header needs the whole Xen type set). */
#define DOMID_FIRST_RESERVED 0x7FF0u
#define DOMID_SELF           0x7FF0u
#define DOMID_INVALID        0x7FF4u

struct domain {
    struct domain *next;
    unsigned int domid;
    unsigned int target; /* SET_TARGET, DOMID_INVALID when none */
    bool shutdown;
};

/* Dom0 is introduced from the start, as with a real dom0 xenstored. */
static struct domain dom0 = {.domid = 0, .target = DOMID_INVALID};
static struct domain *domains = &dom0;

struct special_perms {
    const char *name;
    struct xsd_perm *perms;
    unsigned int num;
};
static struct special_perms specials[] = {{"@introduceDomain", NULL, 0},
                                          {"@releaseDomain", NULL, 0}};

static struct domain *find_domain(unsigned int domid)
{
    for (struct domain *d = domains; d; d = d->next)
        if (d->domid == domid)
            return d;
    return NULL;
}

void xsd_domains_clear(void)
{
    while (domains != &dom0) {
        struct domain *d = domains;
        domains = d->next;
        free(d);
    }
    for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        free(specials[i].perms);
        specials[i].perms = NULL;
    }
}

int xsd_set_special_perms(const char *name, const struct xsd_perm *perms,
                          unsigned int num)
{
    for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        if (strcmp(specials[i].name, name) != 0)
            continue;
        struct xsd_perm *copy = malloc(num * sizeof(*copy));
        if (!copy)
            return ENOMEM;
        memcpy(copy, perms, num * sizeof(*copy));
        free(specials[i].perms);
        specials[i].perms = copy;
        specials[i].num = num;
        return 0;
    }
    return EINVAL;
}

/* INTRODUCE domid|mfn|evtchn|? */
int xsd_do_introduce(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    const char *vec[3];
    (void)t;
    if (xsd_get_strings(in, vec, 3) < 3)
        return EINVAL;
    unsigned int domid = (unsigned int)atoi(vec[0]);
    uint32_t port = (uint32_t)atoi(vec[2]); /* evtchn_port_t, as upstream */
    if (port == 0)
        return EINVAL;
    /* Upstream would fail to map a reserved domid's ring. */
    if (domid >= DOMID_FIRST_RESERVED)
        return EINVAL;
    if (!find_domain(domid)) {
        struct domain *d = calloc(1, sizeof(*d));
        if (!d)
            return ENOMEM;
        d->domid = domid;
        d->target = DOMID_INVALID;
        d->next = domains;
        domains = d;
        xsd_watch_fire("@introduceDomain", true);
    }
    xsd_reply_ok(c, in);
    return 0;
}

/* The introduced domain named by a request's single argument (not dom0). */
static int onearg_domain(const struct xsd_req *in, struct domain **out)
{
    const char *arg = xsd_onearg(in);
    if (!arg)
        return EINVAL;
    unsigned int domid = (unsigned int)atoi(arg);
    if (!domid)
        return EINVAL;
    *out = find_domain(domid);
    return *out ? 0 : ENOENT;
}

int xsd_do_release(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    struct domain *d;
    (void)t;
    int rc = onearg_domain(in, &d);
    if (rc)
        return rc;
    for (struct domain **dp = &domains; *dp; dp = &(*dp)->next)
        if (*dp == d) {
            *dp = d->next;
            break;
        }
    free(d);
    xsd_watch_fire("@releaseDomain", true);
    xsd_reply_ok(c, in);
    return 0;
}

int xsd_do_resume(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    struct domain *d;
    (void)t;
    int rc = onearg_domain(in, &d);
    if (rc)
        return rc;
    d->shutdown = false;
    xsd_reply_ok(c, in);
    return 0;
}

int xsd_do_set_target(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    const char *vec[2];
    (void)t;
    if (xsd_get_strings(in, vec, 2) < 2)
        return EINVAL;
    struct domain *d = find_domain((unsigned int)atoi(vec[0]));
    struct domain *target = find_domain((unsigned int)atoi(vec[1]));
    if (!d || !target)
        return ENOENT;
    d->target = target->domid;
    xsd_reply_ok(c, in);
    return 0;
}

int xsd_do_get_domain_path(struct xsd_conn *c, const struct xsd_req *in,
                           struct xsd_txn *t)
{
    char path[40];
    const char *arg = xsd_onearg(in);
    (void)t;
    if (!arg)
        return EINVAL;
    snprintf(path, sizeof(path), "/local/domain/%u", (unsigned int)atoi(arg));
    xsd_reply(c, in, XS_GET_DOMAIN_PATH, path, (unsigned int)strlen(path) + 1);
    return 0;
}

int xsd_do_is_domain_introduced(struct xsd_conn *c, const struct xsd_req *in,
                                struct xsd_txn *t)
{
    const char *arg = xsd_onearg(in);
    (void)t;
    if (!arg)
        return EINVAL;
    unsigned int domid = (unsigned int)atoi(arg);
    bool yes = domid == DOMID_SELF || find_domain(domid);
    xsd_reply(c, in, XS_IS_DOMAIN_INTRODUCED, yes ? "T" : "F", 2);
    return 0;
}

int xsd_do_reset_watches(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    (void)t;
    xsd_watch_clear(c);
    xsd_txn_clear_all(c);
    xsd_reply_ok(c, in);
    return 0;
}

/* ------------------------------------------------------------ CONTROL */

typedef int control_fn(struct xsd_conn *c, const struct xsd_req *in, const char **args,
                       unsigned int nargs);

static int control_check(struct xsd_conn *c, const struct xsd_req *in, const char **args,
                         unsigned int nargs)
{
    (void)args;
    if (nargs)
        return EINVAL;
    xsd_reply_ok(c, in);
    return 0;
}

static int control_log(struct xsd_conn *c, const struct xsd_req *in, const char **args,
                       unsigned int nargs)
{
    if (nargs != 1 || (strcmp(args[0], "on") != 0 && strcmp(args[0], "off") != 0))
        return EINVAL;
    xsd_log_enable(strcmp(args[0], "on") == 0);
    xsd_reply_ok(c, in);
    return 0;
}

static int control_print(struct xsd_conn *c, const struct xsd_req *in, const char **args,
                         unsigned int nargs)
{
    if (nargs != 1)
        return EINVAL;
    xsd_log("control: %s", args[0]);
    xsd_reply_ok(c, in);
    return 0;
}

static int control_help(struct xsd_conn *c, const struct xsd_req *in, const char **args,
                        unsigned int nargs);

static const struct {
    const char *cmd;
    control_fn *fn;
    const char *pars;
} controls[] = {
    {"check", control_check, ""},
    {"log", control_log, "on|off"},
    {"print", control_print, "<string>"},
    {"help", control_help, ""},
};
#define NCONTROLS (sizeof(controls) / sizeof(controls[0]))

static int control_help(struct xsd_conn *c, const struct xsd_req *in, const char **args,
                        unsigned int nargs)
{
    char buf[512];
    size_t len = 0;
    (void)args;
    if (nargs)
        return EINVAL;
    for (size_t i = 0; i < NCONTROLS; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\t%s\n", controls[i].cmd,
                                controls[i].pars);
    xsd_reply(c, in, XS_CONTROL, buf, (unsigned int)len + 1);
    return 0;
}

/* CONTROL command|[params|] — the command set is implementation specific. */
int xsd_do_control(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t)
{
    (void)t;
    if (!xsd_string_len_at(in, 0))
        return EINVAL;
    size_t cmd = 0;
    while (cmd < NCONTROLS && strcmp(in->buf, controls[cmd].cmd) != 0)
        cmd++;
    if (cmd == NCONTROLS)
        return EINVAL;
    unsigned int num = xsd_count_strings(in->buf, in->used);
    const char **vec = calloc(num, sizeof(*vec));
    if (!vec)
        return ENOMEM;
    int rc = xsd_get_strings(in, vec, num) < num
                 ? EIO
                 : controls[cmd].fn(c, in, vec + 1, num - 1);
    free(vec);
    return rc;
}
