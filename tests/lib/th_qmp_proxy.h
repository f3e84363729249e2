/*
 * th_qmp_proxy — a QMP peer that refuses one command, for fault injection
 * against a real QEMU: it listens on the QMP socket's path (the real
 * socket moved aside to <path>.real), forwards every line both ways
 * (descriptors passed with add-fd included, SCM_RIGHTS), and answers the
 * command named `refuse` itself with a GenericError whose desc is `desc`,
 * without QEMU seeing it. One client connection at a time, as libsnap's.
 *
 *     th_qmp_proxy *p = th_qmp_proxy_start(qmp_path, "block-commit", "injected");
 *     ... run xlsnap ...
 *     CHECK_INT(th_qmp_proxy_refused(p), 1);
 *     th_qmp_proxy_stop(p);        // the real socket back in place
 */
#ifndef XLSNAP_TH_QMP_PROXY_H
#define XLSNAP_TH_QMP_PROXY_H

typedef struct th_qmp_proxy th_qmp_proxy;

/* NULL on failure (reported with th_note); the real socket is then where it was. */
th_qmp_proxy *th_qmp_proxy_start(const char *path, const char *refuse, const char *desc);
/* How many times the command was refused so far. */
int th_qmp_proxy_refused(th_qmp_proxy *p);
/* Stops the thread, closes everything, moves the real socket back. */
void th_qmp_proxy_stop(th_qmp_proxy *p);

#endif
