#!/usr/bin/env python3
"""Side-by-side loopback benchmark of fxpd and Debian's vsftpd (Python 3 stdlib only).

Run it through tests/bench/run.sh, which installs the clients and servers, builds fxpd and
then calls this driver as root. It is NOT part of the test suite and makes no absolute
claims: every figure is reported beside vsftpd's figure from the same round, and the
headline is the median over rounds of the per-round ratio fxpd/vsftpd. With --pure-ftpd,
Debian's pure-ftpd joins the transfer workloads as a third server (on 127.0.0.6) and a
second ratio column, fxpd/pure-ftpd, is printed.

Rules followed (see PERFORMANCE.md in the shared notes): both servers on loopback only
(vsftpd on 127.0.0.1, fxpd on 127.0.0.2), data on tmpfs, server CPU from a per-server
cgroup v2 `cpu.stat` (which counts vsftpd's forked session processes), transfer rates over
the data phase only (curl's time_total - time_pretransfer), small files inside one lftp
session after login with FEAT off, memory as PSS + page tables with sessions minus
without, per session; rounds rotate the order of the servers.

Everything is bounded: every subprocess and network wait has a time-out, every loop a
count or a deadline. Processes started here are stopped by pid and the temporary tree on
tmpfs is removed on exit (also on Ctrl-C / SIGTERM).
"""

import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import pwd
import re
import resource
import secrets
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

USER = "benchftp"
USER_HOME = "/var/lib/fxpd-bench-home"
VSFTPD_HOST = "127.0.0.1"
FXPD_HOST = "127.0.0.2"
# FXP destinations (the source is the main server of the same kind); the TLS instances
# share the main servers' addresses on other ports.
FXPD_FXP_HOST = "127.0.0.4"
VSFTPD_FXP_HOST = "127.0.0.5"
# The optional third server (--pure-ftpd).
PUREFTPD_HOST = "127.0.0.6"
# Passive port ranges, one per instance.
PASV_PORTS = {"vsftpd": (40000, 44999), "fxpd": (45000, 49999), "fxpd-eqhash": (50000, 54999),
              "vsftpd-tls": (30000, 31999), "fxpd-tls": (32000, 33999),
              "vsftpd-fxp": (34000, 35999), "fxpd-fxp": (36000, 37999),
              "pure-ftpd": (55000, 59999)}
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# stor_repeat: plain STORs per server per round (alternating servers), the round's figure
# is their median. An upload's speed on a VM depends on whether its pages are still in the
# guest (see settle_memory); repeating it costs little and steadies the figure most.
FULL = dict(big=2 * GIB, small_n=2000, small_size=4 * KIB, conc_n=200, conc_size=4 * MIB,
            idle_n=1000, login_secs=5.0, rounds=5, stor_repeat=3)
QUICK = dict(big=256 * MIB, small_n=500, small_size=4 * KIB, conc_n=50, conc_size=4 * MIB,
             idle_n=200, login_secs=2.0, rounds=2, stor_repeat=1)

# argon2id parameters for the optional "equal hash cost" fxpd instance: about the cost of
# the SHA-512 crypt hash vsftpd checks through PAM (both are timed and printed).
CHEAP_ARGON2 = dict(t=1, m_kib=1536, p=1)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def run(cmd, timeout=60, check=True, **kw):
    """subprocess.run with a time-out and captured text output."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise BenchError(f"{cmd[0]} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return p


def tcp_ext(*names):
    """Kernel TcpExt counters (machine-wide) from /proc/net/netstat."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            d = dict(zip(head.split()[1:], (int(v) for v in vals.split()[1:])))
            return {n: d.get(n, 0) for n in names}
    return {}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


# --------------------------------------------------------------------------------------
# Process accounting: cgroup v2 when writable, else /proc/PID/stat
# --------------------------------------------------------------------------------------

def find_cgroup2_root():
    """A writable cgroup v2 mount (pure v2 at /sys/fs/cgroup or hybrid .../unified)."""
    try:
        with open("/proc/self/mounts") as f:
            mounts = [l.split() for l in f]
    except OSError:
        return None
    for m in mounts:
        if len(m) >= 3 and m[2] == "cgroup2":
            root = m[1]
            probe = os.path.join(root, f"fxpd-bench-probe-{os.getpid()}")
            try:
                os.mkdir(probe)
                ok = os.path.exists(os.path.join(probe, "cpu.stat"))
                os.rmdir(probe)
                if ok:
                    return root
            except OSError:
                continue
    return None


CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def proc_children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def proc_tree(pid):
    kids = proc_children_map()
    out, todo = [], [pid]
    while todo and len(out) < 100000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pid_mem_kib(pid):
    """PSS + page tables of one process, KiB (0 if it is gone)."""
    pss = pte = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    pte = int(line.split()[1])
                    break
    except OSError:
        return 0
    return pss + pte


class Server:
    """One server process (and, for vsftpd, its forked sessions) under accounting."""

    def __init__(self, name, host, cgroot, workdir):
        self.name = name
        self.host = host
        self.port = None
        self.proc = None
        self.cg = None
        self.workdir = workdir
        self.logf = None
        if cgroot:
            self.cg = os.path.join(cgroot, f"fxpd-bench-{os.getpid()}-{name}")
            os.mkdir(self.cg)
        self.method = "cgroup v2 cpu.stat" if self.cg else "/proc/PID/stat (+reaped children)"

    def _spawn(self, argv, stdout):
        self.logf = open(os.path.join(self.workdir, f"{self.name}.log"), "ab")
        if self.cg:
            # The wrapper joins the cgroup before exec, so every later fork is counted.
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', self.cg] + argv
        self.proc = subprocess.Popen(argv, stdout=stdout, stderr=self.logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def pids(self):
        if self.cg:
            try:
                with open(os.path.join(self.cg, "cgroup.procs")) as f:
                    return [int(x) for x in f.read().split()]
            except OSError:
                return []
        if self.proc and self.proc.poll() is None:
            return proc_tree(self.proc.pid)
        return []

    def cpu_usec(self):
        if self.cg:
            with open(os.path.join(self.cg, "cpu.stat")) as f:
                for line in f:
                    k, v = line.split()
                    if k == "usage_usec":
                        return int(v)
            raise BenchError("no usage_usec in cpu.stat")
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            fields = s[s.rfind(")") + 2:].split()
            # utime stime cutime cstime (fields 14-17): cutime/cstime add reaped sessions.
            total += sum(int(x) for x in fields[11:15])
        return total * 1_000_000 // CLK_TCK

    def mem_kib(self):
        return sum(pid_mem_kib(p) for p in self.pids())

    def nprocs(self):
        return len(self.pids())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM to each of our server's processes by pid, then SIGKILL what is left."""
        if self.proc is None:
            return
        deadline = time.monotonic() + 8
        sent_kill = False
        for _ in range(400):
            pids = self.pids() if self.cg else ([self.proc.pid] if self.proc.poll() is None else [])
            if self.proc.poll() is None and self.proc.pid not in pids:
                pids.append(self.proc.pid)
            if not pids:
                break
            sig = signal.SIGKILL if time.monotonic() > deadline else signal.SIGTERM
            if sig == signal.SIGKILL and sent_kill:
                time.sleep(0.05)
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            sent_kill = sent_kill or sig == signal.SIGKILL
            try:
                self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.05)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        if self.cg:
            for _ in range(50):
                try:
                    os.rmdir(self.cg)
                    break
                except OSError:
                    time.sleep(0.1)
        if self.logf:
            self.logf.close()
        self.proc = None

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"{self.name} exited at start; see {self.workdir}/{self.name}.log")
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    s.settimeout(3)
                    if s.recv(256).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise BenchError(f"{self.name} not answering on {self.host}:{self.port}: {last}")


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Vsftpd(Server):
    def start(self, root, empty, extra=()):
        """`extra`: config lines appended (they override the defaults above them)."""
        self.port = free_port(self.host)
        lo, hi = PASV_PORTS[self.name]
        conf_lines = [
            "listen=YES", "listen_ipv6=NO", f"listen_address={self.host}",
            f"listen_port={self.port}", "background=NO",
            "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
            "local_umask=022", f"local_root={root}", "chroot_local_user=NO",
            "pasv_enable=YES", f"pasv_min_port={lo}", f"pasv_max_port={hi}",
            "connect_from_port_20=NO", "ssl_enable=NO",
            f"secure_chroot_dir={empty}", "pam_service_name=vsftpd",
            "seccomp_sandbox=NO", "isolate=NO", "isolate_network=NO",
            "max_clients=2000", "max_per_ip=2000",
            "idle_session_timeout=900", "data_connection_timeout=300",
            "xferlog_enable=NO", "dual_log_enable=NO", "syslog_enable=NO",
            f"vsftpd_log_file={self.workdir}/vsftpd-xfer.log",
            "use_sendfile=YES",
        ]
        # One value per option: the defaults that `extra` overrides are dropped.
        keys = {l.split("=")[0] for l in extra}
        conf_lines = [l for l in conf_lines if l.split("=")[0] not in keys] + list(extra)
        conf = os.path.join(self.workdir, "vsftpd.conf")
        with open(conf, "w") as f:
            f.write("\n".join(conf_lines + [""]))
        self._spawn(["vsftpd", conf], subprocess.DEVNULL)
        self.wait_ready()


class Fxpd(Server):
    def start(self, binary, root, users, extra=()):
        """`extra`: config lines appended at the end (each set under its own [section])."""
        pasv = "{}-{}".format(*PASV_PORTS[self.name])
        # A config file, so fxpd runs as a deployment (no quick start, anonymous off).
        conf = os.path.join(self.workdir, "fxpd.toml")
        with open(conf, "w") as f:
            f.write("\n".join([
                f'listen = ["{self.host}:0"]', f'root = "{root}"', f'users_file = "{users}"',
                "[passive]", f'ports = "{pasv}"',
                "[anonymous]", "enabled = false",
                "[limits]", "max_sessions = 2000", "max_sessions_per_ip = 2000",
                "max_unauthenticated = 2000", "max_unauthenticated_per_ip = 2000",
                "idle_timeout_secs = 900", "shutdown_grace_secs = 2",
                "[log]", 'level = "warn"'] + list(extra) + [""]))
        os.chmod(conf, 0o644)
        argv = [binary, "serve", "--config", conf]
        if os.geteuid() == 0 and shutil.which("setpriv"):
            # Same unprivileged user as vsftpd's sessions.
            argv = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups"] + argv
        self._spawn(argv, subprocess.PIPE)
        deadline = time.monotonic() + 15
        buf = b""
        while time.monotonic() < deadline and b"\n" not in buf:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        m = re.search(rb"LISTENING (\S+):(\d+)", buf)
        if not m:
            raise BenchError(f"{self.name} printed no LISTENING line (got {buf[:200]!r}); "
                             f"see {self.workdir}/{self.name}.log")
        self.port = int(m.group(2))
        out = self.proc.stdout
        threading.Thread(target=lambda: [None for _ in iter(lambda: out.read(65536), b"")],
                         daemon=True).start()
        self.wait_ready()


class PureFtpd(Server):
    def start(self, root, password):
        """One virtual user, benchftp with `password`, chrooted to `root` and mapped to the
        system user (its own PureDB: the system account's home is not the root). Its hash is
        the system account's SHA-512 crypt, the one vsftpd checks through PAM: pure-pw's own
        argon2id costs seconds per login."""
        self.port = free_port(self.host)
        passwd = os.path.join(self.workdir, "pureftpd.passwd")
        pdb = os.path.join(self.workdir, "pureftpd.pdb")
        run(["pure-pw", "useradd", USER, "-u", USER, "-g", USER, "-d", root, "-f", passwd],
            input=f"{password}\n{password}\n")
        with open(passwd) as f:
            fields = f.read().rstrip("\n").split(":")
        fields[1] = shadow_hash()
        with open(passwd, "w") as f:
            f.write(":".join(fields) + "\n")
        run(["pure-pw", "mkdb", pdb, "-f", passwd])
        lo, hi = PASV_PORTS[self.name]
        # -E no anonymous, -H no reverse DNS, -u 1: system uids may log in (benchftp is one).
        self._spawn(["pure-ftpd", "-S", f"{self.host},{self.port}", "-l", f"puredb:{pdb}",
                     "-E", "-H", "-p", f"{lo}:{hi}", "-c", "2000", "-C", "2000", "-I", "15",
                     "-u", "1"], subprocess.DEVNULL)
        self.wait_ready()


# Workloads the optional pure-ftpd runs: the transfers (its logins use pure-pw's own
# argon2id cost, not comparable, and FXP/TLS would need more instances).
PUREFTPD_WORKLOADS = {"retr", "stor", "small", "small_rs"}


# --------------------------------------------------------------------------------------
# A small asyncio FTP client (for concurrency, idle sessions and logins)
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Workloads: each returns a dict of metrics for one server in one round
# --------------------------------------------------------------------------------------

def curl_times(out):
    parts = out.strip().split()
    if len(parts) < 3:
        raise BenchError(f"unexpected curl -w output {out!r}")
    return float(parts[0]), float(parts[1]), int(float(parts[2]))


def curl_tls_args(srv):
    """Explicit FTPS (AUTH TLS, PBSZ 0, PROT P) on a TLS instance; curl resumes the control
    connection's TLS session on each data connection. -k: the certificate is self-signed."""
    return ["--ssl-reqd", "-k"] if srv.name.endswith("-tls") else []


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


def wl_retr(ctx, srv, prefix="retr"):
    size = ctx.cfg["big"]
    ref = reference_path(ctx, "null") if prefix == "retr" else None
    url = f"ftp://{USER}:{ctx.password}@{srv.host}:{srv.port}/big/big.bin"
    c0 = srv.cpu_usec()
    p = run(["curl", "-sS", "--max-time", "600", "-o", "/dev/null", "-w",
             "%{time_pretransfer} %{time_total} %{size_download}"] + curl_tls_args(srv) + [url],
            timeout=620)
    c1 = srv.cpu_usec()
    pre, total, got = curl_times(p.stdout)
    if got != size:
        raise BenchError(f"{prefix} got {got} bytes, expected {size}")
    return with_reference(prefix, size / (total - pre) / 1e6, (c1 - c0) / 1e6 / (size / GIB), ref)


def with_reference(prefix, mbps, cpu_s_per_gib, ref, returned=None):
    m = {f"{prefix}_mbps": mbps, f"{prefix}_cpu_s_per_gib": cpu_s_per_gib}
    if returned is not None:
        m[f"{prefix}_returned_mib"] = returned
    if ref:
        m[f"{prefix}_ref_mbps"] = ref
        m[f"{prefix}_per_ref"] = mbps / ref
    return m


def wl_stor(ctx, srv, prefix="stor"):
    size = ctx.cfg["big"]
    dest = os.path.join(ctx.roots[srv.name], "big", "up_big.bin")
    url = f"ftp://{USER}:{ctx.password}@{srv.host}:{srv.port}/big/up_big.bin"
    ref = None
    if prefix == "stor":
        settle_memory()
        take_pages(ctx)
    r0 = returned_mib()
    c0 = srv.cpu_usec()
    try:
        p = run(["curl", "-sS", "--max-time", "600", "-T", ctx.big_src, "-w",
                 "%{time_pretransfer} %{time_total} %{size_upload}"] + curl_tls_args(srv)
                + [url], timeout=620)
        c1 = srv.cpu_usec()
        returned = returned_since(r0)
        pre, total, sent = curl_times(p.stdout)
        on_disk = os.path.getsize(dest)
    finally:
        if os.path.exists(dest):
            os.unlink(dest)
    if sent != size or on_disk != size:
        raise BenchError(f"{prefix} sent {sent}, stored {on_disk}, expected {size}")
    mbps = size / (total - pre) / 1e6
    m = {}
    if prefix == "stor":
        # Right away, on the pages the upload just freed: the same memory state.
        ref = reference_curl_stor(ctx)
        # The upload's rate only if the VM handed nothing back to its host while it ran (or
        # cannot: no page reporting); otherwise None, left out of the round's median.
        m["stor_clean_mbps"] = mbps if not returned else None
    return with_reference(prefix, mbps, (c1 - c0) / 1e6 / (size / GIB), ref, returned) | m


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


def wl_fxp(ctx, src, dst):
    """Server-to-server transfer of big.bin as in Microsoft KB Q247132: the client (here, on
    127.0.0.1) sends PASV to the destination, PORT with the destination's address to the
    source, STOR to the destination, RETR to the source, and waits for both 226. The rate is
    over that data phase; CPU is the sum of both servers'."""
    size = ctx.cfg["big"]
    dest = os.path.join(ctx.roots[dst.name], "big", "fxp_big.bin")
    if os.path.exists(dest):
        os.unlink(dest)
    settle_memory()
    ref = reference_path(ctx, "file")
    a = b = None
    try:
        a = SyncFtp(src.host, src.port, ctx.password, 620)
        b = SyncFtp(dst.host, dst.port, ctx.password, 620)
        a.cmd("TYPE I", 200)
        b.cmd("TYPE I", 200)
        line = b.cmd("PASV", 227)
        nums = re.search(rb"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", line)
        if not nums:
            raise BenchError(f"bad 227 {line!r}")
        a.cmd("PORT " + nums.group(0).decode(), 200)
        r0 = returned_mib()
        c0 = src.cpu_usec() + dst.cpu_usec()
        t0 = time.perf_counter()
        # vsftpd answers a passive STOR only once the data connection is in: send both
        # commands before reading either reply.
        b.send("STOR big/fxp_big.bin")
        a.send("RETR big/big.bin")
        for conn, what in ((a, "RETR"), (b, "STOR")):
            code, line = conn.reply()
            if code not in (125, 150):
                raise BenchError(f"{conn.host}: FXP {what} -> {line!r}")
        for conn, what in ((a, "RETR"), (b, "STOR")):
            code, line = conn.reply()
            if code != 226:
                raise BenchError(f"{conn.host}: FXP {what} ended with {line!r}")
        wall = time.perf_counter() - t0
        c1 = src.cpu_usec() + dst.cpu_usec()
        returned = returned_since(r0)
        got = os.path.getsize(dest)
        if got != size:
            raise BenchError(f"FXP stored {got} bytes, expected {size}")
        # The whole file in quick mode; its first and last 16 MiB with the full sizes.
        sample = None if ctx.quick else 16 * MIB
        key = "full" if sample is None else "sample"
        if key not in ctx.big_digest:
            ctx.big_digest[key] = file_digest(ctx.big_src, sample)
        if file_digest(dest, sample) != ctx.big_digest[key]:
            raise BenchError("FXP: the destination file differs from the source")
    finally:
        for conn in (a, b):
            if conn is not None:
                conn.close()
        if os.path.exists(dest):
            os.unlink(dest)
    return with_reference("fxp", size / wall / 1e6, (c1 - c0) / 1e6 / (size / GIB), ref,
                          returned)


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
    return [float(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("T ")]


def small_round_trip(ctx, srv, rnd, tag, transfer):
    """N small files down then up in one session: `transfer(getdir, updir_name)` moves them
    and returns the (get, put) seconds; checks every file arrived, returns files/s each way
    and the server CPU per file, keys prefixed with `tag`."""
    n = ctx.cfg["small_n"]
    getdir = os.path.join(ctx.work, f"get{tag}-{srv.name}-{rnd}")
    updir_name = f"up{tag}-{rnd}"
    updir = os.path.join(ctx.roots[srv.name], updir_name)
    os.mkdir(getdir)
    os.mkdir(updir)
    os.chown(updir, ctx.uid, ctx.gid)
    try:
        c0 = srv.cpu_usec()
        k0 = children_cpu_s()
        get_s, put_s = transfer(getdir, updir_name)
        k1 = children_cpu_s()
        c1 = srv.cpu_usec()
        got = os.listdir(getdir)
        put = os.listdir(updir)
        size = ctx.cfg["small_size"]
        if len(got) != n or len(put) != n or any(
                os.path.getsize(os.path.join(updir, x)) != size for x in put):
            raise BenchError(f"small files ({tag or 'lftp'}): got {len(got)}, put {len(put)} of {n}")
    finally:
        shutil.rmtree(getdir, ignore_errors=True)
        shutil.rmtree(updir, ignore_errors=True)
    prefix = f"{tag}_" if tag else ""
    return {f"{prefix}small_get_fps": n / get_s, f"{prefix}small_put_fps": n / put_s,
            f"{prefix}small_cpu_ms_per_file": (c1 - c0) / 1e3 / (2 * n),
            f"{prefix}small_client_cpu_ms_per_file": (k1 - k0) * 1e3 / (2 * n)}


def children_cpu_s():
    """CPU seconds of this process's finished children: the client of a workload run
    through run() (lftp, ftpload), which shares the 2 cores with the server."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wl_small(ctx, srv, rnd):
    """The small-file workload with lftp (mget, then mput, timestamps printed inside the
    session)."""
    names = " ".join(ctx.small_names)

    def transfer(getdir, updir_name):
        ts = run_lftp(lftp_script(ctx, srv, [
            "cd small",                 # logs in and checks the path before timing starts
            "!echo T $(date +%s.%N)",
            f"mget -O {getdir} {names}",
            "!echo T $(date +%s.%N)",
            f"cd ../{updir_name}",          # relative: vsftpd runs without chroot
            f"lcd {ctx.client_small}",
            "!echo T $(date +%s.%N)",
            f"mput {names}",
            "!echo T $(date +%s.%N)",
        ]), os.path.join(ctx.work, f"lftp-{srv.name}.txt"), timeout=900)
        if len(ts) != 4:
            raise BenchError(f"lftp printed {len(ts)} timestamps")
        return ts[1] - ts[0], ts[3] - ts[2]

    return small_round_trip(ctx, srv, rnd, "", transfer)


def ftpload(ctx, args, timeout):
    """Run the lean client; its stdout's last line, split."""
    if not ctx.ftpload:
        raise BenchError("the small_rs/logins_rs workloads need --ftpload (run.sh builds it)")
    out = run([ctx.ftpload] + [str(a) for a in args], timeout=timeout)
    return out.stdout.strip().splitlines()[-1].split()


def wl_small_rs(ctx, srv, rnd):
    """The small-file workload with the lean Rust client (tests/bench/ftpload.rs): one
    session, passive RETR of every file, then passive STOR of every file."""
    def transfer(getdir, updir_name):
        get_s = float(ftpload(ctx, ["get", srv.host, srv.port, USER, ctx.password, "small", getdir]
                              + ctx.small_names, 900)[0])
        put_s = float(ftpload(ctx, ["put", srv.host, srv.port, USER, ctx.password, updir_name,
                                    ctx.client_small] + ctx.small_names, 900)[0])
        return get_s, put_s

    return small_round_trip(ctx, srv, rnd, "rs", transfer)


def wl_logins_rs(ctx, srv):
    """Logins per second with the lean Rust client: 4 threads, USER/PASS/QUIT in a loop."""
    c0 = srv.cpu_usec()
    count, fails, wall = ftpload(ctx, ["logins", srv.host, srv.port, USER, ctx.password,
                                       ctx.cfg["login_secs"], 4], 120)
    c1 = srv.cpu_usec()
    time.sleep(0.3)
    count, fails, wall = int(count), int(fails), float(wall)
    return {"rs_logins_per_s": count / wall, "rs_login_cpu_ms": (c1 - c0) / 1e3 / max(count, 1),
            "rs_login_failures": fails}


def wl_conc(ctx, srv):
    """200 sessions at once, each logs in and downloads 4 MiB. A session that waits 20 s for
    any reply counts as failed: the successful ones all end within a few seconds, and the
    failures seen are connections the kernel completed with SYN cookies after a server's
    listen queue overflowed (vsftpd's is 32 deep), which never get a greeting at all."""
    n, size = ctx.cfg["conc_n"], ctx.cfg["conc_size"]

    async def one():
        stage = ["start"]
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(
                fetch(srv.host, srv.port, ctx.password, "conc.bin", size, 20, stage), 60)
            return time.perf_counter() - t0
        except (OSError, FtpError, asyncio.TimeoutError) as e:
            return f"{stage[0]}: {type(e).__name__} {e}"[:120]

    async def main():
        t0 = time.perf_counter()
        # All sessions connect at once: a burst, as many clients arriving together.
        res = await asyncio.gather(*[one() for _ in range(n)])
        return time.perf_counter() - t0, res

    k0 = tcp_ext("ListenOverflows", "SyncookiesSent")
    c0 = srv.cpu_usec()
    wall, res = asyncio.run(main())
    c1 = srv.cpu_usec()
    k1 = tcp_ext("ListenOverflows", "SyncookiesSent")
    errs = [r for r in res if isinstance(r, str)]
    times = sorted(r for r in res if not isinstance(r, str))
    if errs:
        kinds = {}
        for e in errs:
            kinds[e] = kinds.get(e, 0) + 1
        log(f"  {srv.name}: {len(errs)} of {n} concurrent sessions failed: {kinds}")
    out = {"conc_wall_s": wall, "conc_failures": len(errs), "conc_cpu_s": (c1 - c0) / 1e6,
           # Accept-queue overflows during the burst (machine-wide counters): a client whose
           # handshake completed on a SYN cookie but was dropped waits for a 220 that never comes.
           "conc_listen_overflows": k1.get("ListenOverflows", 0) - k0.get("ListenOverflows", 0),
           "conc_syncookies": k1.get("SyncookiesSent", 0) - k0.get("SyncookiesSent", 0)}
    if times:
        out["conc_session_median_s"] = statistics.median(times)
        out["conc_session_max_s"] = times[-1]
    return out


def wl_idle(ctx, srv):
    n = ctx.cfg["idle_n"]

    async def main():
        time.sleep(0.5)
        before = srv.mem_kib()
        procs_before = srv.nprocs()
        sem = asyncio.Semaphore(16)
        conns, errs = [], []

        async def one():
            async with sem:
                try:
                    conns.append(await login(srv.host, srv.port, ctx.password, 60))
                except (OSError, FtpError, asyncio.TimeoutError) as e:
                    errs.append(f"{type(e).__name__}: {e}"[:100])

        t0 = time.perf_counter()
        await asyncio.gather(*[one() for _ in range(n)])
        login_wall = time.perf_counter() - t0
        await asyncio.sleep(1.0)
        after = srv.mem_kib()
        procs_after = srv.nprocs()
        # Every session must still be there (an answer to NOOP proves it).
        alive = 0
        for r, w in conns:
            try:
                w.write(b"NOOP\r\n")
                code, _ = await read_reply(r, 10)
                alive += code == 200
            except (OSError, FtpError, asyncio.TimeoutError):
                pass
        for r, w in conns:
            try:
                w.write(b"QUIT\r\n")
            except OSError:
                pass
        await asyncio.sleep(0.2)
        for r, w in conns:
            w.close()
        return before, after, procs_before, procs_after, len(conns), alive, errs, login_wall

    before, after, pb, pa, ok, alive, errs, wall = asyncio.run(main())
    if errs:
        log(f"  {srv.name}: {len(errs)} idle logins failed, e.g. {errs[0]}")
    # Let the server wind the sessions down before the next workload.
    for _ in range(100):
        if srv.nprocs() <= pb:
            break
        time.sleep(0.1)
    return {"idle_kib_per_session": (after - before) / max(ok, 1), "idle_sessions": ok,
            "idle_alive": alive, "idle_failures": n - ok,
            "idle_procs_before": pb, "idle_procs_after": pa, "idle_base_mib": before / 1024}


def wl_logins(ctx, srv):
    secs = ctx.cfg["login_secs"]

    async def main():
        count, fails = 0, 0
        deadline = time.perf_counter() + secs

        async def worker():
            nonlocal count, fails
            for _ in range(1_000_000):
                if time.perf_counter() >= deadline:
                    return
                try:
                    r, w = await login(srv.host, srv.port, ctx.password, 30)
                    try:
                        await cmd(r, w, "QUIT", 221, 10)
                    finally:
                        w.close()
                    count += 1
                except (OSError, FtpError, asyncio.TimeoutError):
                    fails += 1
                    await asyncio.sleep(0.01)

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(4)])
        return count, fails, time.perf_counter() - t0

    c0 = srv.cpu_usec()
    count, fails, wall = asyncio.run(main())
    c1 = srv.cpu_usec()
    time.sleep(0.3)
    return {"logins_per_s": count / wall, "login_cpu_ms": (c1 - c0) / 1e3 / max(count, 1),
            "login_failures": fails}


# --------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------

def ensure_user(password):
    try:
        pwd.getpwnam(USER)
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "--home-dir", USER_HOME,
             "--shell", "/bin/bash", USER])
    pw = pwd.getpwnam(USER)
    if not os.path.isdir(pw.pw_dir):
        os.makedirs(pw.pw_dir, exist_ok=True)
        os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    # SHA-512 crypt (~1-3 ms), the hash cost the reference figures used for C servers.
    run(["chpasswd", "-c", "SHA512"], input=f"{USER}:{password}\n")
    return pw.pw_uid, pw.pw_gid


def lock_user():
    subprocess.run(["passwd", "-l", USER], capture_output=True, timeout=30)


def shadow_hash():
    """The bench user's password hash in /etc/shadow (SHA-512 crypt, see ensure_user)."""
    with open("/etc/shadow") as f:
        return next(l.split(":")[1] for l in f if l.startswith(USER + ":"))


def time_sha512crypt(password):
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        h = shadow_hash()
        t0 = time.perf_counter()
        for _ in range(20):
            crypt.crypt(password, h)
        return (time.perf_counter() - t0) / 20 * 1e3
    except Exception:
        return None


def argon2_phc(password, t, m_kib, p):
    """(PHC string, seconds) from Debian's argon2 CLI, or None without it."""
    if not shutil.which("argon2"):
        return None
    salt = secrets.token_hex(8)
    logk = None
    # The CLI takes memory as -k KiB (newer) or -m log2(KiB) (all versions).
    args = ["argon2", salt, "-id", "-t", str(t), "-k", str(m_kib), "-p", str(p)]
    pr = subprocess.run(args, input=password, capture_output=True, text=True, timeout=60)
    if pr.returncode != 0:
        logk = max(1, m_kib.bit_length() - 1)
        args = ["argon2", salt, "-id", "-t", str(t), "-m", str(logk), "-p", str(p)]
        pr = subprocess.run(args, input=password, capture_output=True, text=True, timeout=60)
    if pr.returncode != 0:
        return None
    enc = re.search(r"(\$argon2id\$\S+)", pr.stdout)
    secs = re.search(r"^([\d.]+) seconds", pr.stdout, re.M)
    if not enc:
        return None
    return enc.group(1), float(secs.group(1)) if secs else None


def fill_file(path, size, block):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            k = min(left, len(block))
            f.write(block[:k])
            left -= k


class Ctx:
    pass


def mount_big_tmpfs(ctx, path, size):
    """With --huge, the big files (RETR, STOR, FXP, TLS) get a tmpfs of their own with 2 MiB
    pages: on a VM that hands freed memory back to its host, that makes 512 times fewer
    page events per upload. Not the default: the first write into each new 2 MiB page of a
    tmpfs file zeroes the rest of it, a pass over every byte uploaded that no disk file
    system makes (their page cache has 4 KiB pages, which a full-page write fills without
    zeroing), and it hides the difference between one copy per byte and two. Small files
    stay on the ordinary tmpfs (a huge page per 4 KiB file would swamp them). Returns False
    (the caller uses a plain directory) when mounting is not possible."""
    os.makedirs(path)
    p = run(["mount", "-t", "tmpfs", "-o", f"size={size},huge=always,mode=0755",
             "fxpd-bench", path], check=False)
    if p.returncode != 0:
        log(f"cannot mount a huge-page tmpfs ({p.stderr.strip()}); big files on the data dir")
        return False
    ctx.mounts.append(path)
    return True


def bind_mount(ctx, src, dst):
    os.makedirs(dst)
    run(["mount", "--bind", src, dst])
    ctx.mounts.append(dst)


def unmount_all(ctx):
    for path in reversed(getattr(ctx, "mounts", None) or []):
        run(["umount", path], check=False)
    if ctx is not None:
        ctx.mounts = []


PAGE_REPORTING = "/sys/module/page_reporting/parameters/reported_kib"


def returned_mib():
    """Memory the guest has handed back to the host so far (free page reporting), in MiB;
    None where the kernel does not report free pages."""
    try:
        with open(PAGE_REPORTING) as f:
            return int(f.read()) / KIB
    except (OSError, ValueError):
        return None


def returned_since(before):
    """MiB handed back to the host since `before` (a returned_mib() reading), or None."""
    now = returned_mib()
    return None if before is None or now is None else now - before


def median_of_runs(runs):
    """One workload's metrics from repeated runs: each metric's median (the value itself
    when it ran once; None where no run had one)."""
    if len(runs) == 1:
        return runs[0]
    out = {}
    for k in runs[0]:
        vals = [r[k] for r in runs if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    return out


def take_pages(ctx):
    """Write, then delete, a file the size of the big one beside it: the transfer that starts
    right after reuses these pages instead of taking them from the host one by one."""
    path = os.path.join(ctx.big_dir, "pages.bin")
    chunk = b"\0" * (4 * MIB)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(ctx.cfg["big"] // len(chunk) + 1):
                os.write(fd, chunk)
        finally:
            os.close(fd)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def settle_memory(limit=15.0):
    """Wait until the guest has stopped handing freed memory back to its host (the counter
    stays still for a second), so that every STOR and FXP starts from the same state: the
    run then takes pages from the host and frees them (take_pages, or the FXP reference
    program), and the server's transfer right after it reuses them. Without this, whichever
    transfer ran while the kernel was reporting an earlier one's pages took them from the
    host again, a third of the speed, whichever server it was. No-op without free page
    reporting."""
    last = returned_mib()
    if last is None:
        return
    deadline = time.monotonic() + limit
    still = 0
    while still < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = returned_mib()
        still = still + 1 if now == last else 0
        last = now


def setup(args, cfg, cgroot):
    ctx = Ctx()
    try:
        return setup_in(ctx, args, cfg, cgroot)
    except BaseException:
        unmount_all(ctx)
        raise


def setup_in(ctx, args, cfg, cgroot):
    ctx.cfg = cfg
    ctx.quick = args.quick
    ctx.ftpload = args.ftpload
    ctx.big_digest = {}
    ctx.password = "bench" + secrets.token_hex(12)
    ctx.uid, ctx.gid = ensure_user(ctx.password)

    workloads = args.only.split(",") if args.only else WORKLOADS
    # big.bin, one upload at a time, the FXP copy and the reference program's file.
    nbig = 3 + ("fxp" in workloads)
    need = nbig * cfg["big"] + cfg["small_n"] * cfg["small_size"] * 6 + 4 * cfg["conc_size"] + 256 * MIB
    ctx.mounts = []
    base = args.data_dir
    st = shutil.disk_usage(base)
    with open("/proc/meminfo") as f:
        avail = next(int(l.split()[1]) * KIB for l in f if l.startswith("MemAvailable:"))
    if st.free < need or avail < need + GIB:
        raise BenchError(f"{base} has {st.free / GIB:.1f} GiB free and the machine "
                         f"{avail / GIB:.1f} GiB available; this run needs {need / GIB:.1f} GiB "
                         f"(use --quick or --big-mib)")
    ctx.work = tempfile.mkdtemp(prefix="fxpd-bench.", dir=base)
    os.chmod(ctx.work, 0o755)
    log(f"data on {base} (free {st.free / GIB:.1f} GiB): {ctx.work}")

    block = os.urandom(4 * MIB)
    data = os.path.join(ctx.work, "data")
    os.mkdir(data)
    # Each server root's big/ directory is a plain directory, or with --huge a bind mount
    # of its own directory in one huge-page tmpfs (hard links need one file system).
    ctx.big_dir = os.path.join(ctx.work, "big")
    huge = args.huge and mount_big_tmpfs(ctx, ctx.big_dir, nbig * cfg["big"] + GIB)
    if not huge:
        os.makedirs(ctx.big_dir, exist_ok=True)
    ctx.data_dir_desc = base + (" (big files on a tmpfs with huge=always)" if huge else "")
    ctx.big_src = os.path.join(ctx.big_dir, "big.bin")
    fill_file(ctx.big_src, cfg["big"], block)
    conc = os.path.join(data, "conc.bin")
    fill_file(conc, cfg["conc_size"], block[1:])
    ctx.client_small = os.path.join(ctx.work, "client-small")
    os.mkdir(ctx.client_small)
    ctx.small_names = [f"f{i:05d}.dat" for i in range(cfg["small_n"])]
    for i, nm in enumerate(ctx.small_names):
        with open(os.path.join(ctx.client_small, nm), "wb") as f:
            f.write(block[i * 7 % MIB:][:cfg["small_size"]])

    def big_subdir(name, root):
        if not huge:
            os.makedirs(os.path.join(root, "big"))
            return os.path.join(root, "big")
        own = os.path.join(ctx.big_dir, name)
        os.makedirs(own)
        bind_mount(ctx, own, os.path.join(root, "big"))
        return own

    ctx.roots = {}
    for name in ("vsftpd", "fxpd") + (("pure-ftpd",) if args.pure_ftpd else ()):
        root = os.path.join(ctx.work, name, "root")
        os.makedirs(os.path.join(root, "small"))
        # Hard links: one copy of the data on tmpfs, the same inodes for both servers.
        os.link(ctx.big_src, os.path.join(big_subdir(name, root), "big.bin"))
        os.link(conc, os.path.join(root, "conc.bin"))
        for nm in ctx.small_names:
            os.link(os.path.join(ctx.client_small, nm), os.path.join(root, "small", nm))
        ctx.roots[name] = root
    ctx.roots["fxpd-eqhash"] = ctx.roots["fxpd"]
    ctx.roots["fxpd-tls"] = ctx.roots["fxpd"]
    ctx.roots["vsftpd-tls"] = ctx.roots["vsftpd"]
    for name in ("vsftpd-fxp", "fxpd-fxp"):
        # FXP destinations: an empty root of their own.
        ctx.roots[name] = os.path.join(ctx.work, name, "root")
        os.makedirs(ctx.roots[name])
        big_subdir(name, ctx.roots[name])
    os.makedirs(os.path.join(ctx.work, "vsftpd", "empty"))
    for dirpath, dirnames, filenames in os.walk(ctx.work):
        os.chown(dirpath, ctx.uid, ctx.gid)
        for fn in filenames:
            os.chown(os.path.join(dirpath, fn), ctx.uid, ctx.gid)
    os.chown(os.path.join(ctx.work, "vsftpd", "empty"), 0, 0)
    os.chmod(os.path.join(ctx.work, "vsftpd", "empty"), 0o755)
    os.chown(ctx.work, 0, 0)
    ctx.cgroot = cgroot
    ctx.cert = ctx.key = None
    if {"tls_retr", "tls_stor"} & set(workloads):
        ctx.cert, ctx.key = make_cert(ctx)
    return ctx


def make_cert(ctx):
    """A throwaway self-signed RSA certificate for both TLS instances. The key is readable
    by root (vsftpd loads it before dropping privileges) and the bench group (fxpd)."""
    d = os.path.join(ctx.work, "tls")
    os.mkdir(d)
    os.chmod(d, 0o750)
    os.chown(d, 0, ctx.gid)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=fxpd-bench",
         "-addext", f"subjectAltName=IP:{VSFTPD_HOST},IP:{FXPD_HOST}"], timeout=60)
    for f, mode in ((cert, 0o644), (key, 0o640)):
        os.chown(f, 0, ctx.gid)
        os.chmod(f, mode)
    return cert, key


def tls_params(ctx, srv):
    """The TLS version and cipher curl negotiates with a TLS instance (from curl -v)."""
    url = f"ftp://{USER}:{ctx.password}@{srv.host}:{srv.port}/"
    p = run(["curl", "-sS", "-v", "--max-time", "30", "-l", "-o", "/dev/null"]
            + curl_tls_args(srv) + [url], timeout=40, check=False)
    if p.returncode != 0:
        raise BenchError(f"{srv.name}: TLS listing failed: {p.stderr.strip()[-300:]}")
    m = re.search(r"SSL connection using (\S+) / (\S+)", p.stderr)
    return f"{m.group(1)} {m.group(2)}" if m else None


def make_users_file(ctx, binary, name, phc=None):
    path = os.path.join(ctx.work, name, "users.toml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t0 = time.perf_counter()
    run([binary, "user", "add", USER, "--users", path, "--write"],
        input=ctx.password + "\n", timeout=60)
    add_secs = time.perf_counter() - t0
    if phc:
        with open(path) as f:
            text = f.read()
        new, k = re.subn(r'"\$argon2[^"]*"', lambda _m: '"' + phc + '"', text)
        if k != 1:
            raise BenchError(f"could not find the password hash in {path}")
        with open(path, "w") as f:
            f.write(new)
    os.chown(path, ctx.uid, ctx.gid)
    os.chmod(path, 0o600)
    with open(path) as f:
        m = re.search(r"\$argon2id\$v=19\$(m=\d+,t=\d+,p=\d+)", f.read())
    return path, (m.group(1) if m else "?"), add_secs


# --------------------------------------------------------------------------------------
# Loopback ceiling (iperf3) and profiles (strace, perf)
# --------------------------------------------------------------------------------------

def iperf_ceiling(secs):
    if not shutil.which("iperf3"):
        return None
    out = {}
    for label, extra in (("plain", []), ("sendfile", ["-Z"])):
        port = free_port("127.0.0.1")
        srv = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            # That probe counted as iperf3's one client: start a fresh one-off server.
            srv.wait(timeout=5)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        srv = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            p = run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(secs), "-J"] + extra,
                    timeout=secs + 30, check=False)
            j = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
            bps = j.get("end", {}).get("sum_received", {}).get("bits_per_second")
            out[label] = bps / 8 / 1e6 if bps else None
        finally:
            try:
                srv.wait(timeout=5)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
    return out


def profile_fxpd(ctx, srv, outdir):
    """strace -c (and perf, if it works) on fxpd during one RETR, STOR and small-file run."""
    report = {}
    pid = srv.proc.pid
    small_n = min(ctx.cfg["small_n"], 500)
    jobs = [("retr", lambda: wl_retr(ctx, srv)), ("stor", lambda: wl_stor(ctx, srv)),
            ("small", lambda: wl_small_n(ctx, srv, small_n))]
    if shutil.which("strace"):
        for label, fn in jobs:
            path = os.path.join(outdir, f"strace-c-{label}.txt")
            st = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", path],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            try:
                report[f"strace_{label}"] = fn()
            finally:
                st.send_signal(signal.SIGINT)
                try:
                    st.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    st.kill()
                    st.wait()
            log(f"  strace -c during {label}: {path}")
        # A timed trace of a few small transfers shows where each one waits.
        path = os.path.join(outdir, "strace-tt-small.txt")
        st = subprocess.Popen(["strace", "-f", "-tt", "-T", "-p", str(pid), "-o", path,
                               "-e", "trace=network,read,write,sendfile,splice,openat,close,"
                               "epoll_wait,futex"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        try:
            wl_small_n(ctx, srv, 20)
        finally:
            st.send_signal(signal.SIGINT)
            try:
                st.wait(timeout=20)
            except subprocess.TimeoutExpired:
                st.kill()
                st.wait()
        log(f"  timed strace of 20 small files each way: {path}")
    if shutil.which("perf"):
        for label, fn in jobs:
            data = os.path.join(outdir, f"perf-{label}.data")
            pf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(pid),
                                   "-o", data], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            try:
                fn()
            finally:
                pf.send_signal(signal.SIGINT)
                try:
                    pf.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    pf.kill()
                    pf.wait()
            rep = os.path.join(outdir, f"perf-{label}.txt")
            with open(rep, "w") as f:
                subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                "--sort", "dso,sym", "-g", "none", "--percent-limit", "0.5"],
                               stdout=f, stderr=subprocess.DEVNULL, timeout=300)
            log(f"  perf during {label}: {rep}")
    return report


def wl_small_n(ctx, srv, n):
    saved = (ctx.cfg, ctx.small_names)
    ctx.cfg = dict(ctx.cfg, small_n=n)
    ctx.small_names = ctx.small_names[:n]
    try:
        return wl_small(ctx, srv, f"p{n}-{secrets.token_hex(3)}")
    finally:
        ctx.cfg, ctx.small_names = saved


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

# key, label, True when higher is better
METRICS = [
    ("retr_mbps", "RETR {big}, MB/s", True),
    ("retr_cpu_s_per_gib", "RETR server CPU s/GiB", False),
    ("retr_ref_mbps", "  reference: sendfile -> read, no server, MB/s", True),
    ("retr_per_ref", "  RETR / reference just before it", True),
    ("stor_mbps", "STOR {big}, MB/s", True),
    ("stor_cpu_s_per_gib", "STOR server CPU s/GiB", False),
    ("stor_ref_mbps", "  reference: curl into a receiver that only splices to tmpfs, MB/s", True),
    ("stor_per_ref", "  STOR / reference just before it", True),
    ("stor_returned_mib", "  MiB the VM handed back to its host during STOR", False),
    ("stor_clean_mbps", "  STOR MB/s of the uploads during which it handed back nothing", True),
    ("fxp_mbps", "FXP {big} server to server, MB/s", True),
    ("fxp_per_retr", "  FXP / same server's RETR (goal >= 0.9)", True),
    ("fxp_cpu_s_per_gib", "  CPU s/GiB, both servers", False),
    ("fxp_ref_mbps", "  reference: sendfile -> splice to tmpfs, MB/s", True),
    ("fxp_per_ref", "  FXP / reference just before it", True),
    ("fxp_returned_mib", "  MiB the VM handed back to its host during FXP", False),
    ("ref_file_per_null", "  reference to tmpfs / reference to read (FXP/RETR possible)", True),
    ("tls_retr_mbps", "TLS RETR {big} (PROT P), MB/s", True),
    ("tls_retr_cpu_s_per_gib", "TLS RETR server CPU s/GiB", False),
    ("tls_stor_mbps", "TLS STOR {big} (PROT P), MB/s", True),
    ("tls_stor_cpu_s_per_gib", "TLS STOR server CPU s/GiB", False),
    ("small_get_fps", "{small_n} x 4 KiB get, files/s", True),
    ("small_put_fps", "{small_n} x 4 KiB put, files/s", True),
    ("small_cpu_ms_per_file", "small files server CPU ms/file", False),
    ("small_client_cpu_ms_per_file", "  client (lftp) CPU ms/file", False),
    ("rs_small_get_fps", "{small_n} x 4 KiB get, files/s, Rust client", True),
    ("rs_small_put_fps", "{small_n} x 4 KiB put, files/s, Rust client", True),
    ("rs_small_cpu_ms_per_file", "  server CPU ms/file, Rust client", False),
    ("rs_small_client_cpu_ms_per_file", "  client CPU ms/file, Rust client", False),
    ("conc_wall_s", "{conc_n} concurrent x 4 MiB, wall s", False),
    ("conc_failures", "  failures (sum over rounds)", False),
    ("conc_cpu_s", "  server CPU s", False),
    ("conc_session_median_s", "  one session, median s", False),
    ("conc_session_max_s", "  slowest successful session, s", False),
    ("conc_listen_overflows", "  kernel listen-queue overflows", False),
    ("idle_kib_per_session", "{idle_n} idle sessions, KiB/session", False),
    ("idle_base_mib", "  server PSS+PT before them, MiB", False),
    ("logins_per_s", "logins/s (4 clients)", True),
    ("login_cpu_ms", "  server CPU ms/login", False),
    ("eq_logins_per_s", "logins/s, fxpd at ~equal hash cost (*)", True),
    ("eq_login_cpu_ms", "  server CPU ms/login", False),
    ("rs_logins_per_s", "logins/s, Rust client (4 threads)", True),
    ("rs_login_cpu_ms", "  server CPU ms/login", False),
    ("eq_rs_logins_per_s", "logins/s, Rust client, fxpd at ~equal hash (*)", True),
    ("eq_rs_login_cpu_ms", "  server CPU ms/login", False),
    ("eq_conc_wall_s", "{conc_n} concurrent, fxpd at ~equal hash (*), s", False),
    ("eq_conc_failures", "  failures (sum over rounds)", False),
    ("eq_conc_cpu_s", "  server CPU s", False),
    ("eq_conc_session_median_s", "  one session, median s", False),
    ("eq_conc_session_max_s", "  slowest successful session, s", False),
    ("eq_idle_kib_per_session", "idle KiB/session, fxpd at ~equal hash (*)", False),
    ("eq_idle_base_mib", "  server PSS+PT before them, MiB", False),
]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def size_label(n):
    return f"{n // GIB} GiB" if n >= GIB and n % GIB == 0 else f"{n // MIB} MiB"


def summarize(results, cfg, servers):
    """results[round][server][metric] -> rows of medians, ranges and per-round ratios."""
    rows = []
    for key, label, higher in METRICS:
        label = label.format(big=size_label(cfg["big"]), small_n=cfg["small_n"],
                             conc_n=cfg["conc_n"], idle_n=cfg["idle_n"])
        row = {"key": key, "label": label, "higher_is_better": higher, "servers": {}}
        for s in servers:
            vals = [r[s][key] for r in results if r.get(s, {}).get(key) is not None]
            if not vals:
                continue
            if key.endswith("_failures"):
                row["servers"][s] = {"median": sum(vals), "min": min(vals), "max": max(vals),
                                     "values": vals}
            else:
                row["servers"][s] = {"median": statistics.median(vals), "min": min(vals),
                                     "max": max(vals), "values": vals}
        # fxpd against each other server, per round ("fxpd" keeps naming fxpd/vsftpd).
        for other, name in (("vsftpd", "fxpd"), ("pure-ftpd", "fxpd/pure-ftpd")):
            if other not in servers:
                continue
            okey = key[3:] if key.startswith("eq_") else key
            ratios = [r["fxpd"][key] / r[other][okey] for r in results
                      if r.get("fxpd", {}).get(key) is not None and r.get(other, {}).get(okey)]
            if ratios and not key.endswith("_failures"):
                row.setdefault("ratios", {})[name] = {"median": statistics.median(ratios),
                                                      "per_round": ratios}
        rows.append(row)
    return rows


def print_table(rows, servers, out=sys.stdout):
    w = max(len(r["label"]) for r in rows) + 2
    cw = 24
    pairs = ["fxpd"] + (["fxpd/pure-ftpd"] if "pure-ftpd" in servers else [])
    head = f"{'workload':<{w}}" + "".join(f"{s:>{cw}}" for s in servers)
    head += f"{'fxpd/vsftpd':>13}" + (f"{'fxpd/pure-ftpd':>16}" if len(pairs) > 1 else "")
    head += "  per-round ratios"
    print(head, file=out)
    print(f"{'':<{w}}" + "".join(f"{'median [min-max]':>{cw}}" for _ in servers)
          + f"{'median':>13}" + (f"{'median':>16}" if len(pairs) > 1 else ""), file=out)
    print("-" * (len(head) + 12), file=out)
    for r in rows:
        if not r["servers"]:
            continue
        line = f"{r['label']:<{w}}"
        for s in servers:
            v = r["servers"].get(s)
            if v is None and r["key"].startswith("eq_") and s == "vsftpd":
                # The equal-cost row compares with vsftpd's ordinary login figures.
                v = None
            cell = "-" if v is None else f"{fmt(v['median'])} [{fmt(v['min'])}-{fmt(v['max'])}]"
            line += f"{cell:>{cw}}"
        arrow = "^" if r["higher_is_better"] else "v"
        pers = []
        for pair, width in zip(pairs, (12, 15)):
            rat = r.get("ratios", {}).get(pair)
            cell = f"x{rat['median']:.2f}{arrow}" if rat else "-"
            line += f"{cell:>{width + 1}}"
            if rat:
                per = " ".join(f"{x:.2f}" for x in rat["per_round"])
                pers.append(per if len(pairs) == 1 else f"{'vs' if pair == 'fxpd' else 'pf'}: {per}")
        if pers:
            line += "  " + "; ".join(pers)
        print(line, file=out)
    print("^ higher is better, v lower is better", file=out)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

WORKLOADS = ["retr", "stor", "fxp", "tls_retr", "tls_stor", "small", "small_rs", "conc", "idle",
             "logins", "logins_rs"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fxpd", required=True, help="path to the fxpd release binary")
    ap.add_argument("--ftpload", help="path to the compiled tests/bench/ftpload.rs (the lean "
                    "client of the small_rs and logins_rs workloads)")
    ap.add_argument("--rounds", type=int, help="rounds (default 5, 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, 2 rounds")
    ap.add_argument("--big-mib", type=int, help="size of the RETR/STOR/FXP/TLS file in MiB")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--data-dir", default="/dev/shm", help="a tmpfs for the data (default /dev/shm)")
    ap.add_argument("--huge", action="store_true",
                    help="put the big files on a tmpfs of their own with 2 MiB pages (huge=always)")
    ap.add_argument("--out", help="directory for results (default /var/tmp/fxpd-bench/TIME)")
    ap.add_argument("--profile", action="store_true",
                    help="after the rounds, strace -c / perf fxpd during RETR, STOR, small files")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the iperf3 loopback ceiling")
    ap.add_argument("--no-eqhash", action="store_true",
                    help="skip the extra fxpd instance with a cheap (~SHA-512 crypt) argon2id hash")
    ap.add_argument("--pure-ftpd", action="store_true",
                    help="add Debian's pure-ftpd as a third server (on 127.0.0.6) to the "
                    f"{','.join(sorted(PUREFTPD_WORKLOADS))} workloads")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("bench.py must run as root (vsftpd's PAM logins, the bench user, cgroups)")
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = max(1, min(args.rounds, 50))
    if args.big_mib:
        cfg["big"] = args.big_mib * MIB
    workloads = args.only.split(",") if args.only else WORKLOADS
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit(f"unknown workload {w}")
    outdir = args.out or os.path.join("/var/tmp/fxpd-bench", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(cfg["idle_n"] * 4 + 1024, 16384)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    cgroot = find_cgroup2_root()
    servers = []
    ctx = None
    t_start = time.time()
    try:
        ctx = setup(args, cfg, cgroot)
        users, fx_params, add_secs = make_users_file(ctx, args.fxpd, "fxpd")
        empty = os.path.join(ctx.work, "vsftpd", "empty")
        want_fxp = "fxp" in workloads
        vs = Vsftpd("vsftpd", VSFTPD_HOST, cgroot, os.path.join(ctx.work, "vsftpd"))
        servers.append(vs)
        # FXP sources: PORT may name another server's address.
        vs.start(ctx.roots["vsftpd"], empty, ["port_promiscuous=YES"] if want_fxp else [])
        fx = Fxpd("fxpd", FXPD_HOST, cgroot, os.path.join(ctx.work, "fxpd"))
        servers.append(fx)
        fx.start(args.fxpd, ctx.roots["fxpd"], users,
                 ["[fxp]", "allow_foreign_port = true"] if want_fxp else [])
        pf = None
        if args.pure_ftpd:
            pf = PureFtpd("pure-ftpd", PUREFTPD_HOST, cgroot, os.path.join(ctx.work, "pure-ftpd"))
            servers.append(pf)
            pf.start(ctx.roots["pure-ftpd"], ctx.password)

        def extra_instance(cls, name, host, *start_args):
            wd = os.path.join(ctx.work, name)
            os.makedirs(wd, exist_ok=True)
            srv = cls(name, host, cgroot, wd)
            servers.append(srv)
            srv.start(*start_args)
            return srv

        # FXP destinations: a second server of each kind, accepting the passive data
        # connection from the source server's address.
        fxp_dst = {}
        if want_fxp:
            fxp_dst["vsftpd"] = extra_instance(Vsftpd, "vsftpd-fxp", VSFTPD_FXP_HOST,
                                               ctx.roots["vsftpd-fxp"], empty,
                                               ["pasv_promiscuous=YES"])
            fxp_dst["fxpd"] = extra_instance(Fxpd, "fxpd-fxp", FXPD_FXP_HOST, args.fxpd,
                                             ctx.roots["fxpd-fxp"], users,
                                             ["[fxp]", "allow_foreign_passive = true"])
        # TLS: one more instance of each, same data, TLS required for login and data.
        tls_srv = {}
        if ctx.cert:
            tls_srv["vsftpd"] = extra_instance(Vsftpd, "vsftpd-tls", VSFTPD_HOST,
                                               ctx.roots["vsftpd"], empty, [
                "ssl_enable=YES", f"rsa_cert_file={ctx.cert}",
                f"rsa_private_key_file={ctx.key}", "allow_anon_ssl=NO",
                "force_local_logins_ssl=YES", "force_local_data_ssl=YES",
                "require_ssl_reuse=NO", "ssl_ciphers=HIGH", "ssl_sslv2=NO", "ssl_sslv3=NO",
                "ssl_tlsv1=YES"])
            tls_srv["fxpd"] = extra_instance(Fxpd, "fxpd-tls", FXPD_HOST, args.fxpd,
                                             ctx.roots["fxpd"], users, [
                "[tls]", f'certificate = "{ctx.cert}"', f'private_key = "{ctx.key}"',
                'require = "all"'])

        eq = None
        eq_info = None
        if set(workloads) & {"conc", "idle", "logins", "logins_rs"} and not args.no_eqhash:
            a = argon2_phc(ctx.password, CHEAP_ARGON2["t"], CHEAP_ARGON2["m_kib"], CHEAP_ARGON2["p"])
            if a:
                phc, secs = a
                users_eq, eq_params, _ = make_users_file(ctx, args.fxpd, "fxpd-eqhash", phc)
                eq = Fxpd("fxpd-eqhash", "127.0.0.3", cgroot, os.path.join(ctx.work, "fxpd-eqhash"))
                servers.append(eq)
                eq.start(args.fxpd, ctx.roots["fxpd"], users_eq)
                eq_info = {"params": eq_params, "argon2_cli_ms": secs * 1e3 if secs else None}
            else:
                log("argon2 CLI not available: no equal-hash-cost fxpd instance")
        sha_ms = time_sha512crypt(ctx.password)
        mp = dict(x.split("=") for x in fx_params.split(",")) \
            if re.match(r"m=\d+,t=\d+,p=\d+$", fx_params) else None
        fx_hash = argon2_phc(ctx.password, int(mp["t"]), int(mp["m"]), int(mp["p"])) if mp else None

        env = {
            "mode": "quick" if args.quick else "full", "config": cfg, "workloads": workloads,
            "cpu_method": vs.method, "cgroup_root": cgroot, "nofile": nofile,
            "nproc": os.cpu_count(), "kernel": os.uname().release,
            "vsftpd": run(["dpkg-query", "-W", "-f", "${Version}", "vsftpd"], check=False).stdout,
            "pure-ftpd": (run(["pure-ftpd", "--help"], check=False).stdout.split("\n")[0]
                          .split(" ")[1] if pf else None),
            "curl": run(["curl", "--version"]).stdout.split("\n")[0],
            "lftp": run(["lftp", "--version"]).stdout.split("\n")[0],
            "fxpd_binary": args.fxpd, "fxpd_user_add_s": add_secs,
            "fxpd_hash_params": fx_params,
            "fxpd_hash_ms_argon2_cli": fx_hash[1] * 1e3 if fx_hash and fx_hash[1] else None,
            "sha512crypt_ms": sha_ms, "eqhash": eq_info,
            "addresses": {s.name: f"{s.host}:{s.port}" for s in servers},
            "loadavg_start": loadavg(),
            "tls": {k: tls_params(ctx, t) for k, t in tls_srv.items()},
        }
        log(f"servers: {env['addresses']}; CPU accounting: {vs.method}; ulimit -n {nofile}")
        log(f"password hashes: vsftpd SHA-512 crypt ~{fmt(sha_ms)} ms (python crypt); fxpd argon2id "
            f"{fx_params} ~{fmt(env['fxpd_hash_ms_argon2_cli'])} ms (argon2 CLI)"
            + (f"; fxpd-eqhash argon2id {eq_info['params']} ~{fmt(eq_info['argon2_cli_ms'])} ms"
               if eq_info else ""))

        if not args.no_ceiling:
            env["loopback_ceiling_mbps"] = iperf_ceiling(3 if args.quick else 5)
            log(f"loopback ceiling (iperf3, 1 stream): {env['loopback_ceiling_mbps']}")

        main_servers = [vs, fx] + ([pf] if pf else [])
        eq_name = eq.name if eq else None
        results = []
        for rnd in range(cfg["rounds"]):
            k = rnd % len(main_servers)
            order = main_servers[k:] + main_servers[:k]
            la = loadavg()
            log(f"round {rnd + 1}/{cfg['rounds']}: order {[s.name for s in order]}, loadavg {la}")
            res = {"_order": [s.name for s in order], "_loadavg": la}
            for s in main_servers:
                res[s.name] = {}
            for w in workloads:
                ran = [s for s in order if s is not pf or w in PUREFTPD_WORKLOADS]
                targets = ran * (cfg["stor_repeat"] if w == "stor" else 1) \
                    + ([eq] if (w in ("conc", "idle", "logins", "logins_rs") and eq) else [])
                got = {}
                for s in targets:
                    partner = fxp_dst.get(s.name) if w == "fxp" else \
                        tls_srv.get(s.name) if w.startswith("tls_") else None
                    for x in (s, partner):
                        if x is not None and not x.alive():
                            raise BenchError(f"{x.name} died; see {x.workdir}/{x.name}.log")
                    t0 = time.perf_counter()
                    if w == "retr":
                        m = wl_retr(ctx, s)
                    elif w == "stor":
                        m = wl_stor(ctx, s)
                    elif w == "fxp":
                        m = wl_fxp(ctx, s, partner)
                    elif w == "tls_retr":
                        m = wl_retr(ctx, partner, "tls_retr")
                    elif w == "tls_stor":
                        m = wl_stor(ctx, partner, "tls_stor")
                    elif w == "small":
                        m = wl_small(ctx, s, rnd)
                    elif w == "small_rs":
                        m = wl_small_rs(ctx, s, rnd)
                    elif w == "logins_rs":
                        m = wl_logins_rs(ctx, s)
                    elif w == "conc":
                        m = wl_conc(ctx, s)
                    elif w == "idle":
                        m = wl_idle(ctx, s)
                    else:
                        m = wl_logins(ctx, s)
                    if s is eq:
                        m = {"eq_" + k: v for k, v in m.items()}
                    got.setdefault(s.name, []).append(m)
                    log(f"  {w:8} {s.name:11} {time.perf_counter() - t0:6.1f}s  "
                        + "  ".join(f"{k}={fmt(v)}" for k, v in m.items()))
                for name, ms in got.items():
                    # The equal-hash instance's figures (eq_*) sit beside fxpd's.
                    res["fxpd" if name == eq_name else name].update(median_of_runs(ms))
            for s in main_servers:
                r = res[s.name]
                if r.get("fxp_mbps") and r.get("retr_mbps"):
                    # The FXP goal is relative to the same server's RETR in the same round.
                    r["fxp_per_retr"] = r["fxp_mbps"] / r["retr_mbps"]
                if r.get("fxp_ref_mbps") and r.get("retr_ref_mbps"):
                    # What the same paths allow without any server, at those moments.
                    r["ref_file_per_null"] = r["fxp_ref_mbps"] / r["retr_ref_mbps"]
            results.append(res)
            with open(os.path.join(outdir, "results.json"), "w") as f:
                json.dump({"env": env, "rounds": results}, f, indent=1)

        env["loadavg_end"] = loadavg()
        env["wall_s"] = time.time() - t_start
        names = [s.name for s in main_servers]
        rows = summarize(results, cfg, names)
        profile = None
        if args.profile:
            log("profiling fxpd (strace/perf) ...")
            profile = profile_fxpd(ctx, fx, outdir)
        with open(os.path.join(outdir, "results.json"), "w") as f:
            json.dump({"env": env, "rounds": results, "summary": rows, "profile": profile},
                      f, indent=1)
        print()
        print(f"fxpd vs vsftpd {env['vsftpd']}"
              + (f" and pure-ftpd {env['pure-ftpd']} ({', '.join(sorted(PUREFTPD_WORKLOADS))} "
                 f"only, virtual user in a PureDB, chrooted)" if pf else "")
              + f" on loopback, {env['nproc']} cores, data on "
              f"{ctx.data_dir_desc}, {cfg['rounds']} rounds ({env['mode']}), rotating order; "
              f"server CPU via {vs.method}"
              + (f"; STOR {cfg['stor_repeat']} times per server per round, alternating, "
                 f"the round's figure their median" if cfg["stor_repeat"] > 1 else ""))
        if env.get("loopback_ceiling_mbps"):
            c = env["loopback_ceiling_mbps"]
            print(f"loopback ceiling (iperf3, one stream): {fmt(c.get('plain'))} MB/s plain, "
                  f"{fmt(c.get('sendfile'))} MB/s with sendfile")
        print()
        with open(os.path.join(outdir, "table.txt"), "w") as f:
            print_table(rows, names)
            print_table(rows, names, out=f)
        print()
        print(f"Ratios are fxpd/vsftpd{' and fxpd/pure-ftpd' if pf else ''} per round, then the "
              f"median; absolute figures vary with "
              f"the machine's load (loadavg {env['loadavg_start']} -> {env['loadavg_end']}).")
        print(f"Login hash cost: vsftpd SHA-512 crypt ~{fmt(sha_ms)} ms; fxpd argon2id "
              f"{fx_params} ~{fmt(env['fxpd_hash_ms_argon2_cli'])} ms (C reference timing)"
              + ".")
        if eq_info:
            print(f"(*) a second fxpd instance whose users file holds an argon2id "
                  f"{eq_info['params']} hash (~{fmt(eq_info['argon2_cli_ms'])} ms, argon2 CLI), "
                  f"close to the SHA-512 crypt cost; ratios against vsftpd's figure for the same workload.")
        if "fxp" in workloads:
            print(f"FXP: the client on 127.0.0.1 moves big.bin from {VSFTPD_HOST} to a second "
                  f"vsftpd on {VSFTPD_FXP_HOST} (port_promiscuous / pasv_promiscuous) and from "
                  f"{FXPD_HOST} to a second fxpd on {FXPD_FXP_HOST} (fxp.allow_foreign_port / "
                  f"allow_foreign_passive); MB/s from STOR+RETR sent to both 226, CPU of both "
                  f"servers; the FXP/RETR row divides by the same server's RETR of the round.")
        if {"retr", "stor", "fxp"} & set(workloads):
            print(f"Reference rows: the same kernel path without an FTP server. RETR and "
                  f"FXP: a forked sendfile() sender on {REF_SRC_HOST}, a receiver on "
                  f"{REF_DST_HOST} that reads into one buffer, or splices into a new tmpfs file, "
                  f"run just before each server's transfer. STOR: curl -T into a minimal FTP "
                  f"receiver on {REF_DST_HOST} that only splices into a new tmpfs file, run just "
                  f"after each server's STOR. Before STOR and FXP the run waits until the VM has "
                  f"handed freed memory back to its host, then takes as many pages as the big file "
                  f"fills from the host and frees them (the FXP reference does this), so the "
                  f"transfers reuse them, the same for both servers.")
        if tls_srv:
            desc = "; ".join(f"{k} {v or '?'}" for k, v in env["tls"].items())
            print(f"TLS: curl --ssl-reqd (AUTH TLS, PROT P) against a TLS-only instance of each "
                  f"server, self-signed RSA 2048 certificate ({desc}).")
        print(f"Raw results: {outdir}/results.json   ({env['wall_s']:.0f} s)")
        # A failed transfer or login of fxpd's is an error of the run, not a figure: the
        # other servers' failures are measurements (vsftpd's listen queue overflows).
        fxpd_failures = {f"round {i + 1} {k}": v for i, r in enumerate(results)
                         for k, v in r.get("fxpd", {}).items()
                         if k.endswith("_failures") and v}
        if fxpd_failures:
            log(f"FAILED: fxpd had failures: {fxpd_failures}")
            return 1
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (BenchError, subprocess.TimeoutExpired, OSError) as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        for s in reversed(servers):
            s.stop()
        unmount_all(ctx)
        if ctx is not None and getattr(ctx, "work", None):
            shutil.rmtree(ctx.work, ignore_errors=True)
        lock_user()


if __name__ == "__main__":
    sys.exit(main())
