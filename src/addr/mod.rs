//! IP address vocabulary shared by the configuration, the policy, the PROXY protocol reader and
//! the cluster: [`normalize`] (IPv4-mapped IPv6 is IPv4) and [`Cidr`] blocks.

mod cidr;

use std::net::IpAddr;

pub use cidr::Cidr;

/// Normalise an address for comparison: IPv4-mapped IPv6 (`::ffff:a.b.c.d`, RFC 4291 section
/// 2.5.5.2) becomes IPv4; every other address is returned unchanged.
///
/// Deliberately not `Ipv6Addr::to_ipv4`: that would also turn the deprecated IPv4-compatible form
/// `::a.b.c.d` into IPv4 (and `::1` into `0.0.0.1`), making two different hosts compare equal.
pub fn normalize(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}
