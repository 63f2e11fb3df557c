#!/usr/bin/env bash
# Turns YOUR Windows ISO into the lab's golden Windows image, unattended (docs/WINDOWS.md):
#
#   images/windows/build.sh --iso PATH [--out DIR] [options]
#
# One QEMU (q35, OVMF with Secure Boot, swtpm TPM 2.0, Hyper-V enlightenments) boots the ISO with a
# second CD, the answer media (label CHAOSLAB, made with xorriso): autounattend.xml (filled from
# autounattend.xml.in), chaoslab-setup.ps1, chaoslab-params.ps1 and csagent.exe. Windows Setup
# partitions the disk (UEFI/GPT), installs, logs on once and runs chaoslab-setup.ps1: csagent.exe as
# a service (its protocol lines on COM2), EMS on COM1 with the F8 boot menu, crash dumps, WinRE, BitLocker (TPM + recovery password), the password
# POSTed to 10.0.2.100:80 (escrow_receiver.py, the guest's only network path), shutdown.
#
# Output in --out (default ${CHAOSLAB_CACHE_DIR:-~/.cache/chaoslab}/windows):
#   windows.qcow2          the golden system disk (BitLocker-encrypted)
#   OVMF_VARS.fd           its UEFI variables (boot entries, Secure Boot keys)
#   tpm/                   its TPM state: BitLocker's TPM protector is sealed to it
#   recovery-password.txt  the escrowed 48-digit recovery password (0600)
#   admin-password.txt     the local administrator's password (0600)
#   serial.log             the guest's COM1 (@@winbuild step=... lines), image.json (what was built)
#   agent.log              the guest's COM2: csagent's lines whenever its service ran during the build
#
# Options:
#   --csagent PATH       the Windows agent (default build/windows/csagent.exe of this checkout)
#   --accel auto|kvm|tcg (auto: kvm when /dev/kvm is usable; TCG installs take hours)
#   --memory-mib N (4096: Windows 11 Setup wants 4 GiB)  --cpus N (2)  --disk-gb N (64, >= 32)
#   --image-index N      which image of install.wim (1; Server ISOs: 2 = Standard with Desktop)
#   --product-key KEY    omitted from the answer file when not given (evaluation media)
#   --admin-user NAME (chaoslab)  --admin-password PW (default: random, saved)
#   --computer-name NAME (CHAOSLAB-GOLD)  --escrow-host ID (golden)  --locale L (en-US)
#   --no-auto-reboot     a bugcheck stays on the blue screen (default: reboot, the 2024 boot loop)
#   --agent-args "..."   the service's arguments (default "--root C:\ --cloud 10.0.2.100:80 --serial
#                        COM2": COM1 belongs to EMS/SAC, so the lab reads the agent's lines on COM2)
#   --sensor-version V   the sensor version written to sensor.ini: 7.11 (default), 7.10, 7.11-fixed
#   --no-secure-boot     OVMF_CODE_4M.fd without Secure Boot (Windows Server; not Windows 11)
#   --vnc N              show the screen on VNC display 127.0.0.1:N (to watch or debug Setup)
#   --media-only         make only the answer media (answer.iso) in --out, then stop
#   --dry-run            print what would run (swtpm, qemu-system-x86_64) and change nothing
#   --boot-check N       boot the machine for up to N seconds (until UEFI has tried disk and CD), then
#                        check that UEFI ran (its boot manager on COM1), the TPM answered and the
#                        answer media was attached; for checking the machine where no ISO boots
#   --check              is the golden image in --out built? (windows.qcow2, OVMF_VARS.fd, tpm/,
#                        recovery-password.txt): exit 0 if so, else 3 naming what is missing
# Exit status: 0 done, 2 usage or input errors, 1 the build failed, 3 --check: not built.
set -euo pipefail

RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly RECIPE_DIR
readonly REPO_DIR="$(cd "$RECIPE_DIR/../.." && pwd)"

die() {
  echo "build.sh: $*" >&2
  exit 2
}
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

iso=""
out="${CHAOSLAB_WINDOWS_DIR:-${CHAOSLAB_CACHE_DIR:-${HOME:-/root}/.cache/chaoslab}/windows}"
csagent="$REPO_DIR/build/windows/csagent.exe"
accel=auto
memory_mib=4096
cpus=2
disk_gb=64
image_index=1
product_key=""
admin_user=chaoslab
admin_password=""
computer_name=CHAOSLAB-GOLD
escrow_host=golden
locale=en-US
auto_reboot=1
agent_args='--root C:\ --cloud 10.0.2.100:80 --serial COM2'
sensor_version=7.11
secure_boot=1
vnc=""
media_only=0
dry_run=0
check=0
boot_check=0
need() { (($1 >= 2)) || die "$2 needs a value"; }
while (($# > 0)); do
  case "$1" in
    --iso) need $# "$1"; iso="$2"; shift 2 ;;
    --out) need $# "$1"; out="$2"; shift 2 ;;
    --csagent) need $# "$1"; csagent="$2"; shift 2 ;;
    --kernel) need $# "$1"; shift 2 ;;  # what `chaoslab run` passes every recipe; no kernel here
    --accel) need $# "$1"; accel="$2"; shift 2 ;;
    --memory-mib) need $# "$1"; memory_mib="$2"; shift 2 ;;
    --cpus) need $# "$1"; cpus="$2"; shift 2 ;;
    --disk-gb) need $# "$1"; disk_gb="$2"; shift 2 ;;
    --image-index) need $# "$1"; image_index="$2"; shift 2 ;;
    --product-key) need $# "$1"; product_key="$2"; shift 2 ;;
    --admin-user) need $# "$1"; admin_user="$2"; shift 2 ;;
    --admin-password) need $# "$1"; admin_password="$2"; shift 2 ;;
    --computer-name) need $# "$1"; computer_name="$2"; shift 2 ;;
    --escrow-host) need $# "$1"; escrow_host="$2"; shift 2 ;;
    --locale) need $# "$1"; locale="$2"; shift 2 ;;
    --no-auto-reboot) auto_reboot=0; shift ;;
    --agent-args) need $# "$1"; agent_args="$2"; shift 2 ;;
    --sensor-version) need $# "$1"; sensor_version="$2"; shift 2 ;;
    --no-secure-boot) secure_boot=0; shift ;;
    --vnc) need $# "$1"; vnc="$2"; shift 2 ;;
    --media-only) media_only=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --boot-check) need $# "$1"; boot_check="$2"; shift 2 ;;
    --check) check=1; shift ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1' (--help lists the options)" ;;
  esac
done

if ((check)); then
  # The same files the libvirt backend clones for every Windows host (lab/libvirt/windows_golden.h).
  for f in windows.qcow2 OVMF_VARS.fd tpm recovery-password.txt; do
    [[ -e "$out/$f" ]] || {
      echo "images/windows: the golden image is not built: $out/$f is missing; make it with" \
        "images/windows/build.sh --iso YOUR.iso (see docs/WINDOWS.md)" >&2
      exit 3
    }
  done
  echo "images/windows: golden image in $out"
  exit 0
fi

# --- Inputs -----------------------------------------------------------------------------------------
[[ -n "$iso" ]] || die "no Windows ISO given: --iso PATH (your Windows Server or Windows 10/11 ISO; none is downloaded)"
[[ -f "$iso" ]] || die "the ISO '$iso' does not exist or is not a file"
iso="$(cd "$(dirname "$iso")" && pwd)/$(basename "$iso")"
is_count() { [[ "$2" =~ ^[0-9]+$ ]] && (($2 >= $3)) || die "$1 must be a whole number >= $3, got '$2'"; }
is_count --memory-mib "$memory_mib" 2048
is_count --cpus "$cpus" 1
is_count --disk-gb "$disk_gb" 32
is_count --image-index "$image_index" 1
[[ "$boot_check" =~ ^[0-9]+$ ]] || die "--boot-check must be seconds, got '$boot_check'"
[[ "$accel" =~ ^(auto|kvm|tcg)$ ]] || die "--accel must be auto, kvm or tcg, got '$accel'"
[[ -z "$vnc" || "$vnc" =~ ^[0-9]+$ ]] || die "--vnc must be a display number, got '$vnc'"
[[ "$computer_name" =~ ^[A-Za-z0-9-]{1,15}$ ]] ||
  die "--computer-name must be 1-15 letters, digits or '-' (a NetBIOS name), got '$computer_name'"
[[ "$admin_user" =~ ^[A-Za-z0-9._-]{1,20}$ ]] || die "--admin-user must be 1-20 of [A-Za-z0-9._-], got '$admin_user'"
[[ "$escrow_host" =~ ^[A-Za-z0-9._-]+$ ]] || die "--escrow-host must be letters, digits, '.', '_' or '-'"
[[ "$locale" =~ ^[a-z]{2,3}-[A-Za-z]{2,4}$ ]] || die "--locale must look like en-US, got '$locale'"
[[ "$sensor_version" =~ ^(7\.10|7\.11|7\.11-fixed)$ ]] || die "--sensor-version must be 7.10, 7.11 or 7.11-fixed, got '$sensor_version'"
[[ -z "$product_key" || "$product_key" =~ ^([A-Z0-9]{5}-){4}[A-Z0-9]{5}$ ]] ||
  die "--product-key must look like XXXXX-XXXXX-XXXXX-XXXXX-XXXXX"
# QEMU splits guestfwd's cmd: on spaces and options on commas: keep the output path plain.
[[ "$out" =~ ^[A-Za-z0-9._/~+-]+$ ]] || die "--out must be a path without spaces, commas or quotes, got '$out'"
if ((!dry_run)); then  # a dry run changes nothing
  mkdir -p -- "$out" || die "cannot create --out '$out'"
  out="$(cd "$out" && pwd)"
fi
if [[ ! -f "$csagent" ]]; then
  msg="csagent.exe not found at '$csagent' (build the Windows agent first, or --csagent PATH)"
  ((dry_run)) && echo "build.sh: note: $msg" >&2 || die "$msg"
fi
if [[ "$accel" == auto ]]; then
  if [[ -r /dev/kvm && -w /dev/kvm ]]; then accel=kvm; else accel=tcg; fi
fi

if ((secure_boot)); then
  ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.ms.fd
  ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.ms.fd
else
  ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
  ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
fi

# Windows gets the disk minus EFI (260 MiB), MSR (16 MiB), WinRE (1 GiB, the last partition, which
# takes what is left) and the GPT's own few MiB.
windows_mb=$((disk_gb * 1024 - 260 - 16 - 1024 - 8))

# --- The answer media ---------------------------------------------------------------------------------
# Fills autounattend.xml.in: values XML-escaped, the product key block dropped when there is none.
render_answer_file() {
  local password="<random, in admin-password.txt>"
  [[ -f "$out/admin-password.txt" ]] && password="$(head -n1 "$out/admin-password.txt")"
  LOCALE="$locale" WINDOWS_PARTITION_MB="$windows_mb" IMAGE_INDEX="$image_index" \
    PRODUCT_KEY="$product_key" COMPUTER_NAME="$computer_name" ADMIN_USER="$admin_user" \
    ADMIN_PASSWORD="$password" python3 - "$RECIPE_DIR/autounattend.xml.in" "$1" <<'PY'
import os, re, sys
from xml.sax.saxutils import escape
text = open(sys.argv[1], encoding="utf-8").read()
if not os.environ["PRODUCT_KEY"]:
    text = re.sub(r"[ \t]*<!--@PRODUCT_KEY_BEGIN@-->.*?<!--@PRODUCT_KEY_END@-->\n", "", text, flags=re.S)
else:
    text = re.sub(r"[ \t]*<!--@PRODUCT_KEY_(BEGIN|END)@-->\n", "", text)
text = re.sub(r"@([A-Z_]+)@", lambda m: escape(os.environ[m.group(1)]), text)
open(sys.argv[2], "w", encoding="utf-8").write(text)
PY
}

# PowerShell single-quoted strings: ' doubles.
ps_quote() { printf "'%s'" "${1//\'/\'\'}"; }

make_media() {
  local dir="$out/media"
  rm -rf -- "$dir"
  mkdir -p -- "$dir"
  render_answer_file "$dir/autounattend.xml"
  xmllint --noout --schema "$RECIPE_DIR/autounattend.xsd" "$dir/autounattend.xml" 2>"$out/xmllint.log" ||
    { cat "$out/xmllint.log" >&2; echo "build.sh: the answer file does not match autounattend.xsd" >&2; exit 1; }
  cp -- "$RECIPE_DIR/chaoslab-setup.ps1" "$dir/"
  {
    echo "# Written by images/windows/build.sh"
    echo "\$EscrowHost = $(ps_quote "$escrow_host")"
    echo "\$EscrowUrl = 'http://10.0.2.100/v1/escrow/key'"
    echo "\$AutoReboot = $auto_reboot"
    echo "\$AgentArgs = $(ps_quote "$agent_args")"
    echo "\$SensorVersion = $(ps_quote "$sensor_version")"
  } >"$dir/chaoslab-params.ps1"
  cp -- "$csagent" "$dir/csagent.exe"
  # Windows Setup looks for autounattend.xml at the root of every removable drive and CD.
  xorriso -as mkisofs -quiet -J -r -V CHAOSLAB -o "$out/answer.iso" "$dir" 2>"$out/xorriso.log" ||
    { cat "$out/xorriso.log" >&2; echo "build.sh: xorriso failed" >&2; exit 1; }
}

# --- The machine --------------------------------------------------------------------------------------
swtpm_setup_cmd=(swtpm_setup --tpm2 --tpmstate "$out/tpm" --createek --overwrite)
swtpm_cmd=(swtpm socket --tpm2 --tpmstate "dir=$out/tpm" --ctrl "type=unixio,path=$out/swtpm.sock"
  --terminate --daemon --pid "file=$out/swtpm.pid" --log "file=$out/swtpm.log")
if [[ "$accel" == kvm ]]; then
  cpu="host,hv-relaxed=on,hv-vapic=on,hv-spinlocks=0x1fff,hv-vpindex=on,hv-runtime=on,hv-synic=on,hv-stimer=on,hv-reset=on,hv-frequencies=on,hv-time=on,hv-crash=on"
else
  # TCG: QEMU 7.2 refuses hv-vpindex (and with it synic, stimer) without KVM.
  cpu="qemu64,hv-relaxed=on,hv-vapic=on,hv-spinlocks=0x1fff,hv-crash=on"
fi
relay="python3 $RECIPE_DIR/escrow_receiver.py --out $out/recovery-password.txt --host $escrow_host"
qemu_cmd=(qemu-system-x86_64
  -name chaoslab-windows-build
  -machine "q35,accel=$accel,smm=$( ((secure_boot)) && echo on || echo off)"
  -cpu "$cpu" -smp "$cpus" -m "$memory_mib"
  -global "driver=cfi.pflash01,property=secure,value=$( ((secure_boot)) && echo on || echo off)"
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$ovmf_code"
  -drive "if=pflash,format=raw,unit=1,file=$out/OVMF_VARS.fd"
  -chardev "socket,id=chrtpm,path=$out/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm
  -device tpm-crb,tpmdev=tpm0
  # q35's own AHCI (ide.0-5): drivers in the box, unlike virtio.
  -drive "if=none,id=disk0,format=qcow2,file=$out/windows.qcow2" -device ide-hd,drive=disk0,bus=ide.0,bootindex=1
  -drive "if=none,id=cd0,media=cdrom,readonly=on,file=$iso" -device ide-cd,drive=cd0,bus=ide.1,bootindex=2
  -drive "if=none,id=cd1,media=cdrom,readonly=on,file=$out/answer.iso" -device ide-cd,drive=cd1,bus=ide.2
  -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:$relay"
  -device e1000e,netdev=n0
  -rtc base=localtime
  -chardev "file,id=ser0,path=$out/serial.log" -serial chardev:ser0
  # COM2 (the second -serial): the agent's port, so that Windows has it from the first boot on.
  -chardev "file,id=ser1,path=$out/agent.log" -serial chardev:ser1
  -monitor "unix:$out/monitor.sock,server=on,wait=off"
  -display "$([[ -n "$vnc" ]] && echo "vnc=127.0.0.1:$vnc" || echo none)"
  -usb -device usb-tablet)

if ((dry_run)); then
  echo "# answer media: $out/answer.iso (label CHAOSLAB: autounattend.xml, chaoslab-setup.ps1," \
    "chaoslab-params.ps1, csagent.exe from $csagent)"
  echo "qemu-img create -f qcow2 $out/windows.qcow2 ${disk_gb}G"
  echo "cp $ovmf_vars $out/OVMF_VARS.fd"
  printf '%q ' "${swtpm_setup_cmd[@]}"; echo
  printf '%q ' "${swtpm_cmd[@]}"; echo
  printf '%q ' "${qemu_cmd[@]}"; echo
  echo "# then 'sendkey ret' on $out/monitor.sock once a second for 2 minutes (the ISO's" \
    "'Press any key to boot from CD' prompt), and wait for QEMU to exit (the guest shuts down)"
  exit 0
fi

for tool in qemu-system-x86_64 qemu-img swtpm swtpm_setup xorriso xmllint python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (make setup installs what the lab needs)"
done
for f in "$ovmf_code" "$ovmf_vars"; do [[ -f "$f" ]] || die "$f missing: apt-get install ovmf"; done

umask 077
if [[ ! -s "$out/admin-password.txt" ]]; then
  if [[ -n "$admin_password" ]]; then
    printf '%s\n' "$admin_password" >"$out/admin-password.txt"
  else
    # Letters, digits and one symbol of each class: Windows' complexity rules.
    printf 'Cl-%s!9\n' "$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 16)" >"$out/admin-password.txt"
  fi
fi
make_media
echo "build.sh: answer media $out/answer.iso" >&2
((media_only)) && exit 0

((boot_check)) && rm -f -- "$out/windows.qcow2"
[[ ! -e "$out/windows.qcow2" ]] || die "$out/windows.qcow2 exists already: remove it (or use another --out) to build anew"
rm -f -- "$out/recovery-password.txt" "$out/serial.log" "$out/agent.log"
qemu-img create -q -f qcow2 "$out/windows.qcow2" "${disk_gb}G"
cp -- "$ovmf_vars" "$out/OVMF_VARS.fd"
mkdir -p -- "$out/tpm"
"${swtpm_setup_cmd[@]}" >"$out/swtpm_setup.log" 2>&1 || { cat "$out/swtpm_setup.log" >&2; exit 1; }
"${swtpm_cmd[@]}"
qemu_pid=""
keys_pid=""
cleanup() {
  [[ -n "$keys_pid" ]] && kill "$keys_pid" 2>/dev/null || true
  [[ -n "$qemu_pid" ]] && kill "$qemu_pid" 2>/dev/null || true
  [[ -f "$out/swtpm.pid" ]] && kill "$(cat "$out/swtpm.pid")" 2>/dev/null || true
}
trap cleanup EXIT
echo "build.sh: installing Windows from $iso ($accel; follow $out/serial.log)" >&2
"${qemu_cmd[@]}" &
qemu_pid=$!
# The Windows ISO's UEFI loader asks "Press any key to boot from CD or DVD" and falls through to the
# (empty) disk after a few seconds: answer it for the first two minutes, through the monitor.
python3 - "$out/monitor.sock" <<'PY' &
import socket, sys, time
for _ in range(120):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"sendkey ret\n"); s.close()
    except OSError:
        pass
    time.sleep(1)
PY
keys_pid=$!
if ((boot_check)); then
  # Up to N seconds, but done as soon as UEFI has tried the disk and the CD (a loaded TCG host
  # needs far longer than an idle one, so a fixed sleep is either slow or flaky).
  for ((waited = 0; waited < boot_check; waited++)); do
    grep -q 'failed to load Boot.*DVD-ROM' "$out/serial.log" 2>/dev/null && break
    sleep 1
  done
  kill -0 "$qemu_pid" 2>/dev/null || { echo "build.sh: QEMU exited early" >&2; exit 1; }
  # HMP over the monitor socket: what the running machine has.
  info="$(python3 - "$out/monitor.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
s.sendall(b"info tpm\ninfo block\n"); time.sleep(2); print(s.recv(65536).decode("latin-1"))
PY
)"
  kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=""
  fail=0
  grep -q "BdsDxe" "$out/serial.log" || { echo "boot-check: no UEFI boot manager output on COM1" >&2; fail=1; }
  grep -q "tpm-crb" <<<"$info" && grep -q "tpm0" <<<"$info" || { echo "boot-check: no TPM in the machine" >&2; fail=1; }
  grep -q "answer.iso" <<<"$info" || { echo "boot-check: the answer media is not attached" >&2; fail=1; }
  grep -q "windows.qcow2" <<<"$info" || { echo "boot-check: the system disk is not attached" >&2; fail=1; }
  if ((fail)); then echo "$info" >&2; exit 1; fi
  echo "boot-check: UEFI ran ($(grep -c BdsDxe "$out/serial.log") boot manager lines on COM1), TPM 2.0 (tpm-crb via swtpm), system disk and both CDs attached" >&2
  exit 0
fi
wait "$qemu_pid" || { qemu_pid=""; echo "build.sh: QEMU failed; see $out/serial.log" >&2; exit 1; }
qemu_pid=""
grep -q "@@winbuild done" "$out/serial.log" ||
  { echo "build.sh: Windows shut down before chaoslab-setup.ps1 finished:" >&2; grep "@@winbuild" "$out/serial.log" >&2 || true; exit 1; }
[[ -s "$out/recovery-password.txt" ]] || { echo "build.sh: no recovery password reached the escrow" >&2; exit 1; }
cat >"$out/image.json" <<JSON
{"kind": "windows", "iso": "$iso", "accel": "$accel", "secure_boot": $secure_boot,
 "image_index": $image_index, "escrow_host": "$escrow_host", "auto_reboot": $auto_reboot,
 "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
JSON
echo "$out"
