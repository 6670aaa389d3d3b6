//! Failed-login accounting shared by all sessions.
//!
//! Failures are counted in a fixed window that starts at the first failure, per client address
//! and per user name, with different consequences:
//!
//! - **An address is locked.** At `max_failures` failures from one address (its /64 for IPv6)
//!   every login from it is refused for `lockout`, whatever the name and the password. This
//!   locks each (user, address) pair of that address too: a pair's failures are a subset of
//!   its address's, so with one threshold a separate count per pair could never reach it
//!   first, and none is kept.
//! - **A user name is never locked, only slowed down.** Past `max_failures` failures for one
//!   name (from any addresses), every login for that name waits before its password is
//!   checked: [`SLOWDOWN_STEP`] for the first failure beyond the threshold, doubling with each
//!   further one, capped at `max_slowdown`. A successful login does not reset the count (an
//!   owner's client that logs in every minute must not hand an attacker fresh guesses); the
//!   count ends with its window.
//!
//! The trade-off: locking a name lets anyone who knows it lock its owner out from every address
//! (five wrong passwords were enough); not throttling it at all lets an attacker with many
//! addresses guess at the combined speed of all of them. The capped delay keeps the owner able
//! to log in from an address of their own, at worst `max_slowdown` later, while guesses for the
//! name are bounded by the connections an attacker may hold before login
//! (`limits.max_unauthenticated`, `limits.max_unauthenticated_per_ip`) divided by the delay,
//! and each attacking address still locks itself out after `max_failures` guesses.
//!
//! State lives in the guard, not in a session, so it survives reconnects. Memory is bounded:
//! expired entries are pruned, and each table holds at most 50 000 entries (a flood of new
//! names can push an old name's count out; its address locks are kept longest).

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

/// The wait for the first failure of a user name beyond the threshold; each further failure
/// doubles it, up to [`GuardConfig::max_slowdown`].
pub const SLOWDOWN_STEP: Duration = Duration::from_secs(1);

/// Login throttling settings.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The least time a failed login takes, counted from the moment the password arrived (see
    /// [`crate::auth::Login::login`]); slows down guessing on one connection.
    pub failure_delay: Duration,
    /// Failures within `window` that lock an address out, and beyond which a user name is
    /// slowed down; 0 disables both.
    pub max_failures: u32,
    /// How long failures are remembered, counted from the first one.
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// The longest wait imposed on a user name under attack; zero disables the slowdown.
    pub max_slowdown: Duration,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            failure_delay: Duration::from_secs(1),
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_slowdown: Duration::from_secs(10),
        }
    }
}

impl GuardConfig {
    /// The wait before checking a password for a name with `failures` failures in its window.
    pub fn slowdown(&self, failures: u32) -> Duration {
        if self.max_failures == 0 || failures <= self.max_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - self.max_failures - 1).min(20);
        SLOWDOWN_STEP
            .saturating_mul(1 << doublings)
            .min(self.max_slowdown)
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

/// What a counted failure started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewLockouts {
    /// The client address (its /64 for IPv6) is now locked out.
    pub ip: bool,
    /// The user name has just passed the threshold: its logins are slowed down from now on.
    pub user_slowed: bool,
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

/// What a table does when a key reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtThreshold {
    /// Lock the key out (client addresses).
    Lock,
    /// Only count (user names: the count sets their slowdown).
    Count,
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

    /// Failures of `key` in its current window.
    fn failures(&self, key: &K, now: Instant, window: Duration) -> u32 {
        match self.map.get(key) {
            Some(e) if now.saturating_duration_since(e.window_start) < window => e.failures,
            _ => 0,
        }
    }

    /// Counts one failure for `key`: the failures in its window now, and whether this one
    /// started a lockout. A key that is locked out is not counted.
    fn record(
        &mut self,
        key: K,
        now: Instant,
        config: &GuardConfig,
        cap: usize,
        rule: AtThreshold,
    ) -> (u32, bool) {
        if !self.map.contains_key(&key) && self.map.len() >= cap {
            self.make_room(now, config.window, cap);
        }
        let entry = self.map.entry(key).or_insert_with(|| Entry::fresh(now));
        if entry.remaining_lock(now).is_some() {
            return (entry.failures, false);
        }
        if entry.locked_until.is_some() || now.saturating_duration_since(entry.window_start) >= config.window
        {
            *entry = Entry::fresh(now);
        }
        entry.failures = entry.failures.saturating_add(1);
        let locks =
            rule == AtThreshold::Lock && config.max_failures > 0 && entry.failures >= config.max_failures;
        if locks {
            entry.locked_until = Some(now + config.lockout);
        }
        (entry.failures, locks)
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
    pub async fn check_shared(&self, ip: IpAddr) -> Result<(), Duration> {
        if !self.cluster.is_shared() {
            return Ok(());
        }
        match self
            .cluster
            .locked(Scope::LoginClient, &ip_key(ip).to_string())
            .await
        {
            Some(retry_after) => Err(retry_after),
            None => Ok(()),
        }
    }

    /// Like [`LoginGuard::slowdown`], from the failures every node of the cluster counted.
    pub async fn slowdown_shared(&self, user: &str) -> Duration {
        if !self.cluster.is_shared() {
            return Duration::ZERO;
        }
        let failures = self
            .cluster
            .failures(Scope::LoginUser, &user_key(user))
            .await
            .unwrap_or(0);
        self.config.slowdown(failures)
    }

    /// Like [`LoginGuard::record_failure`], in the cluster's shared counts: tells what began
    /// cluster-wide.
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
        let user_failures = match user {
            Some(user) => self
                .cluster
                .count_failure(Scope::LoginUser, &user_key(user), self.config.window)
                .await
                .unwrap_or(0),
            None => 0,
        };
        NewLockouts {
            ip: ip_locked,
            user_slowed: self.config.max_failures > 0 && user_failures == self.config.max_failures + 1,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(retry_after)` if the client address is locked out.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = self.clock.now();
        match self.state().ips.remaining_lock(&ip_key(ip), now) {
            Some(retry_after) => Err(retry_after),
            None => Ok(()),
        }
    }

    /// How long a login for `user` waits before its password is checked (zero unless the
    /// name had more than `max_failures` failures in its window).
    pub fn slowdown(&self, user: &str) -> Duration {
        let now = self.clock.now();
        let failures = self
            .state()
            .users
            .failures(&user_key(user), now, self.config.window);
        self.config.slowdown(failures)
    }

    /// Counts a failed login from `ip`, and for `user` when given; tells what began. Nothing
    /// is counted while `ip` is locked out, so one address adds at most `max_failures` to a
    /// name's count per lockout.
    pub fn record_failure(&self, ip: IpAddr, user: Option<&str>) -> NewLockouts {
        let now = self.clock.now();
        let cap = self.max_entries;
        let mut state = self.state();
        if state.ips.remaining_lock(&ip_key(ip), now).is_some() {
            return NewLockouts::default();
        }
        let (_, ip_locked) = state
            .ips
            .record(ip_key(ip), now, &self.config, cap, AtThreshold::Lock);
        let user_failures = match user {
            Some(user) => {
                state
                    .users
                    .record(user_key(user), now, &self.config, cap, AtThreshold::Count)
                    .0
            }
            None => 0,
        };
        NewLockouts {
            ip: ip_locked,
            user_slowed: self.config.max_failures > 0 && user_failures == self.config.max_failures + 1,
        }
    }

    /// The client addresses locked out now (an IPv6 address stands for its /64), each with
    /// the time left, for the admin API.
    pub fn lockouts(&self) -> Vec<(IpAddr, Duration)> {
        let now = self.clock.now();
        let state = self.state();
        let mut out: Vec<_> = state
            .ips
            .map
            .iter()
            .filter_map(|(ip, e)| e.remaining_lock(now).map(|left| (*ip, left)))
            .collect();
        out.sort();
        out
    }

    /// Lift the lockout of `ip` (its /64 for IPv6) and forget its failures, here only (an
    /// operator's decision through the admin API). Returns whether it was locked out.
    pub fn lift(&self, ip: IpAddr) -> bool {
        let now = self.clock.now();
        let key = ip_key(ip);
        let mut state = self.state();
        let locked = state.ips.remaining_lock(&key, now).is_some();
        state.ips.map.remove(&key);
        locked
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
mod tests;
