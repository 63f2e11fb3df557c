#!/usr/bin/env bash
# The build machine without Windows: build.sh --boot-check boots q35 + OVMF (Secure Boot) + swtpm
# with the answer media and a stand-in "ISO" that boots nothing, and checks that UEFI ran (its boot
# manager on COM1, trying the disk, then the CD), the TPM answered and every disk is attached.
# One TCG VM until UEFI has tried both boot entries (~30-60 s, at most 200 s; label vm).
set -euo pipefail
RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
T="$(mktemp -d)"
trap 'rm -rf -- "$T"' EXIT
mkdir "$T/iso"
echo "not Windows" >"$T/iso/README.TXT"
xorriso -as mkisofs -quiet -V NOTWIN -o "$T/standin.iso" "$T/iso" 2>/dev/null
printf 'MZ stand-in\n' >"$T/csagent.exe"
"$RECIPE_DIR/build.sh" --iso "$T/standin.iso" --out "$T/out" --csagent "$T/csagent.exe" --accel tcg \
  --disk-gb 32 --memory-mib 2048 --boot-check "${BOOT_CHECK_SECONDS:-200}"
# Boot order as build.sh sets it: the (empty) system disk first, then the ISO.
grep -q 'failed to load Boot.*HARDDISK' "$T/out/serial.log"
grep -q 'failed to load Boot.*DVD-ROM' "$T/out/serial.log"
echo "boot check passed"
