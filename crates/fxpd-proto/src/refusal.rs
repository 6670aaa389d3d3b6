//! The text of a refused data connection: how the server writes it and how a client finds it.
//!
//! The form is one line,
//!
//! ```text
//! <COMMAND> refused (<token>): <detail>[; allowed by <setting>[ (<IIS name>)]].
//! ```
//!
//! e.g. `EPRT refused (peer-not-listed): 192.0.2.7 is not in fxp.peers; allowed by fxp.peers.`
//! The server may put it at the end of a longer reply (`425 Can't open data connection: refused
//! connection from 192.0.2.7: PASV-connection refused (...)...`); [`RefusalText::find`] finds it
//! there.

use crate::setting::iis_name;
use crate::Reason;
use std::fmt;

/// Between the command and the reason token.
pub const REFUSED: &str = " refused (";
/// Between the reason token and the detail.
pub const REASON_END: &str = "): ";
/// Between the detail and the setting that would allow what was refused.
pub const ALLOWED_BY: &str = "; allowed by ";

/// A refusal as it reads in a reply: the command, the reason, what was refused and the
/// setting that would allow it. [`Display`](fmt::Display) writes the reply text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalText<'a> {
    /// The refused command ("PORT", "EPRT", "PASV", ...), or the connection ("PASV-connection").
    pub command: &'a str,
    /// Why it was refused.
    pub reason: Reason,
    /// What was refused, e.g. "127.0.0.3 is not your address (127.0.0.1)". One line; the
    /// server puts only addresses and fixed text here.
    pub detail: &'a str,
    /// The setting that would allow it ([`crate::setting`]), or `None` when none can.
    pub setting: Option<&'a str>,
}

impl RefusalText<'_> {
    /// Finds the refusal that ends `text` (a reply's text without its code), or `None` when
    /// the text holds none: another server's words, or an fxpd reply that is not a refusal.
    pub fn find(text: &str) -> Option<RefusalText<'_>> {
        let mut from = 0;
        while let Some(found) = text[from..].find(REFUSED) {
            let at = from + found;
            if let Some(refusal) = read_at(text, at) {
                return Some(refusal);
            }
            from = at + REFUSED.len();
        }
        None
    }
}

impl fmt::Display for RefusalText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{REFUSED}{}{REASON_END}{}",
            self.command, self.reason, self.detail
        )?;
        if let Some(setting) = self.setting {
            write!(f, "{ALLOWED_BY}{setting}")?;
            if let Some(iis) = iis_name(setting) {
                write!(f, " ({iis})")?;
            }
        }
        f.write_str(".")
    }
}

/// The refusal whose [`REFUSED`] marker is at byte `at` of `text`, running to its end.
fn read_at(text: &str, at: usize) -> Option<RefusalText<'_>> {
    let command = text[..at].rsplit(' ').next()?;
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    if command.is_empty() || !command.bytes().all(is_word) {
        return None;
    }
    let (token, rest) = text[at + REFUSED.len()..].split_once(REASON_END)?;
    let reason = Reason::from_token(token)?;
    let body = rest.strip_suffix('.')?;
    let (detail, setting) = match body.rsplit_once(ALLOWED_BY) {
        Some((detail, setting)) => (detail, Some(without_iis_name(setting))),
        None => (body, None),
    };
    Some(RefusalText {
        command,
        reason,
        detail,
        setting: setting.filter(|s| !s.is_empty()),
    })
}

/// `setting` without the ` (<IIS name>)` that [`RefusalText`]'s text adds after it.
fn without_iis_name(setting: &str) -> &str {
    let named = setting.rsplit_once(" (").and_then(|(name, paren)| {
        let iis = paren.strip_suffix(')')?;
        (iis_name(name) == Some(iis)).then_some(name)
    });
    named.unwrap_or(setting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setting::*;

    const SETTINGS: [Option<&str>; 7] = [
        None,
        Some(ALLOW_FOREIGN_PORT),
        Some(ALLOW_FOREIGN_PASSIVE),
        Some(ALLOW_PRIVILEGED_PORTS),
        Some(ALLOW_ANONYMOUS),
        Some(PEERS),
        Some(USER_ALLOW),
    ];

    #[test]
    fn text_names_token_setting_and_iis_value() {
        let r = RefusalText {
            command: "PORT",
            reason: Reason::ForeignAddress,
            detail: "127.0.0.3 is not your address (127.0.0.1)",
            setting: Some(ALLOW_FOREIGN_PORT),
        };
        assert_eq!(
            r.to_string(),
            "PORT refused (foreign-address): 127.0.0.3 is not your address (127.0.0.1); \
             allowed by fxp.allow_foreign_port (EnablePortAttack)."
        );
        let r = RefusalText {
            command: "PASV",
            reason: Reason::EpsvAll,
            detail: "x",
            setting: None,
        };
        assert_eq!(r.to_string(), "PASV refused (epsv-all): x.");
    }

    #[test]
    fn every_refusal_reads_back_alone_and_after_a_prefix() {
        for reason in Reason::ALL {
            for setting in SETTINGS {
                for command in [
                    "PORT",
                    "EPRT",
                    "PASV",
                    "EPSV",
                    "PASV-connection",
                    "EPSV-connection",
                ] {
                    let written = RefusalText {
                        command,
                        reason,
                        detail: "192.0.2.7 is not your address (198.51.100.1)",
                        setting,
                    };
                    let text = written.to_string();
                    assert_eq!(RefusalText::find(&text), Some(written), "{text}");
                    let reply =
                        format!("Can't open data connection: refused connection from 192.0.2.7: {text}");
                    assert_eq!(RefusalText::find(&reply), Some(written), "{reply}");
                }
            }
        }
    }

    #[test]
    fn other_texts_hold_no_refusal() {
        for text in [
            "Illegal PORT command.",
            "Not allowed by policy.",
            "PORT refused (foreign-address)",
            "PORT refused (no-such-reason): x.",
            "PORT refused (banned): no final period",
            " refused (banned): nobody refused.",
            "Transfer complete.",
        ] {
            assert_eq!(RefusalText::find(text), None, "{text}");
        }
    }

    #[test]
    fn an_unknown_setting_is_kept_whole() {
        let r = RefusalText::find("PORT refused (foreign-address): x; allowed by a.b (Other).").unwrap();
        assert_eq!(r.setting, Some("a.b (Other)"));
        let r =
            RefusalText::find("PORT refused (foreign-address): x; allowed by fxp.peers (EnablePortAttack).")
                .unwrap();
        assert_eq!(r.setting, Some("fxp.peers (EnablePortAttack)"));
    }
}
