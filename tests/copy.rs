//! `fxpd copy`: the real binary drives FXP transfers between two real fxpd servers.
//!
//! Server A listens on 127.0.0.2 and server B on 127.0.0.3; the copy tool connects from
//! 127.0.0.1, so for each server the other one is a foreign address and the `[fxp]` switches
//! decide (README, "FXP in brief"): the server that gets PORT needs `fxp.allow_foreign_port`, the one
//! that answered PASV needs `fxp.allow_foreign_passive`. Every copy is checked by SHA-256 of
//! the files on disk. The IPv6 test runs both servers on ::1 (own addresses, no switches).
//!
//! A last test drives two vsftpd instances (Debian's package) when vsftpd is installed and
//! the tests run as root; with `FXPD_EXTERNAL_CLIENTS=1` a missing vsftpd or a non-root run fails,
//! without it the test is reported as skipped (see `common::skip`).

mod common;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The user on both servers.
const U: &str = "u";

/// Longest a copy command may run in these tests.
const COPY_SECS: u64 = 120;

/// Starts A (127.0.0.2) and B (127.0.0.3) with user `u`, each with its extra TOML.
fn pair(a_extra: &str, b_extra: &str) -> (Server, Server) {
    let users = [user(U, PASS, U, true)];
    let a = Server::start(a_extra, &users);
    let b = Server::start(&format!("listen = [\"127.0.0.3:0\"]\n{b_extra}"), &users);
    (a, b)
}

/// A may receive PORT naming B, B may take A's connection: the KB arrangement works.
fn fxp_pair() -> (Server, Server) {
    pair(
        "[fxp]\nallow_foreign_port = true",
        "[fxp]\nallow_foreign_passive = true",
    )
}

/// `ftp://u@<addr>/<path>`.
fn url(s: &Server, path: &str) -> String {
    format!("ftp://{U}@{}/{path}", s.addr())
}

/// `fxpd copy <args>`: no FXPD_* variables from the caller, an empty HOME (no ~/.netrc), the
/// destination password in the environment and the source password on stdin (callers add
/// `--src-password-stdin` where they want it read).
fn copy_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    clear_fxpd_env(&mut cmd);
    // A HOME that does not exist: no ~/.netrc of the person running the tests.
    let home = std::env::temp_dir().join("fxpd-copy-test-no-home");
    cmd.arg("copy")
        .args(args)
        .env("HOME", home)
        .env_remove("FXPD_COPY_SRC_PASSWORD")
        .env("FXPD_COPY_DST_PASSWORD", PASS);
    cmd
}

/// Runs `fxpd copy <args> --src-password-stdin` with the password on stdin.
fn copy(args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.push("--src-password-stdin");
    run_with_input_timeout(&mut copy_cmd(&all), format!("{PASS}\n").as_bytes(), COPY_SECS)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit status `code`, printing everything if not.
fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(o.status.code(), Some(code), "{what}: {}", describe_output(o));
}

/// Whether a server lists HASH in FEAT (the server side of draft-bryan-ftp-hash).
fn offers_hash(s: &Server) -> bool {
    let mut c = s.ctrl();
    c.cmd("FEAT").lines.iter().any(|l| l.trim().starts_with("HASH"))
}

#[test]
fn copies_a_multi_mib_file_server_to_server() {
    let (a, b) = fxp_pair();
    let sha = write_random_file(&a.home(U).join("data.bin"), 5 * 1024 * 1024 + 7);
    let o = copy(&[&url(&a, "data.bin"), &url(&b, "in/")]);
    let dst = b.home(U).join("in/data.bin");
    // The destination directory does not exist yet: STOR fails and nothing is retried.
    assert_exit(&o, 1, "copy into a missing directory");
    assert!(
        stderr(&o).contains("answered `STOR in/data.bin` with `550"),
        "{}",
        stderr(&o)
    );
    assert!(!dst.exists());
    fs::create_dir_all(b.home(U).join("in")).unwrap();
    let o = copy(&[&url(&a, "data.bin"), &url(&b, "in/")]);
    assert_exit(&o, 0, "fxpd copy");
    assert_eq!(sha256_file(&dst), sha, "the copy differs");
    let err = stderr(&o);
    // stderr is a pipe: one plain line per file, no progress bar, never the password.
    assert!(err.contains("in/data.bin: 5.0 MiB in "), "{err}");
    assert!(err.contains("verified"), "{err}");
    assert!(!err.contains('\r') && !err.contains(PASS), "{err}");
    assert!(!err.contains("reverse"), "the KB arrangement works here: {err}");
}

#[test]
fn hash_verification_when_both_servers_offer_hash() {
    let (a, b) = fxp_pair();
    let sha = write_random_file(&a.home(U).join("h.bin"), 3 * 1024 * 1024 + 1);
    let o = copy(&[&url(&a, "h.bin"), &url(&b, "h.bin"), "--verbose"]);
    assert_exit(&o, 0, "fxpd copy");
    assert_eq!(sha256_file(&b.home(U).join("h.bin")), sha);
    let err = stderr(&o);
    // fxpd advertises HASH, so between two fxpd servers the copy must be checked by hash.
    assert!(offers_hash(&a) && offers_hash(&b), "fxpd must list HASH in FEAT");
    assert!(err.contains("size and SHA-256 (HASH) verified"), "{err}");
    assert!(
        err.contains(&format!("<- 213 SHA-256 0-{} {sha} ", 3 * 1024 * 1024 + 1)),
        "{err}"
    );
    // --verbose masks the password.
    assert!(err.contains("-> PASS ****") && !err.contains(PASS), "{err}");
}

#[test]
fn reverse_roles_when_the_first_arrangement_is_refused() {
    // Only B allows a foreign PORT and only A a foreign passive connection: PORT on the
    // source (A) is refused, PASV on the source and PORT on the destination work.
    let (a, b) = pair(
        "[fxp]\nallow_foreign_passive = true",
        "[fxp]\nallow_foreign_port = true",
    );
    let sha = write_random_file(&a.home(U).join("r.bin"), 4 * 1024 * 1024 + 3);
    let o = copy(&[&url(&a, "r.bin"), &url(&b, "r.bin")]);
    assert_exit(&o, 0, "fxpd copy with reversed roles");
    assert_eq!(sha256_file(&b.home(U).join("r.bin")), sha);
    let err = stderr(&o);
    assert!(err.contains("trying the reverse roles"), "{err}");
    assert!(
        err.contains("fxp.allow_foreign_port"),
        "the note names the setting: {err}"
    );
}

#[test]
fn refused_both_ways_exits_1_naming_the_settings() {
    let (a, b) = pair("", "");
    write_random_file(&a.home(U).join("x.bin"), 100_000);
    let o = copy(&[&url(&a, "x.bin"), &url(&b, "x.bin")]);
    assert_exit(&o, 1, "FXP with the default (hardened) policy");
    let err = stderr(&o);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("fxpd copy: cannot copy x.bin: FXP was refused both ways"),
        "{err}"
    );
    assert!(
        last.contains("the source 127.0.0.2:") && last.contains("the destination 127.0.0.3:"),
        "{err}"
    );
    assert!(
        last.contains("foreign-address") && last.contains("fxp.allow_foreign_port"),
        "{err}"
    );
    assert!(last.contains("EnablePortAttack"), "{err}");
    assert!(!b.home(U).join("x.bin").exists(), "nothing was stored");
}

#[test]
fn passive_refusal_is_detected_before_the_data_timeout() {
    // A takes PORT to B, but B (default policy) closes A's connection to its passive port
    // and would wait for the client's own connection until its data timeout (60 s). The copy
    // notices that B never gets a byte while A is done, aborts, tries the reverse (B refuses
    // PORT) and names B's passive setting.
    let (a, b) = pair("[fxp]\nallow_foreign_port = true", "");
    write_random_file(&a.home(U).join("p.bin"), 2 * 1024 * 1024);
    let started = Instant::now();
    let o = copy(&[&url(&a, "p.bin"), &url(&b, "p.bin")]);
    let took = started.elapsed();
    assert_exit(&o, 1, "passive side refuses");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let err = stderr(&o);
    assert!(
        err.contains("did not accept the other server's data connection"),
        "{err}"
    );
    assert!(err.contains("fxp.allow_foreign_passive"), "{err}");
}

#[test]
fn resume_continues_a_truncated_copy() {
    let (a, b) = fxp_pair();
    let size = 6 * 1024 * 1024 + 11;
    let sha = write_random_file(&a.home(U).join("big.bin"), size);
    let o = copy(&[&url(&a, "big.bin"), &url(&b, "big.bin")]);
    assert_exit(&o, 0, "first copy");
    let dst = b.home(U).join("big.bin");
    let cut = 2 * 1024 * 1024 + 5;
    fs::OpenOptions::new()
        .write(true)
        .open(&dst)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let o = copy(&[&url(&a, "big.bin"), &url(&b, "big.bin"), "--resume", "--verbose"]);
    assert_exit(&o, 0, "resumed copy");
    assert_eq!(sha256_file(&dst), sha, "resumed copy differs");
    let err = stderr(&o);
    assert!(err.contains(&format!("source -> REST {cut}")), "{err}");
    assert!(err.contains(&format!("destination -> REST {cut}")), "{err}");
    assert!(err.contains("resumed at 2.0 MiB"), "{err}");

    let o = copy(&[&url(&a, "big.bin"), &url(&b, "big.bin"), "--resume"]);
    assert_exit(&o, 0, "resume of a complete file");
    assert!(
        stderr(&o).contains("already complete at the destination"),
        "{}",
        stderr(&o)
    );

    // A destination longer than the source cannot be resumed.
    fs::write(&dst, vec![0u8; size + 1]).unwrap();
    let o = copy(&[&url(&a, "big.bin"), &url(&b, "big.bin"), "--resume"]);
    assert_exit(&o, 1, "resume onto a longer file");
    assert!(stderr(&o).contains("more than the source's"), "{}", stderr(&o));
}

#[test]
fn recursive_copies_a_tree() {
    let (a, b) = fxp_pair();
    let src = a.home(U).join("tree");
    fs::create_dir_all(src.join("empty-dir")).unwrap();
    write_file(&src.join("with space/name with space.txt"), b"spaces\n");
    let want = make_tree(&src);
    let o = copy(&[&url(&a, "tree/"), &url(&b, "copy/of/tree"), "--recursive"]);
    assert_exit(&o, 0, "fxpd copy --recursive");
    // Missing parents of the destination (`copy/of`) are made too, like `mkdir -p`.
    let got = tree_hashes(&b.home(U).join("copy/of/tree"));
    assert_eq!(got, want, "the copied tree differs");
    let err = stderr(&o);
    assert!(err.contains("sub1/sub2/deep.bin: "), "{err}");
    assert!(err.contains("fxpd copy: done: 8 files"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["ftp://h1/f"], "<DST>"),
        (
            &["http://127.0.0.2/f", "ftp://127.0.0.3/f"],
            "SRC is not a valid ftp:// URL",
        ),
        (
            &["ftps://127.0.0.2/f", "ftp://127.0.0.3/f"],
            "SRC is ftps:// but DST is ftp://",
        ),
        (
            &["ftp://127.0.0.2/f", "ftps://127.0.0.3/f"],
            "DST is ftps:// but SRC is ftp://",
        ),
        (&["ftps://127.0.0.2/f", "ftps://127.0.0.3/f"], "--ca-file"),
        (
            &[
                "ftps://127.0.0.2/f",
                "ftps://127.0.0.3/f",
                "--ca-file",
                "/nonexistent/ca.pem",
            ],
            "--ca-file /nonexistent/ca.pem",
        ),
        (&["ftp://127.0.0.2/dir/", "ftp://127.0.0.3/f"], "--recursive"),
        (
            &["ftp://127.0.0.2/f%0D%0ADELE%20x", "ftp://127.0.0.3/f"],
            "line break",
        ),
        (&["ftp://127.0.0.2/f", "ftp://127.0.0.2:21/"], "same"),
        (
            &["ftp://127.0.0.2/f", "ftp://127.0.0.3/f", "--timeout", "0"],
            "--timeout",
        ),
        (
            &[
                "ftp://u@127.0.0.2/f",
                "ftp://v@127.0.0.3/f",
                "--src-password-stdin",
                "--dst-password-stdin",
            ],
            "--src-password-stdin",
        ),
        (
            &["ftp://nobody@127.0.0.2/f", "ftp://127.0.0.3/f"],
            "no password for nobody at 127.0.0.2:21",
        ),
        (
            &[
                "ftp://127.0.0.2/f",
                "ftp://127.0.0.3/f",
                "--netrc",
                "/nonexistent/netrc",
            ],
            "cannot read the netrc file",
        ),
    ];
    for (args, want) in cases {
        let o = run_with_timeout(&mut copy_cmd(args), 30);
        assert_exit(&o, 2, &format!("{args:?}"));
        let err = stderr(&o);
        assert!(err.contains(want), "{args:?}: want {want:?} in:\n{err}");
    }
    // Our own errors are one line.
    let o = run_with_timeout(&mut copy_cmd(&["ftps://127.0.0.2/f", "ftp://127.0.0.3/f"]), 30);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("fxpd copy: ") && err.trim_end().ends_with('.'),
        "{err}"
    );
}

#[test]
fn wrong_password_exits_2_and_missing_file_exits_1() {
    let (a, b) = fxp_pair();
    let mut cmd = copy_cmd(&[&url(&a, "f"), &url(&b, "f"), "--src-password-stdin"]);
    let o = run_with_input_timeout(&mut cmd, b"not-the-password\n", COPY_SECS);
    assert_exit(&o, 2, "wrong password");
    assert!(
        stderr(&o).contains("login failed: the source 127.0.0.2:"),
        "{}",
        stderr(&o)
    );

    let o = copy(&[&url(&a, "missing.bin"), &url(&b, "m.bin")]);
    assert_exit(&o, 1, "missing source file");
    assert!(stderr(&o).contains("has no file missing.bin"), "{}", stderr(&o));
    assert!(!b.home(U).join("m.bin").exists());
}

#[test]
fn credentials_from_a_netrc_file_and_quiet_mode() {
    let (a, b) = fxp_pair();
    let sha = write_random_file(&a.home(U).join("n.bin"), 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    fs::write(
        &netrc,
        format!("machine 127.0.0.2 login {U} password {PASS}\nmachine 127.0.0.3 login {U} password {PASS}\n"),
    )
    .unwrap();
    // No user in the URLs, no password elsewhere: both come from the netrc file.
    let src = format!("ftp://{}/n.bin", a.addr());
    let dst = format!("ftp://{}/n.bin", b.addr());
    let mut cmd = copy_cmd(&[&src, &dst, "--netrc", netrc.to_str().unwrap(), "--quiet"]);
    cmd.env_remove("FXPD_COPY_DST_PASSWORD");
    let o = run_with_timeout(&mut cmd, COPY_SECS);
    assert_exit(&o, 0, "copy with netrc credentials");
    assert_eq!(sha256_file(&b.home(U).join("n.bin")), sha);
    assert_eq!(stderr(&o), "", "--quiet prints nothing on success");
}

#[test]
fn ipv6_uses_epsv_and_eprt() {
    let users = [user(U, PASS, U, true)];
    let a = Server::start("listen = [\"[::1]:0\"]", &users);
    let b = Server::start("listen = [\"[::1]:0\"]", &users);
    assert!(a.addr().is_ipv6() && b.addr().is_ipv6());
    let sha = write_random_file(&a.home(U).join("six.bin"), 3 * 1024 * 1024 + 5);
    let o = copy(&[&url(&a, "six.bin"), &url(&b, "six.bin"), "--verbose"]);
    assert_exit(&o, 0, "fxpd copy over IPv6");
    assert_eq!(sha256_file(&b.home(U).join("six.bin")), sha);
    let err = stderr(&o);
    assert!(err.contains("destination -> EPSV"), "{err}");
    assert!(err.contains("source -> EPRT |2|::1|"), "{err}");
    assert!(!err.contains("-> PASV") && !err.contains("-> PORT"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// vsftpd
// ---------------------------------------------------------------------------------------------

/// A vsftpd process serving `root` anonymously (with uploads in `pub/`); killed on drop.
struct Vsftpd {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vsftpd {
    fn start(ip: &str, extra: &str) -> Vsftpd {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("pub")).unwrap();
        let empty = dir.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        set_mode(&root, 0o555);
        set_mode(&root.join("pub"), 0o777);
        let port = TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let conf = dir.path().join("vsftpd.conf");
        fs::write(
            &conf,
            format!(
                "listen=YES\nlisten_ipv6=NO\nlisten_address={ip}\nlisten_port={port}\nbackground=NO\n\
                 anonymous_enable=YES\nlocal_enable=NO\nwrite_enable=YES\nanon_upload_enable=YES\n\
                 anon_mkdir_write_enable=YES\nanon_other_write_enable=YES\nanon_umask=022\n\
                 no_anon_password=YES\nanon_root={}\nconnect_from_port_20=NO\nsecure_chroot_dir={}\n\
                 seccomp_sandbox=NO\nxferlog_enable=NO\n{extra}\n",
                root.display(),
                empty.display()
            ),
        )
        .unwrap();
        let child = Command::new(find_in_path("vsftpd").unwrap())
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(Instant::now() < deadline, "vsftpd did not start on {addr}");
            thread::sleep(Duration::from_millis(50));
        }
        Vsftpd {
            child,
            addr,
            _dir: dir,
            root,
        }
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// vsftpd needs root (it chroots anonymous sessions); skip with a note otherwise.
fn vsftpd_available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !external_clients_enabled() {
        skip(&format!(
            "{EXTERNAL_ENV} is not 1 and the test needs vsftpd as root"
        ));
        return false;
    }
    // With the gate set, a missing vsftpd or a non-root run is a failure, never a skip.
    assert!(
        find_in_path("vsftpd").is_some(),
        "vsftpd not installed ({EXTERNAL_ENV}=1 makes a missing client a failure)"
    );
    assert!(
        root,
        "the vsftpd test needs root ({EXTERNAL_ENV}=1 makes this a failure, not a skip)"
    );
    true
}

#[test]
fn copies_between_two_vsftpd_servers() {
    if !vsftpd_available() {
        return;
    }
    // The source sends at most 1 MB/s, so the transfer outlasts the STAT probe: vsftpd
    // answers STAT only after the transfer, which the copy must take in its stride.
    let a = Vsftpd::start(
        "127.0.0.2",
        "port_promiscuous=YES\npasv_promiscuous=YES\nanon_max_rate=1000000",
    );
    let b = Vsftpd::start("127.0.0.3", "port_promiscuous=YES\npasv_promiscuous=YES");
    let sha = write_random_file(&a.root.join("pub/v.bin"), 4 * 1024 * 1024 + 9);
    set_mode(&a.root.join("pub/v.bin"), 0o644);
    let src = format!("ftp://{}/pub/v.bin", a.addr);
    let dst = format!("ftp://{}/pub/", b.addr);
    let o = run_with_timeout(&mut copy_cmd(&[&src, &dst, "--verbose"]), COPY_SECS);
    assert_exit(&o, 0, "fxpd copy between vsftpd servers");
    assert_eq!(sha256_file(&b.root.join("pub/v.bin")), sha);
    let err = stderr(&o);
    assert!(err.contains("source -> STAT"), "progress was asked for: {err}");
    assert!(err.contains("size verified (no common hash command)"), "{err}");

    // Default vsftpd settings: both refuse, and the message names vsftpd's switches.
    let c = Vsftpd::start("127.0.0.2", "");
    let d = Vsftpd::start("127.0.0.3", "");
    write_random_file(&c.root.join("pub/w.bin"), 1000);
    set_mode(&c.root.join("pub/w.bin"), 0o644);
    let src = format!("ftp://{}/pub/w.bin", c.addr);
    let dst = format!("ftp://{}/pub/w.bin", d.addr);
    let o = run_with_timeout(&mut copy_cmd(&[&src, &dst]), COPY_SECS);
    assert_exit(&o, 1, "vsftpd defaults refuse FXP");
    assert!(stderr(&o).contains("port_promiscuous=YES"), "{}", stderr(&o));
}

/// A self-signed certificate for 127.0.0.2 and 127.0.0.3 (IP SANs, so `--ca-file` can check
/// the URL's host), written to a temporary directory.
struct TlsFiles {
    dir: tempfile::TempDir,
}

impl TlsFiles {
    fn new() -> TlsFiles {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.2".into(), "127.0.0.3".into()]).unwrap();
        fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
        fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        TlsFiles { dir }
    }

    fn cert(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }

    /// The `[tls]` table, with `extra` lines.
    fn table(&self, extra: &str) -> String {
        format!(
            "[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n{extra}\n",
            self.cert(),
            self.dir.path().join("key.pem").display()
        )
    }
}

/// A (source) and B (destination) with TLS: B is the TLS server on the data connection
/// (the source gets SSCN ON), so it cannot require session resumption from A.
fn tls_pair(files: &TlsFiles) -> (Server, Server) {
    pair(
        &format!("[fxp]\nallow_foreign_port = true\n{}", files.table("")),
        &format!(
            "[fxp]\nallow_foreign_passive = true\n{}",
            files.table("require_data_resumption = false")
        ),
    )
}

/// `ftps://u@<addr>/<path>`.
fn tls_url(s: &Server, path: &str) -> String {
    format!("ftps://{U}@{}/{path}", s.addr())
}

#[test]
fn ftps_copy_protects_the_data_with_sscn() {
    let files = TlsFiles::new();
    let (a, b) = tls_pair(&files);
    let sha = write_random_file(&a.home(U).join("s.bin"), 3 * 1024 * 1024 + 5);
    let cert = files.cert();
    let o = copy(&[
        &tls_url(&a, "s.bin"),
        &tls_url(&b, "s.bin"),
        "--ca-file",
        &cert,
        "--verbose",
    ]);
    assert_exit(&o, 0, "ftps copy");
    assert_eq!(sha256_file(&b.home(U).join("s.bin")), sha, "the copy differs");
    let err = stderr(&o);
    for want in [
        "source -> AUTH TLS",
        "destination -> AUTH TLS",
        "source -> PROT P",
        "destination -> PROT P",
        "source -> SSCN ON",
        "verified",
    ] {
        assert!(err.contains(want), "want {want:?} in:\n{err}");
    }
    assert!(!err.contains(PASS), "{err}");
}

#[test]
fn ftps_recursive_copy_lists_over_tls() {
    let files = TlsFiles::new();
    let (a, b) = tls_pair(&files);
    fs::create_dir_all(a.home(U).join("t/sub")).unwrap();
    let sha1 = write_random_file(&a.home(U).join("t/one.bin"), 100_000);
    let sha2 = write_random_file(&a.home(U).join("t/sub/two.bin"), 200_001);
    let cert = files.cert();
    let o = copy(&[
        &tls_url(&a, "t"),
        &tls_url(&b, "t"),
        "--recursive",
        "--ca-file",
        &cert,
    ]);
    assert_exit(&o, 0, "recursive ftps copy");
    assert_eq!(sha256_file(&b.home(U).join("t/one.bin")), sha1);
    assert_eq!(sha256_file(&b.home(U).join("t/sub/two.bin")), sha2);
}

#[test]
fn ftps_with_an_untrusted_certificate_exits_2() {
    let files = TlsFiles::new();
    let other = TlsFiles::new();
    let (a, b) = tls_pair(&files);
    write_random_file(&a.home(U).join("x.bin"), 1000);
    let cert = other.cert();
    let o = copy(&[&tls_url(&a, "x.bin"), &tls_url(&b, "x.bin"), "--ca-file", &cert]);
    assert_exit(&o, 2, "untrusted certificate");
    assert!(
        stderr(&o).contains("TLS with the source 127.0.0.2:"),
        "{}",
        stderr(&o)
    );
    // --insecure skips the check (encrypted, not authenticated).
    let o = copy(&[&tls_url(&a, "x.bin"), &tls_url(&b, "x.bin"), "--insecure"]);
    assert_exit(&o, 0, "--insecure");
}

#[test]
fn ftps_to_plain_ftp_needs_allow_clear_data() {
    let files = TlsFiles::new();
    let (a, b) = pair(
        &format!("[fxp]\nallow_foreign_port = true\n{}", files.table("")),
        "[fxp]\nallow_foreign_passive = true",
    );
    let sha = write_random_file(&a.home(U).join("c.bin"), 500_000);
    let cert = files.cert();
    let o = copy(&[&tls_url(&a, "c.bin"), &url(&b, "c.bin"), "--ca-file", &cert]);
    assert_exit(&o, 2, "ftps -> ftp without --allow-clear-data");
    assert!(stderr(&o).contains("--allow-clear-data"), "{}", stderr(&o));
    assert!(!b.home(U).join("c.bin").exists());
    let o = copy(&[
        &tls_url(&a, "c.bin"),
        &url(&b, "c.bin"),
        "--ca-file",
        &cert,
        "--allow-clear-data",
        "--verbose",
    ]);
    assert_exit(&o, 0, "ftps -> ftp with --allow-clear-data");
    assert!(stderr(&o).contains("source -> PROT C"), "{}", stderr(&o));
    assert_eq!(sha256_file(&b.home(U).join("c.bin")), sha);
}
