#!/usr/bin/env bash
# make bench: every benchmark (sections fleet, boot, journal), figures merged into
# <build>/bench/results.json; the boot section's stock-vs-purpose-built table also goes to
# <build>/bench/boot-table.md. Extra arguments go to chaoslab-bench, e.g. `--only boot,journal`.
# CHAOSLAB_BENCH_KERNEL_SCRATCH=1 adds a kernel build from scratch (~8 min on an idle machine).
# BENCH_BASELINE=REV (a commit, e.g. HEAD~1) builds that commit's chaoslab in
# <build>/bench/baseline-<sha> (its tree from `git archive`, once; kept for the next run) and runs global-2024 by
# both binaries side by side in the sim section (sim_global_2024_side_by_side).
set -euo pipefail
build="${1:-build}"
shift || true
root="$(cd "$(dirname "$0")/../.." && pwd)"
export CHAOSLAB_SOURCE_DIR="$root"
mkdir -p "$build/bench"
if [[ -n "${BENCH_BASELINE:-}" ]]; then
  sha="$(git -C "$root" rev-parse --verify "${BENCH_BASELINE}^{commit}")"
  base="$(cd "$build" && pwd)/bench/baseline-${sha:0:12}"
  if [[ ! -x "$base/build/bin/chaoslab" ]]; then
    echo "bench: building the baseline $BENCH_BASELINE ($sha) in $base"
    rm -rf "$base/src" && mkdir -p "$base/src"
    git -C "$root" archive "$sha" | tar -x -C "$base/src"
    # shellcheck disable=SC2086 # CMAKE_FLAGS is a list of -D options, as the Makefile's
    cmake -S "$base/src" -B "$base/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_FLAGS:-} >/dev/null
    cmake --build "$base/build" -j "$(nproc)" --target chaoslab >/dev/null
  fi
  export CHAOSLAB_BENCH_BASELINE="$base/build/bin/chaoslab"
fi
"$build/bin/chaoslab-bench" --out "$build/bench/results.json" "$@"
