//! Checking a copy: equal sizes (SIZE, RFC 3659 section 4) on both servers, then equal
//! digests where both servers can compute the same one, in this order of preference:
//!
//! - `HASH` (draft-bryan-ftp-hash): both list `HASH` in FEAT with a common algorithm;
//!   `OPTS HASH <alg>` selects it where it is not the default, and `HASH path` answers
//!   `213 <alg> <start>-<end> <hex> <path>`;
//! - `XSHA256`, then `XMD5`: both list the command in FEAT;
//! - `SITE MD5`: both mention MD5 in `SITE HELP`.
//!
//! A digest that a server cannot produce for this file (a negative reply) moves on to the
//! next method; when none is left the copy is verified by size only, and says so.

use crate::client::{ClientError, ControlClient};
use crate::wire;
use std::time::Duration;

/// Preferred `HASH` algorithms, strongest first.
const HASH_PREFERENCE: [&str; 6] = ["SHA-512", "SHA-384", "SHA-256", "SHA-224", "SHA-1", "MD5"];

/// Servers hash at disk speed: allow this many bytes per second on top of the timeout.
const HASH_RATE: u64 = 20 * 1024 * 1024;

/// A way to ask a server for a file's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `HASH` with this algorithm.
    Hash(String),
    /// `XSHA256 path`.
    XSha256,
    /// `XMD5 path`.
    XMd5,
    /// `SITE MD5 path`.
    SiteMd5,
}

impl Method {
    /// E.g. "SHA-256 (HASH)".
    pub fn describe(&self) -> String {
        match self {
            Method::Hash(alg) => format!("{alg} (HASH)"),
            Method::XSha256 => "SHA-256 (XSHA256)".into(),
            Method::XMd5 => "MD5 (XMD5)".into(),
            Method::SiteMd5 => "MD5 (SITE MD5)".into(),
        }
    }
}

/// How a copy was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The size both servers report, if both do.
    pub size: Option<u64>,
    /// The digest method both agreed on, if any.
    pub digest: Option<Method>,
}

impl Verified {
    /// E.g. "size and SHA-256 (HASH) verified".
    pub fn describe(&self) -> String {
        match (&self.size, &self.digest) {
            (Some(_), Some(m)) => format!("size and {} verified", m.describe()),
            (None, Some(m)) => format!("{} verified", m.describe()),
            (Some(_), None) => "size verified (no common hash command)".into(),
            (None, None) => "not verified (the servers report neither size nor hash)".into(),
        }
    }
}

/// Why verification failed.
#[derive(Debug)]
pub enum VerifyError {
    /// The copy differs from the original (one clause).
    Mismatch(String),
    /// A server failed while we asked.
    ControlClient(ClientError),
}

impl From<ClientError> for VerifyError {
    fn from(e: ClientError) -> Self {
        VerifyError::ControlClient(e)
    }
}

/// The methods both servers offer, best first.
pub async fn common_methods(
    src: &mut ControlClient,
    dst: &mut ControlClient,
) -> Result<Vec<Method>, ClientError> {
    let (a, b) = (&src.features, &dst.features);
    let mut methods = Vec::new();
    if let Some(alg) = HASH_PREFERENCE.iter().find(|alg| {
        a.hash_algorithms.iter().any(|x| x == *alg) && b.hash_algorithms.iter().any(|x| x == *alg)
    }) {
        methods.push(Method::Hash((*alg).to_owned()));
    }
    if a.xsha256 && b.xsha256 {
        methods.push(Method::XSha256);
    }
    if a.xmd5 && b.xmd5 {
        methods.push(Method::XMd5);
    }
    if methods.is_empty() && site_md5(src).await? && site_md5(dst).await? {
        methods.push(Method::SiteMd5);
    }
    Ok(methods)
}

/// Whether `SITE HELP` mentions MD5.
async fn site_md5(client: &mut ControlClient) -> Result<bool, ClientError> {
    let reply = client.command("SITE HELP").await?;
    Ok(reply.class() == 2
        && reply
            .text()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case("MD5")))
}

/// Compares sizes, then digests with the first of `methods` both servers can produce.
pub async fn verify(
    src: &mut ControlClient,
    dst: &mut ControlClient,
    src_path: &str,
    dst_path: &str,
    methods: &[Method],
) -> Result<Verified, VerifyError> {
    let src_size = size(src, src_path).await?;
    let dst_size = size(dst, dst_path).await?;
    if let (Some(s), Some(d)) = (src_size, dst_size) {
        if s != d {
            return Err(VerifyError::Mismatch(format!(
                "the copy has {d} bytes but the source file has {s}"
            )));
        }
    }
    let size = src_size.filter(|_| dst_size.is_some());
    for method in methods {
        let Some(want) = digest(src, method, src_path, src_size).await? else {
            continue;
        };
        let Some(got) = digest(dst, method, dst_path, dst_size).await? else {
            continue;
        };
        if want != got {
            return Err(VerifyError::Mismatch(format!(
                "the {} of the copy is {got} but the source's is {want}",
                method.describe()
            )));
        }
        return Ok(Verified {
            size,
            digest: Some(method.clone()),
        });
    }
    Ok(Verified { size, digest: None })
}

/// SIZE, `None` when the server does not tell.
async fn size(client: &mut ControlClient, path: &str) -> Result<Option<u64>, ClientError> {
    let reply = client.command(&format!("SIZE {path}")).await?;
    Ok(wire::parse_size(&reply))
}

/// The lowercase hex digest of `path` by `method`, `None` when the server cannot give it.
async fn digest(
    client: &mut ControlClient,
    method: &Method,
    path: &str,
    size: Option<u64>,
) -> Result<Option<String>, ClientError> {
    let (line, len) = match method {
        Method::Hash(alg) => {
            if client.features.hash_selected.as_deref() != Some(alg.as_str()) {
                let reply = client.command(&format!("OPTS HASH {alg}")).await?;
                if reply.class() != 2 {
                    return Ok(None);
                }
                client.features.hash_selected = Some(alg.clone());
            }
            (format!("HASH {path}"), None)
        }
        Method::XSha256 => (format!("XSHA256 {path}"), Some(64)),
        Method::XMd5 => (format!("XMD5 {path}"), Some(32)),
        Method::SiteMd5 => (format!("SITE MD5 {path}"), Some(32)),
    };
    client.send(&line).await?;
    let limit = client.timeout() + Duration::from_secs(size.unwrap_or(0) / HASH_RATE);
    let reply = loop {
        match client.reply_within(limit).await? {
            // Some servers send a 1xx mark while they hash.
            Some(r) if r.is_preliminary() => continue,
            Some(r) => break r,
            None => {
                return Err(client.error(crate::client::ErrorKind::Timeout(format!(
                    "no reply to {line} within {} s",
                    limit.as_secs()
                ))))
            }
        }
    };
    if reply.class() != 2 {
        return Ok(None);
    }
    Ok(match (method, len) {
        (Method::Hash(alg), _) => wire::parse_hash_reply(&reply)
            .filter(|(got, _)| got.eq_ignore_ascii_case(alg))
            .map(|(_, hex)| hex),
        (_, Some(len)) => wire::find_hex_digest(&reply, len),
        (_, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_say_what_was_checked() {
        let v = Verified {
            size: Some(3),
            digest: Some(Method::Hash("SHA-256".into())),
        };
        assert_eq!(v.describe(), "size and SHA-256 (HASH) verified");
        let v = Verified {
            size: Some(3),
            digest: None,
        };
        assert!(v.describe().starts_with("size verified"));
    }
}
