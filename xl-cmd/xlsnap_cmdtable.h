/*
 * The cmd_spec entries of the snapshot-* commands: name, function, -N
 * support, whether it modifies, and the help texts. One copy, expanded in
 * both command tables: xlsnap's (xlsnap_cmdtable.c) and xl's
 * (tools/xl/xl_cmdtable.c, patched by xl-cmd/xen-4.17/), so `xl help
 * snapshot-create` and `xlsnap help snapshot-create` print the same text.
 * Field order: struct cmd_spec of tools/xl/xl.h (and xlsnap.h).
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#ifndef XLSNAP_CMDTABLE_H
#define XLSNAP_CMDTABLE_H

/* As in xlsnap_cmd.h: this header stays includable beside xl.h alone. */
int main_snapshot_create(int argc, char **argv);
int main_snapshot_revert(int argc, char **argv);
int main_snapshot_delete(int argc, char **argv);
int main_snapshot_list(int argc, char **argv);
int main_snapshot_info(int argc, char **argv);
int main_snapshot_verify(int argc, char **argv);

/* clang-format off */
#define XLSNAP_CMDTABLE_ENTRIES \
    {"snapshot-create", &main_snapshot_create, 1, 1,                                   \
     "Take a snapshot of a domain's disks (and optionally its memory)",                \
     "[options] <Domain> [<Name>]\n"                                                  \
     "       --group=GROUP [options] <Domain> <Domain>...",                             \
     "-d, --description=TEXT   Describe the snapshot.\n"                               \
     "-i, --internal           Internal snapshots (inside each qcow2 image).\n"        \
     "-e, --external           External snapshots (new overlay files; the old\n"       \
     "                         images become read-only backing files).\n"              \
     "                         Default: internal for qcow2 disks, external otherwise.\n" \
     "-m, --memory             Also save the domain's memory (a checkpoint that\n"     \
     "                         snapshot-revert resumes exactly).\n"                    \
     "--disks=VDEV[,VDEV...]   Only these disks; the others are recorded as excluded.\n" \
     "--overlay-dir=DIR        Where external overlays go (default: beside each image).\n" \
     "--lvm-cow-size=SIZE|N%   Copy-on-write space of each classic LVM snapshot\n"  \
     "                         (default 20% of the volume); a full one is lost.\n"  \
     "-q, --quiesce=POLICY     required | best-effort | off. Default: best-effort\n"   \
     "                         when the domain has a guest-agent channel, else off.\n" \
     "--freeze-timeout=SECS    How long the agent may take to freeze (default 10).\n"  \
     "--freeze-budget=MS       Thaw at most MS after the freeze, whatever has not\n" \
     "                         answered (-N shows the whole freeze timeline).\n"    \
     "--lease-expiry=ACTION    thaw | kill: when the freeze lease runs out, the\n"   \
     "                         watchdog thaws the guest and the create fails\n"      \
     "                         (default), or kills this command first.\n"            \
     "--verify                 Then check the snapshot's filesystems (snapshot-verify);\n" \
     "                         exit 1 unless all are clean.\n"                       \
     "--freeze-mounts=MNT[,MNT...]  Freeze only these guest filesystems (as\n"      \
     "                         the agent lists them); the others are recorded\n"     \
     "                         as not frozen: partially-quiesced.\n"                 \
     "--no-freeze=MNT[,MNT...] Freeze all the agent lists but these.\n"             \
     "--group=GROUP            A consistency group: snapshot GROUP of every domain\n" \
     "                         named, all frozen (or all paused) together, cut in\n" \
     "                         one shared window; all or nothing.\n"                  \
     "--json                   Print the new snapshot's record as JSON."},             \
    {"snapshot-list", &main_snapshot_list, 0, 0, "List the snapshots of a domain",     \
     "[options] <Domain> | --groups",                                                  \
     "--tree                   Show the snapshots as a tree.\n"                        \
     "--roots                  Only snapshots without a parent.\n"                     \
     "--leaves                 Only snapshots without children.\n"                     \
     "--groups                 List the consistency groups instead (no domain).\n"    \
     "--json                   Print the records as JSON."},                           \
    {"snapshot-info", &main_snapshot_info, 0, 0, "Show one snapshot of a domain",      \
     "[options] <Domain> <Name> | --group <Group>",                                    \
     "--group                  Show consistency group <Group> and its members.\n"     \
     "--json                   Print the record as JSON."},                            \
    {"snapshot-verify", &main_snapshot_verify, 0, 1,                                   \
     "Check a snapshot's filesystems at the snapshot point, read-only",                \
     "[options] <Domain> <Name>",                                                      \
     "Each disk is opened read-only at the snapshot point and each ext2/3/4\n"        \
     "(and XFS) filesystem checked without writing (needs_recovery, e2fsck -fn).\n"   \
     "The result is recorded in the snapshot. Exit 0 only when all are clean.\n"      \
     "--timeout=SECS           Give up after this long (default 600).\n"              \
     "--json                   Print the record (with its verification) as JSON."},    \
    {"snapshot-revert", &main_snapshot_revert, 1, 1,                                   \
     "Revert a domain to a snapshot", "[options] <Domain> <Name> | --group <Group>",   \
     "--running                Leave the domain running after the revert.\n"           \
     "--paused                 Leave the domain paused after the revert.\n"            \
     "                         Default: as it was when the snapshot was taken.\n"      \
     "--force                  Also revert to a disk-only snapshot of a running\n"     \
     "                         domain (its running state is lost).\n"                 \
     "--group                  Revert every member domain of consistency group\n"     \
     "                         <Group> (refused before any change unless every\n"     \
     "                         member can be)."},                                      \
    {"snapshot-delete", &main_snapshot_delete, 1, 1,                                   \
     "Delete a snapshot of a domain, keeping the data its children need",              \
     "[options] <Domain> <Name> | --discard-journal <Domain> | --group <Group>",       \
     "--children               Delete the snapshot and all its descendants.\n"         \
     "--children-only          Delete only the snapshot's descendants.\n"              \
     "--metadata               Forget the record(s); leave the storage alone\n"        \
     "                         (also removes a damaged record).\n"                     \
     "--discard-journal        Move aside a journal recovery cannot use (unreadable,\n" \
     "                         or its xlsnap dead), after thawing the guest if frozen.\n" \
     "--group                  Delete every member snapshot of consistency group\n"   \
     "                         <Group>, then the group."}

/* clang-format on */
#endif
