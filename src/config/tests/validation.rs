//! Range and cross-field checks, and each section's own checks.

use super::*;

#[test]
fn validation_ranges() {
    type Limit = fn(&mut LimitsConfig) -> &mut u64;
    let u64_limits: [(&str, Limit, u64, u64); 7] = [
        (
            "limits.idle_timeout_secs",
            |l| &mut l.idle_timeout_secs,
            1,
            86_400,
        ),
        ("limits.data_timeout_secs", |l| &mut l.data_timeout_secs, 1, 3_600),
        (
            "limits.login_timeout_secs",
            |l| &mut l.login_timeout_secs,
            1,
            3_600,
        ),
        (
            "limits.failed_login_delay_ms",
            |l| &mut l.failed_login_delay_ms,
            0,
            30_000,
        ),
        ("limits.lockout_secs", |l| &mut l.lockout_secs, 1, 604_800),
        (
            "limits.shutdown_grace_secs",
            |l| &mut l.shutdown_grace_secs,
            0,
            3_600,
        ),
        (
            "limits.idle_timeout_secs",
            |l| &mut l.idle_timeout_secs,
            1,
            86_400,
        ),
    ];
    for (key, field, min, max) in u64_limits {
        valid(|c| *field(&mut c.limits) = min);
        valid(|c| *field(&mut c.limits) = max);
        if min > 0 {
            assert_eq!(invalid(|c| *field(&mut c.limits) = min - 1).key(), Some(key));
        }
        assert_eq!(invalid(|c| *field(&mut c.limits) = max + 1).key(), Some(key));
    }

    valid(|c| c.limits.max_line_len = 512);
    valid(|c| c.limits.max_line_len = 65_536);
    assert_eq!(
        invalid(|c| c.limits.max_line_len = 511).key(),
        Some("limits.max_line_len")
    );
    assert_eq!(
        invalid(|c| c.limits.max_line_len = 65_537).key(),
        Some("limits.max_line_len")
    );
    assert_eq!(
        invalid(|c| c.limits.max_sessions = 0).key(),
        Some("limits.max_sessions")
    );
    assert_eq!(
        invalid(|c| c.limits.max_sessions_per_ip = 0).key(),
        Some("limits.max_sessions_per_ip")
    );
    let err = invalid(|c| c.limits.max_sessions = 10);
    assert_eq!(err.key(), Some("limits.max_sessions_per_ip"));
    assert!(
        err.message()
            .contains("(50) must not be above limits.max_sessions (10)"),
        "{err}"
    );
    valid(|c| {
        c.limits.max_sessions = 10;
        c.limits.max_sessions_per_ip = 10;
    });
    assert_eq!(
        invalid(|c| c.limits.max_login_failures = 0).key(),
        Some("limits.max_login_failures")
    );
    for (key, value) in [
        ("limits.max_unauthenticated", 0),
        ("limits.max_unauthenticated", 100_001),
        ("limits.max_unauthenticated_per_ip", 0),
    ] {
        let err = invalid(|c| match key {
            "limits.max_unauthenticated" => c.limits.max_unauthenticated = value,
            _ => c.limits.max_unauthenticated_per_ip = value,
        });
        assert_eq!(err.key(), Some(key), "{key} = {value}");
    }
    let err = invalid(|c| c.limits.max_unauthenticated = 5);
    assert_eq!(err.key(), Some("limits.max_unauthenticated_per_ip"));
    assert!(
        err.message()
            .contains("(10) must not be above limits.max_unauthenticated (5)"),
        "{err}"
    );
    // The per-address budget may exceed max_sessions_per_ip: the smaller one applies.
    valid(|c| {
        c.limits.max_unauthenticated = 100_000;
        c.limits.max_unauthenticated_per_ip = 100_000;
        c.limits.max_sessions_per_ip = 1;
    });
    valid(|c| c.limits.user_slowdown_max_ms = 0);
    valid(|c| c.limits.user_slowdown_max_ms = 60_000);
    assert_eq!(
        invalid(|c| c.limits.user_slowdown_max_ms = 60_001).key(),
        Some("limits.user_slowdown_max_ms")
    );

    assert_eq!(invalid(|c| c.listen.clear()).key(), Some("listen"));
    assert_eq!(
        invalid(|c| c.listen.push(addr("0.0.0.0:21"))).key(),
        Some("listen")
    );
    assert_eq!(invalid(|c| c.root = PathBuf::new()).key(), Some("root"));
    assert_eq!(
        invalid(|c| c.users_file = Some(PathBuf::new())).key(),
        Some("users_file")
    );
    assert_eq!(
        invalid(|c| c.banner = "a\r\n230 fake".into()).key(),
        Some("banner")
    );
    assert_eq!(invalid(|c| c.banner = "a\nb".into()).key(), Some("banner"));
    valid(|c| c.banner = "é".repeat(MAX_BANNER_CHARS));
    valid(|c| c.banner = String::new());
    assert_eq!(
        invalid(|c| c.banner = "x".repeat(MAX_BANNER_CHARS + 1)).key(),
        Some("banner")
    );
    assert_eq!(
        invalid(|c| c.passive.ports = PortRange { first: 0, last: 10 }).key(),
        Some("passive.ports")
    );
    assert_eq!(
        invalid(|c| c.passive.ports = PortRange { first: 10, last: 9 }).key(),
        Some("passive.ports")
    );
    valid(|c| c.passive.ports = PortRange { first: 1, last: 1 });
}

#[test]
fn port_range() {
    let r: PortRange = "50000-50999".parse().unwrap();
    assert_eq!(
        r,
        PortRange {
            first: 50000,
            last: 50999
        }
    );
    assert_eq!(r.len(), 1000);
    assert!(r.contains(50000) && r.contains(50999) && !r.contains(51000));
    assert_eq!(r.to_string(), "50000-50999");
    assert_eq!("2121".parse::<PortRange>().unwrap().len(), 1);
    assert_eq!(
        " 1 - 65535 ".parse::<PortRange>().unwrap(),
        PortRange {
            first: 1,
            last: 65535
        }
    );
    for bad in ["", "0", "0-10", "10-9", "a-b", "1-65536", "1-2-3", "-5", "70000"] {
        assert!(bad.parse::<PortRange>().is_err(), "{bad}");
    }
    assert_eq!(
        PortRange {
            first: 1,
            last: 65535
        }
        .len(),
        65535
    );
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"50000-50999\"");
}

#[test]
fn log_levels_map_to_tracing() {
    let levels = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];
    for level in levels {
        let tracing_level: tracing::Level = level.into();
        assert_eq!(tracing_level.as_str().to_ascii_lowercase(), level.to_string());
        let parsed: LogLevel = toml::Value::String(level.to_string()).try_into().unwrap();
        assert_eq!(parsed, level);
    }
}

#[test]
fn cluster_settings_are_checked() {
    let set = |pairs: &[&str]| Overrides {
        set: pairs.iter().map(|s| s.to_string()).collect(),
        ..Overrides::default()
    };
    let err = |pairs: &[&str]| load_text("", &[], &set(pairs)).unwrap_err().to_string();
    assert!(err(&["cluster.redis_url=http://127.0.0.1:6379"]).contains("cluster.redis_url"));
    let with_password = err(&["cluster.redis_url=redis://:hunter2@127.0.0.1:6379/0"]);
    assert!(
        with_password.contains("cluster.redis_password_file"),
        "{with_password}"
    );
    assert!(!with_password.contains("hunter2"), "{with_password}");
    assert!(err(&["cluster.redis_password_file=/etc/fxpd/pw"]).contains("cluster.redis_url"));
    assert!(err(&["cluster.key_prefix=a b"]).contains("cluster.key_prefix"));
    assert!(err(&["cluster.key_prefix="]).contains("cluster.key_prefix"));
    assert!(err(&["cluster.timeout_ms=0"]).contains("cluster.timeout_ms"));
    load_text(
        "",
        &[],
        &set(&[
            "cluster.redis_url=redis://127.0.0.1:6379/2",
            "cluster.key_prefix=site-a",
        ]),
    )
    .unwrap();
}

#[test]
fn s3_storage_without_bucket_or_endpoint_is_fatal_and_names_the_key() {
    let no_bucket = "[storage]\nkind = \"s3\"\nendpoint = \"https://s3.example.net\"\n";
    let e = load_text(no_bucket, &[], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("storage.bucket"), "{e}");
    let no_endpoint = "[storage]\nkind = \"s3\"\nbucket = \"files\"\n";
    let e = load_text(no_endpoint, &[], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("storage.endpoint"), "{e}");
    let e = load_text(
        "",
        &[("FXPD__STORAGE__KIND", "s3"), ("FXPD__STORAGE__BUCKET", "files")],
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("storage.endpoint"), "{e}");
    let ok = "[storage]\nkind = \"s3\"\nbucket = \"files\"\nendpoint = \"https://s3.example.net\"\nprefix = \"ftp\"\n";
    let loaded = load_text(ok, &[], &Overrides::default()).unwrap();
    assert_eq!(loaded.config.storage.kind, crate::config::StorageKind::S3);
    // The shown configuration has no credentials to show: they are not settings.
    assert!(!render_text(&loaded).contains("secret"));
}
