/* xlsnap's command table, in xl's form (tools/xl/xl_cmdtable.c). */
#include <string.h>

#include "xlsnap.h"
#include "xlsnap_cmdtable.h"

const struct cmd_spec cmd_table[] = {
    XLSNAP_CMDTABLE_ENTRIES,
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
