"""Shared constants, logging, subprocesses and /proc helpers of the benchmark.

Addresses and passive port ranges of every instance, the sizes of the quick and full
runs, log(), run() with a time-out, the load average, the cgroup v2 root, process
trees and the number formatting every other module prints with.
"""

import os
import subprocess
import sys
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


WORKLOADS = ["retr", "stor", "fxp", "tls_retr", "tls_stor", "small", "small_rs", "conc", "idle",
             "logins", "logins_rs"]
