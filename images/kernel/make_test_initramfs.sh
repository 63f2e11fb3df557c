#!/bin/bash
# Writes a tiny uncompressed initramfs (busybox-static) for timing the
# kernel: /init prints "@@init uptime=<guest seconds>" and then
#   - with "winsim.crash" on the command line: panics via sysrq-trigger,
#   - otherwise: reboot -f (QEMU exits when run with -no-reboot).
# Usage: make_test_initramfs.sh OUTPUT.cpio
set -euo pipefail
die() { echo "make_test_initramfs.sh: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: make_test_initramfs.sh OUTPUT.cpio"
out="$1"
busybox="$(command -v busybox || true)"
[[ -n "${busybox}" ]] && file -L "${busybox}" | grep -q 'statically linked' ||
  die "needs a static busybox (apt-get install busybox-static)"
root="$(mktemp -d)"
trap 'rm -rf "${root}"' EXIT
mkdir -p "${root}"/{bin,proc,dev}
cp "${busybox}" "${root}/bin/busybox"
cat > "${root}/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
read up idle < /proc/uptime
echo "@@init uptime=$up"
case " $(/bin/busybox cat /proc/cmdline) " in
  *" winsim.crash "*) echo c > /proc/sysrq-trigger ;;
esac
/bin/busybox reboot -f
INIT
chmod +x "${root}/init"
# Uncompressed on purpose: gunzip under TCG costs ~0.2 s of boot.
(cd "${root}" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "${out}"
echo "${out}"
