#!/usr/bin/env bash
# Runs libFuzzer targets for a fixed time each, one after the other on one core, and prints their
# figures: executions, exec/s, coverage (cov: edges, ft: features), corpus, and the harness's own
# counts. Used by `make fuzz` (FUZZ_SECONDS per target) and by the short passes in ctest, for the
# sensor's fuzzers (agents/sensor/fuzz) and the lab's (lab/fuzz) alike.
#
# usage: run_fuzzers.sh [--seconds N] [--work DIR] [--seeds DIR]... FUZZER...
# FUZZER is a path to a target built by chaoslab_libfuzzer_target (cmake/ChaoslabLibFuzzer.cmake),
# which wrote FUZZER.fuzz beside it: one setting a line,
#   seed DIR             a seed corpus, read only (repeatable)
#   dict FILE            a dictionary (repeatable)
#   option -flag=value   a further libFuzzer option (repeatable)
#   env NAME=value       the fuzzer's environment (repeatable)
#   stats WORD           the first word of the harness's counts line (printed at exit)
#   require REGEX WHY    the counts line must match REGEX (no spaces in it), else WHY fails the run
# --seeds adds a read-only seed corpus to every fuzzer's (e.g. a previous run's DIR/<fuzzer>/corpus,
# to go on from it). New units, the log and any crash file go to DIR/<fuzzer>/, emptied first. Exit status 0 when
# every fuzzer ran its time without a crash, leak, timeout or out-of-memory and its counts passed
# every `require`; 1 otherwise (the log's tail is shown); 2 for a usage error.
set -euo pipefail

seconds=600
work=build-fuzz/runs
extra_seeds=()
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --seeds) extra_seeds+=("$2"); shift 2 ;;
    -*) echo "run_fuzzers.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if (($# == 0)); then
  echo "usage: run_fuzzers.sh [--seconds N] [--work DIR] [--seeds DIR]... FUZZER..." >&2
  exit 2
fi

# The value of `key=value` or `key: value` in a line.
field() { sed -nE "s/.*[[:space:]]$1[=:][[:space:]]*([^[:space:]]+).*/\1/p" <<<"$2"; }

failed=0
for fuzzer in "$@"; do
  name=$(basename "$fuzzer")
  if [[ ! -f $fuzzer.fuzz ]]; then
    echo "fuzz: $name FAILED: no $fuzzer.fuzz beside it (build it with its libFuzzer sub-build)"
    failed=1
    continue
  fi
  seeds=("${extra_seeds[@]}") options=() environment=() requires=() stats=""
  while read -r key value; do
    case $key in
      seed) seeds+=("$value") ;;
      dict) options+=(-dict="$value") ;;
      option) options+=("$value") ;;
      env) environment+=("$value") ;;
      stats) stats=$value ;;
      require) requires+=("$value") ;;
      '' | '#'*) ;;
      *) echo "run_fuzzers.sh: $fuzzer.fuzz: unknown setting '$key'" >&2; exit 2 ;;
    esac
  done <"$fuzzer.fuzz"
  dir=$work/$name
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  echo "fuzz: $name for $seconds s, one process (log: $dir/log)"
  rc=0
  # No -jobs/-workers: one process on one core, which is what -jobs=1 gives too.
  env "${environment[@]}" "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$dir/" -timeout=10 -rss_limit_mb=2048 "${options[@]}" \
    "$dir/corpus" "${seeds[@]}" >"$dir/log" 2>&1 || rc=$?

  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -n 1 || true)
  harness=$(awk -v p="$stats " 'index($0, p) == 1' "$dir/log" | tail -n 1)
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
  else
    for require in "${requires[@]}"; do
      read -r regex why <<<"$require"
      if ! [[ $harness =~ $regex ]]; then
        problem=$why
        break
      fi
    done
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
  echo "fuzz: $name: ${harness#"$stats "}"
done
exit $failed
