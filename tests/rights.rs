//! Per-path rights, groups, request filters and per-user limits, through the real binary:
//! the anonymous drop box with curl, Python ftplib and lftp; group rules inherited and
//! overridden; deny over allow; source networks; expired and disabled accounts; denied file
//! names; the upload size limit mid-transfer; rights reloaded for an open session; `fxpd user
//! explain` and `fxpd user show`.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// The drop box of the users file: anonymous may upload new files into /incoming and do
/// nothing else there; the defaults (`anonymous.write = false`) make the rest read-only.
const DROP_BOX: &str = r#"
[anonymous]
rules = [{ path = "/incoming", allow = ["upload"], deny = ["list", "download"] }]
"#;

const ANON: &str = "[anonymous]\nenabled = true\nwrite = false";

/// A drop-box server: `/incoming` (empty), `/pub/file.bin`, alice's home.
fn drop_box_server() -> (Server, String) {
    let s = Server::builder()
        .config(ANON)
        .user("alice", PASS, "alice", true)
        .users_toml(DROP_BOX)
        .start();
    fs::create_dir_all(s.root.join("incoming")).unwrap();
    fs::create_dir_all(s.root.join("pub")).unwrap();
    let sha = write_random_file(&s.root.join("pub/file.bin"), 200_000);
    (s, sha)
}

/// The tree under the root without `/incoming`, which the drop box may change.
fn outside_incoming(s: &Server) -> std::collections::BTreeMap<String, String> {
    tree_hashes(&s.root)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("incoming"))
        .collect()
}

fn work_dir(s: &Server, name: &str) -> PathBuf {
    let d = s.dir.path().join(name);
    fs::create_dir_all(&d).unwrap();
    d
}

fn url(s: &Server, path: &str) -> String {
    format!("ftp://{}:{}/{}", s.addr().ip(), s.port(), path)
}

fn curl(work: &Path) -> Command {
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "-v", "--connect-timeout", "10", "--max-time", "100"]);
    c
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `fxpd <args> --users FILE`.
fn cli(s: &Server, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    clear_fxpd_env(&mut cmd);
    cmd.args(args).arg("--users").arg(&s.users_file);
    run_with_timeout(&mut cmd, 60)
}

fn cli_ok(s: &Server, args: &[&str]) -> String {
    let o = cli(s, args);
    assert_success(&o, &format!("fxpd {args:?}"));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The drop box
// ---------------------------------------------------------------------------------------------

#[test]
fn drop_box_with_curl() {
    if !require_client("curl") {
        return;
    }
    let (s, sha) = drop_box_server();
    let before = outside_incoming(&s);
    let work = work_dir(&s, "curl");
    let src = work.join("up.src");
    let up_sha = write_random_file(&src, 300_001);

    // Upload a new file: curl enters /incoming (CWD) and stores.
    let o = run_with_timeout(
        curl(&work).arg("-T").arg(&src).arg(url(&s, "incoming/up.bin")),
        120,
    );
    assert_success(&o, "anonymous upload into /incoming");
    assert_eq!(sha256_file(&s.root.join("incoming/up.bin")), up_sha);

    // Overwrite it: refused, the file unchanged.
    let o = run_with_timeout(
        curl(&work).arg("-T").arg(&src).arg(url(&s, "incoming/up.bin")),
        120,
    );
    let log = stderr_of(&o);
    assert!(!o.status.success(), "overwrite succeeded:\n{log}");
    assert!(
        log.contains("< 550 Access is denied: no overwrite right at /."),
        "{log}"
    );

    // List it: refused, naming the right and the rule's path.
    let o = run_with_timeout(curl(&work).arg(url(&s, "incoming/")), 120);
    let log = stderr_of(&o);
    assert!(!o.status.success(), "listing succeeded:\n{log}");
    assert!(
        log.contains("< 550 Access is denied: no list right at /incoming."),
        "{log}"
    );

    // Download from it: refused.
    let out = work.join("back.bin");
    // (--ignore-content-length: no SIZE first, which `list` would refuse, so RETR is tried.)
    let o = run_with_timeout(
        curl(&work)
            .arg("--ignore-content-length")
            .arg("-o")
            .arg(&out)
            .arg(url(&s, "incoming/up.bin")),
        120,
    );
    let log = stderr_of(&o);
    assert!(!o.status.success(), "download succeeded:\n{log}");
    assert!(log.contains("> RETR up.bin"), "{log}");
    assert!(
        log.contains("< 550 Access is denied: no download right at /incoming."),
        "{log}"
    );

    // Delete: refused.
    let o = run_with_timeout(
        curl(&work).args(["-Q", "DELE incoming/up.bin"]).arg(url(&s, "")),
        120,
    );
    let log = stderr_of(&o);
    assert!(
        log.contains("< 550 Access is denied: no delete right at /."),
        "{log}"
    );
    assert_eq!(sha256_file(&s.root.join("incoming/up.bin")), up_sha);

    // The rest of the tree: downloads work, uploads are refused.
    let o = run_with_timeout(curl(&work).arg("-o").arg(&out).arg(url(&s, "pub/file.bin")), 120);
    assert_success(&o, "anonymous download from /pub");
    assert_eq!(sha256_file(&out), sha);
    let o = run_with_timeout(curl(&work).arg("-T").arg(&src).arg(url(&s, "pub/new.bin")), 120);
    let log = stderr_of(&o);
    assert!(
        log.contains("< 550 Access is denied: no upload right at /."),
        "{log}"
    );
    assert_eq!(outside_incoming(&s), before, "the tree outside /incoming changed");
}

const PY_DROP_BOX: &str = r#"
import ftplib, hashlib, io, json, sys
cfg = json.loads(sys.argv[1])
def check(cond, msg):
    if not cond:
        print("CHECK FAILED: " + msg, file=sys.stderr)
        sys.exit(1)
def expect_perm(prefix, fn, what):
    try:
        r = fn()
    except ftplib.error_perm as e:
        check(str(e).startswith(prefix), "%s: expected %s, got %s" % (what, prefix, e))
        return
    check(False, "%s: expected %s, got success %r" % (what, prefix, r))
ftp = ftplib.FTP(timeout=30)
ftp.connect(cfg["host"], int(cfg["port"]))
ftp.login("anonymous", "guest@example.com")
ftp.cwd("/incoming")
data = bytes(range(256)) * 400
ftp.storbinary("STOR py.bin", io.BytesIO(data))
expect_perm("550 Access is denied: no overwrite right at /.", lambda: ftp.storbinary("STOR py.bin", io.BytesIO(b"x")), "overwrite")
expect_perm("550 Access is denied: no append right at /.", lambda: ftp.storbinary("APPE py.bin", io.BytesIO(b"x")), "append")
expect_perm("550 Access is denied: no list right at /incoming.", lambda: ftp.nlst(), "NLST")
expect_perm("550 Access is denied: no list right at /incoming.", lambda: ftp.retrlines("LIST"), "LIST")
expect_perm("550 Access is denied: no list right at /incoming.", lambda: ftp.size("py.bin"), "SIZE")
expect_perm("550 Access is denied: no download right at /incoming.", lambda: ftp.retrbinary("RETR py.bin", lambda b: None), "RETR")
expect_perm("550 Access is denied: no delete right at /.", lambda: ftp.delete("py.bin"), "DELE")
expect_perm("550 Access is denied: no rename right at /.", lambda: ftp.rename("py.bin", "moved.bin"), "RNFR")
expect_perm("550 Access is denied: no mkdir right at /.", lambda: ftp.mkd("sub"), "MKD")
ftp.cwd("/pub")
buf = io.BytesIO()
ftp.retrbinary("RETR file.bin", buf.write)
check(hashlib.sha256(buf.getvalue()).hexdigest() == cfg["pub_sha"], "download from /pub")
check("file.bin" in ftp.nlst(), "listing /pub")
expect_perm("550 Access is denied: no upload right at /.", lambda: ftp.storbinary("STOR new.bin", io.BytesIO(b"x")), "upload to /pub")
expect_perm("550 Access is denied: no delete right at /.", lambda: ftp.delete("file.bin"), "DELE in /pub")
ftp.quit()
print("PYTHON-OK " + hashlib.sha256(data).hexdigest())
"#;

#[test]
fn drop_box_with_python_ftplib() {
    if !require_client("python3") {
        return;
    }
    let (s, sha) = drop_box_server();
    let before = outside_incoming(&s);
    let work = work_dir(&s, "python");
    let script = work.join("drop_box.py");
    fs::write(&script, PY_DROP_BOX).unwrap();
    let cfg = format!(
        "{{\"host\":\"{}\",\"port\":\"{}\",\"pub_sha\":\"{sha}\"}}",
        s.addr().ip(),
        s.port()
    );
    let o = run_with_timeout(
        client_command("python3", &work.join("home"))
            .arg(&script)
            .arg(&cfg),
        180,
    );
    assert_success(&o, "python drop box");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let uploaded = stdout.trim().strip_prefix("PYTHON-OK ").expect("PYTHON-OK");
    assert_eq!(sha256_file(&s.root.join("incoming/py.bin")), uploaded);
    assert!(!s.root.join("incoming/moved.bin").exists() && !s.root.join("incoming/sub").exists());
    assert_eq!(outside_incoming(&s), before, "the tree outside /incoming changed");
}

/// One lftp run as anonymous; returns the output and lftp's debug log.
fn lftp(s: &Server, work: &Path, tag: &str, commands: &str) -> (Output, String) {
    let log = work.join(format!("lftp-{tag}.log"));
    let script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         set net:reconnect-interval-base 1; set ftp:passive-mode on; \
         set ftp:use-site-utime no; set ftp:use-site-utime2 no; debug -o {} 5; \
         open -u anonymous,guest@example.com -p {} {}; {commands}",
        log.display(),
        s.port(),
        s.addr().ip()
    );
    let o = run_with_timeout(
        client_command("lftp", &work.join("home")).arg("-c").arg(&script),
        120,
    );
    (o, fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn drop_box_with_lftp() {
    if !require_client("lftp") {
        return;
    }
    let (s, sha) = drop_box_server();
    let before = outside_incoming(&s);
    let work = work_dir(&s, "lftp");
    let src = work.join("lftp.src");
    let up_sha = write_random_file(&src, 123_457);

    let (o, log) = lftp(
        &s,
        &work,
        "put",
        &format!("cd /incoming; put {} -o lftp.bin", src.display()),
    );
    assert!(o.status.success(), "lftp put: {}\n{log}", describe_output(&o));
    assert_eq!(sha256_file(&s.root.join("incoming/lftp.bin")), up_sha);

    for (tag, commands, expected) in [
        (
            "ls",
            "cls /incoming/",
            "550 Access is denied: no list right at /incoming.",
        ),
        (
            "get",
            "get /incoming/lftp.bin -o got.bin",
            "550 Access is denied: no download right at /incoming.",
        ),
        (
            "rm",
            "rm /incoming/lftp.bin",
            "550 Access is denied: no delete right at /.",
        ),
        (
            "mkdir",
            "mkdir /incoming/d",
            "550 Access is denied: no mkdir right at /.",
        ),
    ] {
        let (o, log) = lftp(&s, &work, tag, commands);
        assert!(!o.status.success(), "lftp {commands} succeeded:\n{log}");
        assert!(
            log.contains(expected),
            "lftp {commands}: no {expected:?} in\n{log}"
        );
    }
    let (o, log) = lftp(
        &s,
        &work,
        "over",
        &format!("put {} -o /incoming/lftp.bin", src.display()),
    );
    assert!(!o.status.success(), "lftp overwrite succeeded:\n{log}");
    assert!(
        log.contains("550 Access is denied: no overwrite right at /."),
        "{log}"
    );
    assert_eq!(sha256_file(&s.root.join("incoming/lftp.bin")), up_sha);

    let (o, log) = lftp(
        &s,
        &work,
        "pub",
        &format!("get /pub/file.bin -o {}", work.join("file.bin").display()),
    );
    assert!(
        o.status.success(),
        "lftp get from /pub: {}\n{log}",
        describe_output(&o)
    );
    assert_eq!(sha256_file(&work.join("file.bin")), sha);
    let (o, log) = lftp(
        &s,
        &work,
        "putpub",
        &format!("put {} -o /pub/x.bin", src.display()),
    );
    assert!(
        !o.status.success() && log.contains("550 Access is denied: no upload right at /."),
        "{log}"
    );
    assert_eq!(outside_incoming(&s), before, "the tree outside /incoming changed");
}

// ---------------------------------------------------------------------------------------------
// Groups, precedence, live reload
// ---------------------------------------------------------------------------------------------

const STAFF: &str = r#"
[[group]]
name = "staff"
rules = [{ path = "/shared", allow = ["write"] }]
"#;

#[test]
fn group_rules_are_inherited_and_the_users_own_override_them() {
    let s = Server::builder()
        .user("bob", PASS, "bob", false)
        .users_toml(STAFF)
        .start();
    let home = s.home("bob");
    fs::create_dir_all(home.join("shared/keep")).unwrap();
    write_file(&home.join("shared/keep/k.txt"), b"keep me");
    write_file(&home.join("top.txt"), b"top");
    cli_ok(
        &s,
        &[
            "user",
            "set",
            "bob",
            "--groups",
            "staff",
            "--deny",
            "/shared/keep=delete",
        ],
    );
    // The deny and the allow of the same right at the same path: deny wins.
    cli_ok(
        &s,
        &[
            "user",
            "set",
            "bob",
            "--allow",
            "/shared/x=mkdir",
            "--deny",
            "/shared/x=mkdir",
        ],
    );
    s.reload().unwrap();

    let mut c = s.login("bob", PASS);
    // Inherited from the group: write in /shared.
    c.stor("/shared/new.txt", b"from bob");
    c.expect("MKD /shared/d", 257);
    c.expect("DELE /shared/new.txt", 250);
    // The user's own deny below it overrides the group.
    let r = c.expect("DELE /shared/keep/k.txt", 550);
    assert_eq!(
        r.first(),
        "550 Access is denied: no delete right at /shared/keep."
    );
    assert_eq!(fs::read(home.join("shared/keep/k.txt")).unwrap(), b"keep me");
    // ...but only for that right.
    c.stor("/shared/keep/more.txt", b"more");
    // MLSD and MLST tell the same (RFC 3659 perm facts).
    let list = c.listing("MLSD /shared");
    assert!(
        list.contains("type=dir;") && list.contains("perm=elcdfm;unix.mode="),
        "{list}"
    );
    let line = list.lines().find(|l| l.ends_with(" keep")).expect("keep listed");
    assert!(line.contains("perm=elcdfm;"), "{line}");
    let line = list.lines().find(|l| l.ends_with(" d")).expect("d listed");
    assert!(line.contains("perm=elcdfmp;"), "{line}");
    let r = c.expect("MLST /shared/keep/k.txt", 250);
    assert!(r.text().contains("perm=rafw;"), "{r}");
    let r = c.expect("MLST /top.txt", 250);
    assert!(r.text().contains("perm=r;"), "{r}");
    // Deny beats allow at the same path.
    let r = c.expect("MKD /shared/x", 550);
    assert_eq!(r.first(), "550 Access is denied: no mkdir right at /shared/x.");
    // Outside /shared the user is read-only (write = false).
    let r = c.try_upload("STOR", "/top2.txt", b"no");
    assert_eq!(r.first(), "550 Access is denied: no upload right at /.");
    c.expect("DELE /top.txt", 550);
    assert_eq!(c.retr("/top.txt"), b"top");
    assert!(!home.join("top2.txt").exists());

    // Explained by the binary, rule by rule.
    let out = cli_ok(&s, &["user", "explain", "bob", "/shared/keep/k.txt", "delete"]);
    assert!(
        out.starts_with(
            "refused: delete on /shared/keep/k.txt for bob: no delete right at /shared/keep (user bob rule)"
        ),
        "{out}"
    );
    let out = cli_ok(
        &s,
        &["user", "explain", "bob", "/shared/a/../keep/./k.txt", "upload"],
    );
    assert!(
        out.starts_with("allowed: upload on /shared/keep/k.txt for bob, by the group staff rule at /shared"),
        "{out}"
    );
    let out = cli_ok(&s, &["user", "explain", "bob", "/top.txt", "download"]);
    assert!(
        out.starts_with("allowed: download on /top.txt for bob, by the default rule at /"),
        "{out}"
    );
    let out = cli_ok(&s, &["user", "show", "bob"]);
    assert!(out.contains("groups: staff"), "{out}");
    assert!(out.contains("  /shared/keep\n"), "{out}");
    assert!(out.contains("-delete     user bob at /shared/keep"), "{out}");
    assert!(out.contains("+upload     group staff at /shared"), "{out}");
    assert!(out.contains("max_upload_bytes: -"), "{out}");
    let out = cli_ok(&s, &["user", "list"]);
    assert!(out.contains("groups=staff"), "{out}");
    let out = cli_ok(&s, &["group", "list"]);
    assert!(out.contains("staff\trules=1\tmembers=bob"), "{out}");
    let o = cli(&s, &["group", "remove", "staff"]);
    assert!(
        !o.status.success() && stderr_of(&o).contains("still has members: bob"),
        "{}",
        describe_output(&o)
    );
}

/// `fxpd group set` changes an existing group (before, only `group add` could give one its
/// settings): a rule added to it reaches its member at the next reload, the comment above it
/// and the other tables stay, and what only a user has (groups, expiry) or a group that does
/// not exist is refused with the file untouched.
#[test]
fn group_set_changes_a_group_for_its_members() {
    let s = Server::builder()
        .user("bob", PASS, "bob", false)
        .users_toml(&format!("# the staff of the shared folder{STAFF}"))
        .start();
    fs::create_dir_all(s.home("bob").join("shared")).unwrap();
    cli_ok(&s, &["user", "set", "bob", "--groups", "staff"]);
    s.reload().unwrap();
    let mut c = s.login("bob", PASS);
    c.stor("/shared/a.txt", b"a");

    let out = cli_ok(
        &s,
        &[
            "group",
            "set",
            "staff",
            "--deny",
            "/shared=upload",
            "--max-sessions",
            "3",
        ],
    );
    assert!(out.contains("group staff changed"), "{out}");
    let text = fs::read_to_string(&s.users_file).unwrap();
    assert!(
        text.contains("# the staff of the shared folder\n[[group]]"),
        "{text}"
    );
    s.reload().unwrap();
    let r = c.try_upload("STOR", "/shared/b.txt", b"b");
    assert_eq!(r.first(), "550 Access is denied: no upload right at /shared.");
    // The group's earlier rule stays: overwriting is still allowed.
    c.stor("/shared/a.txt", b"again");
    let shown = cli_ok(&s, &["user", "show", "bob"]);
    assert!(shown.contains("max_sessions: 3 (group staff)"), "{shown}");

    let before = fs::read_to_string(&s.users_file).unwrap();
    for (args, says) in [
        (
            vec!["group", "set", "nobody", "--max-sessions", "1"],
            "does not exist",
        ),
        (
            vec!["group", "set", "staff", "--clear", "groups"],
            "groups is a user's setting",
        ),
        (
            vec!["group", "set", "staff", "--clear", "expires"],
            "expires is a user's setting",
        ),
        (vec!["group", "set", "staff", "--deny", "/x=fly"], "fly"),
    ] {
        let o = cli(&s, &args);
        let err = stderr_of(&o);
        assert!(!o.status.success() && err.contains(says), "{args:?}: {err}");
        assert_eq!(
            fs::read_to_string(&s.users_file).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
}

#[test]
fn rights_reload_for_an_open_session() {
    let s = Server::builder().user("bob", PASS, "bob", true).start();
    let mut c = s.login("bob", PASS);
    c.stor("a.txt", b"one");
    c.expect("MKD d", 257);
    cli_ok(
        &s,
        &[
            "user",
            "set",
            "bob",
            "--deny",
            "/=upload,mkdir",
            "--deny-files",
            "*.exe",
        ],
    );
    s.reload().unwrap();
    // The same session, after the reload.
    let r = c.try_upload("STOR", "b.txt", b"two");
    assert_eq!(r.first(), "550 Access is denied: no upload right at /.");
    let r = c.expect("MKD e", 550);
    assert_eq!(r.first(), "550 Access is denied: no mkdir right at /.");
    // Overwrite is still allowed, but not under a denied name.
    c.stor("a.txt", b"three");
    assert_eq!(fs::read(s.home("bob").join("a.txt")).unwrap(), b"three");
    write_file(&s.home("bob").join("Setup.EXE"), b"old");
    let r = c.try_upload("STOR", "Setup.EXE", b"new");
    assert_eq!(r.first(), "553 File name not allowed: it matches *.exe.");
    assert!(!s.home("bob").join("b.txt").exists() && !s.home("bob").join("e").exists());
    // A removed account can do nothing in its open session.
    cli_ok(&s, &["user", "remove", "bob"]);
    s.reload().unwrap();
    let r = c.cmd("LIST");
    assert_eq!(r.code, 530, "{r}");
    c.expect("NOOP", 200);
}

/// Waits (on the log, up to 20 s) for the users-file watch to notice a change and for the
/// reload it asks for to end: `Ok` if applied, `Err` with the refusal's line.
fn watched_reload(s: &Server, edit: impl FnOnce()) -> Result<(), String> {
    let count = |log: &str, what: &str| log.lines().filter(|l| l.contains(what)).count();
    let before = s.stderr();
    let changed = count(&before, "users_file_changed");
    let applied = count(&before, "configuration reloaded");
    let refused = count(&before, "reload_refused");
    edit();
    let log = s.log_when(|log| {
        count(log, "users_file_changed") > changed
            && (count(log, "configuration reloaded") > applied || count(log, "reload_refused") > refused)
    });
    match log.lines().filter(|l| l.contains("reload_refused")).nth(refused) {
        Some(line) => Err(line.to_owned()),
        None => Ok(()),
    }
}

#[test]
fn the_users_file_is_reloaded_when_it_changes_without_a_signal() {
    let s = Server::builder().user("bob", PASS, "bob", true).start();
    cli_ok(&s, &["user", "set", "bob", "--deny", "/=mkdir"]);
    s.reload().unwrap();
    let mut c = s.login("bob", PASS);
    let r = c.expect("MKD a", 550);
    assert_eq!(r.first(), "550 Access is denied: no mkdir right at /.");

    // An edit by hand that grants the right reaches the open session, with no signal.
    let denied = fs::read_to_string(&s.users_file).unwrap();
    let granted = denied.replace("deny = [\"mkdir\"]", "allow = [\"mkdir\"]");
    assert_ne!(
        granted, denied,
        "the rule is not where the test expects it:\n{denied}"
    );
    watched_reload(&s, || fs::write(&s.users_file, &granted).unwrap()).unwrap();
    c.expect("MKD a", 257);

    // A broken edit (the same rule turned back to deny, plus an unknown key) is refused
    // whole: the granted right still decides.
    let broken = format!(
        "{}\nshoe_size = 44\n",
        granted.replace("allow = [\"mkdir\"]", "deny = [\"mkdir\"]")
    );
    let refusal = watched_reload(&s, || fs::write(&s.users_file, &broken).unwrap())
        .expect_err("a broken users file was applied");
    assert!(refusal.contains("shoe_size"), "{refusal}");
    c.expect("MKD b", 257);
    assert!(s.home("bob").join("b").is_dir());

    // `fxpd user add` (an atomic rewrite) is picked up without `service reload`, once the
    // file is valid again.
    watched_reload(&s, || fs::write(&s.users_file, &granted).unwrap()).unwrap();
    watched_reload(&s, || s.add_user("carol", PASS, "carol", false)).unwrap();
    let mut carol = s.login("carol", PASS);
    carol.expect("NOOP", 200);
    c.expect("MKD c", 257);
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_in_the_home_does_not_carry_a_client_past_a_deny() {
    use std::os::unix::fs::symlink;
    let s = Server::builder().user("bob", PASS, "bob", true).start();
    let home = s.home("bob");
    write_file(&home.join("secret/f.txt"), b"secret");
    let sha = write_random_file(&home.join("pub/ok.bin"), 20_000);
    symlink("../secret", home.join("pub/s")).unwrap();
    symlink(home.join("secret"), home.join("pub/abs")).unwrap();
    symlink("loop", home.join("pub/loop")).unwrap();
    symlink("ok.bin", home.join("pub/alias.bin")).unwrap();
    cli_ok(&s, &["user", "set", "bob", "--deny", "/secret=all"]);
    s.reload().unwrap();
    let mut c = s.login("bob", PASS);
    c.expect("TYPE I", 200);
    // The allowed directory and a link that stays in it work.
    assert_eq!(sha256_bytes(&c.retr("pub/ok.bin")), sha);
    assert_eq!(sha256_bytes(&c.retr("pub/alias.bin")), sha);
    // Through the link, the deny on /secret still decides, whatever the spelling.
    for name in ["pub/s/f.txt", "/pub/./s//f.txt", "pub/x/../s/f.txt"] {
        let r = c.try_upload("RETR", name, b"");
        assert_eq!(
            r.first(),
            "550 Access is denied: no download right at /secret.",
            "{name}"
        );
    }
    let r = c.try_upload("STOR", "pub/s/new.txt", b"planted");
    assert_eq!(r.code, 550, "{r}");
    assert!(!home.join("secret/new.txt").exists());
    c.expect("CWD pub/s", 550);
    c.expect("DELE pub/s/f.txt", 550);
    c.expect("MKD pub/s/d", 550);
    let r = c.try_upload("NLST", "pub/s", b"");
    assert_eq!(r.code, 550, "{r}");
    // An absolute link to the same directory, and a loop: refused too.
    let r = c.try_upload("RETR", "pub/abs/f.txt", b"");
    assert_eq!(r.code, 550, "{r}");
    let r = c.try_upload("RETR", "pub/loop", b"");
    assert_eq!(r.first(), "550 The system cannot find the file specified.");
    assert_eq!(fs::read(home.join("secret/f.txt")).unwrap(), b"secret");
}

// ---------------------------------------------------------------------------------------------
// Request filtering
// ---------------------------------------------------------------------------------------------

const FILTERS: &str = r#"
[everyone]
hidden = [".git"]

[[group]]
name = "uploaders"
deny_files = ["*.exe", "*.BAT"]
max_upload_bytes = 100000
"#;

fn filtered_server() -> Server {
    let s = Server::builder()
        .user("eve", PASS, "eve", true)
        .users_toml(FILTERS)
        .start();
    cli_ok(&s, &["user", "set", "eve", "--groups", "uploaders"]);
    s.reload().unwrap();
    s
}

#[test]
fn denied_file_names_are_refused_with_553() {
    let s = filtered_server();
    let home = s.home("eve");
    write_file(&home.join("a.txt"), b"text");
    let mut c = s.login("eve", PASS);
    for name in ["x.exe", "Y.EXE", "sub/../z.Exe", "run.bat"] {
        let r = c.try_upload("STOR", name, b"MZ");
        assert_eq!(r.code, 553, "STOR {name} -> {r}");
        assert!(
            r.first().starts_with("553 File name not allowed: it matches "),
            "{r}"
        );
    }
    c.expect("RNFR a.txt", 350);
    let r = c.expect("RNTO a.exe", 553);
    assert_eq!(r.first(), "553 File name not allowed: it matches *.exe.");
    c.stor("ok.txt", b"fine");
    let names: Vec<String> = fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_lowercase().ends_with(".exe") && !n.ends_with(".bat")),
        "{names:?}"
    );
}

#[test]
fn hidden_segments_are_not_listed_and_not_reachable() {
    let s = filtered_server();
    let home = s.home("eve");
    fs::create_dir_all(home.join(".git")).unwrap();
    write_file(&home.join(".git/config"), b"secret");
    write_file(&home.join("seen.txt"), b"seen");
    let mut c = s.login("eve", PASS);
    let list = c.listing("NLST");
    assert!(list.contains("seen.txt") && !list.contains(".git"), "{list}");
    let list = c.listing("MLSD");
    assert!(!list.contains(".git"), "{list}");
    let missing = c.expect("SIZE nothing-here", 550).first().to_owned();
    for line in [
        "CWD .git",
        "CWD .GIT",
        "SIZE .git/config",
        "MLST ./.git/config",
        "DELE .git/config",
        "RNFR .git",
    ] {
        let r = c.expect(line, 550);
        assert_eq!(r.first(), missing, "{line} told more than a missing file");
    }
    let r = c.try_upload("RETR", ".git/config", b"");
    assert_eq!(r.first(), missing);
    assert_eq!(fs::read(home.join(".git/config")).unwrap(), b"secret");
}

#[test]
fn an_upload_over_the_size_limit_stops_with_552_and_leaves_nothing() {
    let s = filtered_server();
    let home = s.home("eve");
    make_tree(&home.join("tree"));
    write_file(&home.join("small.bin"), &[7u8; 1000]);
    let small_sha = sha256_file(&home.join("small.bin"));
    let before = tree_hashes(&home);
    let mut c = s.login("eve", PASS);
    c.expect("TYPE I", 200);

    // A new file crossing the limit mid-transfer: 552, the partial file is gone.
    let r = c.try_upload("STOR", "big.bin", &random_bytes(1_000_000));
    assert_eq!(r.code, 552, "{r}");
    assert!(!home.join("big.bin").exists(), "the partial file stayed");
    // An append crossing it: the file is cut back to what it held.
    let r = c.try_upload("APPE", "small.bin", &random_bytes(1_000_000));
    assert_eq!(r.code, 552, "{r}");
    assert_eq!(sha256_file(&home.join("small.bin")), small_sha);
    assert_eq!(tree_hashes(&home), before, "the rest of the home changed");
    // At the limit exactly: stored.
    let exact = random_bytes(100_000);
    c.stor("exact.bin", &exact);
    assert_eq!(sha256_file(&home.join("exact.bin")), sha256_bytes(&exact));
    // A resume that starts past the limit is refused before any data.
    write_file(&home.join("grown.bin"), &vec![1u8; 150_000]);
    c.expect("REST 150000", 350);
    let r = c.try_upload("STOR", "grown.bin", b"more");
    assert_eq!(
        r.first(),
        "552 Upload too large: files may have at most 100000 bytes."
    );
    assert_eq!(fs::read(home.join("grown.bin")).unwrap(), vec![1u8; 150_000]);
    c.expect("NOOP", 200);
}

#[test]
fn allo_beyond_the_size_limit_refuses_the_upload_before_any_data() {
    let s = filtered_server();
    let home = s.home("eve");
    write_file(&home.join("small.bin"), &[7u8; 1000]);
    let before = tree_hashes(&home);
    let mut c = s.login("eve", PASS);
    c.expect("TYPE I", 200);
    // Announced too large: STOR over an existing file is refused before 150, and the file
    // is not truncated; APPE counts what the file holds already.
    c.expect("ALLO 100001", 200);
    let r = c.try_upload("STOR", "small.bin", b"would truncate");
    assert_eq!(
        r.first(),
        "552 Upload too large: files may have at most 100000 bytes."
    );
    c.expect("ALLO 99500", 200);
    assert_eq!(c.try_upload("APPE", "small.bin", b"x").code, 552);
    c.expect("ALLO 200000 R 512", 200);
    let _data = data_connect(c.pasv());
    assert_eq!(c.cmd("STOU").code, 552);
    assert_eq!(tree_hashes(&home), before, "a refused upload changed the home");
    // The announcement is used once: the next STOR is judged by its data alone.
    c.expect("ALLO 100001", 200);
    assert_eq!(c.retr("small.bin"), vec![7u8; 1000]);
    c.stor("after.bin", b"fits");
    // Within the limit: stored.
    c.expect("ALLO 4", 200);
    c.stor("fits.bin", b"fits");
    assert_eq!(fs::read(home.join("fits.bin")).unwrap(), b"fits");
    c.expect("ALLO 1 2", 501);
    c.expect("ALLO", 202);
}

#[test]
fn allo_beyond_the_size_limit_with_python_ftplib() {
    if !require_client("python3") {
        return;
    }
    let s = filtered_server();
    let home = s.home("eve");
    let script = format!(
        r#"
import ftplib, io
ftp = ftplib.FTP(timeout=30)
ftp.connect("{ip}", {port})
ftp.login("eve", "{PASS}")
print(ftp.sendcmd("ALLO 500000"))
try:
    ftp.storbinary("STOR big.bin", io.BytesIO(b"x" * 500000))
    print("STORED")
except ftplib.error_perm as e:
    print("REFUSED", e)
ftp.quit()
"#,
        ip = s.addr().ip(),
        port = s.port()
    );
    let out = run_with_timeout(Command::new("python3").args(["-c", &script]), 60);
    assert_success(&out, "python ftplib ALLO + STOR");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("200 ALLO"), "{text}");
    assert!(text.contains("REFUSED 552"), "{text}");
    assert!(!home.join("big.bin").exists());
}

// ---------------------------------------------------------------------------------------------
// Per-user limits
// ---------------------------------------------------------------------------------------------

/// The refusals below are failed logins: keep the address from being locked out meanwhile.
const NO_LOCKOUT: &str = "[limits]\nmax_login_failures = 100";

#[test]
fn allowed_networks_admit_127_0_0_4_and_refuse_127_0_0_1() {
    let s = Server::builder()
        .config(NO_LOCKOUT)
        .user("carol", PASS, "carol", true)
        .start();
    cli_ok(
        &s,
        &["user", "set", "carol", "--allowed-networks", "127.0.0.4/32"],
    );
    s.reload().unwrap();
    let wrong = {
        let mut c = Ctrl::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), s.addr());
        c.expect("USER carol", 331);
        c.expect("PASS wrong-password", 530).first().to_owned()
    };
    let mut c = Ctrl::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), s.addr());
    c.expect("USER carol", 331);
    let r = c.expect(&format!("PASS {PASS}"), 530);
    assert_eq!(r.first(), wrong, "the refusal tells more than a bad password");
    s.log_when(|l| l.contains("client network not allowed for this account"));
    let four = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
    let mut c = Ctrl::connect_from(four, s.addr());
    c.login("carol", PASS);
    // The data connection from the same address, as a client there would make it.
    let addr = c.pasv();
    let mut data = connect_from(four, addr);
    c.expect("STOR from4.txt", 150);
    data.write_all(b"4").unwrap();
    drop(data);
    assert_eq!(c.read_reply().code, 226);
    assert_eq!(fs::read(s.home("carol").join("from4.txt")).unwrap(), b"4");
    // Denied beats allowed.
    cli_ok(&s, &["user", "set", "carol", "--denied-networks", "127.0.0.4/32"]);
    s.reload().unwrap();
    let r = c.cmd("LIST");
    assert_eq!(
        r.code, 530,
        "an open session from a newly denied network went on: {r}"
    );
    let mut c = Ctrl::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)), s.addr());
    c.expect("USER carol", 331);
    c.expect(&format!("PASS {PASS}"), 530);
}

#[test]
fn expired_and_disabled_accounts_look_like_bad_passwords() {
    let s = Server::builder()
        .config(NO_LOCKOUT)
        .user("old", PASS, "old", true)
        .user("off", PASS, "off", true)
        .user("ok", PASS, "ok", true)
        .start();
    cli_ok(&s, &["user", "set", "old", "--expires", "2020-01-01"]);
    cli_ok(&s, &["user", "set", "off", "--disabled", "true"]);
    cli_ok(&s, &["user", "set", "ok", "--expires", "2999-12-31"]);
    s.reload().unwrap();
    let refusal = |name: &str, pass: &str| {
        let mut c = s.ctrl();
        c.expect(&format!("USER {name}"), 331);
        c.expect(&format!("PASS {pass}"), 530).text()
    };
    let bad = refusal("ok", "wrong-password");
    let unknown = refusal("nobody", PASS);
    assert_eq!(refusal("old", PASS), bad);
    assert_eq!(refusal("off", PASS), bad);
    assert_eq!(unknown, bad);
    s.log_when(|l| l.contains("account expired") && l.contains("account disabled"));
    s.login("ok", PASS);
    cli_ok(&s, &["user", "set", "off", "--disabled", "false"]);
    s.reload().unwrap();
    s.login("off", PASS);
}

#[test]
fn max_sessions_per_account() {
    let s = Server::builder().user("dan", PASS, "dan", true).start();
    cli_ok(&s, &["user", "set", "dan", "--max-sessions", "1"]);
    s.reload().unwrap();
    let first = s.login("dan", PASS);
    let mut c = s.ctrl();
    c.expect("USER dan", 331);
    let r = c.expect(&format!("PASS {PASS}"), 530);
    assert!(r.first().contains("too many sessions"), "{r}");
    drop(first);
    // The seat comes back when the first session ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = s.ctrl();
        c.expect("USER dan", 331);
        if c.cmd(&format!("PASS {PASS}")).code == 230 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the seat never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn users_file_errors_name_the_line() {
    let s = Server::builder().user("bob", PASS, "bob", true).start();
    let good = fs::read_to_string(&s.users_file).unwrap();
    for (extra, needle) in [
        (
            "\n[[group]]\nname = \"g\"\nrules = [{ path = \"/a/../b\", allow = [\"list\"] }]\n",
            "line",
        ),
        (
            "\n[[group]]\nname = \"g\"\nrules = [{ path = \"/a\", allow = [\"fly\"] }]\n",
            "unknown right",
        ),
        ("\n[[group]]\nname = \"g\"\nbogus = 1\n", "bogus"),
        ("\n[anonymous]\ndeny_files = [\"a/b\"]\n", "pattern"),
    ] {
        fs::write(&s.users_file, format!("{good}{extra}")).unwrap();
        let refused = s.reload().expect_err("a bad users file was applied");
        assert!(refused.contains(needle), "{refused}");
    }
    // A user in a group that does not exist: refused, the old rules stay.
    fs::write(
        &s.users_file,
        good.replace("name = \"bob\"", "name = \"bob\"\ngroups = [\"ghost\"]"),
    )
    .unwrap();
    let refused = s.reload().expect_err("a missing group was applied");
    assert!(refused.contains("ghost"), "{refused}");
    s.login("bob", PASS).stor("still.txt", b"ok");
}

// ---------------------------------------------------------------------------------------------
// The same on object storage
// ---------------------------------------------------------------------------------------------

#[test]
fn rights_and_the_size_limit_on_s3() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    let bucket = "rights";
    let s = moto.fxpd(bucket);
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    c.expect("MKD incoming", 257);
    c.stor("pub.bin", b"public");
    cli_ok(
        &s,
        &[
            "user",
            "set",
            "alice",
            "--write",
            "false",
            "--allow",
            "/incoming=upload",
            "--deny",
            "/incoming=list,download",
            "--max-upload-bytes",
            "100000",
        ],
    );
    s.reload().unwrap();
    // The open session: a new object may go in, nothing else.
    let body = random_bytes(50_000);
    c.stor("/incoming/a.bin", &body);
    let key = "ftp/alice/incoming/a.bin";
    assert!(
        moto.keys(bucket).iter().any(|k| k == key),
        "{:?}",
        moto.keys(bucket)
    );
    let r = c.try_upload("STOR", "/incoming/a.bin", b"again");
    assert_eq!(r.first(), "550 Access is denied: no overwrite right at /.");
    let r = c.try_upload("RETR", "/incoming/a.bin", b"");
    assert_eq!(r.first(), "550 Access is denied: no download right at /incoming.");
    let r = c.try_upload("NLST", "/incoming", b"");
    assert_eq!(r.first(), "550 Access is denied: no list right at /incoming.");
    c.expect("DELE /incoming/a.bin", 550);
    assert_eq!(c.retr("/pub.bin"), b"public");
    // Over the limit: 552, no object and no multipart upload left.
    let r = c.try_upload("STOR", "/incoming/big.bin", &random_bytes(1_000_000));
    assert_eq!(r.code, 552, "{r}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let left_over =
        || !moto.uploads(bucket).is_empty() || moto.keys(bucket).iter().any(|k| k.ends_with("big.bin"));
    while left_over() {
        assert!(
            std::time::Instant::now() < deadline,
            "the oversized upload left something"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut keys = moto.keys(bucket);
    keys.sort();
    assert_eq!(
        keys,
        [
            "ftp/alice/incoming/",
            "ftp/alice/incoming/a.bin",
            "ftp/alice/pub.bin"
        ]
    );
}
