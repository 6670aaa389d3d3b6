//! The checks behind every fuzz target, shared with `tests/properties.rs`.
//!
//! Each `pub fn TARGET(data: &[u8])` takes raw bytes, decodes whatever structure it needs with
//! [`Input`] (a small hand-rolled decoder rather than `arbitrary`, so that the main crate's
//! tests can replay the committed corpus without extra dependencies), runs the code under test
//! and panics when an invariant breaks. The fuzz targets in `fuzz_targets/` are one-line
//! wrappers; `tests/properties.rs` runs every file under `corpus/<target>/` through the same
//! function, so a plain `cargo test` exercises the corpus on stable Rust.
//!
//! Oracles are written from the documented behaviour (RFC 959/2428 syntax, the decision table
//! in `src/policy/mod.rs`, the framing rules in `src/control/reply.rs` and `codec.rs`, the
//! confinement rules in `src/session/path.rs` and `src/storage/object.rs`), not by calling the
//! code under test a second time.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use fxpd::control::codec::{Line, LineReader};
use fxpd::control::command::{Command, EpsvArg};
use fxpd::control::parser::{parse, parse_eprt, parse_port, ParseError};
use fxpd::control::reply::{Code, Reply};
use fxpd::policy::{Cidr, DataSetup, FxpConfig, FxpOverride, Grant, Policy, Reason, Who};
use fxpd::proxy::{self, Header, Step};
use fxpd::session::path::resolve;
use fxpd::storage::{home_prefix, normalise_prefix, object_key};
use std::path::{Component, Path, PathBuf};
use tokio::io::{AsyncRead, ReadBuf};

/// A target's check: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// The fuzz targets by name (the names of `fuzz_targets/*.rs` and `corpus/*/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("parse_command", parse_command),
    ("port_eprt", port_eprt),
    ("line_reader", line_reader),
    ("policy", policy),
    ("reply_framing", reply_framing),
    ("proxy_header", proxy_header),
    ("path_confinement", path_confinement),
];

// ---------------------------------------------------------------------------------------------
// Input decoding
// ---------------------------------------------------------------------------------------------

/// Reads typed values off the front of the fuzzer's bytes; an exhausted input reads as zeros.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Decode `data` from its start.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u128(&mut self) -> u128 {
        let mut b = [0u8; 16];
        b.iter_mut().for_each(|x| *x = self.u8());
        u128::from_le_bytes(b)
    }

    /// A length byte (at most `max`), then that many bytes.
    pub fn chunk(&mut self, max: u8) -> &'a [u8] {
        let n = self.u8() % max.saturating_add(1).max(1);
        self.bytes(usize::from(n))
    }

    /// An address, biased toward the ones the policy treats specially.
    pub fn ip(&mut self) -> IpAddr {
        match self.u8() % 8 {
            0 | 1 => IpAddr::V4(Ipv4Addr::from(self.u32())),
            2 => IpAddr::V6(Ipv6Addr::from(self.u128())),
            3 => IpAddr::V6(Ipv4Addr::from(self.u32()).to_ipv6_mapped()),
            // The deprecated IPv4-compatible form: an IPv6 address, not the IPv4 one.
            4 => IpAddr::V6(Ipv6Addr::from(u128::from(self.u32()))),
            5 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, self.u8())),
            _ => SPECIAL[usize::from(self.u8()) % SPECIAL.len()],
        }
    }
}

/// Addresses with a special meaning somewhere in the policy.
const SPECIAL: [IpAddr; 14] = [
    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    IpAddr::V4(Ipv4Addr::BROADCAST),
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(239, 255, 255, 255)),
    IpAddr::V4(Ipv4Addr::new(0, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0207)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
];

// ---------------------------------------------------------------------------------------------
// Address syntax helpers (the client's side of RFC 959 / RFC 2428)
// ---------------------------------------------------------------------------------------------

/// `h1,h2,h3,h4,p1,p2` (RFC 959 4.1.2), as a client sends it after `PORT`.
pub fn format_port(addr: SocketAddrV4) -> String {
    let [h1, h2, h3, h4] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("{h1},{h2},{h3},{h4},{p1},{p2}")
}

/// `<d>proto<d>address<d>port<d>` (RFC 2428 2), as a client sends it after `EPRT`.
pub fn format_eprt(addr: SocketAddr, delim: char) -> String {
    let proto = if addr.is_ipv4() { 1 } else { 2 };
    format!("{delim}{proto}{delim}{}{delim}{}{delim}", addr.ip(), addr.port())
}

/// The delimiters RFC 2428 allows and fxpd accepts: printable ASCII that can appear in neither
/// an address nor a port.
pub fn eprt_delimiters() -> impl Iterator<Item = char> {
    ('!'..='~').filter(|c| !c.is_ascii_alphanumeric() && *c != '.' && *c != ':')
}

/// The address of a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).` reply, read the way
/// clients do: the six numbers between the parentheses.
pub fn client_parse_227(wire: &[u8]) -> Option<SocketAddrV4> {
    let reply = parse_reply(wire).ok()?;
    if reply.code != 227 || reply.lines.len() != 1 {
        return None;
    }
    let text = &reply.lines[0];
    let open = text.find('(')?;
    let close = open + text[open..].find(')')?;
    let mut n = [0u8; 6];
    let mut fields = text[open + 1..close].split(',');
    for slot in &mut n {
        let field = fields.next()?;
        if field.is_empty() || field.len() > 3 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = field.parse().ok()?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(SocketAddrV4::new(
        Ipv4Addr::new(n[0], n[1], n[2], n[3]),
        u16::from_be_bytes([n[4], n[5]]),
    ))
}

/// The port of a `229 Entering Extended Passive Mode (|||port|).` reply (RFC 2428 3): the
/// character after `(` is the delimiter, then two empty fields, the port and the delimiter.
pub fn client_parse_229(wire: &[u8]) -> Option<u16> {
    let reply = parse_reply(wire).ok()?;
    if reply.code != 229 || reply.lines.len() != 1 {
        return None;
    }
    let text = &reply.lines[0];
    let open = text.find('(')?;
    let close = open + text[open..].find(')')?;
    let inner = &text[open + 1..close];
    let delim = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(delim).collect();
    if parts.len() != 5 || parts.iter().enumerate().any(|(i, p)| i != 3 && !p.is_empty()) {
        return None;
    }
    let port = parts[3];
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Target: parse_command
// ---------------------------------------------------------------------------------------------

/// `parse` never panics; errors are 5xx single-line replies; a command's verb is the one sent
/// (aliases mapped); a parsed PORT/EPRT, formatted back, parses to the same address.
pub fn parse_command(data: &[u8]) {
    check_parse_line(data);
}

fn check_parse_line(line: &[u8]) {
    match parse(line) {
        Ok(cmd) => {
            let sent = line.split(|&b| b == b' ').next().unwrap_or_default();
            let sent = String::from_utf8_lossy(sent).to_ascii_uppercase();
            let canonical = match sent.as_str() {
                "XCWD" => "CWD",
                "XCUP" => "CDUP",
                "XPWD" => "PWD",
                "XRMD" => "RMD",
                "XMKD" => "MKD",
                other => other,
            };
            assert_eq!(cmd.verb(), canonical, "verb of {line:?}");
            match cmd {
                Command::Port(addr) => {
                    let again = format!("PORT {}", format_port(addr));
                    assert_eq!(parse(again.as_bytes()), Ok(Command::Port(addr)), "{again}");
                    assert_eq!(parse_port(&format_port(addr)), Ok(addr));
                }
                Command::Eprt(addr) => {
                    let again = format!("EPRT {}", format_eprt(addr, '|'));
                    assert_eq!(parse(again.as_bytes()), Ok(Command::Eprt(addr)), "{again}");
                }
                _ => {}
            }
        }
        Err(ParseError(reply)) => {
            assert!(
                (500..600).contains(&reply.code.0),
                "{line:?} -> {reply:?}: a parse error must be a 5xx reply"
            );
            assert_eq!(reply.lines.len(), 1, "{reply:?}");
            check_framing(&reply);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target: port_eprt
// ---------------------------------------------------------------------------------------------

/// `parse_port`/`parse_eprt` on arbitrary text: never panic; what they accept is exactly the
/// strict syntax (checked field by field); formatting back round-trips; `parse` of
/// `PORT`/`EPRT`/`EPSV` with the same argument agrees with them.
pub fn port_eprt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let arg: &str = &text;

    let port = parse_port(arg);
    if let Ok(addr) = port {
        let fields: Vec<&str> = arg.trim().split(',').collect();
        assert_eq!(fields.len(), 6, "PORT {arg:?} accepted");
        let mut want = [0u8; 6];
        for (slot, f) in want.iter_mut().zip(&fields) {
            assert!(
                !f.is_empty() && f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()),
                "PORT {arg:?} accepted field {f:?}"
            );
            *slot = f
                .parse()
                .unwrap_or_else(|_| panic!("PORT {arg:?} accepted {f:?} > 255"));
        }
        let [h1, h2, h3, h4, p1, p2] = want;
        let expect = SocketAddrV4::new(Ipv4Addr::new(h1, h2, h3, h4), u16::from_be_bytes([p1, p2]));
        assert_eq!(addr, expect, "PORT {arg:?}");
        assert_eq!(parse_port(&format_port(addr)), Ok(addr));
    } else if let Err(ParseError(reply)) = &port {
        assert_eq!(reply.code, Code::PARAMETER_SYNTAX_ERROR, "PORT {arg:?}");
    }

    let eprt = parse_eprt(arg);
    if let Ok(addr) = eprt {
        let trimmed = arg.trim();
        let delim = trimmed.chars().next().expect("accepted EPRT is not empty");
        assert!(
            eprt_delimiters().any(|d| d == delim),
            "EPRT {arg:?} accepted delimiter {delim:?}"
        );
        let parts: Vec<&str> = trimmed.split(delim).collect();
        assert_eq!(parts.len(), 5, "EPRT {arg:?}");
        match parts[1] {
            "1" => assert!(addr.is_ipv4(), "EPRT {arg:?} proto 1 gave {addr}"),
            "2" => assert!(addr.is_ipv6(), "EPRT {arg:?} proto 2 gave {addr}"),
            other => panic!("EPRT {arg:?} accepted protocol {other:?}"),
        }
        assert_eq!(parts[3].parse::<u16>().ok(), Some(addr.port()), "EPRT {arg:?}");
        assert_eq!(parse_eprt(&format_eprt(addr, '|')), Ok(addr));
        assert_eq!(parse_eprt(&format_eprt(addr, delim)), Ok(addr));
    } else if let Err(ParseError(reply)) = &eprt {
        assert!(
            reply.code == Code::PARAMETER_SYNTAX_ERROR || reply.code == Code::NETWORK_PROTOCOL_NOT_SUPPORTED,
            "EPRT {arg:?} -> {reply:?}"
        );
    }

    // The command parser hands the same argument to the same functions. (NUL is refused
    // before any argument parsing, and an empty argument counts as none.)
    if !arg.is_empty() && !arg.contains('\0') {
        let full = |verb: &str| parse(format!("{verb} {arg}").as_bytes());
        assert_eq!(full("PORT").ok(), port.ok().map(Command::Port), "PORT {arg:?}");
        assert_eq!(full("eprt").ok(), eprt.ok().map(Command::Eprt), "EPRT {arg:?}");
        let want = match arg.to_ascii_uppercase().as_str() {
            "1" => Some(EpsvArg::V4),
            "2" => Some(EpsvArg::V6),
            "ALL" => Some(EpsvArg::All),
            _ => None,
        };
        match full("EPSV") {
            Ok(cmd) => assert_eq!(Some(cmd), want.map(Command::Epsv), "EPSV {arg:?}"),
            Err(ParseError(reply)) => {
                assert_eq!(want, None, "EPSV {arg:?} refused");
                assert_eq!(reply.code, Code::NETWORK_PROTOCOL_NOT_SUPPORTED, "EPSV {arg:?}");
            }
        }
    }
    // And the whole input as a command line.
    check_parse_line(data);
}

// ---------------------------------------------------------------------------------------------
// Target: line_reader
// ---------------------------------------------------------------------------------------------

/// A reader that hands out its data in chunks of the given sizes (cycled), and answers
/// `Pending` once before each chunk whose flag is set.
pub struct ChunkedReader {
    data: Vec<u8>,
    pos: usize,
    /// (size, pending first) per chunk, cycled; sizes of 0 count as 1.
    plan: Vec<(usize, bool)>,
    step: usize,
    pending_done: bool,
}

impl ChunkedReader {
    pub fn new(data: Vec<u8>, plan: Vec<(usize, bool)>) -> ChunkedReader {
        let plan = if plan.is_empty() {
            vec![(usize::MAX, false)]
        } else {
            plan
        };
        ChunkedReader {
            data,
            pos: 0,
            plan,
            step: 0,
            pending_done: false,
        }
    }
}

impl AsyncRead for ChunkedReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (size, pending) = this.plan[this.step % this.plan.len()];
        if pending && !this.pending_done && this.pos < this.data.len() {
            this.pending_done = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = size.max(1).min(buf.remaining()).min(this.data.len() - this.pos);
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        this.step += 1;
        this.pending_done = false;
        Poll::Ready(Ok(()))
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
}

/// Every line of `input` through `LineReader::new(&input[..], max)` on a tokio runtime.
pub fn lines_from_slice(input: &[u8], max: usize) -> Vec<Line> {
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let mut reader = LineReader::new(input, max);
            let mut out = Vec::new();
            while let Some(line) = reader.next().await.expect("reading a slice cannot fail") {
                out.push(line);
                assert!(out.len() <= input.len() + 1, "more lines than bytes");
            }
            out
        })
    })
}

/// Every line from `reader`, polling `next()` by hand and dropping (cancelling) the future
/// whenever it is pending: `next()` is documented as cancel-safe, so nothing may be lost.
pub fn lines_cancelling(reader: ChunkedReader, max: usize) -> Vec<Line> {
    let total = reader.data.len();
    let mut reader = LineReader::new(reader, max);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut polls = 0usize;
    loop {
        polls += 1;
        assert!(polls <= 4 * total + 16, "LineReader::next does not make progress");
        let step = {
            let fut = reader.next();
            let mut fut = std::pin::pin!(fut);
            fut.as_mut().poll(&mut cx)
        };
        match step {
            Poll::Ready(Ok(Some(line))) => out.push(line),
            Poll::Ready(Ok(None)) => return out,
            Poll::Ready(Err(e)) => panic!("reading from memory failed: {e}"),
            Poll::Pending => {} // The future is dropped here: a cancellation.
        }
    }
}

/// What `LineReader` must yield, from its documentation: Telnet sequences removed (RFC 854;
/// `IAC IAC` is 0xFF, `IAC` + a non-command byte keeps both bytes), lines split at LF with one
/// preceding CR removed, a line whose bytes before the LF exceed `max` reported once as
/// `TooLong`, a final unterminated line reported only if it is already too long.
pub fn model_lines(input: &[u8], max: usize) -> Vec<Line> {
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        Data,
        Iac,
        Opt,
        Sub,
        SubIac,
    }
    let mut filtered = Vec::with_capacity(input.len());
    let mut state = T::Data;
    for &b in input {
        state = match (state, b) {
            (T::Data, 0xff) => T::Iac,
            (T::Data, b) => {
                filtered.push(b);
                T::Data
            }
            (T::Iac, 0xff) => {
                filtered.push(0xff);
                T::Data
            }
            (T::Iac, 251..=254) => T::Opt, // WILL WONT DO DONT <option>
            (T::Iac, 250) => T::Sub,       // SB ... IAC SE
            (T::Iac, 240..) => T::Data,    // SE NOP DM BRK IP AO AYT EC EL GA
            (T::Iac, b) => {
                filtered.extend_from_slice(&[0xff, b]);
                T::Data
            }
            (T::Opt, _) => T::Data,
            (T::Sub, 0xff) => T::SubIac,
            (T::Sub, _) => T::Sub,
            (T::SubIac, 240) => T::Data,
            (T::SubIac, _) => T::Sub,
        };
    }
    let mut out = Vec::new();
    let mut rest = &filtered[..];
    while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
        let raw = &rest[..lf];
        if raw.len() > max {
            out.push(Line::TooLong);
        } else {
            out.push(Line::Command(raw.strip_suffix(b"\r").unwrap_or(raw).to_vec()));
        }
        rest = &rest[lf + 1..];
    }
    if rest.len() > max {
        out.push(Line::TooLong);
    }
    out
}

/// The line-length bound holds, no line contains LF, and the reader yields what the model says
/// whether the bytes arrive at once or in arbitrary chunks with cancellations in between.
pub fn check_lines(input: &[u8], max: usize, plan: Vec<(usize, bool)>) {
    let whole = lines_from_slice(input, max);
    for line in &whole {
        if let Line::Command(bytes) = line {
            assert!(
                bytes.len() <= max,
                "a line of {} bytes with max {max}",
                bytes.len()
            );
            assert!(!bytes.contains(&b'\n'), "a line containing LF: {bytes:?}");
        }
    }
    assert_eq!(whole, model_lines(input, max), "max {max}, input {input:?}");
    let chunked = lines_cancelling(ChunkedReader::new(input.to_vec(), plan.clone()), max);
    assert_eq!(chunked, whole, "max {max}, chunks {plan:?}, input {input:?}");
}

/// Layout: max (u16 % 1100), a plan length byte and plan bytes (size 1-128, top bit = pending
/// first), then the bytes to read.
pub fn line_reader(data: &[u8]) {
    let mut input = Input::new(data);
    let max = usize::from(input.u16() % 1100);
    let plan = input
        .chunk(16)
        .iter()
        .map(|&b| (usize::from(b & 0x7f) + 1, b & 0x80 != 0))
        .collect();
    check_lines(input.rest(), max, plan);
}

// ---------------------------------------------------------------------------------------------
// Target: policy
// ---------------------------------------------------------------------------------------------

/// IPv4-mapped IPv6 to IPv4; nothing else changes (the policy's `normalize`, written out).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.segments() {
            [0, 0, 0, 0, 0, 0xffff, hi, lo] => {
                IpAddr::V4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
            }
            _ => ip,
        },
        v4 => v4,
    }
}

/// Whether `ip` is inside `block`, computed from the block's text (`network/prefix`).
pub fn block_contains(block: &Cidr, ip: IpAddr) -> bool {
    let text = block.to_string();
    let (net, prefix) = text.split_once('/').expect("a Cidr displays as network/prefix");
    let net: IpAddr = net.parse().expect("a Cidr's network is an address");
    let prefix: u32 = prefix.parse().expect("a Cidr's prefix is a number");
    match (net, canonical(ip)) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            assert!(prefix <= 32, "{text}");
            prefix == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - prefix) == 0
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            assert!(prefix <= 128, "{text}");
            prefix == 0 || (u128::from(n) ^ u128::from(a)) >> (128 - prefix) == 0
        }
        _ => false,
    }
}

/// Not a host one may connect to: unspecified, multicast, IPv4 broadcast.
fn not_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.octets() == [0; 4] || a.octets()[0] >> 4 == 0xe || a.octets() == [255; 4],
        IpAddr::V6(a) => a.segments() == [0; 8] || a.segments()[0] >> 8 == 0xff,
    }
}

/// A `[fxp]` section; peers from arbitrary text or from a (masked) address and prefix.
fn decode_config(input: &mut Input) -> FxpConfig {
    let flags = input.u8();
    let mut peers = Vec::new();
    for _ in 0..input.u8() % 4 {
        let text = if input.bool() {
            String::from_utf8_lossy(input.chunk(48)).into_owned()
        } else {
            let ip = input.ip();
            let (bits, width) = match ip {
                IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
                IpAddr::V6(a) => (u128::from(a), 128),
            };
            let prefix = u32::from(input.u8()) % (width + 1);
            let keep = if prefix == 0 {
                0
            } else {
                u128::MAX << (width - prefix)
            };
            let net = bits & keep & (u128::MAX >> (128 - width));
            let net = match ip {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(net as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(net)),
            };
            format!("{net}/{prefix}")
        };
        if let Ok(block) = text.parse::<Cidr>() {
            let again = block.to_string().parse::<Cidr>();
            assert_eq!(again.as_ref(), Ok(&block), "Cidr {text:?} displays as {block}");
            peers.push(block);
        }
    }
    let big = flags & 0x40 != 0;
    FxpConfig {
        allow_foreign_port: flags & 1 != 0,
        allow_foreign_passive: flags & 2 != 0,
        allow_privileged_ports: flags & 4 != 0,
        allow_anonymous: flags & 8 != 0,
        peers,
        ban_threshold: if big { u32::MAX } else { u32::from(input.u8() % 6) },
        ban_window_secs: if flags & 0x10 != 0 {
            u64::MAX
        } else {
            u64::from(input.u8())
        },
        ban_secs: if flags & 0x20 != 0 {
            u64::MAX
        } else {
            u64::from(input.u8())
        },
    }
}

/// What the decision table in `src/policy/mod.rs` says, row by row.
fn expected(
    cfg: &FxpConfig,
    who: &Who,
    active: bool,
    target: SocketAddr,
    banned: bool,
) -> Result<(), Reason> {
    let peer = canonical(who.peer);
    let ip = canonical(target.ip());
    if banned {
        return Err(Reason::Banned);
    }
    if active {
        if target.port() == 0 || (target.port() < 1024 && !cfg.allow_privileged_ports) {
            return Err(Reason::PrivilegedPort);
        }
        if not_unicast(ip) {
            return Err(Reason::ForeignAddress);
        }
    }
    if ip == peer {
        return Ok(());
    }
    if who.anonymous && !cfg.allow_anonymous {
        return Err(Reason::AnonymousDenied);
    }
    let switch = if active {
        cfg.allow_foreign_port
    } else {
        cfg.allow_foreign_passive
    };
    match who.fxp {
        FxpOverride::Deny => return Err(Reason::UserDenied),
        FxpOverride::Inherit if !switch => return Err(Reason::ForeignAddress),
        _ => {}
    }
    if !cfg.peers.is_empty() && !cfg.peers.iter().any(|b| block_contains(b, ip)) {
        return Err(Reason::PeerNotListed);
    }
    Ok(())
}

/// A config, then up to 64 operations (PORT/EPRT, passive connections, clock steps, reloads,
/// EPSV ALL refusals) on one policy with a controlled clock. Every decision must match the
/// table; approvals are checked against the brief's invariants separately, in plain words.
pub fn policy(data: &[u8]) {
    let mut input = Input::new(data);
    let mut cfg = decode_config(&mut input);
    let base = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let clock_offset = offset.clone();
    let policy = Policy::with_clock(
        cfg.clone(),
        Arc::new(move || base + Duration::from_secs(clock_offset.load(Ordering::Relaxed))),
    );
    let clients = [input.ip(), input.ip(), input.ip()];
    let (mut approved_active, mut approved_passive) = (0u64, 0u64);
    let mut refused = std::collections::HashMap::<Reason, u64>::new();

    for _ in 0..64 {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        let peer = clients[usize::from(op >> 4) % clients.len()];
        let who = Who {
            peer,
            user: (op & 8 != 0).then(|| "alice".into()),
            anonymous: input.bool(),
            fxp: [FxpOverride::Inherit, FxpOverride::Allow, FxpOverride::Deny][usize::from(input.u8() % 3)],
        };
        match op & 7 {
            0..=4 => {
                let target_ip = match input.u8() % 6 {
                    0 => peer,
                    1 => match peer {
                        IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_mapped()),
                        IpAddr::V6(_) => canonical(peer),
                    },
                    2 => clients[usize::from(input.u8()) % clients.len()],
                    _ => input.ip(),
                };
                let port = match input.u8() % 5 {
                    0 => 0,
                    1 => 1023,
                    2 => 1024,
                    3 => u16::from(input.u8()),
                    _ => input.u16(),
                };
                let target = SocketAddr::new(target_ip, port);
                let active = op & 7 <= 2;
                // A passive connection is screened as it arrives (no approval counted) or judged
                // when it is used (approval counted).
                let screen = op & 7 == 3;
                // Row 1 (the client) for everything, row 2 (the connecting source) for passive.
                let banned = policy.is_banned(peer)
                    || (!active && canonical(target_ip) != canonical(peer) && policy.is_banned(target_ip));
                let got = if active {
                    let setup = if op & 1 == 0 {
                        DataSetup::Port(target)
                    } else {
                        DataSetup::Eprt(target)
                    };
                    policy.approve_setup(&who, setup, false).map(|grant| {
                        let Grant::Active(approved) = grant else {
                            panic!("{setup:?} granted a passive listener")
                        };
                        let want = SocketAddr::new(canonical(target.ip()), target.port());
                        assert_eq!(approved.addr().ip(), want.ip(), "approved address");
                        assert_eq!(approved.addr().port(), want.port(), "approved port");
                    })
                } else if screen {
                    policy.screen_passive_peer(&who, target)
                } else {
                    policy.approve_passive_peer(&who, target)
                };
                let got = got.map_err(|refusal| {
                    assert!(!refusal.reply_text().contains(['\r', '\n']), "{refusal:?}");
                    refusal.reason
                });
                let want = expected(&cfg, &who, active, target, banned);
                assert_eq!(
                    got, want,
                    "cfg {cfg:?}, who {who:?}, active {active}, target {target}, banned {banned}"
                );
                match got {
                    Ok(()) if active => approved_active += 1,
                    Ok(()) if screen => {}
                    Ok(()) => approved_passive += 1,
                    Err(reason) => *refused.entry(reason).or_default() += 1,
                }
                if got.is_ok() {
                    // The brief's invariants, independent of the row order above.
                    assert!(!banned, "approved for a banned client or source");
                    if active {
                        assert!(
                            target.port() >= 1024 || (cfg.allow_privileged_ports && target.port() != 0),
                            "approved privileged port {target}"
                        );
                    }
                    if canonical(target.ip()) != canonical(peer) {
                        let switch = if active {
                            cfg.allow_foreign_port
                        } else {
                            cfg.allow_foreign_passive
                        };
                        assert!(
                            who.fxp == FxpOverride::Allow || (switch && who.fxp == FxpOverride::Inherit),
                            "foreign {target} approved without a switch: {cfg:?} {who:?}"
                        );
                        assert!(!who.anonymous || cfg.allow_anonymous, "anonymous FXP approved");
                        assert!(
                            cfg.peers.is_empty() || cfg.peers.iter().any(|b| block_contains(b, target.ip())),
                            "foreign {target} approved outside {:?}",
                            cfg.peers
                        );
                    }
                }
            }
            5 => {
                let step = u64::from(input.u16());
                offset.fetch_add(step, Ordering::Relaxed);
            }
            6 => {
                cfg = decode_config(&mut input);
                policy.reload(cfg.clone());
                assert_eq!(*policy.config(), cfg);
            }
            _ => {
                let own = SocketAddr::new(peer, 2000);
                let setup = [
                    DataSetup::Port(own),
                    DataSetup::Eprt(own),
                    DataSetup::Pasv,
                    DataSetup::Cpsv,
                ][usize::from(input.u8() % 4)];
                let refusal = policy
                    .approve_setup(&who, setup, true)
                    .expect_err("only EPSV after EPSV ALL");
                assert_eq!(refusal.reason, Reason::EpsvAll);
                assert_eq!(refusal.command(), setup.verb());
                *refused.entry(Reason::EpsvAll).or_default() += 1;
            }
        }
    }

    let stats = policy.stats();
    assert_eq!(stats.approved_active, approved_active);
    assert_eq!(stats.approved_passive, approved_passive);
    for (reason, count) in stats.refused {
        assert_eq!(count, refused.get(&reason).copied().unwrap_or(0), "{reason}");
    }
}

// ---------------------------------------------------------------------------------------------
// Target: reply_framing
// ---------------------------------------------------------------------------------------------

/// A reply as a client reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct WireReply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// Reads exactly one reply (RFC 959 4.2) from `wire`: every line ends in CRLF and holds no
/// other CR or LF; the first line is `ddd ` or `ddd-`; a multi-line reply ends at the first
/// line starting with the same code and a space. fxpd's style is also checked: the lines in
/// between start with a space, so no client that ends a reply at any `ddd ` line is misled.
/// Leftover bytes are an error. Returns the texts without their prefixes.
pub fn parse_reply(wire: &[u8]) -> Result<WireReply, String> {
    let text = std::str::from_utf8(wire).map_err(|e| format!("not UTF-8: {e}"))?;
    let body = text.strip_suffix("\r\n").ok_or("does not end in CRLF")?;
    let lines: Vec<&str> = body.split("\r\n").collect();
    if let Some(bad) = lines.iter().find(|l| l.contains(['\r', '\n'])) {
        return Err(format!("bare CR or LF in line {bad:?}"));
    }
    let first = lines[0];
    let head = first
        .get(..4)
        .ok_or_else(|| format!("short first line {first:?}"))?;
    if !head[..3].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("first line {first:?} does not start with a code"));
    }
    let code: u16 = head[..3].parse().map_err(|_| "bad code")?;
    let mut texts = vec![first[4..].to_owned()];
    match head.as_bytes()[3] {
        b' ' if lines.len() == 1 => return Ok(WireReply { code, lines: texts }),
        b' ' => return Err(format!("{} bytes after a single-line reply", lines.len() - 1)),
        b'-' => {}
        _ => {
            return Err(format!(
                "first line {first:?} has no space or hyphen after the code"
            ))
        }
    }
    let end = format!("{} ", &head[..3]);
    for (i, line) in lines.iter().enumerate().skip(1) {
        if let Some(last) = line.strip_prefix(end.as_str()) {
            texts.push(last.to_owned());
            if i + 1 != lines.len() {
                return Err(format!("lines after the end of the reply: {:?}", &lines[i + 1..]));
            }
            return Ok(WireReply { code, lines: texts });
        }
        let middle = line
            .strip_prefix(' ')
            .ok_or_else(|| format!("continuation line {line:?} is not indented"))?;
        texts.push(middle.to_owned());
    }
    Err("multi-line reply without its last line".into())
}

/// `reply.to_bytes()` reads back as exactly one reply with the same code and the same texts
/// (CR and LF replaced by spaces; no lines at all reads as one empty line).
pub fn check_framing(reply: &Reply) {
    let wire = reply.to_bytes();
    let got = parse_reply(&wire).unwrap_or_else(|e| panic!("{reply:?} framed as {wire:?}: {e}"));
    let mut want: Vec<String> = reply.lines.iter().map(|l| l.replace(['\r', '\n'], " ")).collect();
    if want.is_empty() {
        want.push(String::new());
    }
    assert_eq!(
        got,
        WireReply {
            code: reply.code.0,
            lines: want
        },
        "{wire:?}"
    );
}

/// Layout: code (100 + u16 % 500), a line count (0-7), per line a shape byte and a chunk of
/// text. Shapes mix in the attacks on framing: CR/LF, the code followed by a space or hyphen.
pub fn reply_framing(data: &[u8]) {
    let mut input = Input::new(data);
    let code = 100 + input.u16() % 500;
    let count = input.u8() % 8;
    let mut lines = Vec::new();
    for _ in 0..count {
        let shape = input.u8();
        let raw = String::from_utf8_lossy(input.chunk(64)).into_owned();
        lines.push(match shape % 6 {
            0 => format!("{code} {raw}"),
            1 => format!("{code}-{raw}"),
            2 => format!("{raw}\r\n{code} end"),
            3 => format!("\n{raw}\r"),
            _ => raw,
        });
    }
    check_framing(&Reply::multi(Code(code), lines));
}

// ---------------------------------------------------------------------------------------------
// proxy_header
// ---------------------------------------------------------------------------------------------

/// The PROXY protocol parser (`fxpd::proxy::parse`), against the HAProxy specification:
/// reading exactly what it asks for never goes past the header; a prefix that is invalid stays
/// invalid; a header found in a prefix is the one found in the whole input; v1 lines are at most
/// 107 bytes, end in CRLF and (TCP4) re-encode to themselves; v2 lengths are the 16 fixed bytes
/// plus the length field; no source address is left IPv4-mapped.
pub fn proxy_header(data: &[u8]) {
    let whole = proxy::parse(data);
    // Drive the parser as `read_header` does, over `data` as the stream.
    let mut have = 0usize;
    let outcome = loop {
        match proxy::parse(&data[..have]) {
            Ok(Step::Need(n)) => {
                assert!(n > 0, "Need(0) after {have} bytes of {data:?}");
                if have + n > data.len() {
                    // The stream ends first: the whole input must agree it is incomplete or bad.
                    assert!(
                        !matches!(whole, Ok(Step::Done { .. })),
                        "{data:?}: done whole, short prefix"
                    );
                    return;
                }
                have += n;
            }
            other => break other,
        }
    };
    match outcome {
        Ok(Step::Done { header, len }) => {
            assert_eq!(len, have, "{data:?}: read {have} bytes for a {len}-byte header");
            assert_eq!(
                whole,
                Ok(Step::Done { header, len }),
                "{data:?}: prefix and whole differ"
            );
            check_header(&data[..len], header);
        }
        Err(e) => assert!(
            whole.is_err(),
            "{data:?}: prefix invalid ({e}) but whole {whole:?}"
        ),
        Ok(Step::Need(_)) => unreachable!(),
    }
}

fn check_header(bytes: &[u8], header: Header) {
    if let Header::Proxied { source, destination } = header {
        for a in [source, destination] {
            if let IpAddr::V6(v6) = a.ip() {
                assert!(v6.to_ipv4_mapped().is_none(), "{bytes:?}: {a} left IPv4-mapped");
            }
        }
    }
    if bytes.starts_with(b"PROXY ") {
        assert!(
            bytes.len() <= proxy::MAX_V1_LEN && bytes.ends_with(b"\r\n"),
            "{bytes:?}"
        );
        assert_eq!(bytes.windows(2).filter(|w| *w == b"\r\n").count(), 1, "{bytes:?}");
        if bytes.starts_with(b"PROXY TCP4 ") {
            let Header::Proxied { source, destination } = header else {
                panic!("{bytes:?}: TCP4 line without addresses")
            };
            let again = format!(
                "PROXY TCP4 {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            );
            assert_eq!(
                again.as_bytes(),
                bytes,
                "a TCP4 line is accepted only in its canonical form"
            );
        }
    } else {
        assert!(bytes.starts_with(&proxy::V2_SIGNATURE), "{bytes:?}");
        let declared = 16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        assert_eq!(bytes.len(), declared, "{bytes:?}");
        assert!(bytes.len() <= proxy::MAX_V2_LEN);
        match (bytes[12], bytes[13], header) {
            (0x20, _, Header::Local) | (0x21, 0x00, Header::Local) => {}
            (0x21, 0x11, Header::Proxied { source, destination }) => {
                assert_eq!(
                    source.ip(),
                    IpAddr::from([bytes[16], bytes[17], bytes[18], bytes[19]])
                );
                assert_eq!(
                    destination.ip(),
                    IpAddr::from([bytes[20], bytes[21], bytes[22], bytes[23]])
                );
                assert_eq!(source.port(), u16::from_be_bytes([bytes[24], bytes[25]]));
                assert_eq!(destination.port(), u16::from_be_bytes([bytes[26], bytes[27]]));
            }
            (0x21, 0x21, Header::Proxied { .. }) => {}
            other => panic!("{bytes:?}: unexpected command/family/header {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// path_confinement
// ---------------------------------------------------------------------------------------------

/// Pieces a path argument is built from in token mode: separators, dots, backslashes, encoded
/// dots, names, control and non-ASCII characters.
const PATH_TOKENS: &[&str] = &[
    "/", "..", ".", "a", "bob", "\\", "//", "..\\", "%2e%2e", "%2f", " ", "\r", "\u{1}", "é", "~", "*", "?",
    "#",
];

/// A path argument: a length, a mode bit, then either tokens (one byte each) or raw UTF-8.
fn path_text(input: &mut Input, max: u8) -> String {
    let bytes = input.chunk(max);
    match bytes.split_first() {
        Some((mode, rest)) if mode & 1 == 0 => rest
            .iter()
            .map(|b| PATH_TOKENS[usize::from(*b) % PATH_TOKENS.len()])
            .collect(),
        Some((_, rest)) => String::from_utf8_lossy(rest).into_owned(),
        None => String::new(),
    }
}

/// The model of `resolve`: the argument joined to the working directory with the standard
/// library's path rules (`Path::join`, `components`), `..` taken off a stack that never goes
/// below the top.
fn model_resolve(cwd: &str, arg: &str) -> String {
    let joined: PathBuf = if arg.starts_with('/') {
        PathBuf::from(arg)
    } else {
        Path::new(cwd).join(arg)
    };
    let mut stack: Vec<String> = Vec::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                stack.pop();
            }
            Component::Normal(name) => stack.push(name.to_str().expect("UTF-8 in").to_owned()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    format!("/{}", stack.join("/"))
}

/// What a resolved virtual path always is: absolute, no empty, `.` or `..` component, no
/// trailing `/` except the top itself.
fn check_resolved(path: &str, context: &str) {
    assert!(path.starts_with('/'), "{context}: {path:?} is not absolute");
    if path != "/" {
        assert!(!path.ends_with('/'), "{context}: {path:?} ends in /");
        for piece in path[1..].split('/') {
            assert!(
                !piece.is_empty() && piece != "." && piece != "..",
                "{context}: {path:?} has the component {piece:?}"
            );
        }
    }
}

/// A name S3 keys may hold as one component (the documented rule of `storage::object`).
fn key_name(piece: &str) -> bool {
    !piece.is_empty() && piece != "." && piece != ".." && !piece.chars().any(char::is_control)
}

/// The model of `normalise_prefix`: the `/`-separated names, each a key name, as `a/b/`.
fn model_prefix(prefix: &str) -> Option<String> {
    let names: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
    names
        .iter()
        .all(|n| key_name(n))
        .then(|| names.iter().map(|n| format!("{n}/")).collect())
}

/// The model of `home_prefix`, on strings: the home's text after the root's and a `/`, its
/// names (`.` skipped) appended to `base`; none when the home is not below the root or a name
/// is `..` or cannot be a key.
fn model_home_prefix(base: &str, root: &str, home: &str) -> Option<String> {
    let rel = if home == root {
        ""
    } else {
        home.strip_prefix(root)?.strip_prefix('/')?
    };
    let mut out = base.to_owned();
    for name in rel.split('/').filter(|n| !n.is_empty() && *n != ".") {
        if !key_name(name) {
            return None;
        }
        out.push_str(name);
        out.push('/');
    }
    Some(out)
}

/// Whatever `object_key` returns stays under `base`: the rest is key names only.
fn check_key_under(base: &str, key: &str, context: &str) {
    let rest = key
        .strip_prefix(base)
        .unwrap_or_else(|| panic!("{context}: key {key:?} is not under {base:?}"));
    for piece in rest.split('/') {
        assert!(
            key_name(piece),
            "{context}: key {key:?} has the component {piece:?} under {base:?}"
        );
    }
}

/// Path resolution (`session::path::resolve`) and S3 key building (`storage::normalise_prefix`,
/// `home_prefix`, `object_key`) against models: a resolved path equals the standard library's
/// normalisation of the same join, never has a `..`, is a fixed point, and stays under any home
/// on disk; every key starts with the home's prefix and adds key names only, whatever path it is
/// given (resolved or raw), and equals the prefix plus the resolved path's names.
pub fn path_confinement(data: &[u8]) {
    let mut input = Input::new(data);
    let cwd_arg = path_text(&mut input, 48);
    let cwd = resolve("/", &cwd_arg);
    assert_eq!(cwd, model_resolve("/", &cwd_arg), "resolve(\"/\", {cwd_arg:?})");
    check_resolved(&cwd, &format!("CWD {cwd_arg:?}"));
    let arg = path_text(&mut input, 96);
    let path = resolve(&cwd, &arg);
    let context = format!("resolve({cwd:?}, {arg:?})");
    assert_eq!(path, model_resolve(&cwd, &arg), "{context}");
    check_resolved(&path, &context);
    assert_eq!(resolve(&cwd, &path), path, "{context}: not a fixed point");
    assert_eq!(resolve("/", &path), path, "{context}: not absolute");
    // On disk: the home joined with the path, `..` applied, is still the home or below it.
    let home = Path::new("/srv/ftp/alice");
    let mut on_disk = PathBuf::new();
    for part in home.join(path.trim_start_matches('/')).components() {
        match part {
            Component::ParentDir => {
                on_disk.pop();
            }
            other => on_disk.push(other),
        }
    }
    assert!(
        on_disk.starts_with(home),
        "{context}: {} is outside {}",
        on_disk.display(),
        home.display()
    );

    // S3: the server's prefix, a home below the root, then keys.
    let prefix = path_text(&mut input, 24);
    let base = normalise_prefix(&prefix);
    assert_eq!(base, model_prefix(&prefix), "normalise_prefix({prefix:?})");
    let Some(base) = base else { return };
    let home_rel = path_text(&mut input, 24);
    let root = "/srv/ftp";
    let home = Path::new(root).join(&home_rel);
    let home_text = home.to_str().expect("UTF-8");
    let home_base = home_prefix(&base, Path::new(root), &home).ok();
    // `Path::join` with an absolute name replaces the root; `strip_prefix` works on components.
    let cleaned: String = {
        let mut s = String::new();
        for part in home.components() {
            match part {
                Component::RootDir => s.push('/'),
                Component::CurDir => {}
                Component::ParentDir => s.push_str("../"),
                Component::Normal(n) => {
                    s.push_str(n.to_str().expect("UTF-8"));
                    s.push('/');
                }
                Component::Prefix(_) => {}
            }
        }
        s.trim_end_matches('/').to_owned()
    };
    let cleaned = if cleaned.is_empty() {
        "/".to_owned()
    } else {
        cleaned
    };
    assert_eq!(
        home_base,
        model_home_prefix(&base, root, &cleaned),
        "home_prefix({base:?}, {root:?}, {home_text:?})"
    );
    let Some(home_base) = home_base else { return };
    assert!(home_base.starts_with(&base) && (home_base.is_empty() || home_base.ends_with('/')));

    let names: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let want = (!names.is_empty() && names.iter().all(|n| key_name(n)))
        .then(|| format!("{home_base}{}", names.join("/")));
    let key = object_key(&home_base, &path).ok();
    assert_eq!(key, want, "object_key({home_base:?}, {path:?})");
    if let Some(key) = &key {
        check_key_under(&home_base, key, &context);
    }
    // The key guard on its own: a raw, unresolved argument never makes a key outside the home.
    let raw_names: Vec<&str> = arg.split('/').filter(|p| !p.is_empty()).collect();
    let raw = object_key(&home_base, &arg).ok();
    let want = (!raw_names.is_empty() && raw_names.iter().all(|n| key_name(n)))
        .then(|| format!("{home_base}{}", raw_names.join("/")));
    assert_eq!(raw, want, "object_key({home_base:?}, {arg:?})");
    if let Some(raw) = &raw {
        check_key_under(&home_base, raw, &format!("raw {arg:?}"));
    }
}
