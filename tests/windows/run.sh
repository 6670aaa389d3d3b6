#!/usr/bin/env bash
# shellcheck disable=SC2016 # backticks in the grep patterns below are literal
# fxpd's Windows build, tested for real under Wine: bash tests/windows/run.sh
#
# On a fresh Debian 12 machine (root, Rust via rustup) it installs what is missing (the mingw-w64
# x86_64 cross compiler, Wine 8, python3; the x86_64-pc-windows-gnu Rust target), builds fxpd.exe
# and the ProcessPrng shim DLL (see bcryptprimitives.c), then checks from Linux, with a real FTP
# client (ftp_client.py, Python's ftplib), that the registry drives the FXP policy:
#   - `config check` shows registry origins (and the Windows default config path);
#   - EnablePortAttack=0 refuses a foreign PORT (504 foreign-address) although the file allows it;
#   - EnablePortAttack=1 accepts it, and RETR really connects to the foreign listener;
#   - EnablePASVTheft=0 closes a foreign connection to a passive port (the client's own still
#     works); EnablePASVTheft=1 serves the file to it;
#   - a plain passive download through the Windows build (tokio networking under Wine);
#   - IIS's MSFTPSVC\Parameters is the fallback when fxpd's key lacks the value (KB Q247132);
#   - a REG_SZ EnablePortAttack, a DWORD 2 and an unknown value name stop `config check` and
#     `serve` with a message naming the registry value;
#   - live reload by registry change notification (RegNotifyChangeKeyValue) in a console: one FTP
#     session is refused a foreign PORT, `reg add EnablePortAttack=1` makes its next PORT succeed
#     (RETR connects), 0 revokes it, MSFTPSVC\Parameters created (and deleted) after start works
#     too, a `reg import` burst is one reload, and a REG_SZ is refused with the policy unchanged;
#     the same console server has the admin listener on (token made by `fxpd.exe admin token`),
#     and curl from Linux gets 401 without the token (logged), `/metrics` with the build info and
#     the session's login, and `/api/sessions` listing the open ftplib session;
#   - fxpd as a Windows service under Wine's SCM (service.sh, sourced at the end): install,
#     `net start`, FXP decisions from the registry with a live reload and a restart, `net stop`
#     draining an in-flight transfer, the Event Log, uninstall.
#   - the Windows zip (install.sh, sourced last): packaging/build-windows.sh --profile dev builds
#     it; unzipped into a fresh prefix, install.cmd installs and starts the service with the
#     shipped hardened config (anonymous refused, a foreign PORT refused), a user added with
#     `fxpd.exe user add` transfers files both ways, a second install.cmd keeps the edited
#     config, uninstall.cmd removes the service and keeps the data.
# Loopback addresses only: the client is 127.0.0.1, the server 127.0.0.2, the foreign PORT
# target 127.0.0.3. Every step has a timeout; the Wine processes of this script's prefix are
# killed at the end (wineserver -k). Idempotent; on a warm machine only the tests run.
#
# Last line: `windows: N passed, M failed`; exit status non-zero on any failure.
set -Eeuo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
here=$repo/tests/windows
started=$SECONDS

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fxpd-target}"
triple=x86_64-pc-windows-gnu
work=$CARGO_TARGET_DIR/wine-test
mkdir -p "$work/bin"

note() { printf 'windows: %s\n' "$*" >&2; }

# ------------------------------------------------------------------ tools
packages=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || packages+=(gcc-mingw-w64-x86-64-win32)
command -v wine >/dev/null 2>&1 || packages+=(wine)
[ -x /usr/lib/wine/wine64 ] || packages+=(wine64)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
command -v curl >/dev/null 2>&1 || packages+=(curl) # the admin listener's checks
if ((${#packages[@]} > 0)); then
    note "installing ${packages[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
if ! rustup target list --installed | grep -qx "$triple"; then
    note "adding the Rust target $triple"
    rustup target add "$triple"
fi

# ------------------------------------------------------------------ build
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
note "building fxpd.exe (dev profile) into $CARGO_TARGET_DIR/$triple"
# The dev profile: on 2 cores it builds much faster than release, and the tests need no speed.
if ! cargo build --quiet --target "$triple" --bin fxpd; then
    echo "windows: 0 passed, 1 failed (the Windows build failed)"
    exit 1
fi
cp "$CARGO_TARGET_DIR/$triple/debug/fxpd.exe" "$work/bin/fxpd.exe"
shim=$work/bin/bcryptprimitives.dll
if [ ! -f "$shim" ] || [ "$here/bcryptprimitives.c" -nt "$shim" ]; then
    note "building the ProcessPrng shim"
    x86_64-w64-mingw32-gcc -shared -O2 -s -o "$shim" "$here/bcryptprimitives.c" -ladvapi32
fi
note "built in $((SECONDS - started))s"

# ------------------------------------------------------------------ Wine
export WINEPREFIX=$work/prefix
export WINEDEBUG=-all
# No Mono or Gecko (not installed, and their prompts would stall a headless prefix update).
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY

server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
    fi
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    # install.sh's fresh prefix, if a run stopped inside it.
    WINEPREFIX=$work/install-prefix timeout 20 wineserver -k >/dev/null 2>&1 || true
}
trap cleanup EXIT
# A step that fails outside a check ends the script (set -e): say which one, also inside a
# function (set -E).
trap 'note "stopped: line $LINENO failed: $BASH_COMMAND"' ERR

timeout 20 wineserver -k >/dev/null 2>&1 || true # a leftover from an interrupted run
mkdir -p "$WINEPREFIX"
# A new prefix is made before the persistent wineserver starts: wineboot returns while its
# helpers still write the registry, and only `wineserver -w` (which waits for the server to
# exit) tells when they are done. On a machine where wine had just been installed, the run
# stopped right after making the prefix when it went on at once.
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    note "creating the Wine prefix $WINEPREFIX"
    timeout 300 wine wineboot --init >/dev/null 2>&1
    timeout 300 wineserver -w
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        note "wineboot made no registry in $WINEPREFIX"
        exit 1
    fi
fi
# One wineserver for the whole run (each `wine` would otherwise start its own); killed at exit.
# A wineserver still shutting down can make the first start fail: kill, wait, try again.
for attempt in 1 2 3; do
    if timeout 20 wineserver -p; then
        break
    fi
    note "starting the wineserver failed (attempt $attempt); retrying"
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    sleep 3
    [ "$attempt" -lt 3 ] || exit 1
done
wine_run() { timeout 60 wine "$@"; }

fxpd_key='HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters'
iis_key='HKLM\SYSTEM\CurrentControlSet\Services\MSFTPSVC\Parameters'
reg_clear() {
    wine_run reg delete "$fxpd_key" /f >/dev/null 2>&1 || true
    wine_run reg delete "$iis_key" /f >/dev/null 2>&1 || true
}
# reg_set KEY NAME TYPE DATA: a set-up step, not a check. On a machine where wine had just been
# installed a run once stopped silently at about its first registry write: try it three times,
# saying so.
reg_set() {
    local attempt out
    for attempt in 1 2 3; do
        if out=$(wine_run reg add "$1" /v "$2" /t "$3" /d "$4" /f 2>&1); then
            return 0
        fi
        note "reg add $1 $2 failed (attempt $attempt): $(printf '%s' "$out" | tr -d '\r' | tail -2)"
        sleep 2
    done
    return 1
}

# The FTP root, with a random file to download.
root=$work/root
rm -rf "$root"
mkdir -p "$root"
head -c 786432 /dev/urandom >"$root/payload.bin"
sha=$(sha256sum "$root/payload.bin" | cut -d' ' -f1)
win_root="Z:${root//\//\\}"

# The config file at the Windows default path (%ProgramData%\fxpd\fxpd.toml).
config_dir=$WINEPREFIX/drive_c/ProgramData/fxpd
mkdir -p "$config_dir"
# write_config ALLOW_FOREIGN (both directions)
write_config() {
    printf '%s\n' '# written by tests/windows/run.sh' 'banner = "fxpd under Wine"' \
        '[anonymous]' 'enabled = true' '[fxp]' "allow_foreign_port = $1" \
        "allow_foreign_passive = $1" >"$config_dir/fxpd.toml"
}
file_origin='# file C:\\ProgramData\\fxpd\\fxpd.toml'

fxpd=$work/bin/fxpd.exe
log=$work/log
rm -rf "$log"
mkdir -p "$log"
passed=0
failed=0
pass() {
    passed=$((passed + 1))
    note "PASS $1"
}
fail() {
    failed=$((failed + 1))
    note "FAIL $1"
    shift
    local line
    for line in "$@"; do printf '    %s\n' "$line" >&2; done
}

# config_check NAME: runs `fxpd.exe config check` into $log/NAME.out; sets $check_rc.
config_check() {
    check_rc=0
    wine_run "$fxpd" config check --root "$win_root" >"$log/$1.out" 2>&1 || check_rc=$?
    tr -d '\r' <"$log/$1.out" >"$log/$1.txt"
}

# expect_line NAME REGEX: the check output of NAME has a line matching REGEX (grep -E).
expect_line() {
    grep -Eq -- "$2" "$log/$1.txt"
}

# start_server NAME: starts fxpd.exe serve on 127.0.0.2 (any free port); sets $server_port, or
# returns 1 (with $log/NAME.err) if it exits or prints no LISTENING line within 60 s.
start_server() {
    local name=$1 i
    server_port=""
    : >"$log/$name.stdout"
    timeout -k 5 300 wine "$fxpd" serve --listen 127.0.0.2:0 --root "$win_root" \
        >"$log/$name.stdout" 2>"$log/$name.err" &
    server_pid=$!
    for ((i = 0; i < 300; i++)); do
        server_port=$(tr -d '\r' <"$log/$name.stdout" | sed -n 's/^LISTENING 127\.0\.0\.2:\([0-9]*\)$/\1/p')
        [ -n "$server_port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    stop_server
    return 1
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# client NAME ARGS...: runs ftp_client.py (bounded), output in $client_out; status is its own.
client() {
    local name=$1
    shift
    local rc=0
    timeout 60 python3 "$here/ftp_client.py" "$@" --server "127.0.0.2:$server_port" \
        --file payload.bin --sha256 "$sha" >"$log/$name.client" 2>&1 || rc=$?
    client_out=$(cat "$log/$name.client")
    return $rc
}

# scenario_serve NAME PORT(refused|accepted) PASV(refused|accepted) [passive]: serve, a foreign
# PORT, a foreign connection to a passive port, maybe a plain download.
scenario_serve() {
    local name=$1 port=$2 pasv=$3 passive=${4:-}
    if ! start_server "$name"; then
        fail "$name: fxpd.exe serve did not start" "$(tail -5 "$log/$name.err")"
        return
    fi
    if client "$name-port" active --expect "$port"; then
        pass "$name: $client_out"
    else
        fail "$name: foreign PORT not $port" "$client_out" "server log: $log/$name.err"
    fi
    if client "$name-theft" theft --expect "$pasv"; then
        pass "$name: $client_out"
    else
        fail "$name: foreign passive connection not $pasv" "$client_out" "server log: $log/$name.err"
    fi
    if [ -n "$passive" ]; then
        if client "$name-pasv" passive; then
            pass "$name: $client_out"
        else
            fail "$name: passive download" "$client_out" "server log: $log/$name.err"
        fi
    fi
    stop_server
}

# scenario_rejected NAME VALUE-REGEX: config check and serve must both fail, naming the value.
scenario_rejected() {
    local name=$1 value=$2
    config_check "$name-check"
    if [ "$check_rc" -ne 0 ] && expect_line "$name-check" "configuration error: registry value .*$value"; then
        pass "$name: config check fails: $(head -1 "$log/$name-check.txt")"
    else
        fail "$name: config check should fail naming $value (exit $check_rc)" "$(head -3 "$log/$name-check.txt")"
    fi
    local rc=0
    timeout 60 wine "$fxpd" serve --listen 127.0.0.2:0 --root "$win_root" \
        >"$log/$name-serve.stdout" 2>"$log/$name-serve.err" || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && ! grep -q LISTENING "$log/$name-serve.stdout" &&
        tr -d '\r' <"$log/$name-serve.err" | grep -Eq "registry value .*$value"; then
        pass "$name: serve refuses to start (exit $rc)"
    else
        fail "$name: serve should exit non-zero naming $value (exit $rc)" "$(tail -3 "$log/$name-serve.err")"
    fi
}

reg_clear
# Anonymous sessions may use FXP in every scenario (a registry value too), so the only thing
# deciding the foreign PORT is EnablePortAttack.
base_registry() { reg_set "$fxpd_key" FxpAllowAnonymous REG_DWORD 1; }

# ---- 1. EnablePortAttack=1, EnablePASVTheft=1 in fxpd's key: origins, accepted, a download.
write_config false
base_registry
reg_set "$fxpd_key" EnablePortAttack REG_DWORD 1
reg_set "$fxpd_key" EnablePASVTheft REG_DWORD 1
config_check origin
fxpd_origin='# registry HKLM\\SYSTEM\\CurrentControlSet\\Services\\fxpd\\Parameters'
if [ "$check_rc" -eq 0 ] &&
    expect_line origin "^fxp\.allow_foreign_port = true +$fxpd_origin\\\\EnablePortAttack$" &&
    expect_line origin "^fxp\.allow_foreign_passive = true +$fxpd_origin\\\\EnablePASVTheft$" &&
    expect_line origin "^fxp\.allow_anonymous = true +$fxpd_origin\\\\FxpAllowAnonymous$" &&
    expect_line origin "^banner = \"fxpd under Wine\" +$file_origin:2$"; then
    pass "config check shows the registry origin (and the file at %ProgramData%)"
else
    fail "config check: registry origin (exit $check_rc)" "$(grep -E '^(fxp\.allow|banner)' "$log/origin.txt" || head -3 "$log/origin.txt")"
fi
scenario_serve registry-1 accepted accepted passive

# ---- 2. EnablePortAttack=0, EnablePASVTheft=0 revoke what the file allows.
write_config true
reg_set "$fxpd_key" EnablePortAttack REG_DWORD 0
reg_set "$fxpd_key" EnablePASVTheft REG_DWORD 0
config_check revoke
if [ "$check_rc" -eq 0 ] && expect_line revoke "^fxp\.allow_foreign_port = false +$fxpd_origin\\\\EnablePortAttack$" &&
    expect_line revoke "^fxp\.allow_foreign_passive = false +$fxpd_origin\\\\EnablePASVTheft$"; then
    pass "EnablePortAttack=0 and EnablePASVTheft=0 beat the file's true"
else
    fail "config check: EnablePortAttack=0 over the file (exit $check_rc)" "$(grep -E '^fxp\.allow_foreign_port' "$log/revoke.txt" || head -3 "$log/revoke.txt")"
fi
scenario_serve registry-0 refused refused

# ---- 3. Environment beats the registry under Windows too.
rc=0
FXPD__FXP__ALLOW_FOREIGN_PORT=true wine_run "$fxpd" config check --root "$win_root" >"$log/env.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && tr -d '\r' <"$log/env.out" | grep -Eq '^fxp\.allow_foreign_port = true +# env FXPD__FXP__ALLOW_FOREIGN_PORT$'; then
    pass "FXPD__FXP__ALLOW_FOREIGN_PORT beats the registry"
else
    fail "environment over registry (exit $rc)" "$(tr -d '\r' <"$log/env.out" | grep -E '^fxp\.allow_foreign_port' || head -3 "$log/env.out")"
fi

# ---- 4. The IIS fallback: the values only under MSFTPSVC\Parameters, as KB Q247132 sets them.
write_config false
wine_run reg delete "$fxpd_key" /v EnablePortAttack /f >/dev/null
wine_run reg delete "$fxpd_key" /v EnablePASVTheft /f >/dev/null
reg_set "$iis_key" EnablePortAttack REG_DWORD 1
reg_set "$iis_key" EnablePASVTheft REG_DWORD 1
config_check iis
iis_origin='# registry HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSFTPSVC\\Parameters'
if [ "$check_rc" -eq 0 ] && expect_line iis "^fxp\.allow_foreign_port = true +$iis_origin\\\\EnablePortAttack$" &&
    expect_line iis "^fxp\.allow_foreign_passive = true +$iis_origin\\\\EnablePASVTheft$"; then
    pass "MSFTPSVC\\Parameters is read when fxpd's key lacks the values"
else
    fail "config check: MSFTPSVC fallback (exit $check_rc)" "$(grep -E '^fxp\.allow_foreign_port' "$log/iis.txt" || head -3 "$log/iis.txt")"
fi
scenario_serve msftpsvc-fallback accepted accepted
# fxpd's own key wins over IIS's.
reg_set "$fxpd_key" EnablePortAttack REG_DWORD 0
config_check own-wins
if [ "$check_rc" -eq 0 ] && expect_line own-wins "^fxp\.allow_foreign_port = false +$fxpd_origin\\\\EnablePortAttack$"; then
    pass "fxpd's key wins over MSFTPSVC's"
else
    fail "config check: fxpd's key over MSFTPSVC's (exit $check_rc)" "$(grep -E '^fxp\.allow_foreign_port' "$log/own-wins.txt" || head -3 "$log/own-wins.txt")"
fi

# ---- 5. Bad values fail closed, naming the value.
reg_set "$fxpd_key" EnablePortAttack REG_SZ 1
scenario_rejected reg-sz 'fxpd\\Parameters\\EnablePortAttack: invalid value `REG_SZ "1"`.*expected a REG_DWORD 0 \(off\) or 1 \(on\)'
reg_set "$fxpd_key" EnablePortAttack REG_DWORD 2
config_check dword-2
if [ "$check_rc" -ne 0 ] && expect_line dword-2 'registry value .*fxpd\\Parameters\\EnablePortAttack: invalid value `REG_DWORD 2`'; then
    pass "EnablePortAttack=2 is rejected: $(head -1 "$log/dword-2.txt")"
else
    fail "config check: DWORD 2 (exit $check_rc)" "$(head -3 "$log/dword-2.txt")"
fi
reg_set "$fxpd_key" EnablePortAttack REG_DWORD 0
reg_set "$fxpd_key" EnablePortAtack REG_DWORD 1
config_check typo
if [ "$check_rc" -ne 0 ] && expect_line typo 'unknown registry value `EnablePortAtack`'; then
    pass "an unknown value name is rejected: $(head -1 "$log/typo.txt")"
else
    fail "config check: unknown value name (exit $check_rc)" "$(head -3 "$log/typo.txt")"
fi
reg_clear
reg_set "$iis_key" EnablePortAttack REG_SZ 1
config_check iis-sz
if [ "$check_rc" -ne 0 ] && expect_line iis-sz 'registry value .*MSFTPSVC\\Parameters\\EnablePortAttack: invalid value `REG_SZ "1"`'; then
    pass "a REG_SZ under MSFTPSVC is rejected too"
else
    fail "config check: REG_SZ under MSFTPSVC (exit $check_rc)" "$(head -3 "$log/iis-sz.txt")"
fi

# scenario_admin ERR: the admin listener of the running fxpd.exe (its ADMIN-LISTENING line in
# $log/live.stdout), asked with curl from Linux: 401 without the token, /metrics with the build
# info and the session's login, /api/sessions listing the open ftplib session.
scenario_admin() {
    local err=$1 url="" token code body i
    for ((i = 0; i < 50 && ${#url} == 0; i++)); do
        url=$(tr -d '\r' <"$log/live.stdout" | sed -n 's/^ADMIN-LISTENING \(http:\/\/127\.0\.0\.2:[0-9]*\)$/\1/p')
        [ -n "$url" ] || sleep 0.2
    done
    token=$(tr -d '\r\n' <"$config_dir/admin-token" 2>/dev/null || true)
    if [ -z "$url" ] || [ -z "$token" ]; then
        fail "admin: no ADMIN-LISTENING line or no token" "$(tr -d '\r' <"$log/live.stdout")" "$(tail -3 "$err")"
        return
    fi
    code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$url/metrics" 2>&1 || true)
    if [ "$code" = 401 ] && wait_log 'admin_unauthorized' 5; then
        pass "admin: $url/metrics without the token -> 401, logged"
    else
        fail "admin: a request without the token should get 401 and be logged (got $code)" "$(tail -3 "$err")"
    fi
    body=$(curl -sS --max-time 20 -H "Authorization: Bearer $token" "$url/metrics" 2>&1 || true)
    if grep -Eq '^fxpd_build_info\{version="[^"]+"\} 1$' <<<"$body" &&
        grep -Eq '^fxpd_logins_total\{result="ok"\} [1-9]' <<<"$body" &&
        grep -Eq '^fxpd_sessions\{state="logged_in"\} 1$' <<<"$body"; then
        pass "admin: /metrics: $(grep -E '^fxpd_(build_info|logins_total\{result="ok"|sessions\{state="logged_in")' <<<"$body" | tr '\n' ' ')"
    else
        fail "admin: /metrics should have fxpd_build_info, the login and the session" "$(grep -E '^fxpd_(build|logins|sessions)' <<<"$body" || head -3 <<<"$body")"
    fi
    body=$(curl -sS --max-time 20 -H "Authorization: Bearer $token" "$url/api/sessions" 2>&1 || true)
    local seen
    seen=$(python3 -c 'import json,sys
s=[x for x in json.load(sys.stdin)["sessions"] if x["user"] and x["client"].startswith("127.0.0.1:")]
print(" ".join("id %s user %s client %s" % (x["id"], x["user"], x["client"]) for x in s))' <<<"$body" 2>&1 || true)
    if [[ $seen == id\ * ]] && [[ $seen != *" id "* ]]; then
        pass "admin: /api/sessions lists the ftplib session: $seen"
    else
        fail "admin: /api/sessions should list the one ftplib session" "$seen" "$body"
    fi
}

# ---- 6. Live reload by registry change notification: one session, no restart, no control.
# scenario_live: fxpd.exe serve in a console, the file allowing nothing foreign; one FTP session
# (ftp_client.py live, a coprocess) sees each registry change take effect on its next PORT.
scenario_live() {
    local err=$log/live.err reply="" t0 n
    printf '%s\n' '# written by tests/windows/run.sh' '[anonymous]' 'enabled = true' '[fxp]' \
        'allow_foreign_port = false' 'allow_foreign_passive = false' \
        '# the session below is refused again and again while it polls: no ban' 'ban_threshold = 0' \
        '[admin]' 'listen = "127.0.0.2:0"' "token_file = 'C:\\ProgramData\\fxpd\\admin-token'" \
        >"$config_dir/fxpd.toml"
    reg_clear
    reg_set "$fxpd_key" FxpAllowAnonymous REG_DWORD 1
    # The admin listener's token, made by fxpd.exe itself from the same configuration.
    rm -f "$config_dir/admin-token"
    if wine_run "$fxpd" admin token >"$log/admin-token.out" 2>&1 && [ -s "$config_dir/admin-token" ]; then
        pass "admin: fxpd.exe admin token wrote C:\\ProgramData\\fxpd\\admin-token"
    else
        fail "admin: fxpd.exe admin token" "$(tr -d '\r' <"$log/admin-token.out" | tail -3)"
    fi
    if ! start_server live; then
        fail "live: fxpd.exe serve did not start" "$(tail -5 "$err")"
        return
    fi
    coproc LIVE { timeout 240 python3 "$here/ftp_client.py" live --server "127.0.0.2:$server_port" \
        --file payload.bin --sha256 "$sha" 2>&1; }
    # shellcheck disable=SC2153 # LIVE_PID is set by coproc
    local live_in=${LIVE[1]} live_out=${LIVE[0]} live_pid=$LIVE_PID
    # step CMD: one command to the session; its reply line in $reply; status 0 if `ok:`.
    step() {
        reply=""
        printf '%s\n' "$1" >&"$live_in" || true
        IFS= read -r -t 60 reply <&"$live_out" || reply="FAIL: no reply from ftp_client.py live"
        [[ $reply == ok:* ]]
    }
    # logged TEXT: the server log has TEXT (fixed string). reloads: registry-triggered reloads so far.
    logged() { tr -d '\r' <"$err" | grep -Fq -- "$1"; }
    reloads() { tr -d '\r' <"$err" | grep -c 'registry change under .*: reloading the configuration' || true; }
    # wait_log TEXT SECONDS: until the server log has TEXT.
    wait_log() {
        local i
        for ((i = 0; i < $2 * 5; i++)); do
            logged "$1" && return 0
            sleep 0.2
        done
        return 1
    }
    local fxpd_line='registry change under HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters: reloading the configuration'
    # The end of the line only: when the two keys change within one notification (the delete
    # under fxpd's key and the add under IIS's, on a loaded machine) the line names both.
    local iis_line='\Services\MSFTPSVC\Parameters: reloading the configuration'

    IFS= read -r -t 60 reply <&"$live_out" || reply="FAIL: no login"
    if [[ $reply == ready:* ]] && step "port refused 0"; then
        pass "live: one session ($reply), nothing in the registry: $reply"
    else
        fail "live: the session should log in and be refused a foreign PORT" "$reply" "server log: $err"
    fi
    # The admin listener of this console server, asked from Linux while the session is open.
    scenario_admin "$err"

    # A new value (a name change) under fxpd's key: the same session may now use FXP.
    t0=$SECONDS
    reg_set "$fxpd_key" EnablePortAttack REG_DWORD 1
    if step "port accepted 6" && wait_log "$fxpd_line" 4; then
        pass "live: reg add EnablePortAttack=1 -> the same session's foreign PORT is accepted, no restart: $reply; log: $fxpd_line"
    else
        fail "live: EnablePortAttack=1 should be applied to the open session ($((SECONDS - t0))s)" "$reply" \
            "$(tr -d '\r' <"$err" | tail -5)"
    fi

    # A changed value: revoked, without a restart.
    reg_set "$fxpd_key" EnablePortAttack REG_DWORD 0
    if step "port refused 6"; then
        pass "live: EnablePortAttack=0 revokes it for the same session: $reply"
    else
        fail "live: EnablePortAttack=0 should be applied to the open session" "$reply" "$(tr -d '\r' <"$err" | tail -5)"
    fi

    # IIS's key, created after start (fxpd checks for a missing key every second), then deleted.
    wine_run reg delete "$fxpd_key" /v EnablePortAttack /f >/dev/null
    reg_set "$iis_key" EnablePortAttack REG_DWORD 1
    if step "port accepted 8" && wait_log "$iis_line" 4; then
        pass "live: MSFTPSVC\\Parameters created after start with EnablePortAttack=1 -> accepted: $reply"
    else
        fail "live: a new MSFTPSVC\\Parameters key should be watched" "$reply" "$(tr -d '\r' <"$err" | tail -5)"
    fi
    wine_run reg delete "$iis_key" /f >/dev/null
    if step "port refused 6"; then
        pass "live: MSFTPSVC\\Parameters deleted -> refused again: $reply"
    else
        fail "live: deleting MSFTPSVC\\Parameters should revoke" "$reply" "$(tr -d '\r' <"$err" | tail -5)"
    fi

    # A burst (reg import: three values in a row) is one reload.
    sleep 2
    n=$(reloads)
    printf '%s\r\n' 'Windows Registry Editor Version 5.00' '' \
        '[HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\fxpd\Parameters]' \
        '"EnablePortAttack"=dword:00000000' '"EnablePASVTheft"=dword:00000000' '"FxpBanThreshold"=dword:00000000' \
        >"$work/burst.reg"
    local import_rc=0
    wine_run reg import "Z:${work//\//\\}\\burst.reg" >"$log/live-import.out" 2>&1 || import_rc=$?
    sleep 3
    if [ "$import_rc" -eq 0 ] && [ "$(reloads)" -eq $((n + 1)) ]; then
        pass "live: reg import of three values -> one reload ($n -> $(reloads) registry-triggered reloads)"
    else
        fail "live: a burst should be one reload ($n -> $(reloads), reg import exit $import_rc)" "$(tr -d '\r' <"$err" | grep 'registry change' | tail -5)"
    fi

    # An invalid value: the reload is refused and the previous policy stays.
    reg_set "$fxpd_key" EnablePortAttack REG_SZ 1
    if wait_log 'reload refused; the previous configuration stays' 6 &&
        tr -d '\r' <"$err" | grep -Eq 'event="reload_refused" error="the configuration is invalid: registry value .*fxpd(\\)+Parameters(\\)+EnablePortAttack: invalid value `REG_SZ \\"1\\"`' &&
        step "port refused 0"; then
        pass "live: REG_SZ EnablePortAttack -> reload refused (logged), the session is still refused: $reply"
    else
        fail "live: a REG_SZ should be refused and change nothing" "$reply" "$(tr -d '\r' <"$err" | tail -5)"
    fi

    step quit || true
    exec {live_in}>&-
    wait "$live_pid" 2>/dev/null || true
    if kill -0 "$server_pid" 2>/dev/null; then
        pass "live: fxpd.exe still serving after $(reloads) registry-triggered reloads"
    else
        fail "live: fxpd.exe exited" "$(tail -5 "$err")"
    fi
    stop_server
}
scenario_live

reg_clear
rm -f "$config_dir/fxpd.toml"

# ---- 6. fxpd as a Windows service (install, net start/stop, reload, drain, Event Log, uninstall).
# shellcheck source=tests/windows/service.sh
source "$here/service.sh"

# ---- 7. The Windows zip (packaging/build-windows.sh): install.cmd and uninstall.cmd in a fresh prefix.
# shellcheck source=tests/windows/install.sh
source "$here/install.sh"

note "logs in $log; total $((SECONDS - started))s"
echo "windows: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
