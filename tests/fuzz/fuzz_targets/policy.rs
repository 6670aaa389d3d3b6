//! policy::Policy decisions against the decision table, with bans, reloads and a controlled clock.
//! The check itself is `checks::policy` (shared with tests/properties.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::policy(data));
