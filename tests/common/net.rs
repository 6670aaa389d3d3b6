//! Sockets with the harness timeouts: data connections, accepts and reads with deadlines,
//! connects from another loopback address and PROXY protocol headers.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// Connects a data socket with timeouts.
pub fn data_connect(a: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&a, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("data connection to {a}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Accepts one connection on `l` within `within`; `None` if nobody connected.
pub fn accept_within(l: &TcpListener, within: Duration) -> Option<(TcpStream, SocketAddr)> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + within;
    loop {
        match l.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                l.set_nonblocking(false).unwrap();
                return Some((s, a));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    l.set_nonblocking(false).unwrap();
                    return None;
                }
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Reads a stream to EOF; panics if that takes longer than `within` or a read fails.
pub fn read_to_end_deadline(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "data connection not finished within {within:?} ({} bytes so far)",
            out.len()
        );
        s.set_read_timeout(Some(left.min(IO_TIMEOUT))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading data connection after {} bytes: {e}", out.len()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PROXY protocol (load balancers)
// ---------------------------------------------------------------------------------------------

/// Connects to `addr` from `local` (e.g. 127.0.0.10, the address a test treats as its load
/// balancer) with the harness timeouts.
pub fn connect_from(local: IpAddr, addr: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt
        .block_on(async {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(local, 0))?;
            let s = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            s.into_std()
        })
        .unwrap_or_else(|e| panic!("connect from {local} to {addr}: {e}"));
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A PROXY protocol v1 header for a TCP connection from `src` to `dst`.
pub fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A PROXY protocol v2 header (command PROXY, TCP over IPv4) from `src` to `dst`, with a NOOP
/// TLV as HAProxy may add.
pub fn proxy_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("proxy_v2 builds IPv4 headers only");
    };
    let mut body = Vec::new();
    body.extend_from_slice(&s.octets());
    body.extend_from_slice(&d.octets());
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    body.extend_from_slice(&[0x04, 0, 2, 0, 0]);
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A PROXY protocol v2 LOCAL header (a load balancer's health check).
pub fn proxy_v2_local() -> Vec<u8> {
    b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec()
}
