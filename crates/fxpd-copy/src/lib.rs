//! `fxpd copy SRC DST`: drive an FXP (server-to-server) transfer between two FTP servers,
//! the procedure of Microsoft KB Q247132, with progress, role reversal and verification.
//!
//! The tool only speaks on the two control connections; the file goes straight from one
//! server to the other. How the crate is laid out:
//!
//! - [`url`]: `ftp://[user[:password]@]host[:port]/path` URLs; [`netrc`]: `.netrc` files;
//!   [`plan`]: arguments, credentials and paths checked into a plan (usage errors, exit 2).
//! - [`reply`]: bounded, multi-line-aware replies; [`wire`]: pure parsers and formatters
//!   (PASV/EPSV, PORT/EPRT, FEAT, STAT progress, MLSD, digests); [`client`]: one control
//!   connection with a timeout on every wait.
//! - [`fxp`]: one file, PASV on one server and PORT on the other, the reverse roles when
//!   the first arrangement is refused, STAT polling and a stall detector; [`refusal`]:
//!   which server refused what, and which of its settings would allow it.
//! - [`verify`]: sizes and a common digest (HASH, XSHA256, XMD5, SITE MD5); [`tree`]:
//!   `--recursive`; [`job`]: the run; [`progress`]: what stderr shows.
//!
//! - [`tls`]: `ftps://` (explicit FTPS): certificate checks, and which server is the TLS
//!   client on the data connection (`SSCN ON` on the source, else `CPSV` on the
//!   destination); without either, or with `ftp://` on one end, the copy is refused unless
//!   `--allow-clear-data`.
//!
//! Exit status: 0 done, 1 transfer failed, 2 usage or configuration error (bad URL, no
//! password, login refused, no way to protect the data). Errors are one sentence on stderr.

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

use clap::Args;
use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Extra help text for `fxpd copy --help`.
const AFTER_HELP: &str = "\
Passwords, first match wins: the URL (visible to other local users; avoid), \
--src-password-stdin / --dst-password-stdin (one of them: the first line of stdin), \
the environment (FXPD_COPY_SRC_PASSWORD, FXPD_COPY_DST_PASSWORD), the netrc file. \
Without a user name (in the URL or the netrc file) the login is anonymous.

The path after the host is relative to the login directory; start it with %2F for an \
absolute path. A destination ending in / keeps the source file name.

FXP needs one check relaxed on each server: the server that receives PORT must accept a \
foreign address (fxpd: fxp.allow_foreign_port, IIS: EnablePortAttack, vsftpd: \
port_promiscuous) and the server that answered PASV must accept a connection from one \
(fxpd: fxp.allow_foreign_passive, IIS: EnablePASVTheft, vsftpd: pasv_promiscuous). \
fxpd copy tries PASV on the destination first (as KB Q247132) and the reverse roles when \
that is refused.

ftps:// (explicit FTPS, port 21 by default) protects both control connections with AUTH \
TLS and the data connection with PROT P; one server must be the TLS client on the data \
connection: SSCN ON on the source, else CPSV on the destination. Server certificates are \
checked against --ca-file (there are no built-in roots), or not at all with --insecure. \
The server that is the TLS server on the data connection cannot get session resumption \
from the other server (fxpd: tls.require_data_resumption = false). With ftp:// on one end, \
or servers that know neither SSCN nor CPSV, the copy is refused unless --allow-clear-data.

Exit status: 0 done, 1 transfer failed, 2 usage or configuration error.

Example:
  echo \"$PASSWORD\" | fxpd copy --src-password-stdin \\
      ftp://alice@a.example/data.bin ftp://bob@b.example/incoming/";

/// Copy a file or a directory tree from one FTP server to another, server to server (FXP).
#[derive(Debug, Clone, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct CopyArgs {
    /// Source: ftp://[user[:password]@]host[:port]/path (or ftps://).
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Destination: ftp://[user[:password]@]host[:port]/path or ftps:// (a path ending in /
    /// keeps the source file name).
    #[arg(value_name = "DST")]
    pub dst: String,
    /// Read the source password from the first line of stdin.
    #[arg(long, conflicts_with = "dst_password_stdin")]
    pub src_password_stdin: bool,
    /// Read the destination password from the first line of stdin.
    #[arg(long)]
    pub dst_password_stdin: bool,
    /// netrc file with machine/login/password entries [default: ~/.netrc if it exists].
    #[arg(long, value_name = "FILE")]
    pub netrc: Option<PathBuf>,
    /// Continue an interrupted copy: when the destination file is shorter, restart at its
    /// size (REST on both servers).
    #[arg(long)]
    pub resume: bool,
    /// Copy the directory tree under SRC into DST (MLSD on the source, MKD on the destination).
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Print nothing but errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print every command and reply (passwords masked) on stderr.
    #[arg(long, short = 'v', conflicts_with = "quiet")]
    pub verbose: bool,
    /// Seconds to wait for each reply; a transfer that shows no progress for this long is
    /// aborted on both servers.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// ftps://: trust the certificates in this PEM file (a CA or the servers' own).
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,
    /// ftps://: do not check the servers' certificates (encrypted, but not authenticated).
    #[arg(long)]
    pub insecure: bool,
    /// Copy even when the data connection cannot be protected (ftp:// on one end, or
    /// servers without SSCN/CPSV): PROT C, the file travels in clear text.
    #[arg(long)]
    pub allow_clear_data: bool,
}

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
