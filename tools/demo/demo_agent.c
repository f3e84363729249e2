/*
 * xlsnap-demo-agent — the demo's window into the guest, through qemu-ga.
 *
 *   xlsnap-demo-agent wait SOCKET SECONDS   wait until the agent answers guest-sync
 *   xlsnap-demo-agent sh SOCKET 'COMMAND'   run /bin/sh -c COMMAND in the guest, print
 *                                           its output, exit with its exit code
 *
 * Exit 0 ok, 1 failure (message on stderr), 2 usage; `sh` returns the guest
 * command's own code. The demo needs this because a fresh Debian machine has
 * no tool that speaks qemu-ga's protocol on a unix socket. Never point it at
 * the host's own qemu-ga: it only runs what it is given, but the demo's guest
 * is the only place it belongs.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_base.h"
#include "snap_json.h"
#include "snap_stream.h"

#define MAX_LINE     (4u << 20)
#define EXEC_WAIT_MS 30000

typedef void args_fn(yajl_gen g, const void *opaque);

static char *request_line(const char *cmd, args_fn *args, const void *opaque)
{
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "execute", cmd);
    if (args) {
        snap_json_key(g, "arguments");
        yajl_gen_map_open(g);
        args(g, opaque);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    char *text = snap_json_gen_finish(g, NULL);
    char *line = snap_xasprintf("%s\n", text);
    free(text);
    return line;
}

/*
 * Sends cmd and returns its parsed reply: the one whose "return" is sync_id
 * when sync_id >= 0 (stale replies are skipped), else the first reply.
 */
static yajl_val roundtrip(snap_stream *s, const char *cmd, args_fn *args,
                          const void *opaque, long long sync_id, int timeout_ms,
                          snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    char *req = request_line(cmd, args, opaque);
    int rc = snap_stream_write_all(s, req, strlen(req), deadline, err);
    free(req);
    while (rc == 0) {
        char *line = NULL;
        size_t len;
        if (snap_stream_read_line(s, &line, &len, deadline, err) != 0)
            return NULL;
        char *start = strchr(line, '{'); /* skips guest-sync-delimited's 0xFF */
        yajl_val reply = start ? snap_json_parse(start, "agent reply", err) : NULL;
        free(line);
        long long id;
        if (reply &&
            (sync_id < 0 || (snap_json_get_int(reply, "return", &id) && id == sync_id)))
            return reply;
        yajl_tree_free(reply);
    }
    return NULL;
}

/* The reply's "return", or NULL with the agent's error description in err. */
static yajl_val reply_return(yajl_val reply, const char *cmd, snap_err *err)
{
    yajl_val ret = snap_json_get(reply, "return");
    if (!ret) {
        const char *desc = snap_json_get_string(snap_json_get(reply, "error"), "desc");
        snap_err_set(err, SNAP_ERROR_PEER, "%s: %s", cmd, desc ? desc : "no return");
    }
    return ret;
}

static void sync_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_int(g, "id", *(const long long *)opaque);
}

/* Connects and retries guest-sync until the agent answers or time runs out. */
static int agent_wait(const char *path, int timeout_ms, snap_stream *s, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    for (long long id = (long long)getpid() * 1000;; id++) {
        int fd;
        if (snap_unix_connect(path, 1000, &fd, err) == 0) {
            snap_stream_init(s, fd, path, MAX_LINE);
            yajl_val r = roundtrip(s, "guest-sync", sync_args, &id, id, 1000, err);
            if (r) {
                yajl_tree_free(r);
                return 0;
            }
            snap_stream_close(s);
        }
        if (snap_deadline_poll_ms(deadline) == 0)
            break;
        usleep(200 * 1000);
    }
    return snap_err_context(err, "agent %s: no answer in %d ms", path, timeout_ms);
}

/* Decodes base64 (qemu-ga's output encoding); malloc'd, NUL-terminated. */
static char *base64_decode(const char *in, size_t *len_out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = snap_xmalloc(strlen(in) / 4 * 3 + 4);
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *pos = strchr(alphabet, *p);
        if (!pos)
            continue;
        acc = (acc << 6) | (unsigned)(pos - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    *len_out = n;
    return out;
}

static void exec_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "path", "/bin/sh");
    snap_json_key(g, "arg");
    yajl_gen_array_open(g);
    snap_json_str(g, "-c");
    snap_json_str(g, (const char *)opaque);
    yajl_gen_array_close(g);
    snap_json_kv_bool(g, "capture-output", true);
}

static void pid_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_int(g, "pid", *(const long long *)opaque);
}

/* Writes the base64 field key of status (if any) to out. */
static void print_b64(yajl_val status, const char *key, FILE *out)
{
    const char *b64 = snap_json_get_string(status, key);
    if (!b64)
        return;
    size_t n;
    char *data = base64_decode(b64, &n);
    fwrite(data, 1, n, out);
    free(data);
}

/* Runs command in the guest; returns its exit code, or -1 with err set. */
static int agent_sh(snap_stream *s, const char *command, snap_err *err)
{
    yajl_val r = roundtrip(s, "guest-exec", exec_args, command, -1, 10000, err);
    yajl_val ret = r ? reply_return(r, "guest-exec", err) : NULL;
    long long pid;
    bool have_pid = ret && snap_json_get_int(ret, "pid", &pid);
    if (ret && !have_pid)
        snap_err_set(err, SNAP_ERROR_PROTOCOL, "guest-exec: reply without a pid");
    yajl_tree_free(r);
    if (!have_pid)
        return -1;
    uint64_t deadline = snap_deadline_in(EXEC_WAIT_MS);
    while (snap_deadline_poll_ms(deadline) != 0) {
        r = roundtrip(s, "guest-exec-status", pid_args, &pid, -1, 10000, err);
        ret = r ? reply_return(r, "guest-exec-status", err) : NULL;
        bool exited = false;
        long long code = -1;
        if (ret && snap_json_get_bool(ret, "exited", &exited) && exited) {
            print_b64(ret, "out-data", stdout);
            print_b64(ret, "err-data", stderr);
            snap_json_get_int(ret, "exitcode", &code);
        }
        yajl_tree_free(r);
        if (!ret)
            return -1;
        if (exited)
            return (int)code;
        usleep(50 * 1000);
    }
    snap_err_set(err, SNAP_ERROR_TIMEDOUT, "guest command did not finish in %d ms: %s",
                 EXEC_WAIT_MS, command);
    return -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: xlsnap-demo-agent wait SOCKET SECONDS\n"
                    "       xlsnap-demo-agent sh SOCKET COMMAND\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return usage();
    bool wait_only = strcmp(argv[1], "wait") == 0;
    if (!wait_only && strcmp(argv[1], "sh") != 0)
        return usage();
    int timeout_ms = wait_only ? atoi(argv[3]) * 1000 : 10000;
    snap_stream s;
    snap_err err = {0};
    if (agent_wait(argv[2], timeout_ms, &s, &err) != 0) {
        fprintf(stderr, "xlsnap-demo-agent: %s\n", err.msg);
        return 1;
    }
    int rc = wait_only ? 0 : agent_sh(&s, argv[3], &err);
    snap_stream_close(&s);
    if (rc < 0) {
        fprintf(stderr, "xlsnap-demo-agent: %s\n", err.msg);
        return 1;
    }
    return rc;
}
