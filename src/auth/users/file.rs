//! The users file's format: typed `[[user]]` fields, their limits, reading, parsing and rendering.
//!
//! The file is TOML, one `[[user]]` table per account:
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."   # PHC string, never plain text
//! home = "alice"        # optional, relative to the server root; absent = the root itself
//! write = true          # optional, default false (read-only)
//! fxp = "inherit"       # optional: inherit | allow | deny
//! require_tls = true    # optional: this user must use TLS (login and data), default false
//! ```
//!
//! Every field is parsed into a type that can only hold a valid value ([`UserName`],
//! [`RelHome`], [`PhcHash`]); unknown keys are errors. Error messages name the file, line and
//! column but never quote the file's text, which could contain a password.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use super::super::password::PhcHash;
use super::error::UsersFileError;
use super::profile::{
    with_shared_fields, AnonymousEntry, EveryoneEntry, Expiry, GroupEntry, GroupName, Shared, SharedMut,
    MAX_GROUPS,
};
use crate::addr::Cidr;
use crate::policy::FxpOverride;
use crate::rights::{Pattern, RuleSpec};

/// Largest users file accepted (bytes).
pub(crate) const MAX_USERS_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Most user entries accepted in one users file.
pub(crate) const MAX_USERS: usize = 10_000;

/// Longest user name (characters, all ASCII).
pub(crate) const MAX_USER_NAME_LEN: usize = 64;

/// Longest home directory (bytes).
pub(crate) const MAX_HOME_LEN: usize = 1024;

/// Names reserved for anonymous login; compared without regard to ASCII case.
pub(crate) const ANONYMOUS_NAMES: [&str; 2] = ["anonymous", "ftp"];

/// Whether `name` is one of the anonymous login names (ASCII case-insensitive).
pub(crate) fn is_reserved_name(name: &str) -> bool {
    ANONYMOUS_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Why a user name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than 64 characters.
    TooLong,
    /// The name contains a character outside `[A-Za-z0-9._@-]`.
    BadChar(char),
    /// The name is `anonymous` or `ftp` (any case), reserved for anonymous login.
    Reserved,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("the user name is empty"),
            NameError::TooLong => write!(f, "the user name is longer than {MAX_USER_NAME_LEN} characters"),
            NameError::BadChar(c) => {
                write!(
                    f,
                    "the user name contains {c:?}; only A-Z, a-z, 0-9, '.', '_', '@' and '-' are allowed"
                )
            }
            NameError::Reserved => {
                f.write_str("the user names \"anonymous\" and \"ftp\" are reserved for anonymous login")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// A valid account name: 1-64 characters of `[A-Za-z0-9._@-]`, not `anonymous` or `ftp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct UserName(String);

impl UserName {
    /// Parses a user name.
    pub(crate) fn parse(s: &str) -> Result<UserName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
        {
            return Err(NameError::BadChar(c));
        }
        if s.len() > MAX_USER_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if is_reserved_name(s) {
            return Err(NameError::Reserved);
        }
        Ok(UserName(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserName {
    type Error = InvalidValue<NameError>;

    fn try_from(s: String) -> Result<UserName, Self::Error> {
        UserName::parse(&s).map_err(|reason| InvalidValue { value: s, reason })
    }
}

impl From<UserName> for String {
    fn from(n: UserName) -> String {
        n.0
    }
}

/// Why a home directory is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeError {
    /// The path is empty (leave the key out for the server root).
    Empty,
    /// The path is longer than 1024 bytes.
    TooLong,
    /// The path is absolute (or has a drive or root component).
    Absolute,
    /// The path has a `..` component.
    ParentDir,
    /// The path contains NUL, a control character, `\` or `:`.
    BadChar(char),
    /// The path is not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for HomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HomeError::Empty => {
                f.write_str("the home directory is empty; leave it out to use the server root")
            }
            HomeError::TooLong => write!(f, "the home directory is longer than {MAX_HOME_LEN} bytes"),
            HomeError::Absolute => f.write_str("the home directory must be relative to the server root"),
            HomeError::ParentDir => f.write_str("the home directory must not contain \"..\""),
            HomeError::BadChar(c) => write!(
                f,
                "the home directory contains {c:?}; NUL, control characters, '\\' and ':' are not allowed \
                 (use '/' between directories)"
            ),
            HomeError::NotUtf8 => f.write_str("the home directory is not valid UTF-8"),
        }
    }
}

impl std::error::Error for HomeError {}

/// A home directory relative to the server root, without `..`, root, drive or `.`
/// components. Empty means the root itself (written as `.`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct RelHome(PathBuf);

impl RelHome {
    /// Parses a home directory given as text.
    pub(crate) fn parse(s: &str) -> Result<RelHome, HomeError> {
        if s.is_empty() {
            return Err(HomeError::Empty);
        }
        if s.len() > MAX_HOME_LEN {
            return Err(HomeError::TooLong);
        }
        // SECURITY: '\\' and ':' would be separators or drive prefixes on Windows; refusing
        // them everywhere keeps a users file meaning the same on every platform.
        if let Some(c) = s.chars().find(|&c| c.is_control() || c == '\\' || c == ':') {
            return Err(HomeError::BadChar(c));
        }
        let mut rel = PathBuf::new();
        for component in Path::new(s).components() {
            match component {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                // SECURITY: a home must stay inside the server root.
                Component::ParentDir => return Err(HomeError::ParentDir),
                Component::RootDir | Component::Prefix(_) => return Err(HomeError::Absolute),
            }
        }
        Ok(RelHome(rel))
    }

    /// Parses a home directory given as a path (the CLI's `--home`).
    pub(crate) fn from_path(p: &Path) -> Result<RelHome, HomeError> {
        RelHome::parse(p.to_str().ok_or(HomeError::NotUtf8)?)
    }

    /// The relative path (empty for the root).
    pub(crate) fn as_path(&self) -> &Path {
        &self.0
    }

    /// `root` joined with this home; exactly `root` when the home is the root itself, so the
    /// storage back-end's `strip_prefix(root)` always succeeds.
    pub(crate) fn under(&self, root: &Path) -> PathBuf {
        if self.0.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&self.0)
        }
    }
}

impl TryFrom<String> for RelHome {
    type Error = InvalidValue<HomeError>;

    fn try_from(s: String) -> Result<RelHome, Self::Error> {
        RelHome::parse(&s).map_err(|reason| InvalidValue { value: s, reason })
    }
}

impl From<RelHome> for String {
    fn from(h: RelHome) -> String {
        let parts: Vec<&str> = h.0.components().filter_map(|c| c.as_os_str().to_str()).collect();
        if parts.is_empty() {
            String::from(".")
        } else {
            parts.join("/")
        }
    }
}

/// A refused value together with the reason, for serde error messages.
#[derive(Debug)]
pub(crate) struct InvalidValue<E> {
    value: String,
    reason: E,
}

impl<E> InvalidValue<E> {
    /// A refused `value` and why.
    pub(crate) fn new(value: String, reason: E) -> InvalidValue<E> {
        InvalidValue { value, reason }
    }
}

impl<E: fmt::Display> fmt::Display for InvalidValue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.value, self.reason)
    }
}

with_shared_fields! {
    /// One `[[user]]` table, every field already parsed.
    UserEntry {
        name: UserName,
        password: PhcHash,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        home: Option<RelHome>,
        /// The default rights: `false` is read-only everywhere (`list`, `download` on `/`),
        /// `true` every right on `/`. Rules override it.
        #[serde(default)]
        write: bool,
        #[serde(default)]
        fxp: FxpOverride,
        /// This user must use TLS for the login and every data connection, whatever
        /// `tls.require` says (a per-user override that can only tighten the server setting).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        require_tls: bool,
        /// The groups whose rules and limits this user inherits, in order of precedence.
        #[serde(default, deserialize_with = "super::profile::bounded_groups", skip_serializing_if = "Vec::is_empty")]
        groups: Vec<GroupName>,
        /// When the account stops working.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<Expiry>,
        /// A disabled account cannot log in.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        disabled: bool,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFileDe {
    #[serde(default)]
    user: Vec<toml::Spanned<UserEntry>>,
    #[serde(default)]
    group: Vec<toml::Spanned<GroupEntry>>,
    #[serde(default)]
    anonymous: Option<AnonymousEntry>,
    #[serde(default)]
    everyone: Option<EveryoneEntry>,
}

/// A whole users file's content, without positions: what a rewrite must read back.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub(crate) struct UsersDoc {
    #[serde(skip_serializing_if = "EveryoneEntry::is_empty")]
    pub(crate) everyone: EveryoneEntry,
    #[serde(skip_serializing_if = "AnonymousEntry::is_empty")]
    pub(crate) anonymous: AnonymousEntry,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) group: Vec<GroupEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) user: Vec<UserEntry>,
}

/// A parsed users file: each entry with the byte range of its `[[user]]` header, each group
/// with the range of its `[[group]]` header, the `[anonymous]` and `[everyone]` tables.
#[derive(Debug)]
pub(crate) struct ParsedUsers {
    pub(crate) entries: Vec<(Range<usize>, UserEntry)>,
    pub(crate) groups: Vec<(Range<usize>, GroupEntry)>,
    pub(crate) anonymous: AnonymousEntry,
    pub(crate) everyone: EveryoneEntry,
}

impl ParsedUsers {
    pub(crate) fn entries(&self) -> impl Iterator<Item = &UserEntry> {
        self.entries.iter().map(|(_, e)| e)
    }

    pub(crate) fn groups(&self) -> impl Iterator<Item = &GroupEntry> {
        self.groups.iter().map(|(_, g)| g)
    }

    /// The content without positions.
    pub(crate) fn doc(&self) -> UsersDoc {
        UsersDoc {
            everyone: self.everyone.clone(),
            anonymous: self.anonymous.clone(),
            group: self.groups().cloned().collect(),
            user: self.entries().cloned().collect(),
        }
    }
}

/// 1-based line and column of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Reads a whole users file, refusing files over `MAX_USERS_FILE_BYTES`.
pub(crate) fn read_users_text(path: &Path) -> Result<String, UsersFileError> {
    let file = std::fs::File::open(path).map_err(|source| UsersFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_USERS_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| UsersFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_USERS_FILE_BYTES {
        return Err(UsersFileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|_| UsersFileError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Parses users-file text; `path` is only used in error messages.
pub(crate) fn parse_users(text: &str, path: &Path) -> Result<ParsedUsers, UsersFileError> {
    let de: UsersFileDe = toml::from_str(text).map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => {
                let (l, c) = line_col(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        // `message()` is the bare reason; the full Display would quote the offending line.
        UsersFileError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_owned(),
        }
    })?;
    if de.user.len() > MAX_USERS {
        return Err(UsersFileError::TooManyUsers {
            path: path.to_path_buf(),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(de.user.len());
    let mut entries = Vec::with_capacity(de.user.len());
    for spanned in de.user {
        let span = spanned.span();
        let entry = spanned.into_inner();
        if !seen.insert(entry.name.as_str().to_owned()) {
            return Err(UsersFileError::DuplicateUser {
                path: path.to_path_buf(),
                name: entry.name.as_str().to_owned(),
                line: line_col(text, span.start).0,
            });
        }
        entries.push((span, entry));
    }
    let groups = check_groups(text, path, de.group, &entries)?;
    Ok(ParsedUsers {
        entries,
        groups,
        anonymous: de.anonymous.unwrap_or_default(),
        everyone: de.everyone.unwrap_or_default(),
    })
}

/// Group names are unique, and every group a user names exists.
fn check_groups(
    text: &str,
    path: &Path,
    groups: Vec<toml::Spanned<GroupEntry>>,
    users: &[(Range<usize>, UserEntry)],
) -> Result<Vec<(Range<usize>, GroupEntry)>, UsersFileError> {
    if groups.len() > MAX_GROUPS {
        return Err(UsersFileError::TooManyGroups {
            path: path.to_path_buf(),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(groups.len());
    let mut out = Vec::with_capacity(groups.len());
    for spanned in groups {
        let span = spanned.span();
        let group = spanned.into_inner();
        if !seen.insert(group.name.as_str().to_owned()) {
            return Err(UsersFileError::DuplicateGroup {
                path: path.to_path_buf(),
                name: group.name.as_str().to_owned(),
                line: line_col(text, span.start).0,
            });
        }
        out.push((span, group));
    }
    for (span, user) in users {
        // SECURITY: a misspelt group would silently drop its rules (and its denials).
        if let Some(missing) = user.groups.iter().find(|g| !seen.contains(g.as_str())) {
            return Err(UsersFileError::UnknownGroup {
                path: path.to_path_buf(),
                user: user.name.as_str().to_owned(),
                group: missing.as_str().to_owned(),
                line: line_col(text, span.start).0,
            });
        }
    }
    Ok(out)
}

/// Renders a whole users file (no comments).
pub(crate) fn render_users(doc: &UsersDoc) -> Result<String, toml::ser::Error> {
    toml::to_string(doc)
}

/// Renders one entry as a `[[user]]` table.
pub(crate) fn render_entry(entry: &UserEntry) -> Result<String, toml::ser::Error> {
    render_users(&UsersDoc {
        user: vec![entry.clone()],
        ..UsersDoc::default()
    })
}

/// Renders one group as a `[[group]]` table.
pub(crate) fn render_group(group: &GroupEntry) -> Result<String, toml::ser::Error> {
    render_users(&UsersDoc {
        group: vec![group.clone()],
        ..UsersDoc::default()
    })
}
