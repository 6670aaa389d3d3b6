//! The S3 back-end: a user's home is a key prefix in one bucket, reached through Apache
//! OpenDAL (`services-s3`, reqwest with rustls and ring).
//!
//! - Keys: `storage.prefix` + the home relative to `root` + the session's resolved virtual
//!   path. Every component is checked again here (no `.`, `..`, empty or control-character
//!   names), so no key can leave the home's prefix whatever the session resolved.
//! - Directories: a zero-byte `name/` marker object (MKD); a prefix with objects under it is a
//!   directory too. RMD refuses a prefix with anything but its marker under it.
//! - Uploads: an OpenDAL writer with [`CHUNK`]-sized parts and at most [`UPLOAD_CONCURRENCY`]
//!   parts in flight, so one upload holds about `(UPLOAD_CONCURRENCY + 2) * CHUNK` bytes
//!   (the part being filled, one queued, the ones being sent), whatever the file size. The object becomes visible only when the writer is closed after the data connection
//!   ended cleanly; on any failure, ABOR or lost session the writer is aborted (no object, no
//!   pending multipart upload).
//! - Listings stream through S3's paginated ListObjectsV2 and stop at [`MAX_LIST_ENTRIES`].

use super::object_io::{ObjectReader, ObjectUpload};
use super::{Credentials, Error, StorageConfig};
use crate::listing::Entry;
use crate::path::{normalise_prefix, valid_component};
use futures_util::{StreamExt, TryStreamExt};
use opendal::{EntryMode, ErrorKind as OdKind, Operator};
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use unftp_core::storage::{Error as StorageError, ErrorKind, Metadata};

/// Multipart part size and read-ahead unit.
pub const CHUNK: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
pub const UPLOAD_CONCURRENCY: usize = 2;
/// Chunks of one download fetched ahead.
const READ_CONCURRENCY: usize = 2;
/// Most entries one listing returns (LIST/NLST/MLSD/STAT); the rest are left out and logged.
pub const MAX_LIST_ENTRIES: usize = 10_000;

impl From<opendal::Error> for Error {
    fn from(e: opendal::Error) -> Self {
        Error::Storage(storage_error(e))
    }
}

/// OpenDAL's error kinds as the storage error kinds the session maps to replies.
pub(super) fn storage_error(e: opendal::Error) -> StorageError {
    let kind = match e.kind() {
        OdKind::NotFound | OdKind::IsADirectory | OdKind::NotADirectory => {
            ErrorKind::PermanentFileNotAvailable
        }
        OdKind::PermissionDenied => ErrorKind::PermissionDenied,
        OdKind::AlreadyExists => ErrorKind::PermanentFileNotAvailable,
        OdKind::RateLimited | OdKind::ConditionNotMatch => ErrorKind::TransientFileNotAvailable,
        _ => ErrorKind::LocalError,
    };
    if kind == ErrorKind::LocalError {
        tracing::warn!(error = %e, "object storage request failed");
    }
    StorageError::new(kind, e)
}

fn not_found() -> Error {
    Error::Storage(StorageError::from(ErrorKind::PermanentFileNotAvailable))
}

/// Why the start-up listing failed, in words an operator acts on. A 403 is nearly always the
/// access key (a wrong secret, an unknown or disabled key) or its rights on the bucket: say so,
/// with S3's own error code and message (never the key's secret, which S3 does not echo).
fn start_error(e: &opendal::Error) -> String {
    if e.kind() != OdKind::PermissionDenied {
        return e.to_string();
    }
    // OpenDAL keeps S3's error document as `S3Error { code: "...", message: "...", .. }`.
    let field = |name: &str| {
        let text = e.message();
        let start = text.find(&format!("{name}: \""))? + name.len() + 3;
        let len = text[start..].find('"')?;
        Some(text[start..start + len].to_owned())
    };
    let said = match (field("code"), field("message")) {
        (Some(code), Some(message)) if !code.is_empty() => format!("{code}: {message}"),
        _ => e.message().to_owned(),
    };
    format!(
        "access denied: check the S3 credentials (storage.credentials_file, or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY) and that the key may list the bucket; S3 said {said}"
    )
}

/// The key prefix of a user's home: `base` (the normalised `storage.prefix`: `""` or `a/b/`)
/// followed by `home` relative to `root`, each component a valid key name, ending in `/`.
/// An error when `home` is not under `root` or a component cannot be part of a key.
pub fn home_prefix(base: &str, root: &Path, home: &Path) -> std::io::Result<String> {
    let rel = home
        .strip_prefix(root)
        .map_err(|_| std::io::Error::other("home is outside root"))?;
    let mut out = base.to_owned();
    for part in rel.components() {
        match part {
            Component::Normal(name) => match name.to_str().filter(|n| valid_component(n)) {
                Some(name) => {
                    out.push_str(name);
                    out.push('/');
                }
                None => return Err(std::io::Error::other("home name cannot be an object key")),
            },
            Component::CurDir => {}
            _ => return Err(std::io::Error::other("home cannot be an object key")),
        }
    }
    Ok(out)
}

/// The object key of a resolved virtual path (`/a/b`) under a home's key prefix `base`
/// (`""` or `a/b/`): `base` followed by the path's components joined by `/`. The home itself
/// (`/`) has no key (not found); a `.`, `..` or control-character component is refused (file
/// name not allowed).
// SECURITY: every component is checked, so a key never leaves `base`. The session resolves
// `..` away before this; a `..` that got here anyway must not reach the HTTP client, whose URL
// parsing removes dot segments (`ftp/alice/../bob` would be sent as `ftp/bob`).
pub fn object_key(base: &str, path: &str) -> Result<String, Error> {
    let mut key = base.to_owned();
    let mut any = false;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !valid_component(part) {
            return Err(Error::Storage(StorageError::from(
                ErrorKind::FileNameNotAllowedError,
            )));
        }
        if any {
            key.push('/');
        }
        key.push_str(part);
        any = true;
    }
    if any {
        Ok(key)
    } else {
        Err(not_found())
    }
}

/// What S3 tells about a key: a file (object) or a directory (prefix).
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    dir: bool,
    len: u64,
    modified: Option<SystemTime>,
}

impl ObjectMeta {
    fn dir() -> ObjectMeta {
        ObjectMeta {
            dir: true,
            len: 0,
            modified: None,
        }
    }

    fn from_opendal(m: &opendal::Metadata) -> ObjectMeta {
        ObjectMeta {
            dir: m.mode() == EntryMode::DIR,
            len: m.content_length(),
            modified: m.last_modified().map(SystemTime::from),
        }
    }
}

impl Metadata for ObjectMeta {
    fn len(&self) -> u64 {
        self.len
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> unftp_core::storage::Result<SystemTime> {
        self.modified
            .ok_or_else(|| StorageError::from(ErrorKind::PermanentFileNotAvailable))
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
    fn permissions(&self) -> unftp_core::storage::Permissions {
        unftp_core::storage::Permissions(if self.dir { 0o755 } else { 0o644 })
    }
}

/// One bucket, seen from a key prefix (the server's `storage.prefix`, then a user's home).
#[derive(Clone)]
pub struct ObjectStore {
    op: Operator,
    /// `bucket at endpoint`, for start-up messages.
    origin: Arc<str>,
    /// `""` or `a/b/`: every key this view makes starts with it.
    base: String,
}

impl ObjectStore {
    /// The bucket view for validated settings (no request is made yet).
    pub(super) fn new(
        config: &StorageConfig,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<ObjectStore, String> {
        // reqwest is built without a crypto provider of its own: it uses the process default,
        // which is ring as for every other TLS use in fxpd (no aws-lc, no OpenSSL).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("storage: cannot set up the HTTP client: {e}"))?;
        let transport =
            opendal::HttpTransporter::new(opendal_http_transport_reqwest::ReqwestTransport::new(client));
        let mut builder = opendal::services::S3::default()
            .bucket(config.bucket.as_deref().unwrap_or_default())
            .endpoint(config.endpoint.as_deref().unwrap_or_default())
            .region(&config.region)
            .access_key_id(&credentials.access_key_id)
            .secret_access_key(&credentials.secret_access_key)
            // Only what the configuration says: no ~/.aws files, no instance metadata.
            .disable_config_load()
            .disable_ec2_metadata();
        builder = builder.root("/");
        let op = Operator::new(builder)
            .map_err(|e| format!("storage: {e}"))?
            .with_context(opendal::OperationContext::new().with_http_transport(transport))
            .layer(
                opendal::layers::TimeoutLayer::new()
                    .with_timeout(timeout)
                    .with_io_timeout(timeout),
            );
        let base =
            normalise_prefix(config.prefix.as_deref().unwrap_or("")).ok_or("storage.prefix is invalid")?;
        let origin = format!(
            "bucket `{}` at {}",
            config.bucket.as_deref().unwrap_or_default(),
            config.endpoint.as_deref().unwrap_or_default()
        );
        tracing::info!(storage = %origin, prefix = %base, "object storage");
        Ok(ObjectStore {
            op,
            origin: origin.into(),
            base,
        })
    }

    /// List the top of the prefix once: fails when the endpoint, the bucket or the credentials
    /// are wrong.
    pub(super) async fn check(&self) -> Result<(), String> {
        let dir = self
            .dir_key("/")
            .map_err(|_| "storage.prefix is invalid".to_owned())?;
        let failed = |e: opendal::Error| format!("storage: cannot list {}: {}", self.origin, start_error(&e));
        let mut lister = self.op.lister_with(&dir).limit(1).await.map_err(failed)?;
        match lister.next().await {
            Some(Err(e)) if e.kind() != OdKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        }
    }

    /// The view of a user's home: `home` relative to `root`, appended to the prefix.
    pub fn for_home(&self, root: &Path, home: &Path) -> std::io::Result<ObjectStore> {
        Ok(ObjectStore {
            op: self.op.clone(),
            origin: self.origin.clone(),
            base: home_prefix(&self.base, root, home)?,
        })
    }

    /// The view of a virtual folder: `prefix` (a folder's `prefix`, any spelling) appended to
    /// the server's `storage.prefix`; an error when it is empty or a component cannot be part
    /// of a key.
    pub fn for_prefix(&self, prefix: &str) -> std::io::Result<ObjectStore> {
        // SECURITY: checked again here: a folder's keys stay below storage.prefix.
        let prefix = normalise_prefix(prefix)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| std::io::Error::other("folder prefix cannot be an object key prefix"))?;
        Ok(ObjectStore {
            op: self.op.clone(),
            origin: self.origin.clone(),
            base: format!("{}{prefix}", self.base),
        })
    }

    /// The object key of a resolved virtual path (`/a/b`); the home itself has none.
    pub fn key(&self, path: &str) -> Result<String, Error> {
        object_key(&self.base, path)
    }

    /// The key prefix of a directory (`a/b/`; the bucket's top is `/` to OpenDAL).
    fn dir_key(&self, path: &str) -> Result<String, Error> {
        match self.key(path) {
            Ok(mut key) => {
                key.push('/');
                Ok(key)
            }
            Err(_) if path.split('/').all(str::is_empty) => Ok(if self.base.is_empty() {
                "/".into()
            } else {
                self.base.clone()
            }),
            Err(e) => Err(e),
        }
    }

    /// A file's or directory's metadata. The home itself always exists.
    pub async fn stat(&self, path: &str) -> Result<ObjectMeta, Error> {
        if path.split('/').all(str::is_empty) {
            return Ok(ObjectMeta::dir());
        }
        let key = self.key(path)?;
        match self.op.stat(&key).await {
            Ok(m) => return Ok(ObjectMeta::from_opendal(&m)),
            Err(e) if e.kind() == OdKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let dir = self.dir_key(path)?;
        let mut lister = self.op.lister_with(&dir).limit(1).await?;
        match lister.next().await {
            Some(Ok(_)) => Ok(ObjectMeta::dir()),
            Some(Err(e)) if e.kind() != OdKind::NotFound => Err(e.into()),
            _ => Err(not_found()),
        }
    }

    /// Entries for LIST/NLST/MLSD/STAT: a directory's contents sorted by name (at most
    /// [`MAX_LIST_ENTRIES`]), or the single entry when the path names a file.
    pub async fn entries(&self, path: &str) -> Result<Vec<Entry>, Error> {
        let meta = self.stat(path).await?;
        if !meta.dir {
            return Ok(vec![Entry::from_metadata(
                crate::path::file_name(path),
                &meta,
                None,
            )]);
        }
        let dir = self.dir_key(path)?;
        let mut lister = self.op.lister(&dir).await?;
        let mut entries = Vec::new();
        while let Some(entry) = lister.try_next().await? {
            if entry.path() == dir || entry.path() == "/" {
                continue; // the directory's own marker
            }
            let name = entry.name().trim_end_matches('/');
            if !valid_component(name) {
                continue;
            }
            if entries.len() == MAX_LIST_ENTRIES {
                tracing::warn!(path, limit = MAX_LIST_ENTRIES, "listing truncated");
                break;
            }
            let meta = ObjectMeta::from_opendal(entry.metadata());
            entries.push(Entry::from_metadata(name, &meta, None));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The parent of `path` must be a directory (as on a file system).
    async fn require_parent(&self, path: &str) -> Result<(), Error> {
        let parent = match path.rfind('/') {
            Some(0) | None => return Ok(()),
            Some(i) => &path[..i],
        };
        match self.stat(parent).await {
            Ok(m) if m.dir => Ok(()),
            Ok(_) => Err(Error::Refused("The parent is a file, not a directory.")),
            Err(e) => Err(e),
        }
    }

    /// MKD: a `name/` marker object, when nothing of that name exists yet.
    pub async fn mkd(&self, path: &str) -> Result<(), Error> {
        let dir = self.dir_key(path)?;
        self.require_parent(path).await?;
        match self.stat(path).await {
            Ok(_) => return Err(Error::Refused("A file or directory of that name exists.")),
            Err(Error::Storage(e)) if e.kind() == ErrorKind::PermanentFileNotAvailable => {}
            Err(e) => return Err(e),
        }
        self.op.create_dir(&dir).await?;
        Ok(())
    }

    /// RMD: only an empty directory (its marker alone); the home cannot be removed.
    pub async fn rmd(&self, path: &str) -> Result<(), Error> {
        let key = self.key(path)?;
        let dir = format!("{key}/");
        if !self.stat(path).await?.dir {
            return Err(Error::Refused("Not a directory."));
        }
        let mut lister = self.op.lister_with(&dir).limit(2).await?;
        while let Some(entry) = lister.try_next().await? {
            if entry.path() != dir {
                return Err(Error::Storage(StorageError::from(
                    ErrorKind::PermanentDirectoryNotEmpty,
                )));
            }
        }
        self.op.delete(&dir).await?;
        Ok(())
    }

    /// DELE: a file only.
    pub async fn del(&self, path: &str) -> Result<(), Error> {
        let key = self.key(path)?;
        if self.stat(path).await?.dir {
            return Err(Error::Refused("Is a directory: use RMD."));
        }
        self.op.delete(&key).await?;
        Ok(())
    }

    /// RNFR/RNTO: a file is copied on the server, then the original deleted (objects have no
    /// rename). Directories are refused: that would be a copy of every object under them.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let (from_key, to_key) = (self.key(from)?, self.key(to)?);
        if self.stat(from).await?.dir {
            return Err(Error::Refused(
                "Renaming a directory is not supported on object storage.",
            ));
        }
        if from_key == to_key {
            return Ok(());
        }
        if let Ok(m) = self.stat(to).await {
            if m.dir {
                return Err(Error::Refused("The target is a directory."));
            }
        }
        self.require_parent(to).await?;
        self.op.copy(&from_key, &to_key).await?;
        self.op.delete(&from_key).await?;
        Ok(())
    }

    /// Open a file for a download from `offset` (REST): a ranged, streamed read. Returns the
    /// reader and the object's size; an offset past the end is refused.
    pub async fn open_read(&self, path: &str, offset: u64) -> Result<(ObjectReader, u64), Error> {
        let key = self.key(path)?;
        let meta = self.stat(path).await?;
        if meta.dir {
            return Err(Error::Refused("Not a plain file."));
        }
        // SECURITY: a restart offset past the end is refused, as on the file system, before any
        // ranged read is requested.
        if offset > meta.len {
            return Err(Error::RestartBeyondEnd {
                offset,
                size: meta.len,
            });
        }
        if offset == meta.len {
            return Ok((ObjectReader::new(None), meta.len));
        }
        let stream = self
            .op
            .reader_with(&key)
            .chunk(CHUNK)
            .concurrent(READ_CONCURRENCY)
            .await?
            .into_bytes_stream(offset..meta.len)
            .await?;
        Ok((ObjectReader::new(Some(stream)), meta.len))
    }

    /// Start an upload to `path`; nothing is visible until [`ObjectUpload::finish`].
    pub async fn create(&self, path: &str) -> Result<ObjectUpload, Error> {
        let key = self.key(path)?;
        self.require_parent(path).await?;
        if self.stat(path).await.is_ok_and(|m| m.dir) {
            return Err(Error::Refused("Is a directory."));
        }
        let writer = self
            .op
            .writer_with(&key)
            .chunk(CHUNK)
            .concurrent(UPLOAD_CONCURRENCY)
            .await?;
        Ok(ObjectUpload::new(writer, key))
    }

    /// The SHA-256 of a whole object, streamed (HASH). Returns the hex digest and the size.
    pub async fn sha256(&self, path: &str) -> Result<(String, u64), Error> {
        use sha2::Digest;
        use tokio::io::AsyncReadExt;
        let (mut reader, size) = self.open_read(path, 0).await?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).await.map_err(StorageError::from)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok((
            hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            size,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(prefix: &str) -> ObjectStore {
        let config = StorageConfig {
            kind: super::super::StorageKind::S3,
            endpoint: Some("https://127.0.0.1:1".into()),
            bucket: Some("files".into()),
            prefix: Some(prefix.into()),
            ..StorageConfig::default()
        };
        let credentials = Credentials {
            access_key_id: "id".into(),
            secret_access_key: "secret".into(),
        };
        ObjectStore::new(&config, &credentials, Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn keys_stay_under_the_home_prefix() {
        let home = store("ftp")
            .for_home(Path::new("/srv/ftp"), Path::new("/srv/ftp/alice"))
            .unwrap();
        assert_eq!(home.base, "ftp/alice/");
        assert_eq!(home.key("/a/b.txt").unwrap(), "ftp/alice/a/b.txt");
        assert_eq!(home.key("//a///b").unwrap(), "ftp/alice/a/b");
        assert_eq!(home.dir_key("/").unwrap(), "ftp/alice/");
        assert_eq!(home.dir_key("/d").unwrap(), "ftp/alice/d/");
        // The session resolves `..` away; a raw one is refused, never climbed.
        for bad in ["/../bob/x", "/a/../../x", "/./x", "/a\r\nb", "/"] {
            assert!(home.key(bad).is_err(), "{bad:?}");
        }
        // Whatever the client typed, once resolved the key keeps the prefix.
        for arg in ["../../bob/secret", "/../../../x", "a/../../..", ".."] {
            let path = crate::path::resolve("/sub", arg);
            if let Ok(key) = home.key(&path) {
                assert!(key.starts_with("ftp/alice/"), "{arg} -> {key}");
            }
        }
        let top = store("").for_home(Path::new("/r"), Path::new("/r")).unwrap();
        assert_eq!(top.dir_key("/").unwrap(), "/");
        assert_eq!(top.key("/x").unwrap(), "x");
        assert!(store("")
            .for_home(Path::new("/r"), Path::new("/elsewhere"))
            .is_err());
    }
}
