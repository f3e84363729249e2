#!/usr/bin/env bash
# Hostile command lines against a real simulated dom0 (xlsnap-xenstored + xlsim
# with a paused HVM domain, real QEMU, real qemu-img): bad snapshot names,
# unknown domains, bad overlay dirs (a file, read-only, full), damaged
# metadata, a journal left by a killed run, two racing xlsnap processes.
# Every refused case must exit non-zero with a one-line error naming the
# problem, and change nothing: images' snapshot tables and backing chains,
# xenstore, libxl userdata and xlsnap metadata are compared before/after.
# Runs in a private mount namespace (tmpfs mounts vanish with it).
set -u
if [ -z "${HOSTILE_NS:-}" ] && [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
    HOSTILE_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${XLSNAP_BUILDDIR:-$top/build}
T=$(mktemp -d /tmp/xlsnap-hostile.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "${qemu_pid:-}" ] && kill "$qemu_pid" 2>/dev/null
    for m in "$T"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
. "$top/tests/lib/th.sh"
plan 40
ok() { echo "PASS $1" | tr "\n" " "; echo; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

export XENSTORED_PATH=$T/xs.sock XLSNAP_XEN_STATEDIR=$T/xen XLSNAP_XEN_RUNDIR=$T/run
export XLSNAP_STATEDIR=$T/xlsnap XLSNAP_PLATFORM=sim
mkdir -p "$T/xen" "$T/run" "$T/disks"
"$bld/xlsnap-xenstored" --foreground --socket "$XENSTORED_PATH" >"$T/xs.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$XENSTORED_PATH" ] && break; sleep 0.05; done
qemu-img create -q -f qcow2 "$T/disks/a.qcow2" 16M
qemu-img create -q -f qcow2 "$T/disks/b.qcow2" 16M
sed -e "s|@DIR@|$T/disks|g; s|xlsim-demo|victim|; s|access=ro|access=rw|" \
    "$top/tools/xlsim/examples/two-disks.cfg.in" >"$T/victim.cfg"
if ! "$bld/xlsim" create -p "$T/victim.cfg" >"$T/xlsim.log" 2>&1; then
    cat "$T/xlsim.log"
    fail_outside "xlsim create -p victim failed"
    finish
fi
domid=$("$bld/xlsim" domid victim)
qemu_pid=$(XENSTORED_PATH=$XENSTORED_PATH xenstore-read \
    "/local/domain/$domid/image/device-model-pid" 2>/dev/null)

# Everything a refused command must leave alone.
state() {
    local img
    for img in "$T"/disks/*; do
        echo "== $img"
        qemu-img info -U --backing-chain "$img" 2>&1 | grep -v -E '^(disk size|Disk size):'
        qemu-img snapshot -l -U "$img" 2>&1 | awk 'NR > 2 { print $2 }'
    done
    xenstore-ls -f / 2>&1 | grep -v -E '/(device-model-pid|state)'
    # .lock files and the .index cache (rebuilt by any reader) are not state.
    find "$T/xen" "$XLSNAP_STATEDIR" -type f ! -name '.lock' ! -name '.index' \
        -exec sha256sum {} + 2>/dev/null |
        sort
}
# expect_refused NAME EXPECTED-WORD ARGS...: non-zero exit, one error line on
# stderr matching EXPECTED-WORD (case-insensitive; libsnap's info lines about
# a rollback may precede it), and no change to state().
expect_refused() {
    local name=$1 want=$2
    shift 2
    state >"$T/before"
    "$bld/xlsnap" "$@" >"$T/out" 2>"$T/all-err"
    local rc=$?
    grep -v '^libsnap: info: ' "$T/all-err" >"$T/err"
    state >"$T/after"
    local lines
    lines=$(grep -c '' "$T/err")
    if [ "$rc" -eq 0 ]; then
        bad "$name" "exit 0 (stdout: $(head -c 200 "$T/out"))"
    elif [ "$lines" -ne 1 ]; then
        bad "$name" "$lines lines on stderr: $(head -c 400 "$T/err" | tr '\n' '|')"
    elif ! grep -qi -- "$want" "$T/err"; then
        bad "$name" "error does not mention '$want': $(cat "$T/err")"
    elif ! cmp -s "$T/before" "$T/after"; then
        bad "$name" "state changed: $(diff "$T/before" "$T/after" | head -n 8 | tr '\n' '|')"
    else
        ok "$name ($(head -c 150 "$T/err"))"
    fi
}
create() { "$bld/xlsnap" snapshot-create -q off "$@"; }

# ---------------------------------------------------------- a good snapshot first
if create -i victim base >"$T/out" 2>"$T/err"; then
    ok "baseline snapshot-create succeeds"
else
    bad "baseline snapshot-create succeeds" "$(cat "$T/err")"
fi
dom_state=$(find "$XLSNAP_STATEDIR" -name base.json -printf '%h\n' | head -n 1)
loose=$(find "$XLSNAP_STATEDIR" \( -type d ! -perm 700 \) -o \( -type f ! -perm 600 \))
if [ -z "$loose" ]; then
    ok "state dirs are 0700 and files 0600"
else
    bad "state modes" "$(echo "$loose" | head -n 3 | tr '\n' ' ')"
fi

# ---------------------------------------------------------- snapshot names
expect_refused "name with /" "name" snapshot-create -q off victim 'a/b'
expect_refused "name .." "name" snapshot-create -q off victim '..'
expect_refused "name ." "name" snapshot-create -q off victim '.'
expect_refused "name with leading -" "name" snapshot-create -q off -- victim '-rf'
expect_refused "name with newline" "name" snapshot-create -q off victim $'a\nb'
expect_refused "name not UTF-8" "name" snapshot-create -q off victim $'bad\xff\xfe'
expect_refused "name 4 KiB long" "name" snapshot-create -q off victim "$(printf 'a%.0s' $(seq 4096))"
expect_refused "name empty" "name" snapshot-create -q off victim ''
expect_refused "name already taken" "base" snapshot-create -q off victim base
expect_refused "info of a / name" "name" snapshot-info victim '../base'
expect_refused "unknown option" "option" snapshot-create --no-such-option victim s1

# ---------------------------------------------------------- domains
expect_refused "unknown domain" "nosuchdomain" snapshot-create -q off nosuchdomain s1
expect_refused "empty domain name" "domain" snapshot-create -q off '' s1
expect_refused "domain name with /" "domain" snapshot-list '../victim'
expect_refused "unknown domain id" "4242" snapshot-list 4242

# Ambiguous qualifiers, as xl reads them: all digits is a domain id, anything
# else a case-sensitive name. A domain NAMED like victim's domid, and one
# named with digits that are no domid.
digits_name=$((domid + 40))
mkdir -p "$T/disks-n"
for n in "$domid" "$digits_name"; do
    qemu-img create -q -f qcow2 "$T/disks-n/$n.qcow2" 16M
    sed -e "s|@DIR@|$T/disks-n|g; s|xlsim-demo|$n|; s|a.qcow2|$n.qcow2|; /b.qcow2/d; s|.qcow2',\$|.qcow2' ]|; /^channel/d" \
        "$top/tools/xlsim/examples/two-disks.cfg.in" >"$T/n$n.cfg"
    "$bld/xlsim" create -p "$T/n$n.cfg" >>"$T/xlsim.log" 2>&1 || echo "xlsim create $n failed"
    # the newest domid is the domain just created: its QEMU is ours to kill
    newid=$(xenstore-list /local/domain | sort -n | tail -n 1)
    pids+=("$(xenstore-read "/local/domain/$newid/image/device-model-pid")")
done
if [ "$(xenstore-read "/local/domain/$newid/name")" != "$digits_name" ]; then
    fail_outside "ambiguous names setup: the last domain is not named $digits_name"
fi
if "$bld/xlsnap" snapshot-list "$domid" >"$T/out" 2>"$T/err" && grep -q '^base ' "$T/out"; then
    ok "all-digit qualifier is the domid even when a domain is named so (as in xl)"
else
    bad "all-digit qualifier" "$(head -c 300 "$T/out" "$T/err")"
fi
expect_refused "all-digit name is read as a missing domid" "named '$digits_name' has id" snapshot-list "$digits_name"
expect_refused "name differing only in case" "case-sensitive.*'victim'" snapshot-list VICTIM
expect_refused "domid past the last one" "invalid domain identifier" snapshot-list 99999

# ---------------------------------------------------------- overlay dirs
echo x >"$T/afile"
expect_refused "overlay dir is a file" "afile" snapshot-create -q off -e --overlay-dir="$T/afile" victim s1
expect_refused "overlay dir missing" "nosuchdir" snapshot-create -q off -e --overlay-dir="$T/nosuchdir" victim s1
mkdir -m 1777 "$T/shared"
expect_refused "overlay dir writable by others" "others" snapshot-create -q off -e --overlay-dir="$T/shared" victim s1
mkdir -p "$T/mnt-ro" "$T/mnt-full"
if mount -t tmpfs -o size=1m,mode=0755,ro tmpfs "$T/mnt-ro" 2>/dev/null; then
    expect_refused "overlay dir read-only" "mnt-ro" snapshot-create -q off -e --overlay-dir="$T/mnt-ro" victim s1
else
    skip_check "overlay dir read-only" "cannot mount tmpfs"
fi
if mount -t tmpfs -o size=64k,mode=0755 tmpfs "$T/mnt-full" 2>/dev/null; then
    dd if=/dev/zero of="$T/mnt-full/fill" bs=4k 2>/dev/null
    expect_refused "overlay dir on a full filesystem" "disk xvd., overlay .*mnt-full/.*file system full.*No space left" snapshot-create -q off -e --overlay-dir="$T/mnt-full" victim s1
else
    skip_check "overlay dir full" "cannot mount tmpfs"
fi

# ---------------------------------------------------------- xenstore confinement
# libxl's record of the backend path, tampered with: xlsnap must not follow it.
bk=/libxl/$domid/device/vbd/51712/backend
orig_bk=$(xenstore-read "$bk")
xenstore-write "$bk" "/local/domain/0/backend/qdisk/$domid/51712/../../../../../tool"
expect_refused "libxl backend path outside the disk's backend" "backend" snapshot-create -q off -e victim s1
xenstore-write "$bk" "/local/domain/7/backend/qdisk/$((domid + 1))/51712"
expect_refused "libxl backend path of another domain" "backend" snapshot-create -q off -e victim s1
xenstore-write "$bk" "$orig_bk"

# ---------------------------------------------------------- damaged metadata
meta=$dom_state/base.json
cp "$meta" "$T/base.json.good"
damage() { # damage NAME TAG CONTENT-COMMAND
    local name=$1
    cp "$T/base.json.good" "$meta"
    eval "$3"
    # list prints what it can read, then fails with one line naming the file
    "$bld/xlsnap" snapshot-list victim >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -eq 1 ] && [ "$(grep -c '' "$T/err")" -eq 1 ] && grep -q 'base.json' "$T/err"; then
        ok "metadata $name: list exits 1 naming the damaged file ($(head -c 150 "$T/err"))"
    else
        bad "metadata $name: list" "rc $rc, damaged file not named in one line: $(head -c 300 "$T/err")"
    fi
    expect_refused "metadata $name: create on it" "base" snapshot-create -q off victim "s-$2"
}
damage "truncated" trunc 'head -c 100 "$T/base.json.good" >"$meta"'
damage "empty" empty ': >"$meta"'
damage "wrong type" type 'sed -i "s/\"version\": 1/\"version\": \"one\"/" "$meta"'
damage "unknown version" version 'sed -i "s/\"version\": 1/\"version\": 99/" "$meta"'
cp "$T/base.json.good" "$meta"

# Spaces are allowed (as in libvirt): the name must arrive intact everywhere.
if create victim 'a b' >"$T/out" 2>"$T/err" &&
    qemu-img snapshot -l -U "$T/disks/a.qcow2" | grep -q ' a b  ' &&
    [ -e "$dom_state/a b.json" ] && "$bld/xlsnap" snapshot-info victim 'a b' >/dev/null; then
    ok "name with a space is kept intact (qcow2, record, info)"
else
    bad "name with a space" "$(cat "$T/err")"
fi

# A damaged record among good ones: the good ones are still listed (table and
# JSON), the exit status is 1, and -v lists every problem.
cp "$meta" "$T/base.json.good"
head -c 100 "$T/base.json.good" >"$meta"
"$bld/xlsnap" snapshot-list victim >"$T/out" 2>"$T/err"
rc=$?
"$bld/xlsnap" snapshot-list --json victim >"$T/json" 2>/dev/null
rcj=$?
"$bld/xlsnap" -v snapshot-list victim >/dev/null 2>"$T/verr"
if [ "$rc" -eq 1 ] && [ "$rcj" -eq 1 ] && grep -q '^a b ' "$T/out" &&
    python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); assert [s["name"] for s in l] == ["a b"]' "$T/json" 2>/dev/null &&
    [ "$(grep -c '' "$T/err")" -eq 1 ] && grep -q 'base.json' "$T/err" &&
    grep -q 'damaged metadata:.*base.json' "$T/verr"; then
    ok "list with one damaged record: the others printed (table, JSON), exit 1, -v lists problems"
else
    bad "list with one damaged record" "rc $rc/$rcj: $(head -c 200 "$T/out" | tr '\n' '|') $(head -c 300 "$T/err") json: $(head -c 200 "$T/json")"
fi
cp "$T/base.json.good" "$meta"

# ---------------------------------------------------------- journal of a killed run
(exit 0) &
dead=$!
wait "$dead"
cat >"$dom_state/.journal.json" <<EOF
{"version": 1, "operation": "create", "snapshot": "ghost", "phase": "planned",
 "owner": {"pid": $dead, "start_time": 1}, "started_ms": 1, "updated_ms": 1,
 "lease_deadline_ms": 0, "watchdog": null, "prev_current": "base",
 "memory_created": null, "disks": []}
EOF
"$bld/xlsnap" snapshot-create -q off victim after-crash >"$T/out" 2>"$T/err"
rc=$?
# Recovered, not merely refused: the next create rolls the dead run back
# (journal gone, no "ghost" anywhere) and then succeeds.
ghosts=$(qemu-img snapshot -l -U "$T/disks/a.qcow2" | awk 'NR > 2 { print $2 }' | grep -c '^ghost$')
if [ "$rc" -eq 0 ] && [ ! -e "$dom_state/.journal.json" ] && [ -e "$dom_state/after-crash.json" ] &&
    [ ! -e "$dom_state/ghost.json" ] && [ "$ghosts" -eq 0 ] &&
    qemu-img snapshot -l -U "$T/disks/a.qcow2" | grep -q ' after-crash '; then
    ok "journal of a killed run is recovered before the next create"
else
    bad "journal of a killed run is recovered" "rc $rc, journal $([ -e "$dom_state/.journal.json" ] && echo left || echo gone), ghosts $ghosts: $(head -c 300 "$T/err")"
fi
rm -f "$dom_state/.journal.json"

# ---------------------------------------------------------- two racing processes
"$bld/xlsnap" snapshot-create -q off victim race1 >"$T/r1.out" 2>"$T/r1.err" &
r1=$!
"$bld/xlsnap" snapshot-create -q off victim race2 >"$T/r2.out" 2>"$T/r2.err" &
r2=$!
wait "$r1"
rc1=$?
wait "$r2"
rc2=$?
n_meta=$(find "$dom_state" -maxdepth 1 -name 'race*.json' | wc -l)
n_snap=$(qemu-img snapshot -l -U "$T/disks/a.qcow2" | awk 'NR > 2 { print $2 }' | grep -c '^race')
if [ $((rc1 == 0)) -eq 0 ] && [ $((rc2 == 0)) -eq 0 ]; then
    bad "racing creates" "both failed: $(cat "$T/r1.err" "$T/r2.err" | head -c 300)"
elif [ "$n_meta" -ne "$n_snap" ]; then
    bad "racing creates" "$n_meta records but $n_snap qcow2 snapshots"
elif [ "$rc1" -ne 0 ] && ! grep -qiE 'busy|lock|progress' "$T/r1.err"; then
    bad "racing creates" "loser's error unclear: $(cat "$T/r1.err")"
elif [ "$rc2" -ne 0 ] && ! grep -qiE 'busy|lock|progress' "$T/r2.err"; then
    bad "racing creates" "loser's error unclear: $(cat "$T/r2.err")"
else
    ok "racing creates: exits $rc1/$rc2, $n_meta records = $n_snap qcow2 snapshots"
fi

finish
