//! Unit tests for the login procedure: lockouts, slowdown, anonymous and users-file logins, logging.

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
