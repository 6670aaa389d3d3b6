//! The `[fxp]` section: when a data connection may use an address other than the client's.
//!
//! Every switch defaults to the safe value (deny), as IIS does with its registry values
//! (Microsoft KB Q247132) and vsftpd with `port_promiscuous` / `pasv_promiscuous`.

use serde::{Deserialize, Serialize};

use crate::addr::Cidr;

/// The `[fxp]` section of the config file: when a data connection may use an address other than
/// the client's own (FXP, server-to-server transfer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FxpConfig {
    /// Let PORT/EPRT name an address other than the client's (IIS `EnablePortAttack`).
    /// Default `false`: this is the FTP bounce attack (RFC 2577 section 3) unless you need FXP.
    pub allow_foreign_port: bool,
    /// Let a connection from an address other than the client's be taken as the data connection
    /// of a PASV/EPSV listener (IIS `EnablePASVTheft`). Default `false`: otherwise anyone who
    /// guesses the port can steal or inject the transfer.
    pub allow_foreign_passive: bool,
    /// Let PORT/EPRT name a port below 1024, for the client's own address as well as foreign ones.
    /// Default `false`, as RFC 2577 section 3 recommends. Port 0 is refused whatever this says.
    pub allow_privileged_ports: bool,
    /// When non-empty, a foreign address (either direction) must lie inside one of these blocks.
    /// Default empty: any foreign address, once a switch or the user's override allows foreign ones.
    /// The client's own address never needs to be listed.
    pub peers: Vec<Cidr>,
    /// Let anonymous sessions use foreign addresses at all (in addition to the other rules).
    /// Default `false`.
    pub allow_anonymous: bool,
    /// Refusals from one client address, within `ban_window_secs`, that get it banned.
    /// Default 10; 0 disables banning.
    pub ban_threshold: u32,
    /// Length of the counting window in seconds; it opens at the first refusal and, when it
    /// lapses without a ban, the count starts again. Default 60.
    pub ban_window_secs: u64,
    /// How long a ban lasts in seconds; a banned client gets no data connection at all. Default 600.
    pub ban_secs: u64,
}

impl Default for FxpConfig {
    fn default() -> Self {
        FxpConfig {
            allow_foreign_port: false,
            allow_foreign_passive: false,
            allow_privileged_ports: false,
            peers: Vec::new(),
            allow_anonymous: false,
            ban_threshold: 10,
            ban_window_secs: 60,
            ban_secs: 600,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{value, IntoDeserializer};

    type Map<V> = value::MapDeserializer<'static, std::vec::IntoIter<(&'static str, V)>, value::Error>;

    fn from_map<V: IntoDeserializer<'static, value::Error>>(
        entries: Vec<(&'static str, V)>,
    ) -> Result<FxpConfig, value::Error> {
        FxpConfig::deserialize(Map::new(entries.into_iter()))
    }

    #[test]
    fn empty_section_is_the_safe_default() {
        let cfg = from_map::<bool>(vec![]).unwrap();
        assert_eq!(cfg, FxpConfig::default());
        assert!(!cfg.allow_foreign_port && !cfg.allow_foreign_passive && !cfg.allow_privileged_ports);
        assert!(!cfg.allow_anonymous && cfg.peers.is_empty());
        assert_eq!(
            (cfg.ban_threshold, cfg.ban_window_secs, cfg.ban_secs),
            (10, 60, 600)
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = from_map(vec![("allow_foreign_ports", true)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `allow_foreign_ports`"), "{err}");
    }

    #[test]
    fn peers_are_parsed_strictly() {
        let cfg = from_map(vec![("peers", vec!["192.0.2.0/24", "2001:db8::/32"])]).unwrap();
        assert_eq!(cfg.peers.len(), 2);
        let err = from_map(vec![("peers", vec!["192.0.2.1/24"])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("host bits are set"), "{err}");
    }
}
