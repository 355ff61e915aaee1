#!/usr/bin/env bash
# The example clients on a real kernel: boots the conformance rig (conformance/boot.sh; conformance/setup.sh once
# per machine), runs each client there against the edu device at 0000:00:10.0 and compares what it prints with
# expected/CLIENT.txt, the same files tests/VfioLab.Preload.Tests holds the model's run (vfiolab serve on
# edu-host.yaml, which describes this guest) against. Exit 1 on any difference.
#
#   examples/clients/compare-with-kernel.sh [--kernel 6.12|6.1] [--update]
#
# --update writes the kernel's output into expected/ instead of comparing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
kernel=6.12
update=0
while [ $# -gt 0 ]; do
    case "$1" in
        --kernel) kernel="$2"; shift 2 ;;
        --update) update=1; shift ;;
        *) echo "usage: $0 [--kernel 6.12|6.1] [--update]" >&2; exit 2 ;;
    esac
done
clients=(kernel-doc-flow dpdk-style-v1 dirty-tracking)
make -s -C "$root/native/preload" OUT="$root/native/preload/build" clients
bin="$root/native/preload/build/clients"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
script=""
for c in "${clients[@]}"; do
    script+="echo '=== $c'; $bin/$c 0000:00:10.0 2>/dev/null; echo \"=== exit \$?\"; "
done
"$root/conformance/boot.sh" --kernel "$kernel" -- sh -c "$script" > "$tmp/all.txt"
status=0
for c in "${clients[@]}"; do
    awk -v name="$c" '$0 == "=== " name { on = 1; next } on && /^=== exit / { print "exit " $3; exit } on { print }' \
        "$tmp/all.txt" > "$tmp/$c.txt"
    if [ "$update" -eq 1 ]; then
        cp "$tmp/$c.txt" "$here/expected/$c.txt"
        echo "$c: expected/$c.txt written from Linux $kernel"
    elif diff -u "$here/expected/$c.txt" "$tmp/$c.txt"; then
        echo "$c: Linux $kernel prints exactly expected/$c.txt"
    else
        echo "$c: Linux $kernel differs from expected/$c.txt (above)" >&2
        status=1
    fi
done
exit $status
