//! The S3 back-end (`storage.kind = "s3"`) against a real S3-compatible server on loopback.
//!
//! The server is moto in server mode (`python3 -m moto.server`, from PyPI as `moto[server]`,
//! which `tests/run.sh` installs when missing). Why moto: it is a pip install next to the
//! python3 the other client tests already use (s3rver would bring node and npm), it implements
//! the parts of S3 fxpd relies on (ListObjectsV2 with pagination, multipart uploads and
//! ListMultipartUploads, CopyObject, ranged GET), and it ships boto3, which the tests use to
//! look at the bucket directly rather than only through fxpd. Each test starts its own moto on
//! a free 127.0.0.1 port with IAM authentication on (every request's SigV4 signature is
//! checked against an access key moto made; `tests/common/moto.rs` proves a wrong secret is
//! refused before each test), creates its bucket with boto3, starts the real fxpd binary with
//! `storage.kind = "s3"` and drives it with curl and raw control/data connections; every
//! transfer is checked by SHA-256.
//!
//! Gated like the other external-client tests: skipped (with a note) unless
//! `FXPD_EXTERNAL_CLIENTS=1`, and then a missing python3/moto/curl is a failure.

mod common;
#[path = "common/moto.rs"]
mod moto;

use common::*;
use moto::Moto;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha_file(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The large file: bigger than everything an upload or a download may hold in memory.
const BIG: usize = 128 << 20;

/// The peak resident set of a process (Linux `VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn curl(args: &[&str]) {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "300"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Wait until `check` holds (S3 is told about an abort asynchronously on session loss).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn large_and_many_small_files_round_trip_with_equal_hashes() {
    let Some(moto) = Moto::start() else { return };
    let server = moto.fxpd("round-trip");
    let work = tempfile::tempdir().unwrap();

    // 128 MiB: sixteen multipart parts up, chunked ranged reads down, with curl.
    let big: PathBuf = work.path().join("big.bin");
    std::fs::write(&big, pattern(BIG, 1)).unwrap();
    let want = sha_file(&big);
    let url = format!("ftp://{}/big.bin", server.addr());
    let userpw = format!("alice:{PASS}");
    curl(&["--user", &userpw, "-T", big.to_str().unwrap(), &url]);
    assert_eq!(
        moto.s3(&["sha256", "round-trip", "ftp/alice/big.bin"], None)
            .trim(),
        want
    );
    let back = work.path().join("back.bin");
    curl(&["--user", &userpw, "-o", back.to_str().unwrap(), &url]);
    assert_eq!(sha_file(&back), want, "128 MiB download differs");
    // Streamed both ways: the server's peak memory stays well below the file's size.
    let peak = peak_rss_kib(server.pid());
    eprintln!("fxpd peak RSS after 128 MiB up and down: {peak} KiB");
    // Holding the file whole would take 128 MiB on its own, on top of the server's baseline;
    // measured: 60 to 90 MiB in all.
    assert!(
        peak < 128 * 1024,
        "peak RSS {peak} KiB: the file was buffered whole"
    );
    let mut c = server.login("alice", PASS);
    let r = c.expect("HASH big.bin", 213);
    assert!(r.text().contains(&want), "{r}");
    assert_eq!(c.expect("SIZE big.bin", 213).first(), format!("213 {BIG}"));
    assert!(moto.uploads("round-trip").is_empty());

    // 200 x 4 KiB up and down over one control connection.
    c.expect("TYPE I", 200);
    c.expect("MKD small", 257);
    c.expect("CWD small", 250);
    let files: Vec<Vec<u8>> = (0..200).map(|i| pattern(4096, 100 + i)).collect();
    for (i, f) in files.iter().enumerate() {
        c.stor(&format!("f{i:03}"), f);
    }
    for (i, f) in files.iter().enumerate() {
        assert_eq!(sha(&c.retr(&format!("f{i:03}"))), sha(f), "small file {i}");
    }
    let nlst = c.listing("NLST");
    assert_eq!(nlst.lines().count(), 200, "{nlst}");
    let keys = moto.keys("round-trip");
    let small = keys.iter().filter(|k| k.starts_with("ftp/alice/small/f")).count();
    assert_eq!(small, 200, "{keys:?}");
    assert_eq!(
        moto.s3(&["sha256", "round-trip", "ftp/alice/small/f123"], None)
            .trim(),
        sha(&files[123])
    );
}

#[test]
fn names_listings_and_ranged_reads() {
    let Some(moto) = Moto::start() else { return };
    let server = moto.fxpd("names");
    let mut c = server.login("alice", PASS);
    c.expect("TYPE I", 200);
    let data = pattern(100_000, 7);
    c.stor("a.bin", &data);

    // Directories: a marker object; RMD refuses a non-empty one.
    c.expect("MKD dir", 257);
    c.expect("MKD dir", 550);
    c.expect("MKD missing/sub", 550);
    c.stor("dir/inner.txt", b"hello\n");
    assert!(moto.keys("names").contains(&"ftp/alice/dir/".to_owned()));
    c.expect("RMD dir", 550);

    let list = c.listing("LIST");
    assert!(list.contains("a.bin") && list.contains("dir"), "{list}");
    assert!(
        list.lines().any(|l| l.starts_with('d') && l.ends_with("dir")),
        "{list}"
    );
    assert!(list.contains("100000"), "{list}");
    let nlst = c.listing("NLST");
    let mut names: Vec<&str> = nlst.lines().collect();
    names.sort();
    assert_eq!(names, ["a.bin", "dir"]);
    let mlsd = c.listing("MLSD");
    assert!(
        mlsd.contains("type=file;size=100000;") && mlsd.contains("type=dir;"),
        "{mlsd}"
    );
    let r = c.expect("MLST a.bin", 250);
    assert!(r.text().contains("size=100000"), "{r}");
    assert_eq!(c.expect("SIZE a.bin", 213).first(), "213 100000");
    assert!(c.expect("MDTM a.bin", 213).first().len() == 18);
    c.expect("SIZE dir", 550);
    c.expect("SIZE nothing", 550);
    c.expect("CWD dir", 250);
    assert_eq!(c.listing("NLST").trim(), "inner.txt");
    c.expect("CWD ..", 250);
    c.expect("CWD a.bin", 550);

    // An empty file.
    c.stor("empty", b"");
    assert_eq!(c.expect("SIZE empty", 213).first(), "213 0");
    assert!(c.retr("empty").is_empty());
    c.expect("DELE empty", 250);

    // STOU: a fresh unique name.
    let mut stream = c.pasv_connect();
    let r = c.cmd("STOU");
    assert_eq!(r.code, 150, "{r}");
    let unique = r.first().rsplit(' ').next().unwrap().to_owned();
    stream.write_all(b"unique").unwrap();
    drop(stream);
    assert_eq!(c.read_reply().code, 226);
    assert_eq!(c.retr(&unique), b"unique");
    c.expect(&format!("DELE {unique}"), 250);

    // REST + RETR: a ranged read.
    c.expect("REST 99000", 350);
    assert_eq!(c.retr("a.bin"), &data[99_000..]);
    c.expect("REST 100000", 350);
    assert!(c.retr("a.bin").is_empty());

    // Immutable objects: APPE and REST + STOR are refused before any data moves.
    c.pasv();
    let r = c.expect("APPE a.bin", 550);
    assert!(r.text().contains("object storage"), "{r}");
    c.expect("REST 10", 350);
    c.pasv();
    let r = c.expect("STOR a.bin", 550);
    assert!(r.text().contains("object storage"), "{r}");

    // Rename: a file is copied then deleted; a directory is refused.
    c.expect("RNFR a.bin", 350);
    c.expect("RNTO dir/b.bin", 250);
    c.expect("SIZE a.bin", 550);
    assert_eq!(sha(&c.retr("dir/b.bin")), sha(&data));
    c.expect("RNFR dir", 350);
    let r = c.expect("RNTO dir2", 550);
    assert!(r.text().contains("directory"), "{r}");

    // DELE, then RMD of the emptied directory.
    c.expect("DELE dir/b.bin", 250);
    c.expect("DELE dir/inner.txt", 250);
    c.expect("DELE dir", 550);
    c.expect("RMD dir", 250);
    c.expect("DELE nothing", 550);
    assert!(moto.keys("names").is_empty(), "{:?}", moto.keys("names"));
    c.expect("QUIT", 221);

    // The secret is in no log line and not in `fxpd config check`.
    assert!(!server.stderr().contains(&moto.secret));
    let check = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&server.config_path)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(shown.contains("storage.credentials_file"), "{shown}");
    assert!(!shown.contains(&moto.secret) && !String::from_utf8_lossy(&check.stderr).contains(&moto.secret));
}

/// Start a STOR and push `len` bytes without closing the data connection.
fn partial_upload(c: &mut Ctrl, name: &str, len: usize) -> TcpStream {
    let mut data = c.pasv_connect();
    let r = c.cmd(&format!("STOR {name}"));
    assert_eq!(r.code, 150, "{r}");
    data.write_all(&pattern(len, 9)).unwrap();
    data
}

/// Close with a reset (SO_LINGER 0): an interrupted transfer, not an end of file.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(stream);
}

#[test]
fn interrupted_uploads_leave_no_object_and_no_multipart_upload() {
    let Some(moto) = Moto::start() else { return };
    let server = moto.fxpd("interrupted");
    let bucket = "interrupted";
    let nothing_left = |what: &str| {
        eventually(what, || {
            moto.keys(bucket).is_empty() && moto.uploads(bucket).is_empty()
        });
    };
    let mut c = server.login("alice", PASS);
    c.expect("TYPE I", 200);

    // 1. The data connection is reset mid-upload: 426, nothing stored.
    let data = partial_upload(&mut c, "reset.bin", 24 << 20);
    eventually("a multipart upload in progress", || {
        !moto.uploads(bucket).is_empty()
    });
    reset(data);
    let r = c.read_reply();
    assert_eq!(r.code, 426, "{r}");
    assert!(r.text().contains("nothing stored"), "{r}");
    nothing_left("reset upload cleaned up");

    // 2. ABOR mid-upload: 426 saying the upload was discarded, then 226.
    let data = partial_upload(&mut c, "abor.bin", 24 << 20);
    eventually("a multipart upload in progress", || {
        !moto.uploads(bucket).is_empty()
    });
    let r = c.cmd("ABOR");
    assert_eq!(r.code, 426, "{r}");
    assert!(r.text().contains("nothing stored"), "{r}");
    assert_eq!(c.read_reply().code, 226);
    // Already aborted when the reply came: no waiting needed.
    assert!(moto.keys(bucket).is_empty() && moto.uploads(bucket).is_empty());
    drop(data);

    // 3. The control connection is dropped mid-upload, the data connection left open.
    let data = partial_upload(&mut c, "lost.bin", 24 << 20);
    eventually("a multipart upload in progress", || {
        !moto.uploads(bucket).is_empty()
    });
    drop(c);
    nothing_left("upload of a lost session cleaned up");
    drop(data);

    // 4. A small upload (no multipart yet) reset: nothing either.
    let mut c = server.login("alice", PASS);
    c.expect("TYPE I", 200);
    let data = partial_upload(&mut c, "small.bin", 100_000);
    std::thread::sleep(Duration::from_millis(300));
    reset(data);
    assert_eq!(c.read_reply().code, 426);
    nothing_left("small reset upload cleaned up");

    // And the server still works.
    c.stor("ok.bin", b"fine");
    assert_eq!(moto.keys(bucket), ["ftp/alice/ok.bin"]);
}

/// curl against the admin listener of `server` with `token`: the body (asserts a 2xx).
fn admin_curl(server: &Server, token: &str, method: &str, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30", "-X", method, "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!(
            "{}{path}",
            server.admin.as_ref().expect("admin listener")
        ))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {method} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_kicked_upload_stores_nothing_and_other_sessions_go_on() {
    let Some(moto) = Moto::start() else { return };
    let bucket = "kicked";
    moto.bucket(bucket);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    let token = "5f3c0a9e".repeat(8);
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let admin = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {}\n",
        toml::Value::String(token_file.to_str().unwrap().to_owned())
    );
    let server = Server::builder()
        .config(&moto.storage_config(bucket))
        .config(&admin)
        .user("alice", PASS, "alice", true)
        .user("bob", PASS, "bob", true)
        .start();
    let mut bob = server.login("bob", PASS);
    bob.expect("TYPE I", 200);
    let mut c = server.login("alice", PASS);
    c.expect("TYPE I", 200);
    let data = partial_upload(&mut c, "kicked.bin", 24 << 20);
    eventually("a multipart upload in progress", || {
        !moto.uploads(bucket).is_empty()
    });
    let list: serde_json::Value =
        serde_json::from_str(&admin_curl(&server, &token, "GET", "/api/sessions")).unwrap();
    let id = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user"] == "alice")
        .map(|s| s["id"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("alice is not listed: {list}"));
    admin_curl(&server, &token, "DELETE", &format!("/api/sessions/{id}"));
    let r = c.read_reply();
    assert_eq!(r.code, 426, "{r}");
    assert!(r.text().contains("nothing stored"), "{r}");
    assert_eq!(c.read_reply().code, 421);
    // Aborted before the reply said so.
    assert!(moto.keys(bucket).is_empty() && moto.uploads(bucket).is_empty());
    drop(data);
    let file = pattern(300_000, 4);
    bob.stor("kept.bin", &file);
    assert_eq!(sha(&bob.retr("kept.bin")), sha(&file));
    assert_eq!(moto.keys(bucket), ["ftp/bob/kept.bin"]);
}

#[test]
fn users_cannot_leave_their_prefix() {
    let Some(moto) = Moto::start() else { return };
    let server = moto.fxpd("homes");
    // Objects outside alice's prefix, placed directly in the bucket.
    moto.s3(&["put", "homes", "ftp/bob/secret.txt"], Some(b"bob's"));
    moto.s3(&["put", "homes", "top.txt"], Some(b"top"));
    let mut c = server.login("alice", PASS);
    c.expect("TYPE I", 200);
    for path in [
        "../bob/secret.txt",
        "/../bob/secret.txt",
        "../../top.txt",
        "/../../../top.txt",
        "..%2fbob/secret.txt",
    ] {
        let r = c.expect(&format!("SIZE {path}"), 550);
        assert!(!r.text().contains("bob"), "{r}");
    }
    c.expect("CWD ../..", 250);
    assert_eq!(c.expect("PWD", 257).first(), "257 \"/\" is current directory.");
    assert!(c.listing("NLST").trim().is_empty());
    c.stor("../../escape.txt", b"x");
    // `/../bob` is `/bob` in alice's home, which does not exist.
    c.pasv();
    c.expect("STOR /../bob/evil.txt", 550);
    let mut keys = moto.keys("homes");
    keys.sort();
    assert_eq!(keys, ["ftp/alice/escape.txt", "ftp/bob/secret.txt", "top.txt"]);
    let mut b = server.login("bob", PASS);
    assert_eq!(b.retr("secret.txt"), b"bob's");
}

#[test]
fn startup_fails_closed() {
    let Some(moto) = Moto::start() else { return };
    // No such bucket: the server does not start.
    let err = Server::builder()
        .config(&moto.storage_config("no-such-bucket"))
        .user("alice", PASS, "alice", true)
        .try_start()
        .err()
        .expect("fxpd must not start without its bucket");
    assert!(
        err.stderr.contains("cannot list bucket `no-such-bucket`"),
        "{}",
        err.stderr
    );
    // A missing bucket setting names the key; credentials never appear in any output.
    let config = moto.storage_config("xyz").replace("bucket = \"xyz\"\n", "");
    let err = Server::builder()
        .config(&config)
        .try_start()
        .err()
        .expect("storage.bucket is required");
    assert!(err.stderr.contains("storage.bucket"), "{}", err.stderr);
    let plain = moto.storage_config("xyz").replace("allow_http = true\n", "");
    let err = Server::builder()
        .config(&plain)
        .try_start()
        .err()
        .expect("http refused");
    assert!(err.stderr.contains("storage.allow_http"), "{}", err.stderr);
    assert!(!err.stderr.contains(&moto.secret));
}

/// Wrong S3 keys stop fxpd at start, before it listens, with a message that names the bucket
/// and the problem; the right keys (from the file or from the environment) work. moto checks
/// every signature here (see `tests/common/moto.rs`), so this would fail for a server that
/// sent no keys or ignored the configured ones.
#[test]
fn wrong_credentials_stop_the_server_at_start() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("keys");
    let wrong_secret = moto.write_credentials(
        "wrong-secret.toml",
        &moto.key_id,
        "wrong-secret-0123456789abcdefghijklmn",
    );
    let unknown_key = moto.write_credentials("unknown-key.toml", "AKIAUNKNOWN000000000", &moto.secret);
    let from_file = |creds: &Path| Server::builder().config(&moto.storage_config_with("keys", creds));
    let from_env = |id: &str, secret: &str| {
        let config = moto
            .storage_config("keys")
            .lines()
            .filter(|l| !l.starts_with("credentials_file"))
            .collect::<Vec<_>>()
            .join("\n");
        Server::builder()
            .config(&config)
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
    };
    let cases = [
        (
            "a wrong secret in the file",
            from_file(&wrong_secret),
            "SignatureDoesNotMatch",
        ),
        (
            "an unknown key in the file",
            from_file(&unknown_key),
            "InvalidAccessKeyId",
        ),
        (
            "a wrong secret in the environment",
            from_env(&moto.key_id, "wrong-secret-0123456789abcdefghijklmn"),
            "SignatureDoesNotMatch",
        ),
    ];
    for (what, builder, code) in cases {
        let err = builder
            .user("alice", PASS, "alice", true)
            .try_start()
            .err()
            .unwrap_or_else(|| panic!("fxpd started with {what}"));
        assert_eq!(
            err.status.and_then(|s| s.code()),
            Some(1),
            "{what}: exit status {:?}\n{}",
            err.status,
            err.stderr
        );
        assert!(
            err.listening_lines.is_empty(),
            "{what}: {:?}",
            err.listening_lines
        );
        let last = err.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!(
                "fxpd: storage: cannot list bucket `keys` at {}",
                moto.endpoint
            )),
            "{what}: {last}"
        );
        assert!(
            last.contains("access denied: check the S3 credentials") && last.contains(code),
            "{what}: {last}"
        );
        assert!(
            !err.stderr.contains(&moto.secret),
            "{what}: the secret was printed"
        );
    }

    // The right keys, from the file and from the environment: fxpd starts and stores.
    for (what, builder) in [
        ("the file", from_file(&moto.dir.path().join("creds.toml"))),
        ("the environment", from_env(&moto.key_id, &moto.secret)),
    ] {
        let server = builder.user("alice", PASS, "alice", true).start();
        let mut c = server.login("alice", PASS);
        c.expect("TYPE I", 200);
        c.stor("signed.bin", what.as_bytes());
        assert_eq!(c.retr("signed.bin"), what.as_bytes());
        assert_eq!(moto.keys("keys"), ["ftp/alice/signed.bin"], "keys from {what}");
        assert!(!server.stderr().contains(&moto.secret));
    }
}

/// The async transfer path is shared with TLS and ASCII: both work on S3 too.
#[test]
fn tls_and_ascii_transfers_on_s3() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("tls");
    let work = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
    let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let tls = format!(
        "[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\nrequire = \"all\"\n",
        cert.display(),
        key.display()
    );
    let server = Server::builder()
        .config(&moto.storage_config("tls"))
        .config(&tls)
        .user("alice", PASS, "alice", true)
        .start();
    let userpw = format!("alice:{PASS}");
    let tls_args = ["--ssl-reqd", "-k", "--user", userpw.as_str()];

    // 10 MiB binary over PROT P: two multipart parts up, ranged chunks down.
    let big = work.path().join("big.bin");
    std::fs::write(&big, pattern(10 << 20, 3)).unwrap();
    let url = format!("ftp://{}/big.bin", server.addr());
    let mut up = tls_args.to_vec();
    up.extend(["-T", big.to_str().unwrap(), url.as_str()]);
    curl(&up);
    let back = work.path().join("back.bin");
    let mut down = tls_args.to_vec();
    down.extend(["-o", back.to_str().unwrap(), url.as_str()]);
    curl(&down);
    assert_eq!(sha_file(&back), sha_file(&big));
    assert_eq!(
        moto.s3(&["sha256", "tls", "ftp/alice/big.bin"], None).trim(),
        sha_file(&big)
    );

    // ASCII (curl -B): CRLF on the wire, LF in the object, CRLF back.
    let text = work.path().join("text.txt");
    std::fs::write(&text, "one\ntwo\nthree\n").unwrap();
    let url = format!("ftp://{}/text.txt", server.addr());
    let mut up = tls_args.to_vec();
    up.extend(["-B", "-T", text.to_str().unwrap(), url.as_str()]);
    curl(&up);
    assert_eq!(
        moto.s3(&["sha256", "tls", "ftp/alice/text.txt"], None).trim(),
        sha(b"one\ntwo\nthree\n")
    );
    let got = work.path().join("got.txt");
    let mut down = tls_args.to_vec();
    down.extend(["-B", "-o", got.to_str().unwrap(), url.as_str()]);
    curl(&down);
    assert_eq!(std::fs::read(&got).unwrap(), b"one\ntwo\nthree\n");
}

/// Two nodes on one bucket: the shared storage of a cluster. What one node stores, the other
/// serves at once, and a delete on one is seen by the other (no node keeps a cache).
#[test]
fn two_nodes_share_one_bucket() {
    let Some(moto) = Moto::start() else { return };
    moto.bucket("shared");
    let node = |ip: &str| {
        Server::builder()
            .config(&moto.storage_config("shared"))
            .merge_config(&format!("listen = [\"{ip}:0\"]"))
            .user("alice", PASS, "alice", true)
            .start()
    };
    let a = node("127.0.0.2");
    let b = node("127.0.0.3");

    let data = pattern(3 << 20, 7);
    let mut on_a = a.login("alice", PASS);
    on_a.expect("TYPE I", 200);
    on_a.stor("from-a.bin", &data);
    let mut on_b = b.login("alice", PASS);
    on_b.expect("TYPE I", 200);
    assert_eq!(
        sha(&on_b.retr("from-a.bin")),
        sha(&data),
        "B serves what A stored"
    );
    assert!(on_b.listing("NLST").lines().any(|l| l == "from-a.bin"));

    on_b.expect("DELE from-a.bin", 250);
    let r = on_a.cmd("SIZE from-a.bin");
    assert_eq!(r.code, 550, "A sees B's delete: {r}");
    assert!(moto.keys("shared").iter().all(|k| !k.ends_with("from-a.bin")));
}
