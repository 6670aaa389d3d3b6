//! The schema matches the structs; errors display their source.

use super::*;

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
    crate::config::schema::flatten(&defaults, "", &mut flat);
    // The TLS files only make sense together (validation requires both).
    let tls_pair = [
        "tls.certificate=/etc/fxpd/cert.pem",
        "tls.private_key=/etc/fxpd/key.pem",
    ];
    let redis = ["cluster.redis_url=redis://127.0.0.1:6379/0"];
    let redis_pair = [redis[0], "cluster.redis_password_file=/etc/fxpd/redis-password"];
    let admin_pair = [
        "admin.listen=127.0.0.1:2180",
        "admin.token_file=/etc/fxpd/admin-token",
    ];
    let samples: [(&str, &[&str]); 14] = [
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
        ("admin.listen", &admin_pair),
        ("admin.token_file", &["admin.token_file=/etc/fxpd/admin-token"]),
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
