/*
 * The snapshot-* subcommands: option parsing and calls into libsnap.
 * Printing lives in xlsnap_output.c. Shared by xlsnap and xl (xlsnap_cmd.h).
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xlsnap_cmd.h"
#include "xlsnap_output.h"

/* Parses a non-negative integer option or exits 2 with a usage error. */
static int parse_uint_opt(const char *opt, const char *val, long max)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < 0 || v > max) {
        fprintf(stderr, "invalid value for %s: '%s' (expected 0..%ld)\n", opt,
                term_safe(val), max);
        exit(2);
    }
    return (int)v;
}

/* --lvm-cow-size: N% of each classic volume, or a size (K, M, G, T: powers of 1024). */
static void parse_cow_size(const char *val, snap_create_params *p)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, *end) : NULL;
    bool percent = end != val && !strcmp(end, "%");
    bool ok = !errno && end != val && val[0] != '-' &&
              (percent ? v >= 1 && v <= 100 : (!*end || (u && *u && !end[1])));
    int shift = u && *u ? 10 * (int)(u - units + 1) : 0;
    if (!ok || (!percent && (!v || v > (~0ull >> shift)))) {
        fprintf(stderr,
                "invalid value for --lvm-cow-size: '%s' (expected N%% of the volume, "
                "1-100, or a size such as 512M or 2G)\n",
                term_safe(val));
        exit(2);
    }
    if (percent)
        p->lvm_cow_percent = (int)v;
    else
        p->lvm_cow_bytes = v << shift;
}

static snap_quiesce_policy parse_quiesce(const char *val)
{
    if (!strcmp(val, "required"))
        return SNAP_QUIESCE_REQUIRED;
    if (!strcmp(val, "best-effort"))
        return SNAP_QUIESCE_BEST_EFFORT;
    if (!strcmp(val, "off"))
        return SNAP_QUIESCE_OFF;
    fprintf(stderr, "invalid value for --quiesce: '%s' (required, best-effort or off)\n",
            term_safe(val));
    exit(2);
}

static snap_lease_expiry parse_lease_expiry(const char *val)
{
    if (!strcmp(val, "thaw"))
        return SNAP_LEASE_THAW_ONLY;
    if (!strcmp(val, "kill"))
        return SNAP_LEASE_KILL_CALLER;
    fprintf(stderr, "invalid value for --lease-expiry: '%s' (thaw or kill)\n", val);
    exit(2);
}

/*
 * Splits "a,b,c" into a malloc'd vector (entries point into the copy *buf).
 * NULL (nothing allocated) when the list names nothing; opt and what name
 * the option and its items in that error.
 */
static const char **split_list(const char *opt, const char *what, const char *list,
                               size_t *n_out, char **buf)
{
    *buf = strdup(list);
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    const char **v = calloc(n, sizeof *v);
    if (!*buf || !v) {
        perror(xlsnap_progname);
        exit(EXIT_FAILURE);
    }
    size_t i = 0;
    for (char *save = NULL, *tok = strtok_r(*buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        v[i++] = tok;
    if (i == 0) {
        fprintf(stderr, "%s needs at least one %s\n", opt, what);
        free(v);
        free(*buf);
        *buf = NULL;
        return NULL;
    }
    *n_out = i;
    return v;
}

/* Reports a libsnap failure the xl way and returns EXIT_FAILURE. */
static int report_failure(const char *what, int rc)
{
    const char *msg = snap_ctx_errmsg(xlsnap_ctx());
    /* Messages quote names, paths and peers' words: escaped like records. */
    fprintf(stderr, "%s: %s failed: %s\n", xlsnap_progname, what,
            *msg ? term_safe(msg) : snap_strerror(rc));
    return EXIT_FAILURE;
}

static void print_progress(void *opaque, const char *what, uint64_t done, uint64_t total)
{
    (void)opaque;
    if (!isatty(STDERR_FILENO))
        return;
    if (total)
        fprintf(stderr, "\r%s: %llu / %llu MiB (%d%%)", term_safe(what),
                (unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
                (int)(done * 100 / total));
    else
        fprintf(stderr, "\r%s: %llu MiB", term_safe(what),
                (unsigned long long)(done >> 20));
    if (total && done >= total)
        fputc('\n', stderr);
}

enum {
    OPT_DISKS = 256,
    OPT_OVERLAY_DIR,
    OPT_FREEZE_TIMEOUT,
    OPT_FREEZE_BUDGET,
    OPT_LEASE_EXPIRY,
    OPT_FREEZE_MOUNTS,
    OPT_NO_FREEZE,
    OPT_JSON,
    OPT_TREE,
    OPT_ROOTS,
    OPT_LEAVES,
    OPT_RUNNING,
    OPT_PAUSED,
    OPT_FORCE,
    OPT_CHILDREN,
    OPT_CHILDREN_ONLY,
    OPT_METADATA,
    OPT_DISCARD_JOURNAL,
    OPT_VERIFY,
    OPT_LVM_COW_SIZE,
    OPT_TIMEOUT,
    OPT_GROUP,
    OPT_GROUPS
};

/*
 * Whether argv (before "--") names the long option name, or a prefix of it
 * as getopt takes it: options that change how many arguments a command
 * needs are known before SWITCH_FOREACH_OPT checks that number.
 */
static bool names_long_opt(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        size_t len = strcspn(argv[i], "=");
        if (len > 3 && !strncmp(name, argv[i], len))
            return true;
    }
    return false;
}

/* A group create's or info's outcome: the failure, or the group as text or JSON. */
static int print_group_result(int rc, const char *what, snap_group_info *g, bool json,
                              void (*print_text)(const snap_group_info *))
{
    if (rc)
        return report_failure(what, rc);
    if (json)
        printf("%s\n", json_term_safe(g->json));
    else
        print_text(g);
    snap_group_info_free(g);
    return EXIT_SUCCESS;
}

/*
 * snapshot-create --group=GROUP DOMAIN...: one snapshot, named GROUP, of
 * every domain, cut in one shared window (libsnap.h, snap_group_create).
 */
static int create_group(const char *group, int n, char **domains,
                        const snap_create_params *p, bool json, bool verify)
{
    if (p->memory || verify) {
        fprintf(stderr, "--group cannot be combined with %s\n",
                p->memory ? "-m/--memory" : "--verify");
        return 2;
    }
    if (n < 1) {
        fprintf(stderr, "--group needs at least one domain\n");
        return 2;
    }
    snap_create_params gp = *p;
    gp.dry_run = dryrun_only;
    snap_group_info *g = NULL;
    char *plan = NULL;
    int rc = snap_group_create_plan(xlsnap_ctx(), group, (const char *const *)domains,
                                    (size_t)n, &gp, &g, &plan);
    if (rc || !plan)
        return print_group_result(rc, "snapshot-create --group", g, json,
                                  print_group_created);
    /* -N: the plan, as for one domain. */
    printf("%s\n", json_term_safe(plan));
    free(plan);
    return EXIT_SUCCESS;
}

/*
 * Verifies snapshot name after a create or for snapshot-verify, printing
 * the report (or the record with --json). EXIT_SUCCESS only when every
 * filesystem was found clean.
 */
static int verify_and_report(const char *domain, const char *name, int timeout_ms,
                             bool json, const char *what)
{
    snap_verify_params vp;
    snap_info *info = NULL;
    snap_verify_params_init(&vp);
    vp.timeout_ms = timeout_ms;
    int rc = snap_verify(xlsnap_ctx(), domain, name, &vp, &info);
    if (rc)
        return report_failure(what, rc);
    if (json)
        printf("%s\n", json_term_safe(info->json));
    else
        print_verified(info);
    int ret = info->verification->clean ? EXIT_SUCCESS : EXIT_FAILURE;
    snap_info_free(info);
    return ret;
}

int main_snapshot_create(int argc, char **argv)
{
    static const struct option opts[] = {{"description", 1, 0, 'd'},
                                         {"internal", 0, 0, 'i'},
                                         {"external", 0, 0, 'e'},
                                         {"memory", 0, 0, 'm'},
                                         {"disks", 1, 0, OPT_DISKS},
                                         {"overlay-dir", 1, 0, OPT_OVERLAY_DIR},
                                         {"quiesce", 1, 0, 'q'},
                                         {"freeze-timeout", 1, 0, OPT_FREEZE_TIMEOUT},
                                         {"freeze-budget", 1, 0, OPT_FREEZE_BUDGET},
                                         {"lease-expiry", 1, 0, OPT_LEASE_EXPIRY},
                                         {"freeze-mounts", 1, 0, OPT_FREEZE_MOUNTS},
                                         {"no-freeze", 1, 0, OPT_NO_FREEZE},
                                         {"json", 0, 0, OPT_JSON},
                                         {"verify", 0, 0, OPT_VERIFY},
                                         {"lvm-cow-size", 1, 0, OPT_LVM_COW_SIZE},
                                         {"group", 1, 0, OPT_GROUP},
                                         COMMON_LONG_OPTS};
    snap_create_params p;
    const char *group = NULL;
    char *disks_buf = NULL, *mounts_buf = NULL, *nofreeze_buf = NULL;
    const char **disks = NULL, **mounts = NULL, **nofreeze = NULL;
    /* split after parsing: the parsers may exit */
    const char *disks_arg = NULL, *mounts_arg = NULL, *nofreeze_arg = NULL;
    bool json = false, verify = false;
    int opt;
    snap_create_params_init(&p);
    SWITCH_FOREACH_OPT(opt, "d:iemq:", opts, "snapshot-create", 1) {
    case 'd': p.description = optarg; break;
    case 'i':
    case 'e':
        if (p.method != SNAP_METHOD_AUTO) {
            fprintf(stderr, "-i/--internal and -e/--external exclude each other\n");
            return 2;
        }
        p.method = opt == 'i' ? SNAP_METHOD_INTERNAL : SNAP_METHOD_EXTERNAL;
        break;
    case 'm': p.memory = true; break;
    case 'q': p.quiesce = parse_quiesce(optarg); break;
    case OPT_DISKS: disks_arg = optarg; break;
    case OPT_OVERLAY_DIR: p.overlay_dir = optarg; break;
    case OPT_FREEZE_TIMEOUT:
        p.freeze_timeout_ms = parse_uint_opt("--freeze-timeout", optarg, 3600) * 1000;
        break;
    case OPT_FREEZE_BUDGET:
        p.freeze_budget_ms = parse_uint_opt("--freeze-budget", optarg, 3600000);
        break;
    case OPT_LEASE_EXPIRY: p.lease_expiry = parse_lease_expiry(optarg); break;
    case OPT_FREEZE_MOUNTS: mounts_arg = optarg; break;
    case OPT_NO_FREEZE: nofreeze_arg = optarg; break;
    case OPT_JSON: json = true; break;
    case OPT_VERIFY: verify = true; break;
    case OPT_LVM_COW_SIZE: parse_cow_size(optarg, &p); break;
    case OPT_GROUP: group = optarg; break;
    }
    if (!group && argc - optind > 2) {
        fprintf(stderr, "'%s snapshot-create' takes at most 2 arguments.\n\n",
                xlsnap_progname);
        help("snapshot-create");
        return 2;
    }
    if ((disks_arg && !(disks = split_list("--disks", "disk name", disks_arg, &p.n_disks,
                                           &disks_buf))) ||
        (mounts_arg && !(mounts = split_list("--freeze-mounts", "mountpoint", mounts_arg,
                                             &p.n_freeze_mounts, &mounts_buf))) ||
        (nofreeze_arg &&
         !(nofreeze = split_list("--no-freeze", "mountpoint", nofreeze_arg,
                                 &p.n_no_freeze, &nofreeze_buf)))) {
        free(disks);
        free(disks_buf);
        free(mounts);
        free(mounts_buf);
        return 2;
    }
    p.disks = disks;
    p.freeze_mounts = mounts;
    p.no_freeze = nofreeze;
    if (group) {
        p.progress = print_progress;
        int gret = create_group(group, argc - optind, argv + optind, &p, json, verify);
        free(disks);
        free(disks_buf);
        free(mounts);
        free(mounts_buf);
        free(nofreeze);
        free(nofreeze_buf);
        return gret;
    }
    const char *domain = argv[optind];
    p.name = argv[optind + 1];
    p.dry_run = dryrun_only;
    p.progress = print_progress;

    snap_info *info = NULL;
    char *plan = NULL;
    int rc = snap_create(xlsnap_ctx(), domain, &p, &info, &plan);
    int ret = EXIT_SUCCESS;
    if (rc)
        ret = report_failure("snapshot-create", rc);
    else if (plan)
        printf("%s\n", json_term_safe(plan));
    else if (verify) {
        /* The record is printed once, with its verification. */
        if (!json)
            print_created(info);
        ret = verify_and_report(domain, info->name, 0, json, "snapshot-create --verify");
    } else if (json)
        printf("%s\n", json_term_safe(info->json));
    else
        print_created(info);
    free(plan);
    snap_info_free(info);
    free(disks);
    free(disks_buf);
    free(mounts);
    free(mounts_buf);
    free(nofreeze);
    free(nofreeze_buf);
    return ret;
}

/*
 * --json prints whole records, each as soon as it is read (memory stays flat
 * for 10,000 snapshots). Damaged metadata: what was readable, then the error.
 */
static int list_json(const char *domain, enum list_filter filter)
{
    json_list_printer p = {filter, false, 0};
    int rc = snap_list_each(xlsnap_ctx(), domain, json_list_print_one, &p);
    if (rc && !p.opened && rc != SNAP_ERROR_PROTOCOL)
        return report_failure("snapshot-list", rc);
    json_list_print_end(&p);
    return rc ? report_failure("snapshot-list", rc) : EXIT_SUCCESS;
}

/* snapshot-list --groups: every consistency group, no domain named. */
static int list_groups(int n_args, bool other_opts, bool json)
{
    if (n_args || other_opts) {
        fprintf(stderr, "--groups takes no domain, and only --json\n");
        return 2;
    }
    snap_group_info **list = NULL;
    size_t n = 0;
    int rc = snap_group_list(xlsnap_ctx(), &list, &n);
    if (rc)
        return report_failure("snapshot-list --groups", rc);
    if (json) {
        printf("[");
        for (size_t i = 0; i < n; i++)
            printf("%s%s", i ? ",\n" : "\n", json_term_safe(list[i]->json));
        printf("]\n");
    } else {
        print_group_list(list, n);
    }
    snap_group_info_list_free(list, n);
    return EXIT_SUCCESS;
}

int main_snapshot_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tree", 0, 0, OPT_TREE},     {"roots", 0, 0, OPT_ROOTS},
        {"leaves", 0, 0, OPT_LEAVES}, {"json", 0, 0, OPT_JSON},
        {"groups", 0, 0, OPT_GROUPS}, COMMON_LONG_OPTS};
    enum list_filter filter = LIST_ALL;
    bool tree = false, json = false, groups = false;
    int opt;
    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-list",
                       names_long_opt(argc, argv, "--groups") ? 0 : 1) {
    case OPT_GROUPS: groups = true; break;
    case OPT_TREE: tree = true; break;
    case OPT_ROOTS:
    case OPT_LEAVES:
        if (filter != LIST_ALL) {
            fprintf(stderr, "--roots and --leaves exclude each other\n");
            return 2;
        }
        filter = opt == OPT_ROOTS ? LIST_ROOTS : LIST_LEAVES;
        break;
    case OPT_JSON: json = true; break;
    }
    if (tree && filter != LIST_ALL) {
        fprintf(stderr, "--tree cannot be combined with --roots or --leaves\n");
        return 2;
    }
    if (groups)
        return list_groups(argc - optind, tree || filter != LIST_ALL, json);
    if (json)
        return list_json(argv[optind], filter);
    snap_summary **list = NULL;
    size_t n = 0;
    /* Tables and trees need only the index. */
    int rc = snap_list_summaries(xlsnap_ctx(), argv[optind], &list, &n);
    /* Damaged metadata: print what was readable, then fail naming the file. */
    if (rc && !list)
        return report_failure("snapshot-list", rc);
    if (tree)
        print_tree(list, n);
    else
        print_list_table(list, n, filter);
    /*
     * Not freed: the command ends here, and freeing 10,000 entries one by
     * one was a fifth of a large listing's instructions. A static keeps the
     * list reachable, so leak checkers do not count it as lost (volatile: an
     * optimiser would drop a store nothing reads, and LeakSanitizer did).
     */
    static snap_summary **volatile listed;
    listed = list;
    (void)listed;
    return rc ? report_failure("snapshot-list", rc) : EXIT_SUCCESS;
}

/* snapshot-info --group GROUP: the group record and its members. */
static int info_group(int n_args, const char *group, bool json)
{
    if (n_args != 1) {
        fprintf(stderr, "--group takes one group name\n");
        return 2;
    }
    snap_group_info *g = NULL;
    int rc = snap_group_get(xlsnap_ctx(), group, &g);
    return print_group_result(rc, "snapshot-info --group", g, json, print_group_info);
}

int main_snapshot_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, OPT_JSON}, {"group", 0, 0, OPT_GROUP}, COMMON_LONG_OPTS};
    bool json = false, group = false;
    int opt;
    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-info",
                       names_long_opt(argc, argv, "--group") ? 1 : 2) {
    case OPT_JSON: json = true; break;
    case OPT_GROUP: group = true; break;
    }
    if (group)
        return info_group(argc - optind, argv[optind], json);
    snap_info *info = NULL;
    int rc = snap_info_get(xlsnap_ctx(), argv[optind], argv[optind + 1], &info);
    if (rc)
        return report_failure("snapshot-info", rc);
    if (json)
        printf("%s\n", json_term_safe(info->json));
    else
        print_info(info);
    snap_info_free(info);
    return EXIT_SUCCESS;
}

int main_snapshot_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, OPT_JSON}, {"timeout", 1, 0, OPT_TIMEOUT}, COMMON_LONG_OPTS};
    bool json = false;
    int timeout_ms = 0, opt;
    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-verify", 2) {
    case OPT_JSON: json = true; break;
    case OPT_TIMEOUT:
        timeout_ms = parse_uint_opt("--timeout", optarg, 86400) * 1000;
        break;
    }
    if (dryrun_only) {
        fprintf(stderr, "snapshot-verify has no dry run (it changes no image)\n");
        return 2;
    }
    return verify_and_report(argv[optind], argv[optind + 1], timeout_ms, json,
                             "snapshot-verify");
}

/*
 * snapshot-revert --group GROUP (rp) or snapshot-delete --group GROUP (dp):
 * every member, each checked by a dry run before any changes.
 */
static int group_revert_delete(int n_args, const char *group,
                               const snap_revert_params *rp, const snap_delete_params *dp)
{
    const char *what = rp ? "snapshot-revert --group" : "snapshot-delete --group";
    if (n_args != 1) {
        fprintf(stderr, "--group takes one group name, and no domain\n");
        return 2;
    }
    int rc = rp ? snap_group_revert(xlsnap_ctx(), group, rp)
                : snap_group_delete(xlsnap_ctx(), group, dp);
    if (rc)
        return report_failure(what, rc);
    if (dryrun_only)
        printf("Group %s: every member can be %s (dry run: nothing changed).\n",
               term_safe(group), rp ? "reverted" : "deleted");
    else
        printf("Group %s %s.\n", term_safe(group),
               rp ? "reverted: every member domain is back at its snapshot"
                  : "deleted: every member snapshot and the group record");
    return EXIT_SUCCESS;
}

int main_snapshot_revert(int argc, char **argv)
{
    static const struct option opts[] = {{"running", 0, 0, OPT_RUNNING},
                                         {"paused", 0, 0, OPT_PAUSED},
                                         {"force", 0, 0, OPT_FORCE},
                                         {"group", 0, 0, OPT_GROUP},
                                         COMMON_LONG_OPTS};
    snap_revert_params p;
    bool group = false;
    int opt;
    snap_revert_params_init(&p);
    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-revert",
                       names_long_opt(argc, argv, "--group") ? 1 : 2) {
    case OPT_GROUP: group = true; break;
    case OPT_RUNNING:
    case OPT_PAUSED:
        if (p.state != SNAP_REVERT_STATE_AS_SNAPSHOT) {
            fprintf(stderr, "--running and --paused exclude each other\n");
            return 2;
        }
        p.state =
            opt == OPT_RUNNING ? SNAP_REVERT_STATE_RUNNING : SNAP_REVERT_STATE_PAUSED;
        break;
    case OPT_FORCE: p.force = true; break;
    }
    p.force = p.force || force_execution;
    p.dry_run = dryrun_only;
    p.progress = print_progress;
    if (group)
        return group_revert_delete(argc - optind, argv[optind], &p, NULL);
    char *plan = NULL;
    int rc = snap_revert(xlsnap_ctx(), argv[optind], argv[optind + 1], &p, &plan);
    if (rc)
        return report_failure("snapshot-revert", rc);
    if (plan)
        printf("%s\n", json_term_safe(plan));
    else
        printf("Domain %s reverted to snapshot %s.\n", term_safe(argv[optind]),
               term_safe(argv[optind + 1]));
    free(plan);
    return EXIT_SUCCESS;
}

/* snapshot-delete --discard-journal DOMAIN: alone, one argument. */
static int discard_journal_of(int n_args, const char *domain, snap_delete_params p)
{
    if (n_args != 1 || p.scope != SNAP_DELETE_ONE || p.metadata_only || dryrun_only) {
        fprintf(stderr, "--discard-journal takes only a domain, and no other option\n");
        return 2;
    }
    char *aside = NULL;
    int rc = snap_discard_journal(xlsnap_ctx(), domain, &aside);
    if (rc)
        return report_failure("snapshot-delete --discard-journal", rc);
    printf("Journal of domain %s moved aside to %s.\n", domain, aside);
    free(aside);
    return EXIT_SUCCESS;
}

int main_snapshot_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"children", 0, 0, OPT_CHILDREN}, {"children-only", 0, 0, OPT_CHILDREN_ONLY},
        {"metadata", 0, 0, OPT_METADATA}, {"discard-journal", 0, 0, OPT_DISCARD_JOURNAL},
        {"group", 0, 0, OPT_GROUP},       COMMON_LONG_OPTS};
    snap_delete_params p;
    bool discard_journal = false, group = false;
    int opt;
    snap_delete_params_init(&p);
    /* --discard-journal (or a prefix, as getopt takes it) needs a domain only. */
    int n_required = 2;
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (strlen(argv[i]) > 3 &&
            !strncmp("--discard-journal", argv[i], strlen(argv[i])))
            n_required = 1;
    if (names_long_opt(argc, argv, "--group"))
        n_required = 1;
    SWITCH_FOREACH_OPT(opt, "", opts, "snapshot-delete", n_required) {
    case OPT_GROUP: group = true; break;
    case OPT_CHILDREN:
    case OPT_CHILDREN_ONLY:
        if (p.scope != SNAP_DELETE_ONE) {
            fprintf(stderr, "--children and --children-only exclude each other\n");
            return 2;
        }
        p.scope = opt == OPT_CHILDREN ? SNAP_DELETE_CHILDREN : SNAP_DELETE_CHILDREN_ONLY;
        break;
    case OPT_METADATA: p.metadata_only = true; break;
    case OPT_DISCARD_JOURNAL: discard_journal = true; break;
    }
    if (discard_journal)
        return discard_journal_of(argc - optind, argv[optind], p);
    p.dry_run = dryrun_only;
    if (group)
        return group_revert_delete(argc - optind, argv[optind], NULL, &p);
    char *plan = NULL;
    int rc = snap_delete(xlsnap_ctx(), argv[optind], argv[optind + 1], &p, &plan);
    if (rc)
        return report_failure("snapshot-delete", rc);
    if (plan)
        printf("%s\n", json_term_safe(plan));
    else
        printf("Snapshot %s of domain %s deleted.\n", term_safe(argv[optind + 1]),
               term_safe(argv[optind]));
    free(plan);
    return EXIT_SUCCESS;
}
