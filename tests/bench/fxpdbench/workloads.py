"""The workloads of one round: each wl_* measures one server and returns its figures.

RETR, STOR, FXP, TLS, small files (lftp and ftpload), concurrent sessions, idle
sessions and logins; plus the loopback ceiling (iperf3) and the optional profile.
"""

import asyncio
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import time

from .clients import (
    FtpError, SyncFtp, cmd, curl_times, curl_tls_args, fetch, file_digest, ftpload, lftp_script,
    login, read_reply, run_lftp,
)
from .memory import returned_mib, returned_since, settle_memory, take_pages
from .reference import reference_curl_stor, reference_path, with_reference
from .servers import free_port
from .util import BenchError, GIB, MIB, USER, log, run, tcp_ext


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


def small_round_trip(ctx, srv, rnd, tag, transfer):
    """N small files down then up: `transfer(getdir, updir_name)` moves them and returns the
    (get, put) seconds and the server CPU µs of those two transfer phases (None without a
    cgroup to read during the run); checks every file arrived, returns files/s each way and
    the server CPU per file, keys prefixed with `tag`. The CPU per file is given twice: of
    the transfers alone (what a file costs), and of the whole client run, which adds the
    logins' password hashes (fxpd's argon2id default costs several times a SHA-512 crypt;
    the logins rows measure that) and the sessions' ends."""
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
        get_s, put_s, phase_usec = transfer(getdir, updir_name)
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
            f"{prefix}small_cpu_ms_per_file":
                None if phase_usec is None else phase_usec / 1e3 / (2 * n),
            f"{prefix}small_session_cpu_ms_per_file": (c1 - c0) / 1e3 / (2 * n),
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
    # Each mark prints the time and, with a cgroup, the server's CPU counter at that moment.
    mark = "!echo T $(date +%s.%N)" + (
        f" $(sed -n 's/^usage_usec //p' {srv.cg}/cpu.stat)" if srv.cg else "")

    def transfer(getdir, updir_name):
        ts = run_lftp(lftp_script(ctx, srv, [
            "cd small",                 # logs in and checks the path before timing starts
            mark,
            f"mget -O {getdir} {names}",
            mark,
            f"cd ../{updir_name}",          # relative: vsftpd runs without chroot
            f"lcd {ctx.client_small}",
            mark,
            f"mput {names}",
            mark,
        ]), os.path.join(ctx.work, f"lftp-{srv.name}.txt"), timeout=900)
        if len(ts) != 4:
            raise BenchError(f"lftp printed {len(ts)} timestamps")
        phase_usec = None
        if srv.cg:
            phase_usec = (ts[1][1] - ts[0][1]) + (ts[3][1] - ts[2][1])
        return ts[1][0] - ts[0][0], ts[3][0] - ts[2][0], phase_usec

    return small_round_trip(ctx, srv, rnd, "", transfer)


def wl_small_rs(ctx, srv, rnd):
    """The small-file workload with the lean Rust client (tests/bench/ftpload.rs): one
    session, passive RETR of every file, then passive STOR of every file."""
    env = {"FTPLOAD_CPU_STAT": os.path.join(srv.cg, "cpu.stat")} if srv.cg else None

    def transfer(getdir, updir_name):
        get = ftpload(ctx, ["get", srv.host, srv.port, USER, ctx.password, "small", getdir]
                      + ctx.small_names, 900, env)
        put = ftpload(ctx, ["put", srv.host, srv.port, USER, ctx.password, updir_name,
                            ctx.client_small] + ctx.small_names, 900, env)
        phase_usec = None
        if env:
            # With FTPLOAD_CPU_STAT, each run prints SECS and the counter before and after.
            phase_usec = (int(get[2]) - int(get[1])) + (int(put[2]) - int(put[1]))
        return float(get[0]), float(put[0]), phase_usec

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
