//! The `.netrc` file of ftp(1), curl and wget: `machine NAME login USER password PASS`
//! entries and one `default` entry, separated by any whitespace.
//!
//! `account` values are skipped, `macdef NAME` macros are skipped up to the next empty line,
//! and a `#` at the start of a token starts a comment that runs to the end of the line.
//! Tokens may be double-quoted (with `\"` and `\\` escapes) to hold spaces.

/// One `machine` (or the `default`) entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetrcEntry {
    /// `None` for the `default` entry.
    pub machine: Option<String>,
    /// The `login` value.
    pub login: Option<String>,
    /// The `password` value.
    pub password: Option<String>,
}

/// A parsed netrc file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    entries: Vec<NetrcEntry>,
}

impl Netrc {
    /// Parses netrc text; unknown keywords and a keyword without its value are errors.
    pub fn parse(text: &str) -> Result<Netrc, String> {
        let mut tokens = Tokens::new(text);
        let mut entries: Vec<NetrcEntry> = Vec::new();
        while let Some(word) = tokens.next_token()? {
            match word.as_str() {
                "machine" => {
                    let name = tokens.value("machine")?;
                    entries.push(NetrcEntry {
                        machine: Some(name),
                        ..NetrcEntry::default()
                    });
                }
                "default" => entries.push(NetrcEntry::default()),
                "login" | "password" | "account" => {
                    let value = tokens.value(&word)?;
                    let entry = entries
                        .last_mut()
                        .ok_or_else(|| format!("`{word}` before any `machine` or `default`"))?;
                    match word.as_str() {
                        "login" => entry.login = Some(value),
                        "password" => entry.password = Some(value),
                        _ => {}
                    }
                }
                "macdef" => {
                    tokens.value("macdef")?;
                    tokens.skip_macro();
                }
                other => return Err(format!("unknown keyword `{other}`")),
            }
        }
        Ok(Netrc { entries })
    }

    /// The entry for `host`: its `machine` entry (the first whose login matches `user`, when a
    /// user is given), else the `default` entry under the same condition.
    pub fn lookup(&self, host: &str, user: Option<&str>) -> Option<&NetrcEntry> {
        let login_fits = |e: &&NetrcEntry| match (user, &e.login) {
            (Some(u), Some(l)) => u == l,
            (Some(_), None) => true,
            (None, _) => true,
        };
        self.entries
            .iter()
            .filter(|e| e.machine.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(host)))
            .find(login_fits)
            .or_else(|| {
                self.entries
                    .iter()
                    .filter(|e| e.machine.is_none())
                    .find(login_fits)
            })
    }
}

/// A tokenizer over netrc text.
struct Tokens<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Tokens {
            chars: text.chars().peekable(),
        }
    }

    /// The value after a keyword.
    fn value(&mut self, keyword: &str) -> Result<String, String> {
        self.next_token()?
            .ok_or_else(|| format!("`{keyword}` without a value"))
    }

    /// The next token, skipping whitespace and comments.
    fn next_token(&mut self) -> Result<Option<String>, String> {
        loop {
            while self.chars.next_if(|c| c.is_whitespace()).is_some() {}
            match self.chars.peek() {
                None => return Ok(None),
                Some('#') => while self.chars.next_if(|&c| c != '\n').is_some() {},
                Some('"') => {
                    self.chars.next();
                    let mut token = String::new();
                    loop {
                        match self.chars.next() {
                            None => return Err("unterminated quoted string".into()),
                            Some('"') => return Ok(Some(token)),
                            Some('\\') => match self.chars.next() {
                                Some(c) => token.push(c),
                                None => return Err("unterminated quoted string".into()),
                            },
                            Some(c) => token.push(c),
                        }
                    }
                }
                Some(_) => {
                    let mut token = String::new();
                    while let Some(c) = self.chars.next_if(|c| !c.is_whitespace()) {
                        token.push(c);
                    }
                    return Ok(Some(token));
                }
            }
        }
    }

    /// Skips a `macdef` body: everything up to and including the next empty line.
    fn skip_macro(&mut self) {
        // The rest of the macdef line.
        while self.chars.next_if(|&c| c != '\n').is_some() {}
        self.chars.next();
        loop {
            let mut empty = true;
            loop {
                match self.chars.next() {
                    None => return,
                    Some('\n') => break,
                    Some(c) if !c.is_whitespace() => empty = false,
                    Some(_) => {}
                }
            }
            if empty {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# my hosts\n\
        machine a.example login alice password \"p w\\\"x\"\n\
        machine b.example\n  login bob\n  password b0b account acct\n\
        macdef init\ncd /pub\nbinary\n\n\
        machine b.example login carol password c4rol\n\
        default login anonymous password me@example.org\n";

    #[test]
    fn parses_entries_and_skips_macros() {
        let n = Netrc::parse(SAMPLE).unwrap();
        let a = n.lookup("A.example", None).unwrap();
        assert_eq!(a.login.as_deref(), Some("alice"));
        assert_eq!(a.password.as_deref(), Some("p w\"x"));
        let b = n.lookup("b.example", None).unwrap();
        assert_eq!(
            (b.login.as_deref(), b.password.as_deref()),
            (Some("bob"), Some("b0b"))
        );
        let c = n.lookup("b.example", Some("carol")).unwrap();
        assert_eq!(c.password.as_deref(), Some("c4rol"));
        let d = n.lookup("elsewhere", None).unwrap();
        assert_eq!(d.machine, None);
        assert_eq!(d.login.as_deref(), Some("anonymous"));
        assert!(n.lookup("elsewhere", Some("zed")).is_none());
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(Netrc::parse("machine").unwrap_err().contains("without a value"));
        assert!(Netrc::parse("login x").unwrap_err().contains("before any"));
        assert!(Netrc::parse("machine h port 21").unwrap_err().contains("`port`"));
        assert!(Netrc::parse("machine h password \"x")
            .unwrap_err()
            .contains("unterminated"));
        assert_eq!(Netrc::parse("").unwrap(), Netrc::default());
    }
}
