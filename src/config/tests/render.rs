//! `config show`: the effective values with their origins.

use super::*;

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
