//! The decision table of the module docs, row by row: which data addresses are refused, by which
//! rule, and whose attempt each refusal counts against.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::refusal::{
    ALLOW_ANONYMOUS, ALLOW_FOREIGN_PASSIVE, ALLOW_FOREIGN_PORT, ALLOW_PRIVILEGED_PORTS, PEERS, USER_ALLOW,
};
use super::{normalize, Culprit, Direction, FxpOverride, Policy, Reason, Refusal, Who};

/// Whether `ip` can be a unicast host to connect to. `0.0.0.0` and `::` are refused because
/// connecting to them reaches the server itself on common systems.
fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

impl Policy {
    /// Row 1: the refusal for `who`'s client address if it is banned at `now`.
    pub(super) fn client_ban(&self, who: &Who, command: &str, now: Instant) -> Option<Refusal> {
        let peer = normalize(who.peer);
        self.lock_bans().is_banned(peer, now).then(|| {
            let detail = format!("{peer} is temporarily banned after repeated refused data connections");
            Refusal::new(command, Reason::Banned, None, detail)
        })
    }

    /// The decision table of the module docs, row by row, and whose attempt a refusal counts
    /// against. Pure apart from reading the bans.
    pub(super) fn decide(
        &self,
        who: &Who,
        dir: Direction,
        command: &str,
        addr: SocketAddr,
        now: Instant,
    ) -> Result<(), (Refusal, Culprit)> {
        let cfg = self.config();
        let peer = normalize(who.peer);
        let ip = normalize(addr.ip());
        // SECURITY: a refusal counts against the address that made the attempt: the client for
        // PORT/EPRT (it asked), the source for a passive connection (it connected). Charging a
        // passive refusal to the client would let anyone who reaches the passive range get any
        // client banned.
        let culprit = match dir {
            Direction::Active => Culprit::Client,
            Direction::Passive => Culprit::Source(ip),
        };
        let refuse = |reason, setting, detail| Err((Refusal::new(command, reason, setting, detail), culprit));

        // SECURITY: row 1, a banned client gets no data connection of any kind. A connection to
        // its listener charges nobody: the ban is the client's, not the connecting host's.
        if let Some(refusal) = self.client_ban(who, command, now) {
            let culprit = match dir {
                Direction::Active => Culprit::Client,
                Direction::Passive => Culprit::Nobody,
            };
            return Err((refusal, culprit));
        }

        // SECURITY: row 2, a banned source gets no data connection, whichever session's listener
        // it reaches.
        if dir == Direction::Passive && ip != peer && self.lock_bans().is_banned(ip, now) {
            let detail = format!(
                "the connection from {ip} is from an address temporarily banned after repeated refused data connections"
            );
            return refuse(Reason::Banned, None, detail);
        }

        if dir == Direction::Active {
            let port = addr.port();
            // SECURITY: row 3, port 0 is never a valid data port.
            if port == 0 {
                return refuse(
                    Reason::PrivilegedPort,
                    None,
                    "port 0 is not a valid data port".into(),
                );
            }
            // SECURITY: row 4, RFC 2577 section 3: no PORT/EPRT to a privileged port (mail, shells,
            // ...), not even on the client's own address.
            if port < 1024 && !cfg.allow_privileged_ports {
                let detail = format!("port {port} is below 1024");
                return refuse(Reason::PrivilegedPort, Some(ALLOW_PRIVILEGED_PORTS), detail);
            }
            // SECURITY: row 5, the unspecified address reaches the server itself; no setting
            // (not even a peers block like 0.0.0.0/8) may allow that.
            if !is_unicast(ip) {
                let detail = format!("{ip} is not a unicast address");
                return refuse(Reason::ForeignAddress, None, detail);
            }
        }

        // Row 6: the client's own address is ordinary FTP.
        if ip == peer {
            return Ok(());
        }

        // Rows 7-11: a foreign address, i.e. FXP.
        let what = match dir {
            Direction::Active => format!("{ip} is not your address ({peer})"),
            Direction::Passive => format!("the connection from {ip} is not from your address ({peer})"),
        };
        // SECURITY: row 7, anonymous sessions need fxp.allow_anonymous, whatever else allows FXP.
        if who.anonymous && !cfg.allow_anonymous {
            let detail = format!("{what} and anonymous sessions may not use FXP");
            return refuse(Reason::AnonymousDenied, Some(ALLOW_ANONYMOUS), detail);
        }
        // SECURITY: rows 8-9, the user's override replaces the direction's switch (deny by default).
        let (switch_on, switch) = match dir {
            Direction::Active => (cfg.allow_foreign_port, ALLOW_FOREIGN_PORT),
            Direction::Passive => (cfg.allow_foreign_passive, ALLOW_FOREIGN_PASSIVE),
        };
        match who.fxp {
            FxpOverride::Deny => {
                let detail = format!("{what} and FXP is disabled for your account");
                return refuse(Reason::UserDenied, Some(USER_ALLOW), detail);
            }
            FxpOverride::Inherit if !switch_on => return refuse(Reason::ForeignAddress, Some(switch), what),
            FxpOverride::Inherit | FxpOverride::Allow => {}
        }
        // SECURITY: row 10, a non-empty peers list restricts foreign addresses for every user.
        if !cfg.peers.is_empty() && !cfg.peers.iter().any(|block| block.contains(ip)) {
            let detail = format!("{ip} is not in the list of FXP peers");
            return refuse(Reason::PeerNotListed, Some(PEERS), detail);
        }
        Ok(())
    }
}
