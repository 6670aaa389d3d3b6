//! `--recursive`: the source tree, listed with MLSD (RFC 3659 section 7), and the
//! destination directories, made with MKD.
//!
//! The whole tree is listed before anything is copied, so copying into a directory below
//! the source on the same server cannot feed itself. Depth and size are bounded.

use crate::client::{ClientError, ControlClient};

/// Deepest directory level followed.
const MAX_DEPTH: usize = 64;

/// Most entries in one tree.
const MAX_ENTRIES: usize = 1_000_000;

/// One entry below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Path relative to the root, `/`-separated.
    pub rel: String,
    /// A directory (else a file).
    pub is_dir: bool,
}

/// Why the tree could not be listed.
#[derive(Debug)]
pub enum TreeError {
    /// A server failed.
    ControlClient(ClientError),
    /// A limit was reached (one clause).
    Limit(String),
}

impl From<ClientError> for TreeError {
    fn from(e: ClientError) -> Self {
        TreeError::ControlClient(e)
    }
}

/// `dir` joined with `name` (`dir` may be empty: the login directory).
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Every directory and file below `root`, parents before their contents, names sorted.
/// Entries that are neither files nor directories (links, devices) are left out.
pub async fn walk(src: &mut ControlClient, root: &str) -> Result<Vec<TreeEntry>, TreeError> {
    let mut out = Vec::new();
    // (path relative to root, depth), popped depth-first.
    let mut stack = vec![(String::new(), 0usize)];
    while let Some((rel, depth)) = stack.pop() {
        let path = if rel.is_empty() {
            root.to_owned()
        } else {
            join(root, &rel)
        };
        let mut entries = src.mlsd(&path).await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut subdirs = Vec::new();
        for e in entries.into_iter().filter(|e| e.is_dir || e.is_file) {
            let child = join(&rel, &e.name);
            if e.is_dir {
                if depth + 1 > MAX_DEPTH {
                    return Err(TreeError::Limit(format!(
                        "the source tree is deeper than {MAX_DEPTH} levels at {child}"
                    )));
                }
                subdirs.push(child.clone());
            }
            out.push(TreeEntry {
                rel: child,
                is_dir: e.is_dir,
            });
            if out.len() > MAX_ENTRIES {
                return Err(TreeError::Limit(format!(
                    "the source tree has more than {MAX_ENTRIES} entries"
                )));
            }
        }
        stack.extend(subdirs.into_iter().rev().map(|d| (d, depth + 1)));
    }
    // Depth-first listing yields each directory's entries when it is listed; put every
    // entry right after its parent directory (sorted paths do exactly that).
    out.sort_by(|a, b| a.rel.split('/').cmp(b.rel.split('/')));
    Ok(out)
}

/// Makes sure `path` is a directory on `dst`: MKD, and when that fails, whether it already
/// is one (CWD into it and back to `home`).
pub async fn ensure_dir(dst: &mut ControlClient, path: &str, home: &str) -> Result<(), ClientError> {
    if path.is_empty() || path == "/" {
        return Ok(());
    }
    let line = format!("MKD {path}");
    let reply = dst.command(&line).await?;
    if reply.class() == 2 || dst.is_dir(path, home).await? {
        return Ok(());
    }
    Err(dst.rejected(&line, reply))
}

/// [`ensure_dir`] for `path` and each missing parent, like `mkdir -p`.
pub async fn ensure_dir_all(dst: &mut ControlClient, path: &str, home: &str) -> Result<(), ClientError> {
    let mut sofar = if path.starts_with('/') {
        "/".to_owned()
    } else {
        String::new()
    };
    for part in path.split('/').filter(|p| !p.is_empty()) {
        sofar = join(&sofar, part);
        ensure_dir(dst, &sofar, home).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("d", "a"), "d/a");
        assert_eq!(join("/srv/d", "a b"), "/srv/d/a b");
    }

    #[test]
    fn component_order_puts_children_after_parents() {
        let mut v = vec!["a-b", "a/x", "a", "a/x/y", "b"];
        v.sort_by(|a, b| a.split('/').cmp(b.split('/')));
        assert_eq!(v, ["a", "a/x", "a/x/y", "a-b", "b"]);
    }
}
