"""Reference transfers: the same kernel paths as RETR, STOR and FXP without an FTP server.

A forked sendfile() sender and a reading or splicing receiver on 127.0.0.7/.8, and a
minimal FTP receiver for curl -T; their rates are printed beside each server's.
"""

import fcntl
import os
import select
import socket
import threading
import time

from .clients import curl_times
from .util import BenchError, KIB, MIB, run


# The same data paths without an FTP server, measured right before each server's transfer:
# what the kernel and this machine allow at that moment. For RETR and FXP a forked child
# sendfile()s big.bin from REF_SRC_HOST to a listener on REF_DST_HOST, which either reads
# into a reused 1 MiB buffer (RETR's path into curl's /dev/null) or splices socket -> pipe ->
# a new file on the same tmpfs (an FXP destination's path). For STOR the sender is curl
# itself, as in the workload, into a minimal FTP receiver that does nothing but splice the
# data into a new file on the same tmpfs: the ceiling of that client and file system.
REF_SRC_HOST = "127.0.0.7"


REF_DST_HOST = "127.0.0.8"


F_SETPIPE_SZ = 1031


def ref_listener():
    """A listening socket on REF_DST_HOST for one reference connection."""
    lsock = socket.socket()
    lsock.bind((REF_DST_HOST, 0))
    lsock.listen(1)
    lsock.settimeout(30)
    return lsock


def reference_path(ctx, sink):
    size = ctx.cfg["big"]
    dest = os.path.join(ctx.big_dir, "reference.bin")
    lsock = ref_listener()
    addr = lsock.getsockname()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            lsock.close()
            s = socket.create_connection(addr, timeout=60,
                                         source_address=(REF_SRC_HOST, 0))
            s.settimeout(None)  # os.sendfile needs a blocking socket
            fd = os.open(ctx.big_src, os.O_RDONLY)
            off = 0
            while off < size:
                n = os.sendfile(s.fileno(), fd, off, size - off)
                if n == 0:
                    break
                off += n
            s.close()
            code = 0
        finally:
            os._exit(code)
    got = 0
    try:
        conn, _ = lsock.accept()
        conn.settimeout(60)
        t0 = time.perf_counter()
        if sink == "null":
            buf = memoryview(bytearray(MIB))
            while n := conn.recv_into(buf):
                got += n
        else:
            got = splice_into_file(conn, dest)
        secs = time.perf_counter() - t0
        conn.close()
    finally:
        lsock.close()
        _, status = os.waitpid(pid, 0)
        if os.path.exists(dest):
            os.unlink(dest)
    if got != size or status != 0:
        raise BenchError(f"reference path ({sink}) moved {got} of {size} bytes")
    return size / secs / 1e6


def splice_into_file(conn, dest, lowat=None):
    """Splice all that `conn` (a socket with a time-out, so non-blocking underneath) sends
    into a new file `dest`, socket -> 1 MiB pipe -> file; returns the bytes moved. Ends at
    EOF or after 60 s without data. With `lowat`, SO_RCVLOWAT is set and each wait lasts at
    most 20 ms, since the mark would otherwise hold back the last bytes."""
    if lowat:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
    wait = 0.02 if lowat else 60
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    r, w = os.pipe()
    fcntl_setpipe(w, MIB)
    got, last = 0, time.monotonic()
    try:
        while time.monotonic() - last < 60:
            # splice() ignores the socket time-out: wait for data with select first.
            select.select([conn], [], [], wait)
            try:
                n = os.splice(conn.fileno(), w, MIB, flags=os.SPLICE_F_MOVE)
            except BlockingIOError:
                continue
            if n == 0:
                break
            moved = 0
            while moved < n:
                moved += os.splice(r, out, n - moved, flags=os.SPLICE_F_MOVE)
            got, last = got + n, time.monotonic()
    finally:
        for fd in (out, r, w):
            os.close(fd)
    return got


def fcntl_setpipe(fd, size):
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    except OSError:
        pass  # the default pipe size still works, only slower


def reference_curl_stor(ctx):
    """MB/s of `curl -T big.bin` into a minimal FTP receiver on REF_DST_HOST that only
    splices the data into a new file beside the servers' big files (SO_RCVLOWAT 256 KiB,
    1 MiB pipe). Timed like the STOR workload: curl's time_total - time_pretransfer."""
    size = ctx.cfg["big"]
    dest = os.path.join(ctx.big_dir, "reference.bin")
    ctl = ref_listener()
    port = ctl.getsockname()[1]
    outcome = {}

    def serve():
        data_l = None
        try:
            c, _ = ctl.accept()
            c.settimeout(60)
            with c, c.makefile("rb") as f:
                def reply(text):
                    c.sendall(text.encode() + b"\r\n")

                reply("220 reference receiver")
                for raw in f:
                    verb = raw.decode("latin-1").strip().split(" ", 1)[0].upper()
                    if verb == "USER":
                        reply("331 Password.")
                    elif verb == "PASS":
                        reply("230 In.")
                    elif verb == "PWD":
                        reply('257 "/"')
                    elif verb == "EPSV":
                        data_l = ref_listener()
                        reply(f"229 Extended Passive Mode (|||{data_l.getsockname()[1]}|)")
                    elif verb == "STOR" and data_l is not None:
                        reply("150 Go.")
                        d, _ = data_l.accept()
                        with d:
                            d.settimeout(60)
                            outcome["got"] = splice_into_file(d, dest, lowat=256 * KIB)
                        reply("226 Done.")
                    elif verb == "QUIT":
                        reply("221 Bye.")
                        break
                    else:
                        reply("200 OK.")
        except Exception as e:  # reported below, after curl
            outcome["error"] = e
        finally:
            if data_l is not None:
                data_l.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        p = run(["curl", "-sS", "--max-time", "600", "--ftp-pasv", "-T", ctx.big_src, "-w",
                 "%{time_pretransfer} %{time_total} %{size_upload}",
                 f"ftp://ref:ref@{REF_DST_HOST}:{port}/reference.bin"], timeout=620, check=False)
        th.join(60)
    finally:
        ctl.close()
        if os.path.exists(dest):
            os.unlink(dest)
    if p.returncode != 0 or outcome.get("got") != size:
        raise BenchError(f"curl reference receiver: {outcome.get('error')}, got "
                         f"{outcome.get('got')} of {size} bytes, curl: {p.stderr.strip()[:200]}")
    pre, total, _ = curl_times(p.stdout)
    return size / (total - pre) / 1e6


def with_reference(prefix, mbps, cpu_s_per_gib, ref, returned=None):
    m = {f"{prefix}_mbps": mbps, f"{prefix}_cpu_s_per_gib": cpu_s_per_gib}
    if returned is not None:
        m[f"{prefix}_returned_mib"] = returned
    if ref:
        m[f"{prefix}_ref_mbps"] = ref
        m[f"{prefix}_per_ref"] = mbps / ref
    return m
