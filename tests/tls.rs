//! FTPS (RFC 4217) end to end against the real `fxpd` binary.
//!
//! - Rust-only tests (always run): a pinned-certificate rustls client drives explicit
//!   (`AUTH TLS`) and implicit FTPS, `PBSZ`/`PROT`/`CCC`/`SSCN`/`FEAT` replies, the
//!   `tls.require` policy, data-connection hijack attempts against the session-resumption
//!   check, and PROT P FXP between two fxpd instances (SSCN and CPSV).
//! - External clients (gated by `FXPD_EXTERNAL_CLIENTS=1` like `tests/clients.rs`: unset means
//!   skip with a note, set with a missing client means failure): curl `--ssl-reqd` and
//!   `ftps://`, lftp with `ftp:ssl-force`/`ftp:ssl-protect-data` (get, put, mirror, and its
//!   TLS FXP mode), Python `ftplib.FTP_TLS` with `prot_p()`.
//!
//! Certificates are generated per test with `rcgen`. Servers listen on 127.0.0.2 (and
//! 127.0.0.3 for the second FXP site); the test's sockets come from 127.0.0.1. Every transfer
//! is checked by SHA-256, every socket has a timeout and every external command a deadline.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, NamedGroup};

use common::*;

/// The user on every server (home `alice`, write access, password [`PASS`]).
const USER: &str = "alice";
/// Site A (and the only site of single-server tests).
const SITE_A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Site B: the second server of the FXP tests.
const SITE_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// Size of the files moved: several MiB, not a multiple of any buffer size.
const BIG: usize = 5 * 1024 * 1024 + 4321;
/// Seconds a server waits for a data connection; short so that failed transfers end quickly.
const DATA_TIMEOUT_SECS: u64 = 10;
/// How long a test waits for the final reply of a transfer.
const FINAL_REPLY_WITHIN: Duration = Duration::from_secs(120);
/// The load balancer in front of the implicit listener in the PROXY test.
const BALANCER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));

// ---------------------------------------------------------------------------------------------
// Certificates and servers
// ---------------------------------------------------------------------------------------------

/// The config of one TLS site: listen on `ip`, a short data timeout, `[tls]` with `tls_extra`,
/// and `tables` (other tables, e.g. `"[fxp]\nallow_foreign_port = true"`).
fn tls_config(cert: &Cert, ip: IpAddr, tls_extra: &str, tables: &str) -> String {
    format!(
        "listen = [\"{}\"]\n\n[limits]\ndata_timeout_secs = {DATA_TIMEOUT_SECS}\n\n{}\n{tables}\n",
        SocketAddr::new(ip, 0),
        cert.tls_table(tls_extra)
    )
}

/// A running TLS site on `ip` with user alice.
fn tls_site(cert: &Cert, ip: IpAddr, tls_extra: &str, tables: &str) -> Server {
    Server::builder()
        .config(&tls_config(cert, ip, tls_extra, tables))
        .user(USER, PASS, USER, true)
        .start()
}

/// A server with a plain listener and an implicit FTPS listener, both on 127.0.0.2.
struct ImplicitSite {
    server: Server,
    plain: SocketAddr,
    ftps: SocketAddr,
}

/// Starts a site with `implicit_listen = ["127.0.0.2:0"]` and reads both its `LISTENING` and
/// its `LISTENING-FTPS` line (the harness waits only for the former, and could drop the latter
/// if it came first, so this waits for none and reads stdout itself).
fn implicit_site(cert: &Cert) -> ImplicitSite {
    implicit_site_with(cert, "")
}

/// [`implicit_site`] with other tables (e.g. `[proxy]`).
fn implicit_site_with(cert: &Cert, tables: &str) -> ImplicitSite {
    let tls_extra = format!("implicit_listen = [\"{}\"]", SocketAddr::new(SITE_A, 0));
    let mut server = Server::builder()
        .config(&tls_config(cert, SITE_A, &tls_extra, tables))
        .user(USER, PASS, USER, true)
        .listeners(0)
        .start();
    let deadline = Instant::now() + STARTUP_DEADLINE;
    let (mut plain, mut ftps) = (None, None);
    let mut seen = Vec::new();
    while plain.is_none() || ftps.is_none() {
        for line in server.drain_stdout() {
            if let Some(a) = line.strip_prefix("LISTENING-FTPS ") {
                ftps = Some(a.trim().parse::<SocketAddr>().expect("LISTENING-FTPS address"));
            } else if let Some(a) = line.strip_prefix("LISTENING ") {
                plain = Some(a.trim().parse::<SocketAddr>().expect("LISTENING address"));
            }
            seen.push(line);
        }
        assert!(
            server.is_running(),
            "fxpd exited during startup; stdout {seen:?}\nstderr:\n{}",
            server.stderr()
        );
        assert!(
            Instant::now() < deadline,
            "no LISTENING and LISTENING-FTPS lines within {STARTUP_DEADLINE:?}: {seen:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let (plain, ftps) = (plain.unwrap(), ftps.unwrap());
    assert_eq!(ftps.ip(), SITE_A, "{seen:?}");
    assert_ne!(
        ftps.port(),
        0,
        "LISTENING-FTPS must report the bound port: {seen:?}"
    );
    assert_ne!(ftps, plain, "{seen:?}");
    ImplicitSite { server, plain, ftps }
}

/// Path of `name` in alice's home on `server`.
fn file_of(server: &Server, name: &str) -> PathBuf {
    server.home(USER).join(name)
}

/// Puts `len` random bytes into alice's home on `server` as `name`; returns their SHA-256.
fn put_random(server: &Server, name: &str, len: usize) -> String {
    write_random_file(&file_of(server, name), len)
}

/// Size of a file, 0 when it does not exist: "no content arrived" either way.
fn len_or_zero(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Connects, `AUTH TLS` with `config`, logs in as alice, `PBSZ 0`, `PROT P`, `TYPE I`.
fn protected_login(addr: SocketAddr, config: &Arc<ClientConfig>) -> Ctrl {
    let mut c = Ctrl::connect(addr);
    c.auth_tls(config);
    c.login(USER, PASS);
    c.protect_data();
    c
}

// ---------------------------------------------------------------------------------------------
// The test's TLS client (rustls, blocking)
// ---------------------------------------------------------------------------------------------

/// rustls' own session store, counting the TLS 1.3 tickets the client received. A rustls
/// client spends one ticket per resumption.
#[derive(Debug)]
struct CountingStore {
    inner: ClientSessionMemoryCache,
    tickets: AtomicUsize,
}

impl CountingStore {
    fn new() -> Arc<CountingStore> {
        Arc::new(CountingStore {
            inner: ClientSessionMemoryCache::new(16),
            tickets: AtomicUsize::new(0),
        })
    }

    fn received(&self) -> usize {
        self.tickets.load(Ordering::SeqCst)
    }
}

impl ClientSessionStore for CountingStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(name, group)
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(name)
    }

    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.inner.set_tls12_session(name, value)
    }

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.inner.tls12_session(name)
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.inner.remove_tls12_session(name)
    }

    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.tickets.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(name, value)
    }

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(name)
    }
}

// ---------------------------------------------------------------------------------------------
// Rust client: explicit and implicit FTPS transfers
// ---------------------------------------------------------------------------------------------

/// AUTH TLS, PROT P, a multi-MiB download and upload and a listing, each data connection
/// resuming the control session; hash-checked.
#[test]
fn explicit_ftps_download_upload_and_list_with_resumption() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let sha = put_random(&s, "big.bin", BIG);
    let config = client_config(&cert, true);
    let mut c = protected_login(s.addr(), &config);
    assert!(c.is_tls());

    let got = c.retr_protected("big.bin");
    assert_eq!(got.len(), BIG, "downloaded size");
    assert_eq!(sha256_bytes(&got), sha, "SHA-256 of the download");

    let up = random_bytes(BIG + 7);
    c.stor_protected("up.bin", &up);
    assert_eq!(
        sha256_file(&file_of(&s, "up.bin")),
        sha256_bytes(&up),
        "SHA-256 of the upload on disk"
    );

    let listing = c.list_protected();
    assert!(
        listing.contains("big.bin") && listing.contains("up.bin"),
        "{listing}"
    );
    c.expect("QUIT", 221);
}

/// TLS 1.3 session tickets on data connections. An upload's data connection carries none
/// for a client that has not shown it spends tickets: such a client (lftp) only writes,
/// and closing a socket with the tickets unread makes the kernel send a RST that throws
/// away the upload's unsent tail. Downloads carry tickets. A client that spends one ticket
/// per connection (rustls) gets them on uploads too once it has shown that, so it never
/// runs out: every one of many uploads in a row resumes the control session.
#[test]
fn data_connection_tickets_follow_the_direction_and_the_client() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let store = CountingStore::new();
    let config = client_config_with_store(&cert, store.clone());
    let mut c = protected_login(s.addr(), &config);
    let from_control = store.received();
    assert!(
        from_control > 0,
        "the control connection sent no TLS 1.3 session tickets"
    );

    let first = random_bytes(200_000);
    c.stor_protected("first.bin", &first);
    assert_eq!(
        store.received(),
        from_control,
        "the first upload's data connection sent session tickets"
    );
    assert_eq!(c.retr_protected("first.bin"), first);
    let after_download = store.received();
    assert!(
        after_download > from_control,
        "the download sent no session tickets"
    );

    // Two resumptions with two tickets: this client spends them, so uploads refill its store.
    // It holds at most the control connection's tickets: without refills it would run dry.
    for i in 0..2 * from_control + 2 {
        let before = store.received();
        let data = random_bytes(50_000 + i);
        c.stor_protected(&format!("many-{i}.bin"), &data);
        assert!(
            store.received() > before,
            "upload {i} of a ticket-spending client sent no session tickets"
        );
        assert_eq!(
            sha256_file(&file_of(&s, &format!("many-{i}.bin"))),
            sha256_bytes(&data)
        );
    }
    c.expect("QUIT", 221);
}

/// The implicit listener: TLS before the greeting; a PROT P download and upload.
#[test]
fn implicit_ftps_download_and_upload() {
    let cert = Cert::new();
    let site = implicit_site(&cert);
    let sha = put_random(&site.server, "big.bin", BIG);
    let config = client_config(&cert, true);

    let mut c = Ctrl::connect_implicit(site.ftps, &config);
    // Already protected: a second AUTH is a sequence error.
    c.expect("AUTH TLS", 503);
    c.login(USER, PASS);
    c.protect_data();
    let got = c.retr_protected("big.bin");
    assert_eq!(sha256_bytes(&got), sha, "SHA-256 of the implicit-FTPS download");
    let up = random_bytes(BIG - 99);
    c.stor_protected("up.bin", &up);
    assert_eq!(sha256_file(&file_of(&site.server, "up.bin")), sha256_bytes(&up));

    // The plain listener of the same server still speaks clear text first.
    let mut plain = Ctrl::connect(site.plain);
    plain.auth_tls(&config);
    plain.login(USER, PASS);

    // A clear-text client on the implicit port gets no greeting in clear text.
    let mut raw = TcpStream::connect_timeout(&site.ftps, Duration::from_secs(10)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    raw.write_all(b"USER alice\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert!(
        !String::from_utf8_lossy(&buf[..n]).starts_with("220"),
        "the implicit listener answered in clear text: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// Implicit FTPS behind a load balancer: the PROXY header comes before the TLS handshake,
/// and the session's client is the header's source (PORT to it is the client's own).
#[test]
fn implicit_ftps_after_a_proxy_header() {
    let cert = Cert::new();
    let site = implicit_site_with(&cert, "[proxy]\ntrusted = [\"127.0.0.10/32\"]");
    let sha = put_random(&site.server, "big.bin", BIG);
    let config = client_config(&cert, true);
    let client: SocketAddr = "127.0.0.5:40000".parse().unwrap();
    let frontend: SocketAddr = "127.0.0.10:990".parse().unwrap();
    for header in [proxy_v1(client, frontend), proxy_v2(client, frontend)] {
        let mut c = Ctrl::implicit_over(connect_from(BALANCER, site.ftps), &header, &config);
        c.login(USER, PASS);
        let r = c.cmd("STAT");
        assert!(r.text().contains("Connected to 127.0.0.5"), "{r}");
        let r = c.cmd("PORT 127,0,0,1,200,1");
        assert_eq!(r.code, 504, "the balancer's TCP peer address is foreign: {r}");
        let r = c.cmd("PORT 127,0,0,5,200,1");
        assert_eq!(r.code, 200, "{r}");
    }
    // Direct clients of the same listener still work (127.0.0.1 is not trusted).
    let mut c = Ctrl::connect_implicit(site.ftps, &config);
    c.login(USER, PASS);
    c.protect_data();
    assert_eq!(sha256_bytes(&c.retr_protected("big.bin")), sha);
}

/// Both directions end with the server's close_notify (TLS 1.3, RFC 8446 6.1), so neither
/// side can mistake a truncated transfer for a complete one. Clients that shut TLS down
/// properly (Python's `ftplib` calls `unwrap()` after `storbinary`) fail on an upload whose
/// data connection the server closes without close_notify, although it answers 226.
#[test]
fn protected_data_connections_end_with_close_notify() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    put_random(&s, "small.bin", 100_000);
    let mut c = protected_login(s.addr(), &client_config(&cert, true));
    // retr() asserts the server's close_notify after a download.
    assert_eq!(c.retr_protected("small.bin").len(), 100_000);
    let up = random_bytes(100_001);
    let closed = c.stor_protected("up.bin", &up);
    assert_eq!(sha256_file(&file_of(&s, "up.bin")), sha256_bytes(&up));
    assert!(
        closed.clean_close,
        "after a protected STOR (client sent close_notify, 226), the server closed the data \
         connection without its own close_notify: {:?}",
        closed.error
    );
}

// ---------------------------------------------------------------------------------------------
// Replies of the FTPS commands (RFC 4217) and fail-closed startup
// ---------------------------------------------------------------------------------------------

#[test]
fn ftps_command_replies() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let config = client_config(&cert, true);
    let mut c = Ctrl::connect(s.addr());

    let feat = c.expect("FEAT", 211).text();
    for f in ["AUTH TLS", "PBSZ", "PROT", "SSCN", "CPSV", "CCC"] {
        assert!(
            feat.lines().any(|l| l.trim() == f),
            "FEAT does not list {f}:\n{feat}"
        );
    }
    c.expect("AUTH KERBEROS_V4", 504);
    c.expect("PBSZ 0", 503);
    c.expect("PROT P", 503);
    assert!(!c.is_tls());

    c.auth_tls(&config);
    c.expect("AUTH TLS", 503);
    c.expect("CCC", 534);
    c.expect("PROT S", 536);
    c.expect("PROT E", 536);
    let r = c.expect("PBSZ 0", 200);
    assert!(r.text().contains("PBSZ=0"), "{r}");
    c.expect("PROT C", 200);
    c.expect("PROT P", 200);
    c.login(USER, PASS);

    let r = c.expect("SSCN", 200);
    assert!(r.text().contains("SSCN:SERVER METHOD"), "{r}");
    let r = c.expect("SSCN ON", 200);
    assert!(r.text().contains("SSCN:CLIENT METHOD"), "{r}");
    let r = c.expect("SSCN", 200);
    assert!(r.text().contains("SSCN:CLIENT METHOD"), "{r}");
    let r = c.expect("SSCN OFF", 200);
    assert!(r.text().contains("SSCN:SERVER METHOD"), "{r}");
    let r = c.cmd("SSCN MAYBE");
    assert_eq!(r.code, 501, "SSCN MAYBE -> {r}");
    let r = c.expect("CPSV", 227);
    assert!(parse_pasv(r.first()).is_some(), "{r}");
    // The control channel is still protected after the refused CCC.
    assert!(c.is_tls());
    c.expect("NOOP", 200);
}

/// Without a certificate, FEAT offers no TLS and AUTH TLS is not available.
#[test]
fn no_tls_without_certificate() {
    let s = Server::with_alice("");
    let mut c = s.ctrl();
    let feat = c.expect("FEAT", 211).text();
    for f in ["AUTH TLS", "PBSZ", "PROT", "SSCN", "CPSV", "CCC"] {
        assert!(
            !feat.lines().any(|l| l.trim() == f),
            "FEAT lists {f} without TLS:\n{feat}"
        );
    }
    let r = c.cmd("AUTH TLS");
    assert_eq!(r.code, 502, "AUTH TLS without a certificate -> {r}");
    // Still a clear-text session that works.
    c.login(USER, PASS);
}

/// Fail closed: `tls.require = "login"` (or "all", or an implicit listener) without a
/// certificate stops the server at startup with a message naming the setting.
#[test]
fn require_tls_without_certificate_refuses_to_start() {
    for (extra, key) in [
        ("[tls]\nrequire = \"login\"", "tls.require"),
        ("[tls]\nrequire = \"all\"", "tls.require"),
        (
            "[tls]\nimplicit_listen = [\"127.0.0.2:0\"]",
            "tls.implicit_listen",
        ),
    ] {
        let result = Server::builder().config(extra).try_start();
        let err = match result {
            Ok(_) => panic!("fxpd started with {extra:?} and no certificate"),
            Err(e) => e,
        };
        let status = err
            .status
            .unwrap_or_else(|| panic!("fxpd neither started nor exited with {extra:?}: {err}"));
        assert!(!status.success(), "exit status {status:?} for {extra:?}");
        assert!(err.stderr.contains(key), "stderr does not name {key}:\n{err}");
        assert!(err.listening_lines.is_empty(), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// tls.require
// ---------------------------------------------------------------------------------------------

#[test]
fn require_login_refuses_clear_text_user_but_exempts_anonymous() {
    let cert = Cert::new();
    let s = tls_site(
        &cert,
        SITE_A,
        "require = \"login\"",
        "[anonymous]\nenabled = true",
    );
    let config = client_config(&cert, true);

    let mut c = Ctrl::connect(s.addr());
    let r = c.expect(&format!("USER {USER}"), 530);
    assert!(r.text().contains("TLS"), "530 does not mention TLS: {r}");
    // PASS without an accepted USER does not log in either.
    let r = c.cmd(&format!("PASS {PASS}"));
    assert_eq!(r.code, 503, "clear-text PASS without an accepted USER -> {r}");
    let r = c.cmd("PASV");
    assert_eq!(r.code, 530, "PASV before login -> {r}");
    // After AUTH TLS the same login works.
    c.auth_tls(&config);
    c.login(USER, PASS);

    // anonymous_exempt defaults to true.
    let mut anon = s.ctrl();
    anon.expect("USER anonymous", 331);
    anon.expect("PASS guest@example.org", 230);

    // With the exemption off, anonymous needs TLS as well.
    let s = tls_site(
        &cert,
        SITE_A,
        "require = \"login\"\nanonymous_exempt = false",
        "[anonymous]\nenabled = true",
    );
    let mut anon = s.ctrl();
    let r = anon.expect("USER anonymous", 530);
    assert!(r.text().contains("TLS"), "{r}");
    let mut c = Ctrl::connect(s.addr());
    c.auth_tls(&config);
    c.login("anonymous", "guest@example.org");
}

/// A user added with `fxpd user add --require-tls` must use TLS even when the server does
/// not require it: clear-text login refused after the password, clear data refused (521).
#[test]
fn per_user_require_tls_overrides_the_server_setting() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "require = \"none\"", "");
    let mut cmd = std::process::Command::new(BIN);
    clear_fxpd_env(&mut cmd);
    cmd.args(["user", "add", "carol", "--require-tls", "--users"])
        .arg(&s.users_file);
    let out = run_with_input_timeout(&mut cmd, format!("{PASS}\n").as_bytes(), 60);
    assert!(out.status.success(), "user add --require-tls failed: {out:?}");
    let list = cli_user(&s.users_file, &["list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("tls=required"),
        "{list:?}"
    );
    // The users file is re-read on reload (SIGHUP), as `systemctl reload fxpd` does.
    s.reload().expect("the reload must be applied");

    // Clear text: the password is checked, then the login refused for want of TLS.
    let mut plain = s.ctrl();
    plain.expect("USER carol", 331);
    let r = plain.expect(&format!("PASS {PASS}"), 530);
    assert!(r.text().contains("TLS"), "{r}");
    // Other users are not affected.
    plain.login(USER, PASS);

    // Over TLS the login works, but only protected data connections.
    let config = client_config(&cert, true);
    let mut c = Ctrl::connect(s.addr());
    c.auth_tls(&config);
    c.login("carol", PASS);
    c.expect("PBSZ 0", 200);
    c.expect("PROT C", 200);
    let _ = c.pasv();
    let r = c.expect("LIST", 521);
    assert!(r.text().contains("PROT P"), "{r}");
}

/// A reload re-reads the certificate and key: the next handshake presents the new
/// certificate, and a client that trusts only the old one is refused.
#[test]
fn reload_replaces_the_certificate_for_the_next_handshake() {
    let old = Cert::new();
    let s = tls_site(&old, SITE_A, "", "");
    let trusts_old = client_config(&old, true);
    let mut before = Ctrl::connect(s.addr());
    before.auth_tls(&trusts_old);
    before.login(USER, PASS);

    let new = Cert::new();
    fs::copy(&new.cert, &old.cert).unwrap();
    fs::copy(&new.key, &old.key).unwrap();
    s.reload().expect("the reload must be applied");

    let mut after = Ctrl::connect(s.addr());
    after.auth_tls(&client_config(&new, true));
    after.login(USER, PASS);
    let mut stale = Ctrl::connect(s.addr());
    stale.expect("AUTH TLS", 234);
    let tcp = stale.stream.try_clone().unwrap();
    assert!(
        tls_connect(&trusts_old, tcp).is_err(),
        "the server still presents the old certificate after the reload"
    );
    // The session that started before the reload keeps working.
    before.expect("NOOP", 200);
}

#[test]
fn require_all_refuses_clear_data_and_allows_prot_p() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "require = \"all\"", "");
    let sha = put_random(&s, "big.bin", 1024 * 1024 + 5);
    let config = client_config(&cert, true);

    let mut plain = s.ctrl();
    let r = plain.expect(&format!("USER {USER}"), 530);
    assert!(r.text().contains("TLS"), "{r}");

    let mut c = Ctrl::connect(s.addr());
    c.auth_tls(&config);
    c.login(USER, PASS);
    c.expect("PBSZ 0", 200);
    c.expect("PROT C", 200);
    c.expect("TYPE I", 200);
    let kept = b"this file must survive a refused STOR\n";
    write_file(&file_of(&s, "keep.bin"), kept);
    for verb in [
        "LIST",
        "RETR big.bin",
        "STOR clear.bin",
        "STOR keep.bin",
        "APPE keep.bin",
    ] {
        let data_addr = c.pasv();
        let r = c.cmd(verb);
        assert_eq!(r.code, 521, "{verb} with PROT C under require=all -> {r}");
        // Nothing is served on the passive port.
        if let Ok(mut d) = TcpStream::connect_timeout(&data_addr, Duration::from_secs(2)) {
            d.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 16];
            assert!(
                !matches!(d.read(&mut buf), Ok(n) if n > 0),
                "{verb}: data sent in clear text"
            );
        }
    }
    // Checked at the end, so that the PROT P part below is exercised either way.
    let now = fs::read(file_of(&s, "keep.bin")).unwrap_or_default();
    let created = file_of(&s, "clear.bin").exists();

    c.expect("PROT P", 200);
    assert!(c.list_protected().contains("big.bin"));
    assert_eq!(sha256_bytes(&c.retr_protected("big.bin")), sha);
    let up = random_bytes(777_777);
    c.stor_protected("up.bin", &up);
    assert_eq!(sha256_file(&file_of(&s, "up.bin")), sha256_bytes(&up));

    assert!(
        now == kept,
        "a STOR/APPE refused with 521 (PROT C under require=all) changed an existing file: \
         {} bytes before, {} bytes after",
        kept.len(),
        now.len()
    );
    assert!(
        !created,
        "a STOR refused with 521 (PROT C under require=all) created the file"
    );
}

// ---------------------------------------------------------------------------------------------
// Data-connection hijack attempts (PROT P, passive, the thief on the client's own address)
// ---------------------------------------------------------------------------------------------

/// What a thief got out of a passive port.
struct Loot {
    handshake: Result<bool, String>,
    received: Received,
}

/// Connects to `addr` now (so the thief is first in the listen queue), then in a thread runs
/// the TLS handshake with `config` and reads whatever the server sends.
fn thief(addr: SocketAddr, config: Arc<ClientConfig>) -> thread::JoinHandle<Loot> {
    let tcp = data_connect(addr);
    thread::spawn(move || match tls_connect(&config, tcp) {
        Ok(mut s) => {
            let resumed = resumed(&s);
            Loot {
                handshake: Ok(resumed),
                received: read_tls_to_end(&mut s, Duration::from_secs(60)),
            }
        }
        Err(e) => Loot {
            handshake: Err(e.to_string()),
            received: Received {
                data: Vec::new(),
                clean_close: false,
                error: None,
            },
        },
    })
}

/// A thief on the victim's own address (so the FXP policy lets it in) who does not resume the
/// victim's TLS session connects to the passive port first: its connection is dropped, it gets
/// no file data and the transfer ends with 425 naming resumption. A later transfer works.
#[test]
fn hijack_without_resumption_is_refused() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let sha = put_random(&s, "secret.bin", BIG);
    let mut victim = protected_login(s.addr(), &client_config(&cert, true));

    let data_addr = victim.pasv();
    let loot = thief(data_addr, client_config(&cert, false));
    let r = victim.cmd("RETR secret.bin");
    assert!(r.code == 150 || r.code == 125, "RETR -> {r}");
    let r = victim.final_reply(FINAL_REPLY_WITHIN);
    let loot = loot.join().expect("thief thread");
    assert_eq!(
        loot.received.data.len(),
        0,
        "the thief received {} bytes of the file (handshake {:?})",
        loot.received.data.len(),
        loot.handshake
    );
    assert_eq!(r.code, 425, "victim's RETR after the thief's attempt -> {r}");
    assert!(
        r.text().contains("TLS") && r.text().contains("resum"),
        "425 does not name the missing resumption: {r}"
    );
    assert!(
        !matches!(loot.handshake, Ok(true)),
        "the thief's handshake resumed: {:?}",
        loot.handshake
    );

    // The session is intact: the next transfer works.
    assert_eq!(sha256_bytes(&victim.retr_protected("secret.bin")), sha);
}

/// A thief on the victim's address who holds a TLS session of its OWN with the same server
/// (one `AUTH TLS` on a control connection of its own; no login) resumes that session on the
/// victim's passive port. Resuming *some* session of this server is not proof of being the
/// victim: the data connection must resume the session of the control connection that
/// opened the passive port (vsftpd's require_ssl_reuse ties it to the control connection).
/// Expected: refused, no data for the thief, 425 for the victim.
#[test]
fn hijack_with_a_session_of_the_thiefs_own_is_refused() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let sha = put_random(&s, "secret.bin", BIG);
    let mut victim = protected_login(s.addr(), &client_config(&cert, true));

    // The thief's own control connection: AUTH TLS, then a command so that the session
    // tickets sent after the handshake are read. Not logged in.
    let thief_config = client_config(&cert, true);
    let mut thief_ctrl = Ctrl::connect(s.addr());
    thief_ctrl.auth_tls(&thief_config);
    thief_ctrl.expect("FEAT", 211);

    let data_addr = victim.pasv();
    let loot = thief(data_addr, thief_config);
    let r = victim.cmd("RETR secret.bin");
    assert!(r.code == 150 || r.code == 125, "RETR -> {r}");
    let r = victim.final_reply(FINAL_REPLY_WITHIN);
    let loot = loot.join().expect("thief thread");
    let stolen = &loot.received.data;
    assert!(
        stolen.is_empty(),
        "SECURITY: a third party holding its own TLS session with this server resumed it on \
         the victim's passive port and received {} bytes of the victim's file (complete and \
         identical: {}); thief handshake resumed: {:?}; victim's final reply: {r}",
        stolen.len(),
        stolen.len() == BIG && sha256_bytes(stolen) == sha,
        loot.handshake
    );
    assert_eq!(r.code, 425, "victim's RETR -> {r}");
    assert!(r.text().contains("resum"), "{r}");
}

/// Which side opens a protected data connection.
#[derive(Clone, Copy, Debug)]
enum DataMode {
    /// PASV: the client connects to the server's passive port.
    Passive,
    /// PORT: the server connects to the client's listener (the client is still the TLS client).
    Active,
}

/// One protected transfer (`STOR` when `upload` holds data, else `RETR` of `name`) whose data
/// connection's handshake uses `data_config`: the control connection's own configuration
/// (it resumes) or another one (it does not). Returns the final reply and the bytes read.
fn protected_transfer(
    c: &mut Ctrl,
    mode: DataMode,
    name: &str,
    upload: Option<&[u8]>,
    data_config: &Arc<ClientConfig>,
) -> (Reply, Vec<u8>) {
    let verb = if upload.is_some() { "STOR" } else { "RETR" };
    let (tcp, listener) = match mode {
        DataMode::Passive => (Some(data_connect(c.pasv())), None),
        DataMode::Active => {
            let l = std::net::TcpListener::bind((c.local_addr().ip(), 0)).unwrap();
            c.expect(&port_command(l.local_addr().unwrap()), 200);
            (None, Some(l))
        }
    };
    let r = c.cmd(&format!("{verb} {name}"));
    assert!(r.code == 150 || r.code == 125, "{verb} {name} -> {r}");
    let tcp = match (tcp, listener) {
        (Some(tcp), _) => tcp,
        (None, Some(l)) => {
            let (tcp, _) = l.accept().expect("the server's active data connection");
            tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
            tcp
        }
        (None, None) => unreachable!(),
    };
    let mut got = Vec::new();
    if let Ok(mut s) = tls_connect(data_config, tcp) {
        match upload {
            Some(data) => {
                // The server may already have dropped a refused connection: ignore write errors.
                let _ = s.write_all(data);
                s.conn.send_close_notify();
                let _ = s.flush();
                let _ = s.sock.shutdown(Shutdown::Write);
                got = read_tls_to_end(&mut s, Duration::from_secs(30)).data;
            }
            None => got = read_tls_to_end(&mut s, FINAL_REPLY_WITHIN).data,
        }
    }
    (c.final_reply(FINAL_REPLY_WITHIN), got)
}

/// `tls.require_data_resumption` holds on TLS 1.2 and 1.3, in passive and active mode, for
/// downloads and uploads: a data connection that resumes the control connection's session
/// moves the file (hash checked); one that does not is refused with 425 naming resumption,
/// reads nothing and stores nothing.
#[test]
fn data_resumption_is_required_on_every_version_mode_and_direction() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let sha = put_random(&s, "down.bin", 300_000);
    let upload = random_bytes(200_000);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        for mode in [DataMode::Passive, DataMode::Active] {
            let case = format!("{:?} {mode:?}", version.version);
            let config = client_config_version(&cert, true, version);
            let stranger = client_config_version(&cert, false, version);
            let mut c = protected_login(s.addr(), &config);

            let (r, got) = protected_transfer(&mut c, mode, "down.bin", None, &config);
            assert_eq!(r.code, 226, "{case} RETR, resumed -> {r}");
            assert_eq!(sha256_bytes(&got), sha, "{case} RETR: wrong data");
            let (r, got) = protected_transfer(&mut c, mode, "down.bin", None, &stranger);
            assert_eq!(r.code, 425, "{case} RETR, not resumed -> {r}");
            assert!(
                r.text().contains("resum"),
                "{case}: the 425 must name resumption: {r}"
            );
            assert!(
                got.is_empty(),
                "{case}: {} bytes read without resumption",
                got.len()
            );

            let name = format!("up-{:?}-{mode:?}.bin", version.version);
            let (r, _) = protected_transfer(&mut c, mode, &name, Some(&upload), &stranger);
            assert_eq!(r.code, 425, "{case} STOR, not resumed -> {r}");
            assert!(
                r.text().contains("resum"),
                "{case}: the 425 must name resumption: {r}"
            );
            assert_eq!(
                len_or_zero(&file_of(&s, &name)),
                0,
                "{case}: bytes stored without resumption"
            );
            let (r, _) = protected_transfer(&mut c, mode, &name, Some(&upload), &config);
            assert_eq!(r.code, 226, "{case} STOR, resumed -> {r}");
            assert_eq!(
                sha256_file(&file_of(&s, &name)),
                sha256_bytes(&upload),
                "{case}: stored data"
            );
        }
    }
}

/// A thief on the client's own address reaches an upload's passive port first, completes a
/// handshake of its own and sends bytes: they are never stored (TLS 1.2 and 1.3), and the
/// client's retry stores exactly the client's file.
#[test]
fn upload_hijack_stores_nothing_of_the_thiefs() {
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let mine = random_bytes(150_000);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = client_config_version(&cert, true, version);
        let mut victim = protected_login(s.addr(), &config);
        let name = format!("victim-{:?}.bin", version.version);
        let addr = victim.pasv();
        let thief_tcp = data_connect(addr);
        let r = victim.cmd(&format!("STOR {name}"));
        assert!(r.code == 150 || r.code == 125, "STOR -> {r}");
        if let Ok(mut t) = tls_connect(&client_config_version(&cert, false, version), thief_tcp) {
            let _ = t.write_all(&[b'X'; 64 * 1024]);
            let _ = t.flush();
        }
        let r = victim.final_reply(FINAL_REPLY_WITHIN);
        let stored = fs::read(file_of(&s, &name)).unwrap_or_default();
        let theirs = stored.iter().filter(|&&b| b == b'X').count();
        assert_eq!(
            theirs, 0,
            "{version:?}: {theirs} bytes of the thief's were stored ({r})"
        );
        assert_eq!(r.code, 425, "{version:?}: victim's STOR after the thief -> {r}");
        victim.stor_protected(&name, &mine);
        assert_eq!(sha256_file(&file_of(&s, &name)), sha256_bytes(&mine));
    }
}

// ---------------------------------------------------------------------------------------------
// PROT P FXP between two fxpd instances (scripted client)
// ---------------------------------------------------------------------------------------------

/// Which server is the TLS client on the server-to-server data connection.
#[derive(Clone, Copy, Debug)]
enum FxpTls {
    /// `SSCN ON` on the source (PORT side): the source connects and is the TLS client; the
    /// destination (PASV side) is the TLS server.
    SscnOnSource,
    /// `CPSV` on the destination: the destination is the TLS client on its passive
    /// connection; the source (PORT side) is the TLS server.
    CpsvOnDestination,
}

/// Logs in to both sites with TLS and PROT P, hands B's passive address to A, and starts
/// `RETR` on A and `STOR` on B. Returns the final replies (source, destination).
fn tls_fxp(a: &Server, cert_a: &Cert, b: &Server, cert_b: &Cert, how: FxpTls, name: &str) -> (Reply, Reply) {
    let mut src = protected_login(a.addr(), &client_config(cert_a, true));
    let mut dst = protected_login(b.addr(), &client_config(cert_b, true));
    let listening = match how {
        FxpTls::SscnOnSource => {
            let r = src.expect("SSCN ON", 200);
            assert!(r.text().contains("SSCN:CLIENT METHOD"), "{r}");
            dst.pasv()
        }
        FxpTls::CpsvOnDestination => {
            let r = dst.expect("CPSV", 227);
            parse_pasv(r.first()).unwrap_or_else(|| panic!("cannot parse CPSV reply: {r}"))
        }
    };
    assert_eq!(listening.ip(), b.addr().ip(), "B announced {listening}");
    src.expect(&port_command(listening), 200);
    let r = dst.cmd(&format!("STOR {name}"));
    assert!(r.code == 150 || r.code == 125, "{how:?}: STOR on B -> {r}");
    let r = src.cmd(&format!("RETR {name}"));
    assert!(r.code == 150 || r.code == 125, "{how:?}: RETR on A -> {r}");
    let src_final = src.final_reply(FINAL_REPLY_WITHIN);
    let dst_final = dst.final_reply(FINAL_REPLY_WITHIN);
    (src_final, dst_final)
}

fn assert_fxp_copied(a: &Server, b: &Server, name: &str, sha: &str, finals: (Reply, Reply), how: FxpTls) {
    let (src_final, dst_final) = finals;
    assert!(
        src_final.code == 226 && dst_final.code == 226,
        "{how:?}: A's RETR ended with: {src_final}; B's STOR ended with: {dst_final}; \
         {} of {BIG} bytes on B",
        len_or_zero(&file_of(b, name))
    );
    let copied = file_of(b, name);
    assert_eq!(len_or_zero(&copied), BIG as u64, "{how:?}: size on B");
    assert_eq!(sha256_file(&copied), sha, "{how:?}: SHA-256 on B");
    assert_eq!(sha256_file(&file_of(a, name)), sha, "source changed");
}

/// SSCN: A (source, 127.0.0.2) is the TLS client and connects to B's passive port; B (the
/// TLS server) cannot expect A to resume B's control session, so B turns
/// `require_data_resumption` off. A needs `allow_foreign_port`, B `allow_foreign_passive`.
#[test]
fn tls_fxp_with_sscn_on_the_source() {
    let (cert_a, cert_b) = (Cert::new(), Cert::new());
    let a = tls_site(&cert_a, SITE_A, "", "[fxp]\nallow_foreign_port = true");
    let b = tls_site(
        &cert_b,
        SITE_B,
        "require_data_resumption = false",
        "[fxp]\nallow_foreign_passive = true",
    );
    let sha = put_random(&a, "fxp.bin", BIG);
    let finals = tls_fxp(&a, &cert_a, &b, &cert_b, FxpTls::SscnOnSource, "fxp.bin");
    assert_fxp_copied(&a, &b, "fxp.bin", &sha, finals, FxpTls::SscnOnSource);
}

/// CPSV: B (destination) is the TLS client on its passive connection, A (source, PORT side)
/// the TLS server, so A turns `require_data_resumption` off.
#[test]
fn tls_fxp_with_cpsv_on_the_destination() {
    let (cert_a, cert_b) = (Cert::new(), Cert::new());
    let a = tls_site(
        &cert_a,
        SITE_A,
        "require_data_resumption = false",
        "[fxp]\nallow_foreign_port = true",
    );
    let b = tls_site(&cert_b, SITE_B, "", "[fxp]\nallow_foreign_passive = true");
    let sha = put_random(&a, "fxp.bin", BIG);
    let finals = tls_fxp(&a, &cert_a, &b, &cert_b, FxpTls::CpsvOnDestination, "fxp.bin");
    assert_fxp_copied(&a, &b, "fxp.bin", &sha, finals, FxpTls::CpsvOnDestination);
}

/// With the default `require_data_resumption = true` on the TLS-server side, the other server
/// cannot resume and the FXP transfer fails with 425 naming resumption: the check applies to
/// server-to-server connections too (which is why the tests above turn it off there).
#[test]
fn tls_fxp_fails_when_the_tls_server_side_requires_resumption() {
    let (cert_a, cert_b) = (Cert::new(), Cert::new());
    let a = tls_site(&cert_a, SITE_A, "", "[fxp]\nallow_foreign_port = true");
    let b = tls_site(&cert_b, SITE_B, "", "[fxp]\nallow_foreign_passive = true");
    put_random(&a, "fxp.bin", BIG);
    let (src_final, dst_final) = tls_fxp(&a, &cert_a, &b, &cert_b, FxpTls::SscnOnSource, "fxp.bin");
    assert_eq!(dst_final.code, 425, "B's STOR -> {dst_final}");
    assert!(dst_final.text().contains("resum"), "{dst_final}");
    assert_eq!(
        src_final.code, 426,
        "A's RETR should fail when B drops the connection: {src_final}"
    );
    assert_eq!(len_or_zero(&file_of(&b, "fxp.bin")), 0, "file data arrived on B");
}

// ---------------------------------------------------------------------------------------------
// External clients: curl
// ---------------------------------------------------------------------------------------------

/// A scratch directory for one client inside the test's tempdir.
fn work_dir(s: &Server, name: &str) -> PathBuf {
    let d = s.dir.path().join(name);
    fs::create_dir_all(&d).unwrap();
    d
}

fn curl_tls(work: &Path, args: &[&str]) -> Output {
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "-v", "--connect-timeout", "10", "--max-time", "100", "-k"])
        .arg("-u")
        .arg(format!("{USER}:{PASS}"))
        .args(args);
    run_with_timeout(&mut c, 120)
}

fn assert_curl_protected(o: &Output, what: &str) {
    assert_success(o, what);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("> PROT P"),
        "{what}: curl did not send PROT P:\n{log}"
    );
}

#[test]
fn curl_explicit_and_implicit_ftps() {
    if !require_client("curl") {
        return;
    }
    let cert = Cert::new();
    let site = implicit_site(&cert);
    let s = &site.server;
    let sha = put_random(s, "big.bin", BIG);
    let work = work_dir(s, "curl");

    // Explicit: --ssl-reqd on ftp:// (AUTH TLS, PBSZ 0, PROT P).
    let out = work.join("explicit.bin");
    let url = format!("ftp://{}/big.bin", site.plain);
    let o = curl_tls(&work, &["--ssl-reqd", "-o", out.to_str().unwrap(), &url]);
    assert_curl_protected(&o, "curl --ssl-reqd download");
    // curl tries `AUTH SSL` first and falls back to `AUTH TLS`; fxpd accepts both.
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("> AUTH SSL") || log.contains("> AUTH TLS"),
        "{}",
        describe_output(&o)
    );
    assert_eq!(sha256_file(&out), sha, "curl explicit download");

    let src = work.join("explicit-up.src");
    let up_sha = write_random_file(&src, BIG + 11);
    let url = format!("ftp://{}/explicit-up.bin", site.plain);
    let o = curl_tls(&work, &["--ssl-reqd", "-T", src.to_str().unwrap(), &url]);
    assert_curl_protected(&o, "curl --ssl-reqd upload");
    assert_eq!(sha256_file(&file_of(s, "explicit-up.bin")), up_sha);

    // Implicit: ftps:// to the LISTENING-FTPS port.
    let out = work.join("implicit.bin");
    let url = format!("ftps://{}/big.bin", site.ftps);
    let o = curl_tls(&work, &["-o", out.to_str().unwrap(), &url]);
    assert_curl_protected(&o, "curl ftps:// download");
    assert_eq!(sha256_file(&out), sha, "curl implicit download");

    let src = work.join("implicit-up.src");
    let up_sha = write_random_file(&src, BIG - 13);
    let url = format!("ftps://{}/implicit-up.bin", site.ftps);
    let o = curl_tls(&work, &["-T", src.to_str().unwrap(), &url]);
    assert_curl_protected(&o, "curl ftps:// upload");
    assert_eq!(sha256_file(&file_of(s, "implicit-up.bin")), up_sha);
}

// ---------------------------------------------------------------------------------------------
// External clients: lftp
// ---------------------------------------------------------------------------------------------

const LFTP_TLS: &str = "set cmd:fail-exit yes; set ssl:verify-certificate no; \
     set ftp:ssl-force true; set ftp:ssl-protect-data true; set ftp:ssl-protect-list true; \
     set net:max-retries 1; set net:timeout 15; set net:reconnect-interval-base 1; \
     set net:reconnect-interval-max 1; set xfer:clobber on;";

/// Runs lftp with the TLS settings, a debug log, and `commands`; returns output and log.
fn lftp_tls(work: &Path, commands: &str) -> (Output, String) {
    fs::create_dir_all(work).unwrap();
    let log = work.join("lftp.log");
    let script = format!("{LFTP_TLS} debug -t -o {} 5; {commands}", log.display());
    let out = run_with_timeout(
        client_command("lftp", &work.join("home"))
            .current_dir(work)
            .arg("-c")
            .arg(&script),
        240,
    );
    (out, fs::read_to_string(&log).unwrap_or_default())
}

/// A small tree with random files and an empty file; returns its hashes.
fn small_tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    write_random_file(&dir.join("a.bin"), 300 * 1024 + 1);
    write_file(&dir.join("empty.dat"), b"");
    write_random_file(&dir.join("sub/b.bin"), 64 * 1024 + 3);
    write_file(&dir.join("sub/deeper/c.txt"), &text_content(50));
    tree_hashes(dir)
}

#[test]
fn lftp_get_put_and_mirror_over_tls() {
    if !require_client("lftp") {
        return;
    }
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let sha = put_random(&s, "big.bin", BIG);
    let remote_tree = small_tree(&file_of(&s, "tree"));
    let work = work_dir(&s, "lftp");
    let local_up = work.join("up.src");
    let up_sha = write_random_file(&local_up, BIG + 5);
    let local_tree = work.join("tree-up");
    let up_tree = small_tree(&local_tree);
    let got = work.join("got.bin");
    let mirrored = work.join("mirrored");

    let commands = format!(
        "open -u {USER},{PASS} ftp://{addr}; get big.bin -o {got}; put {up} -o up.bin; \
         mirror tree {mirrored}; mirror -R {local_tree} tree-up",
        addr = s.addr(),
        got = got.display(),
        up = local_up.display(),
        mirrored = mirrored.display(),
        local_tree = local_tree.display(),
    );
    let (out, log) = lftp_tls(&work, &commands);
    assert!(
        out.status.success(),
        "lftp over TLS failed: {}\n--- lftp log ---\n{log}",
        describe_output(&out)
    );
    assert!(log.contains("AUTH TLS"), "no AUTH TLS in the lftp log:\n{log}");
    assert!(log.contains("PROT P"), "no PROT P in the lftp log:\n{log}");
    assert_eq!(sha256_file(&got), sha, "lftp get");
    assert_eq!(sha256_file(&file_of(&s, "up.bin")), up_sha, "lftp put");
    assert_eq!(tree_hashes(&mirrored), remote_tree, "lftp mirror (download)");
    assert_eq!(
        tree_hashes(&file_of(&s, "tree-up")),
        up_tree,
        "lftp mirror -R (upload)"
    );
}

/// lftp's own FXP with `ftp:ssl-protect-fxp`: lftp 4.9 sends `CPSV` to the destination
/// when FEAT lists it, so B (PASV side) is the TLS client and A (PORT side) the TLS server,
/// which turns `require_data_resumption` off (B cannot resume A's control session). Each site
/// gets only the FXP switch its role needs.
#[test]
fn lftp_tls_fxp_between_two_sites() {
    if !require_client("lftp") {
        return;
    }
    let (cert_a, cert_b) = (Cert::new(), Cert::new());
    let a = tls_site(
        &cert_a,
        SITE_A,
        "require_data_resumption = false",
        "[fxp]\nallow_foreign_port = true",
    );
    let b = tls_site(&cert_b, SITE_B, "", "[fxp]\nallow_foreign_passive = true");
    let sha = put_random(&a, "lftp.bin", BIG);
    let work = work_dir(&a, "lftp-fxp");
    let commands = format!(
        "set ftp:use-fxp yes; set ftp:fxp-force yes; set ftp:fxp-passive-source no; \
         set ftp:ssl-protect-fxp true; \
         get ftp://{USER}:{PASS}@{a}/lftp.bin -o ftp://{USER}:{PASS}@{b}/lftp.bin",
        a = a.addr(),
        b = b.addr()
    );
    let (out, log) = lftp_tls(&work, &commands);
    assert!(
        out.status.success(),
        "lftp TLS FXP failed: {}\n--- lftp log ---\n{log}",
        describe_output(&out)
    );
    assert!(
        log.contains("---> CPSV"),
        "lftp did not send CPSV (the site settings assume it):\n{log}"
    );
    assert!(log.contains("PROT P"), "no PROT P in the lftp log:\n{log}");
    // Server to server: B's passive address went to A (never a copy through lftp).
    assert!(
        log.contains("(127,0,0,3,") && log.contains("PORT 127,0,0,3,"),
        "no PASV/CPSV on B with PORT to A in the lftp log:\n{log}"
    );
    let method: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("SSCN") || l.contains("CPSV") || l.contains("PORT ") || l.contains("(127,0,0,3,")
        })
        .collect();
    eprintln!("lftp TLS FXP protocol lines:\n{}", method.join("\n"));
    assert_eq!(sha256_file(&file_of(&b, "lftp.bin")), sha, "SHA-256 of B's copy");
}

// ---------------------------------------------------------------------------------------------
// External clients: Python ftplib.FTP_TLS
// ---------------------------------------------------------------------------------------------

/// Modes: `stock-get`, `stock-put` (plain `FTP_TLS`), `resume-get`, `resume-put` (a subclass
/// that resumes the control session on data connections). Prints `OK <final reply>` and exits
/// 0, or prints `ERROR ...` and `REPLY <final reply>` and exits 3.
const PY_FTPS: &str = r#"
import ftplib, socket, ssl, sys

class ResumingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose protected data connections resume the control connection's session."""
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)
        return conn, size

mode, host, port, user, password, remote, local = sys.argv[1:8]
cls = ResumingFTP_TLS if mode.startswith("resume") else ftplib.FTP_TLS
ftp = cls(timeout=30)
ftp.connect(host, int(port))
ftp.login(user, password)   # AUTH TLS first (secure=True)
ftp.prot_p()
try:
    if mode.endswith("get"):
        with open(local, "wb") as f:
            resp = ftp.retrbinary("RETR " + remote, f.write)
    else:
        with open(local, "rb") as f:
            resp = ftp.storbinary("STOR " + remote, f)
    print("OK", resp, flush=True)
except ftplib.Error as e:
    # The final reply itself was the error.
    print("ERROR", type(e).__name__, e, flush=True)
    print("REPLY", e, flush=True)
    sys.exit(3)
except Exception as e:
    print("ERROR", type(e).__name__, e, flush=True)
    try:
        print("REPLY", ftp.getresp(), flush=True)
    except Exception as e2:
        print("REPLY", e2, flush=True)
    sys.exit(3)
ftp.quit()
"#;

fn python_ftps(s: &Server, work: &Path, mode: &str, remote: &str, local: &Path) -> Output {
    let script = work.join("ftps_client.py");
    fs::write(&script, PY_FTPS).unwrap();
    let mut c = client_command("python3", &work.join("home"));
    c.arg(&script)
        .arg(mode)
        .arg(s.addr().ip().to_string())
        .arg(s.port().to_string())
        .args([USER, PASS, remote])
        .arg(local);
    run_with_timeout(&mut c, 120)
}

/// Stock `FTP_TLS` does not resume the TLS session on data connections, so with the default
/// `require_data_resumption` its PROT P transfer ends with 425 naming resumption (the check is
/// real); a subclass that passes `session=self.sock.session` downloads and uploads.
#[test]
fn python_ftp_tls_needs_resumption() {
    if !require_client("python3") {
        return;
    }
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "", "");
    let sha = put_random(&s, "big.bin", BIG);
    let work = work_dir(&s, "python");

    let out = work.join("stock.bin");
    let o = python_ftps(&s, &work, "stock-get", "big.bin", &out);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !o.status.success(),
        "stock FTP_TLS succeeded without resuming the session: {}",
        describe_output(&o)
    );
    let reply = text
        .lines()
        .find_map(|l| l.strip_prefix("REPLY "))
        .unwrap_or_else(|| panic!("no final reply: {}", describe_output(&o)));
    eprintln!("stock FTP_TLS download, final reply: {reply}");
    assert!(
        reply.starts_with("425") && reply.contains("resum"),
        "stock FTP_TLS: expected 425 naming resumption, got {reply:?}: {}",
        describe_output(&o)
    );
    assert_eq!(len_or_zero(&out), 0, "the non-resuming client got file data");

    let out = work.join("resumed.bin");
    let o = python_ftps(&s, &work, "resume-get", "big.bin", &out);
    assert_success(&o, "resuming FTP_TLS download");
    assert_eq!(sha256_file(&out), sha, "resuming FTP_TLS download");

    let src = work.join("up.src");
    let up_sha = write_random_file(&src, BIG + 3);
    let o = python_ftps(&s, &work, "resume-put", "up.bin", &src);
    assert_success(&o, "resuming FTP_TLS upload");
    assert_eq!(
        sha256_file(&file_of(&s, "up.bin")),
        up_sha,
        "resuming FTP_TLS upload"
    );
}

/// With `require_data_resumption = false`, stock `FTP_TLS` works both ways.
#[test]
fn python_stock_ftp_tls_without_required_resumption() {
    if !require_client("python3") {
        return;
    }
    let cert = Cert::new();
    let s = tls_site(&cert, SITE_A, "require_data_resumption = false", "");
    let sha = put_random(&s, "big.bin", BIG);
    let work = work_dir(&s, "python");

    let out = work.join("stock.bin");
    let o = python_ftps(&s, &work, "stock-get", "big.bin", &out);
    assert_success(&o, "stock FTP_TLS download");
    assert_eq!(sha256_file(&out), sha, "stock FTP_TLS download");

    let src = work.join("up.src");
    let up_sha = write_random_file(&src, BIG + 1);
    let o = python_ftps(&s, &work, "stock-put", "up.bin", &src);
    assert_success(&o, "stock FTP_TLS upload");
    assert_eq!(
        sha256_file(&file_of(&s, "up.bin")),
        up_sha,
        "stock FTP_TLS upload"
    );
}
