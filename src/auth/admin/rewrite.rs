//! Rewriting the users file safely: find the file behind a symlink, read and validate it,
//! locate one entry's text, check the result, and replace the file atomically with its mode
//! and owner kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::super::users::{
    parse_users, read_users_text, render_users, ParsedUsers, UsersDoc, UsersFileError,
};
use super::{AdminError, NEW_FILE_HEADER};

/// The current content of an existing users file.
pub(super) struct Current {
    pub(super) text: String,
    pub(super) parsed: ParsedUsers,
    pub(super) metadata: fs::Metadata,
}

/// The file to rewrite: a symlink's target, so the link itself stays in place.
pub(super) fn resolve_target(file: &Path) -> Result<PathBuf, AdminError> {
    match fs::symlink_metadata(file) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(file).map_err(|source| AdminError::Write {
                path: file.to_path_buf(),
                source,
            })
        }
        _ => Ok(file.to_path_buf()),
    }
}

/// Reads and fully validates the existing file; `None` if it does not exist.
pub(super) fn read_existing(target: &Path) -> Result<Option<Current>, AdminError> {
    let metadata = match fs::metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(UsersFileError::Read {
                path: target.to_path_buf(),
                source,
            }
            .into())
        }
    };
    let text = read_users_text(target)?;
    let parsed = parse_users(&text, target)?;
    Ok(Some(Current {
        text,
        parsed,
        metadata,
    }))
}

/// The byte range of entry `index`: from the comment lines directly above its `[[user]]`
/// header up to where the next entry's range begins (or the end of the file). `None` if the
/// file is not laid out as plain `[[user]]` tables.
pub(super) fn entry_region(text: &str, parsed: &ParsedUsers, index: usize) -> Option<std::ops::Range<usize>> {
    let header = |i: usize| -> Option<usize> {
        let span = parsed.entries.get(i)?.0.clone();
        text.get(span.clone())?.starts_with("[[").then_some(span.start)
    };
    let at = header(index)?;
    let start = attached_start(text, at);
    let end = match parsed.entries.get(index + 1) {
        Some(_) => attached_start(text, header(index + 1)?),
        None => text.len(),
    };
    // A `[[group]]`, `[anonymous]` or `[everyone]` table after the entry is not part of it.
    let body_from = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
    let end = next_foreign_table(text, body_from, end, "user");
    (start <= end).then_some(start..end)
}

/// The start (with its attached comments) of the first table header in `text[from..end]`
/// that does not belong to the `kind` entry above it (`[[user.rules]]` does), or `end`.
pub(super) fn next_foreign_table(text: &str, from: usize, end: usize, kind: &str) -> usize {
    let own = format!("[[{kind}.");
    let own_table = format!("[{kind}.");
    let mut at = from;
    while at < end {
        let line_end = text[at..end].find('\n').map_or(end, |i| at + i + 1);
        let line = text[at..line_end].trim_start();
        if line.starts_with('[') && !line.starts_with(&own) && !line.starts_with(&own_table) {
            return attached_start(text, at + (text[at..line_end].len() - line.len()));
        }
        at = line_end;
    }
    end
}

/// Moves `at` back to the start of its line and over the comment lines right above it.
pub(crate) fn attached_start(text: &str, at: usize) -> usize {
    let line_start = |end: usize| text[..end].rfind('\n').map_or(0, |i| i + 1);
    let mut start = line_start(at);
    if !text[start..at].trim().is_empty() {
        return at;
    }
    while start > 0 {
        let previous = line_start(start - 1);
        if text[previous..start].trim_start().starts_with('#') {
            start = previous;
        } else {
            break;
        }
    }
    start
}

/// `text` if it parses to exactly `expected`, otherwise a freshly rendered file (which loses
/// comments but is always right).
pub(super) fn checked_or_rendered(
    text: String,
    expected: &UsersDoc,
    file: &Path,
) -> Result<String, AdminError> {
    if let Ok(parsed) = parse_users(&text, file) {
        if parsed.doc() == *expected {
            return Ok(text);
        }
    }
    let rendered = render_users(expected).map_err(|e| AdminError::Hash(e.to_string()))?;
    let text = format!("{NEW_FILE_HEADER}\n{rendered}");
    // The rendered form must parse back; if not, refuse rather than write a broken file.
    match parse_users(&text, file) {
        Ok(parsed) if parsed.doc() == *expected => Ok(text),
        Ok(_) => Err(AdminError::Write {
            path: file.to_path_buf(),
            source: io::Error::other("the rewritten users file does not read back the same"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Writes `text` to `path` atomically: a new file in the same directory, flushed, given the
/// previous file's mode and owner, then renamed over `path`.
pub(super) fn write_atomic(
    path: &Path,
    text: &str,
    previous: Option<&fs::Metadata>,
) -> Result<(), AdminError> {
    let fail = |source: io::Error| AdminError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let suffix = getrandom::u64().map_err(|e| fail(io::Error::other(e.to_string())))?;
    let tmp = dir.join(format!(".{}.{suffix:016x}.tmp", file_name.to_string_lossy()));

    let written = (|| -> io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // SECURITY: the file holds password hashes; it is never readable by others.
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        if let Some(previous) = previous {
            keep_mode_and_owner(&file, previous)?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    // Make the rename itself durable (best effort: not every platform can open a directory).
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
pub(super) fn keep_mode_and_owner(file: &File, previous: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    file.set_permissions(previous.permissions())?;
    let now = file.metadata()?;
    if (now.uid(), now.gid()) != (previous.uid(), previous.gid()) {
        std::os::unix::fs::fchown(file, Some(previous.uid()), Some(previous.gid())).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("can not keep the file's owner and group ({e}); run as its owner or root"),
            )
        })?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn keep_mode_and_owner(file: &File, previous: &fs::Metadata) -> io::Result<()> {
    file.set_permissions(previous.permissions())
}
