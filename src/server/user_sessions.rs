//! Sessions logged in per account, for the users file's `max_sessions`: counted server-wide
//! and kept across reloads, each seat given back when its session ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many sessions each account has logged in now.
#[derive(Debug, Default)]
pub struct UserSessions {
    counts: Mutex<HashMap<String, u32>>,
}

/// One logged-in session of an account; dropping it gives the seat back.
#[derive(Debug)]
pub struct UserSeat {
    owner: Arc<UserSessions>,
    name: String,
}

impl UserSessions {
    /// A seat for `name` if it has fewer than `max` sessions (no limit: always), or `None`.
    pub fn take(self: &Arc<Self>, name: &str, max: Option<u32>) -> Option<UserSeat> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(name.to_owned()).or_insert(0);
        if max.is_some_and(|max| *count >= max) {
            if *count == 0 {
                counts.remove(name);
            }
            return None;
        }
        *count += 1;
        Some(UserSeat {
            owner: Arc::clone(self),
            name: name.to_owned(),
        })
    }

    /// Sessions of `name` now.
    pub fn count(&self, name: &str) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(name).copied().unwrap_or(0)
    }
}

impl Drop for UserSeat {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
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
}
