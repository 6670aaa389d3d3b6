//! The `[access]` section: which client networks may open a control connection at all (IIS
//! "IP Address and Domain Restrictions", by address only).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::addr::Cidr;

/// The `[access]` config section: server-wide allow and deny lists of client networks.
///
/// Judged once per control connection, before the greeting, against the client address (the
/// source a trusted load balancer's PROXY header names, when there is one). A listed `deny`
/// block wins over any `allow` block; an empty `allow` admits every address not denied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Client networks that may connect, as CIDR blocks or single addresses. Default empty:
    /// every address (that `deny` does not list).
    pub allow: Vec<Cidr>,
    /// Client networks that are refused (`421`) before the greeting, whatever `allow` says.
    /// Default empty.
    pub deny: Vec<Cidr>,
}

/// Why a client address is refused by [`AccessConfig::judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDenial {
    /// A `deny` block lists the address.
    Denied(Cidr),
    /// `allow` is not empty and no block of it lists the address.
    NotAllowed,
}

impl AccessDenial {
    /// The rule, for logs: `deny:BLOCK` or `allow:not-listed`.
    pub fn rule(&self) -> String {
        match self {
            AccessDenial::Denied(block) => format!("deny:{block}"),
            AccessDenial::NotAllowed => "allow:not-listed".to_string(),
        }
    }
}

impl AccessConfig {
    /// Whether a control connection from `ip` may go on. IPv4-mapped IPv6 addresses count as
    /// their IPv4 address ([`Cidr::contains`] normalises them).
    pub fn judge(&self, ip: IpAddr) -> Result<(), AccessDenial> {
        // SECURITY: deny wins: a denied block cannot be reopened by a wider or narrower allow.
        if let Some(block) = self.deny.iter().find(|block| block.contains(ip)) {
            return Err(AccessDenial::Denied(block.clone()));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|block| block.contains(ip)) {
            return Err(AccessDenial::NotAllowed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn config_parses_strictly() {
        let cfg: AccessConfig = toml::from_str("allow = [\"127.0.0.0/8\"]\ndeny = [\"::1\"]").unwrap();
        assert_eq!((cfg.allow.len(), cfg.deny.len()), (1, 1));
        assert!(toml::from_str::<AccessConfig>("allow = [\"10.0.0.1/8\"]").is_err());
        assert!(toml::from_str::<AccessConfig>("allowed = []").is_err());
        assert_eq!(
            AccessConfig::default(),
            AccessConfig {
                allow: vec![],
                deny: vec![]
            }
        );
    }

    #[test]
    fn empty_lists_admit_everyone() {
        let cfg = AccessConfig::default();
        assert_eq!(cfg.judge(ip("192.0.2.1")), Ok(()));
        assert_eq!(cfg.judge(ip("2001:db8::1")), Ok(()));
    }

    #[test]
    fn deny_beats_allow_and_allow_closes_the_rest() {
        let cfg: AccessConfig = toml::from_str("allow = [\"127.0.0.0/8\"]\ndeny = [\"127.0.0.5\"]").unwrap();
        assert_eq!(cfg.judge(ip("127.0.0.1")), Ok(()));
        assert_eq!(
            cfg.judge(ip("127.0.0.5")),
            Err(AccessDenial::Denied("127.0.0.5".parse().unwrap()))
        );
        assert_eq!(cfg.judge(ip("192.0.2.1")), Err(AccessDenial::NotAllowed));
        // An IPv4-mapped IPv6 address is its IPv4 address: no way around the deny list.
        assert!(cfg.judge(ip("::ffff:127.0.0.5")).is_err());
        assert_eq!(cfg.judge(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(AccessDenial::NotAllowed.rule(), "allow:not-listed");
    }

    #[test]
    fn deny_alone_refuses_only_what_it_lists() {
        let cfg: AccessConfig = toml::from_str("deny = [\"2001:db8::/32\"]").unwrap();
        assert!(cfg.judge(ip("2001:db8::7")).is_err());
        assert_eq!(cfg.judge(ip("2001:db9::7")), Ok(()));
        assert_eq!(cfg.judge(ip("192.0.2.1")), Ok(()));
    }
}
