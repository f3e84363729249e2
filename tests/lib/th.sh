# th.sh — the shell side of xlsnap's test harness (tests/lib/th.h is the C side).
# Source it from a test script; it prints what tests/run sums.
#   check NAME COMMAND...   runs COMMAND, prints PASS/FAIL NAME and counts it
#   finish                  prints "N passed, N failed, 0 skipped" and exits 1 on a failure
pass=0 fail=0
check() {
    if "${@:2}"; then
        echo "PASS $1"
        pass=$((pass + 1))
    else
        echo "FAIL $1"
        fail=$((fail + 1))
    fi
}
finish() {
    echo "$pass passed, $fail failed, 0 skipped"
    [ "$fail" -eq 0 ]
    exit
}
