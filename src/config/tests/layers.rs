//! The layers (file < environment < flags) and the origin of every value.

use super::*;

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
    let peers: Vec<crate::addr::Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "192.0.2.7".parse().unwrap()];
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
        "root = \"data\"\nusers_file = \"users.toml\"\n[anonymous]\nhome = \"pub\"\n[log]\nw3c_dir = \"logs\"\n",
    );
    let loaded = load_with_default_path(Some(&path), &no_default(), &[], &Overrides::default()).unwrap();
    assert_eq!(loaded.config.root, dir.0.join("data"));
    assert_eq!(loaded.config.users_file, Some(dir.0.join("users.toml")));
    assert_eq!(loaded.config.log.w3c_dir, Some(dir.0.join("logs")));
    assert_eq!(
        loaded.config.anonymous.home,
        Some(PathBuf::from("pub")),
        "not a config-file path"
    );

    // Absolute paths are kept, and env paths stay relative to the cwd.
    let path = dir.file("abs.toml", "root = \"/srv/x\"\nusers_file = \"u.toml\"\n");
    let vars = env(&[
        ("FXPD__USERS_FILE", "rel/users.toml"),
        ("FXPD__LOG__W3C_DIR", "rel/logs"),
    ]);
    let loaded = load_with_default_path(Some(&path), &no_default(), &vars, &Overrides::default()).unwrap();
    assert_eq!(loaded.config.root, PathBuf::from("/srv/x"));
    assert_eq!(loaded.config.users_file, Some(PathBuf::from("rel/users.toml")));
    assert_eq!(loaded.config.log.w3c_dir, Some(PathBuf::from("rel/logs")));
}
