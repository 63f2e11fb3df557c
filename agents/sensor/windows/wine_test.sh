#!/usr/bin/env bash
# The Windows sensor's tests under Wine (Debian's wine64), registered with ctest by
# agents/sensor/CMakeLists.txt (label "windows"). Exit 77 = skipped (ctest SKIP_RETURN_CODE).
#
#   wine_test.sh prefix  PREFIX                  make a fresh Wine prefix (the fixture's setup)
#   wine_test.sh unit    PREFIX TEST_EXE          sensor_windows_test.exe: loader, interpreter,
#                                                 protocol parsers, Windows platform layer
#   wine_test.sh csagent PREFIX CSAGENT_EXE CHANNEL_TOOL
#                                                 csagent.exe --console on a system-disk folder:
#                                                 7.11 faults on the 291 file, 7.11-fixed rejects
#                                                 it, a fetch from a loopback content server, safe
#                                                 mode, the critical flag under Wine, the ready
#                                                 line, and --serial COM2 (a pty behind the
#                                                 prefix's dosdevices/com2) carrying the lines
#   wine_test.sh service PREFIX CSAGENT_EXE CHANNEL_TOOL
#                                                 csagent.exe as a service in Wine's service
#                                                 control manager: --install, net start/stop, an
#                                                 automatic start at a (Wine) reboot that loads
#                                                 the 291 file and faults, --uninstall
#
# What Wine cannot show: the bugcheck itself. Wine has no kernel to stop; it lacks
# RtlSetProcessIsCritical and refuses ProcessBreakOnTermination, so csagent reports the critical
# flag as refused and its fault ends only the process. The tests check exactly that.
set -euo pipefail

mode="${1:?usage: wine_test.sh prefix|unit|csagent PREFIX ...}"
prefix="${2:?prefix folder}"

# CHAOSLAB_WINE: the Wine loader to use instead of searching (empty: behave as if none).
wine=""
for candidate in ${CHAOSLAB_WINE-wine64 /usr/lib/wine/wine64 wine}; do
  if command -v "$candidate" >/dev/null 2>&1; then
    wine="$(command -v "$candidate")"
    break
  fi
done
if [[ -z "$wine" ]]; then
  echo "SKIPPED: wine64 is not installed (apt-get install wine64; make setup does), so the" \
    "Windows sensor's tests cannot run here" >&2
  exit 77
fi
wineserver="$(dirname "$wine")/wineserver"
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
# No X server: Wine must not try to open windows (it falls back to no display anyway).
unset DISPLAY

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# COM2 under Wine (the csagent and service modes): \\.\COM2 is whatever
# $WINEPREFIX/dosdevices/com2 links to. A pty stands in for the UART (Wine's serial driver works on
# any tty: GetCommState/SetCommState are tcgetattr/tcsetattr). A reader copies what arrives to a
# file and, when stopped, records whether the pty's speed is 115200, which csagent sets through
# SetCommState (the reader starts it at 9600). The reader makes the pty its own controlling
# terminal, so that wineserver (a session leader, which opens it for csagent.exe) does not, and
# gets no SIGHUP when the reader ends.
reader_pid=""
com2="$prefix/dosdevices/com2"
com_reader() { # com_reader OUT: starts the reader ($reader_pid); returns once com2 links to it
  rm -f "$com2" "$1" "$1.speed"
  python3 -c '
import fcntl, os, signal, sys, termios, tty
master, slave = os.openpty()
try:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
except OSError:
    pass  # already a process group leader: the pty is just not our controlling terminal
tty.setraw(slave)
attrs = termios.tcgetattr(slave)
attrs[4] = attrs[5] = termios.B9600
termios.tcsetattr(slave, termios.TCSANOW, attrs)
def stop(*_):
    with open(sys.argv[2] + ".speed", "w") as f:
        f.write("115200\n" if termios.tcgetattr(slave)[5] == termios.B115200 else "other\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
os.symlink(os.ttyname(slave), sys.argv[1] + ".new")
os.replace(sys.argv[1] + ".new", sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(os.read(master, 4096))
' "$com2" "$1" &
  reader_pid=$!
  for _ in $(seq 50); do
    [[ -L "$com2" ]] && return 0
    sleep 0.1
  done
  fail "the COM2 reader did not start"
}
com_reader_stop() { # com_reader_stop OUT LAST_TEXT: once LAST_TEXT arrived (or 5 s), stops it
  for _ in $(seq 50); do
    grep -qF -- "$2" "$1" 2>/dev/null && break
    sleep 0.1
  done
  kill "$reader_pid"
  wait "$reader_pid" || true
  reader_pid=""
  rm -f "$com2"
}

case "$mode" in
prefix)
  start=$SECONDS
  # The last run's wineserver lingers a few seconds after its last client; a new prefix in the
  # same folder must wait for it, or wineboot talks to a server whose prefix is gone.
  if [[ -d "$prefix" ]]; then "$wineserver" -w 2>/dev/null || true; fi
  rm -rf "$prefix"
  mkdir -p "$(dirname "$prefix")"
  if ! "$wine" wineboot --init >"$prefix.log" 2>&1; then
    cat "$prefix.log" >&2
    fail "wineboot --init failed in $prefix"
  fi
  # Wine's SCM gives a starting service 10 s to connect to it (Windows: 30 s) and reads the limit
  # from ServicesPipeTimeout, as a string. A loaded CI machine can take longer to start a process;
  # `net start CSAgent` failed about once in 20 runs, possibly so (the cause was not captured).
  "$wine" reg add 'HKLM\System\CurrentControlSet\Control' /v ServicesPipeTimeout /t REG_SZ \
    /d 60000 /f >"$prefix.reg.log" 2>&1 || { cat "$prefix.reg.log" >&2; fail "reg add ServicesPipeTimeout"; }
  "$wineserver" -w 2>/dev/null || true # wait until the prefix is written
  [[ -f "$prefix/system.reg" ]] || fail "no system.reg in $prefix after wineboot"
  echo "wine prefix ready in $((SECONDS - start)) s: $prefix ($("$wine" --version))"
  ;;

unit)
  exe="${3:?test exe}"
  [[ -f "$prefix/system.reg" ]] || fail "no Wine prefix at $prefix (the prefix test runs first)"
  "$wine" "$exe" --gtest_brief=1
  ;;

csagent)
  exe="${3:?csagent.exe}"
  channel_tool="${4:?chaoslab-channel}"
  [[ -f "$prefix/system.reg" ]] || fail "no Wine prefix at $prefix (the prefix test runs first)"
  work="$(mktemp -d "${TMPDIR:-/tmp}/csagent-wine.XXXXXX")"
  server_pid=""
  cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    if [[ -n "$reader_pid" ]]; then kill "$reader_pid" 2>/dev/null || true; fi
    rm -f "$com2"
    "$wine" reg delete 'HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot' /f >/dev/null 2>&1 || true
    rm -rf "$work"
  }
  trap cleanup EXIT

  # A system disk folder: sensor.ini and the content folder, as C:\ would have them. Wine maps
  # the Unix root to Z:, so the agent sees it as Z:/<work>/root.
  disk() { # disk NAME SENSOR_VERSION [CHANNEL_KIND]
    local root="$work/$1"
    mkdir -p "$root/ProgramData/CrowdStrike" "$root/Windows/System32/drivers/CrowdStrike"
    echo "version=$2" >"$root/ProgramData/CrowdStrike/sensor.ini"
    if [[ -n "${3:-}" ]]; then
      "$channel_tool" make "$3" --version 291 \
        -o "$root/Windows/System32/drivers/CrowdStrike/C-00000291-00000000-00000291.sys" >/dev/null
    fi
    echo "Z:$root"
  }
  run() { # run LOG ARGS...: csagent.exe's output to LOG, its exit code to $rc
    local log="$1"
    shift
    rc=0
    timeout 60 "$wine" "$exe" "$@" >"$log" 2>&1 || rc=$?
  }
  expect() { # expect LOG TEXT
    grep -qF -- "$2" "$1" || {
      cat "$1" >&2
      fail "$(basename "$1"): no line with '$2'"
    }
  }
  ready_line="@@winsim ready os=windows"
  # The ready line comes once, right after the first IPC notification (when the ready file is
  # written, the moment winsim's boot manager says "@@winsim ready"), before any heartbeat.
  expect_ready() { # expect_ready LOG
    [[ "$(grep -cxF -- "$ready_line" "$1")" == 1 ]] || {
      cat "$1" >&2
      fail "$(basename "$1"): not exactly one '$ready_line'"
    }
    grep -A1 -F "@@csagent ipc-notification" "$1" | grep -qxF -- "$ready_line" || {
      cat "$1" >&2
      fail "$(basename "$1"): '$ready_line' does not follow the IPC notification"
    }
  }
  expect_no_ready() { # expect_no_ready LOG
    if grep -qF -- "@@winsim ready" "$1"; then
      cat "$1" >&2
      fail "$(basename "$1"): a ready line although the sensor did not get ready"
    fi
  }

  # 1. Sensor 7.11, the 291 file, console mode with --critical: the fault path is reached, the
  #    critical flag is asked for (and refused by Wine), the fault ends the process with 80.
  root="$(disk s711 7.11 channel-291)"
  run "$work/711.log" --console --critical --root "$root" --ipc-ms 10 --heartbeats 1
  expect "$work/711.log" "@@csagent critical="
  expect "$work/711.log" "@@csagent loaded sensor=7.11 channel=291 version=291"
  expect "$work/711.log" "@@csagent fault code=0xc0000005"
  if grep -qF "@@csagent critical=set" "$work/711.log"; then
    expect "$work/711.log" "critical=yes stop=CRITICAL_PROCESS_DIED"
  else
    expect "$work/711.log" "@@csagent critical=refused"
    expect "$work/711.log" "critical=no stop=none"
  fi
  [[ $rc -eq 80 ]] || fail "7.11 on the 291 file: exit $rc, expected 80 (the bugcheck exit)"
  expect_no_ready "$work/711.log"
  echo "ok 1: 7.11 + 291 file faults (exit $rc): $(grep -F '@@csagent critical=' "$work/711.log")"

  # 2. Without --critical the flag is not even asked for (a developer's machine must not stop).
  run "$work/nocrit.log" --console --root "$root" --ipc-ms 10 --heartbeats 1
  expect "$work/nocrit.log" "@@csagent critical=off"
  [[ $rc -eq 80 ]] || fail "7.11 without --critical: exit $rc, expected 80"
  echo "ok 2: console mode without --critical leaves the flag off"

  # 3. 7.11-fixed rejects the same file and keeps running; good content on 7.11 runs.
  root="$(disk fixed 7.11-fixed channel-291)"
  run "$work/fixed.log" --console --root "$root" --ipc-ms 10 --poll-ms 10 --heartbeats 2
  expect "$work/fixed.log" "@@csagent rejected sensor=7.11-fixed channel=291 version=291"
  expect "$work/fixed.log" "@@csagent heartbeat channel=291 version=0"
  [[ $rc -eq 0 ]] || fail "7.11-fixed: exit $rc, expected 0"
  root="$(disk good 7.11 good)"
  run "$work/good.log" --console --root "$root" --ipc-ms 10 --poll-ms 10 --heartbeats 2
  expect "$work/good.log" "@@csagent heartbeat channel=291 version=291"
  [[ $rc -eq 0 ]] || fail "7.11 on good content: exit $rc, expected 0"
  [[ -f "$work/good/ProgramData/CrowdStrike/csagent.ready" ]] || fail "no ready file"
  expect_ready "$work/good.log"
  expect_ready "$work/fixed.log" # the rejected file leaves the sensor running: healthy
  echo "ok 3: 7.11-fixed rejects the 291 file; good content runs; ready file and ready line"

  # 4. The boot race over Winsock: no cached content, the content server (here a Python HTTP
  #    server on the loopback serving the protocol's paths as files) offers the 291 file.
  root="$(disk fetch 7.11)"
  site="$work/site"
  mkdir -p "$site/v1/content"
  "$channel_tool" make channel-291 --version 292 \
    -o "$site/v1/content/C-00000291-00000000-00000292.sys" >/dev/null
  echo "291 292 C-00000291-00000000-00000292.sys" >"$site/v1/manifest"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$site" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
    sleep 0.1
  done
  run "$work/fetch.log" --console --root "$root" --cloud "127.0.0.1:$port" --ipc-ms 3000 \
    --poll-ms 10 --heartbeats 1
  expect "$work/fetch.log" "@@csagent fetched channel=291 version=292"
  expect "$work/fetch.log" "@@csagent fault code=0xc0000005"
  [[ $rc -eq 80 ]] || fail "fetched 291 file: exit $rc, expected 80"
  cmp -s "$site/v1/content/C-00000291-00000000-00000292.sys" \
    "$work/fetch/Windows/System32/drivers/CrowdStrike/C-00000291-00000000-00000292.sys" ||
    fail "the fetched file on disk differs from the server's"
  kill "$server_pid"
  server_pid=""
  echo "ok 4: fetched the 291 file over Winsock, stored it, faulted"

  # 5. Safe mode (the SafeBoot\Option key Windows sets in a safe boot): the sensor does not start.
  "$wine" reg add 'HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Option' /v OptionValue \
    /t REG_DWORD /d 1 /f >/dev/null 2>&1 || fail "reg add SafeBoot\\Option"
  root="$(disk safe 7.11 channel-291)"
  run "$work/safe.log" --console --critical --root "$root" --ipc-ms 10 --heartbeats 1
  expect "$work/safe.log" "@@csagent not-started reason=safe-mode"
  grep -qF "@@csagent loaded" "$work/safe.log" && fail "the sensor loaded content in safe mode"
  [[ $rc -eq 5 ]] || fail "safe mode: exit $rc, expected 5"
  "$wine" reg delete 'HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot' /f >/dev/null 2>&1
  echo "ok 5: in safe mode the sensor does not start"

  # 6. The service mode outside the service control manager fails clearly; usage errors are
  #    exit 2 in both modes.
  # (One case only: Wine takes ~12 s to give up connecting to the SCM.)
  run "$work/service.log" --root "$root"
  expect "$work/service.log" "StartServiceCtrlDispatcher"
  [[ $rc -eq 6 ]] || fail "service mode from a console: exit $rc, expected 6"
  run "$work/usage.log" --console --root "$root" --bogus 1
  [[ $rc -eq 2 ]] || fail "unknown flag: exit $rc, expected 2"
  run "$work/usage.log" --service --bogus 1
  [[ $rc -eq 2 ]] || fail "unknown service flag: exit $rc, expected 2"
  run "$work/usage.log" --help
  expect "$work/usage.log" "csagent.exe --install"
  [[ $rc -eq 0 ]] || fail "--help: exit $rc"
  echo "ok 6: the service mode needs the SCM; bad flags are usage errors; --help"

  # 7. --serial COM2, the lab's protocol port on Windows guests (COM1 is EMS/SAC's): the lines
  #    arrive there, with the ready line on good content; with 7.11 on the 291 file, the fault
  #    line and no ready line.
  root="$(disk serial-good 7.11 good)"
  com_reader "$work/com2-good.txt"
  run "$work/serial-good.log" --console --serial COM2 --root "$root" --ipc-ms 10 --poll-ms 10 \
    --heartbeats 1
  com_reader_stop "$work/com2-good.txt" "@@csagent heartbeat"
  [[ $rc -eq 0 ]] || { cat "$work/serial-good.log" >&2; fail "--serial COM2 on good content: exit $rc"; }
  expect "$work/com2-good.txt" "@@csagent loaded sensor=7.11 channel=291 version=291"
  expect_ready "$work/com2-good.txt"
  expect "$work/com2-good.txt" "@@csagent heartbeat channel=291 version=291"
  expect "$work/com2-good.txt.speed" "115200"
  cmp -s "$work/serial-good.log" "$work/com2-good.txt" ||
    fail "COM2 did not get the same lines as the console: $(diff "$work/serial-good.log" "$work/com2-good.txt")"
  root="$(disk serial-291 7.11 channel-291)"
  com_reader "$work/com2-291.txt"
  run "$work/serial-291.log" --console --serial COM2 --root "$root" --ipc-ms 10 --heartbeats 1
  com_reader_stop "$work/com2-291.txt" "@@csagent fault"
  [[ $rc -eq 80 ]] || fail "--serial COM2 on the 291 file: exit $rc, expected 80"
  expect "$work/com2-291.txt" "@@csagent loaded sensor=7.11 channel=291 version=291"
  expect "$work/com2-291.txt" "@@csagent fault code=0xc0000005"
  expect_no_ready "$work/com2-291.txt"
  # A port that does not exist is reported, and the sensor runs anyway.
  run "$work/serial-missing.log" --console --serial COM7 --root "$root" --ipc-ms 10 --heartbeats 1
  expect "$work/serial-missing.log" "csagent: --serial COM7:"
  expect "$work/serial-missing.log" "@@csagent fault code=0xc0000005"
  echo "ok 7: --serial COM2 (a pty, set to 115200 by csagent) carried the lines: ready on good" \
    "content; the fault and no ready line on the 291 file; a missing port is reported"
  ;;

service)
  exe="${3:?csagent.exe}"
  channel_tool="${4:?chaoslab-channel}"
  [[ -f "$prefix/system.reg" ]] || fail "no Wine prefix at $prefix (the prefix test runs first)"
  work="$(mktemp -d "${TMPDIR:-/tmp}/csagent-wine-service.XXXXXX")"
  installed=0
  cleanup() {
    if ((installed)); then "$wine" "$exe" --uninstall >/dev/null 2>&1 || true; fi
    if [[ -n "$reader_pid" ]]; then kill "$reader_pid" 2>/dev/null || true; fi
    rm -f "$com2"
    rm -rf "$work"
  }
  trap cleanup EXIT
  root="$work/disk"
  content="$root/Windows/System32/drivers/CrowdStrike"
  log="$root/ProgramData/CrowdStrike/csagent.log"
  mkdir -p "$root/ProgramData/CrowdStrike" "$content"
  "$channel_tool" make good --version 5 -o "$content/C-00000291-00000000-00000005.sys" >/dev/null
  wait_for() { # wait_for TEXT SECONDS: until the service's log has a line with TEXT
    local end=$((SECONDS + $2))
    while ((SECONDS < end)); do
      grep -qF -- "$1" "$log" 2>/dev/null && return 0
      sleep 0.2
    done
    cat "$log" >&2 2>/dev/null || true
    fail "the service's log has no '$1' after $2 s"
  }

  # --install writes sensor.ini (--sensor-version) and registers an automatic-start service.
  "$wine" "$exe" --install --sensor-version 7.11 --root "Z:$root" --poll-ms 200 --serial COM2 \
    >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "--install"; }
  installed=1
  grep -qx "version=7.11" "$root/ProgramData/CrowdStrike/sensor.ini" || fail "no sensor.ini"
  # (Wine's sc.exe has no "qc": read the service's registry key.)
  key='HKLM\SYSTEM\CurrentControlSet\Services\CSAgent'
  "$wine" reg query "$key" >"$work/key.log" 2>&1 || fail "the service is not registered"
  grep -Eq "Start +REG_DWORD +0x2\b" "$work/key.log" || { cat "$work/key.log" >&2; fail "not automatic start"; }
  grep -qF -- "--service --root Z:$root" "$work/key.log" ||
    { cat "$work/key.log" >&2; fail "ImagePath lacks --service and the flags"; }

  "$wine" reg query 'HKLM\System\CurrentControlSet\Control' /v ServicesPipeTimeout 2>/dev/null |
    grep -q "60000" || fail "the prefix has no ServicesPipeTimeout (the prefix test sets it)"

  # 1. Started by the SCM on good content: it runs, asks for the critical flag, says it is ready
  #    (in its log and on COM2), stops cleanly.
  com_reader "$work/com2-start.txt"
  "$wine" net start CSAgent >"$work/net-start.log" 2>&1 ||
    { cat "$work/net-start.log" "$log" >&2 2>/dev/null; fail "net start CSAgent"; }
  wait_for "@@csagent heartbeat channel=291 version=5" 20
  grep -qxF "@@winsim ready os=windows" "$log" || fail "the service did not say it is ready"
  grep -qF "@@csagent critical=" "$log" || fail "the service did not ask for the critical flag"
  "$wine" net stop CSAgent >/dev/null 2>&1 || fail "net stop CSAgent"
  wait_for "@@csagent stopped reason=stop" 10
  com_reader_stop "$work/com2-start.txt" "@@csagent stopped reason=stop"
  for want in "@@csagent loaded sensor=7.11 channel=291 version=5" "@@winsim ready os=windows" \
    "@@csagent heartbeat channel=291 version=5" "@@csagent stopped reason=stop"; do
    grep -qF -- "$want" "$work/com2-start.txt" ||
      { cat "$work/com2-start.txt" >&2; fail "the service's COM2 has no '$want'"; }
  done
  echo "ok 1: service started, ran good content, said ready (log and COM2), stopped (critical" \
    "flag cleared first)"

  # 2. A reboot with the 291 file in the content folder: Wine's SCM starts the service by
  #    itself (automatic start), the sensor loads the file and faults, as at every boot on
  #    19 July 2024. On Windows the critical flag turns this into CRITICAL_PROCESS_DIED.
  timeout 30 "$wineserver" -w || fail "Wine did not shut down"
  "$channel_tool" make channel-291 --version 291 \
    -o "$content/C-00000291-00000000-00000291.sys" >/dev/null
  : >"$log"
  com_reader "$work/com2-boot.txt"
  "$wine" wineboot --restart >/dev/null 2>&1 || fail "wineboot --restart"
  wait_for "@@csagent fault code=0xc0000005" 30
  grep -qF "@@csagent loaded sensor=7.11 channel=291 version=291" "$log" ||
    fail "the fault came before the 291 file was loaded"
  if grep -qF "@@winsim ready" "$log"; then fail "a ready line before the fault"; fi
  com_reader_stop "$work/com2-boot.txt" "@@csagent fault"
  grep -qF "@@csagent fault code=0xc0000005" "$work/com2-boot.txt" ||
    { cat "$work/com2-boot.txt" >&2; fail "the fault line did not reach COM2"; }
  if grep -qF "@@winsim ready" "$work/com2-boot.txt"; then fail "a ready line on COM2"; fi
  echo "ok 2: at the (Wine) reboot the service started by itself, loaded the 291 file, faulted" \
    "(the fault line on COM2, no ready line):" \
    "$(grep -F '@@csagent critical=' "$log")"

  # 3. --uninstall removes it.
  "$wine" "$exe" --uninstall >"$work/uninstall.log" 2>&1 ||
    { cat "$work/uninstall.log" >&2; fail "--uninstall"; }
  installed=0
  # DeleteService only marks the service; the SCM removes its key once it has stopped and the last
  # handle is closed. After the fault the SCM restarts it every second (the failure action), so
  # one of those starts may still be ending: give it a few seconds.
  end=$((SECONDS + 10))
  while ((SECONDS < end)) && "$wine" reg query "$key" >/dev/null 2>&1; do sleep 0.2; done
  if "$wine" reg query "$key" >/dev/null 2>&1; then fail "CSAgent still registered 10 s after --uninstall"; fi
  echo "ok 3: --uninstall removed the service"
  ;;

*)
  fail "unknown mode $mode"
  ;;
esac
