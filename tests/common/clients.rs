//! Clients other than [`Ctrl`](super::Ctrl): suppaftp, external programs behind the
//! `FXPD_EXTERNAL_CLIENTS` gate and the skip log, and running commands with deadlines.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

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
