/*
 * Internal snapshots are identified by more than their tag (issue 15, fault
 * 6). A qcow2 snapshot deleted and re-created by hand (`qemu-img snapshot
 * -d/-c`) gets the same name and often the same id; xlsnap used to revert
 * to (and delete) that impostor, and recorded no id for live snapshots.
 * Records now keep the id, date, VM clock and VM state size QEMU listed at
 * creation (QMP or qemu-img), and revert/delete refuse an entry that
 * differs, leaving everything as it was. Records without them (older
 * xlsnap) are still trusted by name. On a kernel-less simulated domain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snap_json.h"
#include "snap_meta.h"
#include "th.h"
#include "th_baredom.h"
#include "th_qemu.h"
#include "th_snaptest.h"

static th_xlsim_dom d;
static bool created;

/* The record file of snapshot name (static buffer), "" when not found. */
static const char *record_path(const char *name)
{
    static char path[4096];
    char *out = NULL, file[256];
    snprintf(file, sizeof file, "%s.json", name);
    th_runl(&out, NULL, "find", th_xlsim_statedir(), "-name", file, (char *)NULL);
    snprintf(path, sizeof path, "%.*s", out ? (int)strcspn(out, "\n") : 0,
             out ? out : "");
    free(out);
    return path;
}

static bool load_record(const char *name, snap_meta *m)
{
    const char *path = record_path(name);
    char *text = th_read_file(path);
    snap_err err = {0};
    bool ok = text && snap_meta_from_json(m, text, path, &err) == 0;
    if (!ok)
        th_fail_at(__FILE__, __LINE__, "record of '%s' (%s): %s", name, path,
                   text ? err.msg : "unreadable");
    free(text);
    return ok;
}

/* The entry `qemu-img info -U --output=json image` lists as name, or NULL. */
static yajl_val table_entry(const char *image, const char *name, yajl_val *root)
{
    char *json = NULL;
    th_runl(&json, NULL, "qemu-img", "info", "-U", "--output=json", image, (char *)NULL);
    snap_err err = {0};
    *root = json ? snap_json_parse(json, "qemu-img info", &err) : NULL;
    free(json);
    yajl_val snaps = snap_json_get_array(*root, "snapshots");
    for (size_t i = 0; i < snap_json_array_len(snaps); i++) {
        const char *n = snap_json_get_string(snap_json_array_at(snaps, i), "name");
        if (n && !strcmp(n, name))
            return snap_json_array_at(snaps, i);
    }
    return NULL;
}

/* Every disk of the record holds the id and stamp the image lists for it. */
static void check_identity_recorded(const char *name)
{
    snap_meta m;
    REQUIRE(load_record(name, &m));
    CHECK_INT(m.n_disks, 2);
    for (size_t i = 0; i < m.n_disks; i++) {
        const snap_meta_disk *md = &m.disks[i];
        yajl_val root, e = table_entry(md->base_path, name, &root);
        long long date_sec = -1, date_nsec = -1, clock_sec = -1;
        snap_json_get_int(e, "date-sec", &date_sec);
        snap_json_get_int(e, "date-nsec", &date_nsec);
        snap_json_get_int(e, "vm-clock-sec", &clock_sec);
        CHECK(e != NULL);
        CHECK_STR(md->qemu_snap_id, snap_json_get_string(e, "id"));
        CHECK(md->qemu_snap_stamp.known);
        CHECK_INT(md->qemu_snap_stamp.date_sec, date_sec);
        CHECK_INT(md->qemu_snap_stamp.date_nsec, date_nsec);
        CHECK_INT(md->qemu_snap_stamp.vm_clock_sec, clock_sec);
        yajl_tree_free(root);
    }
    snap_meta_dispose(&m);
}

/* `qemu-img snapshot -d name` then `-c name`: same name, new entry. */
static bool plant_impostor(const char *image, const char *name)
{
    char *err = NULL;
    int rc = th_runl(NULL, &err, "qemu-img", "snapshot", "-d", name, image, (char *)NULL);
    if (rc == 0) {
        free(err);
        rc = th_runl(NULL, &err, "qemu-img", "snapshot", "-c", name, image, (char *)NULL);
    }
    if (rc != 0)
        th_fail_at(__FILE__, __LINE__, "impostor %s in %s: %s", name, image,
                   err ? err : "");
    free(err);
    return rc == 0;
}

/* The command fails for the impostor on xvdb, saying so, and changes nothing. */
static void check_refused(unsigned world, const char *action, const char *const argv[])
{
    char *before = th_world_capture(&d, world);
    th_cmd r;
    CHECK_INT(th_xlsnapv(&r, argv), 1);
    CHECK_CONTAINS(r.err, "disk xvdb: the internal snapshot 's1' in ");
    CHECK_CONTAINS(r.err, "b.qcow2 is not the one xlsnap took (id ");
    CHECK_CONTAINS(r.err, "; it was replaced outside xlsnap; ");
    CHECK_CONTAINS(r.err, action);
    th_cmd_free(&r);
    char *after = th_world_capture(&d, world);
    CHECK_WORLD(before, after);
    free(before);
    free(after);
}

static void test_live_snapshot_records_identity(void)
{
    REQUIRE(created = th_bare_create(&d, "ident"));
    XLSNAP_OK(NULL, "snapshot-create", "-q", "off", "-i", "ident", "s1");
    check_identity_recorded("s1");
}

static void test_offline_revert_and_delete_refuse_impostor(void)
{
    REQUIRE(created);
    REQUIRE(th_bare_shut_off(&d));
    REQUIRE(plant_impostor(d.data, "s1"));
    check_refused(0, "refusing to revert to it",
                  (const char *const[]){"snapshot-revert", "ident", "s1", NULL});
    check_refused(0, "refusing to delete it (snapshot-delete --metadata",
                  (const char *const[]){"snapshot-delete", "ident", "s1", NULL});
}

/* Live, QEMU's own listing (query-block) is what is compared. */
static void test_live_delete_refuses_impostor(void)
{
    REQUIRE(created);
    REQUIRE(th_bare_relaunch(&d));
    check_refused(TH_WORLD_LIVE, "refusing to delete it",
                  (const char *const[]){"snapshot-delete", "ident", "s1", NULL});
    /* The way out the message names: the record goes, the image stays. */
    XLSNAP_OK(NULL, "snapshot-delete", "--metadata", "ident", "s1");
    CHECK(th_qemu_img_has_snapshot(d.data, "s1"));
}

/*
 * Puts a qemu-img in front of the real one in PATH that logs each call's
 * subcommand to log; returns the PATH to restore (free it).
 */
static char *spy_on_qemu_img(const char *log)
{
    char *real = NULL;
    th_runl(&real, NULL, "sh", "-c", "command -v qemu-img", (char *)NULL);
    if (!real)
        return NULL;
    real[strcspn(real, "\n")] = '\0';
    const char *dir = th_path("spy");
    mkdir(dir, 0700);
    char *script =
        snap_xasprintf("#!/bin/sh\necho \"$1\" >>'%s'\nexec '%s' \"$@\"\n", log, real);
    char *path = snap_xasprintf("%s/qemu-img", dir);
    bool ok = th_write_file(path, script) && chmod(path, 0755) == 0;
    char *old = snap_xstrdup(getenv("PATH"));
    char *spied = snap_xasprintf("%s:%s", dir, old);
    if (ok)
        setenv("PATH", spied, 1);
    free(real);
    free(script);
    free(path);
    free(spied);
    return old;
}

/*
 * Offline (qemu-img) snapshots are recorded the same way, and the images'
 * tables are read without qemu-img: one child per disk, the write.
 */
static void test_offline_snapshot_records_identity(void)
{
    REQUIRE(created);
    REQUIRE(th_bare_shut_off(&d));
    const char *log = th_path("qemu-img-calls");
    char *old_path = spy_on_qemu_img(log);
    REQUIRE(old_path);
    XLSNAP_OK(NULL, "snapshot-create", "-q", "off", "-i", "ident", "s2");
    setenv("PATH", old_path, 1);
    free(old_path);
    char *calls = th_read_file(log);
    CHECK_STR(calls, "snapshot\nsnapshot\n");
    free(calls);
    check_identity_recorded("s2");
}

/*
 * Offline, the plan reads the images without qemu-img (snap_qcow2), but an
 * image another QEMU holds is still refused before anything is written,
 * in qemu-img's words as before: the listing's lock check still applies.
 */
static void test_offline_image_held_elsewhere_is_refused(void)
{
    REQUIRE(created);
    th_qemu vm;
    const char *args[] = {"-drive", th_qemu_drive_arg(d.data, "held"), NULL};
    REQUIRE(th_qemu_start(&vm, "holder", args));
    char *before = th_world_capture(&d, 0);
    th_cmd r;
    CHECK_INT(th_xlsnapv(&r, (const char *const[]){"snapshot-create", "-q", "off", "-i",
                                                   "ident", "s3", NULL}),
              1);
    char want[4400];
    snprintf(want, sizeof want,
             "disk xvdb: image %s is in use by a running QEMU; cannot read it without "
             "sharing (qemu-img info --backing-chain): ",
             d.data);
    CHECK_CONTAINS(r.err, want);
    CHECK_CONTAINS(r.err, "Failed to get shared \"write\" lock");
    th_cmd_free(&r);
    th_qemu_stop(&vm);
    char *after = th_world_capture(&d, 0);
    CHECK_WORLD(before, after);
    free(before);
    free(after);
    CHECK(!th_qemu_img_has_snapshot(d.root, "s3"));
    CHECK(!th_qemu_img_has_snapshot(d.data, "s3"));
}

/* A record written before the identity was kept: reverted by name, as before. */
static void test_record_without_identity_still_reverts(void)
{
    REQUIRE(created);
    snap_meta m;
    REQUIRE(load_record("s2", &m));
    for (size_t i = 0; i < m.n_disks; i++) {
        free(m.disks[i].qemu_snap_id);
        m.disks[i].qemu_snap_id = NULL;
        m.disks[i].qemu_snap_stamp.known = false;
    }
    char *text = snap_meta_to_json(&m);
    CHECK(!strstr(text, "\"date_sec\""));
    REQUIRE(th_write_file(record_path("s2"), text));
    free(text);
    snap_meta_dispose(&m);
    XLSNAP_OK(NULL, "snapshot-revert", "ident", "s2");
}

int main(void)
{
    th_plan(6);
    TH_RUN(test_live_snapshot_records_identity);
    TH_RUN(test_offline_revert_and_delete_refuse_impostor);
    TH_RUN(test_live_delete_refuses_impostor);
    TH_RUN(test_offline_snapshot_records_identity);
    TH_RUN(test_offline_image_held_elsewhere_is_refused);
    TH_RUN(test_record_without_identity_still_reverts);
    if (created)
        th_xlsim_destroy(&d);
    return th_finish();
}
