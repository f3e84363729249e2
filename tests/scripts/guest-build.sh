#!/usr/bin/env bash
# tools/guest: build-guest's cache key is portable, a cached run is immediate,
# two builds of the initramfs from scratch are byte-identical, a change to the builder makes a
# new guest; mkdisk makes a clean ext4 in a qcow2. Works on a private copy of
# the builder and private caches, seeded with the packages the real cache
# already downloaded (so nothing is fetched twice).
set -u
top=${XLSNAP_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$top/tests/lib/th.sh"
plan 11
same_file() { cmp -s "$1" "$2"; }
differ() { ! cmp -s "$1" "$2"; }

real=$(bash "$top/tools/guest/build-guest" | tail -n 1)
check "build-guest gives a guest" test -s "$real/vmlinux" -a -s "$real/initrd.img"
[ -s "$real/vmlinux" ] || finish
real_cache=$(dirname "$real")

cp -r "$top/tools/guest" "$tmp/builder"
# seed CACHE: the real cache's downloads, package resolutions and staged
# kernels (unpacking the kernel is most of a build; the boot tests cover it).
seed() {
    mkdir -p "$1/guest/debs" "$1/guest/resolved" "$1/guest/kernel"
    ln -s "$real_cache"/debs/*.deb "$1/guest/debs/"
    ln -s "$real_cache"/kernel/* "$1/guest/kernel/"
    cp "$real_cache"/resolved/* "$1/guest/resolved/"
}
build() { XLSNAP_CACHE=$1 bash "$tmp/builder/build-guest" 2>"$tmp/build.err" | tail -n 1; }

seed "$tmp/c1"
one=$(build "$tmp/c1")
check "the key depends on content, not on where the builder lives" \
    test "$(basename "$one")" = "$(basename "$real")"
start=$(date +%s%N)
again=$(build "$tmp/c1")
took_ms=$((($(date +%s%N) - start) / 1000000))
echo "# cached run: $took_ms ms"
check "a cached run returns the same guest" test "$again" = "$one"
check "a cached run takes under a second" test "$took_ms" -lt 1000

seed "$tmp/c2"
two=$(build "$tmp/c2")
check "initrd.img is reproducible" same_file "$one/initrd.img" "$two/initrd.img"

echo "# a comment" >>"$tmp/builder/init"
changed=$(build "$tmp/c1")
check "a changed builder makes a new guest" test "$changed" != "$one"
check "... with a new initrd" differ "$changed/initrd.img" "$one/initrd.img"
check "... and the same kernel" same_file "$changed/vmlinux" "$one/vmlinux"

bash "$top/tools/guest/mkdisk" "$tmp/d.qcow2" 16
check "mkdisk writes a qcow2" bash -c "qemu-img info '$tmp/d.qcow2' | grep -q 'file format: qcow2'"
qemu-img convert -O raw "$tmp/d.qcow2" "$tmp/d.raw"
check "mkdisk's ext4 is clean" bash -c "dumpe2fs -h '$tmp/d.raw' 2>/dev/null | grep -q '^Filesystem state: *clean$'"
check "mkdisk refuses a bad size" bash -c "! bash '$top/tools/guest/mkdisk' '$tmp/e.qcow2' 12x 2>/dev/null"
finish
