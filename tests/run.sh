#!/usr/bin/env bash
# The test command of fxpd: bash tests/run.sh — runs every test: the cargo test suites
# (unit, protocol, real clients, FXP, TLS, W3C, limits, properties), the Windows build
# and zip under Wine, the Debian package, the benchmark in quick mode, and the fuzz targets for a
# bounded time.
#
# Installs the external FTP clients the integration tests drive (curl, lftp, wget, nmap,
# goaccess for the W3C log, vsftpd as the foreign server fxpd copy drives, haproxy as the
# load balancer in front of two nodes in tests/cluster.rs, redis-server for the state
# cluster nodes share, promtool (Debian's prometheus package: no smaller package has it)
# for the metrics check in tests/admin.rs, chromium (headless) for the status page in
# tests/admin.rs, moto[server] from PyPI as the S3 server for tests/s3.rs and
# tests/confinement.rs;
# python3 is expected to be there) when any is missing, then runs every test target with
# FXPD_EXTERNAL_CLIENTS=1, so a missing client is a test failure rather than a skip.
# Idempotent: when everything is installed it goes straight to the tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
# nmap: tests/fxp.rs runs its ftp-bounce script. haproxy: tests/cluster.rs.
for tool in curl lftp wget nmap goaccess vsftpd haproxy redis-server; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# promtool checks the admin listener's /metrics (tests/admin.rs); Debian ships it only in
# the prometheus package (about 19 MB to download, 96 MB installed, no service started).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# chromium renders the admin status page headless (tests/admin.rs), driven through the
# DevTools protocol over a pipe; no display, no sandbox, an empty profile per run.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
fi
if ((${#missing[@]} > 0)); then
    echo "tests/run.sh: installing ${missing[*]}" >&2
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# moto (an S3-compatible server, with boto3) for tests/s3.rs and tests/confinement.rs, from PyPI.
if ! python3 -c 'import moto.server, boto3' >/dev/null 2>&1; then
    echo "tests/run.sh: installing moto[server]" >&2
    if ! python3 -m pip --version >/dev/null 2>&1; then
        "${sudo_cmd[@]}" apt-get update -q
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends python3-pip
    fi
    # Debian's python3 marks itself externally managed (PEP 668): retry with the override.
    python3 -m pip install -q 'moto[server]' ||
        python3 -m pip install -q --break-system-packages 'moto[server]'
fi

export FXPD_EXTERNAL_CLIENTS=1
# Every test that returns without running its body records itself here (tests/common: skip);
# with the gate set nothing may: a skipped test fails the cargo suite below.
FXPD_SKIP_LOG=$(mktemp /tmp/fxpd-skipped.XXXXXX)
export FXPD_SKIP_LOG
trap 'rm -f "$FXPD_SKIP_LOG"' EXIT

# Every suite runs even when an earlier one failed; the summary line counts them.
passed=0
failed=0
suite() {
    local name=$1
    shift
    echo "=== $name: $*" >&2
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "=== $name FAILED" >&2
    fi
}

# Unit, protocol, real-client, FXP, TLS and W3C tests; then nothing may have been skipped.
cargo_suite() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --all-targets --no-fail-fast || return 1
    else
        cargo test --all-targets --no-fail-fast || return 1
    fi
    if [ -s "$FXPD_SKIP_LOG" ]; then
        echo "tests/run.sh: $(wc -l <"$FXPD_SKIP_LOG") test(s) skipped instead of running:" >&2
        cat "$FXPD_SKIP_LOG" >&2
        return 1
    fi
}
suite cargo cargo_suite
# The Windows build under Wine: registry configuration, the Windows service, and the Windows
# zip (packaging/build-windows.sh) installed with its install.cmd in a fresh prefix.
suite windows bash tests/windows/run.sh
# The Debian package: install, check, purge (needs root).
suite packaging "${sudo_cmd[@]}" env CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" bash tests/packaging/run.sh
# The side-by-side benchmark against vsftpd, quick mode: proves the harness works (its
# figures are not assertions; run it by hand without --quick for the real comparison).
suite bench "${sudo_cmd[@]}" env CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" bash tests/bench/run.sh --quick
# Fuzz targets, each for a bounded time (FXPD_FUZZ_SECONDS, default 30).
suite fuzz bash tests/fuzz/run.sh "${FXPD_FUZZ_SECONDS:-30}"

echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
