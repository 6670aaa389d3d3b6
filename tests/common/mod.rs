//! Shared harness for fxpd's integration tests.
//!
//! Every test starts the real `fxpd` binary (`CARGO_BIN_EXE_fxpd`) in its own temporary
//! directory, with its own config, root and users file, listening on a loopback address with
//! port 0. The binary reports each bound control listener on stdout as `LISTENING <addr>`;
//! [`Server`] reads those lines with a deadline and kills the process when dropped.
//!
//! The harness, one module per concern (all re-exported here, so `use common::*;` is enough):
//! - `server`: [`ServerBuilder`] and [`Server`], users created through `fxpd user add`,
//! - `ctrl`: [`Ctrl`], the control-connection client (exact replies, raw bytes),
//! - `tls`: certificates, pinned rustls client configurations, TLS data streams, and the TLS
//!   half of [`Ctrl`] (`AUTH TLS`, implicit FTPS, protected transfers),
//! - `net`: data sockets with deadlines, connects from another loopback address, PROXY headers,
//! - `content`: random files, SHA-256 of bytes and files, trees,
//! - `clients`: [`ftp_login`] (suppaftp), external clients behind [`require_client`], the skip
//!   log, and commands with deadlines ([`client_command`], [`run_with_timeout`]),
//! - `redis`: a redis-server for the cluster tests,
//! - `browser`: a headless Chromium driven through the DevTools protocol over a pipe.
//!
//! `moto.rs` (an S3 server) is not a module of this one: the S3 test files include it by path.
//!
//! Only loopback addresses are used: 127.0.0.1, 127.0.0.2, 127.0.0.3 and ::1.
#![allow(dead_code)]

mod browser;
mod clients;
mod content;
mod ctrl;
mod net;
mod redis;
mod server;
mod tls;

// Each test binary uses a part of the harness: a module it does not use is no warning.
#[allow(unused_imports)]
pub use browser::*;
#[allow(unused_imports)]
pub use clients::*;
#[allow(unused_imports)]
pub use content::*;
#[allow(unused_imports)]
pub use ctrl::*;
#[allow(unused_imports)]
pub use net::*;
#[allow(unused_imports)]
pub use redis::*;
#[allow(unused_imports)]
pub use server::*;
#[allow(unused_imports)]
pub use tls::*;

use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fxpd");

/// How long the binary may take to print all its `LISTENING` lines.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Read/write timeout on every socket a test opens: no test may hang on the network.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The password every test user gets unless a test says otherwise.
pub const PASS: &str = "s3cret-Pa55";

/// Name of the environment variable that enables (and requires) external clients.
pub const EXTERNAL_ENV: &str = "FXPD_EXTERNAL_CLIENTS";
