//! The login procedure a session calls for `USER`/`PASS`: lockout check, user-name slowdown,
//! anonymous or users-file authentication, failure accounting, a failure answer padded to a
//! fixed time, and security logging.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use unftp_core::auth::{
    AuthenticationError, Authenticator, ChannelEncryptionState, Credentials, UserDetailProvider,
};

use super::guard::{ip_key, LoginGuard, NewLockouts};
use super::users::{is_reserved_name, revoked, Account, HomeError, RelHome, UserDb};
use super::FtpUser;
use crate::config::AnonymousConfig;
use crate::policy::FxpOverride;

/// Target of the security log events (failed logins, lockouts).
const LOG_TARGET: &str = "fxpd::security";

/// The name anonymous sessions log in under (whether the client said `anonymous` or `ftp`).
const ANONYMOUS_NAME: &str = "anonymous";

/// Longest user name written to the log (characters).
const MAX_LOGGED_NAME: usize = 64;

/// Longest time a failed login is padded to (beyond a name's slowdown), whatever the slowest
/// verification took.
const MAX_FAILURE_PAD: Duration = Duration::from_secs(30);

/// What the login procedure derives from `[anonymous]`.
impl AnonymousConfig {
    /// The absolute home of anonymous sessions under `root`, or why `home` is not acceptable
    /// (absolute, `..`, NUL, ...). The configuration module can call this to validate.
    pub fn home_path(&self, root: &Path) -> Result<PathBuf, HomeError> {
        match &self.home {
            None => Ok(root.to_path_buf()),
            Some(home) => Ok(RelHome::from_path(home)?.under(root)),
        }
    }
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong password (deliberately not told apart).
    BadCredentials,
    /// The client address or the user name is locked out after too many failures.
    LockedOut {
        /// How long until the lockout ends.
        retry_after: Duration,
    },
    /// `anonymous` / `ftp` was tried but anonymous login is disabled.
    AnonymousDisabled,
    /// A server-side problem (reported to the client as a temporary failure).
    Internal(String),
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::BadCredentials => f.write_str("invalid user name or password"),
            LoginError::LockedOut { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                write!(f, "too many failed logins; try again in {secs} seconds")
            }
            LoginError::AnonymousDisabled => f.write_str("anonymous login is disabled"),
            LoginError::Internal(what) => write!(f, "internal error during login: {what}"),
        }
    }
}

impl std::error::Error for LoginError {}

/// The login procedure shared by all sessions.
#[derive(Debug)]
pub struct Login {
    db: Arc<UserDb>,
    anonymous: AnonymousConfig,
    /// Absolute home of anonymous sessions, or why the configured one is refused (then
    /// anonymous logins fail closed).
    anonymous_home: Result<PathBuf, HomeError>,
    /// Anonymous sessions' rights and limits: `anonymous.write` as the default, the users
    /// file's `[anonymous]` and `[everyone]` tables.
    anonymous_account: Arc<Account>,
    guard: Arc<LoginGuard>,
}

/// A failure before the delay and logging are applied.
struct Failure {
    error: LoginError,
    /// For the log's `reason` field.
    reason: &'static str,
    /// Whether to count it in the guard, and under the user name too.
    count: Count,
}

enum Count {
    No,
    IpOnly,
    IpAndUser,
}

impl Login {
    /// A login procedure for users in `db`, anonymous access per `anonymous`, homes under
    /// `root` (the same path the storage back-end is rooted at), throttled by `guard`.
    pub fn new(db: Arc<UserDb>, anonymous: AnonymousConfig, root: PathBuf, guard: Arc<LoginGuard>) -> Login {
        let anonymous_home = anonymous.home_path(&root);
        let anonymous_account = Arc::new(db.anonymous_account(anonymous.write));
        Login {
            db,
            anonymous,
            anonymous_home,
            anonymous_account,
            guard,
        }
    }

    /// The rights and limits in force now for a session of `user` from `peer`: looked up
    /// again for every command, so a reload changes them for open sessions too.
    ///
    /// SECURITY: an account removed, disabled, expired or shut out of `peer`'s network since
    /// the login, or anonymous access switched off, may do nothing (fail closed).
    pub fn account(&self, user: &FtpUser, peer: IpAddr) -> Arc<Account> {
        let account = if user.anonymous {
            self.anonymous
                .enabled
                .then(|| Arc::clone(&self.anonymous_account))
        } else {
            self.db.account(&user.name)
        };
        match account {
            Some(a) if a.limits.refusal(peer, chrono::Utc::now).is_none() => a,
            _ => Arc::new(revoked()),
        }
    }

    /// The download and upload rates (`download_bytes_per_sec`, `upload_bytes_per_sec`) of
    /// the account whose sessions are counted under `name` (`anonymous` for anonymous
    /// sessions, a name no user can have); an unknown account has none.
    pub fn account_rates(&self, name: &str) -> (Option<u64>, Option<u64>) {
        let account = if name == ANONYMOUS_NAME {
            Some(Arc::clone(&self.anonymous_account))
        } else {
            self.db.account(name)
        };
        account.map_or((None, None), |a| {
            (a.limits.download_bytes_per_sec, a.limits.upload_bytes_per_sec)
        })
    }

    /// `limits.max_login_failures` as fxpd started with it (a restart setting: the login
    /// guard keeps its start-up limits across reloads, and so does closing a connection after
    /// that many failures).
    pub fn max_failures(&self) -> u32 {
        self.guard.config().max_failures
    }

    /// The users database this login checks against.
    pub fn users(&self) -> &UserDb {
        &self.db
    }

    /// Whether `user` would be accepted as an anonymous login (anonymous is enabled and the
    /// name is `anonymous` or `ftp`, any case), for the 331 reply text.
    pub fn is_anonymous_name(&self, user: &str) -> bool {
        self.anonymous.enabled && is_reserved_name(user)
    }

    /// Authenticates `user` with `password` from `peer`. Call it the moment `PASS` arrives:
    /// a failure is answered at a time measured from the call.
    ///
    /// In order: the address's lockout (a locked address costs no password work), the user
    /// name's slowdown (see [`crate::auth::LoginGuard`]), the password. Every failure is
    /// logged, counted by the guard (except refusals during a lockout) and answered exactly
    /// [`Login::failure_pad`] after the call began, plus the name's slowdown, so its timing
    /// tells nothing about whether the name exists or how costly its hash is.
    pub async fn login(&self, user: &str, password: &str, peer: IpAddr) -> Result<FtpUser, LoginError> {
        let arrived = tokio::time::Instant::now();
        let (slowed, result) = self.attempt(user, password, peer).await;
        match result {
            Ok(ftp_user) => {
                tracing::info!(
                    target: LOG_TARGET,
                    client = %peer,
                    user = ?loggable(user),
                    anonymous = ftp_user.anonymous,
                    "login"
                );
                Ok(ftp_user)
            }
            Err(failure) => {
                self.on_failure(user, peer, &failure).await;
                // SECURITY: every failure is answered at one fixed time after PASS arrived
                // (the pad is computed after this verification, so it covers it), which
                // both slows guessing on one connection and hides the cost of the hash.
                tokio::time::sleep_until(arrived + slowed + self.failure_pad()).await;
                Err(failure.error)
            }
        }
    }

    /// How long after `PASS` a failed login is answered (beyond the name's slowdown): the
    /// larger of `limits.failed_login_delay_ms` and the slowest password verification seen
    /// since the users file was loaded plus a quarter, at most 30 s.
    ///
    /// Why the slowest verification *observed*: a hash's time depends on the machine and its
    /// load, so it is measured on real runs rather than guessed from the parameters. The
    /// dummy hash for unknown names has the costliest parameters of the file, so the first
    /// failure of any kind already observes the costliest hash, and every later failure for any
    /// name (known, unknown, cheap or costly hash) is answered at the same time. The quarter
    /// absorbs ordinary jitter; the value only grows, so a load spike makes failures slower
    /// for everyone alike, never distinguishable. Only a verification that outlasts the pad
    /// (it then becomes the new slowest) is answered late, once.
    pub fn failure_pad(&self) -> Duration {
        let slowest = self.db.slowest_verification();
        let hash = slowest.saturating_add(slowest / 4);
        self.guard.config().failure_delay.max(hash).min(MAX_FAILURE_PAD)
    }

    /// The checks before and with the password: the slowdown it waited, and the outcome.
    async fn attempt(
        &self,
        user: &str,
        password: &str,
        peer: IpAddr,
    ) -> (Duration, Result<FtpUser, Failure>) {
        // SECURITY: lockouts are checked before any password work.
        let locked = match self.guard.check(peer) {
            Ok(()) => self.guard.check_shared(peer).await,
            Err(retry_after) => Err(retry_after),
        };
        if let Err(retry_after) = locked {
            let failure = Failure {
                error: LoginError::LockedOut { retry_after },
                reason: "locked out",
                count: Count::No,
            };
            return (Duration::ZERO, Err(failure));
        }
        // SECURITY: a name guessed at from many addresses is slowed down, never locked. The
        // wait comes before the password check, so an attacker can not learn the outcome
        // sooner by hanging up; the right password waits too.
        let slowed = self
            .guard
            .slowdown(user)
            .max(self.guard.slowdown_shared(user).await);
        if !slowed.is_zero() {
            tracing::info!(
                target: LOG_TARGET,
                client = %peer,
                user = ?loggable(user),
                wait_ms = u64::try_from(slowed.as_millis()).unwrap_or(u64::MAX),
                "login slowed down: many failed logins for this user name"
            );
            tokio::time::sleep(slowed).await;
        }
        let result = self.check_password(user, password, peer).await;
        (slowed, result.and_then(|u| self.check_limits(u, peer)))
    }

    /// After a good password: the account's disabled flag, expiry and networks.
    ///
    /// SECURITY: checked only once the password is right, and refused exactly like a bad
    /// password (same reply, same time), so neither a guesser nor a scanner learns which
    /// accounts exist or are disabled; the log says which it was.
    fn check_limits(&self, user: FtpUser, peer: IpAddr) -> Result<FtpUser, Failure> {
        let account = if user.anonymous {
            Some(Arc::clone(&self.anonymous_account))
        } else {
            self.db.account(&user.name)
        };
        let refusal = match account {
            Some(a) => a.limits.refusal(peer, chrono::Utc::now),
            None => Some("account removed"),
        };
        match refusal {
            None => Ok(user),
            Some(reason) => Err(Failure {
                error: LoginError::BadCredentials,
                reason,
                count: Count::IpOnly,
            }),
        }
    }

    /// Anonymous login or a verification against the users file.
    async fn check_password(&self, user: &str, password: &str, peer: IpAddr) -> Result<FtpUser, Failure> {
        if is_reserved_name(user) {
            return self.anonymous_login();
        }
        let creds = Credentials {
            password: Some(password.to_owned()),
            certificate_chain: None,
            source_ip: peer,
            command_channel_security: ChannelEncryptionState::Plaintext,
        };
        let principal = self.db.authenticate(user, &creds).await.map_err(|e| {
            let (error, reason, count) = match e {
                AuthenticationError::BadUser => {
                    (LoginError::BadCredentials, "unknown user", Count::IpAndUser)
                }
                AuthenticationError::BadPassword => {
                    (LoginError::BadCredentials, "bad password", Count::IpAndUser)
                }
                other => (
                    LoginError::Internal(other.to_string()),
                    "internal error",
                    Count::No,
                ),
            };
            Failure { error, reason, count }
        })?;
        self.db
            .provide_user_detail(&principal)
            .await
            .map_err(|e| Failure {
                error: LoginError::Internal(e.to_string()),
                reason: "internal error",
                count: Count::No,
            })
    }

    fn anonymous_login(&self) -> Result<FtpUser, Failure> {
        // SECURITY: anonymous access is off unless enabled in the configuration.
        if !self.anonymous.enabled {
            return Err(Failure {
                error: LoginError::AnonymousDisabled,
                reason: "anonymous disabled",
                count: Count::IpOnly,
            });
        }
        let home = self.anonymous_home.clone().map_err(|e| Failure {
            error: LoginError::Internal(format!("invalid anonymous home directory: {e}")),
            reason: "invalid anonymous home",
            count: Count::No,
        })?;
        Ok(FtpUser {
            name: String::from(ANONYMOUS_NAME),
            home,
            write: self.anonymous.write,
            anonymous: true,
            fxp: FxpOverride::Inherit,
            require_tls: false,
        })
    }

    async fn on_failure(&self, user: &str, peer: IpAddr, failure: &Failure) {
        tracing::info!(
            target: LOG_TARGET,
            client = %peer,
            user = ?loggable(user),
            reason = failure.reason,
            "login failed"
        );
        let counted_user = match failure.count {
            Count::No => return,
            Count::IpOnly => None,
            Count::IpAndUser => Some(user),
        };
        let local = self.guard.record_failure(peer, counted_user);
        // The cluster counts this node's failures with the other nodes'; either count can
        // start a lockout.
        let shared = self.guard.share_failure(peer, counted_user).await;
        let new = NewLockouts {
            ip: local.ip || shared.ip,
            user_slowed: local.user_slowed || shared.user_slowed,
        };
        let lockout_secs = self.guard.config().lockout.as_secs();
        if new.ip {
            tracing::warn!(
                target: LOG_TARGET,
                client = %peer,
                user = ?loggable(user),
                scope = "client",
                key = %ip_key(peer),
                lockout_secs,
                "too many failed logins: client locked out"
            );
        }
        if new.user_slowed {
            tracing::warn!(
                target: LOG_TARGET,
                client = %peer,
                user = ?loggable(user),
                scope = "user",
                max_slowdown_ms = u64::try_from(self.guard.config().max_slowdown.as_millis()).unwrap_or(u64::MAX),
                "too many failed logins for one name: user name slowed down (never locked)"
            );
        }
    }
}

/// A user name cut to a bounded length for the log (`?` formatting escapes control characters).
fn loggable(user: &str) -> String {
    user.chars().take(MAX_LOGGED_NAME).collect()
}

#[cfg(test)]
mod tests;
