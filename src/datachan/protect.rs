//! TLS on data connections (RFC 4217 sections 7-9): which role fxpd takes, whether the
//! connection may be used at all, and the check that it comes from the control connection's
//! own client.
//!
//! A session that negotiated `PROT P` never gets a clear-text data connection: when TLS is
//! no longer available (a reload removed `[tls]`), [`DataTls`] refuses before anything is
//! opened and again when the transfer is about to start (fail closed). In the server role a
//! protected data connection must resume the control connection's TLS session
//! (`tls.require_data_resumption`); in the client role (`SSCN ON`, `CPSV`) fxpd connects to
//! another server's passive port and is the TLS client there.

use super::DataError;
use crate::tls::{Channel, SessionTls, Tls};
use rustls::HandshakeKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

/// `PROT P` is in force but TLS is not available: the transfer is refused, never sent in clear
/// text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsUnavailable;

/// What a session has to protect its data connections with.
#[derive(Clone, Copy)]
pub struct DataTls<'a> {
    /// `PROT P`: data connections are protected.
    pub private: bool,
    /// The server's TLS settings in force now; `None` when TLS is not configured.
    pub tls: Option<&'a Arc<Tls>>,
    /// The control connection's own acceptors, once its TLS is on; data connections resume
    /// sessions from them.
    pub acceptors: Option<&'a SessionTls>,
}

impl<'a> DataTls<'a> {
    /// The TLS to protect with: `None` for clear text (`PROT C`).
    pub fn check(&self) -> Result<Option<(&'a Arc<Tls>, &'a SessionTls)>, TlsUnavailable> {
        if !self.private {
            return Ok(None);
        }
        match (self.tls, self.acceptors) {
            (Some(tls), Some(acceptors)) => Ok(Some((tls, acceptors))),
            // SECURITY: fail closed. A session that negotiated PROT P never gets a clear-text
            // data connection, whatever the configuration became since.
            _ => Err(TlsUnavailable),
        }
    }

    /// How the next data connection is protected: `None` for clear text, else the TLS role
    /// (`client` after SSCN ON or CPSV, server otherwise). `upload`: the client sends.
    pub fn protection(&self, upload: bool, client: bool) -> Result<Option<Protection>, TlsUnavailable> {
        Ok(self.check()?.map(|(tls, acceptors)| Protection {
            require_resumption: tls.config.require_data_resumption,
            acceptor: acceptors.data(upload),
            tls: tls.clone(),
            client,
        }))
    }
}

/// The TLS side of a protected data connection.
pub struct Protection {
    tls: Arc<Tls>,
    /// The control connection's own acceptor: resumption proves the same client.
    acceptor: tokio_rustls::TlsAcceptor,
    /// fxpd is the TLS client (SSCN ON / CPSV): it connects to another server's passive port.
    client: bool,
    /// The client must resume the control connection's TLS session (server role only).
    require_resumption: bool,
}

impl Protection {
    /// Run the handshake on a connected data socket within `timeout`.
    pub(super) async fn secure(
        self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, DataError> {
        let handshake = async {
            if self.client {
                let peer = stream.peer_addr()?;
                Ok(TlsStream::Client(
                    self.tls.connector.connect(Tls::peer_name(peer), stream).await?,
                ))
            } else {
                let tls = self.acceptor.accept(stream).await?;
                // SECURITY: a data connection that does not resume the control connection's TLS
                // session may come from a third party who won the race to the passive port.
                if self.require_resumption && tls.get_ref().1.handshake_kind() != Some(HandshakeKind::Resumed)
                {
                    return Err(std::io::Error::other(
                        "the data connection did not resume the control connection's TLS session",
                    ));
                }
                Ok(TlsStream::Server(tls))
            }
        };
        let result = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(DataError::Tls(e.to_string())),
            Err(_) => Err(DataError::Timeout),
        };
        let outcome = result.as_ref().ok().map(|stream| match stream {
            TlsStream::Client(c) => crate::tls::resumed(c.get_ref().1.handshake_kind()),
            TlsStream::Server(s) => crate::tls::resumed(s.get_ref().1.handshake_kind()),
        });
        crate::tls::count_handshake(Channel::Data, outcome);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_p_without_tls_fails_closed() {
        let gone = DataTls {
            private: true,
            tls: None,
            acceptors: None,
        };
        assert_eq!(gone.check().err(), Some(TlsUnavailable));
        assert!(matches!(gone.protection(true, false), Err(TlsUnavailable)));
        assert!(matches!(gone.protection(false, true), Err(TlsUnavailable)));
        let clear = DataTls {
            private: false,
            ..gone
        };
        assert!(matches!(clear.check(), Ok(None)));
        assert!(matches!(clear.protection(true, false), Ok(None)));
    }
}
