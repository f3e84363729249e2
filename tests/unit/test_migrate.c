/*
 * snap_qmp_migrate_to_fd against a real QEMU whose RAM holds 96 MiB of
 * random data (loaded by -device loader): the save ends on QEMU's MIGRATION
 * event with the guest's pages in the file (a QEMU stream: "QEVM"), and a
 * second save on the same connection is not ended early by the first one's
 * events; a save prepared on one connection (as before a pause) runs on a
 * fresh one.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_qmp.h"
#include "th.h"
#include "th_qemu.h"

/* Generous: ASan + TCG on a loaded 2-core machine. */
#define T_MS     60000
#define DATA_MIB 96

/* A file of random bytes: pages QEMU cannot send as zero pages. */
static bool write_random_file(const char *path, size_t mib)
{
    int in = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    static char buf[1 << 20];
    bool ok = in >= 0 && out >= 0;
    for (size_t i = 0; ok && i < mib; i++)
        ok = read(in, buf, sizeof buf) == (ssize_t)sizeof buf &&
             write(out, buf, sizeof buf) == (ssize_t)sizeof buf;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok;
}

static bool start_vm_with_data(th_qemu *vm)
{
    const char *data = th_path("ram-data.bin");
    if (!write_random_file(data, DATA_MIB))
        return false;
    char loader[4200];
    snprintf(loader, sizeof loader, "loader,file=%s,addr=0x1000000,force-raw=on", data);
    const char *extra[] = {"-m", "256", "-device", loader, NULL};
    return th_qemu_start(vm, "migrate", extra);
}

static bool events_capability_on(snap_qmp *q)
{
    yajl_val ret = NULL;
    snap_err err;
    if (snap_qmp_execute(q, "query-migrate-capabilities", NULL, NULL, &ret, T_MS, &err))
        return false;
    bool on = false;
    for (size_t i = 0; i < snap_json_array_len(ret); i++) {
        yajl_val c = snap_json_array_at(ret, i);
        const char *name = snap_json_get_string(c, "capability");
        if (name && !strcmp(name, "events"))
            snap_json_get_bool(c, "state", &on);
    }
    yajl_tree_free(ret);
    return on;
}

/* Whether the page at byte off of the RAM data file is somewhere in state. */
static bool state_holds_data_page(const char *state, size_t len, size_t off)
{
    char page[4096];
    int fd = open(th_path("ram-data.bin"), O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && pread(fd, page, sizeof page, (off_t)off) == (ssize_t)sizeof page;
    if (fd >= 0)
        close(fd);
    return ok && memmem(state, len, page, sizeof page) != NULL;
}

/* The file is QEMU's stream and holds the guest's first and last data pages. */
static void check_state_file(int fd, const char *name)
{
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    CHECK(st.st_size > (off_t)DATA_MIB << 20);
    size_t len = (size_t)st.st_size;
    char *state = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(state != MAP_FAILED);
    CHECK(memcmp(state, "QEVM", 4) == 0);
    if (!state_holds_data_page(state, len, 0) ||
        !state_holds_data_page(state, len, ((size_t)DATA_MIB << 20) - 4096)) {
        th_note("%s: the guest's data pages are not in the saved state", name);
        CHECK(false);
    }
    munmap(state, len);
}

static void fdname_arg(yajl_gen g, const void *opaque)
{
    snap_json_kv_str(g, "fdname", opaque);
}

/*
 * No descriptor is left behind in QEMU: the migrate command took it (and
 * libsnap sent no closefd for it), so closing it by name is refused.
 */
static void check_no_fd_left(snap_qmp *q)
{
    snap_err err;
    CHECK_INT(
        snap_qmp_execute(q, "closefd", fdname_arg, "libsnap-migrate", NULL, T_MS, &err),
        SNAP_ERROR_PEER);
    CHECK_CONTAINS(err.msg, "not found");
}

/* One save into a fresh file, opened write-only as xlsnap opens it. */
static void save_once(snap_qmp *q, const char *name, bool prepared)
{
    const char *path = th_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    snap_err err;
    int rc = prepared ? snap_qmp_migrate_prepared_to_fd(q, fd, NULL, NULL, T_MS, &err)
                      : snap_qmp_migrate_to_fd(q, fd, NULL, NULL, T_MS, &err);
    CHECK_INT(rc, 0);
    if (rc)
        th_note("%s: %s", name, err.msg);
    CHECK(fsync(fd) == 0);
    close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    check_state_file(fd, name);
    close(fd);
}

static void test_save_content_and_events(void)
{
    th_qemu vm;
    REQUIRE(start_vm_with_data(&vm));
    snap_qmp *q = NULL;
    snap_err err;
    REQUIRE(snap_qmp_connect(vm.qmp_path, T_MS, &q, &err) == 0);
    CHECK_INT(snap_qmp_stop(q, T_MS, &err), 0);
    save_once(q, "first.state", false);
    check_no_fd_left(q);
    CHECK(events_capability_on(q));

    /* The first save's MIGRATION events may still be queued: no early end. */
    CHECK_INT(snap_qmp_cont(q, T_MS, &err), 0);
    CHECK_INT(snap_qmp_stop(q, T_MS, &err), 0);
    save_once(q, "second.state", false);
    snap_qmp_status status;
    CHECK_INT(snap_qmp_query_status(q, &status, T_MS, &err), 0);
    CHECK_STR(status.status, "postmigrate");
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

/* The sim's order: settings on one connection, then the pause and the save. */
static void test_prepared_save(void)
{
    th_qemu vm;
    REQUIRE(start_vm_with_data(&vm));
    snap_qmp *q = NULL;
    snap_err err;
    REQUIRE(snap_qmp_connect(vm.qmp_path, T_MS, &q, &err) == 0);
    CHECK(!events_capability_on(q)); /* QEMU's default: what prepare changes */
    CHECK_INT(snap_qmp_migrate_prepare(q, T_MS, &err), 0);
    snap_qmp_close(q);
    REQUIRE(snap_qmp_connect(vm.qmp_path, T_MS, &q, &err) == 0);
    CHECK(events_capability_on(q));
    CHECK_INT(snap_qmp_stop(q, T_MS, &err), 0);
    save_once(q, "prepared.state", true);
    check_no_fd_left(q);
    snap_qmp_close(q);
    th_qemu_stop(&vm);
}

int main(void)
{
    th_plan(2);
    TH_RUN(test_save_content_and_events);
    TH_RUN(test_prepared_save);
    return th_finish();
}
