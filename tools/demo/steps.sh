# The steps of `make demo`, sourced by tools/demo.sh (which defines show,
# check, ok, bad, die, guest, image_file, image_clean, xs_params, stop_pid).
# shellcheck shell=bash disable=SC2154,SC2034,SC2016

disks=(root data) # root.qcow2 = xvda, data.qcow2 = xvdb
vdevs=(xvda xvdb)

start_dom0() {
    caption "A private dom0: xlsnap-xenstored on its own socket"
    echo "\$ xlsnap-xenstored --foreground --socket \$DEMO/xenstored.sock &"
    xlsnap-xenstored --foreground --socket "$XENSTORED_PATH" >"$tmp/xenstored.log" 2>&1 &
    xs_pid=$!
    for _ in $(seq 50); do
        xenstore-list / >/dev/null 2>&1 && break
        sleep 0.1
    done
    show xenstore-list / || die "xenstore-list against xlsnap-xenstored"
    ok "the real xenstore utilities talk to it (XENSTORED_PATH)"
    caption "The commands: xl snapshot-* (Xen's xl with the snapshot commands, make xl)"
    echo "    (xl is build/xl/xl; with no hypervisor here it starts with tests/xl/xl_nohv.so preloaded)"
    echo "\$ xl help | grep snapshot-"
    xl help 2>&1 | grep snapshot- | sed 's/^/    /'
    check "xl help lists the five snapshot commands" \
        test "$(xl help 2>/dev/null | grep -cE '^ snapshot-(create|list|info|revert|delete) ')" = 5
}

boot_guest() {
    caption "The test guest: two qcow2 disks, an agent channel, a writer on xvdb"
    local gdir
    gdir=$(bash "$top/tools/guest/build-guest" 2>"$tmp/build-guest.log" | tail -n 1)
    [ -s "$gdir/vmlinux" ] || die "build-guest (see $(tail -n 3 "$tmp/build-guest.log"))"
    for d in "${disks[@]}"; do
        show bash "$top/tools/guest/mkdisk" "$tmp/disks/$d.qcow2" 64 || die "mkdisk $d"
    done
    sed -e "s|@NAME@|$dom|g; s|@GUEST_DIR@|$gdir|g; s|@DISK_DIR@|$tmp/disks|g" \
        -e "s|@RUN_DIR@|$tmp/run|g; s|@EXTRA@|xlsnap.writer=vdb|g" \
        "$top/tools/xlsim/examples/guest.cfg.in" >"$tmp/$dom.cfg"
    echo "\$ cat \$DEMO/$dom.cfg    # from tools/xlsim/examples/guest.cfg.in"
    grep -v '^#' "$tmp/$dom.cfg" | sed -e "s|$tmp|\$DEMO|g" -e "s|$gdir|\$GUEST|g" -e 's/^/    /' 
    show xlsim create "$tmp/$dom.cfg" || die "xlsim create"
    track_qemu
    show xlsim list
    show xenstore-ls "/local/domain/0/backend/qdisk/$domid/51712"
    local t=$SECONDS
    xlsnap-demo-agent wait "$agent" 90 || die "the guest agent did not answer"
    ok "guest agent answered after $((SECONDS - t)) s"
    show guest 'grep /mnt/ /proc/mounts; sleep 0.5; tail -n 2 /mnt/vdb/writer.log' ||
        die "reading the guest's mounts and writer log"
    guest 'echo "v1 (before s1)" > /mnt/vdb/marker && sync' || die "writing the marker"
    ok "wrote /mnt/vdb/marker = 'v1 (before s1)' in the guest"
}

# Remembers the QEMU of the domain (by PID, to stop it at exit).
track_qemu() {
    domid=$(xlsim domid "$dom") || die "xlsim domid $dom"
    local pid
    pid=$(cat "$tmp/run/qemu-dm-$domid.pid" 2>/dev/null) || die "no QEMU pid file"
    [ -n "$qemu_pid" ] && [ "$qemu_pid" != "$pid" ] && stop_pid "$qemu_pid"
    qemu_pid=$pid
}

internal_snapshot() {
    caption "A quiesced internal snapshot (inside each qcow2 image) with xl snapshot-create"
    show xl snapshot-create --quiesce=required --freeze-budget=2000 \
        -d "before the upgrade" "$dom" s1 || die "snapshot-create s1"
    s1_frozen_ms=$(sed -n 's/.*frozen for \([0-9]*\) ms.*/\1/p' "$tmp/out")
    check "xl reports s1 quiesced: 2 filesystems frozen" \
        grep -q 'quiesced: 2 filesystems frozen' "$tmp/out"
    show qemu-img snapshot -l -U "$tmp/disks/data.qcow2"
    for d in "${disks[@]}"; do
        check "$d.qcow2's snapshot table holds s1" \
            grep -qw s1 <(qemu-img snapshot -l -U "$tmp/disks/$d.qcow2")
        check "the ext4 inside $d.qcow2@s1 was frozen (clean, no journal to replay)" \
            image_clean "$tmp/disks/$d.qcow2" s1
    done
    s1_log=$(image_file "$tmp/disks/data.qcow2" s1 /writer.log)
    check "data.qcow2@s1 holds marker 'v1 (before s1)' and $(wc -l <<<"$s1_log") writer records" \
        test "$(image_file "$tmp/disks/data.qcow2" s1 /marker)" = "v1 (before s1)"
}

external_snapshot() {
    guest 'echo "v2 (before s2)" > /mnt/vdb/marker && sync' || die "writing the marker"
    caption "An external snapshot (new overlays; the old images become backing files)"
    show xl snapshot-create -e "$dom" s2 || die "snapshot-create -e s2"
    local i
    for i in 0 1; do
        local d=${disks[$i]} ovl
        ovl=$(xs_params "$domid" $i | sed 's/^qcow2://')
        check "xenstore: ${vdevs[$i]} now runs on the overlay $(basename "$ovl")" \
            test "$ovl" != "$tmp/disks/$d.qcow2" -a -f "$ovl"
        check "$(basename "$ovl") is backed by $d.qcow2" \
            grep -q "backing file: $tmp/disks/$d.qcow2\$" <(qemu-img info -U "$ovl")
    done
    for d in "${disks[@]}"; do
        check "$d.qcow2 (now a backing file) still holds s1" \
            grep -qw s1 <(qemu-img snapshot -l -U "$tmp/disks/$d.qcow2")
    done
    # The backing file is s2's data, frozen from now on.
    s2_log=$(image_file "$tmp/disks/data.qcow2" "" /writer.log)
    check "data.qcow2 (s2's data) holds marker 'v2 (before s2)'" \
        test "$(image_file "$tmp/disks/data.qcow2" "" /marker)" = "v2 (before s2)"
}

list_and_info() {
    caption "snapshot-list --tree"
    show xl snapshot-list --tree "$dom" || bad "snapshot-list --tree"
    check "s2 (current, marked *) is a child of s1" \
        grep -Pzq 's1\n.*\n\s*\+- s2 \*' "$tmp/out"
    show xl snapshot-list "$dom" || bad "snapshot-list"
    # xlsnap: the same commands as one program, for hosts without the patched xl.
    cp "$tmp/out" "$tmp/work/xl-list.out"
    show xlsnap snapshot-list "$dom" || bad "xlsnap snapshot-list"
    check "xlsnap snapshot-list prints exactly what xl snapshot-list printed" \
        cmp "$tmp/out" "$tmp/work/xl-list.out"
    caption "snapshot-info"
    show xl snapshot-info "$dom" s2 || bad "snapshot-info"
    check "s2 is recorded as quiesced, with both disks external" \
        grep -q 'Consistency: *quiesced' "$tmp/out"
}

write_after() {
    caption "Data written after the snapshots"
    guest 'echo "v3 (after s2)" > /mnt/vdb/marker && sync' || die "writing the marker"
    show guest 'cat /mnt/vdb/marker; echo "writer records: $(wc -l < /mnt/vdb/writer.log)"'
    guest 'cat /mnt/vdb/writer.log' >"$tmp/work/writer.log" || bad "reading writer.log"
    writer_gap_ms=$(awk 'NR > 1 && $2 - prev > max { max = $2 - prev } { prev = $2 }
                         END { print max + 0 }' "$tmp/work/writer.log")
}

revert_step() {
    caption "snapshot-revert to s2 (disk-only snapshot of a running domain: --force)"
    show xl snapshot-revert --force "$dom" s2 || die "snapshot-revert s2"
    track_qemu
    xlsnap-demo-agent wait "$agent" 90 || die "the guest agent did not answer after revert"
    show guest 'cat /mnt/vdb/marker' || bad "reading the marker after revert"
    check "the marker is back to 'v2 (before s2)'" \
        test "$(guest 'cat /mnt/vdb/marker')" = "v2 (before s2)"
    local live
    live=$(guest 'cat /mnt/vdb/writer.log')
    check "the writer log starts with exactly the $(wc -l <<<"$s2_log") records of s2" \
        test "${live:0:${#s2_log}}" = "$s2_log"
}

# chain_clean IMG: IMG and every backing file under it pass `qemu-img check`
# (which, unlike `qemu-img info`, has no --backing-chain).
chain_clean() {
    local f files
    files=$(qemu-img info -U --backing-chain "$1" | sed -n 's/^image: //p')
    [ -n "$files" ] || return 1
    while read -r f; do
        qemu-img check -U "$f" >/dev/null || return 1
    done <<<"$files"
}

# qemu_runs_on VDEV IMAGE OLD: QEMU's own backing chain of VDEV (query-block)
# starts at IMAGE and no longer holds OLD.
qemu_runs_on() {
    local chain
    chain=$(xlsnap-demo-agent chain "$tmp/run/qmp-libxl-$domid" "$1") || return 1
    [ "$(head -n 1 <<<"$chain")" = "$2" ] && ! grep -qxF "$3" <<<"$chain"
}

delete_step() {
    # s2 cannot go now: the revert built the domain's new overlays on its images.
    # The external snapshot to delete is s3, taken on the reverted domain: its
    # overlays (where the domain runs) are merged back into their backing files.
    guest 'echo "v4 (after the revert)" > /mnt/vdb/marker && sync' || die "writing the marker"
    caption "snapshot-delete of an external snapshot (s3; the chain stays intact)"
    show xl snapshot-create -e "$dom" s3 || die "snapshot-create -e s3"
    local i bases=() overlays=()
    for i in 0 1; do
        overlays+=("$(xs_params "$domid" $i | sed 's/^qcow2://')")
        bases+=("$(qemu-img info -U "${overlays[$i]}" | sed -n 's/^backing file: //p')")
    done
    guest 'echo "v5 (after s3)" > /mnt/vdb/marker && sync' || die "writing the marker"
    show xl snapshot-delete "$dom" s3 || die "snapshot-delete s3"
    show xl snapshot-list --tree "$dom"
    check "s3 is gone from the list" bash -c '! grep -qw s3 "$1"' _ "$tmp/out"
    check "s1 and s2 are still listed" \
        bash -c 'grep -qw s1 "$1" && grep -qw s2 "$1"' _ "$tmp/out"
    for i in 0 1; do
        local img
        img=$(xs_params "$domid" $i | sed 's/^qcow2://')
        check "xenstore: ${vdevs[$i]} is back on $(basename "${bases[$i]}")" \
            test "$img" = "${bases[$i]}"
        check "$(basename "$img") (active) and its whole backing chain check clean" \
            chain_clean "$img"
        check "QEMU (query-block): ${vdevs[$i]} pivoted to $(basename "${bases[$i]}"), $(basename "${overlays[$i]}") out of its chain" \
            qemu_runs_on "${vdevs[$i]}" "${bases[$i]}" "${overlays[$i]}"
    done
    show xlsnap-demo-agent chain "$tmp/run/qmp-libxl-$domid" xvdb
    # The merge itself: the base, read with QEMU paused (its I/O drained and
    # flushed), holds what the guest wrote after s3.
    show xlsim pause "$dom" || bad "xlsim pause"
    local merged
    merged=$(image_file "${bases[1]}" "" /marker)
    show xlsim unpause "$dom" || die "xlsim unpause"
    check "$(basename "${bases[1]}") (the base, read with QEMU paused) holds 'v5 (after s3)'" \
        test "$merged" = "v5 (after s3)"
    for d in "${disks[@]}"; do
        check "$d.qcow2 still holds s1" \
            grep -qw s1 <(qemu-img snapshot -l -U "$tmp/disks/$d.qcow2")
    done
    show guest 'cat /mnt/vdb/marker' || bad "reading the marker after delete"
    check "the guest still reads what it wrote after s3 ('v5 (after s3)')" \
        test "$(guest 'cat /mnt/vdb/marker')" = "v5 (after s3)"
}

freeze_window() {
    caption "The measured freeze window"
    echo "    xl snapshot-create (freeze sent -> thaw answered), snapshot s1: ${s1_frozen_ms:-?} ms"
    echo "    guest writer (a record every 20 ms), longest pause: ${writer_gap_ms:-?} ms"
    check "s1's freeze window was measured and stayed within the 2000 ms budget" \
        test "${s1_frozen_ms:-0}" -gt 0 -a "${s1_frozen_ms:-0}" -le 2000
}

demo_main() {
    start_dom0
    boot_guest
    internal_snapshot
    external_snapshot
    list_and_info
    write_after
    revert_step
    delete_step
    freeze_window
    echo
    if [ "$failed" -ne 0 ]; then
        echo "demo: $failed check(s) FAILED ($((SECONDS - t0)) s)."
        exit 1
    fi
    echo "demo: every step checked out ($((SECONDS - t0)) s)."
    exit 0
}
