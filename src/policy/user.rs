//! The per-user FXP override from the users file (the `[fxp]` section itself is
//! [`crate::config::FxpConfig`]).

use serde::{Deserialize, Serialize};

/// Per-user FXP override from the users file: `fxp = "inherit" | "allow" | "deny"`.
///
/// It replaces the global foreign-address switches for one user. It never bypasses
/// `fxp.peers`, the privileged-port rule, or `fxp.allow_anonymous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FxpOverride {
    /// Follow `fxp.allow_foreign_port` and `fxp.allow_foreign_passive` (the default).
    #[default]
    Inherit,
    /// Allow foreign addresses in both directions for this user, even if the switches are off.
    Allow,
    /// Never allow foreign addresses for this user, even if the switches are on.
    Deny,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{value, IntoDeserializer};

    #[test]
    fn override_spellings() {
        for (text, want) in [
            ("inherit", FxpOverride::Inherit),
            ("allow", FxpOverride::Allow),
            ("deny", FxpOverride::Deny),
        ] {
            let de: value::StrDeserializer<value::Error> = text.into_deserializer();
            assert_eq!(FxpOverride::deserialize(de).unwrap(), want);
        }
        let de: value::StrDeserializer<value::Error> = "Allow".into_deserializer();
        assert!(FxpOverride::deserialize(de).is_err());
        assert_eq!(FxpOverride::default(), FxpOverride::Inherit);
    }
}
