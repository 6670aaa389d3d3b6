//! fxpd's configuration: one typed [`Config`], validated once, plus where every value came from.
//!
//! # Layout
//! - `mod.rs` (this file): the typed schema ([`Config`] and its sections), built-in defaults and
//!   [`Config::validate`].
//! - `sources.rs`: the layers (built-in defaults < config file < Windows registry < `FXPD__*`
//!   environment variables < command-line flags), [`load`], the origin of every value and
//!   [`default_config_path`].
//! - `registry.rs`: the registry layer: IIS-style value names ([`REGISTRY_VALUES`]) mapped to keys
//!   through the [`RegistrySource`] trait (tested on every platform with a fake), and the real
//!   `HKLM` reader (`cfg(windows)`).
//! - `schema.rs`: the list of leaf keys and the TOML kind each expects, derived from the defaults;
//!   turns environment/flag strings into typed TOML values.
//! - `origin.rs`: [`Origin`], where a value came from (a file position, a registry value, a
//!   variable, a flag): shown by `fxpd config show`, and at the start of every error.
//! - `error.rs`: [`ConfigError`], which always names the setting and the source that gave it.
//! - `render.rs`: [`render_text`] / [`render_json`], the effective configuration with origins.
//!
//! # Decisions
//! - We layer `toml::Table`s ourselves instead of using the `config` crate: that crate cannot
//!   report the file position of an unknown key or a badly typed value, and strict config
//!   (unknown keys rejected, with a line number) is a requirement.
//! - Every struct is `#[serde(deny_unknown_fields, default)]`: a partial file is fine, a typo is
//!   an error. Every key is documented here and in the shipped `config/fxpd.example.toml`, and a
//!   test parses every shipped file.
//! - Fail closed: any error anywhere returns `Err`; a partially applied configuration is never
//!   returned. An unreadable default config file is an error, not a reason to fall back to the
//!   quick start.
//! - Relative `root` / `users_file` in a config file are resolved against the file's directory.
//!   The embedded quick start's `./ftproot`, and relative paths from the environment or flags, stay
//!   relative to the current directory.

mod error;
mod origin;
mod registry;
mod render;
mod schema;
mod sources;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use origin::{Origin, Position};
#[cfg(windows)]
pub use registry::WindowsRegistry;
pub use registry::{
    display_key, platform_registry, RegType, RegValue, RegistrySource, RegistryValue, IIS_KEY,
    REGISTRY_VALUES, SERVICE_KEY,
};
pub use render::{render_json, render_text};
pub use sources::{
    default_config_path, env_vars, load, load_from, load_with_default_path, Loaded, Overrides, ENV_PREFIX,
    QUICKSTART_TOML,
};

/// The complete, typed server configuration. Build it with [`load`]; it is validated once there.
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
    pub anonymous: crate::auth::AnonymousConfig,
    /// Timeouts, connection caps and brute-force protection.
    pub limits: LimitsConfig,
    /// FXP (server-to-server transfer) switches: all off by default.
    pub fxp: crate::policy::FxpConfig,
    /// Logging.
    pub log: LogConfig,
    /// FTPS (RFC 4217): certificate, implicit listeners, when TLS is required.
    pub tls: crate::tls::TlsConfig,
    /// State shared by the nodes of a cluster (failed-login lockouts, FXP bans).
    pub cluster: ClusterConfig,
    /// PROXY protocol (v1/v2) from trusted load balancers: off unless `proxy.trusted` is set.
    pub proxy: crate::proxy::ProxyConfig,
    /// Where files live: the local file system under `root` (default) or an S3 bucket.
    pub storage: crate::storage::StorageConfig,
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
            anonymous: crate::auth::AnonymousConfig::default(),
            limits: LimitsConfig::default(),
            fxp: crate::policy::FxpConfig::default(),
            log: LogConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            cluster: ClusterConfig::default(),
            proxy: crate::proxy::ProxyConfig::default(),
            storage: crate::storage::StorageConfig::default(),
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

/// Passive-mode settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveConfig {
    /// Local ports used for passive data connections, `"first-last"` (or a single `"port"`).
    pub ports: PortRange,
    /// Address announced in 227 replies, for servers behind NAT. `None`: the control
    /// connection's local address.
    pub address: Option<IpAddr>,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        PassiveConfig {
            ports: PortRange {
                first: 50000,
                last: 50999,
            },
            address: None,
        }
    }
}

/// An inclusive TCP port range, written `"50000-50999"` (or `"50000"` for a single port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port of the range (at least 1).
    pub first: u16,
    /// Last port of the range (at least `first`).
    pub last: u16,
}

impl PortRange {
    /// Number of ports in the range (0 only for an invalid range).
    pub fn len(&self) -> u32 {
        if self.last < self.first {
            0
        } else {
            u32::from(self.last) - u32::from(self.first) + 1
        }
    }

    /// True only for an invalid range (`last < first`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `port` is inside the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    fn check(&self) -> Result<(), String> {
        if self.first == 0 {
            return Err("port 0 is not allowed".to_string());
        }
        if self.first > self.last {
            return Err(format!(
                "first port {} is above last port {}",
                self.first, self.last
            ));
        }
        Ok(())
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "expected `first-last` (e.g. `50000-50999`) or a single port, 1..=65535";
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("invalid port range `{s}`: {expected}"))
        };
        let range = match s.split_once('-') {
            Some((a, b)) => PortRange {
                first: port(a)?,
                last: port(b)?,
            },
            None => {
                let p = port(s)?;
                PortRange { first: p, last: p }
            }
        };
        range
            .check()
            .map_err(|e| format!("invalid port range `{s}`: {e}"))?;
        Ok(range)
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port range string such as \"50000-50999\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortRange, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Timeouts, caps and brute-force protection. Every value is range-checked by [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Seconds a logged-in control connection may sit idle before it is closed (1..=86400).
    pub idle_timeout_secs: u64,
    /// Seconds to wait for a passive accept, an active connect, or progress in a stalled
    /// transfer (1..=3600).
    pub data_timeout_secs: u64,
    /// Seconds a client has to complete login after connecting (1..=3600).
    pub login_timeout_secs: u64,
    /// Most concurrent logged-in sessions in total (1..=100000). Connections that have not
    /// logged in yet do not count here: they have their own budget, `max_unauthenticated`.
    pub max_sessions: usize,
    /// Most concurrent logged-in sessions of one client address, its /64 for IPv6
    /// (1..=max_sessions).
    pub max_sessions_per_ip: usize,
    /// Most concurrent control connections that have not logged in yet, in total
    /// (1..=100000). When it is full, a newcomer from an address holding fewer such
    /// connections than the busiest address takes the seat of that address's oldest one.
    pub max_unauthenticated: usize,
    /// Most concurrent control connections that have not logged in yet from one client
    /// address, its /64 for IPv6 (1..=max_unauthenticated); never more than
    /// `max_sessions_per_ip` either.
    pub max_unauthenticated_per_ip: usize,
    /// Longest accepted command line in bytes, CRLF included (512..=65536).
    pub max_line_len: usize,
    /// Least time in milliseconds between a wrong password and its answer (0..=30000); the
    /// answer also waits for as long as the slowest password hash takes, whichever is longer,
    /// so its timing does not tell which user names exist.
    pub failed_login_delay_ms: u64,
    /// Failed logins from one client address before it is locked out, and for one user name
    /// (from any addresses) before its logins are slowed down (1..=1000).
    pub max_login_failures: u32,
    /// Seconds a locked-out address stays locked; also how long failures are counted
    /// (1..=604800).
    pub lockout_secs: u64,
    /// Longest wait in milliseconds imposed on every login for a user name that had more than
    /// `max_login_failures` failures (0..=60000; 0 = no slowdown). The wait starts at 1 s and
    /// doubles with each further failure. User names are never locked.
    pub user_slowdown_max_ms: u64,
    /// Seconds running transfers may finish after SIGTERM / service stop (0..=3600).
    pub shutdown_grace_secs: u64,
    /// Download rate limit per session in bytes per second; 0 = unlimited.
    pub download_bytes_per_sec: u64,
    /// Upload rate limit per session in bytes per second; 0 = unlimited.
    pub upload_bytes_per_sec: u64,
    /// Download rate limit for all sessions together in bytes per second; 0 = unlimited.
    pub global_download_bytes_per_sec: u64,
    /// Upload rate limit for all sessions together in bytes per second; 0 = unlimited.
    pub global_upload_bytes_per_sec: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            idle_timeout_secs: 300,
            data_timeout_secs: 60,
            login_timeout_secs: 30,
            max_sessions: 500,
            max_sessions_per_ip: 50,
            max_unauthenticated: 100,
            max_unauthenticated_per_ip: 10,
            max_line_len: 8192,
            failed_login_delay_ms: 1000,
            max_login_failures: 5,
            lockout_secs: 900,
            user_slowdown_max_ms: 10_000,
            shutdown_grace_secs: 30,
            download_bytes_per_sec: 0,
            upload_bytes_per_sec: 0,
            global_download_bytes_per_sec: 0,
            global_upload_bytes_per_sec: 0,
        }
    }
}

/// State shared by every node of a cluster behind a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Redis server holding failed-login lockouts and FXP bans for every node, as
    /// `redis://host:port/db`. Not set (the default): each node keeps its own, in memory.
    /// The URL must not carry a password: put it in `cluster.redis_password_file`.
    pub redis_url: Option<String>,
    /// File whose first line is the Redis password (kept out of the configuration, so
    /// `fxpd config check` never shows it). Not set: no password.
    pub redis_password_file: Option<PathBuf>,
    /// Prefix of every Redis key fxpd writes, so several clusters can share one Redis.
    pub key_prefix: String,
    /// Longest wait for one Redis request, in milliseconds; past it the node goes on with
    /// its own accounting (and logs it).
    pub timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            redis_password_file: None,
            key_prefix: "fxpd".to_string(),
            timeout_ms: 500,
        }
    }
}

impl ClusterConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            if !url.starts_with("redis://") {
                return Err(ConfigError::invalid_value(
                    "cluster.redis_url",
                    url.clone(),
                    "a `redis://host:port/db` URL",
                ));
            }
            let info = redis::IntoConnectionInfo::into_connection_info(url.as_str()).map_err(|e| {
                // Never echo a URL that may hold a password.
                let shown = if url.contains('@') {
                    "(not shown: it has a user part)"
                } else {
                    url
                };
                ConfigError::invalid_value("cluster.redis_url", shown, format!("a valid Redis URL ({e})"))
            })?;
            if info.redis_settings().password().is_some() {
                // The message must not repeat the URL: it holds the password.
                return Err(ConfigError::setting(
                    "cluster.redis_url",
                    "must not contain a password: put it in cluster.redis_password_file",
                ));
            }
        } else if self.redis_password_file.is_some() {
            return Err(ConfigError::setting(
                "cluster.redis_password_file",
                "is set but cluster.redis_url is not",
            )
            .related_to("cluster.redis_url"));
        }
        let prefix_ok = !self.key_prefix.is_empty()
            && self.key_prefix.len() <= 64
            && self
                .key_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !prefix_ok {
            return Err(ConfigError::invalid_value(
                "cluster.key_prefix",
                self.key_prefix.clone(),
                "1 to 64 characters among A-Z a-z 0-9 - _ . :",
            ));
        }
        check_range("cluster.timeout_ms", self.timeout_ms, 10, 60_000)
    }
}

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

/// Checks that an integer setting lies in `range`; the error names the dotted key.
fn check_range<T>(key: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
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

impl Config {
    /// Checks every value's range and the few rules that tie values together. [`load`] calls this;
    /// code that builds a `Config` by hand must call it before use. The error names the dotted
    /// key (e.g. `limits.idle_timeout_secs`); [`load`] adds the source that set it.
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
        if let Err(e) = self.tls.validate() {
            return Err(ConfigError::setting("tls", e));
        }
        if let Err(e) = self.storage.validate() {
            return Err(ConfigError::setting(e.key, e.problem));
        }
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
        if let Err(e) = self.passive.ports.check() {
            return Err(ConfigError::invalid_value(
                "passive.ports",
                self.passive.ports.to_string(),
                format!("a valid port range ({e})"),
            ));
        }
        let l = &self.limits;
        check_range("limits.idle_timeout_secs", l.idle_timeout_secs, 1, 86_400)?;
        check_range("limits.data_timeout_secs", l.data_timeout_secs, 1, 3_600)?;
        check_range("limits.login_timeout_secs", l.login_timeout_secs, 1, 3_600)?;
        check_range("limits.max_sessions", l.max_sessions, 1, 100_000)?;
        check_range("limits.max_sessions_per_ip", l.max_sessions_per_ip, 1, 100_000)?;
        if l.max_sessions_per_ip > l.max_sessions {
            let problem = format!(
                "({}) must not be above limits.max_sessions ({})",
                l.max_sessions_per_ip, l.max_sessions
            );
            return Err(
                ConfigError::setting("limits.max_sessions_per_ip", problem).related_to("limits.max_sessions")
            );
        }
        check_range("limits.max_unauthenticated", l.max_unauthenticated, 1, 100_000)?;
        check_range(
            "limits.max_unauthenticated_per_ip",
            l.max_unauthenticated_per_ip,
            1,
            100_000,
        )?;
        if l.max_unauthenticated_per_ip > l.max_unauthenticated {
            let problem = format!(
                "({}) must not be above limits.max_unauthenticated ({})",
                l.max_unauthenticated_per_ip, l.max_unauthenticated
            );
            return Err(ConfigError::setting("limits.max_unauthenticated_per_ip", problem)
                .related_to("limits.max_unauthenticated"));
        }
        check_range("limits.max_line_len", l.max_line_len, 512, 65_536)?;
        check_range("limits.failed_login_delay_ms", l.failed_login_delay_ms, 0, 30_000)?;
        check_range("limits.max_login_failures", l.max_login_failures, 1, 1_000)?;
        check_range("limits.lockout_secs", l.lockout_secs, 1, 604_800)?;
        check_range("limits.user_slowdown_max_ms", l.user_slowdown_max_ms, 0, 60_000)?;
        check_range("limits.shutdown_grace_secs", l.shutdown_grace_secs, 0, 3_600)?;
        self.cluster.validate()
    }
}
