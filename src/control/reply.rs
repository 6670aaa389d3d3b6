//! FTP replies as values (RFC 959 section 4.2).
//!
//! Handlers build a [`Reply`]; only [`Reply::to_bytes`] and [`Reply::all_to_bytes`] (the
//! latter used by the control-channel writer) turn one into bytes, so the code and the
//! text can never drift apart and a multi-line reply is always framed the way RFC 959
//! says: `123-first`, continuation lines, `123 last`.

use std::borrow::Cow;

/// A three-digit FTP reply code. The named constants are the ones fxpd sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u16);

/// The named codes (RFC 959 section 4.2.2 unless noted).
impl Code {
    /// 110: restart marker reply.
    pub const RESTART_MARKER: Code = Code(110);
    /// 125: data connection already open; transfer starting.
    pub const ALREADY_OPEN: Code = Code(125);
    /// 150: about to open the data connection.
    pub const OPENING: Code = Code(150);
    /// 200: command okay.
    pub const OK: Code = Code(200);
    /// 202: command not implemented, superfluous here.
    pub const NOT_IMPLEMENTED_SUPERFLUOUS: Code = Code(202);
    /// 211: system status, or FEAT.
    pub const SYSTEM_STATUS: Code = Code(211);
    /// 212: directory status.
    pub const DIRECTORY_STATUS: Code = Code(212);
    /// 213: file status (SIZE, MDTM, HASH, STAT of a path).
    pub const FILE_STATUS: Code = Code(213);
    /// 214: help message.
    pub const HELP: Code = Code(214);
    /// 215: system type (SYST).
    pub const SYSTEM_TYPE: Code = Code(215);
    /// 220: service ready (the greeting).
    pub const READY: Code = Code(220);
    /// 221: closing the control connection.
    pub const CLOSING: Code = Code(221);
    /// 225: data connection open, no transfer in progress.
    pub const TRANSFER_COMPLETE_NO_TRANSFER: Code = Code(225);
    /// 226: closing the data connection; transfer complete.
    pub const TRANSFER_COMPLETE: Code = Code(226);
    /// 227: entering passive mode (PASV).
    pub const PASSIVE: Code = Code(227);
    /// 229: entering extended passive mode (EPSV, RFC 2428).
    pub const EXTENDED_PASSIVE: Code = Code(229);
    /// 230: user logged in.
    pub const LOGGED_IN: Code = Code(230);
    /// 250: requested file action okay, completed.
    pub const FILE_ACTION_OK: Code = Code(250);
    /// 257: path created, or the working directory (PWD).
    pub const PATH_CREATED: Code = Code(257);
    /// 331: user name okay, need password.
    pub const NEED_PASSWORD: Code = Code(331);
    /// 332: need account for login.
    pub const NEED_ACCOUNT: Code = Code(332);
    /// 350: requested file action pending further information (REST, RNFR).
    pub const PENDING_FURTHER_INFO: Code = Code(350);
    /// 421: service not available, closing the control connection.
    pub const SERVICE_NOT_AVAILABLE: Code = Code(421);
    /// 425: can't open the data connection.
    pub const CANT_OPEN_DATA: Code = Code(425);
    /// 426: connection closed; transfer aborted.
    pub const CONNECTION_CLOSED: Code = Code(426);
    /// 450: file action not taken: file unavailable (busy).
    pub const FILE_UNAVAILABLE_BUSY: Code = Code(450);
    /// 451: action aborted: local error in processing.
    pub const LOCAL_ERROR: Code = Code(451);
    /// 452: action not taken: insufficient storage.
    pub const INSUFFICIENT_STORAGE: Code = Code(452);
    /// 500: syntax error, command unrecognized.
    pub const SYNTAX_ERROR: Code = Code(500);
    /// 501: syntax error in parameters or arguments.
    pub const PARAMETER_SYNTAX_ERROR: Code = Code(501);
    /// 502: command not implemented.
    pub const NOT_IMPLEMENTED: Code = Code(502);
    /// 503: bad sequence of commands.
    pub const BAD_SEQUENCE: Code = Code(503);
    /// 504: command not implemented for that parameter.
    pub const PARAMETER_NOT_IMPLEMENTED: Code = Code(504);
    /// 530: not logged in.
    pub const NOT_LOGGED_IN: Code = Code(530);
    /// 550: action not taken: file unavailable (not found, no access).
    pub const FILE_UNAVAILABLE: Code = Code(550);
    /// 551: action aborted: page type unknown.
    pub const PAGE_TYPE_UNKNOWN: Code = Code(551);
    /// 552: file action aborted: exceeded storage allocation.
    pub const EXCEEDED_STORAGE: Code = Code(552);
    /// 553: action not taken: file name not allowed.
    pub const BAD_FILENAME: Code = Code(553);
    /// Requested action not taken: invalid REST parameter (RFC 3659 section 5).
    pub const INVALID_RESTART: Code = Code(554);
    /// 522: network protocol not supported (EPRT/EPSV, RFC 2428).
    pub const NETWORK_PROTOCOL_NOT_SUPPORTED: Code = Code(522);
    /// 234: security data exchange complete (AUTH TLS; RFC 2228, RFC 4217).
    pub const AUTH_OK: Code = Code(234);
    /// 431: TLS is not available (RFC 2228: need some unavailable resource for security).
    pub const TLS_UNAVAILABLE: Code = Code(431);
    /// 521: the data connection cannot be opened with this PROT setting (RFC 4217 section 9).
    pub const PROTECTION_REQUIRED: Code = Code(521);
    /// 534: request denied for policy reasons (RFC 2228), e.g. a refused FXP address.
    pub const POLICY_REFUSED: Code = Code(534);
    /// 536: the PROT level is not supported (RFC 2228).
    pub const PROT_NOT_SUPPORTED: Code = Code(536);
}

/// One reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code.
    pub code: Code,
    /// The text lines. One line is a single-line reply; more make a multi-line reply. A fixed
    /// text is borrowed, not copied.
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: Code, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply: the first and last line carry the code, the ones between are
    /// indented by one space (RFC 959 4.2: a continuation line that started with digits
    /// could otherwise be mistaken for the end of the reply).
    pub fn multi(code: Code, lines: Vec<String>) -> Reply {
        Reply {
            code,
            lines: lines.into_iter().map(Cow::Owned).collect(),
        }
    }

    /// The bytes on the wire, CRLF-terminated. CR and LF inside a text line (a file name
    /// from the client, say) are replaced so a line can never end the reply early or
    /// forge another one.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len());
        self.write_to(&mut out);
        out
    }

    /// An upper bound of the reply's length on the wire.
    fn wire_len(&self) -> usize {
        self.lines.iter().map(|l| l.len() + 6).sum::<usize>().max(6)
    }

    /// [`Reply::to_bytes`], appended to `out`. Built without formatting machinery: three
    /// replies go out for every small file a client fetches.
    fn write_to(&self, out: &mut Vec<u8>) {
        let code = |out: &mut Vec<u8>| match self.code.0 {
            c @ 100..=999 => out.extend_from_slice(&[
                b'0' + (c / 100) as u8,
                b'0' + (c / 10 % 10) as u8,
                b'0' + (c % 10) as u8,
            ]),
            c => out.extend_from_slice(c.to_string().as_bytes()),
        };
        let clean = |out: &mut Vec<u8>, text: &str| {
            // Copied whole, then CR and LF replaced in place: a store per byte, which the
            // compiler turns into vector instructions.
            let start = out.len();
            out.extend_from_slice(text.as_bytes());
            for b in &mut out[start..] {
                *b = if *b == b'\r' || *b == b'\n' { b' ' } else { *b };
            }
            out.extend_from_slice(b"\r\n");
        };
        match self.lines.as_slice() {
            [] => {
                code(out);
                out.extend_from_slice(b" \r\n");
            }
            [only] => {
                code(out);
                out.push(b' ');
                clean(out, only);
            }
            [first, middle @ .., last] => {
                code(out);
                out.push(b'-');
                clean(out, first);
                for line in middle {
                    out.push(b' ');
                    clean(out, line);
                }
                code(out);
                out.push(b' ');
                clean(out, last);
            }
        }
    }

    /// Replies that follow each other at once (a transfer's 150 and its final reply) as the
    /// bytes of one write.
    pub fn all_to_bytes(replies: &[Reply]) -> Vec<u8> {
        let mut out = Vec::with_capacity(replies.iter().map(Reply::wire_len).sum());
        for reply in replies {
            reply.write_to(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        let r = Reply::new(Code::OK, "PORT command successful.");
        assert_eq!(r.to_bytes(), b"200 PORT command successful.\r\n");
    }

    #[test]
    fn multi_line_framing() {
        let r = Reply::multi(
            Code::SYSTEM_STATUS,
            vec!["status:".into(), "a".into(), "End".into()],
        );
        assert_eq!(r.to_bytes(), b"211-status:\r\n a\r\n211 End\r\n");
    }

    #[test]
    fn crlf_in_text_cannot_forge_a_reply() {
        let r = Reply::new(Code::FILE_UNAVAILABLE, "x\r\n230 Logged in");
        assert_eq!(r.to_bytes(), b"550 x  230 Logged in\r\n");
    }
}
