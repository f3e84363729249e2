/*
 * Per-filesystem quiesce: which of the guest's filesystems a snapshot
 * freezes, and what became of each. Policy only: the agent protocol is in
 * snap_agent.c, the freeze window in snap_quiesce.c. Private to libsnap.
 *
 * The guest agent lists the filesystems it can see (guest-get-fsinfo: only
 * mounts on a block device; tmpfs, proc, FUSE, overlay are never listed).
 * The user narrows them by mountpoint (snap_create_params.freeze_mounts,
 * .no_freeze); each name must be one the agent lists, because qemu-ga's
 * guest-fsfreeze-freeze-list silently ignores a mountpoint it does not know
 * (a typo would otherwise turn into an unfrozen filesystem nobody was told
 * about). Of the rest:
 *  - a filesystem type the kernel cannot freeze (vfat, iso9660, squashfs...:
 *    no freeze_fs, FIFREEZE fails with EOPNOTSUPP and qemu-ga skips it
 *    without a word) is skipped, and said to be;
 *  - one device mounted twice (a bind mount) is frozen once: qemu-ga gets
 *    EBUSY for the second mountpoint and does not count it, so only the
 *    first is asked for and the others are frozen with it.
 * The freeze's reply is a count; it must equal the number asked for, or
 * some filesystem silently stayed unfrozen (which one, the agent does not
 * say): all asked are then "failed (not confirmed)".
 */
#ifndef SNAP_FSFREEZE_H
#define SNAP_FSFREEZE_H

#include "snap_agent.h"
#include "snap_meta.h"

struct snap_plan; /* snap_plan.h */

typedef struct snap_fs_choice {
    char *mountpoint, *type, *device;
    bool asked;              /* in the freeze-list sent to the agent */
    snap_fs_outcome outcome; /* planned (SKIPPED), then what happened */
    char *reason;            /* SKIPPED or FAILED: why */
} snap_fs_choice;

typedef struct snap_fs_selection {
    snap_fs_choice *fs; /* in the agent's order */
    size_t n;
    const char **freeze_list; /* mountpoints asked for (point into fs[]) */
    size_t n_freeze;
    int agent_count; /* what the freeze's reply counted; -1: no reply */
} snap_fs_selection;

/*
 * Chooses from the agent's list: only (NULL: all) minus skip. A name the
 * agent does not list, a name in both lists or an unfreezable filesystem
 * named in only is refused (SNAP_ERROR_NOTFOUND / INVAL), the message
 * listing what the agent offers.
 */
int snap_fs_select(const snap_agent_fs *fs, size_t n, const char *const *only,
                   size_t n_only, const char *const *skip, size_t n_skip,
                   snap_fs_selection *out, snap_err *err);
/*
 * The freeze's outcome: frozen is the agent's count (< 0: the freeze failed,
 * failure says why). Sets each asked filesystem's outcome; returns whether
 * the count confirmed every one.
 */
bool snap_fs_selection_outcome(snap_fs_selection *sel, int frozen, const char *failure);
/* Every filesystem frozen becomes FAILED for why (the snapshot came after the thaw). */
void snap_fs_selection_void(snap_fs_selection *sel, const char *why);
/*
 * snap_fs_selection_outcome for a freeze that answered: a count short of
 * what was asked is an error when the freeze is required (the caller then
 * thaws), else a warning on lg (domain names the domain) and 0.
 */
int snap_fs_check_count(snap_fs_selection *sel, int frozen, bool required,
                        xentoollog_logger *lg, const char *domain, snap_err *err);
/*
 * Writes the filesystems into the record and lowers q->state to what they
 * show: PARTIALLY_QUIESCED when some are not frozen, CRASH_CONSISTENT
 * when none is.
 */
void snap_fs_selection_record(const snap_fs_selection *sel, snap_meta_quiesce *q);
/* "/mnt/b (excluded), /boot/efi (vfat cannot be frozen)" (malloc'd): the not frozen. */
char *snap_fs_selection_unfrozen(const snap_fs_selection *sel);
void snap_fs_selection_dispose(snap_fs_selection *sel);

/*
 * Chooses among the filesystems the agent listed (guest-get-fsinfo, asked
 * by the caller: listed is that call's result, 0 or the error in err; fs
 * and n its list, which this frees) as the plan says. *out NULL: freeze as
 * qemu-ga does by itself (it listed nothing, or cannot list and no
 * mountpoint was named). An agent that failed to list them when
 * mountpoints were named: an error with *agent_failed set (the quiesce
 * policy decides); a mountpoint that is wrong: an error.
 */
int snap_fs_choose_listed(int listed, snap_agent_fs *fs, size_t n,
                          const struct snap_plan *plan, snap_fs_selection **out,
                          bool *agent_failed, snap_err *err);

/* True for a filesystem type Linux cannot freeze (FIFREEZE: EOPNOTSUPP). */
bool snap_fs_type_unfreezable(const char *type);

/*
 * The plan's copy of freeze_mounts/no_freeze (strings checked: absolute
 * paths without control characters), refused when the plan does not
 * freeze. plan->quiesce must already be resolved.
 */
int snap_fs_plan_options(struct snap_plan *plan, const snap_create_params *p,
                         snap_err *err);

#endif
