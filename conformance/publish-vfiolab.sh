#!/usr/bin/env bash
# Publishes the vfiolab CLI (src/VfioLab.Cli) for the guest: self-contained and single-file, so inside the chroot it
# needs only glibc, libstdc++ and libgcc_s from the host's / and no .NET install; invariant globalization (no ICU).
#
#   conformance/publish-vfiolab.sh        -> $CACHE_DIR/vfiolab/vfiolab (path printed on stdout)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

command -v dotnet >/dev/null || die "dotnet is not on PATH (the .NET 10 SDK builds the payload)"
OUT="$CACHE_DIR/vfiolab"
note "publishing src/VfioLab.Cli to $OUT"
dotnet publish "$REPO_DIR/src/VfioLab.Cli" -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:InvariantGlobalization=true -p:DebugType=none -p:GenerateDocumentationFile=false \
    -o "$OUT" -v quiet -nologo >"$CACHE_DIR/publish.log" 2>&1 \
    || { tail -n 30 "$CACHE_DIR/publish.log" >&2; die "dotnet publish src/VfioLab.Cli failed (log: $CACHE_DIR/publish.log)"; }
[ -x "$OUT/VfioLab.Cli" ] || die "dotnet publish left no $OUT/VfioLab.Cli"
ln -sf VfioLab.Cli "$OUT/vfiolab"
echo "$OUT/vfiolab"
