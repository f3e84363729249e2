/*
 * th_baredom — the cheapest domain xlsnap can work on: an xlsim HVM domain
 * without a kernel (paused in its firmware, real QEMU, no guest, no agent)
 * with two qcow2 disks, xvda = a.qcow2 and xvdb = b.qcow2 (16 MiB each) in
 * d->disk_dir. It runs (QMP) until th_bare_shut_off kills its QEMU; then
 * xlsnap sees it shut off and works through qemu-img.
 *
 *     th_xlsim_dom d;
 *     REQUIRE(th_bare_create(&d, "b1"));
 *     ... xlsnap on a live domain ...
 *     REQUIRE(th_bare_shut_off(&d));
 *     ... xlsnap on an offline one, qemu-img on d.root / d.data ...
 *     th_xlsim_destroy(&d);
 */
#ifndef XLSNAP_TH_BAREDOM_H
#define XLSNAP_TH_BAREDOM_H

#include <stdbool.h>

#include "th_xlsim.h"

bool th_bare_create(th_xlsim_dom *d, const char *name);
/* Kills the domain's QEMU and waits until it is gone (its image locks too). */
bool th_bare_shut_off(th_xlsim_dom *d);
/* `xlsim relaunch -p`: a shut-off domain's QEMU started again (paused), adopted. */
bool th_bare_relaunch(th_xlsim_dom *d);

#endif
