/*
 * Looking inside a guest through its agent: guest-exec and guest-file-read
 * (guest-get-fsinfo is libsnap's own, snap_agent.h). For the tests and the
 * demo, which check what a guest sees; libsnap itself never runs anything in
 * a guest. Built on libsnap's agent client (snap_agent_execute), so resync
 * and timeouts are its rules.
 */
#include "qga_guest.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_json.h"

/* What is left of deadline for the next call (5 s when there is none). */
static int time_left(uint64_t deadline)
{
    int left = snap_deadline_poll_ms(deadline);
    return left < 0 ? 5000 : left;
}

/* ------------------------------------------------------------ inside the guest */

/* Decodes qemu-ga's base64 (whitespace tolerated); false on any other byte. */
static bool base64_decode(const char *in, char **out, size_t *len_out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *buf = snap_xmalloc(strlen(in) / 4 * 3 + 4);
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *pos = strchr(alphabet, *p);
        if (*p == '\n' || *p == '\r')
            continue;
        if (!pos) {
            free(buf);
            return false;
        }
        acc = (acc << 6) | (unsigned)(pos - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len_out = n;
    return true;
}

/* Decodes the base64 member key of v (absent: empty) into *out. */
static int b64_member(yajl_val v, const char *key, const char *cmd, char **out,
                      size_t *len_out, snap_err *err)
{
    const char *b64 = snap_json_get_string(v, key);
    if (!base64_decode(b64 ? b64 : "", out, len_out))
        return snap_err_set(err, SNAP_ERROR_PROTOCOL, "agent: %s: %s is not base64", cmd,
                            key);
    return 0;
}

static void exec_args(yajl_gen g, const void *opaque)
{
    const char *const *argv = opaque;
    snap_json_kv_str(g, "path", argv[0]);
    snap_json_key(g, "arg");
    yajl_gen_array_open(g);
    for (size_t i = 1; argv[i]; i++)
        snap_json_str(g, argv[i]);
    yajl_gen_array_close(g);
    snap_json_kv_bool(g, "capture-output", true);
}

static void pid_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_int(g, "pid", *(const long long *)opaque);
}

/* Fills res from a guest-exec-status reply that says exited. */
static int exec_finished(yajl_val st, qga_exec_result *res, snap_err *err)
{
    long long code = -1, sig = 0;
    snap_json_get_int(st, "exitcode", &code);
    snap_json_get_int(st, "signal", &sig);
    res->exitcode = sig ? -1 : (int)code;
    res->signal = (int)sig;
    bool cut_out = false, cut_err = false;
    snap_json_get_bool(st, "out-truncated", &cut_out);
    snap_json_get_bool(st, "err-truncated", &cut_err);
    res->truncated = cut_out || cut_err;
    int rc =
        b64_member(st, "out-data", "guest-exec-status", &res->out, &res->out_len, err);
    if (!rc)
        rc = b64_member(st, "err-data", "guest-exec-status", &res->err, &res->err_len,
                        err);
    return rc;
}

int qga_guest_exec(snap_agent *ag, const char *const argv[], int timeout_ms,
                   qga_exec_result *res, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    yajl_val ret = NULL;
    long long pid = 0;
    memset(res, 0, sizeof *res);
    res->exitcode = -1;
    int rc = snap_agent_execute(ag, "guest-exec", exec_args, argv, &ret, timeout_ms, err);
    if (!rc && !snap_json_get_int(ret, "pid", &pid))
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL, "agent: guest-exec: no pid");
    yajl_tree_free(ret);
    while (!rc) {
        bool exited = false;
        rc = snap_agent_execute(ag, "guest-exec-status", pid_args, &pid, &ret,
                                time_left(deadline), err);
        if (!rc && snap_json_get_bool(ret, "exited", &exited) && exited) {
            rc = exec_finished(ret, res, err);
            yajl_tree_free(ret);
            break;
        }
        yajl_tree_free(ret);
        if (!rc && snap_deadline_poll_ms(deadline) == 0)
            rc = snap_err_set(err, SNAP_ERROR_TIMEDOUT,
                              "agent: guest-exec %s: still running after %d ms", argv[0],
                              timeout_ms);
        if (!rc)
            usleep(20 * 1000);
    }
    if (rc) {
        qga_exec_result_dispose(res);
        return snap_err_context(err, "running %s in the guest", argv[0]);
    }
    return 0;
}

void qga_exec_result_dispose(qga_exec_result *res)
{
    if (!res)
        return;
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof *res);
    res->exitcode = -1;
}

struct guest_file {
    const char *path;
    long long handle;
};

static void file_open_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "path", ((const struct guest_file *)opaque)->path);
    snap_json_kv_str(g, "mode", "r");
}

static void file_handle_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_int(g, "handle", ((const struct guest_file *)opaque)->handle);
}

static void file_read_args(yajl_gen g, const void *opaque)
{
    file_handle_args(g, opaque);
    snap_json_kv_int(g, "count", 1 << 20);
}

/* guest-file-read until EOF, appending to *data. */
static int read_chunks(snap_agent *ag, const struct guest_file *f, size_t max_bytes,
                       uint64_t deadline, char **data, size_t *len, snap_err *err)
{
    for (;;) {
        yajl_val ret = NULL;
        char *chunk = NULL;
        size_t n = 0;
        bool eof = false;
        int rc = snap_agent_execute(ag, "guest-file-read", file_read_args, f, &ret,
                                    time_left(deadline), err);
        if (!rc)
            rc = b64_member(ret, "buf-b64", "guest-file-read", &chunk, &n, err);
        snap_json_get_bool(ret, "eof", &eof);
        yajl_tree_free(ret);
        if (!rc && *len + n > max_bytes)
            rc = snap_err_set(err, SNAP_ERROR_PROTOCOL, "longer than %zu bytes",
                              max_bytes);
        if (rc) {
            free(chunk);
            return rc;
        }
        *data = snap_xrealloc(*data, *len + n + 1);
        memcpy(*data + *len, chunk, n + 1);
        *len += n;
        free(chunk);
        if (eof || n == 0)
            return 0;
    }
}

int qga_read_file(snap_agent *ag, const char *path, size_t max_bytes, int timeout_ms,
                  char **data_out, size_t *len_out, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    struct guest_file f = {path, 0};
    yajl_val ret = NULL;
    char *data = snap_xstrdup("");
    size_t len = 0;
    *data_out = NULL;
    int rc = snap_agent_execute(ag, "guest-file-open", file_open_args, &f, &ret,
                                timeout_ms, err);
    if (!rc && !YAJL_IS_INTEGER(ret))
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL, "agent: guest-file-open: no handle");
    if (!rc) {
        f.handle = YAJL_GET_INTEGER(ret);
        rc = read_chunks(ag, &f, max_bytes, deadline, &data, &len, err);
        snap_err close_err;
        int close_rc = snap_agent_execute(ag, "guest-file-close", file_handle_args, &f,
                                          NULL, time_left(deadline), &close_err);
        if (!rc && close_rc)
            rc = snap_err_set(err, close_rc, "%s", close_err.msg);
    }
    yajl_tree_free(ret);
    if (rc) {
        free(data);
        return snap_err_context(err, "reading %s in the guest", path);
    }
    *data_out = data;
    if (len_out)
        *len_out = len;
    return 0;
}
