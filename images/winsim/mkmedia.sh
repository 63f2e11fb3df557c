#!/usr/bin/env bash
# Creates the winsim recovery media (the "WinPE USB stick", also the rescue VM's boot disk): a small
# FAT image labelled WINPE holding `bootmgr` and `sources/winpe.ini`, which is how the guest
# recognises it (docs/GUEST-PROTOCOL.md). The guest's kernel and tools come from the image's
# initramfs; the media only has to be there, as a stick in the port.
#
#   mkmedia.sh OUT.img
#
# OUT.img must not exist yet. Uses mkfs.vfat -C and mtools: no mounting, no root. ~30 ms.
set -euo pipefail

readonly MEDIA_KIB=4096

die() {
  echo "mkmedia.sh: $*" >&2
  exit 2
}

if (($# != 1)) || [[ "$1" == -* ]]; then
  echo "usage: mkmedia.sh OUT.img" >&2
  exit 2
fi
out="$1"
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

mkfs.vfat -C -n WINPE "$tmp" "$MEDIA_KIB" > /dev/null || die "mkfs.vfat failed for '$tmp'"
export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null
printf 'chaoslab winsim Windows PE boot manager\r\n' > "$scratch/bootmgr"
printf '[WinPE]\r\nproduct=chaoslab winsim recovery media\r\nversion=1\r\n' > "$scratch/winpe.ini"
mmd -i "$tmp" ::/sources || die "mmd could not create the folders in '$tmp'"
mcopy -i "$tmp" "$scratch/bootmgr" ::/bootmgr || die "mcopy could not write bootmgr"
mcopy -i "$tmp" "$scratch/winpe.ini" ::/sources/winpe.ini || die "mcopy could not write winpe.ini"

mv -T "$tmp" "$out"
