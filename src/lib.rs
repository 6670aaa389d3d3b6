//! fxpd: an FTP/FTPS server whose data-connection address policy (FXP, server-to-server
//! transfers) is explicit, configurable and enforced in one place.
//!
//! How a command flows through the crate:
//!
//! - [`server`]: binds the control listeners, refuses banned addresses, gives each connection
//!   a seat ([`server::admission`]: a budget for connections not logged in yet, another for
//!   logged-in sessions) and runs the session entry point it is given in one task per
//!   connection; [`server::state`] holds what every session shares and applies a reload.
//! - [`control`]: bounded command lines ([`control::codec`]), parsed into typed
//!   [`control::command::Command`]s ([`control::parser`]); answers are
//!   [`control::reply::Reply`] values, turned into bytes in one place.
//! - [`session`]: the per-connection task; it owns its state and runs one handler per verb.
//! - [`rights`]: per-path rights (list, download, upload, overwrite...): the one decision every
//!   file-touching command asks before it acts, with the rule that decided.
//! - [`policy`]: every address decision (PORT/EPRT targets, passive-connection sources,
//!   the FXP switches, bans). Handlers ask it; nobody else decides.
//! - [`proxy`]: the PROXY protocol (v1/v2) header a trusted load balancer sends first, naming
//!   the real client; the server and passive listeners read it from `proxy.trusted` peers only.
//! - [`datachan`]: the whole data connection: passive listeners and active connects, which
//!   only take an address the policy approved; TLS with its resumption check; the byte
//!   loops; the typed outcome the session turns into the final reply.
//! - [`config`]: the typed configuration, every section of the file in `config/sections/`,
//!   with the origin of each value; the modules that act on a section import its type from there.
//! - [`auth`], [`listing`], [`service`], [`tls`], [`w3c`]: users and logins, listing formats,
//!   process lifecycle, FTPS, the IIS-style command log.
//! - [`addr`], [`path`]: the vocabulary at the bottom: address normalisation and CIDR blocks;
//!   virtual paths and the names allowed in them.
//! - [`logging`]: how log lines are written: every field value escaped in one place, so client
//!   text cannot forge a line or drive the operator's terminal.
//! - `fxpd copy`, the FXP client that makes two FTP servers move a file between them
//!   (KB Q247132), is a crate of its own (`crates/fxpd-copy`); the refusal words it reads
//!   back from fxpd's replies are defined once in `crates/fxpd-proto`, which [`policy`] writes
//!   them with.
//!
//! - [`storage`]: where files live: a user's [`storage::Home`] with every file operation the
//!   session needs, on the local file system (through the `unftp-core` `StorageBackend` trait
//!   on `unftp-sbe-fs`, plus cap-std handles for file contents) or in an S3-compatible bucket
//!   through Apache OpenDAL (`storage.kind = "s3"`); the session never names a back-end.
//!
//! Layers, bottom to top; a module imports only from layers below its own, and nothing
//! imports [`run`] but the binary:
//!
//! 1. [`addr`], [`path`], [`listing`], [`control`], [`w3c`]
//! 2. [`config`]
//! 3. [`policy`], [`proxy`], [`tls`], [`logging`], [`service`], [`rights`]
//! 4. [`cluster`]
//! 5. [`auth`]
//! 6. [`storage`]: a user's home is opened for an [`auth::FtpUser`]
//! 7. [`datachan`]: turns an opened file or object into a transfer job
//! 8. [`server`]: listeners, admission, the shared state
//! 9. [`session`]: what runs on an admitted connection; [`run`] hands `session::run` to
//!    [`server::serve`]; [`admin`]: the admin listener, which reads what sessions publish in
//!    the server-wide state and acts through it

#![warn(missing_docs)]

pub mod addr;
pub mod admin;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod control;
pub mod datachan;
pub mod listing;
pub mod logging;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod rights;
pub mod server;
pub mod service;
pub mod session;
pub mod storage;
pub mod tls;
pub mod w3c;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// A listener [`run`] has bound.
#[derive(Debug, Clone, Copy)]
pub enum Listening {
    /// A control listener; `implicit_tls` for an implicit FTPS one.
    Control {
        /// The bound address.
        addr: SocketAddr,
        /// TLS starts before the greeting.
        implicit_tls: bool,
    },
    /// The admin listener (`[admin]`).
    Admin {
        /// The bound address.
        addr: SocketAddr,
        /// It speaks HTTPS.
        https: bool,
    },
}

/// Run the server with a validated configuration until `shutdown` is cancelled.
/// `on_bound` is called with each listener once it is bound, the admin listener first (the
/// binary prints a machine-readable line). At each request received on `reloads` (SIGHUP,
/// the Windows service's parameter change), and at each `POST /api/reload` on the admin
/// listener, and when the users file changes on disk ([`server::users_watch`]), `reread`
/// reads the configuration again and it is applied live (an invalid one is logged and the
/// old one stays).
pub async fn run(
    config: config::Config,
    shutdown: CancellationToken,
    reread: server::state::Reread,
    reloads: tokio::sync::mpsc::Receiver<()>,
    mut on_bound: impl FnMut(Listening),
) -> Result<(), StartError> {
    if config.storage.kind == storage::StorageKind::Fs && !config.root.is_dir() {
        return Err(StartError(format!(
            "root directory {} does not exist",
            config.root.display()
        )));
    }
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
    let plain = config.listen.iter().map(|a| (*a, false));
    let implicit = config.tls.implicit_listen.iter().map(|a| (*a, true));
    let listen: Vec<(SocketAddr, bool)> = plain.chain(implicit).collect();
    let cluster = cluster::Cluster::connect(&config.cluster)
        .await
        .map_err(StartError)?;
    let shared = Arc::new(server::Shared::new(config, Arc::new(cluster), shutdown).map_err(StartError)?);
    // Fail closed: an object store that cannot be listed now would fail every session.
    shared.backend.check().await.map_err(StartError)?;
    cluster::share_bans(shared.cluster.clone(), shared.policy.clone());
    // Bound before the control listeners: a start that cannot have it fails before serving.
    if let Some(bound) = admin::bind(&shared).map_err(StartError)? {
        let addr = bound.local_addr().map_err(|e| StartError(e.to_string()))?;
        let https = bound.https();
        tracing::info!(address = %addr, https, "admin listener on");
        on_bound(Listening::Admin { addr, https });
        tokio::spawn(admin::serve(bound, shared.clone(), reread.clone()));
    }
    let mut listeners = Vec::new();
    for (addr, implicit_tls) in listen {
        let socket = server::bind(addr).map_err(|e| StartError(format!("cannot listen on {addr}: {e}")))?;
        let bound = socket.local_addr().map_err(|e| StartError(e.to_string()))?;
        tracing::info!(address = %bound, implicit_tls, "listening");
        on_bound(Listening::Control {
            addr: bound,
            implicit_tls,
        });
        listeners.push(server::Listener { socket, implicit_tls });
    }
    tokio::spawn(server::users_watch::watch(shared.clone(), reread.clone()));
    tokio::spawn(shared.clone().follow_reloads(reread, reloads));
    service::notify(service::Status::Ready);
    let stopping = shared.shutdown.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        service::notify(service::Status::Stopping);
    });
    server::serve(listeners, shared, grace, session::run).await;
    Ok(())
}
