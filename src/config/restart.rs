//! The settings fxpd reads only when it starts, and which of them a reloaded configuration
//! changes. A reload applies every other setting at once; these keep their start-up values
//! until a restart, and the reload names them (docs/configuration.md, "Reload").

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::schema;
use super::sections::{Config, StorageKind};

/// Dotted keys, or whole sections, read only at start, with what holds them.
pub const RESTART_KEYS: &[&str] = &[
    // The bound control listeners.
    "listen",
    "tls.implicit_listen",
    // The login guard, which keeps its counts across reloads.
    "limits.failed_login_delay_ms",
    "limits.max_login_failures",
    "limits.lockout_secs",
    "limits.user_slowdown_max_ms",
    // The shutdown grace period, taken when the server starts.
    "limits.shutdown_grace_secs",
    // The Redis connection and the storage back-end.
    "cluster",
    "storage",
    // The admin listener, bound at start, and the token it read then.
    "admin",
];

/// The leaf keys read only at start whose value differs between `running` (the configuration
/// fxpd started with) and `new`, sorted. With S3 storage, `limits.data_timeout_secs` is one of
/// them too: the S3 requests' timeout is fixed when the back-end is built (data connections
/// take the new value at once).
pub fn needs_restart(running: &Config, new: &Config) -> Vec<String> {
    let (before, after) = (leaves(running), leaves(new));
    let fixed = |key: &str| {
        RESTART_KEYS
            .iter()
            .any(|k| key == *k || key.strip_prefix(k).is_some_and(|rest| rest.starts_with('.')))
            || (key == "limits.data_timeout_secs" && running.storage.kind == StorageKind::S3)
    };
    schema::schema()
        .leaves()
        .filter(|key| fixed(key) && before.get(*key) != after.get(*key))
        .map(str::to_string)
        .collect()
}

/// Every leaf key whose value differs between `before` and `after`, sorted (what a reload
/// changed).
pub fn changed(before: &Config, after: &Config) -> Vec<String> {
    let (before, after) = (leaves(before), leaves(after));
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|key| before.get(*key) != after.get(*key))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Every leaf key of `config` with its TOML value (an unset optional key is absent).
fn leaves(config: &Config) -> BTreeMap<String, Value> {
    let table = Table::try_from(config).expect("a Config serializes to TOML");
    let mut out = BTreeMap::new();
    schema::flatten(&table, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_restart_key_is_a_leaf_or_a_section() {
        let schema = schema::schema();
        for key in RESTART_KEYS {
            assert!(
                schema.kind(key).is_some() || schema.is_section(key),
                "{key} is not a setting"
            );
        }
    }

    #[test]
    fn names_only_changed_settings_read_at_start() {
        let running = Config::default();
        assert_eq!(needs_restart(&running, &running.clone()), Vec::<String>::new());
        let mut new = running.clone();
        new.banner = "changed".into();
        new.limits.max_sessions = 7;
        new.log.level = crate::config::LogLevel::Debug;
        new.fxp.allow_foreign_port = true;
        assert_eq!(
            needs_restart(&running, &new),
            Vec::<String>::new(),
            "all reloadable"
        );
        new.limits.lockout_secs = 1;
        new.cluster.redis_url = Some("redis://127.0.0.1/0".into());
        new.storage.region = "eu-west-1".into();
        new.listen.push("127.0.0.1:2121".parse().unwrap());
        assert_eq!(
            needs_restart(&running, &new),
            [
                "cluster.redis_url",
                "limits.lockout_secs",
                "listen",
                "storage.region"
            ]
        );
    }

    #[test]
    fn the_data_timeout_needs_a_restart_only_for_s3() {
        let mut running = Config::default();
        let mut new = running.clone();
        new.limits.data_timeout_secs += 1;
        assert!(needs_restart(&running, &new).is_empty());
        running.storage.kind = StorageKind::S3;
        new.storage.kind = StorageKind::S3;
        assert_eq!(needs_restart(&running, &new), ["limits.data_timeout_secs"]);
    }
}
