//! The user database loaded from the users file: account lookups, password checks and homes.
//!
//! The file's format, and the typed values it is parsed into, live in [`file`](mod@file).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials, Principal, UserDetailError, UserDetailProvider,
};

use super::password::{PhcHash, MAX_PASSWORD_LEN};
use super::FtpUser;
use crate::policy::FxpOverride;

mod account;
mod error;
mod file;
mod folder;
mod profile;

pub(crate) use account::revoked;
pub use account::{Account, LimitSources, Limits};
pub use error::UsersFileError;
pub(crate) use file::{
    is_reserved_name, parse_users, read_users_text, render_entry, render_group, render_users, ParsedUsers,
    RelHome, UserEntry, UserName, UsersDoc,
};
pub use file::{HomeError, NameError};
pub(crate) use folder::MAX_FOLDERS;
pub use folder::{Folder, FolderSpec, FolderTarget};
pub(crate) use profile::{AnonymousEntry, EveryoneEntry, Expiry, GroupEntry, GroupName, SharedMut};

/// What the database keeps per account.
struct UserRecord {
    home: Option<RelHome>,
    write: bool,
    fxp: FxpOverride,
    require_tls: bool,
    hash: PhcHash,
    /// Rights and limits, resolved from the user's groups and `[everyone]` at load.
    account: Arc<Account>,
}

/// The users database loaded from the users file.
///
/// Implements [`Authenticator`] (argon2 verification on `spawn_blocking`, at most a few at a
/// time; an unknown user still costs one verification against a dummy hash as costly as the
/// costliest in the file, so timing does not tell which names exist) and [`UserDetailProvider`]
/// for [`FtpUser`]. It also remembers the slowest verification it ran, which
/// [`crate::auth::Login`] pads every failed login to.
pub struct UserDb {
    users: HashMap<String, UserRecord>,
    /// The `[anonymous]` table (anonymous sessions' rules and limits).
    anonymous: AnonymousEntry,
    /// The `[everyone]` table (rules and filters for every account).
    everyone: EveryoneEntry,
    /// The server root: homes are joined onto it, because the storage back-end wants absolute
    /// homes that start with its root.
    root: PathBuf,
    /// The users file's directory: relative folder sources are joined onto it.
    dir: PathBuf,
    /// Verified against when the user is unknown, to keep timing uniform: it has the
    /// parameters of the costliest hash in the file.
    dummy: PhcHash,
    /// The longest one argon2 verification took so far, in nanoseconds (the run alone, not
    /// the wait for a slot).
    slowest_ns: Arc<AtomicU64>,
    /// Bounds concurrent argon2 runs (each may use tens of MiB and a core).
    verify_slots: Arc<Semaphore>,
}

impl fmt::Debug for UserDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserDb")
            .field("root", &self.root)
            .field("users", &self.users.len())
            .finish()
    }
}

impl UserDb {
    /// Loads and validates the users file at `path`; homes are relative to `root`.
    ///
    /// A missing file is an error here (the caller decides whether a users file is
    /// configured). Errors name the file and the line and column, or the offending user.
    pub fn load(path: &Path, root: &Path) -> Result<UserDb, UsersFileError> {
        let text = read_users_text(path)?;
        let parsed = parse_users(&text, path)?;
        Ok(UserDb::from_doc_in(parsed.doc(), root, &users_dir(path)))
    }

    /// Checks every account's folders against the storage back-end `kind`: on the file system
    /// each `source` must be an existing directory and no folder may name a `prefix`; on
    /// object storage each folder needs a `prefix`. An error names the account and the folder
    /// (a server refuses to start, or to reload, with such a file).
    pub fn check_folders(&self, kind: crate::config::StorageKind) -> Result<(), String> {
        use crate::config::StorageKind;
        let anonymous = ("anonymous".to_owned(), Arc::new(self.anonymous_account(false)));
        let users = self
            .users
            .iter()
            .map(|(name, r)| (format!("user {name:?}"), Arc::clone(&r.account)));
        for (who, account) in std::iter::once(anonymous).chain(users) {
            for folder in &account.folders {
                let at = format!("{who}, folder {} (from {})", folder.path, folder.source);
                match (&folder.target, kind) {
                    (FolderTarget::Dir(dir), StorageKind::Fs) => {
                        // Fail closed: a mount that cannot be opened is refused now, not at a login.
                        if !dir.is_dir() {
                            return Err(format!(
                                "{at}: source {} is not an existing directory",
                                dir.display()
                            ));
                        }
                    }
                    (FolderTarget::Prefix(_), StorageKind::Fs) => {
                        return Err(format!(
                            "{at}: a prefix needs storage.kind = \"s3\"; give a source directory"
                        ))
                    }
                    (FolderTarget::Dir(_), StorageKind::S3) => {
                        return Err(format!(
                            "{at}: with storage.kind = \"s3\" a folder is a prefix, not a source directory"
                        ))
                    }
                    (FolderTarget::Prefix(_), StorageKind::S3) => {}
                }
            }
        }
        Ok(())
    }

    /// A database with no users (anonymous-only servers).
    pub fn empty(root: &Path) -> UserDb {
        UserDb::from_doc(UsersDoc::default(), root)
    }

    /// The rights and limits of user `name`, if it exists.
    pub fn account(&self, name: &str) -> Option<Arc<Account>> {
        self.users.get(name).map(|r| Arc::clone(&r.account))
    }

    /// The rights and limits of anonymous sessions, `write` being `anonymous.write`.
    pub fn anonymous_account(&self, write: bool) -> Account {
        account::anonymous_account(write, &self.anonymous, &self.everyone, &self.dir)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// A database of `doc`, homes under `root`; relative folder sources resolve against
    /// `root` too (tests; a loaded file uses [`UserDb::from_doc_in`] with its directory).
    pub(crate) fn from_doc(doc: UsersDoc, root: &Path) -> UserDb {
        UserDb::from_doc_in(doc, root, root)
    }

    /// A database of `doc`, homes under `root`, relative folder sources under `dir`.
    pub(crate) fn from_doc_in(doc: UsersDoc, root: &Path, dir: &Path) -> UserDb {
        let UsersDoc {
            everyone,
            anonymous,
            group,
            user: entries,
        } = doc;
        // SECURITY: an unknown name costs as much as the costliest known one.
        let costliest = entries.iter().map(|e| &e.password).max_by_key(|h| h.cost());
        let dummy = PhcHash::dummy_like(costliest);
        let users = entries
            .into_iter()
            .map(|e| {
                let account = Arc::new(account::user_account(&e, &group, &everyone, dir));
                let record = UserRecord {
                    account,
                    home: e.home,
                    write: e.write,
                    fxp: e.fxp,
                    require_tls: e.require_tls,
                    hash: e.password,
                };
                (String::from(e.name), record)
            })
            .collect();
        let slots = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8);
        UserDb {
            users,
            anonymous,
            everyone,
            root: root.to_path_buf(),
            dir: dir.to_path_buf(),
            dummy,
            slowest_ns: Arc::new(AtomicU64::new(0)),
            verify_slots: Arc::new(Semaphore::new(slots)),
        }
    }

    /// The longest one password verification has taken since the file was loaded.
    pub(crate) fn slowest_verification(&self) -> Duration {
        Duration::from_nanos(self.slowest_ns.load(Ordering::Relaxed))
    }

    /// Runs one argon2 verification on the blocking pool.
    async fn verify(&self, hash: PhcHash, password: &str) -> Result<bool, AuthenticationError> {
        let permit = Arc::clone(&self.verify_slots)
            .acquire_owned()
            .await
            .map_err(|e| AuthenticationError::with_source("password verification unavailable", e))?;
        let password = password.to_owned();
        let slowest = Arc::clone(&self.slowest_ns);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let started = Instant::now();
            let matched = hash.verify(password.as_bytes());
            let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            slowest.fetch_max(took, Ordering::Relaxed);
            matched
        })
        .await
        .map_err(|e| AuthenticationError::with_source("password verification failed", e))
    }
}

/// The directory of the users file at `path`, absolute (relative folder sources are joined
/// onto it).
pub(crate) fn users_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[async_trait]
impl Authenticator for UserDb {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        let Some(password) = creds.password.as_deref() else {
            return Err(AuthenticationError::BadPassword);
        };
        let record = self.users.get(username);
        // SECURITY: an unknown user (or an over-long password, which no stored hash can match)
        // still costs one verification of the same cost, so timing does not reveal names.
        let hash = match record {
            Some(r) if password.len() <= MAX_PASSWORD_LEN => r.hash.clone(),
            _ => self.dummy.clone(),
        };
        let matched = self.verify(hash, password).await?;
        match record {
            None => Err(AuthenticationError::BadUser),
            Some(_) if matched && password.len() <= MAX_PASSWORD_LEN => Ok(Principal {
                username: username.to_owned(),
            }),
            Some(_) => Err(AuthenticationError::BadPassword),
        }
    }

    fn name(&self) -> &str {
        "fxpd-users-file"
    }
}

#[async_trait]
impl UserDetailProvider for UserDb {
    type User = FtpUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<FtpUser, UserDetailError> {
        let record = self
            .users
            .get(&principal.username)
            .ok_or_else(|| UserDetailError::UserNotFound {
                username: principal.username.clone(),
            })?;
        let home = match &record.home {
            Some(rel) => rel.under(&self.root),
            None => self.root.clone(),
        };
        Ok(FtpUser {
            name: principal.username.clone(),
            home,
            write: record.write,
            anonymous: false,
            fxp: record.fxp,
            require_tls: record.require_tls,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
