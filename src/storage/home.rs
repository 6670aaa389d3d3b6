//! [`Tree`]: one directory tree of a logged-in user, whatever holds it: the home, or a virtual
//! folder's source ([`super::Home`] picks the tree of each path). Every operation a session
//! handler needs is here, and each matches the back-end once; handlers never name one.
//!
//! Paths are virtual paths inside the tree (`/a/b`, `/` is its top); each back-end confines
//! them to the tree (cap-std on the file system, checked key components on object storage).

use super::fs::FsHome;
use super::{Error, ObjectReader, ObjectStore, ObjectUpload};
use crate::listing::Entry;
use std::time::SystemTime;
use unftp_core::storage::Metadata;

/// A user's home or one of its folders: a directory on the local file system or a key prefix
/// in a bucket.
pub enum Tree {
    /// Files under the home directory.
    Fs(FsHome),
    /// Objects under the home's key prefix.
    Object(ObjectStore),
}

/// What SIZE, MDTM and STOU need to know about a path.
#[derive(Debug)]
pub struct FileStat {
    /// A plain file (not a directory).
    pub is_file: bool,
    /// The size in bytes.
    pub len: u64,
    /// The modification time, when the back-end knows it.
    pub modified: Result<SystemTime, Error>,
}

/// A file opened for a download, positioned at its restart offset.
pub enum Download {
    /// A local file (sendfile/splice on a clear-text binary transfer).
    File {
        /// The file, positioned at the first byte to send (REST).
        file: std::fs::File,
        /// The bytes from that position to the end.
        left: u64,
    },
    /// A ranged, streamed read of an object.
    Object(Box<ObjectReader>),
}

/// A file opened for an upload.
pub enum Upload {
    /// A local file, positioned where the data goes.
    File(std::fs::File),
    /// A new object: it appears only when the upload finishes, and is discarded otherwise.
    Object(ObjectUpload),
}

/// How an upload treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// STOR/STOU of a file that must not exist yet (the account may upload but not
    /// overwrite): on the file system the file is created exclusively.
    New,
    /// STOR/STOU: keep the first `offset` bytes (REST), replace the rest (0: a new file).
    At(u64),
    /// APPE: add to the end.
    Append,
}

/// APPE on object storage, refused before any data connection is used.
const NO_APPEND: &str = "APPE is not possible on object storage (objects cannot be appended to); upload the whole file with STOR.";
/// REST+STOR on object storage, refused before any data connection is used.
const NO_RESUME: &str = "REST with STOR is not possible on object storage (uploads cannot be resumed); upload the whole file again.";

impl Tree {
    /// Whether `path` is a directory (CWD); an error when it does not exist (RNFR).
    pub async fn is_dir(&self, path: &str) -> Result<bool, Error> {
        match self {
            Tree::Fs(fs) => fs.is_dir(path).await,
            Tree::Object(o) => Ok(o.stat(path).await?.is_dir()),
        }
    }

    /// Size, kind and time of `path` (SIZE, MDTM, STOU's name check). On the file system a
    /// stat on this thread, through the home's directory handle.
    pub async fn file_stat(&self, path: &str) -> Result<FileStat, Error> {
        match self {
            Tree::Fs(fs) => fs.file_stat(path),
            Tree::Object(o) => {
                let meta = o.stat(path).await?;
                Ok(FileStat {
                    is_file: meta.is_file(),
                    len: meta.len(),
                    modified: meta.modified().map_err(Error::from),
                })
            }
        }
    }

    /// The listing entry of `path` itself, named `name` (MLST).
    pub async fn entry(&self, path: &str, name: &str) -> Result<Entry, Error> {
        match self {
            Tree::Fs(fs) => fs.entry(path, name).await,
            Tree::Object(o) => Ok(Entry::from_metadata(name, &o.stat(path).await?, None)),
        }
    }

    /// Entries for LIST/NLST/MLSD/STAT: a directory's contents sorted by name, or the single
    /// entry when `path` names a file.
    pub async fn entries(&self, path: &str) -> Result<Vec<Entry>, Error> {
        match self {
            Tree::Fs(fs) => fs.entries(path).await,
            Tree::Object(o) => o.entries(path).await,
        }
    }

    /// MKD.
    pub async fn mkdir(&self, path: &str) -> Result<(), Error> {
        match self {
            Tree::Fs(fs) => fs.mkdir(path).await,
            Tree::Object(o) => o.mkd(path).await,
        }
    }

    /// RMD: an empty directory.
    pub async fn rmdir(&self, path: &str) -> Result<(), Error> {
        match self {
            Tree::Fs(fs) => fs.rmdir(path).await,
            Tree::Object(o) => o.rmd(path).await,
        }
    }

    /// DELE: a file.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        match self {
            Tree::Fs(fs) => fs.delete(path).await,
            Tree::Object(o) => o.del(path).await,
        }
    }

    /// RNFR/RNTO. Object storage has no rename: a server-side copy, then the original is
    /// deleted (files only).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        match self {
            Tree::Fs(fs) => fs.rename(from, to).await,
            Tree::Object(o) => o.rename(from, to).await,
        }
    }

    /// Open `path` for a download from `offset` (REST). Returns the download and the file's
    /// size; each back-end refuses an offset past the end before it reads anything.
    pub async fn open_read(&self, path: &str, offset: u64) -> Result<(Download, u64), Error> {
        match self {
            Tree::Fs(fs) => fs.open_read(path, offset),
            Tree::Object(o) => {
                let (reader, size) = o.open_read(path, offset).await?;
                Ok((Download::Object(Box::new(reader)), size))
            }
        }
    }

    /// Open `path` for an upload, now, so that a refusal comes before any data connection is
    /// used. Objects are written whole: APPE and REST+STOR are refused on object storage.
    /// Returns the upload and the offset it writes at.
    pub async fn open_write(&self, path: &str, mode: WriteMode) -> Result<(Upload, u64), Error> {
        match self {
            Tree::Fs(fs) => {
                let offset = match mode {
                    WriteMode::Append => fs.append_offset(path)?,
                    WriteMode::At(offset) => offset,
                    WriteMode::New => 0,
                };
                let new = mode == WriteMode::New;
                Ok((fs.open_write(path, offset, new).await?, offset))
            }
            Tree::Object(o) => match mode {
                WriteMode::Append => Err(Error::Refused(NO_APPEND)),
                WriteMode::At(offset) if offset > 0 => Err(Error::Refused(NO_RESUME)),
                // Object storage has no exclusive create: the rights were checked on a stat.
                WriteMode::At(_) | WriteMode::New => Ok((Upload::Object(o.create(path).await?), 0)),
            },
        }
    }

    /// Undoes an upload stopped at its size limit: a file is cut back to `keep` bytes, or
    /// removed when the upload began it (`keep` 0); an object upload was already discarded.
    pub async fn discard_upload(&self, path: &str, keep: u64) -> Result<(), Error> {
        match self {
            Tree::Fs(fs) => fs.discard_upload(path, keep).await,
            Tree::Object(_) => Ok(()),
        }
    }

    /// The SHA-256 of a whole file (HASH), in bounded memory. Returns the hex digest and the
    /// size.
    pub async fn sha256(&self, path: &str) -> Result<(String, u64), Error> {
        match self {
            Tree::Fs(fs) => fs.sha256(path).await,
            Tree::Object(o) => o.sha256(path).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::FtpUser;
    use std::io::{Read, Write};

    fn fs_home(root: &std::path::Path, home: &str) -> Tree {
        let user = FtpUser {
            name: "u".into(),
            home: root.join(home),
            write: true,
            anonymous: false,
            fxp: Default::default(),
            require_tls: false,
        };
        Tree::Fs(FsHome::open(root, &user).unwrap())
    }

    #[tokio::test]
    async fn file_system_reads_and_writes_at_their_offsets() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("h")).unwrap();
        std::fs::write(root.path().join("h/f"), b"0123456789").unwrap();
        let home = fs_home(root.path(), "h");

        let (download, size) = home.open_read("/f", 4).await.unwrap();
        assert_eq!(size, 10);
        let Download::File { mut file, left } = download else {
            panic!("not a file download")
        };
        assert_eq!(left, 6);
        let mut rest = String::new();
        file.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "456789");

        let (upload, offset) = home.open_write("/f", WriteMode::At(3)).await.unwrap();
        assert_eq!(offset, 3);
        let Upload::File(mut file) = upload else {
            panic!("not a file upload")
        };
        file.write_all(b"abc").unwrap();
        drop(file);
        assert_eq!(std::fs::read(root.path().join("h/f")).unwrap(), b"012abc");

        let (_, offset) = home.open_write("/f", WriteMode::Append).await.unwrap();
        assert_eq!(offset, 6);
        let (_, offset) = home.open_write("/new", WriteMode::Append).await.unwrap();
        assert_eq!(offset, 0);
    }

    #[tokio::test]
    async fn file_system_refuses_offsets_past_the_end_and_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"abc").unwrap();
        let home = fs_home(root.path(), "");

        let read = home.open_read("/f", 4).await.err().unwrap();
        assert!(
            matches!(read, Error::RestartBeyondEnd { offset: 4, size: 3 }),
            "{read:?}"
        );
        let write = home.open_write("/f", WriteMode::At(4)).await.err().unwrap();
        assert!(
            matches!(write, Error::RestartBeyondEnd { offset: 4, size: 3 }),
            "{write:?}"
        );
        assert_eq!(std::fs::read(root.path().join("f")).unwrap(), b"abc");
        let missing = home.open_write("/none", WriteMode::At(1)).await.err().unwrap();
        assert!(
            matches!(missing, Error::RestartBeyondEnd { offset: 1, size: 0 }),
            "{missing:?}"
        );
        assert!(!root.path().join("none").exists());
    }

    #[tokio::test]
    async fn a_new_file_is_never_an_existing_one_and_overflow_is_undone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"keep").unwrap();
        let home = fs_home(root.path(), "");
        assert!(matches!(
            home.open_write("/f", WriteMode::New).await.err().unwrap(),
            Error::Refused(_)
        ));
        assert_eq!(std::fs::read(root.path().join("f")).unwrap(), b"keep");
        let (upload, offset) = home.open_write("/n", WriteMode::New).await.unwrap();
        assert_eq!(offset, 0);
        drop(upload);
        assert!(root.path().join("n").exists());
        home.discard_upload("/n", 0).await.unwrap();
        assert!(!root.path().join("n").exists());
        std::fs::write(root.path().join("f"), b"keep-and-more").unwrap();
        home.discard_upload("/f", 4).await.unwrap();
        assert_eq!(std::fs::read(root.path().join("f")).unwrap(), b"keep");
    }

    #[tokio::test]
    async fn file_system_directories_are_not_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        let home = fs_home(root.path(), "");
        assert!(home.is_dir("/d").await.unwrap());
        assert!(!home.file_stat("/d").await.unwrap().is_file);
        assert!(matches!(
            home.open_read("/d", 0).await.err().unwrap(),
            Error::NotAFile
        ));
        assert!(matches!(
            home.open_write("/d", WriteMode::Append).await.err().unwrap(),
            Error::NotAFile
        ));
        assert!(matches!(home.sha256("/d").await.err().unwrap(), Error::NotAFile));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn file_system_contents_stay_inside_the_home() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("h")).unwrap();
        std::fs::write(root.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), root.path().join("h/link")).unwrap();
        let home = fs_home(root.path(), "h");
        assert!(home.open_read("/link", 0).await.is_err());
        assert!(home.open_write("/link", WriteMode::At(0)).await.is_err());
        assert!(home.sha256("/link").await.is_err());
        assert_eq!(std::fs::read(root.path().join("secret")).unwrap(), b"s");
    }
}
