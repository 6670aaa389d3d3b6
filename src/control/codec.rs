//! The control-channel byte stream: bounded command lines in, replies out.
//!
//! Incoming bytes pass through a Telnet filter (RFC 854: `IAC IAC` is a literal 0xFF,
//! option negotiation and commands such as IP and DM, which clients send before `ABOR`,
//! are dropped) and are split at LF (a preceding CR is removed). A line longer than the
//! configured bound is never buffered: the reader reports [`Line::TooLong`] once and
//! discards bytes up to the next LF. [`LineReader::next`] keeps all its state in the
//! struct, so it is cancel-safe inside `tokio::select!`.

use super::reply::Reply;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DONT: u8 = 254;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    Data,
    Iac,
    /// After WILL/WONT/DO/DONT: the option byte follows.
    Option,
    /// Inside a sub-negotiation, until IAC SE.
    Sub,
    SubIac,
}

/// What the reader yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete command line, without CR/LF and Telnet sequences.
    Command(Vec<u8>),
    /// A line went past the length bound; its bytes are being discarded.
    TooLong,
}

/// Reads bounded command lines from the control connection.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    telnet: Telnet,
    discarding: bool,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader accepting lines of at most `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            telnet: Telnet::Data,
            discarding: false,
            max,
        }
    }

    /// The underlying stream, for writing replies and for a TLS upgrade.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Whether bytes after the last line are waiting (a TLS upgrade must start on a clean
    /// line boundary, RFC 4217 section 4).
    pub fn has_pending_bytes(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next line, or `None` at end of stream. Cancel-safe.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        let mut chunk = [0u8; 512];
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                if pos > self.max {
                    // The whole overlong line arrived at once: refuse it all the same.
                    self.buf.drain(..=pos);
                    return Ok(Some(Line::TooLong));
                }
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if self.buf.is_empty() {
                    // Idle sessions keep no buffer around.
                    self.buf = Vec::new();
                }
                return Ok(Some(Line::Command(line)));
            }
            if self.buf.len() > self.max {
                self.buf = Vec::new();
                self.discarding = true;
                return Ok(Some(Line::TooLong));
            }
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.absorb(&chunk[..n]);
        }
    }

    fn absorb(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let data = match (self.telnet, b) {
                (Telnet::Data, IAC) => {
                    self.telnet = Telnet::Iac;
                    None
                }
                (Telnet::Data, b) => Some(b),
                (Telnet::Iac, IAC) => {
                    self.telnet = Telnet::Data;
                    Some(IAC)
                }
                (Telnet::Iac, WILL..=DONT) => {
                    self.telnet = Telnet::Option;
                    None
                }
                (Telnet::Iac, SB) => {
                    self.telnet = Telnet::Sub;
                    None
                }
                (Telnet::Iac, SE..) | (Telnet::Option, _) => {
                    self.telnet = Telnet::Data;
                    None
                }
                (Telnet::Iac, other) => {
                    // Not a Telnet command: a client sent a raw 0xFF byte. Keep both bytes so
                    // the parser sees (and refuses) the invalid text instead of a mangled name.
                    self.telnet = Telnet::Data;
                    self.push(IAC);
                    Some(other)
                }
                (Telnet::Sub, IAC) => {
                    self.telnet = Telnet::SubIac;
                    None
                }
                (Telnet::Sub, _) => None,
                (Telnet::SubIac, SE) => {
                    self.telnet = Telnet::Data;
                    None
                }
                (Telnet::SubIac, _) => {
                    self.telnet = Telnet::Sub;
                    None
                }
            };
            if let Some(b) = data {
                self.push(b);
            }
        }
    }

    fn push(&mut self, b: u8) {
        if self.discarding {
            if b == b'\n' {
                self.discarding = false;
            }
            return;
        }
        self.buf.push(b);
    }
}

/// Writes one reply in a single write (the control socket has TCP_NODELAY, so each reply
/// leaves at once and a multi-line reply is not split across segments needlessly).
pub async fn write_reply<W: AsyncWrite + Unpin>(w: &mut W, reply: &Reply) -> std::io::Result<()> {
    write_replies(w, std::slice::from_ref(reply)).await
}

/// Writes replies that follow each other at once (a transfer's 150 and its final reply) in a
/// single write, as [`write_reply`] writes one.
pub async fn write_replies<W: AsyncWrite + Unpin>(w: &mut W, replies: &[Reply]) -> std::io::Result<()> {
    if replies.is_empty() {
        return Ok(());
    }
    w.write_all(&Reply::all_to_bytes(replies)).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn splits_crlf_and_lf() {
        let got = lines(b"USER a\r\nPASS b\nNOOP\r\n", 100).await;
        assert_eq!(
            got,
            vec![
                Line::Command(b"USER a".to_vec()),
                Line::Command(b"PASS b".to_vec()),
                Line::Command(b"NOOP".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn telnet_ip_and_synch_before_abor_are_removed() {
        // IAC IP, IAC DM, then ABOR; IAC IAC is a literal 0xFF; WILL x dropped.
        let got = lines(
            b"\xff\xf4\xff\xf2ABOR\r\nRETR a\xff\xffb\r\n\xff\xfb\x01NOOP\r\n",
            100,
        )
        .await;
        assert_eq!(
            got,
            vec![
                Line::Command(b"ABOR".to_vec()),
                Line::Command(b"RETR a\xffb".to_vec()),
                Line::Command(b"NOOP".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn raw_ff_that_is_no_telnet_command_is_kept() {
        let got = lines(b"STOR bad\xffname\r\n", 100).await;
        assert_eq!(got, vec![Line::Command(b"STOR bad\xffname".to_vec())]);
    }

    #[tokio::test]
    async fn overlong_line_arriving_at_once_is_refused() {
        let mut input = vec![b'A'; 600];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let got = lines(&input, 512).await;
        assert_eq!(got, vec![Line::TooLong, Line::Command(b"NOOP".to_vec())]);
    }

    #[tokio::test]
    async fn overlong_line_is_refused_without_buffering() {
        let mut input = vec![b'A'; 10_000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let got = lines(&input, 8192).await;
        assert_eq!(got, vec![Line::TooLong, Line::Command(b"NOOP".to_vec())]);
    }
}
