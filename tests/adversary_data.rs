//! The data channel against a third party: nobody may turn fxpd's own protections against the
//! users they protect, and every way to a data connection fails closed.
//!
//! - A stranger who connects to a victim's passive port is charged for it (and banned), never the
//!   victim; the victim's transfer and its new sessions go on.
//! - Strangers cannot fill a passive port's accept queue: the listener accepts (and closes
//!   refused peers) from the moment PASV is answered, and holds the client's connection.
//! - A held connection is judged again when it is used, so a reload that tightens the policy
//!   between accept and use is obeyed.
//! - A session that negotiated PROT P never gets a clear-text data connection, even after a
//!   reload removed `[tls]`.
//! - CPSV passes the same gate as PASV (EPSV ALL, bans).
//!
//! The server listens on 127.0.0.2; the client comes from 127.0.0.1 and the stranger from
//! 127.0.0.9. Transfers are checked by SHA-256, every socket has a timeout, reloads are waited
//! for through the server's log.

mod common;

use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// The legitimate client.
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// A stranger who connects to other clients' passive ports.
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
/// How long a refused connection may stay open before the server closes it.
const CLOSED_WITHIN: Duration = Duration::from_secs(10);

/// A control connection from `from`, greeted with 220 and logged in as alice.
fn login_from(s: &Server, from: IpAddr) -> Ctrl {
    let mut c = Ctrl::connect_from(from, s.addr());
    c.login("alice", PASS);
    c
}

/// A TCP connection from the loopback address `from` to `to`, or why it did not come about
/// within `within` (a full accept queue makes a connect hang).
fn try_connect_from(from: IpAddr, to: SocketAddr, within: Duration) -> io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        match tokio::time::timeout(within, socket.connect(to)).await {
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            Ok(result) => result?.into_std(),
        }
    })?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Whether the server closed `s` (EOF or reset) within `within` without sending a byte; panics
/// if it sent data.
fn closed_without_data(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("a refused connection received {n} bytes"),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        Err(_) => false,
    }
}

/// One connection from the stranger to `port`, which the server must close at once.
fn stranger_knocks(port: SocketAddr, what: &str) {
    let mut s = try_connect_from(STRANGER, port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{what}: the stranger's connect to {port} failed: {e}"));
    assert!(
        closed_without_data(&mut s, CLOSED_WITHIN),
        "{what}: the server did not close the stranger's connection within {CLOSED_WITHIN:?}"
    );
}

/// Reads exactly `n` bytes (fewer only at EOF) from `s`.
fn read_some(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the data connection after {got} bytes: {e}"),
        }
    }
    out.truncate(got);
    out
}

/// Rewrites the configuration file with `change` applied, sends SIGHUP and waits until the
/// server says it applied the reload.
fn reload_with(s: &Server, change: impl FnOnce(&mut toml::Table)) {
    let mut table: toml::Table = fs::read_to_string(&s.config_path).unwrap().parse().unwrap();
    change(&mut table);
    fs::write(&s.config_path, toml::to_string(&table).unwrap()).unwrap();
    s.reload().expect("the reload must be applied");
}

/// The security log's lines for `event` whose own `client` field is `client` (the event's first
/// fields are `event` and `client`; a session span may name another client).
fn log_lines<'a>(log: &'a str, event: &str, client: IpAddr) -> Vec<&'a str> {
    let needle = format!("event=\"{event}\" client={client} ");
    log.lines().filter(|l| l.contains(&needle)).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. A refused passive connection is charged to the address that made it
// ---------------------------------------------------------------------------------------------

/// A stranger makes 20 connections to a victim's passive port while its RETR runs (10 before
/// the victim's own data connection, 10 while data flows). The victim's transfer completes with
/// the right hash, it can open new sessions, and the stranger is the address that is banned.
#[test]
fn passive_refusals_ban_the_stranger_not_the_victim() {
    // 512 KiB/s: the 4 MiB download takes about 8 s, so it is still running while the stranger
    // knocks (and the socket buffers cannot hold the rest of it).
    let s = Server::with_alice("[limits]\ndownload_bytes_per_sec = 524288\ndata_timeout_secs = 20\n");
    let sha = write_random_file(&s.home("alice").join("big.bin"), 4 * 1024 * 1024 + 17);
    let mut victim = login_from(&s, CLIENT);
    victim.expect("TYPE I", 200);
    let passive = victim.pasv();
    let r = victim.cmd("RETR big.bin");
    assert_eq!(r.code, 150, "RETR: {r}");

    // Ten (the default fxp.ban_threshold) before the victim connects: the server is waiting for
    // the data connection, screens each and closes it.
    for i in 0..10 {
        stranger_knocks(passive, &format!("knock {i} before the victim's connection"));
    }
    let mut data = try_connect_from(CLIENT, passive, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the victim's data connect failed: {e}"));
    let head = read_some(&mut data, 64 * 1024);
    assert_eq!(
        head.len(),
        64 * 1024,
        "the victim's data connection ended after {} bytes: the stranger's refusals were charged to the victim (reply: {})",
        head.len(),
        victim.read_reply()
    );
    let stat = victim.expect("STAT", 211);
    assert!(stat.text().contains("Data connection open: RETR"), "STAT: {stat}");

    // Ten more while data flows.
    for i in 0..10 {
        stranger_knocks(passive, &format!("knock {i} during the transfer"));
    }
    let stat = victim.expect("STAT", 211);
    assert!(
        stat.text().contains("Data connection open: RETR"),
        "the transfer ended before the stranger's knocks were done: {stat}"
    );

    let mut got = head;
    got.extend(read_to_end_deadline(&mut data, Duration::from_secs(120)));
    assert_eq!(sha256_bytes(&got), sha, "SHA-256 of the victim's download");
    let done = victim.read_reply();
    assert_eq!(done.code, 226, "end of RETR: {done}");
    assert!(
        done.text().contains(&format!("first from {STRANGER}")),
        "the 226 reports the refused connections: {done}"
    );

    // The victim is not banned: new sessions, logins and data connections as usual.
    let mut again = login_from(&s, CLIENT);
    again.expect("TYPE I", 200);
    assert_eq!(sha256_bytes(&again.retr("big.bin")), sha);
    again.expect("QUIT", 221);
    victim.expect("QUIT", 221);

    // The stranger is: its new control connection is turned away.
    let mut banned = Ctrl::over(
        try_connect_from(STRANGER, s.addr(), Duration::from_secs(10)).unwrap(),
        b"",
    );
    let r = banned.read_reply();
    assert_eq!(r.code, 421, "the stranger's greeting: {r}");
    assert!(r.text().contains("banned"), "{r}");

    let log = s.stderr();
    assert_eq!(
        log_lines(&log, "client_banned", STRANGER).len(),
        1,
        "one client_banned for {STRANGER}:\n{log}"
    );
    assert!(
        log_lines(&log, "client_banned", CLIENT).is_empty(),
        "the victim {CLIENT} was banned:\n{log}"
    );
    let refused = log_lines(&log, "fxp_refused", CLIENT);
    assert_eq!(
        refused.len(),
        20,
        "20 refusals logged with the victim as client:\n{log}"
    );
    assert!(
        refused
            .iter()
            .all(|l| l.contains(&format!("source={STRANGER}")) && l.contains(&format!("charged={STRANGER}"))),
        "each refusal names the stranger as source and as the address charged:\n{}",
        refused.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Strangers cannot fill a passive port's accept queue
// ---------------------------------------------------------------------------------------------

/// 50 stranger connections, held open, reach the passive port after PASV (and, with another stranger, after EPSV) and before the client
/// connects (as ftplib and curl connect before sending RETR). The client's connect and transfer
/// succeed, and no stranger gets a byte.
#[test]
fn strangers_cannot_fill_the_passive_accept_queue() {
    let s = Server::with_alice("[limits]\ndata_timeout_secs = 20\n");
    let sha = write_random_file(&s.home("alice").join("file.bin"), 1024 * 1024 + 3);
    let mut c = login_from(&s, CLIENT);
    c.expect("TYPE I", 200);
    // PASV and EPSV, each with a stranger of its own (the first is banned by then).
    for (setup, stranger) in [
        ("PASV", STRANGER),
        ("EPSV", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10))),
    ] {
        let passive = if setup == "PASV" { c.pasv() } else { c.epsv() };
        let mut strangers = Vec::new();
        for _ in 0..50 {
            // A full queue makes further connects hang; they do not need to succeed.
            if let Ok(stream) = try_connect_from(stranger, passive, Duration::from_millis(500)) {
                strangers.push(stream);
            }
        }
        let connected = strangers.len();
        let mut data = try_connect_from(CLIENT, passive, Duration::from_secs(5)).unwrap_or_else(|e| {
            panic!("{setup}: the client's data connect after 50 stranger connections ({connected} of them connected): {e}")
        });
        // Before any transfer command: the server has already accepted and closed every stranger.
        for (i, stranger) in strangers.iter_mut().enumerate() {
            assert!(
                closed_without_data(stranger, CLOSED_WITHIN),
                "{setup}: stranger connection {i} is still open before RETR"
            );
        }
        assert_eq!(connected, 50, "{setup}: every stranger's connect went through");
        let r = c.cmd("RETR file.bin");
        assert_eq!(r.code, 150, "{setup}: RETR: {r}");
        assert_eq!(
            sha256_bytes(&read_to_end_deadline(&mut data, Duration::from_secs(60))),
            sha,
            "{setup}"
        );
        let r = c.read_reply();
        assert_eq!(r.code, 226, "{setup}: end of RETR: {r}");
        assert!(
            r.text()
                .contains(&format!("50 other connection(s) refused, first from {stranger}")),
            "{setup}: {r}"
        );
    }
}

/// With foreign passive connections allowed, a stranger's connection is accepted and held; a
/// reload then revokes the switch before the transfer: the held connection is judged again and
/// refused (425 naming the rule), and the stranger gets nothing.
#[test]
fn a_held_connection_is_judged_again_after_a_reload() {
    let s = Server::with_alice("[limits]\ndata_timeout_secs = 20\n[fxp]\nallow_foreign_passive = true\n");
    write_random_file(&s.home("alice").join("file.bin"), 256 * 1024);
    let mut c = login_from(&s, CLIENT);
    c.expect("TYPE I", 200);
    let passive = c.pasv();
    let mut held = try_connect_from(STRANGER, passive, Duration::from_secs(10)).unwrap();
    // Held, not closed: the policy allowed it when it arrived.
    assert!(!closed_without_data(&mut held, Duration::from_millis(300)));

    reload_with(&s, |t| {
        t.get_mut("fxp")
            .and_then(|f| f.as_table_mut())
            .unwrap()
            .insert("allow_foreign_passive".into(), false.into());
    });
    let started = Instant::now();
    let r = c.cmd("RETR file.bin");
    let r = if r.code == 150 { c.read_reply() } else { r };
    assert_eq!(r.code, 425, "RETR over a connection the reload revoked: {r}");
    assert!(
        r.text().contains("(foreign-address)") && r.text().contains(&STRANGER.to_string()),
        "{r}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the refusal waited for the data timeout"
    );
    assert!(closed_without_data(&mut held, CLOSED_WITHIN));
}

// ---------------------------------------------------------------------------------------------
// 9. Every data-connection path fails closed
// ---------------------------------------------------------------------------------------------

/// (a) A session that negotiated PROT P, after a reload removed `[tls]`: transfers are refused
/// (431, before any file is opened) and not a byte goes out in clear text.
#[test]
fn prot_p_never_falls_back_to_clear_text_after_tls_is_removed() {
    let cert = Cert::new();
    let s = Server::with_alice(&format!(
        "[limits]\ndata_timeout_secs = 10\n[tls]\ncertificate = {}\nprivate_key = {}\n",
        toml::Value::String(cert.cert.to_str().unwrap().into()),
        toml::Value::String(cert.key.to_str().unwrap().into()),
    ));
    let secret = b"SECRET-CONTENT-NEVER-IN-CLEAR-TEXT\n".repeat(1000);
    write_file(&s.home("alice").join("secret.txt"), &secret);
    let mut c = Ctrl::connect_from(CLIENT, s.addr());
    c.auth_tls(&client_config(&cert, true));
    c.expect("USER alice", 331);
    c.expect(&format!("PASS {PASS}"), 230);
    c.expect("PBSZ 0", 200);
    c.expect("PROT P", 200);
    c.expect("TYPE I", 200);

    reload_with(&s, |t| {
        t.remove("tls");
    });

    let r = c.expect("PASV", 227);
    let passive = parse_pasv(r.first()).unwrap();
    let mut data = try_connect_from(CLIENT, passive, Duration::from_secs(10)).unwrap();
    let r = c.cmd("RETR secret.txt");
    assert_eq!(r.code, 431, "RETR under PROT P without TLS: {r}");
    let r = c.cmd("LIST");
    assert_eq!(r.code, 431, "LIST under PROT P without TLS: {r}");
    let r = c.cmd("STOR new.txt");
    assert_eq!(r.code, 431, "STOR under PROT P without TLS: {r}");
    assert!(
        !s.home("alice").join("new.txt").exists(),
        "a refused STOR created the file"
    );
    // Ending the session closes the listener and the connection it held: nothing was sent.
    c.expect("QUIT", 221);
    let leaked = read_to_end_deadline(&mut data, Duration::from_secs(20));
    assert!(
        leaked.is_empty(),
        "{} bytes went out in clear text on a PROT P session",
        leaked.len()
    );
}

/// (b) CPSV passes the same gate as PASV: refused after EPSV ALL, and refused for a banned
/// client, with the same code and reason; another address is untouched.
#[test]
fn cpsv_passes_the_same_gate_as_pasv() {
    let s = Server::with_alice("[fxp]\nban_threshold = 3\n");

    let mut c = login_from(&s, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
    c.expect("EPSV ALL", 200);
    for command in ["PASV", "CPSV"] {
        let r = c.expect(command, 504);
        assert!(
            r.text()
                .starts_with(&format!("504 {command} refused (epsv-all): ")),
            "{r}"
        );
    }
    c.expect("EPSV", 229);

    let banned_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
    let mut b = login_from(&s, banned_ip);
    for _ in 0..3 {
        let r = b.expect("PORT 127,0,0,3,156,64", 504);
        assert!(r.text().contains("(foreign-address)"), "{r}");
    }
    for command in [
        "PASV",
        "CPSV",
        "EPSV",
        "PORT 127,0,0,5,156,64",
        "EPRT |1|127.0.0.5|40000|",
    ] {
        let r = b.expect(command, 504);
        let verb = command.split(' ').next().unwrap();
        assert!(
            r.text().starts_with(&format!("504 {verb} refused (banned): ")),
            "{command} from a banned client: {r}"
        );
    }

    let mut other = login_from(&s, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6)));
    other.expect("PASV", 227);
    other.expect("CPSV", 227);
    other.expect("EPSV", 229);
}
