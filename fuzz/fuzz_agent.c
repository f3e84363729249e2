/*
 * Fuzzes the qemu-ga client (snap_agent): 0xFF-delimited sync matching,
 * replies, errors and garbage, freeze/thaw recovery, through the real socket
 * code against a scripted peer (fuzz_peer.h; "@ID@" = the id of the request
 * being answered, e.g. the random sync id). The peer is a fake: nothing here
 * ever reaches a real agent.
 */
#include <stdlib.h>

#include "fuzz_peer.h"
#include "qga_guest.h"

#define FUZZ_TIMEOUT_MS 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void agent_fuzz_queries(snap_agent *ag, snap_err *err)
{
    snap_agent_info info;
    if (snap_agent_get_info(ag, FUZZ_TIMEOUT_MS, &info, err) == 0) {
        (void)snap_agent_info_can(&info, "guest-fsfreeze-freeze");
        snap_agent_info_dispose(&info);
    }
    snap_agent_fs *fs = NULL;
    size_t n = 0;
    if (snap_agent_get_fsinfo(ag, FUZZ_TIMEOUT_MS, &fs, &n, err) == 0)
        snap_agent_fsinfo_free(fs, n);
    snap_agent_fs_state state;
    (void)snap_agent_fsfreeze_status(ag, FUZZ_TIMEOUT_MS, &state, err);
}

static void agent_fuzz_session(snap_agent *ag)
{
    snap_err err;
    agent_fuzz_queries(ag, &err);
    (void)snap_agent_ping(ag, FUZZ_TIMEOUT_MS, &err);
    static const char *const mounts[] = {"/mnt/vda", "/mnt/vdb"};
    snap_agent_freeze_result res;
    (void)snap_agent_freeze(ag, mounts, 2, FUZZ_TIMEOUT_MS, FUZZ_TIMEOUT_MS, &res, &err);
    (void)snap_agent_thaw(ag, FUZZ_TIMEOUT_MS, FUZZ_TIMEOUT_MS, &res, &err);
    int count;
    (void)snap_agent_fsfreeze_thaw(ag, FUZZ_TIMEOUT_MS, &count, &err);
    (void)snap_agent_sync(ag, FUZZ_TIMEOUT_MS, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static fuzz_peer *peer;
    if (!peer)
        peer = fuzz_peer_new();
    fuzz_peer_start(peer, data, len, false);
    snap_agent *ag = NULL;
    snap_err err;
    if (snap_agent_open(fuzz_peer_path(peer), FUZZ_TIMEOUT_MS, NULL, &ag, &err) == 0)
        agent_fuzz_session(ag);
    snap_agent_close(ag);
    fuzz_peer_join(peer);
    return 0;
}
