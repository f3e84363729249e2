/*
 * xlsnap-xenstored: a faithful xenstore daemon on a unix socket, for machines
 * without a hypervisor (the real libxenstore and xenstore-* tools work with it).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "ops.h"
#include "persist.h"
#include "store.h"

struct options {
    bool foreground;
    const char *socket_path, *pid_file, *load_file, *save_file;
    int ready_fd;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fputs(
        "usage: xlsnap-xenstored [--foreground] [--socket PATH] [--pid-file PATH]\n"
        "                        [--ready-fd N] [--load FILE] [--save FILE] [-h|--help]\n"
        "  --socket    default $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket,\n"
        "              else /var/run/xenstored/socket\n"
        "  --ready-fd  write \"1\" to fd N and close it once listening\n"
        "  --load      start from a tree saved by --save instead of the default tree\n"
        "  --save      save the tree there on SIGTERM/SIGINT\n",
        out);
}

static const char *default_socket(void)
{
    static char buf[4096];
    const char *p = getenv("XENSTORED_PATH"), *rundir = getenv("XENSTORED_RUNDIR");
    if (p && *p)
        return p;
    if (rundir && *rundir) {
        snprintf(buf, sizeof(buf), "%s/socket", rundir);
        return buf;
    }
    return "/var/run/xenstored/socket";
}

/* Returns 0, 1 for --help, -1 on a usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"foreground", no_argument, NULL, 'f'},
                                             {"socket", required_argument, NULL, 's'},
                                             {"pid-file", required_argument, NULL, 'p'},
                                             {"ready-fd", required_argument, NULL, 'r'},
                                             {"load", required_argument, NULL, 'l'},
                                             {"save", required_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    char *end;
    *o = (struct options){.ready_fd = -1};
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': o->foreground = true; break;
        case 's': o->socket_path = optarg; break;
        case 'p': o->pid_file = optarg; break;
        case 'l': o->load_file = optarg; break;
        case 'S': o->save_file = optarg; break;
        case 'h': return 1;
        case 'r':
            o->ready_fd = (int)strtol(optarg, &end, 10);
            if (*end || o->ready_fd < 0) {
                fprintf(stderr, "xlsnap-xenstored: bad --ready-fd '%s'\n", optarg);
                return -1;
            }
            break;
        default: return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "xlsnap-xenstored: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!o->socket_path)
        o->socket_path = default_socket();
    return 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        xsd_log("socket path %s is too long", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    /* The run directory of a fresh machine may not exist yet. */
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    free(dir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        xsd_log("socket: %s", strerror(errno));
        return -1;
    }
    unlink(path); /* a stale socket of an earlier run */
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, 128) < 0) {
        xsd_log("listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Double fork and setsid; only the grandchild returns. */
static int daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        return -1;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    xsd_log_to_syslog();
    return 0;
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        xsd_log("pid file %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void signal_ready(int fd)
{
    if (fd < 0)
        return;
    if (write(fd, "1", 1) != 1)
        xsd_log("ready fd %d: %s", fd, strerror(errno));
    close(fd);
}

/* Blocks SIGTERM/SIGINT except inside ppoll (wait_mask), so no stop is lost. */
static void setup_signals(sigset_t *wait_mask)
{
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigset_t block;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, wait_mask);
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
}

static int run(const struct options *o)
{
    sigset_t wait_mask;
    setup_signals(&wait_mask);
    if ((o->load_file ? xsd_tree_load(o->load_file) : xsd_store_init()) < 0)
        return 1;
    int fd = listen_on(o->socket_path);
    if (fd < 0)
        return 1;
    if ((!o->foreground && daemonize() < 0) ||
        (o->pid_file && write_pid_file(o->pid_file) < 0)) {
        close(fd);
        unlink(o->socket_path);
        return 1;
    }
    signal_ready(o->ready_fd);
    int rc = xsd_serve(fd, &stop_requested, &wait_mask) < 0 ? 1 : 0;
    close(fd);
    unlink(o->socket_path);
    if (o->save_file && xsd_tree_save(o->save_file) < 0)
        rc = 1;
    if (o->pid_file)
        unlink(o->pid_file);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    int prc = parse_options(argc, argv, &o);
    if (prc != 0) {
        usage(prc > 0 ? stdout : stderr);
        return prc > 0 ? 0 : 2;
    }
    int rc = run(&o);
    xsd_conn_close_all();
    xsd_domains_clear();
    xsd_store_clear();
    return rc;
}
