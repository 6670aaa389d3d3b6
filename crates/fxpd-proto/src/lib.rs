//! The words fxpd's server and its FXP client (`fxpd copy`) share, defined once.
//!
//! When fxpd refuses a data connection it answers with one line such as
//!
//! ```text
//! PORT refused (foreign-address): 127.0.0.3 is not your address (127.0.0.1); allowed by fxp.allow_foreign_port (EnablePortAttack).
//! ```
//!
//! The server writes that line from a [`RefusalText`] (in its policy) and `fxpd copy` finds it
//! again in the reply with [`RefusalText::find`], to tell the user which setting of which
//! server would allow the transfer. Both sides use the same pieces:
//!
//! - [`Reason`]: why a data connection was refused; its stable token (`foreign-address`,
//!   `privileged-port`, ...) appears in replies, logs and STAT.
//! - [`setting`]: the names of the settings that can allow a refused connection, and the
//!   IIS registry values that play the same role (Microsoft KB Q247132).
//! - [`RefusalText`]: the reply line built from those, and the markers it is built with
//!   ([`refusal::REFUSED`], [`refusal::ALLOWED_BY`]).
//!
//! No dependencies and no I/O: the crate is only vocabulary.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod reason;
pub mod refusal;
pub mod setting;

pub use reason::Reason;
pub use refusal::RefusalText;
