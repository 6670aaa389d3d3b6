//! Starting a transfer in its own task, and turning its outcome into the final reply.

use super::{DataPlan, Running, Session};
use crate::control::reply::{Code, Reply};
use crate::datachan::rate::{Limiter, Throttle};
use crate::datachan::transfer::{receive, send, Direction, Inbound};
use crate::datachan::{blocking, inline};
use crate::datachan::{connect_active, DataError, RefusedLog};
use crate::tls::{Tls, TlsRequire};
use rustls::HandshakeKind;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinError;
use tokio_rustls::TlsStream;
use unftp_core::storage::{Error as StorageError, ErrorKind};

/// What a transfer moves. Files are opened before the preliminary reply, in the user's
/// home directory handle (cap-std), so an error is answered before any data connection.
pub(super) enum Job {
    /// A listing, already CRLF-terminated: sent as it is, whatever TYPE says.
    Listing(Vec<u8>),
    /// Send an open file from its position; `left` bytes remain from there (known from the
    /// stat RETR makes anyway).
    SendFile { file: std::fs::File, left: u64 },
    /// Write the data into an open file at its position.
    ReceiveFile(std::fs::File),
    /// Send an object from its offset (object storage: an async, buffered copy).
    SendObject(Box<crate::storage::ObjectReader>),
    /// Stream the data into a new object; it appears only when the data connection ends
    /// cleanly, and is discarded otherwise.
    ReceiveObject(crate::storage::ObjectUpload),
}

impl Job {
    /// Whether the client sends the data (an upload).
    fn receives(&self) -> bool {
        matches!(self, Job::ReceiveFile(_) | Job::ReceiveObject(_))
    }
}

/// How a transfer ended.
pub(super) enum Outcome {
    /// All bytes moved. `refused`: the passive connections the policy turned away meanwhile.
    Complete { bytes: u64, refused: RefusedLog },
    /// The data connection never came about.
    NoConnection { error: DataError, refused: RefusedLog },
    /// The data connection broke.
    Network(std::io::Error),
    /// The storage back-end failed.
    Storage(StorageError),
}

impl Session {
    /// Whether a transfer command may go ahead at all: a data connection must have been set
    /// up, and `tls.require = all` needs PROT P. Checked before any file is opened, so a
    /// refused STOR never truncates or creates a file.
    pub(super) fn transfer_precheck(&self) -> Option<Reply> {
        if self.data.is_none() {
            return Some(Reply::new(
                Code::CANT_OPEN_DATA,
                "Use PORT, EPRT, PASV or EPSV first.",
            ));
        }
        self.protection_required()
            .or_else(|| self.protection_unavailable())
    }

    /// Send the preliminary reply and start `job` on the planned data connection. The
    /// final reply comes from the session loop when the task ends.
    pub(super) async fn start_transfer(
        &mut self,
        verb: &'static str,
        path: String,
        size: Option<u64>,
        preliminary: Reply,
        job: Job,
    ) -> std::io::Result<()> {
        let Some(plan) = self.data.take() else {
            return self
                .send(Reply::new(
                    Code::CANT_OPEN_DATA,
                    "Use PORT, EPRT, PASV or EPSV first.",
                ))
                .await;
        };
        if self.logged_in().is_none() {
            return Ok(());
        }
        if let Some(refusal) = self.protection_required() {
            return self.send(refusal).await;
        }
        let protection = match self.data_protection(job.receives()) {
            Ok(protection) => protection,
            Err(refusal) => return self.send(refusal).await,
        };
        let ascii = self.transfer_type == crate::control::command::TransferType::Ascii;
        let timeout = std::time::Duration::from_secs(self.settings.config.limits.data_timeout_secs);
        let local_ip = self.local.ip();
        let progress = Arc::new(AtomicU64::new(0));
        let task_progress = progress.clone();
        let throttle = self.throttle_for(&job);
        let upload = match &job {
            Job::ReceiveObject(upload) => Some(upload.guard()),
            _ => None,
        };
        self.send(preliminary).await?;
        let handle = tokio::spawn(async move {
            // A passive listener lives (and keeps screening and closing strangers' connections)
            // until the transfer ends; then its refusals go into the final reply.
            let (connected, listener) = match plan {
                DataPlan::Passive(mut listener) => {
                    let deadline = tokio::time::Instant::now() + timeout;
                    (listener.accept(deadline).await, Some(listener))
                }
                DataPlan::Active(target) => (connect_active(target, local_ip, timeout).await, None),
            };
            let refused = move || listener.map(|l| l.refused()).unwrap_or_default();
            let stream: TcpStream = match connected {
                Ok(s) => s,
                Err(error) => {
                    return Outcome::NoConnection {
                        error,
                        refused: refused(),
                    }
                }
            };
            let io = TransferIo {
                ascii,
                timeout,
                progress: task_progress,
                throttle,
            };
            let result = match protection {
                None => io.run_plain(job, stream).await,
                Some(protection) => match protection.secure(stream, timeout).await {
                    Ok(tls) => io.run_async(job, tls, true).await,
                    Err(error) => {
                        return Outcome::NoConnection {
                            error,
                            refused: refused(),
                        }
                    }
                },
            };
            match result {
                Ok(bytes) => Outcome::Complete {
                    bytes,
                    refused: refused(),
                },
                Err(outcome) => outcome,
            }
        });
        self.transfer = Some(Running {
            handle,
            verb,
            path,
            size,
            progress,
            started: tokio::time::Instant::now(),
            upload,
        });
        Ok(())
    }
}

impl Session {
    /// The rate limits for `job`'s direction: this session's and the server's.
    fn throttle_for(&self, job: &Job) -> Throttle {
        let limits = &self.settings.config.limits;
        let (session_rate, global) = if job.receives() {
            (limits.upload_bytes_per_sec, self.shared.upload_limit.clone())
        } else {
            (limits.download_bytes_per_sec, self.shared.download_limit.clone())
        };
        Throttle::new([Limiter::new(session_rate), global])
    }

    /// `tls.require = all` or the user's `require_tls`: data connections must be protected
    /// (anonymous may be exempt from the server setting).
    fn protection_required(&self) -> Option<Reply> {
        let tls = &self.settings.config.tls;
        let anonymous = self.logged_in().is_some_and(|l| l.user.anonymous);
        let user_requires = self.logged_in().is_some_and(|l| l.user.require_tls);
        let exempt = anonymous && tls.anonymous_exempt;
        let required = (tls.require == TlsRequire::All && !exempt) || user_requires;
        (required && !self.prot_private).then(|| {
            Reply::new(
                Code::PROTECTION_REQUIRED,
                "Data connections must be protected: use PROT P.",
            )
        })
    }

    /// PROT P promised TLS on every data connection, but a reload removed `[tls]` (or the
    /// session has no TLS acceptors): the transfer is refused, never sent in clear text.
    fn protection_unavailable(&self) -> Option<Reply> {
        let unavailable = self.settings.tls.is_none() || self.tls_acceptors.is_none();
        // SECURITY: fail closed. A session that negotiated PROT P never gets a clear-text data
        // connection, whatever the configuration became since.
        (self.prot_private && unavailable).then(tls_unavailable)
    }

    /// How the next data connection is protected: `None` for clear text (PROT C), else the
    /// TLS role (client after SSCN ON or CPSV, server otherwise). `upload`: the client sends.
    /// `Err`: PROT P is in force but TLS is not available (see [`Session::protection_unavailable`]).
    fn data_protection(&mut self, upload: bool) -> Result<Option<Protection>, Reply> {
        let client = self.sscn_client || std::mem::take(&mut self.cpsv_once);
        if !self.prot_private {
            return Ok(None);
        }
        let (Some(tls), Some(acceptors)) = (self.settings.tls.clone(), self.tls_acceptors.as_ref()) else {
            // SECURITY: fail closed, as in the precheck.
            return Err(tls_unavailable());
        };
        Ok(Some(Protection {
            require_resumption: tls.config.require_data_resumption,
            acceptor: acceptors.data(upload),
            tls,
            client,
        }))
    }
}

/// The refusal of a transfer under PROT P when TLS is not available (RFC 2228: 431, a resource
/// needed for security is unavailable).
fn tls_unavailable() -> Reply {
    Reply::new(
        Code::TLS_UNAVAILABLE,
        "Data connections are protected (PROT P) but TLS is no longer available on this server; nothing is sent in clear text.",
    )
}

/// The TLS side of a protected data connection.
struct Protection {
    tls: Arc<Tls>,
    /// The control connection's own acceptor: resumption proves the same client.
    acceptor: tokio_rustls::TlsAcceptor,
    /// fxpd is the TLS client (SSCN ON / CPSV): it connects to another server's passive port.
    client: bool,
    /// The client must resume the control connection's TLS session (server role only).
    require_resumption: bool,
}

impl Protection {
    async fn secure(
        self,
        stream: TcpStream,
        timeout: std::time::Duration,
    ) -> Result<TlsStream<TcpStream>, DataError> {
        let handshake = async {
            if self.client {
                let peer = stream.peer_addr()?;
                Ok(TlsStream::Client(
                    self.tls.connector.connect(Tls::peer_name(peer), stream).await?,
                ))
            } else {
                let tls = self.acceptor.accept(stream).await?;
                // SECURITY: a data connection that does not resume the control connection's TLS
                // session may come from a third party who won the race to the passive port.
                if self.require_resumption && tls.get_ref().1.handshake_kind() != Some(HandshakeKind::Resumed)
                {
                    return Err(std::io::Error::other(
                        "the data connection did not resume the control connection's TLS session",
                    ));
                }
                Ok(TlsStream::Server(tls))
            }
        };
        match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(DataError::Tls(e.to_string())),
            Err(_) => Err(DataError::Timeout),
        }
    }
}

/// What every transfer job needs besides its stream.
struct TransferIo {
    ascii: bool,
    timeout: std::time::Duration,
    progress: Arc<AtomicU64>,
    /// The rate limits for this transfer's direction.
    throttle: Throttle,
}

impl TransferIo {
    /// Clear-text data connection: binary file transfers take the blocking fast path.
    async fn run_plain(self, job: Job, stream: TcpStream) -> Result<u64, Outcome> {
        let (progress, throttle) = (self.progress.clone(), self.throttle.clone());
        let inline = throttle.is_unlimited();
        match job {
            Job::SendFile { file, left } if !self.ascii => {
                if inline && left <= inline::SMALL_FILE {
                    let mut stream = stream;
                    return inline::send_small(&file, &mut stream, left, &progress, self.timeout)
                        .await
                        .map_err(Outcome::Network);
                }
                let mut file = file;
                blocking_transfer(stream, self.timeout, move |sock| {
                    blocking::send_file(&mut file, sock, &progress, &throttle)
                })
                .await
            }
            Job::ReceiveFile(mut file) if !self.ascii => {
                let mut stream = stream;
                let mut already = 0;
                if inline {
                    match inline::receive_start(&mut stream, &mut file, &progress, self.timeout).await {
                        Ok(inline::Received::Complete(bytes)) => return Ok(bytes),
                        Ok(inline::Received::More(bytes)) => already = bytes,
                        Err(e) if is_network_error(&e) => return Err(Outcome::Network(e)),
                        Err(e) => return Err(Outcome::Storage(e.into())),
                    }
                }
                blocking_transfer(stream, self.timeout, move |sock| {
                    blocking::receive_file(sock, &mut file, already, &progress, &throttle)
                })
                .await
            }
            job => self.run_async(job, stream, false).await,
        }
    }

    /// Any stream (TLS; clear text for listings and ASCII mode): async copies.
    async fn run_async<S>(self, job: Job, mut stream: S, tls: bool) -> Result<u64, Outcome>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let progress = &self.progress;
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
                let received = receive(&mut input, &mut file, progress, &self.throttle)
                    .await
                    .map_err(|e| match e {
                        Direction::Network(e) => Outcome::Network(e),
                        Direction::Storage(e) => Outcome::Storage(e.into()),
                    });
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
                let received = receive(&mut input, &mut upload, progress, &self.throttle).await;
                // Commit only after the data connection ended cleanly; otherwise nothing stays.
                let received = match received {
                    Ok(bytes) => upload.finish().await.map(|()| bytes).map_err(Outcome::Storage),
                    Err(e) => {
                        upload.abort().await;
                        Err(match e {
                            Direction::Network(e) => Outcome::Network(e),
                            Direction::Storage(e) => Outcome::Storage(e.into()),
                        })
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
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn drain<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Run a transfer on a blocking thread. If this future is dropped (ABOR, session end), the
/// kill switch shuts the socket down and the thread's next read or write fails at once.
async fn blocking_transfer<F>(
    stream: TcpStream,
    timeout: std::time::Duration,
    work: F,
) -> Result<u64, Outcome>
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

/// The final reply of a transfer (RFC 959 4.2: 226 on success, 425 when no data
/// connection, 426 when it broke, 45x/55x for file-system errors).
pub(super) fn final_reply(running: &Running, outcome: Result<Outcome, JoinError>) -> Reply {
    let verb = running.verb;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) if e.is_cancelled() => {
            return Reply::new(Code::CONNECTION_CLOSED, "Connection closed; transfer aborted.")
        }
        Err(_) => return Reply::new(Code::LOCAL_ERROR, "Local error in processing."),
    };
    match outcome {
        Outcome::Complete { bytes, refused } => {
            let took_ms = running.started.elapsed().as_millis() as u64;
            tracing::info!(command = verb, path = %running.path, bytes, took_ms, "transfer complete");
            match refused.first() {
                None => Reply::new(Code::TRANSFER_COMPLETE, "Transfer complete."),
                Some((source, refusal)) => Reply::new(
                    Code::TRANSFER_COMPLETE,
                    format!(
                        "Transfer complete; {} other connection(s) refused, first from {}: {}",
                        refused.count(),
                        source.ip(),
                        refusal.reply_text()
                    ),
                ),
            }
        }
        Outcome::NoConnection { error, refused } => {
            tracing::info!(command = verb, %error, refused = refused.count(), "no data connection");
            // The held connection itself refused names its own source; otherwise the first
            // connection refused is the likeliest reason nothing usable arrived.
            let refused_first = match &error {
                DataError::Refused(source, refusal) => Some((source, &**refusal)),
                _ => refused.first().map(|(source, refusal)| (source, refusal)),
            };
            match refused_first {
                None => Reply::new(
                    Code::CANT_OPEN_DATA,
                    format!("Can't open data connection: {error}."),
                ),
                Some((source, refusal)) => Reply::new(
                    Code::CANT_OPEN_DATA,
                    format!(
                        "Can't open data connection: refused connection from {}: {}",
                        source.ip(),
                        refusal.reply_text()
                    ),
                ),
            }
        }
        Outcome::Network(e) => {
            let moved = running.progress.load(std::sync::atomic::Ordering::Relaxed);
            if running.upload.is_some() {
                tracing::warn!(command = verb, path = %running.path, bytes = moved, error = %e, "upload interrupted; object discarded");
                return Reply::new(
                    Code::CONNECTION_CLOSED,
                    "Connection closed; transfer aborted; upload discarded, nothing stored.",
                );
            }
            if matches!(verb, "STOR" | "APPE" | "STOU") {
                // Documented choice: a broken upload keeps what was received, so the client
                // can resume it with REST or APPE.
                tracing::warn!(command = verb, path = %running.path, bytes = moved, error = %e, "upload interrupted; partial file kept");
            } else {
                tracing::info!(command = verb, path = %running.path, bytes = moved, error = %e, "transfer aborted by the network");
            }
            Reply::new(Code::CONNECTION_CLOSED, "Connection closed; transfer aborted.")
        }
        Outcome::Storage(e) if running.upload.is_some() => {
            tracing::warn!(command = verb, path = %running.path, error = %e, "upload failed in storage; object discarded");
            let reply = storage_reply(&e);
            Reply::new(reply.code, "Upload failed in storage; nothing stored.")
        }
        Outcome::Storage(e) => {
            tracing::warn!(command = verb, error = %e, "transfer failed in storage");
            storage_reply(&e)
        }
    }
}

/// Map an object-storage failure to a reply: storage errors as for files, refusals (what
/// object storage cannot do) as 550 with the reason.
pub(super) fn object_reply(e: &crate::storage::ObjectError) -> Reply {
    match e {
        crate::storage::ObjectError::Storage(e) => storage_reply(e),
        crate::storage::ObjectError::Refused(why) => Reply::new(Code::FILE_UNAVAILABLE, *why),
    }
}

/// Map a storage error to a reply: the one place storage error kinds become codes.
pub(super) fn storage_reply(e: &StorageError) -> Reply {
    let (code, text) = match e.kind() {
        ErrorKind::TransientFileNotAvailable => (Code::FILE_UNAVAILABLE_BUSY, "File unavailable (busy)."),
        ErrorKind::PermanentFileNotAvailable => (
            Code::FILE_UNAVAILABLE,
            "The system cannot find the file specified.",
        ),
        ErrorKind::PermanentDirectoryNotAvailable => (
            Code::FILE_UNAVAILABLE,
            "The system cannot find the path specified.",
        ),
        ErrorKind::PermanentDirectoryNotEmpty => (Code::FILE_UNAVAILABLE, "The directory is not empty."),
        ErrorKind::PermissionDenied => (Code::FILE_UNAVAILABLE, "Access is denied."),
        ErrorKind::ConnectionClosed => (Code::CONNECTION_CLOSED, "Connection closed; transfer aborted."),
        ErrorKind::LocalError => (Code::LOCAL_ERROR, "Local error in processing."),
        ErrorKind::PageTypeUnknown => (Code::PAGE_TYPE_UNKNOWN, "Page type unknown."),
        ErrorKind::InsufficientStorageSpaceError => {
            (Code::INSUFFICIENT_STORAGE, "Insufficient storage space.")
        }
        ErrorKind::ExceededStorageAllocationError => (Code::EXCEEDED_STORAGE, "Exceeded storage allocation."),
        ErrorKind::FileNameNotAllowedError => (Code::BAD_FILENAME, "File name not allowed."),
        ErrorKind::CommandNotImplemented => (Code::NOT_IMPLEMENTED, "Command not implemented."),
    };
    Reply::new(code, text)
}
