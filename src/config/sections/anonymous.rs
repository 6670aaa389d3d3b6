//! The `[anonymous]` section: anonymous (`anonymous` / `ftp`) logins.

use std::path::PathBuf;

/// Anonymous login settings (the `[anonymous]` section of the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousConfig {
    /// Whether `anonymous` / `ftp` may log in (with any password). Default: false.
    pub enabled: bool,
    /// Whether anonymous sessions may write. Default: false.
    pub write: bool,
    /// Home directory of anonymous sessions, relative to the server root; `None` = the root.
    pub home: Option<PathBuf>,
}
