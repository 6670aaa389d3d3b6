//! Directory listing formats: `LIST` (UNIX `ls -l` style or MS-DOS/IIS style), `NLST` (RFC 959
//! section 4.1.3) and the machine-readable facts of `MLSD`/`MLST` (RFC 3659 section 7).
//!
//! Everything here is pure formatting: the caller reads the directory from the storage back-end,
//! turns each item into an [`Entry`], sorts the entries by name and sends the bytes on the data
//! connection (or, for `MLST`, inside the 250 reply).
//!
//! Rules shared by every format:
//! - Times are printed in UTC, never in the server's local time zone, so a listing does not depend on
//!   where the daemon runs (RFC 3659 requires UTC for `modify`; `LIST` follows suit).
//! - Lines end with CRLF.
//! - SECURITY: an entry whose name (or, for `LIST`, symlink target) contains CR or LF is left out of
//!   `LIST`, `NLST` and `MLSD` (see [`is_safe_name`]). Otherwise a file named `"a\r\n226 ok"` would put
//!   a reply-looking line into the listing and break every client's line parser.
//! - Owner and group are always printed as `ftp`: uids and gids are not leaked.
//! - SECURITY: a symlink target is shown only when it lies inside the user's home, and then as a
//!   path the user can use (see [`LinkScope::visible_target`]); `passwd_link -> /etc/passwd` is
//!   listed as `passwd_link`, and a link's size is the length of the target shown (0 when none),
//!   so not even the length of an outside path is disclosed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Timelike, Utc};
use unftp_core::storage::{Fileinfo, Metadata};

mod scope;

pub use scope::LinkScope;

/// The FEAT line for `MLST` (RFC 3659 section 7.8): every fact we emit, each marked `*` because all
/// of them are always on (`OPTS MLST` may not turn any off).
pub const MLST_FEAT: &str = "MLST type*;size*;modify*;perm*;unix.mode*;";

/// Only the `rwxrwxrwx` bits are shown; setuid/setgid/sticky and the file-type bits are dropped.
const PERM_MASK: u32 = 0o777;

/// `ls -l` shows the time of day instead of the year for files modified less than half a
/// Gregorian year ago (the GNU `ls` rule: 365.2425 days / 2).
const SIX_MONTHS: Duration = Duration::from_secs(31_556_952 / 2);

/// ... or at most this far in the future (a little clock skew between hosts is normal).
const FUTURE_SLACK: Duration = Duration::from_secs(60 * 60);

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (anything that is neither a directory nor a symlink is listed as a file).
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed: size and mode are the link's own).
    Symlink,
}

/// One directory entry, independent of the storage back-end.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's own name (the last path component), not a path.
    pub name: String,
    /// File, directory or symlink.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time; `None` when the back-end cannot tell. `LIST` then prints the UNIX
    /// epoch and `MLSD` leaves the `modify` fact out.
    pub modified: Option<SystemTime>,
    /// Unix permission bits, e.g. `0o644`; only the `0o777` bits are ever shown.
    pub mode: u32,
    /// Hard link count, shown by the UNIX `LIST` style.
    pub links: u64,
    /// Owner uid; kept for the caller's use but never printed.
    pub uid: u32,
    /// Group gid; kept for the caller's use but never printed.
    pub gid: u32,
    /// Symlink target as the user may see it (see [`LinkScope::visible_target`]), shown by the
    /// UNIX `LIST` style as `name -> target`; `None` for other entries and for targets outside
    /// the home.
    pub target: Option<String>,
}

impl Entry {
    /// Builds an entry from one item of `StorageBackend::list`; `links` as for
    /// [`Entry::from_metadata`].
    ///
    /// Returns `None` when the path has no final component or its name is not valid UTF-8; the
    /// caller skips such items (FTP paths in fxpd are UTF-8, RFC 2640, so the client could not name
    /// the file in a later command anyway).
    pub fn from_fileinfo<M: Metadata>(
        fi: &Fileinfo<std::path::PathBuf, M>,
        links: Option<&LinkScope<'_>>,
    ) -> Option<Entry> {
        let name = fi.path.file_name()?.to_str()?;
        Some(Entry::from_metadata(name, &fi.metadata, links))
    }

    /// Builds an entry named `name` from back-end metadata (e.g. for `MLST` of a single path).
    ///
    /// The mode is masked to `0o777`: `unftp-sbe-fs` returns the whole `st_mode` (file-type bits
    /// included) and `unftp-core`'s default is `0o7755`. A symlink's target is kept only as
    /// [`LinkScope::visible_target`] allows (never without a scope), and its size is the length
    /// of that target (0 without one), as `ls -l` shows a link's size.
    pub fn from_metadata<M: Metadata>(name: &str, m: &M, links: Option<&LinkScope<'_>>) -> Entry {
        let kind = if m.is_symlink() {
            Kind::Symlink
        } else if m.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        };
        let target = match (kind, m.readlink(), links) {
            (Kind::Symlink, Some(target), Some(scope)) => scope.visible_target(target),
            _ => None,
        };
        let size = match kind {
            Kind::Symlink => target.as_ref().map_or(0, |t| t.len() as u64),
            _ => m.len(),
        };
        Entry {
            name: name.to_owned(),
            kind,
            size,
            modified: m.modified().ok(),
            mode: m.permissions().0 & PERM_MASK,
            links: m.links(),
            uid: m.uid(),
            gid: m.gid(),
            target,
        }
    }
}

/// True when `name` may be written into a listing or reply: it contains neither CR nor LF.
///
/// The listing functions apply this themselves; a caller formatting a single entry with
/// [`mlsx_facts`] (for `MLST`) must check it first.
pub fn is_safe_name(name: &str) -> bool {
    !name.contains(['\r', '\n'])
}

/// `LIST` output: one CRLF-terminated line per entry, in the order given.
///
/// With `msdos == false` the UNIX style of vsftpd (`ls -l`):
/// `-rw-r--r--    1 ftp      ftp          1234 Nov 24 20:04 name` — mode string, link count
/// right-aligned in 4, owner and group `ftp` left-aligned in 8, size right-aligned in 8 (wider sizes
/// push the rest of the line right), date `%b %e %H:%M` when the entry was modified within the past
/// six months (or up to one hour in the future, relative to `now`), else `%b %e  %Y`, then the name;
/// a symlink is shown as `name -> target`.
///
/// With `msdos == true` the IIS style:
/// `11-24-26  08:04PM       <DIR>          name` or `11-24-26  08:04PM                 1234 name`.
/// Columns (0-based): date `%m-%d-%y` at 0..8, two spaces, time `%I:%M%p` at 10..17; a directory
/// has `<DIR>` at 24..29, a file's size ends at column 37; the name always starts at column 39.
/// Symlinks are shown as files (no target).
///
/// Times are UTC. Entries whose name or symlink target contains CR or LF are skipped.
pub fn format_list(entries: &[Entry], msdos: bool, now: SystemTime) -> Vec<u8> {
    let mut out = String::new();
    for entry in entries {
        // SECURITY: a CR or LF would end the line early and let a file name forge listing lines.
        let target_ok = entry.target.as_deref().is_none_or(is_safe_name);
        if !is_safe_name(&entry.name) || !target_ok {
            continue;
        }
        if msdos {
            push_msdos_line(&mut out, entry);
        } else {
            push_unix_line(&mut out, entry, now);
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// `NLST` output: the names only, one per CRLF-terminated line. Names with CR or LF are skipped.
pub fn format_nlst(entries: &[Entry]) -> Vec<u8> {
    let mut out = String::new();
    for entry in entries.iter().filter(|e| is_safe_name(&e.name)) {
        out.push_str(&entry.name);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// RFC 3659 facts line for `MLSD`/`MLST`, without a line terminator:
/// `type=file;size=1234;modify=20261124200400;perm=r;unix.mode=0644; name`.
///
/// - `type` (7.5.1): `file`, `dir`, `cdir` when `is_cdir` (the listed directory itself, or an entry
///   named `.`), `pdir` for a directory named `..`; a symlink is `OS.unix=slink:target` (the target
///   is left out when unknown or when it contains `;`, which would end the fact).
/// - `size` (7.5.7): files only.
/// - `modify` (7.5.3): `YYYYMMDDHHMMSS` in UTC; omitted when the time is unknown or outside years
///   1970..=9999.
/// - `perm` (7.5.5): files `r`, plus `adfw` when `writable` (APPE, DELE, RNFR, STOR); directories
///   `el` (CWD, LIST), plus `cdfmp` when `writable` (create files, delete, rename, MKD, delete
///   contents); symlinks `r`, plus `df` when `writable`.
/// - `unix.mode`: the permission bits as four octal digits.
///
/// One space separates the facts from the name. The caller must check [`is_safe_name`] first.
pub fn mlsx_facts(entry: &Entry, writable: bool, is_cdir: bool) -> String {
    mlsx_facts_perm(entry, default_perm(entry.kind, writable), is_cdir)
}

/// The `perm` fact of the old all-or-nothing model: everything when `writable`, reading only
/// otherwise (see [`mlsx_facts`]).
pub fn default_perm(kind: Kind, writable: bool) -> &'static str {
    match (kind, writable) {
        (Kind::File, false) => "r",
        (Kind::File, true) => "radfw",
        (Kind::Dir, false) => "el",
        (Kind::Dir, true) => "elcdfmp",
        (Kind::Symlink, false) => "r",
        (Kind::Symlink, true) => "rdf",
    }
}

/// [`mlsx_facts`] with the `perm` fact given (the session derives it from the account's
/// rights); `perm` must hold only RFC 3659 permission letters.
pub fn mlsx_facts_perm(entry: &Entry, perm: &str, is_cdir: bool) -> String {
    let mut out = String::from("type=");
    match entry.kind {
        Kind::Dir if is_cdir || entry.name == "." => out.push_str("cdir"),
        Kind::Dir if entry.name == ".." => out.push_str("pdir"),
        Kind::Dir => out.push_str("dir"),
        Kind::File => out.push_str("file"),
        Kind::Symlink => {
            out.push_str("OS.unix=slink");
            if let Some(target) = entry.target.as_deref().filter(|t| !t.contains([';', '\r', '\n'])) {
                out.push(':');
                out.push_str(target);
            }
        }
    }
    out.push(';');
    if entry.kind == Kind::File {
        out.push_str(&format!("size={};", entry.size));
    }
    if let Some(t) = entry.modified.filter(|t| *t >= UNIX_EPOCH).and_then(time_val) {
        out.push_str("modify=");
        out.push_str(&t);
        out.push(';');
    }
    out.push_str(&format!("perm={perm};unix.mode={:04o}; ", entry.mode & PERM_MASK));
    out.push_str(&entry.name);
    out
}

/// `MLSD` body: one [`mlsx_facts`] line per entry (never `cdir`), CRLF-terminated. Entries whose
/// name contains CR or LF are skipped.
pub fn format_mlsd(entries: &[Entry], writable: bool) -> Vec<u8> {
    format_mlsd_perm(entries, |e| default_perm(e.kind, writable).to_owned())
}

/// [`format_mlsd`] with each entry's `perm` fact from `perm`.
pub fn format_mlsd_perm(entries: &[Entry], perm: impl Fn(&Entry) -> String) -> Vec<u8> {
    let mut out = String::new();
    for entry in entries.iter().filter(|e| is_safe_name(&e.name)) {
        out.push_str(&mlsx_facts_perm(entry, &perm(entry), false));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// One UNIX-style line without CRLF.
fn push_unix_line(out: &mut String, entry: &Entry, now: SystemTime) {
    let type_char = match entry.kind {
        Kind::File => '-',
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
    };
    out.push(type_char);
    for shift in [6u32, 3, 0] {
        let bits = (entry.mode >> shift) & 0o7;
        out.push(if bits & 0o4 != 0 { 'r' } else { '-' });
        out.push(if bits & 0o2 != 0 { 'w' } else { '-' });
        out.push(if bits & 0o1 != 0 { 'x' } else { '-' });
    }
    let modified = entry.modified.unwrap_or(UNIX_EPOCH);
    let date_format = if is_recent(modified, now) {
        "%b %e %H:%M"
    } else {
        "%b %e  %Y"
    };
    let date = utc_or_epoch(modified).format(date_format);
    out.push_str(&format!(
        " {:>4} {:<8} {:<8} {:>8} {date} {}",
        entry.links, "ftp", "ftp", entry.size, entry.name
    ));
    if let (Kind::Symlink, Some(target)) = (entry.kind, &entry.target) {
        out.push_str(" -> ");
        out.push_str(target);
    }
}

/// One IIS-style line without CRLF.
fn push_msdos_line(out: &mut String, entry: &Entry) {
    let date = utc_or_epoch(entry.modified.unwrap_or(UNIX_EPOCH)).format("%m-%d-%y  %I:%M%p");
    out.push_str(&date.to_string());
    if entry.kind == Kind::Dir {
        out.push_str("       <DIR>          ");
    } else {
        // A u64 has at most 20 digits, so there is always a space before the size.
        out.push_str(&format!(" {:>20} ", entry.size));
    }
    out.push_str(&entry.name);
}

/// The `ls -l` rule: show the time of day for entries modified in the window `(now - 6 months,
/// now + 1 hour]`, the year otherwise.
fn is_recent(t: SystemTime, now: SystemTime) -> bool {
    let after_start = now.checked_sub(SIX_MONTHS).is_none_or(|start| t > start);
    let before_end = now.checked_add(FUTURE_SLACK).is_none_or(|end| t <= end);
    after_start && before_end
}

/// `t` as a UTC date-time (whole seconds), or `None` when chrono cannot represent it.
/// Unlike `DateTime::from(SystemTime)` this never panics.
fn to_utc(t: SystemTime) -> Option<DateTime<Utc>> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        Err(e) => {
            // Before the epoch: round down to the whole second.
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).ok()?;
            -secs - i64::from(d.subsec_nanos() > 0)
        }
    };
    DateTime::from_timestamp(secs, 0)
}

/// `t` in UTC, clamped to a four-digit year so that listing columns stay fixed; unrepresentable
/// times become the epoch.
/// An RFC 3659 time-val (section 2.3: `YYYYMMDDHHMMSS`, UTC, whole seconds) for MDTM and
/// the `modify` fact; `None` outside the years 0-9999, which four digits cannot show.
/// Written digit by digit: a chrono format string costs about forty times as much, once per
/// MDTM and once per MLSD entry.
pub fn time_val(t: SystemTime) -> Option<String> {
    let t = to_utc(t).filter(|t| (0..=9999).contains(&t.year()))?;
    let mut out = String::with_capacity(14);
    let year = t.year().unsigned_abs();
    for (value, width) in [
        (year, 4),
        (t.month(), 2),
        (t.day(), 2),
        (t.hour(), 2),
        (t.minute(), 2),
        (t.second(), 2),
    ] {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    Some(out)
}

fn utc_or_epoch(t: SystemTime) -> DateTime<Utc> {
    to_utc(t)
        .filter(|t| (0..=9999).contains(&t.year()))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
