//! [`ConfigError`]: every configuration error names the setting, the source that gave it, what was
//! given and what was expected.

use std::fmt;
use std::path::Path;

use super::origin::Origin;

/// A configuration error. `Display` gives one line: the source, then what is wrong, e.g.
/// `config file /etc/fxpd/fxpd.toml, line 4, column 1: unknown key `fxp.alow_foreign_port`
/// (expected one of: allow_foreign_port, ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(Box<Inner>);

/// Boxed so that `Result<_, ConfigError>` stays one pointer wide.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    location: Option<Origin>,
    key: Option<String>,
    /// Another key the error depends on (cross-field rules): its source is reported when `key`
    /// was left at its default.
    related: Option<String>,
    message: String,
}

impl ConfigError {
    /// Where the bad value was given, when known.
    pub fn location(&self) -> Option<&Origin> {
        self.0.location.as_ref()
    }

    /// The dotted key of the offending setting (e.g. `limits.idle_timeout_secs`), when known.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// What is wrong, without the location prefix.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The 1-based line in the config file (or embedded quick start), if the error has one.
    pub fn line(&self) -> Option<usize> {
        self.0.location.as_ref().and_then(Origin::line)
    }

    pub(crate) fn new(key: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError(Box::new(Inner {
            location: None,
            key: key.map(str::to_string),
            related: None,
            message: message.into(),
        }))
    }

    /// `unknown key `a.b` (expected one of: x, y)`.
    pub(crate) fn unknown_key(key: &str, expected: &[&str]) -> Self {
        let message = if expected.is_empty() {
            format!("unknown key `{key}`")
        } else {
            format!("unknown key `{key}` (expected one of: {})", expected.join(", "))
        };
        ConfigError::new(Some(key), message)
    }

    /// `invalid value `abc` for a.b: expected an unsigned integer`.
    pub(crate) fn invalid_value(key: &str, given: impl fmt::Display, expected: impl fmt::Display) -> Self {
        ConfigError::new(
            Some(key),
            format!("invalid value `{given}` for {key}: expected {expected}"),
        )
    }

    /// `setting `a.b` <problem>`.
    pub(crate) fn setting(key: &str, problem: impl fmt::Display) -> Self {
        ConfigError::new(Some(key), format!("setting `{key}` {problem}"))
    }

    /// The config file could not be read.
    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        ConfigError(Box::new(Inner {
            location: Some(Origin::File {
                path: path.to_path_buf(),
                at: None,
            }),
            key: None,
            related: None,
            message: format!("cannot read it: {err}"),
        }))
    }

    /// Names another key the error depends on.
    pub(crate) fn related_to(mut self, key: &str) -> Self {
        self.0.related = Some(key.to_string());
        self
    }

    /// The other key a cross-field error depends on.
    pub(crate) fn related(&self) -> Option<&str> {
        self.0.related.as_deref()
    }

    /// Attaches the source, unless one is already known.
    pub(crate) fn at(mut self, location: Origin) -> Self {
        if self.0.location.is_none() {
            self.0.location = Some(location);
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.location {
            Some(location) => write!(f, "{}: {}", location.describe(), self.0.message),
            None => f.write_str(&self.0.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Checks that an integer setting lies in `range`; the error names the dotted key.
pub(crate) fn check_range<T>(key: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(ConfigError::invalid_value(
            key,
            value.to_string(),
            format!("an integer from {min} to {max}"),
        ));
    }
    Ok(())
}
