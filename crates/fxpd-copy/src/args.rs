//! The command line of `fxpd copy` (the binary puts [`CopyArgs`] under its `copy` subcommand).

use clap::Args;
use std::path::PathBuf;

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
// The field docs are the command's help text, where `[user[:password]@]` is URL syntax.
#[allow(rustdoc::broken_intra_doc_links)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use fxpd_proto::setting;

    #[test]
    fn help_names_the_settings_as_fxpd_writes_them() {
        for name in [
            setting::ALLOW_FOREIGN_PORT,
            setting::ALLOW_FOREIGN_PASSIVE,
            setting::IIS_ENABLE_PORT_ATTACK,
            setting::IIS_ENABLE_PASV_THEFT,
        ] {
            assert!(AFTER_HELP.contains(name), "{name}");
        }
    }
}
