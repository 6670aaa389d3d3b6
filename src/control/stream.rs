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
    /// Clear text.
    Plain(TcpStream),
    /// Protected by TLS.
    Tls(Box<TlsStream<TcpStream>>),
    /// Taken out for a TLS handshake that did not complete; reads end, writes fail.
    Closed,
}

impl ControlStream {
    /// Whether the connection is protected.
    pub fn is_tls(&self) -> bool {
        matches!(self, ControlStream::Tls(_))
    }

    /// Take the plain TCP stream out for a TLS upgrade; `None` when already protected.
    pub fn take_plain(&mut self) -> Option<TcpStream> {
        match std::mem::replace(self, ControlStream::Closed) {
            ControlStream::Plain(tcp) => Some(tcp),
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
            ControlStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ControlStream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for ControlStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ControlStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ControlStream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ControlStream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ControlStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ControlStream::Closed => Poll::Ready(Ok(())),
        }
    }
}
