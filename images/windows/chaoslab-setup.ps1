# Runs once in the freshly installed Windows (FirstLogonCommands of autounattend.xml), from the
# answer media that images/windows/build.sh made. Turns the installation into the lab's golden
# image, then shuts it down:
#   1. csagent.exe (the lab's sensor, built with mingw under agents/) installed as an automatic
#      service; its content folder C:\Windows\System32\drivers\CrowdStrike created. Services do not
#      start in safe mode unless listed under SafeBoot, so it stays off there as the real driver did.
#   2. Emergency Management Services on COM1 (bcdedit /ems, /bootems): the lab's console (SAC) for
#      safe mode, key entry and file deletion; the boot menu shows on the serial port too, with the
#      legacy policy, so that F8 (ESC 8 over EMS) offers Advanced Boot Options (Safe Mode, Repair
#      Your Computer). The agent's own lines go to COM2 (build.sh's --agent-args: --serial COM2).
#   3. Crash dumps: small memory dump; AutoReboot as build.sh was told (on: the host boot-loops as
#      the 2024 hosts did).
#   4. WinRE enabled (the 'winre' recovery path).
#   5. BitLocker on C: with a TPM protector and a recovery password protector; the recovery
#      password POSTed to the lab's key escrow at http://10.0.2.100/v1/escrow/key (during the build
#      build.sh's escrow_receiver.py answers there; the guest's only network path is that guestfwd).
#   6. Shutdown (build.sh waits for QEMU to exit).
# Progress goes to C:\chaoslab-setup.log and to COM1 as "@@winbuild step=<name> rc=<n>" lines,
# which build.sh reads from the serial log. Nothing here was run on real Windows where it was written
# (no Windows ISO there): see docs/WINDOWS.md.
param([string]$Media = "D:")
$ErrorActionPreference = "Stop"
. (Join-Path $Media "chaoslab-params.ps1")   # $EscrowHost, $AutoReboot, $AgentArgs, $EscrowUrl, $SensorVersion

$Log = "C:\chaoslab-setup.log"
function Say([string]$line) {
  Add-Content -Path $Log -Value ("{0:u} {1}" -f (Get-Date), $line)
  try {
    # COM1 is free until EMS takes it over at the next boot.
    $port = New-Object System.IO.Ports.SerialPort "COM1", 115200
    $port.Open(); $port.WriteLine($line); $port.Close()
  } catch { }
}
function Step([string]$name, [scriptblock]$body) {
  try {
    & $body
    Say "@@winbuild step=$name rc=0"
  } catch {
    Say "@@winbuild step=$name rc=1 reason=$($_.Exception.Message -replace '\s+', '-')"
    throw
  }
}

$Stage = "C:\chaoslab-stage.txt"
$done = @()
if (Test-Path $Stage) { $done = Get-Content $Stage }
function Mark([string]$name) { Add-Content -Path $Stage -Value $name }

if ($done -notcontains "agent") {
  Step "agent" {
    $dir = "C:\Program Files\CrowdStrike"
    New-Item -ItemType Directory -Force -Path $dir | Out-Null
    New-Item -ItemType Directory -Force -Path "C:\Windows\System32\drivers\CrowdStrike" | Out-Null
    Copy-Item (Join-Path $Media "csagent.exe") (Join-Path $dir "csagent.exe") -Force
    # The sensor refuses to run without its version file (as csagent.exe --install would write it).
    $conf = "C:\ProgramData\CrowdStrike"
    New-Item -ItemType Directory -Force -Path $conf | Out-Null
    Set-Content -Path (Join-Path $conf "sensor.ini") -Value "version=$SensorVersion" -Encoding ascii
    $bin = "`"$dir\csagent.exe`" $AgentArgs"
    & sc.exe create CSAgent binPath= $bin start= auto DisplayName= "CrowdStrike Falcon (chaoslab)"
    if ($LASTEXITCODE -ne 0) { throw "sc-create-failed-$LASTEXITCODE" }
    # Start early among the automatic services.
    & sc.exe config CSAgent group= "Base" | Out-Null
    # Restart it if it dies, as the real service is restarted.
    & sc.exe failure CSAgent reset= 0 actions= restart/1000 | Out-Null
  }
  Mark "agent"
}

if ($done -notcontains "ems") {
  Step "ems" {
    # Each bcdedit is checked: a silently missing setting would only show at the lab's first
    # recovery, as a menu that never comes.
    function Bcd { & bcdedit @args; if ($LASTEXITCODE -ne 0) { throw "bcdedit-$($args[0])-failed-$LASTEXITCODE" } }
    Bcd /emssettings EMSPORT:1 EMSBAUDRATE:115200
    Bcd /ems "{current}" on
    Bcd /bootems "{bootmgr}" on
    # A boot menu the lab can answer over the serial port (safe mode, WinRE), not a silent boot.
    Bcd /set "{bootmgr}" displaybootmenu yes
    Bcd /timeout 5
    # The legacy (text) boot menu policy: the boot manager then takes F8 during the timeout and
    # shows "Advanced Boot Options" (Safe Mode, Repair Your Computer) over EMS. The lab picks Safe
    # Mode there with F8 (ESC 8 on the serial port) and the arrow keys. The default "standard"
    # policy ignores F8 and has no text menu for it.
    Bcd /set "{default}" bootmenupolicy legacy
  }
  Mark "ems"
}

if ($done -notcontains "crashdump") {
  Step "crashdump" {
    $cc = "HKLM:\SYSTEM\CurrentControlSet\Control\CrashControl"
    Set-ItemProperty -Path $cc -Name CrashDumpEnabled -Value 3 -Type DWord   # small memory dump
    Set-ItemProperty -Path $cc -Name AutoReboot -Value $AutoReboot -Type DWord
    Set-ItemProperty -Path $cc -Name AlwaysKeepMemoryDump -Value 0 -Type DWord
    # The golden image must not change under the lab's feet.
    $au = "HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU"
    New-Item -Force -Path $au | Out-Null
    Set-ItemProperty -Path $au -Name NoAutoUpdate -Value 1 -Type DWord
  }
  Mark "crashdump"
}

if ($done -notcontains "winre") {
  Step "winre" {
    & reagentc /enable
    # Already enabled is fine; anything else is not.
    $info = & reagentc /info | Out-String
    if ($info -notmatch "Enabled") { throw "winre-not-enabled" }
  }
  Mark "winre"
}

if ($done -notcontains "bitlocker") {
  if (-not (Get-Command Enable-BitLocker -ErrorAction SilentlyContinue)) {
    # Windows Server: the feature first, then a reboot, then this script again (AutoLogon count 3).
    Step "bitlocker-feature" {
      Install-WindowsFeature BitLocker -IncludeAllSubFeature -IncludeManagementTools | Out-Null
      $again = "powershell -NoProfile -ExecutionPolicy Bypass -File $Media\chaoslab-setup.ps1 -Media $Media"
      Set-ItemProperty "HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce" chaoslab $again
    }
    Restart-Computer -Force
    exit 0
  }
  Step "bitlocker" {
    $tpm = Get-Tpm
    if (-not $tpm.TpmReady) { throw "tpm-not-ready" }
    Enable-BitLocker -MountPoint "C:" -EncryptionMethod XtsAes128 -UsedSpaceOnly -SkipHardwareTest `
      -RecoveryPasswordProtector | Out-Null
    Add-BitLockerKeyProtector -MountPoint "C:" -TpmProtector | Out-Null
    # Encrypt now, so that the golden image is encrypted through and through.
    $deadline = (Get-Date).AddMinutes(120)
    while ((Get-BitLockerVolume -MountPoint "C:").EncryptionPercentage -lt 100) {
      if ((Get-Date) -gt $deadline) { throw "encryption-timeout" }
      Start-Sleep -Seconds 10
    }
  }
  Mark "bitlocker"
}

if ($done -notcontains "escrow") {
  Step "escrow" {
    $protector = (Get-BitLockerVolume -MountPoint "C:").KeyProtector |
      Where-Object { $_.KeyProtectorType -eq "RecoveryPassword" } | Select-Object -First 1
    if (-not $protector) { throw "no-recovery-password" }
    $uri = "$EscrowUrl" + "?host=" + [uri]::EscapeDataString($EscrowHost)
    $r = Invoke-WebRequest -UseBasicParsing -Method Post -Uri $uri -ContentType "text/plain" `
      -Body ($protector.RecoveryPassword + "`n") -TimeoutSec 30
    if ($r.StatusCode -ne 201) { throw "escrow-status-$($r.StatusCode)" }
  }
  Mark "escrow"
}

Say "@@winbuild done"
Stop-Computer -Force
