//! Path resolution and S3 key building against models (no `..`, never outside the home or its
//! key prefix, equal to a reference normalisation). The check itself is
//! `checks::path_confinement` (shared with tests/properties.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::path_confinement(data));
