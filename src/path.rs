//! Virtual paths: what the client sees, rooted at its home directory, and the names that may
//! make up a path or an object key.
//!
//! The session keeps its working directory as a normalised absolute path (`/`, `/pub`);
//! every client argument is resolved against it here. `..` never climbs above `/`. The
//! storage back-end confines paths to the home directory again (cap-std, or the home's key
//! prefix), so this is about clean names, not the security boundary.

mod mounts;

pub use mounts::{locate, mount_of, mounted_children, MountPoint};

/// Resolve `arg` (absolute or relative) against the working directory `cwd`.
pub fn resolve(cwd: &str, arg: &str) -> String {
    let mut parts: Vec<&str> = if arg.starts_with('/') {
        Vec::new()
    } else {
        split(cwd).collect()
    };
    for part in split(arg) {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::with_capacity(arg.len() + cwd.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty())
}

/// The last component of a virtual path (empty for `/`).
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// Quote a path for a 257 reply (RFC 959 appendix II: embedded quotes are doubled).
pub fn quote(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

/// A name that may be one component of a path or an object key: not empty, not `.` or `..`,
/// no control characters.
pub fn valid_component(part: &str) -> bool {
    !part.is_empty() && part != "." && part != ".." && !part.chars().any(char::is_control)
}

/// A key prefix as `a/b/` (trailing slash, no leading one), `""` for none; `None` if a component
/// is not a [`valid_component`].
pub fn normalise_prefix(prefix: &str) -> Option<String> {
    let mut out = String::new();
    for part in prefix.split('/').filter(|p| !p.is_empty()) {
        if !valid_component(part) {
            return None;
        }
        out.push_str(part);
        out.push('/');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_absolute_and_dots() {
        assert_eq!(resolve("/", "a"), "/a");
        assert_eq!(resolve("/a", "b/c"), "/a/b/c");
        assert_eq!(resolve("/a/b", ".."), "/a");
        assert_eq!(resolve("/a", "../../.."), "/");
        assert_eq!(resolve("/a", "/x/./y//z/"), "/x/y/z");
        assert_eq!(resolve("/a", "."), "/a");
    }

    #[test]
    fn quotes_and_names() {
        assert_eq!(quote("/a\"b"), "\"/a\"\"b\"");
        assert_eq!(file_name("/a/b.txt"), "b.txt");
        assert_eq!(file_name("/"), "");
    }

    #[test]
    fn prefixes_are_normalised_and_never_climb() {
        assert_eq!(normalise_prefix("ftp").as_deref(), Some("ftp/"));
        assert_eq!(normalise_prefix("/a//b/").as_deref(), Some("a/b/"));
        assert_eq!(normalise_prefix("").as_deref(), Some(""));
        assert_eq!(normalise_prefix("a/../b"), None);
        assert_eq!(normalise_prefix("./a"), None);
        assert_eq!(normalise_prefix("a\nb"), None);
    }
}
