//! A user's home on the local file system, opened twice: as the `unftp-sbe-fs` back-end
//! (metadata, listings, names), confined to the home with cap-std, and as a cap-std directory
//! handle for file contents, so transfers get a plain [`std::fs::File`] for sendfile/splice
//! and every path stays inside the home.

use super::home::{Download, FileStat, Upload};
use super::Error;
use crate::auth::FtpUser;
use crate::listing::{self, Entry};
use crate::path::{file_name, resolve};
use std::io::{Seek, SeekFrom};
use std::sync::Arc;
use unftp_core::storage::{ErrorKind, Metadata, StorageBackend};
use unftp_sbe_fs::Filesystem;

/// Cutting more than this off an existing file (STOR over a large file) happens on a
/// blocking thread.
const BIG_TRUNCATE: u64 = 16 * 1024 * 1024;

/// A logged-in user's home directory on the file system.
pub struct FsHome {
    /// Metadata, listings and name operations go through the storage back-end.
    fs: Arc<Filesystem>,
    /// The same home directory as a capability handle: transfers open files here and move
    /// bytes with sendfile and large buffers. cap-std keeps every path inside it.
    dir: Arc<cap_std::fs::Dir>,
    /// The user the back-end acts for (its home and rights).
    user: FtpUser,
}

impl FsHome {
    /// Open `user`'s home under `root` (a home that is the root itself needs no narrowing).
    pub(super) fn open(root: &std::path::Path, user: &FtpUser) -> std::io::Result<FsHome> {
        let mut fs = Filesystem::new(root)?;
        if user.home != root {
            StorageBackend::enter(&mut fs, user)?;
        }
        let dir = cap_std::fs::Dir::open_ambient_dir(&user.home, cap_std::ambient_authority())?;
        Ok(FsHome {
            fs: Arc::new(fs),
            dir: Arc::new(dir),
            user: user.clone(),
        })
    }

    /// Whether `path` is a directory (through the storage back-end).
    pub(super) async fn is_dir(&self, path: &str) -> Result<bool, Error> {
        Ok(self.fs.metadata(&self.user, path).await?.is_dir())
    }

    /// Metadata straight from the home directory handle (a stat on this thread: no hop to
    /// the blocking pool for what costs microseconds). Follows symlinks inside the home.
    pub(super) fn file_stat(&self, path: &str) -> Result<FileStat, Error> {
        let meta = self.dir.metadata(relative(path))?;
        Ok(FileStat {
            is_file: meta.is_file(),
            len: meta.len(),
            modified: meta.modified().map(|m| m.into_std()).map_err(Error::from),
        })
    }

    /// The MLST entry of `path`, named `name`.
    pub(super) async fn entry(&self, path: &str, name: &str) -> Result<Entry, Error> {
        let meta = self.fs.metadata(&self.user, path).await?;
        let links = Links::of(&self.user);
        Ok(Entry::from_metadata(
            name,
            &meta,
            Some(&links.scope(&resolve(path, ".."))),
        ))
    }

    /// A directory's contents sorted by name, or the single entry when `path` names a file.
    pub(super) async fn entries(&self, path: &str) -> Result<Vec<Entry>, Error> {
        let meta = self.fs.metadata(&self.user, path).await?;
        let links = Links::of(&self.user);
        if !meta.is_dir() {
            let parent = resolve(path, "..");
            let scope = links.scope(&parent);
            return Ok(vec![Entry::from_metadata(file_name(path), &meta, Some(&scope))]);
        }
        let list = self.fs.list(&self.user, path).await?;
        let scope = links.scope(path);
        let mut entries: Vec<Entry> = list
            .iter()
            .filter_map(|item| Entry::from_fileinfo(item, Some(&scope)))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// MKD.
    pub(super) async fn mkdir(&self, path: &str) -> Result<(), Error> {
        Ok(self.fs.mkd(&self.user, path).await?)
    }

    /// RMD.
    pub(super) async fn rmdir(&self, path: &str) -> Result<(), Error> {
        Ok(self.fs.rmd(&self.user, path).await?)
    }

    /// DELE.
    pub(super) async fn delete(&self, path: &str) -> Result<(), Error> {
        Ok(self.fs.del(&self.user, path).await?)
    }

    /// RNFR/RNTO.
    pub(super) async fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        Ok(self.fs.rename(&self.user, from, to).await?)
    }

    /// Open a file for reading (RETR): open, then look at what was opened (no window between
    /// a check and the open), and position it at `offset` once that is checked against the
    /// size.
    pub(super) fn open_read(&self, path: &str, offset: u64) -> Result<(Download, u64), Error> {
        let (mut file, meta) = self.open_file(path).and_then(|f| f.metadata().map(|m| (f, m)))?;
        if !meta.is_file() {
            return Err(Error::NotAFile);
        }
        let size = meta.len();
        if offset > size {
            return Err(Error::RestartBeyondEnd { offset, size });
        }
        // A file opened just now is at its start: no seek for a whole-file download.
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok((
            Download::File {
                file,
                left: size.saturating_sub(offset),
            },
            size,
        ))
    }

    /// Open a file in the home directory for reading.
    fn open_file(&self, path: &str) -> std::io::Result<std::fs::File> {
        Ok(self.dir.open(relative(path))?.into_std())
    }

    /// APPE: the offset to append at (the file's size; 0 for a new file).
    pub(super) fn append_offset(&self, path: &str) -> Result<u64, Error> {
        match self.file_stat(path) {
            Ok(s) if s.is_file => Ok(s.len),
            Ok(_) => Err(Error::NotAFile),
            Err(_) => Ok(0),
        }
    }

    /// The upload file: opened (created) now, before the 150 reply, so a refusal comes before
    /// any data. It keeps its first `offset` bytes (REST, APPE).
    pub(super) async fn open_write(&self, path: &str, offset: u64, new: bool) -> Result<Upload, Error> {
        let mut options = cap_std::fs::OpenOptions::new();
        // SECURITY: `new` (an upload without the overwrite right) never opens an existing
        // file, even one created since the rights were checked.
        if new {
            options.write(true).create_new(true);
            return match self.dir.open_with(relative(path), &options) {
                Ok(file) => Ok(Upload::File(file.into_std())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Refused(
                    "The file exists now; replacing it needs the overwrite right.",
                )),
                Err(e) => Err(e.into()),
            };
        }
        // SECURITY: a restart offset past the end would leave a hole, a sparse file of any
        // size (REST 1099511627776 made 1 TiB). Only an existing file at least `offset` bytes
        // long is resumed: it is opened without `create` and measured on the opened handle,
        // so a refusal creates, truncates and changes nothing.
        options.write(true).create(offset == 0);
        let mut file = match self.dir.open_with(relative(path), &options) {
            Ok(file) => file.into_std(),
            Err(e) if offset > 0 && e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::RestartBeyondEnd { offset, size: 0 })
            }
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        if offset > len {
            return Err(Error::RestartBeyondEnd { offset, size: len });
        }
        if len > offset + BIG_TRUNCATE {
            // Freeing gigabytes of an overwritten file can take a while: not on this task,
            // which other sessions share a thread with.
            file = tokio::task::spawn_blocking(move || file.set_len(offset).map(|()| file))
                .await
                .map_err(|_| std::io::Error::other("truncating thread failed"))
                .and_then(|truncated| truncated)?;
        } else if len != offset {
            file.set_len(offset)?;
        }
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(Upload::File(file))
    }

    /// Undoes an upload stopped at its size limit: the file is cut back to `keep` bytes
    /// (what it held before a resumed upload), or removed when the upload began it.
    pub(super) async fn discard_upload(&self, path: &str, keep: u64) -> Result<(), Error> {
        if keep == 0 {
            return self.delete(path).await;
        }
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true);
        let file = self.dir.open_with(relative(path), &options)?;
        file.set_len(keep)?;
        Ok(())
    }

    /// The SHA-256 of a whole file, computed on a blocking thread. Returns the hex digest
    /// and the size.
    pub(super) async fn sha256(&self, path: &str) -> Result<(String, u64), Error> {
        let stat = self.file_stat(path)?;
        if !stat.is_file {
            return Err(Error::NotAFile);
        }
        let mut file = self.open_file(path)?;
        let digest = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            std::io::copy(&mut file, &mut hasher)?;
            Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
        })
        .await;
        match digest {
            Ok(hashed) => Ok((hashed?, stat.len)),
            Err(_) => Err(Error::Storage(ErrorKind::LocalError.into())),
        }
    }
}

/// A file-system home on disk, as symlink targets in listings are checked against it.
struct Links<'a> {
    home: &'a std::path::Path,
    /// The home with symlinks resolved, when that is another path.
    real: Option<std::path::PathBuf>,
}

impl<'a> Links<'a> {
    fn of(user: &'a FtpUser) -> Links<'a> {
        let real = std::fs::canonicalize(&user.home)
            .ok()
            .filter(|real| *real != user.home);
        Links {
            home: &user.home,
            real,
        }
    }

    /// The scope of entries in the virtual directory `dir`.
    fn scope<'s>(&'s self, dir: &'s str) -> listing::LinkScope<'s> {
        listing::LinkScope {
            home: self.home,
            real_home: self.real.as_deref(),
            dir,
        }
    }
}

/// A virtual path as a path relative to the home directory handle.
fn relative(target: &str) -> &str {
    match target.trim_start_matches('/') {
        "" => ".",
        rel => rel,
    }
}
