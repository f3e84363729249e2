#!/usr/bin/env bash
# Runs test programs under valgrind memcheck: run.sh BUILDDIR TEST...
# A test fails when it fails, or when any valgrind log of it or of a project
# program it started reports an error or a definite leak (--error-exitcode
# alone would miss the children: their exit codes are the test's business).
# System programs (qemu, qemu-img, shells) and scripts tests write to /tmp
# (fake peers) are not traced.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bld=$1
shift
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)"; exit 1; }
out=$bld/valgrind
pass=0 fail=0
for t in "$@"; do
    logs=$out/$t
    rm -rf "$logs"
    mkdir -p "$logs"
    start=$(date +%s)
    XLSNAP_BUILDDIR=$bld XLSNAP_TOP=$top XLSNAP_UNDER_VALGRIND=1 XLSNAP_WATCHDOG=$bld/xlsnap-freeze-watchdog \
        valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --error-exitcode=9 --num-callers=30 \
        --trace-children=yes --trace-children-skip='/usr/*,/bin/*,/sbin/*,/opt/*,/tmp/*' \
        --suppressions="$top/tests/valgrind/xlsnap.supp" \
        --log-file="$logs/%p.log" "$bld/tests/$t" >"$logs/output" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    # -q: a log holds only errors and leaks ("==pid== ..." lines); valgrind's
    # own notes ("--pid-- WARNING: unhandled syscall 434", pidfd_open, which
    # libsnap then replaces by its SIGCHLD fallback) are not the project's.
    dirty=$(grep -l -E '^==[0-9]+== ' "$logs"/*.log 2>/dev/null | sort)
    if [ "$rc" -eq 0 ] && [ -z "$dirty" ]; then
        echo "PASS $t (${secs}s)"
        pass=$((pass + 1))
    else
        echo "FAIL $t (exit $rc, ${secs}s)"
        grep -E '^(not ok|FAIL)' "$logs/output" | head -n 10
        for l in $dirty; do
            echo "--- $l"
            head -n 60 "$l"
        done
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
