//! `ftp://[user[:password]@]host[:port]/path` URLs (RFC 1738 section 3.2, RFC 3986 for the
//! authority and percent-encoding, RFC 2732 for bracketed IPv6 hosts).
//!
//! As in RFC 1738 (and curl), the path after the host's `/` is relative to the login
//! directory; `%2F` at its start makes it absolute (`ftp://h/%2Fsrv/f` is `/srv/f`). User,
//! password and path are percent-decoded.
//!
//! SECURITY: a decoded user, password or path may not contain CR, LF or NUL, because each of
//! them ends up inside an FTP command line, where a line break would inject another command.

use std::fmt;

/// The default FTP control port (RFC 959).
pub const DEFAULT_PORT: u16 = 21;

/// A parsed `ftp://` or `ftps://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUrl {
    /// `ftps://`: explicit FTPS (AUTH TLS on the control connection, RFC 4217).
    pub tls: bool,
    /// User name from the URL, if any (decoded).
    pub user: Option<String>,
    /// Password from the URL, if any (decoded). Never shown by [`fmt::Display`].
    pub password: Option<String>,
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// Control port.
    pub port: u16,
    /// Decoded path: relative to the login directory unless it starts with `/`; may be empty,
    /// and ends with `/` when the URL's path did.
    pub path: String,
}

/// Why a URL was rejected; the text is one clause suitable for "SRC is not a valid URL: ...".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// What is wrong with the URL.
    Invalid(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Invalid(why) => f.write_str(why),
        }
    }
}

impl FtpUrl {
    /// Parses an `ftp://` or `ftps://` URL (both default to port 21: `ftps://` is explicit
    /// FTPS).
    pub fn parse(text: &str) -> Result<FtpUrl, UrlError> {
        let invalid = |why: &str| UrlError::Invalid(why.to_owned());
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| invalid("expected ftp://[user[:password]@]host[:port]/path"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ftp" => false,
            "ftps" => true,
            _ => {
                return Err(UrlError::Invalid(format!(
                    "unsupported scheme `{scheme}`, expected ftp:// or ftps://"
                )))
            }
        };
        let (authority, raw_path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if raw_path.contains(['?', '#']) {
            return Err(invalid(
                "a query (?) or fragment (#) is not allowed; percent-encode such characters",
            ));
        }
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (u, p) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                if u.is_empty() {
                    return Err(invalid("the user name before `@` is empty"));
                }
                let user = decode(u, "user name")?;
                let password = p.map(|p| decode(p, "password")).transpose()?;
                (Some(user), password)
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let path = decode(raw_path, "path")?;
        Ok(FtpUrl {
            tls,
            user,
            password,
            host,
            port,
            path,
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The last path component (empty when the path is empty or ends with `/`).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

impl fmt::Display for FtpUrl {
    /// The URL without its password, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "ftps://" } else { "ftp://" })?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}/{}", self.host_port(), self.path)
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(text: &str) -> Result<(String, u16), UrlError> {
    let invalid = |why: String| UrlError::Invalid(why);
    let (host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 host needs its closing `]`".into()))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(format!("`[{v6}]` is not an IPv6 address")));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| invalid(format!("unexpected `{p}` after `[{v6}]`")))?,
            ),
        };
        (v6.to_owned(), port)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (text.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(invalid("the host is missing".into()));
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(invalid(format!("`{host}` is not a valid host name")));
    }
    let port = match port_text {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&n| n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| invalid(format!("`{p}` is not a port number (1-65535)")))?,
    };
    Ok((host, port))
}

/// Percent-decodes `text` (RFC 3986 section 2.1) into UTF-8 text without control line breaks.
pub fn decode(text: &str, what: &str) -> Result<String, UrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlError::Invalid(format!("bad percent-encoding in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded =
        String::from_utf8(out).map_err(|_| UrlError::Invalid(format!("the {what} is not valid UTF-8")))?;
    // SECURITY: CR, LF or NUL would end the FTP command line and start another command.
    if decoded.contains(['\r', '\n', '\0']) {
        return Err(UrlError::Invalid(format!(
            "the {what} contains a line break or NUL character"
        )));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> FtpUrl {
        FtpUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn full_url_with_credentials_and_port() {
        let u = url("ftp://alice:s%40cret%3A1@127.0.0.2:2121/dir/file.bin");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("s@cret:1"));
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.2", 2121));
        assert_eq!(u.path, "dir/file.bin");
        assert_eq!(u.file_name(), "file.bin");
        assert_eq!(u.to_string(), "ftp://alice@127.0.0.2:2121/dir/file.bin");
    }

    #[test]
    fn defaults_and_absolute_paths() {
        let u = url("FTP://example.org");
        assert_eq!((u.user, u.password, u.port), (None, None, 21));
        assert_eq!(u.path, "");
        assert_eq!(url("ftp://h/%2Fsrv/x%20y").path, "/srv/x y");
        assert_eq!(url("ftp://h/dir/").file_name(), "");
        assert_eq!(url("ftp://u@h/f").password, None);
        assert_eq!(url("ftp://u:@h/f").password.as_deref(), Some(""));
    }

    #[test]
    fn ipv6_hosts() {
        let u = url("ftp://bob@[::1]:2121/f");
        assert_eq!((u.host.as_str(), u.port), ("::1", 2121));
        assert_eq!(u.host_port(), "[::1]:2121");
        assert_eq!(url("ftp://[2001:db8::7]/f").port, 21);
    }

    #[test]
    fn ftps_is_explicit_tls_on_port_21() {
        let u = url("ftps://u@h/f");
        assert!(u.tls && u.port == 21);
        assert_eq!(u.to_string(), "ftps://u@h:21/f");
        assert!(!url("ftp://h/f").tls);
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "h/f",
            "http://h/f",
            "ftp:///f",
            "ftp://h:0/f",
            "ftp://h:99999/f",
            "ftp://h:+21/f",
            "ftp://[::1/f",
            "ftp://[nope]/f",
            "ftp://[::1]x/f",
            "ftp://:pw@h/f",
            "ftp://h/f%0D%0ADELE%20x",
            "ftp://u%0A@h/f",
            "ftp://h/%zz",
            "ftp://h/%ff",
            "ftp://h/f?x",
            "ftp://bad_host!/f",
        ] {
            assert!(
                matches!(FtpUrl::parse(bad), Err(UrlError::Invalid(_))),
                "{bad} accepted"
            );
        }
    }
}
