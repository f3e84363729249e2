/*
 * Internal snapshot identity; see snap_meta_qsnap_stamp in snap_meta.h
 * and snap_qsnap_identity.h. A qcow2 snapshot table hands out names and
 * ids again once an entry is gone, so a snapshot deleted and re-created by
 * hand (`qemu-img snapshot -d/-c`) would otherwise pass for the one xlsnap
 * took, and a revert would silently apply a different point in time.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "snap_qemuimg.h"
#include "snap_qsnap_identity.h"

#define STAMP_OF(s)                                                                      \
    ((snap_meta_qsnap_stamp){.known = true,                                              \
                             .date_sec = (s)->date_sec,                                  \
                             .date_nsec = (s)->date_nsec,                                \
                             .vm_clock_sec = (s)->vm_clock_sec,                          \
                             .vm_clock_nsec = (s)->vm_clock_nsec,                        \
                             .vm_state_size = (s)->vm_state_size})

snap_meta_qsnap_stamp snap_qsnap_stamp_of_qmp(const snap_qmp_snapshot *s)
{
    return STAMP_OF(s);
}

snap_meta_qsnap_stamp snap_qsnap_stamp_of_qimg(const snap_qimg_snapshot *s)
{
    return STAMP_OF(s);
}

static bool same_stamp(const snap_meta_qsnap_stamp *a, const snap_meta_qsnap_stamp *b)
{
    return a->date_sec == b->date_sec && a->date_nsec == b->date_nsec &&
           a->vm_clock_sec == b->vm_clock_sec && a->vm_clock_nsec == b->vm_clock_nsec &&
           a->vm_state_size == b->vm_state_size;
}

/* "id 3 at 2026-12-06 20:50:01.123456789 UTC" (+ clock and size when asked). */
static void describe(char *buf, size_t len, const char *id,
                     const snap_meta_qsnap_stamp *st, bool details)
{
    time_t t = (time_t)st->date_sec;
    struct tm tm;
    char when[64] = "?";
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    int n =
        snprintf(buf, len, "id %s at %s.%09lld UTC", id ? id : "?", when, st->date_nsec);
    if (details && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n,
                 ", vm clock %lld.%09lld s, vm state %lld bytes", st->vm_clock_sec,
                 st->vm_clock_nsec, st->vm_state_size);
}

int snap_qsnap_check(const snap_meta_disk *md, const char *id_now,
                     const snap_meta_qsnap_stamp *now, const char *refusal, snap_err *err)
{
    const snap_meta_qsnap_stamp *then = &md->qemu_snap_stamp;
    bool id_differs = md->qemu_snap_id && id_now && strcmp(md->qemu_snap_id, id_now);
    bool stamp_differs = then->known && !same_stamp(then, now);
    if (!id_differs && !stamp_differs)
        return 0;
    /* Same id and date but another clock or size: show those too. */
    bool details = !id_differs && then->date_sec == now->date_sec &&
                   then->date_nsec == now->date_nsec;
    char was[192], is[192];
    snap_meta_qsnap_stamp unknown = {0};
    describe(was, sizeof was, md->qemu_snap_id, then->known ? then : &unknown, details);
    describe(is, sizeof is, id_now, now, details);
    return snap_err_set(err, SNAP_ERROR_INVAL,
                        "disk %s: the internal snapshot '%s' in %s is not the one xlsnap "
                        "took (%s vs %s now); it was replaced outside xlsnap; %s",
                        md->vdev, md->qemu_snap_name, md->base_path, was, is, refusal);
}

int snap_qsnap_check_image(const snap_meta_disk *md, const char *refusal, snap_err *err)
{
    if (!md->qemu_snap_id && !md->qemu_snap_stamp.known)
        return 0; /* an older record: trusted by name */
    snap_qimg_info info;
    int rc = snap_qimg_info_get(NULL, md->base_path, SNAP_QIMG_FORCE_SHARE, &info, err);
    if (rc)
        return snap_err_context(err, "disk %s", md->vdev);
    const snap_qimg_snapshot *s = snap_qimg_find_snapshot(&info, md->qemu_snap_name);
    if (s) {
        snap_meta_qsnap_stamp now = snap_qsnap_stamp_of_qimg(s);
        rc = snap_qsnap_check(md, s->id, &now, refusal, err);
    }
    snap_qimg_info_dispose(&info);
    return rc; /* a missing one is the caller's (and qemu-img's) business */
}
