/*
 * Connection: the unix-socket clients, their input framing and output
 * queues, and the poll loop. Every socket client is dom0 (privileged), as in
 * upstream xenstored.
 */
#ifndef XSD_CONN_H
#define XSD_CONN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct xsd_watch;
struct xsd_txn;

struct xsd_conn {
    struct xsd_conn *next;
    int fd;
    unsigned int id; /* for log lines */
    char *ibuf;      /* bytes read, not yet processed */
    size_t ilen, icap;
    struct xsd_msg *out_head, *out_tail;
    size_t out_off;   /* bytes of out_head already written */
    size_t out_bytes; /* total queued */
    struct xsd_watch *watches;
    struct xsd_txn *txns;
    uint32_t next_txn_id;
};

/* All live connections (for watch events). */
struct xsd_conn *xsd_conn_list(void);

/* Queues a reply of type to request in; over XENSTORE_PAYLOAD_MAX becomes E2BIG. */
void xsd_reply(struct xsd_conn *c, const struct xsd_req *in, uint32_t type,
               const void *data, unsigned int len);
void xsd_reply_ok(struct xsd_conn *c, const struct xsd_req *in);
void xsd_reply_error(struct xsd_conn *c, const struct xsd_req *in, int err);
/* Queues WATCH_EVENT path|token|, dropping it if an identical one is pending. */
void xsd_send_event(struct xsd_conn *c, const char *path, const char *token);

/* Serves listen_fd until *stop becomes true (signals unblocked only in ppoll). */
int xsd_serve(int listen_fd, volatile sig_atomic_t *stop, const sigset_t *wait_mask);
void xsd_conn_close_all(void);

#endif
