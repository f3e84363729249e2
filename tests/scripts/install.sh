#!/usr/bin/env bash
# make install: into a temp DESTDIR with PREFIX=/usr, every file lands where it
# should (programs, libsnap.so with its soname, libsnap.a, header, pkg-config
# file, man pages, bash completion); a tiny program builds against the
# INSTALLED header and libsnap.pc (shared and static) and runs against the
# installed xlsnap-xenstored; the installed completion completes.
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${XLSNAP_BUILDDIR:-$top/build}
tmp=$(mktemp -d)
xs_pid=""
cleanup() {
    [ -n "$xs_pid" ] && kill "$xs_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/lib/th.sh"
plan 36

dest=$tmp/dest
unset MAKEFLAGS MFLAGS MAKELEVEL
installed() { make -s -C "$top" BUILD="$build" PREFIX=/usr DESTDIR="$dest" install >"$tmp/install.log" 2>&1; }
check "make install PREFIX=/usr DESTDIR=..." installed
[ -x "$dest/usr/bin/xlsnap" ] || { tail -n 20 "$tmp/install.log"; finish; }
u=$dest/usr
for f in bin/xlsnap bin/xlsim bin/xlsnap-xenstored libexec/xlsnap/xlsnap-freeze-watchdog; do
    check "$f is an executable" test -x "$u/$f"
done
for f in lib/libsnap.a lib/libsnap.so.1.0.0 include/libsnap.h lib/pkgconfig/libsnap.pc \
    share/man/man1/xlsnap.1 share/man/man1/xl-snapshot.1 share/man/man3/libsnap.3 share/man/man5/xlsnap-snapshot.5 \
    share/bash-completion/completions/xlsnap; do
    check "$f installed" test -s "$u/$f"
done
check "libsnap.so.1 -> libsnap.so.1.0.0" test "$(readlink "$u/lib/libsnap.so.1")" = libsnap.so.1.0.0
check "libsnap.so -> libsnap.so.1.0.0" test "$(readlink "$u/lib/libsnap.so")" = libsnap.so.1.0.0
check "libsnap.so's soname is libsnap.so.1" \
    grep -q 'SONAME.*\[libsnap.so.1\]' <(readelf -d "$u/lib/libsnap.so.1.0.0")
check "libsnap.pc names the real prefix, not DESTDIR" \
    bash -c '! grep -q "$1" "$2" && grep -q "^libdir=/usr/lib" "$2"' _ "$dest" "$u/lib/pkgconfig/libsnap.pc"
check "installed xlsnap runs (help)" grep -q snapshot-create <("$u/bin/xlsnap" help)
for f in lib/libxlsnapcmd.a include/xlsnap_cmd.h include/xlsnap_cmdtable.h \
    lib/pkgconfig/xlsnapcmd.pc; do
    check "$f installed (for xl's tools/xl/Makefile)" test -s "$u/$f"
done

# The API caller, against the installed header and pkg-config file only.
export PKG_CONFIG_PATH=$u/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
src=$top/tests/install/api_caller.c
flags=(-std=c11 -Wall -Wextra -Werror -Wstrict-prototypes)
check "pkg-config knows libsnap 1.0.0" test "$(pkg-config --modversion libsnap)" = 1.0.0
check "pkg-config xlsnapcmd: its headers, -lxlsnapcmd then libsnap" \
    grep -q -- "^-I$u/include .*-L$u/lib -lxlsnapcmd -lsnap *$" <(pkg-config --cflags --libs xlsnapcmd)
check "pkg-config points into DESTDIR" grep -q -- "-I$u/include" <(pkg-config --cflags libsnap)
# shellcheck disable=SC2046 # pkg-config output is a list of flags
check "api_caller builds against the installed libsnap.so" \
    cc "${flags[@]}" -o "$tmp/api_shared" "$src" $(pkg-config --cflags --libs libsnap)
# shellcheck disable=SC2046
check "api_caller builds statically against libsnap.a (Requires.private)" \
    cc "${flags[@]}" -o "$tmp/api_static" "$src" $(pkg-config --cflags libsnap) \
    "$u/lib/libsnap.a" $(pkg-config --static --libs-only-l libsnap | sed 's/-lsnap//') -lpthread
check "api_caller uses the installed libsnap.so.1" \
    grep -q "$u/lib/libsnap.so.1" <(LD_LIBRARY_PATH=$u/lib ldd "$tmp/api_shared")

export XENSTORED_PATH=$tmp/xs.sock XLSNAP_PLATFORM=sim XLSNAP_STATEDIR=$tmp/state \
    XLSNAP_XEN_STATEDIR=$tmp/xen XLSNAP_XEN_RUNDIR=$tmp/run
"$u/bin/xlsnap-xenstored" --foreground --socket "$XENSTORED_PATH" >"$tmp/xs.log" 2>&1 &
xs_pid=$!
for _ in $(seq 50); do
    xenstore-list / >/dev/null 2>&1 && break
    sleep 0.1
done
check "installed xlsnap-xenstored serves xenstore" grep -qx 0 <(xenstore-list /local/domain)
for kind in shared static; do
    LD_LIBRARY_PATH=$u/lib "$tmp/api_$kind" no-such-domain >"$tmp/api.out" 2>&1
    rc=$?
    sed 's/^/# /' "$tmp/api.out"
    check "api_caller ($kind): missing domain is SNAP_ERROR_NOTFOUND with a message" test $rc -eq 0
done

# The installed completion, with the private xenstore holding one domain.
xenstore-write /local/domain/7/name web7 /local/domain/0/name Domain-0
complete_words() { # complete_words WORD... : prints the completions of the last word
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _xlsnap
             printf "%s\n" "${COMPREPLY[@]}"' _ "$u/share/bash-completion/completions/xlsnap" "$@"
}
check "completion: subcommands" grep -qx snapshot-revert <(complete_words xlsnap snapshot-r)
check "completion: options" grep -qx -- --children-only <(complete_words xlsnap snapshot-delete --ch)
check "completion: quiesce policies" grep -qx best-effort <(complete_words xlsnap snapshot-create -q b)
check "completion: domain names from xenstore" \
    test "$(complete_words xlsnap -v snapshot-list '')" = web7
finish
