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
. "$top/tests/lib/th.sh"
th_tmpdir hostile
th_cleanup_more() {
    [ -n "${qemu_pid:-}" ] && kill "$qemu_pid" 2>/dev/null
    for m in "$T"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
}
plan 94

th_sim_dom0 "$bld"
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
expect_refused "--lease-expiry=sometimes" "lease-expiry" snapshot-create --lease-expiry=sometimes victim s1
expect_refused "name empty" "name" snapshot-create -q off victim ''
expect_refused "name already taken" "base" snapshot-create -q off victim base
expect_refused "info of a / name" "name" snapshot-info victim '../base'
expect_refused "unknown option" "option" snapshot-create --no-such-option victim s1
expect_refused "--freeze-mounts empty" "mountpoint" snapshot-create --freeze-mounts=, victim s1
expect_refused "--freeze-mounts relative" "absolute path" snapshot-create -q best-effort --freeze-mounts=srv victim s1
expect_refused "--no-freeze without a freeze" "freezes nothing" snapshot-create -q off --no-freeze=/ victim s1

# ---------------------------------------------------------- terminal safety
# Names and descriptions are one line of printable text: no control
# characters (escape sequences, newlines, tabs, DEL, C1), no bidirectional
# controls (U+202E shows "\u202Egpj.exe" as "exe.jpg"), valid UTF-8.
expect_refused "description with ESC" "description.*control" snapshot-create -q off -d $'\e[31mred' victim t1
expect_refused "description with newline" "description.*control" snapshot-create -q off -d $'a\nb' victim t1
expect_refused "description with C1 CSI" "description.*control" snapshot-create -q off -d $'x\u009b2J' victim t1
expect_refused "description with U+202E" "description.*bidirectional" snapshot-create -q off -d $'x\u202ey' victim t1
expect_refused "description not UTF-8" "description.*UTF-8" snapshot-create -q off -d $'bad\xff' victim t1
expect_refused "name with U+202E" "name.*bidirectional" snapshot-create -q off victim $'\u202egpj.exe'
expect_refused "name with U+2066" "name.*bidirectional" snapshot-create -q off victim $'a\u2066b'
expect_refused "name with U+200F" "name.*bidirectional" snapshot-create -q off victim $'a\u200fb'

# A record written by an older version or by hand may hold anything: text
# output escapes it (\xNN, \u{NNNN}), JSON stays valid JSON of the same
# value with no raw control byte (bidi controls are data there), and error
# messages quoting a name are escaped too.
create -d 'plain' victim term >/dev/null 2>&1
hostile=$'\e[2J\u202eevil\u009b\nline2\a'
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
r["description"] = sys.argv[2]
json.dump(r, open(sys.argv[1], "w"))' "$dom_state/term.json" "$hostile"
"$bld/xlsnap" snapshot-info victim term >"$T/info" 2>&1
rci=$?
"$bld/xlsnap" snapshot-info --json victim term >"$T/info.json" 2>&1
rcj=$?
"$bld/xlsnap" snapshot-list --json victim >"$T/list.json" 2>&1
rcl=$?
"$bld/xlsnap" snapshot-info victim $'\u202eabc' >/dev/null 2>"$T/err"
if why=$(python3 -c '
import json, sys
raw = [open(f, "rb").read() for f in sys.argv[1:4]]
want = sys.argv[5]
for name, data in zip(("info", "info --json", "list --json", "error"), raw + [open(sys.argv[4], "rb").read()]):
    for bad in (b"\x1b", b"\x07", b"\x7f", "\u202e".encode(), "\u009b".encode()):
        if bad in data and not (name.endswith("json") and bad == "\u202e".encode()):
            sys.exit("%s: raw %r in the output" % (name, bad))
desc = [l for l in raw[0].decode().splitlines() if l.startswith("Description:")]
if desc != ["Description:    \\x1b[2J\\u{202e}evil\\u{009b}\\x0aline2\\x07"]:
    sys.exit("info description line: %r" % desc)
if json.loads(raw[1])["description"] != want:
    sys.exit("info --json description differs")
if [r["description"] for r in json.loads(raw[2]) if r["name"] == "term"] != [want]:
    sys.exit("list --json description differs")
if "snapshot \x27\\u{202e}abc\x27" not in open(sys.argv[4]).read():
    sys.exit("error message: " + open(sys.argv[4]).read())
' "$T/info" "$T/info.json" "$T/list.json" "$T/err" "$hostile" 2>&1) &&
    [ "$rci$rcj$rcl" = 000 ]; then
    ok "hostile description of a hand-edited record: escaped in text, exact in JSON, no raw control byte"
else
    bad "hostile record output" "rc $rci/$rcj/$rcl: $why"
fi
"$bld/xlsnap" snapshot-delete victim term >/dev/null 2>&1
# Usage errors quote what was typed: escaped too.
"$bld/xlsnap" snapshot-create --freeze-timeout=$'\e[2J' victim t1 2>"$T/u1"
"$bld/xlsnap" snapshot-create --quiesce=$'\u202eoff' victim t1 2>"$T/u2"
"$bld/xlsnap" snapshot-create --$'\e[2J' victim t1 2>"$T/u3"
if ! grep -q -e $'\e' -e $'\u202e' "$T/u1" "$T/u2" "$T/u3" && grep -q 'x1b\[2J' "$T/u1" &&
    grep -q 'u{202e}off' "$T/u2" && grep -q 'x1b\[2J' "$T/u3"; then
    ok "usage errors escape the option values they quote"
else
    bad "usage errors escaped" "$(cat -v "$T/u1" "$T/u2" "$T/u3" | tr '\n' '|')"
fi

# ---------------------------------------------------------- domains
expect_refused "unknown domain" "nosuchdomain" snapshot-create -q off nosuchdomain s1
expect_refused "empty domain name" "domain" snapshot-create -q off '' s1
expect_refused "domain name with /" "domain" snapshot-list '../victim'
expect_refused "unknown domain id" "4242" snapshot-list 4242

# Domain 0 is Xen's control domain: refused by id, by name and under another
# name, by every command, in words (not a xenstore path).
for q in 0 00 Domain-0; do
    expect_refused "domain $q: create" "control domain" snapshot-create -q off "$q" s1
    expect_refused "domain $q: list" "control domain" snapshot-list "$q"
    expect_refused "domain $q: info" "control domain" snapshot-info "$q" base
    expect_refused "domain $q: revert" "control domain" snapshot-revert "$q" base
    expect_refused "domain $q: delete" "control domain" snapshot-delete "$q" base
done
xenstore-write /local/domain/0/name ctl
expect_refused "domain 0 under another name" "control domain" snapshot-list ctl
xenstore-write /local/domain/0/name Domain-0

# Readers take no lock: while another client holds the domain's one-client
# QMP socket (as a running snapshot-create does), list and info answer at
# once from the metadata.
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.recv(4096)
open(sys.argv[2], "w").close()
time.sleep(30)' "$XLSNAP_XEN_RUNDIR/qmp-libxl-$domid" "$T/qmp-held" &
holder=$!
pids+=("$holder")
for _ in $(seq 100); do [ -e "$T/qmp-held" ] && break; sleep 0.05; done
t0=$(date +%s%N)
"$bld/xlsnap" snapshot-list victim >"$T/out" 2>"$T/err"
rc=$?
"$bld/xlsnap" snapshot-info victim base >"$T/out2" 2>>"$T/err"
rc2=$?
ms=$((($(date +%s%N) - t0) / 1000000))
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
if [ ! -e "$T/qmp-held" ]; then
    bad "readers while QMP is held" "the holder never got QEMU's greeting"
elif [ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ] && grep -q '^base ' "$T/out" && [ "$ms" -lt 2000 ]; then
    ok "list and info while another client holds QMP: exit 0 in $ms ms"
else
    bad "readers while QMP is held" "rc $rc/$rc2 after $ms ms: $(head -c 300 "$T/err")"
fi

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

# The list's legend explains the marks shown, and only those: 'a b' is
# current (marked *), --roots shows base alone (no mark, no legend).
"$bld/xlsnap" snapshot-list victim >"$T/out" 2>&1
"$bld/xlsnap" snapshot-list --roots victim >"$T/roots" 2>&1
if grep -q '^a b \*' "$T/out" && [ "$(tail -n 1 "$T/out")" = "(* current snapshot)" ] &&
    [ "$(grep -c '' "$T/roots")" -eq 2 ] && grep -q '^base ' "$T/roots" &&
    ! grep -q '^(' "$T/roots"; then
    ok "list legend only for the marks shown"
else
    bad "list legend" "$(tr '\n' '|' <"$T/out") --roots: $(tr '\n' '|' <"$T/roots")"
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

# Two damaged records: the error names the first and says how to see the
# rest, and that option does list every one.
cp "$dom_state/a b.json" "$T/ab.json.good"
head -c 100 "$T/base.json.good" >"$meta"
head -c 50 "$T/ab.json.good" >"$dom_state/a b.json"
"$bld/xlsnap" snapshot-list victim >/dev/null 2>"$T/err"
"$bld/xlsnap" -v snapshot-list victim >/dev/null 2>"$T/verr"
hint=$(grep -o -- '-v* lists them' "$T/err")
if [ "$hint" = "-v lists them" ] && grep -q 'damaged metadata:.*base\.json' "$T/verr" &&
    grep -q 'damaged metadata:.*a b\.json' "$T/verr"; then
    ok "two damaged records: the error says -v, and -v lists both"
else
    bad "two damaged records" "hint '$hint'; -v printed: $(head -c 400 "$T/verr" | tr '\n' '|')"
fi
cp "$T/base.json.good" "$meta"
cp "$T/ab.json.good" "$dom_state/a b.json"

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
# Readers change nothing, but when the dead run had sent a freeze and no
# thaw (phase "frozen") and its watchdog is gone too, they ask the agent
# (here none answers) and say the guest's filesystems may still be frozen
# and what thaws them (test_create_faults: no warning once thawed).
cp "$dom_state/.journal.json" "$T/journal.planned"
sed -i 's/"phase": "planned"/"phase": "frozen"/' "$dom_state/.journal.json"
"$bld/xlsnap" snapshot-list victim >"$T/out" 2>"$T/err"
rcl=$?
"$bld/xlsnap" snapshot-info victim base >/dev/null 2>"$T/err2"
rci=$?
"$bld/xlsnap" snapshot-list --json victim >/dev/null 2>"$T/err3"
cp "$T/journal.planned" "$dom_state/.journal.json"
"$bld/xlsnap" snapshot-list victim >/dev/null 2>"$T/err4"
frozen_said() { grep -q "may still be frozen.*snapshot-create, snapshot-revert or snapshot-delete of victim while it runs, which thaws them" "$1"; }
if [ "$rcl$rci" = 00 ] && frozen_said "$T/err" && frozen_said "$T/err2" && frozen_said "$T/err3" &&
    ! grep -q frozen "$T/err4"; then
    ok "list and info warn that a dead run's freeze may still hold ($(head -c 150 "$T/err"))"
else
    bad "frozen guest warning" "rc $rcl/$rci: $(cat "$T/err" "$T/err2" "$T/err4" | head -c 400)"
fi
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

# ---------------------------------------------------------- files a journal names
# A hand-edited journal of a dead run may name any file as created by it:
# recovery removes only what the operation makes, where it makes it (memory
# files <name>.mem in the domain's directory, overlays <stem>.<name>.qcow2
# beside the image), a regular file; anything else stays, with a warning.
# forged_journal OP SNAPSHOT MEMORY DISKS-JSON: a journal whose owner is dead.
forged_journal() {
    cat >"$dom_state/.journal.json" <<EOF
{"version": 1, "operation": "$1", "snapshot": "$2", "phase": "planned",
 "owner": {"pid": $dead, "start_time": 1}, "started_ms": 1, "updated_ms": 1,
 "lease_deadline_ms": 0, "watchdog": null, "prev_current": "base",
 "memory_created": $3, "disks": [$4]}
EOF
}
# journal_disk IMAGE OVERLAY: a disk record naming OVERLAY as created.
journal_disk() {
    printf '{"vdev": "xvda", "image": "%s", "internal_created": null, ' "$1"
    printf '"overlay_created": "%s", "old": null, "done": false}' "$2"
}
# survives NAME FILE...: the next command recovers the journal, keeps every
# FILE, warns naming the first, and goes on.
survives() {
    local name=$1 f gone=""
    shift
    "$bld/xlsnap" snapshot-create -q off victim "after-${name// /-}" >"$T/out" 2>"$T/err"
    local rc=$?
    for f in "$@"; do [ -e "$f" ] || gone="$gone $f"; done
    if [ -n "$gone" ]; then
        bad "journal naming $name" "removed:$gone (rc $rc: $(head -c 300 "$T/err"))"
    elif [ -e "$dom_state/.journal.json" ]; then
        bad "journal naming $name" "journal not recovered (rc $rc: $(head -c 300 "$T/err"))"
    elif ! grep -q "not removing .*$1" "$T/err"; then
        bad "journal naming $name" "no warning naming $1: $(head -c 300 "$T/err")"
    else
        ok "journal naming $name: left, warned ($(grep 'not removing' "$T/err" | head -n 1 | head -c 150))"
    fi
}
mkdir -p "$T/elsewhere"
echo precious >"$T/elsewhere/ghost.mem"
forged_journal create ghost "\"$T/elsewhere/ghost.mem\"" ""
survives "memory file elsewhere" "$T/elsewhere/ghost.mem"
forged_journal create ghost "\"$dom_state/base.json\"" ""
survives "a record as memory file" "$dom_state/base.json"
ln -s "$T/elsewhere/ghost.mem" "$dom_state/ghost.mem"
forged_journal create ghost "\"$dom_state/ghost.mem\"" ""
survives "a symlink as memory file" "$dom_state/ghost.mem" "$T/elsewhere/ghost.mem"
rm -f "$dom_state/ghost.mem"
# an overlay that is what a create makes (a qcow2 on the image) but elsewhere
qemu-img create -q -f qcow2 -b "$T/disks/a.qcow2" -F qcow2 "$T/elsewhere/a.ghost.qcow2"
forged_journal create ghost null "$(journal_disk "$T/disks/a.qcow2" "$T/elsewhere/a.ghost.qcow2")"
survives "create overlay elsewhere" "$T/elsewhere/a.ghost.qcow2"
echo precious >"$T/elsewhere/precious"
forged_journal revert base null "$(journal_disk "$T/disks/a.qcow2" "$T/elsewhere/precious")"
survives "revert overlay elsewhere" "$T/elsewhere/precious"
rm -f "$dom_state/.journal.json"
# A record's memory file, edited to name a file elsewhere: deleting the
# snapshot deletes the record, not that file.
if create victim memrec >"$T/out" 2>"$T/err"; then
    python3 -c 'import json,sys; p=sys.argv[1]; m=json.load(open(p)); m["memory"]={"path": sys.argv[2], "size": 8}; json.dump(m, open(p, "w"))' \
        "$dom_state/memrec.json" "$T/elsewhere/precious"
    "$bld/xlsnap" snapshot-delete --metadata victim memrec >"$T/out" 2>"$T/err"
    rc=$?
    if [ -e "$T/elsewhere/precious" ] && [ ! -e "$dom_state/memrec.json" ] &&
        grep -q "not removing memory file $T/elsewhere/precious" "$T/err"; then
        ok "record naming a memory file elsewhere: record deleted, file left, warned"
    else
        bad "record naming a memory file elsewhere" "rc $rc: $(head -c 300 "$T/err")"
    fi
else
    bad "record naming a memory file elsewhere" "create: $(cat "$T/err")"
fi

# ---------------------------------------------------------- damaged records, the way out
# A damaged record (garbage, a symlink) is named with the command that
# removes it; snapshot-delete --metadata removes the entry itself, never
# what a symlink points to, and leaves everything else as it was.
echo '{ not json' >"$dom_state/junk.json"
expect_refused "info of a damaged record says how to remove it" \
    "invalid.*snapshot-delete --metadata victim junk" snapshot-info victim junk
expect_refused "delete of a damaged record says how to remove it" \
    "snapshot-delete --metadata victim junk" snapshot-delete victim junk
"$bld/xlsnap" snapshot-list victim >/dev/null 2>"$T/err"
if grep -q "junk.json.*snapshot-delete --metadata victim junk" "$T/err"; then
    ok "list names the damaged record and how to remove it"
else
    bad "list of a damaged record" "$(head -c 300 "$T/err")"
fi
"$bld/xlsnap" -N snapshot-delete --metadata victim junk >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && [ -e "$dom_state/junk.json" ] && grep -q '"remove_damaged_record": ".*junk.json"' "$T/out"; then
    ok "-N snapshot-delete --metadata of a damaged record: the plan names it, nothing removed"
else
    bad "-N delete --metadata of a damaged record" "rc $rc: $(head -c 300 "$T/out") $(head -c 300 "$T/err")"
fi
state >"$T/before"
"$bld/xlsnap" snapshot-delete --metadata victim junk >"$T/out" 2>"$T/err"
rc=$?
state >"$T/after"
if [ "$rc" -eq 0 ] && [ ! -e "$dom_state/junk.json" ] &&
    [ "$(diff "$T/before" "$T/after" | grep -c '^[<>]')" -eq 1 ]; then
    ok "snapshot-delete --metadata removes a damaged record, nothing else"
else
    bad "delete --metadata of a damaged record" "rc $rc: $(head -c 300 "$T/err") $(diff "$T/before" "$T/after" | head -n 4 | tr '\n' '|')"
fi
cp "$T/base.json.good" "$T/elsewhere/target.json"
ln -s "$T/elsewhere/target.json" "$dom_state/lnk.json"
expect_refused "info of a symlinked record says how to remove it" \
    "symlink.*snapshot-delete --metadata victim lnk" snapshot-info victim lnk
"$bld/xlsnap" snapshot-delete --metadata victim lnk >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && [ ! -L "$dom_state/lnk.json" ] && cmp -s "$T/base.json.good" "$T/elsewhere/target.json"; then
    ok "snapshot-delete --metadata removes a symlinked record, not its target"
else
    bad "delete --metadata of a symlinked record" "rc $rc: $(head -c 300 "$T/err")"
fi

# A record whose parent is missing: deleting it must not hand the dangling
# name to its child (nearest existing ancestor: none), and says so.
if create victim pa >/dev/null 2>&1 && create victim pb >/dev/null 2>&1 &&
    create victim pc >/dev/null 2>"$T/err"; then
    rm "$dom_state/pa.json"
    "$bld/xlsnap" snapshot-delete --metadata victim pb >"$T/out" 2>"$T/err"
    rc=$?
    parent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("parent"))' "$dom_state/pc.json" 2>&1)
    if [ "$rc" -eq 0 ] && [ "$parent" = "None" ] && grep -q "missing parent 'pa'.*'pc' has no parent" "$T/err"; then
        ok "deleting a record with a missing parent: its child gets none, said so"
    else
        bad "record with a missing parent" "rc $rc, pc's parent $parent: $(head -c 300 "$T/err")"
    fi
else
    bad "record with a missing parent" "create: $(cat "$T/err")"
fi

# A garbage journal blocks every create and delete: the error names the way
# out, snapshot-delete --discard-journal, which moves it aside (kept) and
# unblocks the domain. One a live process owns is refused.
echo 'garbage {' >"$dom_state/.journal.json"
expect_refused "garbage journal: create names --discard-journal" \
    "journal.*snapshot-delete --discard-journal victim" snapshot-create -q off victim g1
expect_refused "garbage journal: delete names --discard-journal" \
    "snapshot-delete --discard-journal victim" snapshot-delete victim base
"$bld/xlsnap" snapshot-delete --discard-journal victim >"$T/out" 2>"$T/err"
rc=$?
aside=$(find "$dom_state" -maxdepth 1 -name '.journal.json.discarded-*' | head -n 1)
if [ "$rc" -eq 0 ] && [ ! -e "$dom_state/.journal.json" ] && [ -n "$aside" ] &&
    [ "$(cat "$aside")" = 'garbage {' ] && grep -q "moved aside to $aside" "$T/out" &&
    grep -q "paused and stays paused" "$T/err" && create victim g2 >/dev/null 2>&1; then
    ok "snapshot-delete --discard-journal moves a garbage journal aside, says the domain stays paused; create works again"
else
    bad "--discard-journal" "rc $rc, aside '$aside': $(head -c 300 "$T/out") $(head -c 300 "$T/err")"
fi
rm -f "$aside"
expect_refused "--discard-journal without a journal" "no journal" snapshot-delete --discard-journal victim
sleep 30 &
live=$!
pids+=("$live")
cat >"$dom_state/.journal.json" <<EOF
{"version": 1, "operation": "create", "snapshot": "busy", "phase": "planned",
 "owner": {"pid": $live, "start_time": $(awk '{print $22}' "/proc/$live/stat")}, "started_ms": 1,
 "updated_ms": 1, "lease_deadline_ms": 0, "watchdog": null, "prev_current": null,
 "memory_created": null, "disks": []}
EOF
expect_refused "--discard-journal of a live owner's journal" "still working" snapshot-delete --discard-journal victim
kill "$live" 2>/dev/null
rm -f "$dom_state/.journal.json"
expect_refused "--discard-journal with a name" "only a domain" snapshot-delete --discard-journal victim base

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
