//! The `[passive]` section: passive-mode data connections (PASV/EPSV) and the port range type.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

/// Passive-mode settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveConfig {
    /// Local ports used for passive data connections, `"first-last"` (or a single `"port"`).
    pub ports: PortRange,
    /// Address announced in 227 replies, for servers behind NAT. `None`: the control
    /// connection's local address.
    pub address: Option<IpAddr>,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        PassiveConfig {
            ports: PortRange {
                first: 50000,
                last: 50999,
            },
            address: None,
        }
    }
}

impl PassiveConfig {
    /// Checks the port range (a range built by hand may be empty or start at port 0).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ports.check().map_err(|e| {
            ConfigError::invalid_value(
                "passive.ports",
                self.ports.to_string(),
                format!("a valid port range ({e})"),
            )
        })
    }
}

/// An inclusive TCP port range, written `"50000-50999"` (or `"50000"` for a single port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port of the range (at least 1).
    pub first: u16,
    /// Last port of the range (at least `first`).
    pub last: u16,
}

impl PortRange {
    /// Number of ports in the range (0 only for an invalid range).
    pub fn len(&self) -> u32 {
        if self.last < self.first {
            0
        } else {
            u32::from(self.last) - u32::from(self.first) + 1
        }
    }

    /// True only for an invalid range (`last < first`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `port` is inside the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if self.first == 0 {
            return Err("port 0 is not allowed".to_string());
        }
        if self.first > self.last {
            return Err(format!(
                "first port {} is above last port {}",
                self.first, self.last
            ));
        }
        Ok(())
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "expected `first-last` (e.g. `50000-50999`) or a single port, 1..=65535";
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("invalid port range `{s}`: {expected}"))
        };
        let range = match s.split_once('-') {
            Some((a, b)) => PortRange {
                first: port(a)?,
                last: port(b)?,
            },
            None => {
                let p = port(s)?;
                PortRange { first: p, last: p }
            }
        };
        range
            .check()
            .map_err(|e| format!("invalid port range `{s}`: {e}"))?;
        Ok(range)
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port range string such as \"50000-50999\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortRange, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}
