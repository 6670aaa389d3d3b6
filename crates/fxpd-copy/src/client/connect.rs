//! Opening a control connection: resolve, connect, the greeting, and `AUTH TLS` (RFC 4217).

use super::{ClientError, ControlClient, ControlStream, ErrorKind, Role};
use crate::reply::read_reply;
use crate::tls::TlsClient;
use crate::url::FtpUrl;
use crate::wire::Features;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

impl ControlClient {
    /// Connects to the URL's host and port and reads the greeting (plain FTP).
    pub async fn connect(
        role: Role,
        url: &FtpUrl,
        timeout: Duration,
        trace: bool,
    ) -> Result<ControlClient, ClientError> {
        ControlClient::connect_with(role, url, timeout, trace, None).await
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
    ) -> Result<ControlClient, ClientError> {
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
        Ok(ControlClient {
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
}
