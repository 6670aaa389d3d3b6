//! The `[storage]` section: the local file system (the default) or an S3-compatible bucket.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;
use crate::path::normalise_prefix;

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

impl StorageConfig {
    /// Check the section on its own (fail closed). With `kind = "fs"` the S3 keys are ignored.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, problem: &str| Err(ConfigError::setting(key, problem));
        if let Some(prefix) = &self.prefix {
            if normalise_prefix(prefix).is_none() {
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
        let key = |c: StorageConfig| c.validate().unwrap_err().key().map(str::to_owned).unwrap();
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
        assert_eq!(bad.validate().unwrap_err().key(), Some("storage.prefix"));
    }
}
