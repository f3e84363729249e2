/* Tests of the guest-agent client (snap_agent) and of the fake peer it is tested against.
 */
#include <stdlib.h>
#include <unistd.h>

#include "fake_peer.h"
#include "snap_json.h"
#include "snap_stream.h"
#include "th.h"

/* Connects a plain line stream to a fake peer's socket. */
static bool connect_stream(snap_stream *s, const char *path)
{
    snap_err err;
    int fd = -1;
    if (snap_unix_connect(path, 1000, &fd, &err) != 0) {
        th_note("connect: %s", err.msg);
        return false;
    }
    snap_stream_init(s, fd, "fake peer", 1 << 20);
    return true;
}

static void test_fake_peer_echoes_captured_ids(void)
{
    static const fake_step script[] = {
        FP_SEND("{\"greeting\": 1}\n"),
        FP_EXPECT("\"execute\":\"ping\""),
        FP_SEND("{\"return\": {}, \"id\": %ID%}\n"),
        FP_EXPECT("guest-sync-delimited"),
        FP_SEND("\xff{\"return\": %ID%}\n"),
    };
    const char *path = th_path("peer-echo.sock");
    fake_peer *fp = fake_peer_start(path, script, FP_N(script));
    REQUIRE(fp);
    snap_stream s;
    snap_err err;
    char *line = NULL;
    REQUIRE(connect_stream(&s, path));
    uint64_t dl = snap_deadline_in(2000);
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, dl, &err), 0);
    CHECK_STR(line, "{\"greeting\": 1}");
    free(line);
    const char *req = "{\"execute\":\"ping\",\"id\":\"req-7\"}\n";
    CHECK_INT(snap_stream_write_all(&s, req, strlen(req), dl, &err), 0);
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, dl, &err), 0);
    CHECK_STR(line, "{\"return\": {}, \"id\": \"req-7\"}");
    free(line);
    const char *sync =
        "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":4242}}\n";
    CHECK_INT(snap_stream_write_all(&s, sync, strlen(sync), dl, &err), 0);
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, dl, &err), 0);
    CHECK_STR(line, "\xff{\"return\": 4242}");
    free(line);
    CHECK(fake_peer_wait(fp, 2000));
    CHECK_INT(fake_peer_steps_done(fp), FP_N(script));
    CHECK_INT(fake_peer_n_received(fp), 2);
    CHECK_INT(fake_peer_count_received(fp, "guest-sync-delimited"), 1);
    CHECK_INT(fake_peer_connections(fp), 1);
    snap_stream_close(&s);
    fake_peer_free(fp);
}

static void test_fake_peer_reports_mismatch_and_stops_promptly(void)
{
    static const fake_step script[] = {
        FP_EXPECT("guest-ping"),
        FP_SEND("never sent\n"),
    };
    const char *path = th_path("peer-mismatch.sock");
    fake_peer *fp = fake_peer_start(path, script, FP_N(script));
    REQUIRE(fp);
    snap_stream s;
    snap_err err;
    REQUIRE(connect_stream(&s, path));
    CHECK_INT(snap_stream_write_all(&s, "{\"execute\":\"guest-info\"}\n", 25,
                                    snap_deadline_in(1000), &err),
              0);
    CHECK(!fake_peer_wait(fp, 2000));
    CHECK_CONTAINS(fake_peer_error(fp), "expected a line containing \"guest-ping\"");
    CHECK_INT(fake_peer_steps_done(fp), 0);
    /* The failed peer closed the connection: the client sees EOF. */
    char *line = NULL;
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, snap_deadline_in(2000), &err),
              SNAP_ERROR_CLOSED);
    free(line);
    snap_stream_close(&s);
    fake_peer_free(fp);

    /* A peer hanging forever (and one nobody connected to) stops at once. */
    static const fake_step hang[] = {FP_SLEEP(-1)};
    fp = fake_peer_start(path, hang, FP_N(hang));
    REQUIRE(fp);
    REQUIRE(connect_stream(&s, path));
    uint64_t t0 = snap_now_ms();
    CHECK(!fake_peer_wait(fp, 50));
    fake_peer_free(fp);
    fp = fake_peer_start(path, hang, FP_N(hang));
    REQUIRE(fp);
    fake_peer_free(fp);
    CHECK(snap_now_ms() - t0 < 1000);
    CHECK(access(path, F_OK) != 0);
    snap_stream_close(&s);
}

static void test_fake_peer_cuts_lines_and_accepts_again(void)
{
    static const fake_step script[] = {
        FP_SEND("{\"return\": {\"half"), FP_CLOSE(),    FP_ACCEPT(2000),
        FP_FILL("x", 3 << 20),           FP_SEND("\n"),
    };
    const char *path = th_path("peer-cut.sock");
    fake_peer *fp = fake_peer_start(path, script, FP_N(script));
    REQUIRE(fp);
    snap_stream s;
    snap_err err;
    char *line = NULL;
    REQUIRE(connect_stream(&s, path));
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, snap_deadline_in(2000), &err),
              SNAP_ERROR_CLOSED);
    CHECK_CONTAINS(err.msg, "in the middle of a line");
    free(line);
    snap_stream_close(&s);
    REQUIRE(connect_stream(&s, path));
    CHECK_INT(snap_stream_read_line(&s, &line, NULL, snap_deadline_in(5000), &err),
              SNAP_ERROR_PROTOCOL);
    free(line);
    snap_stream_close(&s);
    CHECK_INT(fake_peer_connections(fp), 2);
    fake_peer_free(fp);
}

int main(void)
{
    TH_RUN(test_fake_peer_echoes_captured_ids);
    TH_RUN(test_fake_peer_reports_mismatch_and_stops_promptly);
    TH_RUN(test_fake_peer_cuts_lines_and_accepts_again);
    return th_finish();
}
