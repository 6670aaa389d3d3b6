//! A passive listener's accept queue, per operating system. On Unix the listening socket is
//! watched through [`AsyncFd`](tokio::io::unix::AsyncFd) and connections come out of it
//! unregistered ([`DataStream`], which says why); elsewhere tokio's listener gives registered
//! streams.

use crate::datachan::stream::DataStream;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use tokio::net::TcpSocket;

/// The listening socket of a passive listener.
#[cfg(unix)]
pub(super) struct Queue(tokio::io::unix::AsyncFd<mio::net::TcpListener>);

#[cfg(unix)]
impl Queue {
    /// Listen on the bound `socket` with room for `backlog` connections not yet accepted.
    pub(super) fn listen(socket: TcpSocket, backlog: u32) -> io::Result<Queue> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // SAFETY: `into_raw_fd` hands over the open descriptor, owned by the listener from here.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(socket.into_raw_fd()) };
        // SAFETY: plain listen(2) on the descriptor the listener owns.
        if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), backlog as libc::c_int) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // The socket was made non-blocking by `TcpSocket`; mio accepts with SOCK_NONBLOCK.
        let listener = mio::net::TcpListener::from_std(listener);
        // SAFETY: the mio listener owns its descriptor, which stays open and the same for as
        // long as the `AsyncFd` holds it.
        let watched = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(listener, tokio::io::Interest::READABLE)
        };
        Ok(Queue(watched?))
    }

    /// The next connection, once the runtime reports one. Counts against tokio's cooperative
    /// budget, so a flood of connects yields the task.
    pub(super) fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(DataStream, SocketAddr)>> {
        loop {
            let mut ready = std::task::ready!(self.0.poll_read_ready(cx))?;
            // `Err`: the queue was empty, its readiness is cleared; the next poll registers
            // the waker for the next arrival.
            if let Ok(accepted) = ready.try_io(|listener| listener.get_ref().accept()) {
                return Poll::Ready(accepted.map(|(stream, peer)| (direct(stream), peer)));
            }
        }
    }

    /// A connection waiting in the queue, accepted without asking the runtime whether there is
    /// one (`None`: none is).
    pub(super) fn accept_now(&mut self) -> Option<(DataStream, SocketAddr)> {
        let (stream, peer) = self.0.get_ref().accept().ok()?;
        Some((direct(stream), peer))
    }
}

/// An accepted socket as a std stream, non-blocking and unregistered.
#[cfg(unix)]
fn direct(stream: mio::net::TcpStream) -> DataStream {
    DataStream::direct(std::net::TcpStream::from(std::os::fd::OwnedFd::from(stream)))
}

/// The listening socket of a passive listener.
#[cfg(not(unix))]
pub(super) struct Queue(tokio::net::TcpListener);

#[cfg(not(unix))]
impl Queue {
    /// Listen on the bound `socket` with room for `backlog` connections not yet accepted.
    pub(super) fn listen(socket: TcpSocket, backlog: u32) -> io::Result<Queue> {
        socket.listen(backlog).map(Queue)
    }

    /// The next connection, once the runtime reports one (registered).
    pub(super) fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(DataStream, SocketAddr)>> {
        self.0
            .poll_accept(cx)
            .map_ok(|(stream, peer)| (DataStream::from(stream), peer))
    }

    /// Without a direct look at the queue, the runtime's readiness is the only way in.
    pub(super) fn accept_now(&mut self) -> Option<(DataStream, SocketAddr)> {
        None
    }
}
