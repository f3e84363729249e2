/* QMP disk model and snapshot transactions; see snap_qmp.h. */
#include "snap_qmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- disk model */

static void qmp_image_clear(snap_qmp_image *img)
{
    for (size_t i = 0; i < img->n_snapshots; i++) {
        free(img->snapshots[i].id);
        free(img->snapshots[i].name);
    }
    free(img->snapshots);
    free(img->file);
    free(img->format);
    free(img->node_name);
}

void snap_qmp_disks_free(snap_qmp_disks *disks)
{
    for (size_t i = 0; i < disks->n; i++) {
        snap_qmp_disk *d = &disks->disk[i];
        for (size_t j = 0; j < d->chain_len; j++)
            qmp_image_clear(&d->chain[j]);
        free(d->chain);
        free(d->device);
        free(d->qdev);
        free(d->node_name);
    }
    free(disks->disk);
    disks->disk = NULL;
    disks->n = 0;
}

static char *qmp_dup_member(yajl_val v, const char *key)
{
    const char *s = snap_json_get_string(v, key);
    return snap_xstrdup(s ? s : "");
}

static void qmp_parse_snapshots(snap_qmp_image *img, yajl_val list)
{
    size_t n = snap_json_array_len(list);
    img->snapshots = n ? snap_xcalloc(n, sizeof *img->snapshots) : NULL;
    for (size_t i = 0; i < n; i++) {
        yajl_val v = snap_json_array_at(list, i);
        snap_qmp_snapshot *s = &img->snapshots[img->n_snapshots++];
        s->id = qmp_dup_member(v, "id");
        s->name = qmp_dup_member(v, "name");
        snap_json_get_int(v, "vm-state-size", &s->vm_state_size);
        snap_json_get_int(v, "date-sec", &s->date_sec);
        snap_json_get_int(v, "date-nsec", &s->date_nsec);
        snap_json_get_int(v, "vm-clock-sec", &s->vm_clock_sec);
        snap_json_get_int(v, "vm-clock-nsec", &s->vm_clock_nsec);
    }
}

/* The format node (not its protocol child) opened on file with driver format. */
static const char *qmp_find_node(yajl_val nodes, const char *file, const char *format)
{
    for (size_t i = 0; i < snap_json_array_len(nodes); i++) {
        yajl_val n = snap_json_array_at(nodes, i);
        const char *f = snap_json_get_string(n, "file");
        const char *drv = snap_json_get_string(n, "drv");
        if (f && drv && strcmp(f, file) == 0 && strcmp(drv, format) == 0)
            return snap_json_get_string(n, "node-name");
    }
    return NULL;
}

/* Follows image -> backing-image -> ... into d->chain. */
static int qmp_parse_chain(snap_qmp_disk *d, yajl_val inserted, yajl_val nodes,
                           snap_err *err)
{
    size_t len = 0;
    for (yajl_val i = snap_json_get_object(inserted, "image"); i;
         i = snap_json_get_object(i, "backing-image"))
        len++;
    if (!len)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "QMP query-block: disk %s has no image information",
                            d->node_name);
    d->chain = snap_xcalloc(len, sizeof *d->chain);
    yajl_val i = snap_json_get_object(inserted, "image");
    for (; i; i = snap_json_get_object(i, "backing-image")) {
        snap_qmp_image *img = &d->chain[d->chain_len++];
        img->file = qmp_dup_member(i, "filename");
        img->format = qmp_dup_member(i, "format");
        const char *node = d->chain_len == 1
                               ? d->node_name
                               : qmp_find_node(nodes, img->file, img->format);
        img->node_name = node ? snap_xstrdup(node) : NULL;
        qmp_parse_snapshots(img, snap_json_get_array(i, "snapshots"));
    }
    return 0;
}

static int qmp_parse_disks(snap_qmp_disks *disks, yajl_val blocks, yajl_val nodes,
                           snap_err *err)
{
    size_t n = snap_json_array_len(blocks);
    disks->disk = n ? snap_xcalloc(n, sizeof *disks->disk) : NULL;
    for (size_t k = 0; k < n; k++) {
        yajl_val b = snap_json_array_at(blocks, k);
        yajl_val inserted = snap_json_get_object(b, "inserted");
        if (!inserted)
            continue; /* an empty CD-ROM drive: nothing to snapshot */
        snap_qmp_disk *d = &disks->disk[disks->n++];
        d->device = qmp_dup_member(b, "device");
        d->qdev = qmp_dup_member(b, "qdev");
        d->node_name = qmp_dup_member(inserted, "node-name");
        snap_json_get_bool(inserted, "ro", &d->read_only);
        int rc = qmp_parse_chain(d, inserted, nodes, err);
        if (rc)
            return rc;
    }
    return 0;
}

static void qmp_flat_args(yajl_gen g, const void *opaque)
{
    (void)opaque;
    snap_json_kv_bool(g, "flat", true);
}

int snap_qmp_query_disks(snap_qmp *q, snap_qmp_disks *disks, int timeout_ms,
                         snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    yajl_val blocks = NULL, nodes = NULL;
    memset(disks, 0, sizeof *disks);
    int rc = snap_qmp_execute(q, "query-block", NULL, NULL, &blocks, timeout_ms, err);
    if (!rc)
        /* "flat" (QEMU >= 5.0) leaves out the nested backing copies. */
        rc = snap_qmp_execute(q, "query-named-block-nodes",
                              snap_qmp_version_at_least(q, 5, 0) ? qmp_flat_args : NULL,
                              NULL, &nodes, snap_deadline_poll_ms(deadline), err);
    if (!rc && (!YAJL_IS_ARRAY(blocks) || !YAJL_IS_ARRAY(nodes)))
        rc = snap_err_set(err, SNAP_ERROR_PROTOCOL,
                          "QMP query-block: expected arrays of block devices and nodes");
    if (!rc)
        rc = qmp_parse_disks(disks, blocks, nodes, err);
    if (!rc)
        rc =
            snap_qmp_disks_resolve_fdsets(q, disks, snap_deadline_poll_ms(deadline), err);
    if (rc)
        snap_qmp_disks_free(disks);
    yajl_tree_free(blocks);
    yajl_tree_free(nodes);
    return rc;
}

/* True when qdev names device id: "xvda" or "/machine/peripheral/xvda/...". */
static bool qmp_qdev_is(const char *qdev, const char *id)
{
    static const char prefix[] = "/machine/peripheral/";
    size_t plen = sizeof prefix - 1, idlen = strlen(id);
    if (strcmp(qdev, id) == 0)
        return true;
    return strncmp(qdev, prefix, plen) == 0 && strncmp(qdev + plen, id, idlen) == 0 &&
           (qdev[plen + idlen] == '/' || qdev[plen + idlen] == '\0');
}

const snap_qmp_disk *snap_qmp_disks_find(const snap_qmp_disks *disks, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (size_t i = 0; i < disks->n; i++) {
        const snap_qmp_disk *d = &disks->disk[i];
        if (strcmp(d->device, name) == 0 || strcmp(d->node_name, name) == 0 ||
            qmp_qdev_is(d->qdev, name))
            return d;
    }
    for (size_t i = 0; i < disks->n; i++)
        for (size_t j = 0; j < disks->disk[i].chain_len; j++) {
            const char *node = disks->disk[i].chain[j].node_name;
            if (node && strcmp(node, name) == 0)
                return &disks->disk[i];
        }
    return NULL;
}

const snap_qmp_disk *snap_qmp_disks_find_file(const snap_qmp_disks *disks,
                                              const char *file, size_t *depth)
{
    for (size_t i = 0; i < disks->n; i++)
        for (size_t k = 0; k < disks->disk[i].chain_len; k++)
            if (!strcmp(disks->disk[i].chain[k].file, file)) {
                *depth = k;
                return &disks->disk[i];
            }
    return NULL;
}

const char *snap_qmp_disk_target(const snap_qmp_disk *d)
{
    return d->device[0] ? d->device : d->node_name;
}

const snap_qmp_snapshot *snap_qmp_disk_find_snapshot(const snap_qmp_disk *d,
                                                     const char *name)
{
    if (!d->chain_len)
        return NULL;
    for (size_t i = 0; i < d->chain[0].n_snapshots; i++)
        if (strcmp(d->chain[0].snapshots[i].name, name) == 0)
            return &d->chain[0].snapshots[i];
    return NULL;
}

/* ------------------------------------------------------------- transactions */

typedef enum qmp_tx_kind {
    QMP_TX_INTERNAL,      /* blockdev-snapshot-internal-sync */
    QMP_TX_EXTERNAL_FILE, /* blockdev-snapshot-sync: QEMU creates the file */
    QMP_TX_EXTERNAL_NODE, /* blockdev-snapshot: an added node goes on top */
} qmp_tx_kind;

typedef struct qmp_tx_action {
    qmp_tx_kind kind;
    char *device, *node_name, *snapshot_node_name, *file, *format, *name;
} qmp_tx_action;

struct snap_qmp_tx {
    qmp_tx_action *a;
    size_t n, cap;
};

snap_qmp_tx *snap_qmp_tx_new(void)
{
    return snap_xcalloc(1, sizeof(snap_qmp_tx));
}

void snap_qmp_tx_free(snap_qmp_tx *tx)
{
    if (!tx)
        return;
    for (size_t i = 0; i < tx->n; i++) {
        qmp_tx_action *a = &tx->a[i];
        free(a->device);
        free(a->node_name);
        free(a->snapshot_node_name);
        free(a->file);
        free(a->format);
        free(a->name);
    }
    free(tx->a);
    free(tx);
}

size_t snap_qmp_tx_len(const snap_qmp_tx *tx)
{
    return tx->n;
}

static qmp_tx_action *qmp_tx_append(snap_qmp_tx *tx)
{
    if (tx->n == tx->cap) {
        tx->cap = tx->cap ? tx->cap * 2 : 4;
        tx->a = snap_xrealloc(tx->a, tx->cap * sizeof *tx->a);
    }
    qmp_tx_action *a = &tx->a[tx->n++];
    memset(a, 0, sizeof *a);
    return a;
}

void snap_qmp_tx_add_internal(snap_qmp_tx *tx, const char *target, const char *name)
{
    qmp_tx_action *a = qmp_tx_append(tx);
    a->device = snap_xstrdup_or_null(target);
    a->name = snap_xstrdup_or_null(name);
}

void snap_qmp_tx_add_external(snap_qmp_tx *tx, const char *device, const char *node_name,
                              const char *snapshot_node_name, const char *snapshot_file,
                              const char *format)
{
    qmp_tx_action *a = qmp_tx_append(tx);
    a->kind = QMP_TX_EXTERNAL_FILE;
    a->device = snap_xstrdup_or_null(device);
    a->node_name = snap_xstrdup_or_null(node_name);
    a->snapshot_node_name = snap_xstrdup_or_null(snapshot_node_name);
    a->file = snap_xstrdup_or_null(snapshot_file);
    a->format = snap_xstrdup_or_null(format);
}

void snap_qmp_tx_add_external_node(snap_qmp_tx *tx, const char *node,
                                   const char *overlay_node)
{
    qmp_tx_action *a = qmp_tx_append(tx);
    a->kind = QMP_TX_EXTERNAL_NODE;
    a->node_name = snap_xstrdup_or_null(node);
    a->snapshot_node_name = snap_xstrdup_or_null(overlay_node);
}

static void qmp_kv_opt(yajl_gen g, const char *key, const char *value)
{
    if (value)
        snap_json_kv_str(g, key, value);
}

static void qmp_tx_args(yajl_gen g, const void *opaque)
{
    const snap_qmp_tx *tx = opaque;
    snap_json_key(g, "actions");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < tx->n; i++) {
        const qmp_tx_action *a = &tx->a[i];
        yajl_gen_map_open(g);
        if (a->kind == QMP_TX_EXTERNAL_NODE) {
            snap_json_kv_str(g, "type", "blockdev-snapshot");
            snap_json_key(g, "data");
            yajl_gen_map_open(g);
            snap_json_kv_str(g, "node", a->node_name);
            snap_json_kv_str(g, "overlay", a->snapshot_node_name);
            yajl_gen_map_close(g);
            yajl_gen_map_close(g);
            continue;
        }
        snap_json_kv_str(g, "type",
                         a->kind == QMP_TX_EXTERNAL_FILE
                             ? "blockdev-snapshot-sync"
                             : "blockdev-snapshot-internal-sync");
        snap_json_key(g, "data");
        yajl_gen_map_open(g);
        qmp_kv_opt(g, "device", a->device);
        qmp_kv_opt(g, "node-name", a->node_name);
        qmp_kv_opt(g, "name", a->name);
        qmp_kv_opt(g, "snapshot-node-name", a->snapshot_node_name);
        qmp_kv_opt(g, "snapshot-file", a->file);
        qmp_kv_opt(g, "format", a->format);
        if (a->kind == QMP_TX_EXTERNAL_FILE)
            snap_json_kv_str(g, "mode", "absolute-paths");
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
}

/* Refuses actions QEMU would get wrong silently or with a vague message. */
static int qmp_tx_check(const snap_qmp_tx *tx, snap_err *err)
{
    struct stat st;
    if (!tx->n)
        return snap_err_set(err, SNAP_ERROR_INVAL, "QMP transaction: no actions");
    for (size_t i = 0; i < tx->n; i++) {
        const qmp_tx_action *a = &tx->a[i];
        if (a->kind == QMP_TX_EXTERNAL_NODE) {
            if (!a->node_name || !a->snapshot_node_name)
                return snap_err_set(err, SNAP_ERROR_INVAL,
                                    "QMP transaction: blockdev-snapshot action %zu needs "
                                    "a node and an overlay node",
                                    i + 1);
            continue;
        }
        if (a->kind == QMP_TX_INTERNAL) {
            if (!a->device || !a->name)
                return snap_err_set(err, SNAP_ERROR_INVAL,
                                    "QMP transaction: internal snapshot action %zu needs "
                                    "a device and a name",
                                    i + 1);
            continue;
        }
        if (!a->file || a->file[0] != '/' || (!a->device == !a->node_name))
            return snap_err_set(err, SNAP_ERROR_INVAL,
                                "QMP transaction: external snapshot action %zu needs an "
                                "absolute overlay path and one of device/node-name",
                                i + 1);
        if (lstat(a->file, &st) == 0)
            return snap_err_set(err, SNAP_ERROR_EXISTS,
                                "QMP transaction: overlay %s already exists (QEMU would "
                                "overwrite it)",
                                a->file);
    }
    return 0;
}

/* QEMU's answer to a transaction: a rejection leaves no overlay behind. */
static int qmp_tx_outcome(const snap_qmp_tx *tx, int rc, snap_err *err)
{
    if (rc != SNAP_ERROR_PEER)
        return rc; /* on a timeout the outcome is unknown: leave the files alone */
    /* Rejected: nothing was applied, but overlays already created stay behind.
     * A name too long for the file system was never created either. */
    for (size_t i = 0; i < tx->n; i++)
        if (tx->a[i].kind == QMP_TX_EXTERNAL_FILE && unlink(tx->a[i].file) < 0 &&
            errno != ENOENT && errno != ENAMETOOLONG) {
            char msg[SNAP_ERRMSG_MAX];
            int e = errno;
            memcpy(msg, err->msg, sizeof msg);
            snap_err_set(err, rc, "%.1500s (leftover overlay %s not removed: %s)", msg,
                         tx->a[i].file, strerror(e));
        }
    return rc;
}

int snap_qmp_transaction(snap_qmp *q, const snap_qmp_tx *tx, int timeout_ms,
                         snap_err *err)
{
    int rc = qmp_tx_check(tx, err);
    if (rc)
        return rc;
    rc = snap_qmp_execute(q, "transaction", qmp_tx_args, (void *)tx, NULL, timeout_ms,
                          err);
    return qmp_tx_outcome(tx, rc, err);
}

int snap_qmp_transaction_await(snap_qmp *q, const snap_qmp_tx *tx, int timeout_ms,
                               snap_err *err)
{
    return qmp_tx_outcome(tx, snap_qmp_await_late_reply(q, NULL, timeout_ms, err), err);
}

typedef struct qmp_delete_args {
    const char *device, *name;
} qmp_delete_args;

static void qmp_delete_args_gen(yajl_gen g, const void *opaque)
{
    const qmp_delete_args *a = opaque;
    snap_json_kv_str(g, "device", a->device);
    snap_json_kv_str(g, "name", a->name);
}

int snap_qmp_delete_internal(snap_qmp *q, const char *target, const char *name,
                             int timeout_ms, snap_err *err)
{
    qmp_delete_args a = {target, name};
    return snap_qmp_execute(q, "blockdev-snapshot-delete-internal-sync",
                            qmp_delete_args_gen, &a, NULL, timeout_ms, err);
}
