//! The `[cluster]` section: the Redis server shared by the nodes of a cluster.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::error::{check_range, ConfigError};

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
    /// Checks the Redis URL (never echoing a password), the password file and the key prefix.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
