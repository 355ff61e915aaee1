#!/bin/sh
# Run in the guest (chrooted into the host's /) by smoke.sh: one line per device bound to vfio-pci, as sysfs sees
# it, then `vfiolab probe`, so the check can hold the probe's groups against the kernel's.
#   probe-report.sh VFIOLAB
for dev in /sys/bus/pci/drivers/vfio-pci/0000:*; do
    [ -e "$dev" ] || continue
    echo "bound ${dev##*/} $(sed 's/^0x//' "$dev/vendor"):$(sed 's/^0x//' "$dev/device") group $(basename "$(readlink "$dev/iommu_group")")"
done
exec "$1" probe
