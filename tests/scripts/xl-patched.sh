#!/usr/bin/env bash
# The patched xl (make xl: Xen 4.17's xl + xl-cmd/xen-4.17/*.patch) against
# the simulated dom0: it builds; `xl help` lists the snapshot commands and
# `xl help <cmd>` prints xlsnap's text; and `xl snapshot-*` behave exactly as
# `xlsnap snapshot-*`: the same command sequence runs with xlsnap on one
# offline domain ("left") and with xl on its twin ("right"), and every step's
# stdout, stderr and exit code must match once names, UUIDs and times are
# normalised. Real effects on right's images are checked with qemu-img and
# qemu-io, and both front ends must print byte-identical listings of one
# domain.
#
# xl's main() needs a libxl context, which needs a hypervisor: xl runs with
# tests/xl/xl_nohv.so preloaded (see there) and XLSNAP_PLATFORM=sim.
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${XLSNAP_BUILDDIR:-$top/build}
. "$top/tests/lib/th.sh"
th_tmpdir xl
plan 46

# ---------------------------------------------------------- it builds
start=$(date +%s)
if "$top/tools/xl/build-xl" "$bld" >"$T/build.log" 2>&1 && [ -x "$bld/xl/xl" ]; then
    ok "patched xl builds ($(tail -n 1 "$T/build.log" | sed 's/^build-xl: //'), $(($(date +%s) - start)) s)"
else
    bad "patched xl builds" "$(tail -n 15 "$T/build.log")"
    finish
fi

# Built with Debian's paths: the stock xl's path strings are all in ours.
stock=/usr/lib/xen-4.17/bin/xl
if [ -r "$stock" ]; then
    paths() { strings "$1" | grep -E '^/[^ ]*/(xl\.conf|xl|%s|%s\.bin)$|/remus-netbuf-setup\)' | sort -u; }
    missing=$(comm -23 <(paths "$stock") <(paths "$bld/xl/xl") | tr '\n' ' ')
    if [ -z "$missing" ] && [ "$(paths "$stock" | wc -l)" -ge 5 ]; then
        ok "the patched xl has the stock xl's paths ($(paths "$stock" | wc -l) checked)"
    else
        bad "paths" "missing from the patched xl: $missing"
    fi
fi

xl() { LD_PRELOAD=$bld/tests/xl_nohv.so "$bld/xl/xl" "$@"; }
xlsnap() { "$bld/xlsnap" "$@"; }
th_sim_dom0 "$bld"

# ---------------------------------------------------------- help
snapshot_cmds="snapshot-create snapshot-list snapshot-info snapshot-verify snapshot-revert snapshot-delete"
xl help >"$T/help" 2>"$T/help.err"
missing=""
for c in $snapshot_cmds; do grep -q "^ $c  " "$T/help" || missing="$missing $c"; done
if [ -z "$missing" ] && grep -q '^ create  ' "$T/help"; then
    ok "xl help lists xl's commands and the snapshot commands"
else
    bad "xl help" "missing:$missing; $(head -c 300 "$T/help.err")"
fi
# The Usage line names the program and its global options; the rest is equal.
usage_norm() { sed -E '1s/^Usage: (xl|xlsnap) \[-[a-zA-Z]+\] /Usage: PROG [OPTS] /'; }
for c in $snapshot_cmds; do
    xl help "$c" 2>&1 | usage_norm >"$T/help.xl"
    xlsnap help "$c" 2>&1 | usage_norm >"$T/help.xlsnap"
    if [ -s "$T/help.xl" ] && cmp -s "$T/help.xl" "$T/help.xlsnap"; then
        ok "xl help $c = xlsnap help $c (modulo the program name)"
    else
        bad "xl help $c" "$(diff "$T/help.xl" "$T/help.xlsnap" | head -n 6 | tr '\n' '|')"
    fi
done

# ---------------------------------------------------------- twin offline domains
# offline_domain NAME: its two qcow2 disks in $T/disks-NAME, created paused by
# xlsim, then its QEMU stopped: the domain stays, shut off.
offline_domain() {
    local name=$1 dir=$T/disks-$1 domid qemu
    mkdir -p "$dir"
    qemu-img create -q -f qcow2 "$dir/a.qcow2" 16M
    qemu-img create -q -f qcow2 "$dir/b.qcow2" 16M
    sed -e "s|@DIR@|$dir|g; s|xlsim-demo|$name|; s|access=ro|access=rw|; /^channel/d" \
        "$top/tools/xlsim/examples/two-disks.cfg.in" >"$T/$name.cfg"
    "$bld/xlsim" create -p "$T/$name.cfg" >>"$T/xlsim.log" 2>&1 || return 1
    domid=$("$bld/xlsim" domid "$name") || return 1
    qemu=$(xenstore-read "/local/domain/$domid/image/device-model-pid") || return 1
    pids+=("$qemu")
    kill "$qemu"
    for _ in $(seq 100); do kill -0 "$qemu" 2>/dev/null || return 0; sleep 0.05; done
    return 1
}
if ! offline_domain left || ! offline_domain right; then
    bad "offline domains left and right" "$(tail -n 5 "$T/xlsim.log")"
    finish
fi

# What may differ between the runs: domain name, UUIDs, domids, times, and
# the program's name in messages.
norm() {
    sed -E -e 's/\b(left|right)\b/DOM/g' \
        -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/UUID/g' \
        -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z?/TIME/g' \
        -e 's/"([a-z_]*sec|domid|frozen_ms)": [0-9]+/"\1": N/g' \
        -e 's/\(domid [0-9]+\)/(domid N)/g' \
        -e "s/^(xl|xlsnap): /PROG: /; s/'(xl|xlsnap) /'PROG /g" | usage_norm
}
# same NAME ARGS...: `xlsnap ARGS` on left and `xl ARGS` on right (the word
# DOM in ARGS is the domain) print the same and exit the same.
same() {
    local name=$1 rc_l rc_r
    shift
    xlsnap "${@//DOM/left}" >"$T/l.out" 2>"$T/l.err"
    rc_l=$?
    xl "${@//DOM/right}" >"$T/r.out" 2>"$T/r.err"
    rc_r=$?
    for f in l.out l.err r.out r.err; do norm <"$T/$f" >"$T/$f.n"; done
    if grep -qE "^xlsnap: |'xlsnap |Usage: xlsnap" "$T/r.out" "$T/r.err"; then
        bad "$name" "xl's messages name xlsnap: $(grep -hE "xlsnap: |'xlsnap " "$T/r.out" "$T/r.err" | head -n 2)"
    elif [ "$rc_l" != "$rc_r" ]; then
        bad "$name" "exit $rc_l (xlsnap) != $rc_r (xl); xl: $(head -c 300 "$T/r.err")"
    elif ! cmp -s "$T/l.out.n" "$T/r.out.n"; then
        bad "$name" "stdout differs: $(diff "$T/l.out.n" "$T/r.out.n" | head -n 6 | tr '\n' '|')"
    elif ! cmp -s "$T/l.err.n" "$T/r.err.n"; then
        bad "$name" "stderr differs: $(diff "$T/l.err.n" "$T/r.err.n" | head -n 6 | tr '\n' '|')"
    else
        ok "$name: xl = xlsnap (exit $rc_r, $(wc -l <"$T/r.out") lines)"
    fi
}
# Internal snapshot names in an image's table.
img_snaps() { qemu-img snapshot -l "$1" | awk 'NR > 2 { print $2 }' | sort | tr '\n' ' '; }

same "-N create (plan)" -N snapshot-create -i DOM s1
same "nothing planned was done" snapshot-list DOM
same "create s1" snapshot-create -i -d "first snapshot" DOM s1
snaps=$(img_snaps "$T/disks-right/a.qcow2")
if [ -n "$snaps" ] && [ "$snaps" = "$(img_snaps "$T/disks-left/a.qcow2")" ]; then
    ok "xl snapshot-create: right's qcow2 holds the snapshot ($snaps), as left's"
else
    bad "xl snapshot-create effect" "right: '$snaps', left: '$(img_snaps "$T/disks-left/a.qcow2")'"
fi
same "create s1 again (taken)" snapshot-create -i DOM s1
# The disks hold no filesystem: verified, not clean (exit 1), recorded.
same "verify s1 (no filesystem on its disks)" snapshot-verify DOM s1
if grep -q 'no-filesystem' "$T/r.out" && grep -q 'NOT clean' "$T/r.out"; then
    ok "xl snapshot-verify: both disks found without a filesystem"
else
    bad "xl snapshot-verify" "$(head -c 300 "$T/r.out" "$T/r.err")"
fi
same "info shows the verification" snapshot-info DOM s1
# Data written after s1, that the revert must undo.
for d in left right; do
    qemu-io -f qcow2 -c "write -P 0xab 0 64k" "$T/disks-$d/a.qcow2" >/dev/null
done
same "create s2 --json" snapshot-create --json -i DOM s2
same "list" snapshot-list DOM
same "list --tree" snapshot-list --tree DOM
same "list --json" snapshot-list --json DOM
same "list --leaves" snapshot-list --leaves DOM
same "info" snapshot-info DOM s1
same "info --json" snapshot-info --json DOM s2
same "-N revert (plan)" -N snapshot-revert DOM s1
same "revert" snapshot-revert DOM s1
if qemu-io -f qcow2 -c "read -P 0 0 64k" "$T/disks-right/a.qcow2" >/dev/null 2>&1; then
    ok "xl snapshot-revert: right's xvda reads as at s1 again"
else
    bad "xl snapshot-revert effect" "the data written after s1 is still there"
fi
same "delete s2" snapshot-delete DOM s2
snaps=$(img_snaps "$T/disks-right/a.qcow2")
if [ -n "$snaps" ] && [ "$snaps" = "$(img_snaps "$T/disks-left/a.qcow2")" ]; then
    ok "xl snapshot-delete: right's qcow2 keeps only $snaps, as left's"
else
    bad "xl snapshot-delete effect" "right: '$snaps', left: '$(img_snaps "$T/disks-left/a.qcow2")'"
fi
same "list after delete" snapshot-list DOM
same "info of a deleted snapshot" snapshot-info DOM s2
same "unknown domain" snapshot-list nosuchdomain
same "unknown option" snapshot-list -Z DOM
same "unknown long option" snapshot-list --no-such-option DOM
same "missing argument" snapshot-info DOM
same "too many arguments" snapshot-create DOM s3 extra
same "-h" snapshot-revert -h
same "bad --quiesce" snapshot-create --quiesce=sometimes DOM s3
same "-N on a command without dry run" -N snapshot-list DOM

# xl's bash completion (patched): options from `xl help`, snapshot names.
complete_xl() { # WORDS...: what _xl offers for the last word
    (
        # shellcheck disable=SC1091
        . "$bld/xl/xen/tools/xl/bash-completion"
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        _xl
        echo "${COMPREPLY[*]}"
    )
}
got=$(complete_xl xl snapshot-create --qui)
if [ "$got" = "--quiesce=" ]; then
    ok "completion: xl snapshot-create --qui -> --quiesce="
else
    bad "completion of --qui" "got '$got'"
fi
got=$(complete_xl xl snapshot-revert right "")
if [ "$got" = "s1" ]; then
    ok "completion: xl snapshot-revert right <TAB> -> s1"
else
    bad "completion of snapshot names" "got '$got'"
fi
# The patched xl(1) page is valid POD and documents every snapshot command.
pod=$bld/xl/xen/docs/man/xl.1.pod.in
undocumented=""
for c in $snapshot_cmds; do grep -q "^=item B<$c>" "$pod" || undocumented="$undocumented $c"; done
if podchecker "$pod" >/dev/null 2>&1 && [ -z "$undocumented" ]; then
    ok "xl(1) documents the snapshot commands (podchecker clean)"
else
    bad "xl(1)" "undocumented:$undocumented; $(podchecker "$pod" 2>&1 | tail -n 2)"
fi

# On the libxl platform the snapshot commands make their libxl calls on
# xl's own context: one libxl context (xc_interface_open) per xl process,
# seen through the preload's log; the lookup fails cleanly on the preload's
# hypervisor without domains.
: >"$T/nohv.log"
XL_NOHV_LOG=$T/nohv.log XLSNAP_PLATFORM=libxl xl snapshot-list nosuchdomain >"$T/out" 2>"$T/err"
rc=$?
contexts=$(tr '\n' ' ' <"$T/nohv.log")
if [ "$rc" = 1 ] && grep -q "^xl: snapshot-list failed: nosuchdomain is an invalid domain" "$T/err" &&
    [ "$contexts" = "open close " ]; then
    ok "libxl platform: the lookup ran on xl's libxl context, no second one (exit 1)"
else
    bad "xl's libxl context" "exit $rc, contexts: '$contexts', $(head -c 200 "$T/err")"
fi

# One domain, both front ends: byte for byte, nothing to normalise.
for args in "snapshot-list right" "snapshot-list --json right" "snapshot-info right s1"; do
    # shellcheck disable=SC2086 # words
    if xl $args >"$T/a" 2>&1 && xlsnap $args >"$T/b" 2>&1 && cmp -s "$T/a" "$T/b"; then
        ok "xl $args = xlsnap $args, byte for byte"
    else
        bad "xl $args" "$(diff "$T/a" "$T/b" | head -n 6 | tr '\n' '|')"
    fi
done
finish
