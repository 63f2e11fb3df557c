#!/usr/bin/env python3
"""Counts the code a QEMU TCG guest translates on its way through a boot.

Under TCG the first run of any guest code costs its translation (~6-7 us per
translated block on the lab machine, measured in images/kernel/README.md), and
every boot of the lab starts in a fresh QEMU with nothing translated. The number
of translated blocks (TBs) is therefore the boot's cold-code footprint, and
unlike wall or guest time it hardly depends on what else the host is running:
two variants of a kernel config, init or agent compare in one run each.

Starts QEMU stopped (TCG, serial on stdout, QMP on a private socket), lets it
run, and on every serial line matching --marker asks QMP `info jit` for the TB
count. The guest keeps running while QEMU answers, so a count can include a
few blocks translated just after the line. Stops at --stop or after --timeout.

usage: count_blocks.py [--marker REGEX] [--stop REGEX] [--timeout S] -- QEMU_ARGS...
Example (kernel only: a tiny /init that prints "@@init"):
  count_blocks.py --stop @@init -- -M pc -m 256 -bios /usr/share/qemu/qboot.rom \\
      -kernel vmlinux -initrd test.cpio -append 'panic=-1'
Where the blocks come from: run the same QEMU command with `-d in_asm -D log`
and map each block's address to a function with `nm` of the object tree's
vmlinux (README.md).
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


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--marker", default=r"@@|Windows Boot Manager|csagent:",
                        help="regex of the serial lines to count at")
    parser.add_argument("--stop", default=r"@@csagent loaded", help="regex of the last line")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after S seconds")
    parser.add_argument("qemu_args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    qemu_args = opts.qemu_args[1:] if opts.qemu_args[:1] == ["--"] else opts.qemu_args
    if not qemu_args:
        parser.error("missing QEMU arguments after --")

    tmp = tempfile.mkdtemp(prefix="count-blocks-")
    qmp_path = os.path.join(tmp, "qmp.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(qmp_path)
    server.listen(1)
    server.settimeout(10)
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-nographic", "-nodefaults",
           "-no-user-config", "-serial", "stdio", "-S",
           "-chardev", f"socket,id=qmp,path={qmp_path}",
           "-mon", "chardev=qmp,mode=control"] + qemu_args
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        conn, _ = server.accept()
    except socket.timeout:
        qemu.kill()
        sys.exit("count_blocks: QEMU did not connect to QMP within 10 s: " + " ".join(cmd))
    qmp = conn.makefile("rwb", buffering=0)
    qmp.readline()  # greeting

    def call(command, **arguments):
        qmp.write((json.dumps({"execute": command, "arguments": arguments}) + "\n").encode())
        while True:
            reply = json.loads(qmp.readline())
            if "return" in reply or "error" in reply:
                return reply

    def blocks():
        text = call("human-monitor-command", **{"command-line": "info jit"}).get("return", "")
        count = re.search(r"TB count\s+(\d+)", text)
        size = re.search(r"gen code size\s+(\d+)", text)
        return (int(count.group(1)) if count else -1, int(size.group(1)) if size else -1)

    call("qmp_capabilities")
    start = time.monotonic()
    call("cont")
    pending, previous, done = b"", 0, False
    marker, stop = re.compile(opts.marker), re.compile(opts.stop)
    while not done and time.monotonic() - start < opts.timeout:
        ready, _, _ = select.select([qemu.stdout], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(qemu.stdout.fileno(), 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            raw, pending = pending.split(b"\n", 1)
            line = raw.decode(errors="replace").rstrip("\r")
            if marker.search(line) or stop.search(line):
                count, size = blocks()
                print(f"{time.monotonic() - start:7.3f} s  TBs {count:6d} (+{count - previous:5d})  "
                      f"host code {size / 1e6:5.1f} MB | {line[:90]}")
                previous = count
            if stop.search(line):
                done = True
                break
    qemu.kill()
    qemu.wait()
    if not done:
        sys.exit(f"count_blocks: no line matching --stop within {opts.timeout} s")


if __name__ == "__main__":
    main()
