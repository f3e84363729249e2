/* The guest-agent (qemu-ga) client; see snap_agent.h. */
#include "snap_agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "snap_json.h"
#include "snap_stream.h"
#include "snap_trace.h"

struct snap_agent {
    snap_stream s;
    xentoollog_logger *lg;
    bool need_sync;     /* replies may be pending: resync before the next command */
    long long sync_id;  /* a sync sent by snap_agent_open_begin, not yet answered */
    unsigned requested; /* replies owed to snap_agent_request, not yet read */
    /* XLSNAP_TRACE: stamps agent-answered when the agent's first answer on a
     * fresh connection arrives (its wake-up), read or not */
    snap_trace_watch *first_answer;
};

typedef snap_json_members_fn agent_args_fn;
/* Called with each non-sync line skipped while resyncing. */
typedef void agent_line_fn(void *opaque, const char *line);

#define AGENT_SYNC_CMD            "guest-sync-delimited"
#define AGENT_DEFAULT_RECOVERY_MS 5000
#define AGENT_WAIT_ATTEMPT_MS     1000 /* snap_agent_open_wait: one sync attempt */
#define AGENT_WAIT_PAUSE_MS       200  /* and between connections */

/* A positive id that survives any JSON number parser (< 2^53). */
static long long agent_random_id(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = snap_now_ms() ^ ((uint64_t)getpid() << 20);
    v &= (UINT64_C(1) << 53) - 1;
    return v ? (long long)v : 1;
}

static int agent_send(snap_agent *ag, const char *cmd, agent_args_fn *args,
                      const void *opaque, bool delimit, uint64_t deadline, snap_err *err)
{
    char *req =
        snap_json_qapi_command(delimit ? "\xff" : NULL, cmd, args, opaque, NULL, NULL);
    snap_log(ag->lg, XTL_DEBUG, "agent: -> %s", req + (delimit ? 1 : 0));
    int rc = snap_stream_write_all(&ag->s, req, strlen(req), deadline, err);
    free(req);
    if (rc) {
        ag->need_sync = true; /* a partial request may be in the agent's parser */
        return snap_err_context(err, "%s", cmd);
    }
    return 0;
}

static void agent_sync_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_int(g, "id", *(const long long *)opaque);
}

/* True when line carries a delimited sync reply {"return": id}. */
static bool agent_is_sync_reply(const char *line, size_t len, long long id)
{
    const char *ff = memrchr(line, '\xff', len);
    if (!ff)
        return false;
    snap_err ignored;
    yajl_val v = snap_json_parse(ff + 1, "sync reply", &ignored);
    long long got = 0;
    bool match = v && snap_json_get_int(v, "return", &got) && got == id;
    yajl_tree_free(v);
    return match;
}

/* Sends 0xFF + guest-sync-delimited with a new id (*id). */
static int agent_sync_send(snap_agent *ag, uint64_t deadline, long long *id,
                           snap_err *err)
{
    *id = agent_random_id();
    return agent_send(ag, AGENT_SYNC_CMD, agent_sync_args, id, true, deadline, err);
}

/*
 * Discards input until the sync reply carrying id; lines that are not sync
 * replies go to `other` (when set).
 */
static int agent_sync_wait(snap_agent *ag, long long id, uint64_t deadline,
                           agent_line_fn *other, void *opaque, snap_err *err)
{
    unsigned skipped = 0;
    for (;;) {
        char *line = NULL;
        size_t len = 0;
        int rc = snap_stream_read_line(&ag->s, &line, &len, deadline, err);
        if (rc == SNAP_ERROR_PROTOCOL) { /* an overlong line: garbage, skip it */
            skipped++;
            continue;
        }
        if (rc == SNAP_ERROR_TIMEDOUT)
            return snap_err_set(
                err, rc, "%s: no reply carrying id %lld in time (%u %s skipped)",
                AGENT_SYNC_CMD, id, skipped, skipped == 1 ? "line" : "lines");
        if (rc)
            return snap_err_context(err, "%s", AGENT_SYNC_CMD);
        if (agent_is_sync_reply(line, len, id)) {
            free(line);
            ag->need_sync = false;
            ag->sync_id = 0;
            snap_log(ag->lg, XTL_DEBUG, "agent: synced (id %lld, %u lines skipped)", id,
                     skipped);
            return 0;
        }
        if (other && !memchr(line, '\xff', len))
            other(opaque, line);
        skipped++;
        free(line);
    }
}

/*
 * Sends 0xFF + guest-sync-delimited and discards input until the reply with
 * the same id; lines that are not sync replies go to `other` (when set).
 * Whatever was owed before (a pending sync, requested replies) is discarded.
 */
static int agent_sync_until(snap_agent *ag, uint64_t deadline, agent_line_fn *other,
                            void *opaque, snap_err *err)
{
    long long id;
    ag->requested = 0;
    ag->sync_id = 0;
    int rc = agent_sync_send(ag, deadline, &id, err);
    return rc ? rc : agent_sync_wait(ag, id, deadline, other, opaque, err);
}

/*
 * Before a command's reply is read: the sync snap_agent_open_begin sent is
 * answered first; replies owed to requests nobody reads are discarded by a
 * resync.
 */
static int agent_settle(snap_agent *ag, uint64_t deadline, snap_err *err)
{
    if (ag->requested)
        ag->need_sync = true;
    if (ag->need_sync)
        return agent_sync_until(ag, deadline, NULL, NULL, err);
    return ag->sync_id ? agent_sync_wait(ag, ag->sync_id, deadline, NULL, NULL, err) : 0;
}

/* Reads the reply to cmd: the parsed document, with "return" in it. */
static int agent_read_reply(snap_agent *ag, const char *cmd, uint64_t deadline,
                            int timeout_ms, yajl_val *doc_out, snap_err *err)
{
    for (;;) {
        char *line = NULL;
        size_t len = 0;
        int rc = snap_stream_read_line(&ag->s, &line, &len, deadline, err);
        if (rc == SNAP_ERROR_TIMEDOUT) {
            ag->need_sync = true;
            return snap_err_set(err, rc, "agent: %s: no reply within %d ms", cmd,
                                timeout_ms);
        }
        if (rc) {
            ag->need_sync = true;
            return snap_err_context(err, "agent: %s", cmd);
        }
        if (memchr(line, '\xff', len)) { /* a stale sync reply */
            free(line);
            continue;
        }
        yajl_val doc = snap_json_parse(line, "reply", err);
        if (!doc) {
            ag->need_sync = true;
            snap_err_set(err, SNAP_ERROR_PROTOCOL, "agent: %s: malformed reply: %.200s",
                         cmd, line);
            free(line);
            return err->code;
        }
        free(line);
        yajl_val error = snap_json_get_object(doc, "error");
        if (error) {
            const char *cls = snap_json_get_string(error, "class");
            const char *desc = snap_json_get_string(error, "desc");
            snap_err_set(err, SNAP_ERROR_PEER, "agent: %s: %s: %s", cmd,
                         cls ? cls : "(no class)", desc ? desc : "(no description)");
            yajl_tree_free(doc);
            return SNAP_ERROR_PEER;
        }
        if (snap_json_get(doc, "return")) {
            *doc_out = doc;
            return 0;
        }
        yajl_tree_free(doc);
        ag->need_sync = true;
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "agent: %s: reply has neither \"return\" nor \"error\"", cmd);
    }
}

/* One command: resync first when needed, send, read the reply document. */
static int agent_exec(snap_agent *ag, const char *cmd, agent_args_fn *args,
                      const void *opaque, int timeout_ms, yajl_val *doc_out,
                      snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    *doc_out = NULL;
    if (ag->need_sync || ag->sync_id || ag->requested) {
        int rc = agent_settle(ag, deadline, err);
        if (rc)
            return snap_err_context(err, "agent: %s: resync before the command failed",
                                    cmd);
    }
    int rc = agent_send(ag, cmd, args, opaque, false, deadline, err);
    if (rc)
        return snap_err_context(err, "agent");
    return agent_read_reply(ag, cmd, deadline, timeout_ms, doc_out, err);
}

/* A command whose "return" is an integer (a count). */
static int agent_exec_int(snap_agent *ag, const char *cmd, agent_args_fn *args,
                          const void *opaque, int timeout_ms, int *out, snap_err *err)
{
    yajl_val doc;
    int rc = agent_exec(ag, cmd, args, opaque, timeout_ms, &doc, err);
    if (rc)
        return rc;
    long long v = 0;
    if (!snap_json_get_int(doc, "return", &v) || v < 0 || v > INT32_MAX)
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL, "agent: %s: return is not a count",
                          cmd);
    else
        *out = (int)v;
    yajl_tree_free(doc);
    return rc;
}

/* What is left of deadline for the next call (a default when there is none). */
static int agent_time_left(uint64_t deadline)
{
    int left = snap_deadline_poll_ms(deadline);
    return left < 0 ? AGENT_DEFAULT_RECOVERY_MS : left;
}

/* Detaches the "return" member from a reply document and frees the rest. */
static yajl_val agent_take_return(yajl_val doc)
{
    yajl_val ret = NULL;
    for (size_t i = 0; YAJL_IS_OBJECT(doc) && i < doc->u.object.len; i++) {
        if (strcmp(doc->u.object.keys[i], "return") == 0 && !ret) {
            ret = doc->u.object.values[i];
            doc->u.object.values[i] = NULL; /* yajl_tree_free skips NULL */
        }
    }
    yajl_tree_free(doc);
    return ret;
}

/* ------------------------------------------------------------ public */

/* Connects to the channel socket; no sync yet. */
static int agent_connect(const char *path, int timeout_ms, xentoollog_logger *lg,
                         snap_agent **out, snap_err *err)
{
    int fd = -1;
    *out = NULL;
    int rc = snap_unix_connect(path, timeout_ms, &fd, err);
    if (rc)
        return snap_err_context(err, "agent");
    snap_agent *ag = snap_xcalloc(1, sizeof *ag);
    char *peer = snap_xasprintf("qemu-ga %s", path);
    snap_stream_init(&ag->s, fd, peer, SNAP_AGENT_MAX_LINE);
    free(peer);
    ag->lg = lg;
    *out = ag;
    return 0;
}

static void agent_free(snap_agent *ag)
{
    snap_trace_watch_end(ag->first_answer, false);
    snap_stream_close(&ag->s);
    free(ag);
}

int snap_agent_open(const char *path, int timeout_ms, xentoollog_logger *lg,
                    snap_agent **out, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    snap_agent *ag = NULL;
    int rc = agent_connect(path, timeout_ms, lg, &ag, err);
    if (rc)
        return rc;
    rc = agent_sync_until(ag, deadline, NULL, NULL, err);
    if (rc) {
        snap_err_context(err, "agent %s", path);
        agent_free(ag);
        return rc;
    }
    *out = ag;
    return 0;
}

int snap_agent_open_begin(const char *path, int timeout_ms, xentoollog_logger *lg,
                          snap_agent **out, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    snap_agent *ag = NULL;
    long long id;
    int rc = agent_connect(path, timeout_ms, lg, &ag, err);
    if (rc)
        return rc;
    rc = agent_sync_send(ag, deadline, &id, err);
    if (rc) {
        snap_err_context(err, "agent %s", path);
        agent_free(ag);
        return rc;
    }
    ag->sync_id = id;
    ag->first_answer = snap_trace_when_readable(ag->s.fd, "agent-answered");
    *out = ag;
    return 0;
}

int snap_agent_request(snap_agent *ag, const char *cmd, snap_json_members_fn *args,
                       const void *opaque, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    if (ag->need_sync && agent_sync_until(ag, deadline, NULL, NULL, err) != 0)
        return snap_err_context(err, "agent: %s: resync before the command failed", cmd);
    int rc = agent_send(ag, cmd, args, opaque, false, deadline, err);
    if (rc)
        return snap_err_context(err, "agent");
    ag->requested++;
    return 0;
}

int snap_agent_reply(snap_agent *ag, const char *cmd, yajl_val *ret_out, int timeout_ms,
                     snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    yajl_val doc = NULL;
    *ret_out = NULL;
    if (!ag->requested)
        return snap_err_set(err, SNAP_ERROR_INVAL, "agent: %s: no reply is owed", cmd);
    if (ag->sync_id && !ag->need_sync) {
        int rc = agent_sync_wait(ag, ag->sync_id, deadline, NULL, NULL, err);
        snap_trace_watch_end(ag->first_answer, rc == 0); /* answered, or never will */
        ag->first_answer = NULL;
        if (rc) {
            ag->need_sync = true;
            return snap_err_context(err, "agent");
        }
    }
    if (ag->need_sync) /* an earlier reply timed out: this one is lost with it */
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "agent: %s: out of step after an earlier reply failed", cmd);
    int rc = agent_read_reply(ag, cmd, deadline, timeout_ms, &doc, err);
    if (rc != SNAP_ERROR_PEER && rc != 0)
        return rc; /* need_sync is set: the rest is discarded by the next resync */
    ag->requested--;
    if (!rc)
        *ret_out = agent_take_return(doc);
    return rc;
}

int snap_agent_fd(const snap_agent *ag)
{
    return ag ? ag->s.fd : -1;
}

void snap_agent_close(snap_agent *ag)
{
    if (!ag)
        return;
    if ((ag->need_sync || ag->sync_id || ag->requested) && ag->s.fd >= 0) {
        snap_err ignored;
        if (agent_sync_until(ag, snap_deadline_in(SNAP_AGENT_CLOSE_DRAIN_MS), NULL, NULL,
                             &ignored))
            snap_log(ag->lg, XTL_WARN, "agent: closing with replies unread: %s",
                     ignored.msg);
    }
    agent_free(ag);
}

void snap_agent_abandon(snap_agent *ag)
{
    if (ag)
        agent_free(ag);
}

int snap_agent_sync(snap_agent *ag, int timeout_ms, snap_err *err)
{
    int rc = agent_sync_until(ag, snap_deadline_in(timeout_ms), NULL, NULL, err);
    return rc ? snap_err_context(err, "agent") : 0;
}

int snap_agent_ping(snap_agent *ag, int timeout_ms, snap_err *err)
{
    yajl_val doc;
    int rc = agent_exec(ag, "guest-ping", NULL, NULL, timeout_ms, &doc, err);
    yajl_tree_free(doc);
    return rc;
}

/*
 * Syncs in attempts of at most AGENT_WAIT_ATTEMPT_MS on one connection: an
 * agent that starts later reads the queued requests, and each attempt's new
 * id makes the older replies stale.
 */
static int agent_sync_retrying(snap_agent *ag, uint64_t deadline, snap_err *err)
{
    for (;;) {
        uint64_t attempt = snap_deadline_in(AGENT_WAIT_ATTEMPT_MS);
        int rc = agent_sync_until(ag, attempt < deadline ? attempt : deadline, NULL, NULL,
                                  err);
        if (rc != SNAP_ERROR_TIMEDOUT || snap_deadline_poll_ms(deadline) == 0)
            return rc;
    }
}

int snap_agent_open_wait(const char *path, int timeout_ms, xentoollog_logger *lg,
                         snap_agent **out, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    *out = NULL;
    for (;;) {
        snap_agent *ag = NULL;
        int rc = agent_connect(path, agent_time_left(deadline), lg, &ag, err);
        if (!rc)
            rc = agent_sync_retrying(ag, deadline, err);
        if (!rc) {
            *out = ag;
            return 0;
        }
        if (ag)
            agent_free(ag);
        int left = snap_deadline_poll_ms(deadline);
        if (left >= 0 && left < AGENT_WAIT_PAUSE_MS)
            return snap_err_context(err, "agent %s: no answer within %d ms", path,
                                    timeout_ms);
        usleep(AGENT_WAIT_PAUSE_MS * 1000); /* not there yet, or it hung up */
    }
}

int snap_agent_execute(snap_agent *ag, const char *cmd, snap_json_members_fn *args,
                       const void *opaque, yajl_val *ret_out, int timeout_ms,
                       snap_err *err)
{
    yajl_val doc;
    if (ret_out)
        *ret_out = NULL;
    int rc = agent_exec(ag, cmd, args, opaque, timeout_ms, &doc, err);
    if (rc)
        return rc;
    if (ret_out)
        *ret_out = agent_take_return(doc);
    else
        yajl_tree_free(doc);
    return 0;
}

int snap_agent_send(snap_agent *ag, const char *cmd, snap_json_members_fn *args,
                    const void *opaque, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    if (ag->need_sync && agent_sync_until(ag, deadline, NULL, NULL, err) != 0)
        return snap_err_context(err, "agent: %s: resync before the command failed", cmd);
    int rc = agent_send(ag, cmd, args, opaque, false, deadline, err);
    return rc ? snap_err_context(err, "agent") : 0;
}

int snap_agent_info_parse(yajl_val ret, snap_agent_info *out, snap_err *err)
{
    memset(out, 0, sizeof *out);
    const char *version = snap_json_get_string(ret, "version");
    yajl_val cmds = snap_json_get_array(ret, "supported_commands");
    if (!version || !cmds)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "agent: guest-info: no version or supported_commands");
    out->version = snap_xstrdup(version);
    out->commands = snap_xcalloc(snap_json_array_len(cmds) + 1, sizeof *out->commands);
    for (size_t i = 0; i < snap_json_array_len(cmds); i++) {
        yajl_val c = snap_json_array_at(cmds, i);
        const char *name = snap_json_get_string(c, "name");
        bool enabled = false;
        if (!name)
            continue;
        snap_json_get_bool(c, "enabled", &enabled);
        out->commands[out->n_commands].name = snap_xstrdup(name);
        out->commands[out->n_commands++].enabled = enabled;
    }
    return 0;
}

int snap_agent_get_info(snap_agent *ag, int timeout_ms, snap_agent_info *out,
                        snap_err *err)
{
    yajl_val doc;
    memset(out, 0, sizeof *out);
    int rc = agent_exec(ag, "guest-info", NULL, NULL, timeout_ms, &doc, err);
    if (rc)
        return rc;
    rc = snap_agent_info_parse(snap_json_get_object(doc, "return"), out, err);
    yajl_tree_free(doc);
    return rc;
}

void snap_agent_info_dispose(snap_agent_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->n_commands; i++)
        free(info->commands[i].name);
    free(info->commands);
    free(info->version);
    memset(info, 0, sizeof *info);
}

bool snap_agent_info_can(const snap_agent_info *info, const char *command)
{
    for (size_t i = 0; i < info->n_commands; i++)
        if (strcmp(info->commands[i].name, command) == 0)
            return info->commands[i].enabled;
    return false;
}

/* ------------------------------------------------------------ guest-get-fsinfo */

static char *fs_dup_member(yajl_val v, const char *key)
{
    const char *s = snap_json_get_string(v, key);
    return s ? snap_xstrdup(s) : NULL;
}

static int fs_int_member(yajl_val v, const char *key)
{
    long long n = -1;
    if (!snap_json_get_int(v, key, &n) || n < INT32_MIN || n > INT32_MAX)
        return -1;
    return (int)n;
}

static void parse_fs_disk(yajl_val v, snap_agent_fs_disk *d)
{
    yajl_val pci = snap_json_get_object(v, "pci-controller");
    d->bus_type = fs_dup_member(v, "bus-type");
    d->dev = fs_dup_member(v, "dev");
    d->serial = fs_dup_member(v, "serial");
    d->pci_domain = fs_int_member(pci, "domain");
    d->pci_bus = fs_int_member(pci, "bus");
    d->pci_slot = fs_int_member(pci, "slot");
    d->pci_function = fs_int_member(pci, "function");
    d->bus = fs_int_member(v, "bus");
    d->target = fs_int_member(v, "target");
    d->unit = fs_int_member(v, "unit");
}

static int parse_fs(yajl_val v, snap_agent_fs *fs, snap_err *err)
{
    fs->name = fs_dup_member(v, "name");
    fs->mountpoint = fs_dup_member(v, "mountpoint");
    fs->type = fs_dup_member(v, "type");
    if (!fs->name || !fs->mountpoint || !fs->type)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "agent: guest-get-fsinfo: a filesystem without name, "
                            "mountpoint or type");
    yajl_val disks = snap_json_get_array(v, "disk");
    size_t n = snap_json_array_len(disks);
    fs->disks = snap_xcalloc(n + 1, sizeof *fs->disks);
    for (size_t i = 0; i < n; i++)
        parse_fs_disk(snap_json_array_at(disks, i), &fs->disks[fs->n_disks++]);
    return 0;
}

int snap_agent_fsinfo_parse(yajl_val list, snap_agent_fs **fs_out, size_t *n_out,
                            snap_err *err)
{
    int rc = 0;
    *fs_out = NULL;
    *n_out = 0;
    if (!YAJL_IS_ARRAY(list))
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "agent: guest-get-fsinfo: return is not a list");
    size_t n = snap_json_array_len(list);
    snap_agent_fs *fs = snap_xcalloc(n + 1, sizeof *fs);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = parse_fs(snap_json_array_at(list, i), &fs[i], err);
    if (rc) {
        snap_agent_fsinfo_free(fs, n);
        return rc;
    }
    *fs_out = fs;
    *n_out = n;
    return 0;
}

int snap_agent_get_fsinfo(snap_agent *ag, int timeout_ms, snap_agent_fs **fs_out,
                          size_t *n_out, snap_err *err)
{
    yajl_val list;
    *fs_out = NULL;
    *n_out = 0;
    int rc =
        snap_agent_execute(ag, "guest-get-fsinfo", NULL, NULL, &list, timeout_ms, err);
    if (rc)
        return rc;
    rc = snap_agent_fsinfo_parse(list, fs_out, n_out, err);
    yajl_tree_free(list);
    return rc;
}

void snap_agent_fsinfo_free(snap_agent_fs *fs, size_t n)
{
    if (!fs)
        return;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < fs[i].n_disks; j++) {
            free(fs[i].disks[j].bus_type);
            free(fs[i].disks[j].dev);
            free(fs[i].disks[j].serial);
        }
        free(fs[i].disks);
        free(fs[i].name);
        free(fs[i].mountpoint);
        free(fs[i].type);
    }
    free(fs);
}

const char *snap_agent_fs_state_name(snap_agent_fs_state state)
{
    switch (state) {
    case SNAP_AGENT_THAWED: return "thawed";
    case SNAP_AGENT_FROZEN: return "frozen";
    case SNAP_AGENT_UNKNOWN: break;
    }
    return "unknown";
}

int snap_agent_fsfreeze_status(snap_agent *ag, int timeout_ms, snap_agent_fs_state *out,
                               snap_err *err)
{
    yajl_val doc;
    *out = SNAP_AGENT_UNKNOWN;
    int rc = agent_exec(ag, "guest-fsfreeze-status", NULL, NULL, timeout_ms, &doc, err);
    if (rc)
        return rc;
    const char *s = snap_json_get_string(doc, "return");
    if (s && strcmp(s, "thawed") == 0)
        *out = SNAP_AGENT_THAWED;
    else if (s && strcmp(s, "frozen") == 0)
        *out = SNAP_AGENT_FROZEN;
    else
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL,
                          "agent: guest-fsfreeze-status: unexpected status %s",
                          s ? s : "(not a string)");
    yajl_tree_free(doc);
    return rc;
}

struct agent_mountpoints {
    const char *const *v;
    size_t n;
};

static void agent_mountpoints_args(yajl_gen g, const void *opaque)
{
    const struct agent_mountpoints *mp = opaque;
    snap_json_kv_strv(g, "mountpoints", mp->v, mp->n);
}

int snap_agent_fsfreeze_freeze(snap_agent *ag, const char *const *mountpoints, size_t n,
                               int timeout_ms, int *count_out, snap_err *err)
{
    struct agent_mountpoints mp = {mountpoints, n};
    if (mountpoints)
        return agent_exec_int(ag, "guest-fsfreeze-freeze-list", agent_mountpoints_args,
                              &mp, timeout_ms, count_out, err);
    return agent_exec_int(ag, "guest-fsfreeze-freeze", NULL, NULL, timeout_ms, count_out,
                          err);
}

int snap_agent_fsfreeze_thaw(snap_agent *ag, int timeout_ms, int *count_out,
                             snap_err *err)
{
    return agent_exec_int(ag, "guest-fsfreeze-thaw", NULL, NULL, timeout_ms, count_out,
                          err);
}

/* ------------------------------------------------------------ safe freeze/thaw */

static void agent_story_add(snap_agent_freeze_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void agent_story_add(snap_agent_freeze_result *res, const char *fmt, ...)
{
    size_t used = strlen(res->message);
    va_list ap;
    /* Items are "; "-separated, except right after "recovery: ". */
    if (used >= 2 && strcmp(res->message + used - 2, ": ") != 0 &&
        used + 3 < sizeof res->message) {
        memcpy(res->message + used, "; ", 3);
        used += 2;
    }
    if (used + 1 >= sizeof res->message)
        return;
    va_start(ap, fmt);
    vsnprintf(res->message + used, sizeof res->message - used, fmt, ap);
    va_end(ap);
}

static void agent_result_init(snap_agent_freeze_result *res)
{
    memset(res, 0, sizeof *res);
    res->state = SNAP_AGENT_UNKNOWN;
    res->frozen = res->thawed = -1;
}

/* While resyncing: the late reply of the command that timed out. */
struct agent_late {
    int *count;
    snap_agent_freeze_result *res;
};

static void agent_note_late_reply(void *opaque, const char *line)
{
    struct agent_late *late = opaque;
    snap_err ignored;
    yajl_val doc = snap_json_parse(line, "late reply", &ignored);
    long long n = 0;
    yajl_val error = snap_json_get_object(doc, "error");
    const char *desc = snap_json_get_string(error, "desc");
    if (snap_json_get_int(doc, "return", &n) && n >= 0 && n <= INT32_MAX) {
        *late->count = (int)n;
        agent_story_add(late->res, "late reply %lld", n);
    } else if (desc && strncmp(desc, "JSON parse error", 16) != 0) {
        /* Not the throw-away reply to our 0xFF: the late command failed. */
        agent_story_add(late->res, "late reply: %s", desc);
    }
    yajl_tree_free(doc);
}

/*
 * The agent did not answer: queue a thaw anyway, so that an agent stuck in a
 * slow freeze thaws as soon as it gets to it.
 */
static void agent_queue_thaw(snap_agent *ag, snap_agent_freeze_result *res)
{
    snap_err ignored;
    if (ag->s.fd < 0)
        return;
    if (agent_send(ag, "guest-fsfreeze-thaw", NULL, NULL, false, snap_deadline_in(200),
                   &ignored) != 0)
        return;
    res->thaw_sent = true;
    ag->need_sync = true;
    agent_story_add(res, "a thaw was queued");
}

/* Status, and a thaw when frozen; leaves res->state what the agent last said. */
static void agent_status_and_thaw(snap_agent *ag, uint64_t deadline,
                                  snap_agent_freeze_result *res)
{
    snap_err e;
    snap_agent_fs_state st;
    if (snap_agent_fsfreeze_status(ag, agent_time_left(deadline), &st, &e) != 0) {
        agent_story_add(res, "%s", e.msg);
        return;
    }
    agent_story_add(res, "status %s", snap_agent_fs_state_name(st));
    res->state = st;
    if (st != SNAP_AGENT_FROZEN)
        return;
    int count = 0;
    res->thaw_sent = true;
    res->state = SNAP_AGENT_UNKNOWN;
    if (snap_agent_fsfreeze_thaw(ag, agent_time_left(deadline), &count, &e) != 0) {
        agent_story_add(res, "%s", e.msg);
        return;
    }
    res->thawed = count;
    agent_story_add(res, "thawed %d", count);
    if (snap_agent_fsfreeze_status(ag, agent_time_left(deadline), &st, &e) != 0) {
        agent_story_add(res, "%s", e.msg);
        return;
    }
    agent_story_add(res, "status %s", snap_agent_fs_state_name(st));
    res->state = st;
}

/*
 * After a failed freeze or thaw (cause in err): resync (noting a late reply
 * into *late_count), poll status, thaw if frozen; report what the guest was
 * left in.
 */
static int agent_recover(snap_agent *ag, int cause, int *late_count, int recovery_ms,
                         snap_agent_freeze_result *res, snap_err *err)
{
    uint64_t deadline =
        snap_deadline_in(recovery_ms > 0 ? recovery_ms : AGENT_DEFAULT_RECOVERY_MS);
    snprintf(res->message, sizeof res->message, "%.1536s; recovery: ", err->msg);
    res->state = SNAP_AGENT_UNKNOWN;
    if (ag->need_sync) {
        struct agent_late late = {late_count, res};
        snap_err e;
        if (agent_sync_until(ag, deadline, agent_note_late_reply, &late, &e) != 0) {
            agent_story_add(res, "%s", e.msg);
            if (e.code != SNAP_ERROR_CLOSED)
                agent_queue_thaw(ag, res);
            goto done;
        }
        agent_story_add(res, "resynced");
    } else {
        agent_story_add(res, "still in step");
    }
    agent_status_and_thaw(ag, deadline, res);
done:
    if (res->state == SNAP_AGENT_THAWED) {
        agent_story_add(res, "result: the guest is thawed");
        return snap_err_set(err, cause, "%s", res->message);
    }
    agent_story_add(res, "result: the guest's filesystems may still be frozen (state %s)",
                    snap_agent_fs_state_name(res->state));
    return snap_err_set(err, SNAP_ERROR_GUEST_FROZEN, "%s", res->message);
}

int snap_agent_freeze(snap_agent *ag, const char *const *mountpoints, size_t n,
                      int timeout_ms, int recovery_ms, snap_agent_freeze_result *res,
                      snap_err *err)
{
    int count = 0;
    agent_result_init(res);
    int rc = snap_agent_fsfreeze_freeze(ag, mountpoints, n, timeout_ms, &count, err);
    if (rc)
        return agent_recover(ag, rc, &res->frozen, recovery_ms, res, err);
    res->frozen = count;
    res->state = count > 0 ? SNAP_AGENT_FROZEN : SNAP_AGENT_THAWED;
    snprintf(res->message, sizeof res->message, "froze %d filesystem%s%s", count,
             count == 1 ? "" : "s", count ? "" : " (nothing to freeze)");
    return 0;
}

int snap_agent_thaw(snap_agent *ag, int timeout_ms, int recovery_ms,
                    snap_agent_freeze_result *res, snap_err *err)
{
    int count = 0;
    agent_result_init(res);
    res->thaw_sent = true;
    int rc = snap_agent_fsfreeze_thaw(ag, timeout_ms, &count, err);
    if (rc) {
        rc = agent_recover(ag, rc, &res->thawed, recovery_ms, res, err);
        /* The goal is a thawed guest: reached, even if the first reply was lost. */
        if (res->state == SNAP_AGENT_THAWED) {
            snap_err_clear(err);
            return 0;
        }
        return rc;
    }
    res->thawed = count;
    res->state = SNAP_AGENT_THAWED;
    snprintf(res->message, sizeof res->message, "thawed %d filesystem%s", count,
             count == 1 ? "" : "s");
    return 0;
}
