//! Small binary transfers done on the session's task, without the hop to a blocking
//! thread that large files take ([`super::blocking`]).
//!
//! For a 4 KiB file the hop (switching the socket to blocking mode, setting its timeouts,
//! duplicating it for the kill switch, waking a pool thread and waiting for it) costs more
//! than moving the bytes. Downloads up to [`SMALL_FILE`] go out with `sendfile(2)` on the
//! non-blocking socket, driven by the reactor; uploads read their first [`SMALL_FILE`] bytes
//! here and hand the rest, if any, to the blocking path. File reads and writes of that size
//! hit the page cache, so they do not hold the runtime thread for long.

use crate::control::stream::recv_now;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Largest transfer (or first part of an upload) done inline.
pub const SMALL_FILE: u64 = 256 * 1024;

/// Upload buffer for the inline part. Under 64 KiB: glibc's `free` of a chunk that large
/// consolidates the whole heap's free lists, which cost more than receiving a 4 KiB file.
const BUF: usize = 32 * 1024;

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
    let mut short = false;
    while total < SMALL_FILE {
        buf.clear();
        // After a short read the runtime takes the socket for drained and would wait for its
        // next readiness event; the end of a small upload is usually there already.
        let now = if short { read_now(stream, &mut buf) } else { None };
        let n = match now {
            Some(read) => read?,
            None => patient(idle, stream.read_buf(&mut buf)).await?,
        };
        short = n < BUF;
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

/// One read from `stream` into `buf`'s spare room now, without asking the runtime whether the
/// socket is readable (`None`: nothing has arrived yet, so wait for the runtime as usual).
fn read_now(stream: &TcpStream, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
    let read = recv_now(stream, buf.spare_capacity_mut());
    if let Some(Ok(n)) = read {
        // SAFETY: recv initialised the first `n` bytes of the spare room.
        unsafe { buf.set_len(buf.len() + n) };
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};
    use tokio::io::AsyncWriteExt;

    /// A connected pair on loopback: (client side, server side).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// What `receive_start` put in the file when the client sends `parts` with `pause` between
    /// them, then closes.
    async fn received(parts: &[&[u8]], pause: Duration) -> (u64, Vec<u8>) {
        let (mut client, mut server) = pair().await;
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let sender = tokio::spawn(async move {
            for part in parts {
                client.write_all(&part).await.unwrap();
                tokio::time::sleep(pause).await;
            }
        });
        let mut file = tempfile();
        let progress = AtomicU64::new(0);
        let got = receive_start(&mut server, &mut file, &progress, Duration::from_secs(5))
            .await
            .unwrap();
        sender.await.unwrap();
        let Received::Complete(n) = got else {
            panic!("a small upload ends inline")
        };
        file.rewind().unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        (n, bytes)
    }

    fn tempfile() -> File {
        let dir = std::env::temp_dir().join(format!("fxpd-inline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:?}", std::thread::current().id()).replace(['(', ')'], ""));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[tokio::test]
    async fn an_upload_that_arrives_at_once_is_received_whole() {
        let (n, bytes) = received(&[&[7u8; 4096]], Duration::ZERO).await;
        assert_eq!((n, bytes), (4096, vec![7u8; 4096]));
    }

    #[tokio::test]
    async fn an_upload_whose_rest_comes_after_a_short_read_is_received_whole() {
        // The first part is read short; the direct look then finds nothing yet and the
        // transfer waits for the runtime, which must still deliver the rest and the end.
        let (n, bytes) = received(
            &[b"first part ", b"second part ", b"end"],
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(n, 26);
        assert_eq!(bytes, b"first part second part end");
    }
}
