#!/usr/bin/env bash
# fxpd vs vsftpd, side by side on loopback: bash tests/bench/run.sh [--quick] [--rounds N] [...]
#
# Not part of the test suite: run it by hand, as root (it installs packages, creates the
# system user "benchftp" whose password it sets to a fresh random value for each run and
# locks afterwards, runs vsftpd, and uses cgroups for CPU accounting).
#
# What it does:
#   1. installs what is missing: vsftpd lftp curl openssl (required), iperf3 strace argon2
#      (optional)
#   2. builds fxpd in release (CARGO_TARGET_DIR, default /var/tmp/fxpd-target-bench), unless
#      FXPD_BIN names a binary to use
#   3. runs the driver, the Python package tests/bench/fxpdbench/, which starts vsftpd on
#      127.0.0.1 and fxpd on 127.0.0.2, runs the workloads of issue 7 for N rounds with
#      rotating order (STOR three times per server per round, their median), prints medians and the per-round fxpd/vsftpd
#      ratios, and writes results.json to the output directory.
#      FXP moves the large file from each main server to a second one of its kind (fxpd on
#      127.0.0.4, vsftpd on 127.0.0.5), reported beside the same server's RETR; TLS runs
#      RETR/STOR with PROT P against a TLS-only instance of each (self-signed certificate).
#
# Every other flag goes to the driver (see `bash tests/bench/run.sh --help`):
#   --quick            smaller sizes, 2 rounds (under 3 minutes)
#   --rounds N         rounds (default 5; under 15 minutes with the full sizes)
#   --only retr,stor   a subset of retr,stor,fxp,tls_retr,tls_stor,small,small_rs,conc,idle,
#                      logins,logins_rs
#   --profile          afterwards, strace -c / perf on fxpd during RETR, STOR, small files
#   --out DIR          where results.json and table.txt go (default /var/tmp/fxpd-bench/TIME)
#   --data-dir DIR     a tmpfs for the data (default /dev/shm)
#   --huge             big files on a tmpfs of their own with 2 MiB pages (huge=always)
#   --pure-ftpd        add Debian's pure-ftpd as a third server to the retr, stor, small
#                      and small_rs workloads (unpacked under /var/tmp/fxpd-bench-pure-ftpd)
#   --scrape-metrics   fxpd's admin listener on; conc and idle run a second time for fxpd
#                      while /metrics is scraped every 100 ms; both figures are reported
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/bench/run.sh: run as root (it runs vsftpd, creates a bench user, uses cgroups)" >&2
    exit 1
fi
for a in "$@"; do
    if [ "$a" = "-h" ] || [ "$a" = "--help" ]; then
        PYTHONPATH="$here" PYTHONDONTWRITEBYTECODE=1 exec python3 -m fxpdbench --fxpd /dev/null --help
    fi
done

# 1. Packages: required ones must install; optional ones are skipped if they cannot.
apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        apt-get update -q >/dev/null
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
required=()
command -v vsftpd >/dev/null 2>&1 || [ -x /usr/sbin/vsftpd ] || required+=(vsftpd)
command -v lftp >/dev/null 2>&1 || required+=(lftp)
command -v curl >/dev/null 2>&1 || required+=(curl)
command -v openssl >/dev/null 2>&1 || required+=(openssl)
command -v python3 >/dev/null 2>&1 || required+=(python3)
command -v setpriv >/dev/null 2>&1 || required+=(util-linux)
if ((${#required[@]} > 0)); then
    echo "tests/bench/run.sh: installing ${required[*]}" >&2
    apt_install "${required[@]}"
fi
if [ -z "${FXPD_BENCH_NO_OPTIONAL:-}" ]; then
    for opt in iperf3 strace argon2; do
        if ! command -v "$opt" >/dev/null 2>&1; then
            echo "tests/bench/run.sh: installing optional $opt" >&2
            apt_install "$opt" || echo "tests/bench/run.sh: $opt unavailable, going on without it" >&2
        fi
    done
fi
export PATH="$PATH:/usr/sbin:/sbin"

# pure-ftpd (--pure-ftpd only). Debian's pure-ftpd and vsftpd packages conflict (both provide
# ftp-server), so the package is unpacked beside the system rather than installed; the one
# library it needs that vsftpd does not is installed.
for a in "$@"; do
    if [ "$a" = "--pure-ftpd" ]; then
        pure_dir=/var/tmp/fxpd-bench-pure-ftpd
        if [ ! -x "$pure_dir/usr/sbin/pure-ftpd" ]; then
            echo "tests/bench/run.sh: unpacking pure-ftpd into $pure_dir" >&2
            dpkg -s libsodium23 >/dev/null 2>&1 || apt_install libsodium23
            [ "$apt_updated" -eq 1 ] || { apt-get update -q >/dev/null; apt_updated=1; }
            deb_dir="$(mktemp -d)"
            chmod 0777 "$deb_dir"     # apt-get download runs as _apt where it can
            (cd "$deb_dir" && apt-get download -q pure-ftpd >/dev/null)
            dpkg-deb -x "$deb_dir"/pure-ftpd_*.deb "$pure_dir"
            rm -rf "$deb_dir"
        fi
        export PATH="$pure_dir/usr/sbin:$pure_dir/usr/bin:$PATH"
    fi
done

# Installing vsftpd (or pure-ftpd) on a machine with systemd starts a system-wide server on
# port 21; the benchmark runs its own instances on loopback, so a service we have just
# installed is stopped again (only if it is running).
for svc in vsftpd pure-ftpd; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null \
        && [[ " ${required[*]:-} " == *" $svc "* ]]; then
        echo "tests/bench/run.sh: stopping the $svc service the package just started" >&2
        systemctl stop "$svc" || true
        systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
done

# 2. fxpd
if [ -n "${FXPD_BIN:-}" ]; then
    fxpd="$FXPD_BIN"
else
    target="${CARGO_TARGET_DIR:-/var/tmp/fxpd-target-bench}"
    echo "tests/bench/run.sh: building fxpd (release) in $target" >&2
    if ! (cd "$repo" && CARGO_TARGET_DIR="$target" cargo build --release --quiet --bin fxpd); then
        echo "tests/bench/run.sh: the release build failed; FXPD_BIN=PATH benchmarks an existing binary" >&2
        exit 1
    fi
    fxpd="$target/release/fxpd"
fi
# The server runs as the unprivileged bench user, so it needs a copy it can execute.
bindir="$(mktemp -d /var/tmp/fxpd-bench-bin.XXXXXX)"
trap 'rm -rf "$bindir"' EXIT
install -m 0755 "$fxpd" "$bindir/fxpd"
chmod 0755 "$bindir"

# The lean load client of the small_rs and logins_rs workloads (Rust std only).
rustc -O --edition 2021 -o "$bindir/ftpload" "$here/ftpload.rs"

# 3. The driver (it raises its own open-files limit for the idle-session workload).
PYTHONPATH="$here" PYTHONDONTWRITEBYTECODE=1 \
    python3 -m fxpdbench --fxpd "$bindir/fxpd" --ftpload "$bindir/ftpload" "$@"
