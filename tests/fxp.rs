//! End-to-end FXP (server-to-server) tests: two real `fxpd` processes and a third party.
//!
//! Every test starts its own servers with the harness in `tests/common`: site A on 127.0.0.2 and
//! site B on 127.0.0.3 (or both on `[::1]`), each with its own root and user `alice`. The test
//! itself is the third machine of Microsoft KB Q247132: it holds one control connection to each
//! server (from 127.0.0.1) and sends the literal commands of the KB procedure. Other loopback
//! addresses play the other parties: 127.0.0.9 a thief racing for a passive port, 127.0.0.4 a
//! host outside `fxp.peers`, 127.0.0.5 an innocent client of a server that banned 127.0.0.1.
//! Nothing leaves the loopback interface.
//!
//! Rules: every transfer is checked by SHA-256; every socket and external command has a
//! deadline; a refusal is checked for its code (504 or 425), its reason token and the setting
//! that would allow it, and, where a connection could have been made, for the connection NOT
//! having been made. The lftp and nmap tests are gated by `FXPD_EXTERNAL_CLIENTS=1` like the
//! other external-client tests (see `tests/common`): when set, a missing tool is a failure.
//! The last section checks that the third party can abort a stuck server-to-server transfer,
//! also with the Telnet Synch that lftp puts before `ABOR` when an FXP attempt fails.

mod common;

use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------------------------------------
// Who is who
// ---------------------------------------------------------------------------------------------

/// Where the test's control connections come from (the kernel's choice for 127.0.0.0/8).
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Site A: the source in the A -> B direction.
const SITE_A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Site B: the destination in the A -> B direction, and the one listed partner in `fxp.peers`.
const SITE_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// A host that is not in `fxp.peers = ["127.0.0.3/32"]`.
const UNLISTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
/// A second, innocent client (must not suffer from another address's ban).
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
/// Someone who is not the client and connects to a passive port.
const THIEF: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
/// Both sites in the IPv6 test.
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The user on every site (home `alice`, write access, password [`PASS`]).
const USER: &str = "alice";
/// Seconds a server waits for a data connection; short, so refused transfers end quickly.
const DATA_TIMEOUT_SECS: u64 = 5;
/// Size of the file an FXP transfer moves: several MiB, not a multiple of any buffer size.
const BIG: usize = 8 * 1024 * 1024 + 4321;
/// Longest a whole FXP transfer (all STAT polling included) may take.
const TRANSFER_DEADLINE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Sites
// ---------------------------------------------------------------------------------------------

/// The config of one site: listen on `ip` (port 0), a short data timeout, and `fxp` as the body
/// of the `[fxp]` table (e.g. `"allow_foreign_port = true"`; empty: the hardened defaults).
fn site_config(ip: IpAddr, fxp: &str) -> String {
    format!(
        "listen = [\"{}\"]\n\n[limits]\ndata_timeout_secs = {DATA_TIMEOUT_SECS}\n\n[fxp]\n{fxp}\n",
        SocketAddr::new(ip, 0)
    )
}

/// A running site on `ip` with user `alice` and `fxp` in its `[fxp]` table.
fn site(ip: IpAddr, fxp: &str) -> Server {
    site_with(ip, fxp, "")
}

/// [`site`] with more TOML tables (e.g. `"[anonymous]\nenabled = true"`).
fn site_with(ip: IpAddr, fxp: &str, tables: &str) -> Server {
    Server::builder()
        .config(&site_config(ip, fxp))
        .config(tables)
        .user(USER, PASS, USER, true)
        .start()
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

/// A users file with one user per `(name, fxp)` pair, made with
/// `fxpd user add NAME --users FILE --write --fxp FXP` (home: the server root, password [`PASS`]).
/// The file lives in `dir`; pass it to the server with `--users`.
fn users_file_with_fxp(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let file = dir.join("users.toml");
    for (name, fxp) in users {
        let mut cmd = Command::new(BIN);
        clear_fxpd_env(&mut cmd);
        cmd.args(["user", "add", name, "--users"])
            .arg(&file)
            .args(["--write", "--fxp", fxp]);
        let out = run_with_input_timeout(&mut cmd, format!("{PASS}\n").as_bytes(), 60);
        assert_success(&out, &format!("fxpd user add {name} --fxp {fxp}"));
    }
    file
}

/// A site on 127.0.0.2 whose users come from `users_file` (homes are the server root).
fn site_with_users(fxp: &str, tables: &str, users_file: &Path) -> Server {
    Server::builder()
        .config(&site_config(SITE_A, fxp))
        .config(tables)
        .arg("--users")
        .arg(users_file.to_str().expect("UTF-8 temp path"))
        .start()
}

// ---------------------------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------------------------

/// A listener on `ip` standing for a host that a PORT/EPRT names.
fn listener_on(ip: IpAddr) -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Asserts that nobody connected to `l` within two seconds.
fn assert_never_connected(l: &TcpListener, what: &str) {
    if let Some((_, from)) = accept_within(l, Duration::from_secs(2)) {
        panic!(
            "{what}: {} received a connection from {from}",
            l.local_addr().unwrap()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

/// Asserts a policy refusal: 504, the reason token in parentheses, and the setting that would
/// allow it (if any).
fn assert_refused(r: &Reply, token: &str, setting: Option<&str>) {
    assert_eq!(r.code, 504, "expected a 504 refusal ({token}), got: {r}");
    assert!(r.text().contains(&format!("({token})")), "no ({token}) in: {r}");
    if let Some(setting) = setting {
        assert!(r.text().contains(setting), "no {setting} in: {r}");
    }
}

/// Asserts that a transfer command did NOT start a transfer (no 1xx): the reply is a 4xx/5xx.
fn assert_no_transfer(r: &Reply, what: &str) {
    assert!(
        r.class() == 4 || r.class() == 5,
        "{what}: expected 425/503-like, got: {r}"
    );
}

/// Asserts a preliminary reply (150 or 125) to a transfer command.
fn assert_preliminary(r: &Reply, what: &str) {
    assert!(
        r.code == 150 || r.code == 125,
        "{what}: expected 150/125, got: {r}"
    );
}

// ---------------------------------------------------------------------------------------------
// The KB Q247132 procedure
// ---------------------------------------------------------------------------------------------

/// How the destination's address travels to the source.
#[derive(Clone, Copy, Debug)]
enum Handoff {
    /// `PASV` on the destination, `PORT h1,h2,h3,h4,p1,p2` on the source (the KB literally).
    PasvPort,
    /// `EPSV` on the destination, `EPRT |af|addr|port|` on the source (RFC 2428); the address is
    /// the destination's control address, as EPSV replies carry only the port.
    EpsvEprt,
}

/// The third machine of KB Q247132: logged in to the source and the destination.
struct Fxp {
    /// "Client1": the server that gets PORT/EPRT and RETR.
    src: Ctrl,
    /// "Client2": the server that gets PASV/EPSV and STOR.
    dst: Ctrl,
}

impl Fxp {
    /// Steps 1-2: connect and log in to both servers as alice.
    fn login(src: &Server, dst: &Server) -> Fxp {
        Fxp {
            src: src.login(USER, PASS),
            dst: dst.login(USER, PASS),
        }
    }

    /// Steps 3-5: `TYPE I` on both, a passive listener on the destination, and its address in
    /// PORT/EPRT to the source. Returns the source's reply to PORT/EPRT (the caller checks it).
    fn hand_off(&mut self, how: Handoff) -> Reply {
        self.dst.expect("TYPE I", 200);
        let listening = match how {
            Handoff::PasvPort => self.dst.pasv(),
            Handoff::EpsvEprt => self.dst.epsv(),
        };
        self.src.expect("TYPE I", 200);
        let line = match how {
            Handoff::PasvPort => port_command(listening),
            Handoff::EpsvEprt => eprt_command(listening),
        };
        self.src.cmd(&line)
    }

    /// Steps 6-7: `RETR` on the source, `STOR` on the destination; both must answer 150/125.
    fn start(&mut self, name: &str) {
        let r = self.src.cmd(&format!("RETR {name}"));
        assert_preliminary(&r, "RETR on the source");
        let r = self.dst.cmd(&format!("STOR {name}"));
        assert_preliminary(&r, "STOR on the destination");
    }

    /// Step 8: `STAT` on both until each says `No data connection`; returns the final replies of
    /// the transfer (source, destination).
    fn finish(&mut self) -> (Reply, Reply) {
        let deadline = Instant::now() + TRANSFER_DEADLINE;
        let mut src = StatPoll::default();
        let mut dst = StatPoll::default();
        while !(src.idle && dst.idle) {
            assert!(
                Instant::now() < deadline,
                "transfer still running after {TRANSFER_DEADLINE:?}; last STAT:\nsource: {:?}\ndestination: {:?}",
                src.last_stat,
                dst.last_stat
            );
            src.poll(&mut self.src);
            dst.poll(&mut self.dst);
            thread::sleep(Duration::from_millis(50));
        }
        (src.final_reply(&mut self.src), dst.final_reply(&mut self.dst))
    }
}

/// STAT polling on one control connection. The transfer's final reply may arrive at any point
/// among the STAT replies (fxpd sends it as soon as the transfer ends), so every reply that is
/// not the 211 status is taken as the final reply.
#[derive(Default)]
struct StatPoll {
    idle: bool,
    final_reply: Option<Reply>,
    last_stat: Option<String>,
}

impl StatPoll {
    /// One `STAT` round trip, unless already idle.
    fn poll(&mut self, c: &mut Ctrl) {
        if self.idle {
            return;
        }
        c.send("STAT");
        let stat = loop {
            let r = c.read_reply();
            if r.code == 211 {
                break r;
            }
            assert!(
                self.final_reply.is_none(),
                "two final replies: {:?} and {r}",
                self.final_reply
            );
            self.final_reply = Some(r);
        };
        self.idle = stat.text().contains("No data connection");
        self.last_stat = Some(stat.text());
    }

    /// The final reply; if none came before the idle STAT, it must follow within seconds (the
    /// KB reads it after polling).
    fn final_reply(&mut self, c: &mut Ctrl) -> Reply {
        if let Some(r) = self.final_reply.take() {
            return r;
        }
        c.set_read_timeout(Duration::from_secs(10));
        let r = c
            .try_read_reply()
            .unwrap_or_else(|e| panic!("STAT said idle but no final reply arrived: {e}"));
        c.set_read_timeout(IO_TIMEOUT);
        r
    }
}

/// The whole KB procedure from `src` to `dst` with a fresh random file; asserts 200 for the
/// hand-off, 226 on both sides, and the same SHA-256 on both disks.
fn fxp_copy_checked(src: &Server, dst: &Server, how: Handoff, name: &str) {
    let sha = put_random(src, name, BIG);
    let mut fxp = Fxp::login(src, dst);
    let r = fxp.hand_off(how);
    assert_eq!(r.code, 200, "{how:?}: hand-off to the source refused: {r}");
    fxp.start(name);
    let (src_final, dst_final) = fxp.finish();
    assert_eq!(
        src_final.code, 226,
        "{how:?}: source's RETR ended with: {src_final}"
    );
    assert_eq!(
        dst_final.code, 226,
        "{how:?}: destination's STOR ended with: {dst_final}"
    );
    let copied = file_of(dst, name);
    assert_eq!(
        len_or_zero(&copied),
        BIG as u64,
        "{how:?}: size of {}",
        copied.display()
    );
    assert_eq!(
        sha256_file(&copied),
        sha,
        "{how:?}: SHA-256 of {}",
        copied.display()
    );
}

// ---------------------------------------------------------------------------------------------
// 1-3. FXP that works: the KB procedure, EPSV/EPRT, IPv6
// ---------------------------------------------------------------------------------------------

/// KB Q247132 literally (PASV/PORT), A -> B and B -> A. Each server gets only the switch its role
/// needs: the source `allow_foreign_port`, the destination `allow_foreign_passive`.
#[test]
fn kb_procedure_pasv_port_both_directions() {
    let a = site(SITE_A, "allow_foreign_port = true");
    let b = site(SITE_B, "allow_foreign_passive = true");
    fxp_copy_checked(&a, &b, Handoff::PasvPort, "a-to-b.bin");

    let a = site(SITE_A, "allow_foreign_passive = true");
    let b = site(SITE_B, "allow_foreign_port = true");
    fxp_copy_checked(&b, &a, Handoff::PasvPort, "b-to-a.bin");
}

/// The same with RFC 2428 commands: EPSV on the destination, EPRT on the source.
#[test]
fn kb_procedure_epsv_eprt_both_directions() {
    let a = site(SITE_A, "allow_foreign_port = true");
    let b = site(SITE_B, "allow_foreign_passive = true");
    fxp_copy_checked(&a, &b, Handoff::EpsvEprt, "a-to-b.bin");

    let a = site(SITE_A, "allow_foreign_passive = true");
    let b = site(SITE_B, "allow_foreign_port = true");
    fxp_copy_checked(&b, &a, Handoff::EpsvEprt, "b-to-a.bin");
}

/// Both sites on `[::1]` (different ports), EPSV/EPRT `|2|::1|port|`. Client and servers share
/// one address, so nothing is foreign and the hardened defaults allow it.
#[test]
fn ipv6_epsv_eprt_with_defaults() {
    let a = site(V6, "");
    let b = site(V6, "");
    assert_ne!(a.addr(), b.addr());
    fxp_copy_checked(&a, &b, Handoff::EpsvEprt, "a-to-b.bin");
    fxp_copy_checked(&b, &a, Handoff::EpsvEprt, "b-to-a.bin");
}

// ---------------------------------------------------------------------------------------------
// 4. lftp's own FXP mode (external client)
// ---------------------------------------------------------------------------------------------

/// `ftp://alice:PASS@ip:port/name`.
fn ftp_url(server: &Server, name: &str) -> String {
    format!("ftp://{USER}:{PASS}@{}/{name}", server.addr())
}

/// `lftp get SRC-URL -o DST-URL` in FXP mode with `ftp:fxp-force yes` (never copy through the
/// client) and `ftp:fxp-passive-source no` (PASV on the destination, PORT on the source, as in
/// the KB). Returns lftp's output and its protocol log.
fn lftp_fxp(work: &Path, from: &str, to: &str) -> (Output, String) {
    fs::create_dir_all(work).unwrap();
    let log = work.join("lftp-fxp.log");
    let script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
         set net:reconnect-interval-base 1; set net:reconnect-interval-max 1; \
         set ftp:use-fxp yes; set ftp:fxp-force yes; set ftp:fxp-passive-source no; \
         debug -t -o {} 5; get {from} -o {to}",
        log.display()
    );
    let mut cmd = client_command("lftp", &work.join("home"));
    cmd.arg("-c").arg(&script);
    // On a timeout, show lftp's protocol log before failing: it tells where lftp was waiting.
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_with_timeout(&mut cmd, 120)))
        .unwrap_or_else(|panic| {
            let log = fs::read_to_string(&log).unwrap_or_default();
            eprintln!("--- lftp log ({}) ---\n{log}", work.display());
            std::panic::resume_unwind(panic)
        });
    (out, fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn lftp_fxp_between_two_sites() {
    if !require_client("lftp") {
        return;
    }
    let a = site(SITE_A, "allow_foreign_port = true");
    let b = site(SITE_B, "allow_foreign_passive = true");
    let sha = put_random(&a, "lftp.bin", BIG);

    let (out, log) = lftp_fxp(
        &a.dir.path().join("lftp"),
        &ftp_url(&a, "lftp.bin"),
        &ftp_url(&b, "lftp.bin"),
    );
    assert!(
        out.status.success(),
        "lftp FXP failed: {}\n--- lftp log ---\n{log}",
        describe_output(&out)
    );
    // The data went from A to B's passive port: B answered PASV and A was told B's address.
    assert!(
        log.contains("227 Entering Passive Mode (127,0,0,3,"),
        "no PASV on B in the lftp log:\n{log}"
    );
    assert!(
        log.contains("---> PORT 127,0,0,3,"),
        "no PORT naming B in the lftp log:\n{log}"
    );
    assert_eq!(sha256_file(&file_of(&b, "lftp.bin")), sha, "SHA-256 of B's copy");
}

/// With the defaults on both sites, `ftp:fxp-force yes` makes lftp fail instead of copying
/// through the client; nothing arrives at B. (Proves the test above cannot pass by fallback.)
#[test]
fn lftp_fxp_force_fails_against_defaults() {
    if !require_client("lftp") {
        return;
    }
    let a = site(SITE_A, "");
    let b = site(SITE_B, "");
    put_random(&a, "lftp.bin", 256 * 1024);

    let (out, log) = lftp_fxp(
        &a.dir.path().join("lftp"),
        &ftp_url(&a, "lftp.bin"),
        &ftp_url(&b, "lftp.bin"),
    );
    assert!(
        !out.status.success(),
        "lftp FXP succeeded against default sites: {}\n--- lftp log ---\n{log}",
        describe_output(&out)
    );
    assert!(
        log.contains("(foreign-address)"),
        "no foreign-address refusal in:\n{log}"
    );
    assert_eq!(len_or_zero(&file_of(&b, "lftp.bin")), 0, "content arrived at B");
}

// ---------------------------------------------------------------------------------------------
// 5. The hardened defaults
// ---------------------------------------------------------------------------------------------

/// (a) A PORT/EPRT naming another host is refused before anything connects, and the following
/// RETR starts no transfer.
#[test]
fn defaults_refuse_foreign_port_and_never_connect() {
    let a = site(SITE_A, "");
    put_random(&a, "secret.bin", 64 * 1024);
    let (victim, victim_addr) = listener_on(SITE_B);
    let mut c = a.login(USER, PASS);

    for line in [port_command(victim_addr), eprt_command(victim_addr)] {
        let r = c.cmd(&line);
        assert_refused(&r, "foreign-address", Some("fxp.allow_foreign_port"));
        let r = c.cmd("RETR secret.bin");
        assert_no_transfer(&r, &format!("RETR after refused {line}"));
    }
    assert_never_connected(&victim, "refused PORT/EPRT");
}

/// (b) PORT to the client's own address but a privileged port (25) is refused too (RFC 2577).
#[test]
fn defaults_refuse_privileged_port_on_own_address() {
    let a = site(SITE_A, "");
    let mut c = a.login(USER, PASS);
    let r = c.cmd("PORT 127,0,0,1,0,25");
    assert_refused(&r, "privileged-port", Some("fxp.allow_privileged_ports"));
    let r = c.cmd("EPRT |1|127.0.0.1|25|");
    assert_refused(&r, "privileged-port", Some("fxp.allow_privileged_ports"));
}

/// (c) Passive-port theft: a connection from 127.0.0.9 that reaches the passive port first gets
/// nothing; the client's own connection still gets the whole file, and the 226 reports the
/// refused connection.
#[test]
fn defaults_refuse_passive_thief() {
    let a = site(SITE_A, "");
    let sha = put_random(&a, "loot.bin", 3 * 1024 * 1024 + 11);
    let mut c = a.login(USER, PASS);
    c.expect("TYPE I", 200);
    let passive = c.pasv();

    let mut thief = connect_from(THIEF, passive);
    let mut data = data_connect(passive);
    let r = c.cmd("RETR loot.bin");
    assert_preliminary(&r, "RETR");

    thief.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    match thief.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("the thief from {THIEF} received {n} bytes"),
        Err(e) => panic!("the thief's connection was neither closed nor reset within 5 s: {e}"),
    }

    let got = read_to_end_deadline(&mut data, Duration::from_secs(60));
    assert_eq!(sha256_bytes(&got), sha, "SHA-256 of the client's download");
    let r = c.read_reply();
    assert_eq!(r.code, 226, "end of RETR: {r}");
    assert!(
        r.text().contains("(foreign-address)") && r.text().contains(&THIEF.to_string()),
        "226 does not report the refused connection from {THIEF}: {r}"
    );
    let stat = c.expect("STAT", 211);
    assert!(stat.text().contains("foreign-address=1"), "STAT: {stat}");
}

/// (d) The KB procedure against the defaults fails at the step they forbid, and no byte moves.
#[test]
fn kb_procedure_fails_where_defaults_forbid() {
    // Both sites hardened: the source refuses the destination's address in PORT.
    let a = site(SITE_A, "");
    let b = site(SITE_B, "");
    put_random(&a, "x.bin", 64 * 1024);
    let mut fxp = Fxp::login(&a, &b);
    let r = fxp.hand_off(Handoff::PasvPort);
    assert_refused(&r, "foreign-address", Some("fxp.allow_foreign_port"));
    let r = fxp.src.cmd("RETR x.bin");
    assert_no_transfer(&r, "RETR on the source after a refused PORT");
    let r = fxp.dst.cmd("STOR x.bin");
    assert_preliminary(&r, "STOR on the destination");
    let r = fxp.dst.read_reply();
    assert_eq!(r.code, 425, "STOR with nobody connecting: {r}");
    assert_eq!(len_or_zero(&file_of(&b, "x.bin")), 0, "content arrived at B");

    // Only the source relaxed: the destination turns the source's connection away. The file is
    // larger than any socket buffers, so the source cannot finish before it is reset.
    let a = site(SITE_A, "allow_foreign_port = true");
    let b = site(SITE_B, "");
    put_random(&a, "y.bin", 24 * 1024 * 1024 + 5);
    let mut fxp = Fxp::login(&a, &b);
    let r = fxp.hand_off(Handoff::PasvPort);
    assert_eq!(r.code, 200, "PORT on the relaxed source: {r}");
    fxp.start("y.bin");
    let (src_final, dst_final) = fxp.finish();
    assert_eq!(dst_final.code, 425, "destination's STOR: {dst_final}");
    assert!(
        dst_final.text().contains("(foreign-address)")
            && dst_final.text().contains("fxp.allow_foreign_passive"),
        "destination's 425 does not name the refusal and its setting: {dst_final}"
    );
    assert!(
        src_final.code == 425 || src_final.code == 426,
        "source's RETR must fail (425/426): {src_final}"
    );
    assert_eq!(len_or_zero(&file_of(&b, "y.bin")), 0, "content arrived at B");
}

// ---------------------------------------------------------------------------------------------
// 6. fxp.peers
// ---------------------------------------------------------------------------------------------

#[test]
fn peers_list_limits_foreign_port() {
    let a = site(SITE_A, "allow_foreign_port = true\npeers = [\"127.0.0.3/32\"]");
    let sha = put_random(&a, "to-peer.bin", 256 * 1024 + 3);
    let mut c = a.login(USER, PASS);
    c.expect("TYPE I", 200);

    // Listed: the server connects (from its own address) and delivers the file.
    let (peer, peer_addr) = listener_on(SITE_B);
    c.expect(&port_command(peer_addr), 200);
    let r = c.cmd("RETR to-peer.bin");
    assert_preliminary(&r, "RETR to the listed peer");
    let (mut data, from) =
        accept_within(&peer, Duration::from_secs(10)).expect("no connection to the listed peer");
    assert_eq!(
        from.ip(),
        SITE_A,
        "the data connection must come from the server's address"
    );
    let got = read_to_end_deadline(&mut data, Duration::from_secs(60));
    assert_eq!(sha256_bytes(&got), sha, "SHA-256 at the listed peer");
    let r = c.read_reply();
    assert_eq!(r.code, 226, "end of RETR to the listed peer: {r}");
    let stat = c.expect("STAT", 211);
    assert!(stat.text().contains("No data connection"), "{stat}");

    // Not listed: refused, never connected.
    let (stranger, stranger_addr) = listener_on(UNLISTED);
    let r = c.cmd(&port_command(stranger_addr));
    assert_refused(&r, "peer-not-listed", Some("fxp.peers"));
    let r = c.cmd("RETR to-peer.bin");
    assert_no_transfer(&r, "RETR after a refused PORT to an unlisted host");
    assert_never_connected(&stranger, "PORT to an unlisted host");
}

// ---------------------------------------------------------------------------------------------
// 7. Per-user override and anonymous sessions
// ---------------------------------------------------------------------------------------------

/// `--fxp deny` wins over `allow_foreign_port = true`; an `inherit` user on the same server
/// follows the switch.
#[test]
fn user_fxp_deny_beats_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file_with_fxp(dir.path(), &[("denied", "deny"), ("plain", "inherit")]);
    let a = site_with_users("allow_foreign_port = true", "", &users);
    let target = port_command(SocketAddr::new(SITE_B, 40_000));

    let mut c = a.login("denied", PASS);
    let r = c.cmd(&target);
    assert_refused(&r, "user-denied", None);

    let mut c = a.login("plain", PASS);
    c.expect(&target, 200);
}

/// `--fxp allow` works with both switches off, in both directions, but does not lift the
/// privileged-port rule; an `inherit` user on the same server is refused.
#[test]
fn user_fxp_allow_beats_switches_off() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file_with_fxp(dir.path(), &[("trusted", "allow"), ("plain", "inherit")]);
    let a = site_with_users("", "", &users);
    let sha = write_random_file(&a.root.join("shared.bin"), 512 * 1024 + 9);
    let mut c = a.login("trusted", PASS);
    c.expect("TYPE I", 200);

    // Active: PORT to another host, and the server delivers there.
    let (peer, peer_addr) = listener_on(SITE_B);
    c.expect(&port_command(peer_addr), 200);
    let r = c.cmd("RETR shared.bin");
    assert_preliminary(&r, "RETR (active, trusted user)");
    let (mut data, _) = accept_within(&peer, Duration::from_secs(10)).expect("no active connection");
    assert_eq!(
        sha256_bytes(&read_to_end_deadline(&mut data, Duration::from_secs(60))),
        sha
    );
    assert_eq!(c.read_reply().code, 226);

    // Passive: a connection from another host is taken as the data connection.
    let passive = c.pasv();
    let mut data = connect_from(THIEF, passive);
    let r = c.cmd("RETR shared.bin");
    assert_preliminary(&r, "RETR (passive, trusted user, foreign peer)");
    assert_eq!(
        sha256_bytes(&read_to_end_deadline(&mut data, Duration::from_secs(60))),
        sha
    );
    assert_eq!(c.read_reply().code, 226);

    // Still no privileged ports.
    let r = c.cmd("PORT 127,0,0,3,0,25");
    assert_refused(&r, "privileged-port", Some("fxp.allow_privileged_ports"));

    let mut c = a.login("plain", PASS);
    let r = c.cmd(&port_command(peer_addr));
    assert_refused(&r, "foreign-address", Some("fxp.allow_foreign_port"));
    assert_never_connected(&peer, "PORT refused for an inherit user");
}

/// Anonymous sessions need `fxp.allow_anonymous` on top of the foreign-address switch.
#[test]
fn anonymous_needs_allow_anonymous() {
    let anonymous_on = "[anonymous]\nenabled = true";
    let target = port_command(SocketAddr::new(SITE_B, 40_000));

    let a = site_with(SITE_A, "allow_foreign_port = true", anonymous_on);
    let mut c = a.login("anonymous", "guest@example.com");
    let r = c.cmd(&target);
    assert_refused(&r, "anonymous-denied", Some("fxp.allow_anonymous"));

    let a = site_with(
        SITE_A,
        "allow_foreign_port = true\nallow_anonymous = true",
        anonymous_on,
    );
    let mut c = a.login("anonymous", "guest@example.com");
    c.expect(&target, 200);
}

// ---------------------------------------------------------------------------------------------
// 8. EPSV ALL
// ---------------------------------------------------------------------------------------------

/// After `EPSV ALL` (RFC 2428 section 4) PORT, EPRT and PASV are refused even for the client's
/// own address; EPSV still works and carries a transfer.
#[test]
fn epsv_all_refuses_everything_but_epsv() {
    let a = site(SITE_A, "");
    let sha = put_random(&a, "e.bin", 1024 * 1024 + 1);
    let mut c = a.login(USER, PASS);
    c.expect("TYPE I", 200);
    c.expect("EPSV ALL", 200);

    let (own, own_addr) = listener_on(CLIENT);
    assert_refused(&c.cmd(&port_command(own_addr)), "epsv-all", None);
    assert_refused(&c.cmd(&eprt_command(own_addr)), "epsv-all", None);
    assert_refused(&c.cmd("PASV"), "epsv-all", None);

    let mut data = data_connect(c.epsv());
    let r = c.cmd("RETR e.bin");
    assert_preliminary(&r, "RETR after EPSV ALL");
    let got = read_to_end_deadline(&mut data, Duration::from_secs(60));
    assert_eq!(sha256_bytes(&got), sha);
    assert_eq!(c.read_reply().code, 226);
    assert_never_connected(&own, "PORT/EPRT after EPSV ALL");
}

// ---------------------------------------------------------------------------------------------
// 9. Bans
// ---------------------------------------------------------------------------------------------

/// Three refused foreign PORTs within the window ban 127.0.0.1: its data connections and new
/// control connections are refused; 127.0.0.5 is unaffected.
#[test]
fn repeated_refusals_ban_the_address_only() {
    let a = site(SITE_A, "ban_threshold = 3\nban_window_secs = 60");
    let mut c = a.login(USER, PASS);
    let foreign = port_command(SocketAddr::new(SITE_B, 40_000));
    for _ in 0..3 {
        assert_refused(&c.cmd(&foreign), "foreign-address", None);
    }

    // Banned: no data connection of any kind, not even to its own address.
    let (own, own_addr) = listener_on(CLIENT);
    assert_refused(&c.cmd(&port_command(own_addr)), "banned", None);
    assert_never_connected(&own, "PORT from a banned client");

    // A new control connection from the banned address is turned away at once.
    let mut banned = Ctrl::over(connect_from(CLIENT, a.addr()), b"");
    assert_eq!(
        banned.read_reply().code,
        421,
        "a banned address must be turned away"
    );

    // Another client address is served normally.
    let mut other = Ctrl::connect_from(OTHER_CLIENT, a.addr());
    other.login(USER, PASS);
    let (_l, other_own) = listener_on(OTHER_CLIENT);
    other.expect(&port_command(other_own), 200);
}

// ---------------------------------------------------------------------------------------------
// 10. nmap's ftp-bounce script (external tool)
// ---------------------------------------------------------------------------------------------

/// Runs nmap's `ftp-bounce` script against `server` as alice, bouncing to 127.0.0.3; returns
/// stdout. `+ftp-bounce` forces the script on a port nmap does not know as FTP; `-v` makes it
/// print the server's reply when PORT is refused.
fn nmap_ftp_bounce(server: &Server) -> String {
    let work = server.dir.path().join("nmap");
    let out = run_with_timeout(
        client_command("nmap", &work.join("home"))
            .args(["-Pn", "-n", "-sT", "-v", "--host-timeout", "60s", "-p"])
            .arg(server.port().to_string())
            .args(["--script", "+ftp-bounce", "--script-args"])
            .arg(format!(
                "ftp-bounce.username={USER},ftp-bounce.password={PASS},ftp-bounce.checkhost={SITE_B}"
            ))
            .arg(server.addr().ip().to_string()),
        120,
    );
    assert_success(&out, "nmap --script ftp-bounce");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nmap_ftp_bounce_script() {
    if !require_client("nmap") {
        return;
    }
    // Defaults: the script's first PORT (to 127.0.0.3, port 20560) is refused.
    let out = nmap_ftp_bounce(&site(SITE_A, ""));
    assert!(!out.contains("bounce working"), "defaults:\n{out}");
    assert!(
        out.contains("PORT response: 504") && out.contains("(foreign-address)"),
        "defaults: the script did not report the refused PORT:\n{out}"
    );

    // Foreign PORT allowed, privileged ports not: nmap sees the partial protection.
    let out = nmap_ftp_bounce(&site(SITE_A, "allow_foreign_port = true"));
    assert!(
        out.contains("server forbids bouncing to low ports"),
        "allow_foreign_port only:\n{out}"
    );

    // Both relaxed: the bounce works (proves this test can fail).
    let out = nmap_ftp_bounce(&site(
        SITE_A,
        "allow_foreign_port = true\nallow_privileged_ports = true",
    ));
    assert!(out.contains("bounce working!"), "both relaxed:\n{out}");
}

// ---------------------------------------------------------------------------------------------
// 11. Aborting a stuck server-to-server transfer
// ---------------------------------------------------------------------------------------------

/// Telnet "Interrupt Process" (RFC 854).
const TELNET_IP: u8 = 244;
/// Telnet "Data Mark", the urgent byte of a Synch (RFC 854).
const TELNET_DM: u8 = 242;
/// Telnet "Interpret As Command".
const TELNET_IAC: u8 = 255;

/// Sends `bytes` with `MSG_OOB`: the last byte becomes TCP urgent data. std has no API for it;
/// libc's `send` is linked into every Rust program on Linux.
#[cfg(target_os = "linux")]
fn send_urgent(stream: &TcpStream, bytes: &[u8]) {
    use std::ffi::{c_int, c_void};
    use std::os::fd::AsRawFd;
    extern "C" {
        fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    }
    const MSG_OOB: c_int = 1;
    // SAFETY: `buf` and `len` describe a live slice, and `fd` is an open socket owned by `stream`.
    let n = unsafe { send(stream.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), MSG_OOB) };
    assert_eq!(
        n,
        bytes.len() as isize,
        "send(MSG_OOB): {}",
        io::Error::last_os_error()
    );
}

/// A source whose FXP `RETR` cannot make progress: its PORT names B's passive port, B accepts
/// and holds the connection (it allows foreign passive connections) but never gets `STOR`, so
/// the file (larger than all socket buffers) stays stuck. Returns the servers (keep them
/// alive) and the third party.
fn stuck_fxp_source() -> (Server, Server, Fxp) {
    let a = site(SITE_A, "allow_foreign_port = true");
    let b = site(SITE_B, "allow_foreign_passive = true");
    put_random(&a, "stuck.bin", 24 * 1024 * 1024 + 1);
    let mut fxp = Fxp::login(&a, &b);
    let r = fxp.hand_off(Handoff::PasvPort);
    assert_eq!(r.code, 200, "PORT on the relaxed source: {r}");
    let r = fxp.src.cmd("RETR stuck.bin");
    assert_preliminary(&r, "RETR on the source");
    let stat = fxp.src.expect("STAT", 211);
    assert!(stat.text().contains("Data connection open"), "{stat}");
    (a, b, fxp)
}

/// Asserts that the transfer on `c` was aborted: 426 then 226 (RFC 959 section 4.1.3), well
/// before the data timeout would have ended it anyway, and STAT is idle afterwards.
fn assert_aborted(c: &mut Ctrl, how: &str) {
    c.set_read_timeout(Duration::from_secs(3));
    let first = c
        .try_read_reply()
        .unwrap_or_else(|e| panic!("{how}: no reply to ABOR within 3 s ({e})"));
    let last = if first.code == 426 {
        c.try_read_reply()
            .unwrap_or_else(|e| panic!("{how}: 426 but no 226 for ABOR ({e})"))
    } else {
        first.clone()
    };
    assert_eq!(last.code, 226, "{how}: replies to ABOR: {first} / {last}");
    c.set_read_timeout(IO_TIMEOUT);
    let stat = c.expect("STAT", 211);
    assert!(
        stat.text().contains("No data connection"),
        "{how}: after ABOR: {stat}"
    );
}

/// The third party can stop a server-to-server transfer that hangs (the other server never
/// took the data) with a plain `ABOR`.
#[test]
fn abor_stops_a_stuck_fxp_source() {
    let (_a, _b, mut fxp) = stuck_fxp_source();
    fxp.src.send("ABOR");
    assert_aborted(&mut fxp.src, "plain ABOR");
}

/// `ABOR` as Python's ftplib sends it (`FTP.abort()`): the whole line with `MSG_OOB`, so its
/// LF is the urgent byte and the server's read stops just before it, inside the line.
#[cfg(target_os = "linux")]
#[test]
fn abor_sent_as_urgent_data_stops_a_stuck_fxp_source() {
    let (_a, _b, mut fxp) = stuck_fxp_source();
    send_urgent(&fxp.src.stream, b"ABOR\r\n");
    assert_aborted(&mut fxp.src, "ABOR sent with MSG_OOB (ftplib)");
}

/// Telnet IP and the Synch in one send, its DM urgent, then `ABOR`: the read stops at the DM,
/// right after a complete earlier command was read.
#[cfg(target_os = "linux")]
#[test]
fn abor_after_a_synch_in_one_send_stops_a_stuck_fxp_source() {
    let (_a, _b, mut fxp) = stuck_fxp_source();
    send_urgent(&fxp.src.stream, &[TELNET_IAC, TELNET_IP, TELNET_IAC, TELNET_DM]);
    fxp.src.send("ABOR");
    assert_aborted(&mut fxp.src, "ABOR after IAC IP IAC DM in one urgent send");
}

/// The same `ABOR` as lftp and BSD ftp send it (RFC 959 section 4.1.3): Telnet IP, then a
/// Synch (IAC, and DM as TCP urgent data), then the command. lftp sends it to the source when
/// an FXP attempt fails after `RETR`, and waits for the answer.
#[cfg(target_os = "linux")]
#[test]
fn abor_with_telnet_synch_stops_a_stuck_fxp_source() {
    let (_a, _b, mut fxp) = stuck_fxp_source();
    fxp.src.send_bytes(&[TELNET_IAC, TELNET_IP, TELNET_IAC]);
    send_urgent(&fxp.src.stream, &[TELNET_DM]);
    fxp.src.send("ABOR");
    assert_aborted(&mut fxp.src, "ABOR after Telnet IP + Synch (DM as urgent data)");
}
