#!/usr/bin/env bash
# images/windows without Windows: the answer file against autounattend.xsd and its structure, the
# build script's argument errors and its dry run, the answer media, and the escrow receiver.
# Needs xmllint, xorriso and python3 (make setup). Runs in a second; no VM, no ISO.
set -uo pipefail

RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$RECIPE_DIR/build.sh"
XSD="$RECIPE_DIR/autounattend.xsd"
T="$(mktemp -d)"
trap 'rm -rf -- "$T"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }
# expect_rc WANT DESCRIPTION -- command...: runs it, keeps stdout/stderr in $T/out, $T/err.
expect_rc() {
  local want="$1" what="$2"
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if ((rc == want)); then ok "$what (exit $rc)"; else fail "$what: exit $rc, expected $want; stderr: $(cat "$T/err")"; fi
}
expect_in() {
  grep -qF -- "$2" "$1" && ok "$3" || fail "$3: '$2' not in $1: $(head -c 600 "$1")"
}
xpath() { xmllint --xpath "$2" "$1" 2>/dev/null; }

touch "$T/win.iso"
printf 'MZ not really a program\n' >"$T/csagent.exe"

# --- Argument errors: exit 2 and say what is wrong -----------------------------------------------
expect_rc 2 "no --iso" -- "$BUILD" --out "$T/o"
expect_in "$T/err" "no Windows ISO given: --iso PATH" "no --iso names the option"
expect_rc 2 "missing ISO file" -- "$BUILD" --iso "$T/absent.iso"
expect_in "$T/err" "'$T/absent.iso' does not exist" "missing ISO is named"
expect_rc 2 "--iso without value" -- "$BUILD" --iso
expect_rc 2 "unknown option" -- "$BUILD" --iso "$T/win.iso" --colour blue
expect_in "$T/err" "unknown argument '--colour'" "unknown option is named"
expect_rc 2 "disk too small" -- "$BUILD" --iso "$T/win.iso" --disk-gb 8 --dry-run
expect_in "$T/err" "--disk-gb must be a whole number >= 32" "disk size limit is named"
expect_rc 2 "bad accel" -- "$BUILD" --iso "$T/win.iso" --accel hvf --dry-run
expect_rc 2 "bad product key" -- "$BUILD" --iso "$T/win.iso" --product-key 12345 --dry-run
expect_rc 2 "computer name too long" -- "$BUILD" --iso "$T/win.iso" --computer-name ABCDEFGHIJKLMNOPQ --dry-run
expect_rc 2 "unknown sensor version" -- "$BUILD" --iso "$T/win.iso" --sensor-version 7.12 --dry-run
expect_in "$T/err" "--sensor-version must be 7.10, 7.11 or 7.11-fixed, got '7.12'" "bad sensor version is named"
expect_rc 2 "out path with a space" -- "$BUILD" --iso "$T/win.iso" --out "$T/a b" --dry-run
expect_rc 2 "no csagent.exe for a real build" -- "$BUILD" --iso "$T/win.iso" --out "$T/o" --csagent "$T/none.exe"
expect_in "$T/err" "csagent.exe not found" "missing agent is named"
# What `chaoslab run` asks every recipe.
expect_rc 3 "--check: no golden image yet" -- "$BUILD" --out "$T/none" --check
expect_in "$T/err" "$T/none/windows.qcow2 is missing" "--check names the missing file"
expect_in "$T/err" "build.sh --iso YOUR.iso" "--check gives the build command"
mkdir -p "$T/gold/tpm" && touch "$T/gold/windows.qcow2" "$T/gold/OVMF_VARS.fd" "$T/gold/recovery-password.txt"
expect_rc 0 "--check: a built golden image" -- "$BUILD" --out "$T/gold" --check

# --- Dry run: the exact commands, nothing created ------------------------------------------------
expect_rc 0 "dry run" -- "$BUILD" --iso "$T/win.iso" --out "$T/dry" --csagent "$T/csagent.exe" --accel tcg --dry-run
[[ ! -e "$T/dry" ]] && ok "dry run created nothing" || fail "dry run created $T/dry"
q="$(grep '^qemu-system-x86_64 ' "$T/out")"
[[ -n "$q" ]] && ok "dry run prints the qemu command" || fail "no qemu command in: $(cat "$T/out")"
# Run the printed command through the shell's parser to get its words back.
eval "words=($q)"
joined=" ${words[*]} "
for want in "-machine q35,accel=tcg,smm=on" \
  "-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.ms.fd" \
  "-drive if=pflash,format=raw,unit=1,file=$T/dry/OVMF_VARS.fd" \
  "-tpmdev emulator,id=tpm0,chardev=chrtpm" "-device tpm-crb,tpmdev=tpm0" \
  "-chardev socket,id=chrtpm,path=$T/dry/swtpm.sock" \
  "-drive if=none,id=cd0,media=cdrom,readonly=on,file=$T/win.iso -device ide-cd,drive=cd0" \
  "-drive if=none,id=cd1,media=cdrom,readonly=on,file=$T/dry/answer.iso -device ide-cd,drive=cd1" \
  "-device ide-hd,drive=disk0,bus=ide.0,bootindex=1" \
  "-cpu qemu64,hv-relaxed=on,hv-vapic=on,hv-spinlocks=0x1fff,hv-crash=on" \
  "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:python3 $RECIPE_DIR/escrow_receiver.py --out $T/dry/recovery-password.txt --host golden" \
  "-device e1000e,netdev=n0" "-chardev file,id=ser0,path=$T/dry/serial.log"; do
  [[ "$joined" == *" $want"* ]] && ok "qemu has: $want" || fail "qemu lacks '$want': $q"
done
# COM1 (EMS/SAC, the build's serial.log) first, then COM2, the agent's port: QEMU numbers the ports
# in the order of -serial.
serials="$(grep -o -- "-serial [^ ]*" <<<"$q" | tr '\n' ' ')"
[[ "$serials" == "-serial chardev:ser0 -serial chardev:ser1 " ]] && ok "two serial ports, COM1 then COM2" ||
  fail "serial ports: '$serials'"
[[ "$joined" == *" -chardev file,id=ser1,path=$T/dry/agent.log "* ]] && ok "COM2 goes to agent.log" ||
  fail "no COM2 chardev to agent.log: $q"
# Exactly one network, restricted: the guest reaches nothing but the escrow receiver.
n=$(grep -o -- "-netdev" <<<"$q" | wc -l)
((n == 1)) && ok "one -netdev" || fail "$n -netdev options"
expect_in "$T/out" "swtpm socket --tpm2 --tpmstate dir=$T/dry/tpm" "dry run prints swtpm"
expect_rc 0 "dry run, KVM, no Secure Boot" -- "$BUILD" --iso "$T/win.iso" --out "$T/dry" --csagent "$T/csagent.exe" --accel kvm --no-secure-boot --dry-run
expect_in "$T/out" "hv-vpindex=on" "KVM gets the full Hyper-V set"
expect_in "$T/out" "OVMF_CODE_4M.fd" "no Secure Boot: plain OVMF"
expect_in "$T/out" "smm=off" "no Secure Boot: no SMM"

# --- The answer media ----------------------------------------------------------------------------
expect_rc 0 "answer media" -- "$BUILD" --iso "$T/win.iso" --out "$T/m" --csagent "$T/csagent.exe" --media-only \
  --computer-name WS-GOLD-01 --admin-password 'P&ss<w>rd"1' --image-index 2 --no-auto-reboot --escrow-host gold-01
A="$T/m/media/autounattend.xml"
xmllint --noout --schema "$XSD" "$A" 2>"$T/err" && ok "answer file matches autounattend.xsd" || fail "schema: $(cat "$T/err")"
grep -q "@[A-Z_]*@" "$A" && fail "placeholders left in $A" || ok "no placeholders left"
ns='urn:schemas-microsoft-com:unattend'
sel() { echo "//*[local-name()='$1' and namespace-uri()='$ns']"; }
[[ "$(xpath "$A" "count(//*[local-name()='settings'])")" == 3 ]] && ok "three passes" || fail "passes"
for pass in windowsPE specialize oobeSystem; do
  [[ "$(xpath "$A" "count(//*[local-name()='settings'][@pass='$pass'])")" == 1 ]] && ok "pass $pass" || fail "pass $pass missing"
done
types="$(xpath "$A" "$(sel CreatePartition)/*[local-name()='Type']/text()" | tr '\n' ' ')"
[[ "$types" == "EFI MSR Primary Primary " ]] && ok "GPT layout EFI, MSR, Windows, WinRE" || fail "partition types: $types"
[[ "$(xpath "$A" "string($(sel ModifyPartition)[*[local-name()='Letter']='C']/*[local-name()='PartitionID'])")" == 3 ]] &&
  ok "C: is partition 3" || fail "C: partition"
[[ "$(xpath "$A" "string($(sel InstallTo)/*[local-name()='PartitionID'])")" == 3 ]] && ok "installs to partition 3" || fail "InstallTo"
[[ "$(xpath "$A" "string($(sel ModifyPartition)[*[local-name()='PartitionID']='4']/*[local-name()='TypeID'])")" == \
  "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC" ]] && ok "WinRE partition type" || fail "WinRE TypeID"
[[ "$(xpath "$A" "string($(sel MetaData)/*[local-name()='Value'])")" == 2 ]] && ok "image index 2" || fail "image index"
[[ "$(xpath "$A" "count($(sel ProductKey))")" == 0 ]] && ok "no product key element without --product-key" || fail "product key"
[[ "$(xpath "$A" "string($(sel ComputerName))")" == WS-GOLD-01 ]] && ok "computer name" || fail "computer name"
# The password survives XML escaping exactly.
[[ "$(xpath "$A" "string($(sel AdministratorPassword)/*[local-name()='Value'])")" == 'P&ss<w>rd"1' ]] &&
  ok "password XML-escaped and intact" || fail "password: $(xpath "$A" "string($(sel AdministratorPassword))")"
# Settings in the component Windows reads them from.
for pair in "Microsoft-Windows-Setup:DiskConfiguration" "Microsoft-Windows-Setup:ImageInstall" \
  "Microsoft-Windows-International-Core-WinPE:SetupUILanguage" "Microsoft-Windows-Shell-Setup:ComputerName" \
  "Microsoft-Windows-Shell-Setup:FirstLogonCommands" "Microsoft-Windows-Shell-Setup:AutoLogon"; do
  c="${pair%%:*}" e="${pair##*:}"
  [[ "$(xpath "$A" "count(//*[local-name()='component'][@name='$c']/*[local-name()='$e'])")" == 1 ]] &&
    ok "$e in $c" || fail "$e not in $c"
done
[[ "$(xpath "$A" "count(//*[local-name()='settings'][@pass='specialize']/*[local-name()='component'][@name='Microsoft-Windows-Shell-Setup']/*[local-name()='ComputerName'])")" == 1 ]] &&
  ok "ComputerName in specialize" || fail "ComputerName pass"
expect_in "$A" "chaoslab-setup.ps1 -Media %d:" "first logon runs chaoslab-setup.ps1 from the media"
P="$T/m/media/chaoslab-params.ps1"
expect_in "$P" "\$AutoReboot = 0" "--no-auto-reboot reaches the guest"
expect_in "$P" "\$EscrowHost = 'gold-01'" "escrow host reaches the guest"
expect_in "$P" "\$SensorVersion = '7.11'" "the sensor version (default 7.11) reaches the guest"
expect_in "$P" "\$EscrowUrl = 'http://10.0.2.100/v1/escrow/key'" "escrow at the lab's guestfwd address"
expect_in "$P" "\$AgentArgs = '--root C:\\ --cloud 10.0.2.100:80 --serial COM2'" \
  "the service writes its lines to COM2 by default (COM1 is EMS/SAC's)"
S="$T/m/media/chaoslab-setup.ps1"
for want in "Bcd /ems" "Bcd /bootems" "CrashDumpEnabled" "-TpmProtector" "-RecoveryPasswordProtector" \
  "Invoke-WebRequest -UseBasicParsing -Method Post" "sc.exe create CSAgent" "version=\$SensorVersion" "Stop-Computer" "reagentc /enable"; do
  expect_in "$S" "$want" "setup script: $want"
done
# The F8 menu (Advanced Boot Options: Safe Mode over EMS), set in the EMS step, every bcdedit checked.
ems_step="$(sed -n '/Step "ems"/,/Mark "ems"/p' "$S")"
grep -qxF '    Bcd /set "{default}" bootmenupolicy legacy' <<<"$ems_step" &&
  ok "EMS step: bootmenupolicy legacy (F8 Advanced Boot Options)" || fail "EMS step lacks bootmenupolicy legacy: $ems_step"
n=$(grep -c '^    Bcd /' <<<"$ems_step")
((n == 6)) && ! grep -q '& bcdedit /' <<<"$ems_step" && ok "EMS step: six bcdedit calls, each checked" ||
  fail "EMS step: $n checked bcdedit calls"
# An explicit --agent-args replaces the default, COM2 included.
expect_rc 0 "answer media with --agent-args" -- "$BUILD" --iso "$T/win.iso" --out "$T/a" --csagent "$T/csagent.exe" \
  --media-only --agent-args '--root C:\ --serial COM3'
expect_in "$T/a/media/chaoslab-params.ps1" "\$AgentArgs = '--root C:\\ --serial COM3'" "--agent-args reaches the guest"
[[ "$(stat -c %a "$T/m/admin-password.txt")" == 600 ]] && ok "admin password file is 0600" || fail "admin-password.txt mode"
files="$(xorriso -indev "$T/m/answer.iso" -ls / 2>/dev/null | tr -d "'" | sort | tr '\n' ' ')"
[[ "$files" == "autounattend.xml chaoslab-params.ps1 chaoslab-setup.ps1 csagent.exe " ]] &&
  ok "answer.iso holds the four files" || fail "answer.iso: $files"
label="$(xorriso -indev "$T/m/answer.iso" -pvd_info 2>/dev/null | sed -n 's/^Volume Id *: *//p')"
[[ "$label" == CHAOSLAB ]] && ok "answer.iso label CHAOSLAB" || fail "label '$label'"

# With a product key the block stays and still matches the schema.
expect_rc 0 "answer media with a product key" -- "$BUILD" --iso "$T/win.iso" --out "$T/k" --csagent "$T/csagent.exe" \
  --media-only --product-key VK7JG-NPHTM-C97JM-9MPGT-3V66T
[[ "$(xpath "$T/k/media/autounattend.xml" "string($(sel ProductKey)/*[local-name()='Key'])")" == VK7JG-NPHTM-C97JM-9MPGT-3V66T ]] &&
  ok "product key in the answer file" || fail "product key missing"
xmllint --noout --schema "$XSD" "$T/k/media/autounattend.xml" 2>/dev/null && ok "with key: schema" || fail "with key: schema"

# The schema refuses what Windows Setup would trip over.
bad() {
  sed "$1" "$A" >"$T/bad.xml"
  xmllint --noout --schema "$XSD" "$T/bad.xml" 2>/dev/null && fail "schema accepted: $2" || ok "schema refuses $2"
}
bad 's|<Type>MSR</Type>|<Type>Recovery</Type>|' "an unknown partition type"
bad 's|<Format>NTFS</Format>|<Format>exFAT</Format>|' "an unknown file system"
bad 's|<ComputerName>WS-GOLD-01</ComputerName>|<ComputerName>A-NAME-OF-MORE-THAN-15</ComputerName>|' "a long computer name"
bad 's|pass="specialize"|pass="windowsPE"|' "a pass twice"
bad 's|<PlainText>true</PlainText>|<PlainText>yes</PlainText>|' "a non-boolean"
bad 's|<HideEULAPage>|<HideEulaPage>|; s|</HideEULAPage>|</HideEulaPage>|' "a misspelt setting"
bad 's|publicKeyToken="31bf3856ad364e35"|publicKeyToken="0000000000000000"|' "a wrong public key token"

# --- The escrow receiver (what answers the guest's POST during the build) -------------------------
R="$RECIPE_DIR/escrow_receiver.py"
good="111111-222222-333333-444444-555555-666666-700700-088088"
post() { printf 'POST %s HTTP/1.1\r\nHost: 10.0.2.100\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s' "$1" "${#2}" "$2"; }
post "/v1/escrow/key?host=golden" "$good"$'\n' | python3 "$R" --out "$T/rp.txt" --host golden >"$T/resp"
expect_in "$T/resp" "HTTP/1.1 201 Created" "escrow receiver stores a valid password"
[[ "$(cat "$T/rp.txt")" == "$good" && "$(stat -c %a "$T/rp.txt")" == 600 ]] && ok "password file written, 0600" || fail "rp.txt"
rm -f "$T/rp.txt"
post "/v1/escrow/key?host=golden" "111111-222222-333333-444444-555555-666666-700700-088089" |
  python3 "$R" --out "$T/rp.txt" --host golden >"$T/resp"
expect_in "$T/resp" "400" "a group that is not a multiple of 11 is refused"
post "/v1/escrow/key?host=other" "$good" | python3 "$R" --out "$T/rp.txt" --host golden >"$T/resp"
expect_in "$T/resp" "404" "another host is refused"
printf 'GET /v1/escrow/key?host=golden HTTP/1.1\r\n\r\n' | python3 "$R" --out "$T/rp.txt" --host golden >"$T/resp"
expect_in "$T/resp" "405" "GET is refused"
[[ ! -e "$T/rp.txt" ]] && ok "nothing written on refusals" || fail "rp.txt written on a refusal"

if ((failures)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "all passed"
