/*
 * Collecting libsnap's fdsets (snap_qmp_fdsets_collect, see snap_qmp.h):
 * after a failure, a merge or a run that died, the qcow2 nodes on libsnap's
 * sets that no disk's chain holds any more are deleted, then the sets no
 * node uses are removed. Above snap_qmp_block.c, whose disk model it reads;
 * snap_qmp_fdset.c below both keeps the protocol.
 */
#include "snap_qmp.h"

#include <stdlib.h>
#include <string.h>

/* Whether any block node's file is "/dev/fdset/<id>". */
static bool fdset_in_use(yajl_val nodes, long long id)
{
    for (size_t i = 0; i < snap_json_array_len(nodes); i++)
        if (snap_qmp_fdset_of_file(
                snap_json_get_string(snap_json_array_at(nodes, i), "file")) == id)
            return true;
    return false;
}

static void flat_args(yajl_gen g, const void *opaque)
{
    (void)opaque;
    snap_json_key(g, "flat");
    yajl_gen_bool(g, 1);
}

static bool in_some_chain(const snap_qmp_disks *disks, const char *node)
{
    for (size_t i = 0; i < disks->n; i++)
        for (size_t k = 0; k < disks->disk[i].chain_len; k++)
            if (disks->disk[i].chain[k].node_name &&
                !strcmp(disks->disk[i].chain[k].node_name, node))
                return true;
    return false;
}

/*
 * The qcow2 nodes libsnap added on its sets that no disk's chain holds any
 * more (an active commit drops the old top from the chain, but a node
 * added by blockdev-add lives until blockdev-del): deleted. QEMU refuses
 * to delete a node that still has a parent, so a node the disk model
 * could not name is safe: its deletion just fails.
 */
static void delete_orphan_nodes(snap_qmp *q, const snap_qmp_fdsets *sets,
                                uint64_t deadline)
{
    yajl_val nodes = NULL;
    snap_qmp_disks disks;
    snap_err ignored;
    if (snap_qmp_execute(q, "query-named-block-nodes", flat_args, NULL, &nodes,
                         snap_deadline_poll_ms(deadline), &ignored))
        return;
    if (snap_qmp_query_disks(q, &disks, snap_deadline_poll_ms(deadline), &ignored)) {
        yajl_tree_free(nodes);
        return;
    }
    for (size_t i = 0; i < snap_json_array_len(nodes); i++) {
        yajl_val n = snap_json_array_at(nodes, i);
        const char *name = snap_json_get_string(n, "node-name");
        const char *drv = snap_json_get_string(n, "drv");
        long long id = snap_qmp_fdset_of_file(snap_json_get_string(n, "file"));
        const snap_qmp_fdset *set = id >= 0 ? snap_qmp_fdsets_find(sets, id) : NULL;
        if (!name || name[0] == '#' || !drv || strcmp(drv, "qcow2") || !set ||
            !snap_qmp_fdset_path(set) || in_some_chain(&disks, name))
            continue;
        snap_qmp_blockdev_del(q, name, snap_deadline_poll_ms(deadline), &ignored);
    }
    snap_qmp_disks_free(&disks);
    yajl_tree_free(nodes);
}

static bool any_of_ours(const snap_qmp_fdsets *sets)
{
    for (size_t i = 0; i < sets->n; i++)
        if (snap_qmp_fdset_path(&sets->set[i]))
            return true;
    return false;
}

int snap_qmp_fdsets_collect(snap_qmp *q, int timeout_ms, size_t *removed, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    snap_qmp_fdsets sets;
    yajl_val nodes = NULL;
    size_t n = 0;
    if (removed)
        *removed = 0;
    int rc = snap_qmp_query_fdsets(q, &sets, timeout_ms, err);
    if (rc || !any_of_ours(&sets)) {
        snap_qmp_fdsets_free(&sets);
        return rc;
    }
    delete_orphan_nodes(q, &sets, deadline);
    rc = snap_qmp_execute(q, "query-named-block-nodes", flat_args, NULL, &nodes,
                          snap_deadline_poll_ms(deadline), err);
    for (size_t i = 0; i < sets.n && !rc; i++) {
        if (!snap_qmp_fdset_path(&sets.set[i]) || fdset_in_use(nodes, sets.set[i].id))
            continue; /* not ours (or already removed), or still a node's file */
        rc = snap_qmp_remove_fd(q, sets.set[i].id, -1, snap_deadline_poll_ms(deadline),
                                err);
        n += rc == 0;
    }
    yajl_tree_free(nodes);
    snap_qmp_fdsets_free(&sets);
    if (removed)
        *removed = n;
    return rc;
}
