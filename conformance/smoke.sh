#!/usr/bin/env bash
# Boots every kernel and IOMMU the rig supports and checks, inside each guest:
#   - `vfiolab probe` finds what Linux reports there: the edu device's group (as sysfs names it) viable, TYPE1v2
#     selected, the IOMMU's page sizes and usable IOVA ranges, and the device's 1 MiB BAR0;
#   - `rig-payload edu-dma` (conformance/payload) moves data with the edu's DMA engine through a type1 mapping, and a
#     device write to or read from an unmapped IOVA is blocked.
# Any mismatch, failed boot or timeout is a non-zero exit.
#
#   conformance/smoke.sh [--vfiolab PATH] [--payload PATH] [--configuration C] [--jobs N] [--only KERNEL:IOMMU]... [--timeout SECONDS]
#
#   --vfiolab PATH   the vfiolab the guest runs: an executable (publish-vfiolab.sh makes a self-contained one) or a
#                    framework-dependent VfioLab.Cli.dll, run with the host's dotnet through the share (CI's own
#                    build: src/VfioLab.Cli/bin/Debug/net10.0/VfioLab.Cli.dll). Default: a Release build of src/VfioLab.Cli.
#   --payload PATH   rig-payload likewise (default: a Release build of conformance/payload)
#   --configuration C   what the default builds use (Release; Debug reuses a `dotnet build VfioLab.slnx`)
#   --jobs N         boots at a time (default 2; each takes one core under TCG)
#   --only K:I       run only this combination (repeatable), e.g. --only 6.12:virtio
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ALL="6.1:intel 6.1:intel48 6.12:intel 6.12:intel48 6.12:virtio"

# What Linux reported here (conformance/README.md, "What the rig taught"): page-size bitmap, then usable IOVA ranges.
expected_pgsizes() {
    case "$1" in
        intel | intel48) echo 0x40201000 ;;          # 4K | 2M | 1G: VT-d second-level pages
        virtio) echo 0xfffffffffffff000 ;;           # every power of two from 4K: QEMU's virtio-iommu page_size_mask
    esac
}
expected_ranges() {
    case "$1" in
        intel) echo "0x0-0xfedfffff 0xfef00000-0x7fffffffff" ;;         # 39-bit address width, minus the MSI window
        intel48) echo "0x0-0xfedfffff 0xfef00000-0xffffffffffff" ;;     # aw-bits=48
        virtio) echo "0x0-0xfedfffff 0xfef00000-0xffffffffffffffff" ;;  # 64-bit input range, minus the MSI window
    esac
}
EDU_ADDRESS=0000:00:10.0   # boot.sh's first device slot

VFIOLAB=
PAYLOAD=
CONFIGURATION=Release
JOBS=2
TIMEOUT=600
ONLY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --vfiolab) VFIOLAB=${2:?}; shift 2 ;;
        --payload) PAYLOAD=${2:?}; shift 2 ;;
        --configuration) CONFIGURATION=${2:?}; shift 2 ;;
        --jobs) JOBS=${2:?}; shift 2 ;;
        --only) ONLY+=("${2:?}"); shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        *) die "smoke.sh: unknown option '$1' (--vfiolab PATH, --payload PATH, --configuration C, --jobs N, --only KERNEL:IOMMU, --timeout SECONDS)" ;;
    esac
done
COMBINATIONS=${ONLY[*]:-$ALL}
for c in $COMBINATIONS; do
    case " $ALL " in *" $c "*) ;; *) die "smoke.sh: unknown combination '$c' (known: $ALL)" ;; esac
done
case "$JOBS" in '' | *[!0-9]* | 0) die "smoke.sh: --jobs takes a positive number" ;; esac

mkdir -p "$CACHE_DIR"
# Builds PROJECT (framework-dependent) and prints the .dll the guest runs with the host's dotnet.
build() {
    local project=$1 dll=$2
    command -v dotnet >/dev/null || die "smoke.sh: dotnet is not on PATH (needed to build $project)"
    note "smoke: dotnet build $project -c $CONFIGURATION"
    dotnet build "$REPO_DIR/$project" -c "$CONFIGURATION" -nologo -v quiet >"$CACHE_DIR/build.log" 2>&1 \
        || { tail -n 30 "$CACHE_DIR/build.log" >&2; die "smoke.sh: dotnet build $project failed"; }
    echo "$REPO_DIR/$project/bin/$CONFIGURATION/net10.0/$dll"
}
# An absolute path the guest can run: a .dll that exists, or an executable.
payload_path() {
    local path
    path=$(cd "$(dirname "$1")" 2>/dev/null && pwd)/$(basename "$1") || die "smoke.sh: $1 does not exist"
    case "$path" in
        *.dll) [ -f "$path" ] || die "smoke.sh: $path does not exist" ;;
        *) [ -x "$path" ] || die "smoke.sh: $path is not an executable" ;;
    esac
    echo "$path"
}
[ -n "$VFIOLAB" ] || VFIOLAB=$(build src/VfioLab.Cli VfioLab.Cli.dll)
[ -n "$PAYLOAD" ] || PAYLOAD=$(build conformance/payload rig-payload.dll)
VFIOLAB=$(payload_path "$VFIOLAB")
PAYLOAD=$(payload_path "$PAYLOAD")

# The page-size bitmap as the probe prints it ("4KiB 2MiB 1GiB").
sizes_text() {
    local bitmap=$(($1)) bit out=
    for ((bit = 0; bit < 64; bit++)); do
        if (((bitmap >> bit) & 1)); then
            if ((bit >= 40)); then out+=" $((1 << (bit - 40)))TiB"
            elif ((bit >= 30)); then out+=" $((1 << (bit - 30)))GiB"
            elif ((bit >= 20)); then out+=" $((1 << (bit - 20)))MiB"
            elif ((bit >= 10)); then out+=" $((1 << (bit - 10)))KiB"
            else out+=" $((1 << bit))B"
            fi
        fi
    done
    echo "${out# }"
}

OUT_DIR="$CACHE_DIR/smoke"
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"

run_one() {
    local combo=$1 kernel=${1%%:*} iommu=${1#*:} out="$OUT_DIR/${1/:/-}" start status
    start=$(date +%s.%N)
    status=0
    "$RIG_DIR/boot.sh" --kernel "$kernel" --iommu "$iommu" --timeout "$TIMEOUT" --run-dir "$out.run" \
        -- "$RIG_DIR/guest/smoke-payload.sh" "$VFIOLAB" "$PAYLOAD" >"$out.stdout" 2>"$out.stderr" || status=$?
    echo "$status $(echo "$(date +%s.%N) $start" | awk '{ printf "%.1f", $1 - $2 }')" >"$out.status"
}

# Prints one line per mismatch between a combination's output and what Linux reported; nothing when it agrees.
check_one() {
    local combo=$1 iommu=${1#*:} out="$OUT_DIR/${1/:/-}" group block want got
    read -r status _ <"$out.status"
    if ! grep -qx '== edu-dma exit [0-9]*' "$out.stdout"; then
        echo "boot.sh exited $status: $(grep -m1 'error:' "$out.stderr" || tail -n1 "$out.stderr")"
        return
    fi
    # The edu DMA check's own verdicts.
    grep -qx '== probe exit 0' "$out.stdout" || echo "vfiolab probe: $(grep -m1 '^== probe exit' "$out.stdout")"
    grep '^FAILED: \|^edu-dma: error' "$out.stdout" | sed 's/^/edu-dma: /' || true
    grep -qx '== edu-dma exit 0' "$out.stdout" || echo "edu-dma: $(grep -m1 '^== edu-dma exit' "$out.stdout")"
    group=$(awk -v a="$EDU_ADDRESS" '$1 == "bound" && $2 == a && $3 == "1234:11e8" { print $5 }' "$out.stdout")
    if [ -z "$group" ]; then
        echo "no edu device ($EDU_ADDRESS, 1234:11e8) bound to vfio-pci in the guest"
        return
    fi
    grep -q '^  extensions: .*VFIO_TYPE1v2_IOMMU' "$out.stdout" || echo "extensions lack VFIO_TYPE1v2_IOMMU"
    # The probe's lines for the edu's group: from "  group G:" up to the next group.
    block=$(awk -v g="  group $group:" 'index($0, g) == 1 { inside = 1; print; next } /^  group |^== / { inside = 0 } inside' "$out.stdout")
    [ -n "$block" ] || { echo "the probe did not report group $group (the edu's)"; return; }
    grep -qx "  group $group: viable" <<<"$block" || echo "group $group: want 'viable', got '$(head -n1 <<<"$block")'"
    grep -qx '    iommu: VFIO_TYPE1v2_IOMMU' <<<"$block" || echo "group $group: want iommu VFIO_TYPE1v2_IOMMU, got '$(grep -m1 'iommu:' <<<"$block")'"
    want=$(sizes_text "$(expected_pgsizes "$iommu")")
    got=$(sed -n 's/^      page sizes: //p' <<<"$block")
    [ "$got" = "$want" ] || echo "page sizes: want $(expected_pgsizes "$iommu") ($want), got '$got'"
    want=$(expected_ranges "$iommu")
    got=$(sed -n 's/^      usable IOVA: //p' <<<"$block" | tr '\n' ' ')
    [ "${got% }" = "$want" ] || echo "usable IOVA ranges: want '$want', got '${got% }'"
    grep -q "^    device $EDU_ADDRESS: PCI," <<<"$block" || echo "device $EDU_ADDRESS: not reported in group $group"
    grep -qx '      region 0: size 0x100000 READ|WRITE|MMAP' <<<"$block" || echo "device $EDU_ADDRESS: want BAR0 'size 0x100000 READ|WRITE|MMAP'"
}

# Each kernel's initramfs is built (or found current) once, before the boots run side by side.
for kernel in $(for combo in $COMBINATIONS; do echo "${combo%%:*}"; done | sort -u); do
    "$RIG_DIR/build-initramfs.sh" "$kernel" >/dev/null || die "smoke.sh: could not build the initramfs for $kernel"
done

note "smoke: $COMBINATIONS ($VFIOLAB, $PAYLOAD; $JOBS at a time; outputs in $OUT_DIR)"
running=0
for combo in $COMBINATIONS; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$combo" &
    running=$((running + 1))
done
wait || true

failed=0
printf '%-14s %-8s %s\n' combination wall result
for combo in $COMBINATIONS; do
    out="$OUT_DIR/${combo/:/-}"
    [ -s "$out.status" ] || echo "1 -" >"$out.status"
    read -r _ wall <"$out.status"
    problems=$(check_one "$combo")
    if [ -z "$problems" ]; then
        printf '%-14s %6ss  %s\n' "$combo" "$wall" "ok"
    else
        failed=$((failed + 1))
        printf '%-14s %6ss  %s\n' "$combo" "$wall" "FAILED"
        sed 's/^/    /' <<<"$problems"
        echo "    (output: $out.stdout, $out.stderr; guest logs: $out.run/)"
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "conformance: smoke: $failed of $(wc -w <<<"$COMBINATIONS") combinations failed" >&2
    exit 1
fi
echo "conformance: smoke: all $(wc -w <<<"$COMBINATIONS") combinations agree with the kernel, edu DMA works on each"
