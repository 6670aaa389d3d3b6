//! A failed client operation, naming the server it talked to.

use crate::reply::{ReadError, ServerReply};
use std::fmt;
use std::io;

/// A failed client operation, naming the server.
#[derive(Debug)]
pub struct ClientError {
    /// E.g. "the source 127.0.0.2:2121".
    pub server: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong talking to a server.
#[derive(Debug)]
pub enum ErrorKind {
    /// The host name did not resolve.
    Resolve(String),
    /// No TCP connection.
    Connect(io::Error),
    /// No reply in time; the text says what was awaited.
    Timeout(String),
    /// The control connection failed or the server broke the protocol.
    Read(ReadError),
    /// Sending a command failed.
    Write(io::Error),
    /// The server answered `command` with a negative or unexpected reply.
    Rejected {
        /// The command as sent (a password is masked).
        command: String,
        /// The server's answer.
        reply: ServerReply,
    },
    /// A data connection (directory listing) failed.
    Data(String),
    /// The TLS handshake on the control connection failed (a certificate that does not
    /// check, for instance).
    Tls(String),
}

impl ClientError {
    /// The reply that rejected a command, if that is what happened.
    pub fn reply(&self) -> Option<&ServerReply> {
        match &self.kind {
            ErrorKind::Rejected { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = &self.server;
        match &self.kind {
            ErrorKind::Resolve(why) => write!(f, "cannot resolve {server}: {why}"),
            ErrorKind::Connect(e) => write!(f, "cannot connect to {server}: {e}"),
            ErrorKind::Timeout(what) => write!(f, "{server} did not answer in time ({what})"),
            ErrorKind::Read(e) => write!(f, "{server}: {e}"),
            ErrorKind::Write(e) => write!(f, "cannot send to {server}: {e}"),
            ErrorKind::Rejected { command, reply } => {
                write!(f, "{server} answered `{command}` with `{reply}`")
            }
            ErrorKind::Data(why) => write!(f, "{server}: {why}"),
            ErrorKind::Tls(why) => write!(f, "TLS with {server} failed: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}
