//! Client-supplied input turned against the operator or the server's files, on the real
//! binary:
//! - names that try to forge log lines or drive the operator's terminal (CR, ESC, C1
//!   controls, `key="value"` text) land in the text and JSON logs as one escaped line each;
//! - a restart offset (REST) past the end of a file is refused before anything is created or
//!   changed, so no upload can leave a hole (a sparse file of any size);
//! - listings never show a symlink target outside the home, nor the server's own paths.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Log lines
// ---------------------------------------------------------------------------------------------

/// File names that try to forge a log line or drive a terminal. None holds `/` (a path
/// separator) or LF (the end of a command line); each starts with its own marker.
fn hostile_names() -> Vec<String> {
    [
        // CR, then what looks like a whole log line of a ban.
        "MARK-CR\r2026-12-06T10:00:00.000000Z  WARN fxpd::security: client banned event=\"client_banned\" client=1.2.3.4",
        // ESC sequences: erase the line, move to column 1, red, set the window title.
        "MARK-ESC\x1b[2K\x1b[1G\x1b[31mred\x1b]0;title\x07",
        // Quotes that end the value and start a forged field.
        "MARK-QUOTE\" event=\"client_banned\" client=\"1.2.3.4",
        // Spaces that start forged fields without any quote.
        "MARK-SPACE event=client_banned client=1.2.3.4",
        // C1 controls (CSI, NEL), DEL, and a literal backslash-r that must stay distinguishable.
        "MARK-C1\u{9b}31m\u{85}\u{7f}x\\r",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A user name with the same tricks (at most 64 characters, all of which are logged).
const HOSTILE_USER: &str = "MARK-USER\" event=\"client_banned\" client=\"1.2.3.4\r\x1b[2K\u{9b}0m";

/// What the client does: upload every hostile name, rename one to another hostile name,
/// delete one, and fail a login with a hostile user name. Returns the renamed-to name.
fn act_with_hostile_names(s: &Server) -> String {
    let names = hostile_names();
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    for name in &names {
        c.stor(name, name.as_bytes());
    }
    let home = s.home("alice");
    for name in &names {
        assert_eq!(
            fs::read(home.join(name)).unwrap(),
            name.as_bytes(),
            "{name:?} stored under its own name"
        );
    }
    let renamed = "MARK-RENAMED\r\x1b[1Aevent=client_banned".to_string();
    c.expect(&format!("RNFR {}", names[3]), 350);
    c.expect(&format!("RNTO {renamed}"), 250);
    c.expect(&format!("DELE {}", names[1]), 250);
    c.expect("QUIT", 221);

    let mut u = s.ctrl();
    u.expect(&format!("USER {HOSTILE_USER}"), 331);
    u.expect("PASS wrong-password", 530);
    u.expect("QUIT", 221);
    renamed
}

/// Control characters (C0, DEL, C1) in a log line, as (column, char).
fn controls(line: &str) -> Vec<(usize, char)> {
    line.char_indices().filter(|(_, c)| c.is_control()).collect()
}

#[test]
fn hostile_names_land_in_the_text_log_as_one_escaped_line_each() {
    let s = Server::with_alice("");
    let renamed = act_with_hostile_names(&s);
    let names = hostile_names();
    let log = s.log_when(|log| {
        log.matches("transfer complete").count() >= names.len() && log.contains("login failed")
    });

    // Every line is a whole log line: it starts with a timestamp and holds no control
    // character that a terminal or a line-based parser would act on.
    for line in log.lines() {
        let b = line.as_bytes();
        assert!(
            b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T',
            "a log line that does not start with a timestamp: {line:?}"
        );
        assert_eq!(controls(line), vec![], "control characters in {line:?}");
    }
    // No forged field anywhere: the only `event=` texts are inside quoted, escaped values.
    assert!(
        !log.contains("event=\"client_banned\""),
        "forged event field:\n{log}"
    );
    assert!(!log.contains("client=1.2.3.4 "), "forged client field:\n{log}");

    // Each event is exactly one line, with the client's text as one quoted, escaped value.
    let one_line = |what: &str, needles: &[String]| {
        let hits: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(what) && needles.iter().all(|n| l.contains(n.as_str())))
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{what} {needles:?} in exactly one line; log:\n{log}"
        );
    };
    for name in &names {
        one_line("transfer complete", &[format!("path={:?}", format!("/{name}"))]);
    }
    one_line(
        "renamed",
        &[
            format!("from={:?}", format!("/{}", names[3])),
            format!("to={:?}", format!("/{renamed}")),
        ],
    );
    one_line("removed", &[format!("path={:?}", format!("/{}", names[1]))]);
    one_line("login failed", &[format!("user={:?}", HOSTILE_USER)]);
}

#[test]
fn hostile_names_land_in_the_json_log_as_one_parseable_line_each() {
    let s = Server::builder()
        .user("alice", PASS, "alice", true)
        .arg("--log-json")
        .start();
    let renamed = act_with_hostile_names(&s);
    let names = hostile_names();
    let log = s.log_when(|log| {
        log.matches("transfer complete").count() >= names.len() && log.contains("login failed")
    });

    let mut events = Vec::new();
    for line in log.lines() {
        // No raw control character (serde_json escapes C0; C1 and DEL must be escaped too).
        assert_eq!(controls(line), vec![], "control characters in {line:?}");
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        events.push(v);
    }
    let count = |message: &str, key: &str, value: &str| {
        events
            .iter()
            .filter(|e| e["fields"]["message"] == message && e["fields"][key] == value)
            .count()
    };
    // The values decode back to exactly what the client sent.
    for name in &names {
        assert_eq!(
            count("transfer complete", "path", &format!("/{name}")),
            1,
            "{name:?}\n{log}"
        );
    }
    assert_eq!(count("renamed", "to", &format!("/{renamed}")), 1, "{log}");
    assert_eq!(count("removed", "path", &format!("/{}", names[1])), 1, "{log}");
    assert_eq!(
        count("login failed", "user", &format!("{HOSTILE_USER:?}")),
        1,
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------------

/// `REST offset`, PASV with the data connection open (as curl and ftplib do), then `verb
/// name`: returns the reply to the transfer command.
fn rest_then(c: &mut Ctrl, offset: u64, verb: &str, name: &str) -> Reply {
    c.expect(&format!("REST {offset}"), 350);
    let _data = c.pasv_connect();
    c.cmd(&format!("{verb} {name}"))
}

fn beyond(offset: u64, size: u64) -> String {
    format!("554 Restart offset {offset} is beyond the end of the file (size {size}).")
}

#[test]
fn rest_beyond_the_end_is_refused_before_any_file_is_created_or_changed() {
    let s = Server::with_alice("");
    let home = s.home("alice");
    let existing = random_bytes(1000);
    write_file(&home.join("existing.bin"), &existing);
    let want = sha256_bytes(&existing);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);

    for offset in [1, 1_099_511_627_776, 4_611_686_018_427_387_904, u64::MAX] {
        // A new file: nothing is created.
        let r = rest_then(&mut c, offset, "STOR", "hole.bin");
        assert_eq!(r.code, 554, "REST {offset} + STOR of a new file: {r}");
        assert_eq!(r.text(), beyond(offset, 0));
        assert!(
            !home.join("hole.bin").exists(),
            "REST {offset} + STOR created a file of {:?} bytes",
            fs::metadata(home.join("hole.bin")).map(|m| m.len())
        );

        // An existing file: refused past its end, with its size and contents unchanged.
        for verb in ["STOR", "RETR"] {
            let offset = offset.saturating_add(1000);
            let r = rest_then(&mut c, offset, verb, "existing.bin");
            assert_eq!(r.code, 554, "REST {offset} + {verb} of a 1000-byte file: {r}");
            assert_eq!(r.text(), beyond(offset, 1000));
            let meta = fs::metadata(home.join("existing.bin")).unwrap();
            assert_eq!(meta.len(), 1000, "REST {offset} + {verb} changed the size");
            assert_eq!(sha256_file(&home.join("existing.bin")), want);
        }
        // The REST offset was used up by the refused command.
        assert_eq!(sha256_bytes(&c.retr("existing.bin")), want);
    }
    // A directory is no file to resume either.
    fs::create_dir(home.join("dir")).unwrap();
    let r = rest_then(&mut c, 5, "STOR", "dir");
    assert_eq!(r.class(), 5, "{r}");
    assert!(home.join("dir").is_dir());
    // The session goes on.
    c.expect("NOOP", 200);
    let names: Vec<String> = fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "only existing.bin and dir: {names:?}");
}

#[test]
fn rest_within_the_file_still_resumes_uploads_and_downloads() {
    let s = Server::with_alice("");
    let home = s.home("alice");
    let data = random_bytes(300_000);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);

    // Resume an upload at the current size (offset == size).
    c.stor("up.bin", &data[..100_000]);
    c.expect("REST 100000", 350);
    c.stor("up.bin", &data[100_000..]);
    assert_eq!(sha256_file(&home.join("up.bin")), sha256_bytes(&data));

    // Rewrite from inside the file (offset < size): the first bytes are kept, the rest is
    // what was sent.
    c.expect("REST 50000", 350);
    c.stor("up.bin", &data[200_000..]);
    let mut want = data[..50_000].to_vec();
    want.extend_from_slice(&data[200_000..]);
    assert_eq!(sha256_file(&home.join("up.bin")), sha256_bytes(&want));

    // Downloads: inside, at the end (nothing left), and REST 0.
    let len = want.len() as u64;
    c.expect("REST 1234", 350);
    assert_eq!(sha256_bytes(&c.retr("up.bin")), sha256_bytes(&want[1234..]));
    c.expect(&format!("REST {len}"), 350);
    assert!(c.retr("up.bin").is_empty());
    c.expect("REST 0", 350);
    assert_eq!(sha256_bytes(&c.retr("up.bin")), sha256_bytes(&want));

    // REST 0 + STOR of a new file is a plain upload.
    c.expect("REST 0", 350);
    c.stor("new.bin", &data[..10]);
    assert_eq!(fs::read(home.join("new.bin")).unwrap(), &data[..10]);

    // APPE appends at the end whatever REST said: it cannot leave a hole either.
    c.expect("REST 999999999", 350);
    c.upload("APPE", "new.bin", &data[10..20]);
    assert_eq!(fs::read(home.join("new.bin")).unwrap(), &data[..20]);
}

/// A moto S3 server on a free loopback port with one bucket, stopped on drop; `None` when
/// the external-client tests are gated off.
struct Moto {
    child: std::process::Child,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Moto {
    const BUCKET: &'static str = "rest";

    fn start() -> Option<Moto> {
        if !require_clients(&["python3"]) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = std::process::Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start moto (tests/run.sh installs moto[server])");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        fs::write(
            moto.dir.path().join("creds.toml"),
            "access_key_id = \"testing\"\nsecret_access_key = \"testing\"\n",
        )
        .unwrap();
        moto.boto("s3.create_bucket(Bucket=bucket)");
        Some(moto)
    }

    /// Runs Python with `s3` (a boto3 client) and `bucket` defined; returns stdout.
    fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3, hashlib\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\nbucket = '{}'\n{code}\n",
            self.endpoint,
            Self::BUCKET
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every key in the bucket with its size and SHA-256, as S3 itself reports them.
    fn objects(&self) -> Vec<String> {
        self.boto(
            "for o in s3.list_objects_v2(Bucket=bucket).get('Contents', []):\n    \
             body = s3.get_object(Bucket=bucket, Key=o['Key'])['Body'].read()\n    \
             print(o['Key'], o['Size'], hashlib.sha256(body).hexdigest())",
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }

    fn fxpd(&self) -> Server {
        Server::builder()
            .config(&format!(
                "[storage]\nkind = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\nprefix = \"ftp\"\n\
                 allow_http = true\ncredentials_file = \"{}\"\n",
                self.endpoint,
                Self::BUCKET,
                self.dir.path().join("creds.toml").display()
            ))
            .user("alice", PASS, "alice", true)
            .start()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rest_beyond_the_end_is_refused_on_object_storage() {
    let Some(moto) = Moto::start() else { return };
    let s = moto.fxpd();
    let data = random_bytes(1000);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    c.stor("existing.bin", &data);
    let before = moto.objects();
    assert_eq!(
        before,
        vec![format!("ftp/alice/existing.bin 1000 {}", sha256_bytes(&data))]
    );

    for offset in [1001, 1_099_511_627_776, 4_611_686_018_427_387_904, u64::MAX] {
        let r = rest_then(&mut c, offset, "RETR", "existing.bin");
        assert_eq!(r.code, 554, "REST {offset} + RETR: {r}");
        assert_eq!(r.text(), beyond(offset, 1000));
        // Objects cannot be resumed at all: STOR after REST is refused before any upload.
        for name in ["existing.bin", "hole.bin"] {
            let r = rest_then(&mut c, offset, "STOR", name);
            assert_eq!(r.code, 550, "REST {offset} + STOR {name}: {r}");
            assert!(r.text().contains("object storage"), "{r}");
        }
        assert_eq!(moto.objects(), before, "REST {offset} changed the bucket");
    }
    // Within the object: ranged reads.
    c.expect("REST 400", 350);
    assert_eq!(sha256_bytes(&c.retr("existing.bin")), sha256_bytes(&data[400..]));
    c.expect("REST 1000", 350);
    assert!(c.retr("existing.bin").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Symlink targets in listings
// ---------------------------------------------------------------------------------------------

/// Links of every kind in alice's home; returns what each may show as its target (`None`:
/// the target must not be shown).
fn make_links(s: &Server) -> Vec<(&'static str, Option<&'static str>)> {
    let home = s.home("alice");
    fs::create_dir_all(home.join("docs")).unwrap();
    fs::write(home.join("docs/a.txt"), b"inside\n").unwrap();
    fs::write(home.join("b.txt"), b"inside too\n").unwrap();
    fs::create_dir_all(s.home("bob")).unwrap();
    fs::write(s.home("bob").join("secret.txt"), b"bob's\n").unwrap();

    symlink("/etc/passwd", home.join("passwd_link")).unwrap();
    symlink("/etc", home.join("system_dir")).unwrap();
    symlink(home.join("docs/a.txt"), home.join("abs_in")).unwrap();
    symlink(home.join("docs"), home.join("abs_dir_in")).unwrap();
    symlink("docs/a.txt", home.join("rel_in")).unwrap();
    symlink("../b.txt", home.join("docs/up_in")).unwrap();
    symlink("../../..", home.join("escape")).unwrap();
    symlink("../bob/secret.txt", home.join("sibling")).unwrap();
    symlink(home.join("../bob/secret.txt"), home.join("abs_sibling")).unwrap();
    symlink(&s.root, home.join("root_link")).unwrap();
    symlink("/nonexistent-fxpd-dir/secret", home.join("dangling")).unwrap();
    symlink("missing.txt", home.join("dangling_in")).unwrap();
    vec![
        ("passwd_link", None),
        ("system_dir", None),
        ("abs_in", Some("/docs/a.txt")),
        ("abs_dir_in", Some("/docs")),
        ("rel_in", Some("docs/a.txt")),
        ("escape", None),
        ("sibling", None),
        ("abs_sibling", None),
        ("root_link", None),
        ("dangling", None),
        ("dangling_in", Some("missing.txt")),
    ]
}

/// Nothing in `text` that names or hints at what lies outside the home.
fn assert_no_outside(s: &Server, what: &str, text: &str) {
    let root = s.dir.path().to_str().unwrap();
    for leak in ["/etc", "passwd ", "../..", "nonexistent-fxpd", "bob", root] {
        assert!(!text.contains(leak), "{what} shows {leak:?}:\n{text}");
    }
}

/// The `LIST` line of `name` (UNIX style: the name is the ninth field).
fn list_line<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().nth(8) == Some(name))
        .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"))
}

fn list_shows(line: &str, name: &str, target: Option<&str>) {
    let tail = line.split_whitespace().skip(8).collect::<Vec<_>>().join(" ");
    match target {
        Some(t) => assert_eq!(tail, format!("{name} -> {t}"), "{line}"),
        None => assert_eq!(tail, name, "{line}"),
    }
}

fn mlsx_shows(facts: &str, name: &str, target: Option<&str>) {
    let line = facts
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with(&format!("; {name}")))
        .unwrap_or_else(|| panic!("{name} not in:\n{facts}"));
    let ty = line.split(';').next().unwrap();
    match target {
        Some(t) => assert_eq!(ty, format!("type=OS.unix=slink:{t}"), "{line}"),
        None => assert_eq!(ty, "type=OS.unix=slink", "{line}"),
    }
}

#[test]
fn listings_show_symlink_targets_only_inside_the_home() {
    let s = Server::with_alice("");
    let links = make_links(&s);
    let mut c = s.login("alice", PASS);

    // Directory listings: LIST, NLST, MLSD, STAT of the directory.
    let list = c.listing("LIST");
    assert_no_outside(&s, "LIST", &list);
    let mlsd = c.listing("MLSD");
    assert_no_outside(&s, "MLSD", &mlsd);
    let nlst = c.listing("NLST");
    assert_no_outside(&s, "NLST", &nlst);
    let stat = c.expect("STAT .", 213).text();
    assert_no_outside(&s, "STAT .", &stat);
    for (name, target) in &links {
        list_shows(list_line(&list, name), name, *target);
        list_shows(list_line(&stat, name), name, *target);
        mlsx_shows(&mlsd, name, *target);
        assert!(nlst.lines().any(|l| l == *name), "{name} not in NLST:\n{nlst}");
    }

    // Each link on its own: LIST, NLST, MLST, STAT of the path. A link out of the home
    // reaches nothing: named on its own it is answered as a missing file, so its target
    // cannot even be confirmed to exist.
    for (name, target) in &links {
        if target.is_none() {
            for command in ["MLST", "STAT"] {
                let r = c.cmd(&format!("{command} {name}"));
                assert_eq!(r.code, 550, "{command} {name}: {r}");
                assert_no_outside(&s, &format!("{command} {name}"), &r.text());
            }
            continue;
        }
        let list = c.listing(&format!("LIST {name}"));
        assert_no_outside(&s, &format!("LIST {name}"), &list);
        list_shows(list_line(&list, name), name, *target);
        let nlst = c.listing(&format!("NLST {name}"));
        assert_no_outside(&s, &format!("NLST {name}"), &nlst);
        let mlst = c.expect(&format!("MLST {name}"), 250).text();
        assert_no_outside(&s, &format!("MLST {name}"), &mlst);
        mlsx_shows(&mlst, name, *target);
        let stat = c.expect(&format!("STAT {name}"), 213).text();
        assert_no_outside(&s, &format!("STAT {name}"), &stat);
        list_shows(list_line(&stat, name), name, *target);
    }

    // In a subdirectory a relative target is shown as written, when it stays inside.
    let docs = c.listing("LIST docs");
    list_shows(list_line(&docs, "up_in"), "up_in", Some("../b.txt"));
    c.expect("CWD docs", 250);
    let mlsd = c.listing("MLSD");
    mlsx_shows(&mlsd, "up_in", Some("../b.txt"));
    let mlst = c.expect("MLST up_in", 250).text();
    mlsx_shows(&mlst, "up_in", Some("../b.txt"));
    // The shown targets are paths the user can use.
    c.expect("CWD /", 250);
    c.expect("TYPE I", 200);
    assert_eq!(c.retr("/docs/a.txt"), b"inside\n");
    assert_eq!(c.retr("docs/../b.txt"), b"inside too\n");
}
