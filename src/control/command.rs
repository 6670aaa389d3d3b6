//! Typed FTP commands (RFC 959, RFC 2389 FEAT/OPTS, RFC 3659 SIZE/MDTM/REST/MLST/MLSD,
//! RFC 2428 EPRT/EPSV). Every argument is parsed into its type by [`super::parser`], so
//! handlers never see a raw PORT string.

use std::net::{SocketAddr, SocketAddrV4};

/// Representation type (TYPE, RFC 959 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `TYPE A` (ASCII, non-print): line endings are converted to CRLF on the wire.
    Ascii,
    /// `TYPE I` / `TYPE L 8`: bytes as they are.
    Image,
}

/// The argument of `EPSV` (RFC 2428 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: the protocol of the control connection.
    Any,
    /// `EPSV 1`: IPv4.
    V4,
    /// `EPSV 2`: IPv6.
    V6,
    /// `EPSV ALL`: from now on only EPSV is accepted for data connections.
    All,
}

/// `OPTS` arguments we understand (RFC 2389).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptsArg {
    /// `OPTS UTF8 ON|OFF`.
    Utf8(bool),
    /// `OPTS MLST fact;fact;`.
    Mlst(String),
    /// `OPTS HASH [algorithm]` (draft-bryan-ftp-hash): query or select the algorithm.
    Hash(Option<String>),
    /// Anything else: answered with 501.
    Other(String),
}

/// `SITE` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteArg {
    /// `SITE HELP`.
    Help,
    /// Any other SITE command.
    Other(String),
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`.
    User(String),
    /// `PASS password` (never logged).
    Pass(String),
    /// `ACCT`: not needed, answered 202.
    Acct,
    /// `CWD path` (and `XCWD`).
    Cwd(String),
    /// `CDUP` (and `XCUP`).
    Cdup,
    /// `PWD` (and `XPWD`).
    Pwd,
    /// LIST with an optional path (ls-style options such as `-la` removed).
    List(Option<String>),
    /// NLST with an optional path (names only; ls-style options removed).
    Nlst(Option<String>),
    /// MLSD with an optional directory (RFC 3659 section 7).
    Mlsd(Option<String>),
    /// MLST with an optional path (RFC 3659 section 7).
    Mlst(Option<String>),
    /// `RETR path`: download.
    Retr(String),
    /// `STOR path`: upload, replacing the file.
    Stor(String),
    /// `STOU`: upload under a unique name fxpd picks.
    Stou,
    /// `APPE path`: upload, appending to the file.
    Appe(String),
    /// `REST offset`: where the next RETR or STOR starts (RFC 3659 section 5).
    Rest(u64),
    /// `DELE path`: delete a file.
    Dele(String),
    /// `RMD path` (and `XRMD`): remove a directory.
    Rmd(String),
    /// `MKD path` (and `XMKD`): make a directory.
    Mkd(String),
    /// `RNFR path`: the file or directory to rename.
    Rnfr(String),
    /// `RNTO path`: its new name.
    Rnto(String),
    /// `SIZE path` (RFC 3659 section 4).
    Size(String),
    /// `MDTM path`: modification time (RFC 3659 section 3).
    Mdtm(String),
    /// `TYPE A` or `TYPE I`.
    Type(TransferType),
    /// MODE: only S (stream) is accepted by the parser.
    ModeStream,
    /// STRU: only F (file) is accepted by the parser.
    StruFile,
    /// `SYST`.
    Syst,
    /// `STAT`: the session's status, or with a path, its listing over the control connection.
    Stat(Option<String>),
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `ABOR`: abort the running transfer.
    Abor,
    /// `FEAT`: the extensions fxpd supports (RFC 2389).
    Feat,
    /// `OPTS` (RFC 2389).
    Opts(OptsArg),
    /// `HELP` with an optional verb (upper-cased).
    Help(Option<String>),
    /// `ALLO n [R m]` (RFC 959 4.1.3): the size in bytes of the file the next upload sends
    /// (the record size `R m` is accepted and ignored); `None` without an argument.
    Allo(Option<u64>),
    /// `SITE` with its sub-command.
    Site(SiteArg),
    /// PORT h1,h2,h3,h4,p1,p2: an IPv4 address and port, fully parsed.
    Port(SocketAddrV4),
    /// `PASV`: open a passive listener (IPv4 reply).
    Pasv,
    /// EPRT |proto|addr|port|: fully parsed.
    Eprt(SocketAddr),
    /// `EPSV [1|2|ALL]`: open a passive listener, or `EPSV ALL`.
    Epsv(EpsvArg),
    /// `AUTH` with its mechanism, upper-cased (RFC 4217 section 4: `TLS`, also `TLS-C`, `SSL`,
    /// `TLS-P`; others are refused).
    Auth(String),
    /// PBSZ: only 0 is meaningful for TLS (RFC 4217 9).
    Pbsz,
    /// PROT C (clear) or P (private) data channel protection (RFC 4217 9).
    Prot(bool),
    /// CCC: clear the control channel (refused).
    Ccc,
    /// SSCN [ON|OFF]: be the TLS client (ON) or server (OFF) on data connections; `None`
    /// asks for the current method.
    Sscn(Option<bool>),
    /// CPSV: PASV, with fxpd as the TLS client on that data connection.
    Cpsv,
    /// HASH path (draft-bryan-ftp-hash): the file's digest with the selected algorithm.
    Hash(String),
}

impl Command {
    /// The verb as sent on the wire, for logs and STAT.
    pub fn verb(&self) -> &'static str {
        use Command::*;
        match self {
            User(_) => "USER",
            Pass(_) => "PASS",
            Acct => "ACCT",
            Cwd(_) => "CWD",
            Cdup => "CDUP",
            Pwd => "PWD",
            List(_) => "LIST",
            Nlst(_) => "NLST",
            Mlsd(_) => "MLSD",
            Mlst(_) => "MLST",
            Retr(_) => "RETR",
            Stor(_) => "STOR",
            Stou => "STOU",
            Appe(_) => "APPE",
            Rest(_) => "REST",
            Dele(_) => "DELE",
            Rmd(_) => "RMD",
            Mkd(_) => "MKD",
            Rnfr(_) => "RNFR",
            Rnto(_) => "RNTO",
            Size(_) => "SIZE",
            Mdtm(_) => "MDTM",
            Type(_) => "TYPE",
            ModeStream => "MODE",
            StruFile => "STRU",
            Syst => "SYST",
            Stat(_) => "STAT",
            Noop => "NOOP",
            Quit => "QUIT",
            Abor => "ABOR",
            Feat => "FEAT",
            Opts(_) => "OPTS",
            Help(_) => "HELP",
            Allo(_) => "ALLO",
            Site(_) => "SITE",
            Port(_) => "PORT",
            Pasv => "PASV",
            Eprt(_) => "EPRT",
            Epsv(_) => "EPSV",
            Auth(_) => "AUTH",
            Pbsz => "PBSZ",
            Ccc => "CCC",
            Sscn(_) => "SSCN",
            Cpsv => "CPSV",
            Hash(_) => "HASH",
            Prot(_) => "PROT",
        }
    }

    /// The argument worth logging (a path, a name or a data address; never a password).
    pub fn log_arg(&self) -> Option<String> {
        use Command::*;
        match self {
            User(s) | Cwd(s) | Retr(s) | Stor(s) | Appe(s) | Dele(s) | Rmd(s) | Mkd(s) | Rnfr(s)
            | Rnto(s) | Size(s) | Mdtm(s) | Hash(s) | Auth(s) => Some(s.clone()),
            List(s) | Nlst(s) | Mlsd(s) | Mlst(s) | Stat(s) => s.clone(),
            Port(addr) => Some(addr.to_string()),
            Eprt(addr) => Some(addr.to_string()),
            _ => None,
        }
    }

    /// Commands accepted before login.
    pub fn allowed_before_login(&self) -> bool {
        use Command::*;
        matches!(
            self,
            User(_)
                | Pass(_)
                | Acct
                | Quit
                | Noop
                | Feat
                | Syst
                | Help(_)
                | Opts(_)
                | Auth(_)
                | Pbsz
                | Prot(_)
                | Ccc
        )
    }
}

/// Every verb fxpd implements, for HELP.
pub const VERBS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CPSV", "CWD", "DELE", "EPRT", "EPSV", "FEAT",
    "HASH", "HELP", "LIST", "MDTM", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS", "PASS", "PASV",
    "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REST", "RETR", "RMD", "RNFR", "RNTO", "SITE", "SIZE", "SSCN",
    "STAT", "STOR", "STOU", "STRU", "SYST", "TYPE", "USER", "XCUP", "XCWD", "XMKD", "XPWD", "XRMD",
];
