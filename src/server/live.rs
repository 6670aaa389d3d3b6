//! What is happening now, for the admin listener: every open session with its user, working
//! directory and running transfer, and the token that kicks it.
//!
//! Sessions write, the admin listener reads. The costs are kept off the byte path: a session
//! registers once when it starts (one lock of the registry's map, as when it ends), publishes
//! its login, directory and TLS state after a command only when they changed (its own mutex,
//! which only a snapshot contends), and a transfer is published once when it starts and once
//! when it ends. The bytes moved are the transfer's own progress counter, read at snapshot
//! time: nothing is added per byte.

use crate::datachan::Progress;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Every open session, by id.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u64, Arc<LiveSession>>>,
}

/// One open session as the admin listener sees it.
pub struct LiveSession {
    id: u64,
    client: SocketAddr,
    proxy: Option<SocketAddr>,
    since: SystemTime,
    /// Cancelled when an operator kicks the session: it answers 421, aborts its transfer and
    /// closes.
    kick: CancellationToken,
    detail: Mutex<Detail>,
}

/// What changes during a session.
#[derive(Default)]
struct Detail {
    user: Option<String>,
    cwd: Option<String>,
    tls: bool,
    transfer: Option<LiveTransfer>,
}

/// The transfer a session is running.
pub struct LiveTransfer {
    /// The virtual path.
    pub path: String,
    /// Which way the bytes go.
    pub direction: Direction,
    /// The size to send, when known.
    pub size: Option<u64>,
    /// The bytes moved so far and the other end of the data connection, once it is made:
    /// the transfer's own record.
    pub progress: Arc<Progress>,
    /// When it started.
    pub started: Instant,
}

/// Which way a transfer's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// RETR: server to client.
    Download,
    /// STOR, APPE, STOU: client to server.
    Upload,
    /// LIST, NLST, MLSD.
    Listing,
}

impl Direction {
    /// The label value in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
            Direction::Listing => "listing",
        }
    }
}

/// A session's registration: unregisters it when dropped (the session ended, whichever way).
pub struct Registration {
    registry: Arc<Registry>,
    session: Arc<LiveSession>,
}

/// A session as the JSON API shows it.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// The session's number (as in the logs).
    pub id: u64,
    /// The client address (or the one a trusted load balancer named).
    pub client: String,
    /// The load balancer's address, when the session came through one.
    pub proxy: Option<String>,
    /// The user, once logged in.
    pub user: Option<String>,
    /// When it connected (RFC 3339, UTC).
    pub since: String,
    /// The working directory, once logged in.
    pub cwd: Option<String>,
    /// Whether the control connection is protected by TLS.
    pub tls: bool,
    /// The running transfer, if any.
    pub transfer: Option<TransferView>,
}

/// A running transfer as the JSON API shows it.
#[derive(Debug, Serialize)]
pub struct TransferView {
    /// The virtual path.
    pub file: String,
    /// `download`, `upload` or `listing`.
    pub direction: Direction,
    /// Bytes moved so far.
    pub bytes: u64,
    /// The size, when known.
    pub size: Option<u64>,
    /// Average rate since the transfer started, in bytes per second.
    pub rate_bytes_per_sec: u64,
    /// The data connection's other end, once it is made.
    pub peer: Option<String>,
    /// Seconds since the transfer started.
    pub seconds: f64,
}

impl Registry {
    /// Register a new session; it stays listed until the returned registration drops.
    pub fn register(
        self: &Arc<Self>,
        id: u64,
        client: SocketAddr,
        proxy: Option<SocketAddr>,
    ) -> Registration {
        let session = Arc::new(LiveSession {
            id,
            client,
            proxy,
            since: SystemTime::now(),
            kick: CancellationToken::new(),
            detail: Mutex::new(Detail::default()),
        });
        self.map().insert(id, session.clone());
        Registration {
            registry: self.clone(),
            session,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u64, Arc<LiveSession>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every open session, by id.
    pub fn snapshot(&self) -> Vec<SessionView> {
        let mut sessions: Vec<Arc<LiveSession>> = self.map().values().cloned().collect();
        sessions.sort_by_key(|s| s.id);
        sessions.iter().map(|s| s.view()).collect()
    }

    /// Counts for the metrics: (logged in, not logged in yet, transfers running by direction).
    pub fn counts(&self) -> (u64, u64, HashMap<Direction, u64>) {
        let sessions: Vec<Arc<LiveSession>> = self.map().values().cloned().collect();
        let (mut logged_in, mut waiting) = (0, 0);
        let mut running = HashMap::new();
        for s in sessions {
            let detail = s.detail();
            if detail.user.is_some() {
                logged_in += 1;
            } else {
                waiting += 1;
            }
            if let Some(t) = &detail.transfer {
                *running.entry(t.direction).or_insert(0) += 1;
            }
        }
        (logged_in, waiting, running)
    }

    /// Kick session `id`: it answers 421, aborts its transfer and closes. False when no such
    /// session is open.
    pub fn kick(&self, id: u64) -> bool {
        let Some(session) = self.map().get(&id).cloned() else {
            return false;
        };
        session.kick.cancel();
        true
    }
}

impl LiveSession {
    fn detail(&self) -> MutexGuard<'_, Detail> {
        self.detail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn view(&self) -> SessionView {
        let detail = self.detail();
        SessionView {
            id: self.id,
            client: self.client.to_string(),
            proxy: self.proxy.map(|p| p.to_string()),
            user: detail.user.clone(),
            since: chrono::DateTime::<chrono::Utc>::from(self.since)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cwd: detail.cwd.clone(),
            tls: detail.tls,
            transfer: detail.transfer.as_ref().map(|t| {
                let bytes = t.progress.bytes();
                let seconds = t.started.elapsed().as_secs_f64();
                TransferView {
                    file: t.path.clone(),
                    direction: t.direction,
                    bytes,
                    size: t.size,
                    rate_bytes_per_sec: if seconds > 0.0 {
                        (bytes as f64 / seconds) as u64
                    } else {
                        0
                    },
                    peer: t.progress.peer().map(|p| p.to_string()),
                    seconds,
                }
            }),
        }
    }
}

impl Registration {
    /// Cancelled when an operator kicks this session.
    pub fn kicked(&self) -> CancellationToken {
        self.session.kick.clone()
    }

    /// Publish the login, working directory and TLS state, if they changed.
    pub fn publish(&self, user: Option<&str>, cwd: Option<&str>, tls: bool) {
        let mut detail = self.session.detail();
        if detail.user.as_deref() != user {
            detail.user = user.map(str::to_owned);
        }
        if detail.cwd.as_deref() != cwd {
            detail.cwd = cwd.map(str::to_owned);
        }
        detail.tls = tls;
    }

    /// Publish the transfer that just started.
    pub fn transfer_started(&self, transfer: LiveTransfer) {
        self.session.detail().transfer = Some(transfer);
    }

    /// The transfer has ended: returns what was published of it (for the metrics), if any.
    pub fn transfer_ended(&self) -> Option<LiveTransfer> {
        self.session.detail().transfer.take()
    }

    /// Whether a transfer is published as running.
    pub fn transferring(&self) -> bool {
        self.session.detail().transfer.is_some()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.map().remove(&self.session.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn sessions_are_listed_until_their_registration_drops_and_kicks_reach_only_their_own() {
        let registry = Arc::new(Registry::default());
        let a = registry.register(1, "127.0.0.1:5000".parse().unwrap(), None);
        let b = registry.register(2, "127.0.0.2:5000".parse().unwrap(), None);
        a.publish(Some("alice"), Some("/"), false);
        let progress = Arc::new(Progress::default());
        b.transfer_started(LiveTransfer {
            path: "/big".into(),
            direction: Direction::Upload,
            size: None,
            progress: progress.clone(),
            started: Instant::now(),
        });
        progress.counter().store(4096, Ordering::Relaxed);
        let list = registry.snapshot();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].user.as_deref(), Some("alice"));
        assert_eq!(list[1].transfer.as_ref().unwrap().bytes, 4096);
        let (logged_in, waiting, running) = registry.counts();
        assert_eq!(
            (logged_in, waiting, running.get(&Direction::Upload).copied()),
            (1, 1, Some(1))
        );
        assert!(registry.kick(2));
        assert!(b.kicked().is_cancelled());
        assert!(!a.kicked().is_cancelled());
        assert!(!registry.kick(3));
        drop(b);
        assert_eq!(registry.snapshot().len(), 1);
    }
}
