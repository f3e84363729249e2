/*
 * Tests of the consistency group records (snap_group_store.c): the JSON
 * form read back as written, strict reading (a missing or mistyped field is
 * an error naming the file and field), the records listed by name, and the
 * question journal recovery asks (does the group record name this domain?),
 * which must answer "yes" for an unreadable record: recovery never rolls a
 * member back on a guess. Also a member's group and journal fields, and the
 * journal of a group revert or delete: its JSON form, strict reading, its
 * hidden file (never listed as a group, temp files never listed as
 * journals) and the lock-free question "which pending group operations
 * name this domain?".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_group_store.h"
#include "snap_journal.h"
#include "snap_meta.h"
#include "th.h"

#define UUID_A "6b1c7e2a-3f4d-4e5a-9b8c-0d1e2f3a4b5c"
#define UUID_B "00000000-1111-2222-3333-444444444444"

static snap_group_info *sample_group(const char *name)
{
    snap_group_info *g = snap_xcalloc(1, sizeof *g);
    g->name = snap_xstrdup(name);
    g->creation_sec = 1796000000;
    g->creation_nsec = 42;
    g->quiesced = true;
    g->window_ms = 179;
    g->n_members = 2;
    g->members = snap_xcalloc(2, sizeof *g->members);
    g->members[0] = (snap_group_member){snap_xstrdup("db"),
                                        snap_xstrdup(UUID_A),
                                        snap_xstrdup(name),
                                        SNAP_CONSISTENCY_QUIESCED,
                                        2,
                                        158,
                                        false};
    g->members[1] = (snap_group_member){snap_xstrdup("web"),
                                        snap_xstrdup(UUID_B),
                                        snap_xstrdup(name),
                                        SNAP_CONSISTENCY_PARTIAL,
                                        1,
                                        174,
                                        false};
    return g;
}

static void test_round_trip(void)
{
    snap_group_info *g = sample_group("g1"), *back = NULL;
    snap_err err = {0};
    char *text = snap_group_record_to_json(g);
    REQUIRE(snap_group_record_from_json(text, "g1.json", &back, &err) == 0);
    CHECK_STR(back->name, "g1");
    CHECK_INT(back->creation_sec, 1796000000);
    CHECK_INT(back->creation_nsec, 42);
    CHECK(back->quiesced);
    CHECK_INT(back->window_ms, 179);
    REQUIRE(back->n_members == 2);
    CHECK_STR(back->members[1].domain_name, "web");
    CHECK_STR(back->members[1].domain_uuid, UUID_B);
    CHECK_STR(back->members[1].snapshot, "g1");
    CHECK_INT(back->members[1].consistency, SNAP_CONSISTENCY_PARTIAL);
    CHECK_INT(back->members[1].frozen_count, 1);
    CHECK_INT(back->members[1].window_ms, 174);
    CHECK_STR(back->json, text);
    /* The group's level is its lowest member's. */
    CHECK_CONTAINS(text, "\"consistency\": \"partially-quiesced\",\n    \"window_ms\"");
    free(text);
    snap_group_info_free(g);
    snap_group_info_free(back);
}

/* text with the first occurrence of from replaced by to (malloc'd). */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at)
        return snap_xstrdup(text);
    return snap_xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

/*
 * A shut-off member (crash-consistent, nothing frozen) does not lower the
 * group's level, and says so in the record; older records without the
 * field read as running members.
 */
static void test_shut_off_member(void)
{
    snap_group_info *g = sample_group("g2"), *back = NULL;
    snap_err err = {0};
    g->members[1].consistency = SNAP_CONSISTENCY_CRASH;
    g->members[1].frozen_count = 0;
    g->members[1].shut_off = true;
    char *text = snap_group_record_to_json(g);
    CHECK_CONTAINS(text, "\"consistency\": \"quiesced\",\n    \"window_ms\"");
    CHECK_CONTAINS(text, "\"shut_off\": true");
    REQUIRE(snap_group_record_from_json(text, "g2.json", &back, &err) == 0);
    CHECK(back->quiesced);
    CHECK(back->members[1].shut_off);
    CHECK(!back->members[0].shut_off);
    CHECK(snap_group_consistency(back) == SNAP_CONSISTENCY_QUIESCED);
    snap_group_info_free(back);
    back = NULL;
    /* anything but true or false is refused, never read as a running member */
    char *odd = replaced(text, "\"shut_off\": true", "\"shut_off\": \"yes\"");
    CHECK(strcmp(odd, text) != 0);
    CHECK(snap_group_record_from_json(odd, "g2.json", &back, &err) != 0);
    CHECK(back == NULL);
    CHECK_CONTAINS(err.msg, "field 'members[1].shut_off'");
    free(odd);
    g->members[1].shut_off = false; /* a running member: it lowers the level */
    char *old = snap_group_record_to_json(g);
    CHECK(strstr(old, "shut_off") == NULL);
    CHECK_CONTAINS(old, "\"consistency\": \"crash-consistent\",\n    \"window_ms\"");
    REQUIRE(snap_group_record_from_json(old, "g2.json", &back, &err) == 0);
    CHECK(!back->members[1].shut_off);
    CHECK(snap_group_consistency(back) == SNAP_CONSISTENCY_CRASH);
    free(text);
    free(old);
    snap_group_info_free(g);
    snap_group_info_free(back);
}

static void test_strict_reading(void)
{
    snap_group_info *g = sample_group("g1"), *back = NULL;
    char *text = snap_group_record_to_json(g);
    snap_err err = {0};
    struct {
        const char *from, *to, *want;
    } bad[] = {
        {"\"window_ms\": 179", "\"window_ms\": \"179\"", "field 'window_ms'"},
        {"\"consistency\": \"quiesced\"", "\"consistency\": \"half\"",
         "field 'members[0].consistency'"},
        {"\"uuid\"", "\"uid\"", "field 'members[0].uuid'"},
        {"\"version\": 1", "\"version\": 2", "version 2 is not supported"},
    };
    for (size_t i = 0; i < SNAP_N_OF(bad); i++) {
        char *broken = replaced(text, bad[i].from, bad[i].to);
        CHECK(strcmp(broken, text) != 0);
        CHECK(snap_group_record_from_json(broken, "g1.json", &back, &err) != 0);
        CHECK(back == NULL);
        CHECK_CONTAINS(err.msg, bad[i].want);
        CHECK_CONTAINS(err.msg, "g1.json");
        free(broken);
    }
    char *none = replaced(text, "\"members\"", "\"memberz\"");
    CHECK(snap_group_record_from_json(none, "g1.json", &back, &err) != 0);
    CHECK_CONTAINS(err.msg, "field 'members'");
    free(none);
    free(text);
    snap_group_info_free(g);
}

static void test_store_and_recovery_question(void)
{
    const char *statedir = th_path("state");
    snap_meta_store gst;
    snap_err err = {0};
    /* No groups directory yet: no group, so no member is committed. */
    CHECK(!snap_group_record_has_member(statedir, "g1", UUID_A));
    REQUIRE(snap_meta_store_open_groups(&gst, statedir, true, &err) == 0);
    snap_group_info *g1 = sample_group("g1"), *g0 = sample_group("g0"), *back = NULL;
    CHECK(snap_group_record_save(&gst, g1, &err) == 0);
    CHECK(snap_group_record_save(&gst, g0, &err) == 0);
    CHECK(snap_group_record_has_member(statedir, "g1", UUID_A));
    CHECK(snap_group_record_has_member(statedir, "g1", UUID_B));
    CHECK(!snap_group_record_has_member(statedir, "g1",
                                        "99999999-1111-2222-3333-444444444444"));
    CHECK(!snap_group_record_has_member(statedir, "g2", UUID_A));
    char **names = NULL;
    size_t n = 0;
    CHECK(snap_group_record_names(&gst, &names, &n, &err) == 0);
    REQUIRE(n == 2);
    CHECK_STR(names[0], "g0");
    CHECK_STR(names[1], "g1");
    snap_strv_free(names, n);
    CHECK_INT(snap_group_record_load(&gst, "g9", &back, &err), SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "no group 'g9'");
    /* Damaged: recovery keeps the member (it cannot tell). */
    CHECK(snap_meta_store_write(&gst, "g0.json", "{", 1, &err) == 0);
    CHECK(snap_group_record_has_member(statedir, "g0", UUID_A));
    CHECK(snap_group_record_load(&gst, "g0", &back, &err) != 0);
    CHECK_CONTAINS(err.msg, "g0.json");
    CHECK(snap_group_record_remove(&gst, "g1", &err) == 0);
    CHECK(!snap_group_record_has_member(statedir, "g1", UUID_A));
    snap_meta_store_close(&gst);
    snap_group_info_free(g1);
    snap_group_info_free(g0);
}

/* A member's record and its create journal carry the group's name, optionally. */
static void test_member_fields(void)
{
    snap_journal j, back;
    snap_err err = {0};
    snap_journal_init(&j, SNAP_JOURNAL_CREATE, "g1");
    j.group = snap_xstrdup("g1");
    char *text = snap_journal_to_json(&j);
    CHECK_CONTAINS(text, "\"group\": \"g1\"");
    REQUIRE(snap_journal_from_json(&back, text, "journal", &err) == 0);
    CHECK_STR(back.group, "g1");
    snap_journal_dispose(&back);
    free(text);
    free(j.group);
    j.group = NULL;
    text = snap_journal_to_json(&j);
    CHECK(strstr(text, "\"group\"") == NULL);
    REQUIRE(snap_journal_from_json(&back, text, "journal", &err) == 0);
    CHECK(back.group == NULL);
    snap_journal_dispose(&back);
    snap_journal_dispose(&j);
    free(text);
}

/* ------------------------------------------------------------ group op journal */

static snap_group_op *sample_op(const char *group, snap_group_op_kind kind)
{
    snap_group_op *op = snap_xcalloc(1, sizeof *op);
    op->group = snap_xstrdup(group);
    op->kind = kind;
    op->owner_pid = 4242;
    op->force = kind == SNAP_GROUP_OP_REVERT;
    op->state = SNAP_REVERT_STATE_PAUSED;
    op->metadata_only = kind == SNAP_GROUP_OP_DELETE;
    op->n_members = 2;
    op->members = snap_xcalloc(2, sizeof *op->members);
    op->members[0] = (snap_group_op_member){snap_xstrdup("db"), snap_xstrdup(UUID_A),
                                            snap_xstrdup(group), true};
    op->members[1] = (snap_group_op_member){snap_xstrdup("web"), snap_xstrdup(UUID_B),
                                            snap_xstrdup(group), false};
    return op;
}

static void test_op_round_trip(void)
{
    snap_err err = {0};
    snap_group_op *op = sample_op("g1", SNAP_GROUP_OP_REVERT), *back = NULL;
    char *text = snap_group_op_to_json(op);
    const char *want[] = {"\"op\": \"revert\"", "\"force\": true",
                          "\"state\": \"paused\"", "\"done\": true", "\"done\": false"};
    for (size_t i = 0; i < SNAP_N_OF(want); i++)
        CHECK_CONTAINS(text, want[i]);
    REQUIRE(snap_group_op_from_json(text, "j", &back, &err) == 0);
    CHECK_STR(back->group, "g1");
    CHECK_INT(back->kind, SNAP_GROUP_OP_REVERT);
    CHECK_INT(back->owner_pid, 4242);
    CHECK(back->force && !back->metadata_only);
    CHECK_INT(back->state, SNAP_REVERT_STATE_PAUSED);
    REQUIRE(back->n_members == 2);
    CHECK_STR(back->members[0].domain_name, "db");
    CHECK_STR(back->members[0].domain_uuid, UUID_A);
    CHECK_STR(back->members[1].snapshot, "g1");
    CHECK(back->members[0].done && !back->members[1].done);
    char *again = snap_group_op_to_json(back);
    CHECK_STR(again, text);
    free(again), free(text);
    snap_group_op_free(back);
    snap_group_op_free(op);
    /* A delete: its kind and metadata_only. */
    op = sample_op("g2", SNAP_GROUP_OP_DELETE);
    text = snap_group_op_to_json(op);
    REQUIRE(snap_group_op_from_json(text, "j", &back, &err) == 0);
    CHECK_INT(back->kind, SNAP_GROUP_OP_DELETE);
    CHECK(back->metadata_only && !back->force);
    char *done = snap_group_op_members(back, true),
         *left = snap_group_op_members(back, false);
    CHECK_STR(done, "db");
    CHECK_STR(left, "web");
    free(done), free(left);
    back->members[1].done = true;
    left = snap_group_op_members(back, false);
    CHECK_STR(left, "none");
    free(left), free(text);
    snap_group_op_free(back);
    snap_group_op_free(op);
}

static void test_op_strict_reading(void)
{
    snap_err err = {0};
    snap_group_op *op = sample_op("g1", SNAP_GROUP_OP_REVERT), *back = NULL;
    char *text = snap_group_op_to_json(op);
    struct {
        const char *from, *to, *want;
    } bad[] = {
        {"\"op\": \"revert\"", "\"op\": \"create\"", "field 'op'"},
        {"\"state\": \"paused\"", "\"state\": \"asleep\"", "field 'state'"},
        {"\"force\": true", "\"force\": 1", "field 'force'"},
        {"\"done\": true", "\"done\": \"yes\"", "field 'members[0].done'"},
        {"\"done\": false", "\"gone\": false", "field 'members[1].done'"},
        {UUID_A, "not-a-uuid", "field 'members[0].uuid'"},
        {"\"version\": 1", "\"version\": 2", "version 2 is not supported"},
        {"\"owner_pid\": 4242", "\"owner_pid\": -1", "field 'owner_pid'"},
    };
    for (size_t i = 0; i < SNAP_N_OF(bad); i++) {
        char *broken = replaced(text, bad[i].from, bad[i].to);
        CHECK(strcmp(broken, text) != 0);
        CHECK(snap_group_op_from_json(broken, "j.json", &back, &err) != 0);
        CHECK(back == NULL);
        CHECK_CONTAINS(err.msg, bad[i].want);
        CHECK_CONTAINS(err.msg, "j.json");
        free(broken);
    }
    op->n_members = 0; /* no member: nothing to finish is no journal */
    char *empty = snap_group_op_to_json(op);
    op->n_members = 2;
    CHECK(snap_group_op_from_json(empty, "j.json", &back, &err) != 0);
    CHECK_CONTAINS(err.msg, "field 'members'");
    free(empty), free(text);
    snap_group_op_free(op);
}

static bool names_has(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

static void test_op_store(void)
{
    const char *statedir = th_path("opstate");
    snap_meta_store gst;
    snap_err err = {0};
    snap_group_op **ops = NULL, *back = NULL;
    size_t n = 0;
    /* No groups directory: nothing pending, nothing made. */
    snap_group_op_pending(statedir, "db", UUID_A, &ops, &n);
    CHECK_INT(n, 0);
    REQUIRE(snap_meta_store_open_groups(&gst, statedir, true, &err) == 0);
    snap_group_op *op = sample_op("g1", SNAP_GROUP_OP_REVERT);
    snap_group_info *g1 = sample_group("g1");
    REQUIRE(snap_group_record_save(&gst, g1, &err) == 0);
    REQUIRE(snap_group_op_save(&gst, op, &err) == 0);
    struct stat sb;
    char *file = snap_meta_store_path(&gst, ".g1.op.json");
    CHECK(stat(file, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    free(file);
    /* A writer's temp file left behind is no journal. */
    CHECK(snap_meta_store_write(&gst, ".g1.op.json.tmp.1.x", "{", 1, &err) == 0);
    char **names = NULL;
    CHECK(snap_group_record_names(&gst, &names, &n, &err) == 0);
    CHECK(n == 1 && !strcmp(names[0], "g1")); /* the journal is hidden */
    snap_strv_free(names, n);
    CHECK(snap_group_op_names(&gst, &names, &n, &err) == 0);
    CHECK(n == 1 && names_has(names, n, "g1"));
    snap_strv_free(names, n);
    REQUIRE(snap_group_op_load(&gst, "g1", &back, &err) == 0);
    CHECK(back->members[0].done && !back->members[1].done);
    CHECK(snap_group_op_names_domain(back, "web", NULL));
    CHECK(snap_group_op_names_domain(back, NULL, "6B1C7E2A-3F4D-4E5A-9B8C-0D1E2F3A4B5C"));
    CHECK(!snap_group_op_names_domain(back, "other", UUID_A "0"));
    snap_group_op_free(back);
    /* Which pending operations name a domain (by name or UUID). */
    snap_group_op_pending(statedir, "web", NULL, &ops, &n);
    CHECK(n == 1 && !strcmp(ops[0]->group, "g1"));
    snap_group_op_list_free(ops, n);
    snap_group_op_pending(statedir, "nobody", "99999999-1111-2222-3333-444444444444",
                          &ops, &n);
    CHECK_INT(n, 0);
    snap_group_op_list_free(ops, n);
    /* An unreadable journal names nobody; its own load says what is wrong. */
    CHECK(snap_meta_store_write(&gst, ".g2.op.json", "{", 1, &err) == 0);
    snap_group_op_pending(statedir, "db", UUID_A, &ops, &n);
    CHECK(n == 1 && !strcmp(ops[0]->group, "g1"));
    snap_group_op_list_free(ops, n);
    CHECK(snap_group_op_load(&gst, "g2", &back, &err) != 0);
    CHECK_CONTAINS(err.msg, ".g2.op.json");
    /* Removed: gone, and removing again is no error. */
    CHECK(snap_group_op_remove(&gst, "g1", &err) == 0);
    CHECK_INT(snap_group_op_load(&gst, "g1", &back, &err), SNAP_ERROR_NOTFOUND);
    CHECK(snap_group_op_remove(&gst, "g1", &err) == 0);
    snap_group_info *kept = NULL; /* the journal's removal leaves the record */
    CHECK(snap_group_record_load(&gst, "g1", &kept, &err) == 0);
    snap_group_info_free(kept);
    snap_group_info_free(g1);
    snap_meta_store_close(&gst);
    snap_group_op_free(op);
}

int main(void)
{
    th_plan(8);
    TH_RUN(test_round_trip);
    TH_RUN(test_shut_off_member);
    TH_RUN(test_strict_reading);
    TH_RUN(test_store_and_recovery_question);
    TH_RUN(test_member_fields);
    TH_RUN(test_op_round_trip);
    TH_RUN(test_op_strict_reading);
    TH_RUN(test_op_store);
    return th_finish();
}
