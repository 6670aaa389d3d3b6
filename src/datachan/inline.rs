//! Small binary transfers done on the session's task, without the hop to a blocking
//! thread that large files take ([`super::blocking`]).
//!
//! For a 4 KiB file the hop (switching the socket to blocking mode, setting its timeouts,
//! duplicating it for the kill switch, waking a pool thread and waiting for it) costs more
//! than moving the bytes. Downloads up to [`SMALL_FILE`] go out with `sendfile(2)` on the
//! non-blocking socket, driven by the reactor; uploads read their first [`SMALL_FILE`] bytes
//! here and hand the rest, if any, to the blocking path. File reads and writes of that size
//! hit the page cache, so they do not hold the runtime thread for long.

use super::DataStream;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Largest transfer (or first part of an upload) done inline.
pub const SMALL_FILE: u64 = 256 * 1024;

/// Upload buffer for the inline part. Under 64 KiB: glibc's `free` of a chunk that large
/// consolidates the whole heap's free lists, which cost more than receiving a 4 KiB file.
const BUF: usize = 32 * 1024;

/// `op`, unless the peer leaves it waiting for `idle` (the data timeout, as on the blocking
/// path: a stalled peer ends the transfer). A combinator, not an `async fn`: that would keep
/// `op` twice in its state, as its argument and inside the timeout, and every transfer's
/// future holds these.
fn patient<T>(
    idle: Duration,
    op: impl std::future::Future<Output = io::Result<T>>,
) -> impl std::future::Future<Output = io::Result<T>> {
    use futures_util::FutureExt;
    tokio::time::timeout(idle, op).map(|waited| {
        waited.unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the data connection stalled",
            ))
        })
    })
}

/// Send the `len` bytes of `file` from its position, then close the sending side.
#[cfg(target_os = "linux")]
pub async fn send_small(
    file: &File,
    stream: &mut DataStream,
    len: u64,
    progress: &AtomicU64,
    idle: Duration,
) -> io::Result<u64> {
    use super::blocking::sendfile;
    use tokio::io::{AsyncWriteExt, Interest};
    let mut total = 0u64;
    // While the socket is unregistered, send directly: a fresh connection's send buffer
    // usually takes a small file whole, and then the runtime is never asked. Corked, the
    // socket sends only full segments until it is shut down, so the file's tail and the end
    // of the stream leave in one segment instead of two.
    if let Some(direct) = stream.unregistered() {
        cork(direct)?;
        let mut full = false;
        while total < len && !full {
            match sendfile(direct, file, len - total) {
                // The file shrank while being sent: what was there has gone out.
                Ok(0) => break,
                Ok(sent) => {
                    total += sent;
                    progress.store(total, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => full = true,
                Err(e) => return Err(e),
            }
        }
        if !full {
            direct.shutdown(std::net::Shutdown::Write)?;
            return Ok(total);
        }
    }
    let stream = stream.registered()?;
    while total < len {
        let sent = patient(
            idle,
            stream.async_io(Interest::WRITABLE, || sendfile(&*stream, file, len - total)),
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

/// Sets `TCP_CORK` on `socket`. The stream's shutdown sends what is held back.
#[cfg(target_os = "linux")]
fn cork(socket: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    crate::control::stream::set_int_option(socket, libc::IPPROTO_TCP, libc::TCP_CORK, 1)
}

/// Send the `len` bytes of `file` from its position, then close the sending side.
#[cfg(not(target_os = "linux"))]
pub async fn send_small(
    file: &File,
    stream: &mut DataStream,
    len: u64,
    progress: &AtomicU64,
    idle: Duration,
) -> io::Result<u64> {
    use std::io::Read;
    use tokio::io::AsyncWriteExt;
    let stream = stream.registered()?;
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
    stream: &mut DataStream,
    file: &mut File,
    progress: &AtomicU64,
    idle: Duration,
) -> io::Result<Received> {
    #[cfg(unix)]
    if let Some(socket) = stream.unregistered() {
        let source = Source::Direct { socket, watch: None };
        return receive_from(source, file, progress, idle).await;
    }
    receive_from(Source::Reactor(stream.registered()?), file, progress, idle).await
}

async fn receive_from(
    mut source: Source<'_>,
    file: &mut File,
    progress: &AtomicU64,
    idle: Duration,
) -> io::Result<Received> {
    let mut buf = UploadBuf::take();
    let mut total = 0u64;
    let mut short = false;
    while total < SMALL_FILE {
        buf.clear();
        let n = source.read(&mut buf, short, idle).await?;
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

thread_local! {
    /// The buffer of this thread's last small upload, kept for the next one.
    static SPARE: std::cell::Cell<Option<Vec<u8>>> = const { std::cell::Cell::new(None) };
}

/// An upload buffer with room for [`BUF`] bytes: the thread's spare one when it has it (a
/// session thread runs one upload's inline part at a time, usually), given back when
/// dropped. A fresh 32 KiB allocation is a large one for glibc, whose `malloc` first merges
/// every small free chunk for it: once per upload, and the small allocations after it paid
/// for that too. Not zeroed: reads fill its spare room, and only what they wrote is used.
struct UploadBuf(Vec<u8>);

impl UploadBuf {
    fn take() -> UploadBuf {
        let spare = SPARE.with(std::cell::Cell::take);
        UploadBuf(spare.unwrap_or_else(|| Vec::with_capacity(BUF)))
    }
}

impl std::ops::Deref for UploadBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for UploadBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for UploadBuf {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        // At a thread's exit there is no spare to keep.
        let _ = SPARE.try_with(|spare| spare.set(Some(buf)));
    }
}

/// Where an upload's first bytes are read from.
enum Source<'a> {
    /// A socket accepted directly: read at once, and watched for reading only when nothing
    /// has arrived. (A registered tokio stream is watched for writing too, and a fresh
    /// connection is writable at once: one more turn of the runtime for nothing.)
    #[cfg(unix)]
    Direct {
        socket: &'a std::net::TcpStream,
        watch: Option<tokio::io::unix::AsyncFd<std::os::fd::BorrowedFd<'a>>>,
    },
    /// A registered stream.
    Reactor(&'a mut tokio::net::TcpStream),
}

impl<'a> Source<'a> {
    /// One read into `buf`'s spare room, waiting at most `idle` for something to arrive.
    async fn read(&mut self, buf: &mut Vec<u8>, short: bool, idle: Duration) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            Source::Direct { socket, watch } => loop {
                let socket: &'a std::net::TcpStream = socket;
                if let Some(read) = read_now(socket, buf) {
                    return read;
                }
                if watch.is_none() {
                    use std::os::fd::AsFd;
                    // SAFETY: the descriptor is borrowed from the socket, which stays open (and
                    // the same) for as long as the watch exists.
                    let watching = unsafe {
                        tokio::io::unix::AsyncFd::register_with_interest(
                            socket.as_fd(),
                            tokio::io::Interest::READABLE,
                        )
                    };
                    *watch = Some(watching?);
                }
                let watched = watch.as_ref().expect("set above");
                let mut ready = patient(idle, watched.readable()).await?;
                if let Some(read) = read_now(socket, buf) {
                    return read;
                }
                // Nothing after all: wait for the next arrival.
                ready.clear_ready();
            },
            // After a short read the runtime takes the socket for drained and would wait for its
            // next readiness event; the end of a small upload is usually there already.
            Source::Reactor(stream) => {
                if short {
                    if let Some(read) = read_now(*stream, buf) {
                        return read;
                    }
                }
                patient(idle, stream.read_buf(buf)).await
            }
        }
    }
}

/// One read from `stream` into `buf`'s spare room now, without asking the runtime whether the
/// socket is readable (`None`: nothing has arrived yet, so wait for the runtime as usual).
#[cfg(unix)]
fn read_now(stream: &impl std::os::fd::AsRawFd, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
    let read = crate::control::stream::recv_now(stream, buf.spare_capacity_mut());
    if let Some(Ok(n)) = read {
        // SAFETY: recv initialised the first `n` bytes of the spare room.
        unsafe { buf.set_len(buf.len() + n) };
    }
    read
}

/// Without a direct read, the runtime's readiness is the only way in.
#[cfg(not(unix))]
fn read_now<S>(_: &S, _: &mut Vec<u8>) -> Option<io::Result<usize>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    /// A connected pair on loopback: the client side, and the server side accepted directly
    /// (unregistered, as a passive listener on Unix gives it) or registered.
    async fn pair(direct: bool) -> (TcpStream, DataStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let server = if direct {
            DataStream::direct(server)
        } else {
            DataStream::from(TcpStream::from_std(server).unwrap())
        };
        (client, server)
    }

    /// What `receive_start` put in the file when the client sends `parts` with `pause` between
    /// them, then closes.
    async fn received(direct: bool, parts: &[&[u8]], pause: Duration) -> (u64, Vec<u8>) {
        let (mut client, mut server) = pair(direct).await;
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

    /// `len` bytes sent by `send_small` from a file, as the client read them after `pause`,
    /// and whether the server's socket was still unregistered at the end.
    async fn sent(direct: bool, len: usize, pause: Duration) -> (u64, Vec<u8>, bool) {
        let (mut client, mut server) = pair(direct).await;
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile();
        file.write_all(&content).unwrap();
        file.rewind().unwrap();
        let reader = tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let progress = AtomicU64::new(0);
        let n = send_small(&file, &mut server, len as u64, &progress, Duration::from_secs(5))
            .await
            .unwrap();
        let unregistered = server.unregistered().is_some();
        drop(server);
        let got = reader.await.unwrap();
        assert_eq!(got, content, "the client received the file");
        assert_eq!(progress.load(Ordering::Relaxed), n);
        (n, got, unregistered)
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
        for direct in [true, false] {
            let (n, bytes) = received(direct, &[&[7u8; 4096]], Duration::ZERO).await;
            assert_eq!((n, bytes), (4096, vec![7u8; 4096]), "direct: {direct}");
        }
    }

    #[tokio::test]
    async fn an_upload_whose_rest_comes_after_a_short_read_is_received_whole() {
        // The first part is read short; the direct look then finds nothing yet and the
        // transfer waits for the runtime, which must still deliver the rest and the end.
        for direct in [true, false] {
            let (n, bytes) = received(
                direct,
                &[b"first part ", b"second part ", b"end"],
                Duration::from_millis(50),
            )
            .await;
            assert_eq!(n, 26);
            assert_eq!(bytes, b"first part second part end", "direct: {direct}");
        }
    }

    #[tokio::test]
    async fn the_spare_upload_buffer_is_reused_and_holds_nothing_of_the_last_upload() {
        let mut first = UploadBuf::take();
        first.extend_from_slice(&[9u8; 1000]);
        let at = first.as_ptr();
        drop(first);
        let second = UploadBuf::take();
        assert_eq!(second.as_ptr(), at, "the thread's spare buffer");
        assert!(second.is_empty() && second.capacity() >= BUF);
        drop(second);
        // A short upload after a long one gets its own bytes only.
        let (n, bytes) = received(true, &[&[7u8; 20_000]], Duration::ZERO).await;
        assert_eq!((n, bytes.len()), (20_000, 20_000));
        let (n, bytes) = received(true, &[b"abc"], Duration::ZERO).await;
        assert_eq!((n, bytes), (3, b"abc".to_vec()));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_small_download_leaves_a_direct_socket_unregistered() {
        let (n, _, unregistered) = sent(true, 4096, Duration::ZERO).await;
        assert_eq!(n, 4096);
        assert!(unregistered, "a 4 KiB file went out without the runtime");
        let (n, _, _) = sent(false, 4096, Duration::ZERO).await;
        assert_eq!(n, 4096);
    }

    /// Segments `socket` has sent so far (Linux `TCP_INFO`).
    #[cfg(target_os = "linux")]
    fn segments_sent(socket: &std::net::TcpStream) -> u32 {
        use std::os::fd::AsRawFd;
        // SAFETY: tcp_info is plain data; getsockopt fills at most `len` bytes of it.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let done = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        assert_eq!(done, 0, "TCP_INFO");
        info.tcpi_segs_out
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_small_file_and_the_end_of_the_stream_leave_in_one_segment() {
        let (mut client, mut server) = pair(true).await;
        let mut file = tempfile();
        file.write_all(&[5u8; 4096]).unwrap();
        file.rewind().unwrap();
        let before = segments_sent(server.unregistered().unwrap());
        let progress = AtomicU64::new(0);
        send_small(&file, &mut server, 4096, &progress, Duration::from_secs(5))
            .await
            .unwrap();
        let after = segments_sent(server.unregistered().unwrap());
        assert_eq!(after - before, 1, "the data and the FIN in one segment");
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, vec![5u8; 4096]);
    }

    #[tokio::test]
    async fn a_download_larger_than_the_send_buffer_goes_on_through_the_runtime() {
        // The client reads only after a pause, so the direct sends fill the socket's buffers
        // and the rest must wait for the runtime's readiness.
        for direct in [true, false] {
            let (n, got, unregistered) = sent(direct, 8 << 20, Duration::from_millis(100)).await;
            assert_eq!(n, 8 << 20);
            assert_eq!(got.len(), 8 << 20);
            assert!(!unregistered, "direct: {direct}: registered once it had to wait");
        }
    }
}
