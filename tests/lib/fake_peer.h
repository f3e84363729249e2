/*
 * fake_peer — a scripted peer on a private unix socket, for fault injection
 * against the QMP and qemu-ga clients (hang before replying, close mid-line,
 * stale ids, garbage, 20 MiB lines, events between replies...).
 *
 * The peer listens on `path` before fake_peer_start() returns (so the client
 * may connect at once), accepts the first connection, then runs the script in
 * its own thread, one step at a time:
 *
 *     static const fake_step script[] = {
 *         FP_SEND("{\"QMP\": {\"version\": {}}}\n"),
 *         FP_EXPECT("qmp_capabilities"),          // captures the request's id
 *         FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
 *         FP_SLEEP(-1),                            // hang until stopped
 *     };
 *     fake_peer *fp = fake_peer_start(th_path("qmp.sock"), script, FP_N(script));
 *     ... drive the client ...
 *     CHECK(fake_peer_wait(fp, 2000));            // whole script ran, no mismatch
 *     CHECK_CONTAINS(fake_peer_received(fp, 0), "qmp_capabilities");
 *     fake_peer_free(fp);
 *
 * Placeholder: "%ID%" in sent data is replaced by the JSON text of the last
 * captured id. FP_EXPECT captures the top-level "id" of the line it reads,
 * or else "arguments"."id" (qemu-ga's guest-sync-delimited / guest-sync),
 * after skipping leading 0xFF bytes.
 *
 * When the script ends the connection stays open (input is still read and
 * recorded) until fake_peer_stop()/fake_peer_free(). A step that fails (an
 * unexpected line, the client closing) stops the script and closes the
 * connection; fake_peer_error() says why. Every wait inside the peer also
 * watches a stop pipe, so stopping is prompt and deterministic.
 */
#ifndef XLSNAP_FAKE_PEER_H
#define XLSNAP_FAKE_PEER_H

#include <stdbool.h>
#include <stddef.h>

typedef enum fake_op {
    FAKE_OP_SEND,   /* send data (len bytes; 0 = strlen), "%ID%" substituted */
    FAKE_OP_FILL,   /* send len copies of data[0] (a huge line without '\n') */
    FAKE_OP_EXPECT, /* read one line; it must contain data (NULL: any line);
                       ms > 0: fail if none arrives within ms */
    FAKE_OP_SLEEP,  /* do nothing for ms milliseconds (-1: until stopped) */
    FAKE_OP_CLOSE,  /* close the connection (send a partial line first to cut one) */
    FAKE_OP_ACCEPT, /* close the connection if open, accept the next (ms: timeout, -1
                       none) */
} fake_op;

typedef struct fake_step {
    fake_op op;
    const char *data;
    size_t len;
    int ms;
} fake_step;

#define FP_SEND(s)                                                                       \
    {                                                                                    \
        .op = FAKE_OP_SEND, .data = (s)                                                  \
    }
#define FP_SEND_N(s, n)                                                                  \
    {                                                                                    \
        .op = FAKE_OP_SEND, .data = (s), .len = (n)                                      \
    }
#define FP_FILL(ch, n)                                                                   \
    {                                                                                    \
        .op = FAKE_OP_FILL, .data = (ch), .len = (n)                                     \
    }
#define FP_EXPECT(sub)                                                                   \
    {                                                                                    \
        .op = FAKE_OP_EXPECT, .data = (sub)                                              \
    }
#define FP_EXPECT_WITHIN(sub, ms_)                                                       \
    {                                                                                    \
        .op = FAKE_OP_EXPECT, .data = (sub), .ms = (ms_)                                 \
    }
#define FP_SLEEP(ms_)                                                                    \
    {                                                                                    \
        .op = FAKE_OP_SLEEP, .ms = (ms_)                                                 \
    }
#define FP_CLOSE()                                                                       \
    {                                                                                    \
        .op = FAKE_OP_CLOSE                                                              \
    }
#define FP_ACCEPT(ms_)                                                                   \
    {                                                                                    \
        .op = FAKE_OP_ACCEPT, .ms = (ms_)                                                \
    }
#define FP_N(script) (sizeof(script) / sizeof((script)[0]))

typedef struct fake_peer fake_peer;

/*
 * Binds and listens on path (removed first if it exists), copies the script
 * (data included) and starts the peer's thread. NULL on failure (reported
 * with th_fail_at).
 */
fake_peer *fake_peer_start(const char *path, const fake_step *steps, size_t n);

/*
 * Waits up to timeout_ms for the script to finish. True when every step ran
 * without a mismatch; false on a failed step or on timeout.
 */
bool fake_peer_wait(fake_peer *fp, int timeout_ms);

/* Stops the peer's thread and closes its sockets (idempotent). */
void fake_peer_stop(fake_peer *fp);

/* Stops the peer (if running) and frees everything, the socket file included. */
void fake_peer_free(fake_peer *fp);

/* Number of steps completed so far. */
size_t fake_peer_steps_done(fake_peer *fp);

/*
 * Lines received, in order (those read by FP_EXPECT and any read after the
 * script ended), without the '\n'. The strings stay valid until
 * fake_peer_free(). Call after fake_peer_wait/stop for a stable view.
 */
size_t fake_peer_n_received(fake_peer *fp);
const char *fake_peer_received(fake_peer *fp, size_t i);
/* Count of received lines containing needle. */
size_t fake_peer_count_received(fake_peer *fp, const char *needle);

/* Connections accepted so far. */
int fake_peer_connections(fake_peer *fp);

/* Why the script stopped early ("" when it did not). */
const char *fake_peer_error(fake_peer *fp);

#endif
