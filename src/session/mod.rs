//! One control connection: the task that owns a session's state (RFC 959 5.4 sequencing).
//!
//! The task reads typed commands, answers each with a
//! [`Reply`](crate::control::reply::Reply), and runs at most one transfer at a time in a
//! task of its own, so STAT, ABOR and NOOP are answered while data flows (the KB Q247132
//! procedure polls STAT during a server-to-server transfer). Any other command that arrives
//! during a transfer, QUIT included, waits for the transfer's final reply. Nothing here is
//! shared with other sessions except the read-only configuration, the policy and the login
//! guard.
//!
//! - this file: what every session shares ([`Shared`], [`Settings`]) and one session's state;
//! - `task`: the task itself: greeting, the command loop, timeouts, and the one place where
//!   a session writes replies;
//! - `dispatch`: the login gate and one arm per verb; `answer`: what handlers return
//!   (`Answer` or a typed `Failure`) and the one function that turns errors into replies;
//! - handlers by concern: `login` (USER, PASS, QUIT), `security` (AUTH, PBSZ, PROT, CCC,
//!   SSCN), `dataconn` (PORT, EPRT, PASV, EPSV, CPSV), `files` (CWD, MKD, DELE, RNFR, SIZE,
//!   MLST, HASH...), `transfers` (RETR, STOR, APPE, STOU, LIST, NLST, MLSD, REST, ABOR),
//!   `info` (FEAT, SYST, STAT, HELP, OPTS, TYPE, SITE);
//! - [`path`]: virtual paths (the crate's [`crate::path`], re-exported).
//!
//! The data connection itself (accept or connect, TLS, the bytes, the outcome) belongs to
//! [`crate::datachan`]; the session asks it for a transfer and maps the outcome to a reply.

mod answer;
mod dataconn;
mod dispatch;
mod files;
mod info;
mod login;
pub use crate::path;
mod security;
mod task;
mod transfers;

pub use task::run;

use crate::auth::{FtpUser, GuardConfig, Login, LoginGuard, UserDb};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::control::codec::LineReader;
use crate::control::command::TransferType;
use crate::control::stream::ControlStream;
use crate::datachan::rate::Limiter;
use crate::datachan::{Plan, Transfer};
use crate::policy::{Policy, Who};
use crate::server::admission::Seat;
use crate::storage::{Home, UploadGuard};
use crate::tls::{SessionTls, Tls};
use crate::w3c::W3cLog;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use transfers::TransferVerb;

/// What every session shares: the current settings and the server-wide decision makers.
pub struct Shared {
    /// The settings in force; a reload swaps in a new version as a whole.
    current: RwLock<Arc<Settings>>,
    /// The one place that approves data-connection addresses.
    pub policy: Arc<Policy>,
    /// Failed-login accounting; kept across reloads so a reload does not lift lockouts.
    guard: Arc<LoginGuard>,
    /// The W3C command log, when `log.w3c_dir` was set at start.
    w3c: Option<W3cLog>,
    /// Server-wide download rate limit (`limits.global_download_bytes_per_sec`).
    download_limit: Arc<Limiter>,
    /// Server-wide upload rate limit (`limits.global_upload_bytes_per_sec`).
    upload_limit: Arc<Limiter>,
    /// Numbers sessions for logs.
    next_session: AtomicU64,
    /// Lockouts and bans shared with the other nodes of a cluster (or this node alone).
    pub cluster: Arc<Cluster>,
    /// Cancelled when the server stops: idle sessions close, transfers are let finish.
    pub shutdown: CancellationToken,
    /// Where files live (`[storage]`, fixed at start).
    pub backend: crate::storage::Backend,
}

/// One consistent version of the configuration and what is built from it.
pub struct Settings {
    /// The validated configuration.
    pub config: Config,
    /// Password checks and anonymous access, from the users file as last loaded.
    pub login: Login,
    /// Certificate and key as last loaded; `None` when TLS is not configured.
    pub tls: Option<Arc<Tls>>,
}

impl Shared {
    /// Build the shared state from a validated configuration (loads the users file);
    /// lockouts and bans are shared with other nodes through `cluster`.
    pub fn new(config: Config, cluster: Arc<Cluster>, shutdown: CancellationToken) -> Result<Shared, String> {
        let policy = Arc::new(Policy::new(config.fxp.clone()));
        policy.set_proxy_trusted(config.proxy.trusted.clone());
        let guard = Arc::new(LoginGuard::new(guard_config(&config)).shared_through(cluster.clone()));
        let limits = config.limits.clone();
        let w3c = match &config.log.w3c_dir {
            Some(dir) => Some(W3cLog::start(dir).map_err(|e| format!("log.w3c_dir {}: {e}", dir.display()))?),
            None => None,
        };
        let data_timeout = Duration::from_secs(config.limits.data_timeout_secs);
        let backend = crate::storage::Backend::new(&config.storage, data_timeout)?;
        let settings = Settings::new(config, guard.clone())?;
        Ok(Shared {
            backend,
            current: RwLock::new(Arc::new(settings)),
            policy,
            guard,
            w3c,
            download_limit: Limiter::new(limits.global_download_bytes_per_sec),
            upload_limit: Limiter::new(limits.global_upload_bytes_per_sec),
            next_session: AtomicU64::new(1),
            cluster,
            shutdown,
        })
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Apply a reloaded configuration: the FXP policy changes for every session's next
    /// decision, new logins see the new users file, root and limits. What was built at start
    /// from [`crate::config::RESTART_KEYS`] stays as it is. On error nothing changes.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let settings = Settings::new(config, self.guard.clone())?;
        self.policy.reload(settings.config.fxp.clone());
        self.policy
            .set_proxy_trusted(settings.config.proxy.trusted.clone());
        let limits = &settings.config.limits;
        self.download_limit.set_rate(limits.global_download_bytes_per_sec);
        self.upload_limit.set_rate(limits.global_upload_bytes_per_sec);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(settings);
        Ok(())
    }
}

impl Settings {
    fn new(config: Config, guard: Arc<LoginGuard>) -> Result<Settings, String> {
        let users = match &config.users_file {
            Some(path) => UserDb::load(path, &config.root).map_err(|e| e.to_string())?,
            None => UserDb::empty(&config.root),
        };
        let login = Login::new(
            Arc::new(users),
            config.anonymous.clone(),
            config.root.clone(),
            guard,
        );
        let tls = Tls::load(&config.tls)?;
        Ok(Settings { config, login, tls })
    }
}

fn guard_config(config: &Config) -> GuardConfig {
    let limits = &config.limits;
    GuardConfig {
        failure_delay: Duration::from_millis(limits.failed_login_delay_ms),
        max_failures: limits.max_login_failures,
        window: Duration::from_secs(limits.lockout_secs),
        lockout: Duration::from_secs(limits.lockout_secs),
        max_slowdown: Duration::from_millis(limits.user_slowdown_max_ms),
    }
}

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
}

/// The transfer currently running in its own task.
struct Running {
    /// The transfer's task: its outcome, the bytes moved so far, abort.
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
    /// The path RNFR named; RNTO must come next, so every command takes it.
    rename_from: Option<String>,
    /// How the next data connection is made (PORT/EPRT/PASV/EPSV/CPSV); a transfer takes it.
    data: Option<Plan>,
    /// EPSV ALL was sent: the policy refuses every other data-setup command (RFC 2428 4).
    epsv_all: bool,
    /// The transfer running now, if any (one at a time).
    transfer: Option<Running>,
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
