/* The shared fixture of the snapshot tests on a real guest: see th_snaptest.h. */
#include "th_snaptest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "th.h"

/* The domains th_snap_boot brought up (a test program boots one or two). */
static const th_xlsim_dom *booted[8];

void th_snap_boot(th_xlsim_dom *d, const char *name)
{
    REQUIRE(th_xlsim_init());
    setenv("XLSNAP_XLSIM", th_build_path("xlsim"), 1);
    th_xlsim_opts o = {0};
    REQUIRE(th_xlsim_create(d, name, &o));
    REQUIRE(th_xlsim_wait_agent(d, TH_SNAP_BOOT_TIMEOUT_MS));
    for (size_t i = 0; i < sizeof booted / sizeof booted[0]; i++)
        if (!booted[i]) {
            booted[i] = d;
            return;
        }
    th_fail_at(__FILE__, __LINE__, "more than %zu booted domains",
               sizeof booted / sizeof booted[0]);
}

bool th_snap_booted(const th_xlsim_dom *d)
{
    for (size_t i = 0; i < sizeof booted / sizeof booted[0]; i++)
        if (booted[i] == d)
            return true;
    return false;
}

bool th_snap_guest_up(const th_xlsim_dom *d)
{
    if (th_snap_booted(d))
        return true;
    th_skip("the guest did not boot");
    return false;
}

const char *th_snap_disk_file(const th_xlsim_dom *d, const char *name)
{
    static char buf[4][PATH_MAX + 256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d->disk_dir, name);
    return buf[k];
}

char *th_snap_disk_files(const th_xlsim_dom *d, const char *pattern)
{
    char *out = NULL;
    th_runl(&out, NULL, "find", d->disk_dir, "-name", pattern, (char *)NULL);
    return out ? out : strdup("");
}

bool th_snap_write_disk(const th_xlsim_dom *d, const char *text)
{
    char script[160];
    snprintf(script, sizeof script, "echo %s >/mnt/vdb/state.txt && sync", text);
    return th_xlsim_guest_sh(d, script, NULL) == 0;
}

void th_snap_check_guest_reads_at(const char *file, int line, const th_xlsim_dom *d,
                                  const char *want)
{
    char *out = NULL;
    th_xlsim_guest_sh(d, "sync; echo 3 >/proc/sys/vm/drop_caches; cat /mnt/vdb/state.txt",
                      &out);
    if (!out || strncmp(out, want, strlen(want)))
        th_fail_at(file, line, "guest reads \"%s\", want %s", out ? out : "(nothing)",
                   want);
    free(out);
}

void th_snap_create_at(const char *file, int line, const th_xlsim_dom *d, const char *opt,
                       const char *name)
{
    th_cmd r;
    if (opt)
        th_xlsnap(&r, "snapshot-create", opt, d->name, name, NULL);
    else
        th_xlsnap(&r, "snapshot-create", d->name, name, NULL);
    if (r.rc != 0)
        th_fail_at(file, line, "snapshot-create %s %s: %s", d->name, name,
                   th_cmd_describe(&r));
    th_cmd_free(&r);
}

int th_snap_delete(const th_xlsim_dom *d, const char *opt, const char *name,
                   char **err_out)
{
    th_cmd r;
    if (opt)
        th_xlsnap(&r, "snapshot-delete", opt, d->name, name, NULL);
    else
        th_xlsnap(&r, "snapshot-delete", d->name, name, NULL);
    int rc = r.rc;
    if (rc && !err_out)
        th_note("%s", th_cmd_describe(&r));
    if (err_out)
        *err_out = r.err ? strdup(r.err) : NULL;
    th_cmd_free(&r);
    return rc;
}

void th_snap_adopt_new_qemu(th_xlsim_dom *d)
{
    char path[96];
    snprintf(path, sizeof path, "/local/domain/%u/image/device-model-pid", d->domid);
    char *pid_s = th_xs_read(path);
    pid_t pid = pid_s ? (pid_t)strtol(pid_s, NULL, 10) : -1;
    free(pid_s);
    if (pid > 0 && pid != d->vm.pid) {
        th_adopt(pid);
        d->vm.pid = pid;
    }
}

char *th_snap_xlsim_list(void)
{
    char *out = NULL;
    th_runl(&out, NULL, th_build_path("xlsim"), "list", (char *)NULL);
    return out;
}

char *th_snap_backing_of(const char *image)
{
    char *out = NULL;
    th_runl(&out, NULL, "qemu-img", "info", "-U", image, (char *)NULL);
    char *b = out ? strstr(out, "backing file: ") : NULL;
    char *res = NULL;
    if (b) {
        b += strlen("backing file: ");
        res = strndup(b, strcspn(b, "\n"));
    }
    free(out);
    return res;
}

char *th_snap_table(const char *image)
{
    char *out = NULL;
    th_runl(&out, NULL, "qemu-img", "snapshot", "-l", "-U", image, (char *)NULL);
    return out ? out : strdup("");
}

char *th_snap_journal_text(void)
{
    char *out = NULL;
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/snapshots", th_xlsim_statedir());
    th_runl(&out, NULL, "find", dir, "-name", ".journal.json", "-exec", "cat", "{}", ";",
            (char *)NULL);
    return out;
}

void th_snap_check_image_at(const char *file, int line, const char *image, bool live)
{
    char *out = NULL, *err = NULL;
    int rc = live ? th_runl(&out, &err, "qemu-img", "check", "-U", image, (char *)NULL)
                  : th_runl(&out, &err, "qemu-img", "check", image, (char *)NULL);
    if (rc != 0 && rc != 3)
        th_fail_at(file, line, "qemu-img check %s: %d: %s%s", image, rc, out ? out : "",
                   err ? err : "");
    free(out);
    free(err);
}
