#!/usr/bin/env bash
# libsnap's files call each other without cycles (docs/design.md, "Who may
# call whom"): for every pair of libsnap objects, A depends on B when A
# uses a symbol B defines; that graph must have no loop, and the operations
# (create, revert, delete, discard, list/info) must not call one another.
# Only libsnap/*.c count: the objects of today's sources, not stale ones
# left in the build directory, and not the tests or tools.
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${XLSNAP_BUILDDIR:?}
. "$top/tests/lib/th.sh"
plan 4

# edges OBJ...: "A B" lines, A uses a global symbol B defines (A != B).
edges() {
    local o
    for o in "$@"; do
        nm --defined-only -g "$o" | awk -v f="$(basename "$o" .o)" 'NF == 3 {print "D", f, $3}'
        nm -u "$o" | awk -v f="$(basename "$o" .o)" '{print "U", f, $2}'
    done | awk '$1 == "D" {def[$3] = $2; next}
                {use[$2 " " $3] = 1}
                END {for (k in use) {split(k, a, " ");
                     if ((a[2] in def) && def[a[2]] != a[1]) print a[1], def[a[2]]}}' | sort -u
}

# loop_in: the files on loops of the "A B" edges on stdin (tsort names
# them), one line, or nothing.
loop_in() {
    tsort 2>&1 >/dev/null | sed -n 's/^tsort: //p' | grep -v 'input contains a loop' |
        sort -u | tr '\n' ' ' | sed 's/ $//'
}

objs=()
missing=""
for c in "$top"/libsnap/*.c; do
    o="$bld/libsnap/$(basename "$c" .c).o"
    if [ -f "$o" ]; then objs+=("$o"); else missing+=" $o"; fi
done
graph=$(edges "${objs[@]}")
if [ -z "$missing" ] && [ "$(echo "$graph" | wc -l)" -gt 50 ]; then
    ok "every libsnap source has its object (${#objs[@]}), $(echo "$graph" | wc -l) calls between them"
else
    bad "objects of libsnap" "missing:${missing:- none}; $(echo "$graph" | grep -c .) edges"
fi

# The check itself must see a loop when there is one.
selftest=$(printf 'a b\nb c\nc a\nc d\n' | loop_in)
if [ -n "$selftest" ]; then
    ok "the loop finder finds a planted loop ($selftest)"
else
    bad "the loop finder" "found no loop in a -> b -> c -> a"
fi

loop=$(echo "$graph" | loop_in)
if [ -z "$loop" ]; then
    ok "no cycle between libsnap's files"
else
    bad "a cycle between libsnap's files" "$loop"
    echo "$graph" | awk -v on=" $loop " 'index(on, " " $1 " ") && index(on, " " $2 " ") {
        print "    " $1 " -> " $2}'
fi

ops='^(snap_create|snap_revert|snap_delete|snap_discard|snap_records)$'
cross=$(echo "$graph" | awk -v ops="$ops" '$1 ~ ops && $2 ~ ops {print "    " $1 " -> " $2}')
if [ -z "$cross" ]; then
    ok "no operation calls another"
else
    bad "operations calling each other" "$(echo; echo "$cross")"
fi
finish
