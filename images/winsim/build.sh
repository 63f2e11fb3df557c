#!/usr/bin/env bash
# Builds the winsim guest image (kernel + initramfs + manifest) into a content-addressed cache folder.
#
#   build.sh --csagent PATH [--bde PATH] [--kernel custom|debian|PATH_TO_VMLINUX] [--cache DIR] [--check]
#
# --bde defaults to the `bde` next to csagent (both are built into the same bin folder).
# The folder is <cache>/winsim-<hash>, where <hash> covers every input (this recipe, the csagent and
# bde binaries and any shared libraries they need, busybox, the kernel and the kernel modules). A build that is
# already cached costs only the hashing. The folder appears atomically (built in a temporary folder,
# then renamed), so a reader never sees half an image. The image folder is the last line on stdout.
#
# --kernel debian  (default) boots Debian's newest /boot/vmlinuz-*, uncompressed to an ELF vmlinux
#                  (PVH entry: skips the XZ decompression that costs ~4.5 s under TCG), with the
#                  virtio/vfat/pvpanic modules copied into the initramfs.
# --kernel custom  the purpose-built kernel of images/kernel (built there, cached by its own hash;
#                  with --check it must already be built).
# --kernel PATH    a custom uncompressed vmlinux with those drivers built in: no modules are copied.
# --check          exit 0 and print the folder when it is built; exit 3 otherwise.
set -euo pipefail

RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly RECIPE_DIR
# Bump when the image layout changes in a way the input files do not show.
readonly FORMAT_VERSION=1
readonly BUSYBOX=/bin/busybox
# Load order that works with busybox insmod on Debian's 6.1 kernel (see PLATFORM-NOTES.md).
# The network modules are loaded only by guests that have a cloud (winsim.cloud=): offline guests
# boot faster without them.
readonly BASE_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
  fat vfat nls_cp437 nls_iso8859-1 pvpanic pvpanic-pci)
# sch_netem: the network profile's queue on eth0 (agents/sensor/link_shaper.h).
readonly NET_MODULES=(failover net_failover virtio_net sch_netem)
# dm-crypt for BitLocker volumes (loaded only when the system disk is encrypted). AES itself is
# built into Debian's kernel; xts needs ecb. qemu_fw_cfg: the TPM secret's fw_cfg file in sysfs.
readonly CRYPT_MODULES=(ecb xts dm-mod dm-crypt qemu_fw_cfg)
readonly MODULES=("${BASE_MODULES[@]}" "${NET_MODULES[@]}" "${CRYPT_MODULES[@]}")

die() {
  echo "build.sh: $*" >&2
  exit 2
}

usage() {
  echo "usage: build.sh --csagent PATH [--bde PATH] [--kernel custom|debian|PATH_TO_VMLINUX] [--cache DIR] [--check]" >&2
  exit 2
}

csagent=""
bde=""
kernel="debian"
cache_root="${CHAOSLAB_CACHE_DIR:-${HOME:-/root}/.cache/chaoslab}/images"
check_only=0
while (($# > 0)); do
  case "$1" in
    --csagent) (($# >= 2)) || usage; csagent="$2"; shift 2 ;;
    --bde) (($# >= 2)) || usage; bde="$2"; shift 2 ;;
    --kernel) (($# >= 2)) || usage; kernel="$2"; shift 2 ;;
    --cache) (($# >= 2)) || usage; cache_root="$2"; shift 2 ;;
    --check) check_only=1; shift ;;
    -h | --help) usage ;;
    *) echo "build.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

[[ -n "$csagent" ]] || die "--csagent PATH is required"
[[ -f "$csagent" && -r "$csagent" ]] || die "csagent binary '$csagent' does not exist or is not readable"
[[ -n "$bde" ]] || bde="$(dirname "$csagent")/bde"
[[ -f "$bde" && -r "$bde" ]] || die "bde binary '$bde' does not exist or is not readable (build the bde target: make build)"
[[ -x "$BUSYBOX" ]] || die "$BUSYBOX not found: apt-get install busybox-static"
# ldd fails on static executables (and on scripts): that is what we want here.
if ldd "$BUSYBOX" > /dev/null 2>&1; then
  die "$BUSYBOX is not statically linked: apt-get install busybox-static"
fi

# --- Inputs -------------------------------------------------------------------------------------
if [[ "$kernel" == "custom" ]]; then
  kernel_args=()
  ((check_only)) && kernel_args+=(--check)
  set +e
  kernel="$("$RECIPE_DIR/../kernel/build.sh" "${kernel_args[@]}" | tail -n 1)"
  status="${PIPESTATUS[0]}"
  set -e
  if ((status == 3)); then
    echo "guest image winsim is not built (its kernel is not built): run \`make image\`" >&2
    exit 3
  fi
  ((status == 0)) || die "building the winsim kernel failed (images/kernel/build.sh exit $status)"
fi
kernel_file=""      # the file the kernel comes from (vmlinuz for debian, vmlinux for a path)
kernel_source=""    # human-readable origin, recorded in manifest.json
module_files=()
if [[ "$kernel" == "debian" ]]; then
  kernel_file="$(find /boot -maxdepth 1 -name 'vmlinuz-*' -type f 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$kernel_file" ]] || die "no /boot/vmlinuz-* found: apt-get install linux-image-amd64"
  kernel_release="${kernel_file#/boot/vmlinuz-}"
  kernel_source="debian:${kernel_release}"
  module_dir="/lib/modules/${kernel_release}/kernel"
  [[ -d "$module_dir" ]] || die "module folder $module_dir is missing for kernel $kernel_file"
  for module in "${MODULES[@]}"; do
    found="$(find "$module_dir" -name "${module}.ko" -type f -print -quit)"
    [[ -n "$found" ]] || die "module ${module}.ko not found under $module_dir (compressed modules are not supported)"
    module_files+=("$found")
  done
else
  kernel_file="$kernel"
  [[ -f "$kernel_file" && -r "$kernel_file" ]] || die "kernel '$kernel_file' does not exist or is not readable"
  [[ "$(head -c 4 "$kernel_file" | od -An -tx1 | tr -d ' \n')" == "7f454c46" ]] ||
    die "kernel '$kernel_file' is not an uncompressed ELF vmlinux"
  kernel_source="path:$(realpath "$kernel_file")"
fi

# Shared libraries dynamically linked csagent/bde need (none when they are static, or scripts).
guest_libs=()
for binary in "$csagent" "$bde"; do
  if ldd_out="$(ldd "$binary" 2>/dev/null)"; then
    while read -r lib; do
      [[ -n "$lib" ]] && guest_libs+=("$lib")
    done < <(grep -o '/[^ ]*' <<< "$ldd_out" | sort -u)
    if grep -q 'not found' <<< "$ldd_out"; then
      die "'$binary' needs libraries that are missing: $(grep 'not found' <<< "$ldd_out" | tr -s ' \t\n' ' ')"
    fi
  fi
done
if ((${#guest_libs[@]} > 0)); then
  mapfile -t guest_libs < <(printf '%s\n' "${guest_libs[@]}" | sort -u)
fi

# --- Content hash ---------------------------------------------------------------------------------
# One line per input: role and the sha256 of its bytes. Paths of host files are not part of the
# hash (only bytes are), so the same inputs give the same folder on every machine.
hash_inputs() {
  echo "format ${FORMAT_VERSION}"
  echo "kernel-kind $([[ "$kernel" == "debian" ]] && echo debian || echo custom)"
  local f
  for f in build.sh init console; do
    echo "recipe $f $(sha256sum < "$RECIPE_DIR/$f" | cut -d' ' -f1)"
  done
  echo "csagent $(sha256sum < "$csagent" | cut -d' ' -f1)"
  echo "bde $(sha256sum < "$bde" | cut -d' ' -f1)"
  for f in "${guest_libs[@]}"; do
    echo "lib $f $(sha256sum < "$f" | cut -d' ' -f1)"
  done
  echo "busybox $(sha256sum < "$BUSYBOX" | cut -d' ' -f1)"
  echo "kernel $(sha256sum < "$kernel_file" | cut -d' ' -f1)"
  for f in "${module_files[@]}"; do
    echo "module $(basename "$f") $(sha256sum < "$f" | cut -d' ' -f1)"
  done
}
hash="$(hash_inputs | sha256sum | cut -c1-16)"
image_dir="${cache_root}/winsim-${hash}"

if [[ -f "$image_dir/manifest.json" ]]; then
  echo "$image_dir"
  exit 0
fi
if ((check_only)); then
  echo "guest image winsim is not built: run \`make image\`" >&2
  exit 3
fi

# --- Build ----------------------------------------------------------------------------------------
mkdir -p "$cache_root"
work="$(mktemp -d "${cache_root}/.winsim-${hash}.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# Kernel: the uncompressed ELF.
if [[ "$kernel" == "debian" ]]; then
  # The XZ stream begins with FD 37 7A 58 5A 00; everything after it (past the stream end) is padding.
  offset="$(LC_ALL=C grep -obUaP -m1 '\xFD7zXZ\x00' "$kernel_file" | head -n 1 | cut -d: -f1 || true)"
  [[ -n "$offset" ]] || die "no XZ stream in $kernel_file (is the kernel compressed with another method?)"
  # xz stops at the stream end; a pipe would then fail on SIGPIPE under pipefail.
  xz -dc --single-stream < <(tail -c +"$((offset + 1))" "$kernel_file") > "$work/vmlinux" ||
    die "could not decompress the XZ stream of $kernel_file"
else
  cp "$kernel_file" "$work/vmlinux"
fi
[[ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' \n')" == "7f454c46" ]] ||
  die "the extracted kernel is not an ELF file"

# Root filesystem of the initramfs.
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,mnt/c,lib/modules,etc,root}
# PID 1 is the boot manager in the csagent binary (agents/sensor/boot_manager.h): it boots a
# normal unencrypted disk itself and execs the script for everything else.
mkdir -p "$root/lib/winsim"
install -m 0755 "$RECIPE_DIR/init" "$root/lib/winsim/init"
ln -s sbin/csagent "$root/init"
install -m 0755 "$BUSYBOX" "$root/bin/busybox"
while read -r applet; do
  [[ -z "$applet" || "$applet" == busybox ]] && continue
  [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done < <("$BUSYBOX" --list)
install -m 0755 "$csagent" "$root/sbin/csagent"
install -m 0755 "$bde" "$root/sbin/bde"
install -m 0755 "$RECIPE_DIR/console" "$root/sbin/winsim-console"
mkdir -p "$root/mnt/x"
for lib in "${guest_libs[@]}"; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
for f in "${module_files[@]}"; do
  install -m 0644 "$f" "$root/lib/modules/$(basename "$f")"
done
# Load order for init: order (always), order-net (guests with a network), order-crypt (BitLocker).
if ((${#module_files[@]} > 0)); then
  printf '%s.ko\n' "${BASE_MODULES[@]}" > "$root/lib/modules/order"
  printf '%s.ko\n' "${NET_MODULES[@]}" > "$root/lib/modules/order-net"
  printf '%s.ko\n' "${CRYPT_MODULES[@]}" > "$root/lib/modules/order-crypt"
fi
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
# init mounts these four with one `mount -a` (one fork+exec instead of four).
cat > "$root/etc/fstab" << 'EOF'
proc /proc proc defaults 0 0
sysfs /sys sysfs defaults 0 0
devtmpfs /dev devtmpfs defaults 0 0
tmpfs /run tmpfs mode=0755 0 0
EOF
# init sleeps by reading with a timeout from this FIFO (no writer ever opens it).
mkfifo -m 0600 "$root/lib/winsim/tick"

# Uncompressed: under TCG the kernel unpacks a plain cpio faster than it inflates a gzip one
# (measured, see README.md). Size still costs guest time (the kernel copies every byte into its page
# cache on each boot, ~4 % of the kernel's boot for these 3.9 MB): keep the guest binaries small.
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
  cpio -o -H newc -R 0:0 --reproducible --quiet) > "$work/initramfs.cpio"
rm -rf "$root"

cat > "$work/manifest.json" << EOF
{
  "name": "winsim",
  "hash": "${hash}",
  "kernel": "vmlinux",
  "initrd": "initramfs.cpio",
  "kernel_source": "${kernel_source//\"/\\\"}",
  "format": ${FORMAT_VERSION}
}
EOF

chmod 0755 "$work"
if ! mv -T "$work" "$image_dir" 2>/dev/null; then
  # Another build of the same inputs finished first: its result is identical.
  [[ -f "$image_dir/manifest.json" ]] || die "could not move the image into $image_dir"
fi
trap - EXIT
rm -rf "$work"
echo "$image_dir"
