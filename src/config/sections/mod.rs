//! The typed schema: [`Config`] with its top-level keys, one file per section, and
//! [`Config::validate`]. Each section checks its own values; `Config::validate` calls them and
//! checks the top-level keys.

mod access;
mod admin;
mod anonymous;
mod cluster;
mod fxp;
mod limits;
mod log;
mod passive;
mod proxy;
mod storage;
mod tls;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use access::{AccessConfig, AccessDenial};
pub use admin::AdminConfig;
pub use anonymous::AnonymousConfig;
pub use cluster::ClusterConfig;
pub use fxp::FxpConfig;
pub use limits::LimitsConfig;
pub use log::{LogConfig, LogFormat, LogLevel};
pub use passive::{PassiveConfig, PortRange};
pub use proxy::ProxyConfig;
pub use storage::{StorageConfig, StorageKind};
pub use tls::{TlsConfig, TlsRequire};

use crate::config::error::ConfigError;

/// The complete, typed server configuration. Build it with [`load`](crate::config::load); it is validated once there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Control-channel listen addresses (`ip:port`, IPv6 as `[::1]:21`). At least one.
    /// In environment variables and flags: a comma-separated list.
    pub listen: Vec<SocketAddr>,
    /// Server root directory: the top of what FTP clients can see.
    pub root: PathBuf,
    /// User database file. `None`: no local users (only anonymous, if enabled).
    pub users_file: Option<PathBuf>,
    /// Format of LIST replies: `unix` (`ls -l`) or `msdos` (IIS MS-DOS style).
    pub listing_style: ListingStyle,
    /// Text of the 220 greeting. One line (no control characters), at most 200 characters.
    pub banner: String,
    /// Passive-mode data connections (PASV/EPSV).
    pub passive: PassiveConfig,
    /// Anonymous (`anonymous` / `ftp`) logins.
    pub anonymous: AnonymousConfig,
    /// Timeouts, connection caps and brute-force protection.
    pub limits: LimitsConfig,
    /// FXP (server-to-server transfer) switches: all off by default.
    pub fxp: FxpConfig,
    /// Logging.
    pub log: LogConfig,
    /// FTPS (RFC 4217): certificate, implicit listeners, when TLS is required.
    pub tls: TlsConfig,
    /// State shared by the nodes of a cluster (failed-login lockouts, FXP bans).
    pub cluster: ClusterConfig,
    /// PROXY protocol (v1/v2) from trusted load balancers: off unless `proxy.trusted` is set.
    pub proxy: ProxyConfig,
    /// Server-wide allow and deny lists of client networks for control connections.
    pub access: AccessConfig,
    /// Where files live: the local file system under `root` (default) or an S3 bucket.
    pub storage: StorageConfig,
    /// The admin listener (sessions, bans, reload, metrics): off unless `admin.listen` is set.
    pub admin: AdminConfig,
}

/// The built-in default server root.
#[cfg(not(windows))]
pub const DEFAULT_ROOT: &str = "/srv/ftp";
/// The built-in default server root.
#[cfg(windows)]
pub const DEFAULT_ROOT: &str = "C:\\ftproot";

/// The built-in default greeting.
pub const DEFAULT_BANNER: &str = "fxpd FTP server ready.";

/// Longest accepted banner, in characters.
pub const MAX_BANNER_CHARS: usize = 200;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 21))],
            root: PathBuf::from(DEFAULT_ROOT),
            users_file: None,
            listing_style: ListingStyle::default(),
            banner: DEFAULT_BANNER.to_string(),
            passive: PassiveConfig::default(),
            anonymous: AnonymousConfig::default(),
            limits: LimitsConfig::default(),
            fxp: FxpConfig::default(),
            log: LogConfig::default(),
            tls: TlsConfig::default(),
            cluster: ClusterConfig::default(),
            proxy: ProxyConfig::default(),
            access: AccessConfig::default(),
            storage: StorageConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

/// How directory listings (LIST) are formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListingStyle {
    /// `ls -l` style, what most clients expect.
    #[default]
    Unix,
    /// IIS "MS-DOS" style (`01-31-24  10:15AM  <DIR>  name`).
    Msdos,
}

impl Config {
    /// Checks every value's range and the few rules that tie values together. [`load`](crate::config::load) calls this;
    /// code that builds a `Config` by hand must call it before use. The error names the dotted
    /// key (e.g. `limits.idle_timeout_secs`); [`load`](crate::config::load) adds the source that set it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            return Err(ConfigError::setting(
                "listen",
                "must name at least one address to listen on",
            ));
        }
        let mut seen = HashSet::new();
        for addr in &self.listen {
            if !seen.insert(addr) {
                return Err(ConfigError::setting(
                    "listen",
                    format!("address `{addr}` is listed twice"),
                ));
            }
        }
        if self.root.as_os_str().is_empty() {
            return Err(ConfigError::setting("root", "must not be empty"));
        }
        self.tls.validate()?;
        self.storage.validate()?;
        if self.users_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ConfigError::setting(
                "users_file",
                "must not be empty (leave it out instead)",
            ));
        }
        if self.banner.chars().any(char::is_control) {
            return Err(ConfigError::setting(
                "banner",
                "must be a single line: CR, LF and other control characters are not allowed",
            ));
        }
        let banner_len = self.banner.chars().count();
        if banner_len > MAX_BANNER_CHARS {
            return Err(ConfigError::setting(
                "banner",
                format!("is {banner_len} characters long: at most {MAX_BANNER_CHARS} are allowed"),
            ));
        }
        self.passive.validate()?;
        self.limits.validate()?;
        self.admin.validate(self.tls.certificate.is_some())?;
        self.cluster.validate()
    }
}
