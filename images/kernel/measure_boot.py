#!/usr/bin/env python3
"""Boots one QEMU guest and times it: a developer tool for tuning the kernel.

Starts qemu-system-x86_64 (TCG, serial on stdout, QMP on a private unix
socket), timestamps every serial line and QMP event in wall seconds since
the spawn, and stops after the marker has been seen --cycles times or after
--timeout seconds. Markers of the test initramfs carry the guest's
/proc/uptime ("@@init uptime=0.61"); for other markers the guest time is
estimated as wall time since the kernel's first printk line (boot with
loglevel=7 for that).

usage: measure_boot.py [--marker REGEX] [--cycles N] [--timeout S] [--show]
                       -- QEMU_ARGS...
Example (crash loop, 3 boots):
  measure_boot.py --cycles 3 -- -M pc -m 256 -kernel vmlinux \\
      -initrd test.cpio -append 'panic=-1 winsim.crash' \\
      -device pvpanic-pci -action panic=none
"""
import argparse
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time


def qemu_cpu(pid):
    """CPU seconds (user + system) QEMU has used so far: unlike wall or guest time, this hardly
    depends on what else the host runs, so it compares two boot variants on a busy machine."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--marker", default=r"@@init uptime=([0-9.]+)",
                        help="regex of the marker line; group 1, if any, is the guest uptime")
    parser.add_argument("--cycles", type=int, default=1, help="stop after this many markers")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after S seconds")
    parser.add_argument("--show", action="store_true", help="print every serial line")
    parser.add_argument("qemu_args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    qemu_args = opts.qemu_args[1:] if opts.qemu_args[:1] == ["--"] else opts.qemu_args
    if not qemu_args:
        parser.error("missing QEMU arguments after --")
    marker = re.compile(opts.marker)

    tmp = tempfile.mkdtemp(prefix="measure-boot-")
    qmp_path = os.path.join(tmp, "qmp.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(qmp_path)
    server.listen(1)
    server.settimeout(10)
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-nographic", "-nodefaults",
           "-no-user-config", "-serial", "stdio",
           "-chardev", f"socket,id=qmp,path={qmp_path}",
           "-mon", "chardev=qmp,mode=control"] + qemu_args
    start = time.monotonic()
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        qmp, _ = server.accept()
    except socket.timeout:
        qemu.kill()
        sys.exit("measure_boot: QEMU did not connect to QMP within 10 s: " + " ".join(cmd))
    qmp.sendall(b'{"execute":"qmp_capabilities"}\n')

    def now():
        return time.monotonic() - start

    serial_buf, qmp_buf = b"", b""
    kernel_start = None
    marks = []
    done = False
    while not done and now() < opts.timeout:
        ready, _, _ = select.select([qemu.stdout, qmp], [], [], 0.2)
        if qemu.stdout in ready:
            chunk = os.read(qemu.stdout.fileno(), 65536)
            if not chunk:
                break
            serial_buf += chunk
            while b"\n" in serial_buf:
                raw, serial_buf = serial_buf.split(b"\n", 1)
                line = raw.decode(errors="replace").rstrip("\r")
                t = now()
                if opts.show:
                    print(f"{t:7.3f} | {line}")
                if kernel_start is None and re.search(r"\[\s*0\.0+\]", line):
                    kernel_start = t
                m = marker.search(line)
                if m:
                    if m.groups():
                        guest = m.group(1)
                    elif kernel_start is not None:
                        guest = f"~{t - kernel_start:.2f}"
                    else:
                        guest = "?"
                    marks.append(t)
                    print(f"MARKER wall={t:.3f} guest={guest} cpu={qemu_cpu(qemu.pid):.3f}")
                    if len(marks) >= opts.cycles:
                        done = True
                        break
        if qmp in ready:
            chunk = qmp.recv(65536)
            if not chunk:
                break
            qmp_buf += chunk
            while b"\n" in qmp_buf:
                raw, qmp_buf = qmp_buf.split(b"\n", 1)
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if "event" in msg:
                    print(f"QMP {now():.3f} {msg['event']} {json.dumps(msg.get('data', {}))}")
    qemu.kill()
    qemu.wait()
    if len(marks) > 1:
        gaps = [b - a for a, b in zip(marks, marks[1:])]
        print("CYCLE wall=" + " ".join(f"{g:.3f}" for g in gaps))
    if len(marks) < opts.cycles:
        sys.exit(f"measure_boot: saw {len(marks)} of {opts.cycles} markers in {now():.1f} s")


if __name__ == "__main__":
    main()
