"""--scrape-metrics: fxpd's admin listener on, and /metrics scraped every 100 ms while the
conc and idle workloads run a second time, so their figures can be set beside the plain
run's (issue 19: scraping must change them by less than the run-to-run noise).

admin_config() gives the [admin] lines and writes the token file; Scraper is the thread
that asks /metrics on a fixed 100 ms tick (a slow answer delays the next tick, never
stacks requests) and counts what it got; compare() prints the plain and scraped figures
round by round with the plain run's spread across rounds as the noise.
"""

import os
import re
import secrets
import shutil
import statistics
import threading
import time
import urllib.error
import urllib.request

from .util import USER, fmt

# Workloads run a second time with the scraper.
SCRAPED_WORKLOADS = ("conc", "idle")
INTERVAL_S = 0.1

# The figures compared: key, label.
FIGURES = [
    ("conc_wall_s", "concurrent sessions, wall s"),
    ("conc_cpu_s", "  server CPU s"),
    ("conc_session_median_s", "  one session, median s"),
    ("conc_session_max_s", "  slowest session, s"),
    ("idle_kib_per_session", "idle sessions, KiB/session"),
]


def admin_config(workdir, host, port):
    """The [admin] section for fxpd on host:port and its token (64 hex characters, mode
    0600, owned by the user fxpd runs as); returns (lines, token)."""
    token = secrets.token_hex(32)
    path = os.path.join(workdir, "admin-token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    if os.geteuid() == 0 and shutil.which("setpriv"):
        shutil.chown(path, USER, USER)
    return ["[admin]", f'listen = "{host}:{port}"', f'token_file = "{path}"'], token


class Scraper:
    """GET /metrics every INTERVAL_S on a thread, from start() to stop()."""

    def __init__(self, url, token):
        self.url, self.token = url, token
        self._stop = threading.Event()
        self._thread = None
        self.latencies, self.failures, self.peak_sessions = [], [], 0

    def one(self):
        """One scrape: its body (raises on any failure)."""
        req = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def _run(self):
        nxt = time.perf_counter()
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                body = self.one()
                self.latencies.append(time.perf_counter() - t0)
                m = re.search(r'^fxpd_sessions\{state="logged_in"\} (\d+)', body, re.M)
                if m:
                    self.peak_sessions = max(self.peak_sessions, int(m.group(1)))
            except (OSError, urllib.error.URLError, ValueError) as e:
                self.failures.append(f"{type(e).__name__}: {e}"[:100])
            nxt = max(nxt + INTERVAL_S, time.perf_counter())
            self._stop.wait(max(0.0, nxt - time.perf_counter()))

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def figures(self, workload):
        """The scraper's own figures for one run, keyed like the workload's."""
        lat = sorted(self.latencies)
        return {f"{workload}_scrapes": len(lat), f"{workload}_scrape_failures": len(self.failures),
                f"{workload}_scrape_ms_median": statistics.median(lat) * 1e3 if lat else None,
                f"{workload}_scrape_ms_max": lat[-1] * 1e3 if lat else None,
                f"{workload}_scrape_peak_sessions": self.peak_sessions}


def compare(results, workloads, out):
    """Plain and scraped figures of fxpd side by side, per round, and whether the change
    of the medians is within the plain runs' spread across rounds (the noise)."""
    print("/metrics scraped every 100 ms (--scrape-metrics): fxpd's figures without and with "
          "the scraper, same round", file=out)
    print(f"{'figure':<30}{'plain, per round':>26}{'scraped, per round':>26}"
          f"{'change of medians':>20}{'noise (plain spread)':>22}  verdict", file=out)
    for key, label in FIGURES:
        if key.split("_")[0] not in workloads:
            continue
        plain = [r["fxpd"][key] for r in results if r.get("fxpd", {}).get(key) is not None]
        scr = [r["fxpd"]["scr_" + key] for r in results
               if r.get("fxpd", {}).get("scr_" + key) is not None]
        if not plain or not scr:
            continue
        change = statistics.median(scr) - statistics.median(plain)
        noise = max(plain) - min(plain)
        verdict = "within noise" if abs(change) <= noise else "OUTSIDE noise"
        print(f"{label:<30}{' '.join(fmt(v) for v in plain):>26}"
              f"{' '.join(fmt(v) for v in scr):>26}{fmt(change):>20}{fmt(noise):>22}  {verdict}",
              file=out)
    for w in SCRAPED_WORKLOADS:
        if w not in workloads:
            continue
        per = [r["fxpd"] for r in results if r.get("fxpd", {}).get(f"scr_{w}_scrapes")]
        if per:
            print(f"  {w}: scrapes per run " + " ".join(str(p[f"scr_{w}_scrapes"]) for p in per)
                  + ", failed " + " ".join(str(p[f"scr_{w}_scrape_failures"]) for p in per)
                  + ", ms median/max " + " ".join(
                      f"{fmt(p[f'scr_{w}_scrape_ms_median'])}/{fmt(p[f'scr_{w}_scrape_ms_max'])}"
                      for p in per)
                  + ", most logged-in sessions seen " + " ".join(
                      str(p[f"scr_{w}_scrape_peak_sessions"]) for p in per), file=out)
