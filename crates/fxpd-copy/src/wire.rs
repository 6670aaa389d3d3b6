//! Pure parsers and formatters for the texts `fxpd copy` exchanges with servers: passive
//! addresses (RFC 959 227, RFC 2428 229), PORT/EPRT arguments, FEAT (RFC 2389), transfer
//! progress in STAT replies, MLSD facts (RFC 3659 section 7) and digests
//! (draft-bryan-ftp-hash `HASH`, the `XSHA256`/`XMD5`/`SITE MD5` extensions).

use crate::reply::ServerReply;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};

/// The address in a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply: the first run of
/// six comma-separated numbers 0-255 anywhere in the text (some servers omit parentheses).
pub fn parse_pasv(text: &str) -> Option<SocketAddrV4> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        // A candidate starts a number that does not continue a number or a comma list.
        let before = text[..start].trim_end().as_bytes().last();
        let fresh = !matches!(before, Some(b) if b.is_ascii_digit() || *b == b',')
            && (start == 0 || !bytes[start - 1].is_ascii_digit());
        if bytes[start].is_ascii_digit() && fresh {
            if let Some(addr) = six_numbers(&text[start..]) {
                return Some(addr);
            }
        }
        start += 1;
    }
    None
}

/// `h1,h2,h3,h4,p1,p2` at the start of `text` (whitespace after commas allowed).
fn six_numbers(text: &str) -> Option<SocketAddrV4> {
    let mut nums = [0u8; 6];
    let mut rest = text;
    for (i, slot) in nums.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(',')?.trim_start();
        }
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 3 {
            return None;
        }
        *slot = rest[..len].parse().ok()?;
        rest = &rest[len..];
    }
    // Not the prefix of a longer list of numbers.
    if rest.starts_with(',') && rest[1..].trim_start().starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let [a, b, c, d, p1, p2] = nums;
    Some(SocketAddrV4::new(
        [a, b, c, d].into(),
        u16::from_be_bytes([p1, p2]),
    ))
}

/// The port in a `229 Entering Extended Passive Mode (|||port|)` reply (RFC 2428 section 3:
/// any delimiter from ASCII 33-126, the same four times).
pub fn parse_epsv(text: &str) -> Option<u16> {
    let open = text.find('(')?;
    let inner = &text[open + 1..];
    let close = inner.find(')')?;
    let inner = &inner[..close];
    let d = inner.chars().next().filter(|c| ('!'..='~').contains(c))?;
    let parts: Vec<&str> = inner.split(d).collect();
    match parts.as_slice() {
        ["", "", "", port, ""] => port.parse().ok().filter(|&p| p != 0),
        _ => None,
    }
}

/// `PORT h1,h2,h3,h4,p1,p2` for an IPv4 address (RFC 959 section 4.1.2).
pub fn port_command(addr: SocketAddrV4) -> String {
    let [a, b, c, d] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("PORT {a},{b},{c},{d},{p1},{p2}")
}

/// `EPRT |1|a.b.c.d|port|` or `EPRT |2|v6|port|` (RFC 2428 section 2).
pub fn eprt_command(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(v4) => format!("EPRT |1|{v4}|{}|", addr.port()),
        IpAddr::V6(v6) => format!("EPRT |2|{v6}|{}|", addr.port()),
    }
}

/// What a server announces in FEAT (RFC 2389), as far as `fxpd copy` cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// Whether FEAT was answered with 211 at all.
    pub listed: bool,
    /// `HASH` algorithms in the server's order, e.g. `["SHA-256", "SHA-1"]`.
    pub hash_algorithms: Vec<String>,
    /// The algorithm marked with `*` (selected), if any.
    pub hash_selected: Option<String>,
    /// `XSHA256` is listed.
    pub xsha256: bool,
    /// `XMD5` is listed.
    pub xmd5: bool,
    /// `MLST` (and therefore MLSD) is listed.
    pub mlst: bool,
    /// `REST STREAM` is listed.
    pub rest_stream: bool,
    /// `UTF8` is listed.
    pub utf8: bool,
    /// `SSCN` is listed (the server can be the TLS client on a data connection).
    pub sscn: bool,
    /// `CPSV` is listed (PASV with the server as the TLS client).
    pub cpsv: bool,
}

/// Parses a FEAT reply; anything but 211 means no features are known.
pub fn parse_feat(reply: &ServerReply) -> Features {
    let mut f = Features::default();
    if reply.code != 211 {
        return f;
    }
    f.listed = true;
    for line in reply.body() {
        let (name, arg) = match line.split_once(' ') {
            Some((n, a)) => (n.to_ascii_uppercase(), a.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        match name.as_str() {
            "HASH" => {
                for alg in arg.split(';').map(str::trim).filter(|a| !a.is_empty()) {
                    let name = alg.trim_end_matches('*').to_ascii_uppercase();
                    if alg.ends_with('*') {
                        f.hash_selected = Some(name.clone());
                    }
                    f.hash_algorithms.push(name);
                }
            }
            "XSHA256" => f.xsha256 = true,
            "XMD5" => f.xmd5 = true,
            "MLST" => f.mlst = true,
            "REST" => f.rest_stream = arg.eq_ignore_ascii_case("STREAM"),
            "UTF8" => f.utf8 = true,
            "SSCN" => f.sscn = true,
            "CPSV" => f.cpsv = true,
            _ => {}
        }
    }
    f
}

/// The byte count of a running transfer in a STAT reply, e.g. fxpd's
/// `Data connection open: STOR /f, 12345 of 99999 bytes transferred`: the number right
/// before ` of ` or ` bytes` on a line that mentions bytes. `None` when no line does (for
/// instance `No data connection`).
pub fn parse_stat_progress(reply: &ServerReply) -> Option<u64> {
    reply.lines.iter().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        let end = [" of ", " bytes"]
            .iter()
            .filter_map(|pat| lower.find(pat))
            .min()?;
        let before = lower[..end].trim_end();
        let digits = before
            .rsplit(|c: char| !c.is_ascii_digit() && c != ',')
            .next()?
            .replace(',', "");
        digits.parse().ok()
    })
}

/// The number in a `213 <size>` SIZE reply.
pub fn parse_size(reply: &ServerReply) -> Option<u64> {
    (reply.code == 213)
        .then(|| reply.first_text().trim().parse().ok())
        .flatten()
}

/// One MLSD entry (RFC 3659 section 7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlsdEntry {
    /// The entry name (no `/`, no control characters).
    pub name: String,
    /// `type=dir`.
    pub is_dir: bool,
    /// `type=file`.
    pub is_file: bool,
    /// `size=`, when given.
    pub size: Option<u64>,
}

/// Parses one MLSD line `fact=value;fact=value; name`. `cdir`/`pdir` entries, names with a
/// `/` or control characters, and malformed lines give `None`.
pub fn parse_mlsd_line(line: &str) -> Option<MlsdEntry> {
    let (facts, name) = line.split_once(' ')?;
    // SECURITY: a listing must not name entries outside the directory it lists.
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return None;
    }
    let mut entry = MlsdEntry {
        name: name.to_owned(),
        is_dir: false,
        is_file: false,
        size: None,
    };
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=')?;
        match key.to_ascii_lowercase().as_str() {
            "type" => match value.to_ascii_lowercase().as_str() {
                "dir" => entry.is_dir = true,
                "file" => entry.is_file = true,
                _ => {}
            },
            "size" => entry.size = value.parse().ok(),
            _ => {}
        }
    }
    Some(entry)
}

/// The `213 <algorithm> <range> <hex> <path>` reply to `HASH` (draft-bryan-ftp-hash
/// section 3): the algorithm and the lowercase hex digest.
pub fn parse_hash_reply(reply: &ServerReply) -> Option<(String, String)> {
    if reply.code != 213 {
        return None;
    }
    let mut fields = reply.first_text().split_whitespace();
    let alg = fields.next()?.to_ascii_uppercase();
    let _range = fields.next()?;
    let hex = fields.next()?;
    is_hex(hex).then(|| (alg, hex.to_ascii_lowercase()))
}

/// The first whitespace-separated token of `reply` that is a hex digest of `len` digits
/// (for `XSHA256`, `XMD5` and `SITE MD5` replies, whose layouts differ between servers).
pub fn find_hex_digest(reply: &ServerReply, len: usize) -> Option<String> {
    reply
        .text()
        .split(|c: char| c.is_whitespace() || c == '=' || c == '"' || c == ':')
        .find(|t| t.len() == len && is_hex(t))
        .map(str::to_ascii_lowercase)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> ServerReply {
        ServerReply {
            code,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn pasv_addresses_anywhere_in_the_text() {
        let want: SocketAddrV4 = "192.168.1.20:3901".parse().unwrap();
        for text in [
            "Entering Passive Mode (192,168,1,20,15,61)",
            "Entering Passive Mode (192,168,1,20,15,61).",
            "Entering Passive Mode 192,168,1,20,15,61",
            "=192,168,1,20,15,61",
            "Passive 7 (192, 168, 1, 20, 15, 61)",
        ] {
            assert_eq!(parse_pasv(text), Some(want), "{text}");
        }
        for bad in ["no address", "(1,2,3,4,5)", "(256,1,1,1,1,1)", "(1,2,3,4,5,6,7)"] {
            assert_eq!(parse_pasv(bad), None, "{bad}");
        }
    }

    #[test]
    fn epsv_ports() {
        assert_eq!(
            parse_epsv("Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(parse_epsv("ok (!!!21000!)."), Some(21000));
        for bad in [
            "(|||0|)",
            "(||6446|)",
            "(|1|::1|6446|)",
            "|||6446|",
            "(|||x|)",
            "(|||70000|)",
        ] {
            assert_eq!(parse_epsv(bad), None, "{bad}");
        }
    }

    #[test]
    fn port_and_eprt_arguments() {
        assert_eq!(
            port_command("192.168.1.20:3901".parse().unwrap()),
            "PORT 192,168,1,20,15,61"
        );
        assert_eq!(
            eprt_command("127.0.0.3:40000".parse().unwrap()),
            "EPRT |1|127.0.0.3|40000|"
        );
        assert_eq!(eprt_command("[::1]:40000".parse().unwrap()), "EPRT |2|::1|40000|");
    }

    #[test]
    fn feat_lists() {
        let f = parse_feat(&reply(
            211,
            &[
                "211-Extensions supported:",
                " EPSV",
                " HASH SHA-256*;SHA-1;md5",
                " MLST type*;size*;modify*;",
                " REST STREAM",
                " XMD5",
                " UTF8",
                "211 End",
            ],
        ));
        assert!(f.listed && f.mlst && f.rest_stream && f.utf8 && f.xmd5 && !f.xsha256);
        assert_eq!(f.hash_algorithms, ["SHA-256", "SHA-1", "MD5"]);
        assert_eq!(f.hash_selected.as_deref(), Some("SHA-256"));
        assert_eq!(
            parse_feat(&reply(500, &["500 FEAT not understood"])),
            Features::default()
        );
    }

    #[test]
    fn stat_progress() {
        let during = reply(
            211,
            &[
                "211-fxpd FTP server status:",
                " Connected to 127.0.0.1",
                " Data connection open: RETR /f.bin, 12345 of 99999 bytes transferred",
                "211 End of status",
            ],
        );
        assert_eq!(parse_stat_progress(&during), Some(12345));
        let stor = reply(
            211,
            &[
                "211-x",
                " Data connection open: STOR /a b, 7 bytes transferred",
                "211 End",
            ],
        );
        assert_eq!(parse_stat_progress(&stor), Some(7));
        let grouped = reply(211, &["211-x", " 1,234,567 bytes received", "211 End"]);
        assert_eq!(parse_stat_progress(&grouped), Some(1_234_567));
        let idle = reply(211, &["211-x", " No data connection", "211 End"]);
        assert_eq!(parse_stat_progress(&idle), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&reply(213, &["213 4096"])), Some(4096));
        assert_eq!(parse_size(&reply(550, &["550 No such file"])), None);
        assert_eq!(parse_size(&reply(213, &["213 big"])), None);
    }

    #[test]
    fn mlsd_lines() {
        let e = parse_mlsd_line("type=file;size=42;modify=20240101000000; a file.bin").unwrap();
        assert_eq!(
            e,
            MlsdEntry {
                name: "a file.bin".into(),
                is_dir: false,
                is_file: true,
                size: Some(42)
            }
        );
        assert!(parse_mlsd_line("Type=DIR;perm=el; sub").unwrap().is_dir);
        for bad in [
            "type=cdir; .",
            "type=pdir; ..",
            "type=file; ../x",
            "type=cdir; /home/a",
            "nofacts",
            "type=file; a\u{7}b",
        ] {
            assert_eq!(parse_mlsd_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        let r = reply(213, &[&format!("213 SHA-256 0-100 {hex} /dir/f.bin")]);
        assert_eq!(parse_hash_reply(&r), Some(("SHA-256".into(), hex.clone())));
        assert_eq!(parse_hash_reply(&reply(213, &["213 SHA-256 0-1 zz f"])), None);
        assert_eq!(parse_hash_reply(&reply(550, &["550 nope"])), None);
        let md5 = "0123456789ABCDEF0123456789abcdef";
        for text in [
            format!("250 {md5}"),
            format!("213 f.bin {md5}"),
            format!("200 MD5(f.bin) = {md5}"),
        ] {
            let code = text[..3].parse().unwrap();
            assert_eq!(
                find_hex_digest(&reply(code, &[&text]), 32).as_deref(),
                Some(md5.to_ascii_lowercase().as_str()),
                "{text}"
            );
        }
    }
}
