#!/usr/bin/env python3
"""A real FTP client (Python's ftplib) for tests/windows/run.sh, run from Linux against fxpd.exe
under Wine. Loopback only; every socket has a timeout.

  ftp_client.py active  --server HOST:PORT --file NAME --sha256 HEX --expect refused|accepted
      Connects from 127.0.0.1, then sends PORT naming a listener this script opens on 127.0.0.3
      (a foreign address: not the client's). `refused`: the reply must be 504 with the reason
      token `foreign-address`, and nothing may connect to the listener. `accepted`: the reply must
      be 200, and RETR must make the server connect to the 127.0.0.3 listener and send the file.
  ftp_client.py theft   --server HOST:PORT --file NAME --sha256 HEX --expect refused|accepted
      Sends PASV and RETR from 127.0.0.1, then connects to the passive port from 127.0.0.3 (a
      foreign address). `accepted`: that connection gets the file. `refused`: the server closes it
      without a byte, and a second connection from 127.0.0.1 (the client's own) still gets the file.
  ftp_client.py passive --server HOST:PORT --file NAME --sha256 HEX
      A plain passive download (PASV) with a listing, from 127.0.0.1.
  ftp_client.py login   --server HOST:PORT --file NAME --sha256 HEX --expect refused|accepted
      Only logs in (as --user, anonymous by default): `refused` wants a 530 reply; prints the
      server's greeting either way.
  ftp_client.py upload  --server HOST:PORT --file NAME --sha256 HEX --local PATH
      STOR of the local file PATH (whose SHA-256 is HEX) as NAME, then RETR of NAME: the
      download must have the same hash (passive mode).
  ftp_client.py dropbox --server HOST:PORT --file DIR/NAME --sha256 HEX --local PATH [--denied NAME]
      STOR of PATH as DIR/NAME into a drop box, then LIST of DIR, RETR and a second STOR of
      DIR/NAME must get 550 naming the right (list, download, overwrite), and STOR of
      DIR/--denied (default tool.exe) 553. The caller checks the stored file on the disk.
  ftp_client.py live    --server HOST:PORT --file NAME --sha256 HEX
      ONE control session (login, TYPE I) driven by commands on stdin, one per line, so that
      a test can change the server's configuration between them:
        port refused|accepted SECONDS   a foreign PORT (listener on 127.0.0.3) as in `active`,
                                        sent again every 0.3 s on the same session until it
                                        gets the expected outcome or SECONDS have passed
        quit                            QUIT and exit
      Prints `ready: ...` after login, then one `ok: ...` or `FAIL: ...` line per command.

Every mode logs in anonymously unless --user and --password are given.
Prints one line (`ok: ...` or `FAIL: ...`); exit code 0 on success, 1 on failure.
"""

import argparse
import ftplib
import hashlib
import io
import socket
import sys
import time

TIMEOUT = 20.0
CLIENT = "127.0.0.1"
FOREIGN = "127.0.0.3"


class Failure(Exception):
    pass


class WrongReply(Failure):
    """The reply to PORT was not the expected one (`live` tries again until its deadline)."""


# --user and --password (main sets them); anonymous when unset.
USER = {"user": "", "passwd": ""}


def connect(server):
    host, port = server.rsplit(":", 1)
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(host, int(port), timeout=TIMEOUT, source_address=(CLIENT, 0))
    ftp.login(**USER)
    ftp.voidcmd("TYPE I")
    return ftp


def active(args):
    return foreign_port(connect(args.server), args, quit=True)


def login(args):
    host, port = args.server.rsplit(":", 1)
    ftp = ftplib.FTP(timeout=TIMEOUT)
    greeting = ftp.connect(host, int(port), timeout=TIMEOUT, source_address=(CLIENT, 0))
    who = USER["user"] or "anonymous"
    try:
        reply = ftp.login(**USER)
    except ftplib.error_perm as e:
        reply = str(e)
    if args.expect == "refused":
        if not reply.startswith("530"):
            raise Failure("login as %s: expected 530, got %r" % (who, reply))
        ftp.close()
        return "login as %s refused: %s; greeting %r" % (who, reply, greeting)
    if not reply.startswith("230"):
        raise Failure("login as %s: expected 230, got %r" % (who, reply))
    ftp.quit()
    return "login as %s: %s; greeting %r" % (who, reply, greeting)


def upload(args):
    ftp = connect(args.server)
    ftp.set_pasv(True)
    with open(args.local, "rb") as f:
        stored = ftp.storbinary("STOR " + args.file, f)
    h = hashlib.sha256()
    size = [0]

    def block(data):
        h.update(data)
        size[0] += len(data)

    done = ftp.retrbinary("RETR " + args.file, block)
    check(h.hexdigest(), args.sha256)
    ftp.quit()
    return "STOR %s: %s; RETR: %d bytes, sha256 ok, %s" % (
        args.file, stored.split(" ")[0], size[0], done.split(" ")[0])


def dropbox(args):
    """A drop box: a new file goes in (and is on the disk, checked by the caller); listing it,
    downloading it and overwriting it are refused with 550 naming the right; a denied file
    name is refused with 553 naming the pattern."""
    ftp = connect(args.server)
    ftp.set_pasv(True)
    with open(args.local, "rb") as f:
        stored = ftp.storbinary("STOR " + args.file, f)
    folder = args.file.rsplit("/", 1)[0]
    tries = (
        ("list", "550", lambda: ftp.nlst(folder)),
        ("download", "550", lambda: ftp.retrbinary("RETR " + args.file, lambda data: None)),
        ("overwrite", "550", lambda: ftp.storbinary("STOR " + args.file, io.BytesIO(b"replaced"))),
        (args.denied, "553", lambda: ftp.storbinary("STOR %s/%s" % (folder, args.denied), io.BytesIO(b"MZ"))),
    )
    refused = []
    for what, code, attempt in tries:
        try:
            reply = attempt()
        except ftplib.error_perm as e:
            reply = str(e)
            if not (reply.startswith(code) and (what in reply or code == "553")):
                raise Failure("%s: expected %s naming it, got %r" % (what, code, reply))
            refused.append(reply)
            continue
        raise Failure("%s in the drop box was allowed: %r" % (what, reply))
    ftp.quit()
    return "STOR %s: %s; refused: %s" % (args.file, stored.split(" ")[0], " | ".join(refused))


def foreign_port(ftp, args, quit):
    """One foreign PORT on `ftp` with the outcome args.expect; QUITs afterwards if `quit`."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((FOREIGN, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        command = "PORT %s,%d,%d" % (FOREIGN.replace(".", ","), port >> 8, port & 0xFF)
        try:
            reply = ftp.sendcmd(command)
        except ftplib.error_perm as e:
            reply = str(e)
        if args.expect == "refused":
            if not (reply.startswith("504") and "foreign-address" in reply):
                raise WrongReply("%s: expected 504 foreign-address, got %r" % (command, reply))
            listener.settimeout(1.0)
            try:
                conn, peer = listener.accept()
                conn.close()
                raise Failure("the server connected to %s:%d after refusing PORT" % peer)
            except socket.timeout:
                pass
            return "foreign PORT refused: %s" % reply
        if not reply.startswith("200"):
            raise WrongReply("%s: expected 200, got %r" % (command, reply))
        ftp.putcmd("RETR " + args.file)
        listener.settimeout(TIMEOUT)
        try:
            conn, peer = listener.accept()
        except socket.timeout:
            raise Failure("RETR: the server never connected to %s:%d" % (FOREIGN, port))
        start = ftp.getresp()
        if not start.startswith(("125", "150")):
            conn.close()
            raise Failure("RETR: expected 125/150, got %r" % start)
        digest, size = receive(conn)
        done = ftp.voidresp()
        check(digest, args.sha256)
        if quit:
            ftp.quit()
        return "foreign PORT accepted: server %s connected to %s:%d, %d bytes, sha256 ok, %s" % (
            peer[0], FOREIGN, port, size, done.split(" ")[0])
    finally:
        listener.close()


def theft(args):
    ftp = connect(args.server)
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))
    ftp.putcmd("RETR " + args.file)
    foreign = socket.create_connection((host, port), timeout=TIMEOUT, source_address=(FOREIGN, 0))
    try:
        digest, size = receive(foreign)
    except ConnectionResetError:
        digest, size = None, 0
    if args.expect == "accepted":
        if size == 0:
            raise Failure("the connection from %s to the passive port got nothing" % FOREIGN)
        start = ftp.getresp()
        done = ftp.voidresp()
        check(digest, args.sha256)
        ftp.quit()
        return "foreign passive connection accepted: %d bytes from %s:%d to %s, sha256 ok, %s %s" % (
            size, host, port, FOREIGN, start.split(" ")[0], done.split(" ")[0])
    if size != 0:
        raise Failure("the connection from %s to the passive port got %d bytes" % (FOREIGN, size))
    own = socket.create_connection((host, port), timeout=TIMEOUT, source_address=(CLIENT, 0))
    start = ftp.getresp()
    if not start.startswith(("125", "150")):
        own.close()
        raise Failure("RETR: expected 125/150, got %r" % start)
    digest, size = receive(own)
    done = ftp.voidresp()
    check(digest, args.sha256)
    ftp.quit()
    return ("foreign passive connection from %s closed without data; the client's own got %d bytes, "
            "sha256 ok, %s" % (FOREIGN, size, done.split(" ")[0]))


def receive(conn):
    conn.settimeout(TIMEOUT)
    h = hashlib.sha256()
    size = 0
    with conn:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def check(digest, expected):
    if digest != expected:
        raise Failure("sha256 %s, expected %s" % (digest, expected))


def passive(args):
    ftp = connect(args.server)
    ftp.set_pasv(True)
    names = ftp.nlst()
    if args.file not in names:
        raise Failure("NLST does not list %s: %r" % (args.file, names))
    h = hashlib.sha256()
    size = [0]

    def block(data):
        h.update(data)
        size[0] += len(data)

    done = ftp.retrbinary("RETR " + args.file, block)
    check(h.hexdigest(), args.sha256)
    ftp.quit()
    return "passive download: %d bytes, sha256 ok, %s" % (size[0], done.split(" ")[0])


def live(args):
    ftp = connect(args.server)
    print("ready: logged in from %s, local port %d" % ftp.sock.getsockname(), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            ftp.quit()
            print("ok: quit", flush=True)
            return "session closed"
        try:
            if len(words) != 3 or words[0] != "port" or words[1] not in ("refused", "accepted"):
                raise Failure("unknown command %r" % line.strip())
            print("ok: " + port_until(ftp, args, words[1], float(words[2])), flush=True)
        except (Failure, OSError, EOFError, ftplib.Error) as e:
            print("FAIL: %s: %s" % (type(e).__name__, e), flush=True)
    raise Failure("stdin closed without quit")


def port_until(ftp, args, expect, within):
    """A foreign PORT on the same session until its outcome is `expect` or `within` seconds pass."""
    started = time.monotonic()
    tries = 0
    while True:
        tries += 1
        try:
            done = foreign_port(ftp, argparse.Namespace(**dict(vars(args), expect=expect)), quit=False)
            return "%s (after %.1fs, try %d)" % (done, time.monotonic() - started, tries)
        except WrongReply:
            if time.monotonic() - started + 0.3 > within:
                raise
            time.sleep(0.3)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("mode", choices=["active", "theft", "passive", "live", "login", "upload", "dropbox"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--expect", choices=["refused", "accepted"], default="accepted")
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--local", help="upload, dropbox: the local file to STOR")
    parser.add_argument("--denied", default="tool.exe", help="dropbox: a file name the rules deny")
    args = parser.parse_args()
    USER.update(user=args.user, passwd=args.password)
    try:
        run = {"active": active, "theft": theft, "passive": passive, "live": live, "login": login,
               "upload": upload, "dropbox": dropbox}[args.mode]
        print("ok: " + run(args))
        return 0
    except (Failure, OSError, EOFError, ftplib.Error) as e:
        print("FAIL: %s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
