# shellcheck shell=bash
# shellcheck disable=SC2154 # $fxpd, $log, $here, ... are set by run.sh, which sources this file
# fxpd as a Windows service under Wine (issue 5). Sourced by tests/windows/run.sh after its own
# scenarios: it reuses run.sh's build, Wine prefix, FTP root and helpers (pass, fail, note,
# wine_run, reg_set, reg_clear), and adds to its counters.
#
# What it checks, with Wine 8's real services.exe, `net start` / `net stop`, the registry and a
# real FTP client (Python's ftplib) from Linux:
#   - `fxpd.exe service install --config C:\ProgramData\fxpd\service.toml` registers the service
#     (ImagePath `... service run --config ...`, automatic start, display name, description), the
#     Event Log source, and creates EnablePortAttack=0 in fxpd\Parameters while keeping the
#     EnablePASVTheft=1 an administrator set before; a second install is refused and changes
#     nothing;
#   - `wine net start fxpd`: a passive download (SHA-256 checked); a foreign PORT (127.0.0.3) is
#     refused with EnablePortAttack=0; the service's admin listener (token made by `fxpd.exe
#     admin token`) answers 401 without the token and, with it, `/metrics` with the build info
#     and that download's login;
#   - EnablePortAttack=1 alone (the registry change notification, no control): the foreign PORT
#     is accepted and RETR really connects there; the value deleted: refused; the file's
#     allow_foreign_port = true + `fxpd.exe service reload` (the parameter-change control, for a
#     change the registry watch cannot see): accepted; EnablePortAttack=0 + `fxpd.exe service
#     stop` and `service start` (a restart): refused again;
#   - `wine net stop fxpd` during a slow 12 MiB download: new connections are refused at once,
#     the service reports "stopping", the download still completes (SHA-256, 226), then the
#     process exits and the service is stopped with exit code 0;
#   - a REG_SZ EnablePortAttack: `fxpd.exe service start` fails with exit code 2 (configuration
#     error) and the error reaches the Event Log;
#   - start, reload, stop and errors reach the Event Log: Wine's ReportEventW writes each text to
#     its `eventlog` debug channel, which this script captures from services.exe's stderr;
#   - `fxpd.exe service uninstall` removes the service, its key and the Event Log source;
#   - installed without --config and without %ProgramData%\fxpd\fxpd.toml, the service refuses to
#     run the quick start (exit code 2, an Event Log error);
#   - `fxpd.exe service run` from a console says it is for the SCM and exits 2.
# Not possible under Wine: the recovery actions take effect (Wine's SCM accepts
# SERVICE_CONFIG_FAILURE_ACTIONS but stores nothing, and rejects FailureActionsOnNonCrashFailures
# with ERROR_INVALID_LEVEL, which install reports as a warning: both calls are made here, and the
# install output is checked); an Event Log that can be read back (Wine's ReportEventW only traces);
# the shutdown control (Wine never sends it: the stop control takes the same code path).
#
# Trap: without a persistent wineserver, Wine kills a service (no stop or shutdown control, the
# process just ends) about two seconds after the last ordinary Wine process exits. So a `wine cmd`
# reading from a FIFO stays alive for the whole test (told to `exit` at the end); it is also the
# process that boots services.exe, whose stderr (inherited by the service) is captured here.

service_test() {
    local started_at=$SECONDS
    local svc_log=$log/service
    mkdir -p "$svc_log"
    local client_py=$here/service_client.py
    local svc_key='HKLM\SYSTEM\CurrentControlSet\Services\fxpd'
    local event_key='HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\fxpd'
    local config_win='C:\ProgramData\fxpd\service.toml'
    local out rc port server keepalive_pid keepalive_fd

    # A fresh wineserver whose services.exe writes its (and the service's) stderr to our log, with
    # the eventlog debug channel on: that is where Wine's ReportEventW puts the texts.
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    timeout 20 wineserver -p
    local events=$svc_log/services-stderr.txt fifo=$svc_log/keepalive.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    WINEDEBUG=-all,trace+eventlog,err+eventlog timeout -k 5 900 wine cmd <"$fifo" \
        >"$svc_log/keepalive.out" 2>"$events" &
    keepalive_pid=$!
    exec {keepalive_fd}>"$fifo"
    # Wait until `wine cmd` runs: it booted services.exe, so the service inherits this stderr.
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q 'Microsoft Windows' "$svc_log/keepalive.out" 2>/dev/null && break
        sleep 0.2
    done

    # A leftover from an interrupted run (it would have been started automatically at boot).
    wine_run "$fxpd" service uninstall >/dev/null 2>&1 || true
    reg_clear

    port=$(python3 "$client_py" free-port --host 127.0.0.2)
    server=127.0.0.2:$port
    local admin_port admin_token
    admin_port=$(python3 "$client_py" free-port --host 127.0.0.2)
    head -c 12582912 /dev/urandom >"$root/big.bin"
    local big_sha
    big_sha=$(sha256sum "$root/big.bin" | cut -d' ' -f1)
    printf '%s\n' '# written by tests/windows/service.sh' "listen = [\"$server\"]" "root = '$win_root'" \
        '[anonymous]' 'enabled = true' '[limits]' 'shutdown_grace_secs = 60' \
        '[admin]' "listen = \"127.0.0.2:$admin_port\"" "token_file = 'C:\\ProgramData\\fxpd\\service-admin-token'" \
        '# polling below is refused again and again: no ban (fxp is the last table: lines are added to it)' \
        '[fxp]' 'ban_threshold = 0' >"$config_dir/service.toml"

    # wine_out NAME ARGS...: runs `wine ARGS` (bounded), output (CR stripped) in $svc_log/NAME.txt
    # and $out, status in $rc.
    wine_out() {
        local name=$1
        shift
        rc=0
        timeout 90 wine "$@" >"$svc_log/$name.raw" 2>&1 || rc=$?
        tr -d '\r' <"$svc_log/$name.raw" >"$svc_log/$name.txt"
        out=$(cat "$svc_log/$name.txt")
    }
    # has NAME REGEX: the output of NAME matches (grep -E).
    has() { grep -Eq -- "$2" "$svc_log/$1.txt"; }
    # event REGEX: a ReportEventW line in services.exe's stderr matches.
    event() { tr -d '\r' <"$events" | grep -E 'eventlog:ReportEventW' | grep -Eq -- "$1"; }
    # svc_client NAME ARGS...: service_client.py, output in $out.
    svc_client() {
        local name=$1
        shift
        rc=0
        timeout 60 python3 "$client_py" "$@" >"$svc_log/$name.txt" 2>&1 || rc=$?
        out=$(cat "$svc_log/$name.txt")
        return $rc
    }
    # ftp_run NAME MODE [ARGS]: tests/windows/ftp_client.py against the service (payload.bin).
    ftp_run() {
        local name=$1
        shift
        rc=0
        timeout 60 python3 "$here/ftp_client.py" "$@" --server "$server" --file payload.bin \
            --sha256 "$sha" >"$svc_log/$name.txt" 2>&1 || rc=$?
        out=$(cat "$svc_log/$name.txt")
        return $rc
    }
    # service_pid: the Linux PID of the running `fxpd.exe service run`, or nothing.
    service_pid() { pgrep -f 'fxpd\.exe service run' | head -1 || true; }

    # The admin listener's token, for the check after net start.
    rm -f "$config_dir/service-admin-token"
    wine_out admin-token "$fxpd" admin token --config "$config_win"
    admin_token=$(tr -d '\r\n' <"$config_dir/service-admin-token" 2>/dev/null || true)

    # ---- install: an administrator's value first, to see that install keeps it.
    reg_set "$fxpd_key" EnablePASVTheft REG_DWORD 1
    wine_out install "$fxpd" service install --config "$config_win"
    if [ "$rc" -eq 0 ] && has install 'EnablePortAttack: set to 0 \(hardened default\)' &&
        has install 'EnablePASVTheft: kept \(already set\)' &&
        has install 'recovery: restart after 5s, 10s, 60s'; then
        pass "service install: $(head -1 "$svc_log/install.txt")"
    else
        fail "service install (exit $rc)" "$out"
    fi
    wine_out install-reg reg query "$svc_key" /s
    if has install-reg 'ImagePath +REG_SZ +.*fxpd\.exe service run --config C:\\ProgramData\\fxpd\\service\.toml$' &&
        has install-reg 'Start +REG_DWORD +0x2$' && has install-reg 'DisplayName +REG_SZ +fxpd FTP server' &&
        has install-reg 'Description +REG_SZ +FTP/FTPS server' &&
        has install-reg 'EnablePortAttack +REG_DWORD +0x0$' && has install-reg 'EnablePASVTheft +REG_DWORD +0x1$'; then
        pass "registry after install: ImagePath with service run --config, Start=2 (automatic), EnablePortAttack=0 created, EnablePASVTheft=1 kept"
    else
        fail "registry after install" "$out"
    fi
    wine_out install-event reg query "$event_key"
    if has install-event 'EventMessageFile +REG_EXPAND_SZ +%SystemRoot%\\System32\\EventCreate\.exe'; then
        pass "Event Log source fxpd registered"
    else
        fail "Event Log source fxpd not registered" "$out"
    fi
    wine_out install-again "$fxpd" service install --config "$config_win"
    local again_rc=$rc
    wine_out install-again-reg reg query "$fxpd_key"
    if [ "$again_rc" -ne 0 ] && has install-again 'already installed' &&
        has install-again-reg 'EnablePortAttack +REG_DWORD +0x0$' &&
        has install-again-reg 'EnablePASVTheft +REG_DWORD +0x1$'; then
        pass "a second install is refused: $(head -1 "$svc_log/install-again.txt")"
    else
        fail "a second install should be refused and change nothing" "$(cat "$svc_log/install-again.txt")"
    fi
    # Anonymous may use FXP, so EnablePortAttack alone decides the foreign PORT below.
    reg_set "$fxpd_key" FxpAllowAnonymous REG_DWORD 1

    # ---- net start, a download, the registry's hardened default.
    wine_out net-start net start fxpd
    if [ "$rc" -eq 0 ] && svc_client up up --server "$server" --within 30; then
        pass "wine net start fxpd: $(tail -1 "$svc_log/net-start.txt"); $out"
    else
        fail "wine net start fxpd (exit $rc)" "$(cat "$svc_log/net-start.txt")" "$out"
    fi
    wine_out status-running "$fxpd" service status
    if has status-running '^service fxpd: running \(process [0-9]+\)'; then
        pass "service status: $(head -1 "$svc_log/status-running.txt")"
    else
        fail "service status should say running" "$out"
    fi
    if ftp_run download passive; then
        pass "service: $out"
    else
        fail "service: passive download" "$out"
    fi
    # The admin listener of the service: 401 without the token, the login above counted with it.
    local admin_url=http://127.0.0.2:$admin_port code metrics
    code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$admin_url/metrics" 2>&1 || true)
    metrics=$(curl -sS --max-time 20 -H "Authorization: Bearer $admin_token" "$admin_url/metrics" 2>&1 || true)
    if [ -n "$admin_token" ] && [ "$code" = 401 ] &&
        grep -Eq '^fxpd_build_info\{version="[^"]+"\} 1$' <<<"$metrics" &&
        grep -Eq '^fxpd_logins_total\{result="ok"\} [1-9]' <<<"$metrics"; then
        pass "service: admin listener $admin_url: 401 without the token; /metrics: $(grep -E '^fxpd_(build_info|logins_total\{result="ok")' <<<"$metrics" | tr '\n' ' ')"
    else
        fail "service: the admin listener (token $([ -n "$admin_token" ] && echo made || echo missing), no-token status $code)" \
            "$(cat "$svc_log/admin-token.txt")" "$(head -5 <<<"$metrics")"
    fi
    if ftp_run port-0 active --expect refused; then
        pass "service, EnablePortAttack=0 (install default): $out"
    else
        fail "service: foreign PORT should be refused with EnablePortAttack=0" "$out"
    fi

    # poll_port NAME refused|accepted: ftp_run NAME active, every 0.5 s for at most 10 s.
    poll_port() {
        local j
        for ((j = 0; j < 20; j++)); do
            ftp_run "$1" active --expect "$2" && return 0
            sleep 0.5
        done
        return 1
    }

    # ---- EnablePortAttack=1: the registry change notification alone reloads the service.
    local t0=$SECONDS
    reg_set "$fxpd_key" EnablePortAttack REG_DWORD 1
    if poll_port port-1 accepted; then
        pass "service, reg add EnablePortAttack=1, no control sent: accepted within $((SECONDS - t0))s (registry change notification): $out"
    else
        fail "service: foreign PORT should be accepted after the registry change alone" "$out"
    fi

    # ---- the parameter-change control, for a change the registry watch cannot see (the file).
    wine_run reg delete "$fxpd_key" /v EnablePortAttack /f >/dev/null
    poll_port port-file-0 refused || true
    local file_0=$out
    echo 'allow_foreign_port = true' >>"$config_dir/service.toml"
    wine_out reload "$fxpd" service reload
    local reload_rc=$rc
    if [[ $file_0 == ok:* ]] && [ "$reload_rc" -eq 0 ] && poll_port port-file-1 accepted; then
        pass "service: EnablePortAttack deleted -> refused (registry watch); the file's allow_foreign_port = true + service reload (ParamChange) -> $out"
    else
        fail "service: the parameter-change control should reload the file" "$file_0" "$(cat "$svc_log/reload.txt")" "$out"
    fi

    # ---- back to 0 (the registry beats the file), and a restart with fxpd's own stop/start commands.
    reg_set "$fxpd_key" EnablePortAttack REG_DWORD 0
    wine_out stop "$fxpd" service stop
    local stop_out=$out stop_rc=$rc
    wine_out start "$fxpd" service start
    if [ "$stop_rc" -eq 0 ] && [[ $stop_out == *"stopped after"*"(exit code 0)"* ]] && [ "$rc" -eq 0 ] &&
        has start '^service fxpd running' && svc_client up-again up --server "$server" --within 30; then
        pass "service stop + service start: $stop_out; $(cat "$svc_log/start.txt")"
    else
        fail "service stop + start" "$stop_out" "$(cat "$svc_log/start.txt")" "$out"
    fi
    if ftp_run port-0-again active --expect refused; then
        pass "service, EnablePortAttack=0 after the restart: $out"
    else
        fail "service: foreign PORT should be refused again after the restart" "$out"
    fi

    # ---- net stop drains: a slow download in flight when the stop control arrives.
    local pid started=$svc_log/slow.started
    pid=$(service_pid)
    rm -f "$started"
    timeout 120 python3 "$client_py" slow --server "$server" --file big.bin --sha256 "$big_sha" \
        --started "$started" >"$svc_log/slow.txt" 2>&1 &
    local slow_pid=$!
    for ((i = 0; i < 100; i++)); do
        [ -f "$started" ] && break
        kill -0 "$slow_pid" 2>/dev/null || break
        sleep 0.1
    done
    local stop_began=$SECONDS
    wine_out net-stop net stop fxpd
    local net_stop_out=$out net_stop_rc=$rc
    svc_client refused refused --server "$server" --within 10 || true
    local refused_out=$out refused_rc=$rc in_flight=""
    kill -0 "$slow_pid" 2>/dev/null && in_flight=1
    wine_out status-stopping "$fxpd" service status
    local slow_rc=0
    wait "$slow_pid" || slow_rc=$?
    local slow_out
    slow_out=$(cat "$svc_log/slow.txt")
    if [ -f "$started" ] && [ "$net_stop_rc" -eq 0 ] && [ "$refused_rc" -eq 0 ] && [ -n "$in_flight" ]; then
        pass "wine net stop fxpd during a download: $(tail -1 "$svc_log/net-stop.txt"); $refused_out while the transfer runs"
    else
        fail "net stop during a download (net stop exit $net_stop_rc, download started: $([ -f "$started" ] && echo yes || echo no), still running: ${in_flight:-no})" \
            "$net_stop_out" "$refused_out"
    fi
    if [ -n "$in_flight" ] && has status-stopping '^service fxpd: stopping'; then
        pass "service status while draining: $(head -1 "$svc_log/status-stopping.txt")"
    else
        fail "service status should say stopping while the transfer drains" "$(cat "$svc_log/status-stopping.txt")"
    fi
    if [ "$slow_rc" -eq 0 ]; then
        pass "the in-flight transfer completed after the stop control: $slow_out"
    else
        fail "the in-flight transfer should complete" "$slow_out"
    fi
    local gone=""
    for ((i = 0; i < 150; i++)); do
        if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
            gone=1
            break
        fi
        sleep 0.2
    done
    wine_out status-stopped "$fxpd" service status
    if [ -n "$pid" ] && [ -n "$gone" ] && has status-stopped '^service fxpd: stopped, last exit code 0$'; then
        pass "after draining the process exited ($((SECONDS - stop_began))s after net stop): $(head -1 "$svc_log/status-stopped.txt")"
    else
        fail "the service process should exit cleanly after draining (pid ${pid:-none}, gone: ${gone:-no})" \
            "$(cat "$svc_log/status-stopped.txt")"
    fi

    # ---- a fatal configuration error: the start fails, with exit code 2 and an Event Log error.
    reg_set "$fxpd_key" EnablePortAttack REG_SZ 1
    wine_out start-bad "$fxpd" service start
    if [ "$rc" -ne 0 ] && has start-bad 'exit code 2: configuration error'; then
        pass "a REG_SZ EnablePortAttack: service start fails: $out"
    else
        fail "service start should fail on a REG_SZ EnablePortAttack (exit $rc)" "$out"
    fi
    reg_set "$fxpd_key" EnablePortAttack REG_DWORD 0

    # ---- the Event Log (Wine: ReportEventW's texts on the eventlog debug channel).
    local missing=() pattern
    for pattern in 'trace:eventlog:ReportEventW L"fxpd started \(configuration C:' \
        'trace:eventlog:ReportEventW L"fxpd reloading its configuration \(parameter-change control\)' \
        'trace:eventlog:ReportEventW L"fxpd reloading its configuration \(registry change under HKLM.*fxpd.*Parameters\)' \
        'trace:eventlog:ReportEventW L"fxpd stopping \(stop\)' \
        'trace:eventlog:ReportEventW L"fxpd stopped"' \
        'err:eventlog:ReportEventW L"configuration error: registry value .*EnablePortAttack' \
        'err:eventlog:ReportEventW L"fxpd stopped with an error \(service-specific exit code 2\)'; do
        event "$pattern" || missing+=("$pattern")
    done
    if ((${#missing[@]} == 0)); then
        pass "Event Log (ReportEventW): started, reload (control and registry change), stopping, stopped, and the configuration error as an error"
    else
        fail "Event Log entries missing (see $events)" "${missing[@]}"
    fi

    # ---- uninstall, and `service run` from a console.
    wine_out uninstall "$fxpd" service uninstall
    local uninstall_out=$out uninstall_rc=$rc
    wine_out uninstall-reg reg query "$svc_key"
    local key_rc=$rc
    wine_out uninstall-event reg query "$event_key"
    local event_rc=$rc
    wine_out net-start-gone net start fxpd
    if [ "$uninstall_rc" -eq 0 ] && [ "$key_rc" -ne 0 ] && [ "$event_rc" -ne 0 ] && [ "$rc" -ne 0 ]; then
        pass "service uninstall: $uninstall_out; the service key and the Event Log source are gone, net start fails"
    else
        fail "service uninstall (exit $uninstall_rc; key query exit $key_rc, event source $event_rc, net start $rc)" \
            "$uninstall_out"
    fi
    # Without --config and without %ProgramData%\fxpd\fxpd.toml the service refuses the quick start.
    rm -f "$config_dir/fxpd.toml"
    wine_out install-bare "$fxpd" service install
    local bare_rc=$rc
    wine_out start-bare "$fxpd" service start
    local start_bare_rc=$rc
    wine_out uninstall-bare "$fxpd" service uninstall
    if [ "$bare_rc" -eq 0 ] && has install-bare 'note: no --config and C:\\ProgramData\\fxpd\\fxpd\.toml does not exist' &&
        [ "$start_bare_rc" -ne 0 ] && has start-bare 'exit code 2: configuration error' &&
        event 'err:eventlog:ReportEventW L"fxpd cannot start as a service without a configuration file' &&
        [ "$rc" -eq 0 ]; then
        pass "no configuration file: install warns, the service refuses the quick start (exit code 2, Event Log)"
    else
        fail "service without a configuration file (install exit $bare_rc, start exit $start_bare_rc, uninstall exit $rc)" \
            "$(cat "$svc_log/install-bare.txt")" "$(cat "$svc_log/start-bare.txt")"
    fi
    wine_out console-run "$fxpd" service run
    if [ "$rc" -eq 2 ] && has console-run 'is what the Service Control Manager starts'; then
        pass "service run from a console exits 2: $out"
    else
        fail "service run from a console (exit $rc)" "$out"
    fi

    # The keepalive: `exit` ends `wine cmd` (EOF would not: Wine processes hold the FIFO too).
    echo exit >&"$keepalive_fd"
    exec {keepalive_fd}>&-
    for ((i = 0; i < 100; i++)); do
        kill -0 "$keepalive_pid" 2>/dev/null || break
        sleep 0.2
    done
    kill "$keepalive_pid" 2>/dev/null || true
    wait "$keepalive_pid" 2>/dev/null || true
    reg_clear
    rm -f "$config_dir/service.toml" "$root/big.bin" "$fifo"
    note "service scenarios took $((SECONDS - started_at))s"
}

service_test
