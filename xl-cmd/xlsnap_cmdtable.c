/* xlsnap's command table, in xl's form (tools/xl/xl_cmdtable.c). */
#include <string.h>

#include "xlsnap.h"

const struct cmd_spec cmd_table[] = {
    {"snapshot-create", &main_snapshot_create, true, true,
     "Take a snapshot of a domain's disks (and optionally its memory)",
     "[options] <Domain> [<Name>]",
     "-d, --description=TEXT   Describe the snapshot.\n"
     "-i, --internal           Internal snapshots (inside each qcow2 image).\n"
     "-e, --external           External snapshots (new overlay files; the old\n"
     "                         images become read-only backing files).\n"
     "                         Default: internal for qcow2 disks, external otherwise.\n"
     "-m, --memory             Also save the domain's memory (a checkpoint that\n"
     "                         snapshot-revert resumes exactly).\n"
     "--disks=VDEV[,VDEV...]   Only these disks; the others are recorded as excluded.\n"
     "--overlay-dir=DIR        Where external overlays go (default: beside each image).\n"
     "-q, --quiesce=POLICY     required | best-effort | off. Default: best-effort\n"
     "                         when the domain has a guest-agent channel, else off.\n"
     "--freeze-timeout=SECS    How long the agent may take to freeze (default 10).\n"
     "--freeze-budget=MS       Abort and thaw if the guest would stay frozen longer.\n"
     "--json                   Print the new snapshot's record as JSON."},
    {"snapshot-list", &main_snapshot_list, false, false, "List the snapshots of a domain",
     "[options] <Domain>",
     "--tree                   Show the snapshots as a tree.\n"
     "--roots                  Only snapshots without a parent.\n"
     "--leaves                 Only snapshots without children.\n"
     "--json                   Print the records as JSON."},
    {"snapshot-info", &main_snapshot_info, false, false, "Show one snapshot of a domain",
     "[options] <Domain> <Name>", "--json                   Print the record as JSON."},
    {"snapshot-revert", &main_snapshot_revert, true, true,
     "Revert a domain to a snapshot", "[options] <Domain> <Name>",
     "--running                Leave the domain running after the revert.\n"
     "--paused                 Leave the domain paused after the revert.\n"
     "                         Default: as it was when the snapshot was taken.\n"
     "--force                  Also revert to a disk-only snapshot of a running\n"
     "                         domain (its running state is lost)."},
    {"snapshot-delete", &main_snapshot_delete, true, true,
     "Delete a snapshot of a domain, keeping the data its children need",
     "[options] <Domain> <Name> | --discard-journal <Domain>",
     "--children               Delete the snapshot and all its descendants.\n"
     "--children-only          Delete only the snapshot's descendants.\n"
     "--metadata               Forget the record(s); leave the storage alone\n"
     "                         (also removes a damaged record).\n"
     "--discard-journal        Move aside a journal recovery cannot use (unreadable,\n"
     "                         or its xlsnap dead), after thawing the guest if frozen."},
};

const int cmdtable_len = sizeof(cmd_table) / sizeof(cmd_table[0]);

const struct cmd_spec *cmdtable_lookup(const char *s)
{
    const struct cmd_spec *found = NULL;
    size_t len = strlen(s);
    if (len == 0)
        return NULL;
    for (int i = 0; i < cmdtable_len; i++) {
        if (strcmp(s, cmd_table[i].cmd_name) == 0)
            return &cmd_table[i];
        if (strncmp(s, cmd_table[i].cmd_name, len) == 0) {
            if (found)
                return NULL; /* ambiguous prefix */
            found = &cmd_table[i];
        }
    }
    return found;
}
