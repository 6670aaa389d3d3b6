//! The bookkeeping around each decision: approval counters and logs, the `fxp_refused` security
//! event, refusal counters, and refusals charged toward bans.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};
use std::time::Instant;

use tracing::{debug, warn};

use super::bans::BanTracker;
use super::{normalize, Culprit, Direction, Look, Policy, Refusal, Who};

impl Policy {
    /// Decides, then does the bookkeeping for the outcome (counters, log, bans).
    pub(super) fn check(
        &self,
        who: &Who,
        look: Look,
        command: &str,
        addr: SocketAddr,
    ) -> Result<(), Refusal> {
        let now = (self.clock)();
        let dir = match look {
            Look::Target => Direction::Active,
            Look::Screen | Look::Use => Direction::Passive,
        };
        match self.decide(who, dir, command, addr, now) {
            Ok(()) => {
                let counter = match look {
                    Look::Target => &self.approved_active,
                    Look::Use => &self.approved_passive,
                    Look::Screen => {
                        debug!(
                            target: "fxpd::security",
                            event = "passive_connection_screened",
                            client = %normalize(who.peer),
                            source = %addr,
                            "passive connection accepted, held for the transfer"
                        );
                        return Ok(());
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
                debug!(
                    target: "fxpd::security",
                    event = "data_connection_approved",
                    client = %normalize(who.peer),
                    user = who.user.as_deref(),
                    command,
                    target = %addr,
                    foreign = normalize(addr.ip()) != normalize(who.peer),
                    "data connection approved"
                );
                Ok(())
            }
            Err((refusal, culprit)) => {
                // SECURITY: a held connection refused on its second look was acceptable when it
                // was made: a change of settings is nobody's attempt.
                let culprit = if look == Look::Use {
                    Culprit::Nobody
                } else {
                    culprit
                };
                if dir == Direction::Passive {
                    // The connection is closed by the listener that asked.
                    self.closed_on_passive.fetch_add(1, Ordering::Relaxed);
                }
                let source = (dir == Direction::Passive).then(|| addr.ip());
                Err(self.bookkeeping(who, Some(addr), source, refusal, culprit, now))
            }
        }
    }

    /// Bookkeeping for a refusal of a command: security log, counter, ban tracking. Returns the
    /// refusal.
    pub(super) fn refused(
        &self,
        who: &Who,
        target: Option<SocketAddr>,
        refusal: Refusal,
        culprit: Culprit,
        now: Instant,
    ) -> Refusal {
        self.bookkeeping(who, target, None, refusal, culprit, now)
    }

    /// The `fxp_refused` security event, the counter by reason, and one refusal toward a ban of
    /// the culprit's address. `target` is the PORT/EPRT target or the passive connection's
    /// source socket, `source` the latter's (normalised) address.
    pub(super) fn bookkeeping(
        &self,
        who: &Who,
        target: Option<SocketAddr>,
        source: Option<IpAddr>,
        refusal: Refusal,
        culprit: Culprit,
        now: Instant,
    ) -> Refusal {
        let reason = refusal.reason;
        let peer = normalize(who.peer);
        let charged = match culprit {
            Culprit::Client => Some(peer),
            Culprit::Source(ip) => Some(ip),
            Culprit::Nobody => None,
        };
        warn!(
            target: "fxpd::security",
            event = "fxp_refused",
            client = %peer,
            source = source.map(tracing::field::display),
            user = who.user.as_deref(),
            command = refusal.command(),
            target = target.map(tracing::field::display),
            rule = reason.token(),
            charged = charged.map(tracing::field::display),
            "{}",
            refusal.detail
        );
        self.refused[reason as usize].fetch_add(1, Ordering::Relaxed);
        let Some(charged) = charged else {
            return refusal;
        };
        if let Some(sink) = self.refusal_sink.get() {
            let _ = sink.try_send(charged);
        }
        // A banned address's attempts are counted and logged above; the tracker does not let
        // them extend the ban.
        if self.lock_bans().record(charged, now) {
            let cfg = self.config();
            warn!(
                target: "fxpd::security",
                event = "client_banned",
                client = %charged,
                refusals = cfg.ban_threshold,
                window_secs = cfg.ban_window_secs,
                ban_secs = cfg.ban_secs,
                "address banned after repeated refused data connections"
            );
        }
        refusal
    }

    /// The ban tracker. Its state is consistent after any panic (each update is one insert), so a
    /// poisoned lock is simply taken over rather than spreading the panic to every session.
    pub(super) fn lock_bans(&self) -> MutexGuard<'_, BanTracker> {
        self.bans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
