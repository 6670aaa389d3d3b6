//! What a reload (SIGHUP) applies, setting by setting, on the real binary: each test changes
//! one group of settings in the configuration file, reloads, waits for the server's
//! `configuration reloaded` line, and checks that the new value is what decides from the
//! moment docs/configuration.md ("Reload") says it does (the next connection, login,
//! command, listing, PASV or transfer), while what is read only at start keeps its start-up
//! value.

mod common;

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// `127.0.0.n`: the loopback addresses clients connect from.
fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Writes the start-up configuration with `extra` TOML merged over it, sends SIGHUP and waits
/// for the server to say it applied it.
fn reload_with(s: &Server, extra: &str) {
    s.write_config_merged(extra);
    s.reload()
        .unwrap_or_else(|line| panic!("the reload of {extra:?} was refused: {line}"));
}

/// The `settings` of every `reload_needs_restart` event so far (the server logs JSON).
fn needs_restart_events(s: &Server) -> Vec<String> {
    s.stderr()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["fields"]["event"] == "reload_needs_restart")
        .map(|e| e["fields"]["settings"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A control connection from `127.0.0.n`, greeted with 220.
fn conn_from(s: &Server, n: u8) -> Ctrl {
    Ctrl::connect_from(lo(n), s.addr())
}

/// `name` logged in from `127.0.0.n`.
fn login_from(s: &Server, n: u8, name: &str) -> Ctrl {
    let mut c = conn_from(s, n);
    c.login(name, PASS);
    c
}

/// USER and PASS for `name`; returns the reply to PASS (or to USER, when that one is final).
fn try_login(c: &mut Ctrl, name: &str, pass: &str) -> Reply {
    let r = c.cmd(&format!("USER {name}"));
    if r.code != 331 {
        return r;
    }
    c.cmd(&format!("PASS {pass}"))
}

/// Reads a stream to its end and says how long that took.
fn timed_read(data: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let bytes = read_to_end_deadline(data, Duration::from_secs(30));
    (bytes, start.elapsed())
}

/// Passive RETR of `name`: the bytes and how long the data connection took to deliver them.
fn timed_retr(c: &mut Ctrl, name: &str) -> (Vec<u8>, Duration) {
    let line = format!("RETR {name}");
    let mut data = c.start_passive(&line);
    let (bytes, took) = timed_read(&mut data);
    Ctrl::assert_transfer_end(&line, &c.read_reply());
    (bytes, took)
}

// ---------------------------------------------------------------------------------------------
// [limits]: session caps and budgets (the next connection or login)
// ---------------------------------------------------------------------------------------------

#[test]
fn session_caps_reload_for_the_next_login() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nmax_sessions = 10\nmax_sessions_per_ip = 5\n")
        .start();
    let mut a = login_from(&s, 1, "alice");
    let mut b = login_from(&s, 1, "alice");

    // Per address: two are open, the cap comes down to two.
    reload_with(&s, "[limits]\nmax_sessions = 10\nmax_sessions_per_ip = 2\n");
    let mut third = conn_from(&s, 1);
    let r = try_login(&mut third, "alice", PASS);
    assert_eq!(
        r.first(),
        "421 Too many sessions from your address, try again later.",
        "a third login from one address after max_sessions_per_ip = 2"
    );
    // Another address still logs in: it is the address's cap, not the total.
    let mut other = login_from(&s, 3, "alice");
    // The open sessions are not closed by it.
    a.expect("NOOP", 200);
    b.expect("NOOP", 200);

    // In total: three are open, the cap comes down to three.
    reload_with(&s, "[limits]\nmax_sessions = 3\nmax_sessions_per_ip = 2\n");
    let mut fourth = conn_from(&s, 4);
    let r = try_login(&mut fourth, "alice", PASS);
    assert_eq!(
        r.first(),
        "421 Too many users logged in, try again later.",
        "a fourth login in all after max_sessions = 3"
    );
    other.expect("NOOP", 200);

    // Raised again: the very next login gets in.
    reload_with(&s, "[limits]\nmax_sessions = 4\nmax_sessions_per_ip = 2\n");
    let _fourth = login_from(&s, 4, "alice");
}

#[test]
fn the_budget_of_connections_not_logged_in_reloads_for_the_next_connection() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nmax_unauthenticated = 20\nmax_unauthenticated_per_ip = 5\n")
        .start();
    let _w1 = conn_from(&s, 1);
    let _w2 = conn_from(&s, 1);
    // Under the start-up budget (5) a third one is greeted.
    drop(conn_from(&s, 1));

    reload_with(
        &s,
        "[limits]\nmax_unauthenticated = 20\nmax_unauthenticated_per_ip = 2\n",
    );
    let mut refused = Ctrl::over(connect_from(lo(1), s.addr()), b"");
    let r = refused.read_reply();
    assert_eq!(
        r.first(),
        "421 Too many connections from your address.",
        "a third connection not logged in after max_unauthenticated_per_ip = 2"
    );
    // Another address is within its own budget.
    let _w3 = conn_from(&s, 3);
}

// ---------------------------------------------------------------------------------------------
// [limits]: timeouts and line length (the next connection)
// ---------------------------------------------------------------------------------------------

#[test]
fn the_login_timeout_reloads_for_the_next_connection() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nlogin_timeout_secs = 60\n")
        .start();
    let mut before = s.ctrl();
    reload_with(&s, "[limits]\nlogin_timeout_secs = 1\n");
    let mut after = s.ctrl();
    let start = after.expect_unprompted(
        "421 Login timeout, closing control connection.",
        Duration::from_secs(5),
    );
    // The connection made before the reload keeps the timeout it started with (60 s): more
    // than a second later it still logs in.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(start.elapsed()));
    before.login("alice", PASS);
    before.expect("NOOP", 200);
}

#[test]
fn the_idle_timeout_reloads_for_the_next_connection() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nidle_timeout_secs = 60\n")
        .start();
    let mut before = s.login("alice", PASS);
    reload_with(&s, "[limits]\nidle_timeout_secs = 1\n");
    // A command after the reload: the session reads the settings in force for it, not
    // its timeout.
    before.expect("NOOP", 200);
    let mut after = s.login("alice", PASS);
    let start = after.expect_unprompted(
        "421 Idle timeout, closing control connection.",
        Duration::from_secs(5),
    );
    // The session opened before the reload keeps its 60 s.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(start.elapsed()));
    before.expect("NOOP", 200);
}

#[test]
fn the_line_length_reloads_for_the_next_connection() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nmax_line_len = 8192\n")
        .start();
    // 1000 bytes with CRLF: under the start-up limit, over the reloaded one.
    let name = "a".repeat(1000 - "USER \r\n".len());
    let line = format!("USER {name}");
    let fits = format!("331 Password required for {name}.");
    let mut before = s.ctrl();
    assert_eq!(before.cmd(&line).first(), fits);

    reload_with(&s, "[limits]\nmax_line_len = 512\n");
    let mut after = s.ctrl();
    let r = after.cmd(&line);
    assert_eq!(r.first(), "500 Command line too long.");
    // The connection goes on, and takes a line under the new limit.
    after.expect("NOOP", 200);
    // The connection made before the reload keeps the limit it started with.
    assert_eq!(before.cmd(&line).first(), fits);
}

// ---------------------------------------------------------------------------------------------
// listing_style and passive.* (the next listing, the next PASV)
// ---------------------------------------------------------------------------------------------

#[test]
fn listing_style_reloads_for_the_next_listing_of_an_open_session() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("listing_style = \"unix\"\n")
        .start();
    write_file(&s.home("alice").join("f.txt"), b"12345");
    std::fs::create_dir(s.home("alice").join("sub")).unwrap();
    let mut c = s.login("alice", PASS);
    let unix = c.listing("LIST");
    let lines: Vec<&str> = unix.lines().collect();
    assert_eq!(lines.len(), 2, "{unix}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("-rw") && l.ends_with(" f.txt"))
            && lines.iter().any(|l| l.starts_with('d') && l.ends_with(" sub")),
        "UNIX style at start:\n{unix}"
    );
    assert_eq!(c.expect("SYST", 215).first(), "215 UNIX Type: L8");

    reload_with(&s, "listing_style = \"msdos\"\n");
    let dos = c.listing("LIST");
    let lines: Vec<&str> = dos.lines().collect();
    assert_eq!(lines.len(), 2, "{dos}");
    // `11-24-26  08:04PM       <DIR>          sub`, `11-24-26  08:04PM       5 f.txt`.
    let dated = |l: &str| {
        let b = l.as_bytes();
        b.len() > 17 && b[2] == b'-' && b[5] == b'-' && (&l[15..17] == "AM" || &l[15..17] == "PM")
    };
    assert!(
        lines.iter().all(|l| dated(l)),
        "MS-DOS style after the reload:\n{dos}"
    );
    assert!(
        lines.iter().any(|l| l.contains("<DIR>") && l.ends_with(" sub")),
        "{dos}"
    );
    let file = lines
        .iter()
        .find(|l| l.ends_with(" f.txt"))
        .expect("f.txt listed");
    assert!(file.contains(" 5 f.txt") && !file.contains("<DIR>"), "{dos}");
    assert_eq!(c.expect("SYST", 215).first(), "215 Windows_NT");
}

#[test]
fn passive_ports_reload_for_the_next_pasv_of_an_open_session() {
    const FIRST: (u16, u16) = (47_100, 47_149);
    const SECOND: (u16, u16) = (47_200, 47_249);
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config(&format!("[passive]\nports = \"{}-{}\"\n", FIRST.0, FIRST.1))
        .start();
    let mut c = s.login("alice", PASS);
    let port = c.pasv().port();
    assert!(
        (FIRST.0..=FIRST.1).contains(&port),
        "PASV port {port} outside the start-up range"
    );
    reload_with(&s, &format!("[passive]\nports = \"{}-{}\"\n", SECOND.0, SECOND.1));
    let port = c.pasv().port();
    assert!(
        (SECOND.0..=SECOND.1).contains(&port),
        "PASV port {port} after the reload is outside the new range {SECOND:?}"
    );
    let port = c.epsv().port();
    assert!(
        (SECOND.0..=SECOND.1).contains(&port),
        "EPSV port {port} after the reload is outside the new range {SECOND:?}"
    );
    // The data connection on it works.
    write_file(&s.home("alice").join("f.txt"), b"hello");
    assert_eq!(c.retr("f.txt"), b"hello");
}

// ---------------------------------------------------------------------------------------------
// Settings read only at start
// ---------------------------------------------------------------------------------------------

#[test]
fn the_login_guard_keeps_its_start_up_threshold_after_a_reload() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nmax_login_failures = 3\nlockout_secs = 600\n")
        .arg("--log-json")
        .start();
    reload_with(&s, "[limits]\nmax_login_failures = 10\n");
    assert_eq!(
        needs_restart_events(&s),
        ["limits.max_login_failures"],
        "the reload names the setting that waits for a restart"
    );
    // Three failures, each on a new connection: the start-up threshold locks the address.
    for _ in 0..3 {
        let mut c = s.ctrl();
        c.expect("USER alice", 331);
        assert_eq!(c.cmd("PASS wrong-password").first(), "530 User cannot log in.");
    }
    let mut c = s.ctrl();
    assert_eq!(
        try_login(&mut c, "alice", PASS).first(),
        "530 User cannot log in: too many failed attempts, try later.",
        "the right password after three failures (the start-up max_login_failures)"
    );
}

#[test]
fn one_connection_closes_after_the_start_up_max_login_failures() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nmax_login_failures = 10\n")
        .arg("--log-json")
        .start();
    reload_with(&s, "[limits]\nmax_login_failures = 2\n");
    assert_eq!(needs_restart_events(&s), ["limits.max_login_failures"]);
    let mut c = s.ctrl();
    for failure in 1..=3 {
        c.expect("USER alice", 331);
        assert_eq!(
            c.cmd("PASS wrong-password").first(),
            "530 User cannot log in.",
            "failure {failure}"
        );
    }
    // Still open after three: the connection closes at the start-up threshold (10), not at
    // the reloaded 2 (a 421 would be the next reply read).
    c.expect("USER alice", 331);
}

#[test]
fn a_reloaded_listen_address_is_not_bound_until_a_restart() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .arg("--log-json")
        .start();
    // A port free on 127.0.0.3 now.
    let probe = TcpListener::bind(SocketAddr::new(lo(3), 0)).unwrap();
    let new_addr = probe.local_addr().unwrap();
    drop(probe);
    reload_with(&s, &format!("listen = [\"127.0.0.2:0\", \"{new_addr}\"]\n"));
    assert_eq!(needs_restart_events(&s), ["listen"]);
    match TcpStream::connect_timeout(&new_addr, Duration::from_secs(5)) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(mut stream) => {
            let mut greeting = [0u8; 64];
            let n = stream.read(&mut greeting).unwrap_or(0);
            panic!(
                "{new_addr} was bound by the reload: {:?}",
                String::from_utf8_lossy(&greeting[..n])
            );
        }
    }
    // The start-up listener still serves.
    let mut c = s.login("alice", PASS);
    c.expect("NOOP", 200);
}

// ---------------------------------------------------------------------------------------------
// [anonymous] and root (new logins; anonymous.enabled/write for open sessions too)
// ---------------------------------------------------------------------------------------------

#[test]
fn anonymous_access_reloads_for_the_next_login() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[anonymous]\nenabled = false\n")
        .start();
    write_file(&s.root.join("pub.txt"), b"public");
    let mut c = s.ctrl();
    assert_eq!(
        try_login(&mut c, "anonymous", "guest@example.com").first(),
        "530 User cannot log in: anonymous access is disabled."
    );

    reload_with(&s, "[anonymous]\nenabled = true\n");
    let mut c = s.ctrl();
    assert_eq!(
        c.cmd("USER anonymous").first(),
        "331 Anonymous access allowed, send identity (e-mail name) as password."
    );
    assert_eq!(
        c.cmd("PASS guest@example.com").first(),
        "230 Anonymous user logged in."
    );
    assert_eq!(c.retr("pub.txt"), b"public");
}

#[test]
fn a_new_root_is_seen_by_new_logins_and_an_open_session_keeps_its_tree() {
    let s = Server::builder().user("alice", PASS, "alice", false).start();
    write_file(&s.home("alice").join("old.txt"), b"old root");
    let new_root = s.dir.path().join("root2");
    write_file(&new_root.join("alice").join("new.txt"), b"new root");
    let mut before = s.login("alice", PASS);
    assert_eq!(before.listing("NLST"), "old.txt\r\n");

    reload_with(&s, &format!("root = {:?}\n", new_root.to_str().unwrap()));
    let mut after = s.login("alice", PASS);
    assert_eq!(
        after.listing("NLST"),
        "new.txt\r\n",
        "a new login after the reload"
    );
    assert_eq!(after.retr("new.txt"), b"new root");
    // The session logged in before the reload stays in the home it logged in to.
    assert_eq!(before.listing("NLST"), "old.txt\r\n");
    assert_eq!(before.retr("old.txt"), b"old root");
}

#[test]
fn anonymous_write_and_enabled_reload_for_an_open_session_at_its_next_command() {
    let s = Server::builder()
        .config("[anonymous]\nenabled = true\nwrite = false\n")
        .start();
    let mut c = s.login("anonymous", "guest@example.com");
    assert_eq!(
        c.cmd("MKD one").first(),
        "550 Access is denied: no mkdir right at /.",
        "read-only anonymous at start"
    );

    reload_with(&s, "[anonymous]\nenabled = true\nwrite = true\n");
    assert_eq!(c.cmd("MKD one").first(), "257 \"/one\" directory created.");
    c.stor("one/f.txt", b"uploaded");
    assert_eq!(std::fs::read(s.root.join("one/f.txt")).unwrap(), b"uploaded");

    reload_with(&s, "[anonymous]\nenabled = true\nwrite = false\n");
    assert_eq!(
        c.cmd("MKD two").first(),
        "550 Access is denied: no mkdir right at /.",
        "write switched off again, same session"
    );
    let r = c.try_upload("STOR", "g.txt", b"refused");
    assert_eq!(r.first(), "550 Access is denied: no upload right at /.");
    assert!(!s.root.join("two").exists() && !s.root.join("g.txt").exists());

    reload_with(&s, "[anonymous]\nenabled = false\n");
    assert_eq!(
        c.cmd("RETR one/f.txt").first(),
        "530 Access is denied: this account is no longer valid.",
        "anonymous switched off: the open anonymous session may do nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// tls.require
// ---------------------------------------------------------------------------------------------

#[test]
fn tls_require_reloads_for_the_next_login() {
    let cert = Cert::new();
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config(&cert.tls_table("require = \"none\""))
        .start();
    let mut before = s.ctrl();
    let mut plain = s.login("alice", PASS);
    plain.expect("NOOP", 200);

    reload_with(&s, "[tls]\nrequire = \"login\"\n");
    let mut c = s.ctrl();
    assert_eq!(
        c.cmd("USER alice").first(),
        "530 TLS required: use AUTH TLS before logging in.",
        "a clear-text login after tls.require = login"
    );
    // A connection opened before the reload logs in under the rule in force now, too.
    assert_eq!(
        before.cmd("USER alice").first(),
        "530 TLS required: use AUTH TLS before logging in."
    );
    let mut tls = s.ctrl();
    tls.auth_tls(&client_config(&cert, true));
    tls.login("alice", PASS);
    tls.expect("NOOP", 200);
}

// ---------------------------------------------------------------------------------------------
// Data timeout and rate limits (the next transfer; server-wide ones at once)
// ---------------------------------------------------------------------------------------------

#[test]
fn the_per_session_rate_limits_reload_for_the_next_transfer() {
    const SIZE: usize = 200 * 1024;
    let s = Server::builder().user("alice", PASS, "alice", true).start();
    let content = random_bytes(SIZE);
    write_file(&s.home("alice").join("f.bin"), &content);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let (bytes, took) = timed_retr(&mut c, "f.bin");
    assert_eq!(bytes.len(), SIZE);
    assert!(
        took < Duration::from_millis(1500),
        "unlimited at start, took {took:?}"
    );

    reload_with(
        &s,
        "[limits]\ndownload_bytes_per_sec = 102400\nupload_bytes_per_sec = 102400\n",
    );
    // 200 KiB at 100 KiB/s, a quarter second's burst: at least 1.75 s.
    let (bytes, took) = timed_retr(&mut c, "f.bin");
    assert_eq!(sha256_bytes(&bytes), sha256_bytes(&content));
    assert!(
        took >= Duration::from_millis(1500),
        "download after download_bytes_per_sec = 100 KiB/s took only {took:?}"
    );
    let start = Instant::now();
    c.stor("up.bin", &content);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "upload after upload_bytes_per_sec = 100 KiB/s took only {took:?}"
    );
    assert_eq!(
        sha256_file(&s.home("alice").join("up.bin")),
        sha256_bytes(&content)
    );
}

#[test]
fn the_data_timeout_reloads_for_the_next_transfer() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\ndata_timeout_secs = 60\n")
        .start();
    write_file(&s.home("alice").join("f.txt"), b"hello");
    let mut c = s.login("alice", PASS);
    reload_with(&s, "[limits]\ndata_timeout_secs = 1\n");
    // PASV, RETR, and no data connection: the new timeout ends the wait.
    let _port = c.pasv();
    c.expect("RETR f.txt", 150);
    c.expect_unprompted(
        "425 Can't open data connection: timed out.",
        Duration::from_secs(5),
    );
}

#[test]
fn the_server_wide_rate_limit_applies_at_once_to_a_running_transfer() {
    const SIZE: usize = 1024 * 1024;
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .config("[limits]\nglobal_download_bytes_per_sec = 65536\n")
        .start();
    let content = random_bytes(SIZE);
    write_file(&s.home("alice").join("f.bin"), &content);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    let mut data = c.start_passive("RETR f.bin");
    // Some of it at 64 KiB/s (the whole file would take 16 s) ...
    let mut head = vec![0u8; 32 * 1024];
    data.read_exact(&mut head).unwrap();
    // ... then the limit is lifted while the transfer runs: the rest comes at once.
    reload_with(&s, "[limits]\nglobal_download_bytes_per_sec = 0\n");
    let (rest, took) = timed_read(&mut data);
    Ctrl::assert_transfer_end("RETR f.bin", &c.read_reply());
    head.extend_from_slice(&rest);
    assert_eq!(sha256_bytes(&head), sha256_bytes(&content));
    assert!(
        took < Duration::from_secs(6),
        "the rest of the transfer after the limit was lifted took {took:?}"
    );
}
