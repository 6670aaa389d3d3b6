//! Failed-login accounting shared by all sessions.
//!
//! Failures are counted per client address and per user name in a fixed window that starts
//! at the first failure. At `max_failures` the address (and, separately, the name) is locked
//! out for `lockout`. State lives in the guard, not in a session, so a lockout survives
//! reconnects. Memory is bounded: expired entries are pruned, and each table holds at most
//! 50 000 entries.

use crate::cluster::{Cluster, Limits as SharedLimits, Scope};
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most addresses, and separately most user names, tracked at once.
pub(crate) const MAX_TRACKED: usize = 50_000;

/// Longest user name kept as a key; longer names (never valid) are cut to this many characters.
const MAX_KEY_CHARS: usize = 64;

/// Upper bound for `window` and `lockout`, so instants never overflow.
const MAX_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

/// Login throttling settings.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Pause after every failed login, before the reply (slows down guessing on one connection).
    pub failure_delay: Duration,
    /// Failures within `window` that lock an address or user name out; 0 disables lockouts.
    pub max_failures: u32,
    /// How long failures are remembered, counted from the first one.
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            failure_delay: Duration::from_secs(1),
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// A source of the current time, injectable for tests.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to (for tests).
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    /// A clock standing at the current instant.
    pub fn new() -> ManualClock {
        ManualClock {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset = offset.saturating_add(by);
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        self.start + offset
    }
}

/// Which lockouts a failure started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewLockouts {
    /// The client address (its /64 for IPv6) is now locked out.
    pub ip: bool,
    /// The user name is now locked out.
    pub user: bool,
}

/// Failed-login accounting, shared by all sessions (wrap it in an `Arc`).
#[derive(Debug)]
pub struct LoginGuard {
    config: GuardConfig,
    clock: Arc<dyn Clock>,
    max_entries: usize,
    /// The other nodes' view of the same counts (a node alone shares nothing).
    cluster: Arc<Cluster>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ips: Table<IpAddr>,
    users: Table<String>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the current counting window began (the first failure in it).
    window_start: Instant,
    /// Failures in the current window.
    failures: u32,
    /// Set while locked out.
    locked_until: Option<Instant>,
}

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            window_start: now,
            failures: 0,
            locked_until: None,
        }
    }

    fn remaining_lock(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|&until| until > now)
            .map(|until| until - now)
    }

    fn is_expired(&self, now: Instant, window: Duration) -> bool {
        self.remaining_lock(now).is_none() && now.saturating_duration_since(self.window_start) >= window
    }
}

#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Entry>,
}

impl<K> Default for Table<K> {
    fn default() -> Table<K> {
        Table { map: HashMap::new() }
    }
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn remaining_lock(&self, key: &K, now: Instant) -> Option<Duration> {
        self.map.get(key).and_then(|e| e.remaining_lock(now))
    }

    /// Counts one failure for `key`; true if it started a lockout.
    fn record(&mut self, key: K, now: Instant, config: &GuardConfig, cap: usize) -> bool {
        if !self.map.contains_key(&key) && self.map.len() >= cap {
            self.make_room(now, config.window, cap);
        }
        let entry = self.map.entry(key).or_insert_with(|| Entry::fresh(now));
        if entry.remaining_lock(now).is_some() {
            return false;
        }
        if entry.locked_until.is_some() || now.saturating_duration_since(entry.window_start) >= config.window
        {
            *entry = Entry::fresh(now);
        }
        entry.failures = entry.failures.saturating_add(1);
        if config.max_failures > 0 && entry.failures >= config.max_failures {
            entry.locked_until = Some(now + config.lockout);
            return true;
        }
        false
    }

    /// Forgets the failures of `key` unless it is locked out.
    fn clear(&mut self, key: &K, now: Instant) {
        if self.map.get(key).is_some_and(|e| e.remaining_lock(now).is_none()) {
            self.map.remove(key);
        }
    }

    /// Drops expired entries; if the table is still full, evicts the entry that matters least
    /// (an unlocked one with the oldest window, else the lockout that ends soonest).
    fn make_room(&mut self, now: Instant, window: Duration, cap: usize) {
        self.map.retain(|_, e| !e.is_expired(now, window));
        while self.map.len() >= cap {
            let victim = self
                .map
                .iter()
                .min_by_key(|(_, e)| match e.remaining_lock(now) {
                    None => (0, e.window_start),
                    Some(_) => (1, e.locked_until.unwrap_or(now)),
                })
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.map.remove(&k);
                }
                None => break,
            }
        }
    }
}

/// The key under which failures from `ip` are counted: IPv4-mapped IPv6 as IPv4, other IPv6
/// addresses by their /64 prefix.
pub(crate) fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        // SECURITY: one IPv6 host usually controls a whole /64; counting single addresses
        // would let it make 2^64 times more guesses.
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
    }
}

fn user_key(user: &str) -> String {
    user.chars().take(MAX_KEY_CHARS).collect()
}

impl LoginGuard {
    /// A guard using the system clock.
    pub fn new(config: GuardConfig) -> LoginGuard {
        LoginGuard::with_clock(config, Arc::new(SystemClock))
    }

    /// A guard using `clock` (tests inject a [`ManualClock`]).
    pub fn with_clock(mut config: GuardConfig, clock: Arc<dyn Clock>) -> LoginGuard {
        config.window = config.window.min(MAX_PERIOD);
        config.lockout = config.lockout.min(MAX_PERIOD);
        LoginGuard {
            config,
            clock,
            max_entries: MAX_TRACKED,
            cluster: Arc::new(Cluster::local()),
            state: Mutex::new(State::default()),
        }
    }

    /// The same guard, also counting in (and obeying) the cluster's shared state.
    pub fn shared_through(mut self, cluster: Arc<Cluster>) -> LoginGuard {
        self.cluster = cluster;
        self
    }

    /// Like [`LoginGuard::check`], against the locks other nodes of the cluster set.
    pub async fn check_shared(&self, ip: IpAddr, user: &str) -> Result<(), Duration> {
        if !self.cluster.is_shared() {
            return Ok(());
        }
        let by_ip = self
            .cluster
            .locked(Scope::LoginClient, &ip_key(ip).to_string())
            .await;
        let by_user = self.cluster.locked(Scope::LoginUser, &user_key(user)).await;
        match by_ip.max(by_user) {
            Some(retry_after) => Err(retry_after),
            None => Ok(()),
        }
    }

    /// Like [`LoginGuard::record_failure`], in the cluster's shared counts: tells which
    /// cluster-wide lockouts began.
    pub async fn share_failure(&self, ip: IpAddr, user: Option<&str>) -> NewLockouts {
        if !self.cluster.is_shared() {
            return NewLockouts::default();
        }
        let limits = SharedLimits {
            threshold: self.config.max_failures,
            window: self.config.window,
            lock: self.config.lockout,
        };
        let ip_locked = self
            .cluster
            .record_failure(Scope::LoginClient, &ip_key(ip).to_string(), limits)
            .await;
        let user_locked = match user {
            Some(user) => {
                self.cluster
                    .record_failure(Scope::LoginUser, &user_key(user), limits)
                    .await
            }
            None => false,
        };
        NewLockouts {
            ip: ip_locked,
            user: user_locked,
        }
    }

    /// Like [`LoginGuard::record_success`], in the cluster's shared counts.
    pub async fn share_success(&self, user: &str) {
        self.cluster.clear(Scope::LoginUser, &user_key(user)).await;
    }

    /// The settings in force.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(retry_after)` if the client address or the user name is locked out.
    pub fn check(&self, ip: IpAddr, user: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let state = self.state();
        let by_ip = state.ips.remaining_lock(&ip_key(ip), now);
        let by_user = state.users.remaining_lock(&user_key(user), now);
        match by_ip.max(by_user) {
            Some(retry_after) => Err(retry_after),
            None => Ok(()),
        }
    }

    /// Counts a failed login from `ip`, and for `user` when given; tells which lockouts began.
    pub fn record_failure(&self, ip: IpAddr, user: Option<&str>) -> NewLockouts {
        let now = self.clock.now();
        let cap = self.max_entries;
        let mut state = self.state();
        let ip_locked = state.ips.record(ip_key(ip), now, &self.config, cap);
        let user_locked = match user {
            Some(user) => state.users.record(user_key(user), now, &self.config, cap),
            None => false,
        };
        NewLockouts {
            ip: ip_locked,
            user: user_locked,
        }
    }

    /// Forgets the user name's failures after a successful login. The address's failures are
    /// kept, so a client with one valid account can not reset its count between guesses.
    pub fn record_success(&self, user: &str) {
        let now = self.clock.now();
        self.state().users.clear(&user_key(user), now);
    }

    /// Number of tracked (address, user name) entries.
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let state = self.state();
        (state.ips.map.len(), state.users.map.len())
    }

    #[cfg(test)]
    fn with_max_entries(mut self, max_entries: usize) -> LoginGuard {
        self.max_entries = max_entries;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GuardConfig {
        GuardConfig {
            failure_delay: Duration::ZERO,
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
        }
    }

    fn guard() -> (Arc<ManualClock>, LoginGuard) {
        let clock = Arc::new(ManualClock::new());
        let guard = LoginGuard::with_clock(config(), clock.clone());
        (clock, guard)
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn locks_ip_after_max_failures_and_expires() {
        let (clock, g) = guard();
        assert_eq!(g.record_failure(A, Some("u1")), NewLockouts::default());
        assert_eq!(g.record_failure(A, Some("u2")), NewLockouts::default());
        assert_eq!(
            g.record_failure(A, Some("u3")),
            NewLockouts {
                ip: true,
                user: false
            }
        );
        assert_eq!(g.check(A, "other"), Err(Duration::from_secs(300)));
        assert_eq!(g.check(B, "u1"), Ok(()));
        clock.advance(Duration::from_secs(299));
        assert_eq!(g.check(A, "other"), Err(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(g.check(A, "other"), Ok(()));
        // After expiry the count starts again from zero.
        assert_eq!(g.record_failure(A, None), NewLockouts::default());
    }

    #[test]
    fn locks_user_across_addresses() {
        let (_clock, g) = guard();
        g.record_failure(A, Some("alice"));
        g.record_failure(B, Some("alice"));
        let third = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(
            g.record_failure(third, Some("alice")),
            NewLockouts {
                ip: false,
                user: true
            }
        );
        assert!(g.check(A, "alice").is_err());
        assert_eq!(g.check(A, "bob"), Ok(()));
    }

    #[test]
    fn window_forgets_old_failures() {
        let (clock, g) = guard();
        g.record_failure(A, None);
        g.record_failure(A, None);
        clock.advance(Duration::from_secs(61));
        assert_eq!(g.record_failure(A, None), NewLockouts::default());
        assert_eq!(g.check(A, "x"), Ok(()));
    }

    #[test]
    fn success_clears_user_but_not_ip() {
        let (_clock, g) = guard();
        g.record_failure(A, Some("alice"));
        g.record_failure(A, Some("alice"));
        g.record_success("alice");
        assert_eq!(g.tracked(), (1, 0));
        assert_eq!(
            g.record_failure(A, Some("alice")),
            NewLockouts {
                ip: true,
                user: false
            }
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let (_clock, g) = guard();
        for last in 1..=3u16 {
            g.record_failure(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last)),
                None,
            );
        }
        assert!(g
            .check(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9)), "x")
            .is_err());
        assert!(g
            .check(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)), "x")
            .is_ok());
        for _ in 0..3 {
            g.record_failure(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()), None);
        }
        assert!(g.check(A, "x").is_err());
    }

    #[test]
    fn max_failures_zero_never_locks() {
        let clock = Arc::new(ManualClock::new());
        let g = LoginGuard::with_clock(
            GuardConfig {
                max_failures: 0,
                ..config()
            },
            clock,
        );
        for _ in 0..100 {
            assert_eq!(g.record_failure(A, Some("a")), NewLockouts::default());
        }
        assert_eq!(g.check(A, "a"), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let clock = Arc::new(ManualClock::new());
        let g = LoginGuard::with_clock(config(), clock.clone()).with_max_entries(10);
        // Lock out A first; it must survive the flood better than unlocked entries.
        for _ in 0..3 {
            g.record_failure(A, None);
        }
        for i in 0..1000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.record_failure(ip, Some(&format!("user{i}")));
            let (ips, users) = g.tracked();
            assert!(ips <= 10 && users <= 10);
        }
        assert!(g.check(A, "x").is_err());
        // Expired entries are pruned to make room.
        clock.advance(Duration::from_secs(3600));
        g.record_failure(B, None);
        assert_eq!(g.tracked().0, 1);
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(user_key(&"x".repeat(10_000)).len(), MAX_KEY_CHARS);
    }

    use std::net::Ipv4Addr;
}
