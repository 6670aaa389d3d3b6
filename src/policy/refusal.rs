//! Why a data connection was refused: stable reason tokens and the reply text built from them.

use std::fmt;

/// Setting name for [`super::FxpConfig::allow_foreign_port`].
pub(super) const ALLOW_FOREIGN_PORT: &str = "fxp.allow_foreign_port";
/// Setting name for [`super::FxpConfig::allow_foreign_passive`].
pub(super) const ALLOW_FOREIGN_PASSIVE: &str = "fxp.allow_foreign_passive";
/// Setting name for [`super::FxpConfig::allow_privileged_ports`].
pub(super) const ALLOW_PRIVILEGED_PORTS: &str = "fxp.allow_privileged_ports";
/// Setting name for [`super::FxpConfig::allow_anonymous`].
pub(super) const ALLOW_ANONYMOUS: &str = "fxp.allow_anonymous";
/// Setting name for [`super::FxpConfig::peers`].
pub(super) const PEERS: &str = "fxp.peers";
/// The users-file entry that lifts [`Reason::UserDenied`].
pub(super) const USER_ALLOW: &str = "users file: fxp = \"allow\"";

/// The IIS registry value that plays the same role as one of our settings (Microsoft KB Q247132).
fn iis_name(setting: &str) -> Option<&'static str> {
    match setting {
        ALLOW_FOREIGN_PORT => Some("EnablePortAttack"),
        ALLOW_FOREIGN_PASSIVE => Some("EnablePASVTheft"),
        _ => None,
    }
}

/// Why a data connection was refused. The [`token`](Reason::token)s are stable: they appear in
/// replies, logs (`rule=`) and STAT, and operators may match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `foreign-address`: the address is not the client's and the switch for that direction is off
    /// (or the PORT/EPRT target is not a unicast address at all).
    ForeignAddress,
    /// `privileged-port`: a PORT/EPRT target port below 1024, or port 0.
    PrivilegedPort,
    /// `peer-not-listed`: a foreign address outside every `fxp.peers` block.
    PeerNotListed,
    /// `user-denied`: a foreign address for a user whose entry says `fxp = "deny"`.
    UserDenied,
    /// `anonymous-denied`: a foreign address for an anonymous session without `fxp.allow_anonymous`.
    AnonymousDenied,
    /// `epsv-all`: PORT/EPRT/PASV after `EPSV ALL` (RFC 2428 section 4).
    EpsvAll,
    /// `banned`: the client address is banned for repeated refused attempts.
    Banned,
}

impl Reason {
    /// Every reason, in declaration order (the order of [`super::PolicyStats::refused`]).
    pub const ALL: [Reason; 7] = [
        Reason::ForeignAddress,
        Reason::PrivilegedPort,
        Reason::PeerNotListed,
        Reason::UserDenied,
        Reason::AnonymousDenied,
        Reason::EpsvAll,
        Reason::Banned,
    ];

    /// The stable kebab-case token for replies, logs and STAT.
    pub fn token(&self) -> &'static str {
        match self {
            Reason::ForeignAddress => "foreign-address",
            Reason::PrivilegedPort => "privileged-port",
            Reason::PeerNotListed => "peer-not-listed",
            Reason::UserDenied => "user-denied",
            Reason::AnonymousDenied => "anonymous-denied",
            Reason::EpsvAll => "epsv-all",
            Reason::Banned => "banned",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

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
        let mut text = format!(
            "{} refused ({}): {}",
            self.command,
            self.reason.token(),
            self.detail
        );
        if let Some(setting) = self.setting {
            text.push_str("; allowed by ");
            text.push_str(setting);
            if let Some(iis) = iis_name(setting) {
                text.push_str(&format!(" ({iis})"));
            }
        }
        text.push('.');
        text
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
    fn tokens_are_stable_and_distinct() {
        let tokens: Vec<_> = Reason::ALL.iter().map(Reason::token).collect();
        assert_eq!(
            tokens,
            [
                "foreign-address",
                "privileged-port",
                "peer-not-listed",
                "user-denied",
                "anonymous-denied",
                "epsv-all",
                "banned"
            ]
        );
    }

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
