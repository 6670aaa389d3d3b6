//! Why a data connection was refused: the reason, the setting that would allow it, and the reply
//! text built from them. The words themselves ([`Reason`] tokens, setting names, the form of the
//! text) are defined once in `fxpd_proto`, which `fxpd copy` reads them back with.

use fxpd_proto::RefusalText;
use std::fmt;

pub use fxpd_proto::Reason;
// The setting names are shared with `fxpd copy`, which reads them back out of the replies.
pub(super) use fxpd_proto::setting::{
    ALLOW_ANONYMOUS, ALLOW_FOREIGN_PASSIVE, ALLOW_FOREIGN_PORT, ALLOW_PRIVILEGED_PORTS, PEERS, USER_ALLOW,
};

/// A refused data connection: the reason, the setting that would allow it, and a human sentence.
///
/// Only the policy builds refusals, so every one of them has been counted and logged.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Why it was refused.
    pub reason: Reason,
    /// The setting that would allow it, or `None` when no setting can (`epsv-all`, `banned`, port 0,
    /// a non-unicast target).
    pub setting: Option<&'static str>,
    /// What was refused, e.g. "192.0.2.7 is not your address (198.51.100.1)". Contains only
    /// addresses and fixed text, never client-supplied strings.
    pub detail: String,
    /// The command the refusal answers ("PORT", "EPRT", "PASV-connection", ...).
    command: String,
}

impl Refusal {
    /// Builds a refusal; side effects (log, counters, bans) are the policy's job.
    pub(super) fn new(command: &str, reason: Reason, setting: Option<&'static str>, detail: String) -> Self {
        Refusal {
            reason,
            setting,
            detail,
            command: command.to_owned(),
        }
    }

    /// The command this refusal answers, as given to the policy ("PORT", "EPRT", ...).
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Text for the FTP reply, e.g. `PORT refused (foreign-address): 127.0.0.3 is not your address
    /// (127.0.0.1); allowed by fxp.allow_foreign_port (EnablePortAttack).`
    ///
    /// Always contains the reason token in parentheses and, when there is one, the setting that
    /// would allow it (with the IIS registry name for the two IIS switches). One line, no CR/LF.
    pub fn reply_text(&self) -> String {
        RefusalText {
            command: &self.command,
            reason: self.reason,
            detail: &self.detail,
            setting: self.setting,
        }
        .to_string()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reply_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_names_token_setting_and_iis_value() {
        let r = Refusal::new(
            "PORT",
            Reason::ForeignAddress,
            Some(ALLOW_FOREIGN_PORT),
            "127.0.0.3 is not your address (127.0.0.1)".into(),
        );
        assert_eq!(
            r.reply_text(),
            "PORT refused (foreign-address): 127.0.0.3 is not your address (127.0.0.1); \
             allowed by fxp.allow_foreign_port (EnablePortAttack)."
        );
        let r = Refusal::new(
            "PASV-connection",
            Reason::ForeignAddress,
            Some(ALLOW_FOREIGN_PASSIVE),
            "x".into(),
        );
        assert!(r
            .reply_text()
            .ends_with("; allowed by fxp.allow_foreign_passive (EnablePASVTheft)."));
        let r = Refusal::new("EPRT", Reason::PeerNotListed, Some(PEERS), "x".into());
        assert_eq!(
            r.reply_text(),
            "EPRT refused (peer-not-listed): x; allowed by fxp.peers."
        );
        let r = Refusal::new("PASV", Reason::EpsvAll, None, "x".into());
        assert_eq!(r.reply_text(), "PASV refused (epsv-all): x.");
        assert_eq!(r.command(), "PASV");
    }
}
