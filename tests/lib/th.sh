# shellcheck shell=bash
# th.sh — the shell side of xlsnap's test harness (tests/lib/th.h is the C side).
# Source it from a test script; it prints what tests/run sums.
#   plan N                  declares that the script runs exactly N checks
#   plan_at_least N         ... at least N (a data-driven script: one check per page...)
#   check NAME COMMAND...   runs COMMAND, prints PASS/FAIL NAME and counts it
#   skip_check NAME WHY     counts a check that could not run here (SKIP NAME: WHY)
#   fail_outside WHY        records a failure no check owns (setup that broke)
#   ok NAME / bad NAME WHY  counts a check the script decided itself
#   th_tmpdir TAG           T (temp dir) and pids, both cleaned up at exit
#   th_sim_dom0 BUILDDIR    the simulated dom0's environment and xenstored under T
#   finish                  prints "N passed, N failed, N skipped" and exits 1 on a
#                           failure, when no plan was declared, or when the number of
#                           checks run is not what the plan says (a script that stopped
#                           early never looks green)
pass=0 fail=0 skip=0 th_planned="" th_plan_min=0
plan() {
    th_planned=$1 th_plan_min=0
    echo "plan: $1"
}
plan_at_least() {
    th_planned=$1 th_plan_min=1
    echo "plan: at least $1"
}
check() {
    if "${@:2}"; then
        echo "PASS $1"
        pass=$((pass + 1))
    else
        echo "FAIL $1"
        fail=$((fail + 1))
    fi
}
skip_check() {
    echo "SKIP $1: $2"
    skip=$((skip + 1))
}
fail_outside() {
    echo "FAIL outside any check: $*"
    th_outside=$((${th_outside:-0} + 1))
}
# ok NAME / bad NAME WHY: a check the script decided itself, counted.
ok() { echo "PASS $1" | tr "\n" " "; echo; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# th_tmpdir TAG: T, a private temp dir removed at exit (KEEP=1 keeps it), and
# pids, the processes this script started, killed at exit. A script with more
# to undo defines th_cleanup_more, run after the kills.
th_tmpdir() {
    T=$(mktemp -d "/tmp/xlsnap-$1.XXXXXX")
    pids=()
    trap th_cleanup EXIT
}
th_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    if declare -F th_cleanup_more >/dev/null; then th_cleanup_more; fi
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}

# th_sim_dom0 BUILDDIR: the simulated dom0 under $T (state dirs, disks/) and
# its xenstored, started in the background (its pid in pids).
th_sim_dom0() {
    export XENSTORED_PATH=$T/xs.sock XLSNAP_XEN_STATEDIR=$T/xen XLSNAP_XEN_RUNDIR=$T/run
    export XLSNAP_STATEDIR=$T/xlsnap XLSNAP_PLATFORM=sim
    mkdir -p "$T/xen" "$T/run" "$T/disks"
    "$1/xlsnap-xenstored" --foreground --socket "$XENSTORED_PATH" >"$T/xs.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$XENSTORED_PATH" ] && break; sleep 0.05; done
}

finish() {
    local ran=$((pass + fail + skip))
    if [ -z "$th_planned" ]; then
        echo "FAIL plan: none declared: how many checks should have run?"
        fail=$((fail + 1))
    elif [ "$th_plan_min" = 1 ] && [ "$ran" -lt "$th_planned" ]; then
        echo "FAIL plan: at least $th_planned checks planned, $ran ran"
        fail=$((fail + 1))
    elif [ "$th_plan_min" = 0 ] && [ "$ran" -ne "$th_planned" ]; then
        echo "FAIL plan: $th_planned checks planned, $ran ran"
        fail=$((fail + 1))
    fi
    fail=$((fail + ${th_outside:-0}))
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
}
