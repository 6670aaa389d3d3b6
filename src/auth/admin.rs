//! User administration for the CLI: `fxpd user add|remove|list|set|show|explain --users FILE`
//! and `fxpd group add|set|remove|list --users FILE` (in `rights.rs`; the edit flags in `edit.rs`).
//!
//! Changes are written atomically (a temporary file in the same directory, then a rename),
//! keep the file's mode and owner, and leave every other entry, and the comments around
//! them, as they were.

use std::fmt;
use std::io::{self, BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use argon2::Params;

use super::password::{check_new_password, hash_with_params, PasswordError, MAX_PASSWORD_LEN};
use super::users::{
    parse_users, read_users_text, render_entry, HomeError, NameError, RelHome, UserEntry, UserName, UsersDoc,
    UsersFileError,
};
use crate::policy::FxpOverride;

mod edit;
mod rewrite;
mod rights;

pub use edit::ProfileEdit;
pub use rights::{
    group_add, group_list, group_remove, group_set, record_usage, user_explain, user_home, user_quota_scan,
    user_set, user_show,
};

use rewrite::{checked_or_rendered, entry_region, read_existing, resolve_target, write_atomic};

/// First lines of a users file created by `user add`.
const NEW_FILE_HEADER: &str = "# fxpd users file: one [[user]] table per account.\n\
# Manage it with `fxpd user add|remove|list`; passwords are argon2id PHC strings.\n";

/// One user as `user list` shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The login name.
    pub name: String,
    /// Home relative to the server root; `None` = the root.
    pub home: Option<PathBuf>,
    /// Whether the user may write.
    pub write: bool,
    /// The user's FXP override.
    pub fxp: FxpOverride,
    /// Whether the user must use TLS.
    pub require_tls: bool,
    /// The user's groups, in order.
    pub groups: Vec<String>,
    /// When the account stops working, as written.
    pub expires: Option<String>,
    /// Whether the account is disabled.
    pub disabled: bool,
}

/// Why a user administration command failed.
#[derive(Debug)]
pub enum AdminError {
    /// The existing users file could not be read or is invalid (it is left untouched).
    File(UsersFileError),
    /// The new users file could not be written.
    Write {
        /// The users file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The user name is not acceptable.
    InvalidName {
        /// The name given.
        name: String,
        /// Why.
        reason: NameError,
    },
    /// The home directory is not acceptable.
    InvalidHome {
        /// The home given.
        home: PathBuf,
        /// Why.
        reason: HomeError,
    },
    /// The password is not acceptable.
    InvalidPassword(PasswordError),
    /// `user add` for a name that is already in the file.
    DuplicateUser {
        /// The users file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// `user remove` for a name that is not in the file.
    UnknownUser {
        /// The users file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// The two passwords typed on the terminal differ.
    PasswordMismatch,
    /// The password could not be read from the terminal or standard input.
    ReadPassword(io::Error),
    /// Hashing failed.
    Hash(String),
    /// A home could not be scanned or the quota usage file could not be read or written.
    Quota(String),
    /// A value given on the command line is not acceptable (a rule, pattern, network, group).
    Invalid(String),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::File(e) => write!(f, "{e}"),
            AdminError::Write { path, source } => {
                write!(f, "can not write users file {}: {source}", path.display())
            }
            AdminError::InvalidName { name, reason } => write!(f, "invalid user name {name:?}: {reason}"),
            AdminError::InvalidHome { home, reason } => {
                write!(
                    f,
                    "invalid home directory {:?}: {reason}",
                    home.display().to_string()
                )
            }
            AdminError::InvalidPassword(reason) => write!(f, "invalid password: {reason}"),
            AdminError::DuplicateUser { path, name } => {
                write!(f, "user {name:?} already exists in users file {}", path.display())
            }
            AdminError::UnknownUser { path, name } => {
                write!(f, "user {name:?} does not exist in users file {}", path.display())
            }
            AdminError::PasswordMismatch => f.write_str("the two passwords do not match"),
            AdminError::ReadPassword(e) => write!(f, "can not read the password: {e}"),
            AdminError::Hash(e) => write!(f, "can not hash the password: {e}"),
            AdminError::Quota(e) => write!(f, "quota usage: {e}"),
            AdminError::Invalid(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AdminError::File(e) => Some(e),
            AdminError::Write { source, .. } | AdminError::ReadPassword(source) => Some(source),
            AdminError::InvalidName { reason, .. } => Some(reason),
            AdminError::InvalidHome { reason, .. } => Some(reason),
            AdminError::InvalidPassword(reason) => Some(reason),
            _ => None,
        }
    }
}

impl From<UsersFileError> for AdminError {
    fn from(e: UsersFileError) -> AdminError {
        AdminError::File(e)
    }
}

/// Hashes `password` with argon2id, the default parameters (19 MiB, 2 passes, 1 lane) and a
/// random salt; returns the PHC string for the users file.
pub fn hash_password(password: &str) -> Result<String, AdminError> {
    check_new_password(password).map_err(AdminError::InvalidPassword)?;
    let hash = hash_with_params(password, Params::DEFAULT).map_err(AdminError::Hash)?;
    Ok(String::from(hash))
}

/// Adds a user to the users file, creating the file (mode 0600 on Unix) if it is missing.
///
/// Refuses an invalid name, home or password, a name already present, and an existing file
/// that does not parse. Other entries and comments are kept; the write is atomic.
pub fn user_add(
    file: &Path,
    name: &str,
    password: &str,
    home: Option<&Path>,
    write: bool,
    fxp: FxpOverride,
) -> Result<(), AdminError> {
    user_add_with_params(file, name, password, home, write, fxp, Params::DEFAULT)
}

/// The argon2id cost of a new password hash: memory in KiB and passes (one lane). The
/// default (19456 KiB, 2 passes) costs tens of milliseconds per login; a cheaper hash allows
/// more logins per second at a lower cost to an attacker who steals the users file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory per hash in KiB (8..=262144).
    pub memory_kib: u32,
    /// Passes over the memory (1..=16).
    pub iterations: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
        }
    }
}

/// [`user_add`] with an explicit hash cost (`fxpd user add --hash-memory-kib --hash-iterations`).
#[allow(clippy::too_many_arguments)]
pub fn user_add_with_cost(
    file: &Path,
    name: &str,
    password: &str,
    home: Option<&Path>,
    write: bool,
    fxp: FxpOverride,
    cost: HashCost,
    require_tls: bool,
) -> Result<(), AdminError> {
    if !(8..=262_144).contains(&cost.memory_kib) || !(1..=16).contains(&cost.iterations) {
        return Err(AdminError::Hash(format!(
            "hash cost out of range: memory {} KiB (8..=262144), iterations {} (1..=16)",
            cost.memory_kib, cost.iterations
        )));
    }
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| AdminError::Hash(e.to_string()))?;
    add_entry(file, name, password, home, write, fxp, params, require_tls)
}

/// [`user_add`] with explicit argon2 parameters (cheap ones in tests).
pub(crate) fn user_add_with_params(
    file: &Path,
    name: &str,
    password: &str,
    home: Option<&Path>,
    write: bool,
    fxp: FxpOverride,
    params: Params,
) -> Result<(), AdminError> {
    add_entry(file, name, password, home, write, fxp, params, false)
}

#[allow(clippy::too_many_arguments)]
fn add_entry(
    file: &Path,
    name: &str,
    password: &str,
    home: Option<&Path>,
    write: bool,
    fxp: FxpOverride,
    params: Params,
    require_tls: bool,
) -> Result<(), AdminError> {
    let user_name = UserName::parse(name).map_err(|reason| AdminError::InvalidName {
        name: name.to_owned(),
        reason,
    })?;
    let home = home
        .map(|h| {
            RelHome::from_path(h).map_err(|reason| AdminError::InvalidHome {
                home: h.to_path_buf(),
                reason,
            })
        })
        .transpose()?;
    check_new_password(password).map_err(AdminError::InvalidPassword)?;

    let target = resolve_target(file)?;
    let existing = read_existing(&target)?;
    if let Some(current) = &existing {
        if current.parsed.entries().any(|e| e.name == user_name) {
            return Err(AdminError::DuplicateUser {
                path: file.to_path_buf(),
                name: name.to_owned(),
            });
        }
    }
    let password = hash_with_params(password, params).map_err(AdminError::Hash)?;
    let entry = UserEntry {
        name: user_name,
        password,
        home,
        write,
        fxp,
        require_tls,
        groups: Vec::new(),
        expires: None,
        disabled: false,
        rules: Vec::new(),
        deny_files: Vec::new(),
        hidden: Vec::new(),
        max_upload_bytes: None,
        quota_bytes: None,
        quota_files: None,
        allowed_networks: Vec::new(),
        denied_networks: Vec::new(),
        max_sessions: None,
        download_bytes_per_sec: None,
        upload_bytes_per_sec: None,
        folders: Vec::new(),
    };
    let rendered = render_entry(&entry).map_err(|e| AdminError::Hash(e.to_string()))?;

    let (text, metadata, mut expected) = match existing {
        None => (
            format!("{NEW_FILE_HEADER}\n{rendered}"),
            None,
            UsersDoc::default(),
        ),
        Some(current) => {
            let mut text = current.text;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&rendered);
            (text, Some(current.metadata), current.parsed.doc())
        }
    };
    expected.user.push(entry);
    let text = checked_or_rendered(text, &expected, file)?;
    write_atomic(&target, &text, metadata.as_ref())
}

/// Removes a user from the users file; an error if the name is not there.
pub fn user_remove(file: &Path, name: &str) -> Result<(), AdminError> {
    let unknown = || AdminError::UnknownUser {
        path: file.to_path_buf(),
        name: name.to_owned(),
    };
    let target = resolve_target(file)?;
    let Some(current) = read_existing(&target)? else {
        return Err(AdminError::File(UsersFileError::Read {
            path: file.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        }));
    };
    let index = current
        .parsed
        .entries()
        .position(|e| e.name.as_str() == name)
        .ok_or_else(unknown)?;
    let mut expected = current.parsed.doc();
    expected.user.remove(index);
    let text = match entry_region(&current.text, &current.parsed, index) {
        Some(region) => {
            let mut text = String::with_capacity(current.text.len());
            text.push_str(&current.text[..region.start]);
            text.push_str(&current.text[region.end..]);
            let kept = text.trim_end().len();
            text.truncate(kept);
            if !text.is_empty() {
                text.push('\n');
            }
            text
        }
        None => String::new(),
    };
    let text = checked_or_rendered(text, &expected, file)?;
    write_atomic(&target, &text, Some(&current.metadata))
}

/// Lists the users in the file, in file order.
pub fn user_list(file: &Path) -> Result<Vec<UserSummary>, AdminError> {
    let text = read_users_text(file)?;
    let parsed = parse_users(&text, file)?;
    Ok(parsed
        .entries()
        .map(|e| UserSummary {
            name: e.name.as_str().to_owned(),
            home: e.home.as_ref().map(|h| h.as_path().to_path_buf()),
            write: e.write,
            fxp: e.fxp,
            require_tls: e.require_tls,
            groups: e.groups.iter().map(|g| g.as_str().to_owned()).collect(),
            expires: e.expires.as_ref().map(|x| x.as_str().to_owned()),
            disabled: e.disabled,
        })
        .collect())
}

/// Reads a new password.
///
/// On a terminal: prompts twice without echo and requires both to match. Otherwise: reads the
/// first line of standard input, without its line ending. An empty password is an error.
pub fn read_password(prompt: &str) -> Result<String, AdminError> {
    if io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt).map_err(AdminError::ReadPassword)?;
        check_new_password(&first).map_err(AdminError::InvalidPassword)?;
        let second = rpassword::prompt_password("Repeat the password: ").map_err(AdminError::ReadPassword)?;
        if first != second {
            return Err(AdminError::PasswordMismatch);
        }
        Ok(first)
    } else {
        read_password_line(io::stdin().lock())
    }
}

/// Reads the first line of `input` as a password (bounded; CR/LF stripped).
pub(crate) fn read_password_line(input: impl BufRead) -> Result<String, AdminError> {
    let mut line = Vec::new();
    // Room for the longest password plus CR LF, and one byte to notice anything longer.
    input
        .take(MAX_PASSWORD_LEN as u64 + 3)
        .read_until(b'\n', &mut line)
        .map_err(AdminError::ReadPassword)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    let password =
        String::from_utf8(line).map_err(|_| AdminError::InvalidPassword(PasswordError::NotUtf8))?;
    check_new_password(&password).map_err(AdminError::InvalidPassword)?;
    Ok(password)
}

#[cfg(test)]
mod tests;
