//! [`ProfileEdit`]: what `fxpd user set` and `fxpd group add|set` change in a table's rules,
//! filters, limits and folders, parsed and checked from the command line and applied.

use std::path::Path;

use super::AdminError;
use crate::addr::Cidr;
use crate::auth::users::{FolderSpec, SharedMut, MAX_FOLDERS};
use crate::rights::{Pattern, RightSet, RulePath, RuleSpec};

/// Changes to the rights and limits of a user or a group, from the command line. A list given
/// replaces the list; `clear` names settings to empty first (`rules`, `deny-files`, `hidden`,
/// `allowed-networks`, `denied-networks`, `max-upload-bytes`, `quota-bytes`, `quota-files`,
/// `max-sessions`, `download-bytes-per-sec`, `upload-bytes-per-sec`, `folders`, and for a
/// user `groups` and `expires`).
#[derive(Debug, Clone, Default)]
pub struct ProfileEdit {
    /// Settings to empty before the rest applies.
    pub clear: Vec<String>,
    /// Rules to add that allow: `PATH=RIGHT[,RIGHT...]`.
    pub allow: Vec<String>,
    /// Rules to add that deny: `PATH=RIGHT[,RIGHT...]`.
    pub deny: Vec<String>,
    /// Denied upload file-name patterns.
    pub deny_files: Option<Vec<String>>,
    /// Hidden path-segment patterns.
    pub hidden: Option<Vec<String>>,
    /// The largest file an upload may write.
    pub max_upload_bytes: Option<u64>,
    /// The most bytes the account's files may hold (per member for a group).
    pub quota_bytes: Option<u64>,
    /// The most files the account may hold (per member for a group).
    pub quota_files: Option<u64>,
    /// Networks logins may come from.
    pub allowed_networks: Option<Vec<String>>,
    /// Networks logins may not come from.
    pub denied_networks: Option<Vec<String>>,
    /// Most sessions at once.
    pub max_sessions: Option<u32>,
    /// Download rate of all the account's sessions together (bytes per second).
    pub download_bytes_per_sec: Option<u64>,
    /// Upload rate of all the account's sessions together (bytes per second).
    pub upload_bytes_per_sec: Option<u64>,
    /// A user's groups, in order of precedence.
    pub groups: Option<Vec<String>>,
    /// A user's expiry: `YYYY-MM-DD`, an RFC 3339 time.
    pub expires: Option<String>,
    /// A user's disabled flag.
    pub disabled: Option<bool>,
    /// A user's default rights: read-write or read-only.
    pub write: Option<bool>,
    /// Folders to mount (or move): `PATH=DIR`, a directory, absolute or relative to the
    /// users file.
    pub folders: Vec<String>,
    /// Folders to mount (or move) on object storage: `PATH=PREFIX`, a key prefix.
    pub folder_prefixes: Vec<String>,
    /// Mount paths to unmount.
    pub unmount: Vec<String>,
}

impl ProfileEdit {
    /// The first part of the edit that only a user has (groups, expiry, the disabled flag,
    /// default rights), named as on the command line; `None`: it fits a group too.
    pub(super) fn user_only(&self) -> Option<&'static str> {
        if self.clear.iter().any(|c| c == "groups") || self.groups.is_some() {
            Some("groups")
        } else if self.clear.iter().any(|c| c == "expires") || self.expires.is_some() {
            Some("expires")
        } else if self.disabled.is_some() {
            Some("disabled")
        } else if self.write.is_some() {
            Some("write")
        } else {
            None
        }
    }
}

/// A bad value on the command line.
pub(super) fn invalid(what: impl Into<String>) -> AdminError {
    AdminError::Invalid(what.into())
}

/// `PATH=RIGHTS` as a rule that allows (or denies) them.
fn parse_rule(text: &str, allow: bool) -> Result<RuleSpec, AdminError> {
    let (path, rights) = text
        .rsplit_once('=')
        .ok_or_else(|| invalid(format!("rule {text:?}: expected PATH=RIGHT[,RIGHT...]")))?;
    let path = RulePath::parse(path).map_err(invalid)?;
    let rights = RightSet::parse(rights.split(',').map(str::trim)).map_err(invalid)?;
    let (allow, deny) = if allow {
        (rights, RightSet::NONE)
    } else {
        (RightSet::NONE, rights)
    };
    Ok(RuleSpec { path, allow, deny })
}

fn patterns(list: &[String]) -> Result<Vec<Pattern>, AdminError> {
    list.iter()
        .map(|p| Pattern::parse(p).map_err(|e| invalid(format!("pattern {p:?}: {e}"))))
        .collect()
}

fn networks(list: &[String]) -> Result<Vec<Cidr>, AdminError> {
    list.iter()
        .map(|n| {
            n.parse::<Cidr>()
                .map_err(|e| invalid(format!("network {n:?}: {e}")))
        })
        .collect()
}

/// Applies the shared part of `edit`; `dir`: the users file's directory (a folder's relative
/// source is below it).
pub(super) fn apply_shared(edit: &ProfileEdit, s: SharedMut<'_>, dir: &Path) -> Result<(), AdminError> {
    for name in &edit.clear {
        match name.as_str() {
            "rules" => s.rules.clear(),
            "deny-files" => s.deny_files.clear(),
            "hidden" => s.hidden.clear(),
            "allowed-networks" => s.allowed_networks.clear(),
            "denied-networks" => s.denied_networks.clear(),
            "max-upload-bytes" => *s.max_upload_bytes = None,
            "quota-bytes" => *s.quota_bytes = None,
            "quota-files" => *s.quota_files = None,
            "max-sessions" => *s.max_sessions = None,
            "download-bytes-per-sec" => *s.download_bytes_per_sec = None,
            "upload-bytes-per-sec" => *s.upload_bytes_per_sec = None,
            "folders" => s.folders.clear(),
            "groups" | "expires" => {}
            other => {
                return Err(invalid(format!(
                    "--clear {other}: not a setting that can be cleared"
                )))
            }
        }
    }
    for text in &edit.allow {
        s.rules.push(parse_rule(text, true)?);
    }
    for text in &edit.deny {
        s.rules.push(parse_rule(text, false)?);
    }
    if let Some(list) = &edit.deny_files {
        *s.deny_files = patterns(list)?;
    }
    if let Some(list) = &edit.hidden {
        *s.hidden = patterns(list)?;
    }
    if let Some(list) = &edit.allowed_networks {
        *s.allowed_networks = networks(list)?;
    }
    if let Some(list) = &edit.denied_networks {
        *s.denied_networks = networks(list)?;
    }
    if edit.max_upload_bytes.is_some() {
        *s.max_upload_bytes = edit.max_upload_bytes;
    }
    if edit.max_sessions.is_some() {
        *s.max_sessions = edit.max_sessions;
    }
    if edit.quota_bytes.is_some() {
        *s.quota_bytes = edit.quota_bytes;
    }
    if edit.quota_files.is_some() {
        *s.quota_files = edit.quota_files;
    }
    if edit.download_bytes_per_sec.is_some() {
        *s.download_bytes_per_sec = edit.download_bytes_per_sec;
    }
    if edit.upload_bytes_per_sec.is_some() {
        *s.upload_bytes_per_sec = edit.upload_bytes_per_sec;
    }
    apply_folders(edit, s.folders, dir)
}

/// `PATH=VALUE`, split at the first `=` (a mount path has no `=`; a directory may).
fn mount_arg<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), AdminError> {
    text.split_once('=')
        .ok_or_else(|| invalid(format!("{flag} {text:?}: expected PATH=VALUE")))
}

/// The folder edits: `--unmount` first, then each `--folder` and `--folder-prefix`, which
/// replaces a folder at the same mount path (any case). A directory must exist now: a server
/// refuses to load a users file whose folder cannot be opened.
fn apply_folders(edit: &ProfileEdit, folders: &mut Vec<FolderSpec>, dir: &Path) -> Result<(), AdminError> {
    for path in &edit.unmount {
        let path = RulePath::parse(path).map_err(invalid)?;
        let before = folders.len();
        folders.retain(|f| !f.is_at(&path));
        if folders.len() == before {
            return Err(invalid(format!("--unmount {path}: no folder is mounted there")));
        }
    }
    let dirs = edit.folders.iter().map(|t| ("--folder", t, true));
    let prefixes = edit.folder_prefixes.iter().map(|t| ("--folder-prefix", t, false));
    for (flag, text, is_dir) in dirs.chain(prefixes) {
        let (path, value) = mount_arg(flag, text)?;
        let (source, prefix) = if is_dir {
            (Some(value), None)
        } else {
            (None, Some(value))
        };
        let folder =
            FolderSpec::new(path, source, prefix).map_err(|e| invalid(format!("{flag} {text:?}: {e}")))?;
        if let Some(source) = &folder.source {
            let at = dir.join(source);
            if !at.is_dir() {
                return Err(invalid(format!(
                    "{flag} {text:?}: {} is not an existing directory",
                    at.display()
                )));
            }
        }
        match folders.iter().position(|f| f.is_at(&folder.path)) {
            Some(i) => folders[i] = folder,
            None if folders.len() >= MAX_FOLDERS => {
                return Err(invalid(format!(
                    "{flag} {text:?}: a table holds at most {MAX_FOLDERS} folders"
                )))
            }
            None => folders.push(folder),
        }
    }
    Ok(())
}
