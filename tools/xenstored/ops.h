/*
 * Requests: the handler table and dispatch (ops.c: tree operations and
 * transactions; domain.c: domains, RESET_WATCHES and CONTROL).
 */
#ifndef XSD_OPS_H
#define XSD_OPS_H

#include "conn.h"

struct xsd_txn;

/* A handler replies itself on success, or returns an errno for an ERROR reply. */
typedef int xsd_handler(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t);

/* Processes one complete request from c (always queues exactly one reply). */
void xsd_process(struct xsd_conn *c, const struct xsd_req *in);

/* Drops every transaction of c (RESET_WATCHES, connection close). */
void xsd_txn_clear_all(struct xsd_conn *c);

xsd_handler xsd_do_introduce, xsd_do_release, xsd_do_resume, xsd_do_set_target,
    xsd_do_get_domain_path, xsd_do_is_domain_introduced, xsd_do_reset_watches,
    xsd_do_control;

struct xsd_perm;
/* SET_PERMS on @introduceDomain / @releaseDomain (EINVAL for other @names). */
int xsd_set_special_perms(const char *name, const struct xsd_perm *perms,
                          unsigned int num);
/* Frees the domain table (at exit). */
void xsd_domains_clear(void);

#endif
