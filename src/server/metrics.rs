//! The server's figures in the Prometheus text format (`GET /metrics` on the admin listener),
//! through the `prometheus-client` crate.
//!
//! Two kinds of figures. Events are counted where they happen, once each: logins by the login
//! handler, transfers when they start and end, reloads where a reload is applied or refused.
//! States are read when the figures are asked for, from what already keeps them: open
//! sessions and running transfers from the live registry ([`super::live`]), refusals by rule
//! and bans from the policy (which counts every refusal in one place, `policy/record.rs`),
//! lockouts from the login guard. Every name carries its unit or `_total`, and every metric
//! its HELP (docs/admin.md lists them).

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::live::Direction;
use crate::policy::PolicyStats;

/// Label pairs: names and values are fixed words (rules, directions, outcomes), never client
/// text, so nothing here can forge a line of the exposition. Fixed-size arrays: counting an
/// event allocates nothing.
type L1 = [(&'static str, &'static str); 1];
type L2 = [(&'static str, &'static str); 2];
type L3 = [(&'static str, &'static str); 3];

/// How a login ended.
#[derive(Debug, Clone, Copy)]
pub enum LoginResult {
    /// Logged in.
    Ok,
    /// Wrong user name or password, or anonymous login off.
    Failed,
    /// Refused because the address is locked out.
    LockedOut,
}

/// The outcome labels a transfer ends with, and the storage labels; a series of these is
/// looked up in its family once and counted through its handle after that.
const OUTCOMES: [&str; 9] = [
    "complete",
    "no_connection",
    "network",
    "storage",
    "aborted",
    "too_large",
    "failed",
    "kicked",
    "disconnected",
];
const STORAGES: [&str; 2] = ["fs", "s3"];
const DIRECTIONS: [Direction; 3] = [Direction::Download, Direction::Upload, Direction::Listing];

/// Counter handles of labelled series, each taken from its family at its first event: later
/// events cost an atomic add instead of hashing the labels under the family's lock. A series
/// appears in the exposition at its first event, as before.
struct Handles<const N: usize>([OnceLock<Counter>; N]);

impl<const N: usize> Handles<N> {
    fn new() -> Self {
        Handles(std::array::from_fn(|_| OnceLock::new()))
    }

    /// The handle at `index` (`None`: a label outside the fixed sets, looked up each time).
    fn count(&self, index: Option<usize>, by: u64, family: impl FnOnce() -> Counter) {
        match index.and_then(|i| self.0.get(i)) {
            Some(slot) => slot.get_or_init(family).inc_by(by),
            None => family().inc_by(by),
        };
    }
}

/// The position of `label` in `set`.
fn index_of(set: &[&str], label: &str) -> Option<usize> {
    set.iter().position(|l| *l == label)
}

/// The position of `direction` in [`DIRECTIONS`] (a match, so a new direction cannot fall
/// into another's slot unnoticed).
fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::Download => 0,
        Direction::Upload => 1,
        Direction::Listing => 2,
    }
}

/// Every figure the admin listener exposes.
pub struct Metrics {
    registry: Registry,
    logins: Family<L1, Counter>,
    started_handles: Handles<{ DIRECTIONS.len() * STORAGES.len() }>,
    finished_handles: Handles<{ DIRECTIONS.len() * OUTCOMES.len() * STORAGES.len() }>,
    bytes_handles: Handles<{ DIRECTIONS.len() }>,
    transfers_started: Family<L2, Counter>,
    transfers_finished: Family<L3, Counter>,
    transfer_bytes: Family<L1, Counter>,
    transfers_running: Family<L1, Gauge>,
    sessions: Family<L1, Gauge>,
    sessions_kicked: Counter,
    connections_denied: Counter,
    refusals: Family<L1, Counter>,
    approvals: Family<L1, Counter>,
    bans: Gauge,
    lockouts: Gauge,
    reloads: Family<L1, Counter>,
    closed_on_passive: Counter,
    passive_ports: Family<L1, Gauge>,
    tls_handshakes: Family<L2, Counter>,
}

/// What the figures read at scrape time are taken from.
pub struct Now<'a> {
    /// Logged-in sessions, sessions not logged in yet, transfers running by direction.
    pub sessions: (u64, u64, std::collections::HashMap<Direction, u64>),
    /// The policy's counters and ban count.
    pub policy: &'a PolicyStats,
    /// Client addresses locked out now.
    pub lockouts: usize,
    /// Ports in `passive.ports`.
    pub passive_range: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fxpd");
        let m = Metrics {
            registry: Registry::default(),
            logins: Family::default(),
            started_handles: Handles::new(),
            finished_handles: Handles::new(),
            bytes_handles: Handles::new(),
            transfers_started: Family::default(),
            transfers_finished: Family::default(),
            transfer_bytes: Family::default(),
            transfers_running: Family::default(),
            sessions: Family::default(),
            sessions_kicked: Counter::default(),
            connections_denied: Counter::default(),
            refusals: Family::default(),
            approvals: Family::default(),
            bans: Gauge::default(),
            lockouts: Gauge::default(),
            reloads: Family::default(),
            closed_on_passive: Counter::default(),
            passive_ports: Family::default(),
            tls_handshakes: Family::default(),
        };
        // A gauge at 1 rather than an OpenMetrics info, which the classic text format lacks.
        let build = Family::<L1, Gauge>::default();
        build
            .get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register("build_info", "The running fxpd: its version (always 1)", build);
        registry.register(
            "sessions",
            "Control connections open now, by state (logged_in, not_logged_in)",
            m.sessions.clone(),
        );
        registry.register(
            "sessions_kicked",
            "Sessions closed by an operator through the admin listener",
            m.sessions_kicked.clone(),
        );
        registry.register(
            "connections_denied",
            "Control connections refused before the greeting by the access lists ([access] allow/deny)",
            m.connections_denied.clone(),
        );
        registry.register(
            "logins",
            "Logins by result (ok, failed, locked_out)",
            m.logins.clone(),
        );
        registry.register(
            "transfers_started",
            "Transfers started, by direction (download, upload, listing) and storage (fs, s3)",
            m.transfers_started.clone(),
        );
        registry.register(
            "transfers_finished",
            "Transfers ended, by direction, outcome (complete, no_connection, network, storage, too_large, aborted, kicked, disconnected, failed) and storage",
            m.transfers_finished.clone(),
        );
        registry.register_with_unit(
            "transfer",
            "Bytes moved by ended transfers, by direction",
            Unit::Bytes,
            m.transfer_bytes.clone(),
        );
        registry.register(
            "transfers_running",
            "Transfers running now, by direction",
            m.transfers_running.clone(),
        );
        registry.register(
            "data_connection_refusals",
            "Data connections (PORT, EPRT, PASV, EPSV, CPSV and connections to passive ports) refused by the policy, by rule",
            m.refusals.clone(),
        );
        registry.register(
            "data_connections_approved",
            "Data connections approved by the policy, by mode (active, passive)",
            m.approvals.clone(),
        );
        registry.register(
            "bans_active",
            "Client addresses banned now for repeated refused data connections",
            m.bans.clone(),
        );
        registry.register(
            "lockouts_active",
            "Client addresses locked out now after failed logins",
            m.lockouts.clone(),
        );
        registry.register(
            "reloads",
            "Configuration reloads by result (ok, refused)",
            m.reloads.clone(),
        );
        registry.register(
            "passive_connections_closed",
            "Connections to passive ports refused and closed (strangers trying to take a client's data connection)",
            m.closed_on_passive.clone(),
        );
        registry.register(
            "passive_ports",
            "Ports of passive.ports held by passive listeners (in_use) and the rest of the range (free)",
            m.passive_ports.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes by channel (control, data) and result (full, resumed, failed)",
            m.tls_handshakes.clone(),
        );
        // Every labelled series exists from the start, so a rate() sees its first increment.
        for result in ["ok", "failed", "locked_out"] {
            let _ = m.logins.get_or_create(&[("result", result)]);
        }
        for result in ["ok", "refused"] {
            let _ = m.reloads.get_or_create(&[("result", result)]);
        }
        Metrics { registry, ..m }
    }

    /// One login ended.
    pub fn login(&self, result: LoginResult) {
        let result = match result {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::LockedOut => "locked_out",
        };
        self.logins.get_or_create(&[("result", result)]).inc();
    }

    /// One transfer started.
    pub fn transfer_started(&self, direction: Direction, storage: &'static str) {
        let d = direction_index(direction);
        let index = index_of(&STORAGES, storage).map(|s| d * STORAGES.len() + s);
        self.started_handles.count(index, 1, || {
            self.transfers_started
                .get_or_create(&[("direction", direction.as_str()), ("storage", storage)])
                .clone()
        });
    }

    /// One transfer ended, having moved `bytes`.
    pub fn transfer_finished(
        &self,
        direction: Direction,
        outcome: &'static str,
        storage: &'static str,
        bytes: u64,
    ) {
        let d = direction_index(direction);
        let index = index_of(&OUTCOMES, outcome)
            .zip(index_of(&STORAGES, storage))
            .map(|(o, s)| (d * OUTCOMES.len() + o) * STORAGES.len() + s);
        self.finished_handles.count(index, 1, || {
            self.transfers_finished
                .get_or_create(&[
                    ("direction", direction.as_str()),
                    ("outcome", outcome),
                    ("storage", storage),
                ])
                .clone()
        });
        self.bytes_handles.count(Some(d), bytes, || {
            self.transfer_bytes
                .get_or_create(&[("direction", direction.as_str())])
                .clone()
        });
    }

    /// An operator kicked a session.
    pub fn session_kicked(&self) {
        self.sessions_kicked.inc();
    }

    /// A control connection refused by the access lists.
    pub fn connection_denied(&self) {
        self.connections_denied.inc();
    }

    /// One reload applied (`true`) or refused.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.reloads.get_or_create(&[("result", result)]).inc();
    }

    /// The exposition in the OpenMetrics text format: the states read from `now`, then every
    /// figure.
    pub fn render(&self, now: Now<'_>) -> String {
        let (logged_in, waiting, running) = now.sessions;
        set(&self.sessions, [("state", "logged_in")], logged_in);
        set(&self.sessions, [("state", "not_logged_in")], waiting);
        for direction in DIRECTIONS {
            let n = running.get(&direction).copied().unwrap_or(0);
            set(&self.transfers_running, [("direction", direction.as_str())], n);
        }
        // The policy counts every refusal in one place; its counters are copied, not counted twice.
        for (reason, n) in &now.policy.refused {
            self.refusals
                .get_or_create(&[("rule", reason.token())])
                .inner()
                .store(*n, Ordering::Relaxed);
        }
        for (mode, n) in [
            ("active", now.policy.approved_active),
            ("passive", now.policy.approved_passive),
        ] {
            self.approvals
                .get_or_create(&[("mode", mode)])
                .inner()
                .store(n, Ordering::Relaxed);
        }
        self.bans.set(now.policy.banned_addresses as i64);
        self.closed_on_passive
            .inner()
            .store(now.policy.closed_on_passive, Ordering::Relaxed);
        let in_use = now.policy.passive_listeners;
        set(&self.passive_ports, [("state", "in_use")], in_use);
        set(
            &self.passive_ports,
            [("state", "free")],
            now.passive_range.saturating_sub(in_use),
        );
        for (channel, counts) in crate::tls::handshake_counts() {
            let channel = match channel {
                crate::tls::Channel::Control => "control",
                crate::tls::Channel::Data => "data",
            };
            for (result, n) in ["full", "resumed", "failed"].into_iter().zip(counts) {
                self.tls_handshakes
                    .get_or_create(&[("channel", channel), ("result", result)])
                    .inner()
                    .store(n, Ordering::Relaxed);
            }
        }
        self.lockouts.set(now.lockouts as i64);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The same figures in the classic Prometheus text format (0.0.4), for a scraper that does
/// not ask for OpenMetrics (curl, `promtool check metrics`, older servers): a counter's
/// family is named with its `_total` like its samples, and the `# UNIT` and `# EOF` lines
/// (OpenMetrics only) go; the unit stays in every name.
pub fn classic_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" counter"))
        {
            counters.insert(name.to_owned());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn set(family: &Family<L1, Gauge>, labels: L1, n: u64) {
    family
        .get_or_create(&labels)
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Reason;

    #[test]
    fn counts_and_states_show_with_help_and_units() {
        let m = Metrics::new();
        m.login(LoginResult::Ok);
        m.login(LoginResult::Failed);
        m.transfer_started(Direction::Upload, "fs");
        m.transfer_finished(Direction::Upload, "complete", "fs", 1234);
        let stats = PolicyStats {
            approved_active: 2,
            approved_passive: 3,
            refused: Reason::ALL
                .iter()
                .map(|&r| (r, u64::from(r == Reason::ForeignAddress)))
                .collect(),
            banned_addresses: 1,
            closed_on_passive: 4,
            passive_listeners: 2,
        };
        let text = m.render(Now {
            sessions: (2, 1, Default::default()),
            policy: &stats,
            lockouts: 0,
            passive_range: 1000,
        });
        for line in [
            "fxpd_logins_total{result=\"ok\"} 1",
            "fxpd_logins_total{result=\"failed\"} 1",
            "fxpd_logins_total{result=\"locked_out\"} 0",
            "fxpd_transfer_bytes_total{direction=\"upload\"} 1234",
            "fxpd_data_connection_refusals_total{rule=\"foreign-address\"} 1",
            "fxpd_data_connection_refusals_total{rule=\"peer-not-listed\"} 0",
            "fxpd_sessions{state=\"logged_in\"} 2",
            "fxpd_bans_active 1",
            "fxpd_passive_connections_closed_total 4",
            "fxpd_passive_ports{state=\"in_use\"} 2",
            "fxpd_passive_ports{state=\"free\"} 998",
            "fxpd_tls_handshakes_total{channel=\"data\",result=\"resumed\"}",
            "# HELP fxpd_transfer_bytes Bytes moved",
            "# UNIT fxpd_transfer_bytes bytes",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let classic = classic_text(&text);
        assert!(
            classic.contains("# TYPE fxpd_logins_total counter\n"),
            "{classic}"
        );
        assert!(
            classic.contains("# HELP fxpd_transfer_bytes_total Bytes moved"),
            "{classic}"
        );
        assert!(classic.contains("# TYPE fxpd_sessions gauge\n"), "{classic}");
        assert!(
            !classic.contains("# UNIT") && !classic.contains("# EOF"),
            "{classic}"
        );
    }
}
