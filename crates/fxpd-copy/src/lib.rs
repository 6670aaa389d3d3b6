//! The FXP client behind `fxpd copy SRC DST`: it logs in to two FTP servers and makes them
//! move a file (or, with `--recursive`, a tree) straight from one to the other, the procedure
//! of Microsoft KB Q247132, with progress, role reversal and verification.
//!
//! This crate is a *client*; the fxpd server is the root package of the workspace and shares
//! no code with it but `fxpd_proto`, the words fxpd writes when it refuses a data connection
//! (reason tokens, setting names), which [`refusal`] reads back to tell the user which
//! setting of which server would allow the copy. The tool only speaks on the two control
//! connections; the file never passes through it. How the crate is laid out:
//!
//! - [`args`]: the command line ([`CopyArgs`]); [`run`] is what the binary calls.
//! - [`url`]: `ftp://[user[:password]@]host[:port]/path` URLs; [`netrc`]: `.netrc` files;
//!   [`plan`]: arguments, credentials and paths checked into a plan (usage errors, exit 2).
//! - [`reply`]: bounded, multi-line-aware [`reply::ServerReply`]s; [`wire`]: pure parsers and
//!   formatters (PASV/EPSV, PORT/EPRT, FEAT, STAT progress, MLSD, digests); [`client`]: one
//!   [`client::ControlClient`] per server, with a timeout on every wait.
//! - [`fxp`]: one file, PASV on one server and PORT on the other, the reverse roles when
//!   the first arrangement is refused, STAT polling and a stall detector; [`refusal`]:
//!   which server refused what ([`refusal::RemoteRefusal`]), and which of its settings
//!   would allow it.
//! - [`verify`]: sizes and a common digest (HASH, XSHA256, XMD5, SITE MD5); [`tree`]:
//!   `--recursive`; [`job`]: the run; [`progress`]: what stderr shows.
//! - [`tls`]: `ftps://` (explicit FTPS): certificate checks, and which server is the TLS
//!   client on the data connection (`SSCN ON` on the source, else `CPSV` on the
//!   destination); without either, or with `ftp://` on one end, the copy is refused unless
//!   `--allow-clear-data`.
//!
//! Exit status: 0 done, 1 transfer failed, 2 usage or configuration error (bad URL, no
//! password, login refused, no way to protect the data). Errors are one sentence on stderr.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod client;
pub mod fxp;
pub mod job;
pub mod netrc;
pub mod plan;
pub mod progress;
pub mod refusal;
pub mod reply;
pub mod tls;
pub mod tree;
pub mod url;
pub mod verify;
pub mod wire;

#[cfg(test)]
mod tests;

pub use args::CopyArgs;

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Why `fxpd copy` failed; decides the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyError {
    /// A usage or configuration error (exit status 2).
    Config(String),
    /// The transfer failed (exit status 1).
    Failed(String),
}

impl CopyError {
    /// 2 for usage or configuration errors, 1 for failed transfers.
    pub fn exit_code(&self) -> u8 {
        match self {
            CopyError::Config(_) => 2,
            CopyError::Failed(_) => 1,
        }
    }
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Config(m) | CopyError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CopyError {}

/// Runs `fxpd copy` on a current-thread runtime of its own and returns the exit status.
pub fn run(args: CopyArgs) -> ExitCode {
    let request = plan::Request {
        src: &args.src,
        dst: &args.dst,
        src_password_stdin: args.src_password_stdin,
        dst_password_stdin: args.dst_password_stdin,
        netrc: args.netrc.as_deref(),
        recursive: args.recursive,
    };
    let env = |key: &str| std::env::var(key).ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let plan = match plan::make_plan(&request, &env, &mut std::io::stdin().lock(), home) {
        Ok(plan) => plan,
        Err(why) => return report(&CopyError::Config(why)),
    };
    let mode = if args.quiet {
        progress::Mode::Quiet
    } else if std::io::stderr().is_terminal() && !args.verbose {
        progress::Mode::Bar
    } else {
        progress::Mode::Plain
    };
    let tls = match tls_client(&args, &plan) {
        Ok(tls) => tls,
        Err(why) => return report(&CopyError::Config(why)),
    };
    let options = job::Options {
        resume: args.resume,
        recursive: args.recursive,
        timeout: Duration::from_secs(args.timeout),
        trace: args.verbose,
        tls,
        allow_clear_data: args.allow_clear_data,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(&CopyError::Failed(format!("cannot start the runtime: {e}"))),
    };
    let mut progress = progress::Progress::new(mode);
    let result = runtime.block_on(async {
        tokio::select! {
            r = job::execute(&plan, &options, &mut progress) => r,
            // Dropping the control connections makes the servers abort their transfers.
            _ = tokio::signal::ctrl_c() => Err(CopyError::Failed(
                "interrupted; the control connections were closed, which aborts the transfer".into(),
            )),
        }
    });
    progress.clear();
    match result {
        Ok(summary) => {
            if args.recursive && mode != progress::Mode::Quiet {
                eprintln!("fxpd copy: done: {}", summary.describe());
            }
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

/// The TLS client when either URL is `ftps://`; a usage error when the certificates
/// cannot be checked as asked, or the data would travel in clear without
/// `--allow-clear-data`.
fn tls_client(args: &CopyArgs, plan: &plan::Plan) -> Result<Option<tls::TlsClient>, String> {
    let (src_tls, dst_tls) = (plan.src.url.tls, plan.dst.url.tls);
    if src_tls != dst_tls && !args.allow_clear_data {
        let (secure, plain) = if src_tls { ("SRC", "DST") } else { ("DST", "SRC") };
        return Err(format!(
            "{secure} is ftps:// but {plain} is ftp://, so the file would travel in clear text; \
             use ftps:// on both ends, or --allow-clear-data"
        ));
    }
    if !src_tls && !dst_tls {
        return Ok(None);
    }
    let trust = match (&args.ca_file, args.insecure) {
        (Some(path), _) => tls::Trust::CaFile(path),
        (None, true) => tls::Trust::Insecure,
        (None, false) => return Err(
            "ftps:// needs --ca-file PEM to check the servers' certificates (there are no built-in roots), \
                 or --insecure to skip the check"
                .into(),
        ),
    };
    tls::TlsClient::new(trust).map(Some)
}

/// Prints the error as one sentence and returns its exit status.
fn report(e: &CopyError) -> ExitCode {
    let text = e.to_string();
    let end = if text.ends_with('.') { "" } else { "." };
    eprintln!("fxpd copy: {text}{end}");
    ExitCode::from(e.exit_code())
}
