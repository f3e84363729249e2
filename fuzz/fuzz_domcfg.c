/*
 * Fuzzes the libxl-json disk editor (snap_domcfg_edit_disks) and lookup.
 * Input: a vdev name, '\n', then the stored libxl-json text. What the editor
 * accepts must read back: the edited disk then has exactly the new values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_domcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void domcfg_check_readback(const char *out, const char *vdev)
{
    snap_err err;
    snap_domcfg_disk d = {0};
    if (snap_domcfg_find_disk(out, vdev, &d, &err) != 0 || !d.pdev_path || !d.format ||
        strcmp(d.pdev_path, "/var/lib/xlsnap/new \"1\".qcow2") != 0 ||
        strcmp(d.format, "qcow2") != 0) {
        fprintf(stderr, "edited disk %s does not read back (%s):\n%s\n", vdev,
                d.pdev_path ? d.pdev_path : "no pdev_path", out);
        abort();
    }
    snap_domcfg_disk_dispose(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    const uint8_t *nl = memchr(data, '\n', len);
    if (!nl)
        return 0;
    char *vdev = strndup((const char *)data, (size_t)(nl - data));
    size_t json_len = len - (size_t)(nl - data) - 1;
    char *json = malloc(json_len + 1);
    memcpy(json, nl + 1, json_len);
    json[json_len] = '\0';
    snap_domcfg_disk_change ch = {vdev, "/var/lib/xlsnap/new \"1\".qcow2", "qcow2"};
    char *out = NULL;
    size_t out_len = 0;
    snap_err err;
    if (snap_domcfg_edit_disks(json, json_len, &ch, 1, &out, &out_len, &err) == 0) {
        if (strlen(out) == out_len && strlen(vdev) == (size_t)(nl - data))
            domcfg_check_readback(out, vdev);
        free(out);
    }
    snap_domcfg_disk found = {0};
    if (snap_domcfg_find_disk(json, vdev, &found, &err) == 0)
        snap_domcfg_disk_dispose(&found);
    free(json);
    free(vdev);
    return 0;
}
