//! Sessions logged in per account, for the users file's `max_sessions`: counted server-wide
//! and kept across reloads, each seat given back when its session ends. Each account with a
//! session open also has one pair of rate buckets (`download_bytes_per_sec`,
//! `upload_bytes_per_sec`) that all its sessions share, so opening more sessions does not
//! multiply its rate.

use crate::datachan::rate::Limiter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many sessions each account has logged in now, and the rate buckets they share.
#[derive(Debug, Default)]
pub struct UserSessions {
    counts: Mutex<HashMap<String, Entry>>,
}

/// One account with sessions open.
#[derive(Debug)]
struct Entry {
    /// Sessions logged in.
    count: u32,
    /// The buckets every session of the account draws from.
    rates: AccountRates,
}

/// The download and upload buckets of one account, shared by all its sessions; a rate of 0
/// is unlimited.
#[derive(Debug, Clone)]
pub struct AccountRates {
    /// `download_bytes_per_sec`.
    pub download: Arc<Limiter>,
    /// `upload_bytes_per_sec`.
    pub upload: Arc<Limiter>,
}

impl AccountRates {
    /// Sets both rates (bytes per second; `None` or 0: unlimited). A running transfer that
    /// draws from a bucket follows its new rate at once; one started while the bucket was
    /// unlimited does not draw from it and keeps its speed until it ends.
    pub fn set(&self, download: Option<u64>, upload: Option<u64>) {
        self.download.set_rate(download.unwrap_or(0));
        self.upload.set_rate(upload.unwrap_or(0));
    }
}

/// One logged-in session of an account; dropping it gives the seat back.
#[derive(Debug)]
pub struct UserSeat {
    owner: Arc<UserSessions>,
    name: String,
    rates: AccountRates,
}

impl UserSeat {
    /// The rate buckets this session shares with the other sessions of its account.
    pub fn rates(&self) -> &AccountRates {
        &self.rates
    }
}

impl UserSessions {
    /// A seat for `name` if it has fewer than `max` sessions (no limit: always), or `None`.
    pub fn take(self: &Arc<Self>, name: &str, max: Option<u32>) -> Option<UserSeat> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = counts.entry(name.to_owned()).or_insert_with(|| Entry {
            count: 0,
            rates: AccountRates {
                download: Limiter::new(0),
                upload: Limiter::new(0),
            },
        });
        if max.is_some_and(|max| entry.count >= max) {
            if entry.count == 0 {
                counts.remove(name);
            }
            return None;
        }
        entry.count += 1;
        Some(UserSeat {
            owner: Arc::clone(self),
            name: name.to_owned(),
            rates: entry.rates.clone(),
        })
    }

    /// Sessions of `name` now.
    pub fn count(&self, name: &str) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(name).map_or(0, |e| e.count)
    }

    /// Sets the rates of every account with a session open from `rates` (a reload):
    /// `rates(name)` gives the download and upload rates in force for account `name`.
    pub fn retune(&self, rates: impl Fn(&str) -> (Option<u64>, Option<u64>)) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, entry) in counts.iter() {
            let (download, upload) = rates(name);
            entry.rates.set(download, upload);
        }
    }
}

impl Drop for UserSeat {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = counts.get_mut(&self.name) {
            entry.count = entry.count.saturating_sub(1);
            if entry.count == 0 {
                counts.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_counted_and_given_back() {
        let sessions = Arc::new(UserSessions::default());
        let a = sessions.take("u", Some(2)).unwrap();
        let b = sessions.take("u", Some(2)).unwrap();
        assert!(sessions.take("u", Some(2)).is_none());
        assert!(sessions.take("v", Some(1)).is_some());
        drop(a);
        assert_eq!(sessions.count("u"), 1);
        let _c = sessions.take("u", Some(2)).unwrap();
        drop(b);
        assert!(sessions.take("w", None).is_some());
        assert!(sessions.take("z", Some(0)).is_none());
        assert_eq!(sessions.count("z"), 0);
    }

    #[test]
    fn the_sessions_of_one_account_share_its_buckets() {
        let sessions = Arc::new(UserSessions::default());
        let a = sessions.take("u", None).unwrap();
        let b = sessions.take("u", None).unwrap();
        let other = sessions.take("v", None).unwrap();
        assert!(Arc::ptr_eq(&a.rates().download, &b.rates().download));
        assert!(Arc::ptr_eq(&a.rates().upload, &b.rates().upload));
        assert!(!Arc::ptr_eq(&a.rates().download, &other.rates().download));
        sessions.retune(|name| {
            if name == "u" {
                (Some(100), None)
            } else {
                (None, Some(7))
            }
        });
        assert_eq!(b.rates().download.rate(), 100);
        assert_eq!(b.rates().upload.rate(), 0);
        assert_eq!(other.rates().upload.rate(), 7);
    }
}
