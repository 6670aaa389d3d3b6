//! The `[limits]` section: timeouts, caps, login throttling and rate limits.

use serde::{Deserialize, Serialize};

use crate::config::error::{check_range, ConfigError};

/// Timeouts, caps and brute-force protection. Every value is range-checked by [`Config::validate`](super::Config::validate).
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

impl LimitsConfig {
    /// Checks every value's range and that no per-address cap is above its total.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = self;
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
        check_range("limits.shutdown_grace_secs", l.shutdown_grace_secs, 0, 3_600)
    }
}
