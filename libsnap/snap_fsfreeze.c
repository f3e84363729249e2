/*
 * Per-filesystem quiesce: choosing the filesystems to freeze from the
 * agent's list, and what became of each (snap_fsfreeze.h says why so).
 */
#include "snap_fsfreeze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_plan.h"
#include "snap_text.h"

/*
 * Linux filesystems on a block device without freeze support (no
 * freeze_fs/freeze_super in their super_operations, kernel 6.1): FIFREEZE
 * fails with EOPNOTSUPP, which qemu-ga ignores without counting them.
 */
static const char *const unfreezable_types[] = {
    "vfat",   "msdos", "fat",  "exfat", "iso9660", "udf",     "squashfs", "erofs",
    "cramfs", "romfs", "ntfs", "ntfs3", "hfs",     "hfsplus", "minix",
};

bool snap_fs_type_unfreezable(const char *type)
{
    for (size_t i = 0; type && i < SNAP_N_OF(unfreezable_types); i++)
        if (!strcmp(type, unfreezable_types[i]))
            return true;
    return false;
}

static bool in_list(const char *s, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, v[i]))
            return true;
    return false;
}

static const snap_agent_fs *find_fs(const snap_agent_fs *fs, size_t n, const char *mp)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(fs[i].mountpoint, mp))
            return &fs[i];
    return NULL;
}

/* "/ (ext4), /mnt/vdb (ext4)" or "none", for messages (malloc'd). */
static char *describe_listed(const snap_agent_fs *fs, size_t n)
{
    char *out = snap_xstrdup(n ? "" : "none");
    for (size_t i = 0; i < n; i++) {
        char *next = snap_xasprintf("%s%s%s (%s)", out, i ? ", " : "", fs[i].mountpoint,
                                    fs[i].type);
        free(out);
        out = next;
    }
    return out;
}

/* Every name in v is a filesystem the agent lists (and freezable, when to_freeze). */
static int check_named(const snap_agent_fs *fs, size_t n, const char *const *v, size_t nv,
                       bool to_freeze, snap_err *err)
{
    for (size_t i = 0; i < nv; i++) {
        const snap_agent_fs *f = find_fs(fs, n, v[i]);
        const char *what = to_freeze ? "to freeze" : "not to freeze";
        if (!f) {
            char *listed = describe_listed(fs, n);
            int rc = snap_err_set(
                err, SNAP_ERROR_NOTFOUND,
                "mountpoint %s (%s) is not a filesystem the guest agent can freeze; it "
                "lists: %s (mounts without a block device, such as tmpfs, proc or "
                "FUSE, are never listed)",
                v[i], what, listed);
            free(listed);
            return rc;
        }
        if (to_freeze && snap_fs_type_unfreezable(f->type))
            return snap_err_set(err, SNAP_ERROR_UNSUPPORTED,
                                "mountpoint %s (to freeze) is %s, which Linux cannot "
                                "freeze",
                                v[i], f->type);
    }
    return 0;
}

/* Why fs is not asked for (malloc'd), or NULL when it is a candidate. */
static char *skip_reason(const snap_agent_fs *f, const char *const *only, size_t n_only,
                         const char *const *skip, size_t n_skip)
{
    if (in_list(f->mountpoint, skip, n_skip))
        return snap_xstrdup("excluded (no-freeze)");
    if (only && !in_list(f->mountpoint, only, n_only))
        return snap_xstrdup("not chosen (freeze-mounts)");
    if (snap_fs_type_unfreezable(f->type))
        return snap_xasprintf("%s cannot be frozen", f->type);
    return NULL;
}

/*
 * The asked filesystem on device that was mounted first, or NULL: qemu-ga
 * lists the mounts newest first, so a bind mount comes before its original.
 */
static const snap_fs_choice *asked_on(const snap_fs_selection *sel, const char *device)
{
    for (size_t i = sel->n; i-- > 0;)
        if (sel->fs[i].asked && !strcmp(sel->fs[i].device, device))
            return &sel->fs[i];
    return NULL;
}

/*
 * A device mounted twice is frozen once, through its first mounted asked one:
 * its other mountpoints are frozen with it, whatever was asked of them.
 */
static void join_same_device(snap_fs_selection *sel)
{
    for (size_t i = 0; i < sel->n; i++) {
        snap_fs_choice *c = &sel->fs[i];
        const snap_fs_choice *first = asked_on(sel, c->device);
        if (!first || first == c)
            continue;
        c->asked = false;
        free(c->reason);
        c->reason = snap_xasprintf("same filesystem as %s (device %s)", first->mountpoint,
                                   c->device);
    }
    for (size_t i = 0; i < sel->n; i++)
        if (sel->fs[i].asked)
            sel->freeze_list[sel->n_freeze++] = sel->fs[i].mountpoint;
}

int snap_fs_select(const snap_agent_fs *fs, size_t n, const char *const *only,
                   size_t n_only, const char *const *skip, size_t n_skip,
                   snap_fs_selection *out, snap_err *err)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n_only; i++)
        if (in_list(only[i], skip, n_skip))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "mountpoint %s is both to freeze and not to freeze",
                                only[i]);
    int rc = check_named(fs, n, only, n_only, true, err);
    if (!rc)
        rc = check_named(fs, n, skip, n_skip, false, err);
    if (rc)
        return rc;
    out->fs = snap_xcalloc(n + 1, sizeof *out->fs);
    out->freeze_list = snap_xcalloc(n + 1, sizeof *out->freeze_list);
    out->n = n;
    out->agent_count = -1;
    for (size_t i = 0; i < n; i++) {
        snap_fs_choice *c = &out->fs[i];
        c->mountpoint = snap_xstrdup(fs[i].mountpoint);
        c->type = snap_xstrdup(fs[i].type);
        c->device = snap_xstrdup(fs[i].name);
        c->reason = skip_reason(&fs[i], only, n_only, skip, n_skip);
        c->asked = c->reason == NULL;
        c->outcome = SNAP_FS_SKIPPED;
    }
    join_same_device(out);
    return 0;
}

bool snap_fs_selection_outcome(snap_fs_selection *sel, int frozen, const char *failure)
{
    bool confirmed = frozen >= 0 && (size_t)frozen >= sel->n_freeze;
    sel->agent_count = frozen;
    char *why = NULL;
    if (frozen < 0)
        why = snap_xasprintf("freeze failed: %s", failure ? failure : "?");
    else if (!confirmed)
        why = snap_xasprintf("not confirmed: the agent froze %d of the %zu filesystems "
                             "asked, without saying which",
                             frozen, sel->n_freeze);
    for (size_t i = 0; i < sel->n; i++) {
        snap_fs_choice *c = &sel->fs[i];
        const snap_fs_choice *by = asked_on(sel, c->device);
        if (!by) /* not frozen, by choice */
            continue;
        c->outcome = confirmed ? SNAP_FS_FROZEN : SNAP_FS_FAILED;
        if (c->asked || !confirmed) {
            free(c->reason);
            c->reason = confirmed ? NULL : snap_xstrdup(why);
        }
    }
    free(why);
    return confirmed;
}

void snap_fs_selection_void(snap_fs_selection *sel, const char *why)
{
    for (size_t i = 0; i < sel->n; i++) {
        snap_fs_choice *c = &sel->fs[i];
        if (c->outcome != SNAP_FS_FROZEN)
            continue;
        c->outcome = SNAP_FS_FAILED;
        free(c->reason);
        c->reason = snap_xstrdup(why);
    }
}

int snap_fs_check_count(snap_fs_selection *sel, int frozen, bool required,
                        xentoollog_logger *lg, const char *domain, snap_err *err)
{
    if (snap_fs_selection_outcome(sel, frozen, NULL))
        return 0;
    if (!required) {
        snap_log(lg, XTL_WARN,
                 "domain %s: the agent froze %d of the %zu filesystems asked: the "
                 "snapshot is not fully quiesced",
                 domain, frozen, sel->n_freeze);
        return 0;
    }
    char *asked = snap_xstrdup("");
    for (size_t i = 0; i < sel->n_freeze; i++) {
        char *next = snap_xasprintf("%s%s%s", asked, i ? ", " : "", sel->freeze_list[i]);
        free(asked);
        asked = next;
    }
    int rc = snap_err_set(err, SNAP_ERROR_FAIL,
                          "freeze: the agent froze %d of the %zu filesystems asked (%s): "
                          "qemu-ga skips one that cannot freeze, or is gone, without a "
                          "word; leave it out (no-freeze) or do not require the freeze",
                          frozen, sel->n_freeze, asked);
    free(asked);
    return rc;
}

void snap_fs_selection_record(const snap_fs_selection *sel, snap_meta_quiesce *q)
{
    size_t frozen = 0;
    for (size_t i = 0; i < sel->n; i++) {
        const snap_fs_choice *c = &sel->fs[i];
        snap_meta_add_fs(q, c->mountpoint, c->type, c->device, c->outcome,
                         c->outcome == SNAP_FS_FROZEN && c->asked ? NULL : c->reason);
        frozen += c->outcome == SNAP_FS_FROZEN;
    }
    if (q->state != SNAP_META_QUIESCED)
        return;
    if (frozen == 0 && sel->agent_count <= 0)
        q->state = SNAP_META_CRASH_CONSISTENT;
    else if (frozen < sel->n) /* or some, unconfirmed which */
        q->state = SNAP_META_PARTIALLY_QUIESCED;
}

char *snap_fs_selection_unfrozen(const snap_fs_selection *sel)
{
    char *out = snap_xstrdup("");
    for (size_t i = 0; i < sel->n; i++) {
        const snap_fs_choice *c = &sel->fs[i];
        if (c->outcome == SNAP_FS_FROZEN)
            continue;
        char *next = snap_xasprintf("%s%s%s (%s)", out, *out ? ", " : "", c->mountpoint,
                                    c->reason ? c->reason : "?");
        free(out);
        out = next;
    }
    return out;
}

void snap_fs_selection_dispose(snap_fs_selection *sel)
{
    for (size_t i = 0; sel && i < sel->n; i++) {
        free(sel->fs[i].mountpoint);
        free(sel->fs[i].type);
        free(sel->fs[i].device);
        free(sel->fs[i].reason);
    }
    if (sel) {
        free(sel->fs);
        free(sel->freeze_list);
        memset(sel, 0, sizeof *sel);
    }
}

/* A guest mountpoint as given: absolute, printable (it reaches messages and records). */
static int check_mountpoint(const char *mp, snap_err *err)
{
    if (!mp || mp[0] != '/')
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "mountpoint '%s' to freeze or not is not an absolute path",
                            mp ? mp : "(null)");
    return snap_text_check("a mountpoint", mp, err);
}

static int copy_mountpoints(const char *const *v, size_t n, char ***out, size_t *n_out,
                            snap_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = check_mountpoint(v[i], err);
        if (rc)
            return rc;
        *out = snap_strv_add(*out, n_out, snap_xstrdup(v[i]));
    }
    return 0;
}

int snap_fs_plan_options(snap_plan *plan, const snap_create_params *p, snap_err *err)
{
    if (!p->n_freeze_mounts && !p->n_no_freeze)
        return 0;
    if (plan->quiesce == SNAP_QUIESCE_OFF)
        return snap_err_set(err, SNAP_ERROR_INVAL,
                            "mountpoints to freeze or not were given, but this snapshot "
                            "freezes nothing (quiesce off, or a memory checkpoint)");
    int rc = copy_mountpoints(p->freeze_mounts, p->n_freeze_mounts, &plan->freeze_mounts,
                              &plan->n_freeze_mounts, err);
    if (!rc)
        rc = copy_mountpoints(p->no_freeze, p->n_no_freeze, &plan->no_freeze,
                              &plan->n_no_freeze, err);
    return rc;
}

int snap_fs_choose_listed(int listed, snap_agent_fs *fs, size_t n, const snap_plan *plan,
                          snap_fs_selection **out, bool *agent_failed, snap_err *err)
{
    bool named = plan->n_freeze_mounts || plan->n_no_freeze;
    int rc = listed;
    *out = NULL;
    *agent_failed = false;
    if (rc)
        snap_agent_fsinfo_free(fs, n);
    if (rc && !named) {
        /* An agent without guest-get-fsinfo still freezes everything it can. */
        snap_err_clear(err);
        return 0;
    }
    if (rc) {
        *agent_failed = true;
        return snap_err_context(err, "cannot check the mountpoints to freeze");
    }
    snap_fs_selection *sel = snap_xcalloc(1, sizeof *sel);
    rc = snap_fs_select(fs, n, (const char *const *)plan->freeze_mounts,
                        plan->n_freeze_mounts, (const char *const *)plan->no_freeze,
                        plan->n_no_freeze, sel, err);
    if (!rc && !sel->n_freeze && n)
        rc = snap_err_set(err, SNAP_ERROR_INVAL,
                          "no filesystem is left to freeze (the agent lists %zu, none "
                          "chosen or freezable); take the snapshot without a freeze "
                          "(quiesce off) instead",
                          n);
    snap_agent_fsinfo_free(fs, n);
    if (rc || !sel->n) { /* the agent lists nothing: freeze as before */
        snap_fs_selection_dispose(sel);
        free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}
