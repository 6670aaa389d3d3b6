//! fxpd::control::parser::parse on arbitrary command lines.
//! The check itself is `checks::parse_command` (shared with tests/properties.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::parse_command(data));
