/*
 * Removing a file that metadata names (a journal's memory_created or
 * overlay_created, a record's memory file or revert overlays). Metadata is
 * partly trusted (docs/threat-model.md): a hand-edited or damaged file may
 * name anything. So a named file is removed only when it lies in a directory
 * where the operation creates such files, bears a name the operation gives,
 * and is a regular file (not a symlink); otherwise it is left, with a
 * warning saying why. Not installed.
 */
#ifndef SNAP_OWNED_H
#define SNAP_OWNED_H

#include "snap_base.h"

#define SNAP_OWNED_MAX 4

/* Where an operation creates one kind of file and how it names it. */
typedef struct snap_owned {
    const char *what;            /* "memory file", "overlay" (messages) */
    char *dirs[SNAP_OWNED_MAX];  /* directories it creates them in (NULL ends) */
    char *names[SNAP_OWNED_MAX]; /* fnmatch patterns of the names (NULL ends) */
} snap_owned;

/* Adds a directory (copied; NULL: nothing added). */
void snap_owned_add_dir(snap_owned *o, const char *dir);
/* s with the fnmatch metacharacters backslash-escaped: it matches only itself. */
char *snap_owned_escape(const char *s);
/* Adds an fnmatch pattern of the names (taken over, malloc'd). */
void snap_owned_add_pattern(snap_owned *o, char *pattern);
void snap_owned_dispose(snap_owned *o);

/* NULL when o allows removing path, else why not (malloc'd). */
char *snap_owned_refusal(const char *path, const snap_owned *o);

/*
 * Removes path when o allows it; a missing file is fine. A refused path is
 * left and logged as a warning naming it and the reason (returns 0): the
 * caller goes on. Only a failing unlink is an error.
 */
int snap_owned_remove(xentoollog_logger *lg, const char *path, const snap_owned *o,
                      snap_err *err);

/*
 * The overlays of one disk: a create's (in image's directory or overlay_dir,
 * the --overlay-dir it was given) and a revert's (beside the snapshot's
 * overlay md or its base image), named as snap_overlay_path names them
 * ("<stem>.<name>[.<vdev>|.r<k>].qcow2", or shortened with a hash of the
 * name), for any stem. Kept beside snap_overlay_path (snap_overlay_name.c)
 * so the two change together. o->what is set too.
 */
void snap_owned_create_overlay(snap_owned *o, const char *image, const char *vdev,
                               const char *name, const char *overlay_dir);
struct snap_meta_disk;
void snap_owned_revert_overlay(snap_owned *o, const struct snap_meta_disk *md,
                               const char *name);

/* The directory part of path (malloc'd). */
char *snap_owned_dir(const char *path);

#endif
