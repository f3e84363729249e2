/*
 * Putting a node on an fdset under an image QEMU already runs (see
 * snap_qmp.h, "fd passing"): a QEMU that cannot open host paths (Xen's
 * dm_restrict=1) cannot make a backing file it opened read-only at start
 * writable for a commit, since file-posix reopens by file name. A node on
 * "/dev/fdset/N" can: QEMU dups the set's fd of the mode it needs.
 *
 * QEMU 7.2 (block.c, qapi/block-core.json): blockdev-reopen takes a list of
 * BlockdevOptions, each naming the node; options left out are reset to
 * their defaults, so the node's own are read first; "file" and "backing"
 * may name other nodes. A node QEMU named itself ("#blockNNN") cannot be
 * reopened ("Cannot change the option 'node-name'"), hence a new node with
 * the same file and backing, put under the named node above it.
 */
#include "snap_qmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void flat_args(yajl_gen g, const void *opaque)
{
    (void)opaque;
    snap_json_kv_bool(g, "flat", true);
}

int snap_qmp_node_options(snap_qmp *q, const char *node_name, snap_qmp_node_opts *out,
                          int timeout_ms, snap_err *err)
{
    yajl_val nodes = NULL;
    memset(out, 0, sizeof *out);
    int rc = snap_qmp_execute(q, "query-named-block-nodes", flat_args, NULL, &nodes,
                              timeout_ms, err);
    if (rc)
        return rc;
    rc = snap_err_set(err, SNAP_ERROR_NOTFOUND, "QEMU has no block node %s", node_name);
    for (size_t i = 0; i < snap_json_array_len(nodes); i++) {
        yajl_val n = snap_json_array_at(nodes, i);
        const char *name = snap_json_get_string(n, "node-name");
        if (!name || strcmp(name, node_name))
            continue;
        yajl_val cache = snap_json_get_object(n, "cache");
        snap_json_get_bool(n, "ro", &out->read_only);
        snap_json_get_bool(cache, "direct", &out->cache_direct);
        snap_json_get_bool(cache, "no-flush", &out->cache_no_flush);
        const char *dz = snap_json_get_string(n, "detect_zeroes");
        snprintf(out->detect_zeroes, sizeof out->detect_zeroes, "%s", dz ? dz : "off");
        snap_err_clear(err);
        rc = 0;
        break;
    }
    yajl_tree_free(nodes);
    return rc;
}

/* The graph's id of the node called name, or -1. */
static long long graph_node_id(yajl_val graph, const char *name)
{
    yajl_val nodes = snap_json_get_array(graph, "nodes");
    long long id = -1;
    for (size_t i = 0; i < snap_json_array_len(nodes) && id < 0; i++) {
        yajl_val n = snap_json_array_at(nodes, i);
        const char *nm = snap_json_get_string(n, "name");
        if (nm && !strcmp(nm, name))
            snap_json_get_int(n, "id", &id);
    }
    return id;
}

static const char *graph_node_name(yajl_val graph, long long id)
{
    yajl_val nodes = snap_json_get_array(graph, "nodes");
    for (size_t i = 0; i < snap_json_array_len(nodes); i++) {
        long long nid = -1;
        snap_json_get_int(snap_json_array_at(nodes, i), "id", &nid);
        if (nid == id)
            return snap_json_get_string(snap_json_array_at(nodes, i), "name");
    }
    return NULL;
}

int snap_qmp_node_child(snap_qmp *q, const char *node_name, const char *role,
                        char **child_out, int timeout_ms, snap_err *err)
{
    yajl_val graph = NULL;
    *child_out = NULL;
    int rc = snap_qmp_execute(q, "x-debug-query-block-graph", NULL, NULL, &graph,
                              timeout_ms, err);
    if (rc)
        return rc;
    long long parent = graph_node_id(graph, node_name);
    yajl_val edges = snap_json_get_array(graph, "edges");
    for (size_t i = 0; i < snap_json_array_len(edges) && parent >= 0 && !*child_out;
         i++) {
        yajl_val e = snap_json_array_at(edges, i);
        long long p = -1, c = -1;
        const char *name = snap_json_get_string(e, "name");
        snap_json_get_int(e, "parent", &p);
        snap_json_get_int(e, "child", &c);
        const char *child =
            p == parent && name && !strcmp(name, role) ? graph_node_name(graph, c) : NULL;
        *child_out = snap_xstrdup_or_null(child);
    }
    yajl_tree_free(graph);
    return *child_out ? 0
                      : snap_err_set(err, SNAP_ERROR_NOTFOUND,
                                     "block node %s has no %s child in QEMU's graph",
                                     node_name, role);
}

static void cache_gen(yajl_gen g, const snap_qmp_node_opts *o)
{
    snap_json_key(g, "cache");
    yajl_gen_map_open(g);
    snap_json_kv_bool(g, "direct", o->cache_direct);
    snap_json_kv_bool(g, "no-flush", o->cache_no_flush);
    yajl_gen_map_close(g);
}

typedef struct fdset_image_args {
    const char *node_name, *format, *backing;
    long long fdset_id;
    const snap_qmp_node_opts *opts;
} fdset_image_args;

static void fdset_image_gen(yajl_gen g, const void *opaque)
{
    const fdset_image_args *a = opaque;
    snap_json_kv_str(g, "driver", a->format);
    snap_json_kv_str(g, "node-name", a->node_name);
    snap_json_kv_bool(g, "read-only", true);
    cache_gen(g, a->opts);
    snap_json_kv_str(g, "backing", a->backing); /* NULL: null, none */
    snap_qmp_gen_fdset_file(g, a->fdset_id);
}

int snap_qmp_blockdev_add_fdset_image(snap_qmp *q, const char *node_name,
                                      const char *format, long long fdset_id,
                                      const char *backing_node,
                                      const snap_qmp_node_opts *opts, int timeout_ms,
                                      snap_err *err)
{
    fdset_image_args a = {node_name, format, backing_node, fdset_id, opts};
    int rc =
        snap_qmp_execute(q, "blockdev-add", fdset_image_gen, &a, NULL, timeout_ms, err);
    return rc ? snap_err_context(err, "node %s on /dev/fdset/%lld", node_name, fdset_id)
              : 0;
}

typedef struct reopen_args {
    const char *node_name, *format, *file, *backing;
    const snap_qmp_node_opts *opts;
} reopen_args;

static void reopen_gen(yajl_gen g, const void *opaque)
{
    const reopen_args *a = opaque;
    snap_json_key(g, "options");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "driver", a->format);
    snap_json_kv_str(g, "node-name", a->node_name);
    snap_json_kv_str(g, "file", a->file);
    snap_json_kv_str(g, "backing", a->backing);
    snap_json_kv_bool(g, "read-only", a->opts->read_only);
    snap_json_kv_str(g, "detect-zeroes", a->opts->detect_zeroes);
    cache_gen(g, a->opts);
    yajl_gen_map_close(g);
    yajl_gen_array_close(g);
}

int snap_qmp_reopen_backing(snap_qmp *q, const char *node_name, const char *format,
                            const char *backing_node, int timeout_ms, snap_err *err)
{
    uint64_t deadline = snap_deadline_in(timeout_ms);
    snap_qmp_node_opts opts;
    char *file = NULL;
    int rc = snap_qmp_node_options(q, node_name, &opts, timeout_ms, err);
    if (!rc)
        rc = snap_qmp_node_child(q, node_name, "file", &file,
                                 snap_deadline_poll_ms(deadline), err);
    reopen_args a = {node_name, format, file, backing_node, &opts};
    if (!rc)
        rc = snap_qmp_execute(q, "blockdev-reopen", reopen_gen, &a, NULL,
                              snap_deadline_poll_ms(deadline), err);
    free(file);
    return rc ? snap_err_context(err, "putting node %s under %s", backing_node, node_name)
              : 0;
}
