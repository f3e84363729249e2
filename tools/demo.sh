#!/usr/bin/env bash
# `make demo`: the whole job on a real (simulated-dom0) guest, in a temp dir.
#
# Starts xlsnap-xenstored on a private socket, builds the test guest, makes two
# qcow2 disks, creates the domain with `xlsim create` from the shipped xl config
# (agent channel, writer on vdb), then snapshots, lists, reverts and deletes
# with `xl snapshot-*` (the patched xl of make xl; xlsnap once, to show it is
# the same command), checking every step against the real effects (qcow2
# snapshot tables, backing chains, xenstore, files read back from the guest
# and from the images).
# Exits 0 only if every step checked out. Everything it started is stopped by
# PID on exit.
#
# Environment: XLSNAP_BUILDDIR (default: <top>/build), XLSNAP_DEMO_KEEP=1 keeps
# the temp dir.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${XLSNAP_BUILDDIR:-$top/build}
for b in xlsnap xlsim xlsnap-xenstored xlsnap-demo-agent xl/xl tests/xl_nohv.so; do
    [ -e "$build/$b" ] || { echo "demo: $build/$b is missing; run 'make demo'" >&2; exit 1; }
done
export PATH=$build:$PATH XLSNAP_WATCHDOG=$build/xlsnap-freeze-watchdog
# xl: Xen's own xl with the snapshot-* commands (make xl). Its main() opens a
# libxl context before it reads the command, which needs a hypervisor: on
# this simulated dom0 it starts with tests/xl/xl_nohv.so preloaded (see
# there); the snapshot commands then run on the simulated platform.
xl() { LD_PRELOAD=$build/tests/xl_nohv.so "$build/xl/xl" "$@"; }

tmp=$(mktemp -d /tmp/xlsnap-demo.XXXXXX)
export XENSTORED_PATH=$tmp/xenstored.sock XLSNAP_PLATFORM=sim
export XLSNAP_XEN_STATEDIR=$tmp/xen XLSNAP_XEN_RUNDIR=$tmp/run XLSNAP_STATEDIR=$tmp/xlsnap
mkdir -p "$tmp/xen" "$tmp/run" "$tmp/disks" "$tmp/work"
dom=demo
agent=$tmp/run/qga-$dom.sock
xs_pid="" qemu_pid="" failed=0
t0=$SECONDS

cleanup() {
    set +e
    if [ -n "$qemu_pid" ]; then
        xlsim destroy "$dom" >/dev/null 2>&1
        stop_pid "$qemu_pid"
    fi
    [ -n "$xs_pid" ] && stop_pid "$xs_pid"
    if [ "${XLSNAP_DEMO_KEEP:-0}" = 1 ]; then
        echo "(kept $tmp)"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL. A zombie counts as gone
# (PID 1 here may not reap orphans).
stop_pid() {
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do
        alive "$1" || return 0
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null
}
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit ($3 == "Z") ? 0 : 1}' "/proc/$1/stat"; }

caption() { printf '\n==> %s\n' "$*"; }
# show CMD...: prints "$ CMD" with temp paths shortened, runs it, indents output.
show() {
    local shown="" a
    for a in "$@"; do
        [[ "$a" =~ ^[A-Za-z0-9_./=:,+@-]+$ ]] || a="'$a'"
        shown+=" $a"
    done
    shown=${shown# }
    [ "$1" = guest ] && shown="guest# $2" || shown="\$ $shown"
    echo "$shown" | sed "s|$tmp|\$DEMO|g"
    "$@" >"$tmp/out" 2>&1
    local rc=$?
    sed -e "s|$tmp|\$DEMO|g" -e 's/^/    /' "$tmp/out"
    return $rc
}
ok() { echo "    ok: $*"; }
bad() {
    echo "    FAILED: $*"
    failed=$((failed + 1))
}
# check DESCRIPTION CMD...: ok if CMD succeeds.
check() { if "${@:2}" >/dev/null 2>&1; then ok "$1"; else bad "$1"; fi; }
die() {
    bad "$*"
    echo
    echo "demo: stopped after a failed step ($((SECONDS - t0)) s)."
    exit 1
}
guest() { xlsnap-demo-agent sh "$agent" "$1"; }

# image_file IMG SNAPSHOT FILE: FILE's content in IMG's internal SNAPSHOT ("" = live).
image_file() {
    local raw=$tmp/work/read.raw opt=()
    [ -n "$2" ] && opt=(-l "snapshot.name=$2")
    rm -f "$raw"
    qemu-img convert -U -f qcow2 -O raw "${opt[@]}" "$1" "$raw" &&
        debugfs -R "cat $3" "$raw" 2>/dev/null
}
# image_clean IMG SNAPSHOT: the ext4 in it was frozen (no journal to replay).
# First it must be an ext4 at all: a valid superblock (dumpe2fs reads it, the
# magic is 0xEF53) with a journal; an image holding no file system has no
# needs_recovery flag either.
image_clean() {
    local hdr
    image_file "$1" "$2" / >/dev/null 2>&1 || return 1
    hdr=$(dumpe2fs -h "$tmp/work/read.raw" 2>/dev/null) || return 1
    grep -q '^Filesystem magic number: *0xEF53$' <<<"$hdr" &&
        grep -q '^Filesystem features:.* has_journal' <<<"$hdr" &&
        ! grep -q needs_recovery <<<"$hdr"
}
# xs_params VDEV-INDEX: the backend params of disk N (0 = xvda) in xenstore.
xs_params() {
    local domid=$1 devid=$((51712 + $2 * 16))
    xenstore-read "/local/domain/0/backend/qdisk/$domid/$devid/params"
}

# shellcheck source=tools/demo/steps.sh
. "$top/tools/demo/steps.sh"
demo_main
