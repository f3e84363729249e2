/*
 * Wire: the xenstore message framing (xen/io/xs_wire.h) and helpers to
 * take request payloads apart the way upstream xenstored does.
 */
#ifndef XSD_WIRE_H
#define XSD_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#define XSD_HDR_LEN ((unsigned int)sizeof(struct xsd_sockmsg))

/* One complete request: header plus hdr.len payload bytes. */
struct xsd_req {
    struct xsd_sockmsg hdr;
    char *buf;
    unsigned int used;
};

/* One queued outgoing message (header and payload in one block). */
struct xsd_msg {
    struct xsd_msg *next;
    bool watch_event;
    unsigned int size; /* header + payload */
    char bytes[];
};

/* Allocates a message; NULL on out of memory. */
struct xsd_msg *xsd_msg_new(uint32_t type, uint32_t req_id, uint32_t tx_id,
                            const void *payload, unsigned int len);
/* Payload of a message. */
const char *xsd_msg_payload(const struct xsd_msg *m);

/* Number of NUL bytes in buf[0..len). */
unsigned int xsd_count_strings(const char *buf, unsigned int len);
/*
 * Splits the payload into NUL-terminated strings; stores up to num of them in
 * vec and returns how many there are (data after the last NUL is ignored).
 */
unsigned int xsd_get_strings(const struct xsd_req *in, const char *vec[],
                             unsigned int num);
/* The payload when it is exactly one NUL-terminated string, else NULL. */
const char *xsd_onearg(const struct xsd_req *in);
/* Length including the NUL of the string at offset, 0 when unterminated. */
unsigned int xsd_string_len_at(const struct xsd_req *in, unsigned int offset);

/* The wire name of an errno ("ENOENT"); untranslatable ones become EINVAL. */
const char *xsd_errno_name(int err);
/* "READ", "WRITE", ... or "**UNKNOWN**". */
const char *xsd_type_name(uint32_t type);

#endif
