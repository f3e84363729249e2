/*
 * Fuzzes xlsnap-xenstored's request handling: the input is a byte stream
 * from one client, framed exactly as conn.c frames it (header + payload, an
 * oversized payload drops the connection), and every request goes through
 * xsd_process with a fresh store per input. Replies are discarded.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "ops.h"
#include "store.h"
#include "watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void xsd_fuzz_free_conn(struct xsd_conn *c)
{
    xsd_watch_clear(c);
    xsd_txn_clear_all(c);
    while (c->out_head) {
        struct xsd_msg *m = c->out_head;
        c->out_head = m->next;
        free(m);
    }
    free(c);
}

/* Frames and processes requests as conn.c's process_input does. */
static void xsd_fuzz_feed(struct xsd_conn *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (len - off >= XSD_HDR_LEN) {
        struct xsd_req in;
        memcpy(&in.hdr, data + off, XSD_HDR_LEN);
        if (in.hdr.len > XENSTORE_PAYLOAD_MAX || len - off - XSD_HDR_LEN < in.hdr.len)
            return;
        /* A private copy, so ASan sees any read past the payload. */
        in.buf = malloc(in.hdr.len ? in.hdr.len : 1);
        memcpy(in.buf, data + off + XSD_HDR_LEN, in.hdr.len);
        in.used = in.hdr.len;
        xsd_process(c, &in);
        free(in.buf);
        off += XSD_HDR_LEN + in.hdr.len;
        while (c->out_head) { /* the client reads every reply */
            struct xsd_msg *m = c->out_head;
            c->out_head = m->next;
            free(m);
        }
        c->out_tail = NULL;
        c->out_bytes = 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (xsd_store_init() < 0)
        abort();
    struct xsd_conn *c = calloc(1, sizeof *c);
    c->fd = -1;
    c->next_txn_id = 1;
    xsd_fuzz_feed(c, data, len);
    xsd_fuzz_free_conn(c);
    xsd_domains_clear();
    xsd_store_clear();
    return 0;
}
