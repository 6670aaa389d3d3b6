//! A small FTP client for one control connection (RFC 959), enough to drive FXP.
//!
//! A reader task turns the control stream into [`ServerReply`] values on a channel, so waiting for
//! a reply is cancel-safe: [`ControlClient::event`] can sit in a `select!` over two servers without
//! losing a half-read reply. Every other wait has the configured timeout. Data connections
//! are only opened for directory listings ([`ControlClient::mlsd`]); file data goes straight from
//! one server to the other.
//!
//! `connect.rs` opens the connection (and `AUTH TLS`), `listing.rs` opens our own data
//! connection for MLSD, `error.rs` names the server in every failure.

mod connect;
mod error;
mod listing;
#[cfg(test)]
mod tests;

pub use error::{ClientError, ErrorKind};

use crate::reply::{ReadError, ServerReply};
use crate::tls::TlsClient;
use crate::wire::{self, Features};
use rustls::pki_types::ServerName;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A control connection: plain TCP, or TLS after `AUTH TLS`.
trait ControlStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ControlStream for T {}

/// Which end of the copy a client talks to (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The server the file comes from.
    Source,
    /// The server the file goes to.
    Destination,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Source => "source",
            Role::Destination => "destination",
        })
    }
}

/// One logged-in (or logging-in) control connection.
pub struct ControlClient {
    /// Source or destination.
    pub role: Role,
    /// `host:port` as given in the URL.
    host_port: String,
    /// The control connection's peer: EPSV ports and listings connect here.
    peer: SocketAddr,
    /// Where commands go.
    writer: WriteHalf<Box<dyn ControlStream>>,
    /// Replies as the reader task parsed them, in order; a read error ends the stream.
    replies: mpsc::Receiver<Result<ServerReply, ReadError>>,
    /// The reader task (aborted on drop).
    reader: JoinHandle<()>,
    /// Limit for every single wait on this connection.
    timeout: Duration,
    /// Print the dialogue on stderr (`--verbose`).
    trace: bool,
    /// The 220 greeting (tells fxpd, vsftpd, IIS... apart for messages).
    pub greeting: ServerReply,
    /// What FEAT announced (empty until [`ControlClient::load_features`]).
    pub features: Features,
    /// The TLS client and the server's name, when the control connection is protected.
    tls: Option<(TlsClient, ServerName<'static>)>,
    /// Data connections are protected (`PROT P` was accepted): listings use TLS too.
    pub protected: bool,
    /// The command that opens a passive listener on IPv4: `PASV`, or `CPSV` when this
    /// server is to be the TLS client on the data connection.
    pub pasv_command: &'static str,
    /// `SSCN ON` is in effect: this server is the TLS client on every data connection.
    pub sscn_on: bool,
}

impl Drop for ControlClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl ControlClient {
    /// Whether the control connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// E.g. "the destination 127.0.0.3:2121".
    pub fn name(&self) -> String {
        format!("the {} {}", self.role, self.host_port)
    }

    /// The control connection's peer address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The per-wait timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// An error of this client.
    pub fn error(&self, kind: ErrorKind) -> ClientError {
        ClientError {
            server: self.name(),
            kind,
        }
    }

    /// A [`ErrorKind::Rejected`] error for `command`.
    pub fn rejected(&self, command: &str, reply: ServerReply) -> ClientError {
        self.error(ErrorKind::Rejected {
            command: mask(command),
            reply,
        })
    }

    /// Sends one command line (CRLF is added).
    pub async fn send(&mut self, line: &str) -> Result<(), ClientError> {
        if self.trace {
            eprintln!("fxpd copy: {} -> {}", self.role, mask(line));
        }
        let bytes = format!("{line}\r\n");
        match tokio::time::timeout(self.timeout, self.writer.write_all(bytes.as_bytes())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.error(ErrorKind::Write(e))),
            Err(_) => Err(self.error(ErrorKind::Timeout(format!("sending {}", mask(line))))),
        }
    }

    /// The next reply, without a timeout; cancel-safe, for `select!`. A read error is
    /// returned once; after it the connection is closed.
    pub async fn event(&mut self) -> Result<ServerReply, ClientError> {
        match self.replies.recv().await {
            Some(Ok(reply)) => {
                if self.trace {
                    for line in &reply.lines {
                        eprintln!("fxpd copy: {} <- {line}", self.role);
                    }
                }
                Ok(reply)
            }
            Some(Err(e)) => Err(self.error(ErrorKind::Read(e))),
            None => Err(self.error(ErrorKind::Read(ReadError::Closed))),
        }
    }

    /// The next reply within the timeout; `what` names the awaited reply for the error.
    pub async fn next_reply(&mut self, what: &str) -> Result<ServerReply, ClientError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.event()).await {
            Ok(r) => r,
            Err(_) => Err(self.error(ErrorKind::Timeout(format!(
                "no reply to {} within {} s",
                mask(what),
                timeout.as_secs()
            )))),
        }
    }

    /// The next reply within `limit`, or `None` when none came.
    pub async fn reply_within(&mut self, limit: Duration) -> Result<Option<ServerReply>, ClientError> {
        match tokio::time::timeout(limit, self.event()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Sends `line` and returns the first reply (which may be preliminary).
    pub async fn command(&mut self, line: &str) -> Result<ServerReply, ClientError> {
        self.send(line).await?;
        self.next_reply(line).await
    }

    /// Sends `line` and requires a reply with one of the `ok` codes.
    pub async fn expect(&mut self, line: &str, ok: &[u16]) -> Result<ServerReply, ClientError> {
        let reply = self.command(line).await?;
        if ok.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(self.rejected(line, reply))
        }
    }

    /// USER/PASS (RFC 959 section 4.1.1); ACCT is not supported.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        let reply = self.command(&format!("USER {user}")).await?;
        match reply.code {
            230 => Ok(()),
            331 => {
                self.expect(&format!("PASS {password}"), &[230, 202]).await?;
                Ok(())
            }
            _ => Err(self.rejected(&format!("USER {user}"), reply)),
        }
    }

    /// FEAT (RFC 2389) into [`ControlClient::features`]; then `OPTS UTF8 ON` where announced.
    pub async fn load_features(&mut self) -> Result<(), ClientError> {
        let reply = self.command("FEAT").await?;
        self.features = wire::parse_feat(&reply);
        if self.features.utf8 {
            // Best effort: paths are sent as UTF-8 either way.
            self.command("OPTS UTF8 ON").await?;
        }
        Ok(())
    }

    /// Opens a passive listener on the server: EPSV on an IPv6 control connection (the
    /// host is the control peer, RFC 2428), PASV otherwise. Returns the address to give
    /// the other server.
    pub async fn passive(&mut self) -> Result<SocketAddr, ClientError> {
        self.open_passive(self.pasv_command).await
    }

    /// [`ControlClient::passive`] with `command` (`PASV` or `CPSV`) for IPv4.
    async fn open_passive(&mut self, command: &'static str) -> Result<SocketAddr, ClientError> {
        if self.peer.is_ipv6() {
            let reply = self.expect("EPSV", &[229]).await?;
            let port = wire::parse_epsv(reply.first_text()).ok_or_else(|| self.rejected("EPSV", reply))?;
            return Ok(SocketAddr::new(self.peer.ip(), port));
        }
        let reply = self.expect(command, &[227]).await?;
        let addr = wire::parse_pasv(&reply.text()).ok_or_else(|| self.rejected(command, reply))?;
        // An unspecified address means "where you reached me".
        let ip = if addr.ip().is_unspecified() {
            self.peer.ip()
        } else {
            IpAddr::V4(*addr.ip())
        };
        Ok(SocketAddr::new(ip, addr.port()))
    }

    /// PORT (IPv4) or EPRT (IPv6) naming `target`; the reply is returned as it is, for
    /// the caller to judge (a refusal there is an FXP policy decision).
    pub async fn active(&mut self, target: SocketAddr) -> Result<(String, ServerReply), ClientError> {
        let line = match target {
            SocketAddr::V4(v4) => wire::port_command(v4),
            SocketAddr::V6(_) => wire::eprt_command(target),
        };
        let reply = self.command(&line).await?;
        Ok((line, reply))
    }

    /// Sends ABOR and brings the connection back in step: whatever the transfer and the
    /// abort answer (426, 225, 226, a late STAT reply) is read and returned
    /// ([`ControlClient::resync`]).
    pub async fn abort(&mut self) -> Result<Vec<ServerReply>, ClientError> {
        self.send("ABOR").await?;
        self.resync().await
    }

    /// Sends NOOP and reads every reply up to its 200, so the next command gets its own
    /// reply even after an aborted transfer or an unanswered STAT. Returns the replies
    /// that came before the 200.
    pub async fn resync(&mut self) -> Result<Vec<ServerReply>, ClientError> {
        self.send("NOOP").await?;
        let mut skipped = Vec::new();
        for _ in 0..32 {
            let reply = self.next_reply("NOOP").await?;
            if reply.code == 200 {
                return Ok(skipped);
            }
            skipped.push(reply);
        }
        Err(self.error(ErrorKind::Read(ReadError::Malformed(
            "too many replies while waiting for NOOP".into(),
        ))))
    }

    /// QUIT, best effort and briefly.
    pub async fn quit(mut self) {
        if self.send("QUIT").await.is_ok() {
            let _ = self.reply_within(Duration::from_secs(2)).await;
        }
    }

    /// Whether `path` is a directory the server lets us enter; returns to `home` after.
    pub async fn is_dir(&mut self, path: &str, home: &str) -> Result<bool, ClientError> {
        let reply = self.command(&format!("CWD {path}")).await?;
        if reply.class() != 2 {
            return Ok(false);
        }
        self.expect(&format!("CWD {home}"), &[250, 200]).await?;
        Ok(true)
    }

    /// The current directory (PWD, RFC 959: `257 "<dir>" ...` with `""` for a quote).
    pub async fn pwd(&mut self) -> Result<String, ClientError> {
        let reply = self.expect("PWD", &[257]).await?;
        let text = reply.first_text();
        let start = text
            .find('"')
            .ok_or_else(|| self.rejected("PWD", reply.clone()))?;
        let mut out = String::new();
        let mut chars = text[start + 1..].chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.next_if_eq(&'"').is_some() {
                    out.push('"');
                } else {
                    return Ok(out);
                }
            } else {
                out.push(c);
            }
        }
        Err(self.rejected("PWD", reply))
    }
}

/// The command with a password replaced by `****` (for traces and messages).
fn mask(line: &str) -> String {
    match line.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("PASS ") => "PASS ****".to_owned(),
        _ => line.to_owned(),
    }
}
