#!/usr/bin/env bash
# Creates a winsim system disk: a ~32 MiB FAT32 image labelled WINSIM with the layout of
# docs/GUEST-PROTOCOL.md. Uses mkfs.vfat -C and mtools only: no mounting, no root.
#
#   mkdisk.sh OUT.img --sensor VERSION [--content FILE]... [--bootmode normal|safe|winre]
#
# Each --content FILE is copied, under its own name, into
# Windows/System32/drivers/CrowdStrike/; names must look like C-00000291-00000000-00000001.sys.
# OUT.img must not exist yet (the disk is written to a temporary name, then renamed).
set -euo pipefail

# 33 MiB: with 512-byte clusters that is ~66,500 clusters, above the FAT32 minimum of 65,525
# (at exactly 32 MiB mkfs.vfat warns and mtools treats the volume as FAT16).
readonly DISK_KIB=33792
readonly DRIVER_DIR="Windows/System32/drivers/CrowdStrike"

die() {
  echo "mkdisk.sh: $*" >&2
  exit 2
}

usage() {
  echo "usage: mkdisk.sh OUT.img --sensor VERSION [--content FILE]... [--bootmode normal|safe|winre]" >&2
  exit 2
}

out=""
sensor=""
bootmode="normal"
contents=()
while (($# > 0)); do
  case "$1" in
    --sensor) (($# >= 2)) || usage; sensor="$2"; shift 2 ;;
    --content) (($# >= 2)) || usage; contents+=("$2"); shift 2 ;;
    --bootmode) (($# >= 2)) || usage; bootmode="$2"; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "mkdisk.sh: unknown option '$1'" >&2; usage ;;
    *) [[ -z "$out" ]] || die "more than one output file given ('$out' and '$1')"; out="$1"; shift ;;
  esac
done

[[ -n "$out" ]] || usage
[[ -n "$sensor" ]] || die "--sensor VERSION is required (e.g. 7.11)"
[[ "$sensor" =~ ^[0-9]+\.[0-9]+(-[A-Za-z0-9]+)?$ ]] ||
  die "--sensor '$sensor' is not a sensor version like 7.10, 7.11 or 7.11-fixed"
case "$bootmode" in normal | safe | winre) ;; *) die "--bootmode '$bootmode' must be normal, safe or winre" ;; esac
for f in "${contents[@]}"; do
  [[ -f "$f" && -r "$f" ]] || die "content file '$f' does not exist or is not readable"
  name="$(basename "$f")"
  [[ "$name" =~ ^C-[0-9]{8}-[0-9]{8}-[0-9]{8}\.sys$ ]] ||
    die "content file '$f': name must look like C-00000291-00000000-00000001.sys"
done
[[ ! -e "$out" ]] || die "'$out' already exists"
out_dir="$(dirname "$out")"
[[ -d "$out_dir" && -w "$out_dir" ]] || die "folder '$out_dir' does not exist or is not writable"
for tool in mkfs.vfat mmd mcopy; do
  command -v "$tool" > /dev/null || die "$tool not found: apt-get install dosfstools mtools"
done

tmp="$(mktemp "${out}.XXXXXX.tmp")"
rm -f "$tmp" # mkfs.vfat -C refuses an existing file
scratch="$(mktemp -d)"
cleanup() { rm -rf "$tmp" "$scratch"; }
trap cleanup EXIT

mkfs.vfat -C -F 32 -s 1 -n WINSIM "$tmp" "$DISK_KIB" > /dev/null ||
  die "mkfs.vfat failed for '$tmp'"

# mtools reads ~/.mtoolsrc and checks drive geometry; neither applies to an image file.
export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null
printf 'bootmode=%s\n' "$bootmode" > "$scratch/BCD"
printf 'version=%s\n' "$sensor" > "$scratch/sensor.ini"
mmd -i "$tmp" ::/ProgramData ::/ProgramData/CrowdStrike ::/Windows ::/Windows/System32 \
  ::/Windows/System32/drivers "::/$DRIVER_DIR" || die "mmd could not create the folders in '$tmp'"
mcopy -i "$tmp" "$scratch/BCD" ::/BCD || die "mcopy could not write BCD"
mcopy -i "$tmp" "$scratch/sensor.ini" ::/ProgramData/CrowdStrike/sensor.ini ||
  die "mcopy could not write sensor.ini"
for f in "${contents[@]}"; do
  mcopy -i "$tmp" "$f" "::/$DRIVER_DIR/$(basename "$f")" || die "mcopy could not copy '$f'"
done

mv -T "$tmp" "$out"
