#!/usr/bin/env bash
# make bench: every benchmark (sections fleet, boot, journal), figures merged into
# <build>/bench/results.json; the boot section's stock-vs-purpose-built table also goes to
# <build>/bench/boot-table.md. Extra arguments go to chaoslab-bench, e.g. `--only boot,journal`.
# CHAOSLAB_BENCH_KERNEL_SCRATCH=1 adds a kernel build from scratch (~8 min on an idle machine).
set -euo pipefail
build="${1:-build}"
shift || true
root="$(cd "$(dirname "$0")/../.." && pwd)"
export CHAOSLAB_SOURCE_DIR="$root"
mkdir -p "$build/bench"
"$build/bin/chaoslab-bench" --out "$build/bench/results.json" "$@"
