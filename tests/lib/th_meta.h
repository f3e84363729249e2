/* Snapshot records for tests that need many of them (listing, index, streaming). */
#ifndef TH_META_H
#define TH_META_H

#include "snap_meta.h"

/*
 * Record i of a chain of domain (name, uuid): "s%04d" (i), created at
 * 1795000000 + i seconds, child of record i - 1 (record 0 is the root), one
 * internal qcow2 disk xvda, crash-consistent; description "record <i>".
 * Dispose with snap_meta_dispose.
 */
void th_meta_chain_record(snap_meta *m, int i, const char *name, const char *uuid);

#endif
