#!/usr/bin/env bash
# Installs what xlsnap needs to build, test and demo on Debian 12, with
# apt-get, only when something is missing (quiet and quick when all is present).
set -euo pipefail
pkgs=(
    build-essential pkg-config
    dpkg-dev patch                  # make xl: apt-get source, dpkg-source, the series
    libxen-dev libyajl-dev          # libxenlight, libxenstore, libxlutil, yajl
    xen-utils-4.17 xenstore-utils   # Xen's test-xenstore, xenstore-read & co.
    qemu-system-x86 qemu-utils      # guests, qemu-img
    qemu-guest-agent                # qemu-ga for the test guest (never run as a host service)
    e2fsprogs cpio xz-utils         # test guest image (busybox comes from its .deb)
    clang libclang-rt-14-dev        # fuzzers, sanitizers
    groff-base mandoc               # man page lint
    valgrind
    debootstrap                     # dom0 of the nested Xen testbed (make check-xen)
)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages and not root; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
