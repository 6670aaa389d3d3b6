//! The Windows registry as a configuration layer, between the config file and the environment.
//!
//! Administrators coming from IIS set `EnablePortAttack` and `EnablePASVTheft` (REG_DWORD 0/1) as
//! Microsoft KB Q247132 describes. fxpd reads them, and IIS-style names for the other FXP and
//! passive-port settings ([`REGISTRY_VALUES`]), from `HKLM\`[`SERVICE_KEY`]. When that key lacks
//! `EnablePortAttack` or `EnablePASVTheft`, IIS's own `HKLM\`[`IIS_KEY`] is read for those two
//! only, so the KB followed word for word does what it promises; the [`Origin`] names the key the
//! value came from.
//!
//! # Layout
//! - [`RegistrySource`] / [`RegValue`]: what the mapping needs from a registry. The mapping
//!   ([`registry_layer`]) is compiled on every platform, so the Linux unit tests exercise it (and
//!   every error path) with a fake source.
//! - `WindowsRegistry` (`cfg(windows)` only): the real source, with the `windows-registry` crate.
//!
//! # Decisions
//! - Fail closed. A value of the wrong type (REG_SZ where a REG_DWORD is expected), a DWORD switch
//!   other than 0/1, a value the mapped setting rejects, an unknown value name under fxpd's own
//!   key, or a key that exists but cannot be read is an error naming the key, the value and what
//!   was expected: never a silent default. Only an absent key or value means "not set".
//! - Value names are compared case-insensitively, as the registry itself does.
//! - Unknown names are only rejected under fxpd's key: IIS's key holds many values fxpd ignores.

use std::collections::BTreeMap;
use std::fmt;

use toml::Value;

use super::error::ConfigError;
use super::origin::Origin;
use super::schema::{self, Kind};

/// fxpd's own parameters key, under `HKEY_LOCAL_MACHINE`.
pub const SERVICE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\fxpd\Parameters";

/// IIS's FTP service parameters key (KB Q247132), under `HKEY_LOCAL_MACHINE`; read only for the
/// values marked `iis_fallback` in [`REGISTRY_VALUES`], and only when fxpd's key lacks them.
pub const IIS_KEY: &str = r"SYSTEM\CurrentControlSet\Services\MSFTPSVC\Parameters";

/// A registry value as read, by type. Types fxpd never expects keep only their type number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    /// `REG_DWORD` (4).
    Dword(u32),
    /// `REG_SZ` (1), without its terminating NUL.
    Sz(String),
    /// `REG_MULTI_SZ` (7): the strings, without the empty terminator.
    MultiSz(Vec<String>),
    /// Any other type (`REG_EXPAND_SZ` = 2, `REG_BINARY` = 3, `REG_QWORD` = 11, ...).
    Other(u32),
}

impl RegValue {
    /// The type's `REG_*` name.
    pub fn type_name(&self) -> String {
        match self {
            RegValue::Dword(_) => "REG_DWORD".to_string(),
            RegValue::Sz(_) => "REG_SZ".to_string(),
            RegValue::MultiSz(_) => "REG_MULTI_SZ".to_string(),
            RegValue::Other(ty) => type_name(*ty),
        }
    }
}

/// Type and data, for error messages: `REG_SZ "1"`, `REG_DWORD 2`, `REG_BINARY`.
impl fmt::Display for RegValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegValue::Dword(n) => write!(f, "REG_DWORD {n}"),
            RegValue::Sz(s) => write!(f, "REG_SZ {s:?}"),
            RegValue::MultiSz(items) => write!(f, "REG_MULTI_SZ {items:?}"),
            RegValue::Other(ty) => f.write_str(&type_name(*ty)),
        }
    }
}

/// The `REG_*` name of a registry type number.
fn type_name(ty: u32) -> String {
    match ty {
        0 => "REG_NONE".to_string(),
        1 => "REG_SZ".to_string(),
        2 => "REG_EXPAND_SZ".to_string(),
        3 => "REG_BINARY".to_string(),
        4 => "REG_DWORD".to_string(),
        5 => "REG_DWORD_BIG_ENDIAN".to_string(),
        6 => "REG_LINK".to_string(),
        7 => "REG_MULTI_SZ".to_string(),
        11 => "REG_QWORD".to_string(),
        other => format!("registry type {other}"),
    }
}

/// What the registry layer needs from a registry. `key` is a path under `HKEY_LOCAL_MACHINE`
/// ([`SERVICE_KEY`] or [`IIS_KEY`]). `Err` is a message for the administrator (e.g. access
/// denied); it stops the load.
pub trait RegistrySource {
    /// Reads one value. `Ok(None)`: the key or the value does not exist.
    fn read(&self, key: &str, value: &str) -> Result<Option<RegValue>, String>;
    /// The names of the values directly in `key`. `Ok(vec![])`: the key does not exist.
    fn value_names(&self, key: &str) -> Result<Vec<String>, String>;
}

/// What a registry value must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegType {
    /// `REG_DWORD` 0 (off) or 1 (on), for a boolean setting.
    Switch,
    /// `REG_DWORD`, for an integer setting.
    Dword,
    /// `REG_SZ`, for a string setting.
    Sz,
    /// `REG_MULTI_SZ` (one item per string) or `REG_SZ` (items separated by commas).
    List,
}

impl RegType {
    fn expected(self) -> &'static str {
        match self {
            RegType::Switch => "a REG_DWORD 0 (off) or 1 (on)",
            RegType::Dword => "a REG_DWORD",
            RegType::Sz => "a REG_SZ string",
            RegType::List => "a REG_MULTI_SZ (one item per line) or a comma-separated REG_SZ",
        }
    }

    /// The schema kind the mapped setting must have (checked by a test).
    #[cfg(test)]
    pub(crate) fn kind(self) -> Kind {
        match self {
            RegType::Switch => Kind::Bool,
            RegType::Dword => Kind::Integer,
            RegType::Sz => Kind::String,
            RegType::List => Kind::List,
        }
    }
}

/// One registry value and the setting it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryValue {
    /// The value's name under [`SERVICE_KEY`] (IIS style).
    pub name: &'static str,
    /// The dotted configuration key it sets.
    pub key: &'static str,
    /// The type it must have.
    pub ty: RegType,
    /// Also read from [`IIS_KEY`] when fxpd's key lacks it.
    pub iis_fallback: bool,
}

/// Every registry value fxpd reads (docs/configuration.md).
pub const REGISTRY_VALUES: &[RegistryValue] = &[
    RegistryValue {
        name: "EnablePortAttack",
        key: "fxp.allow_foreign_port",
        ty: RegType::Switch,
        iis_fallback: true,
    },
    RegistryValue {
        name: "EnablePASVTheft",
        key: "fxp.allow_foreign_passive",
        ty: RegType::Switch,
        iis_fallback: true,
    },
    RegistryValue {
        name: "EnablePrivilegedPorts",
        key: "fxp.allow_privileged_ports",
        ty: RegType::Switch,
        iis_fallback: false,
    },
    RegistryValue {
        name: "FxpAllowAnonymous",
        key: "fxp.allow_anonymous",
        ty: RegType::Switch,
        iis_fallback: false,
    },
    RegistryValue {
        name: "FxpPeers",
        key: "fxp.peers",
        ty: RegType::List,
        iis_fallback: false,
    },
    RegistryValue {
        name: "FxpBanThreshold",
        key: "fxp.ban_threshold",
        ty: RegType::Dword,
        iis_fallback: false,
    },
    RegistryValue {
        name: "FxpBanWindowSeconds",
        key: "fxp.ban_window_secs",
        ty: RegType::Dword,
        iis_fallback: false,
    },
    RegistryValue {
        name: "FxpBanSeconds",
        key: "fxp.ban_secs",
        ty: RegType::Dword,
        iis_fallback: false,
    },
    RegistryValue {
        name: "PassivePortRange",
        key: "passive.ports",
        ty: RegType::Sz,
        iis_fallback: false,
    },
    RegistryValue {
        name: "PassiveAddress",
        key: "passive.address",
        ty: RegType::Sz,
        iis_fallback: false,
    },
];

/// `HKLM\<path>`, as origins and errors show a key.
pub fn display_key(path: &str) -> String {
    format!(r"HKLM\{path}")
}

/// The registry layer: dotted key -> (TOML value, [`Origin::Registry`]). Each value is checked on
/// its own, so an error names the registry key and value that gave it.
pub(crate) fn registry_layer(
    source: &dyn RegistrySource,
) -> Result<BTreeMap<String, (Value, Origin)>, ConfigError> {
    check_names(source)?;
    let mut layer = BTreeMap::new();
    for spec in REGISTRY_VALUES {
        let mut found = read(source, SERVICE_KEY, spec)?;
        if found.is_none() && spec.iis_fallback {
            found = read(source, IIS_KEY, spec)?;
        }
        let Some((key, raw)) = found else {
            continue;
        };
        let origin = Origin::Registry {
            key: display_key(key),
            value: spec.name.to_string(),
        };
        let value = to_toml(spec, &raw).map_err(|e| e.at(origin.clone()))?;
        schema::check_alone(spec.key, &value, &raw.to_string()).map_err(|e| e.at(origin.clone()))?;
        layer.insert(spec.key.to_string(), (value, origin));
    }
    Ok(layer)
}

/// Reads `spec` from `key`: `Some((key, value))` when present.
fn read(
    source: &dyn RegistrySource,
    key: &'static str,
    spec: &RegistryValue,
) -> Result<Option<(&'static str, RegValue)>, ConfigError> {
    match source.read(key, spec.name) {
        Ok(found) => Ok(found.map(|value| (key, value))),
        // SECURITY: a value we cannot read may be stricter than what the other layers say.
        Err(e) => Err(
            ConfigError::new(Some(spec.key), format!("cannot read it: {e}")).at(Origin::Registry {
                key: display_key(key),
                value: spec.name.to_string(),
            }),
        ),
    }
}

/// Rejects value names under fxpd's key that map to nothing (a typo must not be ignored).
fn check_names(source: &dyn RegistrySource) -> Result<(), ConfigError> {
    let names = source.value_names(SERVICE_KEY).map_err(|e| {
        let message = format!(
            "cannot list the values of registry key {}: {e}",
            display_key(SERVICE_KEY)
        );
        ConfigError::new(None, message)
    })?;
    for name in names {
        // The unnamed "(Default)" value is not a setting; RegEdit creates it empty.
        if name.is_empty() || REGISTRY_VALUES.iter().any(|v| v.name.eq_ignore_ascii_case(&name)) {
            continue;
        }
        let known: Vec<&str> = REGISTRY_VALUES.iter().map(|v| v.name).collect();
        let message = format!(
            "unknown registry value `{name}` (expected one of: {})",
            known.join(", ")
        );
        return Err(ConfigError::new(None, message).at(Origin::Registry {
            key: display_key(SERVICE_KEY),
            value: name,
        }));
    }
    Ok(())
}

/// The TOML value for a registry value, or an error saying what was expected.
fn to_toml(spec: &RegistryValue, raw: &RegValue) -> Result<Value, ConfigError> {
    let bad = || ConfigError::invalid_value(spec.key, raw, spec.ty.expected());
    Ok(match (spec.ty, raw) {
        (RegType::Switch, RegValue::Dword(0)) => Value::Boolean(false),
        (RegType::Switch, RegValue::Dword(1)) => Value::Boolean(true),
        (RegType::Dword, RegValue::Dword(n)) => Value::Integer(i64::from(*n)),
        (RegType::Sz, RegValue::Sz(s)) => Value::String(s.clone()),
        (RegType::List, RegValue::Sz(s)) => schema::value_from_str(spec.key, Kind::List, s)?,
        (RegType::List, RegValue::MultiSz(items)) => Value::Array(
            items
                .iter()
                .map(|item| item.trim())
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        ),
        _ => return Err(bad()),
    })
}

/// The real registry, only on Windows; `None` elsewhere.
pub fn platform_registry() -> Option<&'static dyn RegistrySource> {
    #[cfg(windows)]
    {
        Some(&WindowsRegistry)
    }
    #[cfg(not(windows))]
    {
        None
    }
}

/// `HKEY_LOCAL_MACHINE` read with the `windows-registry` crate.
#[cfg(windows)]
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsRegistry;

#[cfg(windows)]
impl WindowsRegistry {
    /// The key, or `None` if it does not exist.
    fn open(key: &str) -> Result<Option<windows_registry::Key>, String> {
        match windows_registry::LOCAL_MACHINE.open(key) {
            Ok(k) => Ok(Some(k)),
            Err(e) if e.code().0 as u32 == NOT_FOUND => Ok(None),
            Err(e) => Err(format!("cannot open {}: {}", display_key(key), e.message())),
        }
    }
}

/// `ERROR_FILE_NOT_FOUND` as an HRESULT (`HRESULT_FROM_WIN32(2)`): the key or value does not exist.
#[cfg(windows)]
const NOT_FOUND: u32 = 0x8007_0002;

#[cfg(windows)]
impl RegistrySource for WindowsRegistry {
    fn read(&self, key: &str, value: &str) -> Result<Option<RegValue>, String> {
        let Some(k) = Self::open(key)? else {
            return Ok(None);
        };
        let raw = match k.get_value(value) {
            Ok(raw) => raw,
            Err(e) if e.code().0 as u32 == NOT_FOUND => return Ok(None),
            Err(e) => return Err(e.message()),
        };
        let wide = || {
            let mut w = raw.as_wide();
            while let [rest @ .., 0] = w {
                w = rest;
            }
            w
        };
        let utf16 =
            |w: &[u16]| String::from_utf16(w).map_err(|_| "the string is not valid UTF-16".to_string());
        Ok(Some(match raw.ty() {
            windows_registry::Type::U32 => {
                let bytes = <[u8; 4]>::try_from(&raw[..])
                    .map_err(|_| format!("a REG_DWORD of {} bytes", raw.len()))?;
                RegValue::Dword(u32::from_le_bytes(bytes))
            }
            windows_registry::Type::String => RegValue::Sz(utf16(wide())?),
            windows_registry::Type::MultiString => RegValue::MultiSz(
                wide()
                    .split(|&c| c == 0)
                    .filter(|s| !s.is_empty())
                    .map(utf16)
                    .collect::<Result<_, _>>()?,
            ),
            other => RegValue::Other(u32::from(other)),
        }))
    }

    fn value_names(&self, key: &str) -> Result<Vec<String>, String> {
        let Some(k) = Self::open(key)? else {
            return Ok(Vec::new());
        };
        let values = k.values().map_err(|e| e.message())?;
        Ok(values.map(|(name, _)| name).collect())
    }
}

#[cfg(test)]
mod tests;
