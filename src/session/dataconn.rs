//! Setting up the next data connection: PORT and PASV (RFC 959), EPRT and EPSV (RFC 2428),
//! CPSV. Every one passes the one policy gate before anything is bound or connected; only
//! its grant makes the plan a transfer will use.

use super::answer::{say, Handled};
use super::Session;
use crate::control::command::EpsvArg;
use crate::control::reply::Code;
use crate::datachan::{PassiveListener, Plan};
use crate::policy::{normalize, DataSetup, Grant, PassiveGrant, Refusal};
use std::net::IpAddr;

impl Session {
    /// Every command that sets up a data connection (PORT, EPRT, PASV, EPSV, CPSV) goes through
    /// here: the previous plan is dropped, the one gate is passed, and only its grant makes the
    /// new plan.
    pub(super) async fn set_up_data(&mut self, setup: DataSetup) -> Handled {
        // A new setup command replaces the previous plan whatever its outcome; a refused one
        // leaves none (and a dropped passive listener stops accepting).
        self.data = None;
        self.cpsv_once = false;
        match self.data_gate(setup).await? {
            Grant::Active(approved) => {
                self.data = Some(Plan::Active(approved));
                say(Code::OK, format!("{} command successful.", setup.verb()))
            }
            Grant::Passive(grant) => {
                let answer = self.passive(setup, grant).await;
                self.cpsv_once = setup == DataSetup::Cpsv && self.data.is_some();
                answer
            }
        }
    }

    /// The one gate for data-setup commands: a ban another node of the cluster set on this
    /// client reaches the policy first, then the policy decides (`EPSV ALL`, bans, the address
    /// table for PORT/EPRT).
    async fn data_gate(&self, setup: DataSetup) -> Result<Grant, Refusal> {
        self.shared
            .cluster
            .import_ban(&self.shared.policy, self.peer.ip())
            .await;
        let who = &self.login().who;
        // SECURITY: the one check point for every data-setup command, before anything is bound
        // or connected.
        self.shared.policy.approve_setup(who, setup, self.epsv_all)
    }

    /// EPSV (RFC 2428 section 3): `EPSV ALL` restricts the session to EPSV from now on; any
    /// other form sets up a passive listener for its address family.
    pub(super) async fn epsv(&mut self, arg: EpsvArg) -> Handled {
        let local_is_v4 = local_v4(self.local.ip()).is_some();
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                self.data = None;
                say(Code::OK, "EPSV ALL command successful.")
            }
            EpsvArg::V4 if !local_is_v4 => say(
                Code::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (2)",
            ),
            EpsvArg::V6 if local_is_v4 => say(
                Code::NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1)",
            ),
            _ => self.set_up_data(DataSetup::Epsv).await,
        }
    }

    /// PASV/CPSV (227) or EPSV (229) after the gate: bind a listener on the control
    /// connection's local address.
    async fn passive(&mut self, setup: DataSetup, grant: PassiveGrant) -> Handled {
        // PASV and CPSV announce an IPv4 address (RFC 959); EPSV only the port.
        let announce = match (self.settings.config.passive.address, local_v4(self.local.ip())) {
            _ if setup == DataSetup::Epsv => None,
            (Some(IpAddr::V4(a)), _) | (None, Some(a)) => Some(a),
            _ => {
                return say(
                    Code::PARAMETER_SYNTAX_ERROR,
                    format!("{} is IPv4 only; use EPSV on an IPv6 connection.", setup.verb()),
                )
            }
        };
        let Some(port) = self.bind_passive(grant) else {
            return say(
                Code::CANT_OPEN_DATA,
                "Can't open passive connection: no free port.",
            );
        };
        match announce {
            Some(a) => say(Code::PASSIVE, pasv_text(a, port)),
            None => say(
                Code::EXTENDED_PASSIVE,
                format!("Entering Extended Passive Mode (|||{port}|)."),
            ),
        }
    }

    /// Bind a passive listener on the control connection's local address; the session's task
    /// polls it (it accepts and screens) from now on. `None`: no port of the range is free.
    fn bind_passive(&mut self, grant: PassiveGrant) -> Option<u16> {
        let ip = match local_v4(self.local.ip()) {
            Some(v4) => IpAddr::V4(v4),
            None => self.local.ip(),
        };
        let range = self.settings.config.passive.ports;
        match PassiveListener::bind(ip, range, grant, self.shared.policy.clone()) {
            Ok(listener) => {
                let port = listener.local_addr().port();
                self.data = Some(Plan::Passive(listener));
                Some(port)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot bind a passive port");
                None
            }
        }
    }
}

/// The 227 text, `Entering Passive Mode (h1,h2,h3,h4,p1,p2).` (RFC 959 4.1.2), written
/// without the formatter: it is built once per passive transfer.
fn pasv_text(address: std::net::Ipv4Addr, port: u16) -> String {
    let [p1, p2] = port.to_be_bytes();
    let mut text = String::with_capacity(48);
    text.push_str("Entering Passive Mode (");
    for (i, n) in address.octets().into_iter().chain([p1, p2]).enumerate() {
        if i > 0 {
            text.push(',');
        }
        if n >= 100 {
            text.push(char::from(b'0' + n / 100));
        }
        if n >= 10 {
            text.push(char::from(b'0' + n / 10 % 10));
        }
        text.push(char::from(b'0' + n % 10));
    }
    text.push_str(").");
    text
}

/// The IPv4 address of a local address, also when it is IPv4-mapped on a dual-stack socket.
fn local_v4(ip: IpAddr) -> Option<std::net::Ipv4Addr> {
    match normalize(ip) {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::pasv_text;
    use std::net::Ipv4Addr;

    #[test]
    fn the_227_text_is_the_formatters() {
        for (a, port) in [
            (Ipv4Addr::new(127, 0, 0, 1), 40000u16),
            (Ipv4Addr::new(0, 0, 0, 0), 0),
            (Ipv4Addr::new(255, 255, 255, 255), 65535),
            (Ipv4Addr::new(10, 99, 100, 9), 2560),
        ] {
            let [a1, a2, a3, a4] = a.octets();
            let [p1, p2] = port.to_be_bytes();
            assert_eq!(
                pasv_text(a, port),
                format!("Entering Passive Mode ({a1},{a2},{a3},{a4},{p1},{p2}).")
            );
        }
    }
}
