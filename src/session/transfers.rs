//! Transfer commands: RETR, STOR, APPE, STOU, LIST, NLST, MLSD (RFC 959 4.1.3), REST
//! (RFC 3659 5) and ABOR.
//!
//! A transfer command checks and opens everything before its preliminary reply (a refusal
//! comes before any data connection is used, and a refused STOR never creates or truncates
//! a file), then answers 150 with a [`Prepared`] transfer: the session loop writes the 150
//! and hands the request to [`datachan::start`]. When the transfer ends, [`final_reply`]
//! turns its [`Outcome`] into the 226 (or why not).

use super::answer::{say, Answer, Failure, Handled, Then};
use super::live::StoppedBy;
use super::path::{file_name, resolve};
use super::upload_terms::{Charge, UploadTerms};
use super::{Running, Session};
use crate::control::command::TransferType;
use crate::control::reply::{Code, Reply};
use crate::datachan::rate::{Limiter, Throttle};
use crate::datachan::{self, DataError, Job, Outcome, Request};
use crate::listing;
use crate::rights::Right;
use crate::storage::{UploadGuard, WriteMode};
use std::sync::Arc;
use std::time::SystemTime;

/// The transfer commands, as logs, STAT and the W3C log name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TransferVerb {
    Retr,
    Stor,
    Appe,
    Stou,
    List,
    Nlst,
    Mlsd,
}

impl TransferVerb {
    /// The verb as sent on the wire.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            TransferVerb::Retr => "RETR",
            TransferVerb::Stor => "STOR",
            TransferVerb::Appe => "APPE",
            TransferVerb::Stou => "STOU",
            TransferVerb::List => "LIST",
            TransferVerb::Nlst => "NLST",
            TransferVerb::Mlsd => "MLSD",
        }
    }

    /// Whether the client sends the data.
    pub(super) fn uploads(self) -> bool {
        matches!(self, TransferVerb::Stor | TransferVerb::Appe | TransferVerb::Stou)
    }
}

/// The listing formats of the data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListFormat {
    /// LIST: `ls -l` or IIS (MS-DOS) style.
    List,
    /// NLST: names only.
    Nlst,
    /// MLSD (RFC 3659 7): machine-readable facts.
    Mlsd,
}

/// A transfer checked and opened, to start once its preliminary reply is out.
pub(super) struct Prepared {
    /// What datachan runs.
    request: Request,
    verb: TransferVerb,
    /// The virtual path, for logs and STAT.
    path: String,
    /// The bytes to send, when known (STAT shows "n of size").
    size: Option<u64>,
    /// An object upload: discarded (aborted) on ABOR.
    upload: Option<Arc<UploadGuard>>,
    /// A file upload stopped at its size limit is cut back to this many bytes (0: removed).
    keep_on_overflow: Option<u64>,
    /// An upload charged to its account's quota usage when it ends.
    charge: Option<Charge>,
}

impl Prepared {
    /// Whether the client sends the data (an upload): it waits for the 150 before it does.
    pub(super) fn uploads(&self) -> bool {
        self.request.job.receives()
    }

    /// Start the transfer; the session's task polls it from now on.
    pub(super) fn start(self) -> Running {
        Running {
            transfer: datachan::start(self.request),
            verb: self.verb,
            path: self.path,
            size: self.size,
            started: tokio::time::Instant::now(),
            upload: self.upload,
            keep_on_overflow: self.keep_on_overflow,
            charge: self.charge,
        }
    }
}

impl Session {
    /// ALLO with a size: remembered for the next upload, which is refused before any data
    /// when the file would grow past the account's `max_upload_bytes`.
    pub(super) fn allo(&mut self, size: u64) -> Handled {
        self.allo = Some(size);
        say(Code::OK, format!("ALLO command successful: {size} bytes noted."))
    }

    pub(super) fn rest(&mut self, offset: u64) -> Handled {
        self.rest = offset;
        say(Code::PENDING_FURTHER_INFO, format!("Restarting at {offset}."))
    }

    /// Whether a transfer command may go ahead at all: a data connection must have been set
    /// up, and `tls.require = all` needs PROT P. Checked before any file is opened, so a
    /// refused STOR never truncates or creates a file.
    fn transfer_precheck(&self) -> Result<(), Failure> {
        if self.data.is_none() {
            return Err(Failure::NoDataConnection);
        }
        self.protection_required()?;
        self.data_tls().check()?;
        Ok(())
    }

    /// The preliminary reply and the transfer of `job` on the planned data connection, to be
    /// started by the session loop once the reply is out. `terms`: an upload's limits and
    /// quota charge.
    fn prepare(
        &mut self,
        verb: TransferVerb,
        path: String,
        size: Option<u64>,
        preliminary: Reply,
        job: Job,
        terms: UploadTerms,
    ) -> Handled {
        let plan = self.data.take().ok_or(Failure::NoDataConnection)?;
        self.protection_required()?;
        // CPSV asks for the client role on the next data connection only.
        let client = self.sscn_client || std::mem::take(&mut self.cpsv_once);
        let protection = self.data_tls().protection(job.receives(), client)?;
        let upload = job.upload_guard();
        let request = Request {
            plan,
            throttle: self.throttle_for(&job),
            job,
            protection,
            ascii: self.transfer_type == TransferType::Ascii,
            timeout: std::time::Duration::from_secs(self.settings.config.limits.data_timeout_secs),
            local_ip: self.local.ip(),
            cap: terms.cap(),
        };
        let prepared = Prepared {
            request,
            verb,
            path,
            size,
            upload,
            keep_on_overflow: terms.cap_limited().then_some(terms.keep),
            charge: terms.charge,
        };
        Ok(Answer::new(preliminary).then(Then::Transfer(Box::new(prepared))))
    }

    /// The rate limits for `job`'s direction: this session's, its account's (shared by all
    /// the account's sessions) and the server's; the tightest decides. The account's rates
    /// are set from the account in force now, so a reload reaches the next transfer.
    fn throttle_for(&self, job: &Job) -> Throttle {
        let limits = &self.settings.config.limits;
        let account = self.account();
        let rates = self.login().user_seat.rates();
        rates.set(
            account.limits.download_bytes_per_sec,
            account.limits.upload_bytes_per_sec,
        );
        let (session_rate, account_bucket, global) = if job.receives() {
            (
                limits.upload_bytes_per_sec,
                rates.upload.clone(),
                self.shared.upload_limit.clone(),
            )
        } else {
            (
                limits.download_bytes_per_sec,
                rates.download.clone(),
                self.shared.download_limit.clone(),
            )
        };
        Throttle::new([Limiter::new(session_rate), account_bucket, global])
    }

    pub(super) async fn retr(&mut self, arg: &str, offset: u64) -> Handled {
        let target = resolve(&self.login().cwd, arg);
        self.may_open(&target, Right::Download)?;
        // Opened and checked against its size (REST) before any data connection is used.
        let (download, size) = match self.home().open_read(&target, offset).await {
            Ok(opened) => opened,
            Err(e) => return Err(self.refused_open(&target, Right::Download, e)),
        };
        self.transfer_precheck()?;
        let preliminary = self.retr_opening(&target, size);
        // One info line per transfer, when it ends ("transfer complete" or why not).
        tracing::debug!(path = %target, size, offset, "RETR");
        self.prepare(
            TransferVerb::Retr,
            target,
            Some(size),
            preliminary,
            Job::from(download),
            UploadTerms::default(),
        )
    }

    /// The 150 before a download, with the size as IIS words it.
    fn retr_opening(&self, target: &str, size: u64) -> Reply {
        use std::fmt::Write;
        let mut text = self.opening_text(target, 30);
        let _ = write!(text, "({size} bytes).");
        Reply::new(Code::OPENING, text)
    }

    /// The 150 before an upload, as IIS words it.
    fn stor_opening(&self, target: &str) -> Reply {
        let mut text = self.opening_text(target, 1);
        text.push('.');
        Reply::new(Code::OPENING, text)
    }

    /// "Opening BINARY mode data connection for NAME", with room for `more` bytes; built
    /// by hand, as a `format!` of it costs more than the rest of the command (one per file).
    fn opening_text(&self, target: &str, more: usize) -> String {
        let name = file_name(target);
        let mut text = String::with_capacity(45 + name.len() + more);
        text.push_str("Opening ");
        text.push_str(self.mode_name());
        text.push_str(" mode data connection for ");
        text.push_str(name);
        text
    }

    fn mode_name(&self) -> &'static str {
        match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        }
    }

    /// STOR or APPE (`append`) of `arg`, from `offset` (REST); `announced`: the size ALLO
    /// gave, if any.
    pub(super) async fn stor(
        &mut self,
        arg: &str,
        offset: u64,
        append: bool,
        announced: Option<u64>,
    ) -> Handled {
        let target = resolve(&self.login().cwd, arg);
        // One look at the target decides the right it needs and what the quota charges.
        let before = self.home().file_stat(&target).await.ok().map(|s| s.len);
        let (right, mode, start) = Self::upload_right(offset, append, before);
        self.may_open(&target, right)?;
        self.transfer_precheck()?;
        let mut terms = self.upload_terms(before, start, announced)?;
        let verb = if append {
            TransferVerb::Appe
        } else {
            TransferVerb::Stor
        };
        let (upload, offset) = match self.home().open_write(&target, mode).await {
            Ok(opened) => opened,
            Err(e) => return Err(self.refused_open(&target, right, e)),
        };
        // The file may have grown since the stat (APPE): keep what it held when opened.
        terms.opened_at(start, offset);
        let preliminary = self.stor_opening(&target);
        tracing::debug!(command = verb.as_str(), path = %target, offset, "upload");
        self.prepare(verb, target, None, preliminary, Job::from(upload), terms)
    }

    /// STOU: a new file under a unique name; `announced`: the size ALLO gave, if any.
    pub(super) async fn stou(&mut self, announced: Option<u64>) -> Handled {
        // The directory must take new files; the name is checked again once chosen.
        let dir = self.login().cwd.clone();
        self.may(&resolve(&dir, "fxpd-0000000000000000"), Right::Upload)?;
        self.transfer_precheck()?;
        let mut name = String::new();
        for _ in 0..16 {
            let n = match getrandom::u64() {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "STOU: no random number for a unique name");
                    break;
                }
            };
            let candidate = format!("fxpd-{n:016x}");
            let taken = self
                .home()
                .file_stat(&resolve(&self.login().cwd, &candidate))
                .await
                .is_ok();
            if !taken {
                name = candidate;
                break;
            }
        }
        if name.is_empty() {
            return say(Code::LOCAL_ERROR, "Could not find a unique file name.");
        }
        let target = resolve(&self.login().cwd, &name);
        self.may(&target, Right::Upload)?;
        let terms = self.upload_terms(None, 0, announced)?;
        let (upload, _) = self.home().open_write(&target, WriteMode::New).await?;
        let job = Job::from(upload);
        let preliminary = Reply::new(Code::OPENING, format!("FILE: {name}"));
        self.prepare(TransferVerb::Stou, target, None, preliminary, job, terms)
    }

    pub(super) async fn list(&mut self, format: ListFormat, arg: Option<&str>) -> Handled {
        // The rights first, as for every transfer command (entries() asks again).
        self.may(&resolve(&self.login().cwd, arg.unwrap_or(".")), Right::List)?;
        self.transfer_precheck()?;
        let entries = self.entries(arg).await?;
        let (verb, body) = match format {
            ListFormat::Nlst => (TransferVerb::Nlst, listing::format_nlst(&entries)),
            ListFormat::Mlsd => {
                let dir = resolve(&self.login().cwd, arg.unwrap_or("."));
                let rights = &self.account().rights;
                let home = self.home();
                let body = listing::format_mlsd_perm(&entries, |e| {
                    let path = resolve(&dir, &e.name);
                    let mount_point = home.is_mount_point(&path);
                    super::rights::perm_fact(rights, &path, e.kind, mount_point)
                });
                (TransferVerb::Mlsd, body)
            }
            ListFormat::List => (
                TransferVerb::List,
                listing::format_list(&entries, self.msdos(), SystemTime::now()),
            ),
        };
        let path = resolve(&self.login().cwd, arg.unwrap_or("."));
        let preliminary = Reply::new(Code::OPENING, "Opening ASCII mode data connection for file list.");
        let size = Some(body.len() as u64);
        self.prepare(
            verb,
            path,
            size,
            preliminary,
            Job::Listing(body),
            UploadTerms::default(),
        )
    }

    /// ABOR (RFC 959 4.1.3): a running transfer is stopped and answered with 426 before the
    /// 226 of ABOR itself; a planned data connection is dropped.
    pub(super) async fn abor(&mut self) -> Handled {
        self.data = None;
        let done = Reply::new(Code::TRANSFER_COMPLETE, "ABOR command successful.");
        let Some(running) = self.transfer.take() else {
            return Ok(Answer::new(done));
        };
        let text = self.stop_transfer(running, StoppedBy::Client).await;
        Ok(Answer::new(Reply::new(Code::CONNECTION_CLOSED, text)).and(done))
    }
}

/// The final reply of a transfer (RFC 959 4.2: 226 on success, 425 when no data
/// connection, 426 when it broke, 45x/55x for file-system errors).
pub(super) fn final_reply(running: &Running, outcome: Outcome) -> Reply {
    let verb = running.verb.as_str();
    match outcome {
        Outcome::Cancelled => Reply::new(Code::CONNECTION_CLOSED, "Connection closed; transfer aborted."),
        Outcome::Failed => Reply::new(Code::LOCAL_ERROR, "Local error in processing."),
        Outcome::Complete { bytes, refused } => {
            tracing::info!(command = verb, path = %running.path, bytes, took_ms = running.started.elapsed().as_millis() as u64, "transfer complete");
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
            if running.verb.uploads() {
                // Documented choice: a broken upload keeps what was received, so the client
                // can resume it with REST or APPE.
                tracing::warn!(command = verb, path = %running.path, bytes = moved, error = %e, "upload interrupted; partial file kept");
            } else {
                tracing::info!(command = verb, path = %running.path, bytes = moved, error = %e, "transfer aborted by the network");
            }
            Reply::new(Code::CONNECTION_CLOSED, "Connection closed; transfer aborted.")
        }
        Outcome::TooLarge => {
            tracing::warn!(command = verb, path = %running.path, bytes = running.transfer.moved(), "upload stopped at the account's size limit or quota; partial data removed");
            Reply::new(
                Code::EXCEEDED_STORAGE,
                "Upload too large: stopped at the account's size limit or quota; nothing of it was kept.",
            )
        }
        Outcome::Storage(e) if running.upload.is_some() => {
            tracing::warn!(command = verb, path = %running.path, error = %e, "upload failed in storage; object discarded");
            let code = Failure::Storage(e).reply().code;
            Reply::new(code, "Upload failed in storage; nothing stored.")
        }
        Outcome::Storage(e) => {
            tracing::warn!(command = verb, error = %e, "transfer failed in storage");
            Failure::Storage(e).reply()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TransferVerb;

    #[test]
    fn only_stor_appe_and_stou_upload() {
        use TransferVerb::*;
        for verb in [Retr, Stor, Appe, Stou, List, Nlst, Mlsd] {
            assert_eq!(verb.uploads(), matches!(verb.as_str(), "STOR" | "APPE" | "STOU"));
        }
    }
}
