//! The registry layer with a fake registry: precedence, the IIS fallback, origins and every error
//! path. The same mapping code runs on Windows against the real registry (tests/windows/run.sh).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::config::schema::schema;
use crate::config::{load_from, render_text, Loaded, Overrides, Position};

const FXPD: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters";
const IIS: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\MSFTPSVC\Parameters";

/// An in-memory HKLM: (key under HKLM, value name) -> value; `fail` makes one read fail.
#[derive(Default)]
struct Fake {
    values: BTreeMap<(String, String), RegValue>,
    fail: Option<(String, String)>,
    fail_listing: bool,
}

impl Fake {
    fn new() -> Fake {
        Fake::default()
    }

    fn set(mut self, key: &str, name: &str, value: RegValue) -> Fake {
        self.values.insert((key.to_string(), name.to_string()), value);
        self
    }

    fn own(self, name: &str, value: RegValue) -> Fake {
        self.set(SERVICE_KEY, name, value)
    }

    fn iis(self, name: &str, value: RegValue) -> Fake {
        self.set(IIS_KEY, name, value)
    }
}

impl RegistrySource for Fake {
    fn read(&self, key: &str, value: &str) -> Result<Option<RegValue>, String> {
        if self.fail.as_ref().is_some_and(|(k, v)| k == key && v == value) {
            return Err("Access is denied. (0x80070005)".to_string());
        }
        // Value names are case-insensitive in the registry.
        Ok(self
            .values
            .iter()
            .find(|((k, v), _)| k == key && v.eq_ignore_ascii_case(value))
            .map(|(_, value)| value.clone()))
    }

    fn value_names(&self, key: &str) -> Result<Vec<String>, String> {
        if self.fail_listing {
            return Err("Access is denied. (0x80070005)".to_string());
        }
        Ok(self
            .values
            .keys()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect())
    }
}

/// A scratch config file, removed on drop.
struct File(PathBuf);

impl File {
    fn new(text: &str) -> File {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fxpd-registry-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fxpd.toml");
        std::fs::write(&path, text).unwrap();
        File(path)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load_all(
    text: &str,
    registry: &Fake,
    env: &[(&str, &str)],
    set: &[&str],
) -> Result<Loaded, crate::config::ConfigError> {
    let file = File::new(text);
    let overrides = Overrides {
        set: set.iter().map(|s| s.to_string()).collect(),
        ..Overrides::default()
    };
    let no_default = std::env::temp_dir().join("fxpd-registry-test-no-such-dir/fxpd.toml");
    load_from(Some(&file.0), &no_default, Some(registry), &vars(env), &overrides)
}

fn load_reg(registry: &Fake) -> Loaded {
    load_all("", registry, &[], &[]).expect("registry should be accepted")
}

fn reg_err(registry: &Fake) -> crate::config::ConfigError {
    load_all("", registry, &[], &[]).expect_err("registry should be rejected")
}

fn origin(key: &str, value: &str) -> Origin {
    Origin::Registry {
        key: key.to_string(),
        value: value.to_string(),
    }
}

// ---------------------------------------------------------------- the table

#[test]
fn every_registry_value_maps_to_a_setting_of_the_right_kind() {
    let mut names = std::collections::HashSet::new();
    let mut keys = std::collections::HashSet::new();
    for v in REGISTRY_VALUES {
        assert_eq!(
            schema().kind(v.key),
            Some(v.ty.kind()),
            "{} -> {}: no such setting, or not a {:?}",
            v.name,
            v.key,
            v.ty
        );
        assert!(
            names.insert(v.name.to_ascii_lowercase()),
            "{} listed twice",
            v.name
        );
        assert!(keys.insert(v.key), "{} mapped twice", v.key);
    }
    // The KB Q247132 names, and only they, fall back to IIS's key.
    let fallback: Vec<_> = REGISTRY_VALUES
        .iter()
        .filter(|v| v.iis_fallback)
        .map(|v| v.name)
        .collect();
    assert_eq!(fallback, ["EnablePortAttack", "EnablePASVTheft"]);
    assert_eq!(display_key(SERVICE_KEY), FXPD);
    assert_eq!(display_key(IIS_KEY), IIS);
}

#[test]
fn origin_and_location_name_the_key_and_value() {
    assert_eq!(
        origin(FXPD, "EnablePortAttack").to_string(),
        r"registry HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters\EnablePortAttack"
    );
    assert_eq!(
        origin(IIS, "EnablePASVTheft").describe(),
        r"registry value HKLM\SYSTEM\CurrentControlSet\Services\MSFTPSVC\Parameters\EnablePASVTheft"
    );
    assert_eq!(RegValue::Sz("1".into()).to_string(), "REG_SZ \"1\"");
    assert_eq!(RegValue::Other(11).to_string(), "REG_QWORD");
    assert_eq!(RegValue::Other(2).type_name(), "REG_EXPAND_SZ");
    assert_eq!(RegValue::Other(99).type_name(), "registry type 99");
}

// ---------------------------------------------------------------- values and origins

#[test]
fn no_registry_and_an_empty_registry_change_nothing() {
    let file = File::new("");
    let no_default = std::env::temp_dir().join("fxpd-registry-test-no-such-dir/fxpd.toml");
    let without = load_from(Some(&file.0), &no_default, None, &[], &Overrides::default()).unwrap();
    let empty = load_reg(&Fake::new());
    assert_eq!(
        (without.config, without.origins),
        (empty.config.clone(), empty.origins.clone())
    );
    assert!(!empty
        .origins
        .values()
        .any(|o| matches!(o, Origin::Registry { .. })));
}

#[test]
fn every_value_sets_its_setting_with_a_registry_origin() {
    let fake = Fake::new()
        .own("EnablePortAttack", RegValue::Dword(1))
        .own("EnablePASVTheft", RegValue::Dword(1))
        .own("EnablePrivilegedPorts", RegValue::Dword(1))
        .own("FxpAllowAnonymous", RegValue::Dword(1))
        .own(
            "FxpPeers",
            RegValue::MultiSz(vec!["192.0.2.0/24".into(), " 2001:db8::/32 ".into(), "".into()]),
        )
        .own("FxpBanThreshold", RegValue::Dword(3))
        .own("FxpBanWindowSeconds", RegValue::Dword(30))
        .own("FxpBanSeconds", RegValue::Dword(120))
        .own("PassivePortRange", RegValue::Sz("40000-40099".into()))
        .own("PassiveAddress", RegValue::Sz("203.0.113.7".into()));
    let loaded = load_reg(&fake);
    let c = &loaded.config;
    assert!(c.fxp.allow_foreign_port && c.fxp.allow_foreign_passive);
    assert!(c.fxp.allow_privileged_ports && c.fxp.allow_anonymous);
    assert_eq!(c.fxp.peers.len(), 2);
    assert_eq!(
        (c.fxp.ban_threshold, c.fxp.ban_window_secs, c.fxp.ban_secs),
        (3, 30, 120)
    );
    assert_eq!(c.passive.ports.to_string(), "40000-40099");
    assert_eq!(c.passive.address, Some("203.0.113.7".parse().unwrap()));
    for v in REGISTRY_VALUES {
        assert_eq!(loaded.origin(v.key), Some(&origin(FXPD, v.name)), "{}", v.key);
    }
    let text = render_text(&loaded);
    let line = text
        .lines()
        .find(|l| l.starts_with("fxp.allow_foreign_port ="))
        .unwrap();
    assert!(
        line.ends_with(r"# registry HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters\EnablePortAttack"),
        "{line}"
    );
}

#[test]
fn zero_switches_off_and_names_are_case_insensitive() {
    let fake = Fake::new()
        .own("enableportattack", RegValue::Dword(0))
        .own("ENABLEPASVTHEFT", RegValue::Dword(0));
    let loaded = load_all(
        "[fxp]\nallow_foreign_port = true\nallow_foreign_passive = true\n",
        &fake,
        &[],
        &[],
    )
    .unwrap();
    // SECURITY: the registry revokes what the file allowed.
    assert!(!loaded.config.fxp.allow_foreign_port && !loaded.config.fxp.allow_foreign_passive);
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port"),
        Some(&origin(FXPD, "EnablePortAttack"))
    );
}

#[test]
fn peers_as_a_comma_separated_string() {
    let fake = Fake::new().own("FxpPeers", RegValue::Sz("192.0.2.7, 198.51.100.0/24,".into()));
    assert_eq!(load_reg(&fake).config.fxp.peers.len(), 2);
    let empty = Fake::new().own("FxpPeers", RegValue::MultiSz(vec![]));
    let loaded = load_all("[fxp]\npeers = [\"192.0.2.7\"]\n", &empty, &[], &[]).unwrap();
    assert!(
        loaded.config.fxp.peers.is_empty(),
        "an empty list in the registry clears the file's"
    );
}

// ---------------------------------------------------------------- precedence

#[test]
fn precedence_file_registry_env_flag() {
    let fake = Fake::new().own("EnablePortAttack", RegValue::Dword(1));
    let file = "[fxp]\nallow_foreign_port = false\n";

    let loaded = load_all(file, &fake, &[], &[]).unwrap();
    assert!(loaded.config.fxp.allow_foreign_port, "registry beats file");
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port"),
        Some(&origin(FXPD, "EnablePortAttack"))
    );

    let env = [("FXPD__FXP__ALLOW_FOREIGN_PORT", "false")];
    let loaded = load_all(file, &fake, &env, &[]).unwrap();
    assert!(
        !loaded.config.fxp.allow_foreign_port,
        "environment beats registry"
    );
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port"),
        Some(&Origin::Env {
            var: "FXPD__FXP__ALLOW_FOREIGN_PORT".into()
        })
    );

    let loaded = load_all(file, &fake, &env, &["fxp.allow_foreign_port=true"]).unwrap();
    assert!(loaded.config.fxp.allow_foreign_port, "flag beats environment");
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port"),
        Some(&Origin::Flag {
            flag: "--set fxp.allow_foreign_port".into()
        })
    );

    // A key the registry does not set keeps the file's value and origin.
    let loaded = load_all("banner = \"hi\"\n", &fake, &[], &[]).unwrap();
    assert!(matches!(
        loaded.origin("banner"),
        Some(Origin::File {
            at: Some(Position { line: 1, .. }),
            ..
        })
    ));
    assert_eq!(loaded.origin("fxp.allow_foreign_passive"), Some(&Origin::Default));
}

#[test]
fn a_higher_layer_does_not_hide_a_bad_registry_value() {
    // Fail closed: the registry layer is checked on its own, whatever overrides it.
    let fake = Fake::new().own("EnablePortAttack", RegValue::Sz("1".into()));
    let e = load_all("", &fake, &[], &["fxp.allow_foreign_port=false"]).unwrap_err();
    assert_eq!(e.location(), Some(&origin(FXPD, "EnablePortAttack")));
}

// ---------------------------------------------------------------- the IIS fallback

#[test]
fn iis_key_is_read_when_fxpd_key_lacks_the_value() {
    let fake = Fake::new()
        .iis("EnablePortAttack", RegValue::Dword(1))
        .iis("EnablePASVTheft", RegValue::Dword(1));
    let loaded = load_reg(&fake);
    assert!(loaded.config.fxp.allow_foreign_port && loaded.config.fxp.allow_foreign_passive);
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port"),
        Some(&origin(IIS, "EnablePortAttack"))
    );
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port").unwrap().to_string(),
        r"registry HKLM\SYSTEM\CurrentControlSet\Services\MSFTPSVC\Parameters\EnablePortAttack"
    );
}

#[test]
fn fxpd_key_wins_over_iis_key_which_is_then_not_read() {
    let fake = Fake::new()
        .own("EnablePortAttack", RegValue::Dword(0))
        .iis("EnablePortAttack", RegValue::Sz("garbage".into()))
        .iis("EnablePASVTheft", RegValue::Dword(1));
    let loaded = load_reg(&fake);
    assert!(!loaded.config.fxp.allow_foreign_port);
    assert_eq!(
        loaded.origin("fxp.allow_foreign_port"),
        Some(&origin(FXPD, "EnablePortAttack"))
    );
    // Each value falls back on its own.
    assert!(loaded.config.fxp.allow_foreign_passive);
    assert_eq!(
        loaded.origin("fxp.allow_foreign_passive"),
        Some(&origin(IIS, "EnablePASVTheft"))
    );
}

#[test]
fn only_the_kb_values_fall_back_and_unknown_iis_values_are_ignored() {
    let fake = Fake::new()
        .iis("EnablePrivilegedPorts", RegValue::Dword(1))
        .iis("PassivePortRange", RegValue::Sz("1-2".into()))
        .iis("MaxConnections", RegValue::Dword(100000));
    let loaded = load_reg(&fake);
    assert!(!loaded.config.fxp.allow_privileged_ports);
    assert_eq!(
        loaded.origin("fxp.allow_privileged_ports"),
        Some(&Origin::Default)
    );
}

#[test]
fn a_bad_iis_value_is_an_error_naming_the_iis_key() {
    let e = reg_err(&Fake::new().iis("EnablePASVTheft", RegValue::Dword(2)));
    assert_eq!(e.location(), Some(&origin(IIS, "EnablePASVTheft")));
    assert!(
        e.to_string().contains(r"MSFTPSVC\Parameters\EnablePASVTheft"),
        "{e}"
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn a_string_where_a_dword_is_expected_is_an_error() {
    let e = reg_err(&Fake::new().own("EnablePortAttack", RegValue::Sz("1".into())));
    assert_eq!(e.location(), Some(&origin(FXPD, "EnablePortAttack")));
    assert_eq!(e.key(), Some("fxp.allow_foreign_port"));
    assert_eq!(
        e.to_string(),
        r#"registry value HKLM\SYSTEM\CurrentControlSet\Services\fxpd\Parameters\EnablePortAttack: invalid value `REG_SZ "1"` for fxp.allow_foreign_port: expected a REG_DWORD 0 (off) or 1 (on)"#
    );
}

#[test]
fn a_switch_other_than_0_or_1_is_an_error() {
    for n in [2, 0xffff_ffff] {
        let e = reg_err(&Fake::new().own("EnablePASVTheft", RegValue::Dword(n)));
        assert_eq!(e.location(), Some(&origin(FXPD, "EnablePASVTheft")));
        assert!(e.message().contains(&format!("REG_DWORD {n}")), "{e}");
        assert!(
            e.message().contains("expected a REG_DWORD 0 (off) or 1 (on)"),
            "{e}"
        );
    }
}

#[test]
fn other_types_are_errors_naming_the_type() {
    for (ty, name) in [
        (2, "REG_EXPAND_SZ"),
        (3, "REG_BINARY"),
        (11, "REG_QWORD"),
        (0, "REG_NONE"),
    ] {
        let e = reg_err(&Fake::new().own("EnablePrivilegedPorts", RegValue::Other(ty)));
        assert_eq!(e.location(), Some(&origin(FXPD, "EnablePrivilegedPorts")));
        assert!(e.message().contains(name), "{e}");
    }
    let e = reg_err(&Fake::new().own("EnablePortAttack", RegValue::MultiSz(vec!["1".into()])));
    assert!(e.message().contains("REG_MULTI_SZ"), "{e}");
}

#[test]
fn strings_and_lists_of_the_wrong_type_are_errors() {
    let cases = [
        ("PassivePortRange", RegValue::Dword(50000), "a REG_SZ string"),
        (
            "PassiveAddress",
            RegValue::MultiSz(vec!["192.0.2.1".into()]),
            "a REG_SZ string",
        ),
        ("FxpPeers", RegValue::Dword(1), "REG_MULTI_SZ"),
        ("FxpBanThreshold", RegValue::Sz("3".into()), "a REG_DWORD"),
    ];
    for (name, value, expected) in cases {
        let e = reg_err(&Fake::new().own(name, value));
        assert_eq!(e.location(), Some(&origin(FXPD, name)));
        assert!(e.message().contains(expected), "{name}: {e}");
    }
}

#[test]
fn values_the_setting_rejects_are_errors_naming_the_value() {
    let cases = [
        (
            "PassivePortRange",
            RegValue::Sz("50999-50000".into()),
            "passive.ports",
        ),
        ("PassivePortRange", RegValue::Sz("0-10".into()), "passive.ports"),
        (
            "PassiveAddress",
            RegValue::Sz("not-an-ip".into()),
            "passive.address",
        ),
        (
            "FxpPeers",
            RegValue::MultiSz(vec!["10.0.0.0/33".into()]),
            "fxp.peers",
        ),
        ("FxpPeers", RegValue::Sz("192.0.2.1,nonsense".into()), "fxp.peers"),
    ];
    for (name, value, key) in cases {
        let e = reg_err(&Fake::new().own(name, value.clone()));
        assert_eq!(e.location(), Some(&origin(FXPD, name)), "{name} {value}");
        assert_eq!(e.key(), Some(key));
        assert!(e.to_string().contains(&format!(r"Parameters\{name}: ")), "{e}");
    }
}

#[test]
fn an_unknown_value_name_is_an_error_listing_the_known_ones() {
    let e = reg_err(&Fake::new().own("EnablePortAtack", RegValue::Dword(0)));
    assert_eq!(e.location(), Some(&origin(FXPD, "EnablePortAtack")));
    assert!(
        e.message().contains("unknown registry value `EnablePortAtack`"),
        "{e}"
    );
    assert!(e.message().contains("EnablePortAttack, EnablePASVTheft"), "{e}");
    // The unnamed (Default) value is not a setting.
    load_reg(&Fake::new().own("", RegValue::Sz(String::new())));
}

#[test]
fn a_value_that_cannot_be_read_stops_the_load() {
    let mut fake = Fake::new().own("EnablePortAttack", RegValue::Dword(0));
    fake.fail = Some((SERVICE_KEY.to_string(), "EnablePortAttack".to_string()));
    let e = reg_err(&fake);
    assert_eq!(e.location(), Some(&origin(FXPD, "EnablePortAttack")));
    assert!(e.message().contains("cannot read it: Access is denied"), "{e}");

    let mut fake = Fake::new();
    fake.fail = Some((IIS_KEY.to_string(), "EnablePASVTheft".to_string()));
    let e = reg_err(&fake);
    assert_eq!(e.location(), Some(&origin(IIS, "EnablePASVTheft")));

    let mut fake = Fake::new();
    fake.fail_listing = true;
    let e = reg_err(&fake);
    assert!(
        e.message()
            .contains(&format!("cannot list the values of registry key {FXPD}")),
        "{e}"
    );
}
