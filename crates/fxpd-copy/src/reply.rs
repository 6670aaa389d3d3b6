//! Replies read from a control connection (RFC 959 section 4.2).
//!
//! A reply is a three-digit code and one or more lines of text. A multi-line reply starts
//! with `ddd-` and ends with the first line that starts with the same `ddd` followed by a
//! space (or nothing); lines in between are kept as they are. Lines end in CRLF (a bare LF
//! is accepted). Every line and every reply is bounded, so a hostile server cannot make
//! the client buffer without limit.

use std::fmt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest accepted reply line, in bytes (without the line end).
pub const MAX_LINE: usize = 8 * 1024;

/// Most lines in one reply (a FEAT or STAT reply has a few dozen).
pub const MAX_LINES: usize = 10_000;

/// One server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// The reply code, 100-599.
    pub code: u16,
    /// Every line as received (including the `ddd-`/`ddd ` prefixes), without line ends.
    pub lines: Vec<String>,
}

impl ServerReply {
    /// The first digit: 1 preliminary, 2 completion, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// A 1yz reply: more replies follow for this command.
    pub fn is_preliminary(&self) -> bool {
        self.class() == 1
    }

    /// A 2yz reply.
    pub fn is_completion(&self) -> bool {
        self.class() == 2
    }

    /// The text of the first line, without its code.
    pub fn first_text(&self) -> &str {
        self.lines.first().map(|l| strip_code(l)).unwrap_or("")
    }

    /// All text, the code prefixes removed, lines joined by a space (for messages).
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self
            .lines
            .iter()
            .map(|l| strip_code(l).trim())
            .filter(|l| !l.is_empty())
            .collect();
        parts.join(" ")
    }

    /// The body lines of a multi-line reply (between the first and the last line), trimmed.
    pub fn body(&self) -> impl Iterator<Item = &str> {
        let n = self.lines.len();
        self.lines
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i > 0 && *i + 1 < n)
            .map(|(_, l)| l.trim())
    }
}

impl fmt::Display for ServerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// The line without a leading `ddd-` or `ddd ` code.
fn strip_code(line: &str) -> &str {
    match line.as_bytes() {
        [a, b, c, rest @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => match rest.first() {
            None => "",
            Some(b' ' | b'-') => &line[4..],
            Some(_) => line,
        },
        _ => line,
    }
}

/// The code at the start of a line, with the character after it (`None` at the line end).
fn code_of(line: &str) -> Option<(u16, Option<u8>)> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(&b[0]) {
        return None;
    }
    let code = line[..3].parse().ok()?;
    Some((code, b.get(3).copied()))
}

/// Why no reply could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The server closed the connection.
    Closed,
    /// A socket error.
    Io(std::io::Error),
    /// The server broke the reply format (a bad code, an endless line or reply).
    Malformed(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Closed => f.write_str("the server closed the control connection"),
            ReadError::Io(e) => write!(f, "control connection error: {e}"),
            ReadError::Malformed(why) => write!(f, "malformed reply: {why}"),
        }
    }
}

/// Reads one line (bounded by [`MAX_LINE`]); `Ok(None)` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await.map_err(ReadError::Io)?;
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Closed)
            };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE + 2 {
            return Err(ReadError::Malformed(format!(
                "a line longer than {MAX_LINE} bytes"
            )));
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

/// Reads one complete reply.
pub async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<ServerReply, ReadError> {
    let first = read_line(reader).await?.ok_or(ReadError::Closed)?;
    let (code, sep) = code_of(&first).ok_or_else(|| {
        ReadError::Malformed(format!("`{}` does not start with a reply code", clip(&first)))
    })?;
    let mut lines = vec![first];
    if sep != Some(b'-') {
        return Ok(ServerReply { code, lines });
    }
    loop {
        let line = read_line(reader).await?.ok_or(ReadError::Closed)?;
        let last = matches!(code_of(&line), Some((c, None | Some(b' '))) if c == code);
        lines.push(line);
        if last {
            return Ok(ServerReply { code, lines });
        }
        if lines.len() >= MAX_LINES {
            return Err(ReadError::Malformed(format!(
                "a reply of more than {MAX_LINES} lines"
            )));
        }
    }
}

/// At most 60 characters of `s`, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn replies(wire: &str) -> Vec<Result<ServerReply, String>> {
        let mut r = tokio::io::BufReader::new(wire.as_bytes());
        let mut out = Vec::new();
        loop {
            match read_reply(&mut r).await {
                Ok(reply) => out.push(Ok(reply)),
                Err(ReadError::Closed) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn single_and_multi_line_replies() {
        let got =
            replies("220 ready\r\n211-Features:\r\n EPSV\r\n211-x\r\n HASH SHA-256*\r\n211 End\r\n226\n")
                .await;
        let r: Vec<ServerReply> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!((r[0].code, r[0].first_text()), (220, "ready"));
        assert_eq!(r[1].code, 211);
        assert_eq!(
            r[1].lines.len(),
            5,
            "`211-x` does not end the reply, `211 End` does"
        );
        assert_eq!(
            r[1].body().collect::<Vec<_>>(),
            ["EPSV", "211-x", "HASH SHA-256*"]
        );
        assert_eq!(r[2].code, 226);
        assert_eq!(r[2].text(), "");
        assert_eq!(r[0].to_string(), "220 ready");
    }

    #[tokio::test]
    async fn multi_line_end_needs_the_same_code() {
        let got = replies("230-Welcome\r\n220 inner line\r\n230-more\r\n230 done\r\n").await;
        let r = got[0].as_ref().unwrap();
        assert_eq!(r.lines.len(), 4);
        assert_eq!(r.text(), "Welcome inner line more done");
    }

    #[tokio::test]
    async fn malformed_and_unbounded_input_is_an_error() {
        assert!(replies("hello\r\n").await[0].is_err());
        assert!(replies("999 bad class\r\n").await[0].is_err());
        let long = format!("200 {}\r\n", "x".repeat(MAX_LINE + 10));
        assert!(replies(&long).await[0].as_ref().unwrap_err().contains("longer"));
        let endless = format!("211-start\r\n{}", " x\r\n".repeat(MAX_LINES + 1));
        assert!(replies(&endless).await[0]
            .as_ref()
            .unwrap_err()
            .contains("more than"));
        // A reply cut off in the middle is a closed connection, not a reply.
        assert!(replies("211-start\r\n body\r\n").await.is_empty());
    }
}
