#!/usr/bin/env bash
# The test command of fxpd: bash tests/run.sh
#
# Installs the external FTP clients the integration tests drive (curl, lftp, wget, nmap,
# goaccess for the W3C log;
# python3 is expected to be there) when any is missing, then runs every test target with
# FXPD_EXTERNAL_CLIENTS=1, so a missing client is a test failure rather than a skip.
# Idempotent: when everything is installed it goes straight to the tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
# nmap: tests/fxp.rs runs its ftp-bounce script.
for tool in curl lftp wget nmap goaccess; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3)

if ((${#missing[@]} > 0)); then
    echo "tests/run.sh: installing ${missing[*]}" >&2
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo_cmd=(sudo)
    fi
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

export FXPD_EXTERNAL_CLIENTS=1

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --all-targets --no-fail-fast
else
    cargo test --all-targets --no-fail-fast
fi
