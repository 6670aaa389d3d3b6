//! Tests of the decision table, the one gate and proxy trust, with the helpers the policy tests share;
//! the bookkeeping after a decision is tested in [`bookkeeping`].

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Direction::{self, Active, Passive};
use super::FxpOverride::{Allow, Deny, Inherit};
use super::*;

mod bookkeeping;

/// The client in most tests, and addresses inside / outside [`peers`].
const PEER: &str = "198.51.100.1";
const LISTED: &str = "192.0.2.7";
const UNLISTED: &str = "203.0.113.9";

fn peers() -> Vec<Cidr> {
    vec![
        "192.0.2.0/24".parse().unwrap(),
        "2001:db8:2::/48".parse().unwrap(),
    ]
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn sock(ip_text: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(ip_text), port)
}

/// A session of `peer`; `user` is (anonymous, override).
fn who(peer: &str, (anonymous, fxp): (bool, FxpOverride)) -> Who {
    let user = Some(if anonymous { "anonymous" } else { "alice" }.into());
    Who {
        peer: ip(peer),
        user,
        anonymous,
        fxp,
    }
}

const USER: (bool, FxpOverride) = (false, Inherit);
const USER_ALLOW: (bool, FxpOverride) = (false, Allow);
const USER_DENY: (bool, FxpOverride) = (false, Deny);
const ANON: (bool, FxpOverride) = (true, Inherit);
const ANON_ALLOW: (bool, FxpOverride) = (true, Allow);
const ANON_DENY: (bool, FxpOverride) = (true, Deny);

/// A policy without banning, so that decisions in a loop stay independent.
fn policy(adjust: impl FnOnce(&mut FxpConfig)) -> Policy {
    let mut cfg = FxpConfig {
        ban_threshold: 0,
        ..FxpConfig::default()
    };
    adjust(&mut cfg);
    Policy::new(cfg)
}

fn ask(policy: &Policy, dir: Direction, who: &Who, addr: SocketAddr) -> Result<(), Refusal> {
    match dir {
        Active => policy.approve_active(who, "PORT", addr).map(|_| ()),
        Passive => policy.approve_passive_peer(who, addr),
    }
}

/// Expected outcome: `None` approves, otherwise the reason and the setting named in the refusal.
type Want = Option<(Reason, Option<&'static str>)>;
const OK: Want = None;
const PRIVILEGED: Want = Some((Reason::PrivilegedPort, Some("fxp.allow_privileged_ports")));
const PORT_ZERO: Want = Some((Reason::PrivilegedPort, None));
const FOREIGN_PORT: Want = Some((Reason::ForeignAddress, Some("fxp.allow_foreign_port")));
const FOREIGN_PASSIVE: Want = Some((Reason::ForeignAddress, Some("fxp.allow_foreign_passive")));
const NOT_UNICAST: Want = Some((Reason::ForeignAddress, None));
const NOT_LISTED: Want = Some((Reason::PeerNotListed, Some("fxp.peers")));
const USER_DENIED: Want = Some((Reason::UserDenied, Some("users file: fxp = \"allow\"")));
const ANON_DENIED: Want = Some((Reason::AnonymousDenied, Some("fxp.allow_anonymous")));

type Cfg = fn(&mut FxpConfig);

/// One row of [`decision_table`]: why, direction, config, (anonymous, override), client, data address, outcome.
type Row = (
    &'static str,
    Direction,
    Cfg,
    (bool, FxpOverride),
    &'static str,
    SocketAddr,
    Want,
);

/// The decision table row by row, and the precedence between rows.
#[test]
fn decision_table() {
    #[rustfmt::skip]
    let rows: &[Row] = &[
        // Own address.
        ("own address", Active, |_| {}, USER, PEER, sock(PEER, 2000), OK),
        ("own address, port 1024", Active, |_| {}, USER, PEER, sock(PEER, 1024), OK),
        ("own address, port 1023", Active, |_| {}, USER, PEER, sock(PEER, 1023), PRIVILEGED),
        ("own address, privileged port allowed", Active, |c| c.allow_privileged_ports = true, USER, PEER, sock(PEER, 80), OK),
        ("own address, port 0 even when allowed", Active, |c| c.allow_privileged_ports = true, USER, PEER, sock(PEER, 0), PORT_ZERO),
        ("own address, user deny irrelevant", Active, |_| {}, USER_DENY, PEER, sock(PEER, 2000), OK),
        ("own address, anonymous irrelevant", Active, |_| {}, ANON, PEER, sock(PEER, 2000), OK),
        ("own address need not be in peers", Active, |c| c.peers = peers(), USER, PEER, sock(PEER, 2000), OK),
        ("own passive, any port", Passive, |_| {}, USER, PEER, sock(PEER, 80), OK),
        ("own passive, port 0 irrelevant", Passive, |_| {}, USER, PEER, sock(PEER, 0), OK),
        // The global switches, one per direction.
        ("foreign PORT, default", Active, |_| {}, USER, PEER, sock(LISTED, 2000), FOREIGN_PORT),
        ("foreign PORT, only passive switch", Active, |c| c.allow_foreign_passive = true, USER, PEER, sock(LISTED, 2000), FOREIGN_PORT),
        ("foreign PORT, switch on", Active, |c| c.allow_foreign_port = true, USER, PEER, sock(LISTED, 2000), OK),
        ("foreign passive, default", Passive, |_| {}, USER, PEER, sock(LISTED, 2000), FOREIGN_PASSIVE),
        ("foreign passive, only PORT switch", Passive, |c| c.allow_foreign_port = true, USER, PEER, sock(LISTED, 2000), FOREIGN_PASSIVE),
        ("foreign passive, switch on", Passive, |c| c.allow_foreign_passive = true, USER, PEER, sock(LISTED, 2000), OK),
        // Port rules come before the foreign-address rules.
        ("foreign privileged, switch off", Active, |_| {}, USER, PEER, sock(LISTED, 21), PRIVILEGED),
        ("foreign privileged, switch on", Active, |c| c.allow_foreign_port = true, USER, PEER, sock(LISTED, 21), PRIVILEGED),
        ("foreign privileged, both allowed", Active, |c| { c.allow_foreign_port = true; c.allow_privileged_ports = true }, USER, PEER, sock(LISTED, 21), OK),
        ("foreign privileged, user allow", Active, |_| {}, USER_ALLOW, PEER, sock(LISTED, 21), PRIVILEGED),
        // Non-unicast PORT targets are never approved.
        ("PORT 0.0.0.0", Active, |c| c.allow_foreign_port = true, USER, PEER, sock("0.0.0.0", 2000), NOT_UNICAST),
        ("PORT 0.0.0.0 inside a peers block", Active, |c| { c.allow_foreign_port = true; c.peers = vec!["0.0.0.0/8".parse().unwrap()] }, USER, PEER, sock("0.0.0.0", 2000), NOT_UNICAST),
        ("PORT broadcast", Active, |c| c.allow_foreign_port = true, USER, PEER, sock("255.255.255.255", 2000), NOT_UNICAST),
        ("PORT multicast", Active, |c| c.allow_foreign_port = true, USER, PEER, sock("224.0.0.1", 2000), NOT_UNICAST),
        ("EPRT ::", Active, |c| c.allow_foreign_port = true, USER, "2001:db8:1::1", sock("::", 2000), NOT_UNICAST),
        ("EPRT ff02::1", Active, |c| c.allow_foreign_port = true, USER, "2001:db8:1::1", sock("ff02::1", 2000), NOT_UNICAST),
        // The user override replaces the switch, both ways.
        ("user allow, switch off", Active, |_| {}, USER_ALLOW, PEER, sock(LISTED, 2000), OK),
        ("user allow, passive switch off", Passive, |_| {}, USER_ALLOW, PEER, sock(LISTED, 2000), OK),
        ("user deny, switch on", Active, |c| c.allow_foreign_port = true, USER_DENY, PEER, sock(LISTED, 2000), USER_DENIED),
        ("user deny, passive switch on", Passive, |c| c.allow_foreign_passive = true, USER_DENY, PEER, sock(LISTED, 2000), USER_DENIED),
        ("user deny, switch off", Active, |_| {}, USER_DENY, PEER, sock(LISTED, 2000), USER_DENIED),
        // Anonymous sessions need allow_anonymous in addition, checked first.
        ("anonymous, switch on", Active, |c| c.allow_foreign_port = true, ANON, PEER, sock(LISTED, 2000), ANON_DENIED),
        ("anonymous, passive switch on", Passive, |c| c.allow_foreign_passive = true, ANON, PEER, sock(LISTED, 2000), ANON_DENIED),
        ("anonymous with user allow", Active, |_| {}, ANON_ALLOW, PEER, sock(LISTED, 2000), ANON_DENIED),
        ("anonymous with user deny", Active, |c| c.allow_foreign_port = true, ANON_DENY, PEER, sock(LISTED, 2000), ANON_DENIED),
        ("anonymous allowed, switch off", Active, |c| c.allow_anonymous = true, ANON, PEER, sock(LISTED, 2000), FOREIGN_PORT),
        ("anonymous allowed, switch on", Active, |c| { c.allow_anonymous = true; c.allow_foreign_port = true }, ANON, PEER, sock(LISTED, 2000), OK),
        ("anonymous allowed, user allow", Passive, |c| c.allow_anonymous = true, ANON_ALLOW, PEER, sock(LISTED, 2000), OK),
        ("anonymous allowed, user deny", Active, |c| { c.allow_anonymous = true; c.allow_foreign_port = true }, ANON_DENY, PEER, sock(LISTED, 2000), USER_DENIED),
        // The peers list binds everyone, after the switch.
        ("listed peer", Active, |c| { c.allow_foreign_port = true; c.peers = peers() }, USER, PEER, sock(LISTED, 2000), OK),
        ("unlisted peer", Active, |c| { c.allow_foreign_port = true; c.peers = peers() }, USER, PEER, sock(UNLISTED, 2000), NOT_LISTED),
        ("unlisted peer, passive", Passive, |c| { c.allow_foreign_passive = true; c.peers = peers() }, USER, PEER, sock(UNLISTED, 2000), NOT_LISTED),
        ("unlisted peer, user allow", Active, |c| c.peers = peers(), USER_ALLOW, PEER, sock(UNLISTED, 2000), NOT_LISTED),
        ("unlisted peer, switch off", Active, |c| c.peers = peers(), USER, PEER, sock(UNLISTED, 2000), FOREIGN_PORT),
        ("empty peers = any foreign", Active, |c| c.allow_foreign_port = true, USER, PEER, sock(UNLISTED, 2000), OK),
        // Address families and normalisation.
        ("mapped target is own", Active, |_| {}, USER, PEER, sock("::ffff:198.51.100.1", 2000), OK),
        ("mapped peer, IPv4 target is own", Active, |_| {}, USER, "::ffff:198.51.100.1", sock(PEER, 2000), OK),
        ("mapped passive source is own", Passive, |_| {}, USER, PEER, sock("::ffff:198.51.100.1", 2000), OK),
        ("mapped foreign target checked as IPv4", Active, |c| { c.allow_foreign_port = true; c.peers = peers() }, USER, PEER, sock("::ffff:192.0.2.7", 2000), OK),
        ("mapped unlisted target", Active, |c| { c.allow_foreign_port = true; c.peers = peers() }, USER, PEER, sock("::ffff:203.0.113.9", 2000), NOT_LISTED),
        ("IPv4-compatible form is foreign", Active, |_| {}, USER, PEER, sock("::198.51.100.1", 2000), FOREIGN_PORT),
        ("IPv6 target for IPv4 client", Active, |_| {}, USER, PEER, sock("2001:db8:1::1", 2000), FOREIGN_PORT),
        ("IPv6 own", Active, |_| {}, USER, "2001:db8:1::1", sock("2001:db8:1::1", 2000), OK),
        ("IPv6 other host in same /64", Passive, |_| {}, USER, "2001:db8:1::1", sock("2001:db8:1::2", 2000), FOREIGN_PASSIVE),
        ("IPv6 listed", Passive, |c| { c.allow_foreign_passive = true; c.peers = peers() }, USER, "2001:db8:1::1", sock("2001:db8:2::7", 2000), OK),
        ("IPv6 unlisted", Passive, |c| { c.allow_foreign_passive = true; c.peers = peers() }, USER, "2001:db8:1::1", sock("2001:db8:3::9", 2000), NOT_LISTED),
    ];
    for (why, dir, adjust, user, peer, addr, want) in rows {
        let policy = policy(adjust);
        let got = ask(&policy, *dir, &who(peer, *user), *addr)
            .err()
            .map(|r| (r.reason, r.setting));
        assert_eq!(got, *want, "{why}: {dir:?} {addr} for {peer}");
    }
}

/// One address family for [`exhaustive_matrix`]: the client and the three kinds of data address.
struct Family {
    name: &'static str,
    peer: &'static str,
    own: &'static str,
    listed: &'static str,
    unlisted: &'static str,
}

const FAMILIES: [Family; 4] = [
    Family {
        name: "IPv4",
        peer: PEER,
        own: PEER,
        listed: LISTED,
        unlisted: UNLISTED,
    },
    Family {
        name: "IPv6",
        peer: "2001:db8:1::1",
        own: "2001:db8:1::1",
        listed: "2001:db8:2::7",
        unlisted: "2001:db8:3::9",
    },
    Family {
        name: "mapped peer",
        peer: "::ffff:198.51.100.1",
        own: PEER,
        listed: LISTED,
        unlisted: UNLISTED,
    },
    Family {
        name: "mapped target",
        peer: PEER,
        own: "::ffff:198.51.100.1",
        listed: "::ffff:192.0.2.7",
        unlisted: "::ffff:203.0.113.9",
    },
];

/// Every combination of address family x direction x own/listed/unlisted address x switch x
/// privileged port x peers list x override x anonymous x allow_anonymous. The rules are restated
/// here as independent conditions: the request is approved exactly when none fails, and a refusal
/// names one that does (which one is the precedence, tested in [`decision_table`]).
#[test]
fn exhaustive_matrix() {
    let mut cases = 0;
    for fam in &FAMILIES {
        for dir in [Active, Passive] {
            for (addr_ip, own, listed) in [
                (fam.own, true, false),
                (fam.listed, false, true),
                (fam.unlisted, false, false),
            ] {
                for port in [2000, 80] {
                    // Five independent switches: all 32 combinations.
                    for bits in 0..32u8 {
                        let bit = |i: u8| bits & (1 << i) != 0;
                        let (switch, privileged, peers_on, allow_anon, anonymous) =
                            (bit(0), bit(1), bit(2), bit(3), bit(4));
                        for fxp in [Inherit, Allow, Deny] {
                            let policy = policy(|c| {
                                match dir {
                                    Active => c.allow_foreign_port = switch,
                                    Passive => c.allow_foreign_passive = switch,
                                }
                                c.allow_privileged_ports = privileged;
                                c.allow_anonymous = allow_anon;
                                if peers_on {
                                    c.peers = peers();
                                }
                            });
                            let who = who(fam.peer, (anonymous, fxp));
                            let addr = sock(addr_ip, port);

                            let mut failing = Vec::new();
                            if dir == Active && port < 1024 && !privileged {
                                failing.push(Reason::PrivilegedPort);
                            }
                            if !own {
                                if anonymous && !allow_anon {
                                    failing.push(Reason::AnonymousDenied);
                                }
                                if fxp == Deny {
                                    failing.push(Reason::UserDenied);
                                }
                                if fxp == Inherit && !switch {
                                    failing.push(Reason::ForeignAddress);
                                }
                                if peers_on && !listed {
                                    failing.push(Reason::PeerNotListed);
                                }
                            }

                            let case = format!(
                                "{} {dir:?} {addr} port={port} own={own} listed={listed} switch={switch} \
                                 privileged={privileged} peers={peers_on} anon={anonymous} \
                                 allow_anon={allow_anon} fxp={fxp:?}",
                                fam.name
                            );
                            match ask(&policy, dir, &who, addr) {
                                Ok(()) => assert!(failing.is_empty(), "approved but {failing:?}: {case}"),
                                Err(refusal) => {
                                    assert!(failing.contains(&refusal.reason), "{refusal:?}: {case}");
                                    let text = refusal.reply_text();
                                    assert!(
                                        text.contains(&format!("({})", refusal.reason.token())),
                                        "{text}"
                                    );
                                    if let Some(setting) = refusal.setting {
                                        assert!(text.contains(setting), "{text}");
                                    }
                                }
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 2 * 3 * 2 * 32 * 3);
}

#[test]
fn approved_address_is_normalised() {
    let policy = policy(|c| c.allow_foreign_port = true);
    let ok = policy
        .approve_active(&who(PEER, USER), "EPRT", sock("::ffff:192.0.2.7", 2000))
        .unwrap();
    assert_eq!(ok.addr(), sock(LISTED, 2000));
    let ok = policy
        .approve_active(&who(PEER, USER), "PORT", sock(PEER, 5000))
        .unwrap();
    assert_eq!(ok.addr(), sock(PEER, 5000));
}

#[test]
fn reply_texts_from_real_decisions() {
    let policy = policy(|_| {});
    let refusal = policy
        .approve_active(&who("127.0.0.1", USER), "PORT", sock("127.0.0.3", 2000))
        .unwrap_err();
    assert_eq!(
        refusal.reply_text(),
        "PORT refused (foreign-address): 127.0.0.3 is not your address (127.0.0.1); \
         allowed by fxp.allow_foreign_port (EnablePortAttack)."
    );
    let refusal = policy
        .approve_passive_peer(&who(PEER, USER), sock(LISTED, 40000))
        .unwrap_err();
    assert_eq!(
        refusal.reply_text(),
        "PASV-connection refused (foreign-address): the connection from 192.0.2.7 is not from your \
         address (198.51.100.1); allowed by fxp.allow_foreign_passive (EnablePASVTheft)."
    );
    let refusal = policy
        .approve_active(&who(PEER, USER), "EPRT", sock(PEER, 25))
        .unwrap_err();
    assert_eq!(
        refusal.reply_text(),
        "EPRT refused (privileged-port): port 25 is below 1024; allowed by fxp.allow_privileged_ports."
    );
    let refusal = policy
        .approve_active(&who(PEER, USER_DENY), "PORT", sock(LISTED, 2000))
        .unwrap_err();
    assert!(refusal.reply_text().contains("(user-denied)"));
    assert!(refusal
        .reply_text()
        .contains("allowed by users file: fxp = \"allow\""));
    assert!(
        !refusal.reply_text().contains("alice"),
        "user names are not echoed"
    );
    let refusal = policy.refuse_after_epsv_all(&who(PEER, USER), "PASV");
    assert_eq!(
        refusal.reply_text(),
        "PASV refused (epsv-all): after EPSV ALL only EPSV may set up data connections (RFC 2428 section 4)."
    );
    assert_eq!((refusal.reason, refusal.setting), (Reason::EpsvAll, None));
}

/// A clock the test moves by hand.
struct TestClock(Arc<Mutex<Instant>>);

impl TestClock {
    fn policy(cfg: FxpConfig) -> (Policy, TestClock) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = Arc::clone(&now);
        (
            Policy::with_clock(cfg, Arc::new(move || *read.lock().unwrap())),
            TestClock(now),
        )
    }

    fn advance(&self, secs: u64) {
        *self.0.lock().unwrap() += Duration::from_secs(secs);
    }
}

fn ban_config() -> FxpConfig {
    FxpConfig {
        ban_threshold: 3,
        ban_window_secs: 60,
        ban_secs: 600,
        ..FxpConfig::default()
    }
}

#[test]
fn reason_indices_follow_declaration_order() {
    for (i, reason) in Reason::ALL.iter().enumerate() {
        assert_eq!(*reason as usize, i, "{reason:?}");
    }
}

#[test]
fn policy_is_shareable_across_tasks() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<Refusal>();
}

#[test]
fn proxy_trust_is_deny_by_default_and_follows_the_list() {
    let p = Policy::new(FxpConfig::default());
    assert!(
        !p.proxy_trust("127.0.0.10".parse().unwrap()),
        "empty list trusts nobody"
    );
    p.set_proxy_trusted(vec![
        "127.0.0.10/32".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ]);
    assert!(p.proxy_trust("127.0.0.10".parse().unwrap()));
    assert!(
        p.proxy_trust("::ffff:127.0.0.10".parse().unwrap()),
        "IPv4-mapped is normalised"
    );
    assert!(p.proxy_trust("2001:db8::5".parse().unwrap()));
    assert!(!p.proxy_trust("127.0.0.11".parse().unwrap()));
    assert!(!p.proxy_trust("::1".parse().unwrap()));
    p.set_proxy_trusted(Vec::new());
    assert!(
        !p.proxy_trust("127.0.0.10".parse().unwrap()),
        "a reload can revoke trust"
    );
}

#[test]
fn every_data_setup_command_passes_the_same_gate() {
    let (policy, _clock) = TestClock::policy(ban_config());
    let client = who(PEER, USER);
    let all = [
        DataSetup::Port(sock(PEER, 2000)),
        DataSetup::Eprt(sock(PEER, 2000)),
        DataSetup::Pasv,
        DataSetup::Epsv,
        DataSetup::Cpsv,
    ];
    for setup in all {
        match (setup, policy.approve_setup(&client, setup, false)) {
            (DataSetup::Port(_) | DataSetup::Eprt(_), Ok(Grant::Active(approved))) => {
                assert_eq!(approved.addr(), sock(PEER, 2000))
            }
            (DataSetup::Pasv | DataSetup::Epsv | DataSetup::Cpsv, Ok(Grant::Passive(grant))) => {
                assert_eq!(grant.who().peer, ip(PEER))
            }
            (setup, other) => panic!("{setup:?}: {other:?}"),
        }
    }
    // After EPSV ALL only EPSV passes (RFC 2428 section 4).
    let (policy, _clock) = TestClock::policy(FxpConfig {
        ban_threshold: 0,
        ..ban_config()
    });
    for setup in all {
        let result = policy.approve_setup(&client, setup, true);
        if setup == DataSetup::Epsv {
            assert!(result.is_ok(), "EPSV after EPSV ALL");
        } else {
            let refusal = result.unwrap_err();
            assert_eq!(
                (refusal.reason, refusal.command()),
                (Reason::EpsvAll, setup.verb())
            );
        }
    }
    // A banned client passes with none of them.
    let (policy, _clock) = TestClock::policy(ban_config());
    for _ in 0..3 {
        policy.approve_setup(&client, DataSetup::Cpsv, true).unwrap_err();
    }
    assert!(policy.is_banned(ip(PEER)));
    for setup in all {
        let refusal = policy.approve_setup(&client, setup, false).unwrap_err();
        assert_eq!(
            (refusal.reason, refusal.command()),
            (Reason::Banned, setup.verb())
        );
    }
}
