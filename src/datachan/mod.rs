//! Data connections (RFC 959 3.2, RFC 2428): passive listeners and active connects.
//!
//! A data connection comes into being only through the policy: an active connect needs an
//! [`Approved`] address, which only [`crate::policy::Policy::approve_active`] can make, and
//! every connection a passive listener accepts is put to
//! [`crate::policy::Policy::approve_passive_peer`] before a byte is read or written. A
//! refused passive connection is closed at once and the listener keeps waiting for the
//! legitimate client until the data timeout, so a stranger can neither steal nor spoil a
//! transfer. A connection from a trusted load balancer (`proxy.trusted`) is judged by the
//! source its PROXY header names; without a valid header it is closed like a refused one.

pub mod blocking;
pub mod inline;
pub mod rate;
pub mod transfer;

use crate::config::PortRange;
use crate::policy::{Approved, Policy, Refusal, Who};
use crate::proxy;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

/// A bound passive-mode listener waiting for the client's data connection.
#[derive(Debug)]
pub struct PassiveListener {
    listener: TcpListener,
    local: SocketAddr,
}

impl PassiveListener {
    /// Bind on `ip` to a port chosen at random from `range` (KB Q260934: sequential ports are
    /// predictable). Each attempt starts at a fresh random offset and walks the range, so a
    /// busy port is skipped and a port still bound is never handed out twice.
    pub async fn bind(ip: IpAddr, range: PortRange) -> io::Result<PassiveListener> {
        let span = u32::from(range.last) - u32::from(range.first) + 1;
        let start = random_u32() % span;
        let mut last_err = io::Error::new(io::ErrorKind::AddrInUse, "passive port range exhausted");
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
                    let listener = socket.listen(8)?;
                    let local = listener.local_addr()?;
                    return Ok(PassiveListener { listener, local });
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Accept the session's data connection: every arriving connection is checked by the
    /// policy; refused ones are closed at once and recorded in `refused`. Gives up at
    /// `deadline`.
    pub async fn accept(
        &self,
        policy: &Policy,
        who: &Who,
        deadline: Instant,
        refused: &mut Vec<(SocketAddr, Refusal)>,
    ) -> Result<TcpStream, DataError> {
        loop {
            let (stream, source) = match tokio::time::timeout_at(deadline, self.listener.accept()).await {
                Err(_) => return Err(DataError::Timeout),
                Ok(Err(e)) if is_transient_accept_error(&e) => continue,
                Ok(Err(e)) => return Err(DataError::Io(e)),
                Ok(Ok(pair)) => pair,
            };
            let (stream, source) = match real_source(policy, stream, source, deadline).await {
                Some(pair) => pair,
                None => continue,
            };
            // SECURITY: the passive peer is checked before the stream is used at all.
            match policy.approve_passive_peer(who, source) {
                Ok(()) => return Ok(stream),
                Err(refusal) => {
                    drop(stream);
                    refused.push((source, refusal));
                }
            }
        }
    }
}

/// The real source of a data connection: the TCP peer, or, when the peer is a trusted load
/// balancer, the source its PROXY header names (read within [`proxy::HEADER_TIMEOUT`] and the
/// accept deadline). `None`: a trusted peer sent no valid client header, and the connection has
/// been closed, like any refused peer.
async fn real_source(
    policy: &Policy,
    mut stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<(TcpStream, SocketAddr)> {
    // SECURITY: only a trusted peer's header names the source; from anyone else the bytes are
    // data and the TCP peer is the source the policy judges.
    if !policy.proxy_trust(peer.ip()) {
        return Some((stream, peer));
    }
    let until = deadline.min(Instant::now() + proxy::HEADER_TIMEOUT);
    match tokio::time::timeout_at(until, proxy::read_header(&mut stream)).await {
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
        }
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // The OS generator cannot fail on supported platforms; fall back to the clock if it does.
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return nanos.subsec_nanos();
    }
    u32::from_ne_bytes(b)
}
