//! PROXY protocol (v1/v2) from a trusted load balancer, without a balancer: raw TCP clients
//! bound to 127.0.0.10 (the "balancer", `proxy.trusted = ["127.0.0.10/32"]`) write the header
//! themselves, so every branch can be driven exactly. The real HAProxy is in `tests/cluster.rs`.
//!
//! What is checked: the header's source is the client for the FXP policy (PORT and the passive
//! source), STAT, lockouts, the per-address cap and the logs; a header from an untrusted peer
//! is an ordinary bad command line; a trusted peer without a header is refused; a LOCAL header
//! (health check) gets the greeting and never becomes a session; a bad `proxy.trusted` block
//! stops the server naming the key.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The address the tests treat as their load balancer.
const LB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));

const TRUSTED: &str = "[proxy]\ntrusted = [\"127.0.0.10/32\"]\n";

fn client(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), port)
}

/// What the balancer's frontend address would be (only logged by fxpd).
fn frontend() -> SocketAddr {
    client(10, 2121)
}

/// A control connection from the balancer with `header`; reads the greeting (must be 220).
fn proxied(s: &Server, header: &[u8]) -> Ctrl {
    let mut c = Ctrl::over(connect_from(LB, s.addr()), header);
    let g = c.read_reply();
    assert_eq!(g.code, 220, "greeting after a PROXY header: {g}");
    c
}

/// The client address STAT reports.
fn stat_client(c: &mut Ctrl) -> String {
    let r = c.expect("STAT", 211);
    r.lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("Connected to ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no 'Connected to' in STAT: {r}"))
}

/// Whether the server closes `s` without sending a byte within `within`.
fn closed_without_data(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        // Reset by the server; a timeout means it was left open.
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn v1_header_names_the_client_for_the_fxp_policy() {
    let s = Server::with_alice(TRUSTED);
    let mut c = proxied(&s, &proxy_v1(client(5, 40000), frontend()));
    c.login("alice", PASS);
    assert_eq!(stat_client(&mut c), "127.0.0.5");
    // PORT to the header's address is the client's own; to the TCP peer's it is foreign.
    c.expect("PORT 127,0,0,5,200,1", 200);
    let r = c.expect("PORT 127,0,0,1,200,1", 504);
    assert!(r.text().contains("(foreign-address)"), "{r}");
    let r = c.expect("PORT 127,0,0,10,200,1", 504);
    assert!(
        r.text().contains("(foreign-address)"),
        "the balancer is not the client: {r}"
    );
    c.expect("QUIT", 221);
    let log = s.log_when(|log| log.contains("connected through a load balancer"));
    let line = log
        .lines()
        .find(|l| l.contains("connected through a load balancer"))
        .unwrap_or_else(|| panic!("no proxied-connection line in:\n{log}"));
    assert!(
        line.contains("127.0.0.5:40000") && line.contains("proxy=127.0.0.10"),
        "{line}"
    );
    assert!(
        log.contains("client=127.0.0.5:40000"),
        "the session span names the real client:\n{log}"
    );
}

#[test]
fn v2_header_names_the_client_in_the_w3c_log() {
    let logs = tempfile::tempdir().unwrap();
    let s = Server::with_alice(&format!(
        "{TRUSTED}[log]\nw3c_dir = {:?}\n",
        logs.path().to_str().unwrap()
    ));
    let mut c = proxied(&s, &proxy_v2(client(5, 40001), frontend()));
    c.login("alice", PASS);
    assert_eq!(stat_client(&mut c), "127.0.0.5");
    c.expect("PORT 127,0,0,5,200,1", 200);
    let r = c.expect("PORT 127,0,0,1,200,1", 504);
    assert!(r.text().contains("(foreign-address)"), "{r}");
    c.expect("QUIT", 221);
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let mut lines = Vec::new();
        for e in std::fs::read_dir(logs.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            lines.extend(text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned));
        }
        if lines.iter().any(|l| l.contains(" QUIT ")) || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!lines.is_empty(), "no W3C lines");
    for l in &lines {
        assert_eq!(
            l.split(' ').nth(2),
            Some("127.0.0.5"),
            "c-ip must be the header's client: {l}"
        );
    }
}

#[test]
fn header_from_an_untrusted_peer_is_an_ordinary_bad_line() {
    let s = Server::with_alice(TRUSTED);
    // From 127.0.0.1 (not trusted) the header is just a line: 500, and the client stays 127.0.0.1.
    let mut c = Ctrl::connect(s.addr());
    c.send_bytes(&proxy_v1(client(5, 40000), frontend()));
    assert_eq!(c.read_reply().code, 500);
    c.login("alice", PASS);
    assert_eq!(stat_client(&mut c), "127.0.0.1");
    let r = c.expect("PORT 127,0,0,5,200,1", 504);
    assert!(
        r.text().contains("(foreign-address)"),
        "a header never lends an address: {r}"
    );
    c.expect("PORT 127,0,0,1,200,1", 200);
    // A v2 header from an untrusted peer: its signature is blank lines, a NUL line and QUIT
    // (the specification's design), so the session ends; it never names anybody.
    let mut c = Ctrl::connect(s.addr());
    c.send_bytes(&proxy_v2(client(5, 40000), frontend()));
    let codes: Vec<u16> = (0..4).map(|_| c.read_reply().code).collect();
    assert_eq!(codes, [500, 500, 500, 221]);
    assert!(c.wait_closed(Duration::from_secs(5)));
    // Nor does a trusted-looking address with no trust configured at all.
    let plain = Server::with_alice("");
    let mut c = Ctrl::over(
        connect_from(LB, plain.addr()),
        &proxy_v1(client(5, 40000), frontend()),
    );
    assert_eq!(c.read_reply().code, 220);
    assert_eq!(c.read_reply().code, 500);
    c.login("alice", PASS);
    assert_eq!(stat_client(&mut c), "127.0.0.10");
}

#[test]
fn trusted_peer_without_a_header_is_refused() {
    let s = Server::with_alice(TRUSTED);
    // FTP straight away: not a header.
    let mut c = Ctrl::over(connect_from(LB, s.addr()), b"USER alice-from-the-balancer\r\n");
    let r = c.read_reply();
    assert_eq!(r.code, 421, "{r}");
    assert!(
        c.wait_closed(Duration::from_secs(5)),
        "the connection must be closed"
    );
    // A v2 header with a bad command byte.
    let mut bad = proxy_v2(client(5, 1), frontend());
    bad[12] = 0x2f;
    let mut c = Ctrl::over(connect_from(LB, s.addr()), &bad);
    assert_eq!(c.read_reply().code, 421);
    // Silence: refused after the header timeout (5 s), not kept open.
    let started = Instant::now();
    let mut c = Ctrl::over(connect_from(LB, s.addr()), b"");
    let r = c.read_reply();
    assert_eq!(r.code, 421, "{r}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    let log = s.log_when(|log| log.contains("no PROXY header in time"));
    assert!(log.contains("without a valid PROXY header"), "{log}");
    assert!(!log.contains("connected"), "no session may start:\n{log}");
}

#[test]
fn local_header_is_a_health_check_not_a_client() {
    let s = Server::with_alice(TRUSTED);
    let mut c = Ctrl::over(connect_from(LB, s.addr()), &proxy_v2_local());
    assert_eq!(c.read_reply().code, 220);
    assert!(
        c.wait_closed(Duration::from_secs(5)),
        "a health check is closed after the greeting"
    );
    let mut c = Ctrl::over(connect_from(LB, s.addr()), b"PROXY UNKNOWN\r\n");
    assert_eq!(c.read_reply().code, 220);
    assert!(c.wait_closed(Duration::from_secs(5)));
    // The server still serves real clients, and no session was logged for the checks.
    let mut c = proxied(&s, &proxy_v1(client(5, 40000), frontend()));
    c.login("alice", PASS);
    c.expect("QUIT", 221);
    let log = s.log_when(|log| log.contains("disconnected"));
    assert_eq!(
        log.matches("connected through a load balancer").count(),
        1,
        "{log}"
    );
    assert!(!log.contains("login failed"), "{log}");
}

#[test]
fn passive_source_is_the_data_headers_client() {
    let s = Server::with_alice(&format!("{TRUSTED}[limits]\ndata_timeout_secs = 10\n"));
    let sha = write_random_file(&s.home("alice").join("down.bin"), 200_000);
    let mut c = proxied(&s, &proxy_v2(client(5, 40000), frontend()));
    c.login("alice", PASS);
    c.expect("TYPE I", 200);
    let a = c.pasv();
    // The 227 names the control connection's local address (no passive.address here).
    let data = SocketAddr::new(s.addr().ip(), a.port());
    // Thieves through the balancer: no header, a header naming someone else, a LOCAL header.
    let mut no_header = connect_from(LB, data);
    let mut other = connect_from(LB, data);
    other.write_all(&proxy_v2(client(9, 50001), frontend())).unwrap();
    let mut local = connect_from(LB, data);
    local.write_all(&proxy_v2_local()).unwrap();
    no_header.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    // And straight from an untrusted address, claiming to be the client in a header.
    let mut forger = connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), data);
    forger.write_all(&proxy_v2(client(5, 40000), frontend())).unwrap();
    c.expect_class("RETR down.bin", 1);
    for (what, thief) in [
        ("no header", &mut no_header),
        ("other client", &mut other),
        ("LOCAL", &mut local),
        ("forged header from an untrusted peer", &mut forger),
    ] {
        assert!(
            closed_without_data(thief, Duration::from_secs(10)),
            "{what}: got data"
        );
    }
    // The real client's data connection, through the balancer, with its header.
    let mut mine = connect_from(LB, data);
    mine.write_all(&proxy_v1(client(5, 40002), frontend())).unwrap();
    assert_eq!(sha256_bytes(&read_to_end_deadline(&mut mine, IO_TIMEOUT)), sha);
    assert_eq!(c.read_reply().code, 226);
    // Direct from the real client's own address (no balancer) also works.
    let a = c.pasv();
    let mut direct = connect_from(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)),
        SocketAddr::new(s.addr().ip(), a.port()),
    );
    c.expect_class("RETR down.bin", 1);
    assert_eq!(sha256_bytes(&read_to_end_deadline(&mut direct, IO_TIMEOUT)), sha);
    assert_eq!(c.read_reply().code, 226);
    let log = &s.stderr();
    assert!(
        log.contains("target=127.0.0.9:50001 rule=\"foreign-address\""),
        "the other client's refusal is logged by its real address:\n{log}"
    );
}

#[test]
fn session_cap_and_lockout_count_the_headers_client() {
    let s = Server::with_alice(&format!(
        "{TRUSTED}[limits]\nmax_sessions_per_ip = 1\nmax_login_failures = 2\n"
    ));
    // Two clients behind one balancer each get their slot; a second session of one does not.
    let mut five = proxied(&s, &proxy_v1(client(5, 40000), frontend()));
    let mut six = proxied(&s, &proxy_v1(client(6, 40000), frontend()));
    let mut again = Ctrl::over(
        connect_from(LB, s.addr()),
        &proxy_v1(client(5, 40001), frontend()),
    );
    let r = again.read_reply();
    assert_eq!(r.code, 421, "{r}");
    assert!(r.text().contains("your address"), "{r}");
    five.expect("QUIT", 221);
    six.expect("QUIT", 221);
    assert!(five.wait_closed(Duration::from_secs(5)) && six.wait_closed(Duration::from_secs(5)));
    // The server frees the slot just after closing the socket.
    std::thread::sleep(Duration::from_millis(300));
    // Two failed logins lock 127.0.0.5 out, not 127.0.0.6 behind the same balancer.
    let mut c = proxied(&s, &proxy_v1(client(5, 40002), frontend()));
    for name in ["mallory1", "mallory2"] {
        c.expect(&format!("USER {name}"), 331);
        c.expect("PASS wrong", 530);
    }
    assert!(c.wait_closed(Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(300));
    let mut c = proxied(&s, &proxy_v1(client(5, 40003), frontend()));
    c.expect("USER alice", 331);
    let r = c.expect(&format!("PASS {PASS}"), 530);
    assert!(r.text().contains("too many failed attempts"), "{r}");
    drop(c);
    let mut c = proxied(&s, &proxy_v1(client(6, 40003), frontend()));
    c.login("alice", PASS);
}

#[test]
fn bad_trusted_block_is_fatal_and_names_the_key() {
    let err = Server::builder()
        .config("[proxy]\ntrusted = [\"127.0.0.10/8\"]\n")
        .try_start()
        .err()
        .expect("a bad proxy.trusted block must stop the server");
    assert!(err.stderr.contains("proxy.trusted"), "{}", err.stderr);
    assert!(err.stderr.contains("127.0.0.0/8"), "{}", err.stderr);
}

#[test]
fn reload_changes_the_trusted_list_for_new_connections() {
    let s = Server::with_alice("");
    // Not trusted yet: the balancer's header is a bad line and the balancer is the client.
    let mut before = Ctrl::over(
        connect_from(LB, s.addr()),
        &proxy_v1(client(5, 40000), frontend()),
    );
    assert_eq!(before.read_reply().code, 220);
    assert_eq!(before.read_reply().code, 500);
    // SIGHUP with proxy.trusted added (as `systemctl reload fxpd` does).
    std::fs::write(&s.config_path, format!("{}\n{TRUSTED}", s.config_text)).unwrap();
    s.reload().expect("the reload must be applied");
    let mut c = proxied(&s, &proxy_v2(client(5, 40001), frontend()));
    c.login("alice", PASS);
    assert_eq!(stat_client(&mut c), "127.0.0.5");
    // The session that started before keeps the identity it started with.
    before.login("alice", PASS);
    assert_eq!(stat_client(&mut before), "127.0.0.10");
}

/// Behind a balancer, bans are keyed on the client its PROXY header names: a client that
/// earns a ban is refused through the balancer and directly, while another client behind the
/// same balancer (same TCP peer) keeps working.
#[test]
fn bans_follow_the_header_client_not_the_balancer() {
    let s = Server::with_alice(&format!("{TRUSTED}\n[fxp]\nban_threshold = 3\n"));
    let mut bad = proxied(&s, &proxy_v1(client(5, 40000), frontend()));
    bad.login("alice", PASS);
    for _ in 0..3 {
        let r = bad.expect("PORT 127,0,0,3,200,1", 504);
        assert!(r.text().contains("(foreign-address)"), "{r}");
    }
    // The banned client, through the balancer: 421 before the greeting.
    let mut again = Ctrl::over(
        connect_from(LB, s.addr()),
        &proxy_v1(client(5, 40001), frontend()),
    );
    let r = again.read_reply();
    assert_eq!(r.code, 421, "banned client through the balancer -> {r}");
    assert!(r.text().contains("banned"), "{r}");
    // ... and directly from its own address.
    let mut direct = Ctrl::over(connect_from(client(5, 0).ip(), s.addr()), b"");
    let r = direct.read_reply();
    assert_eq!(r.code, 421, "banned client connecting directly -> {r}");
    // The balancer itself is not banned: it speaks for the client it names.
    // Another client behind the same balancer is not affected.
    let mut good = proxied(&s, &proxy_v2(client(6, 40002), frontend()));
    good.login("alice", PASS);
    assert_eq!(stat_client(&mut good), "127.0.0.6");
    good.expect("PORT 127,0,0,6,200,1", 200);
}
