//! Small binary transfers done on the session's task, without the hop to a blocking
//! thread that large files take ([`super::blocking`]).
//!
//! For a 4 KiB file the hop (switching the socket to blocking mode, setting its timeouts,
//! duplicating it for the kill switch, waking a pool thread and waiting for it) costs more
//! than moving the bytes. Downloads up to [`SMALL_FILE`] go out with `sendfile(2)` on the
//! non-blocking socket, driven by the reactor; uploads read their first [`SMALL_FILE`] bytes
//! here and hand the rest, if any, to the blocking path. File reads and writes of that size
//! hit the page cache, so they do not hold the runtime thread for long.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Largest transfer (or first part of an upload) done inline.
pub const SMALL_FILE: u64 = 256 * 1024;

/// Upload buffer for the inline part.
const BUF: usize = 64 * 1024;

/// `op`, unless the peer leaves it waiting for `idle` (the data timeout, as on the blocking
/// path: a stalled peer ends the transfer).
async fn patient<T>(idle: Duration, op: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(idle, op).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the data connection stalled",
        )),
    }
}

/// Send the `len` bytes of `file` from its position, then close the sending side.
#[cfg(target_os = "linux")]
pub async fn send_small(
    file: &File,
    stream: &mut TcpStream,
    len: u64,
    progress: &AtomicU64,
    idle: Duration,
) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    use tokio::io::{AsyncWriteExt, Interest};
    let mut total = 0u64;
    while total < len {
        let want = (len - total) as usize;
        let sent = patient(
            idle,
            stream.async_io(Interest::WRITABLE, || {
                // SAFETY: both descriptors are open for the call (borrowed); a null offset makes
                // sendfile use and advance the file's own position.
                let n = unsafe {
                    libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), std::ptr::null_mut(), want)
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as u64)
                }
            }),
        )
        .await?;
        if sent == 0 {
            // The file shrank while being sent: what was there has gone out.
            break;
        }
        total += sent;
        progress.store(total, Ordering::Relaxed);
    }
    patient(idle, stream.shutdown()).await?;
    Ok(total)
}

/// Send the `len` bytes of `file` from its position, then close the sending side.
#[cfg(not(target_os = "linux"))]
pub async fn send_small(
    file: &File,
    stream: &mut TcpStream,
    len: u64,
    progress: &AtomicU64,
    idle: Duration,
) -> io::Result<u64> {
    use std::io::Read;
    use tokio::io::AsyncWriteExt;
    let mut buf = vec![0u8; len as usize];
    let mut reader = file;
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    patient(idle, stream.write_all(&buf[..filled])).await?;
    progress.store(filled as u64, Ordering::Relaxed);
    patient(idle, stream.shutdown()).await?;
    Ok(filled as u64)
}

/// How the inline part of an upload ended.
pub enum Received {
    /// The sender closed: the whole upload is in the file.
    Complete(u64),
    /// More is coming: the first bytes are in the file; go on with the blocking path.
    More(u64),
}

/// Receive into `file` at its position until the sender closes or [`SMALL_FILE`] bytes have
/// arrived.
pub async fn receive_start(
    stream: &mut TcpStream,
    file: &mut File,
    progress: &AtomicU64,
    idle: Duration,
) -> io::Result<Received> {
    // Not zeroed: `read_buf` fills the spare capacity, so a 4 KiB upload does not pay for
    // clearing 64 KiB first.
    let mut buf = Vec::with_capacity(BUF);
    let mut total = 0u64;
    while total < SMALL_FILE {
        buf.clear();
        let n = patient(idle, stream.read_buf(&mut buf)).await?;
        if n == 0 {
            file.flush()?;
            return Ok(Received::Complete(total));
        }
        file.write_all(&buf[..n])?;
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
    }
    Ok(Received::More(total))
}
