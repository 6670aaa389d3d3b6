//! Virtual folders through the real binary: a group "staff" with `/shared` mounted from a
//! directory outside the home, used with curl, lftp, Python ftplib and a raw client (hashes
//! checked on both sides); rights rules on the mount path (write for one group, read-only for
//! another); escapes from inside the folder; renames across its boundary and removal of the
//! mount point refused; uploads in a folder counted toward the account's quota, deletions there
//! freeing nothing; a folder whose source is gone refused, never the home's directory of its
//! name; folders reloaded for an open session (not under its running upload), an invalid folder
//! refusing the reload; an `[anonymous]` folder as a drop box outside the root; S3 prefix
//! folders (listed, confined, a read-only one, reloaded); `fxpd user show` and `fxpd user
//! explain`; folders mounted and unmounted with `fxpd user set` and `fxpd group add`.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const ACROSS: &str = "550 Cannot rename across a virtual folder's boundary (between the home and a folder, or between two folders); copy the file instead.";
const MOUNT_POINT: &str =
    "550 That name is a virtual folder's mount point: it cannot be removed, created or renamed.";

/// A server with `bob` (group staff: write in /shared) and `carol` (group viewers: the same
/// folder, read-only), both writable in their homes; `/shared` is `outside/shared`.
struct Fixture {
    s: Server,
    /// Holds `shared/` and `secret.txt` next to it (outside the folder).
    outside: tempfile::TempDir,
    /// The folder's source.
    shared: PathBuf,
    /// SHA-256 of `shared/doc.bin`.
    doc_sha: String,
}

fn groups_toml(shared: &Path) -> String {
    let shared = shared.display();
    format!(
        r#"
[[group]]
name = "staff"
folders = [{{ path = "/shared", source = "{shared}" }}]
rules = [{{ path = "/shared", allow = ["write"] }}]

[[group]]
name = "viewers"
folders = [{{ path = "/shared", source = "{shared}" }}]
rules = [{{ path = "/shared", deny = ["write"] }}]
"#
    )
}

fn fixture() -> Fixture {
    let outside = tempfile::tempdir().unwrap();
    let shared = outside.path().join("shared");
    fs::create_dir_all(&shared).unwrap();
    let doc_sha = write_random_file(&shared.join("doc.bin"), 250_000);
    write_file(&outside.path().join("secret.txt"), b"outside the folder");
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), shared.join("link")).unwrap();
    let s = Server::builder()
        .user("bob", PASS, "bob", true)
        .user("carol", PASS, "carol", true)
        .users_toml(&groups_toml(&shared))
        .start();
    write_file(&s.home("bob").join("top.txt"), b"top");
    // A real directory of the mount's name in the home: shadowed by the mount.
    write_file(&s.home("bob").join("shared/hidden.txt"), b"shadowed");
    fs::create_dir_all(s.home("carol")).unwrap();
    cli_ok(&s, &["user", "set", "bob", "--groups", "staff"]);
    cli_ok(&s, &["user", "set", "carol", "--groups", "viewers"]);
    s.reload().unwrap();
    Fixture {
        s,
        outside,
        shared,
        doc_sha,
    }
}

impl Fixture {
    /// Everything outside the folder's source: the secret next to it and the server's tree.
    fn outside_the_folder(&self) -> (Vec<u8>, std::collections::BTreeMap<String, String>) {
        (
            fs::read(self.outside.path().join("secret.txt")).unwrap(),
            tree_hashes(&self.s.root),
        )
    }
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

fn work_dir(s: &Server, name: &str) -> PathBuf {
    let d = s.dir.path().join(name);
    fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------------------------------------
// A raw client: listings, directories, rights, boundaries, escapes
// ---------------------------------------------------------------------------------------------

#[test]
fn a_group_folder_is_listed_entered_read_and_written() {
    let f = fixture();
    let mut c = f.s.login("bob", PASS);
    c.expect("TYPE I", 200);
    // The mount shows as a directory in /, shadowing the home's own `shared`.
    let nlst = c.listing("NLST /");
    let mut names: Vec<&str> = nlst.lines().collect();
    names.sort();
    assert_eq!(names, ["shared", "top.txt"], "{nlst}");
    let mlsd = c.listing("MLSD /");
    let line = mlsd
        .lines()
        .find(|l| l.ends_with(" shared"))
        .expect("shared listed");
    assert!(line.contains("type=dir;"), "{line}");
    // Its perm fact (RFC 3659 7.5.5) offers what bob may do in it, but not to remove or
    // rename the mount point itself (`d`, `f`), though his rights on /shared would allow it.
    let perm = |facts: &str| {
        let p = facts
            .split(';')
            .find_map(|f| f.strip_prefix("perm="))
            .unwrap_or_else(|| panic!("no perm fact: {facts}"))
            .to_owned();
        p
    };
    assert_eq!(perm(line), "elcmp", "{line}");
    let r = c.expect("MLST /shared", 250);
    assert_eq!(perm(&r.lines[1]), "elcmp", "{r}");
    assert_eq!(
        perm(
            c.listing("MLSD /shared")
                .lines()
                .find(|l| l.ends_with(" doc.bin"))
                .unwrap()
        ),
        "radfw"
    );
    let list = c.listing("LIST /");
    let line = list
        .lines()
        .find(|l| l.ends_with(" shared"))
        .expect("shared listed");
    assert!(line.starts_with('d'), "{line}");
    let inside = c.listing("NLST /shared");
    assert!(
        inside.contains("doc.bin") && !inside.contains("hidden.txt"),
        "{inside}"
    );

    // CWD in and out; PWD shows the virtual path.
    c.expect("CWD shared", 250);
    let r = c.expect("PWD", 257);
    assert_eq!(r.first(), "257 \"/shared\" is current directory.");
    assert_eq!(sha256_bytes(&c.retr("doc.bin")), f.doc_sha);
    let body = random_bytes(180_000);
    c.stor("up.bin", &body);
    assert_eq!(sha256_file(&f.shared.join("up.bin")), sha256_bytes(&body));
    let r = c.expect("HASH up.bin", 213);
    assert!(r.first().contains(&sha256_bytes(&body)), "{r}");
    c.expect("MKD sub", 257);
    assert!(f.shared.join("sub").is_dir());
    c.stor("/shared/sub/deep.bin", b"deep");
    assert_eq!(fs::read(f.shared.join("sub/deep.bin")).unwrap(), b"deep");
    c.expect("RNFR sub/deep.bin", 350);
    c.expect("RNTO /shared/moved.bin", 250);
    assert!(f.shared.join("moved.bin").exists() && !f.shared.join("sub/deep.bin").exists());
    c.expect("DELE moved.bin", 250);
    c.expect("RMD sub", 250);
    c.expect("CWD ..", 250);
    let r = c.expect("PWD", 257);
    assert_eq!(r.first(), "257 \"/\" is current directory.");
    // The home's own `shared` directory was never touched.
    assert_eq!(
        fs::read(f.s.home("bob").join("shared/hidden.txt")).unwrap(),
        b"shadowed"
    );
    assert!(!f.s.home("bob").join("shared/up.bin").exists());
}

#[test]
fn rules_on_the_mount_path_apply_per_group() {
    let f = fixture();
    let mut carol = f.s.login("carol", PASS);
    carol.expect("TYPE I", 200);
    assert!(carol.listing("NLST /").lines().any(|l| l == "shared"));
    assert_eq!(sha256_bytes(&carol.retr("/shared/doc.bin")), f.doc_sha);
    let r = carol.try_upload("STOR", "/shared/c.bin", b"no");
    assert_eq!(r.first(), "550 Access is denied: no upload right at /shared.");
    let r = carol.expect("DELE /shared/doc.bin", 550);
    assert_eq!(r.first(), "550 Access is denied: no delete right at /shared.");
    assert!(!f.shared.join("c.bin").exists());
    // Her own home stays writable.
    carol.stor("/mine.bin", b"mine");
    assert_eq!(fs::read(f.s.home("carol").join("mine.bin")).unwrap(), b"mine");
    // Bob, in the other group, writes there.
    let mut bob = f.s.login("bob", PASS);
    bob.stor("/shared/b.bin", b"bob");
    assert_eq!(fs::read(f.shared.join("b.bin")).unwrap(), b"bob");
    // `fxpd user explain` decides on folder paths like on any other.
    let out = cli_ok(&f.s, &["user", "explain", "carol", "/SHARED/x.bin", "upload"]);
    assert!(
        out.contains("refused: upload on /SHARED/x.bin for carol: ")
            && out.contains(&format!(
                "/SHARED/x.bin is in the folder /shared -> {} (group viewers)",
                f.shared.display()
            )),
        "{out}"
    );
    let out = cli_ok(&f.s, &["user", "explain", "carol", "/sharedx/x.bin", "upload"]);
    assert!(!out.contains("is in the folder"), "{out}");
    let o = cli(&f.s, &["user", "explain", "bob", "/shared/x.bin", "upload"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("group staff"), "{out}");
}

#[test]
fn renames_across_the_boundary_and_the_mount_point_itself_are_refused() {
    let f = fixture();
    let before = f.outside_the_folder();
    let shared_before = tree_hashes(&f.shared);
    let mut c = f.s.login("bob", PASS);
    c.expect("RNFR /top.txt", 350);
    let r = c.expect("RNTO /shared/top.txt", 550);
    assert_eq!(r.first(), ACROSS);
    c.expect("RNFR /shared/doc.bin", 350);
    let r = c.expect("RNTO /doc.bin", 550);
    assert_eq!(r.first(), ACROSS);
    c.expect("CWD /shared", 250);
    c.expect("RNFR doc.bin", 350);
    let r = c.expect("RNTO ../doc.bin", 550);
    assert_eq!(r.first(), ACROSS);
    for line in [
        "RMD /shared",
        "DELE /shared",
        "RNFR /shared",
        "RMD /SHARED/",
        "MKD /shared",
    ] {
        let r = c.expect(line, 550);
        assert_eq!(r.first(), MOUNT_POINT, "{line}");
    }
    c.expect("RNFR /top.txt", 350);
    let r = c.expect("RNTO /shared", 550);
    assert_eq!(r.first(), MOUNT_POINT);
    // An upload naming the mount point cannot replace it or write beside it.
    for verb in ["STOR", "APPE"] {
        for name in ["/shared", "/SHARED/"] {
            let r = c.try_upload(verb, name, b"over the mount");
            assert_eq!(r.first(), MOUNT_POINT, "{verb} {name}");
        }
    }
    assert!(c
        .listing("MLSD /")
        .lines()
        .any(|l| l.contains("type=dir;") && l.ends_with(" shared")));
    assert_eq!(f.outside_the_folder(), before);
    assert_eq!(tree_hashes(&f.shared), shared_before);
    assert!(f.shared.join("doc.bin").exists());
}

#[test]
fn no_spelling_leaves_the_folder() {
    let f = fixture();
    let before = f.outside_the_folder();
    let mut c = f.s.login("bob", PASS);
    c.expect("TYPE I", 200);
    c.expect("CWD /shared", 250);
    // `..` climbs to the virtual parent (the home), never to the source's parent.
    for name in [
        "../secret.txt",
        "../../secret.txt",
        "/shared/../secret.txt",
        "/shared/../../../secret.txt",
        "..\\secret.txt",
        "/../secret.txt",
    ] {
        let r = c.try_upload("RETR", name, b"");
        assert_eq!(r.code, 550, "RETR {name}: {r}");
    }
    let secret = f.outside.path().join("secret.txt");
    let absolute = secret.display().to_string();
    let r = c.try_upload("RETR", &absolute, b"");
    assert_eq!(r.code, 550, "RETR {absolute}: {r}");
    // The symlink in the folder points outside its source: not followed.
    #[cfg(unix)]
    {
        let r = c.try_upload("RETR", "link", b"");
        assert_eq!(r.code, 550, "{r}");
        let r = c.try_upload("STOR", "link", b"overwritten");
        assert_ne!(r.class(), 2, "{r}");
        c.expect("HASH link", 550);
    }
    // Writes with the same spellings land inside the home or nowhere.
    let r = c.try_upload("STOR", "..\\escape.bin", b"x");
    if r.class() == 2 {
        assert!(f.shared.join("..\\escape.bin").exists());
    }
    c.stor("../escape.bin", b"home");
    assert_eq!(fs::read(f.s.home("bob").join("escape.bin")).unwrap(), b"home");
    fs::remove_file(f.s.home("bob").join("escape.bin")).unwrap();
    assert_eq!(f.outside_the_folder(), before);
    assert!(!f.outside.path().join("escape.bin").exists());
}

#[test]
fn uploads_in_a_folder_count_toward_the_accounts_quota() {
    let f = fixture();
    cli_ok(&f.s, &["user", "set", "bob", "--quota-bytes", "100000"]);
    f.s.reload().unwrap();
    let recorded = || {
        let path = f.s.users_file.parent().unwrap().join("quota.json");
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        (
            v["bob"]["bytes"].as_u64().unwrap_or(0),
            v["bob"]["files"].as_u64().unwrap_or(0),
        )
    };
    let mut c = f.s.login("bob", PASS);
    c.expect("TYPE I", 200);
    c.stor("/shared/q.bin", &random_bytes(60_000));
    assert_eq!(recorded(), (60_000, 1));
    c.expect("ALLO 50000", 200);
    let r = c.try_upload("STOR", "/shared/q2.bin", b"x");
    assert_eq!(
        r.first(),
        "552 Quota exceeded: this account may hold at most 100000 bytes."
    );
    assert!(!f.shared.join("q2.bin").exists());
    // Nothing done in the folder gives quota back: its files may be other accounts'.
    // Carol's file, deleted by bob, frees nothing of his.
    write_file(&f.shared.join("carols.bin"), &random_bytes(30_000));
    c.expect("DELE /shared/carols.bin", 250);
    assert!(!f.shared.join("carols.bin").exists());
    assert_eq!(recorded(), (60_000, 1));
    // Nor does overwriting a larger file with a smaller one, or renaming onto one.
    write_file(&f.shared.join("big.bin"), &random_bytes(40_000));
    c.stor("/shared/big.bin", b"small");
    assert_eq!(fs::read(f.shared.join("big.bin")).unwrap(), b"small");
    assert_eq!(recorded(), (60_000, 1));
    c.expect("RNFR /shared/big.bin", 350);
    c.expect("RNTO /shared/q.bin", 250);
    assert_eq!(recorded(), (60_000, 1));
    // Bob's own file frees nothing either; the home's DELE still does.
    c.expect("DELE /shared/q.bin", 250);
    assert_eq!(recorded(), (60_000, 1));
    c.stor("/home.bin", &random_bytes(10_000));
    assert_eq!(recorded(), (70_000, 2));
    c.expect("DELE /home.bin", 250);
    assert_eq!(recorded(), (60_000, 1));
}

#[test]
fn a_reload_during_an_upload_leaves_its_end_in_the_folder_it_wrote_to() {
    let f = fixture();
    cli_ok(&f.s, &["user", "set", "bob", "--quota-bytes", "100000"]);
    f.s.reload().unwrap();
    let mut c = f.s.login("bob", PASS);
    c.expect("TYPE I", 200);
    // An upload into the folder, under the name of the home's own (shadowed) file.
    let mut data = c.start_passive("STOR /shared/hidden.txt");
    data.write_all(&random_bytes(50_000)).unwrap();
    // A reload unmounts /shared while it runs, and the session takes a command meanwhile.
    let text = fs::read_to_string(&f.s.users_file).unwrap();
    let staff = format!(
        "folders = [{{ path = \"/shared\", source = \"{}\" }}]",
        f.shared.display()
    );
    assert!(text.contains(&staff), "{text}");
    fs::write(&f.s.users_file, text.replace(&staff, "")).unwrap();
    f.s.reload().unwrap();
    c.expect("NOOP", 200);
    // The upload crosses the quota: what it wrote is removed from the folder, and the home's
    // file of the same path is not touched.
    let _ = data.write_all(&random_bytes(100_000));
    drop(data);
    let r = c.read_reply();
    assert_eq!(r.code, 552, "{r}");
    assert!(!f.shared.join("hidden.txt").exists());
    assert_eq!(
        fs::read(f.s.home("bob").join("shared/hidden.txt")).unwrap(),
        b"shadowed"
    );
    // The next command mounts the folders in force: /shared is the home's directory now.
    assert_eq!(c.retr("/shared/hidden.txt"), b"shadowed");
}

#[test]
fn a_folder_whose_source_is_gone_is_unavailable_not_the_homes_directory() {
    let f = fixture();
    let gone = f.outside.path().join("gone");
    fs::rename(&f.shared, &gone).unwrap();
    let mut c = f.s.login("bob", PASS);
    // CWD says only that it cannot enter; the rest name the reason.
    c.expect("CWD /shared", 550);
    for line in [
        "SIZE /shared/hidden.txt",
        "DELE /shared/hidden.txt",
        "MKD /shared/d",
    ] {
        let r = c.expect(line, 550);
        assert_eq!(r.first(), "550 This virtual folder is unavailable.", "{line}");
    }
    for verb in ["RETR", "STOR"] {
        let r = c.try_upload(verb, "/shared/hidden.txt", b"over");
        assert_eq!(r.first(), "550 This virtual folder is unavailable.", "{verb}");
    }
    assert_eq!(
        fs::read(f.s.home("bob").join("shared/hidden.txt")).unwrap(),
        b"shadowed"
    );
    fs::rename(&gone, &f.shared).unwrap();
}

#[test]
fn an_anonymous_folder_is_a_drop_box_outside_the_root_and_only_anonymous_sees_it() {
    let outside = tempfile::tempdir().unwrap();
    let drop = outside.path().join("drop");
    fs::create_dir_all(&drop).unwrap();
    write_file(&drop.join("earlier.bin"), b"an earlier upload");
    let s = Server::builder()
        .config("[anonymous]\nenabled = true\nwrite = false")
        .user("alice", PASS, "alice", true)
        .users_toml(&format!(
            "[anonymous]\nfolders = [{{ path = \"/drop\", source = \"{}\" }}]\n\
             rules = [{{ path = \"/drop\", allow = [\"upload\"], deny = [\"list\", \"download\"] }}]\n",
            drop.display()
        ))
        .start();
    fs::create_dir_all(s.home("alice")).unwrap();
    let mut anon = s.login("anonymous", "guest@example.com");
    anon.expect("TYPE I", 200);
    assert!(anon.listing("NLST /").lines().any(|l| l == "drop"));
    let body = random_bytes(70_000);
    anon.stor("/drop/new.bin", &body);
    assert_eq!(sha256_file(&drop.join("new.bin")), sha256_bytes(&body));
    let r = anon.expect("NLST /drop", 550);
    assert_eq!(r.first(), "550 Access is denied: no list right at /drop.");
    let r = anon.try_upload("RETR", "/drop/earlier.bin", b"");
    assert_eq!(r.first(), "550 Access is denied: no download right at /drop.");
    let r = anon.try_upload("STOR", "/drop/earlier.bin", b"over");
    // No rule at /drop names overwrite: the read-only default at / decides.
    assert_eq!(r.first(), "550 Access is denied: no overwrite right at /.");
    assert_eq!(fs::read(drop.join("earlier.bin")).unwrap(), b"an earlier upload");
    // Read-only elsewhere.
    let r = anon.try_upload("STOR", "/elsewhere.bin", b"no");
    assert_eq!(r.code, 550, "{r}");
    // The folder is anonymous's: alice has no /drop.
    let mut alice = s.login("alice", PASS);
    assert!(!alice.listing("NLST /").lines().any(|l| l == "drop"));
    alice.expect("CWD /drop", 550);
    alice.stor("/drop.bin", b"alice");
    assert!(!drop.join("drop.bin").exists());
}

// ---------------------------------------------------------------------------------------------
// Real clients: curl, lftp, Python ftplib
// ---------------------------------------------------------------------------------------------

fn url(s: &Server, path: &str) -> String {
    format!("ftp://{}:{}/{}", s.addr().ip(), s.port(), path)
}

fn curl(work: &Path) -> Command {
    let mut c = client_command("curl", &work.join("home"));
    c.args(["-sS", "-v", "--connect-timeout", "10", "--max-time", "100", "-u"])
        .arg(format!("bob:{PASS}"));
    c
}

#[test]
fn a_group_folder_with_curl() {
    if !require_client("curl") {
        return;
    }
    let f = fixture();
    let work = work_dir(&f.s, "curl");
    let o = run_with_timeout(curl(&work).arg(url(&f.s, "")), 120);
    assert_success(&o, "curl LIST /");
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = list
        .lines()
        .find(|l| l.ends_with(" shared"))
        .expect("shared listed");
    assert!(line.starts_with('d'), "{list}");
    let got = work.join("doc.bin");
    let o = run_with_timeout(
        curl(&work).arg("-o").arg(&got).arg(url(&f.s, "shared/doc.bin")),
        120,
    );
    assert_success(&o, "curl download from /shared");
    assert_eq!(sha256_file(&got), f.doc_sha);
    let src = work.join("up.src");
    let sha = write_random_file(&src, 300_001);
    let o = run_with_timeout(
        curl(&work).arg("-T").arg(&src).arg(url(&f.s, "shared/curl.bin")),
        120,
    );
    assert_success(&o, "curl upload into /shared");
    assert_eq!(sha256_file(&f.shared.join("curl.bin")), sha);
}

fn lftp(s: &Server, work: &Path, tag: &str, commands: &str) -> (Output, String) {
    let log = work.join(format!("lftp-{tag}.log"));
    let script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         set net:reconnect-interval-base 1; set ftp:passive-mode on; \
         set ftp:use-site-utime no; set ftp:use-site-utime2 no; debug -o {} 5; \
         open -u bob,{PASS} -p {} {}; {commands}",
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
fn a_group_folder_with_lftp() {
    if !require_client("lftp") {
        return;
    }
    let f = fixture();
    let work = work_dir(&f.s, "lftp");
    let src = work.join("lftp.src");
    let sha = write_random_file(&src, 123_457);
    let got = work.join("got.bin");
    let (o, log) = lftp(
        &f.s,
        &work,
        "folder",
        &format!(
            "cls -1 /; cd /shared; pwd; get doc.bin -o {}; put {} -o lftp.bin; cd ..; pwd",
            got.display(),
            src.display()
        ),
    );
    assert!(o.status.success(), "lftp: {}\n{log}", describe_output(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    // `cls -1 /` marks directories with a slash; `pwd` prints the URL of the directory.
    assert!(lines.contains(&"/shared/"), "{out}");
    let pwds: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ftp://")).collect();
    assert!(
        pwds.len() == 2 && pwds[0].ends_with("/shared") && pwds[1].ends_with(&format!("{}/", f.s.port())),
        "{out}"
    );
    assert_eq!(sha256_file(&got), f.doc_sha);
    assert_eq!(sha256_file(&f.shared.join("lftp.bin")), sha);
    let (o, log) = lftp(&f.s, &work, "mv", "mv /top.txt /shared/top.txt");
    assert!(!o.status.success(), "lftp mv across succeeded:\n{log}");
    assert!(log.contains(ACROSS), "{log}");
    assert!(f.s.home("bob").join("top.txt").exists());
}

const PY_FOLDER: &str = r#"
import ftplib, hashlib, io, json, sys
cfg = json.loads(sys.argv[1])
def check(cond, msg):
    if not cond:
        print("CHECK FAILED: " + msg, file=sys.stderr)
        sys.exit(1)
ftp = ftplib.FTP(timeout=30)
ftp.connect(cfg["host"], int(cfg["port"]))
ftp.login("bob", cfg["pass"])
check("shared" in ftp.nlst("/"), "shared listed in /")
ftp.cwd("/shared")
check(ftp.pwd() == "/shared", "pwd in the folder: " + ftp.pwd())
buf = io.BytesIO()
ftp.retrbinary("RETR doc.bin", buf.write)
check(hashlib.sha256(buf.getvalue()).hexdigest() == cfg["doc_sha"], "download from /shared")
data = bytes(range(256)) * 700
ftp.storbinary("STOR py.bin", io.BytesIO(data))
try:
    ftp.rmd("/shared")
    check(False, "RMD of the mount point succeeded")
except ftplib.error_perm as e:
    check(str(e) == cfg["mount_point"], "RMD /shared: %s" % e)
ftp.cwd("..")
check(ftp.pwd() == "/", "pwd after cd ..: " + ftp.pwd())
ftp.quit()
print("PYTHON-OK " + hashlib.sha256(data).hexdigest())
"#;

#[test]
fn a_group_folder_with_python_ftplib() {
    if !require_client("python3") {
        return;
    }
    let f = fixture();
    let work = work_dir(&f.s, "python");
    let script = work.join("folder.py");
    fs::write(&script, PY_FOLDER).unwrap();
    let cfg = serde_json::json!({
        "host": f.s.addr().ip().to_string(),
        "port": f.s.port().to_string(),
        "pass": PASS,
        "doc_sha": f.doc_sha,
        "mount_point": MOUNT_POINT,
    })
    .to_string();
    let o = run_with_timeout(
        client_command("python3", &work.join("home"))
            .arg(&script)
            .arg(&cfg),
        180,
    );
    assert_success(&o, "python folder");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let uploaded = stdout.trim().strip_prefix("PYTHON-OK ").expect("PYTHON-OK");
    assert_eq!(sha256_file(&f.shared.join("py.bin")), uploaded);
}

// ---------------------------------------------------------------------------------------------
// Reload, administration
// ---------------------------------------------------------------------------------------------

#[test]
fn folders_reload_for_an_open_session_and_a_bad_folder_refuses_the_reload() {
    let f = fixture();
    let archive = f.outside.path().join("archive");
    write_file(&archive.join("old.txt"), b"archived");
    let mut c = f.s.login("bob", PASS);
    c.expect("TYPE I", 200);
    c.expect("CWD /archive", 550);
    let text = fs::read_to_string(&f.s.users_file).unwrap();
    let staff = format!(
        "folders = [{{ path = \"/shared\", source = \"{}\" }}]",
        f.shared.display()
    );
    let with_archive = format!(
        "folders = [{{ path = \"/shared\", source = \"{}\" }}, {{ path = \"/archive\", source = \"{}\" }}]",
        f.shared.display(),
        archive.display()
    );
    assert!(text.contains(&staff), "{text}");
    fs::write(&f.s.users_file, text.replacen(&staff, &with_archive, 1)).unwrap();
    f.s.reload().unwrap();
    // The open session sees the new folder at its next command.
    c.expect("CWD /archive", 250);
    assert_eq!(c.retr("old.txt"), b"archived");
    assert!(c.listing("NLST /").lines().any(|l| l == "archive"));

    // An invalid folder refuses the reload; the session keeps the folders it had.
    let good = fs::read_to_string(&f.s.users_file).unwrap();
    let bad = good.replacen("path = \"/archive\"", "path = \"/\"", 1);
    fs::write(&f.s.users_file, &bad).unwrap();
    let e = f.s.reload().unwrap_err();
    assert!(e.contains("cannot be mounted at") && e.contains("line "), "{e}");
    // A source that does not exist refuses it too (fail closed).
    let missing = good.replacen(
        &archive.display().to_string(),
        &f.outside.path().join("nowhere").display().to_string(),
        1,
    );
    fs::write(&f.s.users_file, &missing).unwrap();
    let e = f.s.reload().unwrap_err();
    assert!(e.contains("not an existing directory"), "{e}");
    assert_eq!(c.retr("/archive/old.txt"), b"archived");

    // Removing the folder unmounts it for the open session.
    fs::write(&f.s.users_file, text).unwrap();
    f.s.reload().unwrap();
    c.expect("CWD /", 250);
    c.expect("CWD /archive", 550);
    assert!(!c.listing("NLST /").lines().any(|l| l == "archive"));
}

#[test]
fn user_show_lists_the_effective_folders_and_their_source() {
    let f = fixture();
    let text = fs::read_to_string(&f.s.users_file).unwrap();
    // Bob's own folder at the group's path overrides it.
    let own = f.outside.path().join("own");
    fs::create_dir_all(&own).unwrap();
    cli_ok(&f.s, &["user", "show", "bob"]);
    let text = text.replacen(
        "name = \"bob\"",
        &format!(
            "name = \"bob\"\nfolders = [{{ path = \"/mine\", source = \"{}\" }}]",
            own.display()
        ),
        1,
    );
    fs::write(&f.s.users_file, text).unwrap();
    let out = cli_ok(&f.s, &["user", "show", "bob"]);
    assert!(
        out.contains(&format!("  /mine -> {} (user bob)", own.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("  /shared -> {} (group staff)", f.shared.display())),
        "{out}"
    );
    f.s.reload().unwrap();
    let mut c = f.s.login("bob", PASS);
    c.stor("/mine/m.bin", b"mine");
    assert_eq!(fs::read(own.join("m.bin")).unwrap(), b"mine");
}

/// `fxpd user set --folder` and `fxpd group add --folder` mount folders without editing the
/// file by hand (the server takes them at its next reload); `--unmount` and `--clear folders`
/// take them away. A directory that does not exist, a bad mount path or an unmount of nothing
/// is refused with a message, and the users file is left as it was.
#[test]
fn folders_are_mounted_and_unmounted_from_the_command_line() {
    let f = fixture();
    let drop = f.outside.path().join("drop");
    fs::create_dir_all(&drop).unwrap();
    let drop_arg = format!("/drop={}", drop.display());
    cli_ok(
        &f.s,
        &[
            "user",
            "set",
            "bob",
            "--folder",
            &drop_arg,
            "--allow",
            "/drop=write",
        ],
    );
    let out = cli_ok(&f.s, &["user", "show", "bob"]);
    assert!(
        out.contains(&format!("  /drop -> {} (user bob)", drop.display())),
        "{out}"
    );
    f.s.reload().unwrap();
    let mut c = f.s.login("bob", PASS);
    c.stor("/drop/d.bin", b"dropped");
    assert_eq!(fs::read(drop.join("d.bin")).unwrap(), b"dropped");

    // Refusals change nothing.
    let before = fs::read_to_string(&f.s.users_file).unwrap();
    let missing = format!("/gone={}", f.outside.path().join("missing").display());
    for (args, says) in [
        (vec!["--folder", missing.as_str()], "is not an existing directory"),
        (vec!["--folder", "/=/tmp"], "cannot be mounted at \"/\""),
        (vec!["--folder", "no-slash"], "expected PATH=VALUE"),
        (vec!["--folder-prefix", "/a=../up"], "'..'"),
        (vec!["--unmount", "/nothing"], "no folder is mounted there"),
    ] {
        let mut all = vec!["user", "set", "bob"];
        all.extend(args.iter().copied());
        let o = cli(&f.s, &all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{args:?}: {err}");
        assert_eq!(
            fs::read_to_string(&f.s.users_file).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }

    // A group's folder reaches its members; a relative directory is below the users file's.
    let rel = f.s.users_file.parent().unwrap().join("team");
    fs::create_dir_all(&rel).unwrap();
    write_file(&rel.join("t.txt"), b"team");
    cli_ok(&f.s, &["group", "add", "team", "--folder", "/team=team"]);
    cli_ok(&f.s, &["user", "set", "carol", "--groups", "viewers,team"]);
    f.s.reload().unwrap();
    let mut carol = f.s.login("carol", PASS);
    assert_eq!(carol.retr("/team/t.txt"), b"team");

    // Unmounted: the path is the home's again (nothing there).
    cli_ok(&f.s, &["user", "set", "bob", "--unmount", "/DROP"]);
    f.s.reload().unwrap();
    let mut c = f.s.login("bob", PASS);
    assert_eq!(c.cmd("SIZE /drop/d.bin").code, 550);
    assert!(drop.join("d.bin").exists(), "unmounting touched the directory");
    cli_ok(&f.s, &["user", "set", "bob", "--folder", &drop_arg]);
    cli_ok(&f.s, &["user", "set", "bob", "--clear", "folders"]);
    let text = fs::read_to_string(&f.s.users_file).unwrap();
    assert!(!text.contains(&drop.display().to_string()), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Object storage: a prefix folder
// ---------------------------------------------------------------------------------------------

/// Prefix folders on S3: confined like homes, listed as directories, each with its own rights
/// (`/published` read-only), and changed by a reload for an open session (a `source` folder,
/// which object storage cannot mount, refuses the reload).
#[test]
fn a_prefix_folder_on_s3() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    let bucket = "folders";
    moto.bucket(bucket);
    let published = random_bytes(50_000);
    moto.s3(&["put", bucket, "ftp/published/p.bin"], Some(&published));
    let folders = "folders = [{ path = \"/archive\", prefix = \"archive/\" }, { path = \"/published\", prefix = \"published/\" }]";
    let s = Server::builder()
        .config(&moto.storage_config(bucket))
        .user("alice", PASS, "alice", true)
        .users_toml(&format!(
            "[everyone]\n{folders}\nrules = [{{ path = \"/published\", deny = [\"write\"] }}]\n"
        ))
        .start();
    let mut c = s.login("alice", PASS);
    c.expect("TYPE I", 200);
    c.stor("/home.bin", b"in the home");
    let body = random_bytes(120_000);
    c.stor("/archive/a.bin", &body);
    let all = ["ftp/alice/home.bin", "ftp/archive/a.bin", "ftp/published/p.bin"];
    let mut keys = moto.keys(bucket);
    keys.sort();
    assert_eq!(keys, all);
    let mlsd = c.listing("MLSD /");
    for name in ["archive", "published"] {
        let line = mlsd
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} not listed: {mlsd}"));
        assert!(line.to_lowercase().contains("type=dir;"), "{line}");
    }
    c.expect("CWD /archive", 250);
    assert_eq!(sha256_bytes(&c.retr("a.bin")), sha256_bytes(&body));
    c.expect("RNFR a.bin", 350);
    let r = c.expect("RNTO /a.bin", 550);
    assert_eq!(r.first(), ACROSS);
    c.expect("RNFR a.bin", 350);
    // Into the read-only folder: its rights refuse before the boundary does.
    let r = c.expect("RNTO /published/a.bin", 550);
    assert_eq!(r.first(), "550 Access is denied: no rename right at /published.");
    let r = c.expect("RMD /archive", 550);
    assert_eq!(r.first(), MOUNT_POINT);
    let r = c.try_upload("STOR", "/archive", b"over the mount");
    assert_eq!(r.first(), MOUNT_POINT);
    // `..` from the folder is the home, never the bucket's other keys.
    let r = c.try_upload("RETR", "../../alice/home.bin", b"");
    assert_eq!(r.code, 550, "{r}");
    assert_eq!(c.retr("../home.bin"), b"in the home");

    // The read-only folder: read, but no upload or delete.
    assert_eq!(
        sha256_bytes(&c.retr("/published/p.bin")),
        sha256_bytes(&published)
    );
    let r = c.try_upload("STOR", "/published/new.bin", b"no");
    assert_eq!(r.first(), "550 Access is denied: no upload right at /published.");
    let r = c.expect("DELE /published/p.bin", 550);
    assert_eq!(r.first(), "550 Access is denied: no delete right at /published.");
    let mut keys = moto.keys(bucket);
    keys.sort();
    assert_eq!(keys, all);

    // A reload adds a folder for the open session; a directory source refuses the reload.
    c.expect("CWD /more", 550);
    let text = fs::read_to_string(&s.users_file).unwrap();
    assert!(text.contains(folders), "{text}");
    let more = text.replacen(
        "prefix = \"published/\" }]",
        "prefix = \"published/\" }, { path = \"/more\", prefix = \"more/\" }]",
        1,
    );
    fs::write(&s.users_file, &more).unwrap();
    s.reload().unwrap();
    c.expect("CWD /more", 250);
    c.stor("m.bin", b"more");
    let dir = s.dir.path().join("a-directory");
    fs::create_dir_all(&dir).unwrap();
    let bad = more.replacen(
        "prefix = \"more/\"",
        &format!("source = \"{}\"", dir.display()),
        1,
    );
    fs::write(&s.users_file, bad).unwrap();
    let e = s.reload().unwrap_err();
    assert!(
        e.contains("folder /more") && e.contains("a folder is a prefix, not a source directory"),
        "{e}"
    );
    c.expect("CWD /more", 250);
    let mut keys = moto.keys(bucket);
    keys.sort();
    assert_eq!(
        keys,
        [
            "ftp/alice/home.bin",
            "ftp/archive/a.bin",
            "ftp/more/m.bin",
            "ftp/published/p.bin"
        ]
    );
}
