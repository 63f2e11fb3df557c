#!/usr/bin/env bash
# Makes a STAND-IN for the Windows golden image (lab/libvirt/windows_golden.h): a folder the lab
# boots exactly as it would boot the golden image images/windows/build.sh makes from a user's ISO
# (UEFI/OVMF, swtpm, SATA, COM1 = EMS console, COM2 = agent), but the disk holds Debian's kernel
# and a small initramfs whose /init (next to this script) plays the boot manager, BitLocker's
# recovery screen and SAC on COM1 and runs the real sensor on COM2. No Windows, no root.
#
#   make_standin.sh OUT_DIR --csagent PATH --chaoslab PATH [--bitlocker]
#
# --csagent   the static Linux sensor (build target csagent)
# --chaoslab  the lab's CLI; its `channel make channel-291` writes the faulty channel file
# --bitlocker safe-mode and WinRE boots stop at BitLocker's recovery screen until the 48 digits of
#             recovery-password.txt are typed (the TPM does not unseal C: once the boot changed)
#
# The disk (windows.qcow2) is one FAT32 volume without a partition table: OVMF's FAT driver mounts
# it as FS0 (the shell runs startup.nsh from it: the EFI stub of /boot/vmlinuz-*, the initramfs),
# and the stand-in mounts it read-write as "C:" (/dev/sda): ProgramData\CrowdStrike\sensor.ini
# says 7.11, Windows\System32\drivers\CrowdStrike holds C-00000291-00000000-00000002.sys (the
# faulty version 2 the lab's scenarios release).
# image.json says secure_boot 0, so the lab picks OVMF_CODE_4M.fd (which has the UEFI shell).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly BUSYBOX=/bin/busybox
readonly VARS_TEMPLATE=/usr/share/OVMF/OVMF_VARS_4M.fd
readonly DISK_KIB=98304
# SATA (AHCI) disk and FAT, in load order, for Debian's kernel (uncompressed .ko files).
readonly MODULES=(scsi_common scsi_mod libata libahci ahci crc64 crc64-rocksoft crct10dif_common
  crct10dif_generic crc-t10dif t10-pi sd_mod fat vfat nls_cp437 nls_iso8859-1)

die() {
  echo "make_standin.sh: $*" >&2
  exit 2
}
usage() {
  echo "usage: make_standin.sh OUT_DIR --csagent PATH --chaoslab PATH [--bitlocker]" >&2
  exit 2
}

out=""
csagent=""
chaoslab=""
bitlocker=0
# The lab's fault is channel 291 version 2 (version 1 the good content before it): a sensor that
# loads version 2 from disk is "exposed" in the run's report.
fault_version=2
while (($# > 0)); do
  case "$1" in
    --csagent) (($# >= 2)) || usage; csagent="$2"; shift 2 ;;
    --chaoslab) (($# >= 2)) || usage; chaoslab="$2"; shift 2 ;;
    --bitlocker) bitlocker=1; shift ;;
    -h | --help) usage ;;
    -*) echo "make_standin.sh: unknown option '$1'" >&2; usage ;;
    *) [[ -z "$out" ]] || usage; out="$1"; shift ;;
  esac
done
[[ -n "$out" && -n "$csagent" && -n "$chaoslab" ]] || usage
[[ -x "$csagent" ]] || die "csagent '$csagent' is not an executable file (build the csagent target)"
[[ -x "$chaoslab" ]] || die "chaoslab '$chaoslab' is not an executable file (build the chaoslab target)"
if ldd "$csagent" > /dev/null 2>&1; then die "csagent '$csagent' is not statically linked"; fi
if [[ ! -x "$BUSYBOX" ]] || ldd "$BUSYBOX" > /dev/null 2>&1; then die "$BUSYBOX: apt-get install busybox-static"; fi
[[ -f "$VARS_TEMPLATE" ]] || die "$VARS_TEMPLATE missing: apt-get install ovmf"
for tool in mkfs.vfat mmd mcopy qemu-img swtpm_setup cpio sha256sum; do
  command -v "$tool" > /dev/null || die "$tool not found"
done
kernel="$(find /boot -maxdepth 1 -name 'vmlinuz-*' -type f | sort -V | tail -n 1)"
[[ -n "$kernel" ]] || die "no /boot/vmlinuz-*: apt-get install linux-image-amd64"
module_dir="/lib/modules/${kernel#/boot/vmlinuz-}/kernel"

mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- The initramfs ------------------------------------------------------------------------------
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,mnt/c,lib/modules}
install -m 0755 "$HERE/init" "$root/init"
install -m 0755 "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [[ "$applet" == busybox ]] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$csagent" "$root/sbin/csagent"
for m in "${MODULES[@]}"; do
  f="$(find "$module_dir" -name "$m.ko" -type f -print -quit)"
  [[ -n "$f" ]] || die "module $m.ko not found under $module_dir (compressed modules are not supported)"
  install -m 0644 "$f" "$root/lib/modules/$m.ko"
  echo "$m.ko" >> "$root/lib/modules/order"
done
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$work/initrd.img"

# --- Passwords ----------------------------------------------------------------------------------
# A valid BitLocker recovery password: 8 groups of 6 digits, each a multiple of 11 below 720896.
groups=()
for _ in 1 2 3 4 5 6 7 8; do groups+=("$(printf '%06d' $(((RANDOM * 32768 + RANDOM) % 65536 * 11)))"); done
recovery="$(IFS=-; echo "${groups[*]}")"
echo "$recovery" > "$out/recovery-password.txt"
admin="Standin-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
echo "$admin" > "$out/admin-password.txt"
printf '{"kind":"windows","secure_boot":0}\n' > "$out/image.json"

# --- C: -----------------------------------------------------------------------------------------
export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null
disk="$work/disk.img"
mkfs.vfat -C -F 32 -n WINDOWS "$disk" "$DISK_KIB" > /dev/null
# The shell's startup script: the kernel with no console on any serial port (COM1 is the console
# the stand-in paints, COM2 the agent's); "winsim." lets the sensor's bugcheck panic the kernel.
printf 'fs0:\r\n\\vmlinuz initrd=\\initrd.img quiet loglevel=0 console=tty0 panic=-1 winsim.standin=1\r\n' \
  > "$work/startup.nsh"
printf 'version=7.11\n' > "$work/sensor.ini"
channel_file="$work/C-00000291-00000000-0000000${fault_version}.sys"
"$chaoslab" channel make channel-291 --version "$fault_version" -o "$channel_file" > /dev/null ||
  die "chaoslab channel make channel-291 failed"
mmd -i "$disk" ::/ProgramData ::/ProgramData/CrowdStrike ::/Windows ::/Windows/System32 \
  ::/Windows/System32/drivers ::/Windows/System32/drivers/CrowdStrike ::/standin
mcopy -i "$disk" "$work/startup.nsh" ::/startup.nsh
mcopy -i "$disk" "$kernel" ::/vmlinuz
mcopy -i "$disk" "$work/initrd.img" ::/initrd.img
mcopy -i "$disk" "$work/sensor.ini" ::/ProgramData/CrowdStrike/sensor.ini
mcopy -i "$disk" "$channel_file" ::/Windows/System32/drivers/CrowdStrike/
mcopy -i "$disk" "$out/admin-password.txt" ::/standin/admin-password
if ((bitlocker)); then
  # What the recovery screen checks the typed digits against, and the key ID it shows.
  printf '%s' "${recovery//-/}" | sha256sum | cut -d' ' -f1 > "$work/bitlocker-sha256"
  od -An -N4 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F > "$work/bitlocker-key-id"
  mcopy -i "$disk" "$work/bitlocker-sha256" "$work/bitlocker-key-id" ::/standin/
fi
qemu-img convert -q -f raw -O qcow2 "$disk" "$out/windows.qcow2"

# --- Firmware variables and TPM -----------------------------------------------------------------
cp "$VARS_TEMPLATE" "$out/OVMF_VARS.fd"
mkdir -p "$out/tpm"
swtpm_setup --tpm2 --createek --tpmstate "$out/tpm" --overwrite > "$work/swtpm_setup.log" 2>&1 ||
  die "swtpm_setup failed: $(cat "$work/swtpm_setup.log")"
echo "$out"
