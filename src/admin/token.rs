//! The admin listener's bearer token: made by `fxpd admin token` from the operating system's
//! random source, kept in `admin.token_file` (mode 0600), and compared in constant time.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Random bytes in a token (written as 64 hex digits).
const TOKEN_BYTES: usize = 32;

/// Shortest token accepted from a token file, in characters: a file the operator wrote by
/// hand must still be hard to guess.
const MIN_TOKEN_CHARS: usize = 32;

/// The token the admin listener expects.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Read the token from `file`: its first line, trimmed. A missing or short token is an
    /// error naming the file (no token file, no admin listener).
    pub fn read(file: &Path) -> Result<Token, String> {
        let text = fs::read_to_string(file).map_err(|e| {
            format!(
                "admin.token_file {}: {e} (create it with `fxpd admin token`)",
                file.display()
            )
        })?;
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!(
                "admin.token_file {}: the first line must hold a token of at least {MIN_TOKEN_CHARS} characters without spaces (create one with `fxpd admin token`)",
                file.display()
            ));
        }
        Ok(Token(token))
    }

    /// Whether `given` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, given: &str) -> bool {
        same(given, &self.0)
    }

    /// The token as sent in `Authorization: Bearer`, for the command-line client.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ.
pub(crate) fn same(given: &str, expected: &str) -> bool {
    // SECURITY: constant time over the expected length; the length itself is not secret
    // (every token fxpd makes has the same).
    let (expected, given) = (expected.as_bytes(), given.as_bytes());
    let mut diff = u8::from(expected.len() != given.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// Make a new token and write it to `file` (mode 0600 on Unix), replacing an existing one
/// only with `replace`. The new token takes effect when the server next starts.
pub fn create(file: &Path, replace: bool) -> Result<(), String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes for a token: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if file.exists() && !replace {
        return Err(format!(
            "{} exists: pass --replace to make a new token",
            file.display()
        ));
    }
    // Written beside the file, then renamed over it: a reader never sees half a token.
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", file.display()))?;
    let temp = dir.join(format!(".{}.new", name.to_string_lossy()));
    let _ = fs::remove_file(&temp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options
        .open(&temp)
        .map_err(|e| format!("{}: {e}", temp.display()))?;
    out.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| format!("{}: {e}", temp.display()))?;
    fs::rename(&temp, file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_token_is_read_back_private_and_only_it_matches() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        create(&file, false).unwrap();
        let token = Token::read(&file).unwrap();
        assert_eq!(token.secret().len(), 64);
        assert!(token.matches(token.secret()));
        assert!(!token.matches(""));
        assert!(!token.matches(&token.secret()[..63]));
        assert!(!token.matches(&format!("{}0", token.secret())));
        let mut flipped = token.secret().as_bytes().to_vec();
        flipped[10] ^= 1;
        assert!(!token.matches(std::str::from_utf8(&flipped).unwrap()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(create(&file, false).is_err(), "an existing token is kept");
        create(&file, true).unwrap();
        assert_ne!(Token::read(&file).unwrap().secret(), token.secret());
    }

    #[test]
    fn no_file_or_a_short_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        assert!(Token::read(&file).unwrap_err().contains("fxpd admin token"));
        fs::write(&file, "short\n").unwrap();
        assert!(Token::read(&file).is_err());
    }
}
