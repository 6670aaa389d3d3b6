//! Data connections (RFC 959 3.2, RFC 2428): everything from the moment a data connection is
//! planned to the outcome of the transfer over it.
//!
//! - this file: passive listeners and active connects, and how a connection fails to come
//!   about ([`DataError`]);
//! - [`job`]: one transfer, polled by the session's task: the session hands over a [`Request`] and
//!   gets a [`Transfer`] whose result is an [`Outcome`]; the byte path is chosen there;
//! - [`protect`]: TLS on data connections, with the resumption check (fail closed);
//! - `inline`, `blocking`, `transfer`: the byte loops (small files on the session's task, `sendfile`/
//!   `splice` on a blocking thread, async copies with TYPE A conversion); [`rate`]: limits.
//!
//! A data connection comes into being only through the policy: an active connect needs an
//! [`Approved`] address and a passive listener a [`PassiveGrant`], which only
//! [`crate::policy::Policy::approve_setup`] can make. From the moment it is bound, a passive
//! listener accepts continuously in a task of its own: every arriving connection is screened by
//! [`crate::policy::Policy::screen_passive_peer`] before a byte is read or written, a refused one
//! is closed at once (and charged to its source, not to the client), and the first connection
//! from an allowed address is held for the transfer. Strangers can therefore neither fill the
//! accept queue nor steal or spoil a transfer. The transfer judges the held connection once more
//! ([`crate::policy::Policy::approve_passive_peer`]) before using it, so a reload that tightened
//! the policy meanwhile is obeyed. A connection from a trusted load balancer (`proxy.trusted`) is
//! judged by the source its PROXY header names; without a valid header it is closed like a
//! refused one.

mod blocking;
mod inline;
pub mod job;
pub mod protect;
pub mod rate;
mod transfer;

pub use job::{start, Job, Outcome, Plan, Request, Transfer};
pub use protect::{DataTls, Protection, TlsUnavailable};

use crate::config::PortRange;
use crate::policy::{Approved, PassiveGrant, Policy, Refusal, Who};
use crate::proxy;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

/// The kernel's queue of connections not yet accepted, per passive listener. The accept task
/// drains it continuously; the queue absorbs a burst of connects that outpaces it (a sequential
/// connect completes before the server has accepted it), so the client's own connect is not
/// dropped while strangers' connections wait to be closed.
const ACCEPT_BACKLOG: u32 = 128;

/// How many refused connections a listener remembers in detail; all of them are counted.
pub const REFUSED_KEPT: usize = 4;

/// The connections a passive listener refused: how many, and the first few of them.
#[derive(Debug, Clone, Default)]
pub struct RefusedLog {
    count: u64,
    first: Vec<(SocketAddr, Refusal)>,
}

impl RefusedLog {
    /// How many connections were refused.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first refused connection: its source and the refusal.
    pub fn first(&self) -> Option<&(SocketAddr, Refusal)> {
        self.first.first()
    }

    /// Notes one refused connection; only the first [`REFUSED_KEPT`] are kept in detail.
    fn push(&mut self, source: SocketAddr, refusal: Refusal) {
        self.count = self.count.saturating_add(1);
        if self.first.len() < REFUSED_KEPT {
            self.first.push((source, refusal));
        }
    }
}

/// What the accept task hands over: the first connection from an allowed address with its
/// source, or the error that stopped accepting.
type Held = io::Result<(TcpStream, SocketAddr)>;

/// A bound passive-mode listener, accepting in its own task from the moment it is bound. The
/// task ends when the listener is dropped (the data plan is replaced, the transfer ends, the
/// session ends).
#[derive(Debug)]
pub struct PassiveListener {
    local: SocketAddr,
    /// The session every connection is judged for.
    who: Who,
    policy: Arc<Policy>,
    /// The held connection, once the task has one; taken by [`PassiveListener::accept`].
    held: Option<oneshot::Receiver<Held>>,
    /// The connections refused so far (shared with the accept task).
    refused: Arc<Mutex<RefusedLog>>,
    /// The accept task; aborted on drop.
    task: JoinHandle<()>,
}

impl Drop for PassiveListener {
    fn drop(&mut self) {
        self.task.abort();
        self.policy.passive_listener(false);
    }
}

impl PassiveListener {
    /// Bind on `ip` to a port chosen at random from `range` (KB Q260934: sequential ports are
    /// predictable) and start accepting for the session `grant` was made for. Each attempt
    /// starts at a fresh random offset and walks the range, so a busy port is skipped and a
    /// port still bound is never handed out twice.
    pub async fn bind(
        ip: IpAddr,
        range: PortRange,
        grant: PassiveGrant,
        policy: Arc<Policy>,
    ) -> io::Result<PassiveListener> {
        let span = u32::from(range.last) - u32::from(range.first) + 1;
        // SECURITY: no fallback when the OS generator fails: a predictable port is what the
        // random start is there to prevent, so the bind fails instead.
        let start = getrandom::u32().map_err(|e| io::Error::other(format!("no random number: {e}")))? % span;
        let mut last_err = None;
        for i in 0..span {
            let port = range.first + ((start + i) % span) as u16;
            let addr = SocketAddr::new(ip, port);
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            // SO_REUSEADDR lets a port whose last data connection sits in TIME_WAIT serve again;
            // a port another socket is bound to or listening on still fails to bind, so a
            // bound port is never handed out twice.
            socket.set_reuseaddr(true)?;
            match socket.bind(addr) {
                Ok(()) => {
                    let listener = socket.listen(ACCEPT_BACKLOG)?;
                    // Bound to this very address (a port of the range, never 0): no getsockname.
                    let local = addr;
                    let who = grant.who().clone();
                    let refused = Arc::new(Mutex::new(RefusedLog::default()));
                    let (hold, held) = oneshot::channel();
                    // In the session's span, so its log lines name the session.
                    let task = tokio::spawn(
                        accept_loop(listener, policy.clone(), who.clone(), hold, refused.clone())
                            .in_current_span(),
                    );
                    policy.passive_listener(true);
                    return Ok(PassiveListener {
                        local,
                        who,
                        policy,
                        held: Some(held),
                        refused,
                        task,
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "passive port range exhausted")))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The session's data connection: the connection the accept task holds, or the first one
    /// it will hold before `deadline`. It is judged once more by the policy in force now; if
    /// that refuses it, it is closed unused and this fails closed. Call it once. Gives the
    /// connection and its source (the client a trusted balancer named, if one relayed it).
    pub async fn accept(&mut self, deadline: Instant) -> Result<(TcpStream, SocketAddr), DataError> {
        let Some(held) = self.held.take() else {
            return Err(DataError::Io(io::Error::other(
                "the data connection was already taken",
            )));
        };
        let (stream, source) = match tokio::time::timeout_at(deadline, held).await {
            Err(_) => return Err(DataError::Timeout),
            Ok(Err(_)) => return Err(DataError::Io(io::Error::other("passive listener stopped"))),
            Ok(Ok(Err(e))) => return Err(DataError::Io(e)),
            Ok(Ok(Ok(pair))) => pair,
        };
        // SECURITY: the settings may have been tightened since the connection was screened; it
        // carries data only if the policy in force now still approves it (fail closed).
        match self.policy.approve_passive_peer(&self.who, source) {
            Ok(()) => Ok((stream, source)),
            Err(refusal) => {
                drop(stream);
                Err(DataError::Refused(source, Box::new(refusal)))
            }
        }
    }

    /// The connections refused so far.
    pub fn refused(&self) -> RefusedLog {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Accept on `listener` until the task is aborted: screen each connection, close refused ones at
/// once, send the first allowed one on `hold`, close later ones unused.
async fn accept_loop(
    listener: TcpListener,
    policy: Arc<Policy>,
    who: Who,
    hold: oneshot::Sender<Held>,
    refused: Arc<Mutex<RefusedLog>>,
) {
    let mut hold = Some(hold);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) if is_transient_accept_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "passive listener stopped accepting");
                if let Some(hold) = hold.take() {
                    let _ = hold.send(Err(e));
                }
                return;
            }
        };
        let Some((stream, source)) = real_source(&policy, stream, peer).await else {
            continue;
        };
        // SECURITY: every passive connection is screened as it arrives, before the stream is used
        // at all; a refused one is closed at once and charged to its source.
        match policy.screen_passive_peer(&who, source) {
            Err(refusal) => {
                drop(stream);
                refused
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(source, refusal);
            }
            Ok(()) => match hold.take() {
                Some(hold) => {
                    let _ = hold.send(Ok((stream, source)));
                }
                None => {
                    // Only the first allowed connection carries data.
                    tracing::debug!(source = %source, "another passive connection closed unused");
                    drop(stream);
                }
            },
        }
    }
}

/// The real source of a data connection: the TCP peer, or, when the peer is a trusted load
/// balancer, the source its PROXY header names (read within [`proxy::HEADER_TIMEOUT`]). `None`:
/// a trusted peer sent no valid client header, and the connection has been closed, like any
/// refused peer.
async fn real_source(
    policy: &Policy,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> Option<(TcpStream, SocketAddr)> {
    // SECURITY: only a trusted peer's header names the source; from anyone else the bytes are
    // data and the TCP peer is the source the policy judges.
    if !policy.proxy_trust(peer.ip()) {
        return Some((stream, peer));
    }
    match tokio::time::timeout(proxy::HEADER_TIMEOUT, proxy::read_header(&mut stream)).await {
        Ok(Ok(proxy::Header::Proxied { source, .. })) => {
            tracing::debug!(proxy = %peer, source = %source, "data connection through a load balancer");
            Some((stream, source))
        }
        Ok(Ok(proxy::Header::Local)) => {
            tracing::warn!(target: "fxpd::security", proxy = %peer, "data connection from a trusted proxy without a client (LOCAL) refused");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "fxpd::security", proxy = %peer, error = %e, "data connection from a trusted proxy without a valid PROXY header refused");
            None
        }
        Err(_) => {
            tracing::warn!(target: "fxpd::security", proxy = %peer, "data connection from a trusted proxy sent no PROXY header in time: refused");
            None
        }
    }
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// Connect to an approved active-mode address from the control connection's local address
/// (RFC 959 says port L-1; an unprivileged server uses any port of that address).
pub async fn connect_active(
    target: Approved,
    local_ip: IpAddr,
    timeout: Duration,
) -> Result<TcpStream, DataError> {
    let addr = target.addr();
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let local_ip = match (local_ip, addr) {
        // The control connection may be IPv4-mapped on a dual-stack socket.
        (IpAddr::V6(v6), SocketAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(local_ip),
        _ => local_ip,
    };
    if local_ip.is_ipv4() == addr.is_ipv4() {
        socket.bind(SocketAddr::new(local_ip, 0))?;
    }
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Err(_) => Err(DataError::Timeout),
        Ok(Err(e)) => Err(DataError::Io(e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// How a data connection failed to come about.
#[derive(Debug)]
pub enum DataError {
    /// Nobody (acceptable) connected, or the connect did not complete, in time.
    Timeout,
    /// A socket error.
    Io(io::Error),
    /// The TLS handshake on a protected data connection failed or was refused.
    Tls(String),
    /// The held passive connection from this source was refused when the transfer was about to
    /// use it (the policy was tightened after it had been accepted).
    Refused(SocketAddr, Box<Refusal>),
}

impl From<io::Error> for DataError {
    fn from(e: io::Error) -> Self {
        DataError::Io(e)
    }
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::Timeout => f.write_str("timed out"),
            DataError::Io(e) => write!(f, "{e}"),
            DataError::Tls(why) => write!(f, "TLS negotiation failed: {why}"),
            DataError::Refused(source, refusal) => {
                write!(
                    f,
                    "refused connection from {}: {}",
                    source.ip(),
                    refusal.reply_text()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DataSetup, FxpConfig, FxpOverride, Grant};
    use std::net::Ipv4Addr;
    use tokio::io::AsyncReadExt;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));

    async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        tokio::time::timeout(Duration::from_secs(10), socket.connect(to))
            .await
            .expect("connect timed out")
            .unwrap()
    }

    /// Whether the server closed `s` (EOF or reset) within 10 s, without sending anything.
    async fn closed(s: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => panic!("a refused connection received {n} bytes"),
            Err(_) => false,
        }
    }

    #[test]
    fn refused_log_counts_all_and_keeps_the_first_few() {
        let policy = Policy::new(FxpConfig::default());
        let who = Who {
            peer: CLIENT,
            user: None,
            anonymous: false,
            fxp: FxpOverride::Inherit,
        };
        let mut log = RefusedLog::default();
        for port in 0..1000 {
            let source = SocketAddr::new(STRANGER, 1024 + port);
            log.push(source, policy.screen_passive_peer(&who, source).unwrap_err());
        }
        assert_eq!(log.count(), 1000);
        assert_eq!(log.first.len(), REFUSED_KEPT);
        assert_eq!(log.first().unwrap().0.port(), 1024);
    }

    #[tokio::test]
    async fn accepts_from_the_start_holds_the_client_and_stops_when_dropped() {
        let policy = Arc::new(Policy::new(FxpConfig {
            ban_threshold: 0,
            ..FxpConfig::default()
        }));
        let who = Who {
            peer: CLIENT,
            user: Some("alice".into()),
            anonymous: false,
            fxp: FxpOverride::Inherit,
        };
        let Ok(Grant::Passive(grant)) = policy.approve_setup(&who, DataSetup::Pasv, false) else {
            panic!("PASV refused")
        };
        let range = PortRange {
            first: 1024,
            last: 65535,
        };
        let mut listener = PassiveListener::bind(CLIENT, range, grant, policy.clone())
            .await
            .unwrap();
        let addr = listener.local_addr();

        // Strangers are closed before any transfer asks for the connection.
        for _ in 0..20 {
            let mut stranger = connect_from(STRANGER, addr).await;
            assert!(closed(&mut stranger).await, "a stranger's connection stayed open");
        }
        let mine = connect_from(CLIENT, addr).await;
        // A second connection from the client's own address is closed unused.
        let mut second = connect_from(CLIENT, addr).await;
        assert!(closed(&mut second).await);

        let deadline = Instant::now() + Duration::from_secs(10);
        let (held, _) = listener.accept(deadline).await.expect("the held connection");
        assert_eq!(held.peer_addr().unwrap(), mine.local_addr().unwrap());
        assert_eq!(listener.refused().count(), 20);
        assert_eq!(policy.stats().approved_passive, 1, "approved once, when used");

        drop(listener);
        // The accept task is gone with the listener: the port no longer accepts.
        let mut refused_connect = false;
        for _ in 0..100 {
            let socket = TcpSocket::new_v4().unwrap();
            if socket.connect(addr).await.is_err() {
                refused_connect = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            refused_connect,
            "the passive port still accepts after the listener was dropped"
        );
    }
}
