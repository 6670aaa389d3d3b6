//! What every session shares, and how a reload changes it: the settings in force (swapped as
//! a whole), the policy, the login guard, the global rate limits, the W3C log, the cluster
//! link, the storage back-end and the shutdown token. Built once at start by
//! [`crate::run`]; the listener and every session hold it through an `Arc`, and
//! [`Shared::follow_reloads`] applies each reloaded configuration to it.

use super::live::Registry;
use super::metrics::{self, Metrics};
use crate::auth::{GuardConfig, Login, LoginGuard, UserDb};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::control::reply::{Code, Reply};
use crate::datachan::rate::Limiter;
use crate::logging;
use crate::policy::Policy;
use crate::service;
use crate::tls::Tls;
use crate::w3c::W3cLog;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What every session shares: the current settings and the server-wide decision makers.
pub struct Shared {
    /// The settings in force; a reload swaps in a new version as a whole.
    current: RwLock<Arc<Settings>>,
    /// The one place that approves data-connection addresses.
    pub policy: Arc<Policy>,
    /// Failed-login accounting; kept across reloads so a reload does not lift lockouts.
    guard: Arc<LoginGuard>,
    /// The W3C command log, when `log.w3c_dir` is set; a reload that changes the directory
    /// swaps in a new writer (the old one flushes and ends once its last line is written).
    w3c: RwLock<Option<W3cLog>>,
    /// Server-wide download rate limit (`limits.global_download_bytes_per_sec`).
    pub download_limit: Arc<Limiter>,
    /// Server-wide upload rate limit (`limits.global_upload_bytes_per_sec`).
    pub upload_limit: Arc<Limiter>,
    /// Numbers sessions for logs.
    next_session: AtomicU64,
    /// Lockouts and bans shared with the other nodes of a cluster (or this node alone).
    pub cluster: Arc<Cluster>,
    /// Cancelled when the server stops: idle sessions close, transfers are let finish.
    pub shutdown: CancellationToken,
    /// Where files live (`[storage]`, fixed at start).
    pub backend: crate::storage::Backend,
    /// Quota usage per account, in the state file next to the users file the server started
    /// with (`quota_bytes`, `quota_files`).
    pub quotas: crate::auth::quota::QuotaBook,
    /// Sessions logged in per account (`max_sessions`), kept across reloads.
    pub user_sessions: Arc<super::user_sessions::UserSessions>,
    /// Every open session and its running transfer, for the admin listener.
    pub live: Arc<Registry>,
    /// The counted events (logins, transfers, reloads) for `GET /metrics`.
    pub metrics: Metrics,
    /// The configuration the server started with: what a reload compares against to name
    /// the settings that wait for a restart.
    started: Config,
    /// Held while a reload runs: SIGHUP and the admin listener never reload at once.
    reloading: tokio::sync::Mutex<()>,
    /// The users file and its metadata as the last reload (or the start) found them just
    /// before reading it, for [`super::users_watch`].
    users_file_tried: std::sync::Mutex<super::users_watch::Tried>,
}

/// Re-reads every configuration source (file, environment, flags) for a reload; the binary
/// gives it, so the library never guesses where the configuration came from.
pub type Reread = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// What a reload changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// Every setting whose value changed, dotted.
    pub changed: Vec<String>,
    /// Those among them that keep their start-up values until a restart.
    pub needs_restart: Vec<String>,
}

/// What [`Shared::lift`] lifted.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Lifted {
    /// A ban for refused data connections.
    pub ban: bool,
    /// A lockout after failed logins.
    pub lockout: bool,
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
        let w3c = start_w3c(config.log.w3c_dir.as_deref())?;
        let data_timeout = Duration::from_secs(config.limits.data_timeout_secs);
        let backend = crate::storage::Backend::new(&config.storage, data_timeout)?;
        let started = config.clone();
        let quotas = crate::auth::quota::QuotaBook::open(config.users_file.as_deref())?;
        let users_file_tried = users_file_now(&config);
        let settings = Settings::new(config, guard.clone())?;
        Ok(Shared {
            live: Arc::new(Registry::default()),
            metrics: Metrics::new(),
            started,
            reloading: tokio::sync::Mutex::new(()),
            users_file_tried: std::sync::Mutex::new(users_file_tried),
            backend,
            current: RwLock::new(Arc::new(settings)),
            policy,
            guard,
            w3c: RwLock::new(w3c),
            download_limit: Limiter::new(limits.global_download_bytes_per_sec),
            upload_limit: Limiter::new(limits.global_upload_bytes_per_sec),
            next_session: AtomicU64::new(1),
            cluster,
            shutdown,
            user_sessions: Arc::default(),
            quotas,
        })
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The W3C command log in force now, if it is on: each line goes to the writer in force
    /// when it is logged.
    pub fn w3c(&self) -> Option<W3cLog> {
        self.w3c.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A new session's number for the logs.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Apply a reloaded configuration: the FXP policy changes for every session's next
    /// decision, new logins see the new users file, root and limits, and a changed
    /// `log.w3c_dir` starts a new W3C log (or ends it) for the next line. What was built at
    /// start from [`crate::config::RESTART_KEYS`] stays as it is. On error nothing changes:
    /// a W3C directory that cannot be opened refuses the whole reload.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let settings = Settings::new(config, self.guard.clone())?;
        // Everything that can fail comes before anything changes.
        let new_w3c = match &settings.config.log.w3c_dir {
            dir if *dir == self.settings().config.log.w3c_dir => None,
            dir => Some(start_w3c(dir.as_deref())?),
        };
        self.policy.reload(settings.config.fxp.clone());
        self.policy
            .set_proxy_trusted(settings.config.proxy.trusted.clone());
        let limits = &settings.config.limits;
        self.download_limit.set_rate(limits.global_download_bytes_per_sec);
        self.upload_limit.set_rate(limits.global_upload_bytes_per_sec);
        if let Some(w3c) = new_w3c {
            // The old writer (if any) drains what is queued, flushes and ends when the last
            // handle to it drops.
            *self.w3c.write().unwrap_or_else(PoisonError::into_inner) = w3c;
        }
        // The accounts' shared buckets follow the new users file, running transfers included.
        self.user_sessions
            .retune(|name| settings.login.account_rates(name));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(settings);
        Ok(())
    }

    /// Re-read the configuration with `reread` and apply it ([`Shared::reload`]): the one
    /// reload path, for SIGHUP (and the Windows service's parameter change) through
    /// [`Shared::follow_reloads`] and for the admin listener's `POST /api/reload`. One reload
    /// runs at a time. An invalid configuration, or one that cannot be applied, is refused
    /// (logged, counted) and the old one stays; changed settings that keep their start-up
    /// values until a restart are named in one warning. The service manager is told the
    /// server is ready again after each.
    pub async fn reload_from(&self, reread: &Reread) -> Result<ReloadReport, String> {
        let _one_at_a_time = self.reloading.lock().await;
        service::notify(service::Status::Reloading);
        // Before anything is read: an edit during the read is a change the watch sees.
        let tried = users_file_now(&self.settings().config);
        *self
            .users_file_tried
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = tried;
        let result = match reread() {
            Err(e) => Err(format!("the configuration is invalid: {e}")),
            Ok(config) => {
                let before = self.settings().config.clone();
                // Compared with the start-up values: those stay in force until a restart.
                let needs_restart = crate::config::needs_restart(&self.started, &config);
                let changed = crate::config::changed(&before, &config);
                let log = config.log.clone();
                self.reload(config).map(|()| {
                    logging::apply(&log);
                    ReloadReport {
                        changed,
                        needs_restart,
                    }
                })
            }
        };
        match &result {
            Ok(report) => {
                if !report.needs_restart.is_empty() {
                    tracing::warn!(
                        event = "reload_needs_restart",
                        settings = %report.needs_restart.join(","),
                        "these changed settings keep their start-up values until a restart"
                    );
                }
                tracing::info!(event = "config_reloaded", changed = %report.changed.join(","), "configuration reloaded");
            }
            Err(e) => tracing::error!(
                event = "reload_refused",
                error = %e,
                "reload refused; the previous configuration stays"
            ),
        }
        self.metrics.reload(result.is_ok());
        service::notify(service::Status::Ready);
        result
    }

    /// The users file and its metadata as the last reload (or the start) found them.
    pub fn users_file_tried(&self) -> super::users_watch::Tried {
        self.users_file_tried
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reload ([`Shared::reload_from`]) at each request received on `requests` until the
    /// channel closes.
    pub async fn follow_reloads(self: Arc<Self>, reread: Reread, mut requests: mpsc::Receiver<()>) {
        while requests.recv().await.is_some() {
            let _ = self.reload_from(&reread).await;
        }
    }

    /// Lift the ban and the login lockout of `ip` on this node and, in a cluster, on every
    /// node (an operator's decision through the admin listener). Returns what was lifted.
    pub async fn lift(&self, ip: IpAddr) -> Lifted {
        let ip = crate::policy::normalize(ip);
        let lifted = Lifted {
            ban: self.policy.lift_ban(ip),
            lockout: self.guard.lift(ip),
        };
        self.cluster
            .lift(crate::cluster::Scope::DataBan, &crate::cluster::client_key(ip))
            .await;
        self.cluster
            .lift(
                crate::cluster::Scope::LoginClient,
                &crate::auth::ip_key(ip).to_string(),
            )
            .await;
        if lifted.lockout {
            tracing::warn!(target: "fxpd::security", event = "lockout_lifted", client = %ip, "login lockout lifted by the operator");
        }
        lifted
    }

    /// The client addresses locked out after failed logins, with the time left.
    pub fn lockouts(&self) -> Vec<(IpAddr, Duration)> {
        self.guard.lockouts()
    }

    /// The figures for `GET /metrics`, in the OpenMetrics text format.
    pub fn metrics_text(&self) -> String {
        let policy = self.policy.stats();
        let ports = self.settings().config.passive.ports;
        self.metrics.render(metrics::Now {
            sessions: self.live.counts(),
            policy: &policy,
            lockouts: self.guard.lockouts().len(),
            passive_range: u64::from(ports.last - ports.first) + 1,
        })
    }

    /// The one ban check for a new control connection from `client`, banned here or (through
    /// the cluster) by another node: a ban another node set is copied into the policy first,
    /// then the policy's ban list decides. `Some` is the refusal to send before closing.
    pub async fn refuse_banned(&self, client: IpAddr) -> Option<Reply> {
        self.cluster.import_ban(&self.policy, client).await;
        self.policy.is_banned(client).then(|| {
            Reply::new(
                Code::SERVICE_NOT_AVAILABLE,
                "Service not available: your address is temporarily banned.",
            )
        })
    }
}

impl Settings {
    fn new(config: Config, guard: Arc<LoginGuard>) -> Result<Settings, String> {
        let users = match &config.users_file {
            Some(path) => UserDb::load(path, &config.root).map_err(|e| e.to_string())?,
            None => UserDb::empty(&config.root),
        };
        users.check_folders(config.storage.kind)?;
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

/// The users file `config` names and its metadata now.
fn users_file_now(config: &Config) -> super::users_watch::Tried {
    config
        .users_file
        .as_ref()
        .map(|path| (path.clone(), super::users_watch::fingerprint(path)))
}

/// The W3C log for `log.w3c_dir` (`None`: off); the directory is created if missing.
fn start_w3c(dir: Option<&std::path::Path>) -> Result<Option<W3cLog>, String> {
    dir.map(|dir| W3cLog::start(dir).map_err(|e| format!("log.w3c_dir {}: {e}", dir.display())))
        .transpose()
}

/// The login guard's limits, from `[limits]`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_with_default_path, Overrides};

    /// The shared state of a server with the built-in configuration and no cluster.
    fn shared() -> Shared {
        let no_file = std::env::temp_dir()
            .join("fxpd-state-test-no-such-dir")
            .join("fxpd.toml");
        let loaded = load_with_default_path(None, &no_file, &[], &Overrides::default()).unwrap();
        Shared::new(
            loaded.config,
            Arc::new(Cluster::local()),
            CancellationToken::new(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_banned_address_is_refused_with_one_421_in_either_spelling() {
        let shared = shared();
        let banned: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(
            shared.refuse_banned(banned).await.is_none(),
            "nobody is banned yet"
        );
        shared.policy.import_ban(banned, Duration::from_secs(60));
        let refusal = shared.refuse_banned(banned).await.expect("banned");
        assert_eq!(refusal.code, Code::SERVICE_NOT_AVAILABLE);
        assert!(refusal.lines[0].contains("banned"), "{refusal:?}");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(
            shared.refuse_banned(mapped).await.is_some(),
            "IPv4-mapped spelling let in"
        );
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(
            shared.refuse_banned(other).await.is_none(),
            "another address refused"
        );
    }
}
