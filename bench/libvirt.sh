# shellcheck shell=bash
# shellcheck disable=SC2154 # top, T, B, samples, guest_dir: set by bench.sh
# Sourced by bench/bench.sh: libvirt 9.0 as a peer, the same guest under both.
#
# For each disk count in BENCH_LIBVIRT_DISKS ("1 2 4") two guests boot side by
# side from the same kernel, initrd and freshly made disks, with the writer on
# vda and a qemu-ga channel: one under xlsim (xlsnap's simulated Xen) and one
# under a libvirtd started here (QEMU driver, same QEMU binary, machine "pc",
# -cpu max under TCG, 512 MiB, 1 vCPU, memory preallocated like xlsim's).
# BENCH_LIBVIRT_PAIRS (8) rounds, each in turn:
#   virsh snapshot-create-as --disk-only --quiesce --atomic (external overlays)
#   xlsnap snapshot-create --external -q required            (external overlays)
#   xlsnap snapshot-create --internal -q required            (internal: libvirt
#        9.0 refuses internal disk-only snapshots of a running domain)
# each a fresh process (bench_run: wall time). The frozen window comes from
# libvirtd's debug log (agent freeze sent .. thaw reply, ms resolution) and
# from XLSNAP_TRACE for xlsnap. The writer's longest pause per snapshot comes
# from its log, read from the top image once the guests are gone: the K
# longest gaps after the first snapshot, K = the snapshots (quiesced and
# memory) taken, assigned to them in order. Then BENCH_LIBVIRT_MEMORY (3) memory snapshots of
# the 2-disk guests, alternating: virsh --memspec (external, paused save) and
# xlsnap -m.
#
# libvirt is installed on demand (apt-get, no recommends; kept installed).
# Everything else is undone on exit: /etc/libvirt/qemu.conf restored (or
# removed), the libvirt-qemu user and group removed if made here, libvirtd
# and its QEMUs stopped by PID, the state directories libvirtd made (in
# /etc/libvirt, /run, /var/lib, /var/log, /var/cache) removed if they were
# not there before.

lv_pid=
lv_made_user=
lv_made_group=
lv_made_dirs=() # made by us or by libvirtd: removed again
lv_conf_state= # "" untouched, "new" created, "saved" backed up to $T/qemu.conf.orig
lv_domains=()
VIRSH=(virsh -q -c qemu:///system)

lv_install() {
    command -v libvirtd >/dev/null && command -v virsh >/dev/null &&
        [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] && return 0
    log "installing libvirt's QEMU driver (apt-get, --no-install-recommends)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libvirt-daemon-driver-qemu libvirt-daemon libvirt-clients >"$T/log/apt.log" 2>&1 || {
        tail -5 "$T/log/apt.log" >&2
        return 1
    }
}

# libvirt 9.0 resolves its default user/group before reading qemu.conf.
lv_user() {
    if ! getent group libvirt-qemu >/dev/null; then
        groupadd --system libvirt-qemu && lv_made_group=1
    fi
    if ! getent passwd libvirt-qemu >/dev/null; then
        useradd --system --no-create-home -g libvirt-qemu libvirt-qemu && lv_made_user=1
    fi
}

lv_qemu_conf() {
    local c=/etc/libvirt/qemu.conf
    if [ -e "$c" ]; then
        cp -p "$c" "$T/qemu.conf.orig"
        lv_conf_state=saved
    else
        lv_conf_state=new
    fi
    cat >"$c" <<'EOF'
# Written by xlsnap's `make bench` while it runs; restored afterwards.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
}

lv_start() {
    lv_install || return 1
    lv_user
    lv_qemu_conf
    local d
    for d in /etc/libvirt/qemu /etc/libvirt/nwfilter /etc/libvirt/secrets /run/libvirt /var/lib/libvirt \
        /var/log/libvirt /var/cache/libvirt; do
        [ -e "$d" ] || lv_made_dirs+=("$d")
    done
    mkdir -p /run/libvirt /var/lib/libvirt/qemu /var/log/libvirt/qemu /var/cache/libvirt/qemu "$T/lv"
    cat >"$T/lv/libvirtd.conf" <<EOF
auth_unix_rw = "none"
auth_unix_ro = "none"
log_filters = "1:qemu"
log_outputs = "1:file:$T/lv/libvirtd.log"
EOF
    libvirtd -d -f "$T/lv/libvirtd.conf" -p "$T/lv/libvirtd.pid" 2>"$T/log/libvirtd.err" || return 1
    local i
    for i in $(seq 100); do
        [ -s "$T/lv/libvirtd.pid" ] && lv_pid=$(cat "$T/lv/libvirtd.pid")
        "${VIRSH[@]}" version >/dev/null 2>&1 && break
        sleep 0.1
    done
    [ -n "$lv_pid" ] || return 1
    sample "meta libvirt $("${VIRSH[@]}" version 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g')"
}

lv_stop() {
    local d qpid
    for d in "${lv_domains[@]}"; do
        qpid=$(cat "/run/libvirt/qemu/$d.pid" 2>/dev/null || true)
        "${VIRSH[@]}" destroy "$d" >/dev/null 2>&1 || true
        "${VIRSH[@]}" undefine "$d" --snapshots-metadata >/dev/null 2>&1 || true
        if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi
    done
    lv_domains=()
    if [ -n "$lv_pid" ]; then
        kill "$lv_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$lv_pid" 2>/dev/null || break; sleep 0.1; done
        lv_pid=
    fi
    case "$lv_conf_state" in
    saved) cp -p "$T/qemu.conf.orig" /etc/libvirt/qemu.conf ;;
    new) rm -f /etc/libvirt/qemu.conf ;;
    esac
    lv_conf_state=
    for d in "${lv_made_dirs[@]}"; do rm -rf "$d"; done
    lv_made_dirs=()
    [ -z "$lv_made_user" ] || userdel libvirt-qemu 2>/dev/null || true
    [ -z "$lv_made_group" ] || groupdel libvirt-qemu 2>/dev/null || true
    lv_made_user=''
    lv_made_group=
}

# lv_xml NAME N: the domain XML of the libvirt twin of guest_cfg's guest.
lv_xml() {
    local name=$1 n=$2 i letters=abcdefgh disks="" os_boot=""
    [ -z "$lv_cmdline" ] || os_boot="
    <kernel>$guest_dir/vmlinux</kernel><initrd>$guest_dir/initrd.img</initrd>
    <cmdline>$lv_cmdline</cmdline>"
    for i in $(seq 0 $((n - 1))); do
        disks+="<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
  <source file='$T/disks/$name-$i.qcow2'/><target dev='vd${letters:$i:1}' bus='virtio'/></disk>
"
    done
    cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>$lv_memory_mib</memory>
  <memoryBacking><allocation mode='immediate'/></memoryBacking>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>$os_boot</os>
  <cpu mode='maximum' check='none'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    $disks
    <serial type='file'><source path='$T/lv/$name.console'/><target port='0'/></serial>
    <channel type='unix'><source mode='bind' path='$T/lv/$name.qga'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

lv_boot() {
    local name=$1 n=$2 i
    for i in $(seq 0 $((n - 1))); do "$top/tools/guest/mkdisk" "$T/disks/$name-$i.qcow2" 32 >/dev/null; done
    lv_xml "$name" "$n" >"$T/lv/$name.xml"
    "${VIRSH[@]}" define "$T/lv/$name.xml" >/dev/null
    lv_domains+=("$name")
    "${VIRSH[@]}" start "$name" >/dev/null
}

lv_wait_agent() {
    local name=$1
    for _ in $(seq 120); do
        "${VIRSH[@]}" qemu-agent-command "$name" '{"execute":"guest-ping"}' --timeout 2 \
            >/dev/null 2>&1 && grep -q "writer on" "$T/lv/$name.console" 2>/dev/null && return 0
        sleep 1
    done
    log "libvirt guest $name: agent never answered"
    return 1
}

# The libvirt window from its debug log after byte OFFSET: freeze sent,
# freeze reply, thaw sent, thaw reply (ms of day); prints "window work".
lv_window() {
    tail -c +"$(($2 + 1))" "$1" | awk '
        function ms(s,  a) { split(substr(s, 12, 12), a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
        /Send command .\{"execute":"guest-fsfreeze-freeze"/ { fs = ms($0); st = 1; next }
        /Send command .\{"execute":"guest-fsfreeze-thaw"/ { ts = ms($0); st = 3; next }
        /qemuAgentIOProcessLine.*Line \[/ { if (st == 1) { fr = ms($0); st = 2 } else if (st == 3) { tr = ms($0); st = 4 } }
        END { if (st == 4) printf "%.3f %.3f\n", tr - fs, ts - fr }'
}

# One virsh external disk-only snapshot of NAME (N disks), number I, under
# case KASE; quiesced unless KASE ends in -crash.
lv_snapshot() {
    local name=$1 n=$2 i=$3 kase=${4:-disks=$2,virsh-external} letters=abcdefgh d specs=() off w q=--quiesce
    [ "${kase%-crash}" = "$kase" ] || q=
    for d in $(seq 0 $((n - 1))); do
        specs+=(--diskspec "vd${letters:$d:1},snapshot=external,file=$T/disks/$name-$d.lv$i.qcow2")
    done
    off=$(stat -c %s "$T/lv/libvirtd.log")
    # shellcheck disable=SC2086 # $q: --quiesce or nothing
    run libvirt "$kase" "${VIRSH[@]}" snapshot-create-as "$name" "s$i" \
        --disk-only $q --atomic "${specs[@]}" || return 1
    [ -n "$q" ] || return 0
    w=$(lv_window "$T/lv/libvirtd.log" "$off")
    [ -n "$w" ] || { log "no freeze window in libvirtd's log"; return 0; }
    sample "libvirt $kase window_ms ${w% *}"
    sample "libvirt $kase in_window_ms ${w#* }"
}

# One xlsnap snapshot of NAME: METHOD internal|external, quiesced unless Q
# is "off"; its window and phases from the trace.
lv_xlsnap() {
    local name=$1 n=$2 method=$3 i=$4 q=${5:-required}
    local kase="disks=$n,xlsnap-$method"
    [ "$q" != off ] || kase+=-crash
    rm -f "$T/trace"
    XLSNAP_TRACE=$T/trace run libvirt "$kase" \
        "$B/xlsnap" snapshot-create "--$method" -q "$q" "$name" "$method-$q-$i" || return 1
    # agent_wake: connect to the agent's first answer (its wake-up);
    # wall_less_agent_wait: the wall time without xlsnap's wait for the
    # agent's answers; window_agent: the agent's freeze and thaw themselves.
    awk -v k="$kase" '{ if (!($1 in t)) t[$1] = $2 }
        END { if (!("freeze-sent" in t) || !("thaw-replied" in t)) exit
            printf "libvirt %s window_ms %.3f\n", k, (t["thaw-replied"] - t["freeze-sent"]) / 1e6
            printf "libvirt %s in_window_ms %.3f\n", k, (t["thaw-sent"] - t["freeze-replied"]) / 1e6
            printf "libvirt %s window_agent_ms %.3f\n", k, (t["freeze-replied"] - t["freeze-sent"] + \
                t["thaw-replied"] - t["thaw-sent"]) / 1e6
            if ("agent-answered" in t)
                printf "libvirt %s agent_wake_ms %.3f\n", k, (t["agent-answered"] - t["agent-open"]) / 1e6
            if ("agent-ready" in t && "reaped" in t)
                printf "libvirt %s wall_less_agent_wait_ms %.3f\n", k, (t["reaped"] - t["spawn"] - \
                    (t["agent-ready"] - t["agent-wait"])) / 1e6
        }' "$T/trace" >>"$samples"
    phase_samples libvirt "$kase" "$T/trace"
}

# writer_pauses LOG FROM KASE...: the K longest gaps of the writer's log
# after record FROM (boot and warm-up come before it), in the log's order,
# one per KASE given (the snapshots in the order they ran).
writer_pauses() {
    local log=$1 from=$2
    shift 2
    [ -s "$log" ] || { sample "pending libvirt writer log not readable"; return 0; }
    awk -v from="$from" 'NF == 2 && $1 > from + 1 { print NR, $2 - p } NF == 2 { p = $2 }' "$log" |
        sort -k2,2nr | head -n $# | sort -k1,1n | awk '{ print $2 }' |
        while read -r gap; do
            sample "libvirt $1 writer_pause_ms $gap"
            shift
        done
}

# The writer's last record number, read from a running guest's vda image
# (force-share: records are fsync'd, so the image holds every one it wrote).
writer_seq() {
    local log=$T/writer.now
    read_writer_log "$1" "$log"
    awk 'NF == 2 { s = $1 } END { print s + 0 }' "$log"
    rm -f "$log"
}

# The writer's log from a guest's top image of vda.
read_writer_log() {
    local img=$1 out=$2
    qemu-img convert -U -O raw "$img" "$T/writer.raw" 2>/dev/null &&
        debugfs -R "cat /writer.log" "$T/writer.raw" >"$out" 2>/dev/null
    rm -f "$T/writer.raw"
}

lv_memory() {
    local x=$1 v=$2 i
    for i in $(seq "${BENCH_LIBVIRT_MEMORY:-3}"); do
        # Each save starts from a settled file system, not during the
        # writeback of the other tool's memory file (as bench_memory does).
        sync
        run libvirt "disks=2,virsh-memspec" "${VIRSH[@]}" snapshot-create-as "$v" "m$i" \
            --memspec "file=$T/lv/$v.mem$i,snapshot=external" \
            --diskspec "vda,snapshot=external,file=$T/disks/$v-0.m$i.qcow2" \
            --diskspec "vdb,snapshot=external,file=$T/disks/$v-1.m$i.qcow2" || return 1
        rm -f "$T/trace"
        sync
        XLSNAP_TRACE=$T/trace run libvirt "disks=2,xlsnap-m" \
            "$B/xlsnap" snapshot-create -m "$x" "mem-$i" || return 1
        awk '{ t[$1] = $2 } END { if ("memory-resumed" in t)
            printf "libvirt disks=2,xlsnap-m paused_ms %.3f\n", (t["memory-resumed"] - t["memory-paused"]) / 1e6 }' \
            "$T/trace" >>"$samples"
        rm -f "$T/lv/$v.mem$i" "$XLSNAP_STATEDIR"/*/*.mem 2>/dev/null || true
    done
}

# bench_libvirt_pair N: the two twins with N disks, alternating.
bench_libvirt_pair() {
    local n=$1 x=lx$1 v=lv$1 i k xk=() vk=() xfrom vfrom
    guest_extra=$lv_cmdline guest_cfg "$x" "$n"
    log "libvirt vs xlsnap, $n disk(s): booting both"
    lv_boot "$v" "$n"
    boot_and_warm_up "$x"
    lv_wait_agent "$v"
    sleep 2 # boot's last gaps in the writer's log come before the marks
    xfrom=$(writer_seq "$T/disks/$x-0.qcow2")
    vfrom=$(writer_seq "$T/disks/$v-0.qcow2")
    for i in $(seq "${BENCH_LIBVIRT_PAIRS:-8}"); do
        lv_snapshot "$v" "$n" "$i" && vk+=("disks=$n,virsh-external")
        lv_xlsnap "$x" "$n" external "$i" && xk+=("disks=$n,xlsnap-external")
        lv_xlsnap "$x" "$n" internal "$i" && xk+=("disks=$n,xlsnap-internal")
    done
    if [ "$n" = 2 ]; then
        lv_memory "$x" "$v" || log "memory snapshots failed: $(tail -2 "$T/log/last.log")"
        for i in $(seq "${BENCH_LIBVIRT_MEMORY:-3}"); do vk+=("disks=2,virsh-memspec"); xk+=("disks=2,xlsnap-m"); done
    fi
    # The top images of vda, then the guests stop and the writer logs are read.
    local vtop xtop domid
    vtop=$("${VIRSH[@]}" domblklist "$v" | awk '$1 == "vda" { print $2 }')
    domid=$("$B/xlsim" domid "$x")
    local be=/local/domain/0/backend/qdisk/$domid d
    for d in $(xenstore-list "$be"); do
        [ "$(xenstore-read "$be/$d/dev")" = xvda ] && xtop=$(xenstore-read "$be/$d/params" | cut -d: -f2-)
    done
    "${VIRSH[@]}" destroy "$v" >/dev/null 2>&1 || true
    "$B/xlsim" destroy "$x" >/dev/null 2>&1 || true
    read_writer_log "$vtop" "$T/lv/$v.writer"
    read_writer_log "$xtop" "$T/lv/$x.writer"
    writer_pauses "$T/lv/$v.writer" "$vfrom" "${vk[@]}"
    writer_pauses "$T/lv/$x.writer" "$xfrom" "${xk[@]}"
    k=$(wc -l <"$T/lv/$x.writer")
    log "writer logs: $v $(wc -l <"$T/lv/$v.writer") records, $x $k records"
}

# bench_libvirt_idle N: crash-consistent snapshots of twins that run only
# their firmware (no kernel, no agent, 128 MiB): what each tool costs
# outside a frozen window, with next to no guest load on the machine.
bench_libvirt_idle() {
    local n=$1 x=ix$1 v=iv$1 i
    log "libvirt vs xlsnap, $n disk(s), firmware only: crash-consistent"
    lv_cmdline='' lv_memory_mib=128 lv_boot "$v" "$n"
    guest_cfg "$x" "$n"
    sed -i -e 's/^type .*/type    = "hvm"/' -e '/^kernel\|^ramdisk\|^extra/d' \
        -e 's/^memory .*/memory  = 128/' "$T/$x.cfg"
    "$B/xlsim" create "$T/$x.cfg" >"$T/log/$x.create" 2>&1
    domains+=("$x")
    for i in $(seq "${BENCH_LIBVIRT_PAIRS:-8}"); do
        lv_snapshot "$v" "$n" "$i" "disks=$n,virsh-external-crash" || true
        lv_xlsnap "$x" "$n" external "$i" off || true
        lv_xlsnap "$x" "$n" internal "$i" off || true
    done
    "${VIRSH[@]}" destroy "$v" >/dev/null 2>&1 || true
    "$B/xlsim" destroy "$x" >/dev/null 2>&1 || true
}

libvirt_checks() {
    local n
    for n in ${BENCH_LIBVIRT_DISKS:-1 2 4}; do
        sample "ratio libvirt:_${n}_disk(s)_crash-consistent_wall_xlsnap_ext_/_virsh 0.8 libvirt disks=$n,xlsnap-external-crash wall_ms libvirt disks=$n,virsh-external-crash wall_ms"
        [ "${BENCH_ONLY:-}" != libvirt-idle ] || continue
        sample "ratio libvirt:_${n}_disk(s)_wall_xlsnap_ext_/_virsh 0.8 libvirt disks=$n,xlsnap-external wall_ms libvirt disks=$n,virsh-external wall_ms"
        sample "ratio libvirt:_${n}_disk(s)_wall_xlsnap_int_/_virsh 0.8 libvirt disks=$n,xlsnap-internal wall_ms libvirt disks=$n,virsh-external wall_ms"
        sample "ratio libvirt:_${n}_disk(s)_window_xlsnap_ext_/_virsh 0.8 libvirt disks=$n,xlsnap-external window_ms libvirt disks=$n,virsh-external window_ms"
        sample "ratio libvirt:_${n}_disk(s)_window_xlsnap_int_/_virsh 0.8 libvirt disks=$n,xlsnap-internal window_ms libvirt disks=$n,virsh-external window_ms"
        sample "ratio libvirt:_${n}_disk(s)_in-window_xlsnap_ext_/_virsh 0.8 libvirt disks=$n,xlsnap-external in_window_ms libvirt disks=$n,virsh-external in_window_ms"
        sample "ratio libvirt:_${n}_disk(s)_writer_pause_ext_/_virsh 0.8 libvirt disks=$n,xlsnap-external writer_pause_ms libvirt disks=$n,virsh-external writer_pause_ms"
    done
    [ "${BENCH_ONLY:-}" != libvirt-idle ] || return 0
    sample "ratio libvirt:_memory_wall_xlsnap_-m_/_virsh_--memspec 1.0 libvirt disks=2,xlsnap-m wall_ms libvirt disks=2,virsh-memspec wall_ms"
}

bench_libvirt() {
    sample "meta libvirt_note virsh makes external disk-only snapshots (libvirt 9.0 refuses internal disk-only ones of a running domain); xlsnap's internal ones are shown beside them"
    lv_cmdline="console=ttyS0 quiet panic=-1 xlsnap.writer=vda"
    lv_memory_mib=512
    if ! lv_start; then
        sample "pending libvirt libvirtd did not start (see $T/log/libvirtd.err)"
        lv_stop
        return 0
    fi
    local n
    for n in ${BENCH_LIBVIRT_DISKS:-1 2 4}; do bench_libvirt_idle "$n"; done
    if [ "${BENCH_ONLY:-}" != libvirt-idle ]; then
        for n in ${BENCH_LIBVIRT_DISKS:-1 2 4}; do bench_libvirt_pair "$n"; done
    fi
    lv_stop
    libvirt_checks
}
