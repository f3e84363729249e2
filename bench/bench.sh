#!/usr/bin/env bash
# `make bench`: what users feel, measured on real guests (xlsim + QEMU TCG).
#   1. the freeze window, split by XLSNAP_TRACE into agent freeze, QMP
#      transaction, thaw and xlsnap's own overhead inside the window;
#   2. snapshot-create wall time for 1, 2, 4, 8 disks, internal/external,
#      quiesced or not (a fresh xlsnap process each time);
#   3. offline internal snapshots (qemu-img children, QEMU gone), next to the
#      floor of this machine: max(1 disk's wall, N x 1 disk's CPU / CPUs),
#      and next to the same qemu-img commands run in parallel by bash;
#   4. snapshot-list / snapshot-info with 10, 1,000, 10,000 snapshots;
#   5. memory checkpoints next to dd's throughput on the same file system and
#      next to QEMU's own migration of the same guest without xlsnap (floor),
#      alone and after the same internal disk snapshots, order alternating;
#   6. peak RSS of every xlsnap run;
#   6b. consistency groups: the shared window of 1, 2, 4 domains next to
#      a single domain's window (BENCH_ONLY=groups);
#   7. libvirt 9.0 as a peer (bench/libvirt.sh): the same guest under libvirtd
#      and under xlsim, quiesced disk-only snapshots of 1, 2, 4 disks and a
#      memory snapshot, alternating, with wall time, frozen window and the
#      guest writer's longest pause; xlsnap's time split phase by phase.
# Raw samples and results: $XLSNAP_BUILDDIR/bench/ (or BENCH_OUT): samples.txt,
# results.json; the table is printed by bench_report. Not part of `make check`.
#
# Environment: XLSNAP_BUILDDIR (default build/), BENCH_REPS (3: runs per
# create/offline case), BENCH_FREEZE_RUNS (20: quiesced runs of gfreeze, a
# 2-disk guest of its own, so g1..g8 hold the same history per disk), BENCH_DISKS ("1 2 4 8"), BENCH_LIST_COUNTS ("10 1000 10000"),
# BENCH_MEMORY_RUNS (5: memory checkpoints of the 2-disk guest, each beside
# QEMU's own saves of it, the floor), BENCH_ONLY (list: only the
# listings; offline: only the offline case, on domains never booted;
# libvirt: only the libvirt comparison; libvirt-idle: only its firmware-only,
# crash-consistent part, no Linux guest; memory: only the memory checkpoints
# against QEMU's bare migration, on a fresh 2-disk guest; groups: only the
# consistency groups), BENCH_GROUP_DOMAINS ("1 2 4"), BENCH_GROUP_RUNS (5),
# BENCH_LIBVIRT_DISKS ("1 2 4"),
# BENCH_LIBVIRT_PAIRS (8), BENCH_LIBVIRT_MEMORY (3).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${XLSNAP_BUILDDIR:-$top/build}
out=${BENCH_OUT:-$B/bench} # per build dir: two builds never share samples
reps=${BENCH_REPS:-3}
freeze_runs=${BENCH_FREEZE_RUNS:-20}
memory_runs=${BENCH_MEMORY_RUNS:-5}
disk_counts=${BENCH_DISKS:-1 2 4 8}
list_counts=${BENCH_LIST_COUNTS:-10 1000 10000}
mkdir -p "$out"
samples=$out/samples.txt
: >"$samples"
T=$(mktemp -d /tmp/xlsnap-bench.XXXXXX)
# List metadata on tmpfs when there is one: generating 10,000 records with
# one fsync each would take a minute on disk (reads are page-cached either way).
shm=$(mktemp -d /dev/shm/xlsnap-bench.XXXXXX 2>/dev/null || mktemp -d "$T/shm.XXXXXX")

export XENSTORED_PATH=$T/xs.sock XLSNAP_XEN_STATEDIR=$T/xen XLSNAP_XEN_RUNDIR=$T/run
export XLSNAP_STATEDIR=$T/xlsnap XLSNAP_PLATFORM=sim XLSNAP_WATCHDOG=$B/xlsnap-freeze-watchdog
mkdir -p "$T/xen" "$T/run" "$T/disks" "$T/log"

xs_pid=
domains=()
cleanup() {
    lv_stop
    for d in "${domains[@]}"; do "$B/xlsim" destroy "$d" >/dev/null 2>&1 || true; done
    [ -n "$xs_pid" ] && kill "$xs_pid" 2>/dev/null && wait "$xs_pid" 2>/dev/null
    rm -rf "$T" "$shm"
}
trap cleanup EXIT

# shellcheck source=bench/libvirt.sh
. "$top/bench/libvirt.sh"

log() { printf 'bench: %s\n' "$*" >&2; }
sample() { echo "$*" >>"$samples"; }

# run SECTION CASE CMD...: one fresh process; wall time and peak RSS recorded.
run() {
    local section=$1 kase=$2
    shift 2
    local r
    r=$("$B/bench_run" -o "$T/log/last.log" ${XLSNAP_TRACE:+-t "$XLSNAP_TRACE"} -- "$@")
    # shellcheck disable=SC2086 # four numbers
    set -- $r
    if [ "$3" != 0 ]; then
        log "$section $kase failed (exit $3):"
        tail -5 "$T/log/last.log" >&2
        return 1
    fi
    sample "$section $kase wall_ms $1"
    sample "$section $kase rss_kb $2"
    sample "$section $kase cpu_ms $4"
}

# Freeze-window split from one XLSNAP_TRACE file (CLOCK_MONOTONIC ns).
trace_samples() {
    local kase=$1 file=$2
    awk -v k="$kase" '{ t[$1] = $2 }
        END {
            if (!("freeze-sent" in t) || !("thaw-replied" in t)) exit
            f = (t["freeze-replied"] - t["freeze-sent"]) / 1e6
            x = (t["tx-replied"] - t["tx-sent"]) / 1e6
            h = (t["thaw-replied"] - t["thaw-sent"]) / 1e6
            w = (t["thaw-replied"] - t["freeze-sent"]) / 1e6
            printf "freeze %s window_ms %.3f\n", k, w
            printf "freeze %s agent_freeze_ms %.3f\n", k, f
            printf "freeze %s transaction_ms %.3f\n", k, x
            printf "freeze %s thaw_ms %.3f\n", k, h
            printf "freeze %s overhead_ms %.3f\n", k, w - f - x - h
        }' "$file" >>"$samples"
}

# phase_samples SECTION KASE TRACE: where one xlsnap run's time went, from
# its XLSNAP_TRACE events and bench_run's spawn/reaped, sorted by time. Each
# gap between two events goes to the step the earlier one starts: startup
# (fork, exec, dynamic loading), qmp_connect (connect, greeting,
# capabilities), qmp_cmd (other QMP round trips), xs_connect, xs_txn,
# durable (journal/record file written, fsync'd, renamed, dir fsync'd),
# agent_open (connect, the sync, guest-info and guest-get-fsinfo sent),
# agent_wait (blocked on their answers, read just before the freeze: the
# guest's time not hidden behind xlsnap's own), watchdog (spawn until armed), the
# window (agent freeze, work, agent thaw), release (agent closed, watchdog
# released and reaped), exit (atexit to reaped), and own (xlsnap's code
# between them); agent-answered (the agent's first answer, stamped by a
# thread whatever xlsnap does then) starts no step. Samples
# "phases KASE STEP_ms" and, per command, "phases KASE n_STEP" counts.
phase_samples() {
    [ -s "$3" ] || return 0
    sort -k2,2n "$3" | awk -v k="$2" '
        BEGIN {
            start["spawn"] = "startup"; start["qmp-connect"] = "qmp_connect"
            start["qmp-cmd"] = "qmp_cmd"; start["xs-open"] = "xs_connect"
            start["xs-txn"] = "xs_txn"; start["store-write"] = "durable"
            start["watchdog-start"] = "watchdog"; start["exit"] = "exit"
            start["freeze-sent"] = "window_freeze"; start["freeze-replied"] = "window_work"
            start["thaw-sent"] = "window_thaw"; start["agent-open"] = "agent_open"
            start["agent-wait"] = "agent_wait"; start["quiesce-release"] = "release"
            split("startup qmp_connect qmp_cmd xs_connect xs_txn durable agent_open agent_wait watchdog window_freeze window_work window_thaw release exit own", order, " ")
        }
        # stamped by a watching thread while xlsnap does something else: no step
        $1 == "agent-answered" { next }
        NR > 1 {
            step = hs ? "qmp_connect" : win == 1 ? "window_work" : win == 2 ? "window_thaw" : \
                (p in start) ? start[p] : "own"
            d[step] += ($2 - pt) / 1e6
        }
        $1 == "qmp-connect" { hs = 1 } $1 == "qmp-ready" { hs = 0 }
        $1 == "freeze-replied" { win = 1 } $1 == "thaw-sent" { win = 2 } $1 == "thaw-replied" { win = 0 }
        !hs && ($1 in start) && $1 != "spawn" && $1 != "exit" && $1 !~ /^(freeze|thaw)/ { n[start[$1]]++ }
        $1 == "qmp-connect" { n["qmp_connect"]++ }
        { p = $1; pt = $2 }
        END {
            for (i = 1; i in order; i++) if (order[i] in d) printf "phases %s %s_ms %.3f\n", k, order[i], d[order[i]]
            for (s in n) printf "phases %s n_%s %d\n", k, s, n[s]
        }' >>"$samples"
}

machine_meta() {
    sample "meta date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    sample "meta machine $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
    sample "meta cpus $(nproc) online (the offline floor divides CPU time by them)"
    sample "meta qemu $(qemu-system-x86_64 --version | head -1) (TCG)"
    sample "meta commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    sample "meta guest 1 vCPU, 512 MiB, 32 MiB ext4 qcow2 disks mounted, qemu-ga"
}

start_xenstored() {
    "$B/xlsnap-xenstored" --foreground --socket "$XENSTORED_PATH" >"$T/log/xs.log" 2>&1 &
    xs_pid=$!
    for _ in $(seq 100); do [ -S "$XENSTORED_PATH" ] && return; sleep 0.05; done
    log "xenstored did not start"
    exit 1
}

# guest_cfg NAME NDISKS: an xl config with NDISKS qdisk disks xvda...
guest_cfg() {
    local name=$1 n=$2 disks="" letters=abcdefgh
    for i in $(seq 0 $((n - 1))); do
        local v=xvd${letters:$i:1} img=$T/disks/$name-$i.qcow2
        "$top/tools/guest/mkdisk" "$img" 32 >/dev/null
        disks+="${disks:+, }'format=qcow2, vdev=$v, access=rw, backendtype=qdisk, target=$img'"
    done
    cat >"$T/$name.cfg" <<EOF
name    = "$name"
type    = "pvh"
kernel  = "$guest_dir/vmlinux"
ramdisk = "$guest_dir/initrd.img"
extra   = "${guest_extra:-console=ttyS0 quiet panic=-1}"
memory  = 512
vcpus   = 1
disk    = [ $disks ]
channel = [ 'name=org.qemu.guest_agent.0, connection=socket, path=$T/run/qga-$name.sock' ]
on_poweroff = "destroy"
EOF
}

# Boots NAME and waits until a quiesced snapshot succeeds (agent up, disks mounted).
boot_and_warm_up() {
    local name=$1
    "$B/xlsim" create "$T/$name.cfg" >"$T/log/$name.create" 2>&1
    domains+=("$name")
    warm_up "$name"
}

# Waits until a quiesced snapshot of NAME (created already) succeeds.
warm_up() {
    local name=$1
    for _ in $(seq 60); do
        if "$B/xlsnap" snapshot-create -q required "$name" warmup >"$T/log/$name.warm" 2>&1; then
            return 0
        fi
        sleep 2
    done
    log "guest $name never answered a quiesced snapshot:"
    tail -5 "$T/log/$name.warm" >&2
    exit 1
}

# create_case NAME KASE METHOD Q RUNS: RUNS snapshot-creates of guest NAME,
# each split by XLSNAP_TRACE when quiesced.
create_case() {
    local name=$1 kase=$2 method=$3 q=$4 runs=$5 i
    for i in $(seq "$runs"); do
        rm -f "$T/trace"
        XLSNAP_TRACE=$T/trace run create "$kase" \
            "$B/xlsnap" snapshot-create "--$method" -q "$q" "$name" "$method-$q-$i"
        [ "$q" = off ] || trace_samples "$kase" "$T/trace"
    done
}

# Kills guest NAME's QEMU (the domain stays: an offline domain) and waits for it.
# A zombie leader may still have threads exiting that hold the image files
# (and their locks): wait until it is the last of its thread group.
kill_qemu() {
    local domid qemu
    domid=$("$B/xlsim" domid "$1")
    qemu=$(xenstore-read "/local/domain/$domid/image/device-model-pid")
    kill -9 "$qemu"
    while [ -d "/proc/$qemu" ] && ! { grep -q '^State:.*Z' "/proc/$qemu/status" 2>/dev/null &&
        [ "$(ls "/proc/$qemu/task" 2>/dev/null | wc -l)" -le 1 ]; }; do
        sleep 0.05
    done
}

# offline_case N NAME: internal snapshots of the QEMU-less guest, BENCH_REPS times.
offline_case() {
    local n=$1 name=$2 i
    for i in $(seq "$reps"); do
        rm -f "$T/trace"
        XLSNAP_TRACE=$T/trace run offline "disks=$n" \
            "$B/xlsnap" snapshot-create --internal "$name" "offline-$i"
        # The parallel qemu-img writes alone (the plan's listing is before them).
        [ -f "$T/trace" ] || continue
        awk -v k="disks=$n" '{ t[$1] = $2 } END { if ("offline-write-end" in t)
            printf "offline %s write_ms %.3f\n", k, (t["offline-write-end"] - t["offline-write-start"]) / 1e6 }' \
            "$T/trace" >>"$samples"
        offline_bare "$n" "$name" "$i"
    done
}

# The floor of an offline snapshot: the same qemu-img work without xlsnap, on
# the same active images (xenstore's backend params), in parallel like
# xlsnap's children: every `info --backing-chain`, then every `snapshot -c`.
offline_bare() {
    local n=$1 domid be imgs=() d r
    domid=$("$B/xlsim" domid "$2")
    be=/local/domain/0/backend/qdisk/$domid
    for d in $(xenstore-list "$be"); do imgs+=("$(xenstore-read "$be/$d/params" | cut -d: -f2-)"); done
    # shellcheck disable=SC2016 # the script's own variables
    r=$("$B/bench_run" -o "$T/log/last.log" -- bash -c 'tag=$1; shift
        for f; do qemu-img info --output=json --backing-chain "$f" >/dev/null & done; wait
        for f; do qemu-img snapshot -c "$tag" "$f" & done; wait' _ "bare-$3" "${imgs[@]}")
    # shellcheck disable=SC2086 # four numbers
    set -- $r
    if [ "$3" != 0 ]; then
        sample "pending offline bare qemu-img of $n disk(s) failed: $(tail -1 "$T/log/last.log")"
        return 0
    fi
    sample "offline disks=$n,bare-qemu-img wall_ms $1"
    sample "offline disks=$n,bare-qemu-img cpu_ms $4"
}

# Online cases for a guest with n disks, then the offline one (QEMU killed).
# Every g<n> does the same work per disk before its offline case (qemu-img's
# cost grows with the snapshot table): the long series are gfreeze's.
bench_guest() {
    local n=$1 name=g$1 method q
    guest_cfg "$name" "$n"
    log "guest with $n disk(s): booting"
    boot_and_warm_up "$name"
    for method in internal external; do
        for q in required off; do
            create_case "$name" "disks=$n,$method,$([ $q = off ] && echo crash || echo quiesced)" \
                "$method" "$q" "$reps"
        done
    done
    kill_qemu "$name"
    log "guest with $n disk(s): offline"
    offline_case "$n" "$name"
    "$B/xlsim" destroy "$name" >/dev/null 2>&1 || true
}

# BENCH_ONLY=offline: the offline case alone, on a domain whose QEMU is
# killed as soon as xlsim started it (no boot), after BENCH_OFFLINE_HISTORY
# (14) offline snapshots per disk, the history a full run's g<n> builds.
bench_offline_only() {
    local n=$1 name=g$1 i
    guest_cfg "$name" "$n"
    "$B/xlsim" create "$T/$name.cfg" >"$T/log/$name.create" 2>&1
    domains+=("$name")
    kill_qemu "$name"
    log "guest with $n disk(s), never booted: offline"
    for i in $(seq "${BENCH_OFFLINE_HISTORY:-14}"); do
        "$B/xlsnap" snapshot-create --internal "$name" "history-$i" >/dev/null
    done
    offline_case "$n" "$name"
    "$B/xlsim" destroy "$name" >/dev/null 2>&1 || true
}

# A 2-disk guest of its own for the long series: BENCH_FREEZE_RUNS quiesced
# snapshots (same case as g2's, one series) and the memory checkpoints.
bench_freeze() {
    local name=gfreeze
    guest_cfg "$name" 2
    log "guest with 2 disks: freeze window and memory"
    boot_and_warm_up "$name"
    create_case "$name" "disks=2,internal,quiesced" internal required "$freeze_runs"
    bench_memory "$name"
    "$B/xlsim" destroy "$name" >/dev/null 2>&1 || true
}

# Consistency groups (issue 20): BENCH_GROUP_RUNS (5) quiesced internal
# group snapshots of 1, 2 and 4 two-disk domains (BENCH_GROUP_DOMAINS),
# booted side by side, next to a single domain's snapshot-create: the
# group's window (first freeze sent to last thaw answered, as
# snapshot-create --group prints it), the longest member's own window, and
# the command's wall time.
group_window_samples() { # KASE LOG: "shared window N ms (a X ms, b Y ms)."
    sed -n 's/.*shared window \([0-9]*\) ms (\(.*\))\.$/\1 \2/p' "$2" | tail -n 1 | awk -v k="$1" '{
        m = 0; for (i = 3; i <= NF; i += 3) if ($i + 0 > m) m = $i + 0
        printf "group %s window_ms %d\ngroup %s member_window_max_ms %d\n", k, $1, k, m }' >>"$samples"
}
bench_groups() {
    local counts=${BENCH_GROUP_DOMAINS:-1 2 4} runs=${BENCH_GROUP_RUNS:-5} max=0 n i k names=()
    for n in $counts; do [ "$n" -gt "$max" ] && max=$n; done
    log "consistency groups: booting $max two-disk guests"
    for n in $(seq "$max"); do # not i: guest_cfg's loop sets it
        guest_cfg "gg$n" 2
        "$B/xlsim" create "$T/gg$n.cfg" >"$T/log/gg$n.create" 2>&1
        domains+=("gg$n") names+=("gg$n")
    done
    for n in $(seq "$max"); do warm_up "gg$n"; done
    for i in $(seq "$runs"); do
        if run group "domains=1,single" "$B/xlsnap" snapshot-create --internal -q required gg1 "single-$i"; then
            sample "group domains=1,single window_ms $(sed -n 's/.*frozen for \([0-9]*\) ms.*/\1/p' "$T/log/last.log" | tail -n 1)"
        fi
        for k in $counts; do
            run group "domains=$k" "$B/xlsnap" snapshot-create --internal -q required \
                --group="grp$k-$i" "${names[@]:0:$k}" || continue
            group_window_samples "domains=$k" "$T/log/last.log"
        done
    done
    for n in $(seq "$max"); do "$B/xlsim" destroy "gg$n" >/dev/null 2>&1 || true; done
}

# A domain known to xenstore only (shut off: no device model) with COUNT records.
# BENCH_LIST_RUNS (20) runs of each case; BENCH_ONLY=list skips the guests.
bench_list() {
    local count=$1 name=list$1 domid=$((1000 + $1 % 997)) i
    local uuid
    uuid=$(printf '00000000-0000-4000-8000-%012d' "$count")
    xenstore-write "/local/domain/$domid/name" "$name" "/local/domain/$domid/vm" "/vm/$uuid"
    XLSNAP_STATEDIR=$shm "$B/bench_genmeta" "$shm" "$uuid" "$name" "$count"
    local mid
    mid=$(printf 's%05d' $((count / 2)))
    log "$count snapshots: list and info"
    export XLSNAP_STATEDIR=$shm
    run list "snapshots=$count,first" "$B/xlsnap" snapshot-list "$name" # builds .index
    for i in $(seq "${BENCH_LIST_RUNS:-20}"); do
        run list "snapshots=$count" "$B/xlsnap" snapshot-list "$name"
        run list "snapshots=$count,tree" "$B/xlsnap" snapshot-list --tree "$name"
        run list "snapshots=$count,json" "$B/xlsnap" snapshot-list --json "$name"
        run info "snapshots=$count" "$B/xlsnap" snapshot-info "$name" "$mid"
    done
    export XLSNAP_STATEDIR=$T/xlsnap
}

# Memory checkpoints of guest NAME (BENCH_MEMORY_RUNS of them; the first of a
# QEMU process is also reported apart): save throughput from xlsnap's own
# trace (QEMU's migration + fsync), next to QEMU's own saves of the same guest
# (bare_save) and to dd copying that very file (same bytes, fsync'd) on
# the same file system right after it: zeros from /dev/zero could be cheaper
# for the storage. The order alternates: odd runs xlsnap, QEMU's plain save,
# QEMU's save after disk snapshots; even runs the reverse, so neither side
# always follows the other's writes.
bench_memory() {
    local name=$1 i r mem # mem: set by memory_checkpoint
    if ! "$B/xlsnap" help snapshot-create 2>&1 | grep -q -- '--memory'; then
        sample "pending memory checkpoint: needs snapshot-create --memory (revert issue)"
        return
    fi
    local domid
    domid=$("$B/xlsim" domid "$name")
    for i in $(seq "$memory_runs"); do
        if [ $((i % 2)) = 1 ]; then
            memory_checkpoint "$name" "$i" || return 0
            bare_save "$domid" bare-qemu
            bare_save "$domid" bare-qemu-internal --internal bench-bare
        else
            bare_save "$domid" bare-qemu-internal --internal bench-bare
            bare_save "$domid" bare-qemu
            memory_checkpoint "$name" "$i" || return 0
        fi
        r=$("$B/bench_run" -- dd if="$mem" of="$XLSNAP_STATEDIR/raw.bin" bs=1M conv=fsync)
        sample "memory raw-dd save_MBps $(awk -v m="$(stat -c %s "$mem")" -v t="${r%% *}" 'BEGIN {printf "%.1f", m / 1e6 / (t / 1000)}')"
        rm -f "$XLSNAP_STATEDIR/raw.bin"
    done
}

# memory_checkpoint NAME I: xlsnap's checkpoint memory-I of NAME, its trace as
# samples; sets mem (the memory file). Non-zero (a pending sample) on failure.
memory_checkpoint() {
    local name=$1 i=$2 ms kase
    : >"$T/log/last.log"
    rm -f "$T/trace"
    # Each save starts from the same settled file system: without this sync
    # a save followed the removal of two 85 MB files (a bare save's and dd's
    # copy) whose freeing ext4 was still writing back.
    sync
    if ! XLSNAP_TRACE=$T/trace run memory "disks=2" \
        "$B/xlsnap" -v snapshot-create -m "$name" "memory-$i"; then
        sample "pending memory checkpoint: snapshot-create -m failed (see above)"
        return 1
    fi
    read -r mem _ ms < <(sed -n 's/.*memory saved to \(.*\) (\([0-9]*\) MiB, \([0-9]*\) ms).*/\1 \2 \3/p' \
        "$T/log/last.log" | tail -1)
    if [ -z "${ms:-}" ] || [ "$ms" = 0 ] || [ ! -f "$mem" ]; then
        sample "pending memory checkpoint: no 'memory saved' line in xlsnap -v output"
        return 1
    fi
    for kase in "disks=2" $([ "$i" = 1 ] && echo "disks=2,first"); do
        memory_trace_samples "$kase" "$T/trace" "$(stat -c %s "$mem")"
    done
}

# bare_save DOMID KASE [--internal NAME]: QEMU's own save of the same guest
# to the same file system (stop; migrate to an fd; fsync; cont: bench_migrate,
# no xlsnap code but its QMP client), as samples of KASE: the floor of a
# checkpoint. With --internal, after internal snapshots of both disks in the
# pause, as a checkpoint takes them: what the disk snapshots cost the save
# that follows.
bare_save() {
    local domid=$1 kase=$2 r
    shift 2
    sync # settled, as before xlsnap's save (memory_checkpoint)
    if ! r=$("$B/bench_migrate" "$@" "$XLSNAP_XEN_RUNDIR/qmp-libxl-$domid" "$XLSNAP_STATEDIR/bare.mem" 2>&1); then
        log "$kase migration of domain $domid failed: $r"
        sample "pending memory $kase QEMU migration failed: $r"
        return 0
    fi
    rm -f "$XLSNAP_STATEDIR/bare.mem"
    # shellcheck disable=SC2086 # six numbers
    set -- $r
    sample "memory $kase paused_ms $1"
    sample "memory $kase migrate_ms $2"
    sample "memory $kase fsync_ms $3"
    sample "memory $kase resume_ms $4"
    sample "memory $kase disks_ms $6"
    sample "memory $kase save_MBps $(awk -v m="$5" -v t="$(awk -v a="$2" -v b="$3" 'BEGIN {print a + b}')" 'BEGIN {printf "%.1f", m / 1e6 / (t / 1000)}')"
}

# From snap_memory.c's XLSNAP_TRACE points: how long the guest stayed paused
# (pause -> resume), split into the disk snapshots (pause -> save start),
# QEMU's migration to the file, the final fsync and the resume; with the
# memory file's size (3rd argument), the save's rate (migrate and fsync, as
# QEMU's bare save is timed), xlsnap's setup before its migrate and the
# rate without it.
memory_trace_samples() {
    awk -v k="$1" -v bytes="${3:-0}" '{ t[$1] = $2 }
        END {
            if (!("memory-paused" in t) || !("memory-resumed" in t)) exit
            printf "memory %s paused_ms %.3f\n", k, (t["memory-resumed"] - t["memory-paused"]) / 1e6
            printf "memory %s disks_ms %.3f\n", k, (t["memory-save-start"] - t["memory-paused"]) / 1e6
            printf "memory %s migrate_ms %.3f\n", k, (t["memory-save-sent"] - t["memory-save-start"]) / 1e6
            printf "memory %s fsync_ms %.3f\n", k, (t["memory-save-synced"] - t["memory-save-sent"]) / 1e6
            printf "memory %s resume_ms %.3f\n", k, (t["memory-resumed"] - t["memory-save-synced"]) / 1e6
            if (!bytes) exit
            # the same span as QEMU bare save: its migrate and the fsync, on
            # the exact size (the log line says whole MiB and ms)
            printf "memory %s save_MBps %.1f\n", k, bytes / 1e6 / \
                ((t["memory-save-synced"] - t["memory-save-start"]) / 1e9)
            if (!("migrate-sent" in t)) exit
            # the QMP connection and setup commands of xlsnap before its
            # migrate, and the rate without them (QEMU bare save sends them
            # before it stops the guest)
            printf "memory %s setup_ms %.3f\n", k, (t["migrate-sent"] - t["memory-save-start"]) / 1e6
            printf "memory %s save_less_setup_MBps %.1f\n", k, bytes / 1e6 / \
                ((t["memory-save-synced"] - t["migrate-sent"]) / 1e9)
        }' "$2" >>"$samples"
}

checks() {
    local n
    sample "limit freeze:_xlsnap_overhead_in_window_ms_(2_disks) 2 freeze disks=2,internal,quiesced overhead_ms"
    for n in $disk_counts; do
        sample "ratio offline:_${n}_disk(s)_wall_/_plain_parallel_qemu-img 1.25 offline disks=$n wall_ms offline disks=$n,bare-qemu-img wall_ms"
        [ "$n" = 1 ] && continue
        sample "ratio offline:_${n}_disks_/_1_disk_wall_time 1.5 offline disks=$n wall_ms offline disks=1 wall_ms"
        # CPU of xlsnap + its qemu-img children (wait4): per-disk work, not waiting.
        sample "ratio offline:_CPU_${n}_disks_/_1_disk_(linear_<=_$n) $n offline disks=$n cpu_ms offline disks=1 cpu_ms"
        # Physical floor: the children's CPU time spread over the online CPUs.
        sample "floor offline:_${n}_disks_wall_/_CPU_floor 1.25 offline disks=$n wall_ms offline disks=1 wall_ms offline disks=1 cpu_ms $(awk -v n="$n" -v c="$(nproc)" 'BEGIN {print n / c}')"
    done
    sample "ratio memory:_raw_dd_/_checkpoint_MB/s_(<=1.25:_>=80%) 1.25 memory raw-dd save_MBps memory disks=2 save_MBps"
    sample "ratio memory:_raw_dd_/_first_checkpoint_MB/s_(<=1.25) 1.25 memory raw-dd save_MBps memory disks=2,first save_MBps"
    # Floor: QEMU's own save of the same paused guest, measured beside each checkpoint.
    sample "ratio memory:_checkpoint_pause_/_QEMU's_bare_migration 1.25 memory disks=2 paused_ms memory bare-qemu paused_ms"
    sample "ratio memory:_checkpoint_command_wall_/_bare_migration 1.25 memory disks=2 wall_ms memory bare-qemu paused_ms"
    sample "limit list:_10,000_snapshots_ms 50 list snapshots=10000 wall_ms"
    # No worse than linear: 10x the snapshots may cost at most 10x the CPU.
    sample "ratio list:_CPU_10,000_/_1,000_snapshots_(linear_<=_10) 10 list snapshots=10000 cpu_ms list snapshots=1000 cpu_ms"
    sample "ratio list_--json:_CPU_10,000_/_1,000_(linear_<=_10) 10 list snapshots=10000,json cpu_ms list snapshots=1000,json cpu_ms"
    sample "ratio info:_CPU_10,000_/_1,000_snapshots_(linear_<=_10) 10 info snapshots=10000 cpu_ms info snapshots=1000 cpu_ms"
    sample "limit create:_peak_RSS_kB_(8_disks,_external,_quiesced) 8192 create disks=8,external,quiesced rss_kb"
}

# Issue 22's targets, one line each in bench_report's "Issue targets", and
# for a target not met the measured floor and its reason (target-floor
# lines: bench_report replaces {SECTION CASE METRIC} by that median).
issue_targets() {
    local n x v p
    for n in 1 2; do
        x="libvirt disks=$n,xlsnap-external" v="libvirt disks=$n,virsh-external" p="phases disks=$n,xlsnap-external"
        sample "target create_wall,_${n}_disk(s),_quiesced:_xlsnap_/_virsh <= 0.8 $x wall_ms $v wall_ms"
        sample "target-floor create_wall,_${n}_disk(s),_quiesced:_xlsnap_/_virsh $x wall_less_agent_wait_ms $v wall_ms | xlsnap's wall time less its wait for the guest agent, over virsh's. The agent's wake-up on a fresh connection: its first answer came {$x agent_wake_ms} ms after xlsnap connected (median; qemu-ga sleeps 100 ms between polls of a channel no host process holds, so 0-100 ms plus its answer), and xlsnap, its own work before the freeze done, still waited {$p agent_wait_ms} ms for the answers. libvirtd keeps its agent connection open and pays none of it; virsh: {$v wall_ms} ms wall, of which {$v window_ms} ms frozen."
    done
    for n in ${BENCH_LIBVIRT_DISKS:-1 2 4}; do
        x="libvirt disks=$n,xlsnap-external" v="libvirt disks=$n,virsh-external"
        sample "target frozen_window,_${n}_disk(s):_xlsnap_/_libvirt <= 0.8 $x window_ms $v window_ms"
        sample "target-floor frozen_window,_${n}_disk(s):_xlsnap_/_libvirt $x window_agent_ms $v window_ms | the guest agent's own freeze and thaw ({$x window_agent_ms} ms of the window, the guest's time) over libvirt's window; xlsnap's work inside the window: {$x in_window_ms} ms, libvirt's {$v in_window_ms} ms."
    done
    for n in $disk_counts; do
        sample "target offline,_${n}_disk(s):_xlsnap_/_parallel-shell_qemu-img <= 1.0 offline disks=$n wall_ms offline disks=$n,bare-qemu-img wall_ms"
        sample "target-floor offline,_${n}_disk(s):_xlsnap_/_parallel-shell_qemu-img offline disks=$n write_ms offline disks=$n,bare-qemu-img wall_ms | xlsnap's qemu-img snapshot -c children alone ({offline disks=$n write_ms} ms), over the shell's; the rest of xlsnap's {offline disks=$n wall_ms} ms is its start, lookup, journal and record."
    done
    sample "target memory_save:_xlsnap_/_QEMU's_own_migration_(MB/s) >= 1.0 memory disks=2 save_MBps memory bare-qemu save_MBps"
    sample "target-floor memory_save:_xlsnap_/_QEMU's_own_migration_(MB/s) memory disks=2 save_less_setup_MBps memory bare-qemu save_MBps | xlsnap's save without its QMP connection and getfd ({memory disks=2 setup_ms} ms; like QEMU's bare save, it sends the migration settings before it pauses the guest), over QEMU's; xlsnap {memory disks=2 save_MBps} MB/s (migrate {memory disks=2 migrate_ms} ms + fsync {memory disks=2 fsync_ms} ms), QEMU's own {memory bare-qemu save_MBps} MB/s (migrate {memory bare-qemu migrate_ms} ms + fsync {memory bare-qemu fsync_ms} ms). QEMU's own save after the same internal snapshots of both disks in the pause, measured beside it: {memory bare-qemu-internal save_MBps} MB/s (snapshots {memory bare-qemu-internal disks_ms} ms, then migrate {memory bare-qemu-internal migrate_ms} ms + fsync {memory bare-qemu-internal fsync_ms} ms)."
    sample "target beside_it:_memory_save,_xlsnap_/_QEMU's_own_after_the_same_disk_snapshots beside 1.0 memory disks=2 save_MBps memory bare-qemu-internal save_MBps"
    sample "target beside_it:_memory_snapshot_wall,_xlsnap_-m_/_virsh_--memspec beside 1.0 libvirt disks=2,xlsnap-m wall_ms libvirt disks=2,virsh-memspec wall_ms"
    sample "target beside_it:_guest_paused,_xlsnap_-m_(ms) beside 0 libvirt disks=2,xlsnap-m paused_ms"
}

main() {
    local t0=$SECONDS n
    machine_meta
    guest_dir=$("$top/tools/guest/build-guest" | tail -1)
    start_xenstored
    if [ "${BENCH_ONLY:-}" = memory ]; then
        guest_cfg gfreeze 2
        boot_and_warm_up gfreeze
        bench_memory gfreeze
        checks
        issue_targets
        "$B/bench_report" "$samples" "$out/results.json"
        return
    fi
    if [ "${BENCH_ONLY:-}" = offline ]; then
        for n in $disk_counts; do bench_offline_only "$n"; done
        checks
        issue_targets
        "$B/bench_report" "$samples" "$out/results.json"
        return
    fi
    if [ "${BENCH_ONLY:-}" = groups ]; then
        bench_groups
        "$B/bench_report" "$samples" "$out/results.json"
        return
    fi
    case "${BENCH_ONLY:-}" in
    list) disk_counts='' ;;
    libvirt*) disk_counts='' list_counts='' ;;
    esac
    for n in $list_counts; do bench_list "$n"; done
    for n in $disk_counts; do bench_guest "$n"; done
    [ -z "$disk_counts" ] || bench_freeze
    [ -z "$disk_counts" ] || bench_groups
    [ "${BENCH_ONLY:-}" = list ] || bench_libvirt
    case "${BENCH_ONLY:-}" in libvirt*) ;; *) checks ;; esac
    case "${BENCH_ONLY:-}" in list) ;; *) issue_targets ;; esac
    sample "meta duration_s $((SECONDS - t0))"
    "$B/bench_report" "$samples" "$out/results.json"
    log "samples: $samples; results: $out/results.json"
}

main "$@"
