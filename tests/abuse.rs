//! Abuse limits on the real binary: lockouts that survive reconnects, session caps, login
//! and idle timeouts against a client that trickles bytes, NUL bytes in paths.

mod common;

use common::*;
use std::net::{IpAddr, Ipv4Addr};
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

/// `127.0.0.n`: the loopback addresses clients connect from.
fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A control connection from `127.0.0.n`, greeted with 220.
fn conn_from(s: &Server, n: u8) -> Ctrl {
    Ctrl::connect_from(lo(n), s.addr())
}

/// `alice` logged in from `127.0.0.n`.
fn alice_from(s: &Server, n: u8) -> Ctrl {
    let mut c = conn_from(s, n);
    c.login("alice", PASS);
    c
}

/// USER and PASS for alice on `c`: the reply to PASS.
fn alice_refused(c: &mut Ctrl) -> Reply {
    c.expect("USER alice", 331);
    c.cmd(&format!("PASS {PASS}"))
}

#[test]
fn sessions_per_address_and_in_total_are_capped() {
    let s = Server::with_alice("[limits]\nmax_sessions = 3\nmax_sessions_per_ip = 2\n");
    // Not logged in: one address holds at most max_sessions_per_ip connections.
    let w1 = conn_from(&s, 1);
    let w2 = conn_from(&s, 1);
    let mut third = Ctrl::over(connect_from(lo(1), s.addr()), b"");
    assert_eq!(
        third.read_reply().first(),
        "421 Too many connections from your address."
    );
    drop((w1, w2));

    // Logged in, per address: the third login from one address is refused.
    let _a1 = alice_from(&s, 1);
    let a2 = alice_from(&s, 1);
    let mut c = conn_from(&s, 1);
    assert_eq!(
        alice_refused(&mut c).first(),
        "421 Too many sessions from your address, try again later."
    );
    drop(c);

    // Logged in, in total: a third address fills max_sessions = 3; a fourth login, from an
    // address holding nothing, is refused.
    let _b1 = alice_from(&s, 3);
    let mut c = conn_from(&s, 4);
    assert_eq!(
        alice_refused(&mut c).first(),
        "421 Too many users logged in, try again later."
    );

    // The refusal closes the connection.
    assert!(c.wait_closed(Duration::from_secs(5)));
    // A slot frees when a session ends: a new login gets in once one has quit.
    let mut a2 = a2;
    a2.expect("QUIT", 221);
    assert!(a2.wait_closed(Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = alice_refused(&mut conn_from(&s, 4));
        if r.code == 230 {
            break;
        }
        assert_eq!(r.first(), "421 Too many users logged in, try again later.");
        assert!(Instant::now() < deadline, "the freed slot never came back: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_total_cap_applies_across_addresses() {
    // Each address may hold three sessions; the server four in all.
    let s = Server::with_alice("[limits]\nmax_sessions = 4\nmax_sessions_per_ip = 3\n");
    let _open: Vec<Ctrl> = [1, 3, 4, 5].iter().map(|&n| alice_from(&s, n)).collect();
    // A fifth address, holding nothing, is greeted, but its login finds every session taken.
    let mut c = conn_from(&s, 6);
    assert_eq!(
        alice_refused(&mut c).first(),
        "421 Too many users logged in, try again later."
    );
    // Nor does an address that holds one get a second: it is the total that is full.
    let mut c = conn_from(&s, 1);
    assert_eq!(
        alice_refused(&mut c).first(),
        "421 Too many users logged in, try again later."
    );
}

#[test]
fn a_client_that_never_logs_in_is_cut_off() {
    let s = Server::with_alice("[limits]\nlogin_timeout_secs = 1\n");
    let mut c = s.ctrl();
    c.expect_unprompted(
        "421 Login timeout, closing control connection.",
        Duration::from_secs(5),
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
