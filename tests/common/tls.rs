//! TLS for the harness (RFC 4217): a self-signed [`Cert`] per test, rustls client
//! configurations that trust exactly that certificate, TLS data streams, and the TLS half of
//! [`Ctrl`]: `AUTH TLS`, implicit FTPS, `PBSZ`/`PROT` and protected passive transfers whose
//! data connections resume the control connection's session.

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme, StreamOwned,
    SupportedProtocolVersion,
};

use super::ctrl::Conn;
use super::*;

/// The name the test's TLS client sends (SNI) and the name in the generated certificates.
pub const TLS_NAME: &str = "localhost";

/// How long a protected transfer's data and final reply may take.
const TRANSFER_WITHIN: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Certificates and client configurations
// ---------------------------------------------------------------------------------------------

/// A self-signed certificate for [`TLS_NAME`] and its key, as PEM files in their own tempdir.
pub struct Cert {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// DER of the certificate: the test client accepts exactly this certificate.
    pub der: Vec<u8>,
}

impl Cert {
    pub fn new() -> Cert {
        let dir = tempfile::Builder::new()
            .prefix("fxpd-tls-cert-")
            .tempdir()
            .expect("tempdir");
        let ck = rcgen::generate_simple_self_signed(vec![TLS_NAME.into()]).expect("rcgen");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        fs::write(&cert, ck.cert.pem()).unwrap();
        fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        Cert {
            der: ck.cert.der().to_vec(),
            _dir: dir,
            cert,
            key,
        }
    }

    /// The `[tls]` table naming this certificate, with `extra` keys (e.g. `require = "login"`).
    pub fn tls_table(&self, extra: &str) -> String {
        format!(
            "[tls]\ncertificate = {}\nprivate_key = {}\n{extra}\n",
            toml_str(&self.cert),
            toml_str(&self.key)
        )
    }
}

/// `p` as a TOML string literal.
fn toml_str(p: &Path) -> String {
    toml::Value::String(p.to_str().expect("UTF-8 temp path").to_owned()).to_string()
}

/// Accepts exactly the certificate the test generated (signatures are still verified).
#[derive(Debug)]
struct PinnedCert {
    der: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server did not present the certificate the test configured".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration trusting `cert` only, with rustls' safe default versions. Each
/// configuration has its own session store: connections made with the same configuration
/// resume each other's sessions (as an FTPS client resumes its control session on data
/// connections) unless `resume` is false.
pub fn client_config(cert: &Cert, resume: bool) -> Arc<ClientConfig> {
    with_resumption(client_config_base(cert, rustls::DEFAULT_VERSIONS), resume)
}

/// A client configuration trusting `cert`, speaking only `version` (see [`client_config`]).
pub fn client_config_version(
    cert: &Cert,
    resume: bool,
    version: &'static SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    with_resumption(client_config_base(cert, &[version]), resume)
}

/// A client configuration trusting `cert` whose session store is `store`.
pub fn client_config_with_store(
    cert: &Cert,
    store: Arc<dyn rustls::client::ClientSessionStore>,
) -> Arc<ClientConfig> {
    let mut config = client_config_base(cert, rustls::DEFAULT_VERSIONS);
    config.resumption = Resumption::store(store);
    Arc::new(config)
}

fn with_resumption(mut config: ClientConfig, resume: bool) -> Arc<ClientConfig> {
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

fn client_config_base(cert: &Cert, versions: &[&'static SupportedProtocolVersion]) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert {
            der: cert.der.clone(),
            provider,
        }))
        .with_no_client_auth()
}

// ---------------------------------------------------------------------------------------------
// TLS streams
// ---------------------------------------------------------------------------------------------

/// A client TLS stream over TCP (blocking).
pub type TlsSock = StreamOwned<ClientConnection, TcpStream>;

/// TLS client handshake on `tcp` (completed before returning).
pub fn tls_connect(config: &Arc<ClientConfig>, tcp: TcpStream) -> io::Result<TlsSock> {
    let name = ServerName::try_from(TLS_NAME).expect("server name");
    let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Whether a finished client handshake resumed an earlier session.
pub fn resumed(s: &TlsSock) -> bool {
    s.conn.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// How a TLS data stream ended.
pub struct Received {
    pub data: Vec<u8>,
    /// The server sent close_notify (a truncation would be detectable).
    pub clean_close: bool,
    /// The read error that ended the stream, if it was not a clean close.
    pub error: Option<String>,
}

/// Reads a TLS stream to its end; never panics on a read error (a thief's read may fail).
pub fn read_tls_to_end(s: &mut TlsSock, within: Duration) -> Received {
    let deadline = Instant::now() + within;
    let mut data = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Received {
                data,
                clean_close: false,
                error: Some(format!("not finished within {within:?}")),
            };
        }
        s.sock.set_read_timeout(Some(left.min(IO_TIMEOUT))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => {
                return Received {
                    data,
                    clean_close: true,
                    error: None,
                }
            }
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Received {
                    data,
                    clean_close: false,
                    error: Some(e.to_string()),
                }
            }
        }
    }
}

/// Writes all of `data`, sends close_notify, closes the sending direction and reads until
/// the server closes; returns how the server closed (with or without its close_notify).
pub fn write_tls_and_close(s: &mut TlsSock, data: &[u8]) -> Received {
    s.write_all(data)
        .unwrap_or_else(|e| panic!("writing the TLS data connection: {e}"));
    s.conn.send_close_notify();
    s.flush().unwrap_or_else(|e| panic!("flushing close_notify: {e}"));
    let _ = s.sock.shutdown(Shutdown::Write);
    // Read until the server closes: closing a socket with unread bytes in its receive buffer
    // (the TLS 1.3 session tickets the server sent after the handshake) makes the kernel send
    // a RST, which can destroy upload data the server has not read yet.
    read_tls_to_end(s, Duration::from_secs(30))
}

// ---------------------------------------------------------------------------------------------
// The TLS half of the control client
// ---------------------------------------------------------------------------------------------

impl Ctrl {
    /// Implicit FTPS: TLS first, then the 220 greeting over TLS.
    pub fn connect_implicit(addr: SocketAddr, config: &Arc<ClientConfig>) -> Ctrl {
        Ctrl::implicit_over(Ctrl::tcp_connect(addr), b"", config)
    }

    /// Implicit FTPS over `stream` after writing `preamble` (e.g. a PROXY header): the TLS
    /// handshake, then the 220 greeting over TLS.
    pub fn implicit_over(stream: TcpStream, preamble: &[u8], config: &Arc<ClientConfig>) -> Ctrl {
        let mut c = Ctrl::over(stream, preamble);
        let tcp = c.stream.try_clone().unwrap();
        let tls = tls_connect(config, tcp)
            .unwrap_or_else(|e| panic!("implicit TLS handshake with {}: {e}", c.peer_addr()));
        c.reader = BufReader::new(Conn::Tls(Box::new(tls)));
        c.tls = Some(config.clone());
        c.greeted()
    }

    /// Whether the control connection is protected.
    pub fn is_tls(&self) -> bool {
        matches!(self.reader.get_ref(), Conn::Tls(_))
    }

    /// `AUTH TLS` (asserts 234) and the handshake with `config`, which protected data
    /// connections use afterwards.
    pub fn auth_tls(&mut self, config: &Arc<ClientConfig>) {
        let r = self.cmd("AUTH TLS");
        assert_eq!(r.code, 234, "AUTH TLS -> {r}");
        assert!(
            self.reader.buffer().is_empty(),
            "the server sent clear text after 234"
        );
        let old = std::mem::replace(&mut self.reader, BufReader::new(Conn::Gone));
        let Conn::Plain(tcp) = old.into_inner() else {
            panic!("AUTH TLS on a connection that is not clear text")
        };
        let tls = tls_connect(config, tcp).unwrap_or_else(|e| panic!("TLS handshake after AUTH TLS: {e}"));
        self.reader = BufReader::new(Conn::Tls(Box::new(tls)));
        self.tls = Some(config.clone());
    }

    /// `PBSZ 0` (asserts 200 naming `PBSZ=0`), `PROT P`, `TYPE I`.
    pub fn protect_data(&mut self) {
        let r = self.expect("PBSZ 0", 200);
        assert!(r.text().contains("PBSZ=0"), "PBSZ 0 -> {r}");
        self.expect("PROT P", 200);
        self.expect("TYPE I", 200);
    }

    /// The final reply of a running transfer, waiting up to `within`.
    pub fn final_reply(&mut self, within: Duration) -> Reply {
        self.set_read_timeout(within);
        let r = self
            .try_read_reply()
            .unwrap_or_else(|e| panic!("no final reply within {within:?}: {e}"));
        self.set_read_timeout(IO_TIMEOUT);
        r
    }

    /// A protected data connection over `tcp` that resumes this control connection's session.
    /// The TCP connection must be made before the transfer command, the handshake after it.
    pub fn data_handshake(&self, tcp: TcpStream) -> TlsSock {
        let config = self
            .tls
            .as_ref()
            .expect("a protected data connection needs AUTH TLS or implicit TLS first");
        let s =
            tls_connect(config, tcp).unwrap_or_else(|e| panic!("TLS handshake on the data connection: {e}"));
        assert!(
            resumed(&s),
            "test client bug: the data connection did not resume the control session"
        );
        s
    }

    /// Passive, protected `RETR name`; asserts 150, the server's close_notify and 226,
    /// returns the bytes.
    pub fn retr_protected(&mut self, name: &str) -> Vec<u8> {
        let line = format!("RETR {name}");
        let tcp = self.start_passive(&line);
        let mut s = self.data_handshake(tcp);
        let got = read_tls_to_end(&mut s, TRANSFER_WITHIN);
        // Close at once, as clients do: the server reads until the client has closed.
        drop(s);
        assert!(
            got.clean_close,
            "RETR {name}: the data connection ended without close_notify after {} bytes: {:?}",
            got.data.len(),
            got.error
        );
        Ctrl::assert_transfer_end(&line, &self.final_reply(TRANSFER_WITHIN));
        got.data
    }

    /// Passive, protected `STOR name`; asserts 150 and 226. Returns how the server closed
    /// the data connection.
    pub fn stor_protected(&mut self, name: &str, data: &[u8]) -> Received {
        let line = format!("STOR {name}");
        let tcp = self.start_passive(&line);
        let mut s = self.data_handshake(tcp);
        let closed = write_tls_and_close(&mut s, data);
        drop(s);
        Ctrl::assert_transfer_end(&line, &self.final_reply(TRANSFER_WITHIN));
        closed
    }

    /// Passive, protected `LIST`; asserts 150 and 226, returns the text.
    pub fn list_protected(&mut self) -> String {
        let tcp = self.start_passive("LIST");
        let mut s = self.data_handshake(tcp);
        let got = read_tls_to_end(&mut s, TRANSFER_WITHIN);
        drop(s);
        assert!(got.error.is_none(), "LIST data: {:?}", got.error);
        Ctrl::assert_transfer_end("LIST", &self.final_reply(TRANSFER_WITHIN));
        String::from_utf8_lossy(&got.data).into_owned()
    }
}
