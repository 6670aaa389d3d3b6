//! The users file reloaded when it changes, without a signal: `fxpd user add` run by hand,
//! or an edit, takes effect within a few seconds.
//!
//! # How
//! One task looks at the file's metadata every [`POLL`] (modification time, size and, on Unix,
//! device and inode, so an atomic replace by rename is seen even within one timestamp tick).
//! A change is a reload request through [`Shared::reload_from`], the very path SIGHUP takes:
//! every source is read again, a users file with an error is refused whole (the structured
//! `reload_refused` event) and the previous one stays.
//!
//! # Decisions
//! - Polling, not inotify/kqueue/ReadDirectoryChangesW: one `stat` every two seconds costs
//!   nothing, needs no new dependency and no per-OS code beyond the inode, works on network
//!   file systems where change notifications are unreliable, and sees a file replaced by
//!   rename (editors, `fxpd user`) without re-arming a watch on a new inode.
//! - A change is acted on only once the metadata is the same at two polls in a row, so a
//!   file being written is not read half-way. If a slow writer pauses longer than that, the
//!   strict parse refuses the partial file (fail closed) and the finished file, whose metadata
//!   differs again, is read at the next stable pair of polls.
//! - Each metadata state is tried once: a refused file is not re-read every two seconds, and a
//!   file a SIGHUP (or `POST /api/reload`) already read is not read again. The metadata is taken
//!   just before each reload reads the file, so an edit during that read is seen as a change.
//! - A users file that disappears is a change too: the reload fails and the previous users stay.

use super::state::{Reread, Shared};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the users file's metadata is looked at.
pub const POLL: Duration = Duration::from_secs(2);

/// What the watch compares: a file whose fingerprint is unchanged is taken as unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    /// Device and inode on Unix (a file replaced by rename has a new one); 0 elsewhere.
    id: (u64, u64),
}

/// The fingerprint of the file at `path`, or `None` if it cannot be read (missing).
pub fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: meta.modified().ok(),
        len: meta.len(),
        id: file_id(&meta),
    })
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// The users file as a reload last found it, just before reading it.
pub type Tried = Option<(PathBuf, Option<Fingerprint>)>;

/// Watches the users file in force until the server shuts down; each stable change reloads
/// through `reread` ([`Shared::reload_from`]).
pub async fn watch(shared: Arc<Shared>, reread: Reread) {
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What the last reload (or the start) read, as this task last saw it.
    let mut tried_seen: Tried = None;
    // The fingerprint the server has read or was last asked to read.
    let mut target: Option<Fingerprint> = None;
    // The previous poll's fingerprint.
    let mut previous: Option<Fingerprint> = None;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let Some(path) = shared.settings().config.users_file.clone() else {
            continue;
        };
        let now = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || fingerprint(&path))
                .await
                .unwrap_or(None)
        };
        let tried = shared.users_file_tried();
        if tried != tried_seen {
            // A reload ran (or the server started): what it read is the new baseline. A
            // reload that switched to another users file read that file just now.
            target = match &tried {
                Some((tried_path, seen)) if *tried_path == path => *seen,
                _ => now,
            };
            previous = target;
            tried_seen = tried;
        }
        if now != previous {
            // Changing now: wait until two polls agree.
            previous = now;
            continue;
        }
        if now == target {
            continue;
        }
        target = now;
        tracing::info!(
            event = "users_file_changed",
            file = %path.display(),
            "the users file changed; reloading"
        );
        let _ = shared.reload_from(&reread).await;
    }
}
