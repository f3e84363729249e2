/* Snapshot records for tests; see th_meta.h. */
#include "th_meta.h"

#include <stdlib.h>
#include <string.h>

void th_meta_chain_record(snap_meta *m, int i, const char *name, const char *uuid)
{
    snap_meta_init(m);
    m->name = snap_xasprintf("s%04d", i);
    m->description = snap_xasprintf("record %d", i);
    m->ctime_sec = 1795000000 + i;
    m->parent = i ? snap_xasprintf("s%04d", i - 1) : NULL;
    m->domain.name = snap_xstrdup(name);
    m->domain.uuid = snap_xstrdup(uuid);
    m->domain.state = SNAP_DOMAIN_RUNNING;
    snap_meta_disk *d = snap_meta_add_disk(m);
    d->vdev = snap_xstrdup("xvda");
    d->backend = snap_xstrdup("qdisk");
    d->method = SNAP_METHOD_INTERNAL;
    d->format = snap_xstrdup("qcow2");
    d->base_path = snap_xstrdup("/img/a.qcow2");
    d->qemu_snap_name = snap_xstrdup(m->name);
    m->quiesce.policy = SNAP_QUIESCE_BEST_EFFORT;
    m->quiesce.state = SNAP_META_CRASH_CONSISTENT;
}
