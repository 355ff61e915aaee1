#!/usr/bin/env bash
# shellcheck disable=SC2054 # the commas in QEMU's -device and -fsdev arguments are QEMU's, not array separators
# Boots one of Debian's kernels under QEMU (TCG, q35) with an emulated IOMMU and VFIO-bound test devices, runs
# COMMAND inside the guest (chrooted into the host's / shared read-only over 9p) and prints what it printed.
#
#   conformance/boot.sh --kernel 6.1|6.12 [--iommu intel|intel48|virtio] [--devices SPEC] [options] -- COMMAND...
#
# Exit status: COMMAND's own; 124 when the guest did not finish within --timeout; 125 when the rig failed (a bad
# option, a guest that did not boot or could not set up: the console log's tail is printed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    cat >&2 <<'EOF'
usage: conformance/boot.sh --kernel 6.1|6.12 [options] -- COMMAND [ARG...]

  --kernel 6.1|6.12     Debian's kernel to boot (unpacked by setup.sh)
  --iommu MODE          intel (VT-d, 39-bit IOVA; default), intel48 (VT-d, aw-bits=48), virtio (virtio-iommu, 6.12 only)
  --devices SPEC        comma-separated; default "edu":
                          edu        an edu device (1234:11e8) in a group of its own
                          e1000e     an e1000e NIC, own group     nvme   an NVMe controller, own group
                          shared:K+K+...  devices behind one pcie-pci-bridge, all in one group with the bridge
                                     (e.g. shared:edu+edu; intel and intel48 only)
                          slot:K+K+...    functions of one multifunction slot (no ACS): one group, any IOMMU
  --param MOD.P=V       a module parameter for the guest (repeatable), e.g. vfio_iommu_type1.dma_entry_limit=100
  --append ARGS         more kernel command line
  --memory SIZE         guest memory (default 2G)
  --timeout SECONDS     give up after this long (default 600: a loaded 2-core host is slow under TCG)
  --run-dir DIR         keep the run's files here (console.log, results.log, qemu.log, command); otherwise a
                        directory under the cache, removed after a successful run and kept after a failure
  --times               print the run's wall time on stderr
  --bzimage             boot the package's compressed image instead of the uncompressed vmlinux (through PVH);
                        the guest then decompresses itself under TCG, which is slower (6.1's is XZ)
  COMMAND               run by /bin/sh in the host's / (read-only) from the current directory; TMPDIR and HOME
                        are /run/tmp, a tmpfs over the host's /run
EOF
    exit 125
}

rig_fail() {
    echo "conformance: error: $*" >&2
    exit 125
}

KERNEL=
IOMMU=intel
DEVICES=edu
PARAMS=()
APPEND=
MEMORY=2G
TIMEOUT=600
RUN_DIR=
TIMES=no
BZIMAGE=no
while [ $# -gt 0 ]; do
    case "$1" in
        --kernel) KERNEL=${2:?}; shift 2 ;;
        --iommu) IOMMU=${2:?}; shift 2 ;;
        --devices) DEVICES=${2:?}; shift 2 ;;
        --param) PARAMS+=("${2:?}"); shift 2 ;;
        --append) APPEND="$APPEND ${2:?}"; shift 2 ;;
        --memory) MEMORY=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --run-dir) RUN_DIR=${2:?}; shift 2 ;;
        --times) TIMES=yes; shift ;;
        --bzimage) BZIMAGE=yes; shift ;;
        --) shift; break ;;
        -h | --help) usage ;;
        *) echo "conformance: unknown option '$1'" >&2; usage ;;
    esac
done
[ $# -gt 0 ] || { echo "conformance: no COMMAND (put it after --)" >&2; usage; }
[ -n "$KERNEL" ] || { echo "conformance: --kernel is required" >&2; usage; }
case "$KERNEL" in 6.1 | 6.12) ;; *) rig_fail "unknown kernel '$KERNEL' (known: $RIG_KERNELS)" ;; esac
case "$TIMEOUT" in '' | *[!0-9]*) rig_fail "--timeout takes whole seconds, not '$TIMEOUT'" ;; esac
for p in "${PARAMS[@]}"; do
    case "$p" in *.*=*) ;; *) rig_fail "--param takes MODULE.PARAM=VALUE, not '$p'" ;; esac
done

# The IOMMU: QEMU devices and the kernel command line that goes with them.
case "$IOMMU" in
    intel) IOMMU_ARGS=(-device intel-iommu,intremap=on,caching-mode=on); IOMMU_CMDLINE="intel_iommu=on" ;;
    intel48) IOMMU_ARGS=(-device intel-iommu,intremap=on,caching-mode=on,aw-bits=48); IOMMU_CMDLINE="intel_iommu=on" ;;
    virtio)
        # Debian's 6.1 is built without CONFIG_VIRTIO_IOMMU: there is no driver for the device to bind to.
        [ "$KERNEL" != 6.1 ] || rig_fail "--iommu virtio needs 6.12: Debian's 6.1 kernel is built without CONFIG_VIRTIO_IOMMU"
        IOMMU_ARGS=(-device virtio-iommu-pci,bus=pcie.0,addr=0x2)
        # virtio-iommu offers no interrupt remapping: without this type1's SET_IOMMU answers EPERM.
        IOMMU_CMDLINE="vfio_iommu_type1.allow_unsafe_interrupts=1"
        ;;
    *) rig_fail "unknown --iommu '$IOMMU' (intel, intel48, virtio)" ;;
esac

# Devices at fixed slots, so PCI addresses (and so group numbers) are the same on every boot.
check_device_kind() {
    case "$1" in
        edu | e1000e | nvme) ;;
        *) rig_fail "unknown device '$1' in --devices (edu, e1000e, nvme, shared:K+K, slot:K+K)" ;;
    esac
}
qemu_device_model() {
    case "$1" in
        edu) echo edu ;;
        e1000e) echo e1000e ;;
        nvme) echo "nvme,serial=rig$2" ;;
    esac
}
DEVICE_ARGS=()
slot=16
bridge=0
IFS=, read -r -a items <<<"$DEVICES"
for item in "${items[@]}"; do
    case "$item" in
        shared:*)
            # Seen on the rig: QEMU 7.2's virtio-iommu leaves a device behind the bridge without an IOMMU group on
            # 6.12, so vfio-pci's probe fails (EINVAL). A slot's functions share a group under either IOMMU.
            [ "$IOMMU" != virtio ] || rig_fail "--devices $item: behind a pcie-pci-bridge a device gets no IOMMU group under virtio-iommu (vfio-pci's probe fails EINVAL); use slot:${item#shared:} for a shared group"
            members=${item#shared:}
            [ -n "$members" ] || rig_fail "--devices: 'shared:' needs devices (shared:edu+edu)"
            DEVICE_ARGS+=(-device "pcie-pci-bridge,id=rigbr$bridge,bus=pcie.0,addr=$(printf '0x%x' $slot)")
            sub=1
            IFS=+ read -r -a kinds <<<"$members"
            for kind in "${kinds[@]}"; do
                check_device_kind "$kind"
                DEVICE_ARGS+=(-device "$(qemu_device_model "$kind" "$slot$sub"),bus=rigbr$bridge,addr=$(printf '0x%x' $sub)")
                sub=$((sub + 1))
            done
            bridge=$((bridge + 1))
            ;;
        slot:*)
            members=${item#slot:}
            [ -n "$members" ] || rig_fail "--devices: 'slot:' needs devices (slot:edu+edu)"
            fn=0
            IFS=+ read -r -a kinds <<<"$members"
            [ ${#kinds[@]} -le 8 ] || rig_fail "--devices: a slot has at most 8 functions"
            for kind in "${kinds[@]}"; do
                check_device_kind "$kind"
                DEVICE_ARGS+=(-device "$(qemu_device_model "$kind" "$slot$fn"),bus=pcie.0,addr=$(printf '0x%x.%d' $slot $fn),multifunction=on")
                fn=$((fn + 1))
            done
            ;;
        *)
            check_device_kind "$item"
            DEVICE_ARGS+=(-device "$(qemu_device_model "$item" "$slot"),bus=pcie.0,addr=$(printf '0x%x' $slot)")
            ;;
    esac
    slot=$((slot + 1))
    [ $slot -le 31 ] || rig_fail "--devices: more than 16 entries"
done

load_kernel "$KERNEL"
KERNEL_IMAGE=$KERNEL_VMLINUX
[ "$BZIMAGE" = no ] || KERNEL_IMAGE=$KERNEL_BZIMAGE
INITRD="$CACHE_DIR/initramfs/$KERNEL.cpio"
# Rebuilt when missing or older than what it is made of.
if [ ! -f "$INITRD" ] || [ "$RIG_DIR/guest/init" -nt "$INITRD" ] || [ "$RIG_DIR/build-initramfs.sh" -nt "$INITRD" ] \
    || [ "$(kernel_dir "$KERNEL")/release" -nt "$INITRD" ]; then
    "$RIG_DIR/build-initramfs.sh" "$KERNEL" || rig_fail "could not build the initramfs for $KERNEL"
fi

KEEP=yes
if [ -z "$RUN_DIR" ]; then
    mkdir -p "$CACHE_DIR/runs"
    RUN_DIR=$(mktemp -d "$CACHE_DIR/runs/$KERNEL-$IOMMU-XXXXXX")
    KEEP=no
fi
mkdir -p "$RUN_DIR"
CONSOLE="$RUN_DIR/console.log"
RESULTS="$RUN_DIR/results.log"
rm -f "$CONSOLE" "$RESULTS" "$RUN_DIR/qemu.log"

# COMMAND as one POSIX shell line, run from the current directory (the chroot sees the host's paths).
quote() {
    local s=${1//\'/\'\\\'\'}
    printf "'%s'" "$s"
}
line="cd $(quote "$PWD") &&"
for arg in "$@"; do line="$line $(quote "$arg")"; done
printf '%s\n' "$line" >"$RUN_DIR/command"
encoded=$(printf '%s' "$line" | base64 -w0)
if [ ${#encoded} -le 1024 ]; then
    COMMAND_CMDLINE="rig.cmd=$encoded"
else
    # Too long for the kernel command line (2048 bytes in all): the guest reads it from the share.
    COMMAND_CMDLINE="rig.script=$RUN_DIR/command"
fi

# no_timer_check: on a loaded host the boot-time IO-APIC timer test can miss its ticks under TCG, and with
# interrupt remapping on the kernel then panics ("timer doesn't work through Interrupt-remapped IO-APIC").
CMDLINE="console=ttyS0 panic=-1 no_timer_check $IOMMU_CMDLINE ${PARAMS[*]} $COMMAND_CMDLINE$APPEND"
QEMU=(qemu-system-x86_64
    -machine q35,kernel-irqchip=split -accel tcg -cpu max -m "$MEMORY" -smp 1
    -nodefaults -no-user-config -display none -no-reboot -monitor none
    -serial "file:$CONSOLE" -serial "file:$RESULTS"
    "${IOMMU_ARGS[@]}"
    # The host's / for the chroot; multidevs=remap keeps inode numbers from colliding across host filesystems
    # (without it /proc misbehaves inside and CoreCLR fails to start).
    -fsdev "local,id=rigroot,path=/,security_model=none,readonly=on,multidevs=remap"
    -device "virtio-9p-pci,fsdev=rigroot,mount_tag=host,bus=pcie.0,addr=0x3"
    "${DEVICE_ARGS[@]}"
    -kernel "$KERNEL_IMAGE" -initrd "$INITRD" -append "$CMDLINE")
printf '%q ' "${QEMU[@]}" >"$RUN_DIR/qemu-command"

start=$(date +%s.%N)
qemu_status=0
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$RUN_DIR/qemu.log" 2>&1 || qemu_status=$?
wall=$(echo "$(date +%s.%N) $start" | awk '{ printf "%.1f", $1 - $2 }')

console_tail() {
    echo "---- last 40 lines of $CONSOLE" >&2
    tail -n 40 "$CONSOLE" >&2 2>/dev/null || echo "(no console output)" >&2
    if [ -s "$RUN_DIR/qemu.log" ]; then
        echo "---- qemu:" >&2
        tail -n 20 "$RUN_DIR/qemu.log" >&2
    fi
    echo "---- run files kept in $RUN_DIR" >&2
}

touch "$RESULTS"
if ! grep -qx 'RIG-END' "$RESULTS"; then
    if [ $qemu_status -eq 124 ] || [ $qemu_status -eq 137 ]; then
        echo "conformance: error: kernel $KERNEL ($IOMMU) did not finish within ${TIMEOUT}s" >&2
        console_tail
        exit 124
    fi
    echo "conformance: error: kernel $KERNEL ($IOMMU): the guest stopped without reporting (qemu exit $qemu_status, no RIG-END)" >&2
    console_tail
    exit 125
fi
if error=$(grep -m1 '^RIG-ERROR ' "$RESULTS"); then
    echo "conformance: error: kernel $KERNEL ($IOMMU): guest set-up failed: ${error#RIG-ERROR }" >&2
    console_tail
    exit 125
fi
status=$(awk '$1 == "RIG-EXIT" { print $2 }' "$RESULTS")
[ -n "$status" ] || { echo "conformance: error: no RIG-EXIT in $RESULTS" >&2; console_tail; exit 125; }

# The lines between two markers, joined by newlines with none after the last: the guest put one newline of its
# own before each END marker, so the command's bytes come back exactly.
section() {
    awk -v begin="RIG-$1-BEGIN" -v end="RIG-$1-END" '
        $0 == end && inside { exit }
        inside { printf "%s%s", (n++ ? "\n" : ""), $0 }
        $0 == begin { inside = 1 }' "$RESULTS"
}
section STDOUT
section STDERR >&2

# Wall time on the host: under TCG on a loaded host the guest's own clock drifts (its TSC calibration goes wrong).
[ "$TIMES" = no ] || echo "conformance: $KERNEL $IOMMU: ${wall} s wall (boot, command, power-off)" >&2
[ "$KEEP" = yes ] || rm -rf "$RUN_DIR"
exit "$status"
