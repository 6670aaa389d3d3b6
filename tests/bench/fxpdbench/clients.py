"""The FTP clients the workloads drive: asyncio sessions, a blocking one, curl, lftp, ftpload.

Each is bounded by a time-out; none of them holds figures, they return timings.
"""

import asyncio
import hashlib
import os
import re
import socket

from .util import BenchError, MIB, USER, run


class FtpError(Exception):
    pass


async def read_reply(reader, timeout):
    line = await asyncio.wait_for(reader.readline(), timeout)
    if len(line) < 4:
        raise FtpError(f"short reply {line!r}")
    code = line[:3]
    if line[3:4] == b"-":
        for _ in range(1000):
            nxt = await asyncio.wait_for(reader.readline(), timeout)
            if not nxt:
                raise FtpError("connection closed inside a multi-line reply")
            if nxt[:3] == code and nxt[3:4] == b" ":
                break
    return int(code), line


async def cmd(reader, writer, text, expect, timeout):
    writer.write(text.encode() + b"\r\n")
    code, line = await read_reply(reader, timeout)
    if code != expect:
        raise FtpError(f"{text.split()[0]} -> {line.strip()[:100]!r}")
    return line


async def login(host, port, password, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        code, line = await read_reply(reader, timeout)
        if code != 220:
            raise FtpError(f"greeting {line!r}")
        await cmd(reader, writer, f"USER {USER}", 331, timeout)
        await cmd(reader, writer, f"PASS {password}", 230, timeout)
    except BaseException:
        writer.close()
        raise
    return reader, writer


class Sink(asyncio.Protocol):
    def __init__(self, done):
        self.n = 0
        self.done = done

    def data_received(self, data):
        self.n += len(data)

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


async def fetch(host, port, password, path, size, timeout, stage):
    """One fresh session: log in, PASV, RETR `path`, check `size`, QUIT. `stage[0]` names
    the step in progress, so a failure can be attributed."""
    loop = asyncio.get_running_loop()
    stage[0] = "connect+login"
    reader, writer = await login(host, port, password, timeout)
    try:
        stage[0] = "TYPE/PASV"
        await cmd(reader, writer, "TYPE I", 200, timeout)
        line = await cmd(reader, writer, "PASV", 227, timeout)
        nums = re.search(rb"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", line)
        if not nums:
            raise FtpError(f"bad 227 {line!r}")
        n = [int(x) for x in nums.groups()]
        dhost, dport = ".".join(map(str, n[:4])), n[4] * 256 + n[5]
        done = loop.create_future()
        stage[0] = "data connect"
        transport, sink = await asyncio.wait_for(
            loop.create_connection(lambda: Sink(done), dhost, dport), timeout)
        try:
            stage[0] = "RETR reply"
            writer.write(f"RETR {path}\r\n".encode())
            code, line = await read_reply(reader, timeout)
            if code not in (125, 150):
                raise FtpError(f"RETR -> {line!r}")
            stage[0] = "data"
            await asyncio.wait_for(done, timeout)
        finally:
            transport.close()
        stage[0] = "226"
        code, line = await read_reply(reader, timeout)
        if code != 226:
            raise FtpError(f"after RETR {line!r}")
        if sink.n != size:
            raise FtpError(f"got {sink.n} bytes, expected {size}")
        stage[0] = "QUIT"
        writer.write(b"QUIT\r\n")
        try:
            await read_reply(reader, 5)
        except (FtpError, asyncio.TimeoutError, OSError):
            pass
    finally:
        writer.close()


def curl_times(out):
    parts = out.strip().split()
    if len(parts) < 3:
        raise BenchError(f"unexpected curl -w output {out!r}")
    return float(parts[0]), float(parts[1]), int(float(parts[2]))


def curl_tls_args(srv):
    """Explicit FTPS (AUTH TLS, PBSZ 0, PROT P) on a TLS instance; curl resumes the control
    connection's TLS session on each data connection. -k: the certificate is self-signed."""
    return ["--ssl-reqd", "-k"] if srv.name.endswith("-tls") else []


def file_digest(path, sample=None):
    """SHA-256 of a file, or of its first and last `sample` bytes."""
    h = hashlib.sha256()
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if sample is None or size <= 2 * sample:
            for chunk in iter(lambda: f.read(4 * MIB), b""):
                h.update(chunk)
        else:
            h.update(f.read(sample))
            f.seek(size - sample)
            h.update(f.read(sample))
    return h.hexdigest()


class SyncFtp:
    """A blocking control connection for the FXP workload (stdlib sockets, time-outs)."""

    def __init__(self, host, port, password, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.host = host
        code, line = self.reply()
        if code != 220:
            raise BenchError(f"{host}: greeting {line!r}")
        self.cmd(f"USER {USER}", 331)
        self.cmd(f"PASS {password}", 230)

    def reply(self):
        line = self.f.readline(4096)
        if len(line) < 4:
            raise BenchError(f"{self.host}: short reply {line!r}")
        code = line[:3]
        if line[3:4] == b"-":
            for _ in range(1000):
                nxt = self.f.readline(4096)
                if not nxt:
                    raise BenchError(f"{self.host}: closed inside a multi-line reply")
                if nxt[:3] == code and nxt[3:4] == b" ":
                    break
        return int(code), line.strip()[:200]

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def cmd(self, text, *expect):
        self.send(text)
        code, line = self.reply()
        if code not in expect:
            raise BenchError(f"{self.host}: {text.split()[0]} -> {line!r}")
        return line

    def close(self):
        try:
            self.send("QUIT")
            self.reply()
        except (OSError, BenchError):
            pass
        self.f.close()
        self.sock.close()


def lftp_script(ctx, srv, body):
    return "\n".join([
        "set ftp:use-feat no",          # the same commands for every server
        "set ftp:ssl-allow no",         # plain FTP: vsftpd runs without TLS
        "set ftp:passive-mode yes",
        "set ftp:prefer-epsv no",
        "set net:max-retries 1",
        "set net:timeout 60",
        "set net:reconnect-interval-base 1",
        "set cmd:fail-exit yes",
        "set xfer:clobber yes",
        f"open -u {USER},{ctx.password} -p {srv.port} {srv.host}",
    ] + body + [""])


def run_lftp(script_text, path, timeout):
    with open(path, "w") as f:
        f.write(script_text)
    p = run(["lftp", "-f", path], timeout=timeout, check=False)
    os.unlink(path)
    if p.returncode != 0:
        raise BenchError(f"lftp exited {p.returncode}: {p.stderr.strip()[-400:]}")
    # A mark line is "T SECONDS [NUMBER...]": each becomes a list of its numbers.
    return [[float(x) for x in l.split()[1:]] for l in p.stdout.splitlines()
            if l.startswith("T ")]


def ftpload(ctx, args, timeout, env=None):
    """Run the lean client, with `env` added to the environment; its stdout's last line,
    split."""
    if not ctx.ftpload:
        raise BenchError("the small_rs/logins_rs workloads need --ftpload (run.sh builds it)")
    out = run([ctx.ftpload] + [str(a) for a in args], timeout=timeout,
              env=dict(os.environ, **env) if env else None)
    return out.stdout.strip().splitlines()[-1].split()
