//! Moving bytes over an open data connection, in stream mode (RFC 959 3.4.1), with
//! TYPE A line-ending conversion (RFC 959 3.1.1.1): on the wire every line ends in CRLF;
//! on disk fxpd stores the platform's newline (LF on Unix, CRLF kept as is on Windows).
//!
//! Progress is published through a shared counter so the session can answer STAT while
//! the transfer runs.

use super::rate::Throttle;
use crate::auth::inflight::Draw;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Transfer buffer size: large reads and writes keep per-byte overhead low; the buffer
/// exists only while a transfer runs.
pub const BUF_SIZE: usize = 256 * 1024;

/// Copy `src` to the data connection `dst`. With `ascii`, a bare LF becomes CRLF (an LF
/// already preceded by CR is left alone, also across buffer boundaries). Returns the bytes
/// read from `src`.
pub async fn send<R, W>(
    src: &mut R,
    dst: &mut W,
    ascii: bool,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; throttle.chunk(BUF_SIZE)];
    let mut converted = Vec::new();
    let mut last_was_cr = false;
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if ascii {
            converted.clear();
            for &b in &buf[..n] {
                if b == b'\n' && !last_was_cr {
                    converted.push(b'\r');
                }
                converted.push(b);
                last_was_cr = b == b'\r';
            }
            dst.write_all(&converted).await?;
        } else {
            dst.write_all(&buf[..n]).await?;
        }
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
        throttle.wait(n).await;
    }
    dst.flush().await?;
    dst.shutdown().await?;
    Ok(total)
}

/// Which side of a copy failed.
#[derive(Debug)]
pub enum Direction {
    /// Reading from the data connection.
    Network(std::io::Error),
    /// Writing to the file.
    Storage(std::io::Error),
    /// The client sent more than the upload may write (`max_upload_bytes`, or its
    /// account's quota room); the chunk that crossed the limit was not written.
    TooLarge,
}

/// What an upload may write: its own most bytes and its share of its account's quota room.
#[derive(Debug, Default)]
pub struct UploadCap {
    /// The most bytes this upload may write (`max_upload_bytes` less the offset).
    pub max_bytes: Option<u64>,
    /// Its draw on the room its account's running uploads share (a byte quota).
    pub quota: Option<Arc<Draw>>,
}

impl UploadCap {
    /// Whether a limit applies: the bytes are then counted in the async loop.
    pub fn is_limited(&self) -> bool {
        self.max_bytes.is_some() || self.quota.is_some()
    }

    /// Whether `n` more bytes may follow the `total` written: they are taken from the quota
    /// room if so.
    fn admits(&self, total: u64, n: u64) -> bool {
        if self.max_bytes.is_some_and(|max| total + n > max) {
            return false;
        }
        self.quota.as_ref().is_none_or(|draw| draw.take(n))
    }
}

/// Copy the data connection `src` into `dst` until the peer closes (binary mode over TLS,
/// where the blocking fast path does not apply). Returns the bytes received.
pub async fn receive<R, W>(
    src: &mut R,
    dst: &mut W,
    progress: &AtomicU64,
    throttle: &Throttle,
    cap: &UploadCap,
) -> Result<u64, Direction>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; throttle.chunk(BUF_SIZE)];
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf).await.map_err(Direction::Network)?;
        if n == 0 {
            break;
        }
        // SECURITY: nothing past the limit reaches storage.
        if !cap.admits(total, n as u64) {
            return Err(Direction::TooLarge);
        }
        dst.write_all(&buf[..n]).await.map_err(Direction::Storage)?;
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
        throttle.wait(n).await;
    }
    dst.flush().await.map_err(Direction::Storage)?;
    Ok(total)
}

/// The inbound side of a data connection as an `AsyncRead`: in ASCII mode it turns CRLF
/// into the platform newline; in binary mode it passes bytes through.
pub struct Inbound<R> {
    inner: R,
    ascii: bool,
    /// A CR seen at the end of the previous read, not yet known to be part of CRLF.
    pending_cr: bool,
    eof: bool,
}

impl<R> Inbound<R> {
    /// Wrap a data connection.
    pub fn new(inner: R, ascii: bool) -> Self {
        Inbound {
            inner,
            ascii: ascii && cfg!(not(windows)),
            pending_cr: false,
            eof: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Inbound<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.ascii {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        // ASCII: read into a small scratch buffer and write the converted bytes. The output
        // is at most the input plus a CR carried over from the previous read.
        if buf.remaining() < 2 {
            return Poll::Ready(Err(std::io::Error::other("read buffer too small")));
        }
        let mut scratch = [0u8; 8192];
        loop {
            if this.eof {
                if std::mem::take(&mut this.pending_cr) {
                    buf.put_slice(b"\r");
                }
                return Poll::Ready(Ok(()));
            }
            let room = (buf.remaining() - 1).min(scratch.len());
            let mut tmp = ReadBuf::new(&mut scratch[..room]);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut tmp))?;
            let data = tmp.filled();
            if data.is_empty() {
                this.eof = true;
                continue;
            }
            let before = buf.filled().len();
            for &b in data {
                if std::mem::take(&mut this.pending_cr) && b != b'\n' {
                    buf.put_slice(b"\r");
                }
                if b == b'\r' {
                    this.pending_cr = true;
                } else {
                    buf.put_slice(&[b]);
                }
            }
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
            // Only a lone CR arrived: read on rather than report a zero-length read (EOF).
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ascii_send_converts_bare_lf_only() {
        let mut src: &[u8] = b"a\nb\r\nc\n";
        let mut out = Vec::new();
        let p = AtomicU64::new(0);
        send(&mut src, &mut out, true, &p, &Throttle::default())
            .await
            .unwrap();
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
        assert_eq!(p.load(Ordering::Relaxed), 7);
    }

    #[tokio::test]
    async fn binary_send_is_identity() {
        let data: Vec<u8> = (0..=255u8).cycle().take(600_000).collect();
        let mut src: &[u8] = &data;
        let mut out = Vec::new();
        send(
            &mut src,
            &mut out,
            false,
            &AtomicU64::new(0),
            &Throttle::default(),
        )
        .await
        .unwrap();
        assert_eq!(out, data);
    }

    #[cfg(not(windows))]
    #[tokio::test]
    async fn ascii_receive_converts_crlf_across_reads() {
        // A reader that yields one byte at a time splits every CRLF.
        struct Trickle(&'static [u8]);
        impl AsyncRead for Trickle {
            fn poll_read(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                if let Some((first, rest)) = self.0.split_first() {
                    buf.put_slice(&[*first]);
                    self.0 = rest;
                }
                Poll::Ready(Ok(()))
            }
        }
        let mut r = Inbound::new(Trickle(b"a\r\nb\rc\r\n\r"), true);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"a\nb\rc\n\r");
    }
}
