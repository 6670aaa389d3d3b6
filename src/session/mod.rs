//! One control connection: the task that owns a session's state (RFC 959 5.4 sequencing).
//!
//! The task reads typed commands, answers each with a [`Reply`], and runs at most one
//! transfer at a time in a task of its own, so STAT, ABOR, NOOP and QUIT are answered while
//! data flows (the KB Q247132 procedure polls STAT during a server-to-server transfer).
//! Any other command that arrives during a transfer waits for the transfer's final reply.
//! Nothing here is shared with other sessions except the read-only configuration, the
//! policy and the login guard.

mod commands;
pub mod path;

use crate::auth::{FtpUser, GuardConfig, Login, LoginGuard, UserDb};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::control::codec::{write_reply, Line, LineReader};
use crate::control::command::{Command, TransferType};
use crate::control::parser::parse;
use crate::control::reply::{Code, Reply};
use crate::control::stream::ControlStream;
use crate::datachan::rate::Limiter;
use crate::datachan::{Plan, Transfer};
use crate::policy::{Policy, Who};
use crate::server::admission::Seat;
use crate::storage::{Storage, UploadGuard};
use crate::tls::Tls;
use crate::w3c::W3cLog;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
    /// decision, new logins see the new users file, root and limits. Listen addresses need a
    /// restart. On error nothing changes.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let old = self.settings();
        if old.config.listen != config.listen {
            tracing::warn!("listen addresses changed: they take effect after a restart");
        }
        if old.config.cluster != config.cluster {
            tracing::warn!("cluster settings changed: they take effect after a restart");
        }
        if old.config.storage != config.storage {
            tracing::warn!("storage settings changed: they take effect after a restart");
        }
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

/// Login progress.
enum AuthState {
    Fresh,
    UserGiven(String),
    LoggedIn(Box<LoggedIn>),
}

/// A logged-in session's identity and file system view.
struct LoggedIn {
    user: FtpUser,
    who: Who,
    /// The home directory: local files or an object-key prefix.
    storage: Storage,
    cwd: String,
}

/// The transfer currently running in its own task.
struct Running {
    transfer: Transfer,
    verb: &'static str,
    path: String,
    size: Option<u64>,
    started: Instant,
    /// An object upload: discarded (aborted) unless it completes.
    upload: Option<Arc<UploadGuard>>,
}

/// What the main loop does after a command.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The state of one control connection, owned by its task.
struct Session {
    shared: Arc<Shared>,
    /// The settings for the command being handled (refreshed before each command).
    settings: Arc<Settings>,
    peer: SocketAddr,
    local: SocketAddr,
    /// The control connection: lines in, replies out (plain or TLS).
    conn: LineReader<ControlStream>,
    /// This session's number in the logs.
    id: u64,
    /// The code of the last reply sent, for the command log.
    last_code: u16,
    auth: AuthState,
    /// PROT P: data connections are protected by TLS (RFC 4217 9).
    prot_private: bool,
    /// SSCN ON: fxpd is the TLS client on protected data connections (FXP with TLS).
    sscn_client: bool,
    /// CPSV: the next passive data connection uses the TLS client role.
    cpsv_once: bool,
    /// This control connection's own TLS acceptors (session cache), once TLS is on; data
    /// connections must resume a session from them.
    tls_acceptors: Option<crate::tls::SessionTls>,
    login_failures: u32,
    /// This connection's seat: waiting until the login succeeds, then logged in.
    seat: Seat,
    transfer_type: TransferType,
    rest: u64,
    rename_from: Option<String>,
    data: Option<Plan>,
    epsv_all: bool,
    transfer: Option<Running>,
}

mod transfer;

/// Serve one control connection until QUIT, timeout, shutdown or disconnect. On an
/// implicit FTPS listener (`implicit_tls`) TLS starts before the greeting. The caller
/// instruments this future with a span naming the client.
///
/// `peer` is the client: the TCP peer, or the source of a trusted load balancer's PROXY header,
/// in which case `proxy` is the balancer's address (logged once, beside the client's). `seat`
/// is the connection's waiting seat; the session moves it to a logged-in seat at login, and
/// closes when a newcomer takes it over before that.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    proxy: Option<SocketAddr>,
    shared: Arc<Shared>,
    implicit_tls: bool,
    seat: Seat,
) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    // Replies must leave at once: without this Nagle holds a 226 until the client's delayed
    // ACK of the 150 (a fixed ~40 ms stall per transfer).
    let _ = stream.set_nodelay(true);
    let settings = shared.settings();
    let mut tls_acceptors = None;
    let conn = if implicit_tls {
        let Some(tls) = settings.tls.clone() else { return };
        let acceptors = match tls.session_acceptors() {
            Ok(acceptors) => acceptors,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS for the session");
                return;
            }
        };
        let timeout = Duration::from_secs(settings.config.limits.login_timeout_secs);
        match tokio::time::timeout(timeout, acceptors.control.accept(stream)).await {
            Ok(Ok(s)) => {
                tls_acceptors = Some(acceptors);
                ControlStream::Tls(Box::new(s))
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "implicit TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!("implicit TLS handshake timed out");
                return;
            }
        }
    } else {
        ControlStream::plain(stream)
    };
    let conn = LineReader::new(conn, settings.config.limits.max_line_len);
    let id = shared
        .next_session
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut session = Session {
        shared,
        settings,
        peer,
        local,
        id,
        conn,
        last_code: 0,
        auth: AuthState::Fresh,
        prot_private: false,
        sscn_client: false,
        cpsv_once: false,
        tls_acceptors,
        login_failures: 0,
        seat,
        transfer_type: TransferType::Ascii,
        rest: 0,
        rename_from: None,
        data: None,
        epsv_all: false,
        transfer: None,
    };
    match proxy {
        Some(proxy) => tracing::info!(client = %peer, proxy = %proxy, "connected through a load balancer"),
        None => tracing::info!("connected"),
    }
    // A ban set by another node of the cluster: refused like the listener refuses a local one.
    session
        .shared
        .cluster
        .import_ban(&session.shared.policy, peer.ip())
        .await;
    if session.shared.cluster.is_shared() && session.shared.policy.is_banned(peer.ip()) {
        tracing::info!(target: "fxpd::security", client = %peer.ip(), "connection from banned address refused");
        let _ = session.send(crate::server::banned()).await;
        return;
    }
    let banner = Reply::new(Code::READY, session.settings.config.banner.clone());
    if session.send(banner).await.is_err() {
        return;
    }
    let result = session.main_loop().await;
    // A transfer still running stops with the session (dropping it aborts it).
    drop(session.transfer.take());
    match result {
        Ok(()) => tracing::info!("disconnected"),
        Err(e) => tracing::info!(error = %e, "connection lost"),
    }
}

impl Session {
    async fn send(&mut self, reply: Reply) -> std::io::Result<()> {
        self.last_code = reply.code.0;
        write_reply(self.conn.get_mut(), &reply).await
    }

    /// One line in the W3C log, if it is on.
    fn log_w3c(&self, method: &'static str, uri: Option<&str>, sc_bytes: u64, cs_bytes: u64, took: Duration) {
        let Some(w3c) = &self.shared.w3c else { return };
        w3c.log(crate::w3c::Entry {
            time: std::time::SystemTime::now(),
            client: crate::policy::normalize(self.peer.ip()),
            user: self.logged_in().map(|l| l.user.name.clone()),
            server: self.local,
            method,
            uri: uri.unwrap_or("-").to_owned(),
            status: self.last_code,
            sc_bytes,
            cs_bytes,
            took,
            session: self.id,
        });
    }

    /// Log a finished transfer with its final reply.
    fn log_transfer(&self, running: &Running) {
        let moved = running.transfer.moved();
        let upload = matches!(running.verb, "STOR" | "APPE" | "STOU");
        let (sc, cs) = if upload { (0, moved) } else { (moved, 0) };
        self.log_w3c(
            running.verb,
            Some(&running.path),
            sc,
            cs,
            running.started.elapsed(),
        );
    }

    async fn main_loop(&mut self) -> std::io::Result<()> {
        let limits = self.settings.config.limits.clone();
        let idle = Duration::from_secs(limits.idle_timeout_secs);
        let login_deadline = Instant::now() + Duration::from_secs(limits.login_timeout_secs);
        let shutdown = self.shared.shutdown.clone();
        let mut last_activity = Instant::now();
        loop {
            let logged_in = matches!(self.auth, AuthState::LoggedIn(_));
            let deadline = if logged_in {
                last_activity + idle
            } else {
                login_deadline.min(last_activity + idle)
            };
            let transferring = self.transfer.is_some();
            let (conn, transfer, evicted) = (&mut self.conn, &mut self.transfer, self.seat.evicted());
            tokio::select! {
                biased;
                outcome = async { (&mut transfer.as_mut().expect("guarded").transfer).await }, if transferring => {
                    let running = self.transfer.take().expect("guarded");
                    let reply = transfer::final_reply(&running, outcome);
                    self.send(reply).await?;
                    self.log_transfer(&running);
                    last_activity = Instant::now();
                }
                _ = shutdown.cancelled(), if !transferring => {
                    let _ = self.send(Reply::new(Code::SERVICE_NOT_AVAILABLE, "Server shutting down, closing control connection.")).await;
                    return Ok(());
                }
                _ = evicted.cancelled(), if !logged_in => {
                    tracing::info!(target: "fxpd::security", "closed before login to make room for a newcomer: this address held the most connections not logged in, and this one the longest");
                    let _ = self.send(Reply::new(Code::SERVICE_NOT_AVAILABLE, "Too many connections waiting to log in; closing the oldest.")).await;
                    return Ok(());
                }
                _ = tokio::time::sleep_until(deadline), if !transferring => {
                    let text = if logged_in { "Idle timeout, closing control connection." } else { "Login timeout, closing control connection." };
                    let _ = self.send(Reply::new(Code::SERVICE_NOT_AVAILABLE, text)).await;
                    return Ok(());
                }
                line = conn.next() => {
                    last_activity = Instant::now();
                    let line = match line? {
                        None => return Ok(()),
                        Some(Line::TooLong) => {
                            self.send(Reply::new(Code::SYNTAX_ERROR, "Command line too long.")).await?;
                            continue;
                        }
                        Some(Line::Command(bytes)) => bytes,
                    };
                    let command = match parse(&line) {
                        Ok(c) => c,
                        Err(e) => {
                            self.send(e.0).await?;
                            continue;
                        }
                    };
                    log_command(&command);
                    self.settings = self.shared.settings();
                    if self.transfer.is_some() && !matches!(command, Command::Stat(None) | Command::Abor | Command::Noop | Command::Quit) {
                        // RFC 959 sequencing: other commands wait for the transfer's final reply.
                        self.finish_transfer().await?;
                    }
                    let (verb, arg) = (command.verb(), command.log_arg());
                    let started = Instant::now();
                    let was_transferring = self.transfer.is_some();
                    let flow = self.handle(command).await?;
                    // A transfer that just started is logged with its final reply.
                    if was_transferring || self.transfer.is_none() {
                        self.log_w3c(verb, arg.as_deref(), 0, 0, started.elapsed());
                    }
                    if flow == Flow::Close {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Wait for the running transfer and send its final reply.
    async fn finish_transfer(&mut self) -> std::io::Result<()> {
        if let Some(mut running) = self.transfer.take() {
            let outcome = (&mut running.transfer).await;
            self.send(transfer::final_reply(&running, outcome)).await?;
            self.log_transfer(&running);
        }
        Ok(())
    }

    fn logged_in(&self) -> Option<&LoggedIn> {
        match &self.auth {
            AuthState::LoggedIn(l) => Some(l),
            _ => None,
        }
    }
}

fn log_command(command: &Command) {
    match command {
        // Never log passwords.
        Command::Pass(_) => tracing::debug!(command = "PASS", "command"),
        other => tracing::debug!(command = ?other, "command"),
    }
}
