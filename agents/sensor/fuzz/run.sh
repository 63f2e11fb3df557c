#!/usr/bin/env bash
# Runs each sensor fuzzer for a fixed time on one core and prints its figures: executions, exec/s,
# coverage (cov: edges, ft: features), corpus, and the harness's counts (291-class inputs, faults).
# Used by `make fuzz` (600 s per target) and by the short pass in ctest.
#
# usage: run.sh [--seconds N] [--work DIR] FUZZER...
# Each fuzzer starts from the seed corpus (read only) and writes new units, the log and any crash
# file to DIR/<fuzzer>/, which is emptied first. Exit status: 0 when every fuzzer ran its time
# without a crash and its counts make sense; 1 otherwise (the log's tail is printed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=600
work=build-fuzz/runs
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
  dir=$work/$name
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  echo "fuzz: $name for $seconds s, one process (log: $dir/log)"
  rc=0
  # No -jobs/-workers: one process on one core, which is what -jobs=1 gives too.
  "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -dict="$here/channel.dict" \
    -artifact_prefix="$dir/" -timeout=10 -rss_limit_mb=2048 \
    "$dir/corpus" "$here/corpus" >"$dir/log" 2>&1 || rc=$?

  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -n 1 || true)
  harness=$(grep -E '^sensor-fuzz ' "$dir/log" | tail -n 1 || true)
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
  elif [[ $(field faults_other "$harness") != 0 ]]; then
    problem="faults outside the 291 class"
  elif [[ $(field sensor "$harness") == 7.11 && $(field faults291 "$harness") == 0 ]]; then
    # The seed corpus holds 291-class files, so the 7.11 interpreter must have faulted on them.
    problem="the 7.11 sensor never faulted (the seed corpus has 291-class files)"
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
    "ft $(field ft "$done_line"), corpus ${corpus%%/*} units (${corpus#*/}; $units new files)"
  echo "fuzz: $name: sensor $(field sensor "$harness"): decoded $(field decoded "$harness")," \
    "accepted $(field accepted "$harness"), 291 class $(field class291 "$harness")," \
    "interpreter ran $(field interpreted "$harness"), refused $(field refused "$harness")," \
    "faulted on the guard page (291 class) $(field faults291 "$harness")," \
    "other faults $(field faults_other "$harness"), crashes 0"
done
exit $failed
