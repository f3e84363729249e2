#!/usr/bin/env bash
# docs/examples/snapshot-caller (an API caller with its own libxl context and
# logger, handed to libsnap with snap_ctx_alloc_libxl) against the simulated
# dom0, on an offline xlsim domain: it creates, lists and reverts, and the
# effects are in the image: the snapshots in `qemu-img snapshot -l`, and the
# data written after the first one gone once it reverts to it (qemu-io).
#
# libxl_ctx_alloc needs a hypervisor: tests/xl/xl_nohv.so is preloaded (see
# there); XLSNAP_PLATFORM=sim makes libsnap use the simulated dom0.
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${XLSNAP_BUILDDIR:-$top/build}
. "$top/tests/lib/th.sh"
th_tmpdir example
plan 5

th_sim_dom0 "$bld"

# An offline domain "ex": created paused by xlsim, then its QEMU stopped.
img=$T/disks/a.qcow2
qemu-img create -q -f qcow2 "$img" 16M && qemu-img create -q -f qcow2 "$T/disks/b.qcow2" 16M
sed -e "s|@DIR@|$T/disks|g; s|xlsim-demo|ex|; s|access=ro|access=rw|; /^channel/d" \
    "$top/tools/xlsim/examples/two-disks.cfg.in" >"$T/ex.cfg"
offline() {
    "$bld/xlsim" create -p "$T/ex.cfg" >>"$T/xlsim.log" 2>&1 || return 1
    local domid qemu
    domid=$("$bld/xlsim" domid ex) && qemu=$(xenstore-read "/local/domain/$domid/image/device-model-pid") || return 1
    pids+=("$qemu")
    kill "$qemu"
    for _ in $(seq 100); do kill -0 "$qemu" 2>/dev/null || return 0; sleep 0.05; done
    return 1
}
offline || { bad "offline domain ex" "$(tail -n 5 "$T/xlsim.log")"; finish; }

caller() { LD_PRELOAD=$bld/tests/xl_nohv.so LD_LIBRARY_PATH=$bld "$bld/docs/examples/snapshot-caller" "$@"; }

qemu-io -f qcow2 -c "write -P 0x11 0 64k" "$img" >/dev/null
if caller ex s1 >"$T/1.out" 2>"$T/1.err" && grep -q '^created s1: 2 disk(s), crash-consistent$' "$T/1.out" &&
    grep -qx 'snapshot s1 (current)' "$T/1.out" && grep -qx 'reverted ex to s1' "$T/1.out"; then
    ok "snapshot-caller ex s1: creates, lists, reverts"
else
    bad "snapshot-caller ex s1" "$(cat "$T/1.out" "$T/1.err" | head -n 8 | tr '\n' '|')"
fi
qemu-io -f qcow2 -c "write -P 0x22 0 64k" "$img" >/dev/null
if caller ex s2 s1 >"$T/2.out" 2>"$T/2.err" && grep -qx 'snapshot s1' "$T/2.out" &&
    grep -qx 'snapshot s2 (current)' "$T/2.out" && grep -qx 'reverted ex to s1' "$T/2.out"; then
    ok "snapshot-caller ex s2 s1: lists both, reverts to s1"
else
    bad "snapshot-caller ex s2 s1" "$(cat "$T/2.out" "$T/2.err" | head -n 8 | tr '\n' '|')"
fi
snaps=$(qemu-img snapshot -l "$img" 2>&1)
if grep -qw s1 <<<"$snaps" && grep -qw s2 <<<"$snaps"; then
    ok "qemu-img snapshot -l lists s1 and s2 in xvda's image"
else
    bad "qemu-img snapshot -l" "$snaps"
fi
if qemu-io -f qcow2 -c "read -P 0x11 0 64k" "$img" >"$T/read.out" 2>&1 && ! grep -q 'verification failed' "$T/read.out"; then
    ok "the revert to s1 brought back s1's data (0x11), not the later 0x22"
else
    bad "data after the revert" "$(qemu-io -f qcow2 -c 'read -v 0 16' "$img" 2>&1 | head -n 3)"
fi
if caller ex s3 nosuch >"$T/3.out" 2>"$T/3.err"; then
    bad "revert to a missing snapshot" "exited 0"
elif grep -q "snapshot-caller: revert: .*nosuch" "$T/3.err"; then
    ok "a failed call's message reaches the caller (revert to nosuch)"
else
    bad "revert to a missing snapshot" "$(head -n 3 "$T/3.err")"
fi
finish
