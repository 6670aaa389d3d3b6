//! PROXY protocol v1/v2 header parsing (exact reads, prefix consistency, canonical v1, v2
//! lengths). The check itself is `checks::proxy_header` (shared with tests/properties.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::proxy_header(data));
