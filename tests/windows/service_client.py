#!/usr/bin/env python3
"""FTP client helpers for tests/windows/service.sh (the Windows service under Wine), run from
Linux. Loopback only; every socket has a timeout.

  service_client.py slow --server HOST:PORT --file NAME --sha256 HEX --started FILE
      A passive download (from 127.0.0.1) read slowly through a small receive buffer, so that the
      server is still sending when the service is told to stop. Creates FILE once the first bytes
      arrived, then reads to the end: the whole file (SHA-256 checked) and a 226 reply must come.
  service_client.py refused --server HOST:PORT [--within SECONDS]
      Waits until a new control connection is refused (the server stopped accepting).
  service_client.py up --server HOST:PORT [--within SECONDS]
      Waits until the server answers with a 220 greeting.
  service_client.py free-port --host HOST
      Prints a TCP port that is free on HOST.

Prints one line (`ok: ...` or `FAIL: ...`); exit code 0 on success, 1 on failure.
"""

import argparse
import ftplib
import hashlib
import socket
import sys
import time

TIMEOUT = 20.0
CLIENT = "127.0.0.1"
# Slow reading: RCVBUF bytes at a time, PAUSE seconds apart (about 1.6 MB/s).
RCVBUF = 32768
PAUSE = 0.02


class Failure(Exception):
    pass


def split(server):
    host, port = server.rsplit(":", 1)
    return host, int(port)


def slow(args):
    host, port = split(args.server)
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(host, port, timeout=TIMEOUT, source_address=(CLIENT, 0))
    ftp.login()  # anonymous
    ftp.voidcmd("TYPE I")
    data_host, data_port = ftplib.parse227(ftp.sendcmd("PASV"))
    data = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    data.settimeout(TIMEOUT)
    data.bind((CLIENT, 0))
    data.connect((data_host, data_port))
    start = ftp.sendcmd("RETR " + args.file)
    if not start.startswith(("125", "150")):
        raise Failure("RETR: expected 125/150, got %r" % start)
    h = hashlib.sha256()
    size = 0
    began = time.monotonic()
    with data:
        while True:
            chunk = data.recv(RCVBUF)
            if not chunk:
                break
            if size == 0:
                open(args.started, "w").close()
            h.update(chunk)
            size += len(chunk)
            time.sleep(PAUSE)
    done = ftp.voidresp()
    if h.hexdigest() != args.sha256:
        raise Failure("sha256 %s, expected %s (%d bytes)" % (h.hexdigest(), args.sha256, size))
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        pass  # the server may close the control connection once it has drained
    return "slow download: %d bytes in %.1fs, sha256 ok, %s" % (
        size, time.monotonic() - began, done.split(" ")[0])


def refused(args):
    host, port = split(args.server)
    deadline = time.monotonic() + args.within
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=2.0, source_address=(CLIENT, 0))
        except ConnectionRefusedError:
            return "new connections to %s:%d are refused" % (host, port)
        conn.close()
        if time.monotonic() > deadline:
            raise Failure("%s:%d still accepts connections after %.0fs" % (host, port, args.within))
        time.sleep(0.2)


def up(args):
    host, port = split(args.server)
    deadline = time.monotonic() + args.within
    while True:
        try:
            ftp = ftplib.FTP(timeout=5.0)
            greeting = ftp.connect(host, port, timeout=5.0, source_address=(CLIENT, 0))
            ftp.close()
            return "%s:%d answers: %s" % (host, port, greeting.split("\n")[0])
        except (OSError, EOFError, ftplib.Error) as e:
            if time.monotonic() > deadline:
                raise Failure("%s:%d does not answer within %.0fs: %s" % (host, port, args.within, e))
            time.sleep(0.3)


def free_port(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((args.host, 0))
    port = s.getsockname()[1]
    s.close()
    return str(port)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("mode", choices=["slow", "refused", "up", "free-port"])
    parser.add_argument("--server")
    parser.add_argument("--host", default="127.0.0.2")
    parser.add_argument("--file")
    parser.add_argument("--sha256")
    parser.add_argument("--started")
    parser.add_argument("--within", type=float, default=10.0)
    args = parser.parse_args()
    if args.mode == "free-port":
        print(free_port(args))
        return 0
    try:
        run = {"slow": slow, "refused": refused, "up": up}[args.mode]
        print("ok: " + run(args))
        return 0
    except (Failure, OSError, EOFError, ftplib.Error) as e:
        print("FAIL: %s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
