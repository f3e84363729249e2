/*
 * snapshot-delete: recovery of an interrupted merge, dry run, --children;
 * on a real guest run by xlsim:
 *  - the QMP connection drops right after block-commit is sent (a proxy in
 *    front of QEMU's QMP socket forwards, then cuts both ends): a clear
 *    error, the journal keeps the merge (the base changed), the record
 *    stays, the domain runs on, the images pass qemu-img check; the next
 *    xlsnap command finishes the merge (QEMU's leftover job completed), the
 *    record goes, xenstore points at the base;
 *  - -N prints the plan (leaves first) and changes nothing (world capture);
 *  - --children-only keeps the snapshot and deletes its descendants,
 *    --children deletes both (virsh semantics), internal snapshots gone from
 *    the qcow2 tables.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "th.h"
#include "th_snaptest.h"

static th_xlsim_dom g;

/* ------------------------------------------------------------ QMP proxy */

/*
 * Listens on the domain's QMP socket path (QEMU's own socket renamed aside)
 * and relays each connection; the first time a client sends block-commit it
 * forwards it, lets QEMU start the job, then closes both ends (kill_qemu:
 * SIGKILLs QEMU instead, a device model dying mid-commit).
 */
typedef struct qmp_proxy {
    char path[4200], real[4300];
    int listen_fd;
    pthread_t thread;
    bool kill_qemu;
    bool dropped;
} qmp_proxy;

static bool unix_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a->sun_path)
        return false;
    memcpy(a->sun_path, path, strlen(path) + 1);
    return true;
}

static int unix_connect(const char *path)
{
    struct sockaddr_un a;
    if (!unix_addr(&a, path))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Relays one connection until either end closes or the commit is cut. */
static void relay(qmp_proxy *p, int client)
{
    int server = unix_connect(p->real);
    struct pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char buf[65536];
    while (server >= 0 && poll(fds, 2, -1) > 0) {
        int from = fds[0].revents ? 0 : 1;
        ssize_t n = read(fds[from].fd, buf, sizeof buf - 1);
        if (n <= 0)
            break;
        buf[n] = '\0';
        if (write(fds[1 - from].fd, buf, (size_t)n) != n)
            break;
        if (from == 0 && !p->dropped && strstr(buf, "\"block-commit\"")) {
            usleep(300000); /* QEMU starts the job; the reply is never delivered */
            if (p->kill_qemu)
                kill(g.vm.pid, SIGKILL);
            p->dropped = true;
            break;
        }
    }
    if (server >= 0)
        close(server);
}

static void *proxy_main(void *opaque)
{
    qmp_proxy *p = opaque;
    for (;;) {
        int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        relay(p, c);
        close(c);
    }
}

static bool proxy_start(qmp_proxy *p, bool kill_qemu)
{
    memset(p, 0, sizeof *p);
    p->kill_qemu = kill_qemu;
    snprintf(p->path, sizeof p->path, "%s", g.vm.qmp_path);
    snprintf(p->real, sizeof p->real, "%s.real", p->path);
    if (rename(p->path, p->real) != 0)
        return false;
    struct sockaddr_un a;
    if (!unix_addr(&a, p->path))
        return false;
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->listen_fd, 4) != 0)
        return false;
    return pthread_create(&p->thread, NULL, proxy_main, p) == 0;
}

/* QEMU's socket back under its own name. */
static void proxy_stop(qmp_proxy *p)
{
    shutdown(p->listen_fd, SHUT_RDWR);
    close(p->listen_fd);
    pthread_join(p->thread, NULL);
    unlink(p->path);
    rename(p->real, p->path);
}

/*
 * snapshot-delete of name through the proxy, which cuts the connection once
 * block-commit is sent (kill_qemu: kills QEMU too); the delete must fail.
 */
static bool delete_cut(th_cmd *r, const char *name, bool kill_qemu)
{
    qmp_proxy p;
    if (!proxy_start(&p, kill_qemu)) {
        th_fail_at(__FILE__, __LINE__, "QMP proxy on %s", g.vm.qmp_path);
        return false;
    }
    th_xlsnap(r, "snapshot-delete", g.name, name, NULL);
    proxy_stop(&p);
    CHECK(p.dropped);
    CHECK_INT(r->rc, 1);
    return true;
}

/* The merge of external snapshot name finished: record and overlays gone, xvdb on
 * the base. */
static void check_merged(const char *name)
{
    CHECK_SNAP_GONE(&g, name);
    char overlay[128];
    snprintf(overlay, sizeof overlay, "data.%s.qcow2", name);
    CHECK(access(th_snap_disk_file(&g, overlay), F_OK) != 0);
    snprintf(overlay, sizeof overlay, "root.%s.qcow2", name);
    CHECK(access(th_snap_disk_file(&g, overlay), F_OK) != 0);
    CHECK_ACTIVE_IMAGE(&g, "xvdb", "data.qcow2");
}

/* ------------------------------------------------------------ tests */

static void test_qmp_drop_during_commit(void)
{
    REQUIRE(SNAP_LAYERS(&g, "-e", "A", "d1", "B"));
    th_cmd r;
    REQUIRE(delete_cut(&r, "d1", false));
    CHECK_CONTAINS_ALL(r.err, "merging " /* xvda first */, "root.d1.qcow2",
                       "closed the connection",
                       "(domain dl2 is running); the next xlsnap command on it "
                       "finishes the merge");
    th_note("delete with a dropped QMP connection: %s", r.err ? r.err : "");
    th_cmd_free(&r);
    /* Consistent: journaled merge, the record still there, the guest running. */
    char *j = th_snap_journal_text();
    CHECK_CONTAINS(j, "\"merging\": true");
    free(j);
    CHECK_SNAP_EXISTS(&g, "d1");
    CHECK_GUEST_READS(&g, "B");
    const char *images[] = {"data.qcow2", "data.d1.qcow2", "root.qcow2", "root.d1.qcow2"};
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        CHECK_IMAGE_LIVE(th_snap_disk_file(&g, images[i]));
    /* The next run finishes the merge. */
    CHECK_RECOVERS(&g, "finishing the interrupted merge of 'd1'");
    check_merged("d1");
    CHECK_GUEST_READS(&g, "B");
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "data.qcow2"));
    CHECK_IMAGE_LIVE(th_snap_disk_file(&g, "root.qcow2"));
}

static void test_children_dry_run(void)
{
    SNAP_CREATE(&g, NULL, "t1");
    SNAP_CREATE(&g, NULL, "t2");
    SNAP_CREATE(&g, NULL, "t3");
    th_snap_refresh_index(&g);
    char *before = th_world_capture(&g, TH_WORLD_LIVE);
    th_cmd r;
    th_xlsnap(&r, "-N", "snapshot-delete", "--children-only", g.name, "t1", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_CONTAINS_ALL(r.out, "\"operation\": \"delete\"", "\"scope\": \"children-only\"",
                       "QMP blockdev-snapshot-delete-internal-sync");
    /* Leaves first, and t1 itself not in the list. */
    const char *p3 = r.out ? strstr(r.out, "\"name\": \"t3\"") : NULL;
    const char *p2 = r.out ? strstr(r.out, "\"name\": \"t2\"") : NULL;
    CHECK(p3 && p2 && p3 < p2);
    CHECK(r.out && !strstr(r.out, "\"name\": \"t1\""));
    th_cmd_free(&r);
    CHECK_WORLD_KEPT(&g, before);
}

static void test_children_only(void)
{
    XLSNAP_OK(NULL, "snapshot-delete", "--children-only", g.name, "t1");
    char *tab = th_snap_table(th_snap_disk_file(&g, "data.qcow2"));
    CHECK_CONTAINS(tab, " t1 ");
    CHECK(!strstr(tab, " t2 ") && !strstr(tab, " t3 "));
    free(tab);
    th_cmd r;
    th_xlsnap(&r, "snapshot-list", g.name, NULL);
    CHECK_CONTAINS(r.out, "t1");
    CHECK(r.out && !strstr(r.out, "t2") && !strstr(r.out, "t3"));
    th_cmd_free(&r);
    CHECK_SNAP_CURRENT(&g, "t1");
}

static void test_children(void)
{
    SNAP_CREATE(&g, NULL, "t4");
    XLSNAP_OK(NULL, "snapshot-delete", "--children", g.name, "t1");
    char *tab = th_snap_table(th_snap_disk_file(&g, "data.qcow2"));
    CHECK(!strstr(tab, " t1 ") && !strstr(tab, " t4 "));
    free(tab);
    tab = th_snap_table(th_snap_disk_file(&g, "root.qcow2"));
    CHECK(!strstr(tab, " t1 ") && !strstr(tab, " t4 "));
    free(tab);
    CHECK_SNAP_GONE(&g, "t1");
    CHECK_SNAP_GONE(&g, "t4");
    CHECK_GUEST_READS(&g, "B");
}

/*
 * QEMU dies right after block-commit is sent: the domain is shut off, the
 * merge journaled; the next command finishes it offline (qemu-img commit,
 * xenstore back on the base) and the domain boots on the merged base with
 * everything the guest wrote.
 */
static void test_qemu_killed_during_commit(void)
{
    REQUIRE(SNAP_LAYERS(&g, "-e", "C", "k1", "D"));
    th_cmd r;
    REQUIRE(delete_cut(&r, "k1", true));
    /* The domain's state as xlsnap saw it is racy here (QEMU still dying). */
    CHECK_CONTAINS_ALL(r.err,
                       "the merge was interrupted and stays journaled (domain dl2 ",
                       "the next xlsnap command on it finishes the merge");
    th_note("delete with QEMU killed: %s", r.err ? r.err : "");
    th_cmd_free(&r);
    for (int i = 0; i < 50 && th_pid_alive(g.vm.pid); i++)
        usleep(100000);
    CHECK(!th_pid_alive(g.vm.pid));
    CHECK_RECOVERS(&g, "finishing the interrupted merge of 'k1'");
    check_merged("k1");
    CHECK_IMAGE_OFFLINE(th_snap_disk_file(&g, "data.qcow2"));
    CHECK_IMAGE_OFFLINE(th_snap_disk_file(&g, "root.qcow2"));
    char domid[16];
    snprintf(domid, sizeof domid, "%u", g.domid);
    CHECK_INT(
        th_runl(NULL, NULL, th_build_path("xlsim"), "relaunch", domid, (char *)NULL), 0);
    th_snap_adopt_new_qemu(&g);
    REQUIRE(th_snap_wait_agent(&g));
    CHECK_GUEST_READS(&g, "D");
}

int main(void)
{
    th_plan(6);
    th_snap_run_boot(&g, "dl2", 0);
    TH_SNAP_RUN(test_qmp_drop_during_commit);
    TH_SNAP_RUN(test_children_dry_run);
    TH_SNAP_RUN(test_children_only);
    TH_SNAP_RUN(test_children);
    TH_SNAP_RUN(test_qemu_killed_during_commit);
    return th_snap_finish();
}
