//! The `[proxy]` section: the load balancers trusted to send a PROXY protocol header.

use serde::{Deserialize, Serialize};

use crate::addr::Cidr;

/// The `[proxy]` config section: which peers may send a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Load balancers allowed to send a PROXY protocol (v1 or v2) header, as CIDR blocks.
    /// A connection from one of them (control, implicit FTPS or passive data) must start with
    /// a valid header, and the header's source is the client address for every check and log;
    /// a header from any other peer is not read as one. Default empty: PROXY protocol off.
    pub trusted: Vec<Cidr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_strictly() {
        let cfg: ProxyConfig = toml::from_str("trusted = [\"10.0.0.0/8\", \"::1\"]").unwrap();
        assert_eq!(cfg.trusted.len(), 2);
        assert!(toml::from_str::<ProxyConfig>("trusted = [\"10.0.0.1/8\"]").is_err());
        assert!(toml::from_str::<ProxyConfig>("trust = []").is_err());
        assert_eq!(ProxyConfig::default().trusted, vec![]);
    }
}
