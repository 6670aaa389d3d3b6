//! Temporary bans for client addresses that keep asking for refused data connections.
//!
//! A fixed window per address opens at its first refusal; `threshold` refusals before the window
//! lapses ban the address for `ban`. Time is passed in (`now`) so tests need no sleeping, and every
//! duration is compared as elapsed time, so no configured value can overflow an `Instant`.
//! Memory is bounded: at most [`MAX_TRACKED`] addresses are tracked (see [`BanTracker::record`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The most client addresses tracked at once (counting or banned), whatever clients do.
pub(super) const MAX_TRACKED: usize = 10_000;

/// What is known about one client address.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// `count` refusals in the window that opened at `since`.
    Counting { since: Instant, count: u32 },
    /// Banned since `since`.
    Banned { since: Instant },
}

/// The configured limits, copied out of the config so entries can be judged while the map is borrowed.
#[derive(Debug, Clone, Copy)]
struct Limits {
    threshold: u32,
    window: Duration,
    ban: Duration,
}

impl Limits {
    /// Time left before `entry` lapses; zero once it has.
    fn remaining(&self, entry: &Entry, now: Instant) -> Duration {
        let (since, length) = match *entry {
            Entry::Counting { since, .. } => (since, self.window),
            Entry::Banned { since } => (since, self.ban),
        };
        length.saturating_sub(now.saturating_duration_since(since))
    }
}

/// Refusal counts and bans per (normalised) client address. Not synchronised: the policy wraps it
/// in a mutex.
#[derive(Debug)]
pub(super) struct BanTracker {
    limits: Limits,
    entries: HashMap<IpAddr, Entry>,
}

impl BanTracker {
    /// A tracker banning after `threshold` refusals within `window_secs`, for `ban_secs`.
    /// A threshold of 0 disables it.
    pub(super) fn new(threshold: u32, window_secs: u64, ban_secs: u64) -> Self {
        let mut tracker = BanTracker {
            limits: Limits {
                threshold,
                window: Duration::ZERO,
                ban: Duration::ZERO,
            },
            entries: HashMap::new(),
        };
        tracker.set_limits(threshold, window_secs, ban_secs);
        tracker
    }

    /// New limits after a configuration reload; current counts and bans are kept.
    pub(super) fn set_limits(&mut self, threshold: u32, window_secs: u64, ban_secs: u64) {
        self.limits = Limits {
            threshold,
            window: Duration::from_secs(window_secs),
            ban: Duration::from_secs(ban_secs),
        };
    }

    /// The entry for `ip` if it has not lapsed at `now`.
    fn live(&self, ip: IpAddr, now: Instant) -> Option<Entry> {
        self.entries
            .get(&ip)
            .copied()
            .filter(|e| !self.limits.remaining(e, now).is_zero())
    }

    /// Whether `ip` is banned at `now`.
    pub(super) fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        matches!(self.live(ip, now), Some(Entry::Banned { .. }))
    }

    /// How many addresses are banned at `now`.
    pub(super) fn banned_count(&self, now: Instant) -> usize {
        let limits = self.limits;
        self.entries
            .values()
            .filter(|e| matches!(e, Entry::Banned { .. }) && !limits.remaining(e, now).is_zero())
            .count()
    }

    /// The addresses banned at `now`, each with the time left, sorted.
    pub(super) fn banned(&self, now: Instant) -> Vec<(IpAddr, Duration)> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Banned { .. }))
            .map(|(ip, e)| (*ip, self.limits.remaining(e, now)))
            .filter(|(_, left)| !left.is_zero())
            .collect();
        out.sort();
        out
    }

    /// Forget `ip`: its ban, or its refusals so far. Returns whether it was banned at `now`.
    pub(super) fn lift(&mut self, ip: IpAddr, now: Instant) -> bool {
        let banned = self.is_banned(ip, now);
        self.entries.remove(&ip);
        banned
    }

    /// Records one refusal for `ip` at `now`; returns true when this refusal starts a ban.
    /// Refusals from an address that is already banned neither count nor extend the ban.
    pub(super) fn record(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.limits.threshold == 0 {
            return false;
        }
        let (since, count) = match self.live(ip, now) {
            Some(Entry::Banned { .. }) => return false,
            Some(Entry::Counting { since, count }) => (since, count.saturating_add(1)),
            None => {
                self.make_room(ip, now);
                (now, 1)
            }
        };
        let banned = count >= self.limits.threshold;
        let entry = if banned {
            Entry::Banned { since: now }
        } else {
            Entry::Counting { since, count }
        };
        self.entries.insert(ip, entry);
        banned
    }

    /// Bans `ip` at `now` for `remaining` (a ban another node of the cluster started), unless a
    /// longer local ban is already running. Returns true when this starts or lengthens a ban.
    pub(super) fn import(&mut self, ip: IpAddr, now: Instant, remaining: Duration) -> bool {
        if let Some(entry @ Entry::Banned { .. }) = self.live(ip, now) {
            if self.limits.remaining(&entry, now) >= remaining {
                return false;
            }
        }
        // A ban that began `ban - remaining` ago has `remaining` left.
        let age = self.limits.ban.saturating_sub(remaining);
        let since = now.checked_sub(age).unwrap_or(now);
        self.make_room(ip, now);
        self.entries.insert(ip, Entry::Banned { since });
        true
    }

    /// Before tracking a new address: when the map is full, drop lapsed entries; if it is still full,
    /// drop the entry closest to lapsing (a spray of addresses can then shorten one old ban, but
    /// cannot grow memory).
    fn make_room(&mut self, ip: IpAddr, now: Instant) {
        if self.entries.len() < MAX_TRACKED || self.entries.contains_key(&ip) {
            return;
        }
        let limits = self.limits;
        self.entries.retain(|_, e| !limits.remaining(e, now).is_zero());
        if self.entries.len() >= MAX_TRACKED {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| limits.remaining(e, now))
                .map(|(ip, _)| *ip);
            if let Some(soonest) = soonest {
                self.entries.remove(&soonest);
            }
        }
    }

    /// Number of tracked addresses, for tests of the memory bound.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn addr(i: usize) -> IpAddr {
        Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128).into()
    }

    #[test]
    fn bans_at_threshold_within_window_and_expires() {
        let t0 = Instant::now();
        let mut bans = BanTracker::new(3, 60, 600);
        assert!(!bans.record(addr(1), t0));
        assert!(!bans.record(addr(1), t0 + secs(30)));
        assert!(!bans.is_banned(addr(1), t0 + secs(30)));
        assert!(bans.record(addr(1), t0 + secs(59)));
        assert!(bans.is_banned(addr(1), t0 + secs(59)));
        assert!(!bans.is_banned(addr(2), t0 + secs(59)));
        // Further refusals while banned do not extend the ban.
        assert!(!bans.record(addr(1), t0 + secs(500)));
        assert!(bans.is_banned(addr(1), t0 + secs(59 + 599)));
        assert!(!bans.is_banned(addr(1), t0 + secs(59 + 600)));
        assert_eq!(bans.banned_count(t0 + secs(59 + 600)), 0);
    }

    #[test]
    fn window_restarts_after_it_lapses() {
        let t0 = Instant::now();
        let mut bans = BanTracker::new(3, 60, 600);
        bans.record(addr(1), t0);
        bans.record(addr(1), t0 + secs(10));
        assert!(
            !bans.record(addr(1), t0 + secs(60)),
            "window lapsed: count restarts at 1"
        );
        assert!(!bans.record(addr(1), t0 + secs(61)));
        assert!(bans.record(addr(1), t0 + secs(62)));
    }

    #[test]
    fn imported_ban_lasts_what_is_left_and_never_shortens_a_local_one() {
        let t0 = Instant::now() + secs(3600);
        let mut bans = BanTracker::new(3, 60, 600);
        assert!(bans.import(addr(1), t0, secs(100)));
        assert!(bans.is_banned(addr(1), t0 + secs(99)));
        assert!(!bans.is_banned(addr(1), t0 + secs(100)));
        // A full local ban is not shortened by a shorter imported one.
        for _ in 0..3 {
            bans.record(addr(2), t0);
        }
        assert!(!bans.import(addr(2), t0, secs(10)));
        assert!(bans.is_banned(addr(2), t0 + secs(599)));
    }

    #[test]
    fn a_lifted_ban_is_gone_and_counting_starts_over() {
        let t0 = Instant::now();
        let mut bans = BanTracker::new(2, 60, 600);
        bans.record(addr(1), t0);
        bans.record(addr(1), t0);
        bans.record(addr(2), t0);
        bans.record(addr(2), t0);
        assert_eq!(bans.banned(t0).len(), 2);
        assert!(bans.lift(addr(1), t0));
        assert!(!bans.is_banned(addr(1), t0));
        assert!(bans.is_banned(addr(2), t0), "another ban untouched");
        assert!(!bans.lift(addr(1), t0), "nothing left to lift");
        assert!(
            !bans.record(addr(1), t0),
            "one refusal after a lift does not ban again"
        );
        assert_eq!(bans.banned(t0), vec![(addr(2), Duration::from_secs(600))]);
    }

    #[test]
    fn threshold_zero_never_bans() {
        let t0 = Instant::now();
        let mut bans = BanTracker::new(0, 60, 600);
        for _ in 0..100 {
            assert!(!bans.record(addr(1), t0));
        }
        assert!(!bans.is_banned(addr(1), t0));
        assert_eq!(bans.len(), 0);
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let t0 = Instant::now();
        let mut bans = BanTracker::new(1, u64::MAX, u64::MAX);
        assert!(bans.record(addr(1), t0));
        assert!(bans.is_banned(addr(1), t0 + secs(10 * 365 * 86_400)));
    }

    #[test]
    fn memory_is_bounded_and_lapsed_entries_go_first() {
        let t0 = Instant::now();
        let mut bans = BanTracker::new(2, 60, 600);
        // One ban that must survive, then a flood of distinct addresses.
        bans.record(addr(0), t0);
        bans.record(addr(0), t0);
        for i in 1..MAX_TRACKED + 500 {
            bans.record(addr(i), t0 + secs(1));
        }
        assert_eq!(bans.len(), MAX_TRACKED);
        assert!(
            bans.is_banned(addr(0), t0 + secs(1)),
            "a fresh ban outlives counting entries"
        );
        // Once the counting windows lapse, new addresses replace them without eviction pressure.
        for i in 0..100 {
            bans.record(addr(MAX_TRACKED + 1000 + i), t0 + secs(120));
        }
        assert!(bans.len() <= MAX_TRACKED);
        assert!(bans.is_banned(addr(0), t0 + secs(120)));
    }
}
