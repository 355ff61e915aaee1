# shellcheck shell=bash disable=SC2034 # sourced by the rig's scripts, which use what it sets
# Shared by the rig's scripts (sourced, not run): where things live and how a kernel name maps to Debian's packages.

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$RIG_DIR/.." && pwd)
# Everything downloaded or built lives here; RIG_CACHE moves it (a CI cache, a bigger disk).
CACHE_DIR=${RIG_CACHE:-$RIG_DIR/.cache}

# The kernels the rig knows: the name users type, and the Debian package that names the image to fetch.
# 6.1 is bookworm's own kernel (linux-image-amd64); 6.12 comes from bookworm-security (linux-image-6.12-amd64).
# Both are meta-packages; setup.sh resolves them to the versioned image package (linux-image-6.1.0-N-amd64, ...).
# RIG_KERNEL_PACKAGE_6_1 / RIG_KERNEL_PACKAGE_6_12 pin an exact image package instead.
RIG_KERNELS="6.1 6.12"

# An unexpected failure under `set -e` says where it happened instead of ending the script without a word.
set -o errtrace
trap 'echo "conformance: error: ${BASH_SOURCE[0]:-$0} line $LINENO: \"$BASH_COMMAND\" failed (status $?)" >&2' ERR

die() {
    echo "conformance: error: $*" >&2
    exit 1
}

note() {
    echo "conformance: $*" >&2
}

check_kernel_name() {
    case "$1" in
        6.1 | 6.12) ;;
        *) die "unknown kernel '$1' (known: $RIG_KERNELS)" ;;
    esac
}

kernel_meta_package() {
    case "$1" in
        6.1) echo linux-image-amd64 ;;
        6.12) echo linux-image-6.12-amd64 ;;
    esac
}

kernel_pin_variable() {
    echo "RIG_KERNEL_PACKAGE_${1//./_}"
}

# The unpacked kernel of KERNEL: root/ (the package's files), release (uname -r), package (name=version),
# vmlinux (the image's uncompressed kernel, booted through PVH).
kernel_dir() {
    echo "$CACHE_DIR/kernels/$1"
}

# Loads KERNEL's unpacked files into KERNEL_ROOT, KERNEL_RELEASE, KERNEL_IMAGE, or dies telling to run setup.sh.
load_kernel() {
    local dir
    dir=$(kernel_dir "$1")
    [ -s "$dir/release" ] && [ -d "$dir/root" ] || die "kernel $1 is not unpacked in $dir: run conformance/setup.sh"
    KERNEL_ROOT="$dir/root"
    KERNEL_RELEASE=$(cat "$dir/release")
    KERNEL_BZIMAGE="$KERNEL_ROOT/boot/vmlinuz-$KERNEL_RELEASE"
    KERNEL_VMLINUX="$dir/vmlinux"
    [ -f "$KERNEL_BZIMAGE" ] || die "kernel $1: $KERNEL_BZIMAGE is missing: run conformance/setup.sh"
    [ -s "$KERNEL_VMLINUX" ] || die "kernel $1: $KERNEL_VMLINUX is missing: run conformance/setup.sh"
}
