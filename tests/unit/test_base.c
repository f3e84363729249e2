/* Tests of libsnap's base: errors with context, the line stream, JSON. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "snap_json.h"
#include "snap_stream.h"
#include "th.h"

static void test_error_context_grows_outward(void)
{
    snap_err err;
    snap_err_clear(&err);
    CHECK_INT(snap_err_set(&err, SNAP_ERROR_PEER, "GenericError: %s", "boom"),
              SNAP_ERROR_PEER);
    snap_err_context(&err, "QMP transaction");
    snap_err_context(&err, "disk %s", "xvda");
    CHECK_STR(err.msg, "disk xvda: QMP transaction: GenericError: boom");
    CHECK_INT(err.code, SNAP_ERROR_PEER);
    snap_err_errno(&err, SNAP_ERROR_IO, ENOENT, "open %s", "/x");
    CHECK_STR(err.msg, "open /x: No such file or directory");
    CHECK_STR(snap_strerror(SNAP_ERROR_TIMEDOUT), "timed out");
}

/*
 * A failure followed by a failed rollback: both clauses, the first never
 * lost (the message once read "failed: ; and then rolling back ...", as the
 * first clause was formatted into the buffer it was read from).
 */
static void test_error_append_keeps_both_clauses(void)
{
    snap_err err, rerr;
    snap_err_set(&err, SNAP_ERROR_CLOSED, "QEMU closed the connection");
    snap_err_context(&err, "domain d1");
    snap_err_set(&rerr, SNAP_ERROR_IO, "rolling back snapshot 's1': disk xvda: gone");
    CHECK_INT(snap_err_append(&err, "; and then %s", rerr.msg), SNAP_ERROR_CLOSED);
    CHECK_STR(err.msg, "domain d1: QEMU closed the connection; and then rolling back "
                       "snapshot 's1': disk xvda: gone");
    /* A message used as its own argument is read before it is overwritten. */
    snap_err_set(&err, SNAP_ERROR_PEER, "first");
    snap_err_set(&err, SNAP_ERROR_PEER, "%s, second", err.msg);
    CHECK_STR(err.msg, "first, second");
    snap_err_context(&err, "%s again", err.msg);
    CHECK_STR(err.msg, "first, second again: first, second");
}

/* No path leaves an empty message: the code's words stand in for it. */
static void test_error_never_empty(void)
{
    snap_err err;
    snap_err_clear(&err);
    snap_err_set(&err, SNAP_ERROR_CLOSED, "%s", "");
    CHECK_STR(err.msg, "connection closed");
    snap_err_clear(&err);
    err.code = SNAP_ERROR_TIMEDOUT; /* a code set without words */
    snap_err_context(&err, "domain d1");
    CHECK_STR(err.msg, "domain d1: timed out");
    snap_err_clear(&err);
    snap_err_append(&err, "; and then %s", "rollback failed");
    CHECK_STR(err.msg, "failed; and then rollback failed");
}

static void test_deadlines(void)
{
    CHECK_INT(snap_deadline_poll_ms(SNAP_DEADLINE_NEVER), -1);
    CHECK_INT(snap_deadline_poll_ms(snap_now_ms() - 1), 0);
    int left = snap_deadline_poll_ms(snap_deadline_in(5000));
    CHECK(left > 4000 && left <= 5000);
}

/* A socketpair with one end wrapped in a stream. */
static int make_pair(snap_stream *s, size_t max_line)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return -1;
    snap_stream_init(s, sv[0], "test peer", max_line);
    return sv[1];
}

static void test_stream_lines_split_and_joined(void)
{
    snap_stream s;
    snap_err err;
    int peer = make_pair(&s, 1024);
    REQUIRE(peer >= 0);
    CHECK(write(peer, "one\r\ntw", 7) == 7);
    char *line = NULL;
    size_t len = 0;
    CHECK_INT(snap_stream_read_line(&s, &line, &len, snap_deadline_in(1000), &err), 0);
    CHECK_STR(line, "one");
    CHECK_INT(len, 3);
    free(line);
    /* Half a line, then a timeout that loses nothing. */
    CHECK_INT(snap_stream_read_line(&s, &line, &len, snap_deadline_in(50), &err),
              SNAP_ERROR_TIMEDOUT);
    CHECK_CONTAINS(err.msg, "test peer did not answer");
    CHECK(write(peer, "o\nthree\n", 8) == 8);
    CHECK_INT(snap_stream_read_line(&s, &line, &len, snap_deadline_in(1000), &err), 0);
    CHECK_STR(line, "two");
    free(line);
    CHECK(snap_stream_has_line(&s));
    CHECK_INT(snap_stream_read_line(&s, &line, &len, snap_deadline_in(1000), &err), 0);
    CHECK_STR(line, "three");
    free(line);
    close(peer);
    CHECK_INT(snap_stream_read_line(&s, &line, &len, snap_deadline_in(1000), &err),
              SNAP_ERROR_CLOSED);
    snap_stream_close(&s);
}

static void test_stream_rejects_oversize_line(void)
{
    snap_stream s;
    snap_err err;
    int peer = make_pair(&s, 100);
    REQUIRE(peer >= 0);
    char big[300];
    memset(big, 'x', sizeof big);
    CHECK(write(peer, big, sizeof big) == (ssize_t)sizeof big);
    char *line = NULL;
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, snap_deadline_in(1000), &err),
              SNAP_ERROR_PROTOCOL);
    CHECK(line == NULL);
    CHECK_CONTAINS(err.msg, "longer than 100 bytes");
    /* The rest of the long line is skipped; the lines after it survive. */
    CHECK(write(peer, "tail\nnext\nlast\n", 15) == 15);
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, snap_deadline_in(1000), &err), 0);
    CHECK_STR(line, "next");
    free(line);
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, snap_deadline_in(1000), &err), 0);
    CHECK_STR(line, "last");
    free(line);
    close(peer);
    snap_stream_close(&s);
}

static void test_json_roundtrip_keeps_numbers(void)
{
    snap_err err;
    yajl_val v = snap_json_parse("{\"a\": [1, 2.50, \"x\"], \"b\": true, \"n\": -7}",
                                 "test", &err);
    REQUIRE(v);
    long long n = 0;
    bool b = false;
    CHECK(snap_json_get_int(v, "n", &n) && n == -7);
    CHECK(snap_json_get_bool(v, "b", &b) && b);
    CHECK_INT(snap_json_array_len(snap_json_get_array(v, "a")), 3);
    CHECK(snap_json_get_string(v, "a") == NULL);
    yajl_gen g = snap_json_gen_new(false);
    snap_json_tree(g, v);
    char *text = snap_json_gen_finish(g, NULL);
    CHECK_STR(text, "{\"a\":[1,2.50,\"x\"],\"b\":true,\"n\":-7}");
    free(text);
    yajl_tree_free(v);
    CHECK(snap_json_parse("{\"a\":", "qemu-img info", &err) == NULL);
    CHECK_CONTAINS(err.msg, "qemu-img info: invalid JSON");
    CHECK_INT(err.code, SNAP_ERROR_PROTOCOL);
}

/* Arrays of strings: empty, NULL members, escaping. */
static void test_json_string_vectors(void)
{
    const char *v[] = {"xvda", NULL, "a\"b"};
    yajl_gen g = snap_json_gen_new(false);
    yajl_gen_map_open(g);
    snap_json_kv_strv(g, "none", NULL, 0);
    snap_json_kv_strv(g, "some", v, 3);
    yajl_gen_map_close(g);
    char *text = snap_json_gen_finish(g, NULL);
    CHECK_STR(text, "{\"none\":[],\"some\":[\"xvda\",null,\"a\\\"b\"]}");
    free(text);
}

int main(void)
{
    th_plan(8);
    TH_RUN(test_error_context_grows_outward);
    TH_RUN(test_error_append_keeps_both_clauses);
    TH_RUN(test_error_never_empty);
    TH_RUN(test_deadlines);
    TH_RUN(test_stream_lines_split_and_joined);
    TH_RUN(test_stream_rejects_oversize_line);
    TH_RUN(test_json_roundtrip_keeps_numbers);
    TH_RUN(test_json_string_vectors);
    return th_finish();
}
