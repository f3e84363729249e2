#!/usr/bin/env bash
# docs: every man page in docs/ passes `mandoc -T lint` (warnings and up) and
# `groff -ww -z`, renders with `man -l` without a word on stderr, and xlsnap(1)
# documents every subcommand and long option the command's own table has.
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${XLSNAP_BUILDDIR:-$top/build}
. "$top/tests/lib/th.sh"
quiet() { local out; out=$("$@" 2>&1) && [ -z "$out" ] || { echo "$out" | head -n 20; return 1; }; }
renders() { local err; err=$(MANWIDTH=80 man -l "$1" 2>&1 >/dev/null) && [ -z "$err" ] || { echo "$err"; return 1; }; }

pages=("$top"/docs/*.[1-8])
# Per page: lint, groff (and man -l where installed); then the help listing and
# at least one check per subcommand (create, list, info, revert, delete).
plan_at_least $((1 + 2 * ${#pages[@]} + 1 + 5))
check "man pages exist (xlsnap.1, xl-snapshot.1, libsnap.3, xlsnap-snapshot.5)" \
    test -f "$top/docs/xlsnap.1" -a -f "$top/docs/xl-snapshot.1" -a -f "$top/docs/libsnap.3" -a -f "$top/docs/xlsnap-snapshot.5"
for p in "${pages[@]}"; do
    n=$(basename "$p")
    check "$n: mandoc -T lint -W warning" quiet mandoc -T lint -W warning "$p"
    check "$n: groff -ww -z" quiet groff -ww -z -man "$p"
    if command -v man >/dev/null; then check "$n: man -l renders quietly" renders "$p"; fi
done

# xlsnap(1) and xl-snapshot(1) (the same commands in the patched xl) against
# the command itself: `xlsnap help` lists the subcommands, `xlsnap help CMD`
# their options.
if [ -x "$build/xlsnap" ]; then
    cmds=$("$build/xlsnap" help | awk '/^ snapshot-/ { print $1 }')
    check "xlsnap help lists subcommands" test -n "$cmds"
    for man in xlsnap.1 xl-snapshot.1; do
        page=$(MANWIDTH=200 man -l "$top/docs/$man" 2>/dev/null | sed 's/\x08.//g')
        for c in $cmds; do
            check "$man documents $c" grep -q "^   $c" <<<"$page"
            for o in $("$build/xlsnap" help "$c" | grep -oE -- '--[a-z-]+' | sort -u); do
                check "$man documents $c $o" grep -q -- "$o" <<<"$page"
            done
        done
    done
    # The patched xl's own xl(1) section (patch 0005 of the series).
    pod=$(cat "$top"/xl-cmd/xen-4.17/0005-*.patch)
    for c in $cmds; do
        check "xl.1 patch documents $c" grep -q -- "=item B<$c>" <<<"$pod"
        for o in $("$build/xlsnap" help "$c" | grep -oE -- '--[a-z-]+' | sort -u); do
            check "xl.1 patch documents $c $o" grep -q -- "B<$o" <<<"$pod"
        done
    done
else
    fail_outside "$build/xlsnap not built: option coverage not checked"
fi
finish
