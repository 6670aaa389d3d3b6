//! One transfer from start to outcome, polled by the session's task: the session hands over a
//! [`Request`] (what to move, how the data connection is made, how it is protected) and gets
//! a [`Transfer`], whose result is a typed [`Outcome`] that the session turns into the final
//! reply.
//!
//! The path of the bytes is chosen here, once, per job and stream: on a clear-text connection
//! a binary file goes through `inline` (small files, on the session's task) or `blocking`
//! (`sendfile`/`splice` on a blocking thread); listings, ASCII mode, TLS and object storage
//! go through the async loops of `transfer`.

use super::blocking;
use super::inline;
use super::protect::Protection;
use super::rate::Throttle;
use super::transfer::{receive, send, Direction, Inbound, UploadCap};
use super::{connect_active, DataError, DataStream, PassiveListener, RefusedLog};
use crate::policy::Approved;
use crate::storage::{Download, ObjectReader, ObjectUpload, Upload, UploadGuard};
use futures_util::FutureExt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use sync_wrapper::SyncWrapper;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use unftp_core::storage::Error as StorageError;

/// How the next data connection will be made (RFC 959 PASV/PORT, RFC 2428 EPSV/EPRT).
// One plan per session, moved into its transfer once: boxing the listener would cost an
// allocation per passive transfer to save a copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Plan {
    /// A listener bound by PASV/EPSV/CPSV, accepting (and screening) since it was bound.
    Passive(PassiveListener),
    /// An address approved by the policy at PORT/EPRT time; connected when a transfer starts.
    Active(Approved),
}

/// What a transfer moves. Files are opened before the preliminary reply, in the user's
/// home directory handle (cap-std), so an error is answered before any data connection.
pub enum Job {
    /// A listing, already CRLF-terminated: sent as it is, whatever TYPE says.
    Listing(Vec<u8>),
    /// Send an open file from its position; `left` bytes remain from there (known from the
    /// stat RETR makes anyway).
    SendFile {
        /// The file, positioned at the first byte to send (REST).
        file: std::fs::File,
        /// The bytes from that position to the end.
        left: u64,
    },
    /// Write the data into an open file at its position.
    ReceiveFile(std::fs::File),
    /// Send an object from its offset (object storage: an async, buffered copy).
    SendObject(Box<ObjectReader>),
    /// Stream the data into a new object; it appears only when the data connection ends
    /// cleanly, and is discarded otherwise.
    ReceiveObject(ObjectUpload),
}

impl Job {
    /// Whether the client sends the data (an upload).
    pub fn receives(&self) -> bool {
        matches!(self, Job::ReceiveFile(_) | Job::ReceiveObject(_))
    }

    /// The handle that discards an object upload from outside the transfer (ABOR).
    pub fn upload_guard(&self) -> Option<Arc<UploadGuard>> {
        match self {
            Job::ReceiveObject(upload) => Some(upload.guard()),
            _ => None,
        }
    }
}

impl From<Download> for Job {
    fn from(download: Download) -> Job {
        match download {
            Download::File { file, left } => Job::SendFile { file, left },
            Download::Object(reader) => Job::SendObject(reader),
        }
    }
}

impl From<Upload> for Job {
    fn from(upload: Upload) -> Job {
        match upload {
            Upload::File(file) => Job::ReceiveFile(file),
            Upload::Object(upload) => Job::ReceiveObject(upload),
        }
    }
}

/// Everything a transfer needs: what to move and how the data connection is made and used.
pub struct Request {
    /// How the data connection is made.
    pub plan: Plan,
    /// What moves over it.
    pub job: Job,
    /// `None`: clear text (PROT C); else the TLS role and its checks.
    pub protection: Option<Protection>,
    /// TYPE A: line endings are converted (files only; listings are sent as they are).
    pub ascii: bool,
    /// The data timeout: for the connection to come about and for each read and write.
    pub timeout: Duration,
    /// The control connection's local address: active connections are made from it.
    pub local_ip: IpAddr,
    /// The rate limits for this transfer's direction.
    pub throttle: Throttle,
    /// An upload: what it may write (its size limit, its account's quota room); past it the
    /// transfer stops with [`Outcome::TooLarge`].
    pub cap: UploadCap,
}

/// How a transfer ended.
#[derive(Debug)]
pub enum Outcome {
    /// All bytes moved. `refused`: the passive connections the policy turned away meanwhile.
    Complete {
        /// The bytes moved.
        bytes: u64,
        /// The passive connections refused while the listener was open.
        refused: RefusedLog,
    },
    /// The data connection never came about.
    NoConnection {
        /// Why not.
        error: DataError,
        /// The passive connections refused while the listener was open.
        refused: RefusedLog,
    },
    /// The data connection broke.
    Network(std::io::Error),
    /// The storage back-end failed.
    Storage(StorageError),
    /// An upload crossed its size limit and was stopped (an object upload is discarded; the
    /// session removes a partial file).
    TooLarge,
    /// The transfer was cancelled before it ended.
    Cancelled,
    /// The transfer panicked (a bug).
    Failed,
}

impl Outcome {
    /// How it ended, as one word (the metrics' `outcome` label).
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Complete { .. } => "complete",
            Outcome::NoConnection { .. } => "no_connection",
            Outcome::Network(_) => "network",
            Outcome::Storage(_) => "storage",
            Outcome::Cancelled => "aborted",
            Outcome::TooLarge => "too_large",
            Outcome::Failed => "failed",
        }
    }
}

/// A running transfer. Awaiting it gives its [`Outcome`]; dropping it (the session ended)
/// stops it.
///
/// It is not a task of its own: the session's task polls it beside its control connection
/// (a transfer is one step of its session), so a small transfer costs no spawn and no
/// wake-up handed from one task to another. A panic in it ends it as [`Outcome::Failed`],
/// as a task of its own would, not the session.
pub struct Transfer {
    /// The transfer's future; `None` once it has given its outcome. `SyncWrapper`: only
    /// `&mut` reaches it, so the session stays `Sync` whatever the future holds.
    run: Option<SyncWrapper<Pin<Box<dyn Future<Output = Outcome> + Send>>>>,
    /// What the transfer shows while it runs.
    progress: Arc<Progress>,
}

/// What a running transfer shows outside its future (STAT, the admin listener): the bytes
/// moved so far, published by the byte loops, and the data connection's other end once it
/// is made. One allocation per transfer for both.
#[derive(Debug, Default)]
pub struct Progress {
    bytes: AtomicU64,
    peer: OnceLock<SocketAddr>,
}

impl Progress {
    /// The bytes moved so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The data connection's other end, once it is made.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer.get().copied()
    }

    /// The counter the byte loops publish the bytes moved to.
    pub fn counter(&self) -> &AtomicU64 {
        &self.bytes
    }
}

impl Transfer {
    /// The bytes moved so far.
    pub fn moved(&self) -> u64 {
        self.progress.bytes()
    }

    /// The transfer's progress, shared (the admin listener reads it while it runs).
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Stop the transfer: its future is dropped, which closes its sockets and files (an
    /// object upload is left to its own guard; a copy on a blocking thread ends promptly,
    /// its socket shut down by the kill switch the future held).
    /// Its counters stay readable; polled again, it ends as [`Outcome::Cancelled`].
    pub fn abort(&mut self) {
        self.run = None;
    }
}

impl Future for Transfer {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(run) = self.run.as_mut() else {
            return Poll::Ready(Outcome::Cancelled);
        };
        let outcome = std::task::ready!(run.get_mut().as_mut().poll(cx));
        self.run = None;
        Poll::Ready(outcome)
    }
}

/// Start a transfer; the caller's task polls it (see [`Transfer`]).
pub fn start(request: Request) -> Transfer {
    let progress = Arc::new(Progress::default());
    let run = AssertUnwindSafe(run(request, progress.clone()))
        .catch_unwind()
        .map(|ended| ended.unwrap_or(Outcome::Failed));
    Transfer {
        run: Some(SyncWrapper::new(Box::pin(run))),
        progress,
    }
}

/// The whole data connection: accept or connect, protect, move the bytes.
async fn run(request: Request, progress: Arc<Progress>) -> Outcome {
    let Request {
        plan,
        job,
        protection,
        ascii,
        timeout,
        local_ip,
        throttle,
        cap,
    } = request;
    let (connected, mut listener) = match plan {
        Plan::Passive(mut listener) => {
            let deadline = tokio::time::Instant::now() + timeout;
            (listener.accept(deadline).await, Some(listener))
        }
        Plan::Active(target) => {
            let connected = connect_active(target, local_ip, timeout).await;
            (connected.map(|stream| (stream.into(), target.addr())), None)
        }
    };
    let moved = match connected {
        Ok((stream, source)) => {
            // Known already (the accepted source, or the approved target): no system call.
            let _ = progress.peer.set(source);
            let io = TransferIo {
                ascii,
                timeout,
                progress,
                throttle,
                cap,
            };
            // A passive listener keeps screening (and closing strangers' connections) until
            // the transfer ends; then its refusals go into the final reply. (The transfer's
            // future is made in each arm: a local moved into `screening` would be kept twice
            // in this future's state.)
            match listener.as_mut() {
                Some(listener) => listener.screening(io.run(job, stream, protection)).await,
                None => io.run(job, stream, protection).await,
            }
        }
        Err(error) => Err(error),
    };
    let refused = listener.map(|l| l.refused()).unwrap_or_default();
    match moved {
        Ok(Ok(bytes)) => Outcome::Complete { bytes, refused },
        Ok(Err(outcome)) => outcome,
        Err(error) => Outcome::NoConnection { error, refused },
    }
}

/// What every transfer job needs besides its stream.
struct TransferIo {
    ascii: bool,
    timeout: Duration,
    progress: Arc<Progress>,
    /// The rate limits for this transfer's direction.
    throttle: Throttle,
    /// An upload's limits: counted in the async loop, so the fast paths are skipped.
    cap: UploadCap,
}

/// A failed copy as an outcome.
fn copy_failed(e: Direction) -> Outcome {
    match e {
        Direction::Network(e) => Outcome::Network(e),
        Direction::Storage(e) => Outcome::Storage(e.into()),
        Direction::TooLarge => Outcome::TooLarge,
    }
}

impl TransferIo {
    /// Move the bytes over `stream`, protected by `protection` if any. `Err`: the TLS
    /// handshake failed, so the data connection never came about.
    async fn run(
        self,
        job: Job,
        stream: DataStream,
        protection: Option<Protection>,
    ) -> Result<Result<u64, Outcome>, DataError> {
        match protection {
            None => Ok(self.run_plain(job, stream).await),
            // The TLS handshake and the async copy loops hold large state: they are boxed, so
            // the future of a small clear-text transfer (most of them) stays small to allocate
            // and poll.
            Some(protection) => {
                Box::pin(async move {
                    let tls = protection.secure(stream.into_registered()?, self.timeout).await?;
                    Ok(self.run_async(job, tls, true).await)
                })
                .await
            }
        }
    }

    /// Clear-text data connection: binary file transfers take the blocking fast path.
    async fn run_plain(self, job: Job, stream: DataStream) -> Result<u64, Outcome> {
        let (progress, throttle) = (self.progress.clone(), self.throttle.clone());
        let inline = throttle.is_unlimited();
        if self.cap.is_limited() && job.receives() {
            // A size limit is counted in the async loop.
            return Box::pin(self.run_async(job, registered(stream)?, false)).await;
        }
        match job {
            Job::SendFile { file, left } if !self.ascii => {
                if inline && left <= inline::SMALL_FILE {
                    let mut stream = stream;
                    return inline::send_small(&file, &mut stream, left, &progress.bytes, self.timeout)
                        .await
                        .map_err(Outcome::Network);
                }
                let mut file = file;
                blocking_transfer(stream, self.timeout, move |sock| {
                    blocking::send_file(&mut file, sock, &progress.bytes, &throttle)
                })
                .await
            }
            Job::ReceiveFile(mut file) if !self.ascii => {
                let mut stream = stream;
                let mut already = 0;
                if inline {
                    match inline::receive_start(&mut stream, &mut file, &progress.bytes, self.timeout).await {
                        Ok(inline::Received::Complete(bytes)) => return Ok(bytes),
                        Ok(inline::Received::More(bytes)) => already = bytes,
                        Err(e) if is_network_error(&e) => return Err(Outcome::Network(e)),
                        Err(e) => return Err(Outcome::Storage(e.into())),
                    }
                }
                blocking_transfer(stream, self.timeout, move |sock| {
                    blocking::receive_file(sock, &mut file, already, &progress.bytes, &throttle)
                })
                .await
            }
            job => Box::pin(self.run_async(job, registered(stream)?, false)).await,
        }
    }

    /// Any stream (TLS; clear text for listings and ASCII mode): async copies.
    async fn run_async<S>(self, job: Job, mut stream: S, tls: bool) -> Result<u64, Outcome>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let progress = &self.progress.bytes;
        let result = match job {
            Job::Listing(body) => send(
                &mut std::io::Cursor::new(body),
                &mut stream,
                false,
                progress,
                &self.throttle,
            )
            .await
            .map_err(Outcome::Network),
            Job::SendFile { file, .. } => {
                let mut file = tokio::fs::File::from_std(file);
                send(&mut file, &mut stream, self.ascii, progress, &self.throttle)
                    .await
                    .map_err(Outcome::Network)
            }
            Job::ReceiveFile(file) => {
                let mut file = tokio::fs::File::from_std(file);
                let mut input = Inbound::new(&mut stream, self.ascii);
                let received = receive(&mut input, &mut file, progress, &self.throttle, &self.cap)
                    .await
                    .map_err(copy_failed);
                // The sender waits for our end of the stream too (TLS: close_notify).
                let _ = tokio::time::timeout(self.timeout, stream.shutdown()).await;
                received
            }
            Job::SendObject(mut reader) => {
                send(&mut reader, &mut stream, self.ascii, progress, &self.throttle)
                    .await
                    .map_err(Outcome::Network)
            }
            Job::ReceiveObject(mut upload) => {
                let mut input = Inbound::new(&mut stream, self.ascii);
                let received = receive(&mut input, &mut upload, progress, &self.throttle, &self.cap).await;
                // Commit only after the data connection ended cleanly; otherwise nothing stays.
                let received = match received {
                    Ok(bytes) => upload.finish().await.map(|()| bytes).map_err(Outcome::Storage),
                    Err(e) => {
                        upload.abort().await;
                        Err(copy_failed(e))
                    }
                };
                let _ = tokio::time::timeout(self.timeout, stream.shutdown()).await;
                received
            }
        };
        // On TLS, read until the peer closes before dropping the socket: closing with unread
        // bytes (session tickets, close_notify) makes the kernel send a reset that can
        // destroy data the peer has not read yet. Clear-text peers send nothing, and some
        // wait for the 226 before closing, so they are not waited for.
        if tls && result.is_ok() {
            let _ = tokio::time::timeout(self.timeout.min(DRAIN_LIMIT), drain(&mut stream)).await;
        }
        result
    }
}

/// How long a finished data connection may take to close from the peer's side.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

async fn drain<S: AsyncRead + Unpin>(stream: &mut S) {
    // On the heap: in the future itself it would make every transfer's future 4 KiB larger
    // (and copied when it is boxed), though only TLS transfers drain.
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Run a transfer on a blocking thread. If this future is dropped (ABOR, session end), the
/// kill switch shuts the socket down and the thread's next read or write fails at once.
async fn blocking_transfer<F>(stream: DataStream, timeout: Duration, work: F) -> Result<u64, Outcome>
where
    F: FnOnce(&mut std::net::TcpStream) -> std::io::Result<u64> + Send + 'static,
{
    let (mut sock, _kill_switch) = blocking::into_blocking(stream, timeout).map_err(Outcome::Network)?;
    match tokio::task::spawn_blocking(move || work(&mut sock)).await {
        Ok(result) => result.map_err(|e| {
            if is_network_error(&e) {
                Outcome::Network(e)
            } else {
                Outcome::Storage(e.into())
            }
        }),
        Err(_) => Err(Outcome::Network(std::io::Error::other("transfer thread failed"))),
    }
}

/// The stream for the async copy loops; failing to register it fails the transfer.
fn registered(stream: DataStream) -> Result<TcpStream, Outcome> {
    stream.into_registered().map_err(Outcome::Network)
}

/// Whether an I/O error during a transfer came from the connection (426) rather than the
/// file system (451/452).
fn is_network_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | TimedOut
            | WouldBlock
            | NotConnected
            | UnexpectedEof
    )
}
