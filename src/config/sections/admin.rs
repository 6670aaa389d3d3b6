//! The `[admin]` section: the admin listener (live sessions, bans, reload, Prometheus metrics),
//! off unless `admin.listen` is set.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

/// The `[admin]` section of the configuration (docs/admin.md).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener (HTTP, or HTTPS when `tls.certificate` is set), e.g.
    /// `127.0.0.1:2180`. Not set (the default): no admin listener. An address other than
    /// loopback needs `tls.certificate`: the token must not cross a network in clear text.
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token every request must carry (`fxpd admin token` writes
    /// it, mode 0600). Required with `listen`: no token file, no admin listener.
    pub token_file: Option<PathBuf>,
}

impl AdminConfig {
    /// Check the section against the TLS settings: a token file with every listener, and
    /// TLS for any address other than loopback (fail closed, at start and on reload).
    pub fn validate(&self, tls_certificate: bool) -> Result<(), ConfigError> {
        let Some(listen) = self.listen else {
            return Ok(());
        };
        match &self.token_file {
            None => {
                return Err(ConfigError::setting(
                    "admin.listen",
                    "needs admin.token_file: no token file, no admin listener (create one with `fxpd admin token`)",
                )
                .related_to("admin.token_file"))
            }
            Some(file) if file.as_os_str().is_empty() => {
                return Err(ConfigError::setting("admin.token_file", "must not be empty"))
            }
            Some(_) => {}
        }
        // SECURITY: the bearer token and every session's details must not cross a network in
        // clear text: an address other than loopback needs HTTPS.
        if !crate::addr::normalize(listen.ip()).is_loopback() && !tls_certificate {
            return Err(ConfigError::setting(
                "admin.listen",
                format!("is `{listen}`, not a loopback address: it needs tls.certificate (HTTPS), or use 127.0.0.1"),
            )
            .related_to("tls.certificate"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(text: &str) -> AdminConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn off_by_default_and_strict() {
        assert_eq!(AdminConfig::default().listen, None);
        assert!(AdminConfig::default().validate(false).is_ok());
        assert!(toml::from_str::<AdminConfig>("port = 1").is_err());
    }

    #[test]
    fn a_listener_needs_a_token_file() {
        let e = admin("listen = \"127.0.0.1:2180\"").validate(false).unwrap_err();
        assert!(e.to_string().contains("admin.token_file"), "{e}");
        let ok = admin("listen = \"127.0.0.1:2180\"\ntoken_file = \"/etc/fxpd/admin-token\"");
        assert!(ok.validate(false).is_ok());
    }

    #[test]
    fn beyond_loopback_only_with_tls() {
        for listen in [
            "192.0.2.1:2180",
            "[2001:db8::1]:2180",
            "0.0.0.0:2180",
            "[::]:2180",
        ] {
            let cfg = admin(&format!("listen = \"{listen}\"\ntoken_file = \"t\""));
            let e = cfg.validate(false).unwrap_err();
            assert!(e.to_string().contains("tls.certificate"), "{listen}: {e}");
            assert!(cfg.validate(true).is_ok(), "{listen}");
        }
        for listen in ["127.0.0.2:2180", "[::1]:2180", "[::ffff:127.0.0.1]:2180"] {
            let cfg = admin(&format!("listen = \"{listen}\"\ntoken_file = \"t\""));
            assert!(cfg.validate(false).is_ok(), "{listen}");
        }
    }
}
