//! Parser tests: one per branch of the PROXY protocol specification fxpd accepts or refuses.

use super::*;

fn done(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Step::Done { header, len }) => (header, len),
        other => panic!(
            "{:?}: expected a complete header, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn invalid(buf: &[u8]) -> &'static str {
    match parse(buf) {
        Err(Invalid(why)) => why,
        other => panic!(
            "{:?}: expected invalid, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn proxied(src: &str, dst: &str) -> Header {
    Header::Proxied {
        source: addr(src),
        destination: addr(dst),
    }
}

/// A version 2 header: command byte, family byte, body (addresses and TLVs).
fn v2(cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(cmd);
    out.push(family);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn v4_body(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b
}

#[test]
fn v1_tcp4() {
    let line = b"PROXY TCP4 127.0.0.5 127.0.0.10 40000 2121\r\n";
    assert_eq!(
        done(line),
        (proxied("127.0.0.5:40000", "127.0.0.10:2121"), line.len())
    );
}

#[test]
fn v1_tcp6_and_mapped_addresses_are_normalised() {
    let line = b"PROXY TCP6 2001:db8::1 ::1 65535 21\r\n";
    assert_eq!(done(line).0, proxied("[2001:db8::1]:65535", "[::1]:21"));
    let mapped = b"PROXY TCP6 ::ffff:192.0.2.7 ::ffff:127.0.0.10 0 21\r\n";
    assert_eq!(done(mapped).0, proxied("192.0.2.7:0", "127.0.0.10:21"));
}

#[test]
fn v1_unknown_is_local() {
    assert_eq!(done(b"PROXY UNKNOWN\r\n"), (Header::Local, 15));
    let with_junk = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_eq!(done(with_junk), (Header::Local, with_junk.len()));
}

#[test]
fn v1_stops_at_the_first_crlf() {
    let mut buf = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec();
    let len = buf.len();
    buf.extend_from_slice(b"USER alice\r\n");
    assert_eq!(done(&buf).1, len);
}

#[test]
fn v1_asks_for_one_byte_at_a_time() {
    let line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    assert_eq!(parse(&[]), Ok(Step::Need(15)));
    assert_eq!(parse(&line[..3]), Ok(Step::Need(12)));
    for n in 15..line.len() {
        assert_eq!(parse(&line[..n]), Ok(Step::Need(1)), "after {n} bytes");
    }
}

#[test]
fn v1_malformed_lines_are_refused() {
    for bad in [
        &b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"[..],
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
    ] {
        invalid(bad);
    }
}

#[test]
fn v1_stray_control_bytes_fail_early() {
    assert!(invalid(b"PROXY TCP4 1.2.3\n").contains("control"));
    assert!(invalid(b"PROXY TCP4 1.2.3\rx").contains("control"));
    assert!(invalid("PROXY TCP4 1.2.3.é".as_bytes()).contains("control"));
    // A pending final CR is fine.
    assert_eq!(parse(b"PROXY UNKNOWN\r"), Ok(Step::Need(1)));
}

#[test]
fn v1_longer_than_107_bytes_is_refused() {
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(107, b'a');
    assert!(invalid(&long).contains("107"));
    // Exactly 107 with its CRLF is allowed.
    let mut max = b"PROXY UNKNOWN ".to_vec();
    max.resize(105, b'a');
    max.extend_from_slice(b"\r\n");
    assert_eq!(done(&max), (Header::Local, 107));
    let mut over = b"PROXY UNKNOWN ".to_vec();
    over.resize(106, b'a');
    over.extend_from_slice(b"\r\n");
    invalid(&over);
}

#[test]
fn other_protocols_are_not_headers() {
    assert_eq!(parse(b"P"), Ok(Step::Need(14)));
    for bad in [
        &b"USER alice\r\n"[..],
        b"PROXX",
        b"\r\n\r\n\0\r\nQUIX\n",
        b"\x16\x03\x01",
    ] {
        assert!(invalid(bad).contains("not a PROXY"), "{bad:?}");
    }
}

#[test]
fn v2_tcp4_with_tlvs() {
    let mut body = v4_body([127, 0, 0, 5], [127, 0, 0, 10], 40000, 2121);
    body.extend_from_slice(&[0x04, 0, 3, 0, 0, 0]); // NOOP TLV with 3 bytes of padding
    body.extend_from_slice(&[0x05, 0, 0]); // empty UNIQUE_ID TLV
    let h = v2(0x21, 0x11, &body);
    assert_eq!(done(&h), (proxied("127.0.0.5:40000", "127.0.0.10:2121"), h.len()));
}

#[test]
fn v2_tcp6_normalises_mapped_addresses() {
    let mut body = Vec::new();
    body.extend_from_slice(&"::ffff:127.0.0.5".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&"2001:db8::10".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&1234u16.to_be_bytes());
    body.extend_from_slice(&21u16.to_be_bytes());
    assert_eq!(
        done(&v2(0x21, 0x21, &body)).0,
        proxied("127.0.0.5:1234", "[2001:db8::10]:21")
    );
}

#[test]
fn v2_local_and_unspec_are_local() {
    assert_eq!(done(&v2(0x20, 0x00, &[])), (Header::Local, 16));
    // LOCAL ignores whatever address block it carries.
    let h = v2(0x20, 0x11, &v4_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
    assert_eq!(done(&h).0, Header::Local);
    assert_eq!(done(&v2(0x21, 0x00, &[])).0, Header::Local);
}

#[test]
fn v2_reads_16_bytes_then_the_length() {
    let h = v2(0x21, 0x11, &v4_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
    assert_eq!(parse(&h[..15]), Ok(Step::Need(1)));
    assert_eq!(parse(&h[..16]), Ok(Step::Need(12)));
    assert_eq!(parse(&h[..20]), Ok(Step::Need(8)));
    let mut more = h.clone();
    more.extend_from_slice(b"USER alice\r\n");
    assert_eq!(done(&more).1, h.len());
}

#[test]
fn v2_bad_headers_are_refused() {
    let body = v4_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    assert!(invalid(&v2(0x11, 0x11, &body)).contains("version"));
    assert!(invalid(&v2(0x22, 0x11, &body)).contains("command"));
    assert!(invalid(&v2(0x21, 0x12, &body)).contains("family")); // UDP over IPv4
    assert!(invalid(&v2(0x21, 0x31, &body)).contains("family")); // UNIX stream
    assert!(invalid(&v2(0x21, 0x11, &body[..11])).contains("12 address bytes"));
    assert!(invalid(&v2(0x21, 0x21, &body)).contains("36 address bytes"));
    let mut cut = body.clone();
    cut.extend_from_slice(&[0x04, 0]);
    assert!(invalid(&v2(0x21, 0x11, &cut)).contains("cut short"));
    let mut over = body.clone();
    over.extend_from_slice(&[0x04, 0, 9, 1]);
    assert!(invalid(&v2(0x21, 0x11, &over)).contains("longer than the header"));
}

#[test]
fn v2_length_is_bounded() {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11]);
    h.extend_from_slice(&((MAX_V2_LEN - 16 + 1) as u16).to_be_bytes());
    assert!(invalid(&h).contains("too long"));
    let mut ok = V2_SIGNATURE.to_vec();
    ok.extend_from_slice(&[0x21, 0x11]);
    ok.extend_from_slice(&((MAX_V2_LEN - 16) as u16).to_be_bytes());
    assert_eq!(parse(&ok), Ok(Step::Need(MAX_V2_LEN - 16)));
}

#[tokio::test]
async fn read_header_leaves_the_ftp_stream_alone() {
    use tokio::io::AsyncReadExt;
    for header in [
        b"PROXY TCP4 127.0.0.5 127.0.0.10 40000 2121\r\n".to_vec(),
        v2(0x21, 0x11, &v4_body([127, 0, 0, 5], [127, 0, 0, 10], 40000, 2121)),
    ] {
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"USER alice\r\n");
        let mut stream = &bytes[..];
        let got = read_header(&mut stream).await.unwrap();
        assert_eq!(got, proxied("127.0.0.5:40000", "127.0.0.10:2121"));
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "USER alice\r\n");
    }
}

#[tokio::test]
async fn read_header_errors() {
    let mut short = &b"PROXY TCP4 1.2"[..];
    assert!(matches!(read_header(&mut short).await, Err(ReadError::Io(_))));
    let mut ftp = &b"USER alice-the-user\r\n"[..];
    assert!(matches!(read_header(&mut ftp).await, Err(ReadError::Invalid(_))));
}
