#!/usr/bin/env bash
# Builds rig-agent (rig-agent.c: one scenario process on the real kernel, the one that can fork) as a static
# executable in $CACHE_DIR/agent/rig-agent, when missing or older than its source, and prints its path. The guest sees
# it through the host's / shared over 9p; static, so it needs nothing of the chroot.
#
#   conformance/agent/build.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

SRC="$RIG_DIR/agent/rig-agent.c"
OUT="$CACHE_DIR/agent/rig-agent"
command -v gcc >/dev/null || die "gcc is missing: run conformance/setup.sh"
if [ ! -x "$OUT" ] || [ "$SRC" -nt "$OUT" ] || [ "${BASH_SOURCE[0]}" -nt "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    # Combinations run side by side and each may build it: each builds into a file of its own and renames it into
    # place (atomic), so none finds another's half-written or already-moved file.
    tmp="$OUT.tmp.$$"
    gcc -static -O2 -Wall -Wextra -Werror -o "$tmp" "$SRC" || { rm -f "$tmp"; die "could not build $SRC"; }
    mv -f "$tmp" "$OUT"
fi
echo "$OUT"
