//! Protocol tests against the real `fxpd` binary, driven by the `suppaftp` crate and raw
//! `std::net::TcpStream` control/data connections. No external program is needed, so these
//! run on every `cargo test`.
//!
//! The server listens on 127.0.0.2; a client socket that connects to it from an unbound
//! socket gets the source address 127.0.0.1 (Linux loopback routing), which lets the PORT
//! policy tests name 127.0.0.3 as a "foreign" address.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::*;

const ALICE: &str = "alice";

fn alice_home(s: &Server) -> std::path::PathBuf {
    s.home(ALICE)
}

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Login, session basics
// ---------------------------------------------------------------------------------------------

#[test]
fn listening_line_reports_bound_address() {
    let s = Server::with_alice("");
    assert_eq!(s.listening_lines.len(), 1, "{:?}", s.listening_lines);
    assert_eq!(s.addr().ip(), ip("127.0.0.2"));
    assert_ne!(s.addr().port(), 0, "LISTENING must report the port the OS chose");
    assert_eq!(s.listening_lines[0], format!("LISTENING 127.0.0.2:{}", s.port()));
    // And something really listens there.
    let c = s.ctrl();
    assert!(c.greeting.as_ref().unwrap().first().starts_with("220"));
}

#[test]
fn login_good_and_bad_passwords() {
    let s = Server::with_alice("");
    let mut c = s.ctrl();
    // Commands that need a session are refused before login.
    c.expect("PWD", 530);
    c.expect("USER alice", 331);
    c.expect("PASS wrong-password", 530);
    // The session goes on: a second attempt with the right password works.
    c.expect("USER alice", 331);
    c.expect(&format!("PASS {PASS}"), 230);
    let r = c.expect("PWD", 257);
    assert!(r.first().contains('"'), "PWD reply must quote the path: {r}");
    c.expect("QUIT", 221);

    // An unknown user is refused, the same way a bad password is.
    let mut c = s.ctrl();
    let r = c.cmd("USER nobody");
    if r.code == 331 {
        c.expect(&format!("PASS {PASS}"), 530);
    } else {
        assert_eq!(r.code, 530, "USER nobody -> {r}");
    }
    // Empty password for a real user.
    let mut c = s.ctrl();
    c.expect("USER alice", 331);
    c.expect_class("PASS", 5);
}

#[test]
fn anonymous_is_refused_unless_enabled() {
    let s = Server::with_alice("");
    for name in ["anonymous", "ftp"] {
        let mut c = s.ctrl();
        let r = c.cmd(&format!("USER {name}"));
        if r.code == 331 {
            c.expect("PASS guest@example.com", 530);
        } else {
            assert_eq!(r.code, 530, "USER {name} with anonymous disabled -> {r}");
        }
        c.expect("PWD", 530);
    }
}

#[test]
fn quit_replies_221_and_closes() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    c.expect("QUIT", 221);
    assert!(
        c.wait_closed(Duration::from_secs(10)),
        "server must close the control connection after QUIT"
    );
}

#[test]
fn lowercase_verbs_are_accepted() {
    let s = Server::with_alice("");
    let mut c = s.ctrl();
    c.expect("user alice", 331);
    c.expect(&format!("pass {PASS}"), 230);
    c.expect("noop", 200);
    c.expect("pwd", 257);
    c.expect("type i", 200);
}

#[test]
fn pwd_cwd_cdup() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    let start = quoted(&c.expect("PWD", 257));
    c.expect("MKD d1", 257);
    assert!(alice_home(&s).join("d1").is_dir());
    c.expect("CWD d1", 250);
    let inside = quoted(&c.expect("PWD", 257));
    assert_eq!(inside, join_path(&start, "d1"));
    c.expect("MKD d2", 257);
    assert!(
        alice_home(&s).join("d1/d2").is_dir(),
        "MKD after CWD must create relative to the new cwd"
    );
    let r = c.cmd("CDUP");
    assert!(r.code == 200 || r.code == 250, "CDUP -> {r}");
    assert_eq!(quoted(&c.expect("PWD", 257)), start);
    c.expect("CWD d1/d2", 250);
    assert_eq!(
        quoted(&c.expect("PWD", 257)),
        join_path(&join_path(&start, "d1"), "d2")
    );
    c.expect("CWD ..", 250);
    assert_eq!(quoted(&c.expect("PWD", 257)), join_path(&start, "d1"));
    c.expect("CWD no-such-dir", 550);
    assert_eq!(
        quoted(&c.expect("PWD", 257)),
        join_path(&start, "d1"),
        "failed CWD must not move"
    );
    // A file is not a directory.
    write_file(&alice_home(&s).join("d1/f.txt"), b"x");
    c.expect("CWD f.txt", 550);
    // Absolute CWD back to the start.
    c.expect(&format!("CWD {start}"), 250);
    assert_eq!(quoted(&c.expect("PWD", 257)), start);
}

/// The path inside the quotes of a 257 reply (with `""` unescaped).
fn quoted(r: &Reply) -> String {
    let l = r.first();
    let a = l.find('"').unwrap_or_else(|| panic!("no quoted path in {r}"));
    let mut out = String::new();
    let mut chars = l[a + 1..].chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return out;
            }
        } else {
            out.push(ch);
        }
    }
    panic!("unterminated quoted path in {r}")
}

fn join_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[test]
fn mkd_rmd_dele_rename() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let mut c = s.login(ALICE, PASS);
    let r = c.expect("MKD newdir", 257);
    assert!(quoted(&r).ends_with("newdir"), "257 must name the directory: {r}");
    assert!(home.join("newdir").is_dir());
    // An existing name is answered as such, not as a missing one.
    let r = c.expect("MKD newdir", 550);
    assert!(r.text().contains("already exists"), "{r}");
    write_file(&home.join("newdir/inner.txt"), b"inner");
    c.expect("RMD newdir", 550); // not empty
    assert!(home.join("newdir/inner.txt").exists());
    c.expect("DELE newdir/inner.txt", 250);
    assert!(!home.join("newdir/inner.txt").exists());
    c.expect("DELE newdir/inner.txt", 550);
    c.expect("RMD newdir", 250);
    assert!(!home.join("newdir").exists());
    c.expect("RMD newdir", 550);

    write_file(&home.join("old.bin"), b"rename me");
    c.expect("RNFR old.bin", 350);
    c.expect("RNTO new.bin", 250);
    assert!(!home.join("old.bin").exists());
    assert_eq!(fs::read(home.join("new.bin")).unwrap(), b"rename me");
    c.expect("RNFR does-not-exist", 550);
    c.expect("RNTO whatever", 503); // RNTO without a pending RNFR
    c.expect("NOOP", 200);
}

#[test]
fn read_only_user_cannot_modify_anything() {
    let s = Server::start("", &[user("bob", PASS, "bob", false)]);
    let home = s.home("bob");
    write_file(&home.join("keep.txt"), b"original");
    fs::create_dir(home.join("dir")).unwrap();
    let mut c = s.login("bob", PASS);
    assert_eq!(
        c.retr("keep.txt"),
        b"original",
        "a read-only user can still download"
    );
    for (line, what) in [
        ("DELE keep.txt", "DELE"),
        ("MKD made", "MKD"),
        ("RMD dir", "RMD"),
        ("RNFR keep.txt", "RNFR"),
    ] {
        let r = c.cmd(line);
        assert_eq!(r.code, 550, "{what} by a read-only user -> {r}");
    }
    for verb in ["STOR new.txt", "APPE keep.txt", "STOR keep.txt"] {
        let a = c.pasv();
        let _maybe = TcpStream::connect_timeout(&a, Duration::from_secs(5));
        let r = c.cmd(verb);
        assert_eq!(r.code, 550, "{verb} by a read-only user -> {r}");
    }
    assert_eq!(fs::read(home.join("keep.txt")).unwrap(), b"original");
    assert!(!home.join("new.txt").exists() && !home.join("made").exists());
    assert!(home.join("dir").is_dir());
    c.expect("NOOP", 200);
}

#[test]
fn paths_cannot_escape_the_root() {
    let s = Server::with_alice("");
    let outside = s.dir.path().join("outside-secret.txt");
    fs::write(&outside, b"TOP SECRET outside the ftp root").unwrap();
    let home = alice_home(&s);
    std::os::unix::fs::symlink(&outside, home.join("link-out")).unwrap();
    std::os::unix::fs::symlink(s.dir.path(), home.join("dirlink-out")).unwrap();
    let mut c = s.login(ALICE, PASS);
    for name in [
        "../../outside-secret.txt",
        "../../../../../../outside-secret.txt",
        "/../../outside-secret.txt",
        "link-out",
        "dirlink-out/outside-secret.txt",
    ] {
        let a = c.pasv();
        let mut d = data_connect(a);
        let r = c.cmd(&format!("RETR {name}"));
        if r.code == 150 || r.code == 125 {
            let got = read_to_end_deadline(&mut d, Duration::from_secs(10));
            let end = c.read_reply();
            panic!(
                "RETR {name} escaped the root: {r} / {end}; got {} bytes: {:?}",
                got.len(),
                String::from_utf8_lossy(&got)
            );
        }
        assert_eq!(r.code, 550, "RETR {name} -> {r}");
    }
    // CWD above the top stays at the top.
    for _ in 0..6 {
        let _ = c.cmd("CWD ..");
    }
    let names = c.listing("NLST");
    for host_name in [
        "outside-secret.txt",
        "fxpd.toml",
        "users.toml",
        "fxpd.stderr.log",
        "root",
    ] {
        assert!(
            !names
                .lines()
                .any(|l| l.trim_end_matches('\r').rsplit('/').next() == Some(host_name)),
            "NLST after CWD .. shows the host directory ({host_name}):\n{names}"
        );
    }
    c.expect("NOOP", 200);
}

// ---------------------------------------------------------------------------------------------
// Transfers (suppaftp), hash-checked
// ---------------------------------------------------------------------------------------------

#[test]
fn stor_and_retr_binary_hash_checked() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();

    let big = random_bytes(5 * 1024 * 1024 + 123);
    let text = text_content(500);
    for (name, data) in [
        ("big.bin", &big[..]),
        ("empty.bin", &b""[..]),
        ("text.txt", &text[..]),
    ] {
        let n = ftp
            .put_file(name, &mut &data[..])
            .unwrap_or_else(|e| panic!("STOR {name}: {e}"));
        assert_eq!(n as usize, data.len());
        assert!(home.join(name).is_file(), "STOR {name} did not create the file");
        assert_eq!(
            sha256_file(&home.join(name)),
            sha256_bytes(data),
            "stored {name} differs"
        );
        let back = ftp
            .retr_as_buffer(name)
            .unwrap_or_else(|e| panic!("RETR {name}: {e}"))
            .into_inner();
        assert_eq!(back.len(), data.len(), "RETR {name} length");
        assert_eq!(sha256_bytes(&back), sha256_bytes(data), "RETR {name} content");
    }
    // A file put on disk by someone else is served as is.
    let disk_sha = write_random_file(&home.join("disk.bin"), 2 * 1024 * 1024 + 5);
    let back = ftp.retr_as_buffer("disk.bin").unwrap().into_inner();
    assert_eq!(sha256_bytes(&back), disk_sha);
    // STOR over an existing file replaces it.
    let small = random_bytes(1000);
    ftp.put_file("big.bin", &mut &small[..]).unwrap();
    assert_eq!(
        sha256_file(&home.join("big.bin")),
        sha256_bytes(&small),
        "STOR must truncate"
    );
    // RETR of a missing file is 550 and the session goes on.
    let e = ftp.retr_as_buffer("missing.bin").unwrap_err();
    assert_eq!(ftp_err_code(&e), Some(550), "RETR missing -> {e}");
    ftp.noop().unwrap();
    ftp.quit().unwrap();
}

#[test]
fn epsv_and_pasv_transfers() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let sha = write_random_file(&home.join("f.bin"), 1024 * 1024 + 7);
    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
    ftp.set_mode(suppaftp::Mode::ExtendedPassive);
    assert_eq!(
        sha256_bytes(&ftp.retr_as_buffer("f.bin").unwrap().into_inner()),
        sha
    );
    let up = random_bytes(300_000);
    ftp.put_file("up-epsv.bin", &mut &up[..]).unwrap();
    assert_eq!(sha256_file(&home.join("up-epsv.bin")), sha256_bytes(&up));
    ftp.set_mode(suppaftp::Mode::Passive);
    assert_eq!(
        sha256_bytes(&ftp.retr_as_buffer("f.bin").unwrap().into_inner()),
        sha
    );
}

#[test]
fn appe_appends() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
    let a = random_bytes(700_001);
    let b = random_bytes(1_300_003);
    ftp.put_file("log.bin", &mut &a[..]).unwrap();
    ftp.append_file("log.bin", &mut &b[..]).unwrap();
    let mut ab = a.clone();
    ab.extend_from_slice(&b);
    assert_eq!(
        sha256_file(&home.join("log.bin")),
        sha256_bytes(&ab),
        "APPE must append"
    );
    // APPE to a missing file creates it.
    ftp.append_file("fresh.bin", &mut &b[..]).unwrap();
    assert_eq!(sha256_file(&home.join("fresh.bin")), sha256_bytes(&b));
    let back = ftp.retr_as_buffer("log.bin").unwrap().into_inner();
    assert_eq!(sha256_bytes(&back), sha256_bytes(&ab));
}

#[test]
fn stor_over_a_larger_file_replaces_it() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
    // 20 MiB cut off (more than BIG_TRUNCATE: the blocking-thread path), then 20 KiB (inline).
    write_file(&home.join("old.bin"), &random_bytes(20 * 1024 * 1024 + 20_000));
    let small = random_bytes(20_000);
    ftp.put_file("old.bin", &mut &small[..]).unwrap();
    assert_eq!(sha256_file(&home.join("old.bin")), sha256_bytes(&small));
    let smaller = random_bytes(7);
    ftp.put_file("old.bin", &mut &smaller[..]).unwrap();
    assert_eq!(sha256_file(&home.join("old.bin")), sha256_bytes(&smaller));
}

#[test]
fn rest_then_retr_resumes_download() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let data = random_bytes(3 * 1024 * 1024 + 99);
    write_file(&home.join("r.bin"), &data);
    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
    for offset in [1usize, 65_536, 1_234_567, data.len() - 1] {
        ftp.resume_transfer(offset)
            .unwrap_or_else(|e| panic!("REST {offset}: {e}"));
        let back = ftp.retr_as_buffer("r.bin").unwrap().into_inner();
        assert_eq!(back.len(), data.len() - offset, "REST {offset} + RETR length");
        assert_eq!(
            sha256_bytes(&back),
            sha256_bytes(&data[offset..]),
            "REST {offset} + RETR content"
        );
    }
    // REST applies to one transfer only.
    let back = ftp.retr_as_buffer("r.bin").unwrap().into_inner();
    assert_eq!(
        sha256_bytes(&back),
        sha256_bytes(&data),
        "REST must be reset after a transfer"
    );
}

#[test]
fn rest_then_stor_resumes_upload() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let data = random_bytes(2 * 1024 * 1024 + 11);
    let cut = 777_777;
    let mut c = s.login(ALICE, PASS);
    c.expect("TYPE I", 200);
    c.stor("resume.bin", &data[..cut]);
    assert_eq!(fs::metadata(home.join("resume.bin")).unwrap().len(), cut as u64);
    c.expect(&format!("REST {cut}"), 350);
    c.stor("resume.bin", &data[cut..]);
    assert_eq!(
        sha256_file(&home.join("resume.bin")),
        sha256_bytes(&data),
        "REST + STOR must write at the offset"
    );
}

#[test]
fn size_and_mdtm() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    write_random_file(&home.join("sized.bin"), 1_234_567);
    write_file(&home.join("empty"), b"");
    fs::create_dir(home.join("adir")).unwrap();
    // 2021-03-04 05:06:07 UTC
    let t = UNIX_EPOCH + Duration::from_secs(1_614_834_367);
    fs::File::options()
        .write(true)
        .open(home.join("sized.bin"))
        .unwrap()
        .set_modified(t)
        .unwrap();

    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
    assert_eq!(ftp.size("sized.bin").unwrap(), 1_234_567);
    assert_eq!(ftp.size("empty").unwrap(), 0);
    let e = ftp.size("nope").unwrap_err();
    assert_eq!(ftp_err_code(&e), Some(550), "SIZE of a missing file -> {e}");

    let mut c = s.login(ALICE, PASS);
    c.expect("TYPE I", 200);
    assert_eq!(c.expect("SIZE sized.bin", 213).first(), "213 1234567");
    let r = c.expect("MDTM sized.bin", 213);
    assert_eq!(r.first(), "213 20210304050607", "MDTM must be UTC YYYYMMDDHHMMSS");
    c.expect("MDTM nope", 550);
    c.expect_class("SIZE adir", 5);
    let mt = ftp.mdtm("sized.bin").unwrap();
    assert_eq!(mt.to_string(), "2021-03-04 05:06:07");
}

// ---------------------------------------------------------------------------------------------
// Listings
// ---------------------------------------------------------------------------------------------

fn listing_fixture(s: &Server) {
    let home = alice_home(s);
    write_random_file(&home.join("a.bin"), 1234);
    write_file(&home.join("notes.txt"), b"hello\n");
    fs::create_dir(home.join("sub")).unwrap();
    write_file(&home.join("sub/inner.bin"), b"inner");
}

fn line_for<'a>(listing: &'a [String], name: &str) -> &'a str {
    listing
        .iter()
        .find(|l| l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("no line for {name} in {listing:#?}"))
}

#[test]
fn list_nlst_mlsd_contents() {
    let s = Server::with_alice("");
    listing_fixture(&s);
    let mut ftp = s.ftp(ALICE, PASS);

    let list = ftp.list(None).unwrap();
    let a = line_for(&list, "a.bin");
    assert!(a.starts_with('-'), "unix LIST line for a file: {a}");
    assert!(
        a.split_whitespace().any(|w| w == "1234"),
        "LIST must show the size: {a}"
    );
    let d = line_for(&list, "sub");
    assert!(d.starts_with('d'), "unix LIST line for a directory: {d}");
    assert!(
        !list.iter().any(|l| l.ends_with(" inner.bin")),
        "LIST must not recurse: {list:#?}"
    );

    let mut names = ftp.nlst(None).unwrap();
    names.sort();
    assert_eq!(names, vec!["a.bin", "notes.txt", "sub"], "NLST");
    let sub = ftp.nlst(Some("sub")).unwrap();
    assert_eq!(sub.len(), 1, "NLST sub: {sub:?}");
    assert!(sub[0].ends_with("inner.bin"), "NLST sub: {sub:?}");

    let mlsd = ftp.mlsd(None).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for l in &mlsd {
        let (facts, name) = l
            .split_once(' ')
            .unwrap_or_else(|| panic!("MLSD line without a space: {l:?}"));
        let facts: std::collections::BTreeMap<String, String> = facts
            .split(';')
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (k, v) = f
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad MLSD fact {f:?} in {l:?}"));
                (k.to_ascii_lowercase(), v.to_string())
            })
            .collect();
        seen.insert(name.to_string(), facts);
    }
    let a = seen
        .get("a.bin")
        .unwrap_or_else(|| panic!("a.bin missing from MLSD: {mlsd:#?}"));
    assert_eq!(
        a.get("type").map(|t| t.to_ascii_lowercase()),
        Some("file".into()),
        "{mlsd:#?}"
    );
    assert_eq!(a.get("size").map(String::as_str), Some("1234"), "{mlsd:#?}");
    assert!(a.contains_key("modify"), "MLSD should give modify=: {mlsd:#?}");
    let d = seen
        .get("sub")
        .unwrap_or_else(|| panic!("sub missing from MLSD: {mlsd:#?}"));
    assert_eq!(
        d.get("type").map(|t| t.to_ascii_lowercase()),
        Some("dir".into()),
        "{mlsd:#?}"
    );
    let names: Vec<&String> = seen
        .iter()
        .filter(|(_, f)| {
            !matches!(
                f.get("type").map(|t| t.to_ascii_lowercase()).as_deref(),
                Some("cdir" | "pdir")
            )
        })
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["a.bin", "notes.txt", "sub"], "MLSD entries");
}

#[test]
fn msdos_listing_style() {
    let s = Server::with_alice("listing_style = \"msdos\"");
    listing_fixture(&s);
    let mut ftp = s.ftp(ALICE, PASS);
    let list = ftp.list(None).unwrap();
    let d = line_for(&list, "sub");
    assert!(d.contains("<DIR>"), "msdos LIST line for a directory: {d}");
    let a = line_for(&list, "a.bin");
    assert!(
        !a.contains("<DIR>") && a.split_whitespace().any(|w| w == "1234"),
        "msdos LIST file line: {a}"
    );
    assert!(
        a.as_bytes()[0].is_ascii_digit(),
        "msdos LIST lines start with the date: {a}"
    );
}

// ---------------------------------------------------------------------------------------------
// TYPE A
// ---------------------------------------------------------------------------------------------

#[test]
fn type_ascii_converts_line_endings() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let mut c = s.login(ALICE, PASS);
    c.expect("TYPE A", 200);
    c.stor("up.txt", b"a\r\nb\r\n");
    assert_eq!(
        fs::read(home.join("up.txt")).unwrap(),
        b"a\nb\n",
        "ASCII STOR must store LF"
    );

    let mut many = Vec::new();
    for i in 0..5000 {
        many.extend_from_slice(format!("row {i}\r\n").as_bytes());
    }
    c.stor("many.txt", &many);
    let expect_lf: Vec<u8> = many.iter().copied().filter(|b| *b != b'\r').collect();
    assert_eq!(sha256_file(&home.join("many.txt")), sha256_bytes(&expect_lf));

    write_file(&home.join("lf.txt"), b"x\ny\n");
    assert_eq!(c.retr("lf.txt"), b"x\r\ny\r\n", "ASCII RETR must send CRLF");
    let got = c.retr("many.txt");
    assert_eq!(
        sha256_bytes(&got),
        sha256_bytes(&many),
        "ASCII RETR of a long LF file"
    );

    c.expect("TYPE I", 200);
    assert_eq!(c.retr("lf.txt"), b"x\ny\n", "binary RETR must not convert");
    c.stor("bin.txt", b"a\r\nb\r\n");
    assert_eq!(
        fs::read(home.join("bin.txt")).unwrap(),
        b"a\r\nb\r\n",
        "binary STOR must not convert"
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_commands_get_5xx_and_session_continues() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    for (line, code) in [
        ("PORT 1,2,3", 501),
        ("PORT 300,1,1,1,1,1", 501),
        ("PORT 127,0,0,1,1", 501),
        ("PORT 127,0,0,1,1,2,3", 501),
        ("PORT a,b,c,d,e,f", 501),
        ("PORT 127,0,0,1,256,1", 501),
        ("PORT", 501),
        ("EPRT |9|x|1|", 522),
        ("EPRT |1|127.0.0.1|notaport|", 501),
        ("EPRT |1|999.0.0.1|5000|", 501),
        ("EPRT garbage", 501),
        ("EPRT", 501),
        ("XYZZY", 502),
        ("XYZZY with arguments", 502),
        ("TYPE Q", 501),
        ("REST abc", 501),
        ("REST -5", 501),
        ("RETR", 501),
        ("MKD", 501),
        ("RNTO", 501),
        ("SIZE", 501),
    ] {
        let r = c.cmd(line);
        assert_eq!(r.code, code, "{line:?} -> {r}");
        c.expect("NOOP", 200);
    }
    let r = c.cmd("PORT 1,2,3");
    assert_eq!(
        r.code, 501,
        "PORT with 3 fields is a syntax error in the arguments: {r}"
    );
    let r = c.cmd("PORT 300,1,1,1,1,1");
    assert_eq!(r.code, 501, "PORT with a field > 255: {r}");
    let r = c.cmd("XYZZY");
    assert!(r.code == 500 || r.code == 502, "unknown verb -> {r}");
    // After all that, a transfer still works.
    write_file(&alice_home(&s).join("ok.txt"), b"still fine");
    assert_eq!(c.retr("ok.txt"), b"still fine");
}

#[test]
fn invalid_utf8_path_gets_5xx() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let mut c = s.login(ALICE, PASS);
    let before = fs::read_dir(&home).unwrap().count();
    for raw in [
        &b"RETR \xff\xfe\xfd.bin\r\n"[..],
        b"MKD \xc3\x28dir\r\n",
        b"CWD \x80\r\n",
        b"DELE \xed\xa0\x80\r\n",
    ] {
        c.send_bytes(raw);
        let r = c.read_reply();
        assert_eq!(
            r.class(),
            5,
            "{:?} must get 5xx, got: {r}",
            String::from_utf8_lossy(raw)
        );
        c.expect("NOOP", 200);
    }
    // STOR with an invalid name must not create anything.
    let a = c.pasv();
    let _d = TcpStream::connect_timeout(&a, Duration::from_secs(5));
    c.send_bytes(b"STOR bad\xffname.bin\r\n");
    let r = c.read_reply();
    assert_eq!(r.code, 553, "STOR with invalid UTF-8 -> {r}");
    assert_eq!(
        fs::read_dir(&home).unwrap().count(),
        before,
        "nothing may be created"
    );
    c.expect("PWD", 257);
}

#[test]
fn overlong_line_gets_500_and_session_continues() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    let long = format!("NOOP {}\r\n", "x".repeat(10 * 1024));
    c.send_bytes(long.as_bytes());
    c.send("NOOP");
    let r = c.read_reply();
    assert_eq!(r.code, 500, "a 10 KiB line must get 500, got: {r}");
    let r = c.read_reply();
    assert_eq!(
        r.code, 200,
        "exactly one reply for the long line, then NOOP's 200; got: {r}"
    );
    c.expect("PWD", 257);
    // A long path argument, too.
    let long = format!("RETR {}\r\n", "y".repeat(12 * 1024));
    c.send_bytes(long.as_bytes());
    let r = c.read_reply();
    assert_eq!(r.code, 500, "a 12 KiB RETR line -> {r}");
    c.expect("NOOP", 200);
}

#[test]
fn configured_max_line_len_is_enforced() {
    let s = Server::with_alice("[limits]\nmax_line_len = 512");
    let mut c = s.login(ALICE, PASS);
    c.send_bytes(format!("NOOP {}\r\n", "z".repeat(600)).as_bytes());
    let r = c.read_reply();
    assert_eq!(r.code, 500, "a 606-byte line over max_line_len = 512 -> {r}");
    c.expect("NOOP", 200);
    // A line under the limit is fine.
    write_file(&alice_home(&s).join("short"), b"k");
    let r = c.cmd(&format!("SIZE {}", "a".repeat(300)));
    assert_eq!(
        r.code, 550,
        "a 305-byte line under the limit is parsed normally: {r}"
    );
}

// ---------------------------------------------------------------------------------------------
// STAT, ABOR
// ---------------------------------------------------------------------------------------------

#[test]
fn idle_stat_says_no_data_connection() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    let r = c.cmd("STAT");
    assert_eq!(r.code, 211, "idle STAT -> {r}");
    assert!(r.lines.len() > 1, "idle STAT is a multi-line 211: {r}");
    assert!(
        r.text().contains("No data connection"),
        "idle STAT must contain 'No data connection': {r}"
    );
    c.expect("NOOP", 200);
}

const GIB: u64 = 1024 * 1024 * 1024;

fn sparse_gib(s: &Server, name: &str) {
    let f = fs::File::create(alice_home(s).join(name)).unwrap();
    f.set_len(GIB).unwrap();
}

/// Reads exactly `n` bytes from a data socket.
fn read_exact_n(d: &mut TcpStream, n: usize) {
    let mut buf = vec![0u8; n];
    d.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes of data: {e}"));
}

#[test]
fn stat_during_transfer_reports_progress() {
    let s = Server::with_alice("");
    sparse_gib(&s, "huge.img");
    let mut c = s.login(ALICE, PASS);
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    let r = c.cmd("RETR huge.img");
    assert!(r.code == 150 || r.code == 125, "RETR -> {r}");
    let first = 8 * 1024 * 1024;
    read_exact_n(&mut d, first);
    thread::sleep(Duration::from_millis(200));
    // The server is now blocked writing (socket buffers are far smaller than 1 GiB).
    c.set_read_timeout(Duration::from_secs(15));
    let st = c.cmd("STAT");
    assert!(
        st.code == 211 || st.code == 213,
        "STAT during a transfer must be 211/213, got: {st}"
    );
    assert!(
        st.text().contains("huge.img"),
        "STAT during a transfer must name the file: {st}"
    );
    assert!(
        !st.text().contains("No data connection"),
        "STAT says idle during a transfer: {st}"
    );
    let nums = numbers_in(&st.text());
    assert!(
        nums.iter().any(|n| *n >= first as u64 && *n < GIB),
        "STAT must report the bytes moved so far (>= {first}, < 1 GiB); numbers in reply: {nums:?}\n{st}"
    );
    // Read the rest: the whole GiB arrives, and it is all zeros.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut total = first as u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        assert!(
            Instant::now() < deadline,
            "1 GiB RETR did not finish in time ({total} bytes)"
        );
        let n = d
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("data read after {total} bytes: {e}"));
        if n == 0 {
            break;
        }
        assert!(
            buf[..n].iter().all(|b| *b == 0),
            "sparse file content must be zeros"
        );
        total += n as u64;
    }
    assert_eq!(total, GIB, "RETR of a 1 GiB file");
    c.set_read_timeout(Duration::from_secs(30));
    let r = c.read_reply();
    assert_eq!(r.code, 226, "end of transfer after STAT -> {r}");
    let r = c.cmd("STAT");
    assert!(
        r.text().contains("No data connection"),
        "STAT after the transfer is idle again: {r}"
    );
}

#[test]
fn abor_during_transfer_gives_426_then_226() {
    let s = Server::with_alice("");
    sparse_gib(&s, "huge.img");
    write_file(&alice_home(&s).join("small.txt"), b"after abort");
    let mut c = s.login(ALICE, PASS);
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    let r = c.cmd("RETR huge.img");
    assert!(r.code == 150 || r.code == 125, "RETR -> {r}");
    read_exact_n(&mut d, 4 * 1024 * 1024);
    thread::sleep(Duration::from_millis(200));
    c.set_read_timeout(Duration::from_secs(15));
    c.send("ABOR");
    let r1 = c.read_reply();
    assert_eq!(
        r1.code, 426,
        "first reply to ABOR during a transfer must be 426, got: {r1}"
    );
    let r2 = c.read_reply();
    assert_eq!(r2.code, 226, "second reply to ABOR must be 226, got: {r2}");
    // The data connection is closed by the server: what is still buffered drains, then EOF.
    let rest = read_to_end_lenient(&mut d, Duration::from_secs(20));
    assert!(
        rest < GIB - 4 * 1024 * 1024,
        "the transfer went on after ABOR ({rest} more bytes)"
    );
    // The session goes on.
    c.set_read_timeout(Duration::from_secs(30));
    c.expect("NOOP", 200);
    assert_eq!(c.retr("small.txt"), b"after abort");
}

/// Reads until EOF or a reset (both fine after an abort); panics if still open at the deadline.
fn read_to_end_lenient(d: &mut TcpStream, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        assert!(
            Instant::now() < deadline,
            "data connection still open {within:?} after ABOR ({total} bytes)"
        );
        d.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match d.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n as u64,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            }
            Err(_) => return total,
        }
    }
}

#[test]
fn abor_without_transfer_is_harmless() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    let r = c.cmd("ABOR");
    assert!(r.code == 225 || r.code == 226, "ABOR with no transfer -> {r}");
    c.expect("NOOP", 200);
}

/// An upload that pauses with a few bytes sent (far less than the server gathers before it
/// wakes), then with nothing sent, loses nothing: STAT sees those few bytes on their own,
/// and every byte reaches the file.
#[test]
fn an_upload_that_pauses_arrives_whole_and_shows_progress() {
    let s = Server::with_alice("");
    let data = random_bytes(5 * 1024 * 1024 + 17);
    let mut c = s.login(ALICE, PASS);
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    let r = c.cmd("STOR paused.bin");
    assert!(r.code == 150 || r.code == 125, "STOR -> {r}");
    // A first stretch at full speed opens the receive window wide, then 1000 bytes alone.
    let (fast, few) = (2 * 1024 * 1024, 2 * 1024 * 1024 + 1000);
    d.write_all(&data[..fast]).unwrap();
    thread::sleep(Duration::from_millis(300));
    d.write_all(&data[fast..few]).unwrap();
    thread::sleep(Duration::from_millis(500));
    let st = c.cmd("STAT");
    let nums = numbers_in(&st.text());
    assert!(
        nums.contains(&(few as u64)),
        "STAT after {few} bytes and a pause must count them all; numbers: {nums:?}\n{st}"
    );
    let pieces = [few, few + 300 * 1024, few + 1 + 300 * 1024, data.len()];
    for w in pieces.windows(2) {
        d.write_all(&data[w[0]..w[1]]).unwrap();
        thread::sleep(Duration::from_millis(300));
    }
    drop(d);
    let r = c.read_reply();
    assert_eq!(r.code, 226, "end of the paused upload -> {r}");
    assert!(
        fs::read(alice_home(&s).join("paused.bin")).unwrap() == data,
        "the stored file differs from what was sent"
    );
}

/// A client that opens an upload, sends a little and then neither sends nor closes is cut
/// off at the data timeout with 426, and its session goes on.
#[test]
fn a_stalled_upload_ends_at_the_data_timeout() {
    let s = Server::with_alice("[limits]\ndata_timeout_secs = 2");
    let mut c = s.login(ALICE, PASS);
    c.expect("TYPE I", 200);
    let mut d = c.pasv_connect();
    let r = c.cmd("STOR stalled.bin");
    assert!(r.code == 150 || r.code == 125, "STOR -> {r}");
    d.write_all(&[7u8; 5000]).unwrap();
    let started = Instant::now();
    c.set_read_timeout(Duration::from_secs(15));
    let r = c.read_reply();
    let took = started.elapsed();
    assert_eq!(r.code, 426, "a stalled upload must end with 426 -> {r}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "the stalled upload ended after {took:?}, expected about the 2 s data timeout"
    );
    drop(d);
    c.expect("NOOP", 200);
}

#[test]
fn concurrent_sessions_transfer_independently() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let addr = s.addr();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let home = home.clone();
            thread::spawn(move || {
                let mut ftp = ftp_login(addr, ALICE, PASS);
                ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
                let data = random_bytes(1024 * 1024 + i * 1000);
                let name = format!("conc-{i}.bin");
                for _ in 0..3 {
                    ftp.put_file(&name, &mut &data[..])
                        .unwrap_or_else(|e| panic!("STOR {name}: {e}"));
                    let back = ftp
                        .retr_as_buffer(&name)
                        .unwrap_or_else(|e| panic!("RETR {name}: {e}"))
                        .into_inner();
                    assert_eq!(sha256_bytes(&back), sha256_bytes(&data), "{name} round trip");
                }
                assert_eq!(sha256_file(&home.join(&name)), sha256_bytes(&data));
                ftp.quit().unwrap();
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a concurrent session failed");
    }
}

// ---------------------------------------------------------------------------------------------
// Vanishing clients
// ---------------------------------------------------------------------------------------------

#[test]
fn client_vanishing_mid_stor_leaves_server_serving() {
    let mut s = Server::with_alice("");
    {
        let mut c = s.login(ALICE, PASS);
        c.expect("TYPE I", 200);
        let mut d = c.pasv_connect();
        let r = c.cmd("STOR partial.bin");
        assert!(r.code == 150 || r.code == 125, "STOR -> {r}");
        d.write_all(&random_bytes(2 * 1024 * 1024)).unwrap();
        // Both connections vanish without QUIT and without closing the data stream politely.
        let _ = d.shutdown(std::net::Shutdown::Both);
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
    }
    thread::sleep(Duration::from_millis(300));
    assert!(
        s.is_running(),
        "fxpd died after a client vanished mid-STOR:\n{}",
        s.stderr()
    );
    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
    let data = random_bytes(1024 * 1024);
    ftp.put_file("partial.bin", &mut &data[..]).unwrap();
    assert_eq!(
        sha256_file(&alice_home(&s).join("partial.bin")),
        sha256_bytes(&data)
    );
    assert_eq!(
        sha256_bytes(&ftp.retr_as_buffer("partial.bin").unwrap().into_inner()),
        sha256_bytes(&data)
    );
}

#[test]
fn client_vanishing_mid_retr_leaves_server_serving() {
    let mut s = Server::with_alice("");
    sparse_gib(&s, "huge.img");
    for _ in 0..3 {
        let mut c = s.login(ALICE, PASS);
        c.expect("TYPE I", 200);
        let mut d = c.pasv_connect();
        let r = c.cmd("RETR huge.img");
        assert!(r.code == 150 || r.code == 125, "RETR -> {r}");
        read_exact_n(&mut d, 1024 * 1024);
        drop(d);
        drop(c);
    }
    thread::sleep(Duration::from_millis(300));
    assert!(
        s.is_running(),
        "fxpd died after clients vanished mid-RETR:\n{}",
        s.stderr()
    );
    let sha = write_random_file(&alice_home(&s).join("next.bin"), 512 * 1024);
    let mut ftp = s.ftp(ALICE, PASS);
    ftp.transfer_type(suppaftp::types::FileType::Binary).unwrap();
    assert_eq!(
        sha256_bytes(&ftp.retr_as_buffer("next.bin").unwrap().into_inner()),
        sha
    );
}

// ---------------------------------------------------------------------------------------------
// Data-connection address policy
// ---------------------------------------------------------------------------------------------

#[test]
fn pasv_reply_uses_iis_wording_and_control_local_address() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    let r = c.expect("PASV", 227);
    let a = parse_pasv(r.first()).unwrap_or_else(|| panic!("bad 227: {r}"));
    assert_eq!(
        a.ip(),
        ip("127.0.0.2"),
        "passive listener must be on the control connection's local address"
    );
    assert_eq!(
        r.first(),
        format!(
            "227 Entering Passive Mode (127,0,0,2,{},{}).",
            a.port() >> 8,
            a.port() & 0xff
        )
    );
    let r = c.expect("EPSV", 229);
    assert!(parse_epsv(r.first()).is_some(), "229 must carry (|||port|): {r}");
    let r = c.cmd("EPSV 1");
    assert_eq!(r.code, 229, "EPSV 1 (IPv4) -> {r}");
    let r = c.cmd("EPSV 2");
    assert_eq!(
        r.class(),
        5,
        "EPSV 2 on an IPv4 control connection (RFC 2428: 522) -> {r}"
    );
    c.expect("NOOP", 200);
    // A full transfer ends with IIS's 226 wording.
    write_file(&alice_home(&s).join("w.txt"), b"w");
    let mut d = c.pasv_connect();
    let r = c.cmd("RETR w.txt");
    assert!(r.code == 150 || r.code == 125, "{r}");
    assert_eq!(read_to_end_deadline(&mut d, Duration::from_secs(10)), b"w");
    assert_eq!(c.read_reply().first(), "226 Transfer complete.");
}

#[test]
fn passive_port_range_is_respected() {
    // 127.0.0.4 is used by this test alone, and the range lies below Linux's ephemeral range
    // (32768-60999), so no other socket can hold these ports. Six transfers through four
    // ports also reuse ports whose last data connection is in TIME_WAIT.
    let s = Server::with_alice("listen = [\"127.0.0.4:0\"]\n[passive]\nports = \"29311-29314\"");
    let mut c = s.login(ALICE, PASS);
    write_file(&alice_home(&s).join("p.txt"), b"range");
    for _ in 0..6 {
        let a = c.pasv();
        assert!(
            (29311..=29314).contains(&a.port()),
            "PASV port {} outside 29311-29314",
            a.port()
        );
        assert_eq!(a.ip(), ip("127.0.0.4"));
        let mut d = data_connect(a);
        let r = c.cmd("RETR p.txt");
        assert!(r.code == 150 || r.code == 125, "{r}");
        assert_eq!(read_to_end_deadline(&mut d, Duration::from_secs(10)), b"range");
        assert_eq!(c.read_reply().code, 226);
    }
}

#[test]
fn active_port_and_eprt_connect_from_control_local_address() {
    let s = Server::with_alice("");
    let home = alice_home(&s);
    let sha = write_random_file(&home.join("act.bin"), 2 * 1024 * 1024 + 3);
    let mut c = s.login(ALICE, PASS);
    assert_eq!(
        c.local_addr().ip(),
        ip("127.0.0.1"),
        "precondition: client source address"
    );
    c.expect("TYPE I", 200);
    for use_eprt in [false, true] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let la = l.local_addr().unwrap();
        let line = if use_eprt {
            eprt_command(la)
        } else {
            port_command(la)
        };
        let r = c.expect(&line, 200);
        if !use_eprt {
            assert_eq!(r.first(), "200 PORT command successful.");
        }
        c.send("RETR act.bin");
        let (mut d, peer) = accept_within(&l, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("server did not connect to {la} after {line}"));
        assert_eq!(
            peer.ip(),
            ip("127.0.0.2"),
            "active connection must come from the control local address"
        );
        let r = c.read_reply();
        assert!(r.code == 150 || r.code == 125, "RETR after {line} -> {r}");
        let got = read_to_end_deadline(&mut d, Duration::from_secs(60));
        assert_eq!(sha256_bytes(&got), sha, "active RETR after {line}");
        assert_eq!(c.read_reply().code, 226);

        // And an active upload.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let la = l.local_addr().unwrap();
        let line = if use_eprt {
            eprt_command(la)
        } else {
            port_command(la)
        };
        c.expect(&line, 200);
        let name = if use_eprt { "up-eprt.bin" } else { "up-port.bin" };
        c.send(&format!("STOR {name}"));
        let (mut d, _) =
            accept_within(&l, Duration::from_secs(15)).expect("no active data connection for STOR");
        let r = c.read_reply();
        assert!(r.code == 150 || r.code == 125, "STOR -> {r}");
        let up = random_bytes(1024 * 1024 + 9);
        d.write_all(&up).unwrap();
        drop(d);
        assert_eq!(c.read_reply().code, 226);
        assert_eq!(sha256_file(&home.join(name)), sha256_bytes(&up));
    }
}

#[test]
fn port_to_foreign_address_is_refused_before_any_connect() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    assert_eq!(
        c.local_addr().ip(),
        ip("127.0.0.1"),
        "precondition: client source address is 127.0.0.1"
    );
    let trap = TcpListener::bind("127.0.0.3:0").unwrap();
    let ta = trap.local_addr().unwrap();

    let r = c.cmd(&port_command(ta));
    assert_eq!(r.code, 504, "PORT to 127.0.0.3 from a client on 127.0.0.1 -> {r}");
    let r = c.cmd("LIST");
    assert_eq!(
        r.code, 425,
        "LIST after a refused PORT must fail (no data address): {r}"
    );
    assert!(r.text().contains("Use PORT, EPRT, PASV or EPSV first"), "{r}");
    let r = c.cmd(&eprt_command(ta));
    assert_eq!(r.code, 504, "EPRT to 127.0.0.3 from a client on 127.0.0.1 -> {r}");
    assert!(r.text().contains("(foreign-address)"), "{r}");
    let r = c.cmd("NLST");
    assert_eq!(r.code, 425, "NLST after a refused EPRT must fail: {r}");
    assert!(
        accept_within(&trap, Duration::from_millis(1500)).is_none(),
        "fxpd connected to a refused address"
    );
    c.expect("NOOP", 200);
}

#[test]
fn port_to_privileged_port_is_refused() {
    let s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    // As root we can listen on a low port and prove that no connection is attempted.
    let trap = (1000..1024).find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok());
    let port = trap
        .as_ref()
        .map(|l| l.local_addr().unwrap().port())
        .unwrap_or(21);
    let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let r = c.cmd(&port_command(target));
    assert_eq!(r.code, 504, "PORT to privileged port {port} -> {r}");
    assert!(r.text().contains("(privileged-port)"), "{r}");
    let r = c.cmd(&eprt_command(target));
    assert_eq!(r.code, 504, "EPRT to privileged port {port} -> {r}");
    assert!(r.text().contains("(privileged-port)"), "{r}");
    let r = c.cmd("LIST");
    assert_eq!(r.code, 425, "LIST after refused PORT/EPRT -> {r}");
    if let Some(l) = trap {
        assert!(
            accept_within(&l, Duration::from_millis(1500)).is_none(),
            "fxpd connected to port {port}"
        );
    }
    c.expect("NOOP", 200);
}

#[test]
fn ipv6_listener_epsv_and_eprt() {
    let s = Server::with_alice("listen = [\"127.0.0.2:0\", \"[::1]:0\"]");
    assert_eq!(s.addrs.len(), 2, "{:?}", s.listening_lines);
    let v6 = s.addr_v6();
    assert_eq!(v6.ip(), ip("::1"));
    assert!(
        s.listening_lines
            .iter()
            .any(|l| l == &format!("LISTENING [::1]:{}", v6.port())),
        "IPv6 LISTENING line format: {:?}",
        s.listening_lines
    );
    let home = alice_home(&s);
    let sha = write_random_file(&home.join("six.bin"), 1024 * 1024 + 66);
    let mut c = Ctrl::connect(v6);
    c.login(ALICE, PASS);
    c.expect("TYPE I", 200);
    let a = c.epsv();
    let mut d = data_connect(a);
    let r = c.cmd("RETR six.bin");
    assert!(r.code == 150 || r.code == 125, "{r}");
    assert_eq!(
        sha256_bytes(&read_to_end_deadline(&mut d, Duration::from_secs(60))),
        sha
    );
    assert_eq!(c.read_reply().code, 226);

    let l = TcpListener::bind("[::1]:0").unwrap();
    c.expect(&eprt_command(l.local_addr().unwrap()), 200);
    c.send("RETR six.bin");
    let (mut d, peer) = accept_within(&l, Duration::from_secs(15)).expect("no active IPv6 data connection");
    assert_eq!(peer.ip(), ip("::1"));
    assert_eq!(c.read_reply().code, 150);
    assert_eq!(
        sha256_bytes(&read_to_end_deadline(&mut d, Duration::from_secs(60))),
        sha
    );
    assert_eq!(c.read_reply().code, 226);
    // An IPv4 EPRT on an IPv6 control connection names another address: refused.
    let r = c.cmd("EPRT |1|127.0.0.1|40000|");
    assert_eq!(r.code, 504, "EPRT |1| on a ::1 session -> {r}");
    assert!(r.text().contains("(foreign-address)"), "{r}");
    // The IPv4 listener serves too.
    let mut c4 = s.login(ALICE, PASS);
    c4.expect("TYPE I", 200);
    assert_eq!(sha256_bytes(&c4.retr("six.bin")), sha);
}

// ---------------------------------------------------------------------------------------------
// FXP (server to server) with the [fxp] switches
// ---------------------------------------------------------------------------------------------

/// Client on 127.0.0.1 tells `dst` (127.0.0.3) to PORT at `src`'s (127.0.0.2) passive port.
/// Returns (PORT reply at dst, RETR final reply at src, STOR final reply at dst).
fn fxp_attempt(src: &Server, dst: &Server) -> (Reply, Option<Reply>, Option<Reply>) {
    let mut a = src.login(ALICE, PASS);
    let mut b = dst.login(ALICE, PASS);
    a.expect("TYPE I", 200);
    b.expect("TYPE I", 200);
    let pa = a.pasv();
    let port_reply = b.cmd(&port_command(pa));
    if port_reply.code != 200 {
        return (port_reply, None, None);
    }
    let r = b.cmd("STOR copy.bin");
    assert!(r.code == 150 || r.code == 125, "STOR at destination -> {r}");
    let r = a.cmd("RETR src.bin");
    let src_final = if r.code == 150 || r.code == 125 {
        a.read_reply()
    } else {
        r
    };
    let dst_final = b.read_reply();
    (port_reply, Some(src_final), Some(dst_final))
}

#[test]
fn fxp_transfer_between_two_servers_when_enabled() {
    let src = Server::with_alice("[fxp]\nallow_foreign_passive = true\npeers = [\"127.0.0.0/8\"]");
    let dst = Server::with_alice(
        "listen = [\"127.0.0.3:0\"]\n[fxp]\nallow_foreign_port = true\npeers = [\"127.0.0.0/8\"]",
    );
    let sha = write_random_file(&src.home(ALICE).join("src.bin"), 3 * 1024 * 1024 + 1);
    let (port, src_final, dst_final) = fxp_attempt(&src, &dst);
    assert_eq!(
        port.code, 200,
        "PORT to the other server with allow_foreign_port -> {port}"
    );
    assert_eq!(src_final.unwrap().code, 226);
    assert_eq!(dst_final.unwrap().code, 226);
    assert_eq!(
        sha256_file(&dst.home(ALICE).join("copy.bin")),
        sha,
        "FXP copy differs"
    );
}

#[test]
fn fxp_refused_by_default_at_the_port_side() {
    let src = Server::with_alice("[fxp]\nallow_foreign_passive = true\npeers = [\"127.0.0.0/8\"]");
    let dst = Server::with_alice("listen = [\"127.0.0.3:0\"]");
    write_random_file(&src.home(ALICE).join("src.bin"), 100_000);
    let (port, _, _) = fxp_attempt(&src, &dst);
    assert_eq!(
        port.code, 504,
        "default policy must refuse PORT to another server: {port}"
    );
    assert!(!dst.home(ALICE).join("copy.bin").exists());
}

#[test]
fn fxp_refused_by_default_at_the_passive_side() {
    let src = Server::with_alice("[limits]\ndata_timeout_secs = 3");
    let dst = Server::with_alice(
        "listen = [\"127.0.0.3:0\"]\n[fxp]\nallow_foreign_port = true\npeers = [\"127.0.0.0/8\"]\n[limits]\ndata_timeout_secs = 5",
    );
    let sha = write_random_file(&src.home(ALICE).join("src.bin"), 1024 * 1024);
    let (port, src_final, _dst_final) = fxp_attempt(&src, &dst);
    assert_eq!(port.code, 200, "{port}");
    let src_final = src_final.unwrap();
    assert_eq!(
        src_final.code, 425,
        "passive side accepted a data connection from a foreign address: {src_final}"
    );
    assert!(
        src_final.text().contains("127.0.0.3") && src_final.text().contains("(foreign-address)"),
        "the 425 names the refused peer and the rule: {src_final}"
    );
    let copy = dst.home(ALICE).join("copy.bin");
    let copied = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        copied, 0,
        "{copied} bytes reached the foreign peer (source sha {sha})"
    );
}

#[test]
fn fxp_peers_list_limits_foreign_port() {
    let dst = Server::with_alice("[fxp]\nallow_foreign_port = true\npeers = [\"127.0.0.9/32\"]");
    let mut c = dst.login(ALICE, PASS);
    let trap = TcpListener::bind("127.0.0.3:0").unwrap();
    let r = c.cmd(&port_command(trap.local_addr().unwrap()));
    assert_eq!(r.code, 504, "PORT to 127.0.0.3 outside peers 127.0.0.9/32 -> {r}");
    assert!(accept_within(&trap, Duration::from_millis(1000)).is_none());
}

#[test]
fn per_user_fxp_setting_overrides_the_server_switch() {
    let s = Server::start(
        "[fxp]\nallow_foreign_port = true\npeers = [\"127.0.0.0/8\"]",
        &[
            user("carol", PASS, "carol", true).with_fxp("deny"),
            user("erin", PASS, "erin", true),
        ],
    );
    let trap = TcpListener::bind("127.0.0.3:0").unwrap();
    let target = trap.local_addr().unwrap();
    let mut c = s.login("carol", PASS);
    let r = c.cmd(&port_command(target));
    assert_eq!(r.code, 504, "PORT to 127.0.0.3 by a user with --fxp deny -> {r}");
    assert!(accept_within(&trap, Duration::from_millis(1000)).is_none());
    let mut e = s.login("erin", PASS);
    e.expect(&port_command(target), 200);
    e.send("LIST");
    let (mut d, peer) =
        accept_within(&trap, Duration::from_secs(15)).expect("no FXP data connection for erin");
    assert_eq!(peer.ip(), ip("127.0.0.2"));
    let r = e.read_reply();
    assert!(r.code == 150 || r.code == 125, "LIST -> {r}");
    read_to_end_deadline(&mut d, Duration::from_secs(10));
    assert_eq!(e.read_reply().code, 226);
}

// ---------------------------------------------------------------------------------------------
// Process, config and CLI
// ---------------------------------------------------------------------------------------------

#[test]
fn sigterm_stops_gracefully_with_exit_0() {
    let mut s = Server::with_alice("");
    {
        let mut c = s.login(ALICE, PASS);
        c.expect("NOOP", 200);
        c.expect("QUIT", 221);
    }
    s.signal("TERM");
    let st = s
        .wait_exit(Duration::from_secs(20))
        .expect("fxpd still running 20 s after SIGTERM");
    assert_eq!(
        st.code(),
        Some(0),
        "exit status after SIGTERM: {st:?}\n{}",
        s.stderr()
    );
}

#[test]
fn sigint_stops_gracefully_with_exit_0() {
    let mut s = Server::with_alice("");
    s.signal("INT");
    let st = s
        .wait_exit(Duration::from_secs(20))
        .expect("fxpd still running 20 s after SIGINT");
    assert_eq!(
        st.code(),
        Some(0),
        "exit status after SIGINT: {st:?}\n{}",
        s.stderr()
    );
}

#[test]
fn sigterm_with_an_idle_session_open_still_exits_0() {
    let mut s = Server::with_alice("");
    let mut c = s.login(ALICE, PASS);
    c.expect("NOOP", 200);
    s.signal("TERM");
    let st = s
        .wait_exit(Duration::from_secs(20))
        .expect("fxpd still running 20 s after SIGTERM with an idle session");
    assert_eq!(st.code(), Some(0), "exit status: {st:?}\n{}", s.stderr());
    // The session was closed (possibly with a 421 first).
    c.set_read_timeout(Duration::from_secs(5));
    if let Ok(r) = c.try_read_reply() {
        assert_eq!(r.code, 421, "only a 421 may be sent on shutdown: {r}");
    }
    assert!(c.wait_closed(Duration::from_secs(5)));
}

#[test]
fn new_connections_refused_after_sigterm() {
    let mut s = Server::with_alice("");
    let addr = s.addr();
    s.signal("TERM");
    s.wait_exit(Duration::from_secs(20))
        .expect("fxpd still running after SIGTERM");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "listener still open after exit"
    );
}

#[test]
fn idle_timeout_closes_the_session_with_421() {
    let s = Server::with_alice("[limits]\nidle_timeout_secs = 1");
    let mut c = s.login(ALICE, PASS);
    thread::sleep(Duration::from_millis(2500));
    c.set_read_timeout(Duration::from_secs(10));
    let r = c
        .try_read_reply()
        .unwrap_or_else(|e| panic!("expected 421 on idle timeout, got {e}"));
    assert_eq!(r.code, 421, "idle timeout reply: {r}");
    assert!(
        c.wait_closed(Duration::from_secs(10)),
        "connection must be closed after 421"
    );
}

#[test]
fn unknown_config_keys_are_fatal() {
    for extra in [
        "bogus_key = 1",
        "[limits]\nno_such_limit = 3",
        "[fxp]\nallow_everything = true",
    ] {
        let e = match Server::builder()
            .user(ALICE, PASS, ALICE, true)
            .config(extra)
            .try_start()
        {
            Ok(s) => panic!("fxpd started with unknown key {extra:?}: {:?}", s.listening_lines),
            Err(e) => e,
        };
        let st = e
            .status
            .unwrap_or_else(|| panic!("fxpd neither started nor exited with {extra:?}: {e}"));
        assert!(
            !st.success(),
            "unknown key {extra:?} must give a non-zero exit: {e}"
        );
        assert!(e.listening_lines.is_empty(), "{e}");
    }
}

#[test]
fn config_without_serve_subcommand_and_cli_flags() {
    // `fxpd --config FILE` works like `fxpd serve --config FILE`.
    let s = Server::builder()
        .user(ALICE, PASS, ALICE, true)
        .without_serve_subcommand()
        .start();
    write_file(&s.home(ALICE).join("x.txt"), b"no serve");
    assert_eq!(s.login(ALICE, PASS).retr("x.txt"), b"no serve");

    // --listen, --root and --users on the command line.
    let s = Server::builder()
        .user(ALICE, PASS, ALICE, true)
        .without_default_listen()
        .paths_as_flags()
        .arg("--listen")
        .arg("127.0.0.3:0")
        .start();
    assert!(
        !s.config_text.contains("listen") && !s.config_text.contains("root"),
        "{}",
        s.config_text
    );
    assert_eq!(s.addr().ip(), ip("127.0.0.3"));
    write_file(&s.home(ALICE).join("y.txt"), b"flags");
    assert_eq!(s.login(ALICE, PASS).retr("y.txt"), b"flags");
}

#[test]
fn set_flag_overrides_config() {
    let s = Server::builder()
        .user(ALICE, PASS, ALICE, true)
        .arg("--set")
        .arg("listing_style=msdos")
        .start();
    fs::create_dir(s.home(ALICE).join("sub")).unwrap();
    let mut ftp = s.ftp(ALICE, PASS);
    let list = ftp.list(None).unwrap();
    assert!(
        line_for(&list, "sub").contains("<DIR>"),
        "--set listing_style=msdos: {list:#?}"
    );
}

#[test]
fn user_cli_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    assert_success(
        &cli_add_user(&users, &user("carol", "pw-carol-123", "carol", true)),
        "user add carol",
    );
    assert_success(
        &cli_add_user(&users, &user("dave", "pw-dave-456", "dave", false)),
        "user add dave",
    );
    let stored = fs::read_to_string(&users).unwrap();
    assert!(
        !stored.contains("pw-carol-123") && !stored.contains("pw-dave-456"),
        "passwords stored in clear:\n{stored}"
    );
    let out = cli_user(&users, &["list"]);
    assert_success(&out, "user list");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("carol") && listed.contains("dave"),
        "user list: {listed}"
    );
    assert_success(&cli_user(&users, &["remove", "carol"]), "user remove carol");
    let out = cli_user(&users, &["list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        !listed.contains("carol") && listed.contains("dave"),
        "after remove: {listed}"
    );
    assert!(
        !cli_user(&users, &["remove", "nobody"]).status.success(),
        "removing a missing user must fail"
    );
}

#[test]
fn users_added_by_cli_can_log_in_with_their_rights() {
    let s = Server::start(
        "",
        &[
            user("carol", "pw-carol", "carol", true),
            user("dave", "pw-dave", "dave", false),
        ],
    );
    let mut c = s.login("carol", "pw-carol");
    c.stor("c.txt", b"carol was here");
    assert_eq!(
        fs::read(s.home("carol").join("c.txt")).unwrap(),
        b"carol was here"
    );
    let mut d = s.ctrl();
    d.expect("USER dave", 331);
    d.expect("PASS pw-carol", 530);
    d.login("dave", "pw-dave");
    d.expect("MKD x", 550);
}
