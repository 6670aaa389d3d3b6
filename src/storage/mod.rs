//! Where files live: the local file system (the default) or an S3-compatible object store.
//!
//! - `mod.rs` (this file): the `[storage]` settings ([`StorageConfig`]), the server-wide
//!   [`Backend`] built from them once at start, and the per-session [`Storage`] view of a
//!   user's home.
//! - `object.rs`: the S3 back-end through Apache OpenDAL ([`ObjectStore`]): object keys,
//!   "directories" as key prefixes, ranged reads, multipart uploads that are aborted on failure.
//!
//! # Decisions
//! - An enum, not a trait object: the file-system arm keeps its fast paths (cap-std handles,
//!   sendfile on a blocking thread) untouched, and each handler matches once.
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

mod object;

pub use object::{ObjectError, ObjectMeta, ObjectReader, ObjectStore, ObjectUpload, UploadGuard};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which back-end holds the files (`storage.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The local file system under `root`.
    #[default]
    Fs,
    /// An S3-compatible object store (`storage.endpoint`, `storage.bucket`).
    S3,
}

/// The `[storage]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `fs` (files under `root`) or `s3` (objects in `bucket` at `endpoint`).
    pub kind: StorageKind,
    /// S3 endpoint URL, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `https://minio.example.net:9000`. Required with `kind = "s3"`.
    pub endpoint: Option<String>,
    /// Bucket name. Required with `kind = "s3"`.
    pub bucket: Option<String>,
    /// Region used to sign requests (most S3-compatible servers accept `us-east-1`).
    pub region: String,
    /// Key prefix under which every user's home lives (e.g. `ftp`); not set: the bucket's top.
    pub prefix: Option<String>,
    /// File with the access key: TOML `access_key_id = "..."` and `secret_access_key = "..."`.
    /// Not set: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` from the environment.
    pub credentials_file: Option<PathBuf>,
    /// Allow an `http://` endpoint (data and signed requests in clear text). Off: only
    /// `https://` endpoints are accepted.
    pub allow_http: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: StorageKind::Fs,
            endpoint: None,
            bucket: None,
            region: "us-east-1".into(),
            prefix: None,
            credentials_file: None,
            allow_http: false,
        }
    }
}

/// A setting of `[storage]` that is wrong: the dotted key and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfigError {
    /// The dotted key, e.g. `storage.bucket`.
    pub key: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl StorageConfig {
    /// Check the section on its own (fail closed). With `kind = "fs"` the S3 keys are ignored.
    pub fn validate(&self) -> Result<(), StorageConfigError> {
        let err = |key, problem: &str| {
            Err(StorageConfigError {
                key,
                problem: problem.to_owned(),
            })
        };
        if let Some(prefix) = &self.prefix {
            if crate::path::normalise_prefix(prefix).is_none() {
                return err(
                    "storage.prefix",
                    "must be a key prefix of plain names separated by `/` (no `.`, `..` or control characters)",
                );
            }
        }
        if self.kind == StorageKind::Fs {
            return Ok(());
        }
        match self.bucket.as_deref() {
            None => return err("storage.bucket", "is required with storage.kind = \"s3\""),
            Some(b) if !valid_bucket(b) => {
                return err(
                    "storage.bucket",
                    "must be 3 to 63 characters of a-z, 0-9, `.` and `-`",
                )
            }
            Some(_) => {}
        }
        let Some(endpoint) = self.endpoint.as_deref() else {
            return err("storage.endpoint", "is required with storage.kind = \"s3\"");
        };
        let rest = if let Some(rest) = endpoint.strip_prefix("https://") {
            rest
        } else if let Some(rest) = endpoint.strip_prefix("http://") {
            // SECURITY: clear-text S3 exposes every file and lets a man in the middle replay
            // signed requests; it must be asked for by name.
            if !self.allow_http {
                return err(
                    "storage.endpoint",
                    "is a plain http:// URL: use https:// or set storage.allow_http = true",
                );
            }
            rest
        } else {
            return err("storage.endpoint", "must start with https:// (or http://)");
        };
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return err("storage.endpoint", "must be a URL such as https://s3.example.net");
        }
        if self.region.is_empty()
            || self
                .region
                .chars()
                .any(|c| !c.is_ascii_alphanumeric() && c != '-')
        {
            return err("storage.region", "must be a region name such as us-east-1");
        }
        if self
            .credentials_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return err(
                "storage.credentials_file",
                "must not be empty (leave it out instead)",
            );
        }
        Ok(())
    }
}

/// S3 bucket naming rules (the subset every S3-compatible server accepts).
fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && !b.starts_with(['.', '-'])
        && !b.ends_with(['.', '-'])
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

    /// Whether `root` must be an existing local directory (only for the file system).
    pub fn needs_local_root(&self) -> bool {
        matches!(self, Backend::Fs)
    }
}

/// A logged-in session's view of its home directory.
pub enum Storage {
    /// The local file system.
    Local {
        /// Metadata, listings and name operations go through the storage back-end.
        fs: Arc<unftp_sbe_fs::Filesystem>,
        /// The same home directory as a capability handle: binary transfers open files here and
        /// move bytes with sendfile and large buffers. cap-std keeps every path inside it.
        dir: Arc<cap_std::fs::Dir>,
    },
    /// Objects under the home's key prefix.
    Object(ObjectStore),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> StorageConfig {
        StorageConfig {
            kind: StorageKind::S3,
            endpoint: Some("https://s3.example.net".into()),
            bucket: Some("files".into()),
            ..StorageConfig::default()
        }
    }

    #[test]
    fn s3_needs_bucket_and_endpoint_and_https() {
        assert_eq!(s3().validate(), Ok(()));
        let key = |c: StorageConfig| c.validate().unwrap_err().key;
        assert_eq!(key(StorageConfig { bucket: None, ..s3() }), "storage.bucket");
        assert_eq!(
            key(StorageConfig {
                endpoint: None,
                ..s3()
            }),
            "storage.endpoint"
        );
        let http = StorageConfig {
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..s3()
        };
        assert_eq!(key(http.clone()), "storage.endpoint");
        assert_eq!(
            StorageConfig {
                allow_http: true,
                ..http
            }
            .validate(),
            Ok(())
        );
        assert_eq!(
            key(StorageConfig {
                endpoint: Some("ftp://x".into()),
                ..s3()
            }),
            "storage.endpoint"
        );
        assert_eq!(
            key(StorageConfig {
                bucket: Some("Bad_Bucket".into()),
                ..s3()
            }),
            "storage.bucket"
        );
        // The file system ignores the S3 keys.
        assert_eq!(StorageConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_prefix_that_climbs_is_refused() {
        let bad = StorageConfig {
            prefix: Some("..".into()),
            ..s3()
        };
        assert_eq!(bad.validate().unwrap_err().key, "storage.prefix");
    }

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
