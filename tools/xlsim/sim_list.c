/*
 * `xlsim list`: xl's table (tools/xl/xl_list.c list_domains) for simulated
 * domains. State letters come from QEMU: r running, p paused, s shut down
 * (QEMU gone or powered off with -no-shutdown); CPU time from /proc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_json.h"
#include "xlsim.h"

#define LIST_QMP_TIMEOUT_MS 1000

/* utime + stime of pid in seconds, 0 if unknown. */
static double cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    /* Fields after comm: state(3) ... utime(14) stime(15). */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                     &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* "r-----", "--p---", "---s--" from QEMU's run state. */
static void state_letters(const sim_env *env, uint32_t domid, pid_t pid, char out[7])
{
    memcpy(out, "------", 7);
    if (pid <= 0 || !sim_pid_alive(pid)) {
        out[3] = 's';
        return;
    }
    char *qmp = sim_qmp_path(env, domid);
    yajl_val ret = NULL;
    snap_err err;
    if (sim_qmp_run(qmp, "query-status", &ret, LIST_QMP_TIMEOUT_MS, &err) == 0) {
        const char *status = snap_json_get_string(ret, "status");
        bool running = false;
        snap_json_get_bool(ret, "running", &running);
        if (running)
            out[0] = 'r';
        else if (status && !strcmp(status, "shutdown"))
            out[3] = 's';
        else if (status && !strcmp(status, "internal-error"))
            out[4] = 'c';
        else
            out[2] = 'p';
    }
    yajl_tree_free(ret);
    free(qmp);
}

static unsigned long dom_mem_mib(struct xs_handle *xs, uint32_t domid)
{
    char *target = sim_xs_read_dom(xs, domid, "memory/target");
    unsigned long kib = target ? strtoul(target, NULL, 10) : 0;
    free(target);
    return kib / 1024;
}

static int dom_vcpus_online(struct xs_handle *xs, uint32_t domid)
{
    int n = 0;
    for (int i = 0;; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "cpu/%d/availability", i);
        char *avail = sim_xs_read_dom(xs, domid, rel);
        if (!avail)
            return n;
        n += !strcmp(avail, "online");
        free(avail);
    }
}

static void print_dom0(struct xs_handle *xs)
{
    char *name = sim_xs_read_dom(xs, 0, "name");
    if (!name)
        return;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    printf("%-40s %5d %5lu %5ld     %s  %8.1f\n", name, 0,
           (unsigned long)((pages * page) >> 20), sysconf(_SC_NPROCESSORS_ONLN), "r-----",
           0.0);
    free(name);
}

int sim_list(const sim_env *env)
{
    snap_err err;
    snap_err_clear(&err);
    struct xs_handle *xs = sim_xs_open(&err);
    uint32_t *ids = NULL;
    unsigned int n = 0;
    if (!xs || sim_xs_list_domids(xs, &ids, &n, &err) != 0) {
        fprintf(stderr, "xlsim: %s\n", err.msg);
        if (xs)
            xs_close(xs);
        return EXIT_FAILURE;
    }
    printf(
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n");
    print_dom0(xs);
    for (unsigned int i = 0; i < n; i++) {
        char *name = sim_xs_read_dom(xs, ids[i], "name");
        pid_t pid = sim_xs_dm_pid(xs, ids[i]);
        char state[7];
        state_letters(env, ids[i], pid, state);
        printf("%-40s %5u %5lu %5d     %s  %8.1f\n", name ? name : "(null)", ids[i],
               dom_mem_mib(xs, ids[i]), dom_vcpus_online(xs, ids[i]), state,
               pid > 0 ? cpu_seconds(pid) : 0.0);
        free(name);
    }
    free(ids);
    xs_close(xs);
    return EXIT_SUCCESS;
}
