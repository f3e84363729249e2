/*
 * Tests of xlsnap-xenstored through the real libxenstore, the real xenstore-*
 * utilities, Xen's own test-xenstore, and a raw socket for hostile input.
 * The daemon is the one of this build (ASan build under tests/run --asan), and
 * the last test checks it exits cleanly with a clean sanitizer log.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xen/io/xs_wire.h>
#include <xenstore.h>

#include "th.h"

#define TEST_XENSTORE "/usr/lib/xen-4.17/bin/test-xenstore"

static pid_t daemon_pid = -1;
static const char *daemon_sock;

/* ------------------------------------------------------------ helpers */

static struct xs_handle *open_xs(void)
{
    struct xs_handle *h = xs_open(0);
    if (!h)
        th_fail_at(__FILE__, __LINE__, "xs_open: %s", strerror(errno));
    return h;
}

static char *read_str(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    static char buf[8][4200];
    static int slot;
    unsigned int len;
    char *v = xs_read(h, t, path, &len);
    if (!v)
        return NULL;
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof(buf[0]), "%s", v);
    free(v);
    return out;
}

/* The next watch event as "path token", "(none)" after timeout_ms. */
static const char *next_event(struct xs_handle *h, int timeout_ms)
{
    static char buf[4][8300];
    static int slot;
    struct pollfd p = {.fd = xs_fileno(h), .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return "(none)";
    unsigned int num;
    char **vec = xs_read_watch(h, &num);
    if (!vec)
        return "(error)";
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof(buf[0]), "%s %s", vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
    free(vec);
    return out;
}

static int raw_connect(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", daemon_sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static bool raw_send(int fd, uint32_t type, uint32_t tx, const void *payload,
                     uint32_t len)
{
    struct xsd_sockmsg h = {.type = type, .req_id = 77, .tx_id = tx, .len = len};
    return write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) &&
           (!len || write(fd, payload, len) == (ssize_t)len);
}

static bool read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) != 1)
            return false;
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* Receives one message; its payload NUL-terminated in out. -1 on EOF/timeout. */
static int raw_recv(int fd, struct xsd_sockmsg *h, char *out, int timeout_ms)
{
    if (!read_full(fd, h, sizeof(*h), timeout_ms) || h->len > XENSTORE_PAYLOAD_MAX ||
        !read_full(fd, out, h->len, timeout_ms))
        return -1;
    out[h->len] = '\0';
    return (int)h->len;
}

/* Sends a request and returns the reply type (-1 on failure), skipping events. */
static int raw_call(int fd, uint32_t type, uint32_t tx, const void *payload, uint32_t len,
                    char *out)
{
    struct xsd_sockmsg h;
    if (!raw_send(fd, type, tx, payload, len))
        return -1;
    do {
        if (raw_recv(fd, &h, out, 5000) < 0)
            return -1;
    } while (h.type == XS_WATCH_EVENT);
    if (h.req_id != 77 || h.tx_id != tx)
        return -2;
    return (int)h.type;
}

/* True when the daemon closed fd (EOF within timeout). */
static bool raw_closed(int fd)
{
    char c;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 5000) == 1 && read(fd, &c, 1) == 0;
}

/* The daemon still answers a fresh libxenstore client. */
static bool daemon_alive(void)
{
    struct xs_handle *h = xs_open(0);
    const char *v = NULL;
    bool ok = h && xs_write(h, XBT_NULL, "/alive", "yes", 3) &&
              (v = read_str(h, XBT_NULL, "/alive")) && strcmp(v, "yes") == 0;
    xs_close(h);
    return ok;
}

/* ------------------------------------------------------------ tree operations */

static void test_initial_tree_is_cxenstored_like(void)
{
    struct xs_handle *h = open_xs();
    REQUIRE(h);
    unsigned int num;
    char **dir = xs_directory(h, XBT_NULL, "/", &num);
    REQUIRE(dir);
    bool local = false, tool = false;
    for (unsigned int i = 0; i < num; i++) {
        local |= strcmp(dir[i], "local") == 0;
        tool |= strcmp(dir[i], "tool") == 0;
    }
    free(dir);
    CHECK(local && tool);
    const char *paths[] = {"/", "/local", "/local/domain", "/local/domain/0", "/tool"};
    for (size_t i = 0; i < 5; i++) {
        struct xs_permissions *p = xs_get_permissions(h, XBT_NULL, paths[i], &num);
        CHECK(p && num == 1 && p[0].id == 0 && p[0].perms == XS_PERM_NONE);
        free(p);
    }
    xs_close(h);
}

static void test_read_write_mkdir_rm(void)
{
    struct xs_handle *h = open_xs();
    REQUIRE(h);
    /* WRITE creates the missing parents with empty values. */
    CHECK(xs_write(h, XBT_NULL, "/t/rw/a/b", "value", 5));
    CHECK_STR(read_str(h, XBT_NULL, "/t/rw/a/b"), "value");
    CHECK_STR(read_str(h, XBT_NULL, "/t/rw/a"), "");
    /* Binary values with NULs survive. */
    CHECK(xs_write(h, XBT_NULL, "/t/rw/bin", "x\0y", 3));
    unsigned int len;
    char *v = xs_read(h, XBT_NULL, "/t/rw/bin", &len);
    CHECK(v && len == 3 && memcmp(v, "x\0y", 3) == 0);
    free(v);
    /* MKDIR keeps an existing value. */
    CHECK(xs_mkdir(h, XBT_NULL, "/t/rw/a/b"));
    CHECK_STR(read_str(h, XBT_NULL, "/t/rw/a/b"), "value");
    CHECK(xs_mkdir(h, XBT_NULL, "/t/rw/m/n"));
    CHECK_STR(read_str(h, XBT_NULL, "/t/rw/m/n"), "");
    /* RM removes the subtree; absent with a present parent is fine. */
    CHECK(xs_rm(h, XBT_NULL, "/t/rw/a"));
    CHECK(!read_str(h, XBT_NULL, "/t/rw/a/b") && errno == ENOENT);
    CHECK(!read_str(h, XBT_NULL, "/t/rw/a") && errno == ENOENT);
    CHECK(xs_rm(h, XBT_NULL, "/t/rw/a"));
    CHECK(!xs_rm(h, XBT_NULL, "/t/rw/nope/deeper") && errno == ENOENT);
    CHECK(!xs_rm(h, XBT_NULL, "/") && errno == EINVAL);
    unsigned int num;
    char **dir = xs_directory(h, XBT_NULL, "/t/rw", &num);
    CHECK(dir && num == 2);
    free(dir);
    xs_close(h);
}

static void test_paths_relative_and_invalid(void)
{
    struct xs_handle *h = open_xs();
    REQUIRE(h);
    CHECK(xs_write(h, XBT_NULL, "rel/x", "1", 1));
    CHECK_STR(read_str(h, XBT_NULL, "/local/domain/0/rel/x"), "1");
    CHECK_STR(read_str(h, XBT_NULL, "rel/x"), "1");
    const char *bad[] = {"/a//b", "/a/", "/a b", "/a*b", "/a\\b"};
    for (size_t i = 0; i < 5; i++)
        CHECK(!xs_write(h, XBT_NULL, bad[i], "v", 1) && errno == EINVAL);
    CHECK(!read_str(h, XBT_NULL, "@introduceDomain") && errno == EINVAL);
    /* The limit counts 2048 bytes below /local/domain/<id>/ (as upstream). */
    char path[3200];
    int n = snprintf(path, sizeof(path), "/local/domain/0/");
    memset(path + n, 'p', 2048);
    path[n + 2048] = '\0';
    CHECK(xs_write(h, XBT_NULL, path, "", 0));
    strcat(path, "q");
    CHECK(!xs_write(h, XBT_NULL, path, "", 0) && errno == EINVAL);
    memset(path, 'x', 2049);
    path[0] = '/';
    path[2049] = '\0';
    CHECK(!xs_write(h, XBT_NULL, path, "", 0) && errno == EINVAL);
    path[2048] = '\0';
    CHECK(xs_write(h, XBT_NULL, path, "", 0));
    CHECK(xs_rm(h, XBT_NULL, path));
    xs_close(h);
}

static void test_permissions_roundtrip(void)
{
    struct xs_handle *h = open_xs();
    REQUIRE(h);
    CHECK(xs_write(h, XBT_NULL, "/t/perm", "", 0));
    struct xs_permissions set[3] = {{.id = 5, .perms = XS_PERM_NONE},
                                    {.id = 0, .perms = XS_PERM_READ},
                                    {.id = 7, .perms = XS_PERM_READ | XS_PERM_WRITE}};
    CHECK(xs_set_permissions(h, XBT_NULL, "/t/perm", set, 3));
    unsigned int num;
    struct xs_permissions *got = xs_get_permissions(h, XBT_NULL, "/t/perm", &num);
    REQUIRE(got);
    CHECK_INT(num, 3);
    for (unsigned int i = 0; i < 3 && i < num; i++) {
        CHECK_INT(got[i].id, set[i].id);
        CHECK_INT(got[i].perms, set[i].perms);
    }
    free(got);
    /* New children inherit their parent's permissions. */
    CHECK(xs_write(h, XBT_NULL, "/t/perm/child/grandchild", "", 0));
    got = xs_get_permissions(h, XBT_NULL, "/t/perm/child/grandchild", &num);
    CHECK(got && num == 3 && got[0].id == 5 &&
          got[2].perms == (XS_PERM_READ | XS_PERM_WRITE));
    free(got);
    CHECK(!xs_get_permissions(h, XBT_NULL, "/t/perm/none", &num) && errno == ENOENT);
    CHECK(!xs_set_permissions(h, XBT_NULL, "/t/perm/none", set, 1) && errno == ENOENT);
    /* The wire form is returned verbatim: "n5" "r0" "b7". */
    int fd = raw_connect();
    REQUIRE(fd >= 0);
    char out[4200];
    CHECK_INT(raw_call(fd, XS_GET_PERMS, 0, "/t/perm", 8, out), XS_GET_PERMS);
    CHECK(memcmp(out, "n5\0r0\0b7\0", 9) == 0);
    CHECK_INT(raw_call(fd, XS_SET_PERMS, 0, "/t/perm\0x1\0", 11, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    CHECK_INT(raw_call(fd, XS_SET_PERMS, 0, "/t/perm\0r\0", 10, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    CHECK_INT(raw_call(fd, XS_SET_PERMS, 0, "@releaseDomain\0n0\0", 18, out),
              XS_SET_PERMS);
    CHECK_INT(raw_call(fd, XS_SET_PERMS, 0, "@bogus\0n0\0", 10, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    close(fd);
    xs_close(h);
}

static void test_directory_of_400_entries(void)
{
    struct xs_handle *h = open_xs();
    REQUIRE(h);
    xs_transaction_t t = xs_transaction_start(h);
    REQUIRE(t != XBT_NULL);
    char path[128];
    for (int i = 0; i < 400; i++) {
        snprintf(path, sizeof(path), "/t/big/entry-with-a-long-name-%04d", i);
        CHECK(xs_write(h, t, path, "", 0));
    }
    CHECK(xs_transaction_end(h, t, false));
    /* DIRECTORY is over 4096 bytes: E2BIG on the wire... */
    int fd = raw_connect();
    REQUIRE(fd >= 0);
    char out[4200];
    CHECK_INT(raw_call(fd, XS_DIRECTORY, 0, "/t/big", 7, out), XS_ERROR);
    CHECK_STR(out, "E2BIG");
    close(fd);
    /* ...and libxenstore falls back to DIRECTORY_PART. */
    unsigned int num;
    char **dir = xs_directory(h, XBT_NULL, "/t/big", &num);
    REQUIRE(dir);
    CHECK_INT(num, 400);
    for (unsigned int i = 0; i < num; i++) {
        snprintf(path, sizeof(path), "entry-with-a-long-name-%04u", i);
        CHECK_STR(dir[i], path);
    }
    free(dir);
    xs_close(h);
}

/* ------------------------------------------------------------ transactions */

static void test_transaction_isolation_and_commit(void)
{
    struct xs_handle *a = open_xs(), *b = open_xs();
    REQUIRE(a && b);
    CHECK(xs_write(a, XBT_NULL, "/t/tx/x", "old", 3));
    xs_transaction_t t = xs_transaction_start(a);
    REQUIRE(t != XBT_NULL);
    CHECK(xs_write(a, t, "/t/tx/x", "new", 3));
    CHECK(xs_write(a, t, "/t/tx/created/deep", "c", 1));
    /* Inside sees its own writes; outside (both connections) does not. */
    CHECK_STR(read_str(a, t, "/t/tx/x"), "new");
    CHECK_STR(read_str(a, XBT_NULL, "/t/tx/x"), "old");
    CHECK_STR(read_str(b, XBT_NULL, "/t/tx/x"), "old");
    CHECK(!read_str(b, XBT_NULL, "/t/tx/created") && errno == ENOENT);
    CHECK(xs_transaction_end(a, t, false));
    CHECK_STR(read_str(b, XBT_NULL, "/t/tx/x"), "new");
    CHECK_STR(read_str(b, XBT_NULL, "/t/tx/created/deep"), "c");
    /* Abort discards everything. */
    t = xs_transaction_start(a);
    REQUIRE(t != XBT_NULL);
    CHECK(xs_write(a, t, "/t/tx/x", "aborted", 7));
    CHECK(xs_rm(a, t, "/t/tx/created"));
    CHECK(!read_str(a, t, "/t/tx/created") && errno == ENOENT);
    CHECK(xs_transaction_end(a, t, true));
    CHECK_STR(read_str(b, XBT_NULL, "/t/tx/x"), "new");
    CHECK_STR(read_str(b, XBT_NULL, "/t/tx/created/deep"), "c");
    /* The transaction is gone after END. */
    CHECK(!xs_transaction_end(a, t, false) && errno == ENOENT);
    xs_close(a);
    xs_close(b);
}

static void test_transaction_conflicts_give_eagain(void)
{
    struct xs_handle *a = open_xs(), *b = open_xs();
    REQUIRE(a && b);
    CHECK(xs_write(a, XBT_NULL, "/t/cf/x", "1", 1));
    /* A node read in the transaction changed outside: EAGAIN, nothing applied. */
    xs_transaction_t t = xs_transaction_start(a);
    REQUIRE(t != XBT_NULL);
    CHECK_STR(read_str(a, t, "/t/cf/x"), "1");
    CHECK(xs_write(b, XBT_NULL, "/t/cf/x", "2", 1));
    CHECK_STR(read_str(a, t, "/t/cf/x"), "1"); /* the transaction's copy */
    CHECK(xs_write(a, t, "/t/cf/y", "from-tx", 7));
    CHECK(!xs_transaction_end(a, t, false) && errno == EAGAIN);
    CHECK(!read_str(b, XBT_NULL, "/t/cf/y") && errno == ENOENT);
    CHECK_STR(read_str(b, XBT_NULL, "/t/cf/x"), "2");
    /* A node found absent inside, created outside: EAGAIN too. */
    t = xs_transaction_start(a);
    REQUIRE(t != XBT_NULL);
    CHECK(!read_str(a, t, "/t/cf/z") && errno == ENOENT);
    CHECK(xs_write(b, XBT_NULL, "/t/cf/z", "outside", 7));
    CHECK(xs_write(a, t, "/t/cf/w", "1", 1));
    CHECK(!xs_transaction_end(a, t, false) && errno == EAGAIN);
    /* Two transactions on two connections: the second to commit loses. */
    xs_transaction_t ta = xs_transaction_start(a), tb = xs_transaction_start(b);
    REQUIRE(ta != XBT_NULL && tb != XBT_NULL);
    CHECK_STR(read_str(a, ta, "/t/cf/x"), "2");
    CHECK_STR(read_str(b, tb, "/t/cf/x"), "2");
    CHECK(xs_write(a, ta, "/t/cf/x", "a", 1));
    CHECK(xs_write(b, tb, "/t/cf/x", "b", 1));
    CHECK(xs_transaction_end(a, ta, false));
    CHECK(!xs_transaction_end(b, tb, false) && errno == EAGAIN);
    CHECK_STR(read_str(b, XBT_NULL, "/t/cf/x"), "a");
    /* Unrelated outside writes do not conflict. */
    t = xs_transaction_start(a);
    REQUIRE(t != XBT_NULL);
    CHECK_STR(read_str(a, t, "/t/cf/x"), "a");
    CHECK(xs_write(b, XBT_NULL, "/t/other", "o", 1));
    CHECK(xs_write(a, t, "/t/cf/x", "c", 1));
    CHECK(xs_transaction_end(a, t, false));
    CHECK_STR(read_str(b, XBT_NULL, "/t/cf/x"), "c");
    xs_close(a);
    xs_close(b);
}

static void test_transaction_wire_errors(void)
{
    int fd = raw_connect();
    REQUIRE(fd >= 0);
    char out[4200];
    CHECK_INT(raw_call(fd, XS_READ, 4242, "/tool", 6, out), XS_ERROR);
    CHECK_STR(out, "ENOENT");
    CHECK_INT(raw_call(fd, XS_TRANSACTION_START, 0, "", 1, out), XS_TRANSACTION_START);
    uint32_t id = (uint32_t)strtoul(out, NULL, 10);
    CHECK(id != 0);
    /* No nested transactions. */
    CHECK_INT(raw_call(fd, XS_TRANSACTION_START, id, "", 1, out), XS_ERROR);
    CHECK_STR(out, "EBUSY");
    CHECK_INT(raw_call(fd, XS_TRANSACTION_END, id, "X", 2, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    CHECK_INT(raw_call(fd, XS_TRANSACTION_END, 0, "T", 2, out), XS_ERROR);
    CHECK_STR(out, "ENOENT");
    CHECK_INT(raw_call(fd, XS_TRANSACTION_END, id, "T", 2, out), XS_TRANSACTION_END);
    CHECK_STR(out, "OK");
    close(fd);
}

/* ------------------------------------------------------------ watches */

static void test_watch_events(void)
{
    struct xs_handle *w = open_xs(), *h = open_xs();
    REQUIRE(w && h);
    CHECK(xs_write(h, XBT_NULL, "/t/w/a/b", "", 0));
    CHECK(xs_watch(w, "/t/w", "top"));
    CHECK_STR(next_event(w, 2000), "/t/w top"); /* the initial event */
    CHECK(xs_watch(w, "/t/w/a/b", "deep"));
    CHECK_STR(next_event(w, 2000), "/t/w/a/b deep");
    CHECK(!xs_watch(w, "/t/w", "top") && errno == EEXIST);
    /* Changes at or below the watched path fire it. */
    CHECK(xs_write(h, XBT_NULL, "/t/w/c", "1", 1));
    CHECK_STR(next_event(w, 2000), "/t/w/c top");
    CHECK(xs_write(h, XBT_NULL, "/t/w/a/b", "2", 1));
    const char *e1 = next_event(w, 2000), *e2 = next_event(w, 2000);
    CHECK(strcmp(e1, "/t/w/a/b top") == 0 || strcmp(e2, "/t/w/a/b top") == 0);
    CHECK(strcmp(e1, "/t/w/a/b deep") == 0 || strcmp(e2, "/t/w/a/b deep") == 0);
    CHECK(xs_write(h, XBT_NULL, "/t/elsewhere", "", 0));
    CHECK_STR(next_event(w, 200), "(none)");
    /* Removing an ancestor fires the watch on the removed descendant. */
    CHECK(xs_rm(h, XBT_NULL, "/t/w/a"));
    e1 = next_event(w, 2000);
    e2 = next_event(w, 2000);
    CHECK(strcmp(e1, "/t/w/a/b deep") == 0 || strcmp(e2, "/t/w/a/b deep") == 0);
    CHECK(strcmp(e1, "/t/w/a top") == 0 || strcmp(e2, "/t/w/a top") == 0);
    CHECK_STR(next_event(w, 200), "(none)");
    /* Permission changes fire too. */
    struct xs_permissions p = {.id = 0, .perms = XS_PERM_READ};
    CHECK(xs_set_permissions(h, XBT_NULL, "/t/w/c", &p, 1));
    CHECK_STR(next_event(w, 2000), "/t/w/c top");
    CHECK(xs_unwatch(w, "/t/w", "top"));
    CHECK(!xs_unwatch(w, "/t/w", "top") && errno == ENOENT);
    CHECK(xs_write(h, XBT_NULL, "/t/w/c", "3", 1));
    CHECK_STR(next_event(w, 200), "(none)");
    xs_close(w);
    xs_close(h);
}

static void test_watch_fires_only_on_commit(void)
{
    struct xs_handle *w = open_xs(), *h = open_xs();
    REQUIRE(w && h);
    CHECK(xs_watch(w, "/t/wt", "tok"));
    CHECK_STR(next_event(w, 2000), "/t/wt tok");
    xs_transaction_t t = xs_transaction_start(h);
    REQUIRE(t != XBT_NULL);
    CHECK(xs_write(h, t, "/t/wt/x", "1", 1));
    CHECK_STR(next_event(w, 300), "(none)");
    CHECK(xs_transaction_end(h, t, false));
    CHECK_STR(next_event(w, 2000), "/t/wt/x tok");
    /* An aborted transaction fires nothing. */
    t = xs_transaction_start(h);
    REQUIRE(t != XBT_NULL);
    CHECK(xs_write(h, t, "/t/wt/y", "1", 1));
    CHECK(xs_transaction_end(h, t, true));
    CHECK_STR(next_event(w, 300), "(none)");
    xs_close(w);
    xs_close(h);
}

static void test_relative_watch_gives_relative_paths(void)
{
    struct xs_handle *w = open_xs(), *h = open_xs();
    REQUIRE(w && h);
    CHECK(xs_watch(w, "relw", "r"));
    CHECK_STR(next_event(w, 2000), "relw r");
    CHECK(xs_write(h, XBT_NULL, "/local/domain/0/relw/k", "v", 1));
    CHECK_STR(next_event(w, 2000), "relw/k r");
    CHECK(xs_unwatch(w, "relw", "r"));
    xs_close(w);
    xs_close(h);
}

static void test_reset_watches_over_the_wire(void)
{
    int fd = raw_connect();
    REQUIRE(fd >= 0);
    char out[4200];
    struct xsd_sockmsg hdr;
    CHECK_INT(raw_call(fd, XS_WATCH, 0, "/t/rs\0tok\0", 10, out), XS_WATCH);
    CHECK_INT(raw_recv(fd, &hdr, out, 2000), 10);
    CHECK_INT(hdr.type, XS_WATCH_EVENT);
    CHECK(hdr.req_id == 0 && memcmp(out, "/t/rs\0tok\0", 10) == 0);
    CHECK_INT(raw_call(fd, XS_RESET_WATCHES, 0, "", 1, out), XS_RESET_WATCHES);
    CHECK_INT(raw_call(fd, XS_WRITE, 0, "/t/rs\0v", 7, out), XS_WRITE);
    CHECK_INT(raw_recv(fd, &hdr, out, 200), -1); /* no event */
    close(fd);
}

/* ------------------------------------------------------------ domains, control */

static void test_domains_introduce_release(void)
{
    struct xs_handle *w = open_xs(), *h = open_xs();
    REQUIRE(w && h);
    char *p = xs_get_domain_path(h, 7);
    CHECK_STR(p, "/local/domain/7");
    free(p);
    CHECK(xs_is_domain_introduced(h, 0));
    CHECK(!xs_is_domain_introduced(h, 7));
    CHECK(xs_watch(w, "@introduceDomain", "in"));
    CHECK_STR(next_event(w, 2000), "@introduceDomain in");
    CHECK(xs_watch(w, "@releaseDomain", "out"));
    CHECK_STR(next_event(w, 2000), "@releaseDomain out");
    CHECK(xs_introduce_domain(h, 7, 1234, 5));
    CHECK_STR(next_event(w, 2000), "@introduceDomain in");
    CHECK(xs_is_domain_introduced(h, 7));
    CHECK(xs_introduce_domain(h, 7, 1234, 5)); /* again: no new event */
    CHECK_STR(next_event(w, 200), "(none)");
    CHECK(!xs_introduce_domain(h, 8, 1234, 0) && errno == EINVAL);
    CHECK(xs_introduce_domain(h, 8, 1, 6));
    CHECK_STR(next_event(w, 2000), "@introduceDomain in");
    CHECK(xs_set_target(h, 8, 7));
    CHECK(!xs_set_target(h, 8, 99) && errno == ENOENT);
    CHECK(xs_resume_domain(h, 7));
    CHECK(xs_release_domain(h, 7));
    CHECK_STR(next_event(w, 2000), "@releaseDomain out");
    CHECK(!xs_is_domain_introduced(h, 7));
    CHECK(!xs_release_domain(h, 7) && errno == ENOENT);
    CHECK(!xs_release_domain(h, 0) && errno == EINVAL);
    CHECK(!xs_resume_domain(h, 7) && errno == ENOENT);
    CHECK(xs_release_domain(h, 8));
    CHECK_STR(next_event(w, 2000), "@releaseDomain out");
    xs_close(w);
    xs_close(h);
}

static void test_control_commands(void)
{
    struct xs_handle *h = open_xs();
    REQUIRE(h);
    char *help = xs_control_command(h, "help", NULL, 0);
    CHECK_CONTAINS(help, "check\t");
    CHECK_CONTAINS(help, "help\t");
    free(help);
    char *ok = xs_control_command(h, "check", NULL, 0);
    CHECK_STR(ok, "OK");
    free(ok);
    ok = xs_control_command(h, "print", "from test_xenstored", 20);
    CHECK_STR(ok, "OK");
    free(ok);
    CHECK(!xs_control_command(h, "no-such-command", NULL, 0) && errno == EINVAL);
    xs_close(h);
}

/* ------------------------------------------------------------ hostile input */

static void test_malformed_requests_get_errors(void)
{
    char out[4200];
    /* Unknown types, and types only the daemon may send, are ENOSYS. */
    int fd = raw_connect();
    REQUIRE(fd >= 0);
    CHECK_INT(raw_call(fd, 99, 0, "x", 1, out), XS_ERROR);
    CHECK_STR(out, "ENOSYS");
    CHECK_INT(raw_call(fd, XS_WATCH_EVENT, 0, "", 0, out), XS_ERROR);
    CHECK_STR(out, "ENOSYS");
    CHECK_INT(raw_call(fd, XS_ERROR, 0, "", 0, out), XS_ERROR);
    CHECK_STR(out, "ENOSYS");
    /* Malformed payloads: no NUL, empty, two strings where one is expected. */
    CHECK_INT(raw_call(fd, XS_READ, 0, "/tool", 5, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    CHECK_INT(raw_call(fd, XS_READ, 0, "", 0, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    CHECK_INT(raw_call(fd, XS_RM, 0, "/tool\0x\0", 8, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    CHECK_INT(raw_call(fd, XS_WATCH, 0, "/x\0", 3, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    CHECK_INT(raw_call(fd, XS_DIRECTORY_PART, 0, "/tool\0", 6, out), XS_ERROR);
    CHECK_STR(out, "EINVAL");
    /* Still in sync after all that. */
    CHECK_INT(raw_call(fd, XS_READ, 0, "/tool", 6, out), XS_READ);
    close(fd);
}

static void test_broken_connections_are_dropped_and_survived(void)
{
    char out[4200];
    int fd = raw_connect();
    REQUIRE(fd >= 0);
    /* A header announcing more than 4096 bytes: the connection is dropped. */
    struct xsd_sockmsg big = {.type = XS_WRITE, .len = XENSTORE_PAYLOAD_MAX + 1};
    CHECK(write(fd, &big, sizeof(big)) == (ssize_t)sizeof(big));
    CHECK(raw_closed(fd));
    close(fd);
    CHECK(daemon_alive());
    /* Garbage bytes. */
    fd = raw_connect();
    REQUIRE(fd >= 0);
    unsigned char junk[512];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    CHECK(raw_closed(fd));
    close(fd);
    CHECK(daemon_alive());
    /* Half a message, then close. */
    fd = raw_connect();
    REQUIRE(fd >= 0);
    struct xsd_sockmsg half = {.type = XS_WRITE, .len = 100};
    CHECK(write(fd, &half, sizeof(half)) == (ssize_t)sizeof(half));
    CHECK(write(fd, "/half", 5) == 5);
    close(fd);
    /* Half a header, then close. */
    fd = raw_connect();
    REQUIRE(fd >= 0);
    CHECK(write(fd, &half, 7) == 7);
    close(fd);
    CHECK(daemon_alive());
    /* A message split in pieces still works. */
    fd = raw_connect();
    REQUIRE(fd >= 0);
    struct xsd_sockmsg rd = {.type = XS_READ, .req_id = 77, .len = 6};
    CHECK(write(fd, &rd, 5) == 5);
    usleep(50000);
    CHECK(write(fd, (char *)&rd + 5, sizeof(rd) - 5) == (ssize_t)(sizeof(rd) - 5));
    usleep(50000);
    CHECK(write(fd, "/tool", 6) == 6);
    struct xsd_sockmsg hdr;
    CHECK_INT(raw_recv(fd, &hdr, out, 2000), 0);
    CHECK_INT(hdr.type, XS_READ);
    close(fd);
}

/* ------------------------------------------------------------ real clients */

static void test_xenstore_utilities(void)
{
    char *out = NULL, *err = NULL;
    CHECK_INT(th_runl(&out, &err, "xenstore-write", "/t/util/a", "alpha", "/t/util/b",
                      "beta", NULL),
              0);
    free(out);
    free(err);
    CHECK_INT(th_runl(&out, &err, "xenstore-read", "/t/util/a", NULL), 0);
    CHECK_STR(out, "alpha\n");
    free(out);
    free(err);
    CHECK_INT(th_runl(&out, &err, "xenstore-ls", "/t/util", NULL), 0);
    CHECK_STR(out, "a = \"alpha\"\nb = \"beta\"\n");
    free(out);
    free(err);
    CHECK_INT(th_runl(&out, &err, "xenstore-rm", "/t/util/a", NULL), 0);
    free(out);
    free(err);
    CHECK_INT(th_runl(&out, &err, "xenstore-ls", "/t/util", NULL), 0);
    CHECK_STR(out, "b = \"beta\"\n");
    free(out);
    free(err);
    CHECK(th_runl(&out, &err, "xenstore-read", "/t/util/a", NULL) != 0);
    free(out);
    free(err);
}

static void test_xen_conformance_suite(void)
{
    char *out = NULL, *err = NULL;
    int rc = th_runl(&out, &err, TEST_XENSTORE, NULL);
    CHECK_INT(rc, 0);
    th_note("test-xenstore: %s%s", out ? out : "", err ? err : "");
    /* All of its tests ran (it stops at the first failure). */
    const char *names[] = {"read 1",     "read 2000", "write 1",  "write 2000",
                           "dir",        "rm node",   "rm dir",   "ta empty",
                           "ta empty x", "ta rmw",    "ta rmw x", "ta err"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char line[32];
        snprintf(line, sizeof(line), "%-10s:", names[i]);
        CHECK_CONTAINS(out, line);
    }
    CHECK(!out || !strstr(out, "failed"));
    free(out);
    free(err);
    /* Again with iterations, under a random schedule. */
    rc = th_runl(&out, &err, TEST_XENSTORE, "-i", "20", "-r", "2", NULL);
    CHECK_INT(rc, 0);
    free(out);
    free(err);
}

/* ------------------------------------------------------------ options */

/* Starts another daemon on sock with extra options; waits for its ready fd. */
static pid_t start_daemon(const char *sock, const char *opt, const char *file)
{
    int pipefd[2];
    char fd_s[16];
    if (pipe(pipefd) < 0)
        return -1;
    snprintf(fd_s, sizeof(fd_s), "%d", pipefd[1]);
    char *argv[] = {(char *)th_build_path("xlsnap-xenstored"),
                    "--foreground",
                    "--socket",
                    (char *)sock,
                    "--ready-fd",
                    fd_s,
                    (char *)opt,
                    (char *)file,
                    NULL};
    pid_t pid = th_spawn(argv, th_path("xenstored-2.log"));
    close(pipefd[1]);
    char c;
    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    bool ready =
        pid > 0 && poll(&p, 1, TH_READY_TIMEOUT_MS) == 1 && read(pipefd[0], &c, 1) == 1;
    close(pipefd[0]);
    if (!ready) {
        th_kill(pid);
        return -1;
    }
    return pid;
}

static bool stop_cleanly(pid_t pid)
{
    if (kill(pid, SIGTERM) < 0)
        return false;
    int st = th_wait(pid, 10000);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_save_and_load_tree(void)
{
    const char *sock = th_path("persist.sock"), *file = th_path("tree.txt");
    char saved_path[4096];
    snprintf(saved_path, sizeof(saved_path), "%s", getenv("XENSTORED_PATH"));
    pid_t pid = start_daemon(sock, "--save", file);
    REQUIRE(pid > 0);
    setenv("XENSTORED_PATH", sock, 1);
    struct xs_handle *h = open_xs();
    struct xs_permissions perms[2] = {{.id = 3, .perms = XS_PERM_NONE},
                                      {.id = 0, .perms = XS_PERM_READ}};
    CHECK(h && xs_write(h, XBT_NULL, "/keep/me", "bin\0ary\n", 8));
    CHECK(h && xs_set_permissions(h, XBT_NULL, "/keep", perms, 2));
    xs_close(h);
    CHECK(stop_cleanly(pid));
    CHECK(access(sock, F_OK) != 0); /* the socket is removed on exit */
    pid = start_daemon(sock, "--load", file);
    REQUIRE(pid > 0);
    h = open_xs();
    unsigned int len = 0, num = 0;
    char *v = h ? xs_read(h, XBT_NULL, "/keep/me", &len) : NULL;
    CHECK(v && len == 8 && memcmp(v, "bin\0ary\n", 8) == 0);
    free(v);
    struct xs_permissions *got =
        h ? xs_get_permissions(h, XBT_NULL, "/keep", &num) : NULL;
    CHECK(got && num == 2 && got[0].id == 3 && got[1].perms == XS_PERM_READ);
    free(got);
    CHECK_STR(h ? read_str(h, XBT_NULL, "/local/domain/0") : NULL, "");
    xs_close(h);
    CHECK(stop_cleanly(pid));
    setenv("XENSTORED_PATH", saved_path, 1);
}

static void test_daemonizes_with_pid_file(void)
{
    const char *sock = th_path("daemon.sock"), *pidfile = th_path("daemon.pid");
    char *argv[] = {(char *)th_build_path("xlsnap-xenstored"),
                    "--socket",
                    (char *)sock,
                    "--pid-file",
                    (char *)pidfile,
                    NULL};
    pid_t parent = th_spawn(argv, th_path("xenstored-daemon.log"));
    REQUIRE(parent > 0);
    int st = th_wait(parent, 10000);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    REQUIRE(th_wait_for_socket(sock, 10000));
    /* The pid file follows the double fork: wait for it. */
    char *text = NULL;
    for (int i = 0; i < 200 && !(text && strchr(text, '\n')); i++) {
        free(text);
        usleep(50000);
        text = th_read_file(pidfile);
    }
    REQUIRE(text);
    pid_t pid = (pid_t)atol(text);
    free(text);
    /* The daemon is not our child: stop it by its pid before any check. */
    bool alive = pid > 1 && pid != parent && kill(pid, 0) == 0;
    if (pid > 1)
        kill(pid, SIGTERM);
    CHECK(alive);
    for (int i = 0; i < 100 && pid > 1 && kill(pid, 0) == 0; i++)
        usleep(50000);
    CHECK(pid > 1 && kill(pid, 0) != 0);
    CHECK(access(pidfile, F_OK) != 0);
    char *out = NULL, *err = NULL;
    CHECK_INT(th_runl(&out, &err, th_build_path("xlsnap-xenstored"), "--help", NULL), 0);
    CHECK_CONTAINS(out, "--ready-fd");
    free(out);
    free(err);
    CHECK_INT(th_runl(&out, &err, th_build_path("xlsnap-xenstored"), "--bogus", NULL), 2);
    free(out);
    free(err);
}

/* Last: the shared daemon exits 0 on SIGTERM, and its log shows no sanitizer report. */
static void test_daemon_exits_cleanly(void)
{
    REQUIRE(daemon_pid > 0);
    CHECK(stop_cleanly(daemon_pid));
    daemon_pid = -1;
    char *log = th_read_file(th_path("xenstored.log"));
    REQUIRE(log);
    CHECK(!strstr(log, "AddressSanitizer"));
    CHECK(!strstr(log, "LeakSanitizer"));
    CHECK(!strstr(log, "runtime error"));
    th_note("daemon log:\n%s", log);
    free(log);
}

int main(void)
{
    th_plan(21);
    daemon_pid = th_start_xenstored(&daemon_sock);
    if (daemon_pid < 0)
        return th_finish();
    TH_RUN(test_initial_tree_is_cxenstored_like);
    TH_RUN(test_read_write_mkdir_rm);
    TH_RUN(test_paths_relative_and_invalid);
    TH_RUN(test_permissions_roundtrip);
    TH_RUN(test_directory_of_400_entries);
    TH_RUN(test_transaction_isolation_and_commit);
    TH_RUN(test_transaction_conflicts_give_eagain);
    TH_RUN(test_transaction_wire_errors);
    TH_RUN(test_watch_events);
    TH_RUN(test_watch_fires_only_on_commit);
    TH_RUN(test_relative_watch_gives_relative_paths);
    TH_RUN(test_reset_watches_over_the_wire);
    TH_RUN(test_domains_introduce_release);
    TH_RUN(test_control_commands);
    TH_RUN(test_malformed_requests_get_errors);
    TH_RUN(test_broken_connections_are_dropped_and_survived);
    TH_RUN(test_xenstore_utilities);
    TH_RUN(test_xen_conformance_suite);
    TH_RUN(test_save_and_load_tree);
    TH_RUN(test_daemonizes_with_pid_file);
    TH_RUN(test_daemon_exits_cleanly);
    return th_finish();
}
