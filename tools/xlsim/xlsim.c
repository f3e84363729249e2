/*
 * xlsim — runs a QEMU guest as a simulated Xen domain, for hosts without
 * Xen: `xlsim create <cfg>` reads a real xl config with libxlutil and does
 * what libxl would (xenstore, stored config, device model), so xlsnap sees
 * a domain it cannot tell from a real one except for hypervisor calls.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_json.h"
#include "xlsim.h"

#define DESTROY_TIMEOUT_MS 10000
#define QMP_TIMEOUT_MS     5000

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: xlsim <command> [args]\n"
            "\n"
            "Runs QEMU guests as simulated Xen domains on hosts without Xen.\n"
            "\n"
            "  create [-p] [-n] <cfg>  create a domain from an xl config file\n"
            "                          (-p: leave it paused; -n: dry run, print the\n"
            "                          libxl-json config and QEMU's command line)\n"
            "  destroy <dom>           end the domain and remove its traces\n"
            "  list                    list domains like `xl list`\n"
            "  pause <dom>             pause the domain (QMP stop)\n"
            "  unpause <dom>           unpause the domain (QMP cont)\n"
            "  domid <name>            print a domain's id\n"
            "  relaunch [-p] <dom>     start a stopped domain's device model again\n"
            "                          from its stored config (same domid)\n"
            "  restore [-p] <dom> <file>  the same, loading the memory checkpoint\n"
            "                          <file> (a QEMU migration stream)\n"
            "\n"
            "<dom> is a domain name or id.\n"
            "\n"
            "Environment:\n"
            "  XLSNAP_XEN_STATEDIR  stored configs and locks (default /var/lib/xen)\n"
            "  XLSNAP_XEN_RUNDIR    QMP sockets, QEMU logs and consoles\n"
            "                       (default /var/run/xen)\n"
            "  XENSTORED_PATH       xenstored socket (libxenstore's own variable)\n"
            "  XLSIM_QEMU           QEMU binary (default qemu-system-x86_64)\n");
}

static int fail(const snap_err *err)
{
    fprintf(stderr, "xlsim: %s\n", err->msg);
    return EXIT_FAILURE;
}

static int mkdir_p(const char *dir, snap_err *err)
{
    char *copy = snap_xstrdup(dir);
    int rc = 0;
    for (char *p = copy + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
                rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot create %s", copy);
                break;
            }
            if (end)
                break;
            *p = '/';
        }
    }
    free(copy);
    return rc;
}

/* The kernel and ramdisk must be readable, as libxl checks before building. */
static int check_boot_files(const libxl_domain_build_info *b, snap_err *err)
{
    const char *files[] = {b->kernel, b->ramdisk};
    const char *what[] = {"kernel", "ramdisk"};
    for (int i = 0; i < 2; i++)
        if (files[i] && access(files[i], R_OK) != 0)
            return snap_err_errno(err, SNAP_ERROR_NOTFOUND, errno, "%s %s", what[i],
                                  files[i]);
    return 0;
}

static int dry_run(const sim_env *env, libxl_domain_config *d)
{
    char *json = libxl_domain_config_to_json(NULL, d);
    char **argv = sim_qemu_argv(env, 0, d, false, false);
    printf("%s\n", json ? json : "null");
    for (char **p = argv; *p; p++)
        printf("%s%s", p == argv ? "" : " ", *p);
    printf("\n");
    free(json);
    sim_argv_free(argv);
    return EXIT_SUCCESS;
}

/* Registers, stores and starts; undoes the registration when QEMU fails. */
static int create_domain(const sim_env *env, libxl_domain_config *d, const char *cfg,
                         bool paused, snap_err *err)
{
    struct xs_handle *xs = sim_xs_open(err);
    if (!xs)
        return err->code;
    uint32_t domid;
    char uuid[40];
    snprintf(uuid, sizeof uuid, LIBXL_UUID_FMT, LIBXL_UUID_BYTES(d->c_info.uuid));
    int rc = sim_xs_create_domain(xs, d, &domid, err);
    if (rc) {
        xs_close(xs);
        return snap_err_context(err, "domain %s", d->c_info.name);
    }
    pid_t pid = -1;
    rc = sim_userdata_store_config(env, domid, uuid, d, err);
    if (!rc)
        rc = sim_userdata_store_xl(env, domid, uuid, cfg, err);
    if (!rc)
        rc = sim_qemu_start(env, domid, d, paused, false, &pid, err);
    if (!rc)
        rc = sim_xs_record_dm(xs, domid, pid, err);
    if (rc) {
        snap_err ignored;
        sim_qemu_stop(env, domid, pid, DESTROY_TIMEOUT_MS, &ignored);
        sim_xs_destroy_domain(xs, domid, &ignored);
        sim_userdata_destroy_all(env, domid, uuid, &ignored);
        snap_err_context(err, "domain %s (domid %u)", d->c_info.name, domid);
    }
    xs_close(xs);
    return rc;
}

static int cmd_create(const sim_env *env, int argc, char **argv)
{
    bool paused = false, dry = false;
    int opt;
    while ((opt = getopt(argc, argv, "+pnh")) != -1) {
        switch (opt) {
        case 'p': paused = true; break;
        case 'n': dry = true; break;
        case 'h': usage(stdout); return EXIT_SUCCESS;
        default: return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "'xlsim create' requires a config file.\n");
        return 2;
    }
    const char *cfg = argv[optind];
    libxl_domain_config d;
    libxl_domain_config_init(&d);
    snap_err err;
    snap_err_clear(&err);
    fprintf(stderr, "Parsing config from %s\n", cfg);
    int rc = sim_config_read(cfg, &d, &err);
    if (!rc && dry) {
        rc = dry_run(env, &d);
        libxl_domain_config_dispose(&d);
        return rc;
    }
    if (!rc)
        rc = check_boot_files(&d.b_info, &err);
    if (!rc)
        rc = mkdir_p(env->statedir, &err);
    if (!rc)
        rc = mkdir_p(env->rundir, &err);
    if (!rc)
        rc = create_domain(env, &d, cfg, paused, &err);
    libxl_domain_config_dispose(&d);
    return rc ? fail(&err) : EXIT_SUCCESS;
}

/* Opens xenstore and resolves <dom>; prints the error itself. */
static struct xs_handle *open_domain(const char *dom, uint32_t *domid)
{
    snap_err err;
    snap_err_clear(&err);
    struct xs_handle *xs = sim_xs_open(&err);
    if (xs && sim_xs_lookup(xs, dom, domid, &err) != 0) {
        xs_close(xs);
        xs = NULL;
    }
    if (!xs)
        fail(&err);
    return xs;
}

static int cmd_destroy(const sim_env *env, const char *dom)
{
    uint32_t domid;
    struct xs_handle *xs = open_domain(dom, &domid);
    if (!xs)
        return EXIT_FAILURE;
    snap_err err;
    snap_err_clear(&err);
    char *uuid = sim_xs_dom_uuid(xs, domid);
    pid_t pid = sim_xs_dm_pid(xs, domid);
    int rc = sim_qemu_stop(env, domid, pid, DESTROY_TIMEOUT_MS, &err);
    if (!rc)
        rc = sim_xs_destroy_domain(xs, domid, &err);
    if (!rc && uuid)
        rc = sim_userdata_destroy_all(env, domid, uuid, &err);
    if (rc)
        snap_err_context(&err, "destroying domain %u", domid);
    free(uuid);
    xs_close(xs);
    return rc ? fail(&err) : EXIT_SUCCESS;
}

static int cmd_qmp(const sim_env *env, const char *dom, const char *command)
{
    uint32_t domid;
    struct xs_handle *xs = open_domain(dom, &domid);
    if (!xs)
        return EXIT_FAILURE;
    xs_close(xs);
    snap_err err;
    snap_err_clear(&err);
    char *qmp = sim_qmp_path(env, domid);
    int rc = sim_qmp_run(qmp, command, NULL, QMP_TIMEOUT_MS, &err);
    free(qmp);
    if (rc)
        snap_err_context(&err, "domain %u", domid);
    return rc ? fail(&err) : EXIT_SUCCESS;
}

/* relaunch [-p] <dom> | restore [-p] <dom> <file> */
static int cmd_relaunch(const sim_env *env, int argc, char **argv, bool restore)
{
    bool paused = false;
    int opt;
    while ((opt = getopt(argc, argv, "+ph")) != -1) {
        switch (opt) {
        case 'p': paused = true; break;
        case 'h': usage(stdout); return EXIT_SUCCESS;
        default: return 2;
        }
    }
    if (optind + (restore ? 2 : 1) != argc) {
        fprintf(stderr, "'xlsim %s' requires a domain%s.\n", argv[0],
                restore ? " and a memory file" : "");
        return 2;
    }
    uint32_t domid;
    struct xs_handle *xs = open_domain(argv[optind], &domid);
    if (!xs)
        return EXIT_FAILURE;
    xs_close(xs);
    snap_err err;
    snap_err_clear(&err);
    int rc = sim_relaunch(env, domid, restore ? argv[optind + 1] : NULL, paused, &err);
    return rc ? fail(&err) : EXIT_SUCCESS;
}

static int cmd_domid(const char *name)
{
    uint32_t domid;
    struct xs_handle *xs = open_domain(name, &domid);
    if (!xs)
        return EXIT_FAILURE;
    xs_close(xs);
    printf("%u\n", domid);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    sim_env env;
    sim_env_init(&env);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "create"))
        return cmd_create(&env, argc - 1, argv + 1);
    if (!strcmp(cmd, "list"))
        return sim_list(&env);
    if (!strcmp(cmd, "relaunch") || !strcmp(cmd, "restore"))
        return cmd_relaunch(&env, argc - 1, argv + 1, !strcmp(cmd, "restore"));
    bool one_dom = !strcmp(cmd, "destroy") || !strcmp(cmd, "pause") ||
                   !strcmp(cmd, "unpause") || !strcmp(cmd, "domid");
    if (!one_dom) {
        fprintf(stderr, "xlsim: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (argc != 3) {
        fprintf(stderr, "'xlsim %s' requires exactly one argument.\n", cmd);
        return 2;
    }
    if (!strcmp(cmd, "destroy"))
        return cmd_destroy(&env, argv[2]);
    if (!strcmp(cmd, "pause"))
        return cmd_qmp(&env, argv[2], "stop");
    if (!strcmp(cmd, "unpause"))
        return cmd_qmp(&env, argv[2], "cont");
    return cmd_domid(argv[2]);
}
