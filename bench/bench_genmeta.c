/*
 * bench_genmeta: records COUNT snapshots of one domain directly in the
 * metadata store (libsnap's snap_meta API, the files xlsnap itself writes),
 * so snapshot-list/info can be timed against 10 or 10,000 of them without
 * taking them.
 *
 *   bench_genmeta STATEDIR UUID DOMAIN COUNT
 *
 * The snapshots "s00000".. form a realistic tree: chains of 100 with a
 * branch off the previous chain's start, two disks each (one internal, one
 * external), one second apart; the last one is current.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <stdio.h>
#include <stdlib.h>

#include "snap_meta.h"
#include "snap_meta_io.h"

#define BASE_TIME 1790000000 /* 2026-09, any fixed time keeps runs alike */

static void add_disk(snap_meta *m, const char *vdev, snap_method method, size_t i)
{
    snap_meta_disk *d = snap_meta_add_disk(m);
    d->vdev = snap_xstrdup(vdev);
    d->backend = snap_xstrdup("qdisk");
    d->method = method;
    d->format = snap_xstrdup("qcow2");
    d->base_path = snap_xasprintf("/var/lib/xen/images/%s-%05zu.qcow2", vdev, i);
    d->node_before = snap_xasprintf("%s-qcow2", vdev);
    if (method == SNAP_METHOD_INTERNAL) {
        d->qemu_snap_name = snap_xasprintf("s%05zu", i);
    } else {
        d->overlay_path =
            snap_xasprintf("/var/lib/xen/images/%s-%05zu.qcow2", vdev, i + 1);
        d->overlay_format = snap_xstrdup("qcow2");
        d->node_after = snap_xasprintf("%s-overlay-%zu", vdev, i + 1);
    }
}

/* Parent of snapshot i: the previous one, but every 100th starts a branch. */
static long parent_of(size_t i)
{
    if (i == 0)
        return -1;
    return i % 100 ? (long)i - 1 : (long)i - 100;
}

static int record(snap_meta_store *st, const char *domain, const char *uuid, size_t i,
                  snap_err *err)
{
    snap_meta m;
    snap_meta_init(&m);
    m.name = snap_xasprintf("s%05zu", i);
    m.description = snap_xasprintf("benchmark snapshot %zu", i);
    m.ctime_sec = BASE_TIME + (int64_t)i;
    long p = parent_of(i);
    m.parent = p >= 0 ? snap_xasprintf("s%05ld", p) : NULL;
    m.domain.name = snap_xstrdup(domain);
    m.domain.uuid = snap_xstrdup(uuid);
    m.domain.domid = 7;
    m.domain.state = SNAP_DOMAIN_RUNNING;
    add_disk(&m, "xvda", SNAP_METHOD_INTERNAL, i);
    add_disk(&m, "xvdb", SNAP_METHOD_EXTERNAL, i);
    m.quiesce.policy = SNAP_QUIESCE_BEST_EFFORT;
    m.quiesce.agent_present = true;
    m.quiesce.frozen_count = 2;
    m.quiesce.window_ms = 120;
    m.quiesce.thaw_ok = true;
    m.quiesce.state = SNAP_META_QUIESCED;
    int rc = snap_meta_set_config_text(
        &m,
        "{\"c_info\":{\"type\":\"pvh\",\"name\":\"bench\"},\"b_info\":{\"max_vcpus\":1}}",
        err);
    if (!rc)
        rc = snap_meta_save(st, &m, true, err);
    snap_meta_dispose(&m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_genmeta STATEDIR UUID DOMAIN COUNT\n");
        return 2;
    }
    size_t count = strtoul(argv[4], NULL, 10);
    snap_meta_store st;
    snap_err err;
    int rc = snap_meta_store_open(&st, argv[1], argv[2], argv[3], true, &err);
    for (size_t i = 0; i < count && !rc; i++)
        rc = record(&st, argv[3], argv[2], i, &err);
    if (!rc && count) {
        char last[32];
        snprintf(last, sizeof last, "s%05zu", count - 1);
        rc = snap_meta_set_current(&st, last, &err);
    }
    if (rc) {
        fprintf(stderr, "bench_genmeta: %s\n", err.msg);
        return 1;
    }
    snap_meta_store_close(&st);
    return 0;
}
