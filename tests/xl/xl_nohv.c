/*
 * LD_PRELOAD for tests of the patched xl on a machine without Xen.
 *
 * xl's main() makes its libxl context before it looks at the command (even
 * for `xl help`), and libxl_ctx_alloc fails here for one reason only:
 * xc_interface_open cannot open the hypervisor's privcmd device. (xenstore
 * it reaches through XENSTORED_PATH: the project's xlsnap-xenstored.) This
 * replaces xc_interface_open with a placeholder handle so main() gets as far
 * as the snapshot commands, which run on the simulated dom0
 * (XLSNAP_PLATFORM=sim) and never use it.
 *
 * Before the command, main() reads xl.conf, and its default "autoballoon"
 * (auto) asks libxl_get_version_info, hence xc_version, for the hypervisor's
 * command line: xc_version answers as a hypervisor with an empty command
 * line would; and it sizes its CPU affinity masks (libxl_cpu_bitmap_alloc,
 * hence xc_get_max_cpus): this host's CPUs. Those are the only libxc calls
 * xl's startup makes (and xc_interface_close at exit, which checks the
 * handle is the placeholder).
 *
 * To show that the snapshot commands on the libxl platform use xl's libxl
 * context and open no second one: xc_domain_getinfolist answers as a
 * hypervisor without domains (so a domain lookup fails cleanly), and each
 * xc_interface_open / _close (one per libxl context) appends a line "open"
 * / "close" to the file $XL_NOHV_LOG when it is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xentoollog.h>

/* As in xenctrl.h (which needs GNU C extensions to compile). */
typedef struct xc_interface_core xc_interface;
int xc_version(xc_interface *xch, int cmd, void *arg);
int xc_get_max_cpus(xc_interface *xch);
typedef struct xc_domaininfo xc_domaininfo_t;
int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain,
                          unsigned int max_domains, xc_domaininfo_t *info);
xc_interface *xc_interface_open(xentoollog_logger *logger,
                                xentoollog_logger *dombuild_logger, unsigned open_flags);
int xc_interface_close(xc_interface *xch);

static char placeholder;

static void note(const char *line)
{
    const char *path = getenv("XL_NOHV_LOG");
    if (!path || !*path)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, line, strlen(line)) < 0)
        perror("xl_nohv: XL_NOHV_LOG");
    close(fd);
}

xc_interface *xc_interface_open(xentoollog_logger *logger,
                                xentoollog_logger *dombuild_logger, unsigned open_flags)
{
    (void)logger, (void)dombuild_logger, (void)open_flags;
    note("open\n");
    return (xc_interface *)&placeholder;
}

int xc_interface_close(xc_interface *xch)
{
    if (xch && xch != (xc_interface *)&placeholder) {
        fprintf(stderr, "xl_nohv: xc_interface_close(%p): not the placeholder\n",
                (void *)xch);
        abort();
    }
    note("close\n");
    return 0;
}

/* xen/include/public/version.h: XENVER_* and the size of each answer. */
int xc_version(xc_interface *xch, int cmd, void *arg)
{
    static const size_t answer_size[] = {
        [1] = 16,   /* extraversion */
        [2] = 144,  /* compile_info */
        [3] = 1024, /* capabilities */
        [4] = 64,   /* changeset */
        [5] = 8,    /* platform_parameters */
        [9] = 1024, /* commandline */
    };
    (void)xch;
    if (cmd == 0) /* version */
        return 4 << 16 | 17;
    if (cmd == 7) /* pagesize */
        return 4096;
    if (cmd < 0 || (size_t)cmd >= sizeof answer_size / sizeof answer_size[0] ||
        !answer_size[cmd] || !arg) {
        errno = ENOSYS;
        return -1;
    }
    memset(arg, 0, answer_size[cmd]);
    return 0;
}

int xc_get_max_cpus(xc_interface *xch)
{
    (void)xch;
    return (int)sysconf(_SC_NPROCESSORS_CONF);
}

int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain,
                          unsigned int max_domains, xc_domaininfo_t *info)
{
    (void)xch, (void)first_domain, (void)max_domains, (void)info;
    return 0;
}
