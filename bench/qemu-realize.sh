#!/usr/bin/env bash
# Issue 14 item 7: QEMU (q35, 4 GiB, -S, TCG) realizing a vfio-pci device through libvfiolab-preload.so against
# vfiolab serve and mapping its guest RAM, against QEMU started without the device, in the same run (figures in
# docs/benchmarks.md). Each sample is the wall time from spawning qemu-system-x86_64 to its exit, having answered
# QMP's qmp_capabilities, query-pci and quit; runs alternate between the kinds so load drifts hit all of them.
#   plain    no device, no preload
#   preload  no device, under the preload (what the interposer costs QEMU by itself)
#   vfio     -device vfio-pci,host=0000:00:10.0 under the preload against vfiolab serve on examples/clients/qemu-host.yaml
# Usage: bash bench/qemu-realize.sh [RUNS (default 15)] — builds the CLI (Release) and the preload first.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing: bash .ci/install-prereqs.sh" >&2; exit 1; }
make -s -C native/preload >/dev/null
dotnet build src/VfioLab.Cli -c Release -nologo -v quiet >/dev/null
cli=src/VfioLab.Cli/bin/Release/net10.0/VfioLab.Cli
preload=$PWD/native/preload/build/libvfiolab-preload.so

dir=$(mktemp -d)
"$cli" serve examples/clients/qemu-host.yaml --socket "$dir/s.sock" >"$dir/serve.out" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 600); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done

qmp='{"execute":"qmp_capabilities"}
{"execute":"query-pci"}
{"execute":"quit"}'
base=(qemu-system-x86_64 -machine q35,accel=tcg -m 4G -S -display none -nodefaults -qmp stdio)

# one sample: prints milliseconds; fails when QEMU fails or (vfio) query-pci lacks the device
sample() {
    local kind=$1 t0 t1 out
    t0=$(date +%s%N)
    case $kind in
        plain) out=$(printf '%s\n' "$qmp" | "${base[@]}") ;;
        preload) out=$(printf '%s\n' "$qmp" | VFIOLAB_SOCKET="$dir/s.sock" LD_PRELOAD="$preload" "${base[@]}") ;;
        vfio) out=$(printf '%s\n' "$qmp" | VFIOLAB_SOCKET="$dir/s.sock" LD_PRELOAD="$preload" "${base[@]}" \
                  -device vfio-pci,host=0000:00:10.0,id=vfio0) ;;
    esac
    t1=$(date +%s%N)
    if [ "$kind" = vfio ] && ! grep -q '"qdev_id": "vfio0"' <<<"$out"; then
        echo "vfio-pci did not realize: $out" >&2; cat "$dir/serve.out" >&2; exit 1
    fi
    echo $(( (t1 - t0) / 1000000 ))
}

declare -A all
for kind in plain preload vfio; do sample "$kind" >/dev/null; done   # warm-up: page cache, the server's JIT
for _ in $(seq "$runs"); do
    for kind in plain preload vfio; do all[$kind]+="$(sample "$kind") "; done
done

sorted() { tr ' ' '\n' | grep . | sort -n; }
median() { sorted | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r), $(qemu-system-x86_64 --version | head -1)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average: $(cut -d' ' -f1-3 /proc/loadavg), runs: $runs each"
p=$(median <<<"${all[plain]}")
for kind in plain preload vfio; do
    m=$(median <<<"${all[$kind]}")
    printf '%-8s median %6s ms  ratio to plain %s  beyond plain %s ms  min %s  max %s\n' "$kind" "$m" \
        "$(awk -v a="$m" -v b="$p" 'BEGIN {printf "%.2f", a / b}')" "$(awk -v a="$m" -v b="$p" 'BEGIN {print a - b}')" \
        "$(sorted <<<"${all[$kind]}" | head -1)" "$(sorted <<<"${all[$kind]}" | tail -1)"
done
echo "samples (ms):"; for kind in plain preload vfio; do echo "  $kind: ${all[$kind]}"; done
kill -TERM $server; wait $server || true
tail -4 "$dir/serve.out"
trap 'rm -rf "$dir"' EXIT
