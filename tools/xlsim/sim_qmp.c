/*
 * QMP for xlsim: one short connection per command through libsnap's QMP
 * client (QEMU serves one client per socket, so never hold it open).
 */
#include <stdlib.h>

#include "snap_qmp.h"
#include "xlsim.h"

int sim_qmp_run(const char *qmp_path, const char *command, yajl_val *ret_out,
                int timeout_ms, snap_err *err)
{
    snap_qmp *qmp = NULL;
    int rc = snap_qmp_connect(qmp_path, timeout_ms, &qmp, err);
    if (!rc)
        rc = snap_qmp_execute(qmp, command, NULL, NULL, ret_out, timeout_ms, err);
    snap_qmp_close(qmp);
    return rc;
}
