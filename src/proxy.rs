//! The PROXY protocol (HAProxy's "PROXY protocol" specification, versions 1 and 2): how a TCP
//! load balancer in front of fxpd tells it who the real client is.
//!
//! Behind a balancer every connection comes from the balancer's address, so the checks that
//! protect FXP (the PORT target and the passive source must be the client's own address), the
//! login lockout, the per-address session cap, bans and the logs would all see the balancer.
//! With `proxy.trusted` set, a connection from one of those blocks must start with a PROXY
//! header, and the header's source address becomes the connection's client address. The
//! decision whether a peer is trusted is the policy's ([`crate::policy::Policy::proxy_trust`]);
//! this module only parses.
//!
//! # What is accepted
//!
//! - Version 1, a text line of at most 107 bytes: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`,
//!   `PROXY TCP6 ...`, or `PROXY UNKNOWN[ anything]\r\n`. Single spaces, addresses of the
//!   named family, ports decimal 0-65535 without leading zeros.
//! - Version 2, binary: the 12-byte signature, the version/command byte (`0x20` LOCAL, `0x21`
//!   PROXY), the family byte (`0x11` TCP over IPv4, `0x21` TCP over IPv6, `0x00` unspecified),
//!   a big-endian length, the addresses, then TLVs, which must tile the rest of the header
//!   exactly and are skipped. Headers longer than [`MAX_V2_LEN`] are refused.
//!
//! LOCAL (v2), UNKNOWN (v1) and PROXY over AF_UNSPEC (v2) carry no client: they are the
//! balancer's own connections (health checks). They parse to [`Header::Local`]; the server
//! answers them with its greeting and closes, without creating a session, so a health check is
//! never a client, never a login failure and never counts toward a per-address cap. UDP and
//! UNIX-socket headers are refused: fxpd only serves TCP.
//!
//! # Reading without over-reading
//!
//! [`parse`] is sans-IO: given the bytes read so far it either finishes or says how many more
//! bytes to read at least ([`Step::Need`]); reading exactly that many never consumes a byte of
//! the FTP stream (or the TLS handshake) that follows the header. Version 1 is therefore read one
//! byte at a time once its 15-byte minimum is in; version 2 reads 16 bytes, then the length.
//! [`read_header`] drives it over a socket; callers bound it with [`HEADER_TIMEOUT`].

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::addr::normalize;
pub use crate::config::ProxyConfig;

/// How long a trusted peer has to send its whole PROXY header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The version 2 signature (12 bytes).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 header, CRLF included (the specification's limit).
pub const MAX_V1_LEN: usize = 107;

/// The longest version 2 header accepted, the 16 fixed bytes included. Room for the addresses
/// and the TLVs HAProxy sends (unique id, authority, TLS details); anything longer is refused.
pub const MAX_V2_LEN: usize = 16 + 2048;

/// The shortest possible header (`PROXY UNKNOWN\r\n`; a version 2 header has at least 16
/// bytes): reading this many first never over-reads.
const MIN_LEN: usize = 15;

const V1_PREFIX: &[u8] = b"PROXY ";

/// A parsed PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A proxied TCP connection.
    Proxied {
        /// The real client (IPv4-mapped IPv6 normalised to IPv4).
        source: SocketAddr,
        /// The address the client connected to on the balancer (normalised likewise).
        destination: SocketAddr,
    },
    /// The balancer's own connection (v2 LOCAL, v1 UNKNOWN, v2 PROXY over AF_UNSPEC): no client.
    Local,
}

/// Why bytes are not a valid PROXY header. The text is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Invalid {}

/// What [`parse`] makes of the bytes read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read at least this many more bytes (exactly this many never over-reads).
    Need(usize),
    /// A complete header, which is the first `len` bytes.
    Done {
        /// The header.
        header: Header,
        /// Its length in bytes.
        len: usize,
    },
}

/// Parse the start of a connection. See the module docs for what is accepted.
pub fn parse(buf: &[u8]) -> Result<Step, Invalid> {
    let head = &buf[..buf.len().min(V2_SIGNATURE.len())];
    let v1 = if head.len() >= V1_PREFIX.len() {
        head.starts_with(V1_PREFIX)
    } else {
        V1_PREFIX.starts_with(head)
    };
    if !v1 && !V2_SIGNATURE.starts_with(head) {
        return Err(Invalid("not a PROXY protocol header"));
    }
    if buf.len() < MIN_LEN {
        return Ok(Step::Need(MIN_LEN - buf.len()));
    }
    if buf.starts_with(V1_PREFIX) {
        parse_v1(buf)
    } else {
        parse_v2(buf)
    }
}

fn parse_v1(buf: &[u8]) -> Result<Step, Invalid> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        // Fail at the first stray byte rather than after 107: only a final CR may be pending.
        let (last, before) = buf.split_last().expect("at least MIN_LEN bytes");
        if !before.iter().all(|&b| is_v1_char(b)) || !(is_v1_char(*last) || *last == b'\r') {
            return Err(Invalid("version 1 header holds a control or non-ASCII byte"));
        }
        if buf.len() >= MAX_V1_LEN {
            return Err(Invalid("version 1 header longer than 107 bytes"));
        }
        return Ok(Step::Need(1));
    };
    let len = end + 2;
    if len > MAX_V1_LEN {
        return Err(Invalid("version 1 header longer than 107 bytes"));
    }
    let line = &buf[V1_PREFIX.len()..end];
    if !line.iter().all(|&b| is_v1_char(b)) {
        return Err(Invalid("version 1 header holds a control or non-ASCII byte"));
    }
    // Checked above: printable ASCII only.
    let line = std::str::from_utf8(line).map_err(|_| Invalid("version 1 header is not ASCII"))?;
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(Step::Done {
            header: Header::Local,
            len,
        });
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [proto, src, dst, sport, dport] = fields[..] else {
        return Err(Invalid(
            "version 1 header needs `TCP4|TCP6 src dst sport dport` separated by single spaces",
        ));
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            src.parse::<Ipv4Addr>()
                .map_err(|_| Invalid("bad TCP4 source address"))?
                .into(),
            dst.parse::<Ipv4Addr>()
                .map_err(|_| Invalid("bad TCP4 destination address"))?
                .into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>()
                .map_err(|_| Invalid("bad TCP6 source address"))?
                .into(),
            dst.parse::<Ipv6Addr>()
                .map_err(|_| Invalid("bad TCP6 destination address"))?
                .into(),
        ),
        _ => return Err(Invalid("version 1 protocol must be TCP4, TCP6 or UNKNOWN")),
    };
    let header = Header::Proxied {
        source: socket(src, v1_port(sport)?),
        destination: socket(dst, v1_port(dport)?),
    };
    Ok(Step::Done { header, len })
}

/// Printable ASCII, space included: the only bytes a version 1 line may hold before its CRLF.
fn is_v1_char(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// A version 1 port: decimal 0-65535, no sign, no leading zero.
fn v1_port(text: &str) -> Result<u16, Invalid> {
    let bad = Invalid("version 1 port must be decimal 0-65535 without leading zeros");
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(bad);
    }
    text.parse().map_err(|_| bad)
}

fn parse_v2(buf: &[u8]) -> Result<Step, Invalid> {
    if buf.len() < 16 {
        return Ok(Step::Need(16 - buf.len()));
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(Invalid("version 2 signature with a version other than 2"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(Invalid("version 2 command must be LOCAL or PROXY")),
    };
    let family = buf[13];
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > MAX_V2_LEN {
        return Err(Invalid("version 2 header too long"));
    }
    if buf.len() < len {
        return Ok(Step::Need(len - buf.len()));
    }
    let body = &buf[16..len];
    // The LOCAL command's address block is ignored whatever it holds (the specification).
    if local {
        return Ok(Step::Done {
            header: Header::Local,
            len,
        });
    }
    let (header, tlvs) = match family {
        0x00 => (Header::Local, &[][..]),
        0x11 => {
            let Some((a, rest)) = body.split_first_chunk::<12>() else {
                return Err(Invalid("version 2 TCP over IPv4 needs 12 address bytes"));
            };
            let src = Ipv4Addr::from([a[0], a[1], a[2], a[3]]);
            let dst = Ipv4Addr::from([a[4], a[5], a[6], a[7]]);
            let header = Header::Proxied {
                source: socket(src.into(), u16::from_be_bytes([a[8], a[9]])),
                destination: socket(dst.into(), u16::from_be_bytes([a[10], a[11]])),
            };
            (header, rest)
        }
        0x21 => {
            let Some((a, rest)) = body.split_first_chunk::<36>() else {
                return Err(Invalid("version 2 TCP over IPv6 needs 36 address bytes"));
            };
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&a[..16]);
            dst.copy_from_slice(&a[16..32]);
            let header = Header::Proxied {
                source: socket(Ipv6Addr::from(src).into(), u16::from_be_bytes([a[32], a[33]])),
                destination: socket(Ipv6Addr::from(dst).into(), u16::from_be_bytes([a[34], a[35]])),
            };
            (header, rest)
        }
        _ => return Err(Invalid("version 2 family must be TCP over IPv4 or IPv6")),
    };
    check_tlvs(tlvs)?;
    Ok(Step::Done { header, len })
}

/// TLVs (type, 16-bit length, value) must tile the rest of the header exactly; their contents
/// are not used.
fn check_tlvs(mut rest: &[u8]) -> Result<(), Invalid> {
    while !rest.is_empty() {
        let Some((head, tail)) = rest.split_first_chunk::<3>() else {
            return Err(Invalid("version 2 TLV cut short"));
        };
        let n = usize::from(u16::from_be_bytes([head[1], head[2]]));
        if tail.len() < n {
            return Err(Invalid("version 2 TLV longer than the header"));
        }
        rest = &tail[n..];
    }
    Ok(())
}

fn socket(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(normalize(ip), port)
}

/// Why a PROXY header could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection failed or closed before the header was complete.
    Io(io::Error),
    /// The bytes are not a valid header.
    Invalid(Invalid),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Invalid(e) => write!(f, "invalid PROXY header: {e}"),
        }
    }
}

/// Read exactly one PROXY header off `stream` (nothing after it). Not bounded in time: wrap it in
/// a timeout ([`HEADER_TIMEOUT`]).
pub async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> Result<Header, ReadError> {
    let mut buf = Vec::with_capacity(MIN_LEN);
    loop {
        match parse(&buf).map_err(ReadError::Invalid)? {
            Step::Done { header, .. } => return Ok(header),
            Step::Need(n) => {
                let have = buf.len();
                buf.resize(have + n, 0);
                stream.read_exact(&mut buf[have..]).await.map_err(ReadError::Io)?;
            }
        }
    }
}

#[cfg(test)]
mod tests;
