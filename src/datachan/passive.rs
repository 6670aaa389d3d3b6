//! Passive listeners (PASV, EPSV, CPSV): bound on a random port of the range, screening every
//! connection as it arrives and holding the first one from an allowed address for the transfer.
//!
//! A listener is not a task of its own: whoever owns it polls it. From the PASV/EPSV reply on,
//! the session's task polls it beside its control connection ([`PassiveListener::screen`]),
//! and once a transfer has taken it, the transfer polls it beside its byte loop
//! ([`PassiveListener::screening`]). Either way every arriving connection is judged before a
//! byte is read or written: a refused one is closed at once and charged to its source, the
//! first allowed one is held, later ones are closed unused. So strangers can neither fill the
//! accept queue nor steal or spoil a transfer, and a small transfer costs no task and no
//! wake-up handed from one task to another. While the session handles another command (a
//! `MKD`, a `SIZE` between PASV and RETR), arrivals wait in the kernel's queue
//! (`ACCEPT_BACKLOG`) and are judged when it is back at its loop.

use super::{DataError, DataStream};
use crate::config::PortRange;
use crate::policy::{PassiveGrant, Policy, Refusal, Who};
use crate::proxy;
use queue::Queue;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use sync_wrapper::SyncWrapper;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

mod queue;

/// The kernel's queue of connections not yet accepted, per passive listener. The listener is
/// drained whenever its owner is polled; the queue absorbs a burst of connects that outpaces
/// it (a sequential connect completes before the server has accepted it), so the client's own
/// connect is not dropped while strangers' connections wait to be closed.
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

/// A trusted balancer's connection whose PROXY header is being read: it gives the connection
/// with the client the header names, or `None` when it was refused and closed.
type Proxied = SyncWrapper<Pin<Box<dyn Future<Output = Option<(DataStream, SocketAddr)>> + Send>>>;

/// A bound passive-mode listener. It screens arrivals whenever it is polled; dropping it (the
/// data plan is replaced, the transfer ends, the session ends) closes the port.
pub struct PassiveListener {
    local: SocketAddr,
    /// The session every connection is judged for.
    who: Who,
    policy: Arc<Policy>,
    queue: Queue,
    /// The first connection from an allowed address and its source, until the transfer takes it.
    held: Option<(DataStream, SocketAddr)>,
    /// Whether a connection was held once: later allowed ones are closed unused.
    chosen: bool,
    /// A trusted balancer's connection whose header is being read. One at a time, as before
    /// the next accept: the header comes with the connection, within [`proxy::HEADER_TIMEOUT`].
    proxied: Option<Proxied>,
    /// Accepting stopped on this error; [`PassiveListener::accept`] reports it.
    failed: Option<io::Error>,
    /// Whether accepting stopped.
    stopped: bool,
    /// The connections refused so far.
    refused: RefusedLog,
}

impl std::fmt::Debug for PassiveListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassiveListener")
            .field("local", &self.local)
            .field("held", &self.held.is_some())
            .field("refused", &self.refused.count)
            .finish_non_exhaustive()
    }
}

impl Drop for PassiveListener {
    fn drop(&mut self) {
        self.policy.passive_listener(false);
    }
}

impl PassiveListener {
    /// Bind on `ip` to a port chosen at random from `range` (KB Q260934: sequential ports are
    /// predictable) for the session `grant` was made for. Each attempt starts at a fresh
    /// random offset and walks the range, so a busy port is skipped and a port still bound is
    /// never handed out twice. Screening starts with the first poll.
    pub fn bind(
        ip: IpAddr,
        range: PortRange,
        grant: PassiveGrant,
        policy: Arc<Policy>,
    ) -> io::Result<PassiveListener> {
        let span = u32::from(range.last) - u32::from(range.first) + 1;
        // SECURITY: no fallback when the OS generator fails: a predictable port is what the
        // random start is there to prevent, so the bind fails instead.
        let start = random_u32().map_err(|e| io::Error::other(format!("no random number: {e}")))? % span;
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
                    let queue = Queue::listen(socket, ACCEPT_BACKLOG)?;
                    policy.passive_listener(true);
                    return Ok(PassiveListener {
                        // Bound to this very address (a port of the range, never 0): no
                        // getsockname.
                        local: addr,
                        who: grant.who().clone(),
                        policy,
                        queue,
                        held: None,
                        chosen: false,
                        proxied: None,
                        failed: None,
                        stopped: false,
                        refused: RefusedLog::default(),
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

    /// The connections refused so far.
    pub fn refused(&self) -> RefusedLog {
        self.refused.clone()
    }

    /// Screen arrivals for as long as this is polled (it never ends): what the session's task
    /// awaits beside its control connection while the listener waits for its transfer.
    pub async fn screen(&mut self) {
        std::future::poll_fn(|cx| {
            self.poll_screen(cx);
            Poll::<()>::Pending
        })
        .await
    }

    /// Run `work` (the transfer over the held connection) and screen arrivals meanwhile.
    pub fn screening<F: Future>(&mut self, work: F) -> Screening<'_, F> {
        Screening { listener: self, work }
    }

    /// The session's data connection: the connection held already, or the first one held
    /// before `deadline`. It is judged once more by the policy in force now; if that refuses
    /// it, it is closed unused and this fails closed. Gives the connection and its source (the
    /// client a trusted balancer named, if one relayed it).
    pub async fn accept(&mut self, deadline: Instant) -> Result<(DataStream, SocketAddr), DataError> {
        if self.chosen && self.held.is_none() {
            return Err(DataError::Io(io::Error::other(
                "the data connection was already taken",
            )));
        }
        let mut first_look_done = false;
        let waited = tokio::time::timeout_at(
            deadline,
            std::future::poll_fn(|cx| {
                if !first_look_done {
                    // The client usually connects before it sends the transfer command, but the
                    // runtime learns of the connection only at its next look at the sockets:
                    // look at the queue directly once, so that a small transfer starts at once.
                    first_look_done = true;
                    while self.held.is_none() && !self.stopped {
                        let Some((stream, peer)) = self.accept_queued() else {
                            break;
                        };
                        self.arrived(stream, peer);
                    }
                }
                // After the look: a balancer's header read it started is polled here, so that
                // the header's arrival wakes the transfer.
                self.poll_screen(cx);
                if let Some(pair) = self.held.take() {
                    return Poll::Ready(Ok(pair));
                }
                if self.stopped {
                    let error = self
                        .failed
                        .take()
                        .unwrap_or_else(|| io::Error::other("passive listener stopped"));
                    return Poll::Ready(Err(error));
                }
                Poll::Pending
            }),
        )
        .await;
        let (stream, source) = match waited {
            Err(_) => return Err(DataError::Timeout),
            Ok(Err(e)) => return Err(DataError::Io(e)),
            Ok(Ok(pair)) => pair,
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

    /// Accept and judge every connection waiting, until none is (then the task is woken by the
    /// next arrival).
    fn poll_screen(&mut self, cx: &mut Context<'_>) {
        while !self.stopped {
            if let Some(proxied) = self.proxied.as_mut() {
                let Poll::Ready(found) = proxied.get_mut().as_mut().poll(cx) else {
                    return;
                };
                self.proxied = None;
                if let Some((stream, source)) = found {
                    self.judge(stream, source);
                }
                continue;
            }
            // tokio's cooperative budget makes this return `Pending` after a long run of
            // accepts, so a flood of connects cannot hold the session's task.
            match self.queue.poll_accept(cx) {
                Poll::Pending => return,
                Poll::Ready(Ok((stream, peer))) => self.arrived(stream, peer),
                Poll::Ready(Err(e)) if is_transient_accept_error(&e) => {}
                Poll::Ready(Err(e)) => {
                    tracing::warn!(error = %e, "passive listener stopped accepting");
                    self.failed = Some(e);
                    self.stopped = true;
                }
            }
        }
    }

    /// A connection accepted from `peer`: judged now, or once a trusted balancer's PROXY
    /// header has named its source.
    fn arrived(&mut self, stream: DataStream, peer: SocketAddr) {
        // SECURITY: only a trusted peer's header names the source; from anyone else the bytes
        // are data and the TCP peer is the source the policy judges.
        if self.policy.proxy_trust(peer.ip()) {
            // The header is read asynchronously; a socket that cannot be registered is closed.
            if let Ok(stream) = stream.into_registered() {
                self.proxied = Some(SyncWrapper::new(Box::pin(proxied_source(stream, peer))));
            }
        } else {
            self.judge(stream, peer);
        }
    }

    /// A connection waiting in the kernel's queue, accepted without asking the runtime
    /// whether there is one (`None`: none is, or a balancer's header is being read).
    fn accept_queued(&mut self) -> Option<(DataStream, SocketAddr)> {
        if self.proxied.is_some() {
            return None;
        }
        self.queue.accept_now()
    }

    /// One arrival from `source`: closed at once when refused (and charged to `source`), held
    /// when it is the first allowed one, closed unused otherwise.
    fn judge(&mut self, stream: DataStream, source: SocketAddr) {
        // SECURITY: every passive connection is screened as it arrives, before the stream is
        // used at all; a refused one is closed at once and charged to its source.
        match self.policy.screen_passive_peer(&self.who, source) {
            Err(refusal) => {
                drop(stream);
                self.refused.push(source, refusal);
            }
            Ok(()) if !self.chosen => {
                self.chosen = true;
                self.held = Some((stream, source));
            }
            Ok(()) => {
                // Only the first allowed connection carries data.
                tracing::debug!(source = %source, "another passive connection closed unused");
                drop(stream);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A transfer's future polled with its listener's screening ([`PassiveListener::screening`]).
    /// A struct, not an `async fn`: that would keep `work`, the whole transfer's state, twice
    /// (as its argument and pinned), and every transfer allocates it.
    pub struct Screening<'a, F> {
        listener: &'a mut PassiveListener,
        #[pin]
        work: F,
    }
}

impl<F: Future> Future for Screening<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.work.poll(cx) {
            return Poll::Ready(out);
        }
        this.listener.poll_screen(cx);
        Poll::Pending
    }
}

/// A random number from the operating system's generator for a port choice. The bytes are
/// fetched 256 at a time into a per-thread pool and each is used once: as unpredictable as
/// one `getrandom` call per PASV, with one system call per 64 of them. (A generator crate
/// would add a dependency for these few lines.)
fn random_u32() -> Result<u32, getrandom::Error> {
    use std::cell::RefCell;
    const POOL: usize = 256;
    thread_local! {
        /// The pool, and how many of its bytes are used up.
        static BYTES: RefCell<([u8; POOL], usize)> = const { RefCell::new(([0; POOL], POOL)) };
    }
    BYTES.with_borrow_mut(|(pool, used)| {
        if *used == POOL {
            getrandom::fill(pool)?;
            *used = 0;
        }
        let word: [u8; 4] = pool[*used..*used + 4].try_into().expect("four bytes");
        // Used once: wiped from the pool.
        pool[*used..*used + 4].fill(0);
        *used += 4;
        Ok(u32::from_ne_bytes(word))
    })
}

/// The source a trusted load balancer's PROXY header names for a data connection (read within
/// [`proxy::HEADER_TIMEOUT`]). `None`: it sent no valid client header, and the connection has
/// been closed, like any refused peer.
async fn proxied_source(mut stream: TcpStream, peer: SocketAddr) -> Option<(DataStream, SocketAddr)> {
    match tokio::time::timeout(proxy::HEADER_TIMEOUT, proxy::read_header(&mut stream)).await {
        Ok(Ok(proxy::Header::Proxied { source, .. })) => {
            tracing::debug!(proxy = %peer, source = %source, "data connection through a load balancer");
            Some((stream.into(), source))
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

#[cfg(test)]
mod tests;
