#!/usr/bin/env bash
# make mutants: do the tests catch the product breaking? Applies each product
# mutation below, one at a time, to a temporary git worktree of HEAD (the
# tree you work in is never touched: commit what you want measured), builds
# it, runs ONLY the tests named for that mutation, and reports each mutation
# caught (a named test failed) or SURVIVED. Exits non-zero when a mutation
# survives, does not apply (the code it names moved: update the list), or
# does not build, or when a named test already fails unmutated (baseline).
#
#   tools/mutants.sh [--list] [NAME...]     default: every mutation
#   MUTANTS_BASELINE=0   skip the unmutated run of the named tests
#   MUTANTS_KEEP=1       keep the worktree (its path is printed)
#
# Guest tests run under flock /tmp/xlsnap-guest.lock (one guest test on the
# machine at a time); builds use make -j2. Results also go to
# build/mutants/results.txt.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
lock=/tmp/xlsnap-guest.lock

# mutation NAME FILE FUNCTION-REGEX SED-SUBSTITUTION TESTS [EXPECTED]
# The substitution (sed s|||, "|"-delimited) is applied only between the line
# matching FUNCTION-REGEX and the next line "}" (the function's end), and must
# change exactly one line. TESTS: "unit:NAME guest:NAME script:PATH ...".
# EXPECTED, when set, says why the mutation is known to survive for now.
names=() files=() funcs=() substs=() tests=() expects=()
mutation() {
    names+=("$1") files+=("$2") funcs+=("$3") substs+=("$4") tests+=("$5") expects+=("${6:-}")
}

mutation no-freeze libsnap/snap_quiesce.c '^int snap_quiesce_freeze(' \
    's|rc = snap_agent_freeze(q->ag, NULL, 0, q->freeze_timeout_ms, RECOVERY_MS, &res, err);|rc = 0; res.frozen = 1; /* MUTANT: no freeze */|' \
    "guest:test_create"
mutation no-thaw libsnap/snap_quiesce.c '^int snap_quiesce_thaw(' \
    's|int rc = snap_agent_thaw(q->ag, THAW_TIMEOUT_MS, RECOVERY_MS, &ar, err);|int rc = 0; (void)ar; /* MUTANT: no thaw */|' \
    "guest:test_create"
mutation no-xenstore-switch libsnap/snap_switch.c '^int snap_switch_disks(' \
    's|rc = snap_xs_disks_set_params(xs, ref->domid, xc, n, NULL, err);|rc = 0; /* MUTANT: xenstore left on the old images */|' \
    "guest:test_create"
mutation no-merge-on-delete libsnap/snap_delete_steps.c '^static int merge(' \
    's|rc = q ? merge_live(x, q, depth, md, err)|rc = 1 ? 0 /* MUTANT: no merge */ : q ? merge_live(x, q, depth, md, err)|' \
    "guest:test_delete"
# Caught today only by a knock-on effect (test_delete_internal_running's delete
# fails on the chain left behind); test_delete_active_external itself passes
# under it until it checks the merged base (issue 23, item 3).
mutation no-active-merge libsnap/snap_delete_steps.c '^static int merge_live(' \
    's|    return snap_qmp_commit_active(x->qmp, snap_qmp_disk_target(q), q->chain\[1\].node_name,|    return 0; /* MUTANT: the active layer is not merged */ (void)snap_qmp_commit_active(x->qmp, snap_qmp_disk_target(q), q->chain[1].node_name,|' \
    "guest:test_delete"
mutation no-file-fsync libsnap/snap_meta_store.c '^int snap_meta_store_write(' \
    's|    else if (fsync(fd) < 0)|    else if (0) /* MUTANT: no fsync of the file */|' \
    "unit:test_durability"
mutation no-dir-fsync libsnap/snap_meta_store.c '^int snap_meta_store_write(' \
    's|    if (fsync(st->dirfd) < 0)|    if (0) /* MUTANT: no fsync of the directory */|' \
    "unit:test_durability"
mutation recovery-refuses libsnap/snap_recover.c '^int snap_recover_journal(' \
    's|    snap_log(ctx->lg, XTL_NOTICE, "domain %s: recovering the interrupted|    snap_journal_dispose(\&j); return snap_err_set(err, SNAP_ERROR_BUSY, "domain %s: the journal of an interrupted run is in the way (MUTANT: recovery refused)", s->dom.ref.name); &|' \
    "script:tests/scripts/hostile-cli.sh"

if [ "${1:-}" = --list ]; then
    for i in "${!names[@]}"; do
        printf '%-20s %-28s %s%s\n' "${names[$i]}" "${files[$i]}" "${tests[$i]}" \
            "${expects[$i]:+  (expected to survive: ${expects[$i]})}"
    done
    exit 0
fi
selected=()
for want in "$@"; do
    found=""
    for i in "${!names[@]}"; do [ "${names[$i]}" = "$want" ] && selected+=("$i") found=1; done
    [ -n "$found" ] || { echo "mutants: no mutation named $want (see --list)" >&2; exit 2; }
done
[ ${#selected[@]} -gt 0 ] || selected=("${!names[@]}")

out=$top/build/mutants
mkdir -p "$out"
results=$out/results.txt
: >"$results"
: >"$out/tests.log"
wt=$(mktemp -d /tmp/xlsnap-mutants.XXXXXX)
cleanup() {
    if [ -n "${MUTANTS_KEEP:-}" ]; then
        echo "mutants: worktree kept in $wt"
    else
        git -C "$top" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
    fi
}
trap cleanup EXIT
git -C "$top" worktree add --detach "$wt" HEAD >/dev/null 2>&1 ||
    { echo "mutants: git worktree add failed" >&2; exit 1; }
echo "mutants: worktree of $(git -C "$wt" rev-parse --short HEAD) in $wt"
say() { echo "$*" | tee -a "$results"; }

build() { make -C "$wt" -j2 all >"$out/build.log" 2>&1; }

# run_tests SPECS: 0 when every named test passes.
run_tests() {
    local spec kind name rc=0
    for spec in $1; do
        kind=${spec%%:*} name=${spec#*:}
        case $kind in
        unit) "$wt/tests/run" --plain "$wt/build" --unit "$name" ;;
        guest) flock "$lock" "$wt/tests/run" --plain "$wt/build" --guest "$name" ;;
        script) "$wt/tests/run" --plain "$wt/build" --scripts "$name" ;;
        *) echo "mutants: bad test spec $spec" >&2; return 2 ;;
        esac >>"$out/tests.log" 2>&1 || rc=1
    done
    return $rc
}

status=0
if ! build; then
    tail -n 20 "$out/build.log"
    say "BROKEN  the unmutated tree does not build"
    exit 1
fi
if [ "${MUTANTS_BASELINE:-1}" != 0 ]; then
    specs=$(for i in "${selected[@]}"; do echo "${tests[$i]}"; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
    echo "mutants: baseline (unmutated): $specs"
    if ! run_tests "$specs"; then
        say "BROKEN  the named tests fail without any mutation (see $out/tests.log)"
        exit 1
    fi
fi

for i in "${selected[@]}"; do
    name=${names[$i]} file=${files[$i]}
    sed -i "/${funcs[$i]}/,/^}/ ${substs[$i]}" "$wt/$file"
    changed=$(git -C "$wt" diff --numstat -- "$file" | awk '{print $1 "/" $2}')
    if [ "$changed" != 1/1 ]; then
        say "NOAPPLY $name: expected one changed line in $file, got '${changed:-none}' (did ${funcs[$i]} move?)"
        git -C "$wt" checkout -q -- "$file"
        status=1
        continue
    fi
    git -C "$wt" diff -U0 -- "$file" | grep '^[-+] ' >"$out/$name.diff"
    echo "==== $name" >>"$out/tests.log"
    start=$SECONDS
    if ! build; then
        say "BROKEN  $name: the mutated tree does not build (see $out/build.log)"
        status=1
    elif run_tests "${tests[$i]}"; then
        if [ -n "${expects[$i]}" ]; then
            say "SURVIVED $name (${tests[$i]}; expected for now: ${expects[$i]}) $((SECONDS - start))s"
        else
            say "SURVIVED $name (${tests[$i]}) $((SECONDS - start))s"
        fi
        status=1
    else
        say "caught   $name by ${tests[$i]} $((SECONDS - start))s"
        [ -n "${expects[$i]}" ] && say "         ($name was marked expected to survive: drop the mark)"
    fi
    git -C "$wt" checkout -q -- "$file"
done
echo "mutants: $(grep -c '^caught' "$results") caught, $(grep -c '^SURVIVED' "$results") survived," \
    "$(grep -c -E '^(NOAPPLY|BROKEN)' "$results") broken (details: $out)"
exit $status
