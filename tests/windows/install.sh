# shellcheck shell=bash
# shellcheck disable=SC2154 # $work, $log, $here, $repo, ... are set by run.sh, which sources this file
# The Windows zip and its install scripts under Wine (issue 20). Sourced by tests/windows/run.sh
# after service.sh: it reuses run.sh's build (the dev profile: the zip is built with
# `packaging/build-windows.sh --profile dev`, the same files as the release zip around a debug
# fxpd.exe), its helpers (pass, fail, note) and counters, but not its Wine prefix: the zip is
# unzipped into a FRESH prefix, as on a machine that never saw fxpd.
#
# What it checks, with Wine 8's cmd, services.exe and sc, and a real FTP client (Python's ftplib)
# from Linux:
#   - the zip holds exactly fxpd.exe (stripped), fxpd.toml (packaging/windows/fxpd.toml, CRLF),
#     fxpd.example.toml, install.cmd, uninstall.cmd, README.md, docs/*.md and LICENSE: no
#     ProcessPrng shim; the netsh lines install.cmd prints name the shipped config's ports;
#   - `wine cmd /c install.cmd` in the fresh prefix (its config's `listen` the only line changed,
#     to a loopback address): fxpd.exe in %ProgramFiles%\fxpd, the config, users file, root and
#     logs in %ProgramData%\fxpd, the service installed and started, the next steps printed;
#   - the hardened defaults as shipped: anonymous refused (530); a user added with the installed
#     `fxpd.exe user add` (password on stdin) and `fxpd.exe service reload` logs in, is refused a
#     foreign PORT (504 foreign-address), downloads a file and uploads one (SHA-256 checked on
#     both ends); `fxpd.exe user set` makes a drop box with a denied extension, and after a
#     reload a new file goes in while listing, downloading, overwriting and a `.exe` are refused;
#     the W3C log in %ProgramData%\fxpd\logs has the transfer;
#   - a second install.cmd keeps the administrator's edited config (its banner greets the next
#     client) and the users file, and restarts the service;
#   - uninstall.cmd removes the service (`sc query fxpd` fails, the port is closed) and the
#     program, and keeps the config, users and files; `uninstall.cmd /purge` removes the config,
#     users file and logs and keeps the FTP root.
# The ProcessPrng shim (see run.sh) goes into the prefix's system32, standing in for what Windows
# has: the zip itself must run on real Windows as shipped.

install_test() {
    local started_at=$SECONDS
    local ins_log=$log/install
    mkdir -p "$ins_log"
    local out rc zip

    # ---- the zip, built by the script.
    local t0=$SECONDS
    rc=0
    zip=$(bash "$repo/packaging/build-windows.sh" --profile dev "$work/zip" 2>"$ins_log/build.err" | tail -1) || rc=$?
    if [ "$rc" -ne 0 ] || [ ! -f "$zip" ]; then
        fail "packaging/build-windows.sh --profile dev (exit $rc)" "$(tail -5 "$ins_log/build.err")"
        return
    fi
    note "zip built in $((SECONDS - t0))s: $zip"
    local unzipped=$work/zip/unzipped
    rm -rf "$unzipped"
    python3 -m zipfile -e "$zip" "$unzipped"
    local expected listed
    # shellcheck disable=SC2046 # one word per docs file
    expected=$(printf '%s\n' fxpd.exe fxpd.toml fxpd.example.toml install.cmd uninstall.cmd README.md LICENSE \
        $(cd "$repo" && ls docs/*.md) | LC_ALL=C sort)
    listed=$(python3 -c 'import sys, zipfile; print("\n".join(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))' "$zip")
    if [ "$listed" = "$expected" ] &&
        cmp -s <(tr -d '\r' <"$unzipped/fxpd.toml") "$repo/packaging/windows/fxpd.toml" &&
        grep -q $'\r$' "$unzipped/install.cmd" && ! grep -q $'[^\r]$' "$unzipped/install.cmd" &&
        ! x86_64-w64-mingw32-objdump -h "$unzipped/fxpd.exe" | grep -q '\.debug_'; then
        pass "the zip: $(basename "$zip"), $(echo "$listed" | wc -l) files (no ProcessPrng shim), fxpd.toml as in packaging/windows, CRLF scripts, fxpd.exe stripped"
    else
        fail "the zip's contents" "$(diff <(echo "$expected") <(echo "$listed"))" \
            "fxpd.toml, CRLF in install.cmd, or the debug sections of fxpd.exe differ"
    fi
    # The firewall lines install.cmd prints open the shipped config's ports.
    local control passive
    control=$(sed -n 's/^listen = \["0\.0\.0\.0:\([0-9]*\)"\]$/\1/p' "$repo/packaging/windows/fxpd.toml")
    passive=$(sed -n 's/^ports = "\([0-9]*-[0-9]*\)"$/\1/p' "$repo/packaging/windows/fxpd.toml")
    if [ -n "$control" ] && [ -n "$passive" ] &&
        grep -q "netsh advfirewall firewall add rule name=\"fxpd control\" .* protocol=TCP localport=$control " "$repo/packaging/windows/install.cmd" &&
        grep -q "netsh advfirewall firewall add rule name=\"fxpd passive\" .* protocol=TCP localport=$passive " "$repo/packaging/windows/install.cmd"; then
        pass "install.cmd's netsh lines open the shipped control port $control and passive ports $passive"
    else
        fail "install.cmd's netsh lines should name port ${control:-?} and ${passive:-?}"
    fi

    # ---- a fresh Wine prefix: run.sh's wineserver goes, this one is killed at the end.
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    local WINEPREFIX=$work/install-prefix
    export WINEPREFIX
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    rm -rf "$WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    t0=$SECONDS
    if ! timeout 300 wine wineboot --init >/dev/null 2>&1 || ! timeout 300 wineserver -w ||
        [ ! -f "$WINEPREFIX/system.reg" ]; then
        fail "a fresh Wine prefix could not be made in $WINEPREFIX"
        return
    fi
    note "fresh prefix in $((SECONDS - t0))s"
    local drive=$WINEPREFIX/drive_c
    cp "$work/bin/bcryptprimitives.dll" "$drive/windows/system32/bcryptprimitives.dll"
    local dist=$drive/fxpd-dist
    mkdir -p "$dist"
    python3 -m zipfile -e "$zip" "$dist"
    local port server
    port=$(python3 "$here/service_client.py" free-port --host 127.0.0.2)
    server=127.0.0.2:$port
    # Loopback only: the listen line is the one change to the shipped config.
    sed -i "s/^listen = .*\r\$/listen = [\"$server\"]\r/" "$dist/fxpd.toml"
    local changed
    changed=$(diff <(tr -d '\r' <"$dist/fxpd.toml") "$repo/packaging/windows/fxpd.toml" | grep -c '^[<>]' || true)
    if [ "$changed" -ne 2 ]; then
        fail "the test should change only the listen line of fxpd.toml ($changed lines differ)"
        return
    fi

    # The keepalive (see service.sh): a `wine cmd` reading from a FIFO for the whole test.
    timeout 20 wineserver -p
    local fifo=$ins_log/keepalive.fifo keepalive_pid keepalive_fd i
    rm -f "$fifo"
    mkfifo "$fifo"
    timeout -k 5 900 wine cmd <"$fifo" >"$ins_log/keepalive.out" 2>&1 &
    keepalive_pid=$!
    exec {keepalive_fd}>"$fifo"
    for ((i = 0; i < 300; i++)); do
        grep -q 'Microsoft Windows' "$ins_log/keepalive.out" 2>/dev/null && break
        sleep 0.2
    done

    # win NAME ARGS...: `wine ARGS` (bounded), output (CR stripped) in $ins_log/NAME.txt and $out,
    # status in $rc.
    win() {
        local name=$1
        shift
        rc=0
        timeout 120 wine "$@" >"$ins_log/$name.raw" 2>&1 </dev/null || rc=$?
        tr -d '\r' <"$ins_log/$name.raw" >"$ins_log/$name.txt"
        out=$(cat "$ins_log/$name.txt")
    }
    has() { grep -Eq -- "$2" "$ins_log/$1.txt"; }
    # ins_ftp NAME MODE [ARGS]: ftp_client.py against the installed service.
    ins_ftp() {
        local name=$1
        shift
        rc=0
        timeout 60 python3 "$here/ftp_client.py" "$@" --server "$server" >"$ins_log/$name.txt" 2>&1 || rc=$?
        out=$(cat "$ins_log/$name.txt")
        return $rc
    }
    local exe='C:\Program Files\fxpd\fxpd.exe' data=$drive/ProgramData/fxpd
    local users_win='C:\ProgramData\fxpd\users.toml'

    # ---- install.cmd
    t0=$SECONDS
    win install cmd /c 'C:\fxpd-dist\install.cmd'
    if [ "$rc" -eq 0 ] && has install '^service fxpd running' && has install 'Next steps' &&
        [ -f "$drive/Program Files/fxpd/fxpd.exe" ] && cmp -s "$dist/fxpd.toml" "$data/fxpd.toml" &&
        [ -f "$data/users.toml" ] && [ -d "$data/root" ] && [ -d "$data/logs" ] &&
        python3 "$here/service_client.py" up --server "$server" --within 30 >"$ins_log/up.txt" 2>&1; then
        pass "install.cmd in a fresh prefix ($((SECONDS - t0))s): fxpd.exe in %ProgramFiles%\\fxpd, config, users, root and logs in %ProgramData%\\fxpd, $(grep '^service fxpd running' "$ins_log/install.txt"), answering on $server"
    else
        fail "install.cmd (exit $rc)" "$out" "$(cat "$ins_log/up.txt" 2>/dev/null)"
    fi
    if has install 'warning'; then
        note "install.cmd warned: $(grep warning "$ins_log/install.txt")"
    fi

    # ---- the shipped hardened defaults: no anonymous, then a user, no FXP.
    if ins_ftp anon login --file x --sha256 x --expect refused; then
        pass "installed service, anonymous (off as shipped): $out"
    else
        fail "installed service: anonymous should be refused" "$out"
    fi
    local password=correct-horse-battery-staple
    mkdir -p "$data/root/alice"
    cp "$root/payload.bin" "$data/root/alice/payload.bin"
    rc=0
    printf '%s\n' "$password" | timeout 120 wine "$exe" user add alice --users "$users_win" --home alice --write \
        >"$ins_log/user-add.txt" 2>&1 || rc=$?
    local add_rc=$rc
    win reload "$exe" service reload
    local logged_in=""
    for ((i = 0; i < 20; i++)); do
        if ins_ftp alice-login login --file x --sha256 x --user alice --password "$password"; then
            logged_in=1
            break
        fi
        sleep 0.5
    done
    if [ "$add_rc" -eq 0 ] && [ -n "$logged_in" ]; then
        pass "fxpd.exe user add (password on stdin) + service reload: $out"
    else
        fail "a user added with the installed fxpd.exe should log in (user add exit $add_rc)" \
            "$(tr -d '\r' <"$ins_log/user-add.txt")" "$(cat "$ins_log/reload.txt")" "$out"
    fi
    local as_alice=(--user alice --password "$password" --file payload.bin --sha256 "$sha")
    if ins_ftp alice-port active "${as_alice[@]}" --expect refused; then
        pass "installed service, FXP off as shipped: $out"
    else
        fail "installed service: a foreign PORT should be refused (504)" "$out"
    fi
    if ins_ftp alice-get passive "${as_alice[@]}"; then
        pass "installed service, alice downloads: $out"
    else
        fail "installed service: alice's download" "$out"
    fi
    head -c 262144 /dev/urandom >"$ins_log/up.bin"
    local up_sha
    up_sha=$(sha256sum "$ins_log/up.bin" | cut -d' ' -f1)
    if ins_ftp alice-put upload --user alice --password "$password" --file up.bin --sha256 "$up_sha" \
        --local "$ins_log/up.bin" && [ "$(sha256sum "$data/root/alice/up.bin" | cut -d' ' -f1)" = "$up_sha" ]; then
        pass "installed service, alice uploads (--write): $out; the file on the Windows disk has the same SHA-256"
    else
        fail "installed service: alice's upload" "$out"
    fi
    # ---- rights on Windows: a drop box and a denied extension set with `fxpd.exe user set`.
    mkdir -p "$data/root/alice/dropbox"
    win rights "$exe" user set alice --users "$users_win" --deny '/dropbox=list,download,overwrite' \
        --deny-files '*.exe'
    local set_rc=$rc
    win reload-rights "$exe" service reload
    local boxed=""
    for ((i = 0; i < 20; i++)); do
        if ins_ftp alice-dropbox dropbox --user alice --password "$password" --file dropbox/in.bin \
            --sha256 "$up_sha" --local "$ins_log/up.bin"; then
            boxed=1
            break
        fi
        sleep 0.5
    done
    if [ "$set_rc" -eq 0 ] && [ -n "$boxed" ] &&
        [ "$(sha256sum "$data/root/alice/dropbox/in.bin" | cut -d' ' -f1)" = "$up_sha" ] &&
        [ ! -e "$data/root/alice/dropbox/tool.exe" ]; then
        pass "rights on Windows (fxpd.exe user set + service reload): $out; the stored file has the same SHA-256, tool.exe is not on the disk"
    else
        fail "rights on Windows: a drop box and a denied name (user set exit $set_rc)" \
            "$(cat "$ins_log/rights.txt")" "$(cat "$ins_log/reload-rights.txt")" "$out"
    fi
    local w3c="" w3c_ok=""
    for ((i = 0; i < 25; i++)); do
        w3c=$(cat "$data"/logs/ex*.log 2>/dev/null | tr -d '\r' || true)
        if grep -Eq ' alice .* RETR /payload\.bin 226 ' <<<"$w3c" && grep -Eq ' alice .* PORT .* 504 ' <<<"$w3c"; then
            w3c_ok=1
            break
        fi
        sleep 0.2
    done
    if [ -n "$w3c_ok" ]; then
        pass "the W3C log in %ProgramData%\\fxpd\\logs has alice's RETR (226) and the refused PORT (504)"
    else
        fail "the W3C log in %ProgramData%\\fxpd\\logs should have alice's RETR and PORT" "$(ls "$data/logs")" "$(tail -5 <<<"$w3c")"
    fi

    # ---- a second install.cmd keeps the administrator's edited config.
    local banner='edited by the administrator'
    sed -i "s/^listen = .*\r\$/&\nbanner = \"$banner\"\r/" "$data/fxpd.toml"
    local edited
    edited=$(sha256sum "$data/fxpd.toml")
    t0=$SECONDS
    win install-again cmd /c 'C:\fxpd-dist\install.cmd'
    if [ "$rc" -eq 0 ] && has install-again 'kept' && [ "$(sha256sum "$data/fxpd.toml")" = "$edited" ] &&
        has install-again '^service fxpd running' &&
        ins_ftp banner login --file x --sha256 x --user alice --password "$password" && [[ $out == *"$banner"* ]]; then
        pass "a second install.cmd ($((SECONDS - t0))s) keeps the edited config and the users, restarts the service: $out"
    else
        fail "a second install.cmd should keep the edited config (exit $rc)" "$(cat "$ins_log/install-again.txt")" "$out"
    fi

    # ---- uninstall.cmd: the service goes, the data stays.
    win uninstall cmd /c 'C:\fxpd-dist\uninstall.cmd'
    local uninstall_rc=$rc
    win sc-query sc query fxpd
    local sc_rc=$rc
    if [ "$uninstall_rc" -eq 0 ] && [ "$sc_rc" -ne 0 ] && [ ! -e "$drive/Program Files/fxpd/fxpd.exe" ] &&
        [ "$(sha256sum "$data/fxpd.toml")" = "$edited" ] && grep -q '"alice"' "$data/users.toml" &&
        [ -f "$data/root/alice/up.bin" ] &&
        python3 "$here/service_client.py" refused --server "$server" --within 20 >"$ins_log/gone.txt" 2>&1; then
        pass "uninstall.cmd: service removed (sc query fxpd exit $sc_rc), program removed, the port closed; config, users and files kept"
    else
        fail "uninstall.cmd (exit $uninstall_rc, sc query exit $sc_rc)" "$(cat "$ins_log/uninstall.txt")" \
            "$(cat "$ins_log/sc-query.txt")" "$(cat "$ins_log/gone.txt" 2>/dev/null)"
    fi
    win purge cmd /c 'C:\fxpd-dist\uninstall.cmd' /purge
    if [ "$rc" -eq 0 ] && [ ! -e "$data/fxpd.toml" ] && [ ! -e "$data/users.toml" ] && [ ! -e "$data/logs" ] &&
        [ -f "$data/root/alice/up.bin" ]; then
        pass "uninstall.cmd /purge: config, users and logs removed, the FTP root kept"
    else
        fail "uninstall.cmd /purge (exit $rc)" "$out" "$(ls -la "$data" 2>&1)"
    fi

    echo exit >&"$keepalive_fd"
    exec {keepalive_fd}>&-
    for ((i = 0; i < 100; i++)); do
        kill -0 "$keepalive_pid" 2>/dev/null || break
        sleep 0.2
    done
    kill "$keepalive_pid" 2>/dev/null || true
    wait "$keepalive_pid" 2>/dev/null || true
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    rm -f "$fifo"
    note "install scenarios took $((SECONDS - started_at))s"
}

install_test
