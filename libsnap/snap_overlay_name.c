/*
 * Overlay file names; see snap_overlay_name.h. The stem comes from the disk's
 * original image (the bottom of its backing chain), never from the image
 * the disk runs on now: naming an overlay after its backing file made every
 * external snapshot add ".NAME" (data.e1.e2.e3....qcow2) until the file
 * system refused the name, long before the chain limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_meta.h"
#include "snap_overlay_name.h"
#include "snap_owned.h"
#include "snap_qemuimg.h"

/* Longest kept prefix of a stem or name when the full one does not fit. */
#define STEM_KEEP 96
#define NAME_KEEP 48

char *snap_image_stem(const char *image)
{
    const char *slash = strrchr(image, '/');
    const char *file = slash ? slash + 1 : image;
    const char *dot = strrchr(file, '.');
    size_t len = dot && dot != file ? (size_t)(dot - file) : strlen(file);
    return snap_xasprintf("%.*s", (int)len, file);
}

/* At most max bytes of s, cut before a UTF-8 continuation byte. */
static int utf8_prefix_len(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return (int)len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return (int)max;
}

/* FNV-1a, 64 bits: names that only differ after the kept prefix stay apart. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

char *snap_overlay_path(const char *dir, const char *stem, const char *name,
                        const char *tag)
{
    const char *dot_tag = tag ? "." : "";
    tag = tag ? tag : "";
    char *file = snap_xasprintf("%s.%s%s%s.qcow2", stem, name, dot_tag, tag);
    if (strlen(file) > SNAP_OVERLAY_BASENAME_MAX) {
        free(file);
        file = snap_xasprintf("%.*s.%.*s~%016llx%s%s.qcow2",
                              utf8_prefix_len(stem, STEM_KEEP), stem,
                              utf8_prefix_len(name, NAME_KEEP), name,
                              (unsigned long long)name_hash(name), dot_tag, tag);
    }
    char *path = snap_xasprintf("%s/%s", dir, file);
    free(file);
    return path;
}

int snap_chain_root_stem(const char *image, char **stem, snap_err *err)
{
    snap_qimg_chain chain;
    *stem = NULL;
    int rc = snap_qimg_chain_get(NULL, image, SNAP_QIMG_FORCE_SHARE, &chain, err);
    if (rc)
        return rc;
    if (chain.n) { /* a "json:{...}" name says nothing: the image's own then */
        const char *root = chain.images[chain.n - 1].filename;
        *stem = snap_image_stem(strncmp(root, "json:", 5) ? root : image);
    }
    snap_qimg_chain_dispose(&chain);
    if (!*stem)
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "qemu-img info --backing-chain %s: no image listed", image);
    return 0;
}

/*
 * The names snap_overlay_path gives snapshot name with tag_pattern (NULL:
 * none), in full and shortened, for any stem: the stem comes from a chain
 * the metadata does not record. tag_pattern is an fnmatch pattern.
 */
static void add_overlay_names(snap_owned *o, const char *name, const char *tag_pattern)
{
    const char *dot = tag_pattern ? "." : "";
    tag_pattern = tag_pattern ? tag_pattern : "";
    char *lit = snap_owned_escape(name);
    char *prefix = snap_xasprintf("%.*s", utf8_prefix_len(name, NAME_KEEP), name);
    char *lit_prefix = snap_owned_escape(prefix);
    snap_owned_add_pattern(o, snap_xasprintf("*.%s%s%s.qcow2", lit, dot, tag_pattern));
    snap_owned_add_pattern(o, snap_xasprintf("*.%s~%016llx%s%s.qcow2", lit_prefix,
                                             (unsigned long long)name_hash(name), dot,
                                             tag_pattern));
    free(lit_prefix);
    free(prefix);
    free(lit);
}

void snap_owned_create_overlay(snap_owned *o, const char *image, const char *vdev,
                               const char *name, const char *overlay_dir)
{
    char *dir = snap_owned_dir(image);
    char *lit_vdev = snap_owned_escape(vdev);
    o->what = "overlay";
    snap_owned_add_dir(o, dir);
    snap_owned_add_dir(o, overlay_dir);
    add_overlay_names(o, name, NULL);
    add_overlay_names(o, name, lit_vdev);
    free(lit_vdev);
    free(dir);
}

void snap_owned_revert_overlay(snap_owned *o, const snap_meta_disk *md, const char *name)
{
    char *odir = md->overlay_path ? snap_owned_dir(md->overlay_path) : NULL;
    char *bdir = snap_owned_dir(md->base_path);
    o->what = "overlay";
    snap_owned_add_dir(o, odir);
    snap_owned_add_dir(o, bdir);
    add_overlay_names(o, name, "r[0-9]*");
    free(bdir);
    free(odir);
}
