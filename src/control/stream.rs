//! The control connection's byte stream: plain TCP, or TLS after `AUTH TLS` (RFC 4217) or
//! on an implicit FTPS listener.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A control connection, plain or protected.
pub enum ControlStream {
    /// Clear text. `line_open`: the last read ended inside a line (its last byte was not a
    /// LF), the only way a read can have stopped at an urgent mark (see `recv_past_urgent_mark`).
    Plain {
        /// The connection.
        tcp: TcpStream,
        /// Whether the last read ended inside a line.
        line_open: bool,
    },
    /// Protected by TLS.
    Tls(Box<TlsStream<TcpStream>>),
    /// Taken out for a TLS handshake that did not complete; reads end, writes fail.
    Closed,
}

impl ControlStream {
    /// A clear-text control connection. Urgent data stays inline (SO_OOBINLINE): clients
    /// send `IAC IP IAC DM` before ABOR with DM as TCP urgent data (RFC 959 4.1.3), and the
    /// Telnet filter must see the DM where it was sent rather than lose it.
    pub fn plain(tcp: TcpStream) -> ControlStream {
        #[cfg(unix)]
        let _ = set_int_option(&tcp, libc::SOL_SOCKET, libc::SO_OOBINLINE, 1);
        ControlStream::Plain {
            tcp,
            line_open: false,
        }
    }

    /// Whether the connection is protected.
    pub fn is_tls(&self) -> bool {
        matches!(self, ControlStream::Tls(_))
    }

    /// Take the plain TCP stream out for a TLS upgrade; `None` when already protected.
    pub fn take_plain(&mut self) -> Option<TcpStream> {
        match std::mem::replace(self, ControlStream::Closed) {
            ControlStream::Plain { tcp, .. } => Some(tcp),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl AsyncRead for ControlStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain { tcp, line_open } => {
                let before = buf.filled().len();
                let polled = match Pin::new(&mut *tcp).poll_read(cx, buf) {
                    Poll::Pending if *line_open => recv_past_urgent_mark(tcp, buf),
                    polled => polled,
                };
                if let Some(&last) = buf.filled()[before..].last() {
                    *line_open = last != b'\n';
                }
                polled
            }
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ControlStream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// A read on a socket stops at the urgent mark, so the read before `ABOR` comes back short;
/// the runtime then takes the socket for drained, and epoll reports nothing new because no
/// new bytes arrive: `ABOR` would sit unread. When the runtime says "not ready" after a read
/// that ended inside a line, look once more directly (non-blocking); the waker is already
/// registered if nothing is there. The urgent byte is the last one a client sends with
/// `MSG_OOB`: the DM after `IAC IP IAC` (RFC 959 4.1.3), or the LF of `ABOR` (Python's
/// ftplib), so the read that stops at it ends inside a line. A read that ended with a LF
/// needs no second look, which spares a system call after every command.
fn recv_past_urgent_mark(s: &TcpStream, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    // SAFETY: `recv_now` writes only initialised bytes into the unfilled part, and only the
    // `n` it reports are marked initialised.
    match recv_now(s, unsafe { buf.unfilled_mut() }) {
        Some(Ok(n)) if n > 0 => {
            // SAFETY: recv initialised these `n` bytes.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
        _ => Poll::Pending,
    }
}

/// One non-blocking `recv` from `stream` into `room` now, without asking the runtime whether
/// the socket is readable (after a short read it takes the socket for drained until its next
/// readiness event). `None`: nothing has arrived yet, so wait for the runtime as usual. Used
/// here past the urgent mark and by small uploads for the FIN that usually follows their
/// data (`crate::datachan::inline`).
#[cfg(unix)]
pub(crate) fn recv_now(
    stream: &impl std::os::fd::AsRawFd,
    room: &mut [std::mem::MaybeUninit<u8>],
) -> Option<io::Result<usize>> {
    // SAFETY: the descriptor is open (borrowed from `stream`) and `room` is writable memory of
    // the length given; recv writes at most that many bytes.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            room.as_mut_ptr().cast(),
            room.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => None,
            _ => Some(Err(e)),
        };
    }
    Some(Ok(n as usize))
}

/// Sets the integer socket option `name` at `level` on `socket` to `value` (setsockopt(2)).
/// The one place fxpd sets an option tokio does not offer: SO_OOBINLINE here, TCP_CORK and
/// SO_RCVLOWAT on data connections (`crate::datachan`).
#[cfg(unix)]
pub(crate) fn set_int_option(
    socket: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt on an open descriptor (borrowed from `socket`) with a pointer to a
    // c_int that outlives the call and its size.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Without a direct read, the runtime's readiness is the only way in.
#[cfg(not(unix))]
pub(crate) fn recv_now<S>(_: &S, _: &mut [std::mem::MaybeUninit<u8>]) -> Option<io::Result<usize>> {
    None
}

impl AsyncWrite for ControlStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ControlStream::Plain { tcp, .. } => Pin::new(tcp).poll_write(cx, buf),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ControlStream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain { tcp, .. } => Pin::new(tcp).poll_flush(cx),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ControlStream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain { tcp, .. } => Pin::new(tcp).poll_shutdown(cx),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ControlStream::Closed => Poll::Ready(Ok(())),
        }
    }
}
