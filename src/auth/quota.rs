//! Quota usage: bytes and files each account holds, kept in a small JSON state file next to
//! the users file (`quota.json`), written atomically (a temporary file renamed over it) after
//! every change, so usage survives restarts.
//!
//! The limits themselves (`quota_bytes`, `quota_files`) are users-file settings of the same
//! layers as `max_upload_bytes` ([`super::users`]); a group's quota applies to each member's
//! own usage (per member, not shared by the group).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// What one account holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Bytes in files.
    pub bytes: u64,
    /// Files.
    pub files: u64,
}

/// Every account's usage, and the state file it is kept in.
#[derive(Debug)]
pub struct QuotaBook {
    /// The state file; `None`: no users file, nothing is kept.
    path: Option<PathBuf>,
    accounts: Mutex<BTreeMap<String, Usage>>,
}

/// The state file of the users file at `users_file`: `quota.json` in the same directory.
pub fn state_path(users_file: &Path) -> PathBuf {
    users_file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("quota.json")
}

impl QuotaBook {
    /// The book of the users file at `users_file` (`None`: an empty book that keeps nothing).
    /// A missing state file is an empty book; an unreadable or invalid one is an error (the
    /// server does not start on a usage it cannot trust).
    pub fn open(users_file: Option<&Path>) -> Result<QuotaBook, String> {
        let Some(users_file) = users_file else {
            return Ok(QuotaBook {
                path: None,
                accounts: Mutex::default(),
            });
        };
        let path = state_path(users_file);
        let accounts = read(&path)?;
        Ok(QuotaBook {
            path: Some(path),
            accounts: Mutex::new(accounts),
        })
    }

    /// What `account` holds now.
    pub fn usage(&self, account: &str) -> Usage {
        self.lock().get(account).copied().unwrap_or_default()
    }

    /// Adds `bytes` and `files` (negative: frees them; never below zero) to `account`'s usage
    /// and writes the state file.
    pub fn charge(&self, account: &str, bytes: i128, files: i64) {
        if self.path.is_none() || (bytes == 0 && files == 0) {
            return;
        }
        let mut accounts = self.lock();
        let usage = accounts.entry(account.to_owned()).or_default();
        usage.bytes = add(usage.bytes, bytes);
        usage.files = add(usage.files, i128::from(files));
        self.save(&accounts);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Usage>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, accounts: &BTreeMap<String, Usage>) {
        let Some(path) = &self.path else { return };
        if let Err(e) = write(path, accounts) {
            tracing::error!(path = %path.display(), error = %e, "cannot write the quota usage file");
        }
    }
}

fn add(value: u64, delta: i128) -> u64 {
    u64::try_from((i128::from(value) + delta).max(0)).unwrap_or(u64::MAX)
}

/// Reads a state file; missing is empty.
pub fn read(path: &Path) -> Result<BTreeMap<String, Usage>, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("quota usage file {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("quota usage file {}: {e}", path.display())),
    }
}

/// Writes a state file atomically: a temporary file in the same directory, renamed over it.
pub fn write(path: &Path, accounts: &BTreeMap<String, Usage>) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(accounts).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_kept_across_opens_and_never_goes_below_zero() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.toml");
        let book = QuotaBook::open(Some(&users)).unwrap();
        book.charge("alice", 100, 1);
        book.charge("alice", 50, 1);
        book.charge("bob", -10, -1);
        assert_eq!(book.usage("alice"), Usage { bytes: 150, files: 2 });
        assert_eq!(book.usage("bob"), Usage::default());
        let again = QuotaBook::open(Some(&users)).unwrap();
        assert_eq!(again.usage("alice"), Usage { bytes: 150, files: 2 });
        std::fs::write(state_path(&users), "{ not json").unwrap();
        assert!(QuotaBook::open(Some(&users)).is_err());
        let none = QuotaBook::open(None).unwrap();
        none.charge("alice", 1, 1);
        assert_eq!(none.usage("alice"), Usage::default());
    }
}
