//! The FXP address policy: every decision on whether a data connection may happen.
//!
//! FTP moves data over a second TCP connection whose address the client chooses. `PORT` and `EPRT`
//! (RFC 959 section 4.1.2, RFC 2428 section 2) name a host and port for the server to connect to;
//! `PASV` and `EPSV` (RFC 959, RFC 2428 section 3) open a listener that any host could reach. When
//! that address is not the client's own, the transfer runs between two servers: FXP (Microsoft KB
//! Q247132). The same mechanism is the FTP bounce attack (CERT CA-1997-27, RFC 2577 section 3) and
//! passive-port theft, so foreign addresses are refused by default and each way of allowing them is
//! an explicit switch in [`FxpConfig`].
//!
//! Every command that sets up a data connection (PORT, EPRT, PASV, EPSV, CPSV; see [`DataSetup`])
//! passes one gate, [`Policy::approve_setup`], when it arrives and before anything is bound or
//! connected: it applies the `EPSV ALL` row and row 1, and judges a PORT/EPRT target by the whole
//! table. Its [`Grant`] is the only way to a data plan: an [`Approved`] address to connect to, or a
//! [`PassiveGrant`] to open a listener with. Every connection a passive listener accepts is then
//! screened as it arrives ([`Policy::screen_passive_peer`]) and judged once more, by the settings in
//! force then, when a transfer is about to use it ([`Policy::approve_passive_peer`]). All of them go
//! through one function, `Policy::decide`. Nothing outside this module can make a [`Grant`].
//!
//! # Decision table
//!
//! Addresses are compared after [`normalize`] (an IPv4-mapped IPv6 address is its IPv4 address);
//! the client's port is irrelevant. *Own* means the data address equals the control connection's
//! peer address; anything else is *foreign*. The checks run top to bottom and the first that
//! matches decides; whatever reaches the end is approved.
//!
//! | # | Check | Applies to | Outcome | Setting that allows it |
//! |---|-------|------------|---------|------------------------|
//! | - | PORT/EPRT/PASV/CPSV after `EPSV ALL` (RFC 2428 section 4) | setup commands | refused `epsv-all` | none |
//! | 1 | client address is banned | setup commands and passive connections | refused `banned` | none (wait `fxp.ban_secs`) |
//! | 2 | the connecting source address is banned | passive connections | refused `banned` | none (wait `fxp.ban_secs`) |
//! | 3 | target port is 0 | PORT/EPRT | refused `privileged-port` | none |
//! | 4 | target port < 1024 | PORT/EPRT | refused `privileged-port` | `fxp.allow_privileged_ports` |
//! | 5 | target is not unicast (`0.0.0.0`, `::`, multicast, broadcast) | PORT/EPRT | refused `foreign-address` | none |
//! | 6 | address is the client's own | both | **approved** | |
//! | 7 | anonymous session | foreign | refused `anonymous-denied` | `fxp.allow_anonymous` |
//! | 8 | user entry `fxp = "deny"` | foreign | refused `user-denied` | users file: `fxp = "allow"` |
//! | 9 | user entry `fxp = "inherit"` and the direction's switch is off | foreign | refused `foreign-address` | `fxp.allow_foreign_port` (IIS `EnablePortAttack`) for PORT/EPRT, `fxp.allow_foreign_passive` (IIS `EnablePASVTheft`) for passive |
//! | 10 | `fxp.peers` is non-empty and contains no block with the address | foreign | refused `peer-not-listed` | `fxp.peers` |
//! | 11 | anything else | foreign | **approved** | |
//!
//! PASV, EPSV and CPSV themselves name no address: past the `EPSV ALL` row and row 1 they are
//! granted a listener, and rows 1-2 and 6-11 judge each connection that reaches it.
//!
//! Precedence, in words: the per-user override replaces only the foreign-address switch (row 9).
//! `allow` loosens it and `deny` tightens it, but neither touches the privileged-port rule, the
//! peers list, or bans, and an anonymous session needs `fxp.allow_anonymous` as well (row 7 runs
//! first). The port rules run before the own-address check: RFC 2577 asks servers to refuse ports
//! below 1024 even for the client's own address.
//!
//! # Behind a load balancer
//!
//! With `proxy.trusted` set ([`Policy::proxy_trust`]), a connection from a trusted balancer names
//! its real client in a PROXY protocol header ([`crate::proxy`]). That address is [`Who::peer`]
//! for the control connection, and the source judged in [`Policy::screen_passive_peer`] for a
//! data connection relayed by the balancer, so the table above holds unchanged behind it.
//!
//! # Refusals, logging and bans
//!
//! Every refusal is logged at warn level on target `fxpd::security` (`event="fxp_refused"`, with
//! `client`, `user`, `command`, `target`, `rule`, and for a passive connection its `source`),
//! counted by [`Reason`] for [`PolicyStats`], and counts toward a temporary ban of the address that
//! made the attempt (logged as `charged`): the client for a command it sent, the source for a
//! connection to a passive port. A stranger who keeps connecting to other clients' passive ports
//! thus bans itself, never the client whose port it hit. `fxp.ban_threshold` refusals within
//! `fxp.ban_window_secs` ban an address for `fxp.ban_secs` (`event="client_banned"`). Refusals of
//! an already banned address do not extend the ban, and two refusals charge nobody: a connection
//! to a banned client's listener (the ban is the client's), and a held passive connection refused
//! on its second look because the settings were tightened meanwhile (it was acceptable when it was
//! made). A ban touches only the banned address: its new control connections, its data-setup
//! commands and its passive connections; other addresses' sessions and transfers go on. Approvals
//! are logged at debug level and counted once per data connection used.

mod bans;
mod decide;
mod record;
mod refusal;
#[cfg(test)]
mod tests;
mod user;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, warn};

pub use crate::addr::{normalize, Cidr};
pub use crate::config::FxpConfig;
use bans::BanTracker;
pub use refusal::{Reason, Refusal};
pub use user::FxpOverride;

/// The `command` used in logs and replies for a connection accepted on a PASV or EPSV listener.
pub const PASSIVE_COMMAND: &str = "PASV-connection";

/// `addr` with its IP normalised; a non-mapped IPv6 address keeps its flow info and scope id.
fn normalize_socket(addr: SocketAddr) -> SocketAddr {
    match normalize(addr.ip()) {
        IpAddr::V4(v4) => SocketAddr::new(v4.into(), addr.port()),
        IpAddr::V6(_) => addr,
    }
}

/// Who is asking: the control connection's peer and the session's identity.
#[derive(Debug, Clone)]
pub struct Who {
    /// The client address: the control connection's peer, or the client a trusted load balancer
    /// named in its PROXY header (the port plays no role).
    pub peer: IpAddr,
    /// The logged-in user name, if any (for logs only; never echoed in replies). Shared:
    /// every passive grant and listener holds a copy of the session's `Who`.
    pub user: Option<std::sync::Arc<str>>,
    /// Whether the session logged in anonymously.
    pub anonymous: bool,
    /// The user's FXP override from the users file.
    pub fxp: FxpOverride,
}

/// An address the policy approved for an active-mode (PORT/EPRT) connect. Only this module can
/// construct it, so holding one proves [`Policy::approve_setup`] said yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approved(SocketAddr);

impl Approved {
    /// The address to connect to: the approved target, IPv4-mapped IPv6 normalised to IPv4.
    pub fn addr(&self) -> SocketAddr {
        self.0
    }
}

/// A command that sets up a data connection. These are the only commands that may make a data
/// plan, and each of them passes [`Policy::approve_setup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSetup {
    /// `PORT` (RFC 959 section 4.1.2): the server is to connect to this IPv4 target.
    Port(SocketAddr),
    /// `EPRT` (RFC 2428 section 2): the server is to connect to this target.
    Eprt(SocketAddr),
    /// `PASV` (RFC 959 section 4.1.1): a listener for the client.
    Pasv,
    /// `EPSV` with or without a protocol number (RFC 2428 section 3); `EPSV ALL` sets up nothing.
    Epsv,
    /// `CPSV`: `PASV`, and fxpd is the TLS client on the data connection (FXP with TLS).
    Cpsv,
}

impl DataSetup {
    /// The verb, for logs and reply texts.
    pub fn verb(&self) -> &'static str {
        match self {
            DataSetup::Port(_) => "PORT",
            DataSetup::Eprt(_) => "EPRT",
            DataSetup::Pasv => "PASV",
            DataSetup::Epsv => "EPSV",
            DataSetup::Cpsv => "CPSV",
        }
    }
}

/// What [`Policy::approve_setup`] allows a data-setup command to make.
#[derive(Debug)]
pub enum Grant {
    /// PORT/EPRT: connect to this address when the transfer starts.
    Active(Approved),
    /// PASV/EPSV/CPSV: open a passive listener.
    Passive(PassiveGrant),
}

/// Permission to open a passive listener for one session. Only [`Policy::approve_setup`] makes
/// one, and [`crate::datachan::PassiveListener::bind`] takes it, so every listener has passed the
/// gate. It carries the identity every connection to the listener is judged for.
#[derive(Debug)]
pub struct PassiveGrant {
    who: Who,
}

impl PassiveGrant {
    /// The session the listener is for.
    pub fn who(&self) -> &Who {
        &self.who
    }
}

/// Counters for STAT, since the policy was created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyStats {
    /// PORT/EPRT targets approved.
    pub approved_active: u64,
    /// Passive data connections approved for a transfer (each counted once, when it is used).
    pub approved_passive: u64,
    /// Refusals per reason: every [`Reason`], in [`Reason::ALL`] order.
    pub refused: Vec<(Reason, u64)>,
    /// Addresses banned right now.
    pub banned_addresses: usize,
    /// Connections to passive listeners refused (and closed): strangers trying to take a
    /// client's data connection, counted also by rule in `refused`.
    pub closed_on_passive: u64,
    /// Passive listeners open now (one port each).
    pub passive_listeners: u64,
}

/// A source of the current time; injectable so that ban expiry can be tested without sleeping.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Which way the data connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// PORT/EPRT: the server connects to the target.
    Active,
    /// PASV/EPSV: a host connected to the server's listener.
    Passive,
}

/// Which look at a data address a decision is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// A PORT/EPRT target: an approval is counted.
    Target,
    /// A passive connection as it is accepted: an approval is not counted yet (the connection
    /// may never be used), a refusal is charged to the source.
    Screen,
    /// A held passive connection about to carry data: the approval is counted; a refusal (the
    /// settings changed since it was screened) is charged to nobody.
    Use,
}

/// Whose attempt a refusal counts against for bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Culprit {
    /// The session's client: it sent the command.
    Client,
    /// The address that connected to a passive listener.
    Source(IpAddr),
    /// Nobody (see "Refusals, logging and bans" in the module docs).
    Nobody,
}

/// The one decision point for data connections. Shared by all sessions (`Arc<Policy>`); all
/// methods are synchronous and hold the internal lock only briefly.
pub struct Policy {
    /// The `[fxp]` settings; replaced as a whole by [`Policy::reload`], so every decision
    /// sees one consistent version.
    cfg: RwLock<Arc<FxpConfig>>,
    /// Where "now" comes from (the real clock outside tests).
    clock: Clock,
    /// Refusal counts and bans per address (the client's, or a passive connection's source).
    bans: Mutex<BanTracker>,
    /// PORT/EPRT approvals, for STAT.
    approved_active: AtomicU64,
    /// Passive approvals, for STAT.
    approved_passive: AtomicU64,
    /// Refusals, indexed like [`Reason::ALL`], for STAT.
    refused: [AtomicU64; Reason::ALL.len()],
    /// Connections to passive listeners refused and closed, for the metrics.
    closed_on_passive: AtomicU64,
    /// Passive listeners open now (each holds a port of `passive.ports`), for the metrics.
    passive_listeners: AtomicU64,
    /// Where the address each refusal is charged to is reported for the cluster's shared ban
    /// count, when set.
    refusal_sink: OnceLock<mpsc::Sender<IpAddr>>,
    /// `proxy.trusted`: the load balancers whose PROXY headers name the client.
    proxy_trusted: RwLock<Arc<Vec<Cidr>>>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("cfg", &self.config())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// A policy for `cfg` using the real clock.
    pub fn new(cfg: FxpConfig) -> Policy {
        Policy::with_clock(cfg, Arc::new(Instant::now))
    }

    /// A policy for `cfg` reading the time from `clock` (for tests of ban expiry).
    pub fn with_clock(cfg: FxpConfig, clock: Clock) -> Policy {
        let bans = BanTracker::new(cfg.ban_threshold, cfg.ban_window_secs, cfg.ban_secs);
        Policy {
            cfg: RwLock::new(Arc::new(cfg)),
            clock,
            bans: Mutex::new(bans),
            approved_active: AtomicU64::new(0),
            approved_passive: AtomicU64::new(0),
            refused: Default::default(),
            closed_on_passive: AtomicU64::new(0),
            passive_listeners: AtomicU64::new(0),
            refusal_sink: OnceLock::new(),
            proxy_trusted: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// Also report the address each refusal is charged to on `sink` (the cluster counts them with the
    /// other nodes' refusals; see [`crate::cluster::share_bans`]). Reports are dropped, not
    /// waited for, when the sink is full. Only the first sink set is used.
    pub fn report_refusals_to(&self, sink: mpsc::Sender<IpAddr>) {
        let _ = self.refusal_sink.set(sink);
    }

    /// Ban `ip` for `remaining` because another node of the cluster banned it; a longer ban
    /// already running here stays.
    pub fn import_ban(&self, ip: IpAddr, remaining: Duration) {
        let ip = normalize(ip);
        if self.lock_bans().import(ip, (self.clock)(), remaining) {
            warn!(
                target: "fxpd::security",
                event = "client_banned",
                client = %ip,
                ban_secs = remaining.as_secs(),
                "client banned by another node of the cluster"
            );
        }
    }

    /// The settings this policy enforces now.
    pub fn config(&self) -> Arc<FxpConfig> {
        self.cfg.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Enforce new settings from the next decision on (a configuration reload): revoking FXP
    /// takes effect at once for every session. Counters and bans are kept.
    pub fn reload(&self, cfg: FxpConfig) {
        self.lock_bans()
            .set_limits(cfg.ban_threshold, cfg.ban_window_secs, cfg.ban_secs);
        *self.cfg.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(cfg);
    }

    /// Set the load balancers trusted to send PROXY protocol headers (`proxy.trusted`, at start
    /// and on reload): connections accepted from now on are judged by the new list.
    pub fn set_proxy_trusted(&self, trusted: Vec<Cidr>) {
        *self.proxy_trusted.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(trusted);
    }

    /// Whether a connection from `peer` comes from a trusted load balancer, and so must start
    /// with a PROXY header whose source address then stands for the client everywhere (this
    /// policy's decisions, lockouts, session caps, bans, logs).
    pub fn proxy_trust(&self, peer: IpAddr) -> bool {
        let trusted = self
            .proxy_trusted
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // SECURITY: deny by default. Only a listed block may speak for another address; a
        // header from any other peer is never read as one, so nobody can claim an address
        // (and with it the own-address rows of the decision table) by sending a header.
        trusted.iter().any(|block| block.contains(normalize(peer)))
    }

    /// The one gate for every command that sets up a data connection. Call it when the command
    /// arrives, BEFORE anything is bound or connected; `epsv_all` says whether the session has
    /// sent `EPSV ALL`. The [`Grant`] is what the data plan is made from: connect only to its
    /// [`Approved::addr`], open a passive listener only with its [`PassiveGrant`].
    pub fn approve_setup(&self, who: &Who, setup: DataSetup, epsv_all: bool) -> Result<Grant, Refusal> {
        let command = setup.verb();
        // SECURITY: RFC 2428 section 4, after EPSV ALL only EPSV may set up a data connection;
        // decided here for every variant, so none can forget it.
        if epsv_all && setup != DataSetup::Epsv {
            return Err(self.refuse_after_epsv_all(who, command));
        }
        match setup {
            DataSetup::Port(target) | DataSetup::Eprt(target) => {
                self.approve_active(who, command, target).map(Grant::Active)
            }
            DataSetup::Pasv | DataSetup::Epsv | DataSetup::Cpsv => {
                let now = (self.clock)();
                // SECURITY: row 1, a banned client opens no passive listener either.
                if let Some(refusal) = self.client_ban(who, command, now) {
                    return Err(self.refused(who, None, refusal, Culprit::Client, now));
                }
                debug!(
                    target: "fxpd::security",
                    event = "passive_listener_granted",
                    client = %normalize(who.peer),
                    user = who.user.as_deref(),
                    command,
                    "passive listener granted"
                );
                Ok(Grant::Passive(PassiveGrant { who: who.clone() }))
            }
        }
    }

    /// Checks a PORT/EPRT target (through [`Policy::approve_setup`]). `command` is "PORT" or
    /// "EPRT" (for logs and the reply text).
    fn approve_active(&self, who: &Who, command: &str, target: SocketAddr) -> Result<Approved, Refusal> {
        let target = normalize_socket(target);
        self.check(who, Look::Target, command, target)
            .map(|()| Approved(target))
    }

    /// Screens a connection that a passive listener just accepted from `source`: may it become
    /// this session's data connection? On refusal, close it without reading or writing; the
    /// refusal is charged to `source`, the address that connected, never to the client.
    pub fn screen_passive_peer(&self, who: &Who, source: SocketAddr) -> Result<(), Refusal> {
        self.check(who, Look::Screen, PASSIVE_COMMAND, normalize_socket(source))
    }

    /// Judges a screened passive connection again, by the settings in force now, just before a
    /// transfer uses it (a reload may have tightened the policy meanwhile). On refusal, close it
    /// unused. Counts the approval, so each data connection used is counted once.
    pub fn approve_passive_peer(&self, who: &Who, source: SocketAddr) -> Result<(), Refusal> {
        self.check(who, Look::Use, PASSIVE_COMMAND, normalize_socket(source))
    }

    /// The refusal for a setup command after `EPSV ALL` (RFC 2428 section 4), counted and logged
    /// like every other refusal.
    fn refuse_after_epsv_all(&self, who: &Who, command: &str) -> Refusal {
        let detail = "after EPSV ALL only EPSV may set up data connections (RFC 2428 section 4)".to_owned();
        self.refused(
            who,
            None,
            Refusal::new(command, Reason::EpsvAll, None, detail),
            Culprit::Client,
            (self.clock)(),
        )
    }

    /// Whether this address (normalised here) is banned for repeated refused attempts, as a
    /// client or as the source of passive connections.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.lock_bans().is_banned(normalize(ip), (self.clock)())
    }

    /// The addresses banned now, each with the time left (the admin API).
    pub fn bans(&self) -> Vec<(IpAddr, Duration)> {
        self.lock_bans().banned((self.clock)())
    }

    /// Lift the ban of `ip` (normalised here) on this node, and forget its refusals so far: an
    /// operator's decision through the admin API. Returns whether it was banned.
    pub fn lift_ban(&self, ip: IpAddr) -> bool {
        let ip = normalize(ip);
        let lifted = self.lock_bans().lift(ip, (self.clock)());
        if lifted {
            warn!(target: "fxpd::security", event = "ban_lifted", client = %ip, "ban lifted by the operator");
        }
        lifted
    }

    /// A snapshot of the counters, for STAT.
    pub fn stats(&self) -> PolicyStats {
        PolicyStats {
            approved_active: self.approved_active.load(Ordering::Relaxed),
            approved_passive: self.approved_passive.load(Ordering::Relaxed),
            refused: Reason::ALL
                .iter()
                .map(|&reason| (reason, self.refused[reason as usize].load(Ordering::Relaxed)))
                .collect(),
            banned_addresses: self.lock_bans().banned_count((self.clock)()),
            closed_on_passive: self.closed_on_passive.load(Ordering::Relaxed),
            passive_listeners: self.passive_listeners.load(Ordering::Relaxed),
        }
    }

    /// A passive listener opened (`true`) or closed, for the count of ports in use. Only
    /// [`crate::datachan::PassiveListener`] calls it, once each way.
    pub fn passive_listener(&self, opened: bool) {
        if opened {
            self.passive_listeners.fetch_add(1, Ordering::Relaxed);
        } else {
            self.passive_listeners.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
