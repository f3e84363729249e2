/*
 * Watch: per-connection watches, WATCH/UNWATCH, and matching changes
 * against every connection's watches (upstream fire_watches semantics).
 */
#ifndef XSD_WATCH_H
#define XSD_WATCH_H

#include <stdbool.h>

#include "conn.h"

/*
 * A change at name. exact: only watches on exactly name fire (a node removed
 * below the removed root); otherwise every watch at or above name fires.
 */
void xsd_watch_fire(const char *name, bool exact);
void xsd_watch_clear(struct xsd_conn *c);

int xsd_do_watch(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t);
int xsd_do_unwatch(struct xsd_conn *c, const struct xsd_req *in, struct xsd_txn *t);

#endif
