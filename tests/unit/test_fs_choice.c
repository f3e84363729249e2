/*
 * Per-filesystem quiesce (snap_fsfreeze.h, issue 18 item 3): choosing the
 * filesystems to freeze from the agent's guest-get-fsinfo, refusing
 * mountpoints it does not list, and the outcome and consistency level
 * recorded for each filesystem.
 *
 * FSINFO_REAL is a real reply, recorded from qemu-ga 7.2 in xlsnap's test
 * guest booted with xlsnap.tmpfs=/mnt/scratch xlsnap.bind=vdb: two ext4
 * disks (/mnt/vda, /mnt/vdb), /mnt/vdb bind-mounted again at /mnt/vdb-bind,
 * and a tmpfs at /mnt/scratch, which the agent does not list (no block
 * device). The agent lists mounts newest first. Sent the same agent
 * guest-fsfreeze-freeze-list of /mnt/vdb, /mnt/vdb-bind, /mnt/nonexistent
 * and /mnt/scratch, it answered 1: the bind mount's EBUSY and both unknown
 * names were dropped without a word. FSINFO_VFAT adds, by hand, a vfat
 * /boot/efi (a type Linux cannot freeze) to the same guest.
 */
#include <stdlib.h>
#include <string.h>

#include "snap_fsfreeze.h"
#include "snap_json.h"
#include "th.h"

#define FS_VDB_BIND                                                                      \
    "{\"name\": \"vdb\", \"total-bytes\": 24116224, \"mountpoint\": \"/mnt/vdb-bind\", " \
    "\"disk\": [{\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, "                    \
    "\"pci-controller\": "                                                               \
    "{\"bus\": 0, \"slot\": 3, \"domain\": 0, \"function\": 0}, \"dev\": \"/dev/vdb\", " \
    "\"target\": 0}], \"used-bytes\": 14336, \"type\": \"ext4\"}"
#define FS_VDB                                                                           \
    "{\"name\": \"vdb\", \"total-bytes\": 24116224, \"mountpoint\": \"/mnt/vdb\", "      \
    "\"disk\": [{\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, "                    \
    "\"pci-controller\": "                                                               \
    "{\"bus\": 0, \"slot\": 3, \"domain\": 0, \"function\": 0}, \"dev\": \"/dev/vdb\", " \
    "\"target\": 0}], \"used-bytes\": 14336, \"type\": \"ext4\"}"
#define FS_VDA                                                                           \
    "{\"name\": \"vda\", \"total-bytes\": 24116224, \"mountpoint\": \"/mnt/vda\", "      \
    "\"disk\": [{\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, "                    \
    "\"pci-controller\": "                                                               \
    "{\"bus\": 0, \"slot\": 2, \"domain\": 0, \"function\": 0}, \"dev\": \"/dev/vda\", " \
    "\"target\": 0}], \"used-bytes\": 14336, \"type\": \"ext4\"}"
#define FS_EFI                                                                           \
    "{\"name\": \"vdc1\", \"mountpoint\": \"/boot/efi\", \"disk\": [{\"bus-type\": "     \
    "\"virtio\", \"dev\": \"/dev/vdc1\"}], \"type\": \"vfat\"}"

static const char FSINFO_REAL[] = "[" FS_VDB_BIND ", " FS_VDB ", " FS_VDA "]";
static const char FSINFO_VFAT[] = "[" FS_EFI ", " FS_VDB ", " FS_VDA "]";

typedef struct agent_list {
    snap_agent_fs *fs;
    size_t n;
} agent_list;

static agent_list parse(const char *json)
{
    agent_list l = {0};
    snap_err err;
    yajl_val v = yajl_tree_parse(json, NULL, 0);
    if (!v || snap_agent_fsinfo_parse(v, &l.fs, &l.n, &err) != 0)
        th_fail_at(__FILE__, __LINE__, "recorded fsinfo not parsed");
    yajl_tree_free(v);
    return l;
}

static void list_free(agent_list *l)
{
    snap_agent_fsinfo_free(l->fs, l->n);
}

static const snap_fs_choice *choice(const snap_fs_selection *sel, const char *mp)
{
    for (size_t i = 0; i < sel->n; i++)
        if (!strcmp(sel->fs[i].mountpoint, mp))
            return &sel->fs[i];
    th_fail_at(__FILE__, __LINE__, "no %s in the selection", mp);
    return &sel->fs[0];
}

/* The freeze-list as "a,b" (static). */
static const char *asked(const snap_fs_selection *sel)
{
    static char buf[256];
    buf[0] = '\0';
    for (size_t i = 0; i < sel->n_freeze; i++) {
        if (i)
            strcat(buf, ",");
        strcat(buf, sel->freeze_list[i]);
    }
    return buf;
}

static void test_real_fsinfo_parsed(void)
{
    agent_list l = parse(FSINFO_REAL);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.fs[0].mountpoint, "/mnt/vdb-bind");
    CHECK_STR(l.fs[0].name, "vdb");
    CHECK_STR(l.fs[1].mountpoint, "/mnt/vdb");
    CHECK_STR(l.fs[2].name, "vda");
    CHECK_STR(l.fs[2].type, "ext4");
    CHECK_STR(l.fs[2].disks[0].dev, "/dev/vda");
    CHECK_INT(l.fs[2].disks[0].pci_slot, 2);
    list_free(&l);
}

/* Default: everything, the bind mount frozen with its original (once). */
static void test_all_by_default_bind_mount_once(void)
{
    agent_list l = parse(FSINFO_REAL);
    snap_fs_selection sel;
    snap_err err;
    REQUIRE(snap_fs_select(l.fs, l.n, NULL, 0, NULL, 0, &sel, &err) == 0);
    CHECK_STR(asked(&sel), "/mnt/vdb,/mnt/vda");
    CHECK(!choice(&sel, "/mnt/vdb-bind")->asked);
    CHECK_STR(choice(&sel, "/mnt/vdb-bind")->reason,
              "same filesystem as /mnt/vdb (device vdb)");
    CHECK(snap_fs_selection_outcome(&sel, 2, NULL));
    for (size_t i = 0; i < sel.n; i++)
        CHECK_INT(sel.fs[i].outcome, SNAP_FS_FROZEN);
    snap_meta_quiesce q = {.state = SNAP_META_QUIESCED};
    snap_fs_selection_record(&sel, &q);
    CHECK_INT(q.state, SNAP_META_QUIESCED);
    CHECK_INT(q.n_filesystems, 3);
    CHECK(q.filesystems[1].reason == NULL); /* /mnt/vdb: frozen, nothing to say */
    CHECK_STR(q.filesystems[0].reason, "same filesystem as /mnt/vdb (device vdb)");
    snap_meta m;
    snap_meta_init(&m);
    m.quiesce = q;
    snap_meta_dispose(&m);
    snap_fs_selection_dispose(&sel);
    list_free(&l);
}

/* --freeze-mounts=/mnt/vda: vdb (and its bind mount) stay unfrozen, named. */
static void test_freeze_mounts_subset_partial(void)
{
    agent_list l = parse(FSINFO_REAL);
    const char *only[] = {"/mnt/vda"};
    snap_fs_selection sel;
    snap_err err;
    REQUIRE(snap_fs_select(l.fs, l.n, only, 1, NULL, 0, &sel, &err) == 0);
    CHECK_STR(asked(&sel), "/mnt/vda");
    CHECK(snap_fs_selection_outcome(&sel, 1, NULL));
    CHECK_INT(choice(&sel, "/mnt/vda")->outcome, SNAP_FS_FROZEN);
    CHECK_INT(choice(&sel, "/mnt/vdb")->outcome, SNAP_FS_SKIPPED);
    CHECK_STR(choice(&sel, "/mnt/vdb")->reason, "not chosen (freeze-mounts)");
    snap_meta m;
    snap_meta_init(&m);
    m.quiesce.state = SNAP_META_QUIESCED;
    snap_fs_selection_record(&sel, &m.quiesce);
    CHECK_INT(m.quiesce.state, SNAP_META_PARTIALLY_QUIESCED);
    char *unfrozen = snap_fs_selection_unfrozen(&sel);
    CHECK_STR(unfrozen, "/mnt/vdb-bind (not chosen (freeze-mounts)), /mnt/vdb (not "
                        "chosen (freeze-mounts))");
    free(unfrozen);
    snap_meta_dispose(&m);
    snap_fs_selection_dispose(&sel);
    list_free(&l);
}

/* --no-freeze=/mnt/vda; naming the bind mount's original freezes both. */
static void test_no_freeze_excludes(void)
{
    agent_list l = parse(FSINFO_REAL);
    const char *skip[] = {"/mnt/vda"};
    snap_fs_selection sel;
    snap_err err;
    REQUIRE(snap_fs_select(l.fs, l.n, NULL, 0, skip, 1, &sel, &err) == 0);
    CHECK_STR(asked(&sel), "/mnt/vdb");
    CHECK_STR(choice(&sel, "/mnt/vda")->reason, "excluded (no-freeze)");
    CHECK(snap_fs_selection_outcome(&sel, 1, NULL));
    CHECK_INT(choice(&sel, "/mnt/vdb-bind")->outcome, SNAP_FS_FROZEN);
    CHECK_INT(choice(&sel, "/mnt/vda")->outcome, SNAP_FS_SKIPPED);
    snap_fs_selection_dispose(&sel);
    list_free(&l);
}

/* Names the agent does not list (a tmpfs, a typo) are refused, listing what it offers. */
static void test_unknown_mountpoints_refused(void)
{
    agent_list l = parse(FSINFO_REAL);
    const char *tmpfs[] = {"/mnt/scratch"}, *typo[] = {"/mnt/vdb/"};
    snap_fs_selection sel;
    snap_err err;
    CHECK_INT(snap_fs_select(l.fs, l.n, tmpfs, 1, NULL, 0, &sel, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "mountpoint /mnt/scratch (to freeze) is not a filesystem the "
                            "guest agent can freeze; it lists: /mnt/vdb-bind (ext4), "
                            "/mnt/vdb (ext4), /mnt/vda (ext4) (mounts without a block "
                            "device, such as tmpfs");
    CHECK(sel.fs == NULL);
    CHECK_INT(snap_fs_select(l.fs, l.n, NULL, 0, typo, 1, &sel, &err),
              SNAP_ERROR_NOTFOUND);
    CHECK_CONTAINS(err.msg, "mountpoint /mnt/vdb/ (not to freeze)");
    const char *both[] = {"/mnt/vda"};
    CHECK_INT(snap_fs_select(l.fs, l.n, both, 1, both, 1, &sel, &err), SNAP_ERROR_INVAL);
    CHECK_CONTAINS(err.msg, "/mnt/vda is both to freeze and not to freeze");
    list_free(&l);
}

/* A vfat /boot/efi is skipped (not asked for), and refused when named to freeze. */
static void test_unfreezable_type_skipped(void)
{
    agent_list l = parse(FSINFO_VFAT);
    snap_fs_selection sel;
    snap_err err;
    REQUIRE(snap_fs_select(l.fs, l.n, NULL, 0, NULL, 0, &sel, &err) == 0);
    CHECK_STR(asked(&sel), "/mnt/vdb,/mnt/vda");
    CHECK_STR(choice(&sel, "/boot/efi")->reason, "vfat cannot be frozen");
    CHECK(snap_fs_selection_outcome(&sel, 2, NULL));
    snap_meta_quiesce q = {.state = SNAP_META_QUIESCED};
    snap_fs_selection_record(&sel, &q);
    CHECK_INT(q.state, SNAP_META_PARTIALLY_QUIESCED);
    CHECK_INT(q.filesystems[0].outcome, SNAP_FS_SKIPPED);
    snap_meta m;
    snap_meta_init(&m);
    m.quiesce = q;
    snap_meta_dispose(&m);
    snap_fs_selection_dispose(&sel);
    const char *efi[] = {"/boot/efi"};
    CHECK_INT(snap_fs_select(l.fs, l.n, efi, 1, NULL, 0, &sel, &err),
              SNAP_ERROR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "/boot/efi (to freeze) is vfat, which Linux cannot freeze");
    list_free(&l);
}

/* Fewer frozen than asked (qemu-ga's silent skip): no filesystem counts as frozen. */
static void test_short_count_not_confirmed(void)
{
    agent_list l = parse(FSINFO_REAL);
    snap_fs_selection sel;
    snap_err err;
    REQUIRE(snap_fs_select(l.fs, l.n, NULL, 0, NULL, 0, &sel, &err) == 0);
    CHECK_INT(snap_fs_check_count(&sel, 1, true, NULL, "dom", &err), SNAP_ERROR_FAIL);
    CHECK_CONTAINS(err.msg, "freeze: the agent froze 1 of the 2 filesystems asked "
                            "(/mnt/vdb, /mnt/vda)");
    CHECK_INT(snap_fs_check_count(&sel, 1, false, NULL, "dom", &err), 0);
    CHECK_INT(snap_fs_check_count(&sel, 2, true, NULL, "dom", &err), 0);
    CHECK(!snap_fs_selection_outcome(&sel, 1, NULL));
    CHECK_INT(choice(&sel, "/mnt/vda")->outcome, SNAP_FS_FAILED);
    CHECK_STR(choice(&sel, "/mnt/vda")->reason,
              "not confirmed: the agent froze 1 of the 2 filesystems asked, without "
              "saying which");
    snap_meta_quiesce q = {.state = SNAP_META_QUIESCED};
    snap_fs_selection_record(&sel, &q);
    CHECK_INT(q.state, SNAP_META_PARTIALLY_QUIESCED); /* one was frozen */
    snap_meta m;
    snap_meta_init(&m);
    m.quiesce = q;
    snap_meta_dispose(&m);
    snap_fs_selection_dispose(&sel);
    /* A failed freeze: every one failed, crash-consistent. */
    REQUIRE(snap_fs_select(l.fs, l.n, NULL, 0, NULL, 0, &sel, &err) == 0);
    CHECK(!snap_fs_selection_outcome(&sel, -1, "agent: no reply within 100 ms"));
    CHECK_STR(choice(&sel, "/mnt/vdb")->reason,
              "freeze failed: agent: no reply within 100 ms");
    snap_meta_quiesce crash = {.state = SNAP_META_CRASH_CONSISTENT};
    snap_fs_selection_record(&sel, &crash);
    CHECK_INT(crash.state, SNAP_META_CRASH_CONSISTENT);
    snap_meta_init(&m);
    m.quiesce = crash;
    snap_meta_dispose(&m);
    snap_fs_selection_dispose(&sel);
    list_free(&l);
}

/* QEMU's snapshot came after the thaw (a late answer): nothing counts as frozen. */
static void test_late_snapshot_voids_frozen(void)
{
    agent_list l = parse(FSINFO_REAL);
    snap_fs_selection sel;
    snap_err err;
    REQUIRE(snap_fs_select(l.fs, l.n, NULL, 0, NULL, 0, &sel, &err) == 0);
    CHECK(snap_fs_selection_outcome(&sel, 2, NULL));
    snap_fs_selection_void(&sel, "thawed before QEMU took the snapshot");
    snap_meta_quiesce q = {.state = SNAP_META_CRASH_CONSISTENT};
    snap_fs_selection_record(&sel, &q);
    CHECK_INT(q.state, SNAP_META_CRASH_CONSISTENT);
    for (size_t i = 0; i < q.n_filesystems; i++) {
        CHECK_INT(q.filesystems[i].outcome, SNAP_FS_FAILED);
        CHECK_STR(q.filesystems[i].reason, "thawed before QEMU took the snapshot");
    }
    snap_meta m;
    snap_meta_init(&m);
    m.quiesce = q;
    snap_meta_dispose(&m);
    snap_fs_selection_dispose(&sel);
    list_free(&l);
}

/* The record keeps the level and every filesystem's outcome through JSON. */
static void test_record_round_trip(void)
{
    snap_meta m, back;
    snap_err err;
    snap_meta_init(&m);
    m.name = strdup("s1");
    m.domain.name = strdup("dom");
    m.domain.uuid = strdup("f45d49e4-7e71-49b2-80d3-9fdf7933b4a4");
    m.quiesce.policy = SNAP_QUIESCE_BEST_EFFORT;
    m.quiesce.state = SNAP_META_PARTIALLY_QUIESCED;
    m.quiesce.frozen_count = 1;
    snap_meta_add_fs(&m.quiesce, "/mnt/vda", "ext4", "vda", SNAP_FS_FROZEN, NULL);
    snap_meta_add_fs(&m.quiesce, "/mnt/vdb", "ext4", "vdb", SNAP_FS_SKIPPED,
                     "excluded (no-freeze)");
    char *json = snap_meta_to_json(&m);
    CHECK_CONTAINS(json, "\"state\": \"partially-quiesced\"");
    CHECK_CONTAINS(json, "\"outcome\": \"skipped\"");
    REQUIRE(snap_meta_from_json(&back, json, "s1.json", &err) == 0);
    CHECK_INT(back.quiesce.state, SNAP_META_PARTIALLY_QUIESCED);
    CHECK_INT(back.quiesce.n_filesystems, 2);
    CHECK_STR(back.quiesce.filesystems[1].reason, "excluded (no-freeze)");
    CHECK_INT(back.quiesce.filesystems[0].outcome, SNAP_FS_FROZEN);
    CHECK_STR(
        snap_consistency_to_string(snap_meta_consistency_public(back.quiesce.state)),
        "partially-quiesced");
    snap_meta_dispose(&back);
    /* An outcome this version does not know is an error naming the field. */
    char *bad = strdup(json);
    char *at = strstr(bad, "\"skipped\"");
    memcpy(at, "\"skippy\" ", 9);
    CHECK(snap_meta_from_json(&back, bad, "s1.json", &err) != 0);
    CHECK_CONTAINS(err.msg, "quiesce.filesystems[1].outcome");
    snap_meta_dispose(&back);
    free(bad);
    free(json);
    snap_meta_dispose(&m);
}

int main(void)
{
    th_plan(9);
    TH_RUN(test_real_fsinfo_parsed);
    TH_RUN(test_all_by_default_bind_mount_once);
    TH_RUN(test_freeze_mounts_subset_partial);
    TH_RUN(test_no_freeze_excludes);
    TH_RUN(test_unknown_mountpoints_refused);
    TH_RUN(test_unfreezable_type_skipped);
    TH_RUN(test_short_count_not_confirmed);
    TH_RUN(test_late_snapshot_voids_frozen);
    TH_RUN(test_record_round_trip);
    return th_finish();
}
