#!/usr/bin/env python3
"""The key escrow's receiving end while images/windows/build.sh installs Windows.

QEMU runs this once per guest connection to 10.0.2.100:80 (guestfwd=...-cmd:): the TCP stream is
stdin/stdout. chaoslab-setup.ps1 POSTs the BitLocker recovery password to
/v1/escrow/key?host=<id>, the path under which the lab's content server later serves it
(GET /v1/escrow/key, lab/content_server). The password is checked as BitLocker makes them (8 groups
of 6 digits, each a multiple of 11 below 720896) and written to --out (mode 0600, atomically).
Anything else gets a 4xx and nothing is written. Exit status: 0 stored, 1 refused.
"""
import argparse
import os
import re
import sys
import tempfile
import urllib.parse

MAX_BODY = 1024


def valid_recovery_password(text):
    if not re.fullmatch(r"\d{6}(-\d{6}){7}", text):
        return False
    return all(int(g) % 11 == 0 and int(g) < 720896 for g in text.split("-"))


def reply(out, status, reason, body=""):
    data = body.encode()
    out.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
              f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    out.flush()


def store(path, password):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".recovery-")
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="file that receives the recovery password")
    ap.add_argument("--host", required=True, help="the host id the guest must name")
    args = ap.parse_args()
    inp, out = sys.stdin.buffer, sys.stdout.buffer

    request_line = inp.readline(4096).decode("latin-1").strip()
    headers = {}
    while True:
        line = inp.readline(4096).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    parts = request_line.split()
    if len(parts) != 3:
        reply(out, 400, "Bad Request", "malformed request line\n")
        return 1
    method, target, _ = parts
    url = urllib.parse.urlsplit(target)
    if url.path != "/v1/escrow/key":
        reply(out, 404, "Not Found", "only /v1/escrow/key here\n")
        return 1
    if method != "POST":
        reply(out, 405, "Method Not Allowed", "POST the recovery password\n")
        return 1
    host = urllib.parse.parse_qs(url.query).get("host", [""])[0]
    if host != args.host:
        reply(out, 404, "Not Found", f"unknown host '{host}'\n")
        return 1
    try:
        length = int(headers.get("content-length", "-1"))
    except ValueError:
        length = -1
    if length < 0 or length > MAX_BODY:
        reply(out, 400, "Bad Request", "Content-Length missing or too large\n")
        return 1
    password = inp.read(length).decode("ascii", "replace").strip()
    if not valid_recovery_password(password):
        reply(out, 400, "Bad Request", "not a BitLocker recovery password\n")
        return 1
    store(args.out, password)
    reply(out, 201, "Created", "stored\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
