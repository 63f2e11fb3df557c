#!/usr/bin/env bash
# Runs each lab fuzzer for a fixed time on one core and prints its figures: executions, exec/s,
# coverage (cov: edges, ft: features), corpus, and the harness's counts. Used by `make fuzz`
# (FUZZ_SECONDS per target) and by the short pass in ctest (README.md here).
#
# usage: run.sh [--seconds N] [--work DIR] FUZZER...
# FUZZER is a path to lab_fuzz_<target>. Each starts from its seeds (read only): lab/fuzz/corpus/
# <target>, and for yaml the repository's playbooks/, for channel the sensor fuzzers' corpus; new
# units, the log and any crash file go to DIR/<fuzzer>/, emptied first. Exit status 0 when every
# fuzzer ran its time without a crash, leak, timeout or out-of-memory; 1 otherwise (log tail shown).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=600
work=build-fuzz/lab-runs
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if (($# == 0)); then
  echo "usage: run.sh [--seconds N] [--work DIR] FUZZER..." >&2
  exit 2
fi

# The value of `key=value` or `key: value` in a line.
field() { sed -nE "s/.*[[:space:]]$1[=:][[:space:]]*([^[:space:]]+).*/\1/p" <<<"$2"; }

failed=0
for fuzzer in "$@"; do
  name=$(basename "$fuzzer")
  target=${name#lab_fuzz_}
  seeds=("$here/corpus/$target")
  options=()
  case $target in
    yaml) seeds+=("$root/playbooks") ;;
    channel) seeds+=("$root/agents/sensor/fuzz/corpus")
             options+=(-dict="$root/agents/sensor/fuzz/channel.dict") ;;
  esac
  if [[ -f $here/$target.dict ]]; then options+=(-dict="$here/$target.dict"); fi
  dir=$work/$name
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  echo "fuzz: $name for $seconds s, one process (log: $dir/log)"
  rc=0
  # No -jobs/-workers: one process on one core. The harnesses find the playbooks through
  # CHAOSLAB_SOURCE_DIR.
  CHAOSLAB_SOURCE_DIR=$root "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 \
    "${options[@]}" -artifact_prefix="$dir/" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    "$dir/corpus" "${seeds[@]}" >"$dir/log" 2>&1 || rc=$?

  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -n 1 || true)
  harness=$(grep -E '^lab-fuzz target=' "$dir/log" | tail -n 1 || true)
  runs=$(sed -nE 's/^stat::number_of_executed_units:[[:space:]]+([0-9]+)/\1/p' "$dir/log")
  rate=$(sed -nE 's/^stat::average_exec_per_sec:[[:space:]]+([0-9]+)/\1/p' "$dir/log")
  artifacts=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
    -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)

  problem=""
  if ((rc != 0)); then
    problem="exit status $rc"
  elif [[ -n $artifacts ]]; then
    problem="artifacts written"
  elif [[ -z $done_line || -z $harness || -z $runs ]]; then
    problem="no final figures in the log"
  fi
  if [[ -n $problem ]]; then
    echo "fuzz: $name FAILED: $problem"
    if [[ -n $artifacts ]]; then
      while read -r artifact; do echo "fuzz:   reproducer: $artifact"; done <<<"$artifacts"
    fi
    echo "fuzz:   last lines of $dir/log:"
    tail -n 40 "$dir/log" | sed 's/^/    /'
    failed=1
    continue
  fi
  corpus=$(field corp "$done_line")  # units/bytes
  units=$(find "$dir/corpus" -type f | wc -l)
  echo "fuzz: $name: $runs executions in $seconds s ($rate exec/s), cov $(field cov "$done_line")," \
    "ft $(field ft "$done_line"), corpus ${corpus%%/*} units (${corpus#*/}; $units new files)," \
    "crashes 0"
  echo "fuzz: $name: ${harness#lab-fuzz }"
done
exit $failed
