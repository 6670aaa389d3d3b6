//! The admin listener (`[admin]`, docs/admin.md) on real sockets: off by default; the bearer
//! token (made by `fxpd admin token`) on every request, 401 and a log line without it;
//! `/metrics` checked against what the test did and by `promtool check metrics`; kicking a
//! session in the middle of a large upload; lifting a ban; the `fxpd sessions`, `fxpd bans`
//! and `fxpd reload` commands through the real binary; HTTPS; a non-loopback address refused
//! without TLS, at start and on reload; the status page in headless Chromium, logged in
//! through its form, during a download.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A token file made by the real `fxpd admin token`, in a directory of its own.
struct TokenFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
    token: String,
}

/// `fxpd admin token` for a configuration naming `path`; checks the file's mode.
fn make_token() -> TokenFile {
    let dir = tempfile::Builder::new()
        .prefix("fxpd-admin-token-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("admin-token");
    let config = dir.path().join("fxpd.toml");
    fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {}\n",
            toml_path(&path)
        ),
    )
    .unwrap();
    let out = fxpd(&["admin", "token", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "fxpd admin token: {}", describe(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the token file must be private");
    }
    let token = fs::read_to_string(&path).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64, "32 random bytes in hex: {token:?}");
    let again = fxpd(&["admin", "token", "--config", config.to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "an existing token is kept without --replace"
    );
    assert_eq!(fs::read_to_string(&path).unwrap().trim(), token);
    TokenFile {
        _dir: dir,
        path,
        token,
    }
}

fn toml_path(p: &Path) -> String {
    toml::Value::String(p.to_str().unwrap().to_owned()).to_string()
}

fn admin_table(token: &TokenFile) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {}\n",
        toml_path(&token.path)
    )
}

/// A server with the admin listener on 127.0.0.1 and users alice and bob (write).
fn admin_server(extra: &str) -> (Server, TokenFile) {
    let token = make_token();
    let users = [user("alice", PASS, "alice", true), user("bob", PASS, "bob", true)];
    let s = Server::start(&format!("{extra}\n{}", admin_table(&token)), &users);
    assert!(s.admin.is_some(), "no ADMIN-LISTENING line");
    (s, token)
}

/// The real binary with `args`, no `FXPD__` variables, a deadline.
fn fxpd(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    clear_fxpd_env(&mut cmd);
    cmd.args(args).stdin(Stdio::null());
    run_with_timeout(&mut cmd, 60)
}

/// `fxpd <args> --config <the server's file>`; the admin listener's port, which the file
/// leaves to the system (`:0`), is given with `--set` as the binary reported it.
fn fxpd_cli(s: &Server, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--config".into(), s.config_path.to_str().unwrap().into()]);
    if let Some(url) = &s.admin {
        let addr = url.split("://").nth(1).unwrap();
        all.extend(["--set".into(), format!("admin.listen={addr}")]);
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    fxpd(&all)
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// curl against the admin listener: (HTTP status, body). `token` None sends none.
fn curl(s: &Server, method: &str, path: &str, token: Option<&str>, extra: &[&str]) -> (u16, String) {
    let work = s.dir.path().join("curl");
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "--max-time", "30", "-X", method, "-w", "\n%{http_code}"]);
    if let Some(t) = token {
        c.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    c.args(extra);
    c.arg(format!("{}{path}", s.admin.as_ref().unwrap()));
    let out = run_with_timeout(&mut c, 60);
    assert!(out.status.success(), "curl {method} {path}: {}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The value of the sample `line_start` (name and labels, exactly) in an exposition.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_admin_listener_is_off_by_default_and_the_commands_say_so() {
    let s = Server::with_alice("");
    assert!(s.admin.is_none(), "an admin listener without [admin]");
    for args in [
        &["sessions"][..],
        &["bans"],
        &["reload"],
        &["sessions", "kick", "1"],
    ] {
        let out = fxpd_cli(&s, args);
        assert!(!out.status.success(), "fxpd {args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("admin listener is off"), "fxpd {args:?}: {err}");
    }
}

#[test]
fn requests_without_or_with_a_wrong_token_get_401_and_are_logged() {
    if !require_client("curl") {
        return;
    }
    let (s, token) = admin_server("");
    for path in ["/api/sessions", "/metrics", "/api/bans", "/nowhere"] {
        let (code, body) = curl(&s, "GET", path, None, &[]);
        assert_eq!(code, 401, "GET {path} without a token: {body}");
    }
    let (code, _) = curl(
        &s,
        "GET",
        "/api/sessions",
        Some("0123456789abcdef0123456789abcdef"),
        &[],
    );
    assert_eq!(code, 401, "a wrong token");
    let last = if token.token.ends_with('0') { '1' } else { '0' };
    let wrong_by_one = format!("{}{last}", &token.token[..63]);
    let (code, _) = curl(&s, "GET", "/api/sessions", Some(&wrong_by_one), &[]);
    assert_eq!(code, 401, "a token wrong in its last character");
    let (code, _) = curl(&s, "DELETE", "/api/bans/127.0.0.9", Some(&token.token[..32]), &[]);
    assert_eq!(code, 401, "a prefix of the token");
    let (code, _) = curl(&s, "POST", "/api/reload", None, &[]);
    assert_eq!(code, 401, "a reload without a token");
    let log = s.log_when(|log| log.matches("admin_unauthorized").count() >= 8);
    assert!(log.contains("no token") && log.contains("wrong token"), "{log}");
    assert!(!log.contains(&token.token), "the token must never be logged");
    let (code, body) = curl(&s, "GET", "/api/sessions", Some(&token.token), &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["sessions"], serde_json::json!([]));
    let (code, _) = curl(&s, "GET", "/nowhere", Some(&token.token), &[]);
    assert_eq!(code, 404);
}

#[test]
fn metrics_show_what_happened_and_pass_promtool() {
    if !require_clients(&["curl", "promtool"]) {
        return;
    }
    let (s, token) = admin_server("");
    let download = random_bytes(300_000);
    fs::write(s.home("alice").join("down.bin"), &download).unwrap();
    let upload = random_bytes(123_457);

    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    assert_eq!(sha256_bytes(&c.retr("down.bin")), sha256_bytes(&download));
    c.stor("up.bin", &upload);
    assert_eq!(
        sha256_file(&s.home("alice").join("up.bin")),
        sha256_bytes(&upload)
    );
    // A foreign PORT target: refused by the foreign-address rule.
    let r = c.cmd("PORT 127,0,0,3,200,1");
    assert_eq!(r.code, 504, "{r}");
    // A stranger on a passive port: closed, counted by rule and as a connection closed.
    let passive = c.pasv();
    let mut thief = connect_from([127, 0, 0, 3].into(), passive);
    thief.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(std::io::Read::read(&mut thief, &mut byte), Ok(0) | Err(_)),
        "the stranger's connection stayed open"
    );
    let mut failed = s.ctrl();
    failed.expect("USER alice", 331);
    failed.expect("PASS not-the-password", 530);

    let (code, metrics) = curl(&s, "GET", "/metrics", Some(&token.token), &["-D", "/dev/stderr"]);
    assert_eq!(code, 200, "{metrics}");
    assert_eq!(sample(&metrics, "fxpd_logins_total{result=\"ok\"}"), 1.0);
    assert_eq!(sample(&metrics, "fxpd_logins_total{result=\"failed\"}"), 1.0);
    assert_eq!(sample(&metrics, "fxpd_logins_total{result=\"locked_out\"}"), 0.0);
    assert_eq!(
        sample(
            &metrics,
            "fxpd_transfers_started_total{direction=\"download\",storage=\"fs\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "fxpd_transfers_started_total{direction=\"upload\",storage=\"fs\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "fxpd_transfers_finished_total{direction=\"upload\",outcome=\"complete\",storage=\"fs\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&metrics, "fxpd_transfer_bytes_total{direction=\"download\"}"),
        download.len() as f64
    );
    assert_eq!(
        sample(&metrics, "fxpd_transfer_bytes_total{direction=\"upload\"}"),
        upload.len() as f64
    );
    // The foreign PORT target and the stranger on the passive port.
    assert_eq!(
        sample(
            &metrics,
            "fxpd_data_connection_refusals_total{rule=\"foreign-address\"}"
        ),
        2.0
    );
    assert_eq!(sample(&metrics, "fxpd_passive_connections_closed_total"), 1.0);
    // The PASV listener is still open (no transfer took it); the default range has 1000 ports.
    assert_eq!(sample(&metrics, "fxpd_passive_ports{state=\"in_use\"}"), 1.0);
    assert_eq!(sample(&metrics, "fxpd_passive_ports{state=\"free\"}"), 999.0);
    assert_eq!(
        sample(
            &metrics,
            "fxpd_data_connection_refusals_total{rule=\"peer-not-listed\"}"
        ),
        0.0
    );
    // Two control connections are open: alice's, and the one whose login failed.
    assert_eq!(sample(&metrics, "fxpd_sessions{state=\"logged_in\"}"), 1.0);
    assert_eq!(sample(&metrics, "fxpd_sessions{state=\"not_logged_in\"}"), 1.0);
    assert_eq!(
        sample(&metrics, "fxpd_transfers_running{direction=\"upload\"}"),
        0.0
    );
    assert!(metrics.contains("# HELP fxpd_transfer_bytes_total "), "{metrics}");
    assert!(metrics.contains("fxpd_build_info{version=\""), "{metrics}");

    let mut promtool = Command::new("promtool");
    promtool
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = promtool.spawn().expect("promtool");
    child.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{metrics}",
        describe(&out)
    );

    // A scraper that asks for OpenMetrics gets it.
    let (code, open) = curl(
        &s,
        "GET",
        "/metrics",
        Some(&token.token),
        &["-H", "Accept: application/openmetrics-text; version=1.0.0"],
    );
    assert_eq!(code, 200);
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    assert!(open.contains("# TYPE fxpd_logins counter"), "{open}");
    c.expect("QUIT", 221);
}

/// A client that writes `total` bytes to `data` (at whatever pace the server reads), until
/// it is told to stop or the connection breaks; returns what it wrote.
fn endless_writer(
    mut data: std::net::TcpStream,
    total: u64,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let chunk = random_bytes(64 * 1024);
        let mut written = 0u64;
        while written < total && !stop.load(Ordering::Relaxed) {
            match data.write_all(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(_) => break,
            }
        }
        written
    })
}

#[test]
fn kicking_a_session_mid_upload_aborts_it_and_leaves_no_file_and_others_untouched() {
    if !require_client("curl") {
        return;
    }
    // 4 MiB/s per session: a 200 MiB upload would take nearly a minute.
    let (s, token) = admin_server("[limits]\nupload_bytes_per_sec = 4194304");
    let mut bob = s.login("bob", PASS);
    bob.expect("TYPE I", 200);
    let keep = random_bytes(200_000);
    bob.stor("keep.bin", &keep);

    let mut alice = s.login("alice", PASS);
    alice.expect("TYPE I", 200);
    let data = alice.pasv_connect();
    alice.expect_class("STOR big.bin", 1);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = endless_writer(data, 200 << 20, stop.clone());

    // The upload shows in `fxpd sessions --json` with its bytes growing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (id, bytes) = loop {
        let out = fxpd_cli(&s, &["sessions", "--json"]);
        assert!(out.status.success(), "{}", describe(&out));
        let list = json(&String::from_utf8_lossy(&out.stdout));
        let running = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["user"] == "alice" && s["transfer"].is_object())
            .cloned();
        if let Some(session) = running {
            let t = &session["transfer"];
            assert_eq!(t["direction"], "upload", "{session}");
            assert_eq!(t["file"], "/big.bin", "{session}");
            let peer: SocketAddr = t["peer"].as_str().unwrap().parse().unwrap();
            assert_eq!(peer.ip(), IpAddr::from([127, 0, 0, 1]), "{session}");
            let bytes = t["bytes"].as_u64().unwrap();
            if bytes > 1 << 20 {
                break (session["id"].as_u64().unwrap(), bytes);
            }
        }
        assert!(Instant::now() < deadline, "the upload never showed: {list}");
        thread::sleep(Duration::from_millis(100));
    };
    let table = fxpd_cli(&s, &["sessions"]);
    let table_text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table_text.contains("alice") && table_text.contains("/big.bin"),
        "{table_text}"
    );

    let kick = fxpd_cli(&s, &["sessions", "kick", &id.to_string()]);
    assert!(kick.status.success(), "{}", describe(&kick));
    let r = alice.read_reply();
    assert_eq!(r.code, 426, "the kicked upload: {r}");
    let r = alice.read_reply();
    assert_eq!(r.code, 421, "then the session: {r}");
    assert!(
        alice.wait_closed(Duration::from_secs(10)),
        "the control connection stays open"
    );
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written < 200 << 20, "the upload was not cut short");
    assert!(bytes <= written);
    // SECURITY: nothing of the kicked upload is left.
    let big = s.home("alice").join("big.bin");
    let deadline = Instant::now() + Duration::from_secs(10);
    while big.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(!big.exists(), "a partial file is left after the kick");
    let log = s.log_when(|log| log.contains("session_kicked"));
    assert!(log.contains("partial upload removed"), "{log}");

    // Bob's session goes on: its control connection answers and its files move whole.
    bob.expect("NOOP", 200);
    assert_eq!(sha256_bytes(&bob.retr("keep.bin")), sha256_bytes(&keep));
    let more = random_bytes(150_001);
    bob.stor("more.bin", &more);
    assert_eq!(sha256_file(&s.home("bob").join("more.bin")), sha256_bytes(&more));
    // The kicked session is gone from the list; kicking it again is a 404.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = curl(&s, "GET", "/api/sessions", Some(&token.token), &[]);
        assert_eq!(code, 200);
        let users: Vec<_> = json(&body)["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["user"].clone())
            .collect();
        if users == vec![serde_json::json!("bob")] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kicked session is still listed: {body}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = curl(
        &s,
        "DELETE",
        &format!("/api/sessions/{id}"),
        Some(&token.token),
        &[],
    );
    assert_eq!(code, 404);
    let (_, metrics) = curl(&s, "GET", "/metrics", Some(&token.token), &[]);
    assert_eq!(
        sample(
            &metrics,
            "fxpd_transfers_finished_total{direction=\"upload\",outcome=\"kicked\",storage=\"fs\"}"
        ),
        1.0
    );
    assert_eq!(sample(&metrics, "fxpd_sessions_kicked_total"), 1.0);
}

#[test]
fn lifting_a_ban_lets_the_address_in_again() {
    let (s, _token) = admin_server("[fxp]\nban_threshold = 2\nban_window_secs = 60\nban_secs = 600");
    let banned: IpAddr = [127, 0, 0, 3].into();
    let mut c = Ctrl::connect_from(banned, s.addr());
    c.login("alice", PASS);
    c.expect("PORT 127,0,0,4,200,1", 504);
    c.expect("PORT 127,0,0,4,200,1", 504);
    let mut refused = Ctrl::over(connect_from(banned, s.addr()), b"");
    assert_eq!(refused.read_reply().code, 421, "the address is banned");

    let out = fxpd_cli(&s, &["bans"]);
    assert!(out.status.success(), "{}", describe(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("127.0.0.3") && listed.contains("banned"),
        "{listed}"
    );
    // Another address is untouched by the lift, and lifting what is not banned says so.
    let out = fxpd_cli(&s, &["bans", "lift", "127.0.0.9"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let out = fxpd_cli(&s, &["bans", "lift", "127.0.0.3"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ban lifted"),
        "{}",
        describe(&out)
    );

    let mut again = Ctrl::connect_from(banned, s.addr());
    again.login("alice", PASS);
    again.expect("NOOP", 200);
    let out = fxpd_cli(&s, &["bans"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no bans"),
        "{}",
        describe(&out)
    );
    s.log_when(|log| log.contains("ban_lifted"));
}

#[test]
fn reload_through_the_admin_listener_says_what_changed_or_why_not() {
    let (s, _token) = admin_server("");
    let base = s.config_text.clone();
    // Top-level keys come before the first table.
    fs::write(&s.config_path, format!("banner = \"Changed banner.\"\n{base}")).unwrap();
    let out = fxpd_cli(&s, &["reload"]);
    assert!(out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("changed: banner"), "{said}");
    let greeting = Ctrl::connect_no_greeting(s.addr()).read_reply();
    assert!(greeting.text().contains("Changed banner."), "{greeting}");

    // SECURITY: a reload may not move the admin listener beyond loopback without TLS: refused,
    // at the API and on SIGHUP, and the old configuration stays.
    let open = format!("banner = \"Changed banner.\"\n{base}")
        .replace("listen = \"127.0.0.1:0\"", "listen = \"192.0.2.1:2180\"");
    assert_ne!(open, base, "test bug: the admin address is not in the file");
    fs::write(&s.config_path, &open).unwrap();
    let out = fxpd_cli(&s, &["reload"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.certificate") && err.contains("HTTP 422"),
        "{err}"
    );
    let line = s.reload().expect_err("SIGHUP must refuse it too");
    assert!(line.contains("tls.certificate"), "{line}");
    let greeting = Ctrl::connect_no_greeting(s.addr()).read_reply();
    assert!(
        greeting.text().contains("Changed banner."),
        "the refused reload changed something: {greeting}"
    );
}

#[test]
fn a_non_loopback_admin_address_without_tls_is_refused_at_start() {
    let token = make_token();
    let table = admin_table(&token).replace("127.0.0.1:0", "192.0.2.1:2180");
    let err = Server::builder()
        .config(&table)
        .try_start()
        .err()
        .expect("fxpd started with a clear-text admin listener beyond loopback");
    assert!(
        err.stderr.contains("admin.listen") && err.stderr.contains("tls.certificate"),
        "{err:?}"
    );
    // No token file, no admin listener.
    let missing = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {}\n",
        toml_path(&token.path.with_file_name("absent"))
    );
    let err = Server::builder()
        .config(&missing)
        .try_start()
        .err()
        .expect("fxpd started an admin listener without its token file");
    assert!(err.stderr.contains("fxpd admin token"), "{err:?}");
}

#[test]
fn https_when_a_certificate_is_set_and_the_commands_pin_it() {
    if !require_client("curl") {
        return;
    }
    let cert = Cert::new();
    let (s, token) = admin_server(&cert.tls_table(""));
    let url = s.admin.clone().unwrap();
    assert!(url.starts_with("https://"), "{url}");
    let port = url.rsplit(':').next().unwrap().to_owned();
    let work = s.dir.path().join("curl");
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "--max-time", "30", "-w", "\n%{http_code}", "--cacert"])
        .arg(&cert.cert)
        .args(["--resolve", &format!("{TLS_NAME}:{port}:127.0.0.1")])
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", token.token))
        .arg(format!("https://{TLS_NAME}:{port}/api/bans"));
    let out = run_with_timeout(&mut c, 60);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.ends_with("\n200"),
        "{}",
        describe(&out)
    );
    let mut alice = s.ctrl();
    alice.auth_tls(&client_config(&cert, true));
    alice.login("alice", PASS);
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "--max-time", "30", "--cacert"])
        .arg(&cert.cert)
        .args(["--resolve", &format!("{TLS_NAME}:{port}:127.0.0.1")])
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", token.token))
        .arg(format!("https://{TLS_NAME}:{port}/metrics"));
    let out = run_with_timeout(&mut c, 60);
    let metrics = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        sample(
            &metrics,
            "fxpd_tls_handshakes_total{channel=\"control\",result=\"full\"}"
        ),
        1.0,
        "{}",
        describe(&out)
    );
    assert_eq!(
        sample(
            &metrics,
            "fxpd_tls_handshakes_total{channel=\"data\",result=\"failed\"}"
        ),
        0.0
    );
    let out = fxpd_cli(&s, &["sessions"]);
    assert!(out.status.success(), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("alice") && table.contains(" yes "),
        "{}",
        describe(&out)
    );
    // Plain HTTP gets nothing from an HTTPS listener.
    let plain = url.replace("https://", "http://");
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "--max-time", "10"])
        .arg(format!("{plain}/api/bans"));
    let out = run_with_timeout(&mut c, 30);
    assert!(!out.status.success(), "{}", describe(&out));
}

#[test]
fn the_status_page_opens_with_the_token_shows_a_transfer_and_escapes_client_text() {
    if !require_client("curl") {
        return;
    }
    // The download below must still be running when the page is fetched: at 1 MiB/s its
    // 4 MiB take about 4 s, whatever the loopback's socket buffers could have swallowed.
    let (s, token) = admin_server("[limits]\ndownload_bytes_per_sec = 1048576");
    // Without a cookie: the login form, no figures.
    let (code, form) = curl(&s, "GET", "/", None, &[]);
    assert_eq!(code, 200);
    assert!(
        form.contains("name=\"token\"") && !form.contains("id=\"sessions\""),
        "{form}"
    );
    // A wrong token: 401, logged like the API's.
    let (code, _) = curl(
        &s,
        "POST",
        "/login",
        None,
        &["--data", "token=0123456789abcdef0123456789abcdef"],
    );
    assert_eq!(code, 401);
    s.log_when(|log| log.contains("admin_unauthorized") && log.contains("/login"));
    // The right one: a cookie that is HttpOnly, SameSite=Strict and not the token.
    let headers = s.dir.path().join("login-headers");
    let (code, _) = curl(
        &s,
        "POST",
        "/login",
        None,
        &[
            "--data",
            &format!("token={}", token.token),
            "-D",
            headers.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 303);
    let headers = fs::read_to_string(&headers).unwrap();
    let set_cookie = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {headers}"));
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains(&token.token),
        "the cookie holds the token itself"
    );
    let cookie = set_cookie
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    // A running download with a name that is markup.
    let evil = "<img src=x onerror=alert(1)>.bin";
    fs::write(s.home("alice").join(evil), random_bytes(4 << 20)).unwrap();
    let mut alice = s.login("alice", PASS);
    alice.expect("TYPE I", 200);
    let mut data = alice.start_passive(&format!("RETR {evil}"));
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut data, &mut first).unwrap();
    let (code, page) = curl(&s, "GET", "/", None, &["-H", &format!("Cookie: {cookie}")]);
    assert_eq!(code, 200);
    assert!(
        page.contains("id=\"sessions\"") && page.contains("alice"),
        "{page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;.bin"),
        "the file name must be escaped: {page}"
    );
    assert!(!page.contains("<img"), "client text became markup: {page}");
    assert!(
        page.contains("<progress"),
        "no progress bar for a download of known size: {page}"
    );
    assert!(page.contains("foreign-address"), "no refusals table: {page}");
    // The cookie opens the page only.
    let (code, _) = curl(
        &s,
        "GET",
        "/api/sessions",
        None,
        &["-H", &format!("Cookie: {cookie}")],
    );
    assert_eq!(code, 401, "the page's cookie must not open the API");
    drop(data);
}

#[test]
fn silent_connections_cannot_take_more_than_their_share_of_the_admin_listener() {
    if !require_client("curl") {
        return;
    }
    let (s, token) = admin_server("");
    let addr: SocketAddr = s
        .admin
        .as_ref()
        .unwrap()
        .split("://")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // 64 connections that never send a request hold every seat ...
    let silent: Vec<std::net::TcpStream> = (0..64)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(300));
    // ... and the next one is closed at once instead of queueing without bound.
    let mut extra = std::net::TcpStream::connect(addr).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    extra
        .write_all(b"GET /api/sessions HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok();
    let mut buf = [0u8; 64];
    assert!(
        matches!(std::io::Read::read(&mut extra, &mut buf), Ok(0) | Err(_)),
        "a 65th connection was served"
    );
    s.log_when(|log| log.contains("64 open already"));
    // Their seats come back when they close.
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, _) = curl(&s, "GET", "/api/sessions", Some(&token.token), &[]);
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the listener did not recover");
        thread::sleep(Duration::from_millis(100));
    }
}

/// The status page as a browser shows it: headless Chromium opens `/`, gets the login form,
/// types the token into it and submits it (the cookie is set by the real `/login` and its
/// redirect), then sees the running download with its progress bar. The page is saved as a
/// PNG (`status-page.png` in the server's directory; also copied to the file
/// `FXPD_STATUS_SCREENSHOT` names, when set, to look at it).
#[test]
fn the_status_page_in_headless_chromium_shows_a_running_transfer() {
    if !require_clients(&["chromium"]) {
        return;
    }
    // 3 MiB at 256 KiB/s: about 12 seconds, long enough to look at it.
    let (s, token) = admin_server("[limits]\ndownload_bytes_per_sec = 262144");
    let name = "quarterly-report.bin";
    let content = random_bytes(3 << 20);
    fs::write(s.home("alice").join(name), &content).unwrap();
    let mut alice = s.login("alice", PASS);
    alice.expect("TYPE I", 200);
    let line = format!("RETR {name}");
    let mut data = alice.start_passive(&line);
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut data, &mut first).unwrap();
    let reader = thread::spawn(move || {
        let mut rest = read_to_end_deadline(&mut data, Duration::from_secs(120));
        rest.insert(0, first[0]);
        rest
    });

    let url = s.admin.clone().unwrap();
    let mut browser = Browser::start(s.dir.path());
    browser.navigate(&format!("{url}/"));
    let form = browser.dom();
    assert!(
        form.contains("name=\"token\"") && !form.contains("id=\"sessions\""),
        "without the cookie the page must be the login form: {form}"
    );
    // Type the token into the form and press its button, as a person would.
    browser.eval("document.querySelector('input[name=token]').focus()");
    browser.call("Input.insertText", serde_json::json!({ "text": token.token }));
    browser.forget_events();
    browser.eval("document.querySelector('button[type=submit]').click()");
    browser.wait_event("Page.loadEventFired");
    let page = browser.dom();
    assert!(
        page.contains("id=\"sessions\""),
        "the login did not open the page: {page}"
    );
    let row = browser.eval(
        "Array.from(document.querySelectorAll('#sessions tr'))\
         .map(r => r.innerText).find(t => t.includes('alice')) || ''",
    );
    let row = row.as_str().unwrap();
    assert!(
        row.contains(name) && row.contains("download"),
        "the session's row does not show the transfer: {row:?}\n{page}"
    );
    let bar = browser.eval(
        "(() => { const p = document.querySelector('#sessions progress'); \
         return p ? [p.value, p.max] : null })()",
    );
    let (value, max) = (bar[0].as_f64(), bar[1].as_f64());
    assert!(
        matches!((value, max), (Some(v), Some(m)) if v > 0.0 && v < m && m == content.len() as f64),
        "no progress bar part-way through the download: {bar}\n{page}"
    );
    // The cookie is not readable by script (HttpOnly) and was never the token.
    let cookies = browser.eval("document.cookie");
    assert_eq!(cookies, serde_json::json!(""), "a script can read the cookie");
    assert!(!page.contains(&token.token), "the page shows the token");
    let shot = s.dir.path().join("status-page.png");
    browser.screenshot(&shot);
    assert!(fs::metadata(&shot).unwrap().len() > 1000, "an empty screenshot");
    if let Some(keep) = std::env::var_os("FXPD_STATUS_SCREENSHOT") {
        fs::copy(&shot, keep).unwrap();
    }
    drop(browser);

    // The download was only watched: it ends whole.
    let got = reader.join().unwrap();
    Ctrl::assert_transfer_end(&line, &alice.read_reply());
    assert_eq!(sha256_bytes(&got), sha256_bytes(&content));
}

/// A kicked upload is charged to its account's quota for the file it leaves: an APPE keeps
/// what the file held and what arrived before the kick, and `quota.json` counts all of it.
#[test]
fn a_kicked_append_is_charged_for_what_it_left() {
    let (s, _token) = admin_server("[limits]\nupload_bytes_per_sec = 4194304");
    let o = cli_user(&s.users_file, &["set", "alice", "--quota-bytes", "1000000000"]);
    assert_success(&o, "fxpd user set alice --quota-bytes");
    s.reload().unwrap();
    let mut alice = s.login("alice", PASS);
    alice.expect("TYPE I", 200);
    alice.stor("log.bin", &random_bytes(100_000));
    let data = alice.pasv_connect();
    alice.expect_class("APPE log.bin", 1);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = endless_writer(data, 200 << 20, stop.clone());
    let file = s.home("alice").join("log.bin");
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < 1 << 20 {
        assert!(Instant::now() < deadline, "the append never grew the file");
        thread::sleep(Duration::from_millis(50));
    }
    let out = fxpd_cli(&s, &["sessions", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let list = json(&String::from_utf8_lossy(&out.stdout));
    let id = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user"] == "alice" && s["transfer"].is_object())
        .unwrap_or_else(|| panic!("no running transfer: {list}"))["id"]
        .as_u64()
        .unwrap();
    let kick = fxpd_cli(&s, &["sessions", "kick", &id.to_string()]);
    assert!(kick.status.success(), "{}", describe(&kick));
    assert_eq!(alice.read_reply().code, 426);
    assert_eq!(alice.read_reply().code, 421);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // An append is not removed by a kick; its charge is the whole file.
    let usage = s.users_file.parent().unwrap().join("quota.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let len = fs::metadata(&file).unwrap().len();
        let text = fs::read_to_string(&usage).unwrap_or_default();
        let charged = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["alice"]["bytes"].as_u64());
        if charged == Some(len) && len > 1 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "file {len} bytes, charged {charged:?}");
        thread::sleep(Duration::from_millis(50));
    }
}
