//! The configuration schema as data: every leaf key (dotted, e.g. `fxp.allow_foreign_port`) and
//! the TOML kind it expects.
//!
//! The schema is derived from `Config::default()` serialized to a TOML table, so a new field is
//! picked up automatically. `Option` fields whose default is `None` do not serialize, so they are
//! listed in [`OPTIONAL_KEYS`]: **add a new `Option` field there** (a test checks the schema
//! against the field names serde itself expects, and fails if one is missing).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use toml::{Table, Value};

use super::error::ConfigError;
use super::sections::Config;

/// The TOML kind a leaf key expects. Environment variables and flags give strings; the kind
/// says how to turn them into TOML values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `true` / `false`.
    Bool,
    /// A non-negative integer.
    Integer,
    /// A floating-point number (no such key today; kept so the derivation is total).
    Float,
    /// A string (paths, addresses, enum names, port ranges).
    String,
    /// An array of strings; comma-separated in environment variables and flags.
    List,
}

impl Kind {
    /// What the kind expects, for error messages.
    pub(crate) fn expected(self, in_file: bool) -> &'static str {
        match (self, in_file) {
            (Kind::Bool, _) => "`true` or `false`",
            (Kind::Integer, _) => "an unsigned integer",
            (Kind::Float, _) => "a number",
            (Kind::String, true) => "a quoted string",
            (Kind::String, false) => "a string",
            (Kind::List, true) => "an array of strings, e.g. [\"a\", \"b\"]",
            (Kind::List, false) => "a comma-separated list",
        }
    }
}

/// Keys whose default is `None` (absent from the serialized defaults), with their kinds.
pub(crate) const OPTIONAL_KEYS: &[(&str, Kind)] = &[
    ("users_file", Kind::String),
    ("passive.address", Kind::String),
    ("anonymous.home", Kind::String),
    ("tls.certificate", Kind::String),
    ("tls.private_key", Kind::String),
    ("log.w3c_dir", Kind::String),
    ("cluster.redis_url", Kind::String),
    ("cluster.redis_password_file", Kind::String),
    ("storage.endpoint", Kind::String),
    ("storage.bucket", Kind::String),
    ("storage.prefix", Kind::String),
    ("storage.credentials_file", Kind::String),
    ("admin.listen", Kind::String),
    ("admin.token_file", Kind::String),
];

/// Every leaf key and section of [`Config`].
#[derive(Debug)]
pub(crate) struct Schema {
    leaves: BTreeMap<String, Kind>,
    sections: BTreeSet<String>,
}

/// The schema, derived once.
pub(crate) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let defaults = Table::try_from(Config::default()).expect("the default Config serializes to TOML");
        let mut schema = Schema {
            leaves: BTreeMap::new(),
            sections: BTreeSet::new(),
        };
        schema.derive(&defaults, "");
        for (key, kind) in OPTIONAL_KEYS {
            schema.leaves.insert((*key).to_string(), *kind);
        }
        schema
    })
}

/// `prefix.name`, or `name` at the top level.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Schema {
    fn derive(&mut self, table: &Table, prefix: &str) {
        for (name, value) in table {
            let key = join(prefix, name);
            let kind = match value {
                Value::Table(inner) => {
                    self.sections.insert(key.clone());
                    self.derive(inner, &key);
                    continue;
                }
                Value::Boolean(_) => Kind::Bool,
                Value::Integer(_) => Kind::Integer,
                Value::Float(_) => Kind::Float,
                Value::Array(_) => Kind::List,
                Value::String(_) | Value::Datetime(_) => Kind::String,
            };
            self.leaves.insert(key, kind);
        }
    }

    /// The kind of a leaf key, or `None` if `key` is not a leaf.
    pub(crate) fn kind(&self, key: &str) -> Option<Kind> {
        self.leaves.get(key).copied()
    }

    /// True if `key` names a section (a table), e.g. `fxp`.
    pub(crate) fn is_section(&self, key: &str) -> bool {
        self.sections.contains(key)
    }

    /// Every leaf key, sorted.
    pub(crate) fn leaves(&self) -> impl Iterator<Item = &str> {
        self.leaves.keys().map(String::as_str)
    }

    /// Every section, sorted.
    #[cfg(test)]
    pub(crate) fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(String::as_str)
    }

    /// The names directly inside `section` (`""` for the top level), sorted.
    pub(crate) fn children(&self, section: &str) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .leaves
            .keys()
            .chain(self.sections.iter())
            .filter_map(|key| {
                let rest = if section.is_empty() {
                    Some(key.as_str())
                } else {
                    key.strip_prefix(section)?.strip_prefix('.')
                };
                rest.filter(|r| !r.contains('.'))
            })
            .collect();
        names.sort_unstable();
        names
    }

    /// The error for a key that is not a leaf: names the deepest known section and lists what
    /// it holds.
    pub(crate) fn unknown(&self, key: &str) -> ConfigError {
        if self.is_section(key) {
            let children = self.children(key);
            let example = children.first().map(|c| format!("{key}.{c}")).unwrap_or_default();
            return ConfigError::setting(
                key,
                format!("is a section, not a single setting: set its keys individually (e.g. `{example}`)"),
            );
        }
        let mut parent = key;
        loop {
            parent = match parent.rfind('.') {
                Some(i) => &parent[..i],
                None => "",
            };
            if parent.is_empty() || self.is_section(parent) {
                break;
            }
        }
        ConfigError::unknown_key(key, &self.children(parent))
    }

    /// The kind of a leaf key, or the unknown-key error.
    pub(crate) fn leaf(&self, key: &str) -> Result<Kind, ConfigError> {
        self.kind(key).ok_or_else(|| self.unknown(key))
    }
}

/// Turns an environment/flag string into the TOML value `kind` expects. Booleans accept
/// `true`/`false` (any case); lists are split on commas, items trimmed, empty items dropped (so
/// an empty string is an empty list).
pub(crate) fn value_from_str(key: &str, kind: Kind, raw: &str) -> Result<Value, ConfigError> {
    let trimmed = raw.trim();
    let bad = || ConfigError::invalid_value(key, raw, kind.expected(false));
    Ok(match kind {
        Kind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(bad()),
        },
        Kind::Integer => {
            let n: u64 = trimmed.parse().map_err(|_| bad())?;
            Value::Integer(i64::try_from(n).map_err(|_| bad())?)
        }
        Kind::Float => Value::Float(trimmed.parse().map_err(|_| bad())?),
        Kind::String => Value::String(raw.to_string()),
        Kind::List => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        ),
    })
}

/// Inserts `value` at dotted `key`, creating intermediate tables.
pub(crate) fn insert_dotted(table: &mut Table, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_string())
                .or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            if let Value::Table(inner) = entry {
                insert_dotted(inner, rest, value);
            }
        }
    }
}

/// Flattens a nested table into dotted leaf keys (tables are sections, everything else a leaf).
pub(crate) fn flatten(table: &Table, prefix: &str, out: &mut BTreeMap<String, Value>) {
    for (name, value) in table {
        let key = join(prefix, name);
        match value {
            Value::Table(inner) => flatten(inner, &key, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

/// Deserializes a table holding a single setting, to check its value on its own (so the error
/// can name the environment variable or flag that gave it).
pub(crate) fn check_alone(key: &str, value: &Value, given: &str) -> Result<(), ConfigError> {
    let mut table = Table::new();
    insert_dotted(&mut table, key, value.clone());
    match table.try_into::<Config>() {
        Ok(_) => Ok(()),
        Err(e) => Err(ConfigError::new(
            Some(key),
            format!("invalid value `{given}` for {key}: {}", e.message()),
        )),
    }
}
