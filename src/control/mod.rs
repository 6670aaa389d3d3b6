//! The control channel: bounded lines in ([`codec`]), typed commands ([`command`],
//! [`parser`]), typed replies out ([`reply`]).

pub mod codec;
pub mod command;
pub mod parser;
pub mod reply;
pub mod stream;
