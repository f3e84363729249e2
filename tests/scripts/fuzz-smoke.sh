#!/usr/bin/env bash
# make check's share of fuzzing: builds the libFuzzer targets (fuzz/), replays
# every committed seed and regression input (fuzz/corpus, fuzz/regress), then
# fuzzes each target for FUZZ_SMOKE_SECONDS (default 2), FUZZ_SMOKE_JOBS
# targets at a time (default: the CPU count). One PASS/FAIL per target and
# phase. Longer runs: make fuzz FUZZ_SECONDS=N.
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${XLSNAP_BUILDDIR:-$top/build}
secs=${FUZZ_SMOKE_SECONDS:-2}
pass=0 fail=0
cd "$top" || exit 1
if ! make -s BUILD="$bld" fuzz-build >"$bld/fuzz-build.log" 2>&1; then
    tail -n 30 "$bld/fuzz-build.log"
    echo "FAIL fuzz targets build"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
targets=$(make -s BUILD="$bld" -pn fuzz-build 2>/dev/null | sed -n 's/^FUZZ_ALL *:= *//p' | head -n 1)
# One target: replay, then fuzz; its PASS/FAIL lines go to $work/$t.result.
smoke_one() {
    local t=$1 bin=$bld/fuzz/fuzz_$1 res=$work/$1.result
    local opts="-max_len=65536 -timeout=20 -rss_limit_mb=2048"
    [ "$t" = cli ] && opts="$opts -detect_leaks=0"
    local inputs
    inputs=$(find "fuzz/corpus/$t" "fuzz/regress/$t" -type f 2>/dev/null | sort)
    # shellcheck disable=SC2086
    if [ -z "$inputs" ] || "$bin" $opts $inputs >"$work/$t-replay.log" 2>&1; then
        echo "PASS $t: $(echo "$inputs" | grep -c .) committed inputs replay cleanly" >"$res"
    else
        { tail -n 30 "$work/$t-replay.log"; echo "FAIL $t: a committed input fails"; } >"$res"
    fi
    mkdir -p "$work/corpus-$t"
    # shellcheck disable=SC2086
    if "$bin" $opts -max_total_time="$secs" -artifact_prefix="$work/$t-" \
        "$work/corpus-$t" "fuzz/corpus/$t" >"$work/$t-fuzz.log" 2>&1; then
        echo "PASS $t: fuzzed ${secs}s, $(find "$work/corpus-$t" -type f | wc -l) new corpus entries" >>"$res"
    else
        tail -n 40 "$work/$t-fuzz.log" >>"$res"
        mkdir -p "$bld/fuzz/artifacts"
        cp "$work/$t-"crash-* "$work/$t-"leak-* "$work/$t-"timeout-* "$bld/fuzz/artifacts/" 2>/dev/null
        echo "FAIL $t: fuzzing found a failure (input kept in $bld/fuzz/artifacts)" >>"$res"
    fi
}
# Targets run FUZZ_SMOKE_JOBS at a time (default: the CPU count).
jobs_max=${FUZZ_SMOKE_JOBS:-$(nproc)}
for t in $targets; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
    smoke_one "$t" &
done
wait
for t in $targets; do
    cat "$work/$t.result"
    pass=$((pass + $(grep -c '^PASS ' "$work/$t.result")))
    fail=$((fail + $(grep -c '^FAIL ' "$work/$t.result")))
done
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
