#!/usr/bin/env bash
# Runs the preload's tests: the test binary under LD_PRELOAD, each test against a fresh fake server.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(cd "$here" && cd "${OUT:-build}" && pwd)"
tmp="$(mktemp -d /tmp/vfiolab-preload-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
VFIOLAB_SOCKET="$tmp/s.sock" FAKE_TREE="$tmp/tree" FAKE_SERVER="$out/fake-server" VFIOLAB_TIMEOUT_MS=500 \
    LD_PRELOAD="$out/libvfiolab-preload.so" "$out/preload-tests" "$@"
