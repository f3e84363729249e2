/* Wire: message framing and payload parsing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

struct xsd_msg *xsd_msg_new(uint32_t type, uint32_t req_id, uint32_t tx_id,
                            const void *payload, unsigned int len)
{
    struct xsd_msg *m = malloc(sizeof(*m) + XSD_HDR_LEN + len);
    if (!m)
        return NULL;
    struct xsd_sockmsg hdr = {.type = type, .req_id = req_id, .tx_id = tx_id, .len = len};
    m->next = NULL;
    m->watch_event = type == XS_WATCH_EVENT;
    m->size = XSD_HDR_LEN + len;
    memcpy(m->bytes, &hdr, XSD_HDR_LEN);
    if (len)
        memcpy(m->bytes + XSD_HDR_LEN, payload, len);
    return m;
}

const char *xsd_msg_payload(const struct xsd_msg *m)
{
    return m->bytes + XSD_HDR_LEN;
}

unsigned int xsd_count_strings(const char *buf, unsigned int len)
{
    unsigned int n = 0;
    for (unsigned int i = 0; i < len; i++)
        if (buf[i] == '\0')
            n++;
    return n;
}

unsigned int xsd_string_len_at(const struct xsd_req *in, unsigned int offset)
{
    if (offset >= in->used)
        return 0;
    const char *nul = memchr(in->buf + offset, 0, in->used - offset);
    if (!nul)
        return 0;
    return (unsigned int)(nul - (in->buf + offset)) + 1;
}

unsigned int xsd_get_strings(const struct xsd_req *in, const char *vec[],
                             unsigned int num)
{
    unsigned int off = 0, i = 0, len;
    while ((len = xsd_string_len_at(in, off)) != 0) {
        if (i < num)
            vec[i] = in->buf + off;
        i++;
        off += len;
    }
    return i;
}

const char *xsd_onearg(const struct xsd_req *in)
{
    if (!in->used || xsd_string_len_at(in, 0) != in->used)
        return NULL;
    return in->buf;
}

const char *xsd_errno_name(int err)
{
    for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
        if (xsd_errors[i].errnum == err)
            return xsd_errors[i].errstring;
    return "EINVAL";
}

static const char *const type_names[XS_TYPE_COUNT] = {
    [XS_CONTROL] = "CONTROL",
    [XS_DIRECTORY] = "DIRECTORY",
    [XS_READ] = "READ",
    [XS_GET_PERMS] = "GET_PERMS",
    [XS_WATCH] = "WATCH",
    [XS_UNWATCH] = "UNWATCH",
    [XS_TRANSACTION_START] = "TRANSACTION_START",
    [XS_TRANSACTION_END] = "TRANSACTION_END",
    [XS_INTRODUCE] = "INTRODUCE",
    [XS_RELEASE] = "RELEASE",
    [XS_GET_DOMAIN_PATH] = "GET_DOMAIN_PATH",
    [XS_WRITE] = "WRITE",
    [XS_MKDIR] = "MKDIR",
    [XS_RM] = "RM",
    [XS_SET_PERMS] = "SET_PERMS",
    [XS_WATCH_EVENT] = "WATCH_EVENT",
    [XS_ERROR] = "ERROR",
    [XS_IS_DOMAIN_INTRODUCED] = "IS_DOMAIN_INTRODUCED",
    [XS_RESUME] = "RESUME",
    [XS_SET_TARGET] = "SET_TARGET",
    [XS_RESET_WATCHES] = "RESET_WATCHES",
    [XS_DIRECTORY_PART] = "DIRECTORY_PART",
};

const char *xsd_type_name(uint32_t type)
{
    if (type < XS_TYPE_COUNT && type_names[type])
        return type_names[type];
    return "**UNKNOWN**";
}
