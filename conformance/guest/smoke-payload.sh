#!/bin/sh
# Run in the guest (chrooted into the host's /) by smoke.sh, one boot per kernel and IOMMU:
#   smoke-payload.sh VFIOLAB RIG_PAYLOAD
# Prints one line per device bound to vfio-pci as sysfs sees it ("bound ADDR VENDOR:DEVICE group N"), so the
# check can hold the probe's groups against the kernel's; then `vfiolab probe` and `rig-payload edu-dma`, each
# after a "== NAME" line and followed by "== NAME exit STATUS". Either may be an executable or a framework-dependent
# .dll, run with the host's dotnet.
for dev in /sys/bus/pci/drivers/vfio-pci/0000:*; do
    [ -e "$dev" ] || continue
    echo "bound ${dev##*/} $(sed 's/^0x//' "$dev/vendor"):$(sed 's/^0x//' "$dev/device") group $(basename "$(readlink "$dev/iommu_group")")"
done

run() {
    name=$1
    shift
    echo "== $name"
    case "$1" in
        *.dll) dotnet "$@" ;;
        *) "$@" ;;
    esac
    status=$?
    echo "== $name exit $status"
    return $status
}

run probe "$1" probe
probe=$?
run edu-dma "$2" edu-dma
dma=$?
[ $probe -eq 0 ] && [ $dma -eq 0 ]
