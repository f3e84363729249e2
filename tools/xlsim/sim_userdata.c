/*
 * The stored domain configuration, as libxl keeps it: userdata "libxl-json"
 * in <statedir>/userdata-d.<domid>.<uuid>.libxl-json, written as
 * userdata-n.* (0600) and renamed, under the domain userdata lock: all of
 * it through libsnap's snap_domcfg, which implements libxl's protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap_domcfg.h"
#include "xlsim.h"

int sim_userdata_store_config(const sim_env *env, uint32_t domid, const char *uuid,
                              libxl_domain_config *d_config, snap_err *err)
{
    char *json = libxl_domain_config_to_json(NULL, d_config);
    if (!json)
        return snap_err_set(err, SNAP_ERROR_FAIL, "cannot convert the config to JSON");
    snap_domcfg_lock *lock = NULL;
    int rc = snap_domcfg_lock_acquire(env->statedir, domid, uuid, -1, &lock, err);
    if (!rc) {
        /* libxl__set_domain_configuration stores the terminating NUL too. */
        rc = snap_domcfg_store(env->statedir, domid, uuid, json, strlen(json) + 1, err);
        snap_domcfg_lock_release(lock);
    }
    free(json);
    return rc ? snap_err_context(err, "storing the domain configuration") : 0;
}

int sim_userdata_destroy_all(const sim_env *env, uint32_t domid, const char *uuid,
                             snap_err *err)
{
    char *pattern = snap_domcfg_userdata_path(env->statedir, domid, uuid, "?", "*");
    glob_t g;
    int rc = 0;
    int gr = glob(pattern, GLOB_NOSORT, NULL, &g);
    if (gr == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (unlink(g.gl_pathv[i]) < 0 && errno != ENOENT && !rc)
                rc = snap_err_errno(err, SNAP_ERROR_IO, errno, "cannot remove %s",
                                    g.gl_pathv[i]);
        globfree(&g);
    } else if (gr != GLOB_NOMATCH) {
        rc = snap_err_set(err, SNAP_ERROR_IO, "cannot list %s", pattern);
    }
    free(pattern);
    return rc;
}
