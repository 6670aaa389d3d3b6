//! The users file's rights and limits: `[[group]]` tables, the `[anonymous]` and
//! `[everyone]` tables, and the fields a user shares with them (rules, request filters,
//! limits).
//!
//! ```toml
//! [everyone]                  # every account, anonymous included
//! hidden = [".git"]
//!
//! [anonymous]                 # anonymous sessions (`[anonymous] enabled` is in the config)
//! rules = [{ path = "/incoming", allow = ["upload"], deny = ["list", "download"] }]
//!
//! [[group]]
//! name = "staff"
//! rules = [{ path = "/shared", allow = ["write"] }]
//! deny_files = ["*.exe"]
//! max_upload_bytes = 104857600
//! allowed_networks = ["192.0.2.0/24"]
//! max_sessions = 4
//! download_bytes_per_sec = 1048576   # all of a member's sessions together
//! folders = [{ path = "/shared", source = "/srv/ftp/shared" }]
//!
//! [[user]]
//! name = "alice"
//! password = "$argon2id$..."
//! groups = ["staff"]
//! rules = [{ path = "/shared/archive", deny = ["delete"] }]
//! expires = "2027-06-30"      # last day the account works (UTC), or an RFC 3339 time
//! disabled = false
//! ```

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::file::{InvalidValue, UserName};
use super::folder::FolderSpec;
use crate::addr::Cidr;
use crate::rights::{Pattern, RuleSpec};

/// Most groups in one users file.
pub(crate) const MAX_GROUPS: usize = 10_000;
/// Most groups one user is in.
pub(crate) const MAX_GROUPS_PER_USER: usize = 64;
/// Most rules, patterns or networks in one list.
pub(crate) const MAX_LIST: usize = 1_000;

/// A group's name: the same characters as a user name (`[A-Za-z0-9._@-]`, 1-64).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct GroupName(String);

impl GroupName {
    /// Parses a group name.
    pub(crate) fn parse(s: &str) -> Result<GroupName, String> {
        // The user-name rules, except that a group may be called `anonymous` or `ftp`.
        match UserName::parse(s) {
            Ok(_) => Ok(GroupName(s.to_owned())),
            Err(super::NameError::Reserved) => Ok(GroupName(s.to_owned())),
            Err(e) => Err(e.to_string().replace("user name", "group name")),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = InvalidValue<String>;

    fn try_from(s: String) -> Result<GroupName, Self::Error> {
        GroupName::parse(&s).map_err(|reason| InvalidValue::new(s, reason))
    }
}

impl From<GroupName> for String {
    fn from(n: GroupName) -> String {
        n.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When an account stops working: a date (the account works through that day, UTC) or an
/// RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// As written.
    text: String,
    /// The first instant the account is refused.
    from: DateTime<Utc>,
}

impl Expiry {
    /// Parses `YYYY-MM-DD` or an RFC 3339 time.
    pub(crate) fn parse(s: &str) -> Result<Expiry, String> {
        let from = if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let next = day
                .succ_opt()
                .ok_or_else(|| format!("{s:?} is past the last date this program knows"))?;
            next.and_hms_opt(0, 0, 0)
                .ok_or_else(|| format!("{s:?}: no midnight that day"))?
                .and_utc()
        } else {
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))?
                .with_timezone(&Utc)
        };
        Ok(Expiry {
            text: s.to_owned(),
            from,
        })
    }

    /// Whether the account has expired at `now`.
    pub(crate) fn passed(&self, now: DateTime<Utc>) -> bool {
        now >= self.from
    }

    /// As written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

impl serde::Serialize for Expiry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Expiry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expiry, D::Error> {
        let s = String::deserialize(d)?;
        Expiry::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A list of at most [`MAX_LIST`] items.
pub(crate) fn bounded<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    let items = Vec::<T>::deserialize(d)?;
    if items.len() > MAX_LIST {
        return Err(serde::de::Error::custom(format!(
            "more than {MAX_LIST} items in one list"
        )));
    }
    Ok(items)
}

/// The settings a user, a group and anonymous share, borrowed from whichever holds them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shared<'a> {
    pub(crate) rules: &'a [RuleSpec],
    pub(crate) deny_files: &'a [Pattern],
    pub(crate) hidden: &'a [Pattern],
    pub(crate) max_upload_bytes: Option<u64>,
    pub(crate) quota_bytes: Option<u64>,
    pub(crate) quota_files: Option<u64>,
    pub(crate) allowed_networks: &'a [Cidr],
    pub(crate) denied_networks: &'a [Cidr],
    pub(crate) max_sessions: Option<u32>,
    pub(crate) download_bytes_per_sec: Option<u64>,
    pub(crate) upload_bytes_per_sec: Option<u64>,
    pub(crate) folders: &'a [FolderSpec],
}

/// The shared settings of one table, to change.
pub(crate) struct SharedMut<'a> {
    pub(crate) rules: &'a mut Vec<RuleSpec>,
    pub(crate) deny_files: &'a mut Vec<Pattern>,
    pub(crate) hidden: &'a mut Vec<Pattern>,
    pub(crate) max_upload_bytes: &'a mut Option<u64>,
    pub(crate) quota_bytes: &'a mut Option<u64>,
    pub(crate) quota_files: &'a mut Option<u64>,
    pub(crate) allowed_networks: &'a mut Vec<Cidr>,
    pub(crate) denied_networks: &'a mut Vec<Cidr>,
    pub(crate) max_sessions: &'a mut Option<u32>,
    pub(crate) download_bytes_per_sec: &'a mut Option<u64>,
    pub(crate) upload_bytes_per_sec: &'a mut Option<u64>,
    pub(crate) folders: &'a mut Vec<FolderSpec>,
}

/// Declares a users-file table with the shared fields (serde's `flatten` cannot be used with
/// `deny_unknown_fields`, so each table lists them).
macro_rules! with_shared_fields {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $($(#[$fmeta])* pub(crate) $field: $ty,)*
            /// Rules: on a path and below, the rights allowed and denied.
            #[serde(default, deserialize_with = "crate::auth::users::profile::bounded", skip_serializing_if = "Vec::is_empty")]
            pub(crate) rules: Vec<RuleSpec>,
            /// Upload file names refused (`*.exe`), any case.
            #[serde(default, deserialize_with = "crate::auth::users::profile::bounded", skip_serializing_if = "Vec::is_empty")]
            pub(crate) deny_files: Vec<Pattern>,
            /// Path segments nobody sees or reaches (`.git`), any case.
            #[serde(default, deserialize_with = "crate::auth::users::profile::bounded", skip_serializing_if = "Vec::is_empty")]
            pub(crate) hidden: Vec<Pattern>,
            /// The largest file one upload may write (bytes).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub(crate) max_upload_bytes: Option<u64>,
            /// The most bytes the account's files may hold in total (per member for a group).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub(crate) quota_bytes: Option<u64>,
            /// The most files the account may hold (per member for a group).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub(crate) quota_files: Option<u64>,
            /// When not empty: logins only from these networks.
            #[serde(default, deserialize_with = "crate::auth::users::profile::bounded", skip_serializing_if = "Vec::is_empty")]
            pub(crate) allowed_networks: Vec<Cidr>,
            /// No login from these networks.
            #[serde(default, deserialize_with = "crate::auth::users::profile::bounded", skip_serializing_if = "Vec::is_empty")]
            pub(crate) denied_networks: Vec<Cidr>,
            /// Most sessions logged in at once under this account.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub(crate) max_sessions: Option<u32>,
            /// Download rate of all the account's sessions together (bytes per second; 0:
            /// unlimited), on top of the server's `[limits]` rates.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub(crate) download_bytes_per_sec: Option<u64>,
            /// Upload rate of all the account's sessions together (bytes per second; 0:
            /// unlimited), on top of the server's `[limits]` rates.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub(crate) upload_bytes_per_sec: Option<u64>,
            /// Virtual folders: other directories (or key prefixes) mounted at virtual paths.
            #[serde(default, deserialize_with = "crate::auth::users::folder::bounded_folders", skip_serializing_if = "Vec::is_empty")]
            pub(crate) folders: Vec<crate::auth::users::FolderSpec>,
        }

        impl $name {
            /// The shared settings, to change them (`fxpd user set`, `fxpd group add|set`).
            #[allow(dead_code)] // `[anonymous]` is edited by hand only, so far
            pub(crate) fn shared_mut(&mut self) -> SharedMut<'_> {
                SharedMut {
                    rules: &mut self.rules,
                    deny_files: &mut self.deny_files,
                    hidden: &mut self.hidden,
                    max_upload_bytes: &mut self.max_upload_bytes,
                    quota_bytes: &mut self.quota_bytes,
                    quota_files: &mut self.quota_files,
                    allowed_networks: &mut self.allowed_networks,
                    denied_networks: &mut self.denied_networks,
                    max_sessions: &mut self.max_sessions,
                    download_bytes_per_sec: &mut self.download_bytes_per_sec,
                    upload_bytes_per_sec: &mut self.upload_bytes_per_sec,
                    folders: &mut self.folders,
                }
            }

            /// The shared settings.
            pub(crate) fn shared(&self) -> Shared<'_> {
                Shared {
                    rules: &self.rules,
                    deny_files: &self.deny_files,
                    hidden: &self.hidden,
                    max_upload_bytes: self.max_upload_bytes,
                    quota_bytes: self.quota_bytes,
                    quota_files: self.quota_files,
                    allowed_networks: &self.allowed_networks,
                    denied_networks: &self.denied_networks,
                    max_sessions: self.max_sessions,
                    download_bytes_per_sec: self.download_bytes_per_sec,
                    upload_bytes_per_sec: self.upload_bytes_per_sec,
                    folders: &self.folders,
                }
            }
        }
    };
}

pub(crate) use with_shared_fields;

with_shared_fields! {
    /// One `[[group]]` table.
    GroupEntry {
        /// The group's name, as users list it in `groups`.
        name: GroupName,
    }
}

with_shared_fields! {
    /// The `[anonymous]` table: rules and limits of anonymous sessions (whether anonymous
    /// may log in at all, its home and its `write` default are in the configuration).
    #[derive(Default)]
    AnonymousEntry {}
}

/// The `[everyone]` table: rules and request filters for every account, anonymous included
/// (weaker than a group's or a user's own rules at the same path).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EveryoneEntry {
    /// Rules for everyone.
    #[serde(
        default,
        deserialize_with = "crate::auth::users::profile::bounded",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) rules: Vec<RuleSpec>,
    /// Upload file names refused for everyone.
    #[serde(
        default,
        deserialize_with = "crate::auth::users::profile::bounded",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) deny_files: Vec<Pattern>,
    /// Path segments hidden from everyone.
    #[serde(
        default,
        deserialize_with = "crate::auth::users::profile::bounded",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) hidden: Vec<Pattern>,
    /// The largest file one upload may write, for accounts that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_upload_bytes: Option<u64>,
    /// Download rate of each account's sessions together, for accounts that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) download_bytes_per_sec: Option<u64>,
    /// Upload rate of each account's sessions together, for accounts that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upload_bytes_per_sec: Option<u64>,
    /// Virtual folders for everyone.
    #[serde(
        default,
        deserialize_with = "crate::auth::users::folder::bounded_folders",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) folders: Vec<FolderSpec>,
}

impl EveryoneEntry {
    /// The shared settings (no network or session limits).
    pub(crate) fn shared(&self) -> Shared<'_> {
        Shared {
            rules: &self.rules,
            deny_files: &self.deny_files,
            hidden: &self.hidden,
            max_upload_bytes: self.max_upload_bytes,
            quota_bytes: None,
            quota_files: None,
            allowed_networks: &[],
            denied_networks: &[],
            max_sessions: None,
            download_bytes_per_sec: self.download_bytes_per_sec,
            upload_bytes_per_sec: self.upload_bytes_per_sec,
            folders: &self.folders,
        }
    }

    /// Whether nothing is set (the table is left out when rendering).
    pub(crate) fn is_empty(&self) -> bool {
        *self == EveryoneEntry::default()
    }
}

impl AnonymousEntry {
    /// Whether nothing is set (the table is left out when rendering).
    pub(crate) fn is_empty(&self) -> bool {
        *self == AnonymousEntry::default()
    }
}

/// A user's `groups`: at most [`MAX_GROUPS_PER_USER`].
pub(crate) fn bounded_groups<'de, D>(d: D) -> Result<Vec<GroupName>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let groups = Vec::<GroupName>::deserialize(d)?;
    if groups.len() > MAX_GROUPS_PER_USER {
        return Err(serde::de::Error::custom(format!(
            "more than {MAX_GROUPS_PER_USER} groups"
        )));
    }
    Ok(groups)
}
