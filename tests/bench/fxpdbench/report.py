"""The summary: medians over rounds, per-round ratios and the printed table.

METRICS lists every row (key, label, which direction is better); summarize() turns
rounds into rows and print_table() prints them to the terminal and table.txt.
"""

import statistics
import sys

from .util import GIB, MIB, fmt


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
    ("small_cpu_ms_per_file", "small files server CPU ms/file (transfers)", False),
    ("small_session_cpu_ms_per_file", "  with the login and the session's end", False),
    ("small_client_cpu_ms_per_file", "  client (lftp) CPU ms/file", False),
    ("rs_small_get_fps", "{small_n} x 4 KiB get, files/s, Rust client", True),
    ("rs_small_put_fps", "{small_n} x 4 KiB put, files/s, Rust client", True),
    ("rs_small_cpu_ms_per_file", "  server CPU ms/file (transfers), Rust client", False),
    ("rs_small_session_cpu_ms_per_file", "  with the logins and the sessions' ends", False),
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
