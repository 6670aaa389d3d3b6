//! Tests for the schema, the layers, origins, validation and the shipped config files.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::schema::{schema, OPTIONAL_KEYS};
use super::*;

const EXAMPLE: &str = include_str!("../../config/fxpd.example.toml");
const PACKAGED: &str = include_str!("../../config/fxpd.toml");
const QUICKSTART: &str = include_str!("../../config/quickstart.toml");

/// A scratch directory removed on drop (no tempfile dependency here).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fxpd-config-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn no_default() -> PathBuf {
    std::env::temp_dir()
        .join("fxpd-config-test-no-such-dir")
        .join("fxpd.toml")
}

/// Loads `text` as the config file (written to a scratch dir), with env and overrides.
fn load_text(text: &str, vars: &[(&str, &str)], overrides: &Overrides) -> Result<Loaded, ConfigError> {
    let dir = Scratch::new();
    let path = dir.file("fxpd.toml", text);
    load_with_default_path(Some(&path), &no_default(), &env(vars), overrides)
}

fn file_err(text: &str) -> ConfigError {
    load_text(text, &[], &Overrides::default()).expect_err("config should be rejected")
}

fn env_err(vars: &[(&str, &str)]) -> ConfigError {
    load_text("", vars, &Overrides::default()).expect_err("environment should be rejected")
}

fn set_err(set: &[&str]) -> ConfigError {
    let overrides = Overrides {
        set: set.iter().map(|s| s.to_string()).collect(),
        ..Overrides::default()
    };
    load_text("", &[], &overrides).expect_err("--set should be rejected")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------- shipped files and defaults

#[test]
fn defaults_are_hardened_and_valid() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.listen, vec![addr("0.0.0.0:21")]);
    assert_eq!(c.root, PathBuf::from(DEFAULT_ROOT));
    assert_eq!(c.users_file, None);
    assert_eq!(c.listing_style, ListingStyle::Unix);
    assert_eq!(c.banner, "fxpd FTP server ready.");
    assert_eq!(
        c.passive.ports,
        PortRange {
            first: 50000,
            last: 50999
        }
    );
    assert_eq!(c.passive.address, None);
    assert!(!c.anonymous.enabled && !c.anonymous.write && c.anonymous.home.is_none());
    let f = &c.fxp;
    assert!(
        !f.allow_foreign_port && !f.allow_foreign_passive && !f.allow_privileged_ports && !f.allow_anonymous
    );
    assert!(f.peers.is_empty());
    assert_eq!(c.limits.idle_timeout_secs, 300);
    assert_eq!(c.limits.max_line_len, 8192);
    // Connections not logged in have a budget of their own, well below the sessions', and
    // a shorter time to log in.
    assert_eq!(c.limits.login_timeout_secs, 30);
    assert_eq!(c.limits.max_unauthenticated, 100);
    assert_eq!(c.limits.max_unauthenticated_per_ip, 10);
    assert!(c.limits.max_unauthenticated < c.limits.max_sessions);
    assert_eq!(c.limits.user_slowdown_max_ms, 10_000);
    assert_eq!(
        c.log,
        LogConfig {
            format: LogFormat::Text,
            level: LogLevel::Info,
            w3c_dir: None,
        }
    );
}

#[test]
fn example_file_parses_validates_and_shows_the_defaults() {
    let loaded = load_text(EXAMPLE, &[], &Overrides::default()).unwrap();
    // The example documents the Unix default root.
    let expected = Config {
        root: PathBuf::from("/srv/ftp"),
        ..Config::default()
    };
    assert_eq!(
        loaded.config, expected,
        "every value in the example must be the default it claims"
    );
}

#[test]
fn example_file_documents_every_key() {
    for key in schema().leaves() {
        let name = key.rsplit('.').next().unwrap();
        let documented = EXAMPLE.lines().any(|line| {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            line.starts_with(&format!("{name} ="))
        });
        assert!(documented, "fxpd.example.toml does not show `{key}`");
    }
    for section in schema().sections() {
        assert!(
            EXAMPLE.contains(&format!("[{section}]")),
            "fxpd.example.toml lacks [{section}]"
        );
    }
    assert!(EXAMPLE.contains("EnablePortAttack") && EXAMPLE.contains("EnablePASVTheft"));
    assert!(EXAMPLE.contains("WARNING") && EXAMPLE.to_lowercase().contains("partner servers"));
}

#[test]
fn packaged_file_is_the_hardened_default() {
    let loaded = load_text(PACKAGED, &[], &Overrides::default()).unwrap();
    let expected = Config {
        root: PathBuf::from("/srv/ftp"),
        users_file: Some(PathBuf::from("/etc/fxpd/users.toml")),
        ..Config::default()
    };
    assert_eq!(loaded.config, expected);
    assert!(!loaded.quickstart);
}

#[test]
fn quickstart_file_parses_and_matches_the_embedded_copy() {
    assert_eq!(QUICKSTART, QUICKSTART_TOML);
    let c: Config = toml::from_str(QUICKSTART).unwrap();
    c.validate().unwrap();
    assert!(QUICKSTART.to_lowercase().contains("quick start"));
}

#[test]
fn quickstart_is_used_when_no_file_and_no_default() {
    let loaded = load_with_default_path(None, &no_default(), &[], &Overrides::default()).unwrap();
    assert!(loaded.quickstart);
    assert_eq!(loaded.file, None);
    let c = &loaded.config;
    assert_eq!(c.listen, vec![addr("127.0.0.1:2121")]);
    assert_eq!(
        c.root,
        PathBuf::from("./ftproot"),
        "quick-start root stays relative to the cwd"
    );
    assert!(c.anonymous.enabled && !c.anonymous.write);
    assert!(!c.fxp.allow_foreign_port && !c.fxp.allow_foreign_passive);
    assert!(matches!(loaded.origin("listen"), Some(Origin::Embedded { .. })));
    assert!(matches!(
        loaded.origin("anonymous.enabled"),
        Some(Origin::Embedded { .. })
    ));
    assert_eq!(loaded.origin("limits.idle_timeout_secs"), Some(&Origin::Default));
}

#[test]
fn flags_or_env_without_a_file_get_the_hardened_defaults_not_the_quick_start() {
    let flags = Overrides {
        root: Some(PathBuf::from("/srv/x")),
        ..Overrides::default()
    };
    let loaded = load_with_default_path(None, &no_default(), &[], &flags).unwrap();
    assert!(!loaded.quickstart);
    assert!(
        !loaded.config.anonymous.enabled,
        "no anonymous server nobody asked for"
    );
    assert_eq!(loaded.config.listen, Config::default().listen);
    assert_eq!(loaded.origin("anonymous.enabled"), Some(&Origin::Default));
    let env = [("FXPD__BANNER".to_string(), "hi".to_string())];
    let loaded = load_with_default_path(None, &no_default(), &env, &Overrides::default()).unwrap();
    assert!(!loaded.quickstart && !loaded.config.anonymous.enabled);
    // Other variables do not count as configuration.
    let env = [("PATH".to_string(), "/bin".to_string())];
    let loaded = load_with_default_path(None, &no_default(), &env, &Overrides::default()).unwrap();
    assert!(loaded.quickstart);
}

#[test]
fn default_path_is_used_when_it_exists() {
    let dir = Scratch::new();
    let default = dir.file("fxpd.toml", "banner = \"hello\"\n");
    let loaded = load_with_default_path(None, &default, &[], &Overrides::default()).unwrap();
    assert!(!loaded.quickstart);
    assert_eq!(loaded.file.as_deref(), Some(default.as_path()));
    assert_eq!(loaded.config.banner, "hello");
    assert_eq!(
        loaded.origin("banner"),
        Some(&Origin::File {
            path: default,
            at: Some(Position { line: 1, column: 1 })
        })
    );
}

#[test]
fn uncheckable_default_path_fails_closed_instead_of_quickstart() {
    let dir = Scratch::new();
    let not_a_dir = dir.file("plain-file", "");
    let default = not_a_dir.join("fxpd.toml");
    let err = load_with_default_path(None, &default, &[], &Overrides::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("config file {}", default.display())),
        "{err}"
    );
}

#[test]
fn missing_explicit_config_is_an_error() {
    let missing = no_default();
    let err = load_with_default_path(Some(&missing), &no_default(), &[], &Overrides::default()).unwrap_err();
    assert!(matches!(err.location(), Some(Origin::File { at: None, .. })));
    assert!(err.to_string().contains("cannot read it"), "{err}");
}

#[test]
fn default_config_path_is_the_packaged_location() {
    #[cfg(not(windows))]
    assert_eq!(default_config_path(), PathBuf::from("/etc/fxpd/fxpd.toml"));
    #[cfg(windows)]
    assert!(default_config_path().ends_with("fxpd\\fxpd.toml"));
}

// ---------------------------------------------------------------- file errors

#[test]
fn unknown_key_in_file_names_key_line_and_alternatives() {
    let err = file_err("listen = [\"127.0.0.1:21\"]\n\n[fxp]\nalow_foreign_port = true\n");
    assert_eq!(err.line(), Some(4));
    assert_eq!(err.key(), Some("fxp.alow_foreign_port"));
    let text = err.to_string();
    assert!(text.starts_with("config file "), "{text}");
    assert!(
        text.contains(
            ", line 4, column 1: unknown key `fxp.alow_foreign_port` (expected one of: allow_anonymous,"
        ),
        "{text}"
    );
    assert!(text.contains("allow_foreign_port"), "{text}");
}

#[test]
fn unknown_top_level_key_and_section() {
    let err = file_err("banner = \"x\"\nlisten_addr = \"1.2.3.4:21\"\n");
    assert_eq!(err.line(), Some(2));
    assert!(
        err.message()
            .contains("unknown key `listen_addr` (expected one of: anonymous, banner,"),
        "{err}"
    );

    let err = file_err("[fpx]\nallow_foreign_port = true\n");
    assert_eq!(err.line(), Some(1));
    assert_eq!(err.key(), Some("fpx"));

    let err = file_err("fxp.bogus.deep = 1\n");
    assert_eq!(err.key(), Some("fxp.bogus"));
    assert_eq!(err.line(), Some(1));
}

#[test]
fn bad_type_in_file_names_key_and_line() {
    let err = file_err("[limits]\nmax_sessions = 10\nidle_timeout_secs = \"abc\"\n");
    assert_eq!(err.line(), Some(3));
    assert_eq!(err.key(), Some("limits.idle_timeout_secs"));
    assert!(
        err.message()
            .contains("invalid value `\"abc\"` for limits.idle_timeout_secs: expected an unsigned integer"),
        "{err}"
    );

    let err = file_err("[limits]\nidle_timeout_secs = -5\n");
    assert_eq!(err.line(), Some(2));
    assert!(err.message().contains("expected an unsigned integer"), "{err}");

    let err = file_err("\n\nlisten = [21]\n");
    assert_eq!(err.line(), Some(3));
    assert!(err.message().contains("array of strings"), "{err}");

    let err = file_err("[fxp]\nallow_foreign_port = \"yes\"\n");
    assert_eq!(err.line(), Some(2));
    assert!(err.message().contains("`true` or `false`"), "{err}");

    let err = file_err("fxp = true\n");
    assert_eq!(err.key(), Some("fxp"));
    assert!(err.message().contains("is a section"), "{err}");
}

#[test]
fn bad_value_in_file_names_key_and_line() {
    let err = file_err("banner = \"ok\"\nlisten = [\n  \"127.0.0.1:21\",\n  \"not-an-address\",\n]\n");
    assert_eq!(err.key(), Some("listen"));
    assert_eq!(err.line(), Some(4));

    let err = file_err("[passive]\nports = \"3000-2000\"\n");
    assert_eq!(err.key(), Some("passive.ports"));
    assert_eq!(err.line(), Some(2));
    assert!(err.message().contains("3000-2000"), "{err}");

    let err = file_err("listing_style = \"dos\"\n");
    assert_eq!(err.key(), Some("listing_style"));
    assert!(
        err.message().contains("unix") && err.message().contains("msdos"),
        "{err}"
    );

    let err = file_err("[passive]\naddress = \"nat-box\"\n");
    assert_eq!(err.key(), Some("passive.address"));
}

#[test]
fn toml_syntax_error_has_a_position() {
    let err = file_err("banner = \"x\"\nlisten = [\n[log]\n");
    assert!(err.line().is_some(), "{err}");
    assert!(err.message().starts_with("invalid TOML"), "{err}");

    let err = file_err("banner = \"a\"\nbanner = \"b\"\n");
    assert_eq!(err.line(), Some(2), "{err}");
}

#[test]
fn validation_error_in_file_names_the_line() {
    let err = file_err("# comment\n[limits]\nidle_timeout_secs = 0\n");
    assert_eq!(err.key(), Some("limits.idle_timeout_secs"));
    assert_eq!(err.line(), Some(3));
    assert!(
        err.to_string().ends_with(
            "line 3, column 1: invalid value `0` for limits.idle_timeout_secs: expected an integer from 1 to 86400"
        ),
        "{err}"
    );

    // A cross-field error on a key left at its default points at the key that was set.
    let err = file_err("\n[limits]\nmax_sessions = 10\n");
    assert_eq!(err.key(), Some("limits.max_sessions_per_ip"));
    assert_eq!(err.line(), Some(3), "{err}");

    let err = file_err("listen = []\n");
    assert_eq!(err.key(), Some("listen"));
    assert_eq!(err.line(), Some(1));
}

// ---------------------------------------------------------------- layers and origins

#[test]
fn env_overrides_file_and_flag_overrides_env() {
    let file = "banner = \"from file\"\n\n[fxp]\nallow_foreign_port = false\nban_secs = 5\n";
    let vars = [
        ("FXPD__FXP__ALLOW_FOREIGN_PORT", "true"),
        ("FXPD__BANNER", "from env"),
        ("FXPD__LISTEN", "127.0.0.1:2121"),
        ("PATH", "/usr/bin"),
    ];
    let overrides = Overrides {
        listen: vec![addr("127.0.0.1:3021")],
        set: vec!["banner=from flag".to_string()],
        ..Overrides::default()
    };
    let dir = Scratch::new();
    let path = dir.file("fxpd.toml", file);
    let loaded = load_with_default_path(Some(&path), &no_default(), &env(&vars), &overrides).unwrap();
    let c = &loaded.config;
    assert!(c.fxp.allow_foreign_port);
    assert_eq!(c.fxp.ban_secs, 5);
    assert_eq!(c.banner, "from flag");
    assert_eq!(c.listen, vec![addr("127.0.0.1:3021")]);

    let o = |key: &str| loaded.origin(key).unwrap().to_string();
    assert_eq!(o("fxp.allow_foreign_port"), "env FXPD__FXP__ALLOW_FOREIGN_PORT");
    assert_eq!(o("fxp.ban_secs"), format!("file {}:5", path.display()));
    assert_eq!(o("banner"), "flag --set banner");
    assert_eq!(o("listen"), "flag --listen");
    assert_eq!(o("root"), "default");
    assert_eq!(
        loaded.origin("fxp.ban_secs"),
        Some(&Origin::File {
            path: path.clone(),
            at: Some(Position { line: 5, column: 1 })
        })
    );
    assert_eq!(loaded.file.as_deref(), Some(path.as_path()));
}

#[test]
fn origins_cover_every_leaf_key() {
    let loaded = load_text("", &[], &Overrides::default()).unwrap();
    let keys: Vec<&str> = loaded.origins.keys().map(String::as_str).collect();
    let leaves: Vec<&str> = schema().leaves().collect();
    assert_eq!(keys, leaves);
    for key in [
        "listen",
        "users_file",
        "passive.address",
        "anonymous.home",
        "fxp.peers",
        "log.level",
    ] {
        assert_eq!(loaded.origin(key), Some(&Origin::Default), "{key}");
    }
}

#[test]
fn origin_display() {
    assert_eq!(Origin::Default.to_string(), "default");
    let at = Position { line: 12, column: 3 };
    assert_eq!(Origin::Embedded { at }.to_string(), "quick-start default");
    let file = Origin::File {
        path: PathBuf::from("/etc/fxpd/fxpd.toml"),
        at: Some(at),
    };
    assert_eq!(file.to_string(), "file /etc/fxpd/fxpd.toml:12");
    let var = "FXPD__FXP__ALLOW_FOREIGN_PORT".to_string();
    assert_eq!(
        Origin::Env { var }.to_string(),
        "env FXPD__FXP__ALLOW_FOREIGN_PORT"
    );
    assert_eq!(
        Origin::Flag {
            flag: "--listen".into()
        }
        .to_string(),
        "flag --listen"
    );
}

#[test]
fn env_lists_and_case_insensitive_names() {
    let vars = [
        ("FXPD__LISTEN", "127.0.0.1:2121,[::1]:2121"),
        ("FXPD__FXP__PEERS", "10.0.0.0/8, 192.0.2.7"),
        ("fxpd__ignored", "lowercase prefix is not ours"),
        ("FXPD_SINGLE_UNDERSCORE", "not ours either"),
        ("FXPD__fxp__Allow_Foreign_Passive", "TRUE"),
        ("FXPD__PASSIVE__ADDRESS", "203.0.113.10"),
        ("FXPD__PASSIVE__PORTS", "40000"),
        ("FXPD__LIMITS__MAX_LINE_LEN", "1024"),
        ("FXPD__LOG__FORMAT", "json"),
    ];
    let loaded = load_text("", &vars, &Overrides::default()).unwrap();
    let c = &loaded.config;
    assert_eq!(c.listen, vec![addr("127.0.0.1:2121"), addr("[::1]:2121")]);
    let peers: Vec<crate::policy::Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "192.0.2.7".parse().unwrap()];
    assert_eq!(c.fxp.peers, peers);
    assert!(c.fxp.allow_foreign_passive);
    assert_eq!(c.passive.address, Some("203.0.113.10".parse().unwrap()));
    assert_eq!(
        c.passive.ports,
        PortRange {
            first: 40000,
            last: 40000
        }
    );
    assert_eq!(c.limits.max_line_len, 1024);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(
        loaded.origin("fxp.allow_foreign_passive").unwrap().to_string(),
        "env FXPD__fxp__Allow_Foreign_Passive"
    );

    // An empty list clears a list set by the file.
    let loaded = load_text(
        "[fxp]\npeers = [\"10.0.0.0/8\"]\n",
        &[("FXPD__FXP__PEERS", "")],
        &Overrides::default(),
    )
    .unwrap();
    assert!(loaded.config.fxp.peers.is_empty());
}

#[test]
fn env_errors_name_the_variable() {
    let err = env_err(&[("FXPD__LIMITS__IDLE_TIMEOUT_SECS", "abc")]);
    assert_eq!(
        err.to_string(),
        "environment variable FXPD__LIMITS__IDLE_TIMEOUT_SECS: invalid value `abc` for limits.idle_timeout_secs: \
         expected an unsigned integer"
    );

    let err = env_err(&[("FXPD__FXP__ALOW_FOREIGN_PORT", "true")]);
    assert_eq!(
        err.location(),
        Some(&Origin::Env {
            var: "FXPD__FXP__ALOW_FOREIGN_PORT".into()
        })
    );
    assert!(
        err.message()
            .contains("unknown key `fxp.alow_foreign_port` (expected one of:"),
        "{err}"
    );

    let err = env_err(&[("FXPD__NOPE", "1")]);
    assert!(
        err.to_string()
            .starts_with("environment variable FXPD__NOPE: unknown key `nope`"),
        "{err}"
    );

    let err = env_err(&[("FXPD__FXP", "true")]);
    assert!(err.message().contains("is a section"), "{err}");

    let err = env_err(&[("FXPD__FXP____PEERS", "")]);
    assert!(err.message().contains("malformed name"), "{err}");

    let err = env_err(&[("FXPD__FXP__ALLOW_FOREIGN_PORT", "yes")]);
    assert!(err.message().contains("expected `true` or `false`"), "{err}");

    let err = env_err(&[("FXPD__LISTEN", "127.0.0.1:21,nonsense")]);
    assert_eq!(
        err.location(),
        Some(&Origin::Env {
            var: "FXPD__LISTEN".into()
        })
    );
    assert_eq!(err.key(), Some("listen"));

    let err = env_err(&[("FXPD__FXP__PEERS", "10.0.0.0/99")]);
    assert_eq!(err.key(), Some("fxp.peers"));

    let err = env_err(&[("FXPD__LIMITS__IDLE_TIMEOUT_SECS", "-1")]);
    assert!(err.message().contains("expected an unsigned integer"), "{err}");

    let err = env_err(&[("FXPD__BANNER", "a"), ("FXPD__banner", "b")]);
    assert!(err.message().contains("already sets"), "{err}");
}

#[test]
fn env_validation_error_names_the_variable() {
    let err = env_err(&[("FXPD__LIMITS__IDLE_TIMEOUT_SECS", "0")]);
    assert_eq!(
        err.to_string(),
        "environment variable FXPD__LIMITS__IDLE_TIMEOUT_SECS: invalid value `0` for limits.idle_timeout_secs: \
         expected an integer from 1 to 86400"
    );
    let err = env_err(&[("FXPD__BANNER", "two\r\nlines")]);
    assert_eq!(
        err.location(),
        Some(&Origin::Env {
            var: "FXPD__BANNER".into()
        })
    );
}

#[test]
fn set_flags() {
    let overrides = Overrides {
        set: vec![
            "fxp.allow_foreign_port=true".into(),
            "limits.max_sessions=20".into(),
            "limits.max_sessions=300".into(),
            "fxp.peers=192.0.2.0/24,198.51.100.7".into(),
            "banner=a=b".into(),
        ],
        root: Some(PathBuf::from("/var/ftp")),
        users_file: Some(PathBuf::from("users.toml")),
        ..Overrides::default()
    };
    let loaded = load_text("", &[("FXPD__FXP__ALLOW_FOREIGN_PORT", "false")], &overrides).unwrap();
    let c = &loaded.config;
    assert!(c.fxp.allow_foreign_port);
    assert_eq!(c.limits.max_sessions, 300, "a later --set wins");
    assert_eq!(c.fxp.peers.len(), 2);
    assert_eq!(c.banner, "a=b", "only the first `=` separates key and value");
    assert_eq!(c.root, PathBuf::from("/var/ftp"));
    assert_eq!(
        c.users_file,
        Some(PathBuf::from("users.toml")),
        "flag paths stay relative to the cwd"
    );
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port").unwrap().to_string(),
        "flag --set fxp.allow_foreign_port"
    );
    assert_eq!(loaded.origin("root").unwrap().to_string(), "flag --root");
    assert_eq!(loaded.origin("users_file").unwrap().to_string(), "flag --users");
}

#[test]
fn set_flag_errors() {
    let err = set_err(&["fxp.allow_foreign_port"]);
    assert_eq!(err.location(), Some(&Origin::Flag { flag: "--set".into() }));
    assert!(err.message().contains("expected KEY=VALUE"), "{err}");

    let err = set_err(&["=true"]);
    assert!(err.message().contains("non-empty KEY"), "{err}");

    let err = set_err(&["fxp.alow_foreign_port=true"]);
    assert_eq!(
        err.location(),
        Some(&Origin::Flag {
            flag: "--set fxp.alow_foreign_port".into()
        })
    );
    assert!(err.to_string().starts_with(
        "command-line flag --set fxp.alow_foreign_port: unknown key `fxp.alow_foreign_port` (expected one of:"
    ));

    let err = set_err(&["limits.max_line_len=100"]);
    assert_eq!(err.key(), Some("limits.max_line_len"));
    assert!(err
        .to_string()
        .starts_with("command-line flag --set limits.max_line_len: invalid value `100`"));

    let err = set_err(&["log.level=loud"]);
    assert_eq!(err.key(), Some("log.level"));

    let overrides = Overrides {
        root: Some(PathBuf::from("/a")),
        set: vec!["root=/b".into()],
        ..Overrides::default()
    };
    let err = load_text("", &[], &overrides).unwrap_err();
    assert_eq!(
        err.location(),
        Some(&Origin::Flag {
            flag: "--root".into()
        })
    );
}

#[test]
fn relative_paths_in_a_file_are_relative_to_the_file() {
    let dir = Scratch::new();
    let path = dir.file(
        "fxpd.toml",
        "root = \"data\"\nusers_file = \"users.toml\"\n[anonymous]\nhome = \"pub\"\n",
    );
    let loaded = load_with_default_path(Some(&path), &no_default(), &[], &Overrides::default()).unwrap();
    assert_eq!(loaded.config.root, dir.0.join("data"));
    assert_eq!(loaded.config.users_file, Some(dir.0.join("users.toml")));
    assert_eq!(
        loaded.config.anonymous.home,
        Some(PathBuf::from("pub")),
        "not a config-file path"
    );

    // Absolute paths are kept, and env paths stay relative to the cwd.
    let path = dir.file("abs.toml", "root = \"/srv/x\"\nusers_file = \"u.toml\"\n");
    let vars = env(&[("FXPD__USERS_FILE", "rel/users.toml")]);
    let loaded = load_with_default_path(Some(&path), &no_default(), &vars, &Overrides::default()).unwrap();
    assert_eq!(loaded.config.root, PathBuf::from("/srv/x"));
    assert_eq!(loaded.config.users_file, Some(PathBuf::from("rel/users.toml")));
}

// ---------------------------------------------------------------- validation

fn invalid(mutate: impl FnOnce(&mut Config)) -> ConfigError {
    let mut c = Config::default();
    mutate(&mut c);
    c.validate().expect_err("should be invalid")
}

fn valid(mutate: impl FnOnce(&mut Config)) {
    let mut c = Config::default();
    mutate(&mut c);
    c.validate().unwrap();
}

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

// ---------------------------------------------------------------- rendering

#[test]
fn render_text_shows_values_and_origins() {
    let vars = [("FXPD__FXP__ALLOW_FOREIGN_PORT", "true")];
    let overrides = Overrides {
        listen: vec![addr("[::1]:2121")],
        ..Overrides::default()
    };
    let dir = Scratch::new();
    let path = dir.file("fxpd.toml", "[limits]\nmax_sessions = 100\n");
    let loaded = load_with_default_path(Some(&path), &no_default(), &env(&vars), &overrides).unwrap();
    let text = render_text(&loaded);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), schema().leaves().count());

    let line = |key: &str| *lines.iter().find(|l| l.starts_with(&format!("{key} ="))).unwrap();
    assert!(line("fxp.allow_foreign_port").ends_with("# env FXPD__FXP__ALLOW_FOREIGN_PORT"));
    assert!(line("fxp.allow_foreign_port").starts_with("fxp.allow_foreign_port = true "));
    assert!(line("listen").starts_with("listen = [\"[::1]:2121\"] "));
    assert!(line("listen").ends_with("# flag --listen"));
    assert!(line("limits.max_sessions").ends_with(&format!("# file {}:2", path.display())));
    assert!(line("banner").ends_with("# default"));
    assert!(lines.iter().any(|l| l.starts_with("# users_file = (not set)")));

    // Sorted and aligned.
    let keys: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start_matches("# ").split(' ').next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    let columns: BTreeSet<usize> = lines.iter().map(|l| l.rfind("    # ").unwrap()).collect();
    assert_eq!(columns.len(), 1, "origin comments are aligned:\n{text}");

    // The output is TOML that loads back to the same configuration.
    let again: Config = toml::from_str(&text).unwrap();
    assert_eq!(again, loaded.config);
}

#[test]
fn render_json_shows_values_and_origins() {
    let loaded = load_with_default_path(None, &no_default(), &[], &Overrides::default()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&render_json(&loaded)).unwrap();
    assert_eq!(json["quickstart"], serde_json::json!(true));
    assert_eq!(json["file"], serde_json::Value::Null);
    let settings = json["settings"].as_array().unwrap();
    assert_eq!(settings.len(), schema().leaves().count());
    let find = |key: &str| settings.iter().find(|s| s["key"] == key).unwrap().clone();
    assert_eq!(find("listen")["value"], serde_json::json!(["127.0.0.1:2121"]));
    assert_eq!(find("listen")["origin"], "quick-start default");
    assert_eq!(find("anonymous.enabled")["value"], serde_json::json!(true));
    assert_eq!(find("limits.max_sessions")["value"], serde_json::json!(500));
    assert_eq!(find("limits.max_sessions")["origin"], "default");
    assert_eq!(find("users_file")["value"], serde_json::Value::Null);

    let dir = Scratch::new();
    let path = dir.file("fxpd.toml", "");
    let loaded = load_with_default_path(Some(&path), &no_default(), &[], &Overrides::default()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&render_json(&loaded)).unwrap();
    assert_eq!(json["quickstart"], serde_json::json!(false));
    assert_eq!(json["file"], serde_json::json!(path.display().to_string()));
}

// ---------------------------------------------------------------- schema guard

/// The field names serde expects in a section, read from its unknown-field error.
fn serde_fields(section: &str) -> BTreeSet<String> {
    let text = if section.is_empty() {
        "zz_not_a_key = 1\n".to_string()
    } else {
        format!("[{section}]\nzz_not_a_key = 1\n")
    };
    let err = toml::from_str::<Config>(&text).unwrap_err();
    let message = err.message().to_string();
    let expected = message
        .split_once("expected")
        .expect("serde lists the expected fields")
        .1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn schema_matches_the_serde_fields() {
    let mut sections: Vec<&str> = schema().sections().collect();
    sections.push("");
    for section in sections {
        let ours: BTreeSet<String> = schema()
            .children(section)
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(
            ours,
            serde_fields(section),
            "schema of section `{section}` differs from the struct: a new Option field must be added to \
             OPTIONAL_KEYS in schema.rs"
        );
    }
    for (key, _) in OPTIONAL_KEYS {
        assert!(schema().kind(key).is_some());
    }
}

#[test]
fn optional_keys_are_optional_and_accept_their_kind() {
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    let mut flat = std::collections::BTreeMap::new();
    super::schema::flatten(&defaults, "", &mut flat);
    // The TLS files only make sense together (validation requires both).
    let tls_pair = [
        "tls.certificate=/etc/fxpd/cert.pem",
        "tls.private_key=/etc/fxpd/key.pem",
    ];
    let redis = ["cluster.redis_url=redis://127.0.0.1:6379/0"];
    let redis_pair = [redis[0], "cluster.redis_password_file=/etc/fxpd/redis-password"];
    let samples: [(&str, &[&str]); 12] = [
        ("users_file", &["users_file=/etc/fxpd/users.toml"]),
        ("passive.address", &["passive.address=192.0.2.1"]),
        ("anonymous.home", &["anonymous.home=/pub"]),
        ("tls.certificate", &tls_pair),
        ("tls.private_key", &tls_pair),
        ("log.w3c_dir", &["log.w3c_dir=/var/log/fxpd"]),
        ("cluster.redis_url", &redis),
        ("cluster.redis_password_file", &redis_pair),
        ("storage.endpoint", &["storage.endpoint=https://s3.example.net"]),
        ("storage.bucket", &["storage.bucket=files"]),
        ("storage.prefix", &["storage.prefix=ftp"]),
        (
            "storage.credentials_file",
            &["storage.credentials_file=/etc/fxpd/s3.toml"],
        ),
    ];
    for (key, sets) in samples {
        assert!(
            !flat.contains_key(key),
            "{key} has a default, so it is not optional"
        );
        let overrides = Overrides {
            set: sets.iter().map(|s| s.to_string()).collect(),
            ..Overrides::default()
        };
        load_text("", &[], &overrides).unwrap();
    }
    assert_eq!(samples.len(), OPTIONAL_KEYS.len());
}

#[test]
fn config_error_display_without_location() {
    let err = invalid(|c| c.listen.clear());
    assert_eq!(err.location(), None);
    assert!(err.to_string().starts_with("setting `listen` must name"), "{err}");
    let path = Path::new("/etc/fxpd/fxpd.toml");
    let located = ConfigError::unknown_key("fxp.x", &["a", "b"]).at(Origin::File {
        path: path.to_path_buf(),
        at: Some(Position { line: 4, column: 1 }),
    });
    assert_eq!(
        located.to_string(),
        "config file /etc/fxpd/fxpd.toml, line 4, column 1: unknown key `fxp.x` (expected one of: a, b)"
    );
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
    assert_eq!(loaded.config.storage.kind, crate::storage::StorageKind::S3);
    // The shown configuration has no credentials to show: they are not settings.
    assert!(!render_text(&loaded).contains("secret"));
}
