//! Why a data connection was refused, as a stable token.

use std::fmt;

/// Why a data connection was refused. The [`token`](Reason::token)s are stable: they appear in
/// replies, logs (`rule=`) and STAT, operators may match on them, and `fxpd copy` reads them.
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
    /// Every reason, in declaration order (the server counts refusals in this order for STAT).
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

    /// The reason a token names, if it names one.
    pub fn from_token(token: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.token() == token)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
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
    fn every_token_reads_back() {
        for reason in Reason::ALL {
            assert_eq!(Reason::from_token(reason.token()), Some(reason));
        }
        assert_eq!(Reason::from_token("Foreign-Address"), None);
        assert_eq!(Reason::from_token(""), None);
    }
}
