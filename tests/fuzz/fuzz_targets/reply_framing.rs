//! control::reply::Reply::to_bytes reads back as exactly one reply.
//! The check itself is `checks::reply_framing` (shared with tests/properties.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::reply_framing(data));
