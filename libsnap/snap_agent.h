/*
 * The guest-agent client for qemu-ga (the QEMU guest agent) over its
 * channel socket. Private to libsnap.
 *
 * Protocol (see docs and qemu's qga/): no greeting; one JSON request per line,
 * one reply per line, {"return": ...} or {"error": {"class", "desc"}}. Before
 * use, and after ANY timeout or malformed reply, the client resynchronises:
 * it sends 0xFF then guest-sync-delimited with a random id and discards
 * input until the 0xFF-prefixed reply carrying exactly that id (stale
 * replies, garbage and the parse-error reply the 0xFF provokes are skipped).
 *
 * Every call is bounded by a timeout in milliseconds. Agent error replies are
 * surfaced verbatim: "agent: guest-fsfreeze-freeze: CommandNotFound: Command
 * guest-fsfreeze-freeze has been disabled".
 *
 * Freezing safely: snap_agent_freeze()/snap_agent_thaw() never leave the
 * caller guessing. If the freeze (or thaw) fails or times out they resync,
 * poll guest-fsfreeze-status, thaw when the guest is frozen, and report the
 * state the guest was left in (snap_agent_freeze_result).
 */
#ifndef SNAP_AGENT_H
#define SNAP_AGENT_H

#include "snap_base.h"
#include "snap_json.h"

/* Longest reply accepted (guest-info is a few KiB). */
#define SNAP_AGENT_MAX_LINE (4u << 20)
/* What snap_agent_close() spends draining an agent left out of step. */
#define SNAP_AGENT_CLOSE_DRAIN_MS 1000

typedef struct snap_agent snap_agent;

/*
 * Connects to the agent's channel socket and synchronises, all within
 * timeout_ms. lg may be NULL.
 */
int snap_agent_open(const char *path, int timeout_ms, xentoollog_logger *lg,
                    snap_agent **out, snap_err *err);
/*
 * Closes the connection. If replies may still be pending (after a timeout)
 * it first resyncs for up to SNAP_AGENT_CLOSE_DRAIN_MS, because qemu-ga over
 * unix-listen may exit when a client leaves replies unread. NULL is a no-op.
 */
void snap_agent_close(snap_agent *ag);
/* Closes the connection without that drain (a peer known not to answer:
 * the guest is paused). NULL is a no-op. */
void snap_agent_abandon(snap_agent *ag);

/* The connection's descriptor (-1 when closed), for the freeze watchdog to cut it. */
int snap_agent_fd(const snap_agent *ag);

/*
 * Opens an agent that may not answer yet (a guest still booting, qemu-ga not
 * started): retries connecting and syncing until it answers or timeout_ms
 * runs out; the error is the last attempt's.
 */
int snap_agent_open_wait(const char *path, int timeout_ms, xentoollog_logger *lg,
                         snap_agent **out, snap_err *err);

/* Resynchronises now (guest-sync-delimited, random id). */
int snap_agent_sync(snap_agent *ag, int timeout_ms, snap_err *err);
/* guest-ping. */
int snap_agent_ping(snap_agent *ag, int timeout_ms, snap_err *err);

/* ------------------------------------------------------------ any command */

/*
 * Runs any agent command within timeout_ms, under the rules of every call
 * here: resync first when an earlier call timed out or read garbage, and a
 * timeout or malformed reply makes the next call resync. args (NULL: none)
 * emits the members of "arguments". On success *ret_out (NULL: dropped) is
 * the reply's "return" value, owned by the caller (yajl_tree_free). Agent
 * errors are SNAP_ERROR_PEER, "agent: CMD: CLASS: DESC".
 */
int snap_agent_execute(snap_agent *ag, const char *cmd, snap_json_members_fn *args,
                       const void *opaque, yajl_val *ret_out, int timeout_ms,
                       snap_err *err);
/*
 * Sends a command qemu-ga does not answer on success (guest-shutdown,
 * guest-suspend-*); returns once it is written.
 */
int snap_agent_send(snap_agent *ag, const char *cmd, snap_json_members_fn *args,
                    const void *opaque, int timeout_ms, snap_err *err);

/* ------------------------------------------------------------ pipelined */

/*
 * Pipelining, for an agent whose answers take a guest's time (each round
 * trip wakes the guest; under emulation tens of ms): snap_agent_open_begin
 * connects and sends the sync without awaiting its reply; snap_agent_request
 * sends a command whose reply snap_agent_reply reads later, in the order
 * sent, the sync's reply first. The guest works on them while the caller does
 * something else. A command run meanwhile (snap_agent_execute...) discards
 * the replies owed (resync); so does a timeout, after which each owed reply
 * fails.
 */
int snap_agent_open_begin(const char *path, int timeout_ms, xentoollog_logger *lg,
                          snap_agent **out, snap_err *err);
int snap_agent_request(snap_agent *ag, const char *cmd, snap_json_members_fn *args,
                       const void *opaque, int timeout_ms, snap_err *err);
/*
 * The next owed reply, to cmd (the one requested next): *ret_out is its
 * "return" value (caller frees), errors as snap_agent_execute's.
 */
int snap_agent_reply(snap_agent *ag, const char *cmd, yajl_val *ret_out, int timeout_ms,
                     snap_err *err);

/* ------------------------------------------------------------ guest-info */

typedef struct snap_agent_command {
    char *name;
    bool enabled; /* false when blocked (-b) or refused in frozen state */
} snap_agent_command;

typedef struct snap_agent_info {
    char *version;
    size_t n_commands;
    snap_agent_command *commands;
} snap_agent_info;

int snap_agent_get_info(snap_agent *ag, int timeout_ms, snap_agent_info *out,
                        snap_err *err);
/* guest-info's "return" value parsed (a pipelined reply). */
int snap_agent_info_parse(yajl_val ret, snap_agent_info *out, snap_err *err);
void snap_agent_info_dispose(snap_agent_info *info);
/* The capability check: the agent supports `command` AND has it enabled. */
bool snap_agent_info_can(const snap_agent_info *info, const char *command);

/* ------------------------------------------------------------ guest-get-fsinfo */

/* A disk under a guest filesystem; integers are -1 when the agent did not say. */
typedef struct snap_agent_fs_disk {
    char *bus_type; /* "virtio", "scsi", "xen", "ide", ... (NULL: unknown) */
    char *dev;      /* guest device node, e.g. "/dev/xvda1" (may be NULL) */
    char *serial;   /* may be NULL */
    int pci_domain, pci_bus, pci_slot, pci_function;
    int bus, target, unit;
} snap_agent_fs_disk;

/*
 * One filesystem qemu-ga can freeze or at least sees: it lists only mounts
 * on a block device (from /proc/self/mountinfo, major number not 0), so
 * tmpfs, proc, FUSE or overlay mounts are never in the list; a bind mount
 * or a second mount of one device is, under the same name.
 */
typedef struct snap_agent_fs {
    char *name;       /* the block device: "vda1", "dm-0" */
    char *mountpoint; /* "/" */
    char *type;       /* "ext4" */
    size_t n_disks;
    snap_agent_fs_disk *disks;
} snap_agent_fs;

/* guest-get-fsinfo: the guest's filesystems (*fs_out malloc'd, *n_out of them). */
int snap_agent_get_fsinfo(snap_agent *ag, int timeout_ms, snap_agent_fs **fs_out,
                          size_t *n_out, snap_err *err);
/* The "return" value of guest-get-fsinfo parsed (for tests of recorded replies). */
int snap_agent_fsinfo_parse(yajl_val list, snap_agent_fs **fs_out, size_t *n_out,
                            snap_err *err);
void snap_agent_fsinfo_free(snap_agent_fs *fs, size_t n);

/* ------------------------------------------------------------ fsfreeze */

typedef enum snap_agent_fs_state {
    SNAP_AGENT_THAWED,
    SNAP_AGENT_FROZEN,
    SNAP_AGENT_UNKNOWN, /* the agent did not say: assume the guest may be frozen */
} snap_agent_fs_state;

/* "thawed", "frozen", "unknown". */
const char *snap_agent_fs_state_name(snap_agent_fs_state state);

/* guest-fsfreeze-status: the agent's own flag ("thawed"/"frozen"). */
int snap_agent_fsfreeze_status(snap_agent *ag, int timeout_ms, snap_agent_fs_state *out,
                               snap_err *err);

/*
 * The raw commands, one request each, no recovery: *count_out is the number
 * of filesystems frozen/thawed. mountpoints NULL (n 0) freezes all. Prefer
 * snap_agent_freeze/snap_agent_thaw, which recover.
 */
int snap_agent_fsfreeze_freeze(snap_agent *ag, const char *const *mountpoints, size_t n,
                               int timeout_ms, int *count_out, snap_err *err);
int snap_agent_fsfreeze_thaw(snap_agent *ag, int timeout_ms, int *count_out,
                             snap_err *err);

typedef struct snap_agent_freeze_result {
    snap_agent_fs_state state;     /* the state the guest was left in */
    int frozen;                    /* count in the freeze reply (even late); -1: none */
    int thawed;                    /* count in a thaw reply; -1: none */
    bool thaw_sent;                /* a thaw was sent (possibly unanswered) */
    char message[SNAP_ERRMSG_MAX]; /* the whole story, for the user */
} snap_agent_freeze_result;

/*
 * Freezes (all filesystems, or guest-fsfreeze-freeze-list of mountpoints),
 * waiting timeout_ms for the reply. On success res->state is FROZEN (or
 * THAWED when the agent froze 0 filesystems) and 0 is returned. On any
 * failure it spends up to recovery_ms resyncing, polling status and thawing,
 * then returns the freeze's error code when the guest is known THAWED, or
 * SNAP_ERROR_GUEST_FROZEN when it is FROZEN or UNKNOWN; err and res->message
 * say what the agent said and what recovery found.
 */
int snap_agent_freeze(snap_agent *ag, const char *const *mountpoints, size_t n,
                      int timeout_ms, int recovery_ms, snap_agent_freeze_result *res,
                      snap_err *err);

/*
 * Thaws, with the same recovery and reporting. Returns 0 whenever the guest
 * ends THAWED (also when recovery had to confirm it: res->message tells), else
 * SNAP_ERROR_GUEST_FROZEN (state FROZEN or UNKNOWN).
 */
int snap_agent_thaw(snap_agent *ag, int timeout_ms, int recovery_ms,
                    snap_agent_freeze_result *res, snap_err *err);

#endif
