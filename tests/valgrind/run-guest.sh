#!/usr/bin/env bash
# Runs guest tests with xlsnap under valgrind: run-guest.sh BUILDDIR TEST...
# Fails when a test fails or any xlsnap log reports an error or a definite leak.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bld=$1
shift
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)"; exit 1; }
pass=0 fail=0
for t in "$@"; do
    logs=$bld/valgrind/guest-$t
    rm -rf "$logs"
    mkdir -p "$logs"
    XLSNAP_BUILDDIR=$bld XLSNAP_TOP=$top XLSNAP_WATCHDOG=$bld/xlsnap-freeze-watchdog \
        XLSNAP_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --error-exitcode=9 --num-callers=30 --suppressions=$top/tests/valgrind/xlsnap.supp --log-file=$logs/%p.log" \
        "$bld/tests/$t" >"$logs/output" 2>&1
    rc=$?
    dirty=$(grep -l -E '^==[0-9]+== ' "$logs"/*.log 2>/dev/null | sort)
    if [ "$rc" -eq 0 ] && [ -z "$dirty" ]; then
        echo "PASS $t: $(find "$logs" -name '*.log' | wc -l) xlsnap runs clean under valgrind"
        pass=$((pass + 1))
    else
        echo "FAIL $t (exit $rc)"
        grep -E '^(#|FAIL)' "$logs/output" | head -n 20
        for l in $dirty; do echo "--- $l"; head -n 60 "$l"; done
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
