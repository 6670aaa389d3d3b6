//! Promises of the README that no other suite pins down: passive ports that cannot be
//! predicted, the systemd `Type=notify` protocol the service unit relies on, reload, upload
//! theft, the security table, and the client gate that keeps tests from passing unrun.
//!
//! Each test starts the real binary (tests/common) on loopback.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;

/// Consecutive PASV replies must not be predictable (KB Q260934): a sequential allocator, or
/// one that always takes the first free port, would let a thief aim at the next data port.
/// 50 samples from a 1000-port range: no run of three consecutive ports, few repeats, and
/// both halves of the range used. For a uniform random choice each check fails with a
/// probability below one in a million; a sequential or first-free allocator fails all three.
#[test]
fn passive_ports_are_not_predictable() {
    let (first, last) = (31000u16, 31999u16);
    let s = Server::with_alice(&format!(
        "listen = [\"127.0.0.2:0\"]\n[passive]\nports = \"{first}-{last}\""
    ));
    let mut c = s.login("alice", PASS);
    let ports: Vec<u16> = (0..50).map(|_| c.pasv().port()).collect();
    for &p in &ports {
        assert!(
            (first..=last).contains(&p),
            "port {p} outside the range: {ports:?}"
        );
    }
    for w in ports.windows(3) {
        assert!(
            !(w[1] == w[0].wrapping_add(1) && w[2] == w[1].wrapping_add(1)),
            "three consecutive ports in a row ({w:?}): the allocator is sequential: {ports:?}"
        );
    }
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert!(
        distinct.len() >= 42,
        "only {} distinct ports in 50 samples: {ports:?}",
        distinct.len()
    );
    let middle = first + (last - first) / 2;
    let low = ports.iter().filter(|&&p| p <= middle).count();
    assert!(
        (10..=40).contains(&low),
        "{low} of 50 ports in the lower half of the range: not spread: {ports:?}"
    );
}

/// The notifications a process sends to `socket`, each message split into its lines.
fn read_notifications(socket: &UnixDatagram, until: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                seen.extend(text.lines().map(str::to_owned));
                if seen.iter().any(|l| l == until) {
                    return seen;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    panic!("no {until} within {within:?}; got {seen:?}");
}

/// The unit file says `Type=notify`: systemd waits for READY=1 before it calls the service
/// started, expects RELOADING=1 then READY=1 around a reload (ExecReload sends SIGHUP), and
/// STOPPING=1 when it stops.
#[test]
fn systemd_notify_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut s = Server::builder().env("NOTIFY_SOCKET", path.as_os_str()).start();

    let first = read_notifications(&socket, "READY=1", Duration::from_secs(10));
    assert!(first.contains(&"READY=1".to_owned()), "{first:?}");
    // The server answers once READY=1 is sent (the listener is bound before it).
    s.ctrl();

    s.signal("HUP");
    let reload = read_notifications(&socket, "READY=1", Duration::from_secs(10));
    let reloading = reload.iter().position(|l| l == "RELOADING=1");
    let ready = reload.iter().rposition(|l| l == "READY=1");
    assert!(
        matches!((reloading, ready), (Some(a), Some(b)) if a < b),
        "a reload must send RELOADING=1, then READY=1: {reload:?}"
    );

    s.signal("TERM");
    let stop = read_notifications(&socket, "STOPPING=1", Duration::from_secs(10));
    assert!(stop.contains(&"STOPPING=1".to_owned()), "{stop:?}");
    assert!(
        s.wait_exit(Duration::from_secs(20)).is_some(),
        "fxpd did not exit after SIGTERM"
    );
}

/// `systemctl reload fxpd` (SIGHUP) changes the FXP policy for sessions already open; a file
/// that does not load is refused with its reason as a structured log event, and the policy in
/// force stays exactly as it was.
#[test]
fn reload_changes_the_policy_of_open_sessions_and_a_bad_file_changes_nothing() {
    let s = Server::builder()
        .user("alice", PASS, "alice", true)
        .arg("--log-json")
        .start();
    let mut c = s.login("alice", PASS);
    // The default: a PORT naming another address is refused before any connect.
    let r = c.expect("PORT 127,0,0,3,200,1", 504);
    assert!(r.text().contains("(foreign-address)"), "{r}");

    std::fs::write(
        &s.config_path,
        format!("{}\n[fxp]\nallow_foreign_port = true\n", s.config_text),
    )
    .unwrap();
    s.reload().expect("a valid file must be applied");
    c.expect("PORT 127,0,0,3,200,1", 200);

    // A file that is not TOML: refused, its reason in one JSON event, the policy unchanged.
    std::fs::write(&s.config_path, "listen = [\n").unwrap();
    let line = s.reload().expect_err("an invalid file must be refused");
    let event: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON event ({e}): {line}"));
    assert_eq!(event["fields"]["event"], "reload_refused", "{line}");
    let error = event["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("fxpd.toml"),
        "the reason must name the file: {line}"
    );
    c.expect("PORT 127,0,0,3,200,1", 200);
    assert!(
        !s.stderr()
            .lines()
            .any(|l| !l.trim().is_empty() && serde_json::from_str::<serde_json::Value>(l).is_err()),
        "every line of the JSON log must be JSON:\n{}",
        s.stderr()
    );

    // Revoked by a valid file: the open session is refused again at its next PORT.
    std::fs::write(&s.config_path, &s.config_text).unwrap();
    s.reload().expect("a valid file must be applied");
    let r = c.expect("PORT 127,0,0,3,200,1", 504);
    assert!(r.text().contains("(foreign-address)"), "{r}");
}

/// A stranger reaches an upload's passive port before the client and sends bytes: the
/// connection is refused unread, and the stored file is exactly the client's.
#[test]
fn a_stranger_first_on_an_upload_passive_port_stores_nothing() {
    let s = Server::with_alice("");
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let addr = c.pasv();
    let mut thief = connect_from("127.0.0.9".parse().unwrap(), addr);
    // The stranger sends a whole "file" and ends it, as a client would.
    let _ = thief.write_all(&[b'X'; 64 * 1024]);
    let _ = thief.shutdown(std::net::Shutdown::Write);
    let data = random_bytes(1024 * 1024 + 7);
    let mut d = data_connect(addr);
    let r = c.cmd("STOR up.bin");
    assert_eq!(r.code, 150, "STOR -> {r}");
    // A failed write shows in the reply and the hash below, which say more than the error.
    if let Err(e) = d.write_all(&data) {
        eprintln!("the client's data connection failed: {e}");
    }
    drop(d);
    let r = c.read_reply();
    assert_eq!(r.code, 226, "STOR -> {r}");
    let stored = std::fs::read(s.home("alice").join("up.bin")).unwrap();
    assert!(
        stored == data,
        "the stored file is not the client's: {} bytes, {} of them the stranger's X",
        stored.len(),
        stored.iter().filter(|&&b| b == b'X').count()
    );
    assert!(
        r.text().contains("127.0.0.9"),
        "the 226 names the refused stranger: {r}"
    );
    // The stranger got nothing back and was closed.
    thief.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(thief.read(&mut buf), Ok(0) | Err(_)),
        "the stranger's connection must be closed unread"
    );
}

/// Settings whose defaults are security promises: the README's security table must state
/// each of them.
const SECURITY_DEFAULTS: &[&str] = &[
    "fxp.allow_foreign_port",
    "fxp.allow_foreign_passive",
    "fxp.allow_privileged_ports",
    "fxp.allow_anonymous",
    "fxp.ban_threshold",
    "fxp.ban_window_secs",
    "fxp.ban_secs",
    "anonymous.enabled",
    "anonymous.write",
    "limits.failed_login_delay_ms",
    "limits.max_login_failures",
    "limits.lockout_secs",
    "limits.max_line_len",
    "limits.max_sessions",
    "limits.max_sessions_per_ip",
    "limits.login_timeout_secs",
    "limits.max_unauthenticated",
    "limits.max_unauthenticated_per_ip",
    "limits.user_slowdown_max_ms",
    "tls.require_data_resumption",
];

/// Every `key = value` the README's security table states, in order. A key without a
/// section (`ban_secs = 600`) belongs to the section of the key before it in the same row.
fn security_table_claims(readme: &str) -> Vec<(String, String)> {
    let start = readme
        .find("## Security: the defaults and why")
        .expect("the README has a security section");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    let mut claims = Vec::new();
    for row in rest[..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| default"))
    {
        let mut section: Option<String> = None;
        for (i, span) in row.split('`').enumerate() {
            let Some((key, value)) = span.split_once(" = ").filter(|_| i % 2 == 1) else {
                continue;
            };
            let key = match key.split_once('.') {
                Some((s, _)) => {
                    section = Some(s.to_owned());
                    key.to_owned()
                }
                None => match &section {
                    Some(s) => format!("{s}.{key}"),
                    None => key.to_owned(),
                },
            };
            claims.push((key, value.trim_matches('"').to_owned()));
        }
    }
    claims
}

/// The README's security table and the binary agree: every default the table states is the
/// default `fxpd config check` reports, and every security setting is in the table. The
/// docs and the code cannot drift apart together.
#[test]
fn readme_security_table_states_the_real_defaults() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let claims = security_table_claims(&readme);
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let mut cmd = std::process::Command::new(BIN);
    clear_fxpd_env(&mut cmd);
    cmd.args(["config", "check", "--json", "--config"]).arg(&empty);
    let out = run_with_timeout(&mut cmd, 30);
    assert!(out.status.success(), "config check: {}", describe_output(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let defaults: std::collections::BTreeMap<String, String> = report["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["origin"], "default", "{s}");
            let value = match &s["value"] {
                serde_json::Value::String(v) => v.clone(),
                other => other.to_string(),
            };
            (s["key"].as_str().unwrap().to_owned(), value)
        })
        .collect();
    for (key, value) in &claims {
        let actual = defaults
            .get(key)
            .unwrap_or_else(|| panic!("the README's security table names `{key}`, which is no setting"));
        assert_eq!(
            actual, value,
            "README says `{key} = {value}`, the default is {actual}"
        );
    }
    for key in SECURITY_DEFAULTS {
        assert!(
            claims.iter().any(|(k, _)| k == key),
            "the README's security table does not state the default of `{key}`; it states {claims:?}"
        );
    }
}

/// Set in the child process of [`the_client_gate_fails_on_a_missing_client_and_records_a_skip`]:
/// the name of the client the child asks the gate for.
const GATE_PROBE_ENV: &str = "FXPD_TEST_GATE_PROBE";

/// The gate every external-client test passes (tests/common: `require_client`) cannot let a
/// test pass without running: with `FXPD_EXTERNAL_CLIENTS=1` a missing client fails the test,
/// and without it the skip is written to `FXPD_SKIP_LOG`, which `tests/run.sh` turns into a
/// failure. The test runs this same test binary again as a child, with a controlled
/// environment, and reads the child's outcome.
#[test]
fn the_client_gate_fails_on_a_missing_client_and_records_a_skip() {
    if let Ok(client) = std::env::var(GATE_PROBE_ENV) {
        // The child: ask the gate, and say what it answered.
        let runs = require_client(&client);
        println!("GATE ANSWERED {runs}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skipped.log");
    let child = |client: &str, external: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "the_client_gate_fails_on_a_missing_client_and_records_a_skip",
            "--exact",
            "--nocapture",
        ])
        .env(GATE_PROBE_ENV, client)
        .env(SKIP_LOG_ENV, &log)
        .env_remove(EXTERNAL_ENV);
        if let Some(v) = external {
            cmd.env(EXTERNAL_ENV, v);
        }
        run_with_timeout(&mut cmd, 60)
    };

    // A missing client with the gate set: the test fails, naming the client.
    let out = child("fxpd-no-such-client", Some("1"));
    let text = describe_output(&out);
    assert!(!out.status.success(), "a missing client passed: {text}");
    assert!(text.contains("fxpd-no-such-client not installed"), "{text}");
    assert!(!text.contains("GATE ANSWERED"), "{text}");

    // A present client with the gate set: the test runs, and nothing is recorded as skipped.
    let out = child("sh", Some("1"));
    let text = describe_output(&out);
    assert!(
        out.status.success() && text.contains("GATE ANSWERED true"),
        "{text}"
    );
    assert!(!log.exists(), "a test that ran was logged as skipped");

    // Without the gate: the test returns without running, and says so in the skip log.
    let out = child("sh", None);
    let text = describe_output(&out);
    assert!(
        out.status.success() && text.contains("GATE ANSWERED false"),
        "{text}"
    );
    let skipped = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        skipped.contains("the_client_gate_fails_on_a_missing_client_and_records_a_skip")
            && skipped.contains(EXTERNAL_ENV),
        "the skip was not recorded for tests/run.sh: {skipped:?}"
    );
}

/// The quick start (no configuration anywhere) says what it serves in its first log line, as
/// the README promises, so nobody mistakes it for a deployment.
#[test]
fn the_quick_start_says_so_in_its_first_log_line() {
    if std::path::Path::new("/etc/fxpd/fxpd.toml").exists() {
        // The default configuration file is there: fxpd would not be in quick-start mode.
        skip("/etc/fxpd/fxpd.toml exists on this machine, so there is no quick start");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    clear_fxpd_env(&mut cmd);
    cmd.arg("serve")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut line);
        let _ = tx.send(line);
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let first = first.expect("no log line within 30 s");
    for words in [
        "quick start",
        "READ-ONLY to anonymous users",
        "127.0.0.1:2121",
        "ftproot",
    ] {
        assert!(
            first.contains(words),
            "the first log line lacks {words:?}: {first:?}"
        );
    }
}
