//! [`Origin`]: where a setting's value came from, and so also where a bad value was given.
//!
//! One type serves both: `fxpd config show` prints each effective value's origin in its short
//! form (`file /etc/fxpd/fxpd.toml:4`), and a [`ConfigError`](super::ConfigError) starts with
//! the long form of the origin of the bad value (`config file /etc/fxpd/fxpd.toml, line 4,
//! column 1`).

use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column (in characters) in a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The embedded quick-start file (`config/quickstart.toml`; no config file was found).
    Embedded {
        /// Where the key is in it.
        at: Position,
    },
    /// A config file.
    File {
        /// The config file as given (or the default path).
        path: PathBuf,
        /// Where the key is; `None` when the file could not be read at all.
        at: Option<Position>,
    },
    /// A Windows registry value (fxpd's own key, or IIS's `MSFTPSVC` key for the KB Q247132
    /// values).
    Registry {
        /// The key, e.g. `HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters`.
        key: String,
        /// The value's name, e.g. `EnablePortAttack`.
        value: String,
    },
    /// An `FXPD__*` environment variable.
    Env {
        /// The variable's name as it was set.
        var: String,
    },
    /// A command-line flag (`--listen`, `--root`, `--users`, `--set KEY`).
    Flag {
        /// The flag, e.g. `--set fxp.allow_foreign_port`.
        flag: String,
    },
}

impl Origin {
    /// The 1-based line in the config file (or the embedded quick start), if there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Origin::File { at, .. } => at.map(|p| p.line),
            Origin::Embedded { at } => Some(at.line),
            _ => None,
        }
    }

    /// The long form that starts an error message, e.g. `config file /etc/fxpd/fxpd.toml,
    /// line 4, column 1` or `environment variable FXPD__LISTEN`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Default => "built-in default".to_string(),
            Origin::File { path, at } => match at {
                Some(p) => format!(
                    "config file {}, line {}, column {}",
                    path.display(),
                    p.line,
                    p.column
                ),
                None => format!("config file {}", path.display()),
            },
            Origin::Embedded { at } => format!(
                "embedded quick-start config (config/quickstart.toml), line {}, column {}",
                at.line, at.column
            ),
            Origin::Registry { key, value } => format!("registry value {key}\\{value}"),
            Origin::Env { var } => format!("environment variable {var}"),
            Origin::Flag { flag } => format!("command-line flag {flag}"),
        }
    }
}

/// The short form, as `fxpd config show` prints it: `default`, `quick-start default`,
/// `file PATH:LINE`, `registry KEY\VALUE`, `env VAR`, `flag --X`.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Embedded { .. } => f.write_str("quick-start default"),
            Origin::File { path, at: Some(p) } => write!(f, "file {}:{}", path.display(), p.line),
            Origin::File { path, at: None } => write!(f, "file {}", path.display()),
            Origin::Registry { key, value } => write!(f, "registry {key}\\{value}"),
            Origin::Env { var } => write!(f, "env {var}"),
            Origin::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}
