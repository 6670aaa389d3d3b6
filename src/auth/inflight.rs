//! The part of each account's quota usage that is not in the state file yet: what its
//! uploads running in this process have written, and the files they are creating. An upload
//! [`Draw`]s on its account from before its quota check until its charge is settled, so
//! uploads running at the same time share the account's room instead of each being held to
//! the room left when it started.
//!
//! Usage in the state file plus what a new draw finds unsettled ([`Draw::unsettled`]) never
//! undercounts: an upload's charge is written to the state file before its draw ends, so for
//! a moment its bytes are counted twice, never zero times. An upload's room is fixed when it
//! starts, from that sum; from then on every byte written by any upload of the account is
//! taken from it, so all of them together stay within the quota.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The running uploads of every account with a quota.
#[derive(Debug, Default)]
pub struct InFlight {
    accounts: Mutex<HashMap<String, Arc<Mutex<Pool>>>>,
}

/// One account's running uploads.
#[derive(Debug, Default)]
struct Pool {
    /// Bytes written by the account's uploads since the oldest one still running began. A
    /// finished upload's bytes stay counted here until none runs, since a running upload's
    /// room was fixed with them counted as not yet in the state file.
    written: u64,
    /// Of `written`, the bytes of uploads that have ended (their charges are in the state
    /// file now).
    settled: u64,
    /// Running uploads that create a file.
    creating: u64,
    /// Running uploads.
    uploads: u64,
}

/// What an account's running uploads hold beyond the state file when an upload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsettled {
    /// Bytes written and not yet charged.
    pub bytes: u64,
    /// Files being created by other uploads.
    pub files: u64,
}

/// One upload's share of its account's room: every byte it writes is taken from what the
/// account's uploads may write together. Dropped when the upload's charge is settled.
#[derive(Debug)]
pub struct Draw {
    pool: Arc<Mutex<Pool>>,
    /// `Pool::written` when this upload started.
    base: u64,
    /// What every upload of the account may write, together, from this one's start; `None`:
    /// the account has no byte quota.
    room: Option<u64>,
    /// Whether this upload creates a file.
    creates: bool,
    /// Bytes this upload has taken (changed under the pool's lock; atomic so that a shared
    /// draw can take).
    taken: AtomicU64,
    /// The account's unsettled usage when this upload started.
    unsettled: Unsettled,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InFlight {
    /// Starts an upload of `account` (`creates`: it makes a new file). Take the draw before
    /// reading the state file: an upload that ends in between is then counted twice (in the
    /// file and in [`Draw::unsettled`]), never missed.
    pub fn draw(&self, account: &str, creates: bool) -> Draw {
        let pool = lock(&self.accounts)
            .entry(account.to_owned())
            .or_default()
            .clone();
        let mut p = lock(&pool);
        let unsettled = Unsettled {
            bytes: p.written - p.settled,
            files: p.creating,
        };
        let base = p.written;
        p.uploads += 1;
        p.creating += u64::from(creates);
        drop(p);
        Draw {
            pool,
            base,
            room: None,
            creates,
            taken: AtomicU64::new(0),
            unsettled,
        }
    }
}

impl Draw {
    /// The account's usage beyond the state file when this upload started.
    pub fn unsettled(&self) -> Unsettled {
        self.unsettled
    }

    /// Holds the account's uploads, from this one's start, to `room` bytes together.
    pub fn limit_to(&mut self, room: u64) {
        self.room = Some(room);
    }

    /// Whether the account has a byte room this draw is held to.
    pub fn is_limited(&self) -> bool {
        self.room.is_some()
    }

    /// The bytes this upload has taken: written, or being written.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes for this upload: `false` (and nothing taken) when the account's
    /// uploads would write more than the room this one started with.
    pub fn take(&self, n: u64) -> bool {
        let mut p = lock(&self.pool);
        let after = p.written.saturating_add(n);
        if self.room.is_some_and(|room| after - self.base > room) {
            return false;
        }
        p.written = after;
        self.taken.fetch_add(n, Ordering::Relaxed);
        true
    }
}

impl Drop for Draw {
    fn drop(&mut self) {
        let mut p = lock(&self.pool);
        p.settled += *self.taken.get_mut();
        p.creating -= u64::from(self.creates);
        p.uploads -= 1;
        if p.uploads == 0 {
            // Every upload has been charged: nothing is unsettled.
            *p = Pool::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_running_together_share_one_room() {
        let book = InFlight::default();
        let mut a = book.draw("alice", true);
        let mut b = book.draw("alice", true);
        assert_eq!(b.unsettled(), Unsettled { bytes: 0, files: 1 });
        a.limit_to(100);
        b.limit_to(100);
        assert!(a.take(70));
        assert!(!b.take(31), "the second upload may take only what the first left");
        assert!(b.take(30));
        assert!(!a.take(1));
        // Another account is not touched.
        let mut c = book.draw("bob", false);
        c.limit_to(100);
        assert!(c.take(100));
    }

    #[test]
    fn an_ended_uploads_bytes_stay_unsettled_while_it_is_being_charged_then_leave() {
        let book = InFlight::default();
        let mut a = book.draw("alice", false);
        a.limit_to(100);
        assert!(a.take(60));
        // A later upload sees the 60 bytes as not yet in the state file.
        let b = book.draw("alice", false);
        assert_eq!(b.unsettled().bytes, 60);
        drop(a);
        // Charged now: an upload starting after it no longer counts them here.
        let c = book.draw("alice", true);
        assert_eq!(c.unsettled(), Unsettled { bytes: 0, files: 0 });
        drop((b, c));
        let d = book.draw("alice", false);
        assert_eq!(d.unsettled(), Unsettled { bytes: 0, files: 0 });
    }

    #[test]
    fn a_room_fixed_at_the_start_holds_against_uploads_that_end_meanwhile() {
        let book = InFlight::default();
        let mut a = book.draw("alice", false);
        a.limit_to(100);
        assert!(a.take(40));
        // b starts with 40 bytes unsettled: its room is what the quota leaves after them.
        let mut b = book.draw("alice", false);
        b.limit_to(60);
        drop(a);
        assert!(b.take(60));
        assert!(!b.take(1));
    }
}
