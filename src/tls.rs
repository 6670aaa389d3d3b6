//! FTPS (RFC 4217): the server's certificate, loaded from the `[tls]` settings
//! ([`TlsConfig`]), and the TLS roles a data connection can take.
//!
//! Explicit FTPS upgrades the control connection with `AUTH TLS`; implicit FTPS listeners
//! (port 990 style) start TLS before the greeting. Data connections are protected after
//! `PROT P`. By default a protected data connection must resume the TLS session of the
//! control connection (as vsftpd's `require_ssl_reuse`), so a third party who connects to a
//! passive port first cannot complete a handshake that passes. With `SSCN ON` (or `CPSV`)
//! fxpd is the TLS *client* on the data connection, which lets two servers run a protected
//! FXP transfer: one side accepts, the other connects.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use crate::config::{TlsConfig, TlsRequire};

/// The loaded TLS material: the server configuration (each control connection gets its own
/// copy, see [`Tls::session_acceptors`]) and the connector for the client role.
pub struct Tls {
    server: Arc<rustls::ServerConfig>,
    /// Client role on data connections (SSCN ON / CPSV).
    pub connector: tokio_rustls::TlsConnector,
    /// A copy of the settings this was built from.
    pub config: TlsConfig,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Load the certificate and key named in `cfg`; `Ok(None)` when TLS is not configured.
    pub fn load(cfg: &TlsConfig) -> Result<Option<Arc<Tls>>, String> {
        cfg.validate().map_err(|e| e.to_string())?;
        let (Some(cert_path), Some(key_path)) = (&cfg.certificate, &cfg.private_key) else {
            return Ok(None);
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
            .map_err(|e| format!("tls.certificate {}: {e}", cert_path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("tls.certificate {}: {e}", cert_path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "tls.certificate {}: no certificate found",
                cert_path.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| format!("tls.private_key {}: {e}", key_path.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls.certificate/tls.private_key: {e}"))?;
        // Sessions are resumable only through the control connection that issued them (see
        // `session_acceptors`).
        server.send_tls13_tickets = 4;
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier {
                accept: ServerCert::Any,
                provider,
            }))
            .with_no_client_auth();
        Ok(Some(Arc::new(Tls {
            server: Arc::new(server),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            config: cfg.clone(),
        })))
    }

    /// The server-role acceptors for one control connection and its data connections. They
    /// share a session cache and a ticket key of their own, so a data connection that resumes
    /// a session proves it comes from the holder of THIS control connection's session (as
    /// vsftpd's `require_ssl_reuse`): a third party who resumes a session of its own, even
    /// one this server issued on another connection, falls back to a full handshake and is
    /// refused. Tickets stay reusable, so a client may resume the same one for every data
    /// connection (lftp does).
    pub fn session_acceptors(&self) -> Result<SessionTls, rustls::Error> {
        let tickets = Arc::new(WatchedTicketer {
            inner: rustls::crypto::ring::Ticketer::new()?,
            seen: Mutex::new(TicketUse::default()),
        });
        let mut config = (*self.server).clone();
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(64);
        config.ticketer = tickets.clone();
        let mut quiet = config.clone();
        quiet.send_tls13_tickets = 0;
        Ok(SessionTls {
            control: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            without_tickets: tokio_rustls::TlsAcceptor::from(Arc::new(quiet)),
            tickets,
        })
    }

    /// A plain server-role acceptor with the certificate (the admin listener's HTTPS).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The name presented in the client role. The peer of a client-method data connection
    /// is another FTP server chosen by the FXP client, known only by address.
    pub fn peer_name(addr: SocketAddr) -> ServerName<'static> {
        ServerName::IpAddress(addr.ip().into())
    }
}

/// Which connection a TLS handshake protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A control connection (`AUTH TLS`, or an implicit FTPS listener).
    Control,
    /// A data connection (`PROT P`), in either role.
    Data,
}

/// TLS handshakes since the process started, by channel: (full, resumed, failed). Process
/// wide, like the kernel's own counters: a handshake is counted where it ends, with
/// [`count_handshake`], and read by the metrics.
static HANDSHAKES: [[std::sync::atomic::AtomicU64; 3]; 2] = [
    [const { std::sync::atomic::AtomicU64::new(0) }; 3],
    [const { std::sync::atomic::AtomicU64::new(0) }; 3],
];

/// Count one handshake on `channel`: `Some(resumed)` when it succeeded, `None` when it failed
/// or timed out.
pub fn count_handshake(channel: Channel, outcome: Option<bool>) {
    let column = match outcome {
        Some(false) => 0,
        Some(true) => 1,
        None => 2,
    };
    HANDSHAKES[channel as usize][column].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a finished handshake of this kind resumed a session.
pub fn resumed(kind: Option<rustls::HandshakeKind>) -> bool {
    kind == Some(rustls::HandshakeKind::Resumed)
}

/// The handshakes counted so far: for the control and then the data channel, (full,
/// resumed, failed).
pub fn handshake_counts() -> [(Channel, [u64; 3]); 2] {
    let read = |row: &[std::sync::atomic::AtomicU64; 3]| {
        row.each_ref()
            .map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
    };
    [
        (Channel::Control, read(&HANDSHAKES[0])),
        (Channel::Data, read(&HANDSHAKES[1])),
    ]
}

/// The TLS server side of one control connection (see [`Tls::session_acceptors`]).
#[derive(Clone)]
pub struct SessionTls {
    /// The control connection's own handshake; it sends TLS 1.3 session tickets after the
    /// handshake, and serves the data connections that should get them too.
    pub control: tokio_rustls::TlsAcceptor,
    /// The same, but sends no tickets (see [`SessionTls::data`]).
    without_tickets: tokio_rustls::TlsAcceptor,
    tickets: Arc<WatchedTicketer>,
}

impl SessionTls {
    /// The acceptor for a data connection; `upload` when the client sends the data.
    ///
    /// TLS 1.3 servers send session tickets right after the handshake. A client that only
    /// writes on an upload never reads them, and when it closes a socket with unread bytes
    /// the kernel sends a RST and throws away what it has not sent yet: the upload loses
    /// its tail and ends with 426 (lftp does this; curl did until 7.74). So uploads get no
    /// tickets, unless this client has shown that it spends a ticket per connection (two or
    /// more resumptions, never one ticket twice, as rustls clients do); such a client needs
    /// new tickets to go on resuming, and reads them. Downloads and listings always carry
    /// tickets, which the client reads with the data.
    pub fn data(&self, upload: bool) -> tokio_rustls::TlsAcceptor {
        if upload && !self.tickets.client_spends_tickets() {
            self.without_tickets.clone()
        } else {
            self.control.clone()
        }
    }
}

/// A session's ticket key, which also notes how its client uses the tickets.
#[derive(Debug)]
struct WatchedTicketer {
    inner: Arc<dyn rustls::server::ProducesTickets>,
    seen: Mutex<TicketUse>,
}

impl WatchedTicketer {
    fn client_spends_tickets(&self) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spends_tickets()
    }
}

impl rustls::server::ProducesTickets for WatchedTicketer {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.inner.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.inner.decrypt(cipher)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        cipher.hash(&mut hasher);
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .note(hasher.finish());
        Some(plain)
    }
}

/// The tickets a session's client resumed with (bounded: the most recent ones only).
#[derive(Debug, Default)]
struct TicketUse {
    recent: VecDeque<u64>,
    resumptions: u32,
    reused: bool,
}

impl TicketUse {
    const REMEMBERED: usize = 32;

    fn note(&mut self, ticket: u64) {
        self.resumptions = self.resumptions.saturating_add(1);
        if self.recent.contains(&ticket) {
            self.reused = true;
            return;
        }
        if self.recent.len() == Self::REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back(ticket);
    }

    /// Two or more resumptions, each with a ticket not seen before.
    fn spends_tickets(&self) -> bool {
        self.resumptions >= 2 && !self.reused
    }
}

/// Which server certificate a client-role TLS connection accepts. The handshake signatures
/// are verified against that certificate either way, so the peer must hold its key.
#[derive(Debug)]
pub(crate) enum ServerCert {
    /// Any certificate. Used for the client role on FXP data connections (SSCN/CPSV): the
    /// other server is named only by the address the FXP client passed in PORT/PASV, so there
    /// is no name to verify its certificate against; like other FXP-capable servers, fxpd
    /// encrypts such a connection but does not authenticate the peer (which addresses may be
    /// connected to at all is still decided by the FXP policy).
    Any,
    /// Exactly this certificate, with the message for any other (the admin CLI pins the
    /// server's own `tls.certificate`).
    Pinned(CertificateDer<'static>, &'static str),
}

/// The certificate check of fxpd's client-role TLS connections (see [`ServerCert`]).
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    pub(crate) accept: ServerCert,
    pub(crate) provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.accept {
            ServerCert::Any => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            // SECURITY: only the holder of the pinned certificate's key gets through (the
            // handshake signature is checked below against this certificate).
            ServerCert::Pinned(pinned, _) if end_entity.as_ref() == pinned.as_ref() => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            ServerCert::Pinned(_, refusal) => Err(rustls::Error::General((*refusal).into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_use_tells_spending_clients_from_reusing_ones() {
        let mut spender = TicketUse::default();
        spender.note(1);
        assert!(!spender.spends_tickets(), "one resumption says nothing yet");
        spender.note(2);
        assert!(spender.spends_tickets());
        for t in 3..100 {
            spender.note(t);
        }
        assert!(spender.spends_tickets());
        assert!(spender.recent.len() <= TicketUse::REMEMBERED);

        let mut reuser = TicketUse::default();
        reuser.note(7);
        reuser.note(7);
        assert!(!reuser.spends_tickets());
        reuser.note(8);
        reuser.note(9);
        assert!(!reuser.spends_tickets(), "a reuse is never forgotten");
    }

    #[test]
    fn a_pinned_server_certificate_admits_only_itself() {
        use rustls::client::danger::ServerCertVerifier;
        let make = || {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            CertificateDer::from(cert.cert.der().to_vec())
        };
        let (pinned, other) = (make(), make());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = |accept: ServerCert, cert: &CertificateDer<'_>| {
            let verifier = ServerVerifier {
                accept,
                provider: provider.clone(),
            };
            let name = ServerName::try_from("localhost").unwrap();
            verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
        };
        let pin = || ServerCert::Pinned(pinned.clone(), "not the pinned certificate");
        assert!(check(pin(), &pinned).is_ok());
        let refused = check(pin(), &other).unwrap_err();
        assert!(
            refused.to_string().contains("not the pinned certificate"),
            "{refused}"
        );
        assert!(check(ServerCert::Any, &other).is_ok());
    }

    #[test]
    fn loads_a_generated_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
        let cfg = TlsConfig {
            certificate: Some(c),
            private_key: Some(k.clone()),
            ..TlsConfig::default()
        };
        assert!(Tls::load(&cfg).unwrap().is_some());
        std::fs::write(&k, "not a key").unwrap();
        assert!(Tls::load(&cfg).unwrap_err().contains("tls.private_key"));
        assert!(Tls::load(&TlsConfig::default()).unwrap().is_none());
    }
}
