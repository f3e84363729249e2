/*
 * snapshot-delete --discard-journal on a real guest (issue 15, fault 7): a
 * journal recovery cannot read, left while the guest's filesystems are
 * frozen by its agent, blocks every create with an error naming the way
 * out; --discard-journal thaws the guest through the domain's own agent,
 * keeps the journal aside, and the next create works. The guest is running,
 * so nothing is paused or unpaused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "th.h"
#include "th_guest.h"
#include "th_snaptest.h"

static th_xlsim_dom g;

/* The domain's state directory (found by its first record), malloc'd. */
static char *state_dir(void)
{
    char *out = NULL, dir[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/snapshots", th_xlsim_statedir());
    th_runl(&out, NULL, "find", dir, "-name", "s0.json", "-printf", "%h", (char *)NULL);
    if (out && !*out) {
        free(out);
        out = NULL;
    }
    return out;
}

/* Freezes the guest's filesystems the way a create does: through its agent. */
static bool freeze_guest(void)
{
    th_agent *ga = th_agent_connect(g.vm.agent_path, 20000);
    char *error = NULL;
    yajl_val v =
        ga ? th_agent_execute(ga, "guest-fsfreeze-freeze", NULL, NULL, 20000, &error)
           : NULL;
    bool ok = v != NULL;
    if (!ok)
        th_note("guest-fsfreeze-freeze: %s", error ? error : "no answer");
    yajl_tree_free(v);
    free(error);
    th_agent_close(ga);
    return ok;
}

static void test_garbage_journal_discarded_and_thawed(void)
{
    REQUIRE(SNAP_CREATE(&g, "-i", "s0"));
    char *dir = state_dir();
    REQUIRE(dir != NULL);
    char *journal = snap_xasprintf("%s/.journal.json", dir);
    REQUIRE(th_write_file(journal, "garbage {"));
    REQUIRE(freeze_guest());
    char *status = th_xlsim_fsfreeze_status(&g);
    CHECK_STR(status, "frozen");
    free(status);
    th_cmd r;
    th_xlsnap(&r, "snapshot-create", g.name, "s1", NULL);
    CHECK(r.rc != 0);
    CHECK_CONTAINS(r.err, ".journal.json");
    CHECK_CONTAINS(r.err,
                   "move the journal aside with snapshot-delete --discard-journal dj");
    th_cmd_free(&r);
    XLSNAP_OK(&r, "snapshot-delete", "--discard-journal", g.name);
    CHECK_CONTAINS(r.out, "Journal of domain dj moved aside to");
    th_cmd_free(&r);
    status = th_xlsim_fsfreeze_status(&g);
    CHECK_STR(status, "thawed");
    free(status);
    CHECK(th_xlsim_guest_sh(&g, "echo probe >/mnt/vdb/probe && sync", NULL) == 0);
    CHECK(access(journal, F_OK) != 0);
    char *aside = NULL;
    th_runl(&aside, NULL, "find", dir, "-name", ".journal.json.discarded-*", "-exec",
            "cat", "{}", ";", (char *)NULL);
    CHECK_STR(aside, "garbage {");
    free(aside);
    CHECK(SNAP_CREATE(&g, "-i", "s1"));
    free(journal);
    free(dir);
}

int main(void)
{
    th_plan(2);
    th_snap_run_boot(&g, "dj", 0);
    TH_SNAP_RUN(test_garbage_journal_discarded_and_thawed);
    return th_snap_finish();
}
