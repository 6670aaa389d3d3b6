//! Rules: a virtual path and everything below it, the rights allowed and denied there, and
//! where the rule comes from (its source decides ties at equal depth).

use std::fmt;

use super::RightSet;

/// Longest rule path (bytes).
pub const MAX_RULE_PATH: usize = 1024;

/// A rule's virtual path: absolute, normalised (`/`, `/pub/incoming`), no `.` or `..`
/// segment, no control character. Compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RulePath {
    /// As written, normalised: shown in replies and `fxpd user show`.
    shown: String,
    /// The lower-case segments, for matching.
    segments: Vec<String>,
}

impl RulePath {
    /// The root, `/`.
    pub fn root() -> RulePath {
        RulePath {
            shown: "/".into(),
            segments: Vec::new(),
        }
    }

    /// Parses a rule path.
    pub fn parse(s: &str) -> Result<RulePath, String> {
        if !s.starts_with('/') {
            return Err(format!("rule path {s:?} must start with '/'"));
        }
        if s.len() > MAX_RULE_PATH {
            return Err(format!("rule path is longer than {MAX_RULE_PATH} bytes"));
        }
        let mut shown = String::new();
        let mut segments = Vec::new();
        for part in s.split('/').filter(|p| !p.is_empty()) {
            // SECURITY: a rule names one place: `..` or `.` would make it mean another.
            if !crate::path::valid_component(part) {
                return Err(format!(
                    "rule path {s:?} has a segment that is '.', '..' or has a control character"
                ));
            }
            shown.push('/');
            shown.push_str(part);
            segments.push(part.to_lowercase());
        }
        if shown.is_empty() {
            shown.push('/');
        }
        Ok(RulePath { shown, segments })
    }

    /// The path as shown (`/`, `/incoming`).
    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// How many segments deep (`/` is 0).
    pub fn depth(&self) -> usize {
        self.segments.len()
    }

    /// Whether this path is `path` (a resolved virtual path) or one of its parents, without
    /// regard to case. No copy of `path` is made unless a segment compared is not ASCII.
    pub(super) fn covers(&self, path: &str) -> bool {
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        self.segments.iter().all(|lower| {
            parts.next().is_some_and(|part| {
                if part.is_ascii() {
                    lower.eq_ignore_ascii_case(part)
                } else {
                    part.to_lowercase() == *lower
                }
            })
        })
    }
}

impl fmt::Display for RulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl serde::Serialize for RulePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.shown)
    }
}

impl<'de> serde::Deserialize<'de> for RulePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RulePath, D::Error> {
        let s = String::deserialize(d)?;
        RulePath::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A rule as written in the users file: on `path` and below, `allow` these rights and
/// `deny` those.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The virtual path the rule covers, with everything below it.
    pub path: RulePath,
    /// Rights granted there.
    #[serde(default, skip_serializing_if = "RightSet::is_empty")]
    pub allow: RightSet,
    /// Rights refused there (beats `allow` at the same path and source).
    #[serde(default, skip_serializing_if = "RightSet::is_empty")]
    pub deny: RightSet,
}

/// Where a rule comes from, from least to most specific.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// The defaults: the account's `write` switch (or `anonymous.write`).
    Default,
    /// The users file's `[everyone]` rules.
    Everyone,
    /// A group the user is in.
    Group(String),
    /// The user's own rules.
    User(String),
    /// The users file's `[anonymous]` rules.
    Anonymous,
}

impl Source {
    /// Specificity at equal path depth: higher wins.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Source::Default => 0,
            Source::Everyone => 1,
            Source::Group(_) => 2,
            Source::User(_) | Source::Anonymous => 3,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Everyone => f.write_str("everyone"),
            Source::Group(g) => write!(f, "group {g}"),
            Source::User(u) => write!(f, "user {u}"),
            Source::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// A rule in force for one account, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What it says.
    pub spec: RuleSpec,
    /// Who it came from.
    pub source: Source,
}
