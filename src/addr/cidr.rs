//! CIDR blocks for `fxp.peers` and `proxy.trusted` (RFC 4632 for IPv4, RFC 4291 section 2.3 for IPv6).
//!
//! Parsing is strict because a typo in an allow-list is a security problem:
//! - the address must be a plain IPv4 or IPv6 address (no zone, no leading zeros, no spaces);
//! - the prefix length must be decimal digits within 0-32 (IPv4) or 0-128 (IPv6); a bare address
//!   means a single host (/32 or /128);
//! - host bits beyond the prefix are rejected (`10.0.0.1/8` is an error that names `10.0.0.0/8`),
//!   so the text always says exactly which addresses it covers;
//! - IPv4-mapped IPv6 blocks (`::ffff:10.0.0.0/104`) are rejected with the IPv4 spelling to use
//!   instead, because addresses are normalised to IPv4 before matching (see [`super::normalize`]).
//!
//! IPv4 blocks match only IPv4 addresses (including IPv4-mapped IPv6 ones, after normalisation) and
//! IPv6 blocks only IPv6 addresses: `::/0` does not cover IPv4 clients, `0.0.0.0/0` does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::normalize;

/// An IPv4 or IPv6 CIDR block like `10.0.0.0/8` or `2001:db8::/32`, or a bare address (= /32 or /128).
///
/// Parsed with [`FromStr`] (strict, see the module docs), displayed and serialised in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    /// The network address; its host bits are zero (checked by the parser).
    network: IpAddr,
    /// Prefix length, at most 32 for IPv4 and 128 for IPv6 (checked by the parser).
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies inside this block. IPv4-mapped IPv6 addresses are normalised to IPv4 first.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, normalize(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask_v4(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask_v6(self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

/// The IPv4 netmask of a prefix length (at most 32).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The IPv6 netmask of a prefix length (at most 128).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// `addr` with every bit past `prefix` cleared (`prefix` already checked against the family).
fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => Ipv4Addr::from(u32::from(v4) & mask_v4(prefix)).into(),
        IpAddr::V6(v6) => Ipv6Addr::from(u128::from(v6) & mask_v6(prefix)).into(),
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: String| format!("invalid CIDR block `{text}`: {why}");
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| invalid(format!("`{addr_text}` is not an IPv4 or IPv6 address")))?;
        let (family, max) = match addr {
            IpAddr::V4(_) => ("IPv4", 32),
            IpAddr::V6(_) => ("IPv6", 128),
        };
        let prefix = match prefix_text {
            None => max,
            Some("") => return Err(invalid("the prefix length after `/` is missing".into())),
            Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(invalid(format!("prefix length `{p}` is not a decimal number")))
            }
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| invalid(format!("prefix length must be 0-{max} for {family}")))?,
        };
        let network = network_of(addr, prefix);
        if network != addr {
            return Err(invalid(format!(
                "host bits are set beyond /{prefix}; the block is `{network}/{prefix}`"
            )));
        }
        if let IpAddr::V6(v6) = addr {
            // Any mapped network with a prefix below 96 has host bits set, so prefix >= 96 here.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Err(invalid(format!(
                    "IPv4-mapped IPv6 blocks are not accepted; write it as IPv4: `{v4}/{}`",
                    prefix - 96
                )));
            }
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{value, IntoDeserializer};

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_displays_canonically() {
        for (text, shown) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.0.2.7", "192.0.2.7/32"),
            ("192.0.2.7/32", "192.0.2.7/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:0db8:0000::/48", "2001:db8::/48"),
            ("2001:db8::1", "2001:db8::1/128"),
            ("::/0", "::/0"),
            ("::1", "::1/128"),
            ("10.0.0.0/08", "10.0.0.0/8"),
        ] {
            assert_eq!(cidr(text).to_string(), shown, "{text}");
            assert_eq!(cidr(shown), cidr(text), "{text} round-trips");
        }
    }

    #[test]
    fn rejects_bad_blocks_with_a_clear_message() {
        for (text, why) in [
            ("10.0.0.0/33", "prefix length must be 0-32 for IPv4"),
            ("2001:db8::/129", "prefix length must be 0-128 for IPv6"),
            ("10.0.0.0/256", "prefix length must be 0-32 for IPv4"),
            ("10.0.0.0/99999999999", "prefix length must be 0-32 for IPv4"),
            ("10.0.0.0/", "prefix length after `/` is missing"),
            ("10.0.0.0/+8", "`+8` is not a decimal number"),
            ("10.0.0.0/-1", "`-1` is not a decimal number"),
            ("10.0.0.0/8/8", "`8/8` is not a decimal number"),
            ("10.0.0.0/ 8", "` 8` is not a decimal number"),
            (
                "10.0.0.1/8",
                "host bits are set beyond /8; the block is `10.0.0.0/8`",
            ),
            (
                "2001:db8::1/32",
                "host bits are set beyond /32; the block is `2001:db8::/32`",
            ),
            ("::ffff:10.0.0.0/104", "write it as IPv4: `10.0.0.0/8`"),
            ("::ffff:192.0.2.7", "write it as IPv4: `192.0.2.7/32`"),
            ("::ffff:0:0/80", "host bits are set"),
            ("", "`` is not an IPv4 or IPv6 address"),
            ("/8", "`` is not an IPv4 or IPv6 address"),
            ("10.0.0/8", "`10.0.0` is not an IPv4 or IPv6 address"),
            ("010.0.0.0/8", "is not an IPv4 or IPv6 address"),
            (" 10.0.0.0/8", "is not an IPv4 or IPv6 address"),
            ("fe80::1%eth0", "is not an IPv4 or IPv6 address"),
            ("example.com/8", "is not an IPv4 or IPv6 address"),
        ] {
            let err = text.parse::<Cidr>().expect_err(text);
            assert!(
                err.starts_with(&format!("invalid CIDR block `{text}`: ")),
                "{err}"
            );
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn contains_ipv4() {
        let block = cidr("192.0.2.0/24");
        assert!(block.contains(ip("192.0.2.0")));
        assert!(block.contains(ip("192.0.2.255")));
        assert!(!block.contains(ip("192.0.3.0")));
        assert!(!block.contains(ip("192.0.1.255")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7").contains(ip("192.0.2.8")));
    }

    #[test]
    fn contains_ipv6() {
        let block = cidr("2001:db8:2::/48");
        assert!(block.contains(ip("2001:db8:2::7")));
        assert!(block.contains(ip("2001:db8:2:ffff:ffff:ffff:ffff:ffff")));
        assert!(!block.contains(ip("2001:db8:3::")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert!(cidr("2001:db8::1").contains(ip("2001:db8::1")));
        assert!(!cidr("2001:db8::1").contains(ip("2001:db8::2")));
    }

    #[test]
    fn contains_normalises_mapped_addresses_and_keeps_families_apart() {
        assert!(cidr("192.0.2.0/24").contains(ip("::ffff:192.0.2.7")));
        assert!(!cidr("192.0.2.0/24").contains(ip("::ffff:192.0.3.7")));
        assert!(cidr("0.0.0.0/0").contains(ip("::ffff:203.0.113.9")));
        // After normalisation a mapped address is IPv4: IPv6 blocks never match it.
        assert!(!cidr("::/0").contains(ip("::ffff:192.0.2.7")));
        assert!(!cidr("::/0").contains(ip("192.0.2.7")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        // The deprecated IPv4-compatible form is a different (IPv6) address.
        assert!(!cidr("192.0.2.0/24").contains(ip("::192.0.2.7")));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let de: value::StrDeserializer<value::Error> = "10.0.0.0/8".into_deserializer();
        assert_eq!(Cidr::deserialize(de).unwrap(), cidr("10.0.0.0/8"));
        let de: value::StrDeserializer<value::Error> = "10.0.0.0/33".into_deserializer();
        let err = Cidr::deserialize(de).unwrap_err().to_string();
        assert!(err.contains("prefix length must be 0-32 for IPv4"), "{err}");
    }
}
