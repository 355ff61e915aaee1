#!/usr/bin/env bash
# Builds the guest's initramfs for one unpacked kernel: busybox-static, guest/init as /init, and the module closure
# of VFIO (vfio, vfio_iommu_type1, vfio-pci with vfio_pci_core, irqbypass, ...), the 9p-over-virtio transport where
# the kernel has it as modules, and virtio-iommu where the kernel ships it (6.12). Modules are decompressed (busybox
# insmod reads plain .ko) and listed in load order in /lib/modules/order, each line "NAME FILE".
#
#   conformance/build-initramfs.sh 6.1|6.12      -> $CACHE_DIR/initramfs/KERNEL.cpio
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Loaded in this order, each after its dependencies. Transport first (the 9p share), then virtio-iommu (it must
# exist before vfio-pci binds a device behind it), then VFIO.
REQUIRED="virtio_pci 9pnet_virtio 9p vfio vfio_iommu_type1 vfio_pci"
OPTIONAL="virtio_iommu"

[ $# -eq 1 ] || die "usage: build-initramfs.sh 6.1|6.12"
KERNEL=$1
check_kernel_name "$KERNEL"
load_kernel "$KERNEL"
MODDIR="$KERNEL_ROOT/lib/modules/$KERNEL_RELEASE"
[ -s "$MODDIR/modules.dep" ] || die "kernel $KERNEL: no modules.dep in $MODDIR: run conformance/setup.sh"
[ -x /bin/busybox ] || die "/bin/busybox is missing: run conformance/setup.sh (busybox-static)"
command -v cpio >/dev/null || die "cpio is missing: run conformance/setup.sh"

# name -> "path dep-path..." from modules.dep, names normalised to underscores as the kernel does.
declare -A DEPS
while IFS= read -r line; do
    path=${line%%:*}
    name=$(basename "$path")
    name=${name%%.ko*}
    DEPS[${name//-/_}]="$path ${line#*:}"
done <"$MODDIR/modules.dep"

builtin() {
    grep -Eq "/${1//_/[-_]}\.ko\$" "$MODDIR/modules.builtin"
}

declare -A SEEN
ORDER=()
# Post-order walk: a module's dependencies are listed before it.
visit() {
    local name=$1 entry dep depname
    [ -z "${SEEN[$name]:-}" ] || return 0
    SEEN[$name]=1
    entry=${DEPS[$name]}
    for dep in ${entry#* }; do
        depname=$(basename "$dep")
        depname=${depname%%.ko*}
        visit "${depname//-/_}"
    done
    ORDER+=("$name")
}

for m in $REQUIRED; do
    if [ -n "${DEPS[$m]:-}" ]; then
        visit "$m"
    elif ! builtin "$m"; then
        die "kernel $KERNEL ($KERNEL_RELEASE): module $m is neither built in nor shipped"
    fi
done
for m in $OPTIONAL; do
    if [ -n "${DEPS[$m]:-}" ]; then
        visit "$m"
    fi
done
# virtio_iommu goes before VFIO whatever the walk's order: move it right after the transport.
if [ -n "${SEEN[virtio_iommu]:-}" ]; then
    rest=()
    for m in "${ORDER[@]}"; do [ "$m" = virtio_iommu ] || rest+=("$m"); done
    ORDER=()
    for m in "${rest[@]}"; do
        [ "$m" = vfio ] && ORDER+=(virtio_iommu)
        ORDER+=("$m")
    done
fi

OUT="$CACHE_DIR/initramfs/$KERNEL.cpio"
mkdir -p "$(dirname "$OUT")"
STAGE=$(mktemp -d "$CACHE_DIR/initramfs/stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,proc,sys,dev,tmp,newroot,etc,lib/modules}
cp /bin/busybox "$STAGE/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$STAGE/bin/$applet"
done
install -m 0755 "$RIG_DIR/guest/init" "$STAGE/init"
echo "$KERNEL_RELEASE" >"$STAGE/etc/rig-kernel"
: >"$STAGE/lib/modules/order"
for m in "${ORDER[@]}"; do
    entry=${DEPS[$m]}
    src="$MODDIR/${entry%% *}"
    case "$src" in
        *.ko.xz) xz -dc "$src" >"$STAGE/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$src" >"$STAGE/lib/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$src" >"$STAGE/lib/modules/$m.ko" ;;
        *.ko) cp "$src" "$STAGE/lib/modules/$m.ko" ;;
        *) die "kernel $KERNEL: unexpected module file $src" ;;
    esac || die "kernel $KERNEL: cannot decompress $src"
    echo "$m $m.ko" >>"$STAGE/lib/modules/order"
done
# Uncompressed: a few MB, and the guest spends no time inflating it under TCG.
# Written under a name of its own and renamed into place, so two builds of one kernel (parallel boots on a fresh
# cache) never move each other's file: the last rename wins with a complete archive either way.
TMP_OUT=$(mktemp "$OUT.XXXXXX")
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$TMP_OUT" || { rm -f "$TMP_OUT"; die "cpio failed"; }
mv -f "$TMP_OUT" "$OUT"
note "initramfs for $KERNEL ($KERNEL_RELEASE): $OUT ($(du -h "$OUT" | cut -f1)); modules: ${ORDER[*]}"
