#!/usr/bin/env python3
"""Boots a stand-in golden folder (make_standin.sh) on plain QEMU (q35, TCG, OVMF) three times and
plays the technician on COM1 by hand, without the lab:
  1. normal boot (Enter at the boot manager): the sensor bugchecks on channel 291 (COM2), reset;
  2. F8 -> Advanced Boot Options -> Safe Mode (a wrong, then the right BitLocker key when the image
     has one), SAC cmd channel: del the channel file, echo the errorlevel, exit, SAC restart;
  3. normal boot: `@@winsim ready os=windows` on COM2.
Prints each boot's time. Exit 0 when all three went as described.

  qemu_check.py GOLDEN_DIR [--bitlocker]
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"


class Serial:
    def __init__(self, path, log):
        self.sock = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.sock.settimeout(0.2)
        self.buf = ""
        self.log = open(log, "a", encoding="latin-1")

    def pump(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        if not data:
            return False
        text = data.decode("latin-1")
        self.buf += text
        self.log.write(text)
        self.log.flush()
        return True

    def expect(self, pattern, timeout, other=None):
        """Waits for `pattern` in what arrived; returns the text up to its end (consumed)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.buf)
            if m:
                said = self.buf[: m.end()]
                self.buf = self.buf[m.end():]
                return said
            if not self.pump():
                raise RuntimeError("console closed waiting for %r" % pattern)
            if other:
                other.pump()
        raise RuntimeError("timeout waiting for %r; got %r" % (pattern, self.buf[-600:]))

    def send(self, text):
        self.sock.sendall(text.encode("latin-1"))


def boot(work, overlay, vars_fd):
    for s in ("com1.sock", "com2.sock"):
        if os.path.exists(os.path.join(work, s)):
            os.unlink(os.path.join(work, s))
    args = [
        "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "2048", "-nographic",
        "-no-reboot", "-nodefaults", "-vga", "none",
        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + CODE,
        "-drive", "if=pflash,format=raw,unit=1,file=" + vars_fd,
        "-drive", "if=none,id=d0,format=qcow2,file=" + overlay,
        "-device", "ide-hd,drive=d0,bus=ide.0",
        "-chardev", "socket,id=c1,path=%s/com1.sock,server=on,wait=off" % work,
        "-serial", "chardev:c1",
        "-chardev", "socket,id=c2,path=%s/com2.sock,server=on,wait=off" % work,
        "-serial", "chardev:c2",
        "-monitor", "none",
    ]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc, Serial(work + "/com1.sock", work + "/com1.log"), Serial(
        work + "/com2.sock", work + "/com2.log")


def cmd_job(com1, com2, command, password):
    com1.send("\r")
    com1.expect(r"SAC>", 30, com2)
    com1.send("cmd\r")
    chan = re.search(r"Channel:\s*(Cmd\d{4})", com1.expect(r"Channel:\s*Cmd\d{4}", 30, com2)).group(1)
    com1.send("ch -sn %s\r" % chan)
    com1.expect(r"Use any other key to view this channel\.", 30, com2)
    com1.send("\r")
    com1.expect(r"Username:", 30, com2)
    com1.send("Administrator\r")
    com1.expect(r"Domain\s*:", 30, com2)
    com1.send("\r")
    com1.expect(r"Password:", 30, com2)
    com1.send(password + "\r")
    com1.expect(r"C:\\Windows\\system32>", 30, com2)
    com1.send(command + "\r")
    said = com1.expect(r"C:\\Windows\\system32>", 30, com2)
    com1.send("echo chaoslab-rc=%ERRORLEVEL%\r")
    rc = re.search(r"chaoslab-rc=(\d+)", com1.expect(r"chaoslab-rc=\d+", 30, com2)).group(1)
    com1.expect(r"C:\\Windows\\system32>", 30, com2)
    com1.send("exit\r\x1b\t0")
    com1.expect(r"SAC>", 30, com2)
    return said, int(rc)


def main():
    golden = sys.argv[1]
    bitlocker = "--bitlocker" in sys.argv
    work = tempfile.mkdtemp(prefix="standin-qemu-")
    overlay = work + "/disk.qcow2"
    subprocess.check_call(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                           os.path.abspath(golden + "/windows.qcow2"), overlay])
    vars_fd = work + "/vars.fd"
    shutil.copy(golden + "/OVMF_VARS.fd", vars_fd)
    password = open(golden + "/admin-password.txt").read().strip()
    recovery = open(golden + "/recovery-password.txt").read().strip().replace("-", "")
    print("work folder", work)

    # 1. Normal boot: the sensor bugchecks.
    t0 = time.time()
    proc, com1, com2 = boot(work, overlay, vars_fd)
    com1.expect(r"press F8", 300, com2)
    t_menu = time.time() - t0
    com1.send("\r")
    com1.expect(r"The CMD command is now available", 120, com2)
    t_sac = time.time() - t0
    com2.expect(r"@@bugcheck code=0x00000050", 120, com1)
    t_bug = time.time() - t0
    proc.wait(60)
    print("boot 1: menu %.1fs, SAC %.1fs, bugcheck %.1fs, QEMU ended %.1fs (rc %d)" %
          (t_menu, t_sac, t_bug, time.time() - t0, proc.returncode))

    # 2. Safe mode through F8, BitLocker key, del over SAC, restart.
    t0 = time.time()
    proc, com1, com2 = boot(work, overlay, vars_fd)
    com1.expect(r"press F8", 300, com2)
    com1.send("\x1b8")
    com1.expect(r"Start Windows Normally", 30, com2)
    com1.send("\x1b[B\r")
    if bitlocker:
        com1.expect(r"Recovery key ID: [0-9A-F]{8}", 60, com2)
        com1.send("1" * 48 + "\r")
        com1.expect(r"That key isn't right\. Try again\.", 30, com2)
        com1.expect(r"Recovery key ID: [0-9A-F]{8}", 30, com2)
        com1.send(recovery + "\r")
        com1.expect(r"Windows is loading files", 30, com2)
    com1.expect(r"The CMD command is now available", 120, com2)
    t_sac = time.time() - t0
    del_cmd = 'del /f /q "C:\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys"'
    said, rc = cmd_job(com1, com2, del_cmd, password)
    assert rc == 0 and "Could Not Find" not in said, (rc, said)
    said, rc = cmd_job(com1, com2, del_cmd, password)
    assert rc == 0 and "Could Not Find" in said, (rc, said)
    com1.send("restart\r")
    proc.wait(60)
    assert not com2.buf.strip() or "@@" not in com2.buf, com2.buf  # no agent in safe mode
    print("boot 2 (safe mode): SAC %.1fs, deleted, restarted at %.1fs" % (t_sac, time.time() - t0))

    # 3. Normal boot: healthy.
    t0 = time.time()
    proc, com1, com2 = boot(work, overlay, vars_fd)
    com1.expect(r"press F8", 300, com2)
    com1.send("\r")
    com2.expect(r"@@winsim ready os=windows", 120, com1)
    print("boot 3: ready %.1fs" % (time.time() - t0))
    proc.terminate()
    proc.wait()
    shutil.rmtree(work)
    print("OK")


if __name__ == "__main__":
    main()
