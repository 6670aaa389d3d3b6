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
use super::users::{is_reserved_name, HomeError, RelHome, UserDb};
use super::FtpUser;
use crate::config::AnonymousConfig;
use crate::policy::FxpOverride;

/// Target of the security log events (failed logins, lockouts).
const LOG_TARGET: &str = "fxpd::security";

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
        Login {
            db,
            anonymous,
            anonymous_home,
            guard,
        }
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
        (slowed, self.check_password(user, password, peer).await)
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
            name: String::from("anonymous"),
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
mod tests {
    use super::*;
    use crate::auth::guard::{GuardConfig, ManualClock};
    use crate::auth::users::tests::cheap_hash;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    const ROOT: &str = "/srv/ftp";
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));

    fn db() -> Arc<UserDb> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.toml");
        let text = format!(
            "[[user]]\nname = \"alice\"\npassword = \"{}\"\nhome = \"alice\"\nwrite = true\nfxp = \"allow\"\n\
             [[user]]\nname = \"bob\"\npassword = \"{}\"\n",
            cheap_hash("alice-pw"),
            cheap_hash("bob-pw")
        );
        std::fs::write(&file, text).unwrap();
        Arc::new(UserDb::load(&file, Path::new(ROOT)).unwrap())
    }

    fn guard_config(delay: Duration) -> GuardConfig {
        GuardConfig {
            failure_delay: delay,
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(600),
            max_slowdown: Duration::from_millis(300),
        }
    }

    fn login_with(anonymous: AnonymousConfig, delay: Duration) -> (Arc<ManualClock>, Login) {
        let clock = Arc::new(ManualClock::new());
        let guard = Arc::new(LoginGuard::with_clock(guard_config(delay), clock.clone()));
        (clock, Login::new(db(), anonymous, PathBuf::from(ROOT), guard))
    }

    fn login() -> (Arc<ManualClock>, Login) {
        login_with(AnonymousConfig::default(), Duration::from_millis(1))
    }

    #[tokio::test]
    async fn correct_password_gives_home_write_and_fxp() {
        let (_, l) = login();
        let u = l.login("alice", "alice-pw", PEER).await.unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.home, PathBuf::from("/srv/ftp/alice"));
        assert!(u.write && !u.anonymous);
        assert_eq!(u.fxp, FxpOverride::Allow);
        assert_eq!(u.to_string(), "alice");
        let u = l.login("bob", "bob-pw", PEER).await.unwrap();
        assert_eq!(u.home, PathBuf::from(ROOT));
        assert!(!u.write);
        assert_eq!(u.fxp, FxpOverride::Inherit);
    }

    #[tokio::test]
    async fn wrong_password_fails_after_the_delay() {
        let delay = Duration::from_millis(40);
        let (_, l) = login_with(AnonymousConfig::default(), delay);
        let started = Instant::now();
        assert_eq!(
            l.login("alice", "bob-pw", PEER).await,
            Err(LoginError::BadCredentials)
        );
        assert!(started.elapsed() >= delay);
        // Names are case-sensitive.
        assert_eq!(
            l.login("Alice", "alice-pw", PEER).await,
            Err(LoginError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn unknown_user_is_bad_credentials() {
        let (_, l) = login();
        assert_eq!(
            l.login("mallory", "alice-pw", PEER).await,
            Err(LoginError::BadCredentials)
        );
        assert_eq!(l.login("", "", PEER).await, Err(LoginError::BadCredentials));
        let long = "x".repeat(5000);
        assert_eq!(l.login(&long, &long, PEER).await, Err(LoginError::BadCredentials));
    }

    #[tokio::test]
    async fn anonymous_disabled() {
        let (_, l) = login();
        assert!(!l.is_anonymous_name("anonymous"));
        assert_eq!(
            l.login("anonymous", "me@example.org", PEER).await,
            Err(LoginError::AnonymousDisabled)
        );
        assert_eq!(l.login("ftp", "", PEER).await, Err(LoginError::AnonymousDisabled));
    }

    #[tokio::test]
    async fn anonymous_enabled() {
        let anon = AnonymousConfig {
            enabled: true,
            write: false,
            home: Some(PathBuf::from("pub")),
        };
        let (_, l) = login_with(anon, Duration::from_millis(1));
        assert!(l.is_anonymous_name("anonymous"));
        assert!(l.is_anonymous_name("FTP"));
        assert!(!l.is_anonymous_name("alice"));
        for name in ["anonymous", "ftp", "Anonymous"] {
            let u = l.login(name, "me@example.org", PEER).await.unwrap();
            assert!(u.anonymous && !u.write);
            assert_eq!(u.home, PathBuf::from("/srv/ftp/pub"));
            assert_eq!(u.name, "anonymous");
        }
        assert!(l.login("ftp", "", PEER).await.is_ok());
        // Real users still work.
        assert!(l.login("alice", "alice-pw", PEER).await.is_ok());

        let anon = AnonymousConfig {
            enabled: true,
            write: true,
            home: None,
        };
        let (_, l) = login_with(anon, Duration::from_millis(1));
        let u = l.login("ftp", "x", PEER).await.unwrap();
        assert!(u.write);
        assert_eq!(u.home, PathBuf::from(ROOT));
    }

    #[tokio::test]
    async fn invalid_anonymous_home_fails_closed() {
        let anon = AnonymousConfig {
            enabled: true,
            write: false,
            home: Some(PathBuf::from("../etc")),
        };
        assert_eq!(anon.home_path(Path::new(ROOT)), Err(HomeError::ParentDir));
        let (_, l) = login_with(anon, Duration::from_millis(1));
        assert!(matches!(
            l.login("anonymous", "x", PEER).await,
            Err(LoginError::Internal(_))
        ));
    }

    #[tokio::test]
    async fn lockout_per_ip_survives_and_spares_other_ips() {
        let (_, l) = login();
        // Failures spread over different names: the address is what gets locked.
        for name in ["alice", "bob", "mallory"] {
            assert_eq!(
                l.login(name, "wrong", PEER).await,
                Err(LoginError::BadCredentials)
            );
        }
        // Even the right password is refused now, from this address ("reconnects" share the guard).
        match l.login("alice", "alice-pw", PEER).await {
            Err(LoginError::LockedOut { retry_after }) => assert_eq!(retry_after, Duration::from_secs(600)),
            other => panic!("expected a lockout, got {other:?}"),
        }
        let again = Login::new(
            l.db.clone(),
            AnonymousConfig::default(),
            PathBuf::from(ROOT),
            l.guard.clone(),
        );
        assert!(matches!(
            again.login("bob", "bob-pw", PEER).await,
            Err(LoginError::LockedOut { .. })
        ));
        // Another address is not affected.
        assert!(l.login("alice", "alice-pw", OTHER).await.is_ok());
    }

    #[tokio::test]
    async fn a_user_name_is_slowed_down_never_locked() {
        let (_, l) = login();
        // One failure from each of four addresses: one beyond the threshold for the name.
        for last in 1..=4 {
            let p = IpAddr::V4(Ipv4Addr::new(198, 51, 100, last));
            assert_eq!(
                l.login("alice", "wrong", p).await,
                Err(LoginError::BadCredentials)
            );
        }
        let fresh = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
        let started = Instant::now();
        assert!(l.login("alice", "alice-pw", fresh).await.is_ok());
        // 1 s for the first failure beyond the threshold, capped at 300 ms here.
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        // Other names are not slowed.
        let started = Instant::now();
        assert!(l.login("bob", "bob-pw", fresh).await.is_ok());
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_failure_is_padded_to_the_slowest_verification() {
        let (_, l) = login_with(AnonymousConfig::default(), Duration::ZERO);
        assert_eq!(l.failure_pad(), Duration::ZERO);
        let _ = l.login("mallory", "x", PEER).await;
        let slowest = l.db.slowest_verification();
        assert!(slowest > Duration::ZERO);
        assert_eq!(l.failure_pad(), slowest + slowest / 4);
        let (_, l) = login_with(AnonymousConfig::default(), Duration::from_secs(60));
        assert_eq!(l.failure_pad(), Duration::from_secs(30), "capped");
    }

    #[tokio::test]
    async fn lockout_expires_with_the_clock() {
        let (clock, l) = login();
        for _ in 0..3 {
            let _ = l.login("alice", "wrong", PEER).await;
        }
        // Refusals during the lockout do not extend it.
        for _ in 0..5 {
            assert!(matches!(
                l.login("alice", "alice-pw", PEER).await,
                Err(LoginError::LockedOut { .. })
            ));
        }
        clock.advance(Duration::from_secs(599));
        match l.login("alice", "alice-pw", PEER).await {
            Err(LoginError::LockedOut { retry_after }) => assert_eq!(retry_after, Duration::from_secs(1)),
            other => panic!("expected a lockout, got {other:?}"),
        }
        clock.advance(Duration::from_secs(1));
        assert!(l.login("alice", "alice-pw", PEER).await.is_ok());
    }

    #[tokio::test]
    async fn anonymous_disabled_counts_against_the_address() {
        let (_, l) = login();
        for _ in 0..3 {
            assert_eq!(
                l.login("anonymous", "x", PEER).await,
                Err(LoginError::AnonymousDisabled)
            );
        }
        assert!(matches!(
            l.login("alice", "alice-pw", PEER).await,
            Err(LoginError::LockedOut { .. })
        ));
    }

    /// Records every event as (level, target, "field=value ..." text).
    #[derive(Clone, Default)]
    struct Capture(Arc<std::sync::Mutex<Vec<(tracing::Level, String, String)>>>);

    struct Fields(String);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            let meta = event.metadata();
            let mut events = self.0.lock().unwrap();
            events.push((*meta.level(), meta.target().to_owned(), fields.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn failures_and_lockouts_are_logged_without_secrets() {
        let capture = Capture::default();
        let _default = tracing::subscriber::set_default(capture.clone());
        // Other tests running in parallel without a subscriber may have cached "never" for
        // these callsites; make them ask again.
        tracing::callsite::rebuild_interest_cache();
        let (_, l) = login();
        for _ in 0..3 {
            let _ = l.login("alice", "S3cret-guess", PEER).await;
        }
        let _ = l.login("alice", "alice-pw", PEER).await;
        let events = capture.0.lock().unwrap().clone();
        let security: Vec<_> = events
            .iter()
            .filter(|(_, target, _)| target == "fxpd::security")
            .collect();
        let failed = security
            .iter()
            .filter(|(level, _, f)| *level == tracing::Level::INFO && f.contains("login failed"))
            .collect::<Vec<_>>();
        assert_eq!(failed.len(), 4, "{events:?}");
        assert!(failed[0].2.contains("client=192.0.2.10"), "{failed:?}");
        assert!(failed[0].2.contains("user=\"alice\""), "{failed:?}");
        assert!(failed[0].2.contains("reason=\"bad password\""), "{failed:?}");
        assert!(failed[3].2.contains("reason=\"locked out\""), "{failed:?}");
        let warnings = security
            .iter()
            .filter(|(level, _, _)| *level == tracing::Level::WARN)
            .count();
        assert_eq!(
            warnings, 1,
            "the client's lockout (names are never locked): {events:?}"
        );
        for (_, _, fields) in &events {
            assert!(
                !fields.contains("S3cret") && !fields.contains("alice-pw"),
                "{fields}"
            );
            assert!(!fields.contains("argon2"), "{fields}");
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            LoginError::BadCredentials.to_string(),
            "invalid user name or password"
        );
        let locked = LoginError::LockedOut {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(
            locked.to_string(),
            "too many failed logins; try again in 2 seconds"
        );
        assert_eq!(
            LoginError::AnonymousDisabled.to_string(),
            "anonymous login is disabled"
        );
    }

    #[test]
    fn anonymous_config_parses_strictly() {
        let c: AnonymousConfig = toml::from_str("enabled = true\nhome = \"pub\"\n").unwrap();
        assert_eq!(
            c,
            AnonymousConfig {
                enabled: true,
                write: false,
                home: Some(PathBuf::from("pub"))
            }
        );
        assert_eq!(
            toml::from_str::<AnonymousConfig>("").unwrap(),
            AnonymousConfig::default()
        );
        assert!(toml::from_str::<AnonymousConfig>("enable = true\n").is_err());
    }
}
