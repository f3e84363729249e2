/*
 * What a revert leaves for those who come after it: the overlays it made,
 * recorded in the reverted-to snapshot's record (so that info shows them
 * and delete cleans them up), and, where the platform forgets a stopped
 * domain, the domain's config saved before the revert stopped it (so that
 * recovery can find the domain and create it again).
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "snap_json.h"
#include "snap_meta_io.h"
#include "snap_revert_record.h"

int snap_revert_record_overlays(snap_meta_store *st, const snap_journal *j, snap_err *err)
{
    snap_meta m;
    bool any = false;
    for (size_t i = 0; i < j->n_disks; i++)
        any = any || j->disks[i].overlay_created;
    if (!any)
        return 0;
    int rc = snap_meta_load(st, j->snapshot, &m, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < j->n_disks; i++)
        if (j->disks[i].overlay_created)
            snap_meta_add_revert_overlay(&m, j->disks[i].overlay_created);
    rc = snap_meta_save(st, &m, false, err);
    snap_meta_dispose(&m);
    return rc ? snap_err_context(err, "recording the new overlays in '%s'", j->snapshot)
              : 0;
}

int snap_revert_record_merged(snap_meta_store *st, xentoollog_logger *lg,
                              const snap_journal *j, snap_err *err)
{
    snap_meta m;
    bool any = false;
    for (size_t i = 0; i < j->n_disks; i++)
        any = any || j->disks[i].lvm_merge;
    if (!any)
        return 0;
    int rc = snap_meta_load(st, j->snapshot, &m, err);
    if (rc)
        return rc;
    bool changed = false;
    for (size_t i = 0; i < m.n_disks; i++) {
        snap_meta_disk *md = &m.disks[i];
        const snap_journal_disk *jd = NULL;
        for (size_t k = 0; k < j->n_disks && !jd; k++)
            jd = !strcmp(j->disks[k].vdev, md->vdev) && j->disks[k].lvm_merge
                     ? &j->disks[k]
                     : NULL;
        if (!jd || md->lvm_merged)
            continue;
        md->lvm_merged = changed = true;
        snap_log(lg, XTL_NOTICE,
                 "disk %s: classic snapshot volume %s merged into %s: it no longer "
                 "exists, snapshot '%s' cannot be reverted to again for this disk",
                 md->vdev, md->lvm_snapshot, md->lvm_volume, m.name);
    }
    rc = changed ? snap_meta_save(st, &m, false, err) : 0;
    snap_meta_dispose(&m);
    return rc ? snap_err_context(err, "recording the merged volumes in '%s'", j->snapshot)
              : 0;
}

void snap_revert_forget_domain(snap_meta_store *st)
{
    snap_err ignore;
    snap_meta_store_unlink(st, SNAP_REVERT_DOMAIN_FILE, &ignore);
}

/* ----------------------------------------------- a domain a revert destroyed */

/*
 * The saved config of the domain with directory uuid when a revert left one
 * and it names qualifier (a name, or this very UUID).
 */
static bool vanished_config(const char *statedir, const char *uuid, const char *qualifier,
                            char **config)
{
    snap_meta_store st;
    snap_err ignore;
    char *text = NULL;
    size_t len;
    if (snap_meta_store_open(&st, statedir, uuid, NULL, false, &ignore))
        return false;
    bool hit =
        snap_meta_store_read(&st, SNAP_REVERT_DOMAIN_FILE, &text, &len, &ignore) == 0;
    snap_meta_store_close(&st);
    if (hit && strcasecmp(uuid, qualifier) != 0) {
        yajl_val root = snap_json_parse(text, "saved domain config", &ignore);
        const char *name =
            snap_json_get_string(snap_json_get_object(root, "c_info"), "name");
        hit = name && !strcmp(name, qualifier);
        yajl_tree_free(root);
    }
    if (hit)
        *config = text;
    else
        free(text);
    return hit;
}

/* The UUID (directory) whose saved config names qualifier, or NULL. */
static char *find_vanished(const char *statedir, const char *qualifier, char **config)
{
    if (snap_uuid_valid(qualifier))
        return vanished_config(statedir, qualifier, qualifier, config)
                   ? snap_xstrdup(qualifier)
                   : NULL;
    char *path = snap_xasprintf("%s/snapshots", statedir), *uuid = NULL;
    DIR *d = opendir(path);
    free(path);
    struct dirent *e;
    while (d && !uuid && (e = readdir(d)))
        if (snap_uuid_valid(e->d_name) &&
            vanished_config(statedir, e->d_name, qualifier, config))
            uuid = snap_xstrdup(e->d_name);
    if (d)
        closedir(d);
    return uuid;
}

char *snap_revert_destroyed_domain(snap_ctx *ctx, const char *qualifier, char **config)
{
    char *uuid = find_vanished(ctx->statedir, qualifier, config);
    snap_domain_ref now;
    snap_err lerr;
    if (uuid && ctx->ops->lookup_uuid(ctx, uuid, &now, &lerr) != SNAP_ERROR_NOTFOUND) {
        free(uuid);
        free(*config);
        *config = NULL;
        uuid = NULL;
    }
    return uuid;
}

bool snap_domain_vanished(snap_ctx *ctx, const char *qualifier)
{
    char *config = NULL;
    char *uuid = snap_revert_destroyed_domain(ctx, qualifier, &config);
    bool destroyed = uuid != NULL;
    free(config);
    free(uuid);
    return destroyed;
}
