//! The command-line side of the admin listener: `fxpd sessions`, `fxpd bans`, `fxpd reload`.
//!
//! It finds the listener and its token in the same configuration `fxpd serve` reads, sends
//! one request and prints the answer. The HTTP is written by hand over a blocking socket
//! (one request per run, `Connection: close`, a bounded answer read to its end): the server's
//! HTTP stack (hyper, through axum) is built without its client half, and a command that runs
//! once needs no runtime. Over HTTPS the server must present exactly the certificate
//! `tls.certificate` names (pinned), so neither a name nor a CA is involved.

use super::token::Token;
use crate::config::Config;
use crate::tls::{ServerCert, ServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for the server, to connect and for each read or write.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read.
const MAX_ANSWER: u64 = 16 << 20;

/// Where the admin listener is and how to talk to it.
pub struct Client {
    addr: SocketAddr,
    token: Token,
    /// The pinned certificate, when the listener speaks HTTPS.
    pinned: Option<CertificateDer<'static>>,
}

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body (JSON from the API).
    pub body: String,
}

impl Client {
    /// The client for the admin listener `config` describes; an error says what is missing
    /// (the listener off, no token file).
    pub fn from_config(config: &Config) -> Result<Client, String> {
        let Some(listen) = config.admin.listen else {
            return Err("the admin listener is off: set admin.listen and admin.token_file in the configuration and restart fxpd (docs/admin.md)".into());
        };
        let file = config
            .admin
            .token_file
            .as_deref()
            .ok_or("admin.token_file is not set")?;
        let token = Token::read(file)?;
        // A wildcard listen address is reached on loopback.
        let ip = match listen.ip() {
            ip if ip.is_unspecified() && listen.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
            ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let pinned = match &config.tls.certificate {
            None => None,
            Some(path) => Some(
                CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("tls.certificate {}: {e}", path.display()))?
                    .next()
                    .ok_or_else(|| format!("tls.certificate {}: no certificate", path.display()))?
                    .map_err(|e| format!("tls.certificate {}: {e}", path.display()))?,
            ),
        };
        Ok(Client {
            addr: SocketAddr::new(ip, listen.port()),
            token,
            pinned,
        })
    }

    /// Send `method path` and read the answer.
    pub fn request(&self, method: &str, path: &str) -> Result<Answer, String> {
        let tcp = TcpStream::connect_timeout(&self.addr, TIMEOUT).map_err(|e| {
            format!(
                "cannot reach the admin listener at {}: {e} (is fxpd running?)",
                self.addr
            )
        })?;
        tcp.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr,
            self.token.secret()
        );
        let raw = match &self.pinned {
            None => exchange(tcp, request.as_bytes()),
            Some(cert) => {
                let config = pinned_config(cert.clone())?;
                let name = ServerName::IpAddress(self.addr.ip().into());
                let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
                exchange(rustls::StreamOwned::new(conn, tcp), request.as_bytes())
            }
        }
        .map_err(|e| format!("admin listener at {}: {e}", self.addr))?;
        parse(&raw)
    }
}

/// What the command line asks of the admin listener.
#[derive(Debug, Clone)]
pub enum Command {
    /// `fxpd sessions [--json]`.
    Sessions {
        /// Print the API's JSON as it is.
        json: bool,
    },
    /// `fxpd sessions kick ID`.
    Kick(u64),
    /// `fxpd bans`.
    Bans,
    /// `fxpd bans lift ADDR`.
    Lift(String),
    /// `fxpd reload`.
    Reload,
}

/// Run `command` against the admin listener `config` describes: the text to print, or why
/// it failed (the server's own error message for a refused request).
pub fn run(config: &Config, command: Command) -> Result<String, String> {
    let client = Client::from_config(config)?;
    let (method, path) = match &command {
        Command::Sessions { .. } => ("GET", "/api/sessions".to_owned()),
        Command::Kick(id) => ("DELETE", format!("/api/sessions/{id}")),
        Command::Bans => ("GET", "/api/bans".to_owned()),
        Command::Lift(addr) => {
            let ip: std::net::IpAddr = addr.parse().map_err(|_| format!("{addr}: not an IP address"))?;
            ("DELETE", format!("/api/bans/{ip}"))
        }
        Command::Reload => ("POST", "/api/reload".to_owned()),
    };
    let answer = client.request(method, &path)?;
    let value: serde_json::Value = serde_json::from_str(&answer.body).map_err(|e| {
        format!(
            "the admin listener answered {} with something that is not JSON ({e})",
            answer.status
        )
    })?;
    if !(200..300).contains(&answer.status) {
        let why = value["error"].as_str().unwrap_or("no reason given");
        return Err(format!("{why} (HTTP {})", answer.status));
    }
    Ok(match command {
        Command::Sessions { json: true } => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Command::Sessions { json: false } => sessions_table(&value),
        Command::Kick(id) => format!("session {id} kicked"),
        Command::Bans => bans_table(&value),
        Command::Lift(_) => {
            let what: Vec<&str> = [("ban", "ban"), ("lockout", "login lockout")]
                .iter()
                .filter(|(key, _)| value[*key] == true)
                .map(|(_, name)| *name)
                .collect();
            format!(
                "{}: {} lifted",
                value["address"].as_str().unwrap_or("?"),
                what.join(" and ")
            )
        }
        Command::Reload => {
            let list = |key: &str| {
                let names: Vec<&str> = value[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect();
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            };
            format!(
                "configuration reloaded; changed: {}; waiting for a restart: {}",
                list("changed"),
                list("needs_restart")
            )
        }
    })
}

/// One line per session, one more for its transfer.
fn sessions_table(value: &serde_json::Value) -> String {
    let sessions = value["sessions"].as_array().cloned().unwrap_or_default();
    if sessions.is_empty() {
        return "no open sessions".to_owned();
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{:>6}  {:<22} {:<16} {:<4} {:<20} {}\n",
        "ID", "CLIENT", "USER", "TLS", "SINCE", "CWD"
    );
    for s in &sessions {
        out.push_str(&format!(
            "{:>6}  {:<22} {:<16} {:<4} {:<20} {}\n",
            s["id"],
            text(&s["client"]),
            text(&s["user"]),
            if s["tls"] == true { "yes" } else { "no" },
            text(&s["since"]),
            text(&s["cwd"]),
        ));
        let t = &s["transfer"];
        if t.is_object() {
            let size = t["size"].as_u64().map_or("?".to_owned(), |n| n.to_string());
            out.push_str(&format!(
                "        {} {} {} of {} bytes, {} B/s\n",
                text(&t["direction"]),
                text(&t["file"]),
                t["bytes"],
                size,
                t["rate_bytes_per_sec"],
            ));
        }
    }
    out.trim_end().to_owned()
}

/// Bans and lockouts, one line each.
fn bans_table(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for (key, name) in [("bans", "banned"), ("lockouts", "locked out")] {
        for entry in value[key].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{:<40} {name:<11} {} s left\n",
                entry["address"].as_str().unwrap_or("?"),
                entry["seconds_left"],
            ));
        }
    }
    if out.is_empty() {
        return "no bans and no lockouts".to_owned();
    }
    out.trim_end().to_owned()
}

/// Write the request, read the whole answer (bounded).
fn exchange(mut stream: impl Read + Write, request: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(request)?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.take(MAX_ANSWER).read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        // A TLS peer that closes without close_notify after a complete answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e),
    }
}

/// Status line, headers, body (plain or chunked).
fn parse(raw: &[u8]) -> Result<Answer, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the admin listener's answer has no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("the admin listener's answer has no status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or("the admin listener's chunked answer is cut short")?;
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// A TLS client that accepts only `pinned` as the server's certificate.
fn pinned_config(pinned: CertificateDer<'static>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier {
            // SECURITY: the token goes only to the holder of the configured certificate's key.
            accept: ServerCert::Pinned(pinned, "the admin listener's certificate is not tls.certificate"),
            provider,
        }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_plain_and_chunked() {
        let plain = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (200, "{}"));
        let chunked = parse(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((chunked.status, chunked.body.as_str()), (404, "abcde"));
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err());
        assert!(parse(b"garbage").is_err());
    }
}
