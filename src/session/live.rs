//! What a session publishes for the admin listener ([`crate::server::live`]) and counts for
//! the metrics ([`crate::server::metrics`]), how it obeys a kick, and how a running transfer
//! is stopped (by ABOR, a kick or the end of the session). The task calls these at a few
//! points: after each command, when a transfer starts, ends or is stopped, when it is kicked.
//! Nothing here runs per byte: the bytes moved are the transfer's own counter.

use super::transfers::TransferVerb;
use super::{Running, Session};
use crate::control::reply::{Code, Reply};
use crate::server::live::{Direction, LiveTransfer, Registration};
use crate::storage::StorageKind;

/// The session's side of the live registry.
pub(super) struct Live {
    /// Its entry in the registry (gone when this drops).
    pub(super) registration: Registration,
    /// The storage label of every transfer (`fs`, `s3`).
    storage: &'static str,
    /// The running transfer replaces its file from the first byte (STOR or STOU without
    /// REST, on the file system): a kick removes what it wrote. APPE and a resumed STOR keep
    /// what was there before, so a kick leaves their file as ABOR would.
    fresh_upload: bool,
    /// The same for a transfer the command being handled may start.
    next_fresh: bool,
}

impl Live {
    /// The session's registration, with the storage kind for the metrics.
    pub(super) fn new(registration: Registration, storage: StorageKind) -> Live {
        Live {
            registration,
            storage: match storage {
                StorageKind::Fs => "fs",
                StorageKind::S3 => "s3",
            },
            fresh_upload: false,
            next_fresh: false,
        }
    }
}

impl TransferVerb {
    /// Which way the bytes go.
    fn direction(self) -> Direction {
        match self {
            TransferVerb::Retr => Direction::Download,
            TransferVerb::Stor | TransferVerb::Appe | TransferVerb::Stou => Direction::Upload,
            TransferVerb::List | TransferVerb::Nlst | TransferVerb::Mlsd => Direction::Listing,
        }
    }
}

impl Session {
    /// After a command: publish the user, directory and TLS state (the registry copies only
    /// what changed), and count a transfer the command ended (ABOR).
    pub(super) fn publish(&mut self) {
        let (user, cwd) = match self.logged_in() {
            Some(l) => (Some(l.user.name.as_str()), Some(l.cwd.as_str())),
            None => (None, None),
        };
        let tls = self.conn.get_ref().is_tls();
        self.live.registration.publish(user, cwd, tls);
        if self.transfer.is_none() {
            self.transfer_ended("aborted");
        }
    }

    /// Before a command runs: remember whether a transfer it starts will replace its file
    /// from the first byte (`rest` is the REST offset in force, `replaces` whether the command
    /// is STOR or STOU).
    pub(super) fn note_upload(&mut self, replaces: bool) {
        self.live.next_fresh = replaces && self.rest == 0;
    }

    /// A transfer has just started: publish it and count it.
    pub(super) fn transfer_started(&mut self, running: &Running) {
        self.live.fresh_upload = self.live.next_fresh;
        let direction = running.verb.direction();
        self.live.registration.transfer_started(LiveTransfer {
            path: running.path.clone(),
            direction,
            size: running.size,
            progress: running.transfer.progress(),
            started: running.started.into_std(),
        });
        self.shared.metrics.transfer_started(direction, self.live.storage);
    }

    /// The published transfer has ended with `outcome`: counted once with the bytes its
    /// counter shows, whichever path ended it.
    pub(super) fn transfer_ended(&mut self, outcome: &'static str) {
        let Some(ended) = self.live.registration.transfer_ended() else {
            return;
        };
        let bytes = ended.progress.bytes();
        self.shared
            .metrics
            .transfer_finished(ended.direction, outcome, self.live.storage, bytes);
    }

    /// An operator kicked this session: the running transfer stops as on ABOR (an object
    /// upload is discarded; a file upload that replaced its file is removed). Returns the
    /// replies the task sends before it ends the session: 426 for the transfer, if one ran,
    /// then 421.
    pub(super) async fn kicked(&mut self) -> Vec<Reply> {
        tracing::warn!(target: "fxpd::security", event = "session_kicked", session = self.id, "closed by the server's operator");
        let mut replies = Vec::new();
        if let Some(running) = self.transfer.take() {
            let text = self.stop_transfer(running, StoppedBy::Operator).await;
            self.transfer_ended("kicked");
            replies.push(Reply::new(Code::CONNECTION_CLOSED, text));
        }
        replies.push(Reply::new(
            Code::SERVICE_NOT_AVAILABLE,
            "Closed by the server's operator.",
        ));
        replies
    }
}

/// Who stopped a running transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoppedBy {
    /// The client: ABOR.
    Client,
    /// An operator's kick: a file upload that replaced its file from the first byte is
    /// removed too.
    Operator,
    /// The end of the session (the control connection closed, a timeout): no reply follows,
    /// and an object upload is left to its guard, which aborts it in the background, so the
    /// session ends without waiting for the bucket.
    SessionEnd,
}

impl StoppedBy {
    fn name(self) -> &'static str {
        match self {
            StoppedBy::Client => "client",
            StoppedBy::Operator => "operator",
            StoppedBy::SessionEnd => "end of the session",
        }
    }
}

impl Session {
    /// Stop a running transfer, whoever asks; the text of the 426 that says so. An object
    /// upload is discarded; the upload's quota charge is settled once its file is as it stays,
    /// and the transfer gets its W3C line with 426. Every path that stops a transfer comes
    /// here, so none can leave a file uncharged or unlogged.
    pub(super) async fn stop_transfer(&mut self, mut running: Running, by: StoppedBy) -> &'static str {
        running.transfer.abort();
        let verb = running.verb.as_str();
        tracing::info!(command = verb, path = %running.path, "transfer aborted by the {}", by.name());
        let text = match &running.upload {
            // The object upload is aborted before the reply says so.
            Some(upload) => {
                if by != StoppedBy::SessionEnd {
                    upload.discard().await;
                }
                "Connection closed; transfer aborted; upload discarded, nothing stored."
            }
            None => "Connection closed; transfer aborted.",
        };
        let fresh_file = running.verb.uploads() && running.upload.is_none() && self.live.fresh_upload;
        if by == StoppedBy::Operator && fresh_file {
            match self.home().delete(&running.path).await {
                Ok(()) => tracing::info!(path = %running.path, "partial upload removed after the kick"),
                Err(e) => {
                    tracing::warn!(path = %running.path, error = ?e, "partial upload could not be removed after the kick")
                }
            }
        }
        self.settle_charge(&running, true).await;
        self.log_transfer(&running, Code::CONNECTION_CLOSED.0);
        text
    }
}
