//! Quota usage: bytes and files each account holds, kept in a small JSON state file next to
//! the users file (`quota.json`), written atomically (a temporary file renamed over it) after
//! every change, so usage survives restarts. The file is the only copy: it is read at every
//! check and every change, so a recount written by `fxpd user quota-scan` while the server
//! runs is what the next upload sees.
//!
//! The limits themselves (`quota_bytes`, `quota_files`) are users-file settings of the same
//! layers as `max_upload_bytes` (the users file); a group's quota applies to each member's
//! own usage (per member, not shared by the group). What uploads running now have written is
//! not in the file until each ends: the book's [`InFlight`] counts it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::inflight::{Draw, InFlight};

/// What one account holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Bytes in files.
    pub bytes: u64,
    /// Files.
    pub files: u64,
}

/// The state file of every account's usage.
#[derive(Debug)]
pub struct QuotaBook {
    /// The state file; `None`: no users file, nothing is kept.
    path: Option<PathBuf>,
    /// Held while the file is read and rewritten: one change at a time in this process.
    writing: Mutex<()>,
    /// What running uploads have written and not yet charged.
    in_flight: InFlight,
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
                writing: Mutex::new(()),
                in_flight: InFlight::default(),
            });
        };
        let path = state_path(users_file);
        read(&path)?;
        Ok(QuotaBook {
            path: Some(path),
            writing: Mutex::new(()),
            in_flight: InFlight::default(),
        })
    }

    /// Starts an upload of `account` (`creates`: it makes a new file): its share of the
    /// account's room, to take before [`QuotaBook::usage`] is read and to drop once the upload
    /// is charged ([`QuotaBook::charge`]).
    pub fn draw(&self, account: &str, creates: bool) -> Draw {
        self.in_flight.draw(account, creates)
    }

    /// What `account` holds now; an error when the state file cannot be read (the caller
    /// refuses what needs it: usage that cannot be read is not taken for zero).
    pub fn usage(&self, account: &str) -> Result<Usage, String> {
        let Some(path) = &self.path else {
            return Ok(Usage::default());
        };
        Ok(read(path)?.get(account).copied().unwrap_or_default())
    }

    /// Adds `bytes` and `files` (negative: frees them; never below zero) to `account`'s usage
    /// and writes the state file.
    pub fn charge(&self, account: &str, bytes: i128, files: i64) {
        if self.path.is_none() || (bytes == 0 && files == 0) {
            return;
        }
        let Some(path) = &self.path else { return };
        let _one = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut accounts = match read(path) {
            Ok(accounts) => accounts,
            Err(e) => {
                tracing::error!(error = %e, account, bytes = %bytes, files, "quota usage not updated");
                return;
            }
        };
        let usage = accounts.entry(account.to_owned()).or_default();
        usage.bytes = add(usage.bytes, bytes);
        usage.files = add(usage.files, i128::from(files));
        if let Err(e) = write(path, &accounts) {
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

/// Sets `account`'s usage in the state file at `path` (`fxpd user quota-scan`).
pub fn set(path: &Path, account: &str, usage: Usage) -> Result<(), String> {
    let mut accounts = read(path)?;
    accounts.insert(account.to_owned(), usage);
    write(path, &accounts).map_err(|e| format!("quota usage file {}: {e}", path.display()))
}

/// What the files under `dir` hold: their bytes and number (regular files only; symbolic
/// links are not followed).
pub fn scan(dir: &Path) -> std::io::Result<Usage> {
    let mut usage = Usage::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                usage.bytes += meta.len();
                usage.files += 1;
            }
        }
    }
    Ok(usage)
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
    fn scan_counts_regular_files_below_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("x"), b"12345").unwrap();
        std::fs::write(dir.path().join("a/b/y"), b"123").unwrap();
        assert_eq!(scan(dir.path()).unwrap(), Usage { bytes: 8, files: 2 });
    }

    #[test]
    fn usage_is_kept_across_opens_and_never_goes_below_zero() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.toml");
        let book = QuotaBook::open(Some(&users)).unwrap();
        book.charge("alice", 100, 1);
        book.charge("alice", 50, 1);
        book.charge("bob", -10, -1);
        assert_eq!(book.usage("alice"), Ok(Usage { bytes: 150, files: 2 }));
        assert_eq!(book.usage("bob"), Ok(Usage::default()));
        let again = QuotaBook::open(Some(&users)).unwrap();
        assert_eq!(again.usage("alice"), Ok(Usage { bytes: 150, files: 2 }));
        set(&state_path(&users), "alice", Usage { bytes: 7, files: 1 }).unwrap();
        assert_eq!(book.usage("alice"), Ok(Usage { bytes: 7, files: 1 }));
        std::fs::write(state_path(&users), "{ not json").unwrap();
        assert!(QuotaBook::open(Some(&users)).is_err());
        assert!(book.usage("alice").is_err());
        let none = QuotaBook::open(None).unwrap();
        none.charge("alice", 1, 1);
        assert_eq!(none.usage("alice"), Ok(Usage::default()));
    }
}
