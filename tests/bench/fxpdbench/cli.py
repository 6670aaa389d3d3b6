"""The command line and the run: flags, servers up, rounds in rotating order, results.json.

main() returns the exit status: 1 when the run fails or fxpd has any *_failures.
"""

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

from . import __doc__ as PACKAGE_DOC
from .prepare import (
    argon2_phc, lock_user, make_users_file, setup, time_sha512crypt, tls_params, unmount_all,
)
from .reference import REF_DST_HOST, REF_SRC_HOST
from .report import median_of_runs, print_table, summarize
from .scrape import SCRAPED_WORKLOADS, Scraper, admin_config, compare
from .servers import Fxpd, PUREFTPD_WORKLOADS, PureFtpd, Vsftpd, free_port
from .util import (
    BenchError, CHEAP_ARGON2, FULL, FXPD_FXP_HOST, FXPD_HOST, MIB, PUREFTPD_HOST, QUICK,
    VSFTPD_FXP_HOST, VSFTPD_HOST, WORKLOADS, find_cgroup2_root, fmt, loadavg, log, run,
)
from .workloads import (
    iperf_ceiling, profile_fxpd, wl_conc, wl_fxp, wl_idle, wl_logins, wl_logins_rs, wl_retr,
    wl_small, wl_small_rs, wl_stor,
)


def run_workload(w, ctx, s, partner, rnd):
    """One run of workload `w` against server `s` (`partner`: FXP's destination or the TLS
    instance); its figures."""
    if w == "retr":
        return wl_retr(ctx, s)
    if w == "stor":
        return wl_stor(ctx, s)
    if w == "fxp":
        return wl_fxp(ctx, s, partner)
    if w == "tls_retr":
        return wl_retr(ctx, partner, "tls_retr")
    if w == "tls_stor":
        return wl_stor(ctx, partner, "tls_stor")
    if w == "small":
        return wl_small(ctx, s, rnd)
    if w == "small_rs":
        return wl_small_rs(ctx, s, rnd)
    if w == "logins_rs":
        return wl_logins_rs(ctx, s)
    if w == "conc":
        return wl_conc(ctx, s)
    if w == "idle":
        return wl_idle(ctx, s)
    return wl_logins(ctx, s)


def main():
    ap = argparse.ArgumentParser(prog="fxpdbench", description=PACKAGE_DOC.split("\n")[0])
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
    ap.add_argument("--scrape-metrics", action="store_true",
                    help="turn on fxpd's admin listener and run the conc and idle workloads "
                    "a second time for fxpd while a thread scrapes /metrics every 100 ms; "
                    "both figures are reported, with the plain runs' spread as the noise")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("fxpdbench must run as root (vsftpd's PAM logins, the bench user, cgroups)")
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
        scrape = None
        admin_lines = []
        if args.scrape_metrics:
            os.makedirs(fx.workdir, exist_ok=True)
            admin_port = free_port(FXPD_HOST)
            admin_lines, token = admin_config(fx.workdir, FXPD_HOST, admin_port)
            scrape = (f"http://{FXPD_HOST}:{admin_port}/metrics", token)
        fx.start(args.fxpd, ctx.roots["fxpd"], users,
                 (["[fxp]", "allow_foreign_port = true"] if want_fxp else []) + admin_lines)
        if scrape:
            try:
                first = Scraper(*scrape).one()
            except OSError as e:
                raise BenchError(f"--scrape-metrics: {scrape[0]} did not answer: {e}")
            if "fxpd_build_info" not in first:
                raise BenchError(f"--scrape-metrics: no fxpd_build_info in {scrape[0]}")
            log(f"admin listener on: {scrape[0]} scraped every 100 ms during "
                f"{','.join(w for w in SCRAPED_WORKLOADS if w in workloads)} (second run)")
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
                plan = [(s, False) for s in targets]
                if scrape and w in SCRAPED_WORKLOADS:
                    # fxpd once more with the scraper: after the plain run in even rounds,
                    # before it in odd ones, so neither always runs on a warmer server.
                    i = plan.index((fx, False))
                    plan.insert(i + (1 if rnd % 2 == 0 else 0), (fx, True))
                got = {}
                for s, scraped in plan:
                    partner = fxp_dst.get(s.name) if w == "fxp" else \
                        tls_srv.get(s.name) if w.startswith("tls_") else None
                    for x in (s, partner):
                        if x is not None and not x.alive():
                            raise BenchError(f"{x.name} died; see {x.workdir}/{x.name}.log")
                    t0 = time.perf_counter()
                    scraper = Scraper(*scrape) if scraped else contextlib.nullcontext()
                    with scraper:
                        m = run_workload(w, ctx, s, partner, rnd)
                    if scraped:
                        m.update(scraper.figures(w))
                        m = {"scr_" + k: v for k, v in m.items()}
                    if s is eq:
                        m = {"eq_" + k: v for k, v in m.items()}
                    name = "fxpd-scraped" if scraped else s.name
                    got.setdefault(name, []).append(m)
                    log(f"  {w:8} {name:11} {time.perf_counter() - t0:6.1f}s  "
                        + "  ".join(f"{k}={fmt(v)}" for k, v in m.items()))
                for name, ms in got.items():
                    # The equal-hash instance's figures (eq_*) and the scraped runs' (scr_*)
                    # sit beside fxpd's.
                    res["fxpd" if name in (eq_name, "fxpd-scraped") else name].update(
                        median_of_runs(ms))
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
            if scrape:
                print()
                print(file=f)
                compare(results, workloads, sys.stdout)
                compare(results, workloads, f)
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
