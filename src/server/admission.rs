//! Admission of control connections: two budgets, so that connections which never log in can
//! not take the room of those that do.
//!
//! A connection takes a *waiting* seat when it is accepted (`limits.max_unauthenticated` in
//! total, `limits.max_unauthenticated_per_ip` per address and never more than
//! `limits.max_sessions_per_ip`) and moves to a *logged-in* seat when its login succeeds
//! (`limits.max_sessions` in total, `limits.max_sessions_per_ip` per address), giving the
//! waiting seat back. A full logged-in pool refuses the login (421), not the connection.
//! Logged-in sessions are never evicted.
//!
//! When every waiting seat is taken, refusing newcomers would let an attacker with idle
//! connections hold the door shut for everyone. Instead the newcomer takes the seat of the
//! **oldest waiting connection of the address that holds the most** (ties: the address whose
//! oldest connection is oldest), provided that address holds more than the newcomer's own
//! address does; the evicted connection is told why (421) and closed. So an attacker keeps at
//! most a fair share of the seats however many it opens, any other address still gets in, and
//! a legitimate client needs its seat only for the moment a login takes. A newcomer from the
//! busiest address (or one holding as many) is refused instead, so nobody grows by evicting
//! others. What is left to an attacker with more addresses than there are seats is churn: it
//! must reconnect faster than a legitimate client completes its login to evict it before it
//! does, and then each of its own connections lasts only as long.
//!
//! Addresses are counted by the same key as failed logins: IPv4 as is, IPv6 by its /64 (one
//! host usually holds a whole /64). Memory is bounded by the settings: one entry per seat.

use crate::auth::ip_key;
use crate::config::LimitsConfig;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio_util::sync::CancellationToken;

/// Why a connection (or a login) did not get a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client's address holds as many seats of this kind as it may.
    Address,
    /// Every seat of this kind is taken (and, for waiting seats, no address holds more than
    /// the client's own, so there is none to take over).
    Full,
}

/// The seats of every control connection of the server.
#[derive(Debug, Default)]
pub struct Admission {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Waiting connections by address key, each with its admission number (oldest first) and
    /// the token that tells it it was evicted.
    waiting: HashMap<IpAddr, BTreeMap<u64, CancellationToken>>,
    waiting_total: usize,
    /// Every address with waiting connections, by (most connections, oldest first): the
    /// first one is the one a newcomer takes a seat from.
    busiest: BTreeSet<(Reverse<usize>, u64, IpAddr)>,
    /// Logged-in sessions by address key.
    logged_in: HashMap<IpAddr, usize>,
    logged_in_total: usize,
    /// The next admission number.
    next: u64,
}

impl State {
    /// `key`'s row in `busiest`, if it has waiting connections.
    fn rank(&self, key: IpAddr) -> Option<(Reverse<usize>, u64, IpAddr)> {
        let seats = self.waiting.get(&key)?;
        let (&oldest, _) = seats.first_key_value()?;
        Some((Reverse(seats.len()), oldest, key))
    }

    fn add_waiting(&mut self, key: IpAddr) -> (u64, CancellationToken) {
        if let Some(row) = self.rank(key) {
            self.busiest.remove(&row);
        }
        let id = self.next;
        self.next += 1;
        let token = CancellationToken::new();
        self.waiting.entry(key).or_default().insert(id, token.clone());
        self.waiting_total += 1;
        if let Some(row) = self.rank(key) {
            self.busiest.insert(row);
        }
        (id, token)
    }

    /// Frees waiting seat `id` of `key`; `None` if it is not (or no longer) taken.
    fn remove_waiting(&mut self, key: IpAddr, id: u64) -> Option<CancellationToken> {
        let row = self.rank(key)?;
        let seats = self.waiting.get_mut(&key)?;
        let token = seats.remove(&id)?;
        if seats.is_empty() {
            self.waiting.remove(&key);
        }
        self.waiting_total -= 1;
        self.busiest.remove(&row);
        if let Some(row) = self.rank(key) {
            self.busiest.insert(row);
        }
        Some(token)
    }

    fn remove_logged_in(&mut self, key: IpAddr) {
        if let Some(n) = self.logged_in.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.logged_in.remove(&key);
            }
            self.logged_in_total -= 1;
        }
    }
}

impl Admission {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update keeps the counts consistent before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A waiting seat for a new connection from `ip`, under the budgets in `limits` (read at
    /// each call, so a reload applies to the next connection). When the budget is full, the
    /// oldest waiting connection of the busiest address gives its seat up (see the module
    /// documentation); it learns so through [`Seat::evicted`].
    pub fn admit(self: &Arc<Self>, ip: IpAddr, limits: &LimitsConfig) -> Result<Seat, Refusal> {
        let key = ip_key(ip);
        let mut state = self.state();
        let held = state.waiting.get(&key).map_or(0, BTreeMap::len);
        // SECURITY: one address never holds more waiting connections than it may have sessions.
        let per_address = limits.max_unauthenticated_per_ip.min(limits.max_sessions_per_ip);
        if held >= per_address {
            return Err(Refusal::Address);
        }
        let mut evicted = None;
        if state.waiting_total >= limits.max_unauthenticated {
            // SECURITY: a full budget is not a closed door: the busiest address gives up its
            // oldest seat, unless the newcomer's address is (one of) the busiest itself.
            let Some(&(Reverse(most), oldest, busiest)) = state.busiest.first() else {
                return Err(Refusal::Full);
            };
            if most <= held {
                return Err(Refusal::Full);
            }
            evicted = state.remove_waiting(busiest, oldest);
        }
        let (id, token) = state.add_waiting(key);
        drop(state);
        if let Some(evicted) = evicted {
            evicted.cancel();
        }
        Ok(Seat {
            admission: Arc::clone(self),
            key,
            kind: Kind::Waiting { id },
            evicted: token,
        })
    }

    /// (waiting, logged in) seats taken now.
    #[cfg(test)]
    fn taken(&self) -> (usize, usize) {
        let state = self.state();
        (state.waiting_total, state.logged_in_total)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Waiting { id: u64 },
    LoggedIn,
}

/// One connection's seat; dropping it frees the seat.
#[derive(Debug)]
pub struct Seat {
    admission: Arc<Admission>,
    key: IpAddr,
    kind: Kind,
    /// Cancelled when a newcomer took this seat while it was waiting.
    evicted: CancellationToken,
}

impl Seat {
    /// Moves to a logged-in seat, giving the waiting one back (even if it was taken over in the
    /// meantime: a login that succeeded keeps its session). Refused when the logged-in
    /// budget, in total or for the address, is full; the waiting seat is then kept.
    pub fn log_in(&mut self, limits: &LimitsConfig) -> Result<(), Refusal> {
        let Kind::Waiting { id } = self.kind else {
            return Ok(());
        };
        let mut state = self.admission.state();
        if state.logged_in_total >= limits.max_sessions {
            return Err(Refusal::Full);
        }
        if state.logged_in.get(&self.key).copied().unwrap_or(0) >= limits.max_sessions_per_ip {
            return Err(Refusal::Address);
        }
        state.remove_waiting(self.key, id);
        *state.logged_in.entry(self.key).or_insert(0) += 1;
        state.logged_in_total += 1;
        self.kind = Kind::LoggedIn;
        Ok(())
    }

    /// Cancelled when a newcomer took this connection's waiting seat; the connection should
    /// then be closed unless it has logged in since.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut state = self.admission.state();
        match self.kind {
            Kind::Waiting { id } => {
                state.remove_waiting(self.key, id);
            }
            Kind::LoggedIn => state.remove_logged_in(self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn limits(total: usize, per_ip: usize) -> LimitsConfig {
        LimitsConfig {
            max_unauthenticated: total,
            max_unauthenticated_per_ip: per_ip,
            max_sessions: 2,
            max_sessions_per_ip: 2,
            ..LimitsConfig::default()
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn per_address_cap_and_release_on_drop() {
        let a = Arc::new(Admission::default());
        let l = limits(10, 2);
        let one = a.admit(ip(1), &l).unwrap();
        let _two = a.admit(ip(1), &l).unwrap();
        assert_eq!(a.admit(ip(1), &l).unwrap_err(), Refusal::Address);
        assert!(a.admit(ip(2), &l).is_ok());
        drop(one);
        assert!(a.admit(ip(1), &l).is_ok());
    }

    #[test]
    fn per_address_cap_never_exceeds_the_sessions_per_address() {
        let a = Arc::new(Admission::default());
        let l = LimitsConfig {
            max_sessions_per_ip: 1,
            ..limits(10, 5)
        };
        let _one = a.admit(ip(1), &l).unwrap();
        assert_eq!(a.admit(ip(1), &l).unwrap_err(), Refusal::Address);
    }

    #[test]
    fn a_full_budget_evicts_the_oldest_of_the_busiest_address() {
        let a = Arc::new(Admission::default());
        let l = LimitsConfig {
            max_sessions_per_ip: 10,
            ..limits(4, 3)
        };
        let busy: Vec<Seat> = (0..3).map(|_| a.admit(ip(1), &l).unwrap()).collect();
        let quiet = a.admit(ip(2), &l).unwrap();
        let newcomer = a.admit(ip(3), &l).unwrap();
        assert!(busy[0].evicted().is_cancelled());
        assert!(!busy[1].evicted().is_cancelled() && !busy[2].evicted().is_cancelled());
        assert!(!quiet.evicted().is_cancelled() && !newcomer.evicted().is_cancelled());
        assert_eq!(a.taken(), (4, 0));
        // Now 2, 1, 1: the busiest address can not evict to grow ...
        assert_eq!(a.admit(ip(1), &l).unwrap_err(), Refusal::Full);
        // ... but a fourth address takes the busiest's oldest remaining seat.
        let _fourth = a.admit(ip(4), &l).unwrap();
        assert!(busy[1].evicted().is_cancelled());
        // 1, 1, 1, 1: equal shares, and a newcomer takes the oldest seat of all.
        let _fifth = a.admit(ip(5), &l).unwrap();
        assert!(busy[2].evicted().is_cancelled());
        assert!(!quiet.evicted().is_cancelled());
        // An evicted seat dropped later frees nothing twice.
        drop(busy);
        assert_eq!(a.taken(), (4, 0));
    }

    #[test]
    fn equal_shares_refuse_an_address_that_already_holds_as_many() {
        let a = Arc::new(Admission::default());
        let l = limits(2, 2);
        let _x = a.admit(ip(1), &l).unwrap();
        let _y = a.admit(ip(2), &l).unwrap();
        assert_eq!(a.admit(ip(1), &l).unwrap_err(), Refusal::Full);
    }

    #[test]
    fn logging_in_moves_to_the_logged_in_budget() {
        let a = Arc::new(Admission::default());
        let l = limits(2, 2);
        let mut first = a.admit(ip(1), &l).unwrap();
        first.log_in(&l).unwrap();
        assert_eq!(a.taken(), (0, 1));
        // Logged-in sessions leave the waiting budget whole.
        let _w1 = a.admit(ip(1), &l).unwrap();
        let _w2 = a.admit(ip(2), &l).unwrap();
        let mut third = a.admit(ip(3), &l).unwrap();
        assert_eq!(a.taken(), (2, 1));
        third.log_in(&l).unwrap();
        // max_sessions = 2: a third login is refused and keeps its waiting seat.
        let mut fourth = a.admit(ip(4), &l).unwrap();
        assert_eq!(fourth.log_in(&l).unwrap_err(), Refusal::Full);
        assert_eq!(a.taken(), (2, 2));
        drop(first);
        fourth.log_in(&l).unwrap();
        assert_eq!(a.taken(), (1, 2));
    }

    #[test]
    fn logged_in_per_address_cap() {
        let a = Arc::new(Admission::default());
        let l = LimitsConfig {
            max_sessions: 10,
            max_sessions_per_ip: 1,
            ..limits(10, 1)
        };
        let mut first = a.admit(ip(1), &l).unwrap();
        first.log_in(&l).unwrap();
        let mut second = a.admit(ip(1), &l).unwrap();
        assert_eq!(second.log_in(&l).unwrap_err(), Refusal::Address);
    }

    #[test]
    fn an_evicted_connection_that_logs_in_keeps_its_session() {
        let a = Arc::new(Admission::default());
        let l = limits(1, 1);
        let mut old = a.admit(ip(1), &l).unwrap();
        let _new = a.admit(ip(2), &l);
        assert!(old.evicted().is_cancelled());
        old.log_in(&l).unwrap();
        assert_eq!(a.taken(), (1, 1));
        drop(old);
        assert_eq!(a.taken(), (1, 0));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a = Arc::new(Admission::default());
        let l = limits(10, 2);
        let v6 = |last| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last));
        let _x = a.admit(v6(1), &l).unwrap();
        let _y = a.admit(v6(2), &l).unwrap();
        assert_eq!(a.admit(v6(3), &l).unwrap_err(), Refusal::Address);
    }
}
