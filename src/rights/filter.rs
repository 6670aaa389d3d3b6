//! File-name patterns for request filtering: `*` matches any run of characters, `?` exactly
//! one, everything else itself, without regard to case (`*.exe` refuses `SETUP.EXE`). A
//! pattern matches one path segment (a file or directory name), never a `/`.

use std::fmt;

/// Longest pattern (characters).
pub const MAX_PATTERN_LEN: usize = 255;

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Empty.
    Empty,
    /// Longer than `MAX_PATTERN_LEN`.
    TooLong,
    /// Contains `/` or a control character.
    BadChar(char),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Empty => f.write_str("the pattern is empty"),
            PatternError::TooLong => write!(f, "the pattern is longer than {MAX_PATTERN_LEN} characters"),
            PatternError::BadChar(c) => write!(
                f,
                "the pattern contains {c:?}; a pattern matches one name, without '/' or control characters"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

/// A name pattern, matched without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// As written.
    text: String,
    /// Lower-case characters, for matching.
    lower: Vec<char>,
}

impl Pattern {
    /// Parses a pattern.
    pub fn parse(s: &str) -> Result<Pattern, PatternError> {
        if s.is_empty() {
            return Err(PatternError::Empty);
        }
        if s.chars().count() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        if let Some(c) = s.chars().find(|&c| c == '/' || c.is_control()) {
            return Err(PatternError::BadChar(c));
        }
        Ok(Pattern {
            text: s.to_owned(),
            lower: s.to_lowercase().chars().collect(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches, without regard to case.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.to_lowercase().chars().collect();
        glob(&self.lower, &name)
    }
}

/// Iterative wildcard matching with one backtrack point (linear in practice, never
/// exponential): `*` any run, `?` one character.
fn glob(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(&'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::parse(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_case() {
        let exe = Pattern::parse("*.exe").unwrap();
        assert!(exe.matches("setup.exe") && exe.matches("SETUP.EXE") && exe.matches(".exe"));
        assert!(!exe.matches("setup.exe.txt") && !exe.matches("setupexe"));
        let q = Pattern::parse("a?c*").unwrap();
        assert!(q.matches("abc") && q.matches("AXCdef") && !q.matches("ac"));
        let git = Pattern::parse(".git").unwrap();
        assert!(git.matches(".GIT") && !git.matches(".github"));
        assert!(Pattern::parse("**").unwrap().matches(""));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
        assert_eq!(Pattern::parse("a/b"), Err(PatternError::BadChar('/')));
        assert_eq!(Pattern::parse("a\nb"), Err(PatternError::BadChar('\n')));
        assert_eq!(Pattern::parse(&"x".repeat(256)), Err(PatternError::TooLong));
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = Pattern::parse(&"*a".repeat(100)).unwrap();
        let name = "a".repeat(99) + "b";
        let started = std::time::Instant::now();
        assert!(!p.matches(&name));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
