//! PORT/EPRT/EPSV argument parsing (parse_port, parse_eprt and parse agree and round-trip).
//! The check itself is `checks::port_eprt` (shared with tests/properties.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::port_eprt(data));
