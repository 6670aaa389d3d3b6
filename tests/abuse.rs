//! Abuse limits on the real binary: lockouts that survive reconnects, session caps, login
//! and idle timeouts against a client that trickles bytes, NUL bytes in paths.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// A client that logged in with a wrong password `n` times, each on a new connection.
fn fail_logins(s: &Server, n: usize) {
    for _ in 0..n {
        let mut c = s.ctrl();
        c.expect("USER alice", 331);
        c.expect("PASS wrong-password", 530);
        c.expect("QUIT", 221);
    }
}

#[test]
fn lockout_survives_reconnects_and_covers_the_address() {
    let s = Server::with_alice("[limits]\nmax_login_failures = 3\nlockout_secs = 600\n");
    fail_logins(&s, 3);
    // The right password on a fresh connection is refused while the lockout lasts.
    let mut c = s.ctrl();
    c.expect("USER alice", 331);
    let r = c.cmd(&format!("PASS {PASS}"));
    assert_eq!(r.code, 530, "a locked-out client logged in: {r}");
    assert!(r.text().contains("too many failed attempts"), "{r}");
    // Another user from the same address is locked out too (the address is).
    s.add_user("bob", PASS, "bob", false);
    let mut c = s.ctrl();
    c.expect("USER bob", 331);
    assert_eq!(c.cmd(&format!("PASS {PASS}")).code, 530);
}

#[test]
fn below_the_threshold_the_right_password_still_works() {
    let s = Server::with_alice("[limits]\nmax_login_failures = 3\n");
    fail_logins(&s, 2);
    let _ = s.login("alice", PASS);
}

#[test]
fn sessions_per_address_and_in_total_are_capped() {
    let s = Server::with_alice("[limits]\nmax_sessions = 3\nmax_sessions_per_ip = 2\n");
    let _a = s.ctrl();
    let _b = s.ctrl();
    let mut third = Ctrl::connect_no_greeting(s.addr());
    let r = third.read_reply();
    assert_eq!(r.code, 421, "third session from one address: {r}");
    drop(_b);
    // A slot frees when a session ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Ctrl::connect_no_greeting(s.addr());
        let r = c.read_reply();
        if r.code == 220 {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot never came back: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_total_cap_applies_across_addresses() {
    let s = Server::with_alice("[limits]\nmax_sessions = 2\nmax_sessions_per_ip = 2\n");
    let _a = s.ctrl();
    let _b = s.ctrl();
    let mut c = Ctrl::connect_no_greeting(s.addr());
    let r = c.read_reply();
    assert_eq!(r.code, 421, "{r}");
    assert!(r.text().contains("Too many"), "{r}");
}

#[test]
fn a_client_that_never_logs_in_is_cut_off() {
    let s = Server::with_alice("[limits]\nlogin_timeout_secs = 1\n");
    let mut c = s.ctrl();
    let start = Instant::now();
    let r = c.read_reply();
    assert_eq!(r.code, 421, "{r}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_slow_loris_trickling_bytes_is_cut_off() {
    let s = Server::with_alice("[limits]\nlogin_timeout_secs = 2\nidle_timeout_secs = 2\n");
    let mut c = s.ctrl();
    let start = Instant::now();
    // One byte every 300 ms, never a whole line: the deadline is not pushed back.
    let mut closed = false;
    for b in b"USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
        if std::io::Write::write_all(&mut c.stream, &[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if start.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let elapsed = start.elapsed();
    let r = c.try_read_reply();
    assert!(
        closed || matches!(&r, Ok(reply) if reply.code == 421),
        "still connected after {elapsed:?}: {r:?}"
    );
    assert!(elapsed < Duration::from_secs(8), "cut off only after {elapsed:?}");
}

/// After login the idle timeout is the bound: bytes that never make a whole command do not
/// push it back, so a logged-in session cannot be held open by a trickle either.
#[test]
fn a_logged_in_session_trickling_bytes_is_cut_off_at_the_idle_timeout() {
    let s = Server::with_alice("[limits]\nlogin_timeout_secs = 600\nidle_timeout_secs = 2\n");
    let mut c = s.login("alice", PASS);
    let start = Instant::now();
    let mut closed = false;
    for b in b"NOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOPNOOP".iter() {
        if std::io::Write::write_all(&mut c.stream, &[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if start.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let elapsed = start.elapsed();
    let r = c.try_read_reply();
    assert!(
        closed || matches!(&r, Ok(reply) if reply.code == 421),
        "still connected after {elapsed:?}: {r:?}"
    );
    assert!(elapsed < Duration::from_secs(8), "cut off only after {elapsed:?}");
}

#[test]
fn nul_bytes_in_paths_are_refused() {
    let s = Server::with_alice("");
    let mut c = s.login("alice", PASS);
    for line in [
        &b"RETR a\0b\r\n"[..],
        b"MKD x\0y\r\n",
        b"CWD \0\r\n",
        b"DELE ../\0etc\r\n",
    ] {
        c.send_bytes(line);
        let r = c.read_reply();
        assert_eq!(r.code, 501, "{:?} -> {r}", String::from_utf8_lossy(line));
    }
    c.expect("NOOP", 200);
    assert!(!s.home("alice").join("x").exists());
}
