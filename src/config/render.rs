//! The effective configuration with the origin of each value, for `fxpd config show` and the
//! startup log.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::schema;
use super::sources::Loaded;

/// Every leaf key of the effective configuration with its TOML value (`None`: an optional key left
/// unset).
fn effective_values(loaded: &Loaded) -> Vec<(&str, Option<Value>, String)> {
    let table = Table::try_from(&loaded.config).expect("a Config serializes to TOML");
    let mut values = BTreeMap::new();
    schema::flatten(&table, "", &mut values);
    loaded
        .origins
        .iter()
        .map(|(key, origin)| (key.as_str(), values.remove(key), origin.to_string()))
        .collect()
}

/// One line per leaf setting, sorted by key: `key = value    # origin`, the comments aligned. An
/// unset optional key is shown commented out (`# users_file = (not set)`), so the output is
/// itself valid TOML.
pub fn render_text(loaded: &Loaded) -> String {
    let lines: Vec<(String, String)> = effective_values(loaded)
        .into_iter()
        .map(|(key, value, origin)| {
            let setting = match value {
                Some(value) => format!("{key} = {value}"),
                None => format!("# {key} = (not set)"),
            };
            (setting, origin)
        })
        .collect();
    let width = lines
        .iter()
        .map(|(setting, _)| setting.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (setting, origin) in lines {
        out.push_str(&format!("{setting:<width$}    # {origin}\n"));
    }
    out
}

/// The same as JSON:
/// `{"settings":[{"key":..,"value":..,"origin":..}],"quickstart":bool,"file":path|null}`, settings
/// sorted by key, an unset optional key with `"value": null`.
pub fn render_json(loaded: &Loaded) -> String {
    let settings: Vec<serde_json::Value> = effective_values(loaded)
        .into_iter()
        .map(|(key, value, origin)| {
            let value = value.map_or(serde_json::Value::Null, |v| {
                serde_json::to_value(v).expect("a TOML value converts to JSON")
            });
            serde_json::json!({ "key": key, "value": value, "origin": origin })
        })
        .collect();
    let document = serde_json::json!({
        "settings": settings,
        "quickstart": loaded.quickstart,
        "file": loaded.file.as_ref().map(|p| p.display().to_string()),
    });
    document.to_string()
}
