//! Tests for the schema, the layers, origins, validation and the shipped config files: the
//! helpers here, the tests one file per concern.

mod file_errors;
mod layers;
mod render;
mod schema;
mod shipped;
mod validation;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::schema::{schema, OPTIONAL_KEYS};
use super::*;

const EXAMPLE: &str = include_str!("../../../config/fxpd.example.toml");
const PACKAGED: &str = include_str!("../../../config/fxpd.toml");
const PACKAGED_WINDOWS: &str = include_str!("../../../packaging/windows/fxpd.toml");
const QUICKSTART: &str = include_str!("../../../config/quickstart.toml");

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
