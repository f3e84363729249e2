#!/usr/bin/env bash
# The freeze watchdog helper (xlsnap-freeze-watchdog) missing: a quiesced
# snapshot-create of a running domain with an agent channel refuses under
# --quiesce=required, naming the path it looked at, and records nothing;
# under best-effort it takes a crash-consistent snapshot and says why.
# No guest is needed: the check comes before the agent is asked anything
# (the domain is an xlsim HVM domain running its firmware, channel declared).
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${XLSNAP_BUILDDIR:-$top/build}
. "$top/tests/lib/th.sh"
th_tmpdir wdmissing
plan 3

th_sim_dom0 "$bld"

qemu-img create -q -f qcow2 "$T/disks/a.qcow2" 16M && qemu-img create -q -f qcow2 "$T/disks/b.qcow2" 16M
sed -e "s|@DIR@|$T/disks|g; s|xlsim-demo|wd|; s|access=ro|access=rw|" \
    "$top/tools/xlsim/examples/two-disks.cfg.in" >"$T/wd.cfg"
if ! "$bld/xlsim" create "$T/wd.cfg" >>"$T/xlsim.log" 2>&1; then
    bad "xlsim create wd" "$(tail -n 5 "$T/xlsim.log")"
    finish
fi
domid=$("$bld/xlsim" domid wd) && pids+=("$(xenstore-read "/local/domain/$domid/image/device-model-pid")")

missing=$T/nowhere/xlsnap-freeze-watchdog
XLSNAP_WATCHDOG=$missing "$bld/xlsnap" snapshot-create -q required wd r1 >"$T/r.out" 2>"$T/r.err"
rc=$?
if [ "$rc" = 1 ] && grep -q "no freeze watchdog program at $missing" "$T/r.err"; then
    ok "--quiesce=required without the watchdog: exit 1, the path named"
else
    bad "--quiesce=required without the watchdog" "rc $rc: $(head -n 3 "$T/r.err" | tr '\n' '|')"
fi
if "$bld/xlsnap" snapshot-list wd 2>&1 | grep -q r1 || qemu-img snapshot -l -U "$T/disks/a.qcow2" | grep -qw r1; then
    bad "nothing recorded after the refusal" "$("$bld/xlsnap" snapshot-list wd 2>&1 | head -n 3)"
else
    ok "nothing recorded or taken after the refusal"
fi
XLSNAP_WATCHDOG=$missing "$bld/xlsnap" snapshot-create -q best-effort wd b1 >"$T/b.out" 2>"$T/b.err"
rc=$?
if [ "$rc" = 0 ] && grep -q "no freeze watchdog program at $missing.*crash-consistent" "$T/b.err" &&
    "$bld/xlsnap" snapshot-info wd b1 | grep -qi 'crash-consistent'; then
    ok "best-effort without the watchdog: a crash-consistent snapshot, and why"
else
    bad "best-effort without the watchdog" "rc $rc: $(head -n 3 "$T/b.err" | tr '\n' '|')"
fi
finish
