//! Path confinement: no command that names or acts on a path reaches outside the user's home,
//! whatever the spelling, on the file system and on S3.
//!
//! Table-driven: every command of [`COMMANDS`] runs against every escape spelling (`..` in its
//! forms, absolute paths outside, `//`, backslashes, symlinks to a file, to a directory and to
//! nothing outside, a directory swapped for a symlink during the session, another user's home).
//! Each (spelling, command) pair has its exact expected replies and its exact effect inside
//! the home, written in a small notation (see [`Expect`]); after every pair the test checks:
//!
//! - everything outside alice's home is as it was: on the file system every file, directory and
//!   symlink of the server's temporary directory except alice's home (a sentinel tree next to
//!   the root, bob's home, the configuration), compared by type, mode, size, SHA-256 and mtime,
//!   and `/etc` (no probe file appeared, `/etc/passwd` unchanged); on S3 every key outside
//!   `ftp/alice/` with its SHA-256;
//! - no reply and no data connection carried a byte from outside (every file outside holds
//!   [`MARKER`]; one outside name, [`OUTSIDE_ONLY`], is in no symlink target; `/etc/passwd`'s
//!   first field is not seen);
//! - what changed inside the home is exactly the expected effect, and an uploaded file holds
//!   exactly the bytes sent.
//!
//! A mismatch is collected, not fatal at once, so one run lists every pair that differs, with
//! the table row that was observed.

mod common;
#[path = "common/moto.rs"]
mod moto;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// In every file outside alice's home.
const MARKER: &str = "OUTSIDE-THE-HOME-5f0c2e";
/// A file name that exists only outside the home and in no symlink target: a listing that
/// shows it listed outside.
const OUTSIDE_ONLY: &str = "only-outside-7b1d.txt";
/// The start of `/etc/passwd`: a reply or data connection that shows it read the system file.
const PASSWD: &str = "root:x:0:0";

/// Every command that names a path or acts in the working directory (the X-forms are parsed
/// into the same commands, and are here so that stays true). `SITE` takes no path (only
/// `SITE HELP` exists).
const COMMANDS: &[&str] = &[
    "STOR", "APPE", "STOU", "RETR", "RNFR", "RNTO", "MKD", "XMKD", "RMD", "XRMD", "DELE", "CWD", "XCWD",
    "CDUP", "XCUP", "LIST", "NLST", "MLSD", "MLST", "STAT", "SIZE", "MDTM", "HASH",
];

/// Commands that create, change or remove: a spelling that names a real system file uses a
/// probe path that does not exist for these, so a broken server cannot damage the machine.
const WRITES: &[&str] = &[
    "STOR", "APPE", "STOU", "RNFR", "RNTO", "MKD", "XMKD", "RMD", "XRMD", "DELE",
];

/// One way of naming something outside the home.
struct Spelling {
    /// What it tries, for messages.
    label: &'static str,
    /// The argument for every command.
    arg: String,
    /// The argument for the commands in [`WRITES`], when `arg` names a real system file.
    write_arg: Option<String>,
    /// CWD into `swap` (a real directory), then the test replaces `swap` with a symlink to the
    /// outside tree, then the command runs with `arg` relative to it.
    swap: bool,
    /// The expected outcome of every command (see [`Expect`]).
    expect: String,
}

impl Spelling {
    fn new(label: &'static str, arg: impl Into<String>, expect: impl Into<String>) -> Spelling {
        Spelling {
            label,
            arg: arg.into(),
            write_arg: None,
            swap: false,
            expect: expect.into(),
        }
    }

    fn writes(mut self, arg: impl Into<String>) -> Spelling {
        self.write_arg = Some(arg.into());
        self
    }

    fn swapped(mut self) -> Spelling {
        self.swap = true;
        self
    }

    fn arg_for(&self, command: &str) -> &str {
        match &self.write_arg {
            Some(arg) if WRITES.contains(&command) => arg,
            _ => &self.arg,
        }
    }
}

/// The expected outcome of each command for one spelling, as whitespace-separated entries
/// `COMMANDS=REPLIES[:EFFECT]`:
///
/// - `COMMANDS`: command names joined by `|`, or `*` for every command not named elsewhere;
/// - `REPLIES`: the reply codes the pair gets, in order, joined by `,` (a transfer's 150 and
///   final reply are two codes; STOU and CDUP first get `CWD <arg>`; RNFR <arg> is followed by
///   `RNTO /renamed.txt` when it succeeds; RNTO <arg> follows `RNFR /own.txt`); after CWD, XCWD,
///   CDUP and XCUP, `pwd=PATH` is where PWD says the session is;
/// - `EFFECT`: what changed in the home, joined by `,`: `+name` appeared, `-name` went away,
///   `~name` changed (a directory is `name/`; STOU's random name is `fxpd-*`). None: nothing
///   changed.
///
/// A later entry for a command replaces an earlier one, so a row can start from a common case
/// ([`NOTHING`], [`new_name`], [`home`], [`SWAPPED`]) and add what differs.
struct Expect(BTreeMap<String, String>);

/// A path that names nothing in the home, not even its parent: every command is refused, CWD
/// stays where it was, and STOU, after its refused CWD, stores in the home's top.
const NOTHING: &str = "*=550 CWD|XCWD=550,pwd=/ CDUP|XCUP=550,250,pwd=/ STOU=550,150,226:+fxpd-*";

/// A name that does not exist yet, in the home's top: STOR (and APPE, where files can be
/// appended to), MKD and RNTO create it there; nothing else finds it.
fn new_name(name: &str, appe: bool) -> String {
    let upload = if appe { "STOR|APPE" } else { "STOR" };
    format!("{NOTHING} {upload}=150,226:+{name} MKD|XMKD=257:+{name}/ RNTO=250:+{name},-own.txt")
}

/// The home itself (`..` above the top): listed, entered, never removed or renamed.
fn home(mdtm: bool) -> String {
    let stat = if mdtm { "STAT|MDTM" } else { "STAT" };
    format!(
        "*=550 CWD|XCWD=250,pwd=/ CDUP|XCUP=250,250,pwd=/ STOU=250,150,226:+fxpd-* \
         LIST|NLST|MLSD=150,226 {stat}=213 MLST=250 RNFR=350,550"
    )
}

/// After CWD into `swap` and the swap to a symlink: nothing resolves through it; CWD stays,
/// STOU in it is refused.
const SWAPPED: &str = "*=550 CWD|XCWD=550,pwd=/swap CDUP|XCUP=550,250,pwd=/ STOU=550,550";

impl Expect {
    fn parse(text: &str) -> Expect {
        let mut map = BTreeMap::new();
        for entry in text.split_whitespace() {
            let (commands, outcome) = entry
                .split_once('=')
                .unwrap_or_else(|| panic!("test bug: expectation {entry:?} has no `=`"));
            for command in commands.split('|') {
                assert!(
                    command == "*" || COMMANDS.contains(&command),
                    "test bug: unknown command {command:?} in {text:?}"
                );
                map.insert(command.to_owned(), outcome.to_owned());
            }
        }
        Expect(map)
    }

    fn of(&self, command: &str) -> &str {
        self.0
            .get(command)
            .or_else(|| self.0.get("*"))
            .unwrap_or_else(|| panic!("test bug: no expectation for {command} and no `*`"))
    }
}

/// The observed row for a spelling in [`Expect`]'s notation (the most common outcome as `*`),
/// printed with mismatches so a reader sees the whole row at once.
fn row(observed: &[(&str, String)]) -> String {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, o) in observed {
        *count.entry(o).or_default() += 1;
    }
    let common = count
        .iter()
        .max_by_key(|(o, n)| (**n, std::cmp::Reverse(**o)))
        .map(|(o, _)| *o)
        .unwrap_or_default();
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (command, o) in observed {
        if o != common {
            groups.entry(o).or_default().push(command);
        }
    }
    let mut out = vec![format!("*={common}")];
    for (o, commands) in groups {
        out.push(format!("{}={o}", commands.join("|")));
    }
    out.join(" ")
}

/// What one pair did on the wire.
#[derive(Default)]
struct Observed {
    outcome: Vec<String>,
    /// Every reply line and every byte of every data connection.
    seen: Vec<u8>,
}

impl Observed {
    fn reply(&mut self, r: Reply) -> u16 {
        self.outcome.push(r.code.to_string());
        self.seen.extend_from_slice(r.text().as_bytes());
        self.seen.push(b'\n');
        r.code
    }

    fn pwd(&mut self, c: &mut Ctrl) {
        let r = c.expect("PWD", 257);
        let quoted = r.first().split('"').nth(1).unwrap_or_default().to_owned();
        self.outcome.push(format!("pwd={quoted}"));
    }

    /// PASV, the command, and the data connection if it opened: uploads send `upload`,
    /// downloads and listings are read to the end.
    fn transfer(&mut self, c: &mut Ctrl, line: &str, upload: Option<&[u8]>) {
        let mut data = c.pasv_connect();
        if self.reply(c.cmd(line)) / 100 != 1 {
            return;
        }
        match upload {
            Some(bytes) => {
                data.write_all(bytes).unwrap();
                drop(data);
            }
            None => {
                let bytes = read_to_end_deadline(&mut data, Duration::from_secs(30));
                self.seen.extend_from_slice(&bytes);
            }
        }
        self.reply(c.read_reply());
    }

    fn outcome(&self) -> String {
        self.outcome.join(",")
    }
}

/// Run `command` with `arg` on a logged-in session whose working directory is set.
fn run(c: &mut Ctrl, command: &str, arg: &str, payload: &[u8]) -> Observed {
    let mut o = Observed::default();
    match command {
        "STOR" | "APPE" => o.transfer(c, &format!("{command} {arg}"), Some(payload)),
        "RETR" | "LIST" | "NLST" | "MLSD" => o.transfer(c, &format!("{command} {arg}"), None),
        "STOU" => {
            o.reply(c.cmd(&format!("CWD {arg}")));
            o.transfer(c, "STOU", Some(payload));
        }
        "CDUP" | "XCUP" => {
            o.reply(c.cmd(&format!("CWD {arg}")));
            o.reply(c.cmd(command));
            o.pwd(c);
        }
        "CWD" | "XCWD" => {
            o.reply(c.cmd(&format!("{command} {arg}")));
            o.pwd(c);
        }
        "RNFR" => {
            if o.reply(c.cmd(&format!("RNFR {arg}"))) == 350 {
                o.reply(c.cmd("RNTO /renamed.txt"));
            }
        }
        "RNTO" => {
            c.expect("RNFR /own.txt", 350);
            o.reply(c.cmd(&format!("RNTO {arg}")));
        }
        _ => {
            o.reply(c.cmd(&format!("{command} {arg}")));
        }
    }
    o
}

/// What a home looks like: name (directories end in `/`) to what it is.
type Tree = BTreeMap<String, String>;

/// The effect notation of [`Expect`] for the change from `before` to `after`.
fn effect(before: &Tree, after: &Tree) -> String {
    let stou = |name: &str| -> String {
        // STOU's names are `fxpd-` and 16 hex digits: one name in the notation.
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.len() == 21 && base.starts_with("fxpd-") && base[5..].bytes().all(|b| b.is_ascii_hexdigit()) {
            format!("{}fxpd-*", &name[..name.len() - base.len()])
        } else {
            name.to_owned()
        }
    };
    let mut out = Vec::new();
    for (name, what) in after {
        match before.get(name) {
            None => out.push(format!("+{}", stou(name))),
            Some(old) if old != what => out.push(format!("~{name}")),
            Some(_) => {}
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        out.push(format!("-{name}"));
    }
    out.sort();
    out.join(",")
}

/// What changed between two trees, one line per entry, for messages.
fn tree_diff(was: &Tree, now: &Tree) -> String {
    let mut lines = Vec::new();
    for (name, old) in was {
        match now.get(name) {
            None => lines.push(format!("  gone {name}: was {old}")),
            Some(new) if new != old => {
                lines.push(format!("  changed {name}: was {old}\n          now {new}"))
            }
            Some(_) => {}
        }
    }
    for (name, new) in now.iter().filter(|(n, _)| !was.contains_key(*n)) {
        lines.push(format!("  new {name}: {new}"));
    }
    lines.join("\n")
}

/// Where a pair's outcome differs from the table, or something outside changed.
struct Failures(Vec<String>);

impl Failures {
    fn finish(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{} {what} pair(s) failed:\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// The checks shared by both back-ends: replies as expected, nothing from outside seen, the
/// effect in the home as expected, an upload stored whole.
fn check_pair(
    failures: &mut Failures,
    spelling: &Spelling,
    command: &str,
    observed: &Observed,
    home_before: &Tree,
    home_after: &Tree,
    payload: &[u8],
) -> String {
    let payload_sha = sha256_bytes(payload);
    let arg = spelling.arg_for(command);
    let got = observed.outcome();
    let change = effect(home_before, home_after);
    let full = if change.is_empty() {
        got.clone()
    } else {
        format!("{got}:{change}")
    };
    let want = Expect::parse(&spelling.expect).of(command).to_owned();
    let pair = format!("[{}] {command} {arg:?}", spelling.label);
    if full != want {
        failures.0.push(format!("{pair}: expected {want}, got {full}"));
    }
    let seen = String::from_utf8_lossy(&observed.seen);
    // (A name the client typed may come back in a reply: only what it did not type counts.)
    for secret in [MARKER, OUTSIDE_ONLY, PASSWD] {
        if seen.contains(secret) && !arg.contains(secret) {
            failures.0.push(format!(
                "{pair}: the client saw {secret:?} from outside the home:\n{seen}"
            ));
        }
    }
    // Whatever an upload created or changed in the home holds exactly the bytes sent.
    if matches!(command, "STOR" | "APPE" | "STOU") {
        for (name, what) in home_after {
            let changed = home_before.get(name) != Some(what);
            if changed && !name.ends_with('/') && what != &format!("file {payload_sha}") {
                failures.0.push(format!(
                    "{pair}: {name} in the home is {what}, not the {} bytes sent",
                    payload.len()
                ));
            }
        }
    }
    full
}

// ---------------------------------------------------------------------------------------------
// The file system
// ---------------------------------------------------------------------------------------------

/// A tree with nothing followed: per entry its type, and for files the SHA-256; with `strict`
/// also mode, size, owner and mtime (what an outside tree must keep), and directories too.
fn fs_tree(dir: &Path, skip: &[&Path], strict: bool) -> Tree {
    fn walk(base: &Path, dir: &Path, skip: &[&Path], strict: bool, out: &mut Tree) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if skip.contains(&path.as_path()) {
                continue;
            }
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let stamp = if strict {
                format!(
                    " mode={:o} uid={} mtime={}.{}",
                    meta.mode(),
                    meta.uid(),
                    meta.mtime(),
                    meta.mtime_nsec()
                )
            } else {
                String::new()
            };
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, format!("symlink {}{stamp}", target.display()));
            } else if meta.is_dir() {
                out.insert(format!("{rel}/"), format!("dir{stamp}"));
                walk(base, &path, skip, strict, out);
            } else {
                let len = if strict {
                    format!(" len={}", meta.len())
                } else {
                    String::new()
                };
                out.insert(rel, format!("file {}{len}{stamp}", sha256_file(&path)));
            }
        }
    }
    let mut out = Tree::new();
    walk(dir, dir, skip, strict, &mut out);
    out
}

/// Remove `dir`'s contents without following any symlink.
fn clear(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }
}

/// A server with alice and bob, alice's home full of traps, and a sentinel tree beside the
/// root.
struct FsWorld {
    server: Server,
    home: PathBuf,
    bob: PathBuf,
    outside: PathBuf,
    /// `/etc/<name>`: must never exist.
    etc_probe: PathBuf,
    passwd_sha: String,
}

impl FsWorld {
    fn new() -> FsWorld {
        let server = Server::builder()
            .user("alice", PASS, "alice", true)
            .user("bob", PASS, "bob", true)
            .start();
        let home = server.home("alice");
        let bob = server.home("bob");
        let outside = server.dir.path().join("outside");
        let etc_probe = PathBuf::from(format!("/etc/fxpd-confinement-probe-{}", std::process::id()));
        assert!(
            !etc_probe.exists(),
            "{} exists before the test",
            etc_probe.display()
        );
        let world = FsWorld {
            passwd_sha: sha256_file(Path::new("/etc/passwd")),
            server,
            home,
            bob,
            outside,
            etc_probe,
        };
        world.make_outside();
        world.reset_home();
        world
    }

    /// The sentinel tree and bob's home: every file holds [`MARKER`].
    fn make_outside(&self) {
        if self.outside.exists() {
            fs::remove_dir_all(&self.outside).unwrap();
        }
        write_file(
            &self.outside.join("secret.txt"),
            format!("{MARKER} secret").as_bytes(),
        );
        write_file(&self.outside.join(OUTSIDE_ONLY), MARKER.as_bytes());
        write_file(
            &self.outside.join("subdir/deep.txt"),
            format!("{MARKER} deep").as_bytes(),
        );
        fs::create_dir_all(self.outside.join("empty-dir")).unwrap();
        clear(&self.bob);
        write_file(&self.bob.join("secret.txt"), format!("{MARKER} bob's").as_bytes());
        write_file(
            &self.bob.join("sub/deep.txt"),
            format!("{MARKER} bob's deep").as_bytes(),
        );
        fs::create_dir_all(self.bob.join("empty-dir")).unwrap();
    }

    /// Alice's home: her own file and directories, and symlinks out of it.
    fn reset_home(&self) {
        clear(&self.home);
        let h = &self.home;
        write_file(&h.join("own.txt"), b"alice's own file\n");
        write_file(&h.join("sub/inner.txt"), b"inside a subdirectory\n");
        write_file(&h.join("swap/inside-swap.txt"), b"inside swap\n");
        let o = &self.outside;
        symlink(o.join("secret.txt"), h.join("link-file")).unwrap();
        symlink("../../outside/secret.txt", h.join("link-rel")).unwrap();
        symlink(o, h.join("link-dir")).unwrap();
        symlink(o.join("empty-dir"), h.join("link-empty-dir")).unwrap();
        symlink(o.join("made-through-link.txt"), h.join("link-dangling")).unwrap();
        symlink(o.join("no-such-dir"), h.join("link-dangling-dir")).unwrap();
        symlink("../bob", h.join("link-bob")).unwrap();
    }

    /// Replace `swap` (the session's working directory) with a symlink to the outside tree.
    fn swap(&self) {
        let swap = self.home.join("swap");
        fs::remove_dir_all(&swap).unwrap();
        symlink(&self.outside, &swap).unwrap();
    }

    /// Everything in the server's temporary directory except alice's home and the server's own
    /// log (which grows), strictly.
    fn outside_tree(&self) -> Tree {
        let log = self.server.stderr_path.clone();
        fs_tree(self.server.dir.path(), &[&self.home, &log], true)
    }

    fn home_tree(&self) -> Tree {
        fs_tree(&self.home, &[], false)
    }

    /// `/etc` untouched: no probe file, the same `/etc/passwd`.
    fn check_etc(&self, failures: &mut Failures, pair: &str) {
        if fs::symlink_metadata(&self.etc_probe).is_ok() {
            failures
                .0
                .push(format!("{pair}: created {}", self.etc_probe.display()));
            let _ = fs::remove_file(&self.etc_probe).or_else(|_| fs::remove_dir_all(&self.etc_probe));
        }
        if sha256_file(Path::new("/etc/passwd")) != self.passwd_sha {
            failures.0.push(format!("{pair}: /etc/passwd changed"));
        }
    }
}

/// The file-system spellings and their expected outcomes.
fn fs_spellings(w: &FsWorld) -> Vec<Spelling> {
    let probe = w.etc_probe.file_name().unwrap().to_str().unwrap().to_owned();
    let dir = w.server.dir.path().display().to_string();
    let root = w.server.root.display().to_string();
    vec![
        // `..` in its forms: they stop at the home's top.
        Spelling::new("dotdot", "../../outside/secret.txt", NOTHING),
        Spelling::new("dotdot", "../../outside", new_name("outside", true)),
        Spelling::new("dotdot", "../../../../../../../../etc/passwd", NOTHING)
            .writes(format!("../../../../../../../../etc/{probe}")),
        Spelling::new("dotdot", "/../../outside/secret.txt", NOTHING),
        Spelling::new("dotdot", "a/../../x", new_name("x", true)),
        Spelling::new("dotdot", "..", home(true)),
        Spelling::new("dotdot", "../..", home(true)),
        Spelling::new("dotdot", "sub/../../../outside", new_name("outside", true)),
        // Absolute paths outside: the system's, and the server's real ones.
        Spelling::new("absolute", "/etc/passwd", NOTHING).writes(format!("/etc/{probe}")),
        Spelling::new("absolute", "/etc", NOTHING).writes(format!("/etc/{probe}")),
        Spelling::new("absolute", format!("{dir}/outside/secret.txt"), NOTHING),
        Spelling::new("absolute", format!("{dir}/outside"), NOTHING),
        Spelling::new("absolute", format!("{root}/bob/secret.txt"), NOTHING),
        Spelling::new("absolute", root.clone(), NOTHING),
        // `//`.
        Spelling::new("double slash", "//etc//passwd", NOTHING).writes(format!("//etc//{probe}")),
        Spelling::new("double slash", "//..//..//outside//secret.txt", NOTHING),
        Spelling::new("double slash", ".//..//..//outside", new_name("outside", true)),
        // Backslashes are no separators on this system: one name inside the home.
        Spelling::new(
            "backslash",
            "..\\..\\outside\\secret.txt",
            new_name("..\\..\\outside\\secret.txt", true),
        ),
        Spelling::new(
            "backslash",
            "..\\bob\\secret.txt",
            new_name("..\\bob\\secret.txt", true),
        ),
        Spelling::new("backslash", "..\\x", new_name("..\\x", true)),
        // Symlinks out of the home: the rights judge the path a link reaches, and one out of
        // the home reaches nothing, so every command answers as for a missing name (the link
        // itself is not listed, removed or replaced through FTP either).
        Spelling::new("symlink to a file", "link-file", NOTHING),
        Spelling::new("relative symlink to a file", "link-rel", NOTHING),
        Spelling::new("symlink to a directory", "link-dir", NOTHING),
        Spelling::new("symlink to a directory", "link-dir/secret.txt", NOTHING),
        Spelling::new("symlink to a directory", "link-dir/subdir", NOTHING),
        Spelling::new("symlink to a directory", "link-empty-dir", NOTHING),
        // STOR through it must not create its target (checked with the outside tree).
        Spelling::new("dangling symlink", "link-dangling", NOTHING),
        Spelling::new(
            "dangling symlink to a directory",
            "link-dangling-dir/new.txt",
            NOTHING,
        ),
        // Another user's home.
        Spelling::new("other user", "../bob/secret.txt", NOTHING),
        Spelling::new("other user", "../bob", new_name("bob", true)),
        Spelling::new("other user", "/../bob/empty-dir", NOTHING),
        Spelling::new("other user", "link-bob/secret.txt", NOTHING),
        // The working directory becomes a symlink to outside after CWD.
        Spelling::new("swapped in", "secret.txt", SWAPPED).swapped(),
        Spelling::new("swapped in", ".", SWAPPED).swapped(),
        Spelling::new("swapped in", "subdir", SWAPPED).swapped(),
        Spelling::new("swapped in", "new.txt", SWAPPED).swapped(),
        Spelling::new("swapped in", "empty-dir", SWAPPED).swapped(),
        Spelling::new("swapped in", OUTSIDE_ONLY, SWAPPED).swapped(),
    ]
}

/// Every file-system command against every escape spelling.
#[test]
fn every_command_stays_in_the_home_on_the_file_system() {
    let w = FsWorld::new();
    let mut failures = Failures(Vec::new());
    let mut outside = w.outside_tree();
    let mut rows = Vec::new();
    for spelling in fs_spellings(&w) {
        let mut c = w.server.login("alice", PASS);
        c.expect("TYPE I", 200);
        let mut observed_row = Vec::new();
        for (n, command) in COMMANDS.iter().enumerate() {
            w.reset_home();
            c.expect("CWD /", 250);
            if spelling.swap {
                c.expect("CWD swap", 250);
                w.swap();
            }
            let before = w.home_tree();
            let payload = format!("uploaded by {command} #{n} for {}\n", spelling.arg).into_bytes();
            let arg = spelling.arg_for(command);
            let observed = run(&mut c, command, arg, &payload);
            let after = w.home_tree();
            let full = check_pair(
                &mut failures,
                &spelling,
                command,
                &observed,
                &before,
                &after,
                &payload,
            );
            observed_row.push((*command, full));
            let pair = format!("[{}] {command} {arg:?}", spelling.label);
            w.check_etc(&mut failures, &pair);
            let now = w.outside_tree();
            if now != outside {
                failures.0.push(format!(
                    "{pair}: OUTSIDE THE HOME CHANGED:\n{}",
                    tree_diff(&outside, &now)
                ));
                // Put the sentinel back so the next pairs are judged on their own.
                w.make_outside();
                outside = w.outside_tree();
            }
        }
        rows.push(format!("{:?}: {}", spelling.arg, row(&observed_row)));
        c.cmd("QUIT");
    }
    if !failures.0.is_empty() {
        failures.0.push(format!("observed rows:\n{}", rows.join("\n")));
    }
    failures.finish("file-system");
}

// ---------------------------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------------------------

/// The bucket of the S3 test; fxpd's `storage.prefix` is `ftp`, alice's home `ftp/alice/`.
const BUCKET: &str = "confinement";
/// Alice's key prefix.
const ALICE: &str = "ftp/alice/";

/// Keys outside alice's prefix: bob's home, a sibling prefix that starts like hers, the
/// server's prefix and the bucket's top. Every body holds [`MARKER`].
fn s3_outside() -> Vec<(&'static str, Vec<u8>)> {
    [
        "ftp/bob/secret.txt",
        "ftp/bob/empty/",
        "ftp/alice2/secret.txt",
        "ftp/top.txt",
        "top.txt",
        "etc/passwd",
    ]
    .into_iter()
    .map(|k| {
        let body = if k.ends_with('/') {
            Vec::new()
        } else {
            format!("{MARKER} {k}").into_bytes()
        };
        (k, body)
    })
    .collect()
}

/// Alice's home: her own file and a directory.
fn s3_home() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("ftp/alice/own.txt", b"alice's own file\n"),
        ("ftp/alice/sub/", b""),
        ("ftp/alice/sub/inner.txt", b"inside a subdirectory\n"),
    ]
}

/// The S3 spellings: the ones that mean something for object keys.
fn s3_spellings() -> Vec<Spelling> {
    vec![
        Spelling::new("dotdot", "../bob/secret.txt", NOTHING),
        Spelling::new("dotdot", "../bob", new_name("bob", false)),
        Spelling::new("dotdot", "../../top.txt", new_name("top.txt", false)),
        Spelling::new("dotdot", "/../bob/secret.txt", NOTHING),
        Spelling::new("dotdot", "a/../../x", new_name("x", false)),
        Spelling::new("dotdot", "..", home(false)),
        Spelling::new("dotdot", "../..", home(false)),
        Spelling::new("dotdot", "../alice2/secret.txt", NOTHING),
        Spelling::new("absolute", "/ftp/bob/secret.txt", NOTHING),
        Spelling::new("absolute", "/etc/passwd", NOTHING),
        Spelling::new("absolute", "/top.txt", new_name("top.txt", false)),
        Spelling::new("double slash", "//ftp//bob//secret.txt", NOTHING),
        Spelling::new("double slash", "//..//..//top.txt", new_name("top.txt", false)),
        // A backslash is part of a key's name, not a separator.
        Spelling::new(
            "backslash",
            "..\\bob\\secret.txt",
            new_name("..\\bob\\secret.txt", false),
        ),
        Spelling::new("backslash", "..\\..\\top.txt", new_name("..\\..\\top.txt", false)),
        Spelling::new("backslash", "..\\x", new_name("..\\x", false)),
        // Percent signs are sent encoded: no second decoding turns them into separators.
        Spelling::new("percent-encoded", "%2e%2e/bob/secret.txt", NOTHING),
        Spelling::new(
            "percent-encoded",
            "..%2fbob%2fsecret.txt",
            new_name("..%2fbob%2fsecret.txt", false),
        ),
        // `?` and `#` are sent encoded: no query or fragment is cut off the key.
        Spelling::new("query in a key", "x?prefix=ftp/bob/", NOTHING),
        Spelling::new("fragment in a key", "x#/../../bob/secret.txt", NOTHING),
    ]
}

/// Every S3 command against the spellings that make sense for object keys.
#[test]
fn every_command_stays_in_the_home_on_s3() {
    let Some(moto) = moto::Moto::start() else { return };
    let server = moto.fxpd(BUCKET);
    let mut watch = moto.watcher();
    let outside_objects = s3_outside();
    let outside_refs: Vec<(&str, &[u8])> = outside_objects.iter().map(|(k, b)| (*k, &b[..])).collect();
    watch.replace(BUCKET, "ftp/", &outside_refs);
    watch.replace(BUCKET, "top.txt", &[("top.txt", outside_refs[4].1)]);
    watch.replace(BUCKET, "etc/", &[("etc/passwd", outside_refs[5].1)]);
    let split = |tree: BTreeMap<String, String>| -> (Tree, Tree) {
        let mut home = Tree::new();
        let mut outside = Tree::new();
        for (key, sha) in tree {
            match key.strip_prefix(ALICE) {
                Some(rel) if rel.ends_with('/') => {
                    home.insert(rel.to_owned(), "dir".to_owned());
                }
                Some(rel) => {
                    home.insert(rel.to_owned(), format!("file {sha}"));
                }
                None => {
                    outside.insert(key, sha);
                }
            }
        }
        (home, outside)
    };
    let (_, outside) = split(watch.tree(BUCKET));
    let want: Vec<&str> = outside_objects.iter().map(|(k, _)| *k).collect();
    assert_eq!(outside.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut w = want.clone();
        w.sort();
        w
    });

    let mut failures = Failures(Vec::new());
    let mut rows = Vec::new();
    for spelling in s3_spellings() {
        let mut c = server.login("alice", PASS);
        c.expect("TYPE I", 200);
        let mut observed_row = Vec::new();
        for (n, command) in COMMANDS.iter().enumerate() {
            watch.replace(BUCKET, ALICE, &s3_home());
            c.expect("CWD /", 250);
            let (before, _) = split(watch.tree(BUCKET));
            let payload = format!("uploaded by {command} #{n} for {}\n", spelling.arg).into_bytes();
            let arg = spelling.arg_for(command);
            let observed = run(&mut c, command, arg, &payload);
            let (after, now) = split(watch.tree(BUCKET));
            let full = check_pair(
                &mut failures,
                &spelling,
                command,
                &observed,
                &before,
                &after,
                &payload,
            );
            observed_row.push((*command, full));
            if now != outside {
                failures.0.push(format!(
                    "[{}] {command} {arg:?}: KEYS OUTSIDE {ALICE} CHANGED:\n{}",
                    spelling.label,
                    tree_diff(&outside, &now)
                ));
                watch.replace(BUCKET, "ftp/", &outside_refs);
                watch.replace(BUCKET, "top.txt", &[("top.txt", outside_refs[4].1)]);
                watch.replace(BUCKET, "etc/", &[("etc/passwd", outside_refs[5].1)]);
            }
        }
        rows.push(format!("{:?}: {}", spelling.arg, row(&observed_row)));
        c.cmd("QUIT");
    }
    if !failures.0.is_empty() {
        failures.0.push(format!("observed rows:\n{}", rows.join("\n")));
    }
    assert!(!server.stderr().contains(&moto.secret));
    failures.finish("S3");
}
