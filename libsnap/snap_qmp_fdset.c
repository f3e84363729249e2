/*
 * File descriptor passing to QEMU (see snap_qmp.h, "fd passing"): add-fd,
 * remove-fd and query-fdsets, a qcow2 node opened on /dev/fdset/N, and
 * whether the QEMU at the other end of a QMP socket can open host paths.
 *
 * QEMU 7.2 (monitor/fds.c, util/osdep.c): a file name "/dev/fdset/N" makes
 * qemu_open() dup an fd of fdset N whose access mode (O_RDONLY/O_RDWR)
 * matches the flags asked for; nothing is opened by path. remove-fd only
 * marks the fds: QEMU closes them when no dup of the set is open any more,
 * so removing a set right after the node that uses it is added is safe.
 */
#include "snap_qmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fdset_args {
    long long fdset_id; /* < 0: none */
    int fd;             /* < 0: none */
    const char *opaque; /* NULL: none */
} fdset_args;

static void fdset_args_gen(yajl_gen g, const void *opaque)
{
    const fdset_args *a = opaque;
    if (a->fdset_id >= 0)
        snap_json_kv_int(g, "fdset-id", a->fdset_id);
    if (a->fd >= 0)
        snap_json_kv_int(g, "fd", a->fd);
    if (a->opaque)
        snap_json_kv_str(g, "opaque", a->opaque);
}

int snap_qmp_add_fd(snap_qmp *q, int fd, long long fdset_id, const char *opaque,
                    long long *fdset_id_out, int *qemu_fd_out, int timeout_ms,
                    snap_err *err)
{
    fdset_args a = {fdset_id, -1, opaque};
    yajl_val ret = NULL;
    int rc = snap_qmp_execute_with_fd(q, "add-fd", fdset_args_gen, &a, fd, &ret,
                                      timeout_ms, err);
    if (rc)
        return rc;
    long long id, qfd;
    if (!snap_json_get_int(ret, "fdset-id", &id) || !snap_json_get_int(ret, "fd", &qfd)) {
        yajl_tree_free(ret);
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "QMP add-fd: reply lacks fdset-id/fd");
    }
    yajl_tree_free(ret);
    if (fdset_id_out)
        *fdset_id_out = id;
    if (qemu_fd_out)
        *qemu_fd_out = (int)qfd;
    return 0;
}

int snap_qmp_remove_fd(snap_qmp *q, long long fdset_id, int qemu_fd, int timeout_ms,
                       snap_err *err)
{
    fdset_args a = {fdset_id, qemu_fd, NULL};
    return snap_qmp_execute(q, "remove-fd", fdset_args_gen, &a, NULL, timeout_ms, err);
}

static void fdset_parse(yajl_val v, snap_qmp_fdset *set)
{
    yajl_val fds = snap_json_get_array(v, "fds");
    snap_json_get_int(v, "fdset-id", &set->id);
    set->n = fds ? fds->u.array.len : 0;
    set->fds = snap_xcalloc(set->n + 1, sizeof *set->fds);
    for (size_t i = 0; i < set->n; i++) {
        long long fd = -1;
        snap_json_get_int(fds->u.array.values[i], "fd", &fd);
        set->fds[i].fd = (int)fd;
        set->fds[i].opaque =
            snap_xstrdup_or_null(snap_json_get_string(fds->u.array.values[i], "opaque"));
    }
}

int snap_qmp_query_fdsets(snap_qmp *q, snap_qmp_fdsets *out, int timeout_ms,
                          snap_err *err)
{
    yajl_val ret = NULL;
    memset(out, 0, sizeof *out);
    int rc = snap_qmp_execute(q, "query-fdsets", NULL, NULL, &ret, timeout_ms, err);
    if (rc)
        return rc;
    if (!YAJL_IS_ARRAY(ret)) {
        yajl_tree_free(ret);
        return snap_err_set(err, SNAP_ERROR_PROTOCOL,
                            "QMP query-fdsets: reply is not an array");
    }
    out->n = ret->u.array.len;
    out->set = snap_xcalloc(out->n + 1, sizeof *out->set);
    for (size_t i = 0; i < out->n; i++)
        fdset_parse(ret->u.array.values[i], &out->set[i]);
    yajl_tree_free(ret);
    return 0;
}

void snap_qmp_fdsets_free(snap_qmp_fdsets *sets)
{
    for (size_t i = 0; sets && i < sets->n; i++) {
        for (size_t k = 0; k < sets->set[i].n; k++)
            free(sets->set[i].fds[k].opaque);
        free(sets->set[i].fds);
    }
    if (sets) {
        free(sets->set);
        memset(sets, 0, sizeof *sets);
    }
}

const snap_qmp_fdset *snap_qmp_fdsets_find(const snap_qmp_fdsets *sets, long long id)
{
    for (size_t i = 0; i < sets->n; i++)
        if (sets->set[i].id == id)
            return &sets->set[i];
    return NULL;
}

/* ------------------------------------------------------------- nodes */

typedef struct qcow2_fdset_args {
    const char *node_name;
    long long fdset_id;
} qcow2_fdset_args;

void snap_qmp_gen_fdset_file(yajl_gen g, long long fdset_id)
{
    char filename[64];
    snprintf(filename, sizeof filename, "/dev/fdset/%lld", fdset_id);
    snap_json_key(g, "file");
    yajl_gen_map_open(g);
    snap_json_kv_str(g, "driver", "file");
    snap_json_kv_str(g, "filename", filename);
    yajl_gen_map_close(g);
}

/*
 * {"driver": "qcow2", "node-name": N, "backing": null,
 *  "file": {"driver": "file", "filename": "/dev/fdset/ID"}}: the file node is
 * implicit, so blockdev-del of the qcow2 node removes it too.
 */
static void qcow2_fdset_args_gen(yajl_gen g, const void *opaque)
{
    const qcow2_fdset_args *a = opaque;
    snap_json_kv_str(g, "driver", "qcow2");
    snap_json_kv_str(g, "node-name", a->node_name);
    snap_json_key(g, "backing");
    yajl_gen_null(g);
    snap_qmp_gen_fdset_file(g, a->fdset_id);
}

int snap_qmp_blockdev_add_qcow2_fdset(snap_qmp *q, const char *node_name,
                                      long long fdset_id, int timeout_ms, snap_err *err)
{
    qcow2_fdset_args a = {node_name, fdset_id};
    int rc = snap_qmp_execute(q, "blockdev-add", qcow2_fdset_args_gen, &a, NULL,
                              timeout_ms, err);
    return rc ? snap_err_context(err, "node %s on /dev/fdset/%lld", node_name, fdset_id)
              : 0;
}

static void node_name_arg(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "node-name", opaque);
}

int snap_qmp_blockdev_del(snap_qmp *q, const char *node_name, int timeout_ms,
                          snap_err *err)
{
    return snap_qmp_execute(q, "blockdev-del", node_name_arg, node_name, NULL, timeout_ms,
                            err);
}

/* ------------------------------------------------------------- the peer */

/* "Uid:\treal\teffective\tsaved\tfs" from /proc/<pid>/status; -1 if unknown. */
static long proc_effective_uid(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    long uid = -1, real, eff;
    while (f && uid < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %ld %ld", &real, &eff) == 2)
            uid = eff;
    if (f)
        fclose(f);
    return uid;
}

/* /proc/<pid>/comm starts with "qemu" (qemu-system-x86, qemu-system-i38). */
static bool proc_is_qemu(pid_t pid, char *comm, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "re");
    comm[0] = '\0';
    if (f && fgets(comm, (int)len, f))
        comm[strcspn(comm, "\n")] = '\0';
    if (f)
        fclose(f);
    return !strncmp(comm, "qemu", 4);
}

int snap_pid_confined(pid_t pid, bool *confined, snap_err *err)
{
    char comm[64], path[64], root[4096];
    if (!proc_is_qemu(pid, comm, sizeof comm))
        return snap_err_set(err, SNAP_ERROR_NOTFOUND, "process %d (%s) is not QEMU",
                            (int)pid, comm[0] ? comm : "gone");
    long uid = proc_effective_uid(pid);
    snprintf(path, sizeof path, "/proc/%d/root", (int)pid);
    ssize_t n = readlink(path, root, sizeof root - 1);
    if (uid < 0 || n <= 0)
        return snap_err_errno(err, SNAP_ERROR_IO, errno ? errno : ESRCH,
                              "QEMU [%d]: reading its credentials and root from /proc",
                              (int)pid);
    root[n] = '\0';
    /* A QEMU run as another user (-runas) or chrooted (-chroot) cannot be
     * trusted to open the host paths it is given. */
    *confined = uid != (long)geteuid() || strcmp(root, "/") != 0;
    return 0;
}

int snap_qmp_peer_confined(snap_qmp *q, bool *confined, snap_err *err)
{
    pid_t pid;
    int rc = snap_qmp_peer_pid(q, &pid, err);
    return rc ? rc : snap_pid_confined(pid, confined, err);
}

/* ------------------------------------------------------------- libsnap's sets */

/* The path libsnap recorded for a set of its own ("libsnap:<path>"), or NULL. */
const char *snap_qmp_fdset_path(const snap_qmp_fdset *set)
{
    static const char prefix[] = SNAP_QMP_FDSET_OPAQUE_PREFIX;
    for (size_t i = 0; i < set->n; i++)
        if (set->fds[i].opaque && !strncmp(set->fds[i].opaque, prefix, sizeof prefix - 1))
            return set->fds[i].opaque + sizeof prefix - 1;
    return NULL;
}

/* N of "/dev/fdset/N", or -1. */
static long long fdset_of_name(const char *file)
{
    static const char prefix[] = "/dev/fdset/";
    if (!file || strncmp(file, prefix, sizeof prefix - 1))
        return -1;
    char *end;
    long long id = strtoll(file + sizeof prefix - 1, &end, 10);
    return *end ? -1 : id;
}

/*
 * The fdset an image name stands for, or -1: "/dev/fdset/N", or the
 * "json:{...}" QEMU makes up for a node whose backing node is not the one
 * its header names (an overlay put on a node opened from an fdset):
 * {"driver": "qcow2", "file": {"driver": "file", "filename": "/dev/fdset/N"},
 *  "backing": {...}}.
 */
long long snap_qmp_fdset_of_file(const char *file)
{
    if (!file || strncmp(file, "json:", 5))
        return fdset_of_name(file);
    char ebuf[64];
    yajl_val v = yajl_tree_parse(file + 5, ebuf, sizeof ebuf);
    long long id =
        fdset_of_name(snap_json_get_string(snap_json_get_object(v, "file"), "filename"));
    yajl_tree_free(v);
    return id;
}

/* A name QEMU gave an image that involves a passed descriptor. */
static bool names_an_fdset(const char *file)
{
    return file && strstr(file, "/dev/fdset/") != NULL;
}

/*
 * The image's own file in a "json:{...}" name that involves an fdset
 * (file.filename: "/dev/fdset/N", or the path of an image opened by path
 * whose backing node came from an fdset), malloc'd; NULL if none.
 */
static char *json_image_file(const char *file)
{
    if (strncmp(file, "json:", 5) || !names_an_fdset(file))
        return NULL;
    char ebuf[64];
    yajl_val v = yajl_tree_parse(file + 5, ebuf, sizeof ebuf);
    const char *inner = snap_json_get_string(snap_json_get_object(v, "file"), "filename");
    char *out = inner ? snap_xstrdup(inner) : NULL;
    yajl_tree_free(v);
    return out;
}

int snap_qmp_disks_resolve_fdsets(snap_qmp *q, snap_qmp_disks *disks, int timeout_ms,
                                  snap_err *err)
{
    bool any = false;
    for (size_t i = 0; i < disks->n && !any; i++)
        for (size_t k = 0; k < disks->disk[i].chain_len && !any; k++)
            any = names_an_fdset(disks->disk[i].chain[k].file);
    if (!any)
        return 0;
    snap_qmp_fdsets sets;
    int rc = snap_qmp_query_fdsets(q, &sets, timeout_ms, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < disks->n; i++)
        for (size_t k = 0; k < disks->disk[i].chain_len; k++) {
            snap_qmp_image *img = &disks->disk[i].chain[k];
            char *inner = json_image_file(img->file);
            if (inner) {
                free(img->file);
                img->file = inner;
            }
            long long id = fdset_of_name(img->file);
            const snap_qmp_fdset *set = id >= 0 ? snap_qmp_fdsets_find(&sets, id) : NULL;
            const char *path = set ? snap_qmp_fdset_path(set) : NULL;
            if (path) {
                free(img->file);
                img->file = snap_xstrdup(path);
            }
        }
    snap_qmp_fdsets_free(&sets);
    return 0;
}
