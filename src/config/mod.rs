//! fxpd's configuration: one typed [`Config`], validated once, plus where every value came from.
//!
//! # Layout
//! Bottom to top; each file uses only the ones listed before it.
//! - `origin.rs`: [`Origin`], where a value came from (a file position, a registry value, a
//!   variable, a flag): shown by `fxpd config show`, and at the start of every error.
//! - `error.rs`: [`ConfigError`], which always names the setting and the source that gave it.
//! - `sections/`: the typed schema, every section type of the file in one place: [`Config`] and
//!   its top-level keys in `sections/mod.rs`, one file per section (`admin`, `anonymous`, `cluster`,
//!   `fxp`, `limits`, `log`, `passive`, `proxy`, `storage`, `tls`), each with its defaults and
//!   its own checks; [`Config::validate`] runs them all. The modules that act on a section
//!   (e.g. `policy` for `[fxp]`) import its type from here.
//! - `schema.rs`: the list of leaf keys and the TOML kind each expects, derived from the defaults;
//!   turns environment/flag strings into typed TOML values.
//! - `registry.rs`: the registry layer: IIS-style value names ([`REGISTRY_VALUES`]) mapped to keys
//!   through the [`RegistrySource`] trait (tested on every platform with a fake), and the real
//!   `HKLM` reader (`cfg(windows)`).
//! - `sources.rs`: the layers (built-in defaults < config file < Windows registry < `FXPD__*`
//!   environment variables < command-line flags), [`load`], the origin of every value and
//!   [`default_config_path`].
//! - `render.rs`: [`render_text`] / [`render_json`], the effective configuration with origins.
//! - `restart.rs`: [`RESTART_KEYS`], the settings read only at start, and [`needs_restart`],
//!   which of them a reloaded configuration changes.
//!
//! # Decisions
//! - We layer `toml::Table`s ourselves instead of using the `config` crate: that crate cannot
//!   report the file position of an unknown key or a badly typed value, and strict config
//!   (unknown keys rejected, with a line number) is a requirement.
//! - Every struct is `#[serde(deny_unknown_fields, default)]`: a partial file is fine, a typo is
//!   an error. Every key is documented in `sections/` and in the shipped `config/fxpd.example.toml`, and a
//!   test parses every shipped file.
//! - Fail closed: any error anywhere returns `Err`; a partially applied configuration is never
//!   returned. An unreadable default config file is an error, not a reason to fall back to the
//!   quick start.
//! - Relative `root` / `users_file` / `log.w3c_dir` in a config file are resolved against the file's directory.
//!   The embedded quick start's `./ftproot`, and relative paths from the environment or flags, stay
//!   relative to the current directory.

mod error;
mod origin;
mod registry;
mod render;
mod restart;
mod schema;
mod sections;
mod sources;
#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use origin::{Origin, Position};
#[cfg(windows)]
pub use registry::WindowsRegistry;
pub use registry::{
    display_key, platform_registry, RegType, RegValue, RegistrySource, RegistryValue, IIS_KEY,
    REGISTRY_VALUES, SERVICE_KEY,
};
pub use render::{render_json, render_text};
pub use restart::{changed, needs_restart, RESTART_KEYS};
pub use sections::{
    AccessConfig, AccessDenial, AdminConfig, AnonymousConfig, ClusterConfig, Config, FxpConfig, LimitsConfig,
    ListingStyle, LogConfig, LogFormat, LogLevel, PassiveConfig, PortRange, ProxyConfig, StorageConfig,
    StorageKind, TlsConfig, TlsRequire, DEFAULT_BANNER, DEFAULT_ROOT, MAX_BANNER_CHARS,
};
pub use sources::{
    default_config_path, env_vars, load, load_from, load_with_default_path, Loaded, Overrides, ENV_PREFIX,
    QUICKSTART_TOML,
};
