//! The admin listener (`[admin]`, off by default): what an operator can ask of the running
//! server and do to it, over HTTP (HTTPS when `tls.certificate` is set), each request
//! carrying `Authorization: Bearer <token>` (docs/admin.md).
//!
//! - this file: the listener (at most 64 connections, each for at most 60 s; TLS handshakes
//!   run beside the accept loop, each bounded in time), the routes, and the one
//!   authorization check every route passes;
//! - `api`: the JSON API (sessions, kicks, bans and lockouts, reload) and `GET /metrics`;
//! - `page`: the status page at `/` and its login form (a cookie that opens the page only);
//! - [`token`]: the bearer token: made, read, compared in constant time;
//! - [`client`]: the command-line side (`fxpd sessions`, `fxpd bans`, `fxpd reload`).
//!
//! It sits above [`crate::server`]: it reads the server-wide state ([`Shared`]) the sessions
//! publish into, and acts through it (a kick, a lift, a reload); nothing below imports it.

mod api;
pub mod client;
mod page;
pub mod token;

use crate::control::stream::ControlStream;
use crate::server::state::Reread;
use crate::server::Shared;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
pub use token::Token;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;

/// Longest a TLS handshake on the admin listener may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most connections open at once (TLS handshakes included); past it new connections are
/// closed at once.
const MAX_CONNECTIONS: usize = 64;

/// Longest life of one connection: the requests are short, and hyper without a timer would
/// wait for a silent client's headers for ever.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What every request handler reads.
struct Admin {
    shared: Arc<Shared>,
    token: Token,
    reread: Reread,
    /// The listener speaks HTTPS (the page's cookie is then `Secure`).
    https: bool,
}

/// The client of an admin request, for logs.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, AdminListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, AdminListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The bound admin listener, ready to serve.
pub struct Bound {
    listener: AdminListener,
    token: Token,
}

impl Bound {
    /// The address it is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.tcp.local_addr()
    }

    /// Whether it speaks HTTPS.
    pub fn https(&self) -> bool {
        self.listener.https
    }
}

/// Bind the admin listener `config.admin` asks for, after reading its token: `Ok(None)` when
/// it is off. Any problem is an error that stops the start (fail closed: an operator who
/// asked for it is told at once, not at the first request).
pub fn bind(shared: &Arc<Shared>) -> Result<Option<Bound>, String> {
    let config = shared.settings().config.clone();
    let Some(addr) = config.admin.listen else {
        return Ok(None);
    };
    // Config::validate has checked both already; this is the second look before binding.
    let file = config
        .admin
        .token_file
        .as_deref()
        .ok_or("admin.listen is set but admin.token_file is not: no token file, no admin listener")?;
    let token = Token::read(file)?;
    let https = config.tls.certificate.is_some();
    // SECURITY: never serve the token in clear text beyond loopback.
    if !crate::addr::normalize(addr.ip()).is_loopback() && !https {
        return Err(format!(
            "admin.listen {addr} is not a loopback address and tls.certificate is not set: refused"
        ));
    }
    let std_listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on admin.listen {addr}: {e}"))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("admin.listen {addr}: {e}"))?;
    let tcp = TcpListener::from_std(std_listener).map_err(|e| format!("admin.listen {addr}: {e}"))?;
    Ok(Some(Bound {
        listener: AdminListener {
            tcp,
            shared: shared.clone(),
            https,
            handshakes: JoinSet::new(),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        },
        token,
    }))
}

/// Serve the admin listener until the server shuts down. `reread` re-reads the configuration
/// for `POST /api/reload` (the binary gives it, as for SIGHUP).
pub async fn serve(bound: Bound, shared: Arc<Shared>, reread: Reread) {
    let Bound { listener, token } = bound;
    let shutdown = shared.shutdown.clone();
    let admin = Arc::new(Admin {
        shared,
        token,
        reread,
        https: listener.https,
    });
    let app = router(admin);
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "admin listener failed");
    }
}

fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/metrics", get(api::metrics))
        .route("/api/sessions", get(api::sessions))
        .route("/api/sessions/{id}", delete(api::kick))
        .route("/api/bans", get(api::bans))
        .route("/api/bans/{addr}", delete(api::lift))
        .route("/api/reload", post(api::reload))
        .fallback(api::not_found)
        // Around every route above and the fallback: nothing is answered without the token.
        .layer(axum::middleware::from_fn_with_state(admin.clone(), authorize))
        // The status page checks its own cookie; its login form checks the token.
        .route("/", get(page::page))
        .route(
            "/login",
            post(page::login).layer(axum::extract::DefaultBodyLimit::max(1024)),
        )
        .with_state(admin)
}

/// The one authorization check: `Authorization: Bearer <token>`, compared in constant time. A
/// request without it or with a wrong one gets 401 and a security log line.
async fn authorize(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if admin.token.matches(token) => return next.run(request).await,
        _ => {}
    }
    let reason = if given.is_some() {
        "wrong token"
    } else {
        "no token"
    };
    // Every field goes through the log's escaping (src/logging.rs): a path cannot forge a line.
    tracing::warn!(
        target: "fxpd::security",
        event = "admin_unauthorized",
        client = %peer,
        method = %request.method(),
        path = %request.uri().path(),
        reason,
        "admin request refused: {reason}"
    );
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(serde_json::json!({ "error": "unauthorized: send Authorization: Bearer <token from admin.token_file>" })),
    )
        .into_response()
}

/// The admin listener's socket: plain, or TLS with the certificate in force when each
/// connection arrives (handshakes run beside the accept loop, so one slow client holds up
/// nobody). At most [`MAX_CONNECTIONS`] connections at once, each for at most
/// [`CONNECTION_LIFETIME`].
struct AdminListener {
    tcp: TcpListener,
    shared: Arc<Shared>,
    https: bool,
    handshakes: JoinSet<Option<(Conn, SocketAddr)>>,
    slots: Arc<Semaphore>,
}

/// One admin connection: its stream, its seat among [`MAX_CONNECTIONS`], and the end of its
/// life.
struct Conn {
    io: ControlStream,
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    fn new(io: ControlStream, slot: OwnedSemaphorePermit) -> Conn {
        Conn {
            io,
            deadline: Box::pin(tokio::time::sleep(CONNECTION_LIFETIME)),
            _slot: slot,
        }
    }

    /// An error once the connection has lived its time (the task is woken then).
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        self.deadline
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "admin connection lived its time"))
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for AdminListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            let handshaking = !self.handshakes.is_empty();
            tokio::select! {
                accepted = self.tcp.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            tracing::warn!(error = %e, "admin accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                        tracing::warn!(client = %peer, "admin connection closed: {MAX_CONNECTIONS} open already");
                        continue;
                    };
                    if !self.https {
                        return (Conn::new(ControlStream::plain(stream), slot), peer);
                    }
                    // Fail closed: without a certificate in force now, no connection.
                    let Some(tls) = self.shared.settings().tls.clone() else {
                        tracing::warn!(client = %peer, "admin connection closed: no TLS certificate in force");
                        continue;
                    };
                    let acceptor = tls.acceptor();
                    self.handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => Some((Conn::new(ControlStream::Tls(Box::new(tls)), slot), peer)),
                            Ok(Err(e)) => {
                                tracing::info!(client = %peer, error = %e, "admin TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::info!(client = %peer, "admin TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
                Some(done) = self.handshakes.join_next(), if handshaking => {
                    if let Ok(Some(pair)) = done {
                        return pair;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
