#!/usr/bin/env bash
# Installs what the real-kernel rig needs and unpacks Debian's 6.1 and 6.12 kernels into the cache, without
# installing them on the host. Idempotent: a second run checks and does nothing. Any missing package or file is a
# non-zero exit with the reason; nothing is skipped silently.
#
#   conformance/setup.sh            host packages + both kernels
#   conformance/setup.sh 6.12       host packages + one kernel
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HOST_PACKAGES="qemu-system-x86 busybox-static kmod cpio xz-utils zstd gcc libc6-dev"

# The modules every guest loads; setup refuses a kernel that lacks one (as a module or built in).
REQUIRED_MODULES="vfio vfio_iommu_type1 vfio_pci vfio_pci_core irqbypass 9p 9pnet_virtio"

# A file, not a variable: the package name is resolved in command substitutions (subshells).
APT_UPDATED="${TMPDIR:-/tmp}/conformance-apt-updated.$$"
trap 'rm -f "$APT_UPDATED"' EXIT
apt_update_once() {
    if [ ! -e "$APT_UPDATED" ]; then
        note "apt-get update"
        apt-get update -qq || die "apt-get update failed"
        touch "$APT_UPDATED"
    fi
}

install_host_packages() {
    local missing=() p
    for p in $HOST_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "host packages missing (${missing[*]}); run setup.sh as root or: sudo apt-get install --no-install-recommends ${missing[*]}"
    apt_update_once
    note "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    for p in "${missing[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || die "package $p did not install"
    done
}

# Prints the versioned image package KERNEL resolves to (the pin, or the meta-package's dependency).
resolve_image_package() {
    local kernel=$1 pin meta dep
    pin=$(kernel_pin_variable "$kernel")
    if [ -n "${!pin:-}" ]; then
        echo "${!pin}"
        return
    fi
    meta=$(kernel_meta_package "$kernel")
    dep=$(apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    if [ -z "$dep" ]; then
        apt_update_once
        dep=$(apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    fi
    [ -n "$dep" ] || die "kernel $kernel: apt knows no package $meta (6.12 needs the bookworm-security suite in the apt sources)"
    echo "$dep"
}

candidate_version() {
    apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }'
}

unpack_kernel() {
    local kernel=$1 package version dir stage release image m
    package=$(resolve_image_package "$kernel")
    version=$(candidate_version "$package")
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        apt_update_once
        version=$(candidate_version "$package")
    fi
    [ -n "$version" ] && [ "$version" != "(none)" ] || die "kernel $kernel: no installable version of $package"
    dir=$(kernel_dir "$kernel")
    if [ "$(cat "$dir/package" 2>/dev/null)" = "$package=$version" ] && [ -s "$dir/release" ] \
        && [ -f "$dir/root/boot/vmlinuz-$(cat "$dir/release")" ]; then
        [ -s "$dir/vmlinux" ] || extract_vmlinux "$kernel" "$dir/root/boot/vmlinuz-$(cat "$dir/release")" "$dir/vmlinux"
        note "kernel $kernel: $package $version already unpacked"
        return 0
    fi
    note "kernel $kernel: downloading $package $version"
    stage="$CACHE_DIR/kernels/.stage-$kernel"
    rm -rf "$stage"
    mkdir -p "$stage/deb" "$stage/root"
    # apt's sandbox user cannot write into a root-owned cache; the download is verified by apt either way.
    if ! (cd "$stage/deb" && apt-get download -q "$package=$version" >/dev/null 2>"$stage/download.log"); then
        # A stale package index names a version the mirror no longer has: refresh once and resolve again.
        [ ! -e "$APT_UPDATED" ] || { cat "$stage/download.log" >&2; die "kernel $kernel: apt-get download $package=$version failed"; }
        apt_update_once
        rm -rf "$stage"
        unpack_kernel "$kernel"
        return
    fi
    dpkg-deb -x "$stage"/deb/*.deb "$stage/root" || die "kernel $kernel: dpkg-deb -x failed"
    release=$(ls "$stage/root/lib/modules" 2>/dev/null | head -n1)
    [ -n "$release" ] || die "kernel $kernel: $package has no lib/modules/RELEASE"
    image="$stage/root/boot/vmlinuz-$release"
    [ -f "$image" ] || die "kernel $kernel: $package has no boot/vmlinuz-$release"
    # Debian's image packages ship no modules.dep (the postinst makes it): make it here, against the unpacked tree.
    depmod -b "$stage/root" "$release" || die "kernel $kernel: depmod failed"
    for m in $REQUIRED_MODULES; do
        module_present "$stage/root/lib/modules/$release" "$m" || die "kernel $kernel ($release): module $m is neither built in nor shipped"
    done
    rm -rf "$stage/deb" "$stage/download.log"
    extract_vmlinux "$kernel" "$image" "$stage/vmlinux"
    echo "$release" >"$stage/release"
    echo "$package=$version" >"$stage/package"
    rm -rf "$dir"
    mv "$stage" "$dir"
    note "kernel $kernel: $release unpacked in $dir"
}

# Writes the uncompressed kernel (an ELF vmlinux) out of a bzImage. QEMU boots it directly through its PVH entry
# (Debian builds with CONFIG_PVH), so the guest does not decompress itself under TCG: 6.1's XZ image took over a
# minute of a loaded host's time that way. The payload's place is in the boot protocol's setup header (2.08+):
# setup_sects at 0x1f1, payload_offset at 0x248 and payload_length at 0x24c, counted from the protected-mode
# code that follows the (setup_sects + 1) setup sectors; its last 4 bytes are the uncompressed size.
extract_vmlinux() {
    local kernel=$1 image=$2 out=$3 sects offset length start magic
    sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$image" | tr -d ' ')
    offset=$(od -An -tu4 -j $((0x248)) -N4 "$image" | tr -d ' ')
    length=$(od -An -tu4 -j $((0x24c)) -N4 "$image" | tr -d ' ')
    [ -n "$sects" ] && [ -n "$offset" ] && [ -n "$length" ] && [ "$length" -gt 4 ] \
        || die "kernel $kernel: $image has no bzImage payload fields"
    start=$(((sects + 1) * 512 + offset))
    magic=$(od -An -tx1 -j "$start" -N4 "$image" | tr -d ' ')
    case "$magic" in
        fd377a58) decompress="xz -dc --single-stream" ;;
        28b52ffd) decompress="zstd -qdc" ;;
        1f8b*) decompress="gzip -dc" ;;
        *) die "kernel $kernel: $image: payload compressed in an unknown format (magic $magic)" ;;
    esac
    command -v "${decompress%% *}" >/dev/null || die "kernel $kernel: ${decompress%% *} is needed to unpack $image"
    dd if="$image" bs=64K iflag=skip_bytes,count_bytes skip="$start" count=$((length - 4)) status=none | $decompress >"$out.tmp" \
        || die "kernel $kernel: cannot decompress the payload of $image"
    [ "$(od -An -tx1 -N4 "$out.tmp" | tr -d ' ')" = 7f454c46 ] || die "kernel $kernel: the payload of $image is not an ELF"
    mv "$out.tmp" "$out"
}

# True when module NAME (dashes and underscores alike) is in modules.dep or modules.builtin of MODDIR.
module_present() {
    local moddir=$1 name=${2//-/_} re
    re="/${name//_/[-_]}\.ko(\.(xz|zst|gz))?"
    grep -Eq "${re}:" "$moddir/modules.dep" || grep -Eq "${re}\$" "$moddir/modules.builtin"
}

main() {
    local kernels=${*:-$RIG_KERNELS} k
    for k in $kernels; do check_kernel_name "$k"; done
    install_host_packages
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not on PATH after installing qemu-system-x86"
    [ -x /bin/busybox ] || die "/bin/busybox (busybox-static) is missing"
    mkdir -p "$CACHE_DIR/kernels"
    for k in $kernels; do unpack_kernel "$k"; done
    note "setup done (cache: $CACHE_DIR)"
}

main "$@"
