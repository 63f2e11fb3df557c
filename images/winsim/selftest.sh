#!/usr/bin/env bash
# End-to-end check of the winsim image with real QEMU guests (TCG), run by CTest as winsim_boot_test.
#
#   selftest.sh --csagent PATH --channel-tool PATH [--kernel debian|PATH] [--cache DIR] [--timeout S]
#
# Boots two guests side by side:
#   healthy: sensor 7.11 + a good channel file, online: reaches "@@winsim ready", fetches a newer
#            channel file from a loopback HTTP server and sends a heartbeat with cloud=ok.
#   looping: sensor 7.11 + the Channel File 291: blue screen + "@@bugcheck" twice, with QMP showing
#            GUEST_PANICKED, RESET, GUEST_PANICKED, RESET (a boot loop).
# Every process it starts is stopped by pid and every temporary file removed, also on failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE

die() {
  echo "selftest: $*" >&2
  exit 2
}

csagent=""
channel_tool=""
kernel="debian"
cache_args=()
timeout_s=120
while (($# > 0)); do
  case "$1" in
    --csagent) csagent="${2:?--csagent needs a path}"; shift 2 ;;
    --channel-tool) channel_tool="${2:?--channel-tool needs a path}"; shift 2 ;;
    --kernel) kernel="${2:?--kernel needs debian or a path}"; shift 2 ;;
    --cache) cache_args=(--cache "${2:?--cache needs a folder}"); shift 2 ;;
    --timeout) timeout_s="${2:?--timeout needs seconds}"; shift 2 ;;
    *) die "unknown argument '$1' (usage: selftest.sh --csagent PATH --channel-tool PATH [--kernel debian|PATH] [--cache DIR] [--timeout S])" ;;
  esac
done
[[ -x "$csagent" ]] || die "csagent '$csagent' is not an executable file (build the csagent target first)"
[[ -x "$channel_tool" ]] || die "chaoslab-channel '$channel_tool' is not an executable file (build the chaoslab-channel target first)"
for tool in qemu-system-x86_64 qemu-img python3 busybox; do
  command -v "$tool" > /dev/null || die "$tool not found"
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/winsim-selftest.XXXXXX")"
pids=()
failed=1
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2> /dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2> /dev/null || true
  done
  if ((failed)); then
    local f
    for f in "$tmp"/*/serial.log "$tmp"/*/qmp.log "$tmp"/*/qemu.err; do
      [[ -s "$f" ]] || continue
      echo "----- ${f#"$tmp"/} -----" >&2
      tr -d '\r' < "$f" | tail -n 60 >&2
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# --- Image, content and disks ---------------------------------------------------------------------
image="$("$HERE/build.sh" --csagent "$csagent" --kernel "$kernel" "${cache_args[@]}" | tail -n 1)"
[[ -f "$image/manifest.json" ]] || die "build.sh did not produce an image (got '$image')"
initrd="$(sed -n 's/.*"initrd": *"\([^"]*\)".*/\1/p' "$image/manifest.json")"
echo "image: $image"

readonly CF=C-00000291-00000000
mkdir -p "$tmp/content" "$tmp/cloud/v1/content"
"$channel_tool" make good --version 1 -o "$tmp/content/$CF-00000001.sys" > /dev/null
"$channel_tool" make channel-291 --version 2 -o "$tmp/content/$CF-00000002.sys" > /dev/null
"$channel_tool" make good --version 3 -o "$tmp/cloud/v1/content/$CF-00000003.sys" > /dev/null
printf '291 3 %s\n' "$CF-00000003.sys" > "$tmp/cloud/v1/manifest"

"$HERE/mkdisk.sh" "$tmp/good.img" --sensor 7.11 --content "$tmp/content/$CF-00000001.sys"
"$HERE/mkdisk.sh" "$tmp/bad.img" --sensor 7.11 --content "$tmp/content/$CF-00000002.sys"
good_sum="$(sha256sum < "$tmp/good.img")"

# --- Content server on the loopback -------------------------------------------------------------
python3 -u -m http.server --bind 127.0.0.1 --directory "$tmp/cloud" 0 > "$tmp/http.log" 2>&1 &
pids+=($!)
port=""
for _ in $(seq 1 200); do
  port="$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' "$tmp/http.log" | head -n 1)"
  [[ -n "$port" ]] && break
  sleep 0.05
done
[[ -n "$port" ]] || die "the loopback HTTP server did not start: $(cat "$tmp/http.log")"

# --- Guests ---------------------------------------------------------------------------------------
# qboot starts faster than SeaBIOS and resets once per guest reset (SeaBIOS adds a second RESET).
bios_args=()
[[ -f /usr/share/qemu/qboot.rom ]] && bios_args=(-bios /usr/share/qemu/qboot.rom)

# start_guest NAME DISK CMDLINE_WORDS [NETWORK_PORT]
start_guest() {
  local name="$1" disk="$2" words="$3" net_port="${4:-}"
  local dir="$tmp/$name"
  mkdir -p "$dir"
  qemu-img create -q -f qcow2 -F raw -b "$disk" "$dir/overlay.qcow2"
  local argv=(qemu-system-x86_64 -accel tcg -M pc -m 256 -smp 1 "${bios_args[@]}"
    -nodefaults -no-user-config -nographic
    -kernel "$image/vmlinux" -initrd "$image/$initrd"
    -append "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests $words"
    -drive "file=$dir/overlay.qcow2,if=none,id=disk0,format=qcow2"
    -device "virtio-blk-pci,drive=disk0"
    -device pvpanic-pci -action panic=none
    -chardev "socket,id=serial0,path=$dir/serial.sock,server=on,wait=off,logfile=$dir/serial.log"
    -serial chardev:serial0
    -qmp "unix:$dir/qmp.sock,server=on,wait=off")
  if [[ -n "$net_port" ]]; then
    # busybox nc exits when the server closes, which closes the guest's connection too; OpenBSD nc
    # keeps it open, so an HTTP/1.0 client in the guest would wait for EOF until it times out.
    argv+=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:busybox nc 127.0.0.1 $net_port"
      -device "virtio-net-pci,netdev=n0,romfile=")
  fi
  printf '%q ' "${argv[@]}" > "$dir/argv"
  "${argv[@]}" > "$dir/qemu.out" 2> "$dir/qemu.err" &
  pids+=($!)
  # QMP event log: one line per event, "<unix time> <EVENT> <data>".
  python3 - "$dir/qmp.sock" "$dir/qmp.log" << 'EOF' &
import json, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
for _ in range(1000):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        break
    except OSError:
        time.sleep(0.01)
else:
    sys.exit("no QMP socket at " + path)
f = s.makefile("rwb", buffering=0)
f.readline()
f.write(b'{"execute":"qmp_capabilities"}\n')
with open(out, "a") as o:
    for line in f:
        m = json.loads(line)
        if "event" in m:
            o.write("%.3f %s %s\n" % (time.time(), m["event"], json.dumps(m.get("data", {}))))
            o.flush()
EOF
  pids+=($!)
}

# count PATTERN FILE: matching lines (0 when the file does not exist yet).
count() {
  local n
  n="$(grep -ac -- "$1" "$2" 2> /dev/null)" || true
  echo "${n:-0}"
}

t0="$(now)"
start_guest healthy "$tmp/good.img" "winsim.host=selftest-ok winsim.cloud=10.0.2.100:80 winsim.poll_ms=300" "$port"
start_guest looping "$tmp/bad.img" "winsim.host=selftest-loop"

healthy_done="" looping_done="" t_ready=""
deadline=$(($(date +%s) + timeout_s))
while [[ -z "$healthy_done" || -z "$looping_done" ]]; do
  (($(date +%s) < deadline)) || die "timed out after ${timeout_s}s (healthy done: ${healthy_done:-no}, looping done: ${looping_done:-no})"
  if [[ -z "$t_ready" ]] && (($(count '@@winsim ready' "$tmp/healthy/serial.log") > 0)); then
    t_ready="$(now)"
  fi
  if [[ -z "$healthy_done" ]] && (($(count 'cloud=ok' "$tmp/healthy/serial.log") > 0)); then
    healthy_done="$(now)"
  fi
  # Done after the second panic and the reset that follows it.
  if [[ -z "$looping_done" ]] && (($(count GUEST_PANICKED "$tmp/looping/qmp.log") >= 2)) &&
    [[ "$(awk '{print $2}' "$tmp/looping/qmp.log" | tail -n 1)" == RESET ]]; then
    looping_done="$(now)"
  fi
  sleep 0.05
done

# --- Assertions -----------------------------------------------------------------------------------
errors=0
fail() {
  echo "FAIL: $*" >&2
  errors=$((errors + 1))
}
# expect_in_order FILE LINE... : each marker appears, after the previous one.
expect_in_order() {
  local file="$1" after=0 marker line
  shift
  for marker in "$@"; do
    # awk reads the file itself: in a pipeline (tr | awk) its early exit could SIGPIPE the writer,
    # and with pipefail and set -e the script then died silently (seen as a flaky test under ctest).
    line="$(awk -v m="$marker" -v a="$after" 'NR > a && index($0, m) { print NR; exit }' "$file")"
    if [[ -z "$line" ]]; then
      fail "${file#"$tmp"/}: '$marker' missing (or out of order)"
      return
    fi
    after="$line"
  done
}

# The sensor (loading cached content) and init (bringing the network up) run concurrently after
# phase=drivers, so their lines are checked in two chains.
expect_in_order "$tmp/healthy/serial.log" \
  "@@winsim phase=bootmgr mode=normal" "@@winsim phase=kernel" "@@winsim phase=drivers" \
  "@@csagent loaded sensor=7.11 channel=291 version=1" "@@csagent fetched channel=291 version=3" \
  "@@csagent heartbeat channel=291 version=3 cloud=ok"
expect_in_order "$tmp/healthy/serial.log" \
  "@@winsim phase=drivers" "@@csagent ipc-notification" "@@winsim ready"
expect_in_order "$tmp/healthy/serial.log" \
  "@@winsim phase=drivers" "@@winsim phase=network state=up" "@@winsim ready"
(($(count '@@bugcheck' "$tmp/healthy/serial.log") == 0)) || fail "the healthy guest bugchecked"
(($(count GUEST_PANICKED "$tmp/healthy/qmp.log") == 0)) || fail "the healthy guest panicked"

expect_in_order "$tmp/looping/serial.log" \
  "@@winsim phase=drivers" "Stop code: PAGE_FAULT_IN_NONPAGED_AREA" \
  "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys" \
  "@@winsim phase=bootmgr mode=normal" "@@winsim phase=drivers" \
  "@@bugcheck code=0x00000050 name=PAGE_FAULT_IN_NONPAGED_AREA module=csagent.sys"
(($(count '@@winsim ready' "$tmp/looping/serial.log") == 0)) || fail "the looping guest reached ready"
# QMP: panic, reset(s), panic, reset(s). SeaBIOS may add a second RESET after a guest reset.
events="$(awk '{print $2}' "$tmp/looping/qmp.log" | uniq | tr '\n' ' ')"
[[ "$events" == "GUEST_PANICKED RESET GUEST_PANICKED RESET " ]] ||
  fail "looping/qmp.log: expected GUEST_PANICKED RESET GUEST_PANICKED RESET, got: $events"
grep -q '"action": "run"' "$tmp/looping/qmp.log" || fail "GUEST_PANICKED did not carry action=run"
[[ "$(sha256sum < "$tmp/good.img")" == "$good_sum" ]] || fail "the base disk good.img was modified"

((errors == 0)) || exit 1
failed=0
mapfile -t panics < <(awk '$2 == "GUEST_PANICKED" {print $1}' "$tmp/looping/qmp.log")
echo "healthy: ready after $(elapsed "$t0" "$t_ready") s wall, heartbeat after $(elapsed "$t0" "$healthy_done") s"
echo "looping: first panic after $(elapsed "$t0" "${panics[0]}") s wall, crash-to-crash $(elapsed "${panics[0]}" "${panics[1]}") s"
echo "winsim_boot_test: PASS"
