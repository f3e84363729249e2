/*
 * A scripted peer for the wire-protocol fuzzers (QMP, qemu-ga): the fuzz input
 * is a script of reply segments separated by an empty line ("\n\n"). The
 * peer listens on a private unix socket; for each request line the client
 * sends, it answers with the next segment, with every "@ID@" replaced by the
 * "id" token of that request (QMP's "libsnap-N", the agent's random sync id).
 * A client that sends nothing for a few ms gets the next segment anyway, so
 * unsolicited events and stale replies are reachable. When the script runs
 * out, the peer closes its side: no input can make the client wait long.
 */
#ifndef XLSNAP_FUZZ_PEER_H
#define XLSNAP_FUZZ_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fuzz_peer fuzz_peer;

/* Listens on a fresh socket in a private directory; aborts on failure. */
fuzz_peer *fuzz_peer_new(void);
const char *fuzz_peer_path(const fuzz_peer *p);
/*
 * Serves one connection from a thread with data as the script. greet: send
 * the first segment on accept, before any request (QMP's greeting).
 */
void fuzz_peer_start(fuzz_peer *p, const uint8_t *data, size_t len, bool greet);
/* Waits for the connection to end (the client must have closed its side). */
void fuzz_peer_join(fuzz_peer *p);

#endif
