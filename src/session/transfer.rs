//! Starting a transfer in its own task, and turning its outcome into the final reply.

use super::{DataPlan, Running, Session};
use crate::control::reply::{Code, Reply};
use crate::datachan::blocking;
use crate::datachan::transfer::{send, Inbound};
use crate::datachan::{connect_active, DataError};
use crate::policy::Refusal;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio::task::JoinError;
use unftp_core::storage::{Error as StorageError, ErrorKind, StorageBackend};

/// What a transfer moves.
pub(super) enum Job {
    /// Send a file (or a listing) to the client.
    Send(Box<dyn AsyncRead + Send + Sync + Unpin>),
    /// Receive a file into storage at `path`, starting at byte `offset` (ASCII mode).
    Receive { path: String, offset: u64 },
    /// Send an open file from its position (binary mode, sendfile where available).
    SendFile(std::fs::File),
    /// Write the data into an open file at its position (binary mode).
    ReceiveFile(std::fs::File),
}

/// How a transfer ended.
pub(super) enum Outcome {
    /// All bytes moved. `refused` lists passive connections the policy turned away first.
    Complete {
        bytes: u64,
        refused: Vec<(SocketAddr, Refusal)>,
    },
    /// The data connection never came about.
    NoConnection {
        error: DataError,
        refused: Vec<(SocketAddr, Refusal)>,
    },
    /// The data connection broke.
    Network(std::io::Error),
    /// The storage back-end failed.
    Storage(StorageError),
}

impl Session {
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
        let Some(login) = self.logged_in() else {
            return Ok(());
        };
        let policy = self.shared.policy.clone();
        let who = login.who.clone();
        let fs = login.fs.clone();
        let user = login.user.clone();
        let ascii = self.transfer_type == crate::control::command::TransferType::Ascii;
        let timeout = std::time::Duration::from_secs(self.settings.config.limits.data_timeout_secs);
        let local_ip = self.local.ip();
        let progress = Arc::new(AtomicU64::new(0));
        let task_progress = progress.clone();
        self.send(preliminary).await?;
        let handle = tokio::spawn(async move {
            let mut refused = Vec::new();
            let connected = match plan {
                DataPlan::Passive(listener) => {
                    let deadline = tokio::time::Instant::now() + timeout;
                    listener.accept(&policy, &who, deadline, &mut refused).await
                }
                DataPlan::Active(target) => connect_active(target, local_ip, timeout).await,
            };
            let mut stream: TcpStream = match connected {
                Ok(s) => s,
                Err(error) => return Outcome::NoConnection { error, refused },
            };
            let result = match job {
                Job::Send(mut reader) => send(&mut reader, &mut stream, ascii, &task_progress)
                    .await
                    .map_err(Outcome::Network),
                Job::Receive { path, offset } => {
                    let input = Inbound::new(stream, ascii, task_progress);
                    fs.put(&user, input, path, offset).await.map_err(Outcome::Storage)
                }
                Job::SendFile(mut file) => {
                    blocking_transfer(stream, timeout, move |sock| {
                        blocking::send_file(&mut file, sock, &task_progress)
                    })
                    .await
                }
                Job::ReceiveFile(mut file) => {
                    blocking_transfer(stream, timeout, move |sock| {
                        blocking::receive_file(sock, &mut file, &task_progress)
                    })
                    .await
                }
            };
            match result {
                Ok(bytes) => Outcome::Complete { bytes, refused },
                Err(outcome) => outcome,
            }
        });
        self.transfer = Some(Running {
            handle,
            verb,
            path,
            size,
            progress,
        });
        Ok(())
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
            tracing::info!(command = verb, bytes, "transfer complete");
            match refused.first() {
                None => Reply::new(Code::TRANSFER_COMPLETE, "Transfer complete."),
                Some((source, refusal)) => Reply::new(
                    Code::TRANSFER_COMPLETE,
                    format!(
                        "Transfer complete; {} other connection(s) refused, first from {}: {}",
                        refused.len(),
                        source.ip(),
                        refusal.reply_text()
                    ),
                ),
            }
        }
        Outcome::NoConnection { error, refused } => {
            tracing::info!(command = verb, %error, refused = refused.len(), "no data connection");
            match refused.first() {
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
            if matches!(verb, "STOR" | "APPE" | "STOU") {
                // Documented choice: a broken upload keeps what was received, so the client
                // can resume it with REST or APPE.
                tracing::warn!(command = verb, path = %running.path, bytes = moved, error = %e, "upload interrupted; partial file kept");
            } else {
                tracing::info!(command = verb, path = %running.path, bytes = moved, error = %e, "transfer aborted by the network");
            }
            Reply::new(Code::CONNECTION_CLOSED, "Connection closed; transfer aborted.")
        }
        Outcome::Storage(e) => {
            tracing::warn!(command = verb, error = %e, "transfer failed in storage");
            storage_reply(&e)
        }
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
