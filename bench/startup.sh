#!/usr/bin/env bash
# Start-up of the vfiolab tool, three builds in one BenchmarkDotNet run (StartupBenchmarks; figures in
# docs/benchmarks.md). Each build is published from this checkout into out/startup/:
#   jit  framework-dependent IL, as the tool package held it before issue 12 item 9 (the `any` package now)
#   r2r  the same ReadyToRun-compiled for linux-x64 (measured, not shipped)
#   aot  Native AOT for linux-x64, as the linux-x64 tool package holds it
# Usage: bash bench/startup.sh [more BenchmarkDotNet arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

out="$PWD/out/startup"
rm -rf "$out"
dotnet publish src/VfioLab.Cli -c Release -o "$out/jit" -nologo -v quiet
dotnet publish src/VfioLab.Cli -c Release -r linux-x64 --self-contained false -p:PublishAot=false \
    -p:PublishReadyToRun=true -o "$out/r2r" -nologo -v quiet
dotnet publish src/VfioLab.Cli -c Release -r linux-x64 -o "$out/aot" -nologo -v quiet

export VFIOLAB_STARTUP_TOOLS="jit=$out/jit/VfioLab.Cli;r2r=$out/r2r/VfioLab.Cli;aot=$out/aot/VfioLab.Cli"
dotnet run -c Release --project bench/VfioLab.Bench -- --filter '*StartupBenchmarks*' "$@"
