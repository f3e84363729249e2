/*
 * Transaction. Every request reads and writes the tree through a view:
 * the global store (t == NULL) or a transaction. As in upstream xenstored
 * 4.17, a transaction copies each node on first access and records its
 * generation; commit fails with EAGAIN when any recorded node changed or
 * appeared/vanished meanwhile, and watch events queue until commit.
 */
#ifndef XSD_TXN_H
#define XSD_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct xsd_txn;

struct xsd_txn *xsd_txn_new(uint32_t id);
void xsd_txn_free(struct xsd_txn *t);
uint32_t xsd_txn_id(const struct xsd_txn *t);
/* Next transaction in a connection's list. */
struct xsd_txn **xsd_txn_nextp(struct xsd_txn *t);

/*
 * The node at name as seen by the view, NULL with errno ENOENT (or ENOMEM).
 * The pointer stays valid until the node is written over or deleted; it may
 * be modified in place and then passed to xsd_db_write().
 */
struct xsd_node *xsd_db_read(struct xsd_txn *t, const char *name);
/* Stores n (taking ownership, even on failure) with a new generation. 0 or errno. */
int xsd_db_write(struct xsd_txn *t, struct xsd_node *n);
/* Removes the single node name (not its children). */
int xsd_db_delete(struct xsd_txn *t, const char *name);
/* A change at name: fires watches now, or at commit inside a transaction. */
void xsd_db_changed(struct xsd_txn *t, const char *name, bool exact);

/* Applies the transaction to the global store: 0, EAGAIN or ENOMEM. */
int xsd_txn_commit(struct xsd_txn *t);

#endif
