//! control::codec::LineReader: length bound, chunking, cancellation, Telnet filtering.
//! The check itself is `checks::line_reader` (shared with tests/properties.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::line_reader(data));
