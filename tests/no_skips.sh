#!/usr/bin/env bash
# `make test` installs every prerequisite of every test, so a test that did not run there (skipped by
# GTEST_SKIP, by exit 77, or registered as a missing prerequisite) means a path went untested while
# CTest still printed "100% tests passed". This reads CTest's JUnit file and fails on any of them.
# Usage: no_skips.sh CTEST_JUNIT_XML
set -euo pipefail
junit="${1:?usage: no_skips.sh CTEST_JUNIT_XML}"
[[ -s "$junit" ]] || { echo "no_skips: $junit is missing or empty (did ctest run?)" >&2; exit 1; }
python3 - "$junit" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except ET.ParseError as e:
    sys.exit(f"no_skips: {sys.argv[1]}: not JUnit XML: {e}")
cases = root.iter("testcase")
skipped = []
total = 0
for case in cases:
    total += 1
    status = case.get("status", "")
    if status in ("notrun", "disabled") or case.find("skipped") is not None:
        why = case.find("skipped")
        skipped.append((case.get("name", "?"), why.get("message", "") if why is not None else status))
if total == 0:
    sys.exit(f"no_skips: {sys.argv[1]} lists no test at all")
if skipped:
    print(f"no_skips: {len(skipped)} of {total} tests did not run, though `make test` installs what "
          "they need:", file=sys.stderr)
    for name, why in skipped:
        print(f"  {name}: {why}", file=sys.stderr)
    sys.exit(1)
print(f"no_skips: all {total} tests ran (none skipped)")
PY
