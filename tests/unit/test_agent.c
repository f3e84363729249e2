/* Tests of the guest-agent client (snap_agent) and of the fake peer it is tested against.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <sys/stat.h>

#include "fake_peer.h"
#include "qga_guest.h"
#include "snap_json.h"
#include "snap_stream.h"
#include "snap_trace.h"
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

/* ------------------------------------------------------------ agent vs fake peer */

/* qemu-ga's lines: a reply, an error, the reply to a guest-sync-delimited. */
#define RETURNS(json) "{\"return\": " json "}\n"
#define FAILS(class, desc)                                                               \
    "{\"error\": {\"class\": \"" class "\", \"desc\": \"" desc "\"}}\n"
#define SYNC_REPLY "\xff{\"return\": %ID%}\n"
/* What qemu-ga says about the 0xFF that starts a resync while it is reading a line. */
#define PARSE_ERROR_REPLY FAILS("GenericError", "JSON parse error, stray '\\\\uFFFD'")

/* One exchange: the fake agent reads a line containing req, then sends reply. */
#define ASK(req, reply) FP_EXPECT(req), FP_SEND(reply)
/* An exchange whose reply comes ms late (after the client gave up). */
#define ASK_LATE(req, ms, reply) FP_EXPECT(req), FP_SLEEP(ms), FP_SEND(reply)
/* Every script starts with the client's opening sync. */
#define SYNC_OK ASK("guest-sync-delimited", SYNC_REPLY)
/* The resync after a timeout: the stray 0xFF is reported before the sync's reply. */
#define RESYNC_AFTER_PARSE_ERROR ASK("guest-sync-delimited", PARSE_ERROR_REPLY SYNC_REPLY)
#define STATUS_IS(state)         ASK("guest-fsfreeze-status", RETURNS("\"" state "\""))
#define THAW_RETURNS(count)      ASK("guest-fsfreeze-thaw", RETURNS(count))

static snap_agent *open_fake(const char *path)
{
    snap_agent *ag = NULL;
    snap_err err;
    if (snap_agent_open(path, 2000, NULL, &ag, &err) != 0)
        th_note("open: %s", err.msg);
    return ag;
}

/* A client opened on a fake agent that plays a script. */
typedef struct session {
    snap_agent *ag; /* NULL when the open failed or once the test closed it itself */
    fake_peer *fp;
    size_t n_steps; /* in the script */
} session;

/* What the fake agent must have done by the end of a session. */
typedef enum script_end {
    PLAYED_IN_FULL, /* every step, without a mismatch, within 2 s of the client's close */
    NOT_CHECKED,    /* the client may stop first: the drive checks what matters */
} script_end;

/*
 * Starts a fake agent playing script on th_path(sock), opens the client on it,
 * runs drive (the client's side of the test and its checks) when the open
 * succeeded, then closes the client and checks how the script ended.
 */
static void play(const char *file, int line, const char *sock, const fake_step *script,
                 size_t n, script_end end, void (*drive)(session *s))
{
    const char *path = th_path(sock);
    session s = {.fp = fake_peer_start(path, script, n), .n_steps = n};
    if (!s.fp)
        return; /* reported by fake_peer_start */
    s.ag = open_fake(path);
    if (s.ag)
        drive(&s);
    else
        th_fail_at(file, line, "could not open the client on %s", sock);
    snap_agent_close(s.ag);
    if (end == PLAYED_IN_FULL &&
        (!fake_peer_wait(s.fp, 2000) || fake_peer_error(s.fp)[0]))
        th_fail_at(file, line, "the fake agent's script did not complete: %s",
                   fake_peer_error(s.fp)[0] ? fake_peer_error(s.fp) : "timed out");
    fake_peer_free(s.fp);
}
#define PLAY(sock, script, drive)                                                        \
    play(__FILE__, __LINE__, (sock), (script), FP_N(script), PLAYED_IN_FULL, (drive))
#define PLAY_UNCHECKED(sock, script, drive)                                              \
    play(__FILE__, __LINE__, (sock), (script), FP_N(script), NOT_CHECKED, (drive))

/* What a freeze or thaw left: state, counts (-1: no reply), whether a thaw went out. */
typedef struct outcome {
    snap_agent_fs_state state;
    int frozen, thawed;
    bool thaw_sent;
} outcome;

static void check_outcome(const char *file, int line, const snap_agent_freeze_result *res,
                          outcome want)
{
    if (res->state != want.state || res->frozen != want.frozen ||
        res->thawed != want.thawed || res->thaw_sent != want.thaw_sent)
        th_fail_at(file, line,
                   "outcome: state %s, frozen %d, thawed %d, thaw %s; expected %s, %d, "
                   "%d, %s",
                   snap_agent_fs_state_name(res->state), res->frozen, res->thawed,
                   res->thaw_sent ? "sent" : "not sent",
                   snap_agent_fs_state_name(want.state), want.frozen, want.thawed,
                   want.thaw_sent ? "sent" : "not sent");
}
#define CHECK_OUTCOME(res, state, frozen, thawed, thaw_sent)                             \
    check_outcome(__FILE__, __LINE__, &(res),                                            \
                  (outcome){(state), (frozen), (thawed), (thaw_sent)})

/* Checks that text contains each of the NULL-terminated parts. */
static void check_contains_all(const char *file, int line, const char *text,
                               const char *const *parts)
{
    for (; *parts; parts++)
        if (!strstr(text, *parts))
            th_fail_at(file, line, "expected \"%s\" in \"%s\"", *parts, text);
}
#define CHECK_CONTAINS_ALL(text, ...)                                                    \
    check_contains_all(__FILE__, __LINE__, (text),                                       \
                       (const char *const[]){__VA_ARGS__, NULL})

static void drive_freeze_thaw_happy_path(session *s)
{
    snap_agent_freeze_result res;
    snap_err err;
    CHECK_INT(snap_agent_freeze(s->ag, NULL, 0, 1000, 1000, &res, &err), 0);
    CHECK_OUTCOME(res, SNAP_AGENT_FROZEN, 3, -1, false);
    CHECK_STR(res.message, "froze 3 filesystems");
    CHECK_INT(snap_agent_thaw(s->ag, 1000, 1000, &res, &err), 0);
    CHECK_OUTCOME(res, SNAP_AGENT_THAWED, -1, 3, true);
    const char *mps[] = {"/", "/var"};
    CHECK_INT(snap_agent_freeze(s->ag, mps, 2, 1000, 1000, &res, &err), 0);
    CHECK_OUTCOME(res, SNAP_AGENT_FROZEN, 2, -1, false);
    CHECK_INT(snap_agent_thaw(s->ag, 1000, 1000, &res, &err), 0);
    CHECK_OUTCOME(res, SNAP_AGENT_THAWED, -1, 2, true);
    CHECK(fake_peer_wait(s->fp, 2000));
    /* The opening sync was 0xFF-delimited and carried a number id. */
    const char *first = fake_peer_received(s->fp, 0);
    CHECK(first && first[0] == '\xff');
    CHECK_CONTAINS(first, "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":");
}

static void test_freeze_thaw_happy_path_counts(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        ASK("{\"execute\":\"guest-fsfreeze-freeze\"}", RETURNS("3")),
        THAW_RETURNS("3"),
        ASK("{\"execute\":\"guest-fsfreeze-freeze-list\",\"arguments\":"
            "{\"mountpoints\":[\"/\",\"/var\"]}}",
            RETURNS("2")),
        THAW_RETURNS("2"),
    };
    PLAY("happy.sock", script, drive_freeze_thaw_happy_path);
}

static void drive_freeze_hangs(session *s)
{
    snap_agent_freeze_result res;
    snap_err err;
    CHECK_INT(snap_agent_freeze(s->ag, NULL, 0, 100, 3000, &res, &err),
              SNAP_ERROR_TIMEDOUT);
    CHECK_OUTCOME(res, SNAP_AGENT_THAWED, 2, 2, true); /* the late reply was noticed */
    CHECK_CONTAINS_ALL(
        res.message, "agent: guest-fsfreeze-freeze: no reply within 100 ms",
        "recovery: late reply 2; resynced", "status frozen; thawed 2; status thawed",
        "; result: the guest is thawed");
    CHECK_STR(err.msg, res.message);
    th_note("%s", res.message);
}

static void test_freeze_hangs_then_status_frozen_then_thawed(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        /* the client gives up after 100 ms */
        ASK_LATE("guest-fsfreeze-freeze", 400, RETURNS("2")),
        RESYNC_AFTER_PARSE_ERROR,
        STATUS_IS("frozen"),
        THAW_RETURNS("2"),
        STATUS_IS("thawed"),
    };
    PLAY("hang-thawed.sock", script, drive_freeze_hangs);
}

static void drive_freeze_never_answered(session *s)
{
    snap_agent_freeze_result res;
    snap_err err;
    CHECK_INT(snap_agent_freeze(s->ag, NULL, 0, 100, 300, &res, &err),
              SNAP_ERROR_GUEST_FROZEN);
    CHECK_OUTCOME(res, SNAP_AGENT_UNKNOWN, -1, -1, true);
    CHECK_CONTAINS_ALL(err.msg, "agent: guest-fsfreeze-freeze: no reply within 100 ms",
                       "guest-sync-delimited: no reply carrying id", "a thaw was queued",
                       "may still be frozen (state unknown)");
    CHECK_INT(err.code, SNAP_ERROR_GUEST_FROZEN);
    th_note("%s", res.message);
    CHECK(fake_peer_wait(s->fp, 3000));
    uint64_t t0 = snap_now_ms();
    snap_agent_close(s->ag); /* tries to drain: bounded */
    s->ag = NULL;
    CHECK(snap_now_ms() - t0 <= SNAP_AGENT_CLOSE_DRAIN_MS + 500);
    fake_peer_stop(s->fp);
    /* The drain was a real resync attempt. */
    CHECK_INT(fake_peer_count_received(s->fp, "guest-sync-delimited"), 3);
}

static void test_freeze_never_answered_is_unknown(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        FP_EXPECT("guest-fsfreeze-freeze"),
        FP_SLEEP(700), /* past the freeze timeout and the recovery budget */
        FP_EXPECT("guest-sync-delimited"),
        FP_EXPECT("guest-fsfreeze-thaw"), /* queued blind, for when it wakes up */
    };
    PLAY("hang-unknown.sock", script, drive_freeze_never_answered);
}

static void drive_ping_ok(session *s)
{
    snap_err err;
    CHECK_INT(snap_agent_ping(s->ag, 1000, &err), 0);
}

static void test_sync_skips_garbage_stale_ids_and_parse_errors(void)
{
    static const fake_step script[] = {
        FP_EXPECT("guest-sync-delimited"),
        FP_SEND("garbage that is not json\n"),
        FP_SEND("\xff{\"return\": 1}\n"), /* a stale sync reply */
        FP_SEND(PARSE_ERROR_REPLY),
        FP_SEND(RETURNS("{}")),     /* a stale command reply */
        FP_SEND("junk" SYNC_REPLY), /* the reply, after garbage */
        ASK("guest-ping", "\xff{\"return\": 12}\n" RETURNS("{}")),
    };
    PLAY("garbage.sock", script, drive_ping_ok);
}

static void test_open_fails_clearly(void)
{
    snap_agent *ag = NULL;
    snap_err err;
    CHECK_INT(snap_agent_open(th_path("nobody.sock"), 200, NULL, &ag, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "nobody.sock");
    CHECK(ag == NULL);

    /* Only wrong ids come back: the sync never completes. */
    static const fake_step script[] = {
        ASK("guest-sync-delimited", "\xff{\"return\": 7}\n\xff{\"return\": \"x\"}\n"),
    };
    const char *path = th_path("wrong-ids.sock");
    fake_peer *fp = fake_peer_start(path, script, FP_N(script));
    REQUIRE(fp);
    /* 1 s: on a loaded machine the peer may not have written both lines in time. */
    CHECK_INT(snap_agent_open(path, 1000, NULL, &ag, &err), SNAP_ERROR_TIMEDOUT);
    CHECK_CONTAINS_ALL(err.msg, "guest-sync-delimited: no reply carrying id",
                       "(2 lines skipped)");
    CHECK(ag == NULL);
    fake_peer_free(fp);
}

static void drive_close_mid_line(session *s)
{
    snap_err err;
    CHECK_INT(snap_agent_ping(s->ag, 1000, &err), SNAP_ERROR_CLOSED);
    CHECK_CONTAINS_ALL(err.msg, "agent: guest-ping: qemu-ga ",
                       "closed the connection in the middle of a line");
    snap_agent_fs_state st;
    CHECK(snap_agent_fsfreeze_status(s->ag, 200, &st, &err) != 0);
    CHECK_INT(st, SNAP_AGENT_UNKNOWN);
}

static void test_close_mid_line(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        ASK("guest-ping", "{\"return\": {"),
        FP_CLOSE(),
    };
    PLAY("midline.sock", script, drive_close_mid_line);
}

static void drive_huge_reply(session *s)
{
    snap_err err;
    snap_agent_info info;
    CHECK_INT(snap_agent_get_info(s->ag, 5000, &info, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS_ALL(err.msg,
                       "agent: guest-info: ", "sent a line longer than 4194304 bytes");
    CHECK(info.commands == NULL);
    CHECK_INT(snap_agent_ping(s->ag, 5000, &err), 0);
    CHECK(fake_peer_wait(s->fp, 5000));
}

static void test_huge_reply_is_bounded_then_resynced(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        FP_EXPECT("guest-info"),
        FP_SEND("{\"return\": \""),
        FP_FILL("x", 20u << 20),
        FP_SEND("\"}\n"),
        SYNC_OK,
        ASK("guest-ping", RETURNS("{}")),
    };
    PLAY("huge.sock", script, drive_huge_reply);
}

static void drive_ping_times_out_then_status(session *s)
{
    snap_err err;
    CHECK_INT(snap_agent_ping(s->ag, 100, &err), SNAP_ERROR_TIMEDOUT);
    CHECK_STR(err.msg, "agent: guest-ping: no reply within 100 ms");
    snap_agent_fs_state st;
    CHECK_INT(snap_agent_fsfreeze_status(s->ag, 2000, &st, &err), 0);
    CHECK_INT(st, SNAP_AGENT_THAWED);
}

static void test_timeout_then_resync_before_next_command(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        /* late: must not be taken for the next reply */
        ASK_LATE("guest-ping", 300, RETURNS("{}")),
        RESYNC_AFTER_PARSE_ERROR,
        STATUS_IS("thawed"),
    };
    PLAY("resync.sock", script, drive_ping_times_out_then_status);
}

static void user_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "username", opaque);
    snap_json_kv_bool(g, "crypted", false);
}

static void mode_args(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "mode", opaque);
}

/* ------------------------------------------------------------ any command */

static void drive_execute(session *s)
{
    snap_err err;
    yajl_val ret = NULL;
    CHECK_INT(snap_agent_execute(s->ag, "guest-get-time", NULL, NULL, &ret, 1000, &err),
              0);
    CHECK(YAJL_IS_INTEGER(ret) && YAJL_GET_INTEGER(ret) == 1700000000000000000LL);
    yajl_tree_free(ret);
    CHECK_INT(snap_agent_execute(s->ag, "guest-set-user-password", user_args, "root",
                                 &ret, 1000, &err),
              0);
    /* Just the "return" value, detached from the reply around it. */
    yajl_val a = snap_json_get_array(ret, "a");
    CHECK_INT(snap_json_array_len(a), 2);
    CHECK(YAJL_IS_STRING(snap_json_array_at(a, 1)));
    CHECK_STR(YAJL_GET_STRING(snap_json_array_at(a, 1)), "two");
    CHECK(snap_json_get(ret, "extra") == NULL);
    yajl_tree_free(ret);
    CHECK_INT(snap_agent_execute(s->ag, "guest-get-users", NULL, NULL, &ret, 100, &err),
              SNAP_ERROR_TIMEDOUT);
    CHECK(ret == NULL);
    CHECK_STR(err.msg, "agent: guest-get-users: no reply within 100 ms");
    /* The late reply is not taken for this one: a resync comes first. */
    CHECK_INT(snap_agent_execute(s->ag, "guest-get-users", NULL, NULL, &ret, 2000, &err),
              SNAP_ERROR_PEER);
    CHECK_STR(err.msg, "agent: guest-get-users: GenericError: no utmp");
    CHECK(ret == NULL);
    CHECK_INT(
        snap_agent_execute(s->ag, "guest-get-host-name", NULL, NULL, NULL, 1000, &err),
        0);
}

static void test_execute_returns_the_value_and_resyncs_after_timeout(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        ASK("{\"execute\":\"guest-get-time\"}", RETURNS("1700000000000000000")),
        ASK("{\"execute\":\"guest-set-user-password\",\"arguments\":"
            "{\"username\":\"root\",\"crypted\":false}}",
            "{\"return\": {\"a\": [1, \"two\"]}, \"extra\": true}\n"),
        /* the late reply: stale from now on */
        ASK_LATE("guest-get-users", 300, RETURNS("[\"late\"]")),
        RESYNC_AFTER_PARSE_ERROR,
        ASK("guest-get-users", FAILS("GenericError", "no utmp")),
        ASK("guest-get-host-name", RETURNS("{\"host-name\": \"g1\"}")),
    };
    PLAY("execute.sock", script, drive_execute);
}

/*
 * Pipelined (snap_agent_open_begin, _request, _reply): the sync and three
 * commands are written before any reply is read; the replies are read in
 * order, the sync's first (a stale line and the 0xFF's parse error skipped);
 * an agent error fails only its own reply; a reply nobody reads is
 * discarded by the resync of the next ordinary command.
 */
static void test_pipelined_replies_in_order(void)
{
    static const fake_step script[] = {
        FP_EXPECT("guest-sync-delimited"),
        FP_EXPECT("guest-info"),
        FP_EXPECT("guest-get-fsinfo"),
        FP_EXPECT("guest-get-time"),
        /* only now: every request was written without waiting */
        FP_SEND(RETURNS("\"stale\"") PARSE_ERROR_REPLY "\xff{\"return\": %ID%}\n"),
        FP_SEND(RETURNS("{\"version\": \"7.2.0\", \"supported_commands\": "
                        "[{\"name\": \"guest-fsfreeze-freeze\", \"enabled\": true}]}")),
        FP_SEND(FAILS("GenericError", "no sysfs")),
        FP_SEND(RETURNS("1")),
        RESYNC_AFTER_PARSE_ERROR,
        STATUS_IS("thawed"),
    };
    const char *path = th_path("pipelined.sock");
    fake_peer *fp = fake_peer_start(path, script, FP_N(script));
    if (!fp)
        return;
    snap_agent *ag = NULL;
    snap_err err;
    yajl_val ret = NULL;
    snap_agent_info info = {0};
    snap_agent_fs_state st = SNAP_AGENT_UNKNOWN;
    CHECK_INT(snap_agent_open_begin(path, 2000, NULL, &ag, &err), 0);
    CHECK_INT(snap_agent_request(ag, "guest-info", NULL, NULL, 1000, &err), 0);
    CHECK_INT(snap_agent_request(ag, "guest-get-fsinfo", NULL, NULL, 1000, &err), 0);
    CHECK_INT(snap_agent_request(ag, "guest-get-time", NULL, NULL, 1000, &err), 0);
    CHECK_INT(snap_agent_reply(ag, "guest-info", &ret, 2000, &err), 0);
    CHECK_INT(snap_agent_info_parse(ret, &info, &err), 0);
    CHECK_STR(info.version, "7.2.0");
    CHECK(snap_agent_info_can(&info, "guest-fsfreeze-freeze"));
    CHECK(!snap_agent_info_can(&info, "guest-fsfreeze-thaw"));
    snap_agent_info_dispose(&info);
    yajl_tree_free(ret);
    CHECK_INT(snap_agent_reply(ag, "guest-get-fsinfo", &ret, 2000, &err),
              SNAP_ERROR_PEER);
    CHECK_STR(err.msg, "agent: guest-get-fsinfo: GenericError: no sysfs");
    CHECK(ret == NULL);
    CHECK_INT(snap_agent_fsfreeze_status(ag, 2000, &st, &err), 0);
    CHECK_INT(st, SNAP_AGENT_THAWED);
    CHECK_INT(snap_agent_reply(ag, "guest-get-time", &ret, 200, &err), SNAP_ERROR_INVAL);
    snap_agent_close(ag);
    CHECK(fake_peer_wait(fp, 2000));
    CHECK_STR(fake_peer_error(fp), "");
    fake_peer_free(fp);
}

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000u + (unsigned long long)ts.tv_nsec;
}

/*
 * XLSNAP_TRACE (set by main): agent-answered is stamped when the agent's
 * first answer arrives (here 150 ms after the connect), not when the
 * client, busy for 400 ms, reads it.
 */
static void test_first_answer_traced_when_it_arrives(void)
{
    static const fake_step script[] = {
        FP_EXPECT("guest-sync-delimited"),
        FP_EXPECT("guest-ping"),
        FP_SLEEP(150),
        FP_SEND(SYNC_REPLY RETURNS("{}")),
    };
    const char *path = th_path("answered.sock");
    fake_peer *fp = fake_peer_start(path, script, FP_N(script));
    if (!fp)
        return;
    snap_agent *ag = NULL;
    snap_err err;
    yajl_val ret = NULL;
    unsigned long long opened = now_ns();
    CHECK_INT(snap_agent_open_begin(path, 2000, NULL, &ag, &err), 0);
    CHECK_INT(snap_agent_request(ag, "guest-ping", NULL, NULL, 1000, &err), 0);
    usleep(400 * 1000); /* the caller's other work */
    CHECK_INT(snap_agent_reply(ag, "guest-ping", &ret, 2000, &err), 0);
    unsigned long long read_at = now_ns();
    yajl_tree_free(ret);
    snap_agent_close(ag);
    snap_trace_flush();
    unsigned long long answered = th_traced_at(getenv("XLSNAP_TRACE"), "agent-answered");
    CHECK(answered > opened + 140000000ull);
    CHECK(answered + 200000000ull < read_at);
    CHECK(fake_peer_wait(fp, 2000));
    fake_peer_free(fp);
}

static void drive_send_after_timeout(session *s)
{
    snap_err err;
    CHECK_INT(snap_agent_ping(s->ag, 100, &err), SNAP_ERROR_TIMEDOUT);
    uint64_t t0 = snap_now_ms();
    CHECK_INT(
        snap_agent_send(s->ag, "guest-shutdown", mode_args, "powerdown", 2000, &err), 0);
    CHECK(snap_now_ms() - t0 < 1500); /* no reply awaited */
    CHECK(fake_peer_wait(s->fp, 2000));
}

static void test_send_writes_without_reading(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        FP_EXPECT("guest-ping"),
        FP_SLEEP(300), /* the ping times out: the send resyncs first */
        ASK("guest-sync-delimited", RETURNS("{}") SYNC_REPLY),
        FP_EXPECT(
            "{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"powerdown\"}}"),
    };
    PLAY("send.sock", script, drive_send_after_timeout);
}

static void test_open_wait_for_a_late_agent(void)
{
    static const fake_step script[] = {
        FP_EXPECT("guest-sync-delimited"), /* qemu-ga not started: nothing comes */
        FP_EXPECT_WITHIN("guest-sync-delimited", 3000),
        FP_SEND(SYNC_REPLY),
    };
    const char *path = th_path("late.sock");
    snap_agent *ag = NULL;
    snap_err err;
    CHECK_INT(snap_agent_open_wait(path, 300, NULL, &ag, &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS_ALL(err.msg, "no answer within 300 ms", "late.sock");
    fake_peer *fp = fake_peer_start(path, script, FP_N(script));
    REQUIRE(fp);
    uint64_t t0 = snap_now_ms();
    CHECK_INT(snap_agent_open_wait(path, 5000, NULL, &ag, &err), 0);
    CHECK(snap_now_ms() - t0 >= 900); /* the first attempt went unanswered */
    CHECK(fake_peer_wait(fp, 2000));
    CHECK_INT(fake_peer_connections(fp), 1); /* retried on the same connection */
    snap_agent_close(ag);
    fake_peer_free(fp);
}

/* ------------------------------------------------------------ inside the guest */

#define EXEC_STARTS(pid)    ASK("guest-exec", RETURNS("{\"pid\": " #pid "}"))
#define EXEC_STATUS(status) ASK("guest-exec-status", RETURNS(status))
#define STILL_RUNNING       EXEC_STATUS("{\"exited\": false}")

static void drive_guest_exec(session *s)
{
    qga_exec_result res;
    snap_err err;
    const char *const sh[] = {"/bin/sh", "-c", "echo hello; echo oops >&2", NULL};
    const char *const nope[] = {"/bin/nope", NULL};
    CHECK_INT(qga_guest_exec(s->ag, sh, 2000, &res, &err), 0);
    CHECK_INT(res.exitcode, 3);
    CHECK_INT(res.signal, 0);
    CHECK_STR(res.out, "hello\n");
    CHECK_INT(res.out_len, 6);
    CHECK_STR(res.err, "oops");
    qga_exec_result_dispose(&res);
    CHECK_INT(qga_guest_exec(s->ag, sh, 2000, &res, &err), 0);
    CHECK_INT(res.exitcode, -1);
    CHECK_INT(res.signal, 9);
    CHECK_STR(res.out, "");
    qga_exec_result_dispose(&res);
    CHECK_INT(qga_guest_exec(s->ag, sh, 2000, &res, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "running /bin/sh in the guest: agent: guest-exec-status: "
                            "out-data is not base64");
    CHECK(res.out == NULL);
    CHECK_INT(qga_guest_exec(s->ag, nope, 2000, &res, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "running /bin/nope in the guest: agent: guest-exec: "
                            "GenericError: Guest agent command failed");
}

static void test_guest_exec_polls_and_decodes(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        ASK("{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/sh\","
            "\"arg\":[\"-c\",\"echo hello; echo oops >&2\"],\"capture-output\":true}}",
            RETURNS("{\"pid\": 77}")),
        ASK("{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":77}}",
            RETURNS("{\"exited\": false}")),
        EXEC_STATUS("{\"exited\": true, \"exitcode\": 3, \"out-data\": \"aGVsbG8K\", "
                    "\"err-data\": \"b29wcw==\"}"),
        EXEC_STARTS(78),
        EXEC_STATUS("{\"exited\": true, \"signal\": 9}"),
        EXEC_STARTS(79),
        EXEC_STATUS("{\"exited\": true, \"exitcode\": 0, \"out-data\": \"a*b\"}"),
        ASK("guest-exec", FAILS("GenericError", "Guest agent command failed, error was "
                                                "'Failed to execute child process'")),
    };
    PLAY("exec.sock", script, drive_guest_exec);
}

static void drive_guest_exec_times_out(session *s)
{
    qga_exec_result res;
    snap_err err;
    const char *const argv[] = {"/bin/sleep", "100", NULL};
    uint64_t t0 = snap_now_ms();
    CHECK_INT(qga_guest_exec(s->ag, argv, 50, &res, &err), SNAP_ERROR_TIMEDOUT);
    CHECK(snap_now_ms() - t0 < 1000);
    CHECK_CONTAINS(err.msg, "/bin/sleep");
}

static void test_guest_exec_bounded_by_its_timeout(void)
{
    static const fake_step script[] = {
        SYNC_OK,       EXEC_STARTS(5), STILL_RUNNING,
        STILL_RUNNING, STILL_RUNNING,  STILL_RUNNING,
    };
    PLAY_UNCHECKED("exec-slow.sock", script, drive_guest_exec_times_out);
}

#define FILE_OPENS(path, handle)                                                         \
    ASK("{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"" path               \
        "\",\"mode\":\"r\"}}",                                                           \
        RETURNS(#handle))
#define FILE_CLOSES(handle)                                                              \
    ASK("{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":" #handle "}}",     \
        RETURNS("{}"))
#define FILE_READS(handle, chunk)                                                        \
    ASK("{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":" #handle ",", chunk)
/* "abcdef\n" in two chunks. */
#define CHUNK_ABC     RETURNS("{\"count\": 3, \"buf-b64\": \"YWJj\", \"eof\": false}")
#define CHUNK_DEF_EOF RETURNS("{\"count\": 4, \"buf-b64\": \"ZGVmCg==\", \"eof\": true}")

static void drive_read_file(session *s)
{
    snap_err err;
    char *data = NULL;
    size_t len = 0;
    CHECK_INT(qga_read_file(s->ag, "/mnt/vdb/writer.log", 100, 2000, &data, &len, &err),
              0);
    CHECK_STR(data, "abcdef\n");
    CHECK_INT(len, 7);
    free(data);
    CHECK_INT(qga_read_file(s->ag, "/mnt/vdb/writer.log", 5, 2000, &data, &len, &err),
              SNAP_ERROR_PROTOCOL);
    CHECK_STR(err.msg, "reading /mnt/vdb/writer.log in the guest: longer than 5 bytes");
    CHECK(data == NULL);
    CHECK_INT(qga_read_file(s->ag, "/nope", 100, 2000, &data, NULL, &err),
              SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "reading /nope in the guest: agent: guest-file-open: "
                            "GenericError: failed to open file");
}

static void test_read_file_chunks_and_limit(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        FILE_OPENS("/mnt/vdb/writer.log", 1000),
        FILE_READS(1000, CHUNK_ABC),
        FILE_READS(1000, CHUNK_DEF_EOF),
        FILE_CLOSES(1000),
        /* The second read stops at the limit, and still closes the file. */
        FILE_OPENS("/mnt/vdb/writer.log", 1001),
        FILE_READS(1001, CHUNK_ABC),
        FILE_READS(1001, CHUNK_DEF_EOF),
        FILE_CLOSES(1001),
        ASK("guest-file-open",
            FAILS("GenericError", "failed to open file '/nope' (mode: 'r')")),
    };
    PLAY("file.sock", script, drive_read_file);
}

#define DISABLED_DESC    "Command guest-fsfreeze-freeze has been disabled"
#define FROZEN_DESC(cmd) "Command " cmd " has been disabled: the agent is in frozen state"

static void drive_error_replies(session *s)
{
    snap_agent_freeze_result res;
    snap_err err;
    snap_agent_fs_state st;
    static const char disabled[] =
        "agent: guest-fsfreeze-freeze: CommandNotFound: " DISABLED_DESC;
    CHECK_INT(snap_agent_freeze(s->ag, NULL, 0, 1000, 1000, &res, &err), SNAP_ERROR_PEER);
    CHECK(strncmp(err.msg, disabled, strlen(disabled)) == 0);
    CHECK_OUTCOME(res, SNAP_AGENT_THAWED, -1, -1, false);
    CHECK_INT(snap_agent_ping(s->ag, 1000, &err), SNAP_ERROR_PEER);
    CHECK_STR(err.msg, "agent: guest-ping: (no class): no class here");
    CHECK_INT(snap_agent_ping(s->ag, 1000, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "neither \"return\" nor \"error\"");
    CHECK_INT(snap_agent_fsfreeze_status(s->ag, 1000, &st, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "unexpected status melting");
}

static void test_agent_error_replies_verbatim(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        ASK("guest-fsfreeze-freeze", FAILS("CommandNotFound", DISABLED_DESC)),
        STATUS_IS("thawed"),
        ASK("guest-ping", "{\"error\": {\"desc\": \"no class here\"}}\n"),
        ASK("guest-ping", "{\"neither\": 1}\n"),
        SYNC_OK,
        STATUS_IS("melting"),
    };
    PLAY("errors.sock", script, drive_error_replies);
}

static void drive_frozen_state_refusals(session *s)
{
    snap_agent_freeze_result res;
    snap_err err;
    const char *mps[] = {"/"};
    CHECK_INT(snap_agent_freeze(s->ag, mps, 1, 1000, 1000, &res, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS_ALL(err.msg,
                       "agent: guest-fsfreeze-freeze-list: CommandNotFound: " FROZEN_DESC(
                           "guest-fsfreeze-freeze-list"),
                       "status frozen; thawed 1; status thawed");
    CHECK_OUTCOME(res, SNAP_AGENT_THAWED, -1, 1, true);
    CHECK_INT(snap_agent_thaw(s->ag, 1000, 1000, &res, &err), SNAP_ERROR_GUEST_FROZEN);
    CHECK_OUTCOME(res, SNAP_AGENT_UNKNOWN, -1, -1, true);
    CHECK_CONTAINS_ALL(err.msg,
                       "agent: guest-fsfreeze-thaw: GenericError: failed to thaw",
                       "may still be frozen");
}

#define THAW_BUSY FAILS("GenericError", "failed to thaw: Device or resource busy")

static void test_frozen_state_refusals(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        /* Someone froze the guest before us (e.g. a crashed earlier run). */
        ASK("guest-fsfreeze-freeze-list",
            FAILS("CommandNotFound", FROZEN_DESC("guest-fsfreeze-freeze-list"))),
        STATUS_IS("frozen"),
        THAW_RETURNS("1"),
        STATUS_IS("thawed"),
        /* A thaw that is refused and leaves the agent frozen. */
        ASK("guest-fsfreeze-thaw", THAW_BUSY),
        STATUS_IS("frozen"),
        ASK("guest-fsfreeze-thaw", THAW_BUSY),
    };
    PLAY("frozen.sock", script, drive_frozen_state_refusals);
}

static void drive_thaw_timeouts(session *s)
{
    snap_agent_freeze_result res;
    snap_err err;
    CHECK_INT(snap_agent_thaw(s->ag, 100, 2000, &res, &err), 0);
    CHECK_OUTCOME(res, SNAP_AGENT_THAWED, -1, 4, true);
    CHECK_CONTAINS(res.message, "agent: guest-fsfreeze-thaw: no reply within 100 ms; "
                                "recovery: late reply 4; resynced; status thawed");
    CHECK_INT(snap_agent_thaw(s->ag, 100, 200, &res, &err), SNAP_ERROR_GUEST_FROZEN);
    CHECK_OUTCOME(res, SNAP_AGENT_UNKNOWN, -1, -1, true);
    CHECK_CONTAINS(err.msg, "may still be frozen (state unknown)");
    CHECK(!fake_peer_wait(s->fp, 10)); /* still hanging, as scripted */
    CHECK_INT(fake_peer_steps_done(s->fp), s->n_steps - 1);
    CHECK_STR(fake_peer_error(s->fp), "");
}

static void test_thaw_timeouts(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        /* A slow thaw whose reply comes late: recovery confirms thawed. */
        ASK_LATE("guest-fsfreeze-thaw", 250, RETURNS("4")),
        RESYNC_AFTER_PARSE_ERROR,
        STATUS_IS("thawed"),
        /* A thaw never answered: unknown. */
        FP_EXPECT("guest-fsfreeze-thaw"),
        FP_SLEEP(-1),
    };
    PLAY_UNCHECKED("thaw.sock", script, drive_thaw_timeouts);
}

static void drive_fsinfo(session *s)
{
    snap_agent_fs *fs = NULL;
    size_t n = 0;
    snap_err err;
    if (snap_agent_get_fsinfo(s->ag, 1000, &fs, &n, &err) == 0) {
        CHECK_INT(n, 2);
        CHECK_STR(fs[0].mountpoint, "/");
        CHECK_STR(fs[0].type, "ext4");
        CHECK_INT(fs[0].n_disks, 1);
        CHECK_STR(fs[0].disks[0].bus_type, "xen");
        CHECK_STR(fs[0].disks[0].dev, "/dev/xvda1");
        CHECK_STR(fs[0].disks[0].serial, "disk-0");
        CHECK_INT(fs[0].disks[0].pci_slot, 4);
        CHECK_INT(fs[0].disks[0].pci_function, 1);
        CHECK_INT(fs[0].disks[0].unit, 51712);
        CHECK_STR(fs[1].mountpoint, "/run");
        CHECK_INT(fs[1].n_disks, 0);
        snap_agent_fsinfo_free(fs, n);
    } else {
        CHECK(!"guest-get-fsinfo failed");
    }
    CHECK_INT(snap_agent_get_fsinfo(s->ag, 1000, &fs, &n, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "without name, mountpoint or type");
    CHECK(fs == NULL && n == 0);
    CHECK_INT(snap_agent_get_fsinfo(s->ag, 1000, &fs, &n, &err), SNAP_ERROR_PROTOCOL);
    CHECK_CONTAINS(err.msg, "return is not a list");
}

static void test_fsinfo_parsed_with_pci_addresses(void)
{
    static const fake_step script[] = {
        SYNC_OK,
        ASK("guest-get-fsinfo",
            RETURNS(
                "[{\"name\": \"xvda1\", \"mountpoint\": \"/\", \"type\": \"ext4\", "
                "\"disk\": [{\"bus-type\": \"xen\", \"bus\": 0, \"target\": 0, "
                "\"unit\": 51712, \"pci-controller\": {\"domain\": 0, \"bus\": 0, "
                "\"slot\": 4, \"function\": 1}, \"dev\": \"/dev/xvda1\", "
                "\"serial\": \"disk-0\"}]}, "
                "{\"name\": \"tmpfs\", \"mountpoint\": \"/run\", \"type\": \"tmpfs\", "
                "\"disk\": []}]")),
        ASK("guest-get-fsinfo", RETURNS("[{\"name\": \"vda\", \"disk\": []}]")),
        ASK("guest-get-fsinfo", RETURNS("{}")),
    };
    PLAY("fsinfo.sock", script, drive_fsinfo);
}

/* ------------------------------------------------------------ the real qemu-ga */

/*
 * The host's own qemu-ga must never freeze: this machine's filesystems would
 * stop. Every freeze/thaw command is blocked, and the list is verified.
 */
static const char REAL_AGENT_BLOCKED[] =
    "guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,guest-fsfreeze-thaw";

static bool blocklist_is_complete(const char *list)
{
    static const char *const must[] = {
        "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw"};
    char *copy = strdup(list), *save = NULL;
    int found = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
            if (strcmp(t, must[i]) == 0)
                found |= 1 << i;
    free(copy);
    return found == 7;
}

static const char *find_qemu_ga(void)
{
    static const char *const where[] = {"/usr/sbin/qemu-ga", "/usr/bin/qemu-ga",
                                        "/usr/local/bin/qemu-ga"};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return NULL;
}

static pid_t start_real_agent(const char *sock, const char *statedir)
{
    const char *bin = find_qemu_ga();
    if (!bin || !blocklist_is_complete(REAL_AGENT_BLOCKED))
        return -1;
    mkdir(statedir, 0700);
    char *argv[] = {(char *)bin,
                    "-m",
                    "unix-listen",
                    "-p",
                    (char *)sock,
                    "-t",
                    (char *)statedir,
                    "-b",
                    (char *)REAL_AGENT_BLOCKED,
                    NULL};
    pid_t pid = th_spawn(argv, th_path("qemu-ga.log"));
    if (pid > 0 && !th_wait_for_socket(sock, 5000)) {
        th_kill(pid);
        return -1;
    }
    return pid;
}

static void check_real_agent_info(snap_agent *ag)
{
    snap_agent_info info;
    snap_err err;
    REQUIRE(snap_agent_get_info(ag, 2000, &info, &err) == 0);
    CHECK(info.version && info.version[0]);
    CHECK(info.n_commands > 10);
    CHECK(snap_agent_info_can(&info, "guest-ping"));
    CHECK(snap_agent_info_can(&info, "guest-fsfreeze-status"));
    CHECK(!snap_agent_info_can(&info, "guest-fsfreeze-freeze"));
    CHECK(!snap_agent_info_can(&info, "guest-fsfreeze-freeze-list"));
    CHECK(!snap_agent_info_can(&info, "guest-fsfreeze-thaw"));
    CHECK(!snap_agent_info_can(&info, "guest-no-such-command"));
    th_note("host qemu-ga %s, %zu commands", info.version, info.n_commands);
    snap_agent_info_dispose(&info);
}

/* Read-only: the host's own mounts (virtual filesystems are not listed). */
static void check_real_agent_fsinfo(snap_agent *ag)
{
    snap_agent_fs *fs = NULL;
    size_t n = 0;
    snap_err err;
    REQUIRE(snap_agent_get_fsinfo(ag, 5000, &fs, &n, &err) == 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(fs[i].mountpoint[0] == '/');
        CHECK(fs[i].type[0] != '\0');
    }
    th_note("host qemu-ga lists %zu filesystem(s)%s%s", n, n ? ", first " : "",
            n ? fs[0].mountpoint : "");
    snap_agent_fsinfo_free(fs, n);
}

/* Only after the agent itself confirmed every freeze command is disabled. */
static bool real_agent_freeze_is_blocked(snap_agent *ag)
{
    snap_agent_info info;
    snap_err err;
    if (snap_agent_get_info(ag, 2000, &info, &err) != 0)
        return false;
    bool blocked = info.n_commands > 0 && snap_agent_info_can(&info, "guest-ping") &&
                   !snap_agent_info_can(&info, "guest-fsfreeze-freeze") &&
                   !snap_agent_info_can(&info, "guest-fsfreeze-freeze-list") &&
                   !snap_agent_info_can(&info, "guest-fsfreeze-thaw");
    snap_agent_info_dispose(&info);
    return blocked;
}

static void check_real_agent_refuses_freeze(snap_agent *ag, const char *statedir)
{
    snap_agent_freeze_result res;
    snap_err err;
    int count = -1;
    REQUIRE(real_agent_freeze_is_blocked(ag));
    CHECK_INT(snap_agent_freeze(ag, NULL, 0, 2000, 2000, &res, &err), SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "agent: guest-fsfreeze-freeze: CommandNotFound: Command "
                            "guest-fsfreeze-freeze has been disabled");
    CHECK_INT(res.state, SNAP_AGENT_THAWED);
    CHECK(!res.thaw_sent);
    const char *mps[] = {"/nonexistent-mountpoint"};
    CHECK_INT(snap_agent_fsfreeze_freeze(ag, mps, 1, 2000, &count, &err),
              SNAP_ERROR_PEER);
    CHECK_STR(err.msg, "agent: guest-fsfreeze-freeze-list: CommandNotFound: Command "
                       "guest-fsfreeze-freeze-list has been disabled");
    CHECK_INT(snap_agent_fsfreeze_thaw(ag, 2000, &count, &err), SNAP_ERROR_PEER);
    CHECK_STR(err.msg, "agent: guest-fsfreeze-thaw: CommandNotFound: Command "
                       "guest-fsfreeze-thaw has been disabled");
    CHECK_INT(count, -1);
    /* Nothing was frozen: qemu-ga's frozen marker was never created. */
    char *marker = snap_xasprintf("%s/qga.state.isfrozen", statedir);
    CHECK(access(marker, F_OK) != 0);
    free(marker);
}

static void test_real_agent_with_freeze_blocked(void)
{
    if (!find_qemu_ga()) {
        th_skip("qemu-ga not installed (package qemu-guest-agent)");
        return;
    }
    REQUIRE(blocklist_is_complete(REAL_AGENT_BLOCKED));
    const char *sock = th_path("qga.sock");
    const char *statedir = th_path("qga-state");
    pid_t pid = start_real_agent(sock, statedir);
    REQUIRE(pid > 0);
    snap_agent *ag = NULL;
    snap_err err;
    snap_agent_fs_state st;
    CHECK_INT(snap_agent_open(sock, 5000, NULL, &ag, &err), 0);
    REQUIRE(ag);
    CHECK_INT(snap_agent_ping(ag, 2000, &err), 0);
    check_real_agent_info(ag);
    CHECK_INT(snap_agent_fsfreeze_status(ag, 2000, &st, &err), 0);
    CHECK_INT(st, SNAP_AGENT_THAWED);
    check_real_agent_fsinfo(ag);
    check_real_agent_refuses_freeze(ag, statedir);
    /* Resync on demand, many times: each id is fresh and matched exactly. */
    for (int i = 0; i < 20; i++)
        CHECK_INT(snap_agent_sync(ag, 2000, &err), 0);
    CHECK_INT(snap_agent_ping(ag, 2000, &err), 0);
    snap_agent_close(ag);
    /* The agent served us and is still alive for the next client. */
    CHECK(kill(pid, 0) == 0);
    CHECK_INT(snap_agent_open(sock, 5000, NULL, &ag, &err), 0);
    CHECK(ag && snap_agent_ping(ag, 2000, &err) == 0);
    snap_agent_close(ag);
    th_kill(pid);
}

int main(int argc, char **argv)
{
    /* libsnap decides whether a process traces when it is loaded: run again
     * with XLSNAP_TRACE set (test_first_answer_traced_when_it_arrives). */
    char trace[] = "/tmp/test_agent-trace.XXXXXX";
    if (argc == 1 && !getenv("XLSNAP_TRACE")) {
        int fd = mkstemp(trace);
        if (fd >= 0 && !close(fd) && !setenv("XLSNAP_TRACE", trace, 1))
            execv("/proc/self/exe", (char *[]){argv[0], "traced", NULL});
        perror("test_agent: running again with XLSNAP_TRACE");
        return 1;
    }
    th_plan(24);
    TH_RUN(test_fake_peer_echoes_captured_ids);
    TH_RUN(test_fake_peer_reports_mismatch_and_stops_promptly);
    TH_RUN(test_fake_peer_cuts_lines_and_accepts_again);
    TH_RUN(test_freeze_thaw_happy_path_counts);
    TH_RUN(test_freeze_hangs_then_status_frozen_then_thawed);
    TH_RUN(test_freeze_never_answered_is_unknown);
    TH_RUN(test_sync_skips_garbage_stale_ids_and_parse_errors);
    TH_RUN(test_open_fails_clearly);
    TH_RUN(test_close_mid_line);
    TH_RUN(test_huge_reply_is_bounded_then_resynced);
    TH_RUN(test_timeout_then_resync_before_next_command);
    TH_RUN(test_agent_error_replies_verbatim);
    TH_RUN(test_execute_returns_the_value_and_resyncs_after_timeout);
    TH_RUN(test_send_writes_without_reading);
    TH_RUN(test_pipelined_replies_in_order);
    TH_RUN(test_first_answer_traced_when_it_arrives);
    TH_RUN(test_open_wait_for_a_late_agent);
    TH_RUN(test_guest_exec_polls_and_decodes);
    TH_RUN(test_guest_exec_bounded_by_its_timeout);
    TH_RUN(test_read_file_chunks_and_limit);
    TH_RUN(test_frozen_state_refusals);
    TH_RUN(test_thaw_timeouts);
    TH_RUN(test_fsinfo_parsed_with_pci_addresses);
    TH_RUN(test_real_agent_with_freeze_blocked);
    if (argc > 1) { /* and no flush at exit creates it again */
        unlink(getenv("XLSNAP_TRACE"));
        unsetenv("XLSNAP_TRACE");
    }
    return th_finish();
}
