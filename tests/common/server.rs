//! The fxpd process under test: users created through the CLI, [`ServerBuilder`] (config,
//! environment, listeners) and [`Server`] (reads `LISTENING` lines, reloads, logs; killed on
//! drop).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;

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
    /// TOML appended to the users file after the users are added (groups, `[anonymous]`...).
    users_toml: String,
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

    /// TOML appended to the users file once the users are added: `[[group]]` tables,
    /// `[anonymous]`, `[everyone]`. (`[[user.rules]]` there would belong to the last user.)
    pub fn users_toml(mut self, text: &str) -> Self {
        self.users_toml.push('\n');
        self.users_toml.push_str(text);
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
        if !self.users_toml.is_empty() {
            let mut text = fs::read_to_string(&users_file).unwrap();
            text.push_str(&self.users_toml);
            fs::write(&users_file, text).unwrap();
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
            admin: None,
            stdout_lines: rx,
            _stdout_thread: Some(stdout_thread),
        };

        let deadline = Instant::now() + STARTUP_DEADLINE;
        while server.addrs.len() < expected {
            match server.stdout_lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("ADMIN-LISTENING ") {
                        server.admin = Some(url.trim().to_owned());
                    }
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
    /// The admin listener's base URL (`http://127.0.0.1:port`), from its `ADMIN-LISTENING`
    /// line (printed before the control listeners' lines), when `[admin]` turned it on.
    pub admin: Option<String>,
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
            users_toml: String::new(),
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

    /// Rewrites the configuration file: the start-up configuration with `extra` TOML merged
    /// over it (tables key by key at every depth, as the builder merges). Nothing is reloaded.
    pub fn write_config_merged(&self, extra: &str) {
        let mut table: toml::Table = toml::from_str(&self.config_text).unwrap();
        let extra: toml::Table = extra
            .parse()
            .unwrap_or_else(|e| panic!("test bug: extra config is not TOML: {e}\n{extra}"));
        merge_toml(&mut table, extra);
        fs::write(&self.config_path, toml::to_string(&table).unwrap()).unwrap();
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

    /// The server's stderr once `ready` holds for it; panics with the log after 20 s (log lines
    /// are written when the events happen, a little after the replies).
    pub fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.stderr();
            if ready(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "expected log lines did not appear within 20 s; log:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
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
