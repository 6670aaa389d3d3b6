//! TLS for the session (RFC 4217): AUTH and the control connection's handshake, PBSZ, PROT,
//! CCC, SSCN, and what a transfer needs from them: whether its data connection must be
//! protected and with what ([`crate::datachan::DataTls`]).

use super::answer::{say, Answer, Failure, Handled, Then};
use super::{AuthState, Flow, Session};
use crate::control::reply::{Code, Reply};
use crate::control::stream::ControlStream;
use crate::datachan::DataTls;
use crate::tls::{Channel, SessionTls, TlsRequire};
use std::time::Duration;

impl Session {
    /// AUTH TLS (RFC 4217 4): answered with 234, after which the session loop runs the
    /// handshake ([`Session::start_tls`]).
    pub(super) fn auth(&mut self, mechanism: &str) -> Handled {
        let Some(tls) = self.settings.tls.clone() else {
            return say(
                Code::NOT_IMPLEMENTED,
                "AUTH not available: TLS is not configured.",
            );
        };
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            return say(
                Code::PARAMETER_NOT_IMPLEMENTED,
                "Unsupported mechanism; use AUTH TLS.",
            );
        };
        if self.conn.get_ref().is_tls() {
            return say(Code::BAD_SEQUENCE, "Already using TLS.");
        }
        if self.conn.has_pending_bytes() {
            // Commands pipelined behind AUTH would be read as clear text after the upgrade.
            let reply = Reply::new(Code::BAD_SEQUENCE, "Commands pipelined after AUTH; closing.");
            return Ok(Answer::new(reply).then(Then::Close));
        }
        let acceptors = match tls.session_acceptors() {
            Ok(acceptors) => acceptors,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS for the session");
                return say(Code::TLS_UNAVAILABLE, "TLS is temporarily unavailable.");
            }
        };
        let reply = Reply::new(Code::AUTH_OK, format!("AUTH {} successful.", mechanism.as_str()));
        Ok(Answer::new(reply).then(Then::StartTls { acceptors, mechanism }))
    }

    /// The TLS handshake on the control connection, once the 234 is out. A failed handshake
    /// ends the session (the stream state is unknown).
    pub(super) async fn start_tls(&mut self, acceptors: SessionTls, mechanism: Mechanism) -> Flow {
        let Some(tcp) = self.conn.get_mut().take_plain() else {
            return Flow::Close;
        };
        let timeout = Duration::from_secs(self.settings.config.limits.login_timeout_secs);
        let handshake = tokio::time::timeout(timeout, acceptors.control.accept(tcp)).await;
        let outcome = match &handshake {
            Ok(Ok(stream)) => Some(crate::tls::resumed(stream.get_ref().1.handshake_kind())),
            _ => None,
        };
        crate::tls::count_handshake(Channel::Control, outcome);
        match handshake {
            Ok(Ok(stream)) => {
                *self.conn.get_mut() = ControlStream::Tls(Box::new(stream));
                self.tls_acceptors = Some(acceptors);
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "TLS handshake on the control connection failed");
                return Flow::Close;
            }
            Err(_) => {
                tracing::info!("TLS handshake on the control connection timed out");
                return Flow::Close;
            }
        }
        tracing::info!(mechanism = mechanism.as_str(), "control connection protected");
        // RFC 4217 4: after AUTH the login starts over; SSL/TLS-P imply protected data.
        if !matches!(self.auth, AuthState::LoggedIn(_)) {
            self.auth = AuthState::Fresh;
        }
        self.prot_private = mechanism.protects_data();
        Flow::Continue
    }

    /// PBSZ (RFC 4217 9): only 0 is meaningful for TLS.
    pub(super) fn pbsz(&self) -> Handled {
        if !self.conn.get_ref().is_tls() {
            return needs_auth();
        }
        say(Code::OK, "PBSZ=0")
    }

    /// PROT C or P (RFC 4217 9): clear or protected data connections from now on.
    pub(super) fn prot(&mut self, private: bool) -> Handled {
        if !self.conn.get_ref().is_tls() {
            return needs_auth();
        }
        self.prot_private = private;
        say(
            Code::OK,
            if private {
                "PROT now Private."
            } else {
                "PROT now Clear."
            },
        )
    }

    /// CCC. RFC 4217 12.3: clearing the control channel would expose later passwords and
    /// policy decisions to tampering; fxpd refuses it.
    pub(super) fn ccc(&self) -> Handled {
        say(
            Code::POLICY_REFUSED,
            "CCC refused: the control channel stays protected.",
        )
    }

    /// SSCN [ON|OFF]: fxpd is the TLS client (ON) or server (OFF) on protected data
    /// connections; without an argument, which one it is.
    pub(super) fn sscn(&mut self, on: Option<bool>) -> Handled {
        if let Some(on) = on {
            self.sscn_client = on;
        }
        let method = if self.sscn_client { "CLIENT" } else { "SERVER" };
        say(Code::OK, format!("SSCN:{method} METHOD"))
    }

    /// `tls.require = all` or the user's `require_tls`: data connections must be protected
    /// (anonymous may be exempt from the server setting).
    pub(super) fn protection_required(&self) -> Result<(), Failure> {
        let tls = &self.settings.config.tls;
        let anonymous = self.logged_in().is_some_and(|l| l.user.anonymous);
        let user_requires = self.logged_in().is_some_and(|l| l.user.require_tls);
        let exempt = anonymous && tls.anonymous_exempt;
        let required = (tls.require == TlsRequire::All && !exempt) || user_requires;
        if required && !self.prot_private {
            return Err(Failure::ProtectionRequired);
        }
        Ok(())
    }

    /// What this session protects its data connections with. PROT P promised TLS on every
    /// one: [`DataTls`] refuses when a reload removed `[tls]` since (or the session has no TLS
    /// acceptors), and nothing is sent in clear text.
    pub(super) fn data_tls(&self) -> DataTls<'_> {
        DataTls {
            private: self.prot_private,
            tls: self.settings.tls.as_ref(),
            acceptors: self.tls_acceptors.as_ref(),
        }
    }
}

/// The AUTH mechanisms fxpd accepts (RFC 4217 4; `SSL` and `TLS-P` are the older names
/// that also protect data connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mechanism {
    /// `AUTH TLS`.
    Tls,
    /// `AUTH TLS-C`: the same.
    TlsC,
    /// `AUTH SSL`: TLS, and PROT P from the start.
    Ssl,
    /// `AUTH TLS-P`: the same.
    TlsP,
}

impl Mechanism {
    /// The mechanism the (upper-cased) AUTH argument names, if fxpd accepts it.
    fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "TLS" => Some(Mechanism::Tls),
            "TLS-C" => Some(Mechanism::TlsC),
            "SSL" => Some(Mechanism::Ssl),
            "TLS-P" => Some(Mechanism::TlsP),
            _ => None,
        }
    }

    /// The name, as the client sent it.
    fn as_str(self) -> &'static str {
        match self {
            Mechanism::Tls => "TLS",
            Mechanism::TlsC => "TLS-C",
            Mechanism::Ssl => "SSL",
            Mechanism::TlsP => "TLS-P",
        }
    }

    /// Whether the mechanism implies protected data connections.
    fn protects_data(self) -> bool {
        matches!(self, Mechanism::Ssl | Mechanism::TlsP)
    }
}

/// PBSZ or PROT on a control connection without TLS.
fn needs_auth() -> Handled {
    say(Code::BAD_SEQUENCE, "PBSZ and PROT need AUTH TLS first.")
}
