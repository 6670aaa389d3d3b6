//! A data connection's socket, registered with the runtime's reactor only once a transfer has
//! to wait on it.
//!
//! On Unix a passive connection is accepted straight from the kernel's queue, non-blocking and
//! unregistered. A small download then goes out with one `sendfile` and a small upload comes in
//! with a few `recv`s, and the socket is closed without ever having been added to the reactor's
//! `epoll` set (two `epoll_ctl` calls, an allocation and a wake-up hook on every packet saved
//! per file). A transfer that would block, or that needs an async stream (TLS, listings, ASCII,
//! a PROXY header), registers it then; the blocking path takes it as a plain socket.

use std::io;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A data connection: accepted directly (not yet registered), or a runtime stream.
#[derive(Debug)]
pub struct DataStream(Kind);

#[derive(Debug)]
enum Kind {
    /// Non-blocking, not in the reactor's set.
    Direct(std::net::TcpStream),
    /// Registered with the reactor.
    Reactor(TcpStream),
    /// Registering failed: the socket is closed.
    Lost,
}

impl From<TcpStream> for DataStream {
    fn from(stream: TcpStream) -> Self {
        DataStream(Kind::Reactor(stream))
    }
}

impl DataStream {
    /// A non-blocking socket accepted from the kernel's queue, not registered.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(super) fn direct(stream: std::net::TcpStream) -> Self {
        DataStream(Kind::Direct(stream))
    }

    /// The socket to use directly now, while it is not registered (`None`: it is).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(super) fn unregistered(&self) -> Option<&std::net::TcpStream> {
        match &self.0 {
            Kind::Direct(s) => Some(s),
            _ => None,
        }
    }

    /// The registered stream, registering it first if need be.
    pub(super) fn registered(&mut self) -> io::Result<&mut TcpStream> {
        if let Kind::Direct(_) = self.0 {
            let Kind::Direct(std) = std::mem::replace(&mut self.0, Kind::Lost) else {
                unreachable!("matched above")
            };
            self.0 = Kind::Reactor(TcpStream::from_std(std)?);
        }
        match &mut self.0 {
            Kind::Reactor(s) => Ok(s),
            _ => Err(lost()),
        }
    }

    /// The stream for async I/O, registered.
    pub fn into_registered(mut self) -> io::Result<TcpStream> {
        self.registered()?;
        match self.0 {
            Kind::Reactor(s) => Ok(s),
            _ => Err(lost()),
        }
    }

    /// The socket as a std stream, out of the reactor's set (still non-blocking).
    pub(super) fn into_std(self) -> io::Result<std::net::TcpStream> {
        match self.0 {
            Kind::Direct(s) => Ok(s),
            Kind::Reactor(s) => s.into_std(),
            Kind::Lost => Err(lost()),
        }
    }

    /// The remote end's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.0 {
            Kind::Direct(s) => s.peer_addr(),
            Kind::Reactor(s) => s.peer_addr(),
            Kind::Lost => Err(lost()),
        }
    }
}

fn lost() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the data connection could not be registered",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_direct_socket_registers_once_and_keeps_its_peer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let mut stream = DataStream::direct(accepted);
        assert!(stream.unregistered().is_some());
        stream.registered().unwrap();
        assert!(stream.unregistered().is_none(), "registered in place");
        stream.registered().unwrap();
        assert_eq!(stream.peer_addr().unwrap(), client.local_addr().unwrap());
        let std = stream.into_std().unwrap();
        assert_eq!(std.peer_addr().unwrap(), client.local_addr().unwrap());
    }
}
