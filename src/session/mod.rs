//! One control connection: the task that owns a session's state (RFC 959 5.4 sequencing).
//!
//! The task reads typed commands, answers each with a
//! [`Reply`](crate::control::reply::Reply), and runs at most one transfer at a time, polled
//! beside the control connection, so STAT, ABOR and NOOP are answered while data flows (the KB Q247132
//! procedure polls STAT during a server-to-server transfer). Any other command that arrives
//! during a transfer, QUIT included, waits for the transfer's final reply. Nothing here is
//! shared with other sessions except the read-only configuration, the policy and the login
//! guard, all held by the server-wide state ([`crate::server::Shared`]).
//!
//! - this file: one session's state;
//! - `task`: the task itself: greeting, the command loop, timeouts, and the one place where
//!   a session writes replies;
//! - `dispatch`: the login gate and one arm per verb; `answer`: what handlers return
//!   (`Answer` or a typed `Failure`) and the one function that turns errors into replies;
//! - handlers by concern: `login` (USER, PASS, QUIT), `security` (AUTH, PBSZ, PROT, CCC,
//!   SSCN), `dataconn` (PORT, EPRT, PASV, EPSV, CPSV), `files` (CWD, MKD, DELE, RNFR, SIZE,
//!   MLST, HASH...), `transfers` (RETR, STOR, APPE, STOU, LIST, NLST, MLSD, REST, ABOR),
//!   `info` (FEAT, SYST, STAT, HELP, OPTS, TYPE, SITE);
//! - `upload_terms`: what an upload may write (its right, size limit and quota room) and, when
//!   it ends whichever way, its charge;
//! - `rights`: the one rights check every file-touching handler makes ([`crate::rights`]);
//! - `live`: what the session publishes for the admin listener and counts for the metrics,
//!   how it obeys a kick, and the one way a running transfer is stopped;
//! - [`path`]: virtual paths (the crate's [`crate::path`], re-exported).
//!
//! The data connection itself (accept or connect, TLS, the bytes, the outcome) belongs to
//! [`crate::datachan`]; the session asks it for a transfer and maps the outcome to a reply.

mod answer;
mod dataconn;
mod dispatch;
mod files;
mod info;
mod live;
mod login;
mod quiet;
pub use crate::path;
mod rights;
mod security;
mod task;
mod transfers;
mod upload_terms;

pub use task::run;

use crate::auth::FtpUser;
use crate::control::codec::LineReader;
use crate::control::command::TransferType;
use crate::control::stream::ControlStream;
use crate::datachan::{Plan, Transfer};
use crate::policy::Who;
use crate::server::admission::Seat;
use crate::server::{Settings, Shared};
use crate::storage::{Home, UploadGuard};
use crate::tls::SessionTls;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;
use transfers::TransferVerb;

/// Login progress (RFC 959 4.1.1: USER, then PASS).
enum AuthState {
    /// No user named yet, or the login started over (a failed PASS, AUTH).
    Fresh,
    /// USER was accepted; PASS must follow.
    UserGiven(String),
    /// Logged in.
    LoggedIn(Box<LoggedIn>),
}

/// A logged-in session's identity and file system view.
struct LoggedIn {
    /// The account: home, write permission, TLS requirement, FXP override.
    user: FtpUser,
    /// Who the policy judges this session's data connections for.
    who: Who,
    /// The home directory: local files or an object-key prefix.
    home: Home,
    /// The working directory, a normalised virtual path (`/` is the home).
    cwd: String,
    /// This session's place in its account's `max_sessions`, given back when it ends, and
    /// the rate buckets it shares with the account's other sessions.
    user_seat: crate::server::user_sessions::UserSeat,
    /// The settings the virtual folders were last mounted from (`None`: not yet): they are
    /// mounted again only after a reload.
    mounted_with: Option<Arc<crate::server::Settings>>,
}

/// The transfer currently running (polled by the session's task beside the control connection).
struct Running {
    /// The transfer: its outcome, the bytes moved so far, abort.
    transfer: Transfer,
    /// The command, for logs, STAT and the final reply.
    verb: TransferVerb,
    /// The virtual path, for logs and STAT.
    path: String,
    /// The size to send, when known (STAT shows "n of size").
    size: Option<u64>,
    /// When the transfer started, for logs and the W3C log.
    started: Instant,
    /// An object upload: discarded (aborted) unless it completes.
    upload: Option<Arc<UploadGuard>>,
    /// An upload charged to its account's quota usage when it ends.
    charge: Option<upload_terms::Charge>,
    /// A file upload stopped at its size limit is cut back to this many bytes (0: removed).
    keep_on_overflow: Option<u64>,
}

/// What the main loop does after a command.
#[derive(PartialEq, Eq)]
enum Flow {
    /// Read the next command.
    Continue,
    /// Close the control connection.
    Close,
}

/// The state of one control connection, owned by its task. Handlers change it; only the task
/// loop writes to the connection.
struct Session {
    /// The server-wide state: settings, policy, login guard, limits, storage back-end.
    shared: Arc<Shared>,
    /// The settings for the command being handled (refreshed before each command), so one
    /// command sees one configuration even when a reload comes in meanwhile.
    settings: Arc<Settings>,
    /// The client (or the source a trusted load balancer named): logs, STAT, the policy.
    peer: SocketAddr,
    /// Our end of the control connection: passive listeners bind on its address, active
    /// connects start from it, PASV announces it.
    local: SocketAddr,
    /// The control connection: lines in, replies out (plain or TLS).
    conn: LineReader<ControlStream>,
    /// This session's number in the logs.
    id: u64,
    /// The code of the last reply sent, for the command log.
    last_code: u16,
    /// Login progress; most commands need `LoggedIn`.
    auth: AuthState,
    /// PROT P: data connections are protected by TLS (RFC 4217 9).
    prot_private: bool,
    /// SSCN ON: fxpd is the TLS client on protected data connections (FXP with TLS).
    sscn_client: bool,
    /// CPSV: the next passive data connection uses the TLS client role.
    cpsv_once: bool,
    /// This control connection's own TLS acceptors (session cache), once TLS is on; data
    /// connections must resume a session from them.
    tls_acceptors: Option<SessionTls>,
    /// Failed PASS attempts on this connection: at `limits.max_login_failures` it closes.
    login_failures: u32,
    /// This connection's seat: waiting until the login succeeds, then logged in.
    seat: Seat,
    /// TYPE A or I: whether file transfers convert line endings.
    transfer_type: TransferType,
    /// The REST offset for the next RETR or STOR (RFC 3659 5); 0 when none.
    rest: u64,
    /// The size ALLO announced for the next upload (RFC 959 4.1.3); the next STOR, APPE, STOU
    /// or RETR takes it.
    allo: Option<u64>,
    /// The path RNFR named; RNTO must come next, so every command takes it.
    rename_from: Option<String>,
    /// How the next data connection is made (PORT/EPRT/PASV/EPSV/CPSV); a transfer takes it.
    data: Option<Plan>,
    /// EPSV ALL was sent: the policy refuses every other data-setup command (RFC 2428 4).
    epsv_all: bool,
    /// The transfer running now, if any (one at a time).
    transfer: Option<Running>,
    /// This session in the live registry the admin listener reads, and its kick.
    live: live::Live,
    /// The logged-in account's rights and limits as the current command sees them: looked
    /// up at the first need and dropped before the next command, so one command sees one
    /// account and a reload reaches the next command.
    account_now: std::sync::OnceLock<Arc<crate::auth::Account>>,
}

impl Session {
    /// The logged-in state, if logged in.
    fn logged_in(&self) -> Option<&LoggedIn> {
        match &self.auth {
            AuthState::LoggedIn(l) => Some(l),
            _ => None,
        }
    }

    /// The logged-in state; handlers past the login gate may rely on it.
    fn login(&self) -> &LoggedIn {
        self.logged_in().expect("login gate checked in handle()")
    }
}
