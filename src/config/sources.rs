//! Layered loading: built-in defaults < config file < Windows registry < `FXPD__*` environment
//! variables < command-line flags, remembering the [`Origin`] of every effective value.
//!
//! Each layer is checked on its own before merging, so an error names the file position,
//! variable or flag that caused it:
//! - the file: parsed with `toml::de::DeTable` (which keeps spans) and walked against the schema
//!   for unknown keys and wrong TOML kinds, then deserialized as a whole into [`Config`] for
//!   value errors (bad address, bad port range, unknown enum name), whose span is mapped back to
//!   the key;
//! - each registry value (`registry.rs`, Windows only): its type is checked and it is turned into
//!   the TOML kind the key expects, then deserialized alone;
//! - each environment variable and each flag: its string is turned into the TOML kind the key
//!   expects (see `schema.rs`) and deserialized alone.
//!
//! The layers are flat maps of dotted leaf keys; merging is "the highest layer wins" per key. The
//! merged table is deserialized into [`Config`], relative file paths are resolved, and
//! [`Config::validate`] runs; a range error is reported against the source of the offending key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::{Table, Value};

use super::error::ConfigError;
use super::origin::{Origin, Position};
use super::registry::{self, RegistrySource};
use super::schema::{self, schema, Kind};
use super::sections::Config;

/// The embedded quick-start file, used as the file layer when no config file is given and the
/// default path does not exist.
pub const QUICKSTART_TOML: &str = include_str!("../../config/quickstart.toml");

/// Prefix of the environment variables that set configuration values.
pub const ENV_PREFIX: &str = "FXPD__";

/// Separator between levels in an environment variable name (`FXPD__FXP__PEERS`).
const ENV_SEPARATOR: &str = "__";

/// Command-line overrides (the CLI parses flags into this). Flags beat every other layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen ADDR`, repeatable; empty = not given.
    pub listen: Vec<SocketAddr>,
    /// `--root DIR`.
    pub root: Option<PathBuf>,
    /// `--users FILE`.
    pub users_file: Option<PathBuf>,
    /// `--set KEY=VALUE`, e.g. `fxp.allow_foreign_port=true`; values are written as in
    /// environment variables (lists comma-separated). A later `--set` of the same key wins; a key
    /// given by both `--set` and its own flag (`--listen`, `--root`, `--users`) is an error.
    pub set: Vec<String>,
}

impl Overrides {
    /// Whether no flag was given.
    pub fn is_empty(&self) -> bool {
        self.listen.is_empty() && self.root.is_none() && self.users_file.is_none() && self.set.is_empty()
    }
}

/// Whether an environment variable is one of fxpd's (`FXPD__*`, any case).
fn is_fxpd_var(name: &str) -> bool {
    name.starts_with(ENV_PREFIX)
}

/// The outcome of [`load`]: the validated configuration and where each value came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// The origin of every leaf key (dotted, e.g. `fxp.allow_foreign_port`), including keys left
    /// at their default.
    pub origins: BTreeMap<String, Origin>,
    /// True when no config file was found and the embedded quick start was used.
    pub quickstart: bool,
    /// The config file that was read (`None` for the quick start).
    pub file: Option<PathBuf>,
}

impl Loaded {
    /// The origin of a dotted leaf key, if it is one.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.origins.get(key)
    }
}

/// The packaged config file's location: `/etc/fxpd/fxpd.toml`
/// (Windows: `%ProgramData%\fxpd\fxpd.toml`).
pub fn default_config_path() -> PathBuf {
    #[cfg(windows)]
    {
        let base = std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("C:\\ProgramData"));
        base.join("fxpd").join("fxpd.toml")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/etc/fxpd/fxpd.toml")
    }
}

/// Loads the configuration. Layers, lowest to highest: built-in defaults < file < the registry
/// (Windows only: `HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters`, see `registry.rs`)
/// < environment (`FXPD__SECTION__KEY`, double underscore between levels, key names
/// case-insensitive, e.g. `FXPD__LISTEN=127.0.0.1:2121,[::1]:2121`,
/// `FXPD__FXP__PEERS=10.0.0.0/8,192.0.2.7`) < flags.
///
/// `file`: `Some(path)` = `--config` was given (a missing file is an error); `None` = the
/// [`default_config_path`] if it exists, else the quick start (the embedded
/// `config/quickstart.toml`, with [`Origin::Embedded`] and `quickstart = true`).
///
/// `env`: the process environment (see [`env_vars`]); only `FXPD__*` variables are considered and
/// one naming an unknown key is an error.
///
/// Fails closed: any error returns `Err`, never a partially applied configuration.
pub fn load(
    file: Option<&Path>,
    env: &[(String, String)],
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    load_from(
        file,
        &default_config_path(),
        registry::platform_registry(),
        env,
        overrides,
    )
}

/// [`load`] with the default config path given explicitly and no registry layer (for tests and
/// packagers).
pub fn load_with_default_path(
    file: Option<&Path>,
    default_path: &Path,
    env: &[(String, String)],
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    load_from(file, default_path, None, env, overrides)
}

/// [`load`] with every source given explicitly: `registry` is `None` for no registry layer (what
/// [`load`] passes outside Windows) or a [`RegistrySource`] (tests pass a fake one).
pub fn load_from(
    file: Option<&Path>,
    default_path: &Path,
    registry: Option<&dyn RegistrySource>,
    env: &[(String, String)],
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    let no_position = |path: &Path| Origin::File {
        path: path.to_path_buf(),
        at: None,
    };
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, &e));
    let (text, source) = match file {
        Some(path) => (read(path)?, FileSource::Path(path.to_path_buf())),
        None => match default_path.try_exists() {
            Ok(true) => (read(default_path)?, FileSource::Path(default_path.to_path_buf())),
            // The quick start is for "no configuration at all"; anyone who passes flags or
            // FXPD__ variables gets the hardened built-in defaults under them instead (never
            // an anonymous server they did not ask for).
            Ok(false) if overrides.is_empty() && !env.iter().any(|(k, _)| is_fxpd_var(k)) => {
                (QUICKSTART_TOML.to_string(), FileSource::Embedded)
            }
            Ok(false) => (String::new(), FileSource::None),
            // SECURITY: a default file we cannot even stat is not a reason to run the quick start.
            Err(e) => {
                return Err(
                    ConfigError::new(None, format!("cannot check whether it exists: {e}"))
                        .at(no_position(default_path)),
                )
            }
        },
    };

    let file_layer = FileLayer::parse(&text, &source)?;
    let registry_layer = match registry {
        Some(registry) => registry::registry_layer(registry)?,
        None => Layer::new(),
    };
    let env_layer = env_layer(env)?;
    let flag_layer = flag_layer(overrides)?;

    // Merge: per leaf key, the highest layer wins.
    let mut origins: BTreeMap<String, Origin> = schema()
        .leaves()
        .map(|key| (key.to_string(), Origin::Default))
        .collect();
    let mut merged = Table::new();
    let file_leaves = file_layer
        .leaves
        .iter()
        .map(|(key, value)| (key, value, file_layer.origin(key)));
    let registry_leaves = registry_layer
        .iter()
        .map(|(key, (value, origin))| (key, value, origin.clone()));
    let env_leaves = env_layer
        .iter()
        .map(|(key, (value, origin))| (key, value, origin.clone()));
    let flag_leaves = flag_layer
        .iter()
        .map(|(key, (value, origin))| (key, value, origin.clone()));
    for (key, value, origin) in file_leaves
        .chain(registry_leaves)
        .chain(env_leaves)
        .chain(flag_leaves)
    {
        schema::insert_dotted(&mut merged, key, value.clone());
        origins.insert(key.clone(), origin);
    }

    let error_location = |key: &str, origins: &BTreeMap<String, Origin>| -> Option<Origin> {
        match origins.get(key)? {
            Origin::Default => None,
            other => Some(other.clone()),
        }
    };

    let mut config: Config = merged.try_into().map_err(|e: toml::de::Error| {
        // Every layer was checked alone, so this is not expected; still fail closed.
        ConfigError::new(None, format!("invalid configuration: {}", e.message()))
    })?;

    if let FileSource::Path(path) = &source {
        resolve_relative(&mut config, path, &origins);
    }

    if let Err(e) = config.validate() {
        let location = e
            .key()
            .and_then(|key| error_location(key, &origins))
            .or_else(|| e.related().and_then(|key| error_location(key, &origins)));
        return Err(match location {
            Some(location) => e.at(location),
            None => e,
        });
    }

    Ok(Loaded {
        config,
        origins,
        quickstart: matches!(source, FileSource::Embedded),
        file: match source {
            FileSource::Path(path) => Some(path),
            FileSource::Embedded | FileSource::None => None,
        },
    })
}

/// Collects the `FXPD__*` variables of the process environment for [`load`]. Unlike
/// `std::env::vars()` it does not panic on variables that are not valid Unicode: other
/// variables are skipped whatever their bytes, and an `FXPD__*` variable whose name or value is
/// not valid Unicode is an error (fail closed: a setting is never skipped or guessed at).
pub fn env_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let shown = name.to_string_lossy();
        if !is_fxpd_var(&shown) {
            continue;
        }
        let not_unicode = |what: &str| {
            ConfigError::new(None, format!("{what} is not valid Unicode")).at(Origin::Env {
                var: shown.to_string(),
            })
        };
        let name = name.to_str().ok_or_else(|| not_unicode("name"))?.to_string();
        let value = value.into_string().map_err(|_| not_unicode("value"))?;
        vars.push((name, value));
    }
    Ok(vars)
}

/// Relative `root` / `users_file` / `storage.credentials_file` / `log.w3c_dir` from a config
/// file are relative to the file's directory.
fn resolve_relative(config: &mut Config, file: &Path, origins: &BTreeMap<String, Origin>) {
    let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    let from_file = |key: &str| matches!(origins.get(key), Some(Origin::File { .. }));
    if from_file("root") && config.root.is_relative() {
        config.root = dir.join(&config.root);
    }
    if from_file("users_file") {
        if let Some(users) = config.users_file.as_mut().filter(|p| p.is_relative()) {
            *users = dir.join(&*users);
        }
    }
    if from_file("log.w3c_dir") {
        if let Some(w3c) = config.log.w3c_dir.as_mut().filter(|p| p.is_relative()) {
            *w3c = dir.join(&*w3c);
        }
    }
    if from_file("storage.credentials_file") {
        if let Some(file) = config
            .storage
            .credentials_file
            .as_mut()
            .filter(|p| p.is_relative())
        {
            *file = dir.join(&*file);
        }
    }
}

/// Which text the file layer came from.
enum FileSource {
    Path(PathBuf),
    Embedded,
    /// No file at all: built-in defaults under the environment and flags.
    None,
}

/// The file layer: its leaves and where each key is.
struct FileLayer<'s> {
    source: &'s FileSource,
    leaves: BTreeMap<String, Value>,
    /// Where each leaf key is.
    positions: BTreeMap<String, Position>,
}

impl<'s> FileLayer<'s> {
    fn parse(text: &str, source: &'s FileSource) -> Result<Self, ConfigError> {
        let at = |offset: usize| located(source, position(text, offset));
        let doc = DeTable::parse(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            ConfigError::new(None, format!("invalid TOML: {}", e.message())).at(at(offset))
        })?;

        let mut walk = Walk {
            text,
            positions: BTreeMap::new(),
            value_spans: Vec::new(),
        };
        walk.table(doc.get_ref(), "")
            .map_err(|(e, offset)| e.at(at(offset)))?;

        // Kinds are right; now the values themselves (addresses, ranges, enum names).
        if let Err(e) = toml::from_str::<Config>(text) {
            let span = e.span().unwrap_or(0..0);
            let key = walk
                .value_spans
                .iter()
                .find(|(_, vs)| vs.start <= span.start && span.end <= vs.end)
                .map(|(key, _)| key.as_str());
            let message = match key {
                Some(key) => format!(
                    "invalid value `{}` for {key}: {}",
                    snippet(text, span.clone()),
                    e.message()
                ),
                None => e.message().to_string(),
            };
            return Err(ConfigError::new(key, message).at(at(span.start)));
        }

        let table: Table = toml::from_str(text)
            .map_err(|e: toml::de::Error| ConfigError::new(None, e.message().to_string()).at(at(0)))?;
        let mut leaves = BTreeMap::new();
        schema::flatten(&table, "", &mut leaves);
        Ok(FileLayer {
            source,
            leaves,
            positions: walk.positions,
        })
    }

    /// Where the value of `key` came from: the file (at the key) or, with no file at all, the
    /// built-in default.
    fn origin(&self, key: &str) -> Origin {
        match self.source {
            FileSource::None => Origin::Default,
            source => located(source, self.positions.get(key).copied().unwrap_or(FIRST)),
        }
    }
}

/// The start of a file.
const FIRST: Position = Position { line: 1, column: 1 };

/// A position in the file layer's text.
fn located(source: &FileSource, at: Position) -> Origin {
    match source {
        FileSource::Path(path) => Origin::File {
            path: path.clone(),
            at: Some(at),
        },
        FileSource::Embedded | FileSource::None => Origin::Embedded { at },
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> Position {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Position { line, column }
}

/// The source text of a value, shortened to one line for an error message.
fn snippet(text: &str, span: Range<usize>) -> String {
    let raw = text.get(span).unwrap_or("");
    let line = raw.lines().next().unwrap_or("");
    let mut short: String = line.chars().take(60).collect();
    if short.len() < raw.len() {
        short.push_str("...");
    }
    short
}

/// Walks a parsed document against the schema, recording each leaf key's position.
struct Walk<'t> {
    text: &'t str,
    positions: BTreeMap<String, Position>,
    value_spans: Vec<(String, Range<usize>)>,
}

impl Walk<'_> {
    /// Errors carry the byte offset to report.
    fn table(&mut self, table: &DeTable<'_>, prefix: &str) -> Result<(), (ConfigError, usize)> {
        let schema = schema();
        for (name, value) in table.iter() {
            let key = schema::join(prefix, name.get_ref());
            let key_offset = name.span().start;
            if schema.is_section(&key) {
                match value.get_ref() {
                    DeValue::Table(inner) => self.table(inner, &key)?,
                    _ => {
                        let problem = format!("is a section: expected a table (`[{key}]`)");
                        return Err((ConfigError::setting(&key, problem), value.span().start));
                    }
                }
                continue;
            }
            let kind = schema
                .kind(&key)
                .ok_or_else(|| (schema.unknown(&key), key_offset))?;
            if !kind_matches(kind, value.get_ref()) {
                let given = snippet(self.text, value.span());
                return Err((
                    ConfigError::invalid_value(&key, given, kind.expected(true)),
                    value.span().start,
                ));
            }
            self.positions
                .insert(key.clone(), position(self.text, key_offset));
            self.value_spans.push((key, value.span()));
        }
        Ok(())
    }
}

fn kind_matches(kind: Kind, value: &DeValue<'_>) -> bool {
    match (kind, value) {
        (Kind::Bool, DeValue::Boolean(_)) => true,
        (Kind::Integer, DeValue::Integer(i)) => u64::from_str_radix(i.as_str(), i.radix()).is_ok(),
        (Kind::Float, DeValue::Float(_) | DeValue::Integer(_)) => true,
        (Kind::String, DeValue::String(_)) => true,
        (Kind::List, DeValue::Array(items)) => items.iter().all(|item| item.get_ref().is_str()),
        _ => false,
    }
}

/// The registry, environment or flag layer: dotted key -> (value, origin).
type Layer = BTreeMap<String, (Value, Origin)>;

fn env_layer(env: &[(String, String)]) -> Result<Layer, ConfigError> {
    let mut layer = Layer::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let location = || Origin::Env { var: var.clone() };
        let parts: Vec<String> = rest.split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
        if parts.iter().any(String::is_empty) {
            let message = format!("malformed name: expected {ENV_PREFIX}KEY or {ENV_PREFIX}SECTION__KEY");
            return Err(ConfigError::new(None, message).at(location()));
        }
        let key = parts.join(".");
        let kind = schema().leaf(&key).map_err(|e| e.at(location()))?;
        let value = schema::value_from_str(&key, kind, raw).map_err(|e| e.at(location()))?;
        schema::check_alone(&key, &value, raw).map_err(|e| e.at(location()))?;
        if let Some((_, Origin::Env { var: other })) = layer.get(&key) {
            let message = format!("sets {key}, which {other} already sets");
            return Err(ConfigError::new(Some(&key), message).at(location()));
        }
        layer.insert(key, (value, Origin::Env { var: var.clone() }));
    }
    Ok(layer)
}

fn flag_layer(overrides: &Overrides) -> Result<Layer, ConfigError> {
    let mut layer = Layer::new();
    for entry in &overrides.set {
        let Some((key, raw)) = entry.split_once('=') else {
            let message = format!("expected KEY=VALUE (e.g. `fxp.allow_foreign_port=true`), got `{entry}`");
            return Err(ConfigError::new(None, message).at(Origin::Flag {
                flag: "--set".to_string(),
            }));
        };
        let key = key.trim().to_ascii_lowercase();
        let flag = format!("--set {key}");
        let location = || Origin::Flag { flag: flag.clone() };
        if key.is_empty() {
            let message = format!("expected KEY=VALUE with a non-empty KEY, got `{entry}`");
            return Err(ConfigError::new(None, message).at(location()));
        }
        let kind = schema().leaf(&key).map_err(|e| e.at(location()))?;
        let value = schema::value_from_str(&key, kind, raw).map_err(|e| e.at(location()))?;
        schema::check_alone(&key, &value, raw).map_err(|e| e.at(location()))?;
        layer.insert(key, (value, Origin::Flag { flag: flag.clone() }));
    }

    let mut own_flag = |key: &str, flag: &str, value: Value, given: String| -> Result<(), ConfigError> {
        let location = Origin::Flag {
            flag: flag.to_string(),
        };
        if layer.contains_key(key) {
            let message = format!("{key} is also given by `--set {key}=...`: give it once");
            return Err(ConfigError::new(Some(key), message).at(location));
        }
        schema::check_alone(key, &value, &given).map_err(|e| e.at(location))?;
        layer.insert(
            key.to_string(),
            (
                value,
                Origin::Flag {
                    flag: flag.to_string(),
                },
            ),
        );
        Ok(())
    };
    if !overrides.listen.is_empty() {
        let addrs: Vec<Value> = overrides
            .listen
            .iter()
            .map(|a| Value::String(a.to_string()))
            .collect();
        let given = overrides
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        own_flag("listen", "--listen", Value::Array(addrs), given)?;
    }
    for (key, flag, path) in [
        ("root", "--root", &overrides.root),
        ("users_file", "--users", &overrides.users_file),
    ] {
        let Some(path) = path else {
            continue;
        };
        let Some(text) = path.to_str() else {
            let message = format!("path `{}` is not valid UTF-8", path.display());
            return Err(ConfigError::new(Some(key), message).at(Origin::Flag {
                flag: flag.to_string(),
            }));
        };
        own_flag(key, flag, Value::String(text.to_string()), text.to_string())?;
    }
    Ok(layer)
}
