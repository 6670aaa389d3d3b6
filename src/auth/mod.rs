//! Authentication: the users file, password hashing, the login procedure, failed-login
//! throttling and the user administration commands.
//!
//! Layout:
//! - `users.rs`: the users file (TOML, `[[user]]` tables) parsed into [`UserDb`], which
//!   implements unftp-core's [`Authenticator`](unftp_core::auth::Authenticator) and
//!   [`UserDetailProvider`](unftp_core::auth::UserDetailProvider).
//! - `password.rs`: argon2 PHC strings; plain text is never accepted.
//! - `guard.rs`: [`LoginGuard`], failure counts per client address (which lock it out) and per
//!   user name (which slow it down, never lock it).
//! - `login.rs`: [`Login`], what a session calls for `USER`/`PASS` (RFC 959 section 4.1.1),
//!   including anonymous login (RFC 1635).
//! - `quota.rs`: [`quota::QuotaBook`], each account's usage in a state file; `inflight.rs`:
//!   what its running uploads have written and not yet charged, which they share the room of.
//! - `admin.rs`: `fxpd user add|remove|list|set|show|explain` and `fxpd group add|set|remove|list`.
//!
//! The users file also holds groups, the `[anonymous]` and `[everyone]` tables and each
//! account's rules and limits; [`UserDb::account`] and [`Login::account`] give an account's
//! effective [`Account`] (its [`crate::rights::Rights`] and [`Limits`]).
//!
//! Failed logins are logged at info and lockouts at warn, with target `fxpd::security`.
//! Passwords and hashes are never logged.

pub mod admin;
mod guard;
pub mod inflight;
mod login;
mod password;
pub mod quota;
mod users;

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::config::AnonymousConfig;
pub use admin::{hash_password, read_password, user_add, user_list, user_remove, AdminError, UserSummary};
pub(crate) use guard::ip_key;
pub use guard::{Clock, GuardConfig, LoginGuard, ManualClock, NewLockouts, SystemClock};
pub use login::{Login, LoginError};
pub use password::PasswordError;
pub use users::{
    Account, Folder, FolderSpec, FolderTarget, HomeError, LimitSources, Limits, NameError, UserDb,
    UsersFileError,
};

/// An authenticated session identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUser {
    /// The login name (`anonymous` for anonymous sessions, whichever name was typed).
    pub name: String,
    /// Absolute home directory: the server root joined with the user's relative home, so it
    /// always starts with the root the storage back-end was given.
    pub home: PathBuf,
    /// Whether the session may change files.
    pub write: bool,
    /// Whether this is an anonymous session.
    pub anonymous: bool,
    /// The user's FXP override of the server policy.
    pub fxp: crate::policy::FxpOverride,
    /// The user must use TLS for the login and every data connection.
    pub require_tls: bool,
}

impl unftp_core::auth::UserDetail for FtpUser {
    fn home(&self) -> Option<&Path> {
        Some(&self.home)
    }
}

impl fmt::Display for FtpUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
