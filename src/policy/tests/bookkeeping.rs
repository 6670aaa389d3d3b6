//! Tests of what follows a decision: bans, the counters for STAT, the security log, and whose
//! address each refusal is charged to.

use std::collections::BTreeMap;
use std::fmt;

use super::*;

#[test]
fn bans_after_threshold_then_expires() {
    let (policy, clock) = TestClock::policy(ban_config());
    let client = who(PEER, USER);
    let neighbour = who("198.51.100.2", USER);
    for _ in 0..2 {
        assert!(policy
            .approve_active(&client, "PORT", sock(LISTED, 2000))
            .is_err());
        clock.advance(10);
    }
    assert!(!policy.is_banned(ip(PEER)));
    assert!(policy.approve_active(&client, "PORT", sock(PEER, 2000)).is_ok());
    let third = policy
        .approve_active(&client, "EPRT", sock(LISTED, 40000))
        .unwrap_err();
    assert_eq!(
        third.reason,
        Reason::ForeignAddress,
        "the refusal that triggers the ban keeps its reason"
    );

    assert!(policy.is_banned(ip(PEER)));
    assert!(
        policy.is_banned(ip("::ffff:198.51.100.1")),
        "bans apply to the normalised address"
    );
    assert_eq!(policy.stats().banned_addresses, 1);
    // Banned: even the client's own address is refused, in both directions.
    for result in [
        policy
            .approve_active(&client, "PORT", sock(PEER, 2000))
            .map(|_| ()),
        policy.approve_passive_peer(&client, sock(PEER, 40000)),
        policy
            .approve_active(&who("::ffff:198.51.100.1", USER), "EPRT", sock(PEER, 2000))
            .map(|_| ()),
    ] {
        let refusal = result.unwrap_err();
        assert_eq!((refusal.reason, refusal.setting), (Reason::Banned, None));
        assert!(refusal
            .reply_text()
            .starts_with(&format!("{} refused (banned): ", refusal.command())));
    }
    // Another client is unaffected.
    assert!(!policy.is_banned(ip("198.51.100.2")));
    assert!(policy
        .approve_active(&neighbour, "PORT", sock("198.51.100.2", 2000))
        .is_ok());

    // Attempts while banned do not extend the ban.
    clock.advance(599);
    assert!(policy.approve_active(&client, "PORT", sock(PEER, 2000)).is_err());
    assert!(policy.is_banned(ip(PEER)));
    clock.advance(1);
    assert!(!policy.is_banned(ip(PEER)));
    assert_eq!(policy.stats().banned_addresses, 0);
    assert!(policy.approve_active(&client, "PORT", sock(PEER, 2000)).is_ok());
}

#[test]
fn refusals_outside_the_window_do_not_ban() {
    let (policy, clock) = TestClock::policy(ban_config());
    let client = who(PEER, USER);
    for _ in 0..10 {
        assert_eq!(
            policy
                .approve_active(&client, "PORT", sock(PEER, 21))
                .unwrap_err()
                .reason,
            Reason::PrivilegedPort
        );
        clock.advance(31); // two refusals per 60-second window at most
    }
    assert!(!policy.is_banned(ip(PEER)));
}

#[test]
fn epsv_all_refusals_count_toward_a_ban() {
    let (policy, _clock) = TestClock::policy(ban_config());
    for command in ["PORT", "EPRT", "PASV"] {
        policy.refuse_after_epsv_all(&who(PEER, USER), command);
    }
    assert!(policy.is_banned(ip(PEER)));
}

#[test]
fn threshold_zero_disables_banning() {
    let (policy, _clock) = TestClock::policy(FxpConfig {
        ban_threshold: 0,
        ..ban_config()
    });
    for _ in 0..100 {
        assert!(policy
            .approve_active(&who(PEER, USER), "PORT", sock(LISTED, 2000))
            .is_err());
    }
    assert!(!policy.is_banned(ip(PEER)));
    assert_eq!(policy.stats().banned_addresses, 0);
}

#[test]
fn stats_count_approvals_and_refusals_by_reason() {
    let (policy, _clock) = TestClock::policy(FxpConfig {
        ban_threshold: 0,
        ..FxpConfig::default()
    });
    assert_eq!(
        policy.stats(),
        PolicyStats {
            approved_active: 0,
            approved_passive: 0,
            refused: Reason::ALL.iter().map(|&r| (r, 0)).collect(),
            banned_addresses: 0,
            closed_on_passive: 0,
            passive_listeners: 0,
        }
    );
    let client = who(PEER, USER);
    policy.approve_active(&client, "PORT", sock(PEER, 2000)).unwrap();
    policy.approve_active(&client, "EPRT", sock(PEER, 2001)).unwrap();
    policy.approve_passive_peer(&client, sock(PEER, 40000)).unwrap();
    policy
        .approve_active(&client, "PORT", sock(LISTED, 2000))
        .unwrap_err();
    policy
        .approve_passive_peer(&client, sock(LISTED, 2000))
        .unwrap_err();
    policy
        .approve_active(&client, "PORT", sock(PEER, 22))
        .unwrap_err();
    policy
        .approve_active(&who(PEER, ANON), "PORT", sock(LISTED, 2000))
        .unwrap_err();
    policy.refuse_after_epsv_all(&client, "PORT");

    let stats = policy.stats();
    assert_eq!(
        (
            stats.approved_active,
            stats.approved_passive,
            stats.banned_addresses
        ),
        (2, 1, 0)
    );
    assert_eq!(
        stats.refused,
        vec![
            (Reason::ForeignAddress, 2),
            (Reason::PrivilegedPort, 1),
            (Reason::PeerNotListed, 0),
            (Reason::UserDenied, 0),
            (Reason::AnonymousDenied, 1),
            (Reason::EpsvAll, 1),
            (Reason::Banned, 0),
        ]
    );
}

/// Captures the fields of every event, as strings.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

impl Recorder {
    /// The recorded events whose `event` field is `name`.
    fn events(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|e| e.get("event").map(String::as_str) == Some(name))
            .cloned()
            .collect()
    }
}

struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        let mut fields = Fields(BTreeMap::new());
        fields.0.insert("level".into(), meta.level().to_string());
        fields.0.insert("log_target".into(), meta.target().to_owned());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn refusals_and_bans_are_logged_as_security_events() {
    let recorder = Recorder::default();
    let (policy, _clock) = TestClock::policy(FxpConfig {
        ban_threshold: 2,
        ..FxpConfig::default()
    });
    let client = who("::ffff:198.51.100.1", USER);
    tracing::subscriber::with_default(recorder.clone(), || {
        // Tests running in parallel without a subscriber may have cached "never" for these
        // callsites; make them ask again.
        tracing::callsite::rebuild_interest_cache();
        policy.approve_active(&client, "PORT", sock(PEER, 2000)).unwrap();
        policy
            .approve_active(&client, "EPRT", sock(LISTED, 2000))
            .unwrap_err();
        policy.refuse_after_epsv_all(&client, "PASV");
    });

    let approved = recorder.events("data_connection_approved");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["level"], "DEBUG");

    let refused = recorder.events("fxp_refused");
    assert_eq!(refused.len(), 2);
    let first = &refused[0];
    for (key, value) in [
        ("level", "WARN"),
        ("log_target", "fxpd::security"),
        ("client", PEER),
        ("user", "alice"),
        ("command", "EPRT"),
        ("target", "192.0.2.7:2000"),
        ("rule", "foreign-address"),
    ] {
        assert_eq!(
            first.get(key).map(String::as_str),
            Some(value),
            "{key} in {first:?}"
        );
    }
    assert_eq!(refused[1]["rule"], "epsv-all");
    assert_eq!(refused[1]["command"], "PASV");
    assert!(!refused[1].contains_key("target"), "no target after EPSV ALL");

    let banned = recorder.events("client_banned");
    assert_eq!(banned.len(), 1);
    assert_eq!(
        (banned[0]["level"].as_str(), banned[0]["client"].as_str()),
        ("WARN", PEER)
    );
}

/// A host that connects to other clients' passive ports (the address charged for it).
const STRANGER: &str = "203.0.113.66";

#[test]
fn passive_refusals_are_charged_to_the_source_never_the_client() {
    let (policy, _clock) = TestClock::policy(ban_config());
    let victim = who(PEER, USER);
    let neighbour = who("198.51.100.2", USER);
    for _ in 0..3 {
        let refusal = policy
            .screen_passive_peer(&victim, sock(STRANGER, 40000))
            .unwrap_err();
        assert_eq!(refusal.reason, Reason::ForeignAddress);
    }
    assert!(policy.is_banned(ip(STRANGER)), "the stranger banned itself");
    assert!(!policy.is_banned(ip(PEER)), "the victim is not banned");
    assert_eq!(policy.stats().banned_addresses, 1);

    // The victim keeps every kind of data connection.
    assert!(matches!(
        policy.approve_setup(&victim, DataSetup::Pasv, false),
        Ok(Grant::Passive(_))
    ));
    assert!(policy.screen_passive_peer(&victim, sock(PEER, 40001)).is_ok());
    assert!(policy.approve_passive_peer(&victim, sock(PEER, 40001)).is_ok());
    assert!(policy
        .approve_setup(&victim, DataSetup::Port(sock(PEER, 2000)), false)
        .is_ok());

    // The banned stranger gets no data connection from anyone's listener, even where FXP from
    // it would be allowed, and its further attempts never reach the clients.
    policy.reload(FxpConfig {
        allow_foreign_passive: true,
        ..ban_config()
    });
    for session in [&victim, &neighbour] {
        let refusal = policy
            .screen_passive_peer(session, sock(STRANGER, 40002))
            .unwrap_err();
        assert_eq!((refusal.reason, refusal.setting), (Reason::Banned, None));
        assert!(refusal.reply_text().contains(STRANGER), "{refusal}");
    }
    assert!(!policy.is_banned(ip(PEER)));
    assert!(!policy.is_banned(ip("198.51.100.2")));
    // Its own session, if it had one, is banned like any banned client.
    let refusal = policy
        .approve_setup(&who(STRANGER, USER), DataSetup::Epsv, false)
        .unwrap_err();
    assert_eq!(refusal.reason, Reason::Banned);
}

#[test]
fn connections_to_a_banned_clients_listener_charge_nobody() {
    let (policy, _clock) = TestClock::policy(FxpConfig {
        allow_foreign_passive: true,
        ..ban_config()
    });
    let banned = who(PEER, USER);
    for _ in 0..3 {
        policy
            .approve_active(&banned, "PORT", sock(PEER, 21))
            .unwrap_err();
    }
    assert!(policy.is_banned(ip(PEER)));
    // Its FXP partner connecting to its (earlier) listener is refused, but not counted against.
    for _ in 0..10 {
        let refusal = policy
            .screen_passive_peer(&banned, sock(LISTED, 40000))
            .unwrap_err();
        assert_eq!(refusal.reason, Reason::Banned);
    }
    assert!(!policy.is_banned(ip(LISTED)));
}

#[test]
fn a_held_connection_is_judged_again_and_counted_once() {
    let (policy, _clock) = TestClock::policy(FxpConfig {
        allow_foreign_passive: true,
        ban_threshold: 1,
        ..ban_config()
    });
    let client = who(PEER, USER);
    policy.screen_passive_peer(&client, sock(PEER, 40000)).unwrap();
    policy.screen_passive_peer(&client, sock(LISTED, 40001)).unwrap();
    assert_eq!(policy.stats().approved_passive, 0, "screening counts no approval");
    policy.approve_passive_peer(&client, sock(PEER, 40000)).unwrap();
    assert_eq!(policy.stats().approved_passive, 1, "the use counts it, once");

    // A reload revokes foreign passive connections between accept and use: refused (fail
    // closed), counted as a refusal, but charged to nobody (threshold 1 would ban at once).
    policy.reload(FxpConfig {
        ban_threshold: 1,
        ..ban_config()
    });
    let refusal = policy
        .approve_passive_peer(&client, sock(LISTED, 40001))
        .unwrap_err();
    assert_eq!(refusal.reason, Reason::ForeignAddress);
    let stats = policy.stats();
    assert_eq!(stats.approved_passive, 1);
    assert_eq!(stats.refused[Reason::ForeignAddress as usize].1, 1);
    assert_eq!(stats.banned_addresses, 0);
    assert!(!policy.is_banned(ip(LISTED)) && !policy.is_banned(ip(PEER)));
}

#[test]
fn passive_refusals_log_client_source_and_the_address_charged() {
    let recorder = Recorder::default();
    let (policy, _clock) = TestClock::policy(FxpConfig {
        ban_threshold: 2,
        ..FxpConfig::default()
    });
    let victim = who(PEER, USER);
    tracing::subscriber::with_default(recorder.clone(), || {
        tracing::callsite::rebuild_interest_cache();
        for port in [40000, 40001] {
            policy
                .screen_passive_peer(&victim, sock(STRANGER, port))
                .unwrap_err();
        }
    });
    let refused = recorder.events("fxp_refused");
    assert_eq!(refused.len(), 2);
    for (key, value) in [
        ("client", PEER),
        ("source", STRANGER),
        ("charged", STRANGER),
        ("command", PASSIVE_COMMAND),
        ("target", "203.0.113.66:40000"),
        ("rule", "foreign-address"),
    ] {
        assert_eq!(
            refused[0].get(key).map(String::as_str),
            Some(value),
            "{key} in {:?}",
            refused[0]
        );
    }
    let banned = recorder.events("client_banned");
    assert_eq!(banned.len(), 1);
    assert_eq!(banned[0]["client"], STRANGER);
}
