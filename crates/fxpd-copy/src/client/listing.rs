//! Directory listings over a data connection of our own (the only data the client reads).

use super::{ClientError, ControlClient, ControlStream, ErrorKind};
use crate::wire::{self, MlsdEntry};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest directory listing [`ControlClient::mlsd`] accepts.
const MAX_LISTING: usize = 64 * 1024 * 1024;

impl ControlClient {
    /// Lists a directory with MLSD (RFC 3659 section 7) over a passive data connection of
    /// our own. SECURITY: the data connection goes to the control peer's address whatever
    /// address the PASV reply names, so a server cannot point us at a third host.
    pub async fn mlsd(&mut self, path: &str) -> Result<Vec<MlsdEntry>, ClientError> {
        let announced = self.open_passive("PASV").await?;
        let addr = SocketAddr::new(self.peer.ip(), announced.port());
        let data = match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(self.error(ErrorKind::Data(format!("listing connection to {addr}: {e}"))))
            }
            Err(_) => {
                return Err(self.error(ErrorKind::Data(format!("listing connection to {addr} timed out"))))
            }
        };
        let line = if path.is_empty() {
            "MLSD".to_owned()
        } else {
            format!("MLSD {path}")
        };
        // With SSCN ON the server would be the TLS client on our listing connection too.
        if self.sscn_on {
            self.expect("SSCN OFF", &[200]).await?;
        }
        self.send(&line).await?;
        // PROT P: the listing connection is TLS too, resuming the control connection's
        // session. The server starts its side of the handshake once it has the command.
        let mut data: Box<dyn ControlStream> = match (&self.tls, self.protected) {
            (Some((tls, name)), true) => {
                match tokio::time::timeout(self.timeout, tls.connector.connect(name.clone(), data)).await {
                    Ok(Ok(s)) => Box::new(s),
                    Ok(Err(e)) => {
                        return Err(self.error(ErrorKind::Data(format!("TLS on the listing connection: {e}"))))
                    }
                    Err(_) => {
                        return Err(
                            self.error(ErrorKind::Data("TLS on the listing connection timed out".into()))
                        )
                    }
                }
            }
            _ => Box::new(data),
        };
        let reply = self.next_reply(&line).await?;
        if !reply.is_preliminary() {
            return Err(self.rejected(&line, reply));
        }
        let mut body = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match tokio::time::timeout(self.timeout, data.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(self.error(ErrorKind::Data(format!("reading the listing: {e}")))),
                Err(_) => return Err(self.error(ErrorKind::Data("the listing stalled".into()))),
            };
            if n == 0 {
                break;
            }
            if body.len() + n > MAX_LISTING {
                return Err(self.error(ErrorKind::Data(format!(
                    "the listing of {path} is larger than {MAX_LISTING} bytes"
                ))));
            }
            body.extend_from_slice(&buf[..n]);
        }
        // Close our end before waiting for 226: a server may wait for it (fxpd drains the
        // connection until the peer closes, so that no reset can destroy unread data).
        let _ = tokio::time::timeout(self.timeout, data.shutdown()).await;
        drop(data);
        let done = self.next_reply(&line).await?;
        if !done.is_completion() {
            return Err(self.rejected(&line, done));
        }
        if self.sscn_on {
            self.expect("SSCN ON", &[200]).await?;
        }
        let text = String::from_utf8_lossy(&body);
        Ok(text
            .lines()
            .filter_map(|l| wire::parse_mlsd_line(l.trim_end_matches('\r')))
            .collect())
    }
}
