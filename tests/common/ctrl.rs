//! The control-connection client, in clear text or TLS: exact bytes out, parsed [`Reply`]
//! values in; the PORT/EPRT/PASV/EPSV texts it writes and reads. TLS (`AUTH TLS`, implicit
//! FTPS, protected data connections) is added to [`Ctrl`] in `tls.rs`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::*;

/// One FTP reply: the code and every line (without CRLF).
#[derive(Clone, Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// All lines joined with '\n'.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
    pub fn first(&self) -> &str {
        &self.lines[0]
    }
    pub fn is_positive(&self) -> bool {
        (100..400).contains(&self.code)
    }
    pub fn class(&self) -> u16 {
        self.code / 100
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// A control connection's transport: clear text until `AUTH TLS` (or TLS from the start on an
/// implicit FTPS listener).
pub(super) enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsSock>),
    /// Placeholder while the stream is being upgraded.
    Gone,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Gone => Err(io::Error::other("connection gone")),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Gone => Err(io::Error::other("connection gone")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Gone => Ok(()),
        }
    }
}

/// A control connection: exact bytes out, parsed replies in; clear text or TLS.
pub struct Ctrl {
    /// Replies are read here, commands written through it (clear text or TLS).
    pub(super) reader: BufReader<Conn>,
    /// The TCP socket under the connection, for timeouts, addresses and raw clear-text writes.
    pub stream: TcpStream,
    /// The greeting (220) read by [`Ctrl::connect`].
    pub greeting: Option<Reply>,
    /// The TLS client configuration given to `AUTH TLS` or the implicit connect; protected
    /// data connections use it too, so that they resume the control connection's session.
    pub(super) tls: Option<Arc<ClientConfig>>,
}

impl Ctrl {
    /// Connects and reads the greeting, which must be 220.
    pub fn connect(addr: SocketAddr) -> Ctrl {
        Ctrl::connect_no_greeting(addr).greeted()
    }

    /// Connects from the loopback address `from` and reads the greeting, which must be 220.
    pub fn connect_from(from: IpAddr, addr: SocketAddr) -> Ctrl {
        Ctrl::over(connect_from(from, addr), b"").greeted()
    }

    /// Reads the greeting, which must be 220.
    pub(super) fn greeted(mut self) -> Ctrl {
        let g = self.read_reply();
        assert_eq!(g.code, 220, "greeting must be 220, got: {g}");
        self.greeting = Some(g);
        self
    }

    /// Connects without reading anything.
    pub fn connect_no_greeting(addr: SocketAddr) -> Ctrl {
        Ctrl::over(Ctrl::tcp_connect(addr), b"")
    }

    /// A TCP connection to `addr` with the harness timeouts and no Nagle delay.
    pub(super) fn tcp_connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.stream.peer_addr().unwrap()
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Sends `line` followed by CRLF.
    pub fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\r\n").as_bytes());
    }

    /// Sends raw bytes (the caller adds CRLF).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let conn = self.reader.get_mut();
        conn.write_all(bytes)
            .and_then(|()| conn.flush())
            .unwrap_or_else(|e| panic!("write to control connection: {e}"));
    }

    /// Waits for a reply the server sends unprompted (a timeout's 421, a data connection
    /// that never came): it must be `expected` and arrive within `within` of this call, which
    /// waits 10 s at most. Returns when the wait began.
    pub fn expect_unprompted(&mut self, expected: &str, within: Duration) -> std::time::Instant {
        let start = std::time::Instant::now();
        self.set_read_timeout(Duration::from_secs(10));
        let r = self.read_reply();
        assert_eq!(r.first(), expected);
        assert!(
            start.elapsed() < within,
            "{expected:?} came only after {:?}",
            start.elapsed()
        );
        start
    }

    /// Reads one reply; panics on EOF, timeout or garbage.
    pub fn read_reply(&mut self) -> Reply {
        match self.try_read_reply() {
            Ok(r) => r,
            Err(e) => panic!("reading a reply failed: {e}"),
        }
    }

    /// Reads one reply (multi-line aware: `ddd-` ... `ddd `).
    pub fn try_read_reply(&mut self) -> io::Result<Reply> {
        let first = self.read_line()?;
        let code = parse_code(&first).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("not a reply line: {first:?}"))
        })?;
        let mut lines = vec![first.clone()];
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let l = self.read_line()?;
                let done = l.starts_with(&end) || l == code.to_string();
                lines.push(l);
                if done {
                    break;
                }
            }
        }
        Ok(Reply { code, lines })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "control connection closed",
            ));
        }
        while buf.last() == Some(&b'\n') || buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.read_reply()
    }

    /// Sends a command and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(r.code, code, "{line:?} -> expected {code}, got: {r}");
        r
    }

    /// Sends a command and asserts a reply in the given class (2 = 2xx, 5 = 5xx, ...).
    pub fn expect_class(&mut self, line: &str, class: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(r.class(), class, "{line:?} -> expected {class}xx, got: {r}");
        r
    }

    /// USER + PASS; asserts 331 then 230 (or 230 straight away).
    pub fn login(&mut self, name: &str, pass: &str) {
        let r = self.cmd(&format!("USER {name}"));
        if r.code == 230 {
            return;
        }
        assert_eq!(r.code, 331, "USER {name} -> {r}");
        let r = self.cmd(&format!("PASS {pass}"));
        assert_eq!(r.code, 230, "PASS for {name} -> {r}");
    }

    /// PASV; asserts the IIS wording and returns the address from the reply.
    pub fn pasv(&mut self) -> SocketAddr {
        let r = self.expect("PASV", 227);
        parse_pasv(r.first()).unwrap_or_else(|| panic!("cannot parse PASV reply: {r}"))
    }

    /// EPSV; returns the control peer's IP with the port from the reply.
    pub fn epsv(&mut self) -> SocketAddr {
        let r = self.expect("EPSV", 229);
        let port = parse_epsv(r.first()).unwrap_or_else(|| panic!("cannot parse EPSV reply: {r}"));
        SocketAddr::new(self.peer_addr().ip(), port)
    }

    /// PASV + connect.
    pub fn pasv_connect(&mut self) -> TcpStream {
        let a = self.pasv();
        data_connect(a)
    }

    /// Opens a listener on the control connection's local IP and sends PORT (IPv4) or
    /// EPRT (IPv6) for it; asserts 200.
    pub fn port_listener(&mut self) -> TcpListener {
        let ip = self.local_addr().ip();
        let l = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
        let a = l.local_addr().unwrap();
        let line = match ip {
            IpAddr::V4(_) => port_command(a),
            IpAddr::V6(_) => eprt_command(a),
        };
        let r = self.expect(&line, 200);
        assert!(r.first().starts_with("200"), "{r}");
        l
    }

    /// PASV, connects, sends `line` and asserts 150 or 125; returns the data connection.
    pub fn start_passive(&mut self, line: &str) -> TcpStream {
        let data = self.pasv_connect();
        let r = self.cmd(line);
        assert!(r.code == 150 || r.code == 125, "{line} -> {r}");
        data
    }

    /// Asserts that `r`, the final reply of the transfer started by `line`, is 226.
    pub fn assert_transfer_end(line: &str, r: &Reply) {
        assert_eq!(r.code, 226, "end of {line} -> {r}");
    }

    /// Passive RETR of `name`: returns the bytes; asserts 150/125 then 226.
    pub fn retr(&mut self, name: &str) -> Vec<u8> {
        let line = format!("RETR {name}");
        let mut data = self.start_passive(&line);
        let bytes = read_to_end_deadline(&mut data, Duration::from_secs(120));
        Ctrl::assert_transfer_end(&line, &self.read_reply());
        bytes
    }

    /// Passive STOR of `bytes` as `name`; asserts 150/125 then 226.
    pub fn stor(&mut self, name: &str, bytes: &[u8]) {
        self.upload("STOR", name, bytes)
    }

    /// Passive `verb name` upload (STOR/APPE/STOU); asserts 150/125 then 226.
    pub fn upload(&mut self, verb: &str, name: &str, bytes: &[u8]) {
        let line = format!("{verb} {name}");
        let mut data = self.start_passive(&line);
        data.write_all(bytes).unwrap();
        drop(data);
        Ctrl::assert_transfer_end(&line, &self.read_reply());
    }

    /// Passive `verb name` upload that may be refused: the refusal before any data, or the
    /// final reply after `bytes` were sent (written as far as the server takes them).
    pub fn try_upload(&mut self, verb: &str, name: &str, bytes: &[u8]) -> Reply {
        let addr = self.pasv();
        let mut data = data_connect(addr);
        let r = self.cmd(&format!("{verb} {name}"));
        if r.code != 150 && r.code != 125 {
            return r;
        }
        let _ = data.write_all(bytes);
        drop(data);
        self.read_reply()
    }

    /// A passive listing command (LIST, NLST, MLSD ...) returning the text.
    pub fn listing(&mut self, line: &str) -> String {
        let mut data = self.start_passive(line);
        let bytes = read_to_end_deadline(&mut data, Duration::from_secs(60));
        Ctrl::assert_transfer_end(line, &self.read_reply());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Reads until the server closes the connection (or the timeout); true if it closed.
    pub fn wait_closed(&mut self, within: Duration) -> bool {
        self.set_read_timeout(within);
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

fn parse_code(line: &str) -> Option<u16> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if b.len() > 3 && b[3] != b' ' && b[3] != b'-' {
        return None;
    }
    line[..3].parse().ok()
}

/// Parses `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`
pub fn parse_pasv(line: &str) -> Option<SocketAddr> {
    let open = line.find('(')?;
    let close = line[open..].find(')')? + open;
    let nums: Vec<u16> = line[open + 1..close]
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    if nums.len() != 6 || nums.iter().any(|n| *n > 255) {
        return None;
    }
    let ip = std::net::Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8);
    Some(SocketAddr::new(IpAddr::V4(ip), nums[4] * 256 + nums[5]))
}

/// Parses the port out of `229 Entering Extended Passive Mode (|||port|)`.
pub fn parse_epsv(line: &str) -> Option<u16> {
    let open = line.find("(|||")?;
    let rest = &line[open + 4..];
    let end = rest.find('|')?;
    rest[..end].parse().ok()
}

/// `PORT h1,h2,h3,h4,p1,p2` for an IPv4 address.
pub fn port_command(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!(
                "PORT {},{},{},{},{},{}",
                o[0],
                o[1],
                o[2],
                o[3],
                a.port() >> 8,
                a.port() & 0xff
            )
        }
        IpAddr::V6(_) => panic!("PORT needs an IPv4 address, got {a}"),
    }
}

/// `EPRT |1|ip|port|` or `EPRT |2|ip|port|`.
pub fn eprt_command(a: SocketAddr) -> String {
    let proto = if a.is_ipv4() { 1 } else { 2 };
    format!("EPRT |{proto}|{}|{}|", a.ip(), a.port())
}

impl Ctrl {
    /// A control connection over `stream` after writing `preamble` (e.g. a PROXY header);
    /// reads nothing.
    pub fn over(mut stream: TcpStream, preamble: &[u8]) -> Ctrl {
        stream.write_all(preamble).unwrap();
        let reader = BufReader::new(Conn::Plain(stream.try_clone().unwrap()));
        Ctrl {
            reader,
            stream,
            greeting: None,
            tls: None,
        }
    }
}
