//! Why an FXP arrangement did not work, and which server setting would allow it.
//!
//! In an FXP transfer each server needs one check relaxed (docs/fxp.md): the server that
//! receives PORT/EPRT naming the other server must allow a foreign PORT target, and the
//! server that answered PASV/EPSV must accept a data connection from a foreign address.
//! Servers name these switches differently; [`ServerKind`] (guessed from the greeting)
//! picks the right name, and fxpd says it itself in its reply (`allowed by <setting>`), in the
//! words of `fxpd_proto` that its server writes them with.

use crate::client::Role;
use crate::reply::ServerReply;
use fxpd_proto::{setting, RefusalText};
use std::fmt;
use std::net::SocketAddr;

/// The server software, as far as it matters for naming settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// fxpd (names the setting in its refusals).
    Fxpd,
    /// vsftpd: `port_promiscuous` / `pasv_promiscuous`.
    Vsftpd,
    /// Microsoft IIS: registry values `EnablePortAttack` / `EnablePASVTheft` (KB Q247132).
    Iis,
    /// ProFTPD: `AllowForeignAddress`.
    ProFtpd,
    /// Pure-FTPd: `--allowuserfxp`.
    PureFtpd,
    /// Anything else.
    Unknown,
}

impl ServerKind {
    /// Guesses the server from its greeting (default banners name the software).
    pub fn from_greeting(greeting: &ServerReply) -> ServerKind {
        let text = greeting.text().to_ascii_lowercase();
        if text.contains("fxpd") {
            ServerKind::Fxpd
        } else if text.contains("vsftpd") {
            ServerKind::Vsftpd
        } else if text.contains("microsoft ftp") {
            ServerKind::Iis
        } else if text.contains("proftpd") {
            ServerKind::ProFtpd
        } else if text.contains("pure-ftpd") {
            ServerKind::PureFtpd
        } else {
            ServerKind::Unknown
        }
    }
}

/// What a server would not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// It refused PORT/EPRT naming the other server (a foreign address).
    ForeignPort,
    /// It did not take the other server's connection on its passive port.
    ForeignPassive,
    /// It accepted PORT but could not connect to the other server.
    Connect,
    /// It would not open a passive port at all (PASV/EPSV failed).
    NoPassive,
}

/// One refused arrangement: who refused what, and the server's own words.
#[derive(Debug, Clone)]
pub struct RemoteRefusal {
    /// Source or destination.
    pub role: Role,
    /// E.g. "the source 127.0.0.2:2121".
    pub server: String,
    /// The server software, for the setting's name.
    pub kind: ServerKind,
    /// What it refused.
    pub what: What,
    /// The other server's data address involved (the PORT target, or the passive address).
    pub target: Option<SocketAddr>,
    /// The reply that refused, when there was one.
    pub reply: Option<ServerReply>,
}

impl RemoteRefusal {
    /// The setting that would allow what was refused on this server, if one does.
    pub fn setting(&self) -> Option<String> {
        // fxpd names the exact setting (fxp.peers, a user's override, ...) in its refusals,
        // or says by naming none that no setting allows it (a ban, port 0, EPSV ALL).
        if let Some(reply) = &self.reply {
            if let Some(refusal) = RefusalText::find(&reply.text()) {
                return refusal.setting.map(|setting| match setting::iis_name(setting) {
                    Some(iis) => format!("{setting} ({iis})"),
                    None => setting.to_owned(),
                });
            }
        }
        if self.kind == ServerKind::Fxpd && self.reply.is_some() && self.what == What::ForeignPort {
            // An fxpd answer to PORT that is not a refusal text: no setting is known to allow it.
            return None;
        }
        let (port, passive) = (setting::ALLOW_FOREIGN_PORT, setting::ALLOW_FOREIGN_PASSIVE);
        let (port_iis, passive_iis) = (setting::IIS_ENABLE_PORT_ATTACK, setting::IIS_ENABLE_PASV_THEFT);
        let name = match (self.what, self.kind) {
            (What::ForeignPort, ServerKind::Fxpd) => format!("{port} = true (IIS: {port_iis})"),
            (What::ForeignPort, ServerKind::Iis) => format!("the registry value {port_iis} = 1 (KB Q247132)"),
            (What::ForeignPort, ServerKind::Vsftpd) => "port_promiscuous=YES".into(),
            (What::ForeignPassive, ServerKind::Fxpd) => format!("{passive} = true (IIS: {passive_iis})"),
            (What::ForeignPassive, ServerKind::Iis) => {
                format!("the registry value {passive_iis} = 1 (KB Q247132)")
            }
            (What::ForeignPassive, ServerKind::Vsftpd) => "pasv_promiscuous=YES".into(),
            (What::ForeignPort | What::ForeignPassive, ServerKind::ProFtpd) => "AllowForeignAddress on".into(),
            (What::ForeignPort | What::ForeignPassive, ServerKind::PureFtpd) => "--allowuserfxp".into(),
            (What::ForeignPort, ServerKind::Unknown) => format!(
                "{port} (fxpd), {port_iis} (IIS), port_promiscuous (vsftpd) or AllowForeignAddress (ProFTPD)"
            ),
            (What::ForeignPassive, ServerKind::Unknown) => format!(
                "{passive} (fxpd), {passive_iis} (IIS), pasv_promiscuous (vsftpd) or AllowForeignAddress (ProFTPD)"
            ),
            (What::Connect | What::NoPassive, _) => return None,
        };
        Some(name)
    }

    /// One clause: who refused what, the server's words, and what would allow it.
    pub fn describe(&self) -> String {
        let server = &self.server;
        let target = self
            .target
            .map(|t| t.to_string())
            .unwrap_or_else(|| "the other server".into());
        let said = self
            .reply
            .as_ref()
            .map(|r| format!(" (`{r}`)"))
            .unwrap_or_default();
        let mut text = match self.what {
            What::ForeignPort => format!("{server} refused PORT to the other server at {target}{said}"),
            What::ForeignPassive => format!(
                "{server} did not accept the other server's data connection on its passive port{said}"
            ),
            What::Connect => format!("{server} could not connect to the other server at {target}{said}"),
            What::NoPassive => format!("{server} would not open a passive port{said}"),
        };
        match (self.what, self.setting()) {
            (What::Connect, _) => text.push_str("; check that the two servers can reach each other"),
            (What::NoPassive, _) => {}
            (_, Some(setting)) => text.push_str(&format!("; {setting} on that server would allow it")),
            (_, None) => text.push_str("; no setting of that server allows it"),
        }
        text
    }
}

impl fmt::Display for RemoteRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> ServerReply {
        ServerReply {
            code,
            lines: vec![format!("{code} {text}")],
        }
    }

    fn refusal(what: What, kind: ServerKind, reply: Option<ServerReply>) -> RemoteRefusal {
        RemoteRefusal {
            role: Role::Source,
            server: "the source 127.0.0.2:2121".into(),
            kind,
            what,
            target: Some("127.0.0.3:40000".parse().unwrap()),
            reply,
        }
    }

    #[test]
    fn kinds_from_greetings() {
        for (text, kind) in [
            ("fxpd FTP server ready.", ServerKind::Fxpd),
            ("(vsFTPd 3.0.3)", ServerKind::Vsftpd),
            ("Microsoft FTP Service", ServerKind::Iis),
            ("ProFTPD Server (Debian)", ServerKind::ProFtpd),
            (
                "---------- Welcome to Pure-FTPd [privsep] ----------",
                ServerKind::PureFtpd,
            ),
            ("hello", ServerKind::Unknown),
        ] {
            assert_eq!(ServerKind::from_greeting(&reply(220, text)), kind, "{text}");
        }
    }

    #[test]
    fn fxpd_names_its_own_setting() {
        let r = refusal(
            What::ForeignPort,
            ServerKind::Fxpd,
            Some(reply(
                504,
                "PORT refused (foreign-address): 127.0.0.3 is not your address (127.0.0.1); \
                 allowed by fxp.allow_foreign_port (EnablePortAttack).",
            )),
        );
        assert_eq!(
            r.setting().as_deref(),
            Some("fxp.allow_foreign_port (EnablePortAttack)")
        );
        let text = r.describe();
        assert!(
            text.starts_with("the source 127.0.0.2:2121 refused PORT to the other server at 127.0.0.3:40000")
        );
        assert!(text.contains("foreign-address"), "{text}");
        let peers = refusal(
            What::ForeignPort,
            ServerKind::Fxpd,
            Some(reply(
                504,
                "EPRT refused (peer-not-listed): x; allowed by fxp.peers.",
            )),
        );
        assert_eq!(peers.setting().as_deref(), Some("fxp.peers"));
        let banned = refusal(
            What::ForeignPort,
            ServerKind::Fxpd,
            Some(reply(
                504,
                "PORT refused (banned): 127.0.0.1 is temporarily banned.",
            )),
        );
        assert!(banned.describe().ends_with("no setting of that server allows it"));
    }

    #[test]
    fn fxpd_refusals_are_found_inside_longer_replies() {
        // What fxpd answers STOR/RETR with when it turned the other server's connection away.
        let passive = refusal(
            What::ForeignPassive,
            ServerKind::Fxpd,
            Some(reply(
                425,
                "Can't open data connection: refused connection from 127.0.0.3: PASV-connection \
                 refused (foreign-address): 127.0.0.3 is not your address (127.0.0.1); allowed by \
                 fxp.allow_foreign_passive (EnablePASVTheft).",
            )),
        );
        assert_eq!(
            passive.setting().as_deref(),
            Some("fxp.allow_foreign_passive (EnablePASVTheft)")
        );
        // A renamed banner does not hide fxpd's own words.
        let user = refusal(
            What::ForeignPort,
            ServerKind::Unknown,
            Some(reply(
                504,
                "PORT refused (user-denied): 127.0.0.3 is not your address; allowed by users file: fxp = \"allow\".",
            )),
        );
        assert_eq!(user.setting().as_deref(), Some("users file: fxp = \"allow\""));
        let banned = refusal(
            What::ForeignPassive,
            ServerKind::Unknown,
            Some(reply(
                425,
                "Can't open data connection: refused connection from 127.0.0.3: PASV-connection \
                 refused (banned): 127.0.0.3 is temporarily banned.",
            )),
        );
        assert_eq!(banned.setting(), None);
    }

    #[test]
    fn other_servers_words_are_not_read_as_fxpd_settings() {
        let vs = refusal(
            What::ForeignPort,
            ServerKind::Vsftpd,
            Some(reply(550, "Permission denied, not allowed by configuration.")),
        );
        assert_eq!(vs.setting().as_deref(), Some("port_promiscuous=YES"));
    }

    #[test]
    fn other_servers_get_their_setting_names() {
        let vs = refusal(What::ForeignPassive, ServerKind::Vsftpd, None);
        assert!(
            vs.describe().contains("pasv_promiscuous=YES"),
            "{}",
            vs.describe()
        );
        let vs = refusal(
            What::ForeignPort,
            ServerKind::Vsftpd,
            Some(reply(500, "Illegal PORT command.")),
        );
        assert!(vs.describe().contains("port_promiscuous=YES"));
        let iis = refusal(What::ForeignPassive, ServerKind::Iis, None);
        assert!(iis.describe().contains("EnablePASVTheft"));
        let fx = refusal(What::ForeignPassive, ServerKind::Fxpd, None);
        assert!(fx
            .describe()
            .contains("fxp.allow_foreign_passive = true (IIS: EnablePASVTheft)"));
        let unknown = refusal(What::ForeignPort, ServerKind::Unknown, None);
        let text = unknown.describe();
        assert!(
            text.contains("fxp.allow_foreign_port") && text.contains("port_promiscuous"),
            "{text}"
        );
        let connect = refusal(
            What::Connect,
            ServerKind::Fxpd,
            Some(reply(425, "Can't open data connection.")),
        );
        assert!(connect.describe().contains("reach each other"));
    }
}
