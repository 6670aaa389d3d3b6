//! The process environment as a configuration source: variables that are not valid Unicode.
//!
//! Unix environments are bytes: a variable in a legacy encoding is ordinary and must not stop
//! fxpd (it is not fxpd's). One of fxpd's own `FXPD__*` variables that cannot be read as text is
//! a configuration error that names it, never a value fxpd guesses at or skips.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;

use common::*;

/// `café` in Latin-1: not valid UTF-8.
const LATIN1: &[u8] = b"caf\xe9";

/// `fxpd config check` with a clean `FXPD_*` environment plus `vars`, killed after 30 s.
fn config_check(vars: &[(&OsStr, &OsStr)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["config", "check", "--set", "listen=127.0.0.1:0", "--root", "/"]);
    clear_fxpd_env(&mut cmd);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    run_with_timeout(&mut cmd, 30)
}

#[test]
fn a_server_starts_and_serves_with_a_variable_that_is_not_unicode() {
    let s = Server::builder()
        .user("alice", PASS, "alice", false)
        .env("LEGACY_GREETING", OsString::from_vec(LATIN1.to_vec()))
        .start();
    let mut c = s.login("alice", PASS);
    c.expect("NOOP", 200);
}

#[test]
fn config_check_ignores_other_variables_whose_name_or_value_is_not_unicode() {
    let out = config_check(&[
        (OsStr::new("LEGACY_GREETING"), OsStr::from_bytes(LATIN1)),
        (OsStr::from_bytes(b"LEGACY_\xe9"), OsStr::new("1")),
    ]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("listen = [\"127.0.0.1:0\"]"), "{stdout}");
}

#[test]
fn an_fxpd_variable_that_is_not_unicode_is_an_error_that_names_it() {
    let out = config_check(&[(OsStr::new("FXPD__BANNER"), OsStr::from_bytes(LATIN1))]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "fxpd: configuration error: environment variable FXPD__BANNER: value is not valid Unicode"
        ),
        "{stderr}"
    );
}

#[test]
fn an_fxpd_variable_whose_name_is_not_unicode_is_an_error() {
    let out = config_check(&[(OsStr::from_bytes(b"FXPD__BANN\xe9R"), OsStr::new("hi"))]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment variable FXPD__BANN\u{fffd}R: name is not valid Unicode"),
        "{stderr}"
    );
}
