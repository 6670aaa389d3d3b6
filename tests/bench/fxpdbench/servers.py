"""The servers under test: one class per kind, each started with a generated config.

Server owns the process, its cgroup (or /proc) CPU accounting and its stop; Vsftpd,
Fxpd and PureFtpd write their configuration and start in the foreground.
"""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

from .memory import pid_mem_kib
from .prepare import shadow_hash
from .util import BenchError, CLK_TCK, PASV_PORTS, USER, proc_tree, run


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
        # The control listener's line (with --scrape-metrics an ADMIN-LISTENING line may come
        # first).
        control = re.compile(rb"(?m)^LISTENING (\S+):(\d+)\r?$")
        while time.monotonic() < deadline and not control.search(buf):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        m = control.search(buf)
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
