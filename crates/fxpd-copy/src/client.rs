//! A small FTP client for one control connection (RFC 959), enough to drive FXP.
//!
//! A reader task turns the control stream into [`Reply`] values on a channel, so waiting for
//! a reply is cancel-safe: [`Client::event`] can sit in a `select!` over two servers without
//! losing a half-read reply. Every other wait has the configured timeout. Data connections
//! are only opened for directory listings ([`Client::mlsd`]); file data goes straight from
//! one server to the other.

use super::reply::{read_reply, ReadError, Reply};
use super::tls::TlsClient;
use super::url::FtpUrl;
use super::wire::{self, Features, MlsdEntry};
use rustls::pki_types::ServerName;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The largest directory listing [`Client::mlsd`] accepts.
const MAX_LISTING: usize = 64 * 1024 * 1024;

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
        reply: Reply,
    },
    /// A data connection (directory listing) failed.
    Data(String),
    /// The TLS handshake on the control connection failed (a certificate that does not
    /// check, for instance).
    Tls(String),
}

impl ClientError {
    /// The reply that rejected a command, if that is what happened.
    pub fn reply(&self) -> Option<&Reply> {
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

/// One logged-in (or logging-in) control connection.
pub struct Client {
    /// Source or destination.
    pub role: Role,
    /// `host:port` as given in the URL.
    host_port: String,
    /// The control connection's peer: EPSV ports and listings connect here.
    peer: SocketAddr,
    writer: WriteHalf<Box<dyn ControlStream>>,
    replies: mpsc::Receiver<Result<Reply, ReadError>>,
    reader: JoinHandle<()>,
    /// Limit for every single wait on this connection.
    timeout: Duration,
    /// Print the dialogue on stderr (`--verbose`).
    trace: bool,
    /// The 220 greeting (tells fxpd, vsftpd, IIS... apart for messages).
    pub greeting: Reply,
    /// What FEAT announced (empty until [`Client::load_features`]).
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

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    /// Connects to the URL's host and port and reads the greeting (plain FTP).
    pub async fn connect(
        role: Role,
        url: &FtpUrl,
        timeout: Duration,
        trace: bool,
    ) -> Result<Client, ClientError> {
        Client::connect_with(role, url, timeout, trace, None).await
    }

    /// Connects and reads the greeting; with `tls`, upgrades the control connection with
    /// `AUTH TLS` (RFC 4217 section 4) and checks the server's certificate against the URL's
    /// host.
    pub async fn connect_with(
        role: Role,
        url: &FtpUrl,
        timeout: Duration,
        trace: bool,
        tls: Option<&TlsClient>,
    ) -> Result<Client, ClientError> {
        let host_port = url.host_port();
        let server = format!("the {role} {host_port}");
        let err = |kind| ClientError {
            server: server.clone(),
            kind,
        };
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout(timeout, tokio::net::lookup_host((url.host.as_str(), url.port))).await
            {
                Err(_) => return Err(err(ErrorKind::Resolve("timed out".into()))),
                Ok(Err(e)) => return Err(err(ErrorKind::Resolve(e.to_string()))),
                Ok(Ok(a)) => a.collect(),
            };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut stream = None;
        for addr in addrs {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            }
        }
        let stream = stream.ok_or_else(|| err(ErrorKind::Connect(last)))?;
        let peer = stream.peer_addr().map_err(|e| err(ErrorKind::Connect(e)))?;
        // Commands must leave at once (Nagle would hold a STAT behind an unacknowledged one).
        let _ = stream.set_nodelay(true);
        // The greeting and AUTH TLS are read here, before the reader task owns the stream.
        let mut early = BufReader::new(stream);
        let greeting = loop {
            let reply = match tokio::time::timeout(timeout, read_reply(&mut early)).await {
                Err(_) => return Err(err(ErrorKind::Timeout("no greeting".into()))),
                Ok(Err(e)) => return Err(err(ErrorKind::Read(e))),
                Ok(Ok(r)) => r,
            };
            if trace {
                for line in &reply.lines {
                    eprintln!("fxpd copy: {role} <- {line}");
                }
            }
            // RFC 959: 120 "ready in n minutes" may precede the 220.
            match reply.code {
                120 => continue,
                220 => break reply,
                _ => {
                    return Err(err(ErrorKind::Rejected {
                        command: "(connect)".into(),
                        reply,
                    }))
                }
            }
        };
        let (stream, tls) = match tls {
            None => (Box::new(early.into_inner()) as Box<dyn ControlStream>, None),
            Some(tls) => {
                let name = TlsClient::server_name(&url.host).map_err(|why| err(ErrorKind::Tls(why)))?;
                if trace {
                    eprintln!("fxpd copy: {role} -> AUTH TLS");
                }
                match tokio::time::timeout(timeout, early.get_mut().write_all(b"AUTH TLS\r\n")).await {
                    Err(_) => return Err(err(ErrorKind::Timeout("sending AUTH TLS".into()))),
                    Ok(Err(e)) => return Err(err(ErrorKind::Write(e))),
                    Ok(Ok(())) => {}
                }
                let reply = match tokio::time::timeout(timeout, read_reply(&mut early)).await {
                    Err(_) => return Err(err(ErrorKind::Timeout("no reply to AUTH TLS".into()))),
                    Ok(Err(e)) => return Err(err(ErrorKind::Read(e))),
                    Ok(Ok(r)) => r,
                };
                if trace {
                    for line in &reply.lines {
                        eprintln!("fxpd copy: {role} <- {line}");
                    }
                }
                if reply.code != 234 {
                    return Err(err(ErrorKind::Rejected {
                        command: "AUTH TLS".into(),
                        reply,
                    }));
                }
                // SECURITY: nothing may arrive before the handshake; bytes buffered now
                // would be unauthenticated text mistaken for protected replies.
                if !early.buffer().is_empty() {
                    return Err(err(ErrorKind::Tls("the server sent data after 234".into())));
                }
                let handshake = tls.connector.connect(name.clone(), early.into_inner());
                let stream = match tokio::time::timeout(timeout, handshake).await {
                    Err(_) => return Err(err(ErrorKind::Timeout("the TLS handshake".into()))),
                    Ok(Err(e)) => return Err(err(ErrorKind::Tls(e.to_string()))),
                    Ok(Ok(s)) => s,
                };
                (
                    Box::new(stream) as Box<dyn ControlStream>,
                    Some((tls.clone(), name)),
                )
            }
        };
        let (read, writer) = tokio::io::split(stream);
        let (tx, replies) = mpsc::channel(16);
        let reader = tokio::spawn(async move {
            let mut read = BufReader::new(read);
            loop {
                let item = read_reply(&mut read).await;
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Client {
            role,
            host_port,
            peer,
            writer,
            replies,
            reader,
            timeout,
            trace,
            greeting,
            features: Features::default(),
            tls,
            protected: false,
            pasv_command: "PASV",
            sscn_on: false,
        })
    }

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
    pub fn rejected(&self, command: &str, reply: Reply) -> ClientError {
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
    pub async fn event(&mut self) -> Result<Reply, ClientError> {
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
    pub async fn next_reply(&mut self, what: &str) -> Result<Reply, ClientError> {
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
    pub async fn reply_within(&mut self, limit: Duration) -> Result<Option<Reply>, ClientError> {
        match tokio::time::timeout(limit, self.event()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Sends `line` and returns the first reply (which may be preliminary).
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.send(line).await?;
        self.next_reply(line).await
    }

    /// Sends `line` and requires a reply with one of the `ok` codes.
    pub async fn expect(&mut self, line: &str, ok: &[u16]) -> Result<Reply, ClientError> {
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

    /// FEAT (RFC 2389) into [`Client::features`]; then `OPTS UTF8 ON` where announced.
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

    /// [`Client::passive`] with `command` (`PASV` or `CPSV`) for IPv4.
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
    pub async fn active(&mut self, target: SocketAddr) -> Result<(String, Reply), ClientError> {
        let line = match target {
            SocketAddr::V4(v4) => wire::port_command(v4),
            SocketAddr::V6(_) => wire::eprt_command(target),
        };
        let reply = self.command(&line).await?;
        Ok((line, reply))
    }

    /// Sends ABOR and brings the connection back in step: whatever the transfer and the
    /// abort answer (426, 225, 226, a late STAT reply) is read and returned
    /// ([`Client::resync`]).
    pub async fn abort(&mut self) -> Result<Vec<Reply>, ClientError> {
        self.send("ABOR").await?;
        self.resync().await
    }

    /// Sends NOOP and reads every reply up to its 200, so the next command gets its own
    /// reply even after an aborted transfer or an unanswered STAT. Returns the replies
    /// that came before the 200.
    pub async fn resync(&mut self) -> Result<Vec<Reply>, ClientError> {
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

/// The command with a password replaced by `****` (for traces and messages).
fn mask(line: &str) -> String {
    match line.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("PASS ") => "PASS ****".to_owned(),
        _ => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;
    use tokio::net::TcpListener;

    /// A scripted server: for each expected command line, the raw reply to send.
    async fn scripted(greeting: &'static str, script: Vec<(&'static str, &'static str)>) -> FtpUrl {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut r = tokio::io::BufReader::new(r);
            w.write_all(greeting.as_bytes()).await.unwrap();
            for (want, answer) in script {
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                assert_eq!(line.trim_end(), want);
                w.write_all(answer.as_bytes()).await.unwrap();
            }
            // Stay connected: a silent server, not a closed one.
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        FtpUrl::parse(&format!("ftp://127.0.0.1:{port}/f")).unwrap()
    }

    #[tokio::test]
    async fn login_features_and_passive() {
        let url = scripted(
            "120 wait\r\n220-hello\r\n220 fxpd ready\r\n",
            vec![
                ("USER u", "331 pw\r\n"),
                ("PASS p", "230 ok\r\n"),
                ("FEAT", "211-x\r\n HASH SHA-256*\r\n UTF8\r\n211 End\r\n"),
                ("OPTS UTF8 ON", "200 ok\r\n"),
                ("PASV", "227 Entering Passive Mode (0,0,0,0,4,1).\r\n"),
                ("PORT 127,0,0,3,4,1", "504 PORT refused (foreign-address)\r\n"),
            ],
        )
        .await;
        let mut c = Client::connect(Role::Source, &url, Duration::from_secs(5), false)
            .await
            .unwrap();
        assert_eq!(c.greeting.text(), "hello fxpd ready");
        c.login("u", "p").await.unwrap();
        c.load_features().await.unwrap();
        assert_eq!(c.features.hash_selected.as_deref(), Some("SHA-256"));
        let addr = c.passive().await.unwrap();
        assert_eq!(
            addr,
            "127.0.0.1:1025".parse().unwrap(),
            "0.0.0.0 means the control peer"
        );
        let (line, reply) = c.active("127.0.0.3:1025".parse().unwrap()).await.unwrap();
        assert_eq!((line.as_str(), reply.code), ("PORT 127,0,0,3,4,1", 504));
    }

    #[tokio::test]
    async fn rejected_login_and_timeouts_name_the_server() {
        let url = scripted(
            "220 hi\r\n",
            vec![("USER u", "331 pw\r\n"), ("PASS secret", "530 no\r\n")],
        )
        .await;
        let mut c = Client::connect(Role::Destination, &url, Duration::from_secs(5), false)
            .await
            .unwrap();
        let e = c.login("u", "secret").await.unwrap_err().to_string();
        assert!(e.contains("the destination 127.0.0.1:"), "{e}");
        assert!(e.contains("`PASS ****`") && !e.contains("secret"), "{e}");
        let url = scripted("220 hi\r\n", vec![("NOOP", "")]).await;
        let mut c = Client::connect(Role::Source, &url, Duration::from_millis(300), false)
            .await
            .unwrap();
        let e = c.command("NOOP").await.unwrap_err().to_string();
        assert!(e.contains("did not answer in time"), "{e}");
    }

    #[tokio::test]
    async fn pwd_unquotes() {
        let url = scripted("220 hi\r\n", vec![("PWD", "257 \"/a \"\"b\"\"\" is current\r\n")]).await;
        let mut c = Client::connect(Role::Source, &url, Duration::from_secs(5), false)
            .await
            .unwrap();
        assert_eq!(c.pwd().await.unwrap(), "/a \"b\"");
    }
}
