//! TLS for `ftps://` (explicit FTPS, RFC 4217): the client configuration that checks the
//! servers' certificates, and the choice of who is the TLS client on the FXP data
//! connection.
//!
//! SECURITY: there are no built-in root certificates. A certificate is trusted only through
//! `--ca-file PEM` (a CA, or the server's own self-signed certificate); `--insecure` skips
//! the check (the traffic is encrypted but the servers are not authenticated). With neither,
//! `ftps://` is a configuration error.
//!
//! In FXP both data ends are servers, and one of them must play the TLS client: `SSCN ON`
//! (the "client method") on the source makes it the TLS client whatever the TCP direction;
//! failing that, `CPSV` on the destination makes the destination the TLS client (it is then
//! the passive side, so the roles are not reversed). The TLS-server side cannot get the
//! session resumption it may require from the other server (fxpd:
//! `tls.require_data_resumption = false` on that side).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// How certificates are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust<'a> {
    /// Trust the certificates in this PEM file (`--ca-file`).
    CaFile(&'a Path),
    /// Do not check (`--insecure`).
    Insecure,
}

/// The TLS client used on control connections (and on our own listing connections).
#[derive(Clone)]
pub struct TlsClient {
    /// The connector (its session cache lets listing connections resume the control
    /// connection's session, as servers may require).
    pub connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Builds the client configuration; the error is one clause for a usage error.
    pub fn new(trust: Trust<'_>) -> Result<TlsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let config = match trust {
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
                .with_no_client_auth(),
            Trust::CaFile(path) => {
                let what = |e: &dyn std::fmt::Display| format!("--ca-file {}: {e}", path.display());
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| what(&e))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| what(&e))?;
                let mut roots = rustls::RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(what(&"no usable certificate in the file"));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// The name a server's certificate must carry: its host name or IP address.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
        ServerName::try_from(host.to_owned())
            .map_err(|e| format!("`{host}` cannot be checked against a certificate: {e}"))
    }
}

/// `--insecure`: any certificate is accepted, but the handshake signatures are still checked,
/// so the connection is encrypted with the key of whoever presented the certificate.
#[derive(Debug)]
struct NoCertificateCheck(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // SECURITY: no check, as --insecure asks; its help text says the servers are not authenticated.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
