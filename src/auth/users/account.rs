//! An account's effective rights and limits: its own settings, then its groups' (in the order
//! it lists them), then `[everyone]`, then the defaults of its `write` switch.
//!
//! How the layers combine:
//! - rules: all of them, each with its source; the decision ([`Rights::decide`]) prefers the
//!   deepest path, then the most specific source, then deny;
//! - `deny_files`, `hidden`, `denied_networks`: the union (a layer can only add to them);
//! - `max_upload_bytes`, `max_sessions`, `allowed_networks`, `download_bytes_per_sec`,
//!   `upload_bytes_per_sec`: the most specific layer that sets one (a non-empty list)
//!   decides (a user's own `0` lifts a group's rate limit);
//! - `folders`: all of them, each with its source; at one mount path the most specific
//!   layer's folder replaces the others'.

use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::file::UserEntry;
use super::folder::{overlay, Folder};
use super::profile::{AnonymousEntry, EveryoneEntry, Expiry, GroupEntry, Shared};
use crate::addr::{normalize, Cidr};
use crate::rights::{Rights, Rule, Source};

/// What an account may do, and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// Per-path rights and request filters.
    pub rights: Rights,
    /// Upload size, sessions, networks, expiry, the disabled flag.
    pub limits: Limits,
    /// Virtual folders mounted in the account's tree, each with the layer it came from.
    pub folders: Vec<Folder>,
}

/// An account's limits, from the most specific layer that sets each.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    /// The largest file one upload may write (bytes).
    pub max_upload_bytes: Option<u64>,
    /// Most sessions logged in at once under this account.
    pub max_sessions: Option<u32>,
    /// The most bytes the account's files may hold in total.
    pub quota_bytes: Option<u64>,
    /// The most files the account may hold.
    pub quota_files: Option<u64>,
    /// Download rate of all the account's sessions together (bytes per second; 0 or `None`:
    /// unlimited).
    pub download_bytes_per_sec: Option<u64>,
    /// Upload rate of all the account's sessions together (bytes per second; 0 or `None`:
    /// unlimited).
    pub upload_bytes_per_sec: Option<u64>,
    /// When not empty: logins only from these networks.
    pub allowed_networks: Vec<Cidr>,
    /// No login from these networks.
    pub denied_networks: Vec<Cidr>,
    /// When the account stops working.
    pub(crate) expires: Option<Expiry>,
    /// The account may not log in.
    pub disabled: bool,
    /// Which layer set `max_upload_bytes`, `max_sessions`, `allowed_networks` and the rates
    /// (`fxpd user show`).
    pub from: LimitSources,
}

/// Where each limit of an account came from (`None`: not set anywhere).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LimitSources {
    /// The layer that set `max_upload_bytes`.
    pub max_upload_bytes: Option<Source>,
    /// The layer that set `max_sessions`.
    pub max_sessions: Option<Source>,
    /// The layer that set `allowed_networks`.
    pub allowed_networks: Option<Source>,
    /// The layer that set `download_bytes_per_sec`.
    pub download_bytes_per_sec: Option<Source>,
    /// The layer that set `upload_bytes_per_sec`.
    pub upload_bytes_per_sec: Option<Source>,
}

impl Limits {
    /// Why the account may not be used from `peer` at the time `now` gives (read only when
    /// the account expires; for the log only: the client is told no more than that the login
    /// is incorrect), or `None`.
    pub fn refusal(&self, peer: IpAddr, now: impl FnOnce() -> DateTime<Utc>) -> Option<&'static str> {
        let peer = normalize(peer);
        if self.disabled {
            return Some("account disabled");
        }
        if self.expires.as_ref().is_some_and(|e| e.passed(now())) {
            return Some("account expired");
        }
        // SECURITY: a denied network wins over an allowed one.
        if self.denied_networks.iter().any(|n| n.contains(peer)) {
            return Some("client network denied for this account");
        }
        if !self.allowed_networks.is_empty() && !self.allowed_networks.iter().any(|n| n.contains(peer)) {
            return Some("client network not allowed for this account");
        }
        None
    }

    /// The expiry as written, if any.
    pub fn expires(&self) -> Option<&str> {
        self.expires.as_ref().map(Expiry::as_str)
    }
}

/// The layers, most specific first, combined as the module docs say; relative folder
/// sources are joined to `dir` (the users file's directory).
fn combine(write: bool, layers: &[(Source, Shared<'_>)], dir: &Path) -> Account {
    let mut rules = vec![Rights::default_rules(write)];
    let mut folders = Vec::new();
    let (mut deny_files, mut hidden) = (Vec::new(), Vec::new());
    let mut limits = Limits::default();
    // Least specific first, so that a more specific layer's value replaces it.
    for (source, shared) in layers.iter().rev() {
        rules.extend(shared.rules.iter().map(|spec| Rule {
            spec: spec.clone(),
            source: source.clone(),
        }));
        overlay(&mut folders, shared.folders, source, dir);
        for p in shared.deny_files {
            if !deny_files.contains(p) {
                deny_files.push(p.clone());
            }
        }
        for p in shared.hidden {
            if !hidden.contains(p) {
                hidden.push(p.clone());
            }
        }
        for n in shared.denied_networks {
            if !limits.denied_networks.contains(n) {
                limits.denied_networks.push(n.clone());
            }
        }
        if shared.max_upload_bytes.is_some() {
            limits.max_upload_bytes = shared.max_upload_bytes;
            limits.from.max_upload_bytes = Some(source.clone());
        }
        if shared.quota_bytes.is_some() {
            limits.quota_bytes = shared.quota_bytes;
        }
        if shared.quota_files.is_some() {
            limits.quota_files = shared.quota_files;
        }
        if shared.max_sessions.is_some() {
            limits.max_sessions = shared.max_sessions;
            limits.from.max_sessions = Some(source.clone());
        }
        if shared.download_bytes_per_sec.is_some() {
            limits.download_bytes_per_sec = shared.download_bytes_per_sec;
            limits.from.download_bytes_per_sec = Some(source.clone());
        }
        if shared.upload_bytes_per_sec.is_some() {
            limits.upload_bytes_per_sec = shared.upload_bytes_per_sec;
            limits.from.upload_bytes_per_sec = Some(source.clone());
        }
        if !shared.allowed_networks.is_empty() {
            limits.allowed_networks = shared.allowed_networks.to_vec();
            limits.from.allowed_networks = Some(source.clone());
        }
    }
    Account {
        rights: Rights::new(rules, deny_files, hidden),
        limits,
        folders,
    }
}

/// A user's account; `groups` holds every group of the file, `dir` is the users file's
/// directory.
pub(crate) fn user_account(
    user: &UserEntry,
    groups: &[GroupEntry],
    everyone: &EveryoneEntry,
    dir: &Path,
) -> Account {
    let mut layers = vec![(Source::User(user.name.as_str().to_owned()), user.shared())];
    // Groups in the order the user lists them: the first one that sets a limit decides.
    for name in &user.groups {
        if let Some(group) = groups.iter().find(|g| g.name == *name) {
            layers.push((Source::Group(name.as_str().to_owned()), group.shared()));
        }
    }
    layers.push((Source::Everyone, everyone.shared()));
    let mut account = combine(user.write, &layers, dir);
    account.limits.expires = user.expires.clone();
    account.limits.disabled = user.disabled;
    account
}

/// Anonymous sessions' account: `write` is the configuration's `anonymous.write`.
pub(crate) fn anonymous_account(
    write: bool,
    anonymous: &AnonymousEntry,
    everyone: &EveryoneEntry,
    dir: &Path,
) -> Account {
    combine(
        write,
        &[
            (Source::Anonymous, anonymous.shared()),
            (Source::Everyone, everyone.shared()),
        ],
        dir,
    )
}

/// An account that may do nothing (removed, disabled or expired since the session began).
pub(crate) fn revoked() -> Account {
    Account {
        rights: Rights::revoked(),
        limits: Limits::default(),
        folders: Vec::new(),
    }
}
