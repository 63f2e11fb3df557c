#!/usr/bin/env bash
# make bench: every benchmark, figures merged into <build>/bench/results.json.
set -euo pipefail
build="${1:-build}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
export CHAOSLAB_SOURCE_DIR="$root"
mkdir -p "$build/bench"
"$build/bin/chaoslab-bench" --out "$build/bench/results.json"
