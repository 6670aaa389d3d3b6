//! Where files live: the local file system (the default) or an S3-compatible object store.
//!
//! - `mod.rs` (this file): the server-wide [`Backend`] built once at start from the `[storage]`
//!   settings ([`StorageConfig`], defined in `config`), which opens a user's [`Home`], and the
//!   one [`Error`] type of both back-ends.
//! - `mounts.rs`: [`Home`], the per-session view of a user's home with its virtual folders
//!   mounted: every operation the session needs (stat, list, mkdir, rmdir, delete, rename,
//!   open for read and write, hash) on the tree that holds the path.
//! - `home.rs`: one tree (the home or a folder) with those operations, each matching the
//!   back-end once.
//! - `fs.rs`: the file-system home ([`FsHome`]): `unftp-sbe-fs` for metadata, listings and
//!   names, a cap-std directory handle for file contents (plain files for sendfile/splice).
//! - `object_io.rs`: the byte streams of object storage: ranged downloads, multipart uploads
//!   committed whole or aborted.
//! - `object.rs`: the S3 back-end through Apache OpenDAL ([`ObjectStore`]): object keys,
//!   "directories" as key prefixes, ranged reads, multipart uploads that are aborted on failure.
//!
//! # Decisions
//! - An enum, not a trait object: there are two back-ends, known at compile time; the
//!   file-system arm hands out plain files for its fast paths (sendfile/splice on a blocking
//!   thread) where a trait would need one stream type for both; async methods need no boxing;
//!   and the back-end is matched once per operation, in `home.rs`, never in a handler.
//! - Object storage is immutable: APPE and REST+STOR are refused; RNFR/RNTO of a file is a
//!   server-side copy then a delete; renaming a directory is refused; RETR is an async,
//!   buffered copy (no sendfile), with REST served by a ranged read.
//! - Credentials come from `storage.credentials_file` or the environment
//!   (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`); they are never part of [`Config`], so
//!   `fxpd config show/check` and the logs cannot print them.
//! - Fail closed: with `kind = "s3"` a missing bucket or endpoint is a configuration error, a
//!   plain-http endpoint needs `allow_http = true`, and a bucket that cannot be listed at start
//!   stops the server before it listens.
//!
//! [`Config`]: crate::config::Config

mod fs;
mod home;
mod mounts;
mod object;
mod object_io;

pub use crate::config::{StorageConfig, StorageKind};
pub use crate::path::normalise_prefix;
pub use fs::FsHome;
pub use home::{Download, FileStat, Upload, WriteMode};
pub use mounts::Home;
pub use object::{home_prefix, object_key, ObjectMeta, ObjectStore, MAX_LIST_ENTRIES};
pub use object_io::{ObjectReader, ObjectUpload, UploadGuard};

use serde::Deserialize;
use std::path::Path;
use unftp_core::storage::Error as StorageError;

/// Why a storage operation did not happen, on either back-end. The session maps each kind to
/// its reply in one place.
#[derive(Debug)]
pub enum Error {
    /// A storage failure, mapped to a reply by its kind (the same on both back-ends).
    Storage(StorageError),
    /// Something this back-end cannot do; the text says what (550).
    Refused(&'static str),
    /// The path names something other than a plain file.
    NotAFile,
    /// A REST offset past the end of the file.
    RestartBeyondEnd {
        /// The offset asked for.
        offset: u64,
        /// The file's size.
        size: u64,
    },
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Storage(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Storage(e.into())
    }
}

/// The S3 access key, read at start. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// The TOML layout of `storage.credentials_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    access_key_id: String,
    secret_access_key: String,
}

impl Credentials {
    /// From `file` if given, else from the environment. Errors never contain the secret.
    pub fn load(file: Option<&Path>) -> Result<Credentials, String> {
        let (id, secret) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("storage.credentials_file {}: {e}", path.display()))?;
                // The parse error could quote a line of the file: keep only its position.
                let parsed: CredentialsFile = toml::from_str(&text).map_err(|e| {
                    let at = e.span().map(|s| format!(" at byte {}", s.start)).unwrap_or_default();
                    format!(
                        "storage.credentials_file {}: expected access_key_id = \"...\" and secret_access_key = \"...\"{at}",
                        path.display()
                    )
                })?;
                (parsed.access_key_id, parsed.secret_access_key)
            }
            None => {
                let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                    (Some(id), Some(secret)) => (id, secret),
                    _ => {
                        return Err("storage.kind = \"s3\" needs credentials: set storage.credentials_file or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into())
                    }
                }
            }
        };
        if id.is_empty() || secret.is_empty() {
            return Err("S3 credentials: access key id and secret must not be empty".into());
        }
        Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
        })
    }
}

/// The server-wide back-end, built once at start (changing `[storage]` needs a restart).
#[derive(Clone)]
pub enum Backend {
    /// Files under `root`.
    Fs,
    /// Objects in a bucket; each login gets a view confined to its home's prefix.
    Object(ObjectStore),
}

impl Backend {
    /// Build the back-end from validated settings. With S3 this reads the credentials; it
    /// does not talk to the server yet (see [`Backend::check`]).
    pub fn new(config: &StorageConfig, data_timeout: std::time::Duration) -> Result<Backend, String> {
        match config.kind {
            StorageKind::Fs => Ok(Backend::Fs),
            StorageKind::S3 => {
                let credentials = Credentials::load(config.credentials_file.as_deref())?;
                ObjectStore::new(config, &credentials, data_timeout).map(Backend::Object)
            }
        }
    }

    /// Fail closed at start: the bucket must answer a listing with these credentials.
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Backend::Fs => Ok(()),
            Backend::Object(store) => store.check().await,
        }
    }

    /// Open `user`'s home: on the file system the directory (confined with cap-std), on
    /// object storage the key prefix of the home relative to `root`; with the account's
    /// virtual `folders` mounted.
    pub fn open_home(
        &self,
        root: &Path,
        user: &crate::auth::FtpUser,
        folders: &[crate::auth::Folder],
    ) -> std::io::Result<Home> {
        let tree = match self {
            Backend::Fs => home::Tree::Fs(FsHome::open(root, user)?),
            Backend::Object(store) => home::Tree::Object(store.for_home(root, &user.home)?),
        };
        Ok(Home::new(tree, self, user, folders))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.toml");
        std::fs::write(
            &path,
            "access_key_id = \"AKID\"\nsecret_access_key = \"s3cr3t\"\n",
        )
        .unwrap();
        let c = Credentials::load(Some(&path)).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        std::fs::write(&path, "access_key_id = \"AKID\"\nsecret_access_key = s3cr3t\n").unwrap();
        let e = Credentials::load(Some(&path)).unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
