//! The server: the control-channel listeners and what every session shares.
//!
//! - this file: bind, accept under limits, settle the client (PROXY header), refuse an
//!   address the access lists (`[access]`) exclude or a banned address, hand each admitted connection to the session entry point it was given, and
//!   drain on shutdown;
//! - [`admission`]: who may take a seat (connections not logged in, logged-in sessions);
//! - [`state`]: the server-wide state ([`Shared`], [`Settings`]) and its reload;
//! - [`user_sessions`]: sessions logged in per account (the users file's `max_sessions`,
//!   the accounts' shared rate buckets);
//! - [`users_watch`]: the users file reloaded when it changes, without a signal;
//! - [`workers`]: the session threads each admitted connection runs on.
//! - [`live`]: every open session and its running transfer, which sessions publish and the
//!   admin listener reads; [`metrics`]: the counted events and the Prometheus exposition.
//!
//! The server does not know what a session is: [`crate::run`] passes `session::run` to
//! [`serve`], so the session layer sits above this one and imports from it, never the
//! other way round.

pub mod admission;
pub mod live;
pub mod metrics;
pub mod state;
pub mod user_sessions;
pub mod users_watch;
pub mod workers;

pub use state::{Settings, Shared};

use crate::control::codec::write_reply;
use crate::control::reply::{Code, Reply};
use crate::proxy;
use admission::{Admission, Refusal, Seat};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use workers::Workers;

/// Listen backlog: large enough that a burst of logins is not refused by the kernel.
const BACKLOG: u32 = 1024;

/// Most connections between accept and admission at once (PROXY header reads, refusals being
/// written); past it new connections are refused at once.
const MAX_ADMITTING: usize = 1024;

/// Bind one control listener.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A bound control listener; `implicit_tls` listeners start TLS before the greeting.
pub struct Listener {
    /// The bound socket.
    pub socket: TcpListener,
    /// Implicit FTPS (port 990 style).
    pub implicit_tls: bool,
}

/// A control connection the listener admitted: what a session starts from.
pub struct Admitted {
    /// The accepted TCP connection (a PROXY header, if any, already read).
    pub stream: TcpStream,
    /// The client: the TCP peer, or the source a trusted load balancer's PROXY header names.
    pub client: SocketAddr,
    /// The load balancer's address, when the connection came through one.
    pub proxy: Option<SocketAddr>,
    /// Accepted on an implicit FTPS listener: TLS starts before the greeting.
    pub implicit_tls: bool,
    /// The connection's seat among those not logged in yet.
    pub seat: Seat,
}

/// Accept on every listener until `shared.shutdown` is cancelled, running `session` on each
/// admitted connection in a task of its own on one of the session threads ([`workers`]), then
/// wait for the sessions to end: idle ones close at once, running transfers get `grace` to
/// finish.
pub async fn serve<S, F>(listeners: Vec<Listener>, shared: Arc<Shared>, grace: Duration, session: S)
where
    S: Fn(Arc<Shared>, Admitted) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let tracker = TaskTracker::new();
    let workers = Arc::new(Workers::start());
    let admission = Arc::new(Admission::default());
    let admitting = Arc::new(tokio::sync::Semaphore::new(MAX_ADMITTING));
    for Listener {
        socket: listener,
        implicit_tls,
    } in listeners
    {
        let shared = shared.clone();
        let admission = admission.clone();
        let admitting = admitting.clone();
        let inner = tracker.clone();
        let session = session.clone();
        let workers = workers.clone();
        tracker.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shared.shutdown.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Bounds the connections on their way to a seat (PROXY header reads included);
                // the seats themselves are bounded by the admission.
                let Ok(on_the_way) = admitting.clone().try_acquire_owned() else {
                    tracing::warn!(client = %peer, "too many connections being admitted");
                    refuse(stream, unavailable("Too many connections, try again later.")).await;
                    continue;
                };
                // The connection moves to a session thread's reactor (see `workers`).
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(client = %peer, error = %e, "cannot hand the connection to a session thread");
                        continue;
                    }
                };
                let shared = shared.clone();
                let admission = admission.clone();
                let session = session.clone();
                workers.spawn(&inner, async move {
                    let stream = match TcpStream::from_std(stream) {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::warn!(client = %peer, error = %e, "cannot adopt the connection on a session thread");
                            return;
                        }
                    };
                    let Some(client) = identify(stream, peer, &shared).await else { return };
                    let Client { stream, addr, proxy } = client;
                    let ip = crate::policy::normalize(addr.ip());
                    // SECURITY: the one check of the server-wide access lists (`[access]`, in
                    // force now), on the client address a trusted PROXY header named if any,
                    // before a seat, a TLS handshake or a greeting.
                    if let Err(denial) = shared.settings().config.access.judge(ip) {
                        shared.metrics.connection_denied();
                        tracing::warn!(target: "fxpd::security", event = "client_denied", client = %ip, proxy = proxy.map(tracing::field::display), rule = %denial.rule(), "connection refused by the access lists");
                        refuse(stream, unavailable("Access from your address is not allowed.")).await;
                        return;
                    }
                    // SECURITY: the one ban check for new connections, before a seat, a TLS
                    // handshake or a greeting; a cluster ban set by another node counts too.
                    if let Some(refusal) = shared.refuse_banned(ip).await {
                        tracing::info!(target: "fxpd::security", client = %ip, proxy = proxy.map(tracing::field::display), "connection from banned address refused");
                        refuse(stream, refusal).await;
                        return;
                    }
                    let seat = match admission.admit(ip, &shared.settings().config.limits) {
                        Ok(seat) => seat,
                        Err(Refusal::Address) => {
                            tracing::warn!(client = %ip, proxy = proxy.map(tracing::field::display), "per-address limit of connections not logged in reached");
                            refuse(stream, unavailable("Too many connections from your address.")).await;
                            return;
                        }
                        Err(Refusal::Full) => {
                            tracing::warn!(client = %ip, proxy = proxy.map(tracing::field::display), "limit of connections not logged in reached");
                            refuse(stream, unavailable("Too many connections waiting to log in, try again later.")).await;
                            return;
                        }
                    };
                    drop(on_the_way);
                    let span = tracing::info_span!("session", client = %addr);
                    let admitted = Admitted {
                        stream,
                        client: addr,
                        proxy,
                        implicit_tls,
                        seat,
                    };
                    session(shared, admitted).instrument(span).await;
                });
            }
        });
    }
    tracker.close();
    shared.shutdown.cancelled().await;
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: no new connections, waiting for sessions"
    );
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("grace period over, closing the remaining sessions");
    }
    // The session threads stop (dropping what is left of the sessions) once the accept loops,
    // which hold the other references, are gone; that wait blocks this thread only briefly.
    drop(workers);
}

/// A connection with its client address settled.
struct Client {
    stream: TcpStream,
    /// The client: the TCP peer, or the source a trusted load balancer's PROXY header names.
    addr: SocketAddr,
    /// The load balancer's address, when the connection came through one.
    proxy: Option<SocketAddr>,
}

/// Settle who the client of a new control connection is. A trusted load balancer
/// (`proxy.trusted`) must send a PROXY header first: its source is the client. A trusted peer
/// without a valid header within [`proxy::HEADER_TIMEOUT`] is refused; a LOCAL header (a
/// health check) gets the greeting and is closed, without becoming a session. `None`: the
/// connection has been dealt with.
async fn identify(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) -> Option<Client> {
    // SECURITY: only a trusted peer's first bytes are read as a PROXY header; anyone else's are
    // FTP commands (a header is then just an unknown command) and the TCP peer is the client.
    if !shared.policy.proxy_trust(peer.ip()) {
        return Some(Client {
            stream,
            addr: peer,
            proxy: None,
        });
    }
    let header = tokio::time::timeout(proxy::HEADER_TIMEOUT, proxy::read_header(&mut stream)).await;
    match header {
        Ok(Ok(proxy::Header::Proxied { source, destination })) => {
            tracing::debug!(proxy = %peer, client = %source, via = %destination, "PROXY header accepted");
            Some(Client {
                stream,
                addr: source,
                proxy: Some(peer),
            })
        }
        Ok(Ok(proxy::Header::Local)) => {
            tracing::debug!(proxy = %peer, "load balancer health check answered");
            let banner = shared.settings().config.banner.clone();
            refuse(stream, Reply::new(Code::READY, banner)).await;
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "fxpd::security", proxy = %peer, error = %e, "connection from a trusted proxy without a valid PROXY header refused");
            refuse(stream, unavailable("PROXY protocol header required.")).await;
            None
        }
        Err(_) => {
            tracing::warn!(target: "fxpd::security", proxy = %peer, "connection from a trusted proxy sent no PROXY header in time: refused");
            refuse(stream, unavailable("PROXY protocol header required.")).await;
            None
        }
    }
}

/// A 421 for a connection refused before it has a session (RFC 959: the server closes the
/// control connection after it).
fn unavailable(text: &'static str) -> Reply {
    Reply::new(Code::SERVICE_NOT_AVAILABLE, text)
}

/// Answer a connection that gets no session with `reply` (through the one writer of replies),
/// then close it; a peer that does not read is given two seconds.
async fn refuse(mut stream: TcpStream, reply: Reply) {
    let _ = tokio::time::timeout(Duration::from_secs(2), write_reply(&mut stream, &reply)).await;
}
