//! Data connections (RFC 959 3.2, RFC 2428): everything from the moment a data connection is
//! planned to the outcome of the transfer over it.
//!
//! - this file: active connects, and how a connection fails to come about ([`DataError`]);
//! - [`passive`]: passive listeners, screening every arrival;
//! - [`job`]: one transfer, polled by the session's task: the session hands over a [`Request`] and
//!   gets a [`Transfer`] whose result is an [`Outcome`]; the byte path is chosen there;
//! - `stream`: the socket, registered with the runtime only when a transfer waits on it;
//! - [`protect`]: TLS on data connections, with the resumption check (fail closed);
//! - `inline`, `blocking`, `transfer`: the byte loops (small files on the session's task, `sendfile`/
//!   `splice` on a blocking thread, async copies with TYPE A conversion); [`rate`]: limits.
//!
//! A data connection comes into being only through the policy: an active connect needs an
//! [`Approved`] address and a passive listener a [`PassiveGrant`], which only
//! [`crate::policy::Policy::approve_setup`] can make. A passive listener ([`passive`]) screens
//! every arriving connection with [`crate::policy::Policy::screen_passive_peer`] before a byte
//! is read or written, whenever its owner polls it: the session's task from the PASV/EPSV
//! reply on, the transfer once it has taken the listener. A refused connection is closed at
//! once (and charged to its source, not to the client), and the first connection from an
//! allowed address is held for the transfer. Strangers can therefore neither fill the accept
//! queue nor steal or spoil a transfer. The transfer judges the held connection once more
//! ([`crate::policy::Policy::approve_passive_peer`]) before using it, so a reload that tightened
//! the policy meanwhile is obeyed. A connection from a trusted load balancer (`proxy.trusted`) is
//! judged by the source its PROXY header names; without a valid header it is closed like a
//! refused one.

mod blocking;
mod inline;
pub mod job;
pub mod passive;
pub mod protect;
pub mod rate;
mod stream;
mod transfer;

pub use job::{start, Job, Outcome, Plan, Progress, Request, Transfer};
pub use passive::{PassiveListener, RefusedLog, REFUSED_KEPT};
pub use protect::{DataTls, Protection, TlsUnavailable};
pub use stream::DataStream;
pub use transfer::UploadCap;

#[cfg(doc)]
use crate::policy::PassiveGrant;
use crate::policy::{Approved, Refusal};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

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
