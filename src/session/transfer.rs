//! Asking `datachan` for a transfer, and turning its outcome into the final reply.

use super::{Running, Session};
use crate::control::reply::{Code, Reply};
use crate::datachan::rate::{Limiter, Throttle};
use crate::datachan::{self, DataError, DataTls, Job, Outcome, Request};
use crate::tls::TlsRequire;
use unftp_core::storage::{Error as StorageError, ErrorKind};

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
            .or_else(|| self.data_tls().check().err().map(|_| tls_unavailable()))
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
        // CPSV asks for the client role on the next data connection only.
        let client = self.sscn_client || std::mem::take(&mut self.cpsv_once);
        let protection = match self.data_tls().protection(job.receives(), client) {
            Ok(protection) => protection,
            Err(_) => return self.send(tls_unavailable()).await,
        };
        let upload = job.upload_guard();
        let request = Request {
            plan,
            throttle: self.throttle_for(&job),
            job,
            protection,
            ascii: self.transfer_type == crate::control::command::TransferType::Ascii,
            timeout: std::time::Duration::from_secs(self.settings.config.limits.data_timeout_secs),
            local_ip: self.local.ip(),
        };
        self.send(preliminary).await?;
        self.transfer = Some(Running {
            transfer: datachan::start(request),
            verb,
            path,
            size,
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

    /// What this session protects its data connections with: PROT P promised TLS on every
    /// one, and [`DataTls`] refuses when a reload removed `[tls]` since (or the session has no
    /// TLS acceptors): never clear text.
    fn data_tls(&self) -> DataTls<'_> {
        DataTls {
            private: self.prot_private,
            tls: self.settings.tls.as_ref(),
            acceptors: self.tls_acceptors.as_ref(),
        }
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

/// The final reply of a transfer (RFC 959 4.2: 226 on success, 425 when no data
/// connection, 426 when it broke, 45x/55x for file-system errors).
pub(super) fn final_reply(running: &Running, outcome: Outcome) -> Reply {
    let verb = running.verb;
    match outcome {
        Outcome::Cancelled => Reply::new(Code::CONNECTION_CLOSED, "Connection closed; transfer aborted."),
        Outcome::Failed => Reply::new(Code::LOCAL_ERROR, "Local error in processing."),
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
            let moved = running.transfer.moved();
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
