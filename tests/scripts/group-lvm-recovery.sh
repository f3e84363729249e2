#!/usr/bin/env bash
# A consistency group's member whose domain has a disk on an LVM volume,
# left journaled by a dead xlsnap at metadata-done with a group whose record
# was never written (killed before the group's commit point): the next
# command on the domain rolls the member back, and that removes the
# journaled snapshot volume (tagged xlsnap, of the journaled origin) with
# LVM's own tools, and nothing else.
#
# The simulated dom0 has no device-mapper: the domain is an xlsim one with
# a qcow2 disk, the journal is the one a group create writes for an LVM disk
# (snap_journal.c's format), and `lvm` is tests/data/lvm/fake-lvm, which
# replays outputs recorded from the real tools (tests/data/lvm/README).
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${XLSNAP_BUILDDIR:-$top/build}
. "$top/tests/lib/th.sh"
th_tmpdir grplvm
plan 4

th_sim_dom0 "$bld"
data=$top/tests/data/lvm

# The fake lvm on PATH, knowing the volume origin and its xlsnap snapshot.
mkdir -p "$T/bin" "$T/lvm/lvs" && ln -s "$data/fake-lvm" "$T/bin/lvm"
export PATH=$T/bin:$PATH FAKE_LVM_STATE=$T/lvm
: >"$T/lvm/log"
row() { # row LV [AS]: the recorded lvs report of LV alone, renamed AS
    local r
    r=$(grep "\"lv_name\":\"$1\"" "$data/lvs-vg.json" | sed 's/, *$//')
    [ -n "${2:-}" ] && r=$(printf '%s' "$r" | sed "s/$1/$2/g; s/${1//-/--}/${2//-/--}/g")
    printf '{"report":[{"lv":[%s]}]}\n' "$r"
}
row dom2-root >"$T/lvm/lvs/xlsnaptest_dom2-root.json"
row dom2-root-xlsnap-s1 dom2-root-xlsnap-grp >"$T/lvm/lvs/xlsnaptest_dom2-root-xlsnap-grp.json"

# Domain gm: created paused by xlsim (its QEMU serves the qcow2 disk).
qemu-img create -q -f qcow2 "$T/disks/a.qcow2" 16M && qemu-img create -q -f qcow2 "$T/disks/b.qcow2" 16M
sed -e "s|@DIR@|$T/disks|g; s|xlsim-demo|gm|; s|access=ro|access=rw|; /^channel/d" \
    "$top/tools/xlsim/examples/two-disks.cfg.in" >"$T/gm.cfg"
setup() {
    "$bld/xlsim" create -p "$T/gm.cfg" >>"$T/xlsim.log" 2>&1 || return 1
    local domid
    domid=$("$bld/xlsim" domid gm) && pids+=("$(xenstore-read "/local/domain/$domid/image/device-model-pid")") &&
        "$bld/xlsnap" -N snapshot-create -q off gm probe >"$T/dry.out" 2>&1 || return 1
    dir=$(echo "$XLSNAP_STATEDIR"/snapshots/*/) && [ -d "$dir" ]
}
if setup; then
    ok "domain gm (paused, xlsim) and its snapshot directory"
else
    bad "domain gm (paused, xlsim) and its snapshot directory" "$(tail -n 5 "$T/xlsim.log" "$T/dry.out" 2>/dev/null)"
    finish
fi

# What snap_create_member_prepare journals for a member with an LVM disk,
# phase metadata-done; its owner a process that has exited.
sh -c 'exit 0' &
dead=$!
wait "$dead"
cat >"$dir/.journal.json" <<EOF
{"version": 1, "operation": "create", "snapshot": "grp", "phase": "metadata-done",
 "owner": {"pid": $dead, "start_time": 1}, "started_ms": 1, "updated_ms": 1,
 "lease_deadline_ms": 0, "watchdog": null, "prev_current": null, "memory_created": null,
 "group": "grp",
 "disks": [{"vdev": "xvda", "image": "/dev/xlsnaptest/dom2-root", "internal_created": null,
            "overlay_created": null, "lvm_created": "xlsnaptest/dom2-root-xlsnap-grp",
            "lvm_origin": "xlsnaptest/dom2-root", "old": null, "done": false}]}
EOF

"$bld/xlsnap" -N snapshot-create -q off gm probe >"$T/rec.out" 2>&1
rc=$?
check "the next command recovers: group 'grp' never recorded, its member rolled back" \
    eval "[ $rc = 0 ] && [ ! -e '$dir/.journal.json' ] && grep -q \"group 'grp' was never recorded: rolling back its member 'grp'\" '$T/rec.out' ||
          { cat '$T/rec.out'; false; }"
check "the member's snapshot volume removed by lvremove, after lvs checked its tag and origin" \
    eval "grep -qx 'lvremove .*xlsnaptest/dom2-root-xlsnap-grp' '$T/lvm/log' && grep -q '^lvs .*xlsnaptest/dom2-root-xlsnap-grp' '$T/lvm/log' &&
          [ ! -e '$T/lvm/lvs/xlsnaptest_dom2-root-xlsnap-grp.json' ] || { cat '$T/lvm/log'; false; }"
check "the origin volume untouched: never removed, still there" \
    eval "! grep -q 'lvremove .*xlsnaptest/dom2-root\$' '$T/lvm/log' && [ -e '$T/lvm/lvs/xlsnaptest_dom2-root.json' ]"
finish
