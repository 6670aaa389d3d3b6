//! Per-path rights: what a logged-in session may do where, decided in one place.
//!
//! fxpd runs as one system account, so file-system permissions cannot tell its users apart:
//! every file-touching command asks [`Rights::decide`] on the resolved, normalised virtual path
//! before it acts, and a refusal ([`Denied`]) names the missing right and the rule that decided.
//! This module knows nothing of sessions, storage or users files: the users file (in
//! [`crate::auth`]) builds a [`Rights`] per account from its rules, its groups', the `[everyone]`
//! rules and the defaults, and the session asks it.
//!
//! # The rights and the commands they govern
//!
//! | right | commands |
//! |---|---|
//! | `list` | LIST, NLST, MLSD, MLST, STAT *path*, SIZE, MDTM; CWD/CDUP (or `upload`) |
//! | `download` | RETR, HASH |
//! | `upload` | STOR/STOU of a new file, APPE of a missing file |
//! | `overwrite` | STOR over an existing file, RNTO onto an existing file |
//! | `append` | APPE to an existing file, STOR after REST (a resumed upload) |
//! | `delete` | DELE |
//! | `rename` | RNFR (the source) and RNTO (the target) |
//! | `mkdir` | MKD |
//! | `rmdir` | RMD |
//!
//! Names for several at once: `read` = list + download, `write` = every right but list and
//! download, `all` = every right.
//!
//! # Decision table
//!
//! A [`Rule`] says, for a virtual path and everything below it, which rights it allows and
//! which it denies. For one action on one path:
//!
//! | # | check | outcome |
//! |---|-------|---------|
//! | 1 | a path segment matches a hidden pattern | refused as if it did not exist |
//! | 2 | an upload (upload, overwrite, append; RNTO's target) whose file name matches a denied pattern | refused `553`, naming the pattern |
//! | 3 | among the rules on the path or one of its parents that name the right, the deepest path wins; at equal depth the more specific source (user or anonymous > group > everyone > default); at equal depth and source, deny beats allow | allowed or refused by that rule |
//! | 4 | no rule names the right | **refused** (deny by default), naming `/` |
//!
//! Paths are compared segment by segment without regard to case (Unicode lower case), so a
//! rule means the same on a case-sensitive and a case-insensitive file system, and no spelling
//! of a path (`..`, `//`, `.`, a trailing `/`, another case) reaches a denied one: the session
//! resolves every argument against the working directory first ([`crate::path::resolve`]).
//! On a case-sensitive file system this errs on the side of refusing: a deny on `/Secret`
//! also covers a different directory `/secret`.
//!
//! Symbolic links inside a home are followed by the file system, so the session asks
//! [`Rights::decide_reached`]: the rules must allow both the path the client named and the
//! path the file system reaches through the links ([`links`]), and a path that cannot be
//! reached inside the home (a loop, a link outside) is refused as if it did not exist.
//!
//! - this file: rights, sets of rights, the decision and its refusals;
//! - `links.rs`: the path the file system reaches through symbolic links;
//! - `rule.rs`: rule paths, rules and where they come from;
//! - `filter.rs`: file-name patterns (denied uploads, hidden segments).

mod filter;
pub mod links;
mod rule;
#[cfg(test)]
mod tests;

use std::fmt;

pub use filter::{Pattern, PatternError};
pub use rule::{Rule, RulePath, RuleSpec, Source, MAX_RULE_PATH};

/// One right, and the action a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Right {
    /// See a directory's entries or a file's metadata.
    List,
    /// Read a file's contents.
    Download,
    /// Create a new file.
    Upload,
    /// Replace an existing file.
    Overwrite,
    /// Add to an existing file (APPE, a resumed STOR).
    Append,
    /// Remove a file.
    Delete,
    /// Rename a file or directory (both ends).
    Rename,
    /// Create a directory.
    Mkdir,
    /// Remove a directory.
    Rmdir,
}

impl Right {
    /// Every right, in the order of the table in the module docs.
    pub const ALL: [Right; 9] = [
        Right::List,
        Right::Download,
        Right::Upload,
        Right::Overwrite,
        Right::Append,
        Right::Delete,
        Right::Rename,
        Right::Mkdir,
        Right::Rmdir,
    ];

    /// The name in the users file and in replies.
    pub fn name(self) -> &'static str {
        match self {
            Right::List => "list",
            Right::Download => "download",
            Right::Upload => "upload",
            Right::Overwrite => "overwrite",
            Right::Append => "append",
            Right::Delete => "delete",
            Right::Rename => "rename",
            Right::Mkdir => "mkdir",
            Right::Rmdir => "rmdir",
        }
    }

    /// The right of this name (`list`, `download`...), any ASCII case.
    pub fn parse(name: &str) -> Option<Right> {
        Right::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
    }

    /// Whether this right writes file contents (the file-name filter applies).
    pub fn stores(self) -> bool {
        matches!(self, Right::Upload | Right::Overwrite | Right::Append)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RightSet(u16);

impl RightSet {
    /// No right.
    pub const NONE: RightSet = RightSet(0);

    /// Every right.
    pub fn all() -> RightSet {
        Right::ALL.into_iter().collect()
    }

    /// `list` and `download`.
    pub fn read() -> RightSet {
        [Right::List, Right::Download].into_iter().collect()
    }

    /// Every right but `list` and `download`.
    pub fn write() -> RightSet {
        RightSet(RightSet::all().0 & !RightSet::read().0)
    }

    /// Whether `right` is in the set.
    pub fn contains(self, right: Right) -> bool {
        self.0 & right.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The union of two sets.
    pub fn union(self, other: RightSet) -> RightSet {
        RightSet(self.0 | other.0)
    }

    /// The rights in the set, in the order of [`Right::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Right> {
        Right::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// Parses names: each a right, or `read`, `write`, `all`.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<RightSet, String> {
        let mut set = RightSet::NONE;
        for name in names {
            let more = match name.to_ascii_lowercase().as_str() {
                "read" => RightSet::read(),
                "write" => RightSet::write(),
                "all" => RightSet::all(),
                other => match Right::parse(other) {
                    Some(r) => std::iter::once(r).collect(),
                    None => {
                        return Err(format!(
                            "unknown right {name:?}; expected list, download, upload, overwrite, append, delete, rename, mkdir, rmdir, read, write or all"
                        ))
                    }
                },
            };
            set = set.union(more);
        }
        Ok(set)
    }

    /// The names, for the users file (each right once; `all` when complete).
    pub fn names(self) -> Vec<String> {
        if self == RightSet::all() {
            return vec!["all".into()];
        }
        self.iter().map(|r| r.name().to_owned()).collect()
    }
}

impl FromIterator<Right> for RightSet {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> RightSet {
        RightSet(iter.into_iter().fold(0, |acc, r| acc | r.bit()))
    }
}

impl fmt::Display for RightSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        f.write_str(&self.names().join(","))
    }
}

impl serde::Serialize for RightSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> serde::Deserialize<'de> for RightSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RightSet, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        RightSet::parse(names.iter().map(String::as_str)).map_err(serde::de::Error::custom)
    }
}

/// What the decision turned on: the rule that decided, or none (deny by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    /// The deciding rule's path (`/` when no rule named the right).
    pub path: String,
    /// Where the rule came from (`None`: no rule named the right).
    pub source: Option<Source>,
    /// Whether the rule allows.
    pub allows: bool,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The right is missing: a rule denies it, or none allows it.
    Missing {
        /// The right asked for.
        right: Right,
        /// The rule's path (`/` when no rule names the right).
        rule_path: String,
        /// Where the deciding rule came from (`None`: denied by default).
        source: Option<Source>,
    },
    /// A hidden segment: answered as if the path did not exist.
    Hidden,
    /// An upload whose file name matches a denied pattern.
    FileName {
        /// The pattern, as written.
        pattern: String,
    },
    /// The account no longer exists or is no longer allowed (after a reload).
    NoAccount,
    /// A symbolic link on the path loops or leads outside the home: answered as if the path
    /// did not exist.
    Unreachable,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Missing {
                right,
                rule_path,
                source: Some(source),
            } => write!(f, "no {right} right at {rule_path} ({source} rule)"),
            Denied::Missing { right, rule_path, .. } => {
                write!(f, "no {right} right at {rule_path} (no rule allows it)")
            }
            Denied::Hidden => f.write_str("hidden path"),
            Denied::FileName { pattern } => write!(f, "file name matches the denied pattern {pattern}"),
            Denied::NoAccount => f.write_str("the account is no longer valid"),
            Denied::Unreachable => f.write_str("a symbolic link on the path loops or leaves the home"),
        }
    }
}

/// Everything the decision needs for one account: its rules and file-name filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights {
    /// The rules from every source.
    rules: Vec<Rule>,
    /// Upload file names refused (any case).
    deny_files: Vec<Pattern>,
    /// Path segments nobody sees or reaches (any case).
    hidden: Vec<Pattern>,
    /// Refuses everything: the account is gone or no longer allowed.
    revoked: bool,
}

impl Rights {
    /// Rights from `rules`, `deny_files` and `hidden`.
    pub fn new(rules: Vec<Rule>, deny_files: Vec<Pattern>, hidden: Vec<Pattern>) -> Rights {
        Rights {
            rules,
            deny_files,
            hidden,
            revoked: false,
        }
    }

    /// Rights that refuse everything ([`Denied::NoAccount`]).
    pub fn revoked() -> Rights {
        Rights {
            revoked: true,
            ..Rights::default()
        }
    }

    /// The defaults of the old model: `/` allows `read`, and `write` too when `write` is on.
    pub fn default_rules(write: bool) -> Rule {
        let allow = if write { RightSet::all() } else { RightSet::read() };
        Rule {
            spec: RuleSpec {
                path: RulePath::root(),
                allow,
                deny: RightSet::NONE,
            },
            source: Source::Default,
        }
    }

    /// The rules in force, in the order they were given.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The denied upload patterns.
    pub fn deny_files(&self) -> &[Pattern] {
        &self.deny_files
    }

    /// The hidden segment patterns.
    pub fn hidden(&self) -> &[Pattern] {
        &self.hidden
    }

    /// Whether a listing entry named `name` is hidden.
    pub fn hides(&self, name: &str) -> bool {
        self.hidden.iter().any(|p| p.matches(name))
    }

    /// The one decision: may this account do `right` on `path` (a resolved virtual path,
    /// `/` is the home)? See the decision table in the module docs.
    pub fn decide(&self, path: &str, right: Right) -> Result<(), Denied> {
        // SECURITY: a revoked account (removed or disabled by a reload) may do nothing.
        if self.revoked {
            return Err(Denied::NoAccount);
        }
        // SECURITY: row 1, a hidden segment anywhere in the path hides everything below it.
        if path.split('/').any(|p| !p.is_empty() && self.hides(p)) {
            return Err(Denied::Hidden);
        }
        // SECURITY: row 2, denied file names for anything that stores file contents.
        if right.stores() {
            self.check_name(path)?;
        }
        match self.deciding_rule(path, right) {
            Some((_, true)) => Ok(()),
            deciding => {
                let decider = Decider::of(deciding);
                Err(Denied::Missing {
                    right,
                    rule_path: decider.path,
                    source: decider.source,
                })
            }
        }
    }

    /// Whether `right` is decided the same on every path: no hidden segments, no rule below
    /// `/` names it, and no denied file name applies to it. Then the path a symbolic link
    /// reaches is judged as the path named, wherever in the home it leads.
    pub fn same_everywhere(&self, right: Right) -> bool {
        self.hidden.is_empty()
            && (!right.stores() || self.deny_files.is_empty())
            && self.rules.iter().all(|rule| {
                let spec = &rule.spec;
                spec.path.depth() == 0 || !(spec.allow.contains(right) || spec.deny.contains(right))
            })
    }

    /// [`Rights::decide`] on the path the client named and on the path the file system
    /// reaches for it through symbolic links ([`links::reached`], `read_link` saying what each
    /// path on the way is): both must allow.
    pub fn decide_reached(
        &self,
        path: &str,
        right: Right,
        read_link: impl FnMut(&str) -> links::Link,
    ) -> Result<(), Denied> {
        self.decide(path, right)?;
        // SECURITY: a link inside an allowed directory must not reach a denied one.
        match links::reached(path, read_link) {
            None => Err(Denied::Unreachable),
            Some(target) if target == path => Ok(()),
            Some(target) => self.decide(&target, right),
        }
    }

    /// Row 2 alone: whether the last segment of `path` is a denied file name (RNTO's
    /// target, besides the uploads [`Rights::decide`] checks).
    pub fn check_name(&self, path: &str) -> Result<(), Denied> {
        let name = path.rsplit('/').next().unwrap_or("");
        match self.deny_files.iter().find(|p| p.matches(name)) {
            Some(p) => Err(Denied::FileName {
                pattern: p.as_str().to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Rows 3-4 of the table: which rule decides `right` on `path`, and how.
    pub fn decider(&self, path: &str, right: Right) -> Decider {
        Decider::of(self.deciding_rule(path, right))
    }

    /// Rows 3-4 without copies: the rule that decides `right` on `path` and whether it
    /// allows; `None` when no rule names the right (row 4, deny by default).
    fn deciding_rule(&self, path: &str, right: Right) -> Option<(&Rule, bool)> {
        let mut best: Option<(usize, u8, bool, &Rule)> = None;
        for rule in &self.rules {
            let spec = &rule.spec;
            let (allows, denies) = (spec.allow.contains(right), spec.deny.contains(right));
            if !(allows || denies) || !spec.path.covers(path) {
                continue;
            }
            // Deepest path, then the most specific source, then deny over allow.
            let key = (spec.path.depth(), rule.source.rank(), denies);
            let better = match &best {
                None => true,
                Some((depth, rank, denied, _)) => key > (*depth, *rank, *denied),
            };
            if better {
                best = Some((key.0, key.1, key.2, rule));
            }
        }
        best.map(|(_, _, denies, rule)| (rule, !denies))
    }
}

impl Decider {
    /// The owned account of a [`Rights::deciding_rule`] verdict.
    fn of(deciding: Option<(&Rule, bool)>) -> Decider {
        match deciding {
            Some((rule, allows)) => Decider {
                path: rule.spec.path.as_str().to_owned(),
                source: Some(rule.source.clone()),
                allows,
            },
            // SECURITY: row 4, deny by default.
            None => Decider {
                path: "/".into(),
                source: None,
                allows: false,
            },
        }
    }
}
