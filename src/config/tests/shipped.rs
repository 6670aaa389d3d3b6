//! The shipped config files, the built-in defaults and which file is read.

use super::*;

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

/// The Windows zip's `fxpd.toml` (packaging/windows) is the Debian package's with Windows paths
/// (relative to `%ProgramData%\fxpd`, where install.cmd puts it) and a W3C log: every other
/// value, FXP and anonymous access first, is the same, so both platforms start equally safe.
#[test]
fn windows_packaged_file_is_the_linux_one_with_windows_paths() {
    let windows = load_text(PACKAGED_WINDOWS, &[], &Overrides::default()).unwrap();
    let dir = windows
        .file
        .as_deref()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let c = &windows.config;
    assert_eq!(c.root, dir.join("root"));
    assert_eq!(c.users_file, Some(dir.join("users.toml")));
    assert_eq!(c.log.w3c_dir, Some(dir.join("logs")));
    assert!(!windows.quickstart);
    // SECURITY: the switches a third party could turn against a user, spelled out.
    assert!(!c.anonymous.enabled && !c.anonymous.write);
    let f = &c.fxp;
    assert!(!f.allow_foreign_port && !f.allow_foreign_passive && !f.allow_privileged_ports);
    assert!(!f.allow_anonymous && f.peers.is_empty());
    let linux = load_text(PACKAGED, &[], &Overrides::default()).unwrap().config;
    let expected = Config {
        root: c.root.clone(),
        users_file: c.users_file.clone(),
        log: LogConfig {
            w3c_dir: c.log.w3c_dir.clone(),
            ..linux.log.clone()
        },
        ..linux
    };
    assert_eq!(
        *c, expected,
        "only the paths and the W3C log may differ from config/fxpd.toml"
    );
    // Every setting the Linux file writes out, the Windows one writes out too.
    for line in PACKAGED
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
    {
        let key = line.split(" = ").next().unwrap();
        assert!(
            PACKAGED_WINDOWS
                .lines()
                .any(|l| l.starts_with(&format!("{key} = "))),
            "packaging/windows/fxpd.toml does not write `{key}`"
        );
    }
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
