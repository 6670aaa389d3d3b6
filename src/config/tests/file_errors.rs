//! Errors in a config file name the key, the line and what was expected.

use super::*;

#[test]
fn unknown_key_in_file_names_key_line_and_alternatives() {
    let err = file_err("listen = [\"127.0.0.1:21\"]\n\n[fxp]\nalow_foreign_port = true\n");
    assert_eq!(err.line(), Some(4));
    assert_eq!(err.key(), Some("fxp.alow_foreign_port"));
    let text = err.to_string();
    assert!(text.starts_with("config file "), "{text}");
    assert!(
        text.contains(
            ", line 4, column 1: unknown key `fxp.alow_foreign_port` (expected one of: allow_anonymous,"
        ),
        "{text}"
    );
    assert!(text.contains("allow_foreign_port"), "{text}");
}

#[test]
fn unknown_top_level_key_and_section() {
    let err = file_err("banner = \"x\"\nlisten_addr = \"1.2.3.4:21\"\n");
    assert_eq!(err.line(), Some(2));
    assert!(
        err.message()
            .contains("unknown key `listen_addr` (expected one of: access, admin, anonymous, banner,"),
        "{err}"
    );

    let err = file_err("[fpx]\nallow_foreign_port = true\n");
    assert_eq!(err.line(), Some(1));
    assert_eq!(err.key(), Some("fpx"));

    let err = file_err("fxp.bogus.deep = 1\n");
    assert_eq!(err.key(), Some("fxp.bogus"));
    assert_eq!(err.line(), Some(1));
}

#[test]
fn bad_type_in_file_names_key_and_line() {
    let err = file_err("[limits]\nmax_sessions = 10\nidle_timeout_secs = \"abc\"\n");
    assert_eq!(err.line(), Some(3));
    assert_eq!(err.key(), Some("limits.idle_timeout_secs"));
    assert!(
        err.message()
            .contains("invalid value `\"abc\"` for limits.idle_timeout_secs: expected an unsigned integer"),
        "{err}"
    );

    let err = file_err("[limits]\nidle_timeout_secs = -5\n");
    assert_eq!(err.line(), Some(2));
    assert!(err.message().contains("expected an unsigned integer"), "{err}");

    let err = file_err("\n\nlisten = [21]\n");
    assert_eq!(err.line(), Some(3));
    assert!(err.message().contains("array of strings"), "{err}");

    let err = file_err("[fxp]\nallow_foreign_port = \"yes\"\n");
    assert_eq!(err.line(), Some(2));
    assert!(err.message().contains("`true` or `false`"), "{err}");

    let err = file_err("fxp = true\n");
    assert_eq!(err.key(), Some("fxp"));
    assert!(err.message().contains("is a section"), "{err}");
}

#[test]
fn bad_value_in_file_names_key_and_line() {
    let err = file_err("banner = \"ok\"\nlisten = [\n  \"127.0.0.1:21\",\n  \"not-an-address\",\n]\n");
    assert_eq!(err.key(), Some("listen"));
    assert_eq!(err.line(), Some(4));

    let err = file_err("[passive]\nports = \"3000-2000\"\n");
    assert_eq!(err.key(), Some("passive.ports"));
    assert_eq!(err.line(), Some(2));
    assert!(err.message().contains("3000-2000"), "{err}");

    let err = file_err("listing_style = \"dos\"\n");
    assert_eq!(err.key(), Some("listing_style"));
    assert!(
        err.message().contains("unix") && err.message().contains("msdos"),
        "{err}"
    );

    let err = file_err("[passive]\naddress = \"nat-box\"\n");
    assert_eq!(err.key(), Some("passive.address"));
}

#[test]
fn toml_syntax_error_has_a_position() {
    let err = file_err("banner = \"x\"\nlisten = [\n[log]\n");
    assert!(err.line().is_some(), "{err}");
    assert!(err.message().starts_with("invalid TOML"), "{err}");

    let err = file_err("banner = \"a\"\nbanner = \"b\"\n");
    assert_eq!(err.line(), Some(2), "{err}");
}

#[test]
fn validation_error_in_file_names_the_line() {
    let err = file_err("# comment\n[limits]\nidle_timeout_secs = 0\n");
    assert_eq!(err.key(), Some("limits.idle_timeout_secs"));
    assert_eq!(err.line(), Some(3));
    assert!(
        err.to_string().ends_with(
            "line 3, column 1: invalid value `0` for limits.idle_timeout_secs: expected an integer from 1 to 86400"
        ),
        "{err}"
    );

    // A cross-field error on a key left at its default points at the key that was set.
    let err = file_err("\n[limits]\nmax_sessions = 10\n");
    assert_eq!(err.key(), Some("limits.max_sessions_per_ip"));
    assert_eq!(err.line(), Some(3), "{err}");

    let err = file_err("listen = []\n");
    assert_eq!(err.key(), Some("listen"));
    assert_eq!(err.line(), Some(1));
}
