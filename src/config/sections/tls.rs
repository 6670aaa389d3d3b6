//! The `[tls]` section: FTPS (RFC 4217) certificate, implicit listeners, when TLS is required.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

/// When TLS is mandatory (`tls.require`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsRequire {
    /// TLS is offered, never required.
    #[default]
    None,
    /// USER/PASS only after AUTH TLS (passwords never travel in clear text).
    Login,
    /// Login as above, and every data connection must be protected (PROT P).
    All,
}

/// The `[tls]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain. TLS is available when this and
    /// `private_key` are set.
    pub certificate: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<PathBuf>,
    /// Implicit FTPS listeners: TLS starts before the greeting (port 990 style).
    pub implicit_listen: Vec<SocketAddr>,
    /// When TLS is mandatory: "none", "login" or "all".
    pub require: TlsRequire,
    /// Whether anonymous sessions are exempt from `require`.
    pub anonymous_exempt: bool,
    /// Protected data connections must resume the control connection's TLS session (a
    /// third party cannot hijack a data connection). Turn off only for clients that cannot
    /// resume sessions.
    pub require_data_resumption: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: None,
            private_key: None,
            implicit_listen: Vec::new(),
            require: TlsRequire::None,
            anonymous_exempt: true,
            require_data_resumption: true,
        }
    }
}

impl TlsConfig {
    /// Check the section on its own: both files or neither; implicit listeners and a
    /// `require` other than none need a certificate (fail closed: a server asked to require
    /// TLS never starts without it).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |problem: &str| Err(ConfigError::setting("tls", problem));
        match (&self.certificate, &self.private_key) {
            (Some(_), None) => return err("tls.certificate is set but tls.private_key is not"),
            (None, Some(_)) => return err("tls.private_key is set but tls.certificate is not"),
            _ => {}
        }
        if self.certificate.is_none() {
            if !self.implicit_listen.is_empty() {
                return err("tls.implicit_listen needs tls.certificate and tls.private_key");
            }
            if self.require != TlsRequire::None {
                return err("tls.require needs tls.certificate and tls.private_key");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_fails_closed() {
        let mut c = TlsConfig::default();
        assert!(c.validate().is_ok());
        c.require = TlsRequire::Login;
        assert!(c.validate().unwrap_err().to_string().contains("tls.require"));
        c.require = TlsRequire::None;
        c.implicit_listen = vec!["127.0.0.1:990".parse().unwrap()];
        assert!(c.validate().unwrap_err().to_string().contains("implicit_listen"));
        c.implicit_listen.clear();
        c.certificate = Some("/x.pem".into());
        assert!(c.validate().unwrap_err().to_string().contains("private_key"));
    }
}
