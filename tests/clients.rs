//! Real FTP clients against the real `fxpd` binary: curl, wget, lftp and Python's ftplib.
//!
//! Gated by `FXPD_EXTERNAL_CLIENTS=1` (see `tests/run.sh`): without it each test prints a note
//! and returns; with it a missing client is a failure. Every transfer is checked by SHA-256,
//! every external command runs under a deadline, and each test has its own server and tempdir.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const ALICE: &str = "alice";

/// Files every download test serves: random MiB, an empty file and a text file.
fn fixture_files(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "big.bin".to_string(),
        write_random_file(&dir.join("big.bin"), 3 * 1024 * 1024 + 333),
    );
    write_file(&dir.join("empty.bin"), b"");
    m.insert("empty.bin".to_string(), sha256_bytes(b""));
    let text = text_content(2000);
    write_file(&dir.join("text.txt"), &text);
    m.insert("text.txt".to_string(), sha256_bytes(&text));
    m
}

fn url(s: &Server, path: &str) -> String {
    format!("ftp://{}:{}/{}", s.addr().ip(), s.port(), path)
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scratch directory for one client inside the test's tempdir.
fn work_dir(s: &Server, name: &str) -> PathBuf {
    let d = s.dir.path().join(name);
    fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

/// curl with verbose protocol output (stderr), deadlines, and alice's credentials.
fn curl(work: &Path, user: Option<&str>) -> Command {
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "-v", "--connect-timeout", "10", "--max-time", "100"]);
    if let Some(u) = user {
        c.arg("-u").arg(format!("{u}:{PASS}"));
    }
    c
}

fn curl_download(s: &Server, work: &Path, extra: &[&str], name: &str, out: &Path) -> Output {
    let o = run_with_timeout(
        curl(work, Some(ALICE))
            .args(extra)
            .arg("-o")
            .arg(out)
            .arg(url(s, name)),
        120,
    );
    assert_success(&o, &format!("curl {extra:?} download {name}"));
    o
}

fn curl_upload(s: &Server, work: &Path, extra: &[&str], src: &Path, name: &str) -> Output {
    let o = run_with_timeout(
        curl(work, Some(ALICE))
            .args(extra)
            .arg("-T")
            .arg(src)
            .arg(url(s, name)),
        120,
    );
    assert_success(&o, &format!("curl {extra:?} upload {name}"));
    o
}

#[test]
fn curl_passive_download_and_upload() {
    if !require_client("curl") {
        return;
    }
    let s = Server::with_alice("");
    let home = s.home(ALICE);
    let files = fixture_files(&home);
    let work = work_dir(&s, "curl");
    // curl's default passive command is EPSV; --disable-epsv forces PASV.
    for (extra, verb) in [
        (&["--ftp-pasv"][..], "EPSV"),
        (&["--ftp-pasv", "--disable-epsv"][..], "PASV"),
    ] {
        for (name, sha) in &files {
            let out = work.join(format!("{verb}-{name}"));
            let o = curl_download(&s, &work, extra, name, &out);
            let log = stderr_of(&o);
            assert!(
                log.contains(&format!("> {verb}")),
                "curl did not use {verb}:\n{log}"
            );
            if verb == "EPSV" {
                assert!(
                    !log.contains("> PASV"),
                    "curl fell back from EPSV to PASV:\n{log}"
                );
            }
            assert_eq!(&sha256_file(&out), sha, "curl {verb} download of {name}");
        }
        for (src_name, len) in [("up-big", 2 * 1024 * 1024 + 1), ("up-empty", 0)] {
            let src = work.join(format!("{src_name}-{verb}.src"));
            let sha = write_random_file(&src, len);
            let remote = format!("{src_name}-{verb}.bin");
            curl_upload(&s, &work, extra, &src, &remote);
            assert_eq!(
                sha256_file(&home.join(&remote)),
                sha,
                "curl {verb} upload of {remote}"
            );
        }
    }
}

#[test]
fn curl_active_port_and_eprt() {
    if !require_client("curl") {
        return;
    }
    let s = Server::with_alice("");
    let home = s.home(ALICE);
    let files = fixture_files(&home);
    let work = work_dir(&s, "curl");
    // The client connects to 127.0.0.2 from 127.0.0.1 (its own address, named in PORT);
    // for EPRT it binds its control connection to 127.0.0.3 and names that.
    let cases: [(&[&str], &str, &str); 2] = [
        (
            &["--ftp-port", "127.0.0.1", "--disable-eprt"],
            "PORT",
            "> PORT 127,0,0,1,",
        ),
        (
            &["--interface", "127.0.0.3", "--ftp-port", "127.0.0.3"],
            "EPRT",
            "> EPRT |1|127.0.0.3|",
        ),
    ];
    for (extra, verb, sent) in cases {
        for (name, sha) in &files {
            let out = work.join(format!("{verb}-{name}"));
            let o = curl_download(&s, &work, extra, name, &out);
            let log = stderr_of(&o);
            assert!(log.contains(sent), "curl did not send {sent:?}:\n{log}");
            if verb == "PORT" {
                assert!(
                    log.contains("< 200 PORT command successful."),
                    "PORT reply wording:\n{log}"
                );
            } else {
                assert!(
                    !log.contains("> PORT "),
                    "curl fell back from EPRT to PORT:\n{log}"
                );
            }
            assert_eq!(&sha256_file(&out), sha, "curl {verb} download of {name}");
        }
        let src = work.join(format!("active-{verb}.src"));
        let sha = write_random_file(&src, 1024 * 1024 + 77);
        let remote = format!("active-{verb}.bin");
        let o = curl_upload(&s, &work, extra, &src, &remote);
        assert!(stderr_of(&o).contains(sent), "{}", stderr_of(&o));
        assert_eq!(sha256_file(&home.join(&remote)), sha, "curl {verb} upload");
    }
}

#[test]
fn curl_port_naming_another_address_is_refused() {
    if !require_client("curl") {
        return;
    }
    let s = Server::with_alice("");
    let home = s.home(ALICE);
    fixture_files(&home);
    let work = work_dir(&s, "curl");
    // The client is on 127.0.0.1 but asks the server to connect to 127.0.0.3.
    let out = work.join("never.bin");
    let o = run_with_timeout(
        curl(&work, Some(ALICE))
            .args(["--ftp-port", "127.0.0.3", "--disable-eprt", "-o"])
            .arg(&out)
            .arg(url(&s, "big.bin")),
        120,
    );
    let log = stderr_of(&o);
    assert!(
        !o.status.success(),
        "curl succeeded with PORT to a foreign address:\n{log}"
    );
    assert!(
        log.contains("< 504"),
        "expected a 504 reply to the foreign PORT:\n{log}"
    );
    assert!(
        !out.exists() || fs::metadata(&out).unwrap().len() == 0,
        "data arrived despite the refused PORT"
    );
}

#[test]
fn curl_listings() {
    if !require_client("curl") {
        return;
    }
    let s = Server::with_alice("");
    let home = s.home(ALICE);
    fixture_files(&home);
    fs::create_dir(home.join("subdir")).unwrap();
    let work = work_dir(&s, "curl");
    let o = run_with_timeout(curl(&work, Some(ALICE)).arg(url(&s, "")), 60);
    assert_success(&o, "curl LIST");
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    for n in ["big.bin", "empty.bin", "text.txt", "subdir"] {
        assert!(
            list.lines().any(|l| l.ends_with(&format!(" {n}"))),
            "LIST lacks {n}:\n{list}"
        );
    }
    let o = run_with_timeout(curl(&work, Some(ALICE)).arg("--list-only").arg(url(&s, "")), 60);
    assert_success(&o, "curl NLST");
    let mut names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["big.bin", "empty.bin", "subdir", "text.txt"]);
}

// ---------------------------------------------------------------------------------------------
// wget
// ---------------------------------------------------------------------------------------------

fn wget(work: &Path) -> Command {
    let mut c = client_command("wget", &work.join("home"));
    c.args(["--tries=1", "--timeout=30", "--progress=dot:mega", "--no-config"]);
    c
}

#[test]
fn wget_download_passive_and_active() {
    if !require_client("wget") {
        return;
    }
    let s = Server::with_alice("");
    let home = s.home(ALICE);
    let files = fixture_files(&home);
    let work = work_dir(&s, "wget");
    for (extra, verb) in [(&[][..], "PASV"), (&["--no-passive-ftp"][..], "PORT")] {
        for (name, sha) in &files {
            let out = work.join(format!("{verb}-{name}"));
            let o = run_with_timeout(
                wget(&work)
                    .args(extra)
                    .arg(format!("--user={ALICE}"))
                    .arg(format!("--password={PASS}"))
                    .arg("-O")
                    .arg(&out)
                    .arg(url(&s, name)),
                120,
            );
            assert_success(&o, &format!("wget {verb} {name}"));
            let log = stderr_of(&o);
            assert!(
                log.contains(&format!("==> {verb}")),
                "wget did not use {verb}:\n{log}"
            );
            assert_eq!(&sha256_file(&out), sha, "wget {verb} download of {name}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// lftp
// ---------------------------------------------------------------------------------------------

/// Runs an lftp script against the server as alice, with a protocol debug log.
fn lftp(s: &Server, work: &Path, passive: bool, commands: &str) -> (Output, String) {
    let log = work.join(format!("lftp-{}.log", if passive { "pasv" } else { "port" }));
    let _ = fs::remove_file(&log);
    let script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         set net:reconnect-interval-base 1; set ftp:passive-mode {}; set ftp:auto-passive-mode no; \
         set ftp:use-site-utime no; set ftp:use-site-utime2 no; debug -o {} 5; \
         open -u {ALICE},{PASS} -p {} {}; {commands}",
        if passive { "on" } else { "off" },
        log.display(),
        s.port(),
        s.addr().ip()
    );
    let o = run_with_timeout(
        client_command("lftp", &work.join("home")).arg("-c").arg(&script),
        180,
    );
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        o.status.success(),
        "lftp failed: {}\n--- lftp debug log ---\n{log_text}",
        describe_output(&o)
    );
    (o, log_text)
}

#[test]
fn lftp_mirror_download_and_upload_passive() {
    lftp_mirror_both_ways(true);
}

#[test]
fn lftp_mirror_download_and_upload_active() {
    lftp_mirror_both_ways(false);
}

fn lftp_mirror_both_ways(passive: bool) {
    if !require_client("lftp") {
        return;
    }
    let s = Server::with_alice("");
    let home = s.home(ALICE);
    let served = make_tree(&home.join("tree"));
    let work = work_dir(&s, "lftp");
    let local_src = work.join("local-src");
    let to_upload = make_tree(&local_src);
    let dl = work.join("downloaded");
    let (_, log) = lftp(
        &s,
        &work,
        passive,
        &format!(
            "mirror tree {}; mirror -R --no-perms {} uploaded",
            dl.display(),
            local_src.display()
        ),
    );
    let data_cmds: Vec<&str> = if passive {
        vec!["PASV", "EPSV"]
    } else {
        vec!["PORT", "EPRT"]
    };
    assert!(
        data_cmds.iter().any(|v| log.contains(&format!("---> {v}"))),
        "lftp did not use {data_cmds:?}:\n{log}"
    );
    assert_eq!(
        tree_hashes(&dl),
        served,
        "lftp mirror download (passive={passive})"
    );
    assert_eq!(
        tree_hashes(&home.join("uploaded")),
        to_upload,
        "lftp mirror -R upload (passive={passive})"
    );
}

// ---------------------------------------------------------------------------------------------
// Python ftplib
// ---------------------------------------------------------------------------------------------

const PY_PRELUDE: &str = r#"
import ftplib, hashlib, io, json, socket, sys
cfg = json.loads(sys.argv[1])
def sha(b):
    return hashlib.sha256(b).hexdigest()
def check(cond, msg):
    if not cond:
        print("CHECK FAILED: " + msg, file=sys.stderr)
        sys.exit(1)
def expect_perm(code, fn, what):
    try:
        r = fn()
    except ftplib.error_perm as e:
        check(str(e).startswith(code), "%s: expected %s, got %s" % (what, code, e))
        return
    check(False, "%s: expected %s, got success %r" % (what, code, r))
"#;

const PY_SESSION: &str = r#"
ftp = ftplib.FTP(timeout=30)
ftp.connect(cfg["host"], cfg["port"])
ftp.login(cfg["user"], cfg["password"])
big = open(cfg["big"], "rb").read()
text = open(cfg["text"], "rb").read()
for pasv in (True, False):
    ftp.set_pasv(pasv)
    tag = "pasv" if pasv else "port"
    for name, data in (("big", big), ("text", text), ("empty", b"")):
        remote = "%s-%s.bin" % (name, tag)
        resp = ftp.storbinary("STOR " + remote, io.BytesIO(data))
        check(resp.startswith("226"), "STOR %s: %s" % (remote, resp))
        buf = io.BytesIO()
        resp = ftp.retrbinary("RETR " + remote, buf.write)
        check(resp.startswith("226"), "RETR %s: %s" % (remote, resp))
        got = buf.getvalue()
        check(sha(got) == sha(data), "RETR %s: %d bytes back for %d sent, content differs" % (remote, len(got), len(data)))
        check(ftp.size(remote) == len(data), "SIZE %s" % remote)
    names = [n.rsplit("/", 1)[-1] for n in ftp.nlst()]
    for name in ("big", "text", "empty"):
        check("%s-%s.bin" % (name, tag) in names, "NLST (%s) lacks %s-%s.bin: %r" % (tag, name, tag, names))
    facts = dict(ftp.mlsd())
    f = facts.get("big-%s.bin" % tag)
    check(f is not None, "MLSD (%s) lacks big-%s.bin: %r" % (tag, tag, facts))
    check(f.get("type", "").lower() == "file", "MLSD type: %r" % f)
    check(int(f.get("size", "-1")) == len(big), "MLSD size: %r" % f)
ftp.set_pasv(True)
ftp.rename("big-port.bin", "renamed.bin")
names = ftp.nlst()
check("renamed.bin" in names and "big-port.bin" not in names, "after rename: %r" % names)
ftp.delete("renamed.bin")
check("renamed.bin" not in ftp.nlst(), "after delete")
made = ftp.mkd("pydir")
check(made.rstrip("/").endswith("pydir"), "MKD returned %r" % made)
ftp.cwd("pydir")
check(ftp.pwd().rstrip("/").endswith("/pydir"), "PWD in pydir: %r" % ftp.pwd())
ftp.storbinary("STOR inner.txt", io.BytesIO(text))
ftp.set_pasv(False)
buf = io.BytesIO()
ftp.retrbinary("RETR inner.txt", buf.write)
check(sha(buf.getvalue()) == sha(text), "active RETR in a subdirectory")
ftp.set_pasv(True)
ftp.delete("inner.txt")
ftp.cwd("..")
ftp.rmd("pydir")
check("pydir" not in ftp.nlst(), "after RMD")
expect_perm("550", lambda: ftp.delete("no-such-file"), "DELE of a missing file")
expect_perm("550", lambda: ftp.rmd("no-such-dir"), "RMD of a missing dir")
ftp.voidcmd("NOOP")
resp = ftp.quit()
check(resp.startswith("221"), "QUIT: %s" % resp)
print("PYTHON-OK")
"#;

const PY_POLICY: &str = r#"
ftp = ftplib.FTP(timeout=30, source_address=("127.0.0.3", 0))
ftp.connect(cfg["host"], cfg["port"])
check(ftp.sock.getsockname()[0] == "127.0.0.3", "client source address")
ftp.login(cfg["user"], cfg["password"])
ftp.voidcmd("TYPE I")
trap = socket.create_server(("127.0.0.1", 0))
tport = trap.getsockname()[1]
expect_perm("504", lambda: ftp.sendport("127.0.0.1", tport), "PORT to 127.0.0.1 from a 127.0.0.3 client")
expect_perm("5", lambda: ftp.sendeprt("127.0.0.1", tport), "EPRT to 127.0.0.1 from a 127.0.0.3 client")
trap.settimeout(1.5)
try:
    trap.accept()
    check(False, "server connected to a refused PORT/EPRT address")
except socket.timeout:
    pass

# Active mode from our own address works both ways.
big = open(cfg["big"], "rb").read()
ftp.set_pasv(False)
ftp.storbinary("STOR from3.bin", io.BytesIO(big))
buf = io.BytesIO()
ftp.retrbinary("RETR from3.bin", buf.write)
check(sha(buf.getvalue()) == sha(big), "active transfer from 127.0.0.3")

# The server's active connection comes from its control address.
lst = socket.create_server(("127.0.0.3", 0))
lst.settimeout(15)
resp = ftp.sendport("127.0.0.3", lst.getsockname()[1])
check(resp.startswith("200"), "PORT to our own address: %s" % resp)
ftp.putcmd("RETR from3.bin")
conn, peer = lst.accept()
check(peer[0] == cfg["host"], "active data connection came from %s, not %s" % (peer[0], cfg["host"]))
resp = ftp.getresp()
check(resp[:1] == "1", "RETR preliminary reply: %s" % resp)
conn.settimeout(30)
got = b""
while True:
    chunk = conn.recv(1 << 20)
    if not chunk:
        break
    got += chunk
conn.close()
check(sha(got) == sha(big), "RETR over the inspected active connection")
resp = ftp.voidresp()
check(resp.startswith("226"), "end of RETR: %s" % resp)

# A passive data connection from another address than the control client gets nothing.
ftp.set_pasv(True)
host, port = ftp.makepasv()
check(host == cfg["host"], "PASV address %s" % host)
foreign = socket.create_connection((host, port), timeout=5, source_address=("127.0.0.1", 0))
ftp.putcmd("RETR from3.bin")
foreign.settimeout(3)
got = b""
try:
    while True:
        chunk = foreign.recv(1 << 16)
        if not chunk:
            break
        got += chunk
except (socket.timeout, ConnectionResetError):
    pass
check(len(got) == 0, "a data connection from 127.0.0.1 received %d bytes of a 127.0.0.3 session's file" % len(got))
ftp.close()
print("PYTHON-OK")
"#;

const PY_ANON: &str = r#"
for user in ("anonymous", "ftp"):
    ftp = ftplib.FTP(timeout=30)
    ftp.connect(cfg["host"], cfg["port"])
    ftp.login(user, "guest@example.com")
    for pasv in (True, False):
        ftp.set_pasv(pasv)
        buf = io.BytesIO()
        ftp.retrbinary("RETR anon.bin", buf.write)
        check(sha(buf.getvalue()) == cfg["anon_sha"], "anonymous (%s) download, pasv=%s" % (user, pasv))
    ftp.set_pasv(True)
    expect_perm("550", lambda: ftp.storbinary("STOR up.bin", io.BytesIO(b"nope")), "anonymous STOR")
    expect_perm("550", lambda: ftp.storbinary("APPE anon.bin", io.BytesIO(b"nope")), "anonymous APPE")
    expect_perm("550", lambda: ftp.mkd("newdir"), "anonymous MKD")
    expect_perm("550", lambda: ftp.delete("anon.bin"), "anonymous DELE")
    expect_perm("550", lambda: ftp.rename("anon.bin", "moved.bin"), "anonymous RNFR/RNTO")
    ftp.voidcmd("NOOP")
    ftp.quit()
print("PYTHON-OK")
"#;

/// Runs a Python ftplib scenario; `cfg` is passed as JSON in argv[1].
fn python(s: &Server, name: &str, body: &str, cfg: &[(&str, String)]) {
    let work = work_dir(s, "python");
    let script = work.join(format!("{name}.py"));
    fs::write(&script, format!("{PY_PRELUDE}\n{body}")).unwrap();
    let mut json = String::from("{");
    let mut all: Vec<(&str, String)> = vec![
        ("host", format!("\"{}\"", s.addr().ip())),
        ("port", s.port().to_string()),
        ("user", format!("\"{ALICE}\"")),
        ("password", format!("\"{PASS}\"")),
    ];
    all.extend(cfg.iter().map(|(k, v)| {
        (
            *k,
            format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        )
    }));
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!("\"{k}\":{v}"));
    }
    json.push('}');
    let o = run_with_timeout(
        client_command("python3", &work.join("home"))
            .arg(&script)
            .arg(&json),
        180,
    );
    assert_success(&o, &format!("python ftplib scenario {name}"));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("PYTHON-OK"),
        "{}",
        describe_output(&o)
    );
}

#[test]
fn python_ftplib_full_session() {
    if !require_client("python3") {
        return;
    }
    let s = Server::with_alice("");
    let home = s.home(ALICE);
    let src = s.dir.path().join("py-src");
    let big_sha = write_random_file(&src.join("big.bin"), 4 * 1024 * 1024 + 5);
    let text = text_content(3000);
    write_file(&src.join("text.txt"), &text);
    python(
        &s,
        "session",
        PY_SESSION,
        &[
            ("big", src.join("big.bin").display().to_string()),
            ("text", src.join("text.txt").display().to_string()),
        ],
    );
    // What the server holds afterwards, checked on disk.
    assert_eq!(sha256_file(&home.join("big-pasv.bin")), big_sha);
    assert_eq!(sha256_file(&home.join("text-pasv.bin")), sha256_bytes(&text));
    assert_eq!(sha256_file(&home.join("text-port.bin")), sha256_bytes(&text));
    assert_eq!(fs::metadata(home.join("empty-pasv.bin")).unwrap().len(), 0);
    assert_eq!(fs::metadata(home.join("empty-port.bin")).unwrap().len(), 0);
    assert!(!home.join("big-port.bin").exists() && !home.join("renamed.bin").exists());
    assert!(!home.join("pydir").exists());
}

#[test]
fn python_ftplib_address_policy_from_another_loopback_address() {
    if !require_client("python3") {
        return;
    }
    let s = Server::with_alice("");
    let src = s.dir.path().join("py-src");
    let big_sha = write_random_file(&src.join("big.bin"), 2 * 1024 * 1024 + 9);
    python(
        &s,
        "policy",
        PY_POLICY,
        &[("big", src.join("big.bin").display().to_string())],
    );
    assert_eq!(sha256_file(&s.home(ALICE).join("from3.bin")), big_sha);
}

// ---------------------------------------------------------------------------------------------
// Anonymous, read-only
// ---------------------------------------------------------------------------------------------

const ANON_CONFIG: &str = "[anonymous]\nenabled = true\nwrite = false";

#[test]
fn anonymous_read_only_with_python() {
    if !require_client("python3") {
        return;
    }
    let s = Server::with_alice(ANON_CONFIG);
    let sha = write_random_file(&s.root.join("anon.bin"), 1024 * 1024 + 1);
    python(&s, "anon", PY_ANON, &[("anon_sha", sha.clone())]);
    assert_eq!(
        sha256_file(&s.root.join("anon.bin")),
        sha,
        "anonymous changed a file"
    );
    assert!(
        !s.root.join("up.bin").exists()
            && !s.root.join("newdir").exists()
            && !s.root.join("moved.bin").exists()
    );
}

#[test]
fn anonymous_read_only_with_curl_and_wget() {
    if !require_clients(&["curl", "wget"]) {
        return;
    }
    let s = Server::with_alice(ANON_CONFIG);
    let sha = write_random_file(&s.root.join("anon.bin"), 2 * 1024 * 1024 + 3);
    let work = work_dir(&s, "anon");
    let out = work.join("curl.bin");
    let o = run_with_timeout(
        curl(&work, None).arg("-o").arg(&out).arg(url(&s, "anon.bin")),
        120,
    );
    assert_success(&o, "anonymous curl download");
    assert_eq!(sha256_file(&out), sha);

    let src = work.join("upload.src");
    write_random_file(&src, 10_000);
    let o = run_with_timeout(curl(&work, None).arg("-T").arg(&src).arg(url(&s, "up.bin")), 120);
    let log = stderr_of(&o);
    assert!(!o.status.success(), "anonymous upload succeeded:\n{log}");
    assert!(log.contains("< 550"), "anonymous STOR must get 550:\n{log}");
    assert!(!s.root.join("up.bin").exists(), "anonymous upload created a file");

    let out = work.join("wget.bin");
    let o = run_with_timeout(wget(&work).arg("-O").arg(&out).arg(url(&s, "anon.bin")), 120);
    assert_success(&o, "anonymous wget download");
    assert_eq!(sha256_file(&out), sha);
}

#[test]
fn external_client_gate_is_consistent() {
    // With the gate set, every client this suite uses must be present (a missing one fails
    // here even if the test that needs it were filtered out).
    if !external_clients_enabled() {
        skip(&format!(
            "{EXTERNAL_ENV} is not 1: external clients are not required"
        ));
        return;
    }
    for c in ["curl", "wget", "lftp", "python3"] {
        assert!(require_client(c));
    }
}
