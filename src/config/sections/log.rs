//! The `[log]` section: format, level and the W3C command log.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Output format: `text` (human-readable) or `json` (one object per line).
    pub format: LogFormat,
    /// Least severe level written: `error`, `warn`, `info`, `debug` or `trace`.
    pub level: LogLevel,
    /// Directory for the IIS-style W3C Extended command and transfer log (`exYYMMDD.log`,
    /// one file per UTC day). Default: not set (no W3C log).
    pub w3c_dir: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Normal operation messages.
    #[default]
    Info,
    /// Debugging detail.
    Debug,
    /// Everything, including per-command traces.
    Trace,
}

impl LogLevel {
    /// The level's lowercase name, as used in the config file and by `tracing` filters.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// For the subscriber set up in `main.rs` (tracing is already a dependency of fxpd).
impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> tracing::Level {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
