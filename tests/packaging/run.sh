#!/usr/bin/env bash
# Packaging test: build the .deb, check it with lintian, install it on this machine, check what it installed,
# verify the systemd unit, run `fxpd config check` on the installed config, then purge
# it and check that it is gone. Needs root (CI runs as root). Prints
# "packaging: N passed, M failed".
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@" >/tmp/fxpd-pkg-check.log 2>&1; then
        passed=$((passed + 1))
        echo "ok: $what"
    else
        failed=$((failed + 1))
        echo "FAILED: $what"
        sed 's/^/    /' /tmp/fxpd-pkg-check.log
    fi
}

need=()
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v adduser >/dev/null || need+=(adduser)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v lintian >/dev/null || need+=(lintian)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if dpkg -s fxpd >/dev/null 2>&1; then
    dpkg --purge fxpd >/dev/null
fi
deb=$(bash "$repo/packaging/build-deb.sh" "${CARGO_TARGET_DIR:-$repo/target}/debian" | tail -n 1)
echo "built $deb"
# Debian's own package checker: no errors (warnings and notes are printed, not fatal).
check "lintian reports no error" lintian --fail-on error --tag-display-limit 0 "$deb"
lintian --tag-display-limit 0 "$deb" | sed 's/^/    lintian: /' || true
check "dpkg -i installs the package" dpkg -i "$deb"
check "manual page installed" test -s /usr/share/man/man8/fxpd.8.gz
check "binary installed" test -x /usr/bin/fxpd
check "unit installed" test -f /lib/systemd/system/fxpd.service
check "config installed as a conffile" grep -qx /etc/fxpd/fxpd.toml /var/lib/dpkg/info/fxpd.conffiles
check "ftp system user exists" getent passwd ftp
check "the unit runs as the ftp account" bash -c \
    "grep -qx 'User=ftp' /lib/systemd/system/fxpd.service && grep -qx 'Group=ftp' /lib/systemd/system/fxpd.service"
check "FTP root exists" test -d /srv/ftp
check "empty users file created, not world-readable" test "$(stat -c %a /etc/fxpd/users.toml)" = 640
check "installed config is valid" /usr/bin/fxpd config check --config /etc/fxpd/fxpd.toml
check "installed config is the hardened default" bash -c \
    "/usr/bin/fxpd config check --config /etc/fxpd/fxpd.toml | grep -q '^fxp.allow_foreign_port = false' &&
     /usr/bin/fxpd config check --config /etc/fxpd/fxpd.toml | grep -q '^anonymous.enabled = false' &&
     /usr/bin/fxpd config check --config /etc/fxpd/fxpd.toml | grep -q '^listen = \[\"0.0.0.0:21\"\]'"
check "systemd-analyze verify accepts the unit" systemd-analyze verify /lib/systemd/system/fxpd.service
# `systemctl reload fxpd` is SIGHUP to the server (whose reload tests/promises.rs covers), and the
# unit waits for its READY=1 (Type=notify, also in tests/promises.rs).
check "the unit reloads with SIGHUP and is Type=notify" bash -c \
    "grep -qx 'ExecReload=/bin/kill -HUP \$MAINPID' /lib/systemd/system/fxpd.service &&
     grep -qx 'Type=notify' /lib/systemd/system/fxpd.service"
# The README calls the unit sandboxed: its exposure score is checked, never skipped (systemd
# 250 and later, as Debian 12 ships, analyse a unit file offline).
check "systemd-analyze can score a unit file offline" bash -c \
    "systemd-analyze security --help 2>/dev/null | grep -q -- --offline"
score=$(systemd-analyze security --offline=yes /lib/systemd/system/fxpd.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' | tail -n 1)
echo "systemd-analyze security exposure score: ${score:-unknown} (0 = best, 10 = worst)"
check "security exposure at most 2.0" awk -v s="${score:-10}" 'BEGIN { exit !(s <= 2.0) }'
check "dpkg --purge removes it" dpkg --purge fxpd
check "binary removed" test ! -e /usr/bin/fxpd
check "config removed" test ! -e /etc/fxpd/fxpd.toml
check "unit removed" test ! -e /lib/systemd/system/fxpd.service
echo "packaging: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
