//! State shared by every node of a cluster: failed-login lockouts and FXP bans.
//!
//! Every node always keeps its own in-memory accounting ([`crate::auth::LoginGuard`], the
//! policy's ban tracker), which is what the synchronous decisions read. When
//! `cluster.redis_url` is set, each counted failure is also recorded in Redis, and a node asks
//! Redis before a login or a data-connection command whether another node has locked the
//! client out; a lock found there is copied into the local state, so the one decision point
//! still decides. Counting in Redis is one atomic script per failure (counter with the window
//! as its expiry; at the threshold a lock key with the lockout as its expiry), so two nodes
//! never both miss the threshold. User names are never locked: their failures are only
//! counted ([`Scope::LoginUser`]), and every node slows a name down by the larger of its own
//! count and the cluster's.
//!
//! Redis being unreachable at start is a start-up error (fail closed: an operator who asked for
//! shared lockouts does not silently get per-node ones). Once running, a failed or slow request
//! (bounded by `cluster.timeout_ms`) is logged and the node carries on with its local
//! accounting alone, rather than refusing every login while Redis is down.

use crate::addr::normalize;
use crate::config::ClusterConfig;
use crate::policy::Policy;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// What a shared counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Failed logins per client address (its /64 for IPv6): counted, and locked at the
    /// threshold.
    LoginClient,
    /// Failed logins per user name, from any address: only counted (the count slows the name
    /// down), never locked, so nobody can lock another user out.
    LoginUser,
    /// Refused data connections per client address (FXP auto-bans).
    DataBan,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::LoginClient => "login-client",
            Scope::LoginUser => "login-user",
            Scope::DataBan => "data-ban",
        }
    }
}

/// When failures turn into a lock.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures within `window` that start a lock; 0 disables counting.
    pub threshold: u32,
    /// How long failures are remembered, from the first one.
    pub window: Duration,
    /// How long the lock lasts.
    pub lock: Duration,
}

/// Counts one failure; at the threshold sets the lock. Returns 1 when this call started the lock.
/// KEYS[1]: counter, KEYS[2]: lock; ARGV: window ms, threshold, lock ms.
const RECORD_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// Counts one failure and tells the count in the window. KEYS[1]: counter; ARGV[1]: window ms.
const COUNT_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// The shared-state link of this node: `None` when the cluster is off (state in memory only).
#[derive(Default)]
pub struct Cluster {
    link: Option<Link>,
}

struct Link {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    record: redis::Script,
    count: redis::Script,
    /// Seconds since the epoch of the last logged Redis error (one warning per 10 s at most).
    last_warned: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("shared", &self.is_shared())
            .finish()
    }
}

impl Cluster {
    /// A node on its own: nothing is shared.
    pub fn local() -> Cluster {
        Cluster { link: None }
    }

    /// Connect to Redis when `cluster.redis_url` is set (the password, if any, comes from
    /// `cluster.redis_password_file`); otherwise a local-only cluster.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Cluster, String> {
        let Some(url) = &cfg.redis_url else {
            return Ok(Cluster::local());
        };
        let mut info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .map_err(|e| format!("cluster.redis_url: {e}"))?;
        if let Some(path) = &cfg.redis_password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cluster.redis_password_file {}: {e}", path.display()))?;
            let password = text.lines().next().unwrap_or("").trim_end();
            if password.is_empty() {
                return Err(format!(
                    "cluster.redis_password_file {}: the first line (the password) is empty",
                    path.display()
                ));
            }
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = redis::Client::open(info).map_err(|e| format!("cluster.redis_url: {e}"))?;
        let manager_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let mut conn = tokio::time::timeout(
            timeout.saturating_mul(4),
            ConnectionManager::new_with_config(client, manager_cfg),
        )
        .await
        .map_err(|_| {
            format!(
                "cluster.redis_url: no answer from {url} within {} ms",
                timeout.as_millis() * 4
            )
        })?
        .map_err(|e| format!("cluster.redis_url: cannot reach {url}: {e}"))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("cluster.redis_url: {url} does not answer PING: {e}"))?;
        tracing::info!(redis = %url, reply = %pong, prefix = %cfg.key_prefix, "cluster state shared through Redis");
        Ok(Cluster {
            link: Some(Link {
                conn,
                prefix: cfg.key_prefix.clone(),
                timeout,
                record: redis::Script::new(RECORD_SCRIPT),
                count: redis::Script::new(COUNT_SCRIPT),
                last_warned: AtomicU64::new(0),
            }),
        })
    }

    /// Whether state is shared with other nodes.
    pub fn is_shared(&self) -> bool {
        self.link.is_some()
    }

    /// Time left on a lock another node (or this one) set for `key`, if any.
    pub async fn locked(&self, scope: Scope, key: &str) -> Option<Duration> {
        let link = self.link.as_ref()?;
        let lock = link.key(scope, "lock", key);
        let mut conn = link.conn.clone();
        let pttl = link
            .run(redis::cmd("PTTL").arg(&lock).query_async::<i64>(&mut conn))
            .await?;
        // -2: no such key; -1: a key without expiry (never written by fxpd): treat as a lock of
        // unknown length, one second at a time.
        match pttl {
            ms if ms > 0 => Some(Duration::from_millis(ms as u64)),
            -1 => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// Count one failure for `key`; true when this failure started a cluster-wide lock.
    pub async fn record_failure(&self, scope: Scope, key: &str, limits: Limits) -> bool {
        let Some(link) = self.link.as_ref() else {
            return false;
        };
        if limits.threshold == 0 {
            return false;
        }
        let mut conn = link.conn.clone();
        let started = link
            .run(
                link.record
                    .key(link.key(scope, "count", key))
                    .key(link.key(scope, "lock", key))
                    .arg(millis(limits.window))
                    .arg(limits.threshold)
                    .arg(millis(limits.lock))
                    .invoke_async::<i64>(&mut conn),
            )
            .await;
        started == Some(1)
    }

    /// Count one failure for `key` that never locks; the failures counted within `window`
    /// (from the first one) by every node, this one included. `None` when the cluster is off
    /// or Redis did not answer.
    pub async fn count_failure(&self, scope: Scope, key: &str, window: Duration) -> Option<u32> {
        let link = self.link.as_ref()?;
        let mut conn = link.conn.clone();
        let n = link
            .run(
                link.count
                    .key(link.key(scope, "count", key))
                    .arg(millis(window))
                    .invoke_async::<i64>(&mut conn),
            )
            .await?;
        Some(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Forget `key`'s count and lock on every node (an operator lifting a ban or lockout); a
    /// no-op when the cluster is off or Redis does not answer (then logged).
    pub async fn lift(&self, scope: Scope, key: &str) {
        let Some(link) = self.link.as_ref() else {
            return;
        };
        let mut conn = link.conn.clone();
        let _ = link
            .run(
                redis::cmd("DEL")
                    .arg(link.key(scope, "count", key))
                    .arg(link.key(scope, "lock", key))
                    .query_async::<i64>(&mut conn),
            )
            .await;
    }

    /// The failures every node counted for `key` in its current window (0 if none).
    pub async fn failures(&self, scope: Scope, key: &str) -> Option<u32> {
        let link = self.link.as_ref()?;
        let mut conn = link.conn.clone();
        let n = link
            .run(
                redis::cmd("GET")
                    .arg(link.key(scope, "count", key))
                    .query_async::<Option<i64>>(&mut conn),
            )
            .await?;
        Some(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

impl Link {
    /// `prefix:scope:kind:key`. Keys are client addresses or user names (at most 64
    /// characters, any bytes: Redis keys are binary safe).
    fn key(&self, scope: Scope, kind: &str, key: &str) -> String {
        format!("{}:{}:{kind}:{key}", self.prefix, scope.name())
    }

    /// Run one request within the timeout; an error is logged (rate-limited) and gives `None`.
    async fn run<T>(&self, request: impl std::future::Future<Output = redis::RedisResult<T>>) -> Option<T> {
        let error = match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warned.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .last_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %error,
                "shared cluster state unavailable: this node goes on with its own lockouts and bans"
            );
        }
        None
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The key for a client address, as the local accounting counts it.
pub fn client_key(ip: IpAddr) -> String {
    normalize(ip).to_string()
}

/// Share the policy's data-connection refusals with the cluster: each refused client address is
/// counted in Redis with the other nodes' refusals (`fxp.ban_threshold` within
/// `fxp.ban_window_secs`); a ban started there is copied into this node's policy at once (other
/// nodes copy it when the client next asks them for a data connection, see
/// [`Cluster::import_ban`]). Does nothing when the cluster is off.
pub fn share_bans(cluster: Arc<Cluster>, policy: Arc<Policy>) {
    if !cluster.is_shared() {
        return;
    }
    let (sink, mut refused) = mpsc::channel(1024);
    policy.report_refusals_to(sink);
    tokio::spawn(async move {
        while let Some(ip) = refused.recv().await {
            let cfg = policy.config();
            let lock = Duration::from_secs(cfg.ban_secs);
            let limits = Limits {
                threshold: cfg.ban_threshold,
                window: Duration::from_secs(cfg.ban_window_secs),
                lock,
            };
            if cluster
                .record_failure(Scope::DataBan, &client_key(ip), limits)
                .await
            {
                policy.import_ban(ip, lock);
            }
        }
    });
}

impl Cluster {
    /// Copy a ban another node set on `ip` into `policy`, so this node's decisions see it.
    /// Call it before a data-connection decision for `ip` (and when it connects).
    pub async fn import_ban(&self, policy: &Policy, ip: IpAddr) {
        if !self.is_shared() {
            return;
        }
        if let Some(remaining) = self.locked(Scope::DataBan, &client_key(ip)).await {
            policy.import_ban(ip, remaining);
        }
    }
}
