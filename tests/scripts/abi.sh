#!/usr/bin/env bash
# libsnap.so exports exactly the functions libsnap.h declares (libsnap/libsnap.map):
# no internal symbol leaks into the ABI, and no public function is missing.
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
so=${XLSNAP_BUILDDIR:?}/libsnap.so
. "$top/tests/lib/th.sh"
plan 3
declared=$(grep -v '^typedef' "$top/libsnap/libsnap.h" | grep -oE '^[a-z_ ]+\**(snap_[a-z_]+)\(' | grep -oE 'snap_[a-z_]+\($' |
    tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u)
if [ -n "$declared" ] && [ "$declared" = "$exported" ]; then
    echo "PASS exports match libsnap.h ($(echo "$declared" | wc -l) functions)"
    pass=$((pass + 1))
else
    echo "FAIL exports differ from libsnap.h:"
    diff <(echo "$declared") <(echo "$exported") | sed 's/^/    /'
    fail=$((fail + 1))
fi
if nm -D --defined-only "$so" | grep -q ' snap_qmp_'; then
    echo "FAIL internal snap_qmp_* symbols are exported"
    fail=$((fail + 1))
else
    echo "PASS no internal symbols exported"
    pass=$((pass + 1))
fi
# libxlsnapcmd (linked by xl against the installed libsnap.so) may only use
# what libsnap.so exports.
cmdlib=${XLSNAP_BUILDDIR:?}/libxlsnapcmd.a
needed=$(nm -u "$cmdlib" 2>/dev/null | awk '$2 ~ /^snap_/ {print $2}' | sort -u)
missing=$(comm -23 <(echo "$needed") <(echo "$exported"))
if [ -n "$needed" ] && [ -z "$missing" ]; then
    echo "PASS libxlsnapcmd uses only libsnap.so's exports"
    pass=$((pass + 1))
else
    echo "FAIL libxlsnapcmd needs symbols libsnap.so does not export: ${missing:-(none found: no archive?)}"
    fail=$((fail + 1))
fi
finish
