#!/usr/bin/env bash
# The build machine without Windows: build.sh --boot-check boots q35 + OVMF (Secure Boot) + swtpm
# with the answer media and a stand-in "ISO" that boots nothing, and checks that UEFI ran (its boot
# manager on COM1, trying the disk, then the CD), the TPM answered and every disk is attached.
# One TCG VM until UEFI has tried both boot entries (~30-60 s, at most BOOT_CHECK_SECONDS; label vm).
#
# Bounded whatever happens: build.sh runs under `timeout` (below CTest's limit), its output goes to a
# file (so a daemon it leaves cannot hold CTest's pipe open), a failure prints why with the tails of
# its log and the serial console, and any swtpm or QEMU of this test still alive at the end is
# reported as a failure and stopped (found by this test's own temporary folder in its command line).
set -uo pipefail
RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BOOT_CHECK_SECONDS="${BOOT_CHECK_SECONDS:-200}"
LIMIT_SECONDS=$((BOOT_CHECK_SECONDS + 40))
T="$(mktemp -d)"

# The pids of processes whose command line names this test's folder (swtpm, QEMU, helpers).
ours() {
  local pid
  for pid in $(pgrep -f -- "$T/" || true); do
    [[ "$pid" != "$$" && "$pid" != "$BASHPID" ]] && echo "$pid"
  done
}
finish() {
  local status=$? left
  left="$(ours)"
  if [[ -n "$left" ]]; then
    echo "FAIL: processes of this test outlived build.sh: $(ps -o pid=,comm= -p $(echo $left | tr ' ' ,) | xargs)" >&2
    kill -9 $left 2>/dev/null || true
    status=1
  fi
  rm -rf -- "$T"
  exit "$status"
}
trap finish EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- build.sh output (last 30 lines) ---" >&2
  tail -n 30 "$T/build.log" >&2 2>/dev/null || true
  echo "--- serial console COM1 (last 20 lines) ---" >&2
  tail -n 20 "$T/out/serial.log" >&2 2>/dev/null || echo "(no serial log)" >&2
  exit 1
}

mkdir "$T/iso"
echo "not Windows" >"$T/iso/README.TXT"
xorriso -as mkisofs -quiet -V NOTWIN -o "$T/standin.iso" "$T/iso" 2>/dev/null || fail "xorriso could not make the stand-in ISO"
printf 'MZ stand-in\n' >"$T/csagent.exe"
timeout --kill-after=10 "$LIMIT_SECONDS" "$RECIPE_DIR/build.sh" --iso "$T/standin.iso" --out "$T/out" \
  --csagent "$T/csagent.exe" --accel tcg --disk-gb 32 --memory-mib 2048 \
  --boot-check "$BOOT_CHECK_SECONDS" </dev/null >"$T/build.log" 2>&1
rc=$?
((rc == 124 || rc == 137)) && fail "build.sh --boot-check did not finish within ${LIMIT_SECONDS} s"
((rc == 0)) || fail "build.sh --boot-check exited $rc"
# Boot order as build.sh sets it: the (empty) system disk first, then the ISO.
grep -q 'failed to load Boot.*HARDDISK' "$T/out/serial.log" || fail "UEFI never tried the system disk"
grep -q 'failed to load Boot.*DVD-ROM' "$T/out/serial.log" || fail "UEFI never tried the CD"
cat "$T/build.log"
echo "boot check passed"
