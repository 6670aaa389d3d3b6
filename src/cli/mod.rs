//! The `fxpd` binary's own modules (the library does not see them): the command line's
//! definitions and the users-file commands.

pub mod args;
pub mod quota_scan;
pub mod users;
