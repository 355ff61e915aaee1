#!/usr/bin/env bash
# Installs what the header conformance test (tests/VfioLab.Tests/Abi/HeaderConformanceTests.cs) needs:
# a C compiler (`cc`), the C library headers, and the kernel uAPI headers that provide <linux/vfio.h>;
# and what the Native AOT build of the vfiolab tool (`dotnet pack`) links with: clang or gcc, and objcopy
# to strip the binary's symbols (binutils); libbsd-dev, whose <bsd/sys/tree.h> red-black tree is the C peer the
# benchmarks compile (bench/VfioLab.Bench/native/rbpeer.c); Debian's chromium, the headless browser the HTML report's
# Playwright test (tests/VfioLab.Report.Tests) drives (no browser is downloaded); then the real-kernel rig
# (conformance/setup.sh: QEMU, busybox and
# Debian's 6.1 and 6.12 kernels unpacked into conformance/.cache, never installed on this host).
# Idempotent: installs nothing, and does not touch apt, when everything is already present.
set -euo pipefail

missing=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if ! command -v cc >/dev/null 2>&1 || ! { command -v clang >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; }; then
    installed gcc || missing+=(gcc)
fi
# make: tests/VfioLab.Preload.Tests builds native/preload (libvfiolab-preload.so, the example clients) with it.
if ! command -v make >/dev/null 2>&1; then
    installed make || missing+=(make)
fi
if ! command -v objcopy >/dev/null 2>&1; then
    installed binutils || missing+=(binutils)
fi
installed libc6-dev || missing+=(libc6-dev)
installed linux-libc-dev || missing+=(linux-libc-dev)
installed libbsd-dev || missing+=(libbsd-dev)
[ -x /usr/bin/chromium ] || missing+=(chromium)

rig() { bash "$(dirname "$0")/../conformance/setup.sh"; }

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-prereqs: cc, make, a native linker (clang or gcc), objcopy, libc6-dev, linux-libc-dev, libbsd-dev and chromium are present."
    rig
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-prereqs: missing ${missing[*]} and apt-get is not available; install them with the system's package manager." >&2
    exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

echo "install-prereqs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

command -v cc >/dev/null 2>&1 || { echo "install-prereqs: cc still not found after installing gcc" >&2; exit 1; }
command -v objcopy >/dev/null 2>&1 || { echo "install-prereqs: objcopy still not found after installing binutils" >&2; exit 1; }
command -v make >/dev/null 2>&1 || { echo "install-prereqs: make still not found after installing it" >&2; exit 1; }
printf '#include <stdio.h>\n#include <linux/vfio.h>\n' | cc -E -x c - >/dev/null
printf '#include <bsd/sys/tree.h>\n' | cc -E -x c - >/dev/null
rig
echo "install-prereqs: done."
