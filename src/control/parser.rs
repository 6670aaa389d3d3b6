//! Bytes to [`Command`]: the only place command arguments are interpreted.
//!
//! A parse failure is a [`ParseError`] carrying the reply to send; the session answers it
//! and reads the next command (a bad command never drops the connection). PORT (RFC 959
//! 4.1.2) and EPRT (RFC 2428 2) are parsed strictly here: exactly six decimal fields of
//! 0-255, or a delimiter-framed protocol/address/port triple whose address matches its
//! protocol number.

use super::command::{Command, EpsvArg, OptsArg, SiteArg, TransferType};
use super::reply::{Code, Reply};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

/// Why a line is not a command we accept, as the reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub Reply);

impl ParseError {
    fn new(code: Code, text: impl Into<std::borrow::Cow<'static, str>>) -> ParseError {
        ParseError(Reply::new(code, text))
    }
    fn syntax(text: impl Into<std::borrow::Cow<'static, str>>) -> ParseError {
        ParseError::new(Code::PARAMETER_SYNTAX_ERROR, text)
    }
}

/// Verbs whose argument is a path: invalid UTF-8 there is a 553 (RFC 959 "file name not
/// allowed"), elsewhere a 501.
const PATH_VERBS: &[&str] = &[
    "CWD", "XCWD", "LIST", "NLST", "MLSD", "MLST", "RETR", "STOR", "APPE", "DELE", "RMD", "XRMD", "MKD",
    "XMKD", "RNFR", "RNTO", "SIZE", "MDTM", "STAT", "HASH",
];

/// Parse one command line (without its CRLF, Telnet sequences already removed).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let (verb_bytes, arg_bytes) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    if verb_bytes.is_empty() || verb_bytes.len() > 8 || !verb_bytes.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::new(
            Code::SYNTAX_ERROR,
            "Syntax error, command unrecognized.",
        ));
    }
    // Upper-cased on the stack: at most 8 ASCII letters, checked above.
    let mut upper = [0u8; 8];
    let upper = &mut upper[..verb_bytes.len()];
    upper.copy_from_slice(verb_bytes);
    upper.make_ascii_uppercase();
    let verb = std::str::from_utf8(upper).expect("ASCII");
    let arg = match arg_bytes {
        None => None,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => Some(s),
            Err(_) if PATH_VERBS.contains(&verb) => {
                return Err(ParseError::new(
                    Code::BAD_FILENAME,
                    "File name not allowed: invalid UTF-8.",
                ))
            }
            Err(_) => return Err(ParseError::syntax("Invalid UTF-8 in argument.")),
        },
    };
    if arg.is_some_and(|a| a.contains('\0')) {
        return Err(ParseError::syntax("NUL byte in argument."));
    }
    // An empty argument ("CWD ") counts as none.
    let arg = arg.filter(|a| !a.is_empty());

    let path = |arg: Option<&str>| -> Result<String, ParseError> {
        arg.map(str::to_owned)
            .ok_or_else(|| ParseError::syntax(format!("{verb} needs a path argument.")))
    };
    let none = |arg: Option<&str>, cmd: Command| -> Result<Command, ParseError> {
        match arg {
            None => Ok(cmd),
            Some(_) => Err(ParseError::syntax(format!("{verb} takes no argument."))),
        }
    };

    Ok(match verb {
        "USER" => Command::User(path(arg)?),
        "PASS" => Command::Pass(arg.unwrap_or("").to_owned()),
        "ACCT" => Command::Acct,
        "CWD" | "XCWD" => Command::Cwd(path(arg)?),
        "CDUP" | "XCUP" => none(arg, Command::Cdup)?,
        "PWD" | "XPWD" => none(arg, Command::Pwd)?,
        "LIST" => Command::List(listing_path(arg)),
        "NLST" => Command::Nlst(listing_path(arg)),
        "MLSD" => Command::Mlsd(arg.map(str::to_owned)),
        "MLST" => Command::Mlst(arg.map(str::to_owned)),
        "RETR" => Command::Retr(path(arg)?),
        "STOR" => Command::Stor(path(arg)?),
        "STOU" => none(arg, Command::Stou)?,
        "APPE" => Command::Appe(path(arg)?),
        "REST" => Command::Rest(parse_offset(arg)?),
        "DELE" => Command::Dele(path(arg)?),
        "RMD" | "XRMD" => Command::Rmd(path(arg)?),
        "MKD" | "XMKD" => Command::Mkd(path(arg)?),
        "RNFR" => Command::Rnfr(path(arg)?),
        "RNTO" => Command::Rnto(path(arg)?),
        "SIZE" => Command::Size(path(arg)?),
        "MDTM" => Command::Mdtm(path(arg)?),
        "TYPE" => Command::Type(parse_type(arg)?),
        "MODE" => match arg.map(str::to_ascii_uppercase).as_deref() {
            Some("S") => Command::ModeStream,
            Some("B" | "C" | "Z") => {
                return Err(ParseError::new(
                    Code::PARAMETER_NOT_IMPLEMENTED,
                    "Only MODE S is supported.",
                ))
            }
            _ => return Err(ParseError::syntax("MODE needs S, B or C.")),
        },
        "STRU" => match arg.map(str::to_ascii_uppercase).as_deref() {
            Some("F") => Command::StruFile,
            Some("R" | "P") => {
                return Err(ParseError::new(
                    Code::PARAMETER_NOT_IMPLEMENTED,
                    "Only STRU F is supported.",
                ))
            }
            _ => return Err(ParseError::syntax("STRU needs F, R or P.")),
        },
        "SYST" => Command::Syst,
        "STAT" => Command::Stat(arg.map(str::to_owned)),
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "ABOR" => Command::Abor,
        "FEAT" => none(arg, Command::Feat)?,
        "OPTS" => Command::Opts(parse_opts(arg)?),
        "HELP" => Command::Help(arg.map(str::to_ascii_uppercase)),
        "ALLO" => Command::Allo(parse_allo(arg)?),
        "SITE" => Command::Site(match arg.map(|a| a.trim().to_ascii_uppercase()).as_deref() {
            Some("HELP") | None => SiteArg::Help,
            Some(other) => SiteArg::Other(other.to_owned()),
        }),
        "PORT" => Command::Port(parse_port(
            arg.ok_or_else(|| ParseError::syntax("PORT needs an argument."))?,
        )?),
        "PASV" => none(arg, Command::Pasv)?,
        "HASH" => Command::Hash(path(arg)?),
        "EPRT" => Command::Eprt(parse_eprt(
            arg.ok_or_else(|| ParseError::syntax("EPRT needs an argument."))?,
        )?),
        "EPSV" => Command::Epsv(match arg.map(str::to_ascii_uppercase).as_deref() {
            None => EpsvArg::Any,
            Some("1") => EpsvArg::V4,
            Some("2") => EpsvArg::V6,
            Some("ALL") => EpsvArg::All,
            Some(_) => {
                return Err(ParseError::new(
                    Code::NETWORK_PROTOCOL_NOT_SUPPORTED,
                    "Network protocol not supported, use (1,2)",
                ))
            }
        }),
        "AUTH" => Command::Auth(arg.unwrap_or("").to_ascii_uppercase()),
        "PBSZ" => match arg {
            Some(size) if size.bytes().all(|b| b.is_ascii_digit()) && size.len() <= 10 => Command::Pbsz,
            _ => return Err(ParseError::syntax("PBSZ needs a decimal buffer size (0).")),
        },
        "PROT" => match arg.map(str::to_ascii_uppercase).as_deref() {
            Some("C") => Command::Prot(false),
            Some("P") => Command::Prot(true),
            Some("S" | "E") => {
                return Err(ParseError::new(
                    Code::PROT_NOT_SUPPORTED,
                    "Only PROT C and PROT P are supported.",
                ))
            }
            _ => return Err(ParseError::syntax("PROT needs C, S, E or P.")),
        },
        "CCC" => none(arg, Command::Ccc)?,
        "SSCN" => Command::Sscn(match arg.map(str::to_ascii_uppercase).as_deref() {
            None => None,
            Some("ON") => Some(true),
            Some("OFF") => Some(false),
            Some(_) => return Err(ParseError::syntax("SSCN takes ON or OFF.")),
        }),
        "CPSV" => none(arg, Command::Cpsv)?,
        // A PROXY protocol v1 header reaches the parser only from a peer outside
        // `proxy.trusted`: it is an unrecognised line and names nobody (see `crate::proxy`).
        "PROXY" => {
            return Err(ParseError::new(
                Code::SYNTAX_ERROR,
                "PROXY: not accepted from this address.",
            ))
        }
        _ => {
            return Err(ParseError::new(
                Code::NOT_IMPLEMENTED,
                format!("{verb}: command not implemented."),
            ))
        }
    })
}

/// LIST/NLST arguments: clients send `ls` options (`-la`, `-a dir`); fxpd ignores the
/// options and keeps the path, if any.
fn listing_path(arg: Option<&str>) -> Option<String> {
    let mut rest = arg?.trim_start();
    while let Some(stripped) = rest.strip_prefix('-') {
        let end = stripped.find(' ').unwrap_or(stripped.len());
        if stripped[..end].is_empty() || !stripped[..end].chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        rest = stripped[end..].trim_start();
    }
    (!rest.is_empty()).then(|| rest.to_owned())
}

fn parse_offset(arg: Option<&str>) -> Result<u64, ParseError> {
    let a = arg.ok_or_else(|| ParseError::syntax("REST needs a byte offset."))?;
    if !a.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::syntax("REST offset must be a decimal number."));
    }
    a.parse()
        .map_err(|_| ParseError::syntax("REST offset out of range."))
}

/// `ALLO n` or `ALLO n R m` (RFC 959 4.1.3): decimal digits only, within `u64`; `R m` must
/// be a decimal record size too, and is ignored (fxpd stores files, not records).
fn parse_allo(arg: Option<&str>) -> Result<Option<u64>, ParseError> {
    let Some(arg) = arg else { return Ok(None) };
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = arg.split(' ');
    let (size, record) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(size), None, None, None) => (size, None),
        (Some(size), Some(r), Some(record), None) if r.eq_ignore_ascii_case("R") => (size, Some(record)),
        _ => {
            return Err(ParseError::syntax(
                "ALLO needs a size in bytes, optionally followed by R and a record size.",
            ))
        }
    };
    if !decimal(size) || record.is_some_and(|r| !decimal(r)) {
        return Err(ParseError::syntax("ALLO sizes must be decimal numbers."));
    }
    size.parse()
        .map(Some)
        .map_err(|_| ParseError::syntax("ALLO size out of range."))
}

fn parse_type(arg: Option<&str>) -> Result<TransferType, ParseError> {
    let upper = arg
        .ok_or_else(|| ParseError::syntax("TYPE needs an argument."))?
        .to_ascii_uppercase();
    let mut parts = upper.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("A"), None | Some("N"), None) => Ok(TransferType::Ascii),
        (Some("I"), None, None) | (Some("L"), Some("8"), None) => Ok(TransferType::Image),
        (Some("A"), Some("T" | "C"), None) | (Some("E"), _, None) | (Some("L"), Some(_), None) => {
            Err(ParseError::new(
                Code::PARAMETER_NOT_IMPLEMENTED,
                "Only TYPE A, I and L 8 are supported.",
            ))
        }
        _ => Err(ParseError::syntax("Unrecognised TYPE.")),
    }
}

fn parse_opts(arg: Option<&str>) -> Result<OptsArg, ParseError> {
    let a = arg.ok_or_else(|| ParseError::syntax("OPTS needs an argument."))?;
    let (name, value) = a.split_once(' ').unwrap_or((a, ""));
    Ok(match name.to_ascii_uppercase().as_str() {
        "UTF8" | "UTF-8" => match value.trim().to_ascii_uppercase().as_str() {
            "ON" | "" => OptsArg::Utf8(true),
            "OFF" => OptsArg::Utf8(false),
            _ => return Err(ParseError::syntax("OPTS UTF8 takes ON or OFF.")),
        },
        "MLST" => OptsArg::Mlst(value.trim().to_owned()),
        "HASH" => OptsArg::Hash(Some(value.trim().to_ascii_uppercase()).filter(|v| !v.is_empty())),
        other => OptsArg::Other(other.to_owned()),
    })
}

/// Exactly one to three ASCII digits, value 0-255.
fn octet(field: &str) -> Option<u8> {
    if field.is_empty() || field.len() > 3 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

/// PORT h1,h2,h3,h4,p1,p2 (RFC 959 4.1.2): exactly six fields, each 0-255.
pub fn parse_port(arg: &str) -> Result<SocketAddrV4, ParseError> {
    let fields: Vec<&str> = arg.trim().split(',').collect();
    let bad =
        || ParseError::syntax("PORT needs exactly six comma-separated numbers 0-255 (h1,h2,h3,h4,p1,p2).");
    if fields.len() != 6 {
        return Err(bad());
    }
    let mut n = [0u8; 6];
    for (slot, field) in n.iter_mut().zip(&fields) {
        *slot = octet(field).ok_or_else(bad)?;
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Ok(SocketAddrV4::new(ip, u16::from_be_bytes([n[4], n[5]])))
}

/// `EPRT <d>proto<d>addr<d>port<d>` (RFC 2428 2). The delimiter is any printable ASCII
/// character (33-126) that appears nowhere else; proto 1 is IPv4, 2 is IPv6.
pub fn parse_eprt(arg: &str) -> Result<SocketAddr, ParseError> {
    let bad = |why: &str| ParseError::syntax(format!("EPRT syntax: {why} (expected |proto|address|port|)."));
    let arg = arg.trim();
    let delim = arg.chars().next().ok_or_else(|| bad("empty argument"))?;
    if !('!'..='~').contains(&delim) || delim.is_ascii_alphanumeric() || delim == '.' || delim == ':' {
        return Err(bad("bad delimiter"));
    }
    let parts: Vec<&str> = arg.split(delim).collect();
    // "|1|a|p|" splits into ["", "1", "a", "p", ""].
    if parts.len() != 5 || !parts[0].is_empty() || !parts[4].is_empty() {
        return Err(bad("wrong number of fields"));
    }
    let ip: IpAddr = match parts[1] {
        "1" => parts[2]
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("invalid IPv4 address"))?
            .into(),
        "2" => parts[2]
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("invalid IPv6 address"))?
            .into(),
        _ => {
            return Err(ParseError::new(
                Code::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1,2)",
            ))
        }
    };
    let port = parts[3];
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("invalid port"));
    }
    let port: u16 = port.parse().map_err(|_| bad("port out of range"))?;
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &[u8]) -> u16 {
        parse(line).unwrap_err().0.code.0
    }

    #[test]
    fn verbs_are_case_insensitive_and_args_keep_spaces() {
        assert_eq!(
            parse(b"retr my file.txt").unwrap(),
            Command::Retr("my file.txt".into())
        );
        assert_eq!(parse(b"XPWD").unwrap(), Command::Pwd);
        assert_eq!(parse(b"NOOP").unwrap(), Command::Noop);
    }

    #[test]
    fn port_is_strict() {
        assert_eq!(
            parse(b"PORT 127,0,0,1,4,1").unwrap(),
            Command::Port("127.0.0.1:1025".parse().unwrap())
        );
        for bad in [
            &b"PORT 127,0,0,1,4"[..],
            b"PORT 127,0,0,1,4,1,9",
            b"PORT 256,0,0,1,4,1",
            b"PORT 127,0,0,1,4,",
            b"PORT 127,0,0,1,4,x",
            b"PORT 127,0,0,1,4,-1",
            b"PORT 127,0,0,1,4,0001",
            b"PORT",
        ] {
            assert_eq!(code(bad), 501, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn eprt_v4_v6_and_errors() {
        assert_eq!(
            parse(b"EPRT |1|132.235.1.2|6275|").unwrap(),
            Command::Eprt("132.235.1.2:6275".parse().unwrap())
        );
        assert_eq!(
            parse(b"EPRT |2|::1|5282|").unwrap(),
            Command::Eprt("[::1]:5282".parse().unwrap())
        );
        assert_eq!(
            parse(b"EPRT !2!::1!5282!").unwrap(),
            Command::Eprt("[::1]:5282".parse().unwrap())
        );
        assert_eq!(code(b"EPRT |3|1.2.3.4|5|"), 522);
        assert_eq!(code(b"EPRT |1|::1|5|"), 501);
        assert_eq!(code(b"EPRT |2|1.2.3.4|5|"), 501);
        assert_eq!(code(b"EPRT |1|1.2.3.4|70000|"), 501);
        assert_eq!(code(b"EPRT |1|1.2.3.4|5"), 501);
        assert_eq!(code(b"EPRT |1|1.2.3.4||"), 501);
        assert_eq!(code(b"EPRT 1|1.2.3.4|5|"), 501);
    }

    #[test]
    fn epsv_arguments() {
        assert_eq!(parse(b"EPSV").unwrap(), Command::Epsv(EpsvArg::Any));
        assert_eq!(parse(b"EPSV all").unwrap(), Command::Epsv(EpsvArg::All));
        assert_eq!(parse(b"EPSV 2").unwrap(), Command::Epsv(EpsvArg::V6));
        assert_eq!(code(b"EPSV 7"), 522);
    }

    #[test]
    fn type_mode_stru() {
        assert_eq!(parse(b"TYPE A").unwrap(), Command::Type(TransferType::Ascii));
        assert_eq!(parse(b"TYPE a n").unwrap(), Command::Type(TransferType::Ascii));
        assert_eq!(parse(b"TYPE I").unwrap(), Command::Type(TransferType::Image));
        assert_eq!(parse(b"TYPE L 8").unwrap(), Command::Type(TransferType::Image));
        assert_eq!(code(b"TYPE E"), 504);
        assert_eq!(code(b"TYPE X"), 501);
        assert_eq!(parse(b"MODE S").unwrap(), Command::ModeStream);
        assert_eq!(code(b"MODE B"), 504);
        assert_eq!(parse(b"STRU F").unwrap(), Command::StruFile);
        assert_eq!(code(b"STRU R"), 504);
    }

    #[test]
    fn list_options_are_dropped() {
        assert_eq!(parse(b"LIST -la").unwrap(), Command::List(None));
        assert_eq!(
            parse(b"LIST -a dir name").unwrap(),
            Command::List(Some("dir name".into()))
        );
        assert_eq!(parse(b"LIST /pub").unwrap(), Command::List(Some("/pub".into())));
        assert_eq!(parse(b"NLST").unwrap(), Command::Nlst(None));
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(code(b""), 500);
        assert_eq!(code(b"R3TR x"), 500);
        assert_eq!(code(b"FOOBAR"), 502);
        assert_eq!(code(b"PROXY TCP4 127.0.0.5 127.0.0.2 1 21"), 500);
        assert_eq!(code(b"RETR"), 501);
        assert_eq!(code(b"RETR \xff\xfe"), 553);
        assert_eq!(code(b"USER \xff"), 501);
        assert_eq!(code(b"REST 12a"), 501);
        assert_eq!(code(b"REST 99999999999999999999999"), 501);
        assert_eq!(code(b"RETR a\0b"), 501);
        assert_eq!(code(b"PWD x"), 501);
    }

    #[test]
    fn allo_sizes_are_typed() {
        assert_eq!(parse(b"ALLO").unwrap(), Command::Allo(None));
        assert_eq!(parse(b"ALLO 1048576").unwrap(), Command::Allo(Some(1_048_576)));
        assert_eq!(parse(b"allo 10 R 512").unwrap(), Command::Allo(Some(10)));
        assert_eq!(parse(b"ALLO 0").unwrap(), Command::Allo(Some(0)));
        for bad in [
            &b"ALLO -1"[..],
            b"ALLO 12a",
            b"ALLO 1 2",
            b"ALLO 1 R",
            b"ALLO 1 R x",
            b"ALLO 1 X 2",
            b"ALLO 99999999999999999999999",
            b"ALLO +5",
        ] {
            assert_eq!(code(bad), 501, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn opts() {
        assert_eq!(
            parse(b"OPTS UTF8 ON").unwrap(),
            Command::Opts(OptsArg::Utf8(true))
        );
        assert_eq!(
            parse(b"OPTS utf8 off").unwrap(),
            Command::Opts(OptsArg::Utf8(false))
        );
        assert_eq!(
            parse(b"OPTS MLST type;size;").unwrap(),
            Command::Opts(OptsArg::Mlst("type;size;".into()))
        );
        assert_eq!(parse(b"OPTS HASH").unwrap(), Command::Opts(OptsArg::Hash(None)));
        assert_eq!(
            parse(b"OPTS HASH sha-256").unwrap(),
            Command::Opts(OptsArg::Hash(Some("SHA-256".into())))
        );
        assert_eq!(parse(b"HASH a b.bin").unwrap(), Command::Hash("a b.bin".into()));
        assert_eq!(code(b"HASH"), 501);
    }
}
