//! Shared harness for fxpd's integration tests.
//!
//! Every test starts the real `fxpd` binary (`CARGO_BIN_EXE_fxpd`) in its own temporary
//! directory, with its own config, root and users file, listening on a loopback address with
//! port 0. The binary reports each bound control listener on stdout as `LISTENING <addr>`;
//! [`Server`] reads those lines with a deadline and kills the process when dropped.
//!
//! Besides the server, this module has:
//! - [`Ctrl`]: a raw control-connection client on a std `TcpStream` (exact replies, raw bytes),
//! - [`ftp_login`]: a `suppaftp` client with timeouts on every socket,
//! - content helpers (random files, SHA-256 of files, trees),
//! - external-client helpers ([`require_client`], [`client_command`], [`run_with_timeout`]).
//!
//! Only loopback addresses are used: 127.0.0.1, 127.0.0.2, 127.0.0.3 and ::1.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fxpd");

/// How long the binary may take to print all its `LISTENING` lines.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Read/write timeout on every socket a test opens: no test may hang on the network.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The password every test user gets unless a test says otherwise.
pub const PASS: &str = "s3cret-Pa55";

/// Name of the environment variable that enables (and requires) external clients.
pub const EXTERNAL_ENV: &str = "FXPD_EXTERNAL_CLIENTS";

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/// A user to create through `fxpd user add` before the server starts.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub pass: String,
    /// Home directory, relative to the server root (created by the harness).
    pub home: String,
    pub write: bool,
    /// `--fxp inherit|allow|deny` (None: the CLI default).
    pub fxp: Option<String>,
}

/// Shorthand for a [`User`].
pub fn user(name: &str, pass: &str, home: &str, write: bool) -> User {
    User {
        name: name.into(),
        pass: pass.into(),
        home: home.into(),
        write,
        fxp: None,
    }
}

impl User {
    /// The same user with a per-user FXP setting (`inherit`, `allow` or `deny`).
    pub fn with_fxp(mut self, fxp: &str) -> User {
        self.fxp = Some(fxp.into());
        self
    }
}

/// Removes `FXPD__*` variables (configuration overrides) so the caller's environment cannot
/// change what a test configures.
pub fn clear_fxpd_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FXPD__") {
            cmd.env_remove(k);
        }
    }
}

/// Runs `fxpd user add NAME --users FILE --home HOME [--write]` with the password on stdin.
pub fn cli_add_user(users_file: &Path, u: &User) -> Output {
    let mut cmd = Command::new(BIN);
    clear_fxpd_env(&mut cmd);
    cmd.args(["user", "add", &u.name, "--users"])
        .arg(users_file)
        .args(["--home", &u.home]);
    if u.write {
        cmd.arg("--write");
    }
    if let Some(f) = &u.fxp {
        cmd.args(["--fxp", f]);
    }
    run_with_input_timeout(&mut cmd, format!("{}\n", u.pass).as_bytes(), 60)
}

/// Runs `fxpd user <args...> --users FILE` (for `list` and `remove`).
pub fn cli_user(users_file: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("user").args(args).arg("--users").arg(users_file);
    run_with_timeout(&mut cmd, 60)
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Builds the config and the environment of one fxpd process.
pub struct ServerBuilder {
    extra: String,
    /// Documents merged one by one after `extra` (see [`ServerBuilder::merge_config`]).
    merged: Vec<String>,
    users: Vec<User>,
    args: Vec<String>,
    serve_subcommand: bool,
    default_listen: bool,
    expected_listeners: Option<usize>,
    config_in_file: bool,
    /// Environment variables set for the process (after the `FXPD_*` ones are cleared).
    envs: Vec<(String, std::ffi::OsString)>,
}

impl ServerBuilder {
    /// Extra TOML merged over the harness defaults (tables are merged key by key).
    pub fn config(mut self, extra: &str) -> Self {
        self.extra.push('\n');
        self.extra.push_str(extra);
        self
    }

    /// A separate TOML document merged over the configuration (after every `config` text),
    /// so it may name tables those texts name too.
    pub fn merge_config(mut self, document: &str) -> Self {
        self.merged.push(document.to_string());
        self
    }

    /// A user created with the CLI before the server starts.
    pub fn user(mut self, name: &str, pass: &str, home: &str, write: bool) -> Self {
        self.users.push(user(name, pass, home, write));
        self
    }

    /// An extra command-line argument after `--config FILE`.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// An environment variable for the server process (e.g. `NOTIFY_SOCKET`).
    pub fn env(mut self, key: &str, value: impl Into<std::ffi::OsString>) -> Self {
        self.envs.push((key.to_string(), value.into()));
        self
    }

    /// Start as `fxpd --config FILE` instead of `fxpd serve --config FILE`.
    pub fn without_serve_subcommand(mut self) -> Self {
        self.serve_subcommand = false;
        self
    }

    /// Leave out the default `listen = ["127.0.0.2:0"]` (the test passes `--listen`).
    pub fn without_default_listen(mut self) -> Self {
        self.default_listen = false;
        self
    }

    /// Pass root and users file as `--root DIR --users FILE` instead of in the config.
    pub fn paths_as_flags(mut self) -> Self {
        self.config_in_file = false;
        self
    }

    /// How many `LISTENING` lines to wait for (default: the length of `listen`, or the
    /// number of `--listen` flags).
    pub fn listeners(mut self, n: usize) -> Self {
        self.expected_listeners = Some(n);
        self
    }

    /// Starts the server and waits for its `LISTENING` lines; panics on failure.
    pub fn start(self) -> Server {
        match self.try_start() {
            Ok(s) => s,
            Err(e) => panic!("fxpd did not start: {e}"),
        }
    }

    /// Starts the server; `Err` carries the exit status and stderr if it did not come up.
    pub fn try_start(self) -> Result<Server, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("fxpd-test-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir_all(&root).unwrap();
        let users_file = dir.path().join("users.toml");
        let config_path = dir.path().join("fxpd.toml");
        let stderr_path = dir.path().join("fxpd.stderr.log");

        for u in &self.users {
            fs::create_dir_all(root.join(u.home.trim_start_matches('/'))).unwrap();
            let out = cli_add_user(&users_file, u);
            assert!(
                out.status.success(),
                "fxpd user add {} failed: {}",
                u.name,
                describe_output(&out)
            );
        }
        if !users_file.exists() {
            fs::write(&users_file, "").unwrap();
        }

        let mut table = toml::Table::new();
        if self.default_listen {
            table.insert("listen".into(), toml::Value::Array(vec!["127.0.0.2:0".into()]));
        }
        if self.config_in_file {
            table.insert("root".into(), root.to_str().unwrap().into());
            table.insert("users_file".into(), users_file.to_str().unwrap().into());
        }
        let mut limits = toml::Table::new();
        limits.insert("failed_login_delay_ms".into(), toml::Value::Integer(0));
        table.insert("limits".into(), toml::Value::Table(limits));
        let mut log = toml::Table::new();
        log.insert("level".into(), "info".into());
        table.insert("log".into(), toml::Value::Table(log));
        let extra: toml::Table = self
            .extra
            .parse()
            .unwrap_or_else(|e| panic!("test bug: extra config is not TOML: {e}\n{}", self.extra));
        merge_toml(&mut table, extra);
        for document in &self.merged {
            let more: toml::Table = document
                .parse()
                .unwrap_or_else(|e| panic!("test bug: merged config is not TOML: {e}\n{document}"));
            merge_toml(&mut table, more);
        }
        let config_text = toml::to_string(&table).unwrap();
        fs::write(&config_path, &config_text).unwrap();

        let listen_count = table
            .get("listen")
            .and_then(|v| v.as_array())
            .map(|a| a.len())
            .unwrap_or(0);
        let flag_count = self.args.iter().filter(|a| *a == "--listen").count();
        let expected =
            self.expected_listeners
                .unwrap_or(if flag_count > 0 { flag_count } else { listen_count });

        let mut cmd = Command::new(BIN);
        if self.serve_subcommand {
            cmd.arg("serve");
        }
        cmd.arg("--config").arg(&config_path).args(&self.args);
        if !self.config_in_file {
            cmd.arg("--root").arg(&root).arg("--users").arg(&users_file);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(fs::File::create(&stderr_path).unwrap()))
            .env("RUST_BACKTRACE", "1");
        clear_fxpd_env(&mut cmd);
        for (key, value) in &self.envs {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {BIN}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout_thread = thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        // The receiver may be gone; keep draining so the server never blocks.
                        let _ = tx.send(line);
                    }
                }
            }
        });

        let mut server = Server {
            child: Some(child),
            dir,
            root,
            users_file,
            config_path,
            stderr_path,
            config_text,
            addrs: Vec::new(),
            listening_lines: Vec::new(),
            stdout_lines: rx,
            _stdout_thread: Some(stdout_thread),
        };

        let deadline = Instant::now() + STARTUP_DEADLINE;
        while server.addrs.len() < expected {
            match server.stdout_lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("LISTENING ") {
                        let addr: SocketAddr = rest
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("LISTENING line is not <ip>:<port> ({e}): {line:?}"));
                        server.listening_lines.push(line.clone());
                        server.addrs.push(addr);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is exiting; collect its status below.
                    thread::sleep(Duration::from_millis(50));
                }
            }
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                // Drain what is left so that an early LISTENING line is not lost.
                while let Ok(line) = server.stdout_lines.try_recv() {
                    if line.starts_with("LISTENING ") {
                        server.listening_lines.push(line);
                    }
                }
                let stderr = fs::read_to_string(&server.stderr_path).unwrap_or_default();
                let lines = server.listening_lines.clone();
                server.child = None;
                return Err(StartError {
                    status: Some(status),
                    stderr,
                    listening_lines: lines,
                });
            }
            if Instant::now() > deadline {
                let stderr = fs::read_to_string(&server.stderr_path).unwrap_or_default();
                return Err(StartError {
                    status: None,
                    stderr: format!(
                        "no {expected} LISTENING line(s) within {STARTUP_DEADLINE:?}; got {:?}\nconfig:\n{}\nstderr:\n{stderr}",
                        server.listening_lines, server.config_text
                    ),
                    listening_lines: server.listening_lines.clone(),
                });
            }
        }
        Ok(server)
    }
}

/// Why a server did not come up.
#[derive(Debug)]
pub struct StartError {
    /// Exit status if the process exited (None: still running when the deadline passed).
    pub status: Option<ExitStatus>,
    pub stderr: String,
    pub listening_lines: Vec<String>,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?}, LISTENING lines {:?}\nstderr:\n{}",
            self.status, self.listening_lines, self.stderr
        )
    }
}

fn merge_toml(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge_toml(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// One running fxpd process with its own temporary directory; killed on drop.
pub struct Server {
    child: Option<Child>,
    /// The test's temporary directory (holds `root/`, `users.toml`, `fxpd.toml`, logs).
    pub dir: tempfile::TempDir,
    /// The server root (`<dir>/root`).
    pub root: PathBuf,
    pub users_file: PathBuf,
    pub config_path: PathBuf,
    pub stderr_path: PathBuf,
    pub config_text: String,
    /// Bound control addresses, in the order the binary reported them.
    pub addrs: Vec<SocketAddr>,
    /// The raw `LISTENING ...` lines.
    pub listening_lines: Vec<String>,
    stdout_lines: mpsc::Receiver<String>,
    _stdout_thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// A builder with the harness defaults: listen on 127.0.0.2:0, no failed-login delay.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            extra: String::new(),
            merged: Vec::new(),
            users: Vec::new(),
            args: Vec::new(),
            serve_subcommand: true,
            default_listen: true,
            expected_listeners: None,
            config_in_file: true,
            envs: Vec::new(),
        }
    }

    /// Starts a server with `extra` TOML merged over the defaults and the given users.
    pub fn start(extra: &str, users: &[User]) -> Server {
        let mut b = Server::builder().config(extra);
        b.users.extend_from_slice(users);
        b.start()
    }

    /// The usual fixture: user `alice` (home `alice`, write) with password [`PASS`].
    pub fn with_alice(extra: &str) -> Server {
        Server::start(extra, &[user("alice", PASS, "alice", true)])
    }

    /// The first control address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The first IPv6 control address.
    pub fn addr_v6(&self) -> SocketAddr {
        *self.addrs.iter().find(|a| a.is_ipv6()).expect("no IPv6 listener")
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The user's home on disk: `<root>/<home>`.
    pub fn home(&self, home: &str) -> PathBuf {
        self.root.join(home.trim_start_matches('/'))
    }

    /// Adds a user with the CLI while the server runs (same users file).
    pub fn add_user(&self, name: &str, pass: &str, home: &str, write: bool) {
        fs::create_dir_all(self.home(home)).unwrap();
        let out = cli_add_user(&self.users_file, &user(name, pass, home, write));
        assert!(
            out.status.success(),
            "fxpd user add {name} failed: {}",
            describe_output(&out)
        );
    }

    /// Opens a raw control connection and reads the greeting (must be 220).
    pub fn ctrl(&self) -> Ctrl {
        Ctrl::connect(self.addr())
    }

    /// A raw control connection logged in as `name`.
    pub fn login(&self, name: &str, pass: &str) -> Ctrl {
        let mut c = self.ctrl();
        c.login(name, pass);
        c
    }

    /// A suppaftp client logged in as `name`.
    pub fn ftp(&self, name: &str, pass: &str) -> suppaftp::FtpStream {
        ftp_login(self.addr(), name, pass)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server already reaped").id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Sends a signal by name (`TERM`, `INT`, ...) with the shell's `kill` builtin.
    pub fn signal(&self, sig: &str) {
        let out = run_with_timeout(
            Command::new("sh").args(["-c", "kill -s \"$1\" \"$2\"", "sh", sig, &self.pid().to_string()]),
            10,
        );
        assert!(
            out.status.success(),
            "kill -s {sig} failed: {}",
            describe_output(&out)
        );
    }

    /// Sends SIGHUP (as `systemctl reload fxpd` does) and waits for the server's answer to it:
    /// its log line for an applied reload (`Ok`) or a refused one (`Err` with the line that
    /// gives the reason). Panics when neither comes within 10 s.
    pub fn reload(&self) -> Result<(), String> {
        const APPLIED: &str = "configuration reloaded";
        const REFUSED: &str = "reload_refused";
        let count = |log: &str, what: &str| log.lines().filter(|l| l.contains(what)).count();
        let before = self.stderr();
        let (applied, refused) = (count(&before, APPLIED), count(&before, REFUSED));
        self.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.stderr();
            if count(&log, APPLIED) > applied {
                return Ok(());
            }
            if count(&log, REFUSED) > refused {
                let line = log
                    .lines()
                    .filter(|l| l.contains(REFUSED))
                    .nth(refused)
                    .unwrap_or_default();
                return Err(line.to_owned());
            }
            assert!(
                Instant::now() < deadline,
                "no reload event within 10 s of SIGHUP:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `within` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stdout lines other than the ones already consumed.
    pub fn drain_stdout(&self) -> Vec<String> {
        self.stdout_lines.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            let log = self.stderr();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "---- fxpd config ({}) ----\n{}\n---- fxpd stderr (last {} lines) ----\n{}\n----",
                self.config_path.display(),
                self.config_text,
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw control connection
// ---------------------------------------------------------------------------------------------

/// One FTP reply: the code and every line (without CRLF).
#[derive(Clone, Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// All lines joined with '\n'.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
    pub fn first(&self) -> &str {
        &self.lines[0]
    }
    pub fn is_positive(&self) -> bool {
        (100..400).contains(&self.code)
    }
    pub fn class(&self) -> u16 {
        self.code / 100
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// A raw control connection: exact bytes out, parsed replies in.
pub struct Ctrl {
    reader: BufReader<TcpStream>,
    pub stream: TcpStream,
    /// The greeting (220) read by [`Ctrl::connect`].
    pub greeting: Option<Reply>,
}

impl Ctrl {
    /// Connects and reads the greeting, which must be 220.
    pub fn connect(addr: SocketAddr) -> Ctrl {
        Ctrl::connect_no_greeting(addr).greeted()
    }

    /// Connects from the loopback address `from` and reads the greeting, which must be 220.
    pub fn connect_from(from: IpAddr, addr: SocketAddr) -> Ctrl {
        Ctrl::over(connect_from(from, addr), b"").greeted()
    }

    /// Reads the greeting, which must be 220.
    fn greeted(mut self) -> Ctrl {
        let g = self.read_reply();
        assert_eq!(g.code, 220, "greeting must be 220, got: {g}");
        self.greeting = Some(g);
        self
    }

    /// Connects without reading anything.
    pub fn connect_no_greeting(addr: SocketAddr) -> Ctrl {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Ctrl::over(stream, b"")
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.stream.peer_addr().unwrap()
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Sends `line` followed by CRLF.
    pub fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\r\n").as_bytes());
    }

    /// Sends raw bytes (the caller adds CRLF).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to control connection: {e}"));
    }

    /// Reads one reply; panics on EOF, timeout or garbage.
    pub fn read_reply(&mut self) -> Reply {
        match self.try_read_reply() {
            Ok(r) => r,
            Err(e) => panic!("reading a reply failed: {e}"),
        }
    }

    /// Reads one reply (multi-line aware: `ddd-` ... `ddd `).
    pub fn try_read_reply(&mut self) -> io::Result<Reply> {
        let first = self.read_line()?;
        let code = parse_code(&first).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("not a reply line: {first:?}"))
        })?;
        let mut lines = vec![first.clone()];
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let l = self.read_line()?;
                let done = l.starts_with(&end) || l == code.to_string();
                lines.push(l);
                if done {
                    break;
                }
            }
        }
        Ok(Reply { code, lines })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "control connection closed",
            ));
        }
        while buf.last() == Some(&b'\n') || buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.read_reply()
    }

    /// Sends a command and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(r.code, code, "{line:?} -> expected {code}, got: {r}");
        r
    }

    /// Sends a command and asserts a reply in the given class (2 = 2xx, 5 = 5xx, ...).
    pub fn expect_class(&mut self, line: &str, class: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(r.class(), class, "{line:?} -> expected {class}xx, got: {r}");
        r
    }

    /// USER + PASS; asserts 331 then 230 (or 230 straight away).
    pub fn login(&mut self, name: &str, pass: &str) {
        let r = self.cmd(&format!("USER {name}"));
        if r.code == 230 {
            return;
        }
        assert_eq!(r.code, 331, "USER {name} -> {r}");
        let r = self.cmd(&format!("PASS {pass}"));
        assert_eq!(r.code, 230, "PASS for {name} -> {r}");
    }

    /// PASV; asserts the IIS wording and returns the address from the reply.
    pub fn pasv(&mut self) -> SocketAddr {
        let r = self.expect("PASV", 227);
        parse_pasv(r.first()).unwrap_or_else(|| panic!("cannot parse PASV reply: {r}"))
    }

    /// EPSV; returns the control peer's IP with the port from the reply.
    pub fn epsv(&mut self) -> SocketAddr {
        let r = self.expect("EPSV", 229);
        let port = parse_epsv(r.first()).unwrap_or_else(|| panic!("cannot parse EPSV reply: {r}"));
        SocketAddr::new(self.peer_addr().ip(), port)
    }

    /// PASV + connect.
    pub fn pasv_connect(&mut self) -> TcpStream {
        let a = self.pasv();
        data_connect(a)
    }

    /// Opens a listener on the control connection's local IP and sends PORT (IPv4) or
    /// EPRT (IPv6) for it; asserts 200.
    pub fn port_listener(&mut self) -> TcpListener {
        let ip = self.local_addr().ip();
        let l = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
        let a = l.local_addr().unwrap();
        let line = match ip {
            IpAddr::V4(_) => port_command(a),
            IpAddr::V6(_) => eprt_command(a),
        };
        let r = self.expect(&line, 200);
        assert!(r.first().starts_with("200"), "{r}");
        l
    }

    /// Passive RETR of `name`: returns the bytes; asserts 150/125 then 226.
    pub fn retr(&mut self, name: &str) -> Vec<u8> {
        let mut data = self.pasv_connect();
        let r = self.cmd(&format!("RETR {name}"));
        assert!(r.code == 150 || r.code == 125, "RETR {name} -> {r}");
        let bytes = read_to_end_deadline(&mut data, Duration::from_secs(120));
        let r = self.read_reply();
        assert_eq!(r.code, 226, "end of RETR {name} -> {r}");
        bytes
    }

    /// Passive STOR of `bytes` as `name`; asserts 150/125 then 226.
    pub fn stor(&mut self, name: &str, bytes: &[u8]) {
        self.upload("STOR", name, bytes)
    }

    /// Passive `verb name` upload (STOR/APPE/STOU); asserts 150/125 then 226.
    pub fn upload(&mut self, verb: &str, name: &str, bytes: &[u8]) {
        let mut data = self.pasv_connect();
        let r = self.cmd(&format!("{verb} {name}"));
        assert!(r.code == 150 || r.code == 125, "{verb} {name} -> {r}");
        data.write_all(bytes).unwrap();
        drop(data);
        let r = self.read_reply();
        assert_eq!(r.code, 226, "end of {verb} {name} -> {r}");
    }

    /// A passive listing command (LIST, NLST, MLSD ...) returning the text.
    pub fn listing(&mut self, line: &str) -> String {
        let mut data = self.pasv_connect();
        let r = self.cmd(line);
        assert!(r.code == 150 || r.code == 125, "{line} -> {r}");
        let bytes = read_to_end_deadline(&mut data, Duration::from_secs(60));
        let r = self.read_reply();
        assert_eq!(r.code, 226, "end of {line} -> {r}");
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Reads until the server closes the connection (or the timeout); true if it closed.
    pub fn wait_closed(&mut self, within: Duration) -> bool {
        self.set_read_timeout(within);
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

fn parse_code(line: &str) -> Option<u16> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if b.len() > 3 && b[3] != b' ' && b[3] != b'-' {
        return None;
    }
    line[..3].parse().ok()
}

/// Parses `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`
pub fn parse_pasv(line: &str) -> Option<SocketAddr> {
    let open = line.find('(')?;
    let close = line[open..].find(')')? + open;
    let nums: Vec<u16> = line[open + 1..close]
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    if nums.len() != 6 || nums.iter().any(|n| *n > 255) {
        return None;
    }
    let ip = std::net::Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8);
    Some(SocketAddr::new(IpAddr::V4(ip), nums[4] * 256 + nums[5]))
}

/// Parses the port out of `229 Entering Extended Passive Mode (|||port|)`.
pub fn parse_epsv(line: &str) -> Option<u16> {
    let open = line.find("(|||")?;
    let rest = &line[open + 4..];
    let end = rest.find('|')?;
    rest[..end].parse().ok()
}

/// `PORT h1,h2,h3,h4,p1,p2` for an IPv4 address.
pub fn port_command(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!(
                "PORT {},{},{},{},{},{}",
                o[0],
                o[1],
                o[2],
                o[3],
                a.port() >> 8,
                a.port() & 0xff
            )
        }
        IpAddr::V6(_) => panic!("PORT needs an IPv4 address, got {a}"),
    }
}

/// `EPRT |1|ip|port|` or `EPRT |2|ip|port|`.
pub fn eprt_command(a: SocketAddr) -> String {
    let proto = if a.is_ipv4() { 1 } else { 2 };
    format!("EPRT |{proto}|{}|{}|", a.ip(), a.port())
}

/// Connects a data socket with timeouts.
pub fn data_connect(a: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&a, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("data connection to {a}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Accepts one connection on `l` within `within`; `None` if nobody connected.
pub fn accept_within(l: &TcpListener, within: Duration) -> Option<(TcpStream, SocketAddr)> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + within;
    loop {
        match l.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                l.set_nonblocking(false).unwrap();
                return Some((s, a));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    l.set_nonblocking(false).unwrap();
                    return None;
                }
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads a stream to EOF; panics if that takes longer than `within` or a read fails.
pub fn read_to_end_deadline(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "data connection not finished within {within:?} ({} bytes so far)",
            out.len()
        );
        s.set_read_timeout(Some(left.min(IO_TIMEOUT))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading data connection after {} bytes: {e}", out.len()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// suppaftp
// ---------------------------------------------------------------------------------------------

/// A logged-in suppaftp client (passive mode) whose control and data sockets have timeouts.
pub fn ftp_login(addr: SocketAddr, name: &str, pass: &str) -> suppaftp::FtpStream {
    let mut ftp = suppaftp::FtpStream::connect_timeout(addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("suppaftp connect {addr}: {e}"))
        .passive_stream_builder(|a| {
            let s = TcpStream::connect_timeout(&a, Duration::from_secs(10))
                .map_err(suppaftp::FtpError::ConnectionError)?;
            s.set_read_timeout(Some(IO_TIMEOUT))
                .map_err(suppaftp::FtpError::ConnectionError)?;
            s.set_write_timeout(Some(IO_TIMEOUT))
                .map_err(suppaftp::FtpError::ConnectionError)?;
            Ok(s)
        });
    ftp.get_ref().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    ftp.get_ref().set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    ftp.login(name, pass)
        .unwrap_or_else(|e| panic!("suppaftp login {name}: {e}"));
    ftp
}

/// The reply code inside a suppaftp error, if it is an unexpected reply.
pub fn ftp_err_code(e: &suppaftp::FtpError) -> Option<u32> {
    match e {
        suppaftp::FtpError::UnexpectedResponse(r) => Some(r.status.code()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------

static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `n` pseudo-random bytes (splitmix64, seeded from time, pid and a counter).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut state = nanos
        ^ ((std::process::id() as u64) << 32)
        ^ SEED_COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Writes `n` random bytes to `path` (creating parents) and returns their SHA-256.
pub fn write_random_file(path: &Path, n: usize) -> String {
    let data = random_bytes(n);
    write_file(path, &data);
    sha256_bytes(&data)
}

/// Writes `data` to `path`, creating parent directories.
pub fn write_file(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A text file of `lines` LF-terminated lines.
pub fn text_content(lines: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..lines {
        s.push_str(&format!(
            "line {i}: the quick brown fox jumps over the lazy dog\n"
        ));
    }
    s.into_bytes()
}

pub fn sha256_bytes(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// SHA-256 of a file (streamed).
pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Relative path -> SHA-256 for every file under `dir`, and `path/` -> "<dir>" for every
/// directory, so two trees compare equal only if both files and directories match.
pub fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = fs::read_dir(d).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(format!("{rel}/"), "<dir>".into());
                walk(base, &p, out);
            } else {
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Creates a tree of random, empty and text files with nested subdirectories under `dir`.
pub fn make_tree(dir: &Path) -> BTreeMap<String, String> {
    write_random_file(&dir.join("big.bin"), 3 * 1024 * 1024 + 17);
    write_file(&dir.join("empty.dat"), b"");
    write_file(&dir.join("notes.txt"), &text_content(200));
    write_random_file(&dir.join("sub1/mid.bin"), 200 * 1024 + 3);
    write_file(&dir.join("sub1/readme.txt"), &text_content(5));
    write_random_file(&dir.join("sub1/sub2/deep.bin"), 1024 * 1024 + 1);
    write_random_file(&dir.join("sub3/one.bin"), 4096);
    tree_hashes(dir)
}

// ---------------------------------------------------------------------------------------------
// External clients and commands
// ---------------------------------------------------------------------------------------------

/// True when `FXPD_EXTERNAL_CLIENTS=1`.
pub fn external_clients_enabled() -> bool {
    std::env::var(EXTERNAL_ENV).map(|v| v == "1").unwrap_or(false)
}

/// Name of the environment variable naming a file where every skipped test is recorded, one
/// line each; `tests/run.sh` sets it and fails when the file is not empty after the suite.
pub const SKIP_LOG_ENV: &str = "FXPD_SKIP_LOG";

/// Report that the running test did not run its body: a `SKIPPED` line on stderr and, when
/// `FXPD_SKIP_LOG` names a file, a line there. A test calls this and returns; the test command
/// counts such lines as failures, so a skipped test can never pass unnoticed in CI.
pub fn skip(why: &str) {
    let test = thread::current().name().unwrap_or("unnamed test").to_owned();
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {SKIP_LOG_ENV} file {path:?}: {e}"));
        writeln!(log, "{test}: {why}").expect("write to the skip log");
    }
}

/// Gate for tests that drive an external client: false (the test is reported as skipped, see
/// [`skip`]) when `FXPD_EXTERNAL_CLIENTS` is not 1; true when it is 1 and `name` is on PATH;
/// panics with "`name` not installed" when it is 1 and `name` is missing.
pub fn require_client(name: &str) -> bool {
    if !external_clients_enabled() {
        skip(&format!("{EXTERNAL_ENV} is not 1 and the test needs {name}"));
        return false;
    }
    if find_in_path(name).is_none() {
        panic!("{name} not installed ({EXTERNAL_ENV}=1 makes a missing client a failure)");
    }
    true
}

/// Gate for several clients at once (see [`require_client`]).
pub fn require_clients(names: &[&str]) -> bool {
    let mut ok = true;
    for n in names {
        ok &= require_client(n);
    }
    ok
}

/// The path of an executable on PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// A command for an external client with an isolated HOME (no ~/.netrc, ~/.curlrc,
/// ~/.wgetrc, ~/.lftprc), the C locale and no proxy variables.
pub fn client_command(program: &str, home: &Path) -> Command {
    let mut c = Command::new(program);
    fs::create_dir_all(home).unwrap();
    c.env("HOME", home).env("LC_ALL", "C").env("LANG", "C");
    for v in [
        "ftp_proxy",
        "FTP_PROXY",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "CURL_HOME",
        "WGETRC",
        "LFTP_HOME",
    ] {
        c.env_remove(v);
    }
    c
}

/// Runs `cmd` with stdin closed; kills its whole process group after `secs` and panics.
pub fn run_with_timeout(cmd: &mut Command, secs: u64) -> Output {
    run_inner(cmd, None, secs)
}

/// Runs `cmd` with `input` on stdin; kills its whole process group after `secs` and panics.
pub fn run_with_input_timeout(cmd: &mut Command, input: &[u8], secs: u64) -> Output {
    run_inner(cmd, Some(input.to_vec()), secs)
}

fn run_inner(cmd: &mut Command, input: Option<Vec<u8>>, secs: u64) -> Output {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(data) = input {
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let pgid = child.id();
    // Kill whatever the command left behind in its process group (also on success).
    let _ = Command::new("sh")
        .args([
            "-c",
            "kill -s KILL -- \"-$1\" 2>/dev/null; true",
            "sh",
            &pgid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let status = match status {
        Some(st) => st,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_t.join().unwrap_or_default();
            let stderr = err_t.join().unwrap_or_default();
            panic!(
                "command timed out after {secs} s: {cmd:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn describe_output(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts that a command succeeded, printing everything if not.
pub fn assert_success(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed: {}", describe_output(o));
}

/// All integers in `text`, with `1,234,567`-style groups read as one number.
pub fn numbers_in(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut Vec<u64>| {
        let t = token.trim_matches(',');
        if !t.is_empty() {
            let groups: Vec<&str> = t.split(',').collect();
            let grouped = groups.len() > 1
                && !groups[0].is_empty()
                && groups[0].len() <= 3
                && groups[1..].iter().all(|g| g.len() == 3);
            if grouped {
                if let Ok(n) = groups.concat().parse() {
                    out.push(n);
                }
            } else {
                out.extend(groups.iter().filter_map(|g| g.parse::<u64>().ok()));
            }
        }
        token.clear();
    };
    for ch in text.chars() {
        if ch.is_ascii_digit() || ch == ',' {
            token.push(ch);
        } else {
            flush(&mut token, &mut out);
        }
    }
    flush(&mut token, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// PROXY protocol (load balancers)
// ---------------------------------------------------------------------------------------------

/// Connects to `addr` from `local` (e.g. 127.0.0.10, the address a test treats as its load
/// balancer) with the harness timeouts.
pub fn connect_from(local: IpAddr, addr: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt
        .block_on(async {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(local, 0))?;
            let s = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            s.into_std()
        })
        .unwrap_or_else(|e| panic!("connect from {local} to {addr}: {e}"));
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A PROXY protocol v1 header for a TCP connection from `src` to `dst`.
pub fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A PROXY protocol v2 header (command PROXY, TCP over IPv4) from `src` to `dst`, with a NOOP
/// TLV as HAProxy may add.
pub fn proxy_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("proxy_v2 builds IPv4 headers only");
    };
    let mut body = Vec::new();
    body.extend_from_slice(&s.octets());
    body.extend_from_slice(&d.octets());
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    body.extend_from_slice(&[0x04, 0, 2, 0, 0]);
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A PROXY protocol v2 LOCAL header (a load balancer's health check).
pub fn proxy_v2_local() -> Vec<u8> {
    b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec()
}

impl Ctrl {
    /// A control connection over `stream` after writing `preamble` (e.g. a PROXY header);
    /// reads nothing.
    pub fn over(mut stream: TcpStream, preamble: &[u8]) -> Ctrl {
        stream.write_all(preamble).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Ctrl {
            reader,
            stream,
            greeting: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Redis (state shared by cluster nodes)
// ---------------------------------------------------------------------------------------------

/// A redis-server process (Debian's) on a free 127.0.0.1 port, without persistence, killed on
/// drop.
pub struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        // A free port: bind, note it, release it for redis-server.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(reply) = redis.command(&["PING"]) {
                if reply == "+PONG" {
                    return redis;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer PING");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// One command in RESP; the first line of the reply (`+PONG`, `:1234`, ...).
    pub fn command(&mut self, args: &[&str]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes())?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line.trim_end().to_string())
    }

    /// PTTL of `key` in milliseconds (-2: no such key).
    pub fn pttl(&mut self, key: &str) -> i64 {
        let reply = self.command(&["PTTL", key]).unwrap();
        reply
            .trim_start_matches(':')
            .parse()
            .unwrap_or_else(|_| panic!("PTTL reply {reply}"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
