#!/usr/bin/env bash
# Runs the conformance suite (conformance/scenarios/) with `vfiolab conform` on every kernel and IOMMU the rig boots,
# two combinations at a time, and prints one line per combination: files and steps agreeing, model-only steps, boots,
# wall time. Any difference, refused scenario, failed boot or timeout is a non-zero exit, with the differences shown.
#
#   conformance/conform.sh [--vfiolab PATH] [--configuration C] [--jobs N] [--only KERNEL:IOMMU]... [--suite DIR]
#
#   --vfiolab PATH   a framework-dependent VfioLab.Cli.dll (run with the host's dotnet; the guests run it over the
#                    share) or an executable. Default: a build of src/VfioLab.Cli in configuration C.
#   --configuration C   Debug (default: reuses a `dotnet build VfioLab.slnx`) or Release
#   --jobs N         combinations at a time (default 2; each boot takes one core under TCG)
#   --only K:I       only this combination (repeatable), e.g. --only 6.12:virtio
#   --suite DIR      the scenarios (default conformance/scenarios)
# Results (vfiolab conform's report per combination, and each boot's files on a failure) stay in .cache/conform/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ALL="6.1:intel 6.1:intel48 6.12:intel 6.12:intel48 6.12:virtio"
VFIOLAB=
CONFIGURATION=Debug
JOBS=2
ONLY=()
SUITE=$RIG_DIR/scenarios
while [ $# -gt 0 ]; do
    case "$1" in
        --vfiolab) VFIOLAB=${2:?}; shift 2 ;;
        --configuration) CONFIGURATION=${2:?}; shift 2 ;;
        --jobs) JOBS=${2:?}; shift 2 ;;
        --only) ONLY+=("${2:?}"); shift 2 ;;
        --suite) SUITE=${2:?}; shift 2 ;;
        *) die "conform.sh: unknown option '$1' (--vfiolab PATH, --configuration C, --jobs N, --only KERNEL:IOMMU, --suite DIR)" ;;
    esac
done
COMBINATIONS=${ONLY[*]:-$ALL}
for c in $COMBINATIONS; do
    case " $ALL " in *" $c "*) ;; *) die "conform.sh: unknown combination '$c' (known: $ALL)" ;; esac
done
case "$JOBS" in '' | *[!0-9]* | 0) die "conform.sh: --jobs takes a positive number" ;; esac
[ -d "$SUITE" ] || die "conform.sh: no suite at $SUITE"
ls "$SUITE"/*.yaml >/dev/null 2>&1 || die "conform.sh: $SUITE holds no scenario (*.yaml)"

if [ -z "$VFIOLAB" ]; then
    note "building src/VfioLab.Cli ($CONFIGURATION)"
    dotnet build "$REPO_DIR/src/VfioLab.Cli" -c "$CONFIGURATION" -nologo -v quiet >/dev/null || die "conform.sh: the build of src/VfioLab.Cli failed"
    VFIOLAB=$REPO_DIR/src/VfioLab.Cli/bin/$CONFIGURATION/net10.0/VfioLab.Cli.dll
fi
[ -f "$VFIOLAB" ] || die "conform.sh: no vfiolab at $VFIOLAB"
case "$VFIOLAB" in *.dll) RUN=(dotnet "$VFIOLAB") ;; *) RUN=("$VFIOLAB") ;; esac

# Each kernel's initramfs is built (or found current) once, before the combinations boot side by side.
for kernel in $(for c in $COMBINATIONS; do echo "${c%%:*}"; done | sort -u); do
    "$RIG_DIR/build-initramfs.sh" "$kernel" >/dev/null || die "conform.sh: could not build the initramfs for $kernel"
done

OUT=$CACHE_DIR/conform
rm -rf "$OUT"
mkdir -p "$OUT"
run_one() {
    local kernel=${1%%:*} iommu=${1##*:} name=${1/:/-} start status
    start=$(date +%s)
    status=0
    "${RUN[@]}" conform "$SUITE" --kernel "$kernel" --iommu "$iommu" --rig "$RIG_DIR" --keep "$OUT/$name" \
        >"$OUT/$name.txt" 2>"$OUT/$name.err" || status=$?
    echo "$status $(($(date +%s) - start))" >"$OUT/$name.status"
}

pids=()
for c in $COMBINATIONS; do
    run_one "$c" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
done
wait "${pids[@]}" || true

# vfiolab conform's last line: "linux K I vs model P: F/F files, S/S steps agree (M model-only, R refused, E errors; B boot(s), T s)"
failed=0
printf '%-14s %-7s %-9s %-11s %-10s %-6s %s\n' combination status files steps model-only boots seconds
for c in $COMBINATIONS; do
    name=${c/:/-}
    read -r status seconds <"$OUT/$name.status"
    last=$(tail -n 1 "$OUT/$name.txt" 2>/dev/null || true)
    files=$(sed -n 's/.*: \([0-9]*\/[0-9]*\) files.*/\1/p' <<<"$last")
    steps=$(sed -n 's/.* \([0-9]*\/[0-9]*\) steps agree.*/\1/p' <<<"$last")
    modelonly=$(sed -n 's/.*(\([0-9]*\) model-only.*/\1/p' <<<"$last")
    boots=$(sed -n 's/.*; \([0-9]*\) boot(s).*/\1/p' <<<"$last")
    verdict=agree
    [ "$status" -eq 0 ] || { verdict=FAILED; failed=1; }
    printf '%-14s %-7s %-9s %-11s %-10s %-6s %s\n' "$c" "$verdict" "${files:-?}" "${steps:-?}" "${modelonly:-?}" "${boots:-?}" "$seconds"
done
if [ "$failed" -ne 0 ]; then
    for c in $COMBINATIONS; do
        name=${c/:/-}
        read -r status _ <"$OUT/$name.status"
        [ "$status" -ne 0 ] || continue
        echo "== $c: vfiolab conform exit $status (every file that is not in full agreement, with each difference)" >&2
        grep -v ': agree (' "$OUT/$name.txt" >&2 || true
        cat "$OUT/$name.err" >&2
    done
    die "conform.sh: the kernel and the model disagree, or a boot failed (details above; files in $OUT)"
fi
echo "conform.sh: full agreement on $COMBINATIONS"
