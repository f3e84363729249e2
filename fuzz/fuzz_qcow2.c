/*
 * Fuzzes snap_qcow2, the direct reader of qcow2 headers, header extensions,
 * backing file names and snapshot tables: the input is the whole image
 * (seeds: real images with 512-byte clusters, so every table fits). What it
 * accepts must stay within QEMU's limits; everything else is a clean error
 * that names the image.
 */
#include <stdlib.h>
#include <string.h>

#include "snap_qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Aborts when an accepted image breaks what the reader promises. */
static void check_accepted(const snap_qimg_info *info)
{
    if (strcmp(info->format, "qcow2") || strcmp(info->filename, "fuzz.qcow2"))
        abort();
    if (info->virtual_size < 0 || info->virtual_size % 512)
        abort();
    if (info->cluster_size < 512 || info->cluster_size > (2 << 20) ||
        (info->cluster_size & (info->cluster_size - 1)))
        abort();
    if (info->n_snapshots > SNAP_QCOW2_MAX_SNAPSHOTS)
        abort();
    if (info->backing_file && (!*info->backing_file || strlen(info->backing_file) > 1023))
        abort();
    if (info->backing_format && strlen(info->backing_format) > 15)
        abort();
    for (size_t i = 0; i < info->n_snapshots; i++) {
        const snap_qimg_snapshot *s = &info->snapshots[i];
        /* (icount may be any 64-bit value: QEMU lists it as a signed one.) */
        if (strlen(s->id) > 127 || strlen(s->name) > 255 || s->date_sec < 0 ||
            s->date_nsec < 0 || s->vm_clock_sec < 0 || s->vm_clock_nsec < 0 ||
            s->vm_clock_nsec >= 1000000000)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    snap_qimg_info info;
    snap_err err;
    if (snap_qcow2_parse_buffer(data, len, "fuzz.qcow2", &info, &err) == 0) {
        check_accepted(&info);
        snap_qimg_info_dispose(&info);
    } else if (!strstr(err.msg, "fuzz.qcow2") || !err.code) {
        abort(); /* every error names the image */
    }
    return 0;
}
