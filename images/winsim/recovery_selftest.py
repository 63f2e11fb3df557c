#!/usr/bin/env python3
"""Real-VM tests of the winsim recovery paths (CTest winsim_{bitlocker,usb,rescue,pxe}_test, label vm).

    recovery_selftest.py SCENARIO... --bin BUILD/bin [--kernel custom|debian|PATH] [--cache DIR]

SCENARIO is bitlocker, usb, rescue or pxe. Every boot is one QEMU process started with -no-reboot,
as the lab's backend relaunches QEMU on each reset: a guest that restarts (or panics) ends the
process, and the next boot gets its own kernel command line (winsim.boot=) and TPM secret (fw_cfg), as the
lab's QEMU backend gives it. The console is driven through the serial socket; the serial log is
what is checked. Every process started here is stopped by pid and the temporary folder removed.

  bitlocker  encrypted disk with the Channel File 291: host-side proof that nothing is readable
             without a key; normal boot with a wrong TPM secret -> BitLocker recovery, locked;
             safe mode without the password -> del refused, wrong password refused; normal boot
             with the TPM -> still crashes, the file still on disk; safe mode with the password ->
             unlock, del, restart; normal boot with the TPM -> ready
  usb        usb boot without the stick -> boot-failed; with it -> del, bcdedit, restart -> ready
  rescue     rescue VM with the encrypted disk attached -> unlock, del; the disk then boots -> ready
  pxe        escrow down -> repair failed, console; escrow up -> repair ok, reboot -> ready
"""

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CF_BAD = "C-00000291-00000000-00000002.sys"
DRIVERS = r"C:\Windows\System32\drivers\CrowdStrike"
DEL_QUOTED = "del '" + DRIVERS + r"\C-00000291*.sys'"
DEL_UNQUOTED = "del " + DRIVERS + r"\C-00000291*.sys"
WRONG_PASSWORD = "-".join(["000011"] * 8)  # well-formed (multiples of 11), not the volume's
# Only the prefix: the rest of the line races the kernel's panic output on the UART and is now and
# then garbled (a doubled character).
BUGCHECK = "@@bugcheck code=0x00000050"
TIMEOUT = 120  # seconds per expected line; the machine is shared with other builds


class Failure(Exception):
    pass


def run(argv, check=True, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        raise Failure("%s failed (%d): %s%s" % (argv[0], r.returncode, r.stdout, r.stderr))
    return r


class Lab:
    """Image, tools, disks and the temporary folder shared by one run."""

    def __init__(self, args):
        self.bin = args.bin
        self.tool = {n: os.path.join(args.bin, n) for n in
                     ("csagent", "bde", "chaoslab-bde", "chaoslab-channel", "chaoslab-content-fixture",
                      "chaoslab-relay")}
        for name, path in self.tool.items():
            if not os.access(path, os.X_OK):
                raise Failure("%s not found in %s (build it first)" % (name, args.bin))
        self.tmp = tempfile.mkdtemp(prefix="winsim-recovery.")
        argv = [os.path.join(HERE, "build.sh"), "--csagent", self.tool["csagent"],
                "--bde", self.tool["bde"], "--kernel", args.kernel]
        if args.cache:
            argv += ["--cache", args.cache]
        self.image = run(argv).stdout.strip().splitlines()[-1]
        with open(os.path.join(self.image, "manifest.json")) as f:
            self.initrd = re.search(r'"initrd": *"([^"]+)"', f.read()).group(1)
        self.bad = os.path.join(self.tmp, CF_BAD)
        run([self.tool["chaoslab-channel"], "make", "channel-291", "--version", "2", "-o", self.bad])
        self.boots = []  # (name, wall s, cpu s)
        self.procs = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def plain_disk(self, name):
        out = self.path(name + ".img")
        run([os.path.join(HERE, "mkdisk.sh"), out, "--sensor", "7.11", "--content", self.bad])
        return out

    def encrypted_disk(self, name):
        """An encrypted system disk with the bad file: (image, recovery password, tpm secret)."""
        plain = self.plain_disk(name + "-plain")
        enc = self.path(name + ".img")
        pw, tpm = self.path(name + ".pw"), self.path(name + ".tpm")
        run([self.tool["chaoslab-bde"], "encrypt", "--in", plain, "--out", enc,
             "--recovery-password-out", pw, "--tpm-secret-out", tpm])
        with open(pw) as f:
            password = f.read().strip()
        with open(tpm) as f:
            secret = f.read().strip()
        return enc, password, secret

    def media(self):
        out = self.path("winpe.img")
        if not os.path.exists(out):
            run([os.path.join(HERE, "mkmedia.sh"), out])
        return out

    def overlay(self, base, name):
        out = self.path(name + ".qcow2")
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, out])
        return out

    def driver_files(self, overlay, password=None):
        """The files in the CrowdStrike folder of a (stopped) guest's disk, decrypted if needed."""
        raw = self.path("inspect-raw.img")
        plain = self.path("inspect-plain.img")
        for f in (raw, plain):
            if os.path.exists(f):
                os.unlink(f)
        run(["qemu-img", "convert", "-O", "raw", overlay, raw])
        if password:
            run([self.tool["chaoslab-bde"], "decrypt", "--in", raw, "--out", plain,
                 "--recovery-password", password])
        else:
            os.rename(raw, plain)
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLSRC="/dev/null")
        r = run(["mdir", "-b", "-i", plain, "::/Windows/System32/drivers/CrowdStrike"], env=env)
        return sorted(os.path.basename(l.strip()) for l in r.stdout.splitlines() if l.strip())

    def close(self, keep=False):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if keep:
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Boot:
    """One boot of one machine: a QEMU process that ends when the guest resets."""

    def __init__(self, lab, name, disks, words, net_port=None, credential=None, tpm=None):
        self.lab, self.name = lab, name
        self.dir = lab.path("boot-%02d-%s" % (len(lab.boots) + 1, name))
        os.makedirs(self.dir)
        self.log = os.path.join(self.dir, "serial.log")
        self.cursor = 0
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-M", "pc", "-m", "256", "-smp", "1"]
        if os.path.exists("/usr/share/qemu/qboot.rom"):
            argv += ["-bios", "/usr/share/qemu/qboot.rom"]
        argv += ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                 "-kernel", os.path.join(lab.image, "vmlinux"),
                 "-initrd", os.path.join(lab.image, lab.initrd),
                 "-append", "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable "
                            "no_timer_check cryptomgr.notests " + words]
        for i, (path, fmt, read_only) in enumerate(disks):
            drive = "file=%s,if=none,id=disk%d,format=%s" % (path, i, fmt)
            if read_only:
                drive += ",readonly=on"
            argv += ["-drive", drive, "-device", "virtio-blk-pci,drive=disk%d" % i]
        argv += ["-device", "pvpanic-pci", "-action", "panic=none",
                 "-chardev", "socket,id=s0,path=%s/serial.sock,server=on,wait=off,logfile=%s"
                 % (self.dir, self.log),
                 "-serial", "chardev:s0"]
        if tpm:
            # As the lab hands it over: a 0600 file as fw_cfg, not a command-line word.
            secret_file = os.path.join(self.dir, "tpm.secret")
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, tpm.encode())
            os.close(fd)
            argv += ["-fw_cfg", "name=opt/chaoslab/tpm,file=" + secret_file]
        if net_port:
            # The lab's own relay, presenting the host's escrow credential as a run does.
            relay = "%s --port %d" % (lab.tool["chaoslab-relay"], net_port)
            if credential:
                relay += " --credential-file " + credential
            argv += ["-netdev", "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:" + relay,
                     "-device", "virtio-net-pci,netdev=n0,romfile="]
        self.cpu0 = self._children_cpu()
        self.t0 = time.time()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "qemu.err"), "w"))
        lab.procs.append(self.proc)
        self.sock = None
        for _ in range(500):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(os.path.join(self.dir, "serial.sock"))
                self.sock = s
                break
            except OSError:
                time.sleep(0.01)
        if self.sock is None:
            raise Failure("%s: no serial socket" % name)
        # A connected client that does not read would stall the guest's serial port once the
        # socket buffer is full; the log file is what the checks read.
        threading.Thread(target=self._drain, args=(self.sock,), daemon=True).start()

    @staticmethod
    def _drain(sock):
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    @staticmethod
    def _children_cpu():
        u = resource.getrusage(resource.RUSAGE_CHILDREN)
        return u.ru_utime + u.ru_stime

    def text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("latin-1").replace("\r", "")
        except FileNotFoundError:
            return ""

    def expect(self, what, timeout=TIMEOUT):
        """Waits for `what` (a string) after the previous match; returns the line it is in."""
        deadline = time.time() + timeout
        while True:
            t = self.text()
            i = t.find(what, self.cursor)
            if i >= 0:
                end = t.find("\n", i)
                # A machine line is complete only with its newline: on a loaded host the serial
                # log can end in the middle of one (a prompt has no newline and is taken as is).
                if end < 0 and what.startswith("@@") and self.proc.poll() is None \
                        and time.time() <= deadline:
                    time.sleep(0.02)
                    continue
                end = len(t) if end < 0 else end
                start = t.rfind("\n", 0, i) + 1
                self.cursor = end
                return t[start:end]
            if self.proc.poll() is not None or time.time() > deadline:
                raise Failure("%s: '%s' did not come (%s)" % (
                    self.name, what, "QEMU exited" if self.proc.poll() is not None else "timeout"))
            time.sleep(0.05)

    def refute(self, what):
        if what in self.text():
            raise Failure("%s: '%s' should not have appeared" % (self.name, what))

    def type(self, line, expect=None):
        """Waits for the prompt, types `line` and returns the machine line it produced."""
        self.expect("C:\\> ")
        self.sock.sendall((line + "\r").encode())
        return self.expect(expect or "@@winsim cmd=")

    def command(self, line, machine_line):
        got = self.type(line, "@@winsim cmd=")
        got = got[got.find("@@winsim"):].strip()
        if got != machine_line:
            raise Failure("%s: '%s' answered '%s', expected '%s'" % (self.name, line, got,
                                                                     machine_line))

    def wait_end(self, timeout=TIMEOUT):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("%s: the guest did not restart" % self.name)
        self.finish()

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.finish()

    def finish(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        self.lab.boots.append((self.name, time.time() - self.t0, self._children_cpu() - self.cpu0,
                               self.uptime()))

    def uptime(self):
        m = re.findall(r"uptime=([0-9.]+)", self.text())
        w = re.search(r"boot took ([0-9.]+) s", self.text())
        return float(w.group(1)) if w else (float(m[-1]) if m else None)


def mistype(password):
    """The password with its first digit changed to one it is not (a password may start with 1)."""
    return ("2" if password[0] == "1" else "1") + password[1:]


def check_ciphertext(lab, plain, enc, password):
    """Host side: without a key nothing of the volume is visible, and a wrong key is refused."""
    with open(plain, "rb") as f:
        p = f.read()
    with open(enc, "rb") as f:
        e = f.read()
    # The FAT label and boot sector, 8.3 names, long-name fragments (UTF-16, 5-6 characters per
    # piece) and file contents (BCD, sensor.ini).
    words = [b"WINSIM", b"FAT32", b"mkfs.fat", b"CROWDS", b"SENSOR  INI", b"bootmode=",
             b"version=7.11"] + [w.encode("utf-16-le") for w in ("Crowd", "C-000")]
    # The plaintext has them all, or the check below proves nothing.
    missing = [w for w in words if w not in p]
    if missing:
        raise Failure("plaintext disk lacks %r: the ciphertext check is void" % missing)
    for w in words:
        if w in e:
            raise Failure("encrypted disk shows %r in the clear" % w)
    if e[(1 << 20) + 510:(1 << 20) + 512] == b"\x55\xaa" or e[510:512] == b"\x55\xaa":
        raise Failure("encrypted disk has a boot sector signature")
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLSRC="/dev/null")
    if run(["mdir", "-i", enc, "::/"], check=False, env=env).returncode == 0:
        raise Failure("mtools can read the encrypted disk")
    bde = lab.tool["chaoslab-bde"]
    if run([bde, "check", enc, "--recovery-password", WRONG_PASSWORD], check=False).returncode != 1:
        raise Failure("chaoslab-bde accepted a wrong recovery password")
    mistyped = mistype(password)
    if run([bde, "check", enc, "--recovery-password", mistyped], check=False).returncode != 1:
        raise Failure("chaoslab-bde accepted a mistyped recovery password")
    run([bde, "check", enc, "--recovery-password", password])


def scenario_bitlocker(lab):
    enc, password, secret = lab.encrypted_disk("bl")
    check_ciphertext(lab, lab.path("bl-plain.img"), enc, password)
    disk = lab.overlay(enc, "bl")
    vda = [(disk, "qcow2", False)]
    host = "winsim.host=bl-01 "

    b = Boot(lab, "normal-wrong-tpm", vda, host.strip(), tpm="ab" * 32)
    b.expect("@@winsim phase=bootmgr mode=normal")
    b.expect("BitLocker recovery")
    b.expect("@@winsim phase=bitlocker-recovery reason=tpm-refused")
    b.expect("@@winsim phase=console env=winre bitlocker=locked")
    b.refute("@@winsim phase=drivers")
    b.command("restart", "@@winsim cmd=restart rc=0")
    b.wait_end()

    b = Boot(lab, "safe-no-password", vda, host + "winsim.boot=safe")
    b.expect("@@winsim phase=bootmgr mode=safe")
    b.expect("@@winsim phase=console env=safe bitlocker=locked")
    b.command(DEL_QUOTED, "@@winsim cmd=del rc=1 reason=locked deleted=0")
    b.command("dir C:\\", "@@winsim cmd=dir rc=1 reason=locked")
    b.command("manage-bde -unlock C: -RecoveryPassword " + WRONG_PASSWORD,
              "@@winsim cmd=unlock rc=1 reason=bad-password")
    b.command("manage-bde -unlock C: -RecoveryPassword " + mistype(password),
              "@@winsim cmd=unlock rc=1 reason=bad-password")
    b.command(DEL_UNQUOTED, "@@winsim cmd=del rc=1 reason=locked deleted=0")
    b.command("restart", "@@winsim cmd=restart rc=0")
    b.wait_end()
    if CF_BAD not in lab.driver_files(disk, password):
        raise Failure("the bad channel file is gone although C: was never unlocked")

    b = Boot(lab, "normal-tpm-crash", vda, host.strip(), tpm=secret)
    b.expect("@@winsim phase=bootmgr mode=normal")
    b.expect("@@winsim phase=drivers")
    b.expect(BUGCHECK)
    b.wait_end()

    b = Boot(lab, "safe-password", vda, host + "winsim.boot=safe")
    b.expect("@@winsim phase=console env=safe bitlocker=locked")
    b.command("manage-bde -unlock C: -RecoveryPassword " + password, "@@winsim cmd=unlock rc=0")
    b.command("manage-bde -status C:", "@@winsim cmd=status rc=0 bitlocker=unlocked")
    b.command(DEL_UNQUOTED, "@@winsim cmd=del rc=0 deleted=1")
    b.command(DEL_QUOTED, "@@winsim cmd=del rc=0 deleted=0")
    b.command("restart", "@@winsim cmd=restart rc=0")
    b.wait_end()
    if lab.driver_files(disk, password) != []:
        raise Failure("the bad channel file is still on the disk after del")

    b = Boot(lab, "normal-tpm-ready", vda, host.strip(), tpm=secret)
    b.expect("@@winsim phase=drivers")
    b.expect("@@winsim ready")
    b.refute("@@bugcheck")
    b.kill()


def scenario_usb(lab):
    disk = lab.overlay(lab.plain_disk("usb"), "usb")
    vda = [(disk, "qcow2", False)]
    host = "winsim.host=usb-01 "

    b = Boot(lab, "usb-no-stick", vda, host + "winsim.boot=usb")
    b.expect("@@winsim boot-failed reason=no-media")
    b.refute("@@winsim phase=console")
    b.kill()

    b = Boot(lab, "usb", vda + [(lab.media(), "raw", True)], host + "winsim.boot=usb")
    b.expect("@@winsim phase=bootmgr mode=usb")
    b.expect("@@winsim phase=console env=usb bitlocker=off")
    b.command("manage-bde -unlock C: -RecoveryPassword " + WRONG_PASSWORD,
              "@@winsim cmd=unlock rc=1 reason=not-encrypted")
    b.command(DEL_QUOTED, "@@winsim cmd=del rc=0 deleted=1")
    b.command("bcdedit_normal", "@@winsim cmd=bcdedit rc=0")
    b.command("dir X:\\sources", "@@winsim cmd=dir rc=0")
    b.command("restart", "@@winsim cmd=restart rc=0")
    b.wait_end()
    if lab.driver_files(disk) != []:
        raise Failure("the bad channel file is still on the disk")

    b = Boot(lab, "normal-ready", vda, host)
    b.expect("@@winsim phase=bootmgr mode=normal")
    b.expect("@@csagent")
    b.expect("@@winsim ready")
    b.kill()


def scenario_rescue(lab):
    enc, password, secret = lab.encrypted_disk("rs")
    disk = lab.overlay(enc, "rs")

    b = Boot(lab, "rescue-vm", [(lab.media(), "raw", True), (disk, "qcow2", False)],
             "winsim.host=rescue-01 winsim.boot=rescue")
    b.expect("@@winsim phase=bootmgr mode=rescue")
    b.expect("@@winsim phase=console env=rescue bitlocker=locked")
    b.command(DEL_QUOTED, "@@winsim cmd=del rc=1 reason=locked deleted=0")
    b.command("manage-bde -unlock C: -RecoveryPassword " + password, "@@winsim cmd=unlock rc=0")
    b.command(DEL_QUOTED, "@@winsim cmd=del rc=0 deleted=1")
    b.command("restart", "@@winsim cmd=restart rc=0")
    b.wait_end()

    b = Boot(lab, "repaired-normal", [(disk, "qcow2", False)],
             "winsim.host=rs-01 winsim.tpm=" + secret)
    b.expect("@@winsim ready")
    b.refute("@@bugcheck")
    b.kill()


def scenario_pxe(lab):
    enc, password, secret = lab.encrypted_disk("px")
    disk = lab.overlay(enc, "px")
    vda = [(disk, "qcow2", False)]
    plan = lab.path("plan.txt")
    with open(plan, "w") as f:
        f.write("# chaoslab repair\nunlock escrow\ndelete C-00000291*.sys\n")
    log = open(lab.path("fixture.log"), "w")
    fixture = subprocess.Popen(
        [lab.tool["chaoslab-content-fixture"], "--escrow", "px-01=" + lab.path("px.pw"),
         "--credential-out", "px-01=" + lab.path("px.credential"),
         "--pxe-plan", plan, "--escrow-down"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
    lab.procs.append(fixture)
    port = int(fixture.stdout.readline().split()[1])
    words = "winsim.host=px-01 winsim.cloud=10.0.2.100:80 "

    credential = lab.path("px.credential")
    b = Boot(lab, "pxe-escrow-down", vda, words + "winsim.boot=pxe", net_port=port,
             credential=credential)
    b.expect("@@winsim phase=bootmgr mode=pxe")
    b.expect("@@winsim phase=network state=up")
    b.expect("@@winsim repair result=failed reason=escrow-unavailable")
    b.expect("@@winsim phase=console env=pxe bitlocker=locked")
    b.command("restart", "@@winsim cmd=restart rc=0")
    b.wait_end()

    fixture.stdin.write("escrow up\n")
    fixture.stdin.flush()
    b = Boot(lab, "pxe-repair", vda, words + "winsim.boot=pxe", net_port=port,
             credential=credential)
    b.expect("@@winsim repair result=ok deleted=1")
    b.refute("@@winsim phase=console")
    b.wait_end()

    b = Boot(lab, "normal-ready", vda, words + "winsim.tpm=" + secret, net_port=port,
             credential=credential)
    b.expect("@@winsim ready")
    b.refute("@@bugcheck")
    b.kill()
    fixture.stdin.close()
    fixture.wait(10)
    log.close()
    with open(lab.path("fixture.log")) as f:
        requests = f.read()
    if requests.count("200 /v1/escrow/key host=px-01") != 1 or \
            "503 /v1/escrow/key host=px-01" not in requests:
        raise Failure("unexpected escrow requests:\n" + requests)


SCENARIOS = {"bitlocker": scenario_bitlocker, "usb": scenario_usb, "rescue": scenario_rescue,
             "pxe": scenario_pxe}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS))
    ap.add_argument("--bin", required=True, help="the build's bin folder")
    ap.add_argument("--kernel", default="custom")
    ap.add_argument("--cache")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = ap.parse_args()
    for tool in ("qemu-system-x86_64", "qemu-img", "busybox", "mdir"):
        if shutil.which(tool) is None:
            print("recovery_selftest: %s not found" % tool, file=sys.stderr)
            return 2
    lab = None
    try:
        lab = Lab(args)
        for name in args.scenarios:
            SCENARIOS[name](lab)
            print("%s: PASS" % name)
        for name, wall, cpu, up in lab.boots:
            print("  boot %-18s wall %5.1f s  cpu %4.1f s  guest uptime %s s" % (
                name, wall, cpu, "-" if up is None else "%.2f" % up))
        return 0
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        if lab:
            for d in sorted(os.listdir(lab.tmp)):
                log = os.path.join(lab.tmp, d, "serial.log")
                if os.path.exists(log):
                    with open(log, "rb") as f:
                        tail = f.read().decode("latin-1").replace("\r", "").splitlines()[-40:]
                    print("----- %s -----\n%s" % (d, "\n".join(tail)), file=sys.stderr)
        return 1
    finally:
        if lab:
            lab.close(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
