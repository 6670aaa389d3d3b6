//! Information and settings: SYST, FEAT and OPTS (RFC 2389), HELP, STAT (RFC 959 4.1.3),
//! TYPE, SITE. (NOOP, MODE S, STRU F, ACCT and ALLO without a size are one fixed reply each,
//! in the dispatch; ALLO with a size is in transfers.rs.)

use super::answer::{say, Handled};
use super::path::resolve;
use super::Session;
use crate::config::ListingStyle;
use crate::control::command::{OptsArg, SiteArg, TransferType, VERBS};
use crate::control::reply::{Code, Reply};
use crate::listing;
use std::time::SystemTime;

impl Session {
    pub(super) fn syst(&self) -> Handled {
        match self.settings.config.listing_style {
            ListingStyle::Msdos => say(Code::SYSTEM_TYPE, "Windows_NT"),
            ListingStyle::Unix => say(Code::SYSTEM_TYPE, "UNIX Type: L8"),
        }
    }

    /// FEAT (RFC 2389): the TLS features only when TLS is configured.
    pub(super) fn feat(&self) -> Handled {
        let mut lines = vec!["Extensions supported:".to_owned()];
        if self.settings.tls.is_some() {
            for f in ["AUTH TLS", "CCC", "CPSV", "PBSZ", "PROT", "SSCN"] {
                lines.push(f.to_owned());
            }
        }
        for f in [
            "EPRT",
            "EPSV",
            "HASH SHA-256*",
            "MDTM",
            listing::MLST_FEAT,
            "PASV",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ] {
            lines.push(f.to_owned());
        }
        lines.push("End".into());
        Ok(Reply::multi(Code::SYSTEM_STATUS, lines).into())
    }

    pub(super) fn set_type(&mut self, t: TransferType) -> Handled {
        self.transfer_type = t;
        match t {
            TransferType::Ascii => say(Code::OK, "Type set to A."),
            TransferType::Image => say(Code::OK, "Type set to I."),
        }
    }

    /// The account's quota and usage for STAT, when it has a quota.
    fn quota_line(&self, account: &str) -> Option<String> {
        let limits = &self.account().limits;
        if limits.quota_bytes.is_none() && limits.quota_files.is_none() {
            return None;
        }
        let of = |quota: Option<u64>| quota.map_or_else(|| "unlimited".to_owned(), |q| q.to_string());
        Some(match self.shared.quotas.usage(account) {
            Ok(used) => format!(
                "Quota: {} of {} bytes, {} of {} files used",
                used.bytes,
                of(limits.quota_bytes),
                used.files,
                of(limits.quota_files)
            ),
            Err(_) => "Quota: usage unavailable".to_owned(),
        })
    }

    /// STAT without argument (RFC 959 4.1.3): server and session status; during a transfer
    /// it names the command, the file and the bytes moved so far, otherwise it says
    /// `No data connection` (what the KB Q247132 procedure polls for).
    pub(super) fn stat_server(&self) -> Handled {
        let mut lines = vec!["fxpd FTP server status:".to_owned()];
        lines.push(format!("Connected to {}", self.peer.ip()));
        match self.logged_in() {
            Some(l) => {
                lines.push(format!("Logged in as {}", l.user.name));
                if let Some(quota) = self.quota_line(&l.user.name) {
                    lines.push(quota);
                }
            }
            None => lines.push("Not logged in".into()),
        }
        let ty = match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        lines.push(format!("TYPE: {ty}; STRUcture: File; transfer MODE: Stream"));
        match &self.transfer {
            Some(t) => {
                let moved = t.transfer.moved();
                let of = t.size.map(|s| format!(" of {s}")).unwrap_or_default();
                lines.push(format!(
                    "Data connection open: {} {}, {moved}{of} bytes transferred",
                    t.verb.as_str(),
                    t.path
                ));
            }
            None => lines.push("No data connection".into()),
        }
        let fxp = self.shared.policy.config();
        lines.push(format!(
            "FXP: foreign PORT {}, foreign passive {}, privileged ports {}",
            if fxp.allow_foreign_port {
                "allowed"
            } else {
                "refused"
            },
            if fxp.allow_foreign_passive {
                "allowed"
            } else {
                "refused"
            },
            if fxp.allow_privileged_ports {
                "allowed"
            } else {
                "refused"
            },
        ));
        let stats = self.shared.policy.stats();
        let refused: Vec<String> = stats
            .refused
            .iter()
            .map(|(r, n)| format!("{}={n}", r.token()))
            .collect();
        lines.push(format!("Policy refusals: {}", refused.join(" ")));
        lines.push("End of status".into());
        Ok(Reply::multi(Code::SYSTEM_STATUS, lines).into())
    }

    /// `STAT path`: a listing over the control connection (RFC 959 4.1.3).
    pub(super) async fn stat_path(&self, arg: &str) -> Handled {
        let entries = self.entries(Some(arg)).await?;
        let body = listing::format_list(&entries, self.msdos(), SystemTime::now());
        let mut lines = vec![format!("Status of {}:", resolve(&self.login().cwd, arg))];
        lines.extend(String::from_utf8_lossy(&body).lines().map(str::to_owned));
        lines.push("End of status".into());
        Ok(Reply::multi(Code::FILE_STATUS, lines).into())
    }

    /// Whether listings take the IIS (MS-DOS) style.
    pub(super) fn msdos(&self) -> bool {
        self.settings.config.listing_style == ListingStyle::Msdos
    }
}

/// HELP: every verb fxpd implements, eight to a line.
pub(super) fn help() -> Handled {
    let mut lines = vec!["The following commands are recognized:".to_owned()];
    for chunk in VERBS.chunks(8) {
        lines.push(
            chunk
                .iter()
                .map(|v| format!("{v:<6}"))
                .collect::<String>()
                .trim_end()
                .to_owned(),
        );
    }
    lines.push("Help OK.".into());
    Ok(Reply::multi(Code::HELP, lines).into())
}

/// OPTS (RFC 2389): UTF8, MLST facts, the HASH algorithm.
pub(super) fn opts(arg: OptsArg) -> Handled {
    match arg {
        // Names are UTF-8 either way (RFC 2640); the switch is acknowledged, not stored.
        OptsArg::Utf8(on) => say(
            Code::OK,
            format!(
                "OPTS UTF8 command successful - UTF8 encoding now {}.",
                if on { "ON" } else { "OFF" }
            ),
        ),
        OptsArg::Mlst(_) => say(Code::OK, "MLST OPTS type;size;modify;perm;unix.mode;"),
        OptsArg::Hash(name) => match name.as_deref() {
            None | Some("SHA-256") => say(Code::OK, "SHA-256"),
            Some(_) => say(
                Code::PARAMETER_NOT_IMPLEMENTED,
                "Unknown algorithm; SHA-256 is supported.",
            ),
        },
        OptsArg::Other(name) => say(
            Code::PARAMETER_SYNTAX_ERROR,
            format!("Option {name} not understood."),
        ),
    }
}

/// SITE: only SITE HELP is known.
pub(super) fn site(arg: SiteArg) -> Handled {
    match arg {
        SiteArg::Help => Ok(Reply::multi(
            Code::HELP,
            vec![
                "The following SITE commands are recognized:".into(),
                "HELP".into(),
                "End of help.".into(),
            ],
        )
        .into()),
        SiteArg::Other(what) => say(
            Code::NOT_IMPLEMENTED,
            format!("SITE {what}: command not implemented."),
        ),
    }
}
