//! What an upload may write and what it is charged: the right it needs, its size limit
//! (`max_upload_bytes`), its quota room drawn on its account's running uploads
//! ([`crate::auth::inflight`]), and, when it ends whichever way, its file cut back past a
//! limit and its charge settled.

use super::answer::Failure;
use super::{Running, Session};
use crate::auth::inflight::Draw;
use crate::datachan::UploadCap;
use crate::rights::Right;
use crate::storage::WriteMode;
use std::sync::Arc;

/// An upload to be charged to its account's quota usage when it ends: the difference its
/// file's size (and existence) made.
#[derive(Debug, Clone)]
pub(super) struct Charge {
    /// The account charged.
    pub(super) account: String,
    /// The file's size before the upload; `None`: it did not exist.
    pub(super) before: Option<u64>,
    /// Where the upload starts writing.
    pub(super) start: u64,
    /// Its share of the account's room while it runs; dropped with the charge, once settled.
    pub(super) draw: Arc<Draw>,
}

/// An upload's limits and quota charge (none for a download or a listing).
#[derive(Debug, Default)]
pub(super) struct UploadTerms {
    /// The most bytes it may write (`max_upload_bytes` less where it starts).
    max_bytes: Option<u64>,
    /// What its file is cut back to when a limit is crossed (its size before; 0: removed).
    pub(super) keep: u64,
    /// The quota charge, with the upload's draw on its account's room.
    pub(super) charge: Option<Charge>,
}

impl UploadTerms {
    /// The file was opened at `offset`, not at the `start` the limits were set for (an APPE
    /// whose file grew since it was measured): it is cut back to what it held when opened, and
    /// the size limit counts from there.
    pub(super) fn opened_at(&mut self, start: u64, offset: u64) {
        let grown = offset.saturating_sub(start);
        self.max_bytes = self.max_bytes.map(|max| max.saturating_sub(grown));
        self.keep = offset;
    }

    /// The draw the upload's bytes are taken from: an account with a byte quota.
    fn byte_room(&self) -> Option<&Arc<Draw>> {
        self.charge.as_ref().map(|c| &c.draw).filter(|d| d.is_limited())
    }

    /// What the transfer counts the upload's bytes against.
    pub(super) fn cap(&self) -> UploadCap {
        UploadCap {
            max_bytes: self.max_bytes,
            quota: self.byte_room().cloned(),
        }
    }

    /// Whether a limit can stop the upload.
    pub(super) fn cap_limited(&self) -> bool {
        self.max_bytes.is_some() || self.byte_room().is_some()
    }
}

impl Session {
    /// Which right an upload needs, and how its file is opened: STOR of a new file is
    /// `upload` (opened exclusively), over an existing one `overwrite`; APPE to an existing
    /// file, and STOR after REST, are `append`; APPE of a missing file creates it (`upload`).
    /// Also returns where the upload starts writing. `existing`: the target's size, if it is
    /// there.
    pub(super) fn upload_right(offset: u64, append: bool, existing: Option<u64>) -> (Right, WriteMode, u64) {
        match (append, offset, existing) {
            (true, _, Some(len)) => (Right::Append, WriteMode::Append, len),
            (true, _, None) => (Right::Upload, WriteMode::Append, 0),
            (false, 0, Some(_)) => (Right::Overwrite, WriteMode::At(0), 0),
            (false, 0, None) => (Right::Upload, WriteMode::New, 0),
            (false, offset, _) => (Right::Append, WriteMode::At(offset), offset),
        }
    }

    /// The limits of an upload that writes from `start` into a file of `before` bytes
    /// (`None`: a new file), refused before any data when they leave it nothing, or when the
    /// size ALLO `announced` does not fit: the account's `max_upload_bytes`, and its quota
    /// (see [`Session::quota_charge`]). A file is cut back to `start` when they are crossed.
    pub(super) fn upload_terms(
        &self,
        before: Option<u64>,
        start: u64,
        announced: Option<u64>,
    ) -> Result<UploadTerms, Failure> {
        let max_bytes = match self.account().limits.max_upload_bytes {
            None => None,
            // SECURITY: checked before the file is opened, created or truncated.
            Some(max) if start > max || announced.is_some_and(|size| size > max - start) => {
                return Err(Failure::UploadTooLarge { max });
            }
            Some(max) => Some(max - start),
        };
        Ok(UploadTerms {
            max_bytes,
            keep: start,
            charge: self.quota_charge(before, start, announced)?,
        })
    }

    /// The quota charge of an upload that writes from `start` into a file of `before` bytes,
    /// with its draw on the account's room: what the quota leaves after the state file's
    /// usage and what the account's running uploads have written or are creating. Refused
    /// before any data when a new file would pass `quota_files`, when no byte is left, or
    /// when `announced` does not fit. `None`: the account has no quota.
    fn quota_charge(
        &self,
        before: Option<u64>,
        start: u64,
        announced: Option<u64>,
    ) -> Result<Option<Charge>, Failure> {
        let limits = &self.account().limits;
        if limits.quota_bytes.is_none() && limits.quota_files.is_none() {
            return Ok(None);
        }
        let account = self.login().user.name.clone();
        // SECURITY: the draw is taken before the usage is read (see `QuotaBook::draw`), and
        // from now on every running upload of the account takes its bytes from one room.
        let mut draw = self.shared.quotas.draw(&account, before.is_none());
        let unsettled = draw.unsettled();
        let used = self.shared.quotas.usage(&account).map_err(|e| {
            tracing::error!(error = %e, "quota usage unreadable: upload refused");
            Failure::QuotaUnavailable
        })?;
        if let Some(quota) = limits.quota_files {
            // SECURITY: checked before the file is opened or created.
            if before.is_none() && used.files.saturating_add(unsettled.files) >= quota {
                return Err(Failure::QuotaExceeded { what: "files", quota });
            }
        }
        if let Some(quota) = limits.quota_bytes {
            // Written bytes up to the old end replace bytes already counted; past it they
            // grow the file (a STOR over a file replaces all of it: start is 0).
            let room = i128::from(quota) + i128::from(before.unwrap_or(0))
                - i128::from(used.bytes)
                - i128::from(unsettled.bytes)
                - i128::from(start);
            let room = u64::try_from(room.max(0)).unwrap_or(u64::MAX);
            if room == 0 || announced.is_some_and(|size| size > room) {
                return Err(Failure::QuotaExceeded { what: "bytes", quota });
            }
            draw.limit_to(room);
        }
        Ok(Some(Charge {
            account,
            before,
            start,
            draw: Arc::new(draw),
        }))
    }

    /// An upload stopped at its size limit: its file is cut back to what it held before (or
    /// removed), before the 552 goes out.
    pub(super) async fn discard_overflow(&self, running: &Running) {
        let Some(keep) = running.keep_on_overflow else {
            return;
        };
        if let Some(l) = self.logged_in() {
            if let Err(e) = l.home.discard_upload(&running.path, keep).await {
                tracing::error!(path = %running.path, error = ?e, "cannot remove the rest of an upload stopped at its size limit");
            }
        }
    }

    /// An upload ended (whatever its outcome, after an overflow was discarded; `stopped`: by
    /// ABOR, a kick or the end of the session): its account's quota usage takes the
    /// difference it made to its file. Every path that ends an upload comes here, or
    /// stopping an upload just before its end would store anything without a charge.
    pub(super) async fn settle_charge(&self, running: &Running, stopped: bool) {
        let (Some(charge), Some(l)) = (&running.charge, self.logged_in()) else {
            return;
        };
        if stopped && running.upload.is_some() {
            // A stopped object upload is discarded: it changed nothing.
            return;
        }
        let mut after = l.home.file_stat(&running.path).await.ok().map(|s| s.len);
        if stopped {
            // SECURITY: a stopped file upload's last write to its file may land after this look;
            // what the upload took from its room is written, or being written.
            let taken = charge.start.saturating_add(charge.draw.taken());
            after = after.map(|len| len.max(taken));
        }
        let mut bytes = i128::from(after.unwrap_or(0)) - i128::from(charge.before.unwrap_or(0));
        let mut files = i64::from(after.is_some()) - i64::from(charge.before.is_some());
        // SECURITY: in a virtual folder the file may have been another account's: shrinking
        // it frees nothing (see DELE).
        if l.home.in_folder(&running.path) {
            (bytes, files) = (bytes.max(0), files.max(0));
        }
        self.shared.quotas.charge(&charge.account, bytes, files);
    }
}
