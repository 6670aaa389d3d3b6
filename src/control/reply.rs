//! FTP replies as values (RFC 959 section 4.2).
//!
//! Handlers build a [`Reply`]; only [`Reply::to_bytes`] (used by the control-channel
//! writer) turns one into bytes, so the code and the text can never drift apart and a
//! multi-line reply is always framed the way RFC 959 says: `123-first`, continuation
//! lines, `123 last`.

use std::fmt::Write as _;

/// A three-digit FTP reply code. The named constants are the ones fxpd sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u16);

#[allow(missing_docs)]
impl Code {
    pub const RESTART_MARKER: Code = Code(110);
    pub const ALREADY_OPEN: Code = Code(125);
    pub const OPENING: Code = Code(150);
    pub const OK: Code = Code(200);
    pub const NOT_IMPLEMENTED_SUPERFLUOUS: Code = Code(202);
    pub const SYSTEM_STATUS: Code = Code(211);
    pub const DIRECTORY_STATUS: Code = Code(212);
    pub const FILE_STATUS: Code = Code(213);
    pub const HELP: Code = Code(214);
    pub const SYSTEM_TYPE: Code = Code(215);
    pub const READY: Code = Code(220);
    pub const CLOSING: Code = Code(221);
    pub const TRANSFER_COMPLETE_NO_TRANSFER: Code = Code(225);
    pub const TRANSFER_COMPLETE: Code = Code(226);
    pub const PASSIVE: Code = Code(227);
    pub const EXTENDED_PASSIVE: Code = Code(229);
    pub const LOGGED_IN: Code = Code(230);
    pub const FILE_ACTION_OK: Code = Code(250);
    pub const PATH_CREATED: Code = Code(257);
    pub const NEED_PASSWORD: Code = Code(331);
    pub const NEED_ACCOUNT: Code = Code(332);
    pub const PENDING_FURTHER_INFO: Code = Code(350);
    pub const SERVICE_NOT_AVAILABLE: Code = Code(421);
    pub const CANT_OPEN_DATA: Code = Code(425);
    pub const CONNECTION_CLOSED: Code = Code(426);
    pub const FILE_UNAVAILABLE_BUSY: Code = Code(450);
    pub const LOCAL_ERROR: Code = Code(451);
    pub const INSUFFICIENT_STORAGE: Code = Code(452);
    pub const SYNTAX_ERROR: Code = Code(500);
    pub const PARAMETER_SYNTAX_ERROR: Code = Code(501);
    pub const NOT_IMPLEMENTED: Code = Code(502);
    pub const BAD_SEQUENCE: Code = Code(503);
    pub const PARAMETER_NOT_IMPLEMENTED: Code = Code(504);
    pub const NOT_LOGGED_IN: Code = Code(530);
    pub const FILE_UNAVAILABLE: Code = Code(550);
    pub const PAGE_TYPE_UNKNOWN: Code = Code(551);
    pub const EXCEEDED_STORAGE: Code = Code(552);
    pub const BAD_FILENAME: Code = Code(553);
    /// Requested action not taken: invalid REST parameter (RFC 3659 section 5).
    pub const INVALID_RESTART: Code = Code(554);
    pub const NETWORK_PROTOCOL_NOT_SUPPORTED: Code = Code(522);
    pub const AUTH_OK: Code = Code(234);
    pub const TLS_UNAVAILABLE: Code = Code(431);
    pub const PROTECTION_REQUIRED: Code = Code(521);
    pub const POLICY_REFUSED: Code = Code(534);
    pub const PROT_NOT_SUPPORTED: Code = Code(536);
}

/// One reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code.
    pub code: Code,
    /// The text lines. One line is a single-line reply; more make a multi-line reply.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: Code, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply: the first and last line carry the code, the ones between are
    /// indented by one space (RFC 959 4.2: a continuation line that started with digits
    /// could otherwise be mistaken for the end of the reply).
    pub fn multi(code: Code, lines: Vec<String>) -> Reply {
        Reply { code, lines }
    }

    /// The bytes on the wire, CRLF-terminated. CR and LF inside a text line (a file name
    /// from the client, say) are replaced so a line can never end the reply early or
    /// forge another one.
    pub fn to_bytes(&self) -> Vec<u8> {
        let code = self.code.0;
        let mut out = String::with_capacity(64);
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        match self.lines.as_slice() {
            [] => {
                let _ = write!(out, "{code} \r\n");
            }
            [only] => {
                let _ = write!(out, "{code} {}\r\n", clean(only));
            }
            [first, middle @ .., last] => {
                let _ = write!(out, "{code}-{}\r\n", clean(first));
                for line in middle {
                    let _ = write!(out, " {}\r\n", clean(line));
                }
                let _ = write!(out, "{code} {}\r\n", clean(last));
            }
        }
        out.into_bytes()
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
