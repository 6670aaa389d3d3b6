//! Unit tests for the failed-login accounting: address lockouts, user-name slowdown and pruning.

use super::*;

fn config() -> GuardConfig {
    GuardConfig {
        failure_delay: Duration::ZERO,
        max_failures: 3,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(300),
        max_slowdown: Duration::from_secs(10),
    }
}

fn guard() -> (Arc<ManualClock>, LoginGuard) {
    let clock = Arc::new(ManualClock::new());
    let guard = LoginGuard::with_clock(config(), clock.clone());
    (clock, guard)
}

const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
const IP_LOCKED: NewLockouts = NewLockouts {
    ip: true,
    user_slowed: false,
};

#[test]
fn locks_ip_after_max_failures_and_expires() {
    let (clock, g) = guard();
    assert_eq!(g.record_failure(A, Some("u1")), NewLockouts::default());
    assert_eq!(g.record_failure(A, Some("u2")), NewLockouts::default());
    assert_eq!(g.record_failure(A, Some("u3")), IP_LOCKED);
    assert_eq!(g.check(A), Err(Duration::from_secs(300)));
    assert_eq!(g.check(B), Ok(()));
    clock.advance(Duration::from_secs(299));
    assert_eq!(g.check(A), Err(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(g.check(A), Ok(()));
    // After expiry the count starts again from zero.
    assert_eq!(g.record_failure(A, None), NewLockouts::default());
}

#[test]
fn failures_from_one_address_neither_lock_nor_slow_the_name_elsewhere() {
    let (_clock, g) = guard();
    for _ in 0..20 {
        g.record_failure(A, Some("alice"));
    }
    assert!(g.check(A).is_err());
    // A locked address adds no more failures to the name: it stays at the threshold.
    assert_eq!(g.check(B), Ok(()));
    assert_eq!(g.slowdown("alice"), Duration::ZERO);
}

#[test]
fn a_name_failing_from_many_addresses_is_slowed_down_never_locked() {
    let (clock, g) = guard();
    let addr = |i: u8| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
    let mut started_slowing = 0;
    let mut waits = Vec::new();
    for i in 0..8 {
        if g.record_failure(addr(i), Some("alice")).user_slowed {
            started_slowing += 1;
        }
        waits.push(g.slowdown("alice").as_secs());
        // Each address failed once: none is locked.
        assert_eq!(g.check(addr(i)), Ok(()));
    }
    assert_eq!(started_slowing, 1, "logged once, when the slowdown begins");
    // Free up to the threshold, then 1 s doubling, capped at 10 s.
    assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 10]);
    assert_eq!(g.slowdown("bob"), Duration::ZERO);
    // A success does not reset the name; the end of the window does.
    clock.advance(Duration::from_secs(60));
    assert_eq!(g.slowdown("alice"), Duration::ZERO);
}

#[test]
fn slowdown_is_off_with_zero_cap_or_threshold() {
    let off = GuardConfig {
        max_slowdown: Duration::ZERO,
        ..config()
    };
    assert_eq!(off.slowdown(1000), Duration::ZERO);
    let no_threshold = GuardConfig {
        max_failures: 0,
        ..config()
    };
    assert_eq!(no_threshold.slowdown(1000), Duration::ZERO);
    assert_eq!(config().slowdown(u32::MAX), Duration::from_secs(10));
}

#[test]
fn window_forgets_old_failures() {
    let (clock, g) = guard();
    g.record_failure(A, None);
    g.record_failure(A, None);
    clock.advance(Duration::from_secs(61));
    assert_eq!(g.record_failure(A, None), NewLockouts::default());
    assert_eq!(g.check(A), Ok(()));
}

#[test]
fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
    let (_clock, g) = guard();
    for last in 1..=3u16 {
        g.record_failure(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last)),
            None,
        );
    }
    assert!(g
        .check(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9)))
        .is_err());
    assert!(g
        .check(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)))
        .is_ok());
    for _ in 0..3 {
        g.record_failure(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()), None);
    }
    assert!(g.check(A).is_err());
}

#[test]
fn max_failures_zero_never_locks() {
    let clock = Arc::new(ManualClock::new());
    let g = LoginGuard::with_clock(
        GuardConfig {
            max_failures: 0,
            ..config()
        },
        clock,
    );
    for _ in 0..100 {
        assert_eq!(g.record_failure(A, Some("a")), NewLockouts::default());
    }
    assert_eq!(g.check(A), Ok(()));
    assert_eq!(g.slowdown("a"), Duration::ZERO);
}

#[test]
fn memory_is_bounded() {
    let clock = Arc::new(ManualClock::new());
    let g = LoginGuard::with_clock(config(), clock.clone()).with_max_entries(10);
    // Lock out A first; it must survive the flood better than unlocked entries.
    for _ in 0..3 {
        g.record_failure(A, None);
    }
    for i in 0..1000u32 {
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        g.record_failure(ip, Some(&format!("user{i}")));
        let (ips, users) = g.tracked();
        assert!(ips <= 10 && users <= 10);
    }
    assert!(g.check(A).is_err());
    // Expired entries are pruned to make room.
    clock.advance(Duration::from_secs(3600));
    g.record_failure(B, None);
    assert_eq!(g.tracked().0, 1);
}

#[test]
fn long_names_are_cut() {
    assert_eq!(user_key(&"x".repeat(10_000)).len(), MAX_KEY_CHARS);
}

use std::net::Ipv4Addr;
