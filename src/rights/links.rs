//! Symbolic links and the rights: the path the file system reaches for a virtual path when it
//! follows links, so that [`super::Rights::decide_reached`] can judge it too.
//!
//! FTP clients cannot make links, but an operator (or a process outside fxpd) can put one in a
//! home, and the file system follows links inside the home (the storage confines every path
//! to it). Judging only the path the client named would let `/pub/link -> ../secret` reach
//! the denied `/secret` under `/pub`'s rules; judging only the target would let a denied name
//! be used as long as it led somewhere allowed. So both are judged and both must allow.
//!
//! The walk is lexical over what a `read_link` callback says of each component, in the order
//! the operating system follows them: components one by one, a link's target spliced in
//! where the link was (relative to the link's directory, or from the home's `/` when it is
//! absolute), at most [`MAX_LINKS`] links, never above the home. Components are split where
//! the system splits them (`\` too on Windows only).

/// Most links followed for one path (Linux's own limit); more is a loop.
pub const MAX_LINKS: usize = 40;

/// What the file system holds at one virtual path, as far as links go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Not a link (a file, a directory, or nothing yet).
    NotALink,
    /// A link whose target is this text: relative to the link's directory, or a virtual path
    /// from the home's `/` when it starts with `/`.
    Target(String),
    /// A link whose target lies outside the home (or cannot be read as text).
    Outside,
}

/// The virtual path the file system reaches for `path` (resolved, `/a/b`) when it follows
/// links, given what `read_link` says of each path on the way (always a path whose parents
/// are no links); `None` when it cannot be reached inside the home: a loop, a target outside
/// the home, or a `..` above its `/`.
pub fn reached(path: &str, mut read_link: impl FnMut(&str) -> Link) -> Option<String> {
    let mut pending: std::collections::VecDeque<std::borrow::Cow<'_, str>> =
        components(path).map(std::borrow::Cow::Borrowed).collect();
    // The path reached so far, `/a/b` (empty for the home's `/`): one buffer that grows by a
    // component and is cut back at a `..` or an absolute target.
    let mut done = String::with_capacity(path.len() + 1);
    let mut followed = 0;
    while let Some(part) = pending.pop_front() {
        match &*part {
            "" | "." => continue,
            ".." => {
                // SECURITY: never above the home's `/`.
                let cut = done.rfind('/')?;
                done.truncate(cut);
                continue;
            }
            _ => {}
        }
        let before = done.len();
        done.push('/');
        done.push_str(&part);
        match read_link(&done) {
            Link::NotALink => {}
            Link::Outside => return None,
            Link::Target(target) => {
                done.truncate(before);
                followed += 1;
                if followed > MAX_LINKS {
                    return None;
                }
                if target.starts_with('/') {
                    done.clear();
                }
                for (i, t) in components(&target).enumerate() {
                    pending.insert(i, std::borrow::Cow::Owned(t.to_owned()));
                }
            }
        }
    }
    if done.is_empty() {
        done.push('/');
    }
    Some(done)
}

/// What separates the components of a path on this system: `/`, and on Windows `\` too. On
/// other systems a `\` is part of a name (a link may be called `x\y`), so splitting there
/// would ask about other files than the ones the file system follows.
#[cfg(not(windows))]
const SEPARATORS: &[char] = &['/'];
#[cfg(windows)]
const SEPARATORS: &[char] = &['/', '\\'];

/// The components of a path or a link target, split as the file system splits them.
fn components(path: &str) -> impl Iterator<Item = &str> + '_ {
    path.split(SEPARATORS).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs<'a>(links: &'a [(&'a str, &'a str)]) -> impl FnMut(&str) -> Link + 'a {
        move |p| match links.iter().find(|(at, _)| *at == p) {
            Some((_, "OUT")) => Link::Outside,
            Some((_, target)) => Link::Target((*target).to_owned()),
            None => Link::NotALink,
        }
    }

    #[test]
    fn links_are_followed_like_the_file_system_does() {
        let links = [
            ("/pub/s", "../secret"),
            ("/pub/abs", "/secret/x"),
            ("/loop", "loop"),
            ("/out", "OUT"),
            ("/a", "b"),
            ("/b", "c/d"),
        ];
        assert_eq!(reached("/pub/s/f", fs(&links)).as_deref(), Some("/secret/f"));
        assert_eq!(reached("/pub/abs", fs(&links)).as_deref(), Some("/secret/x"));
        assert_eq!(reached("/a/e", fs(&links)).as_deref(), Some("/c/d/e"));
        assert_eq!(reached("/pub/f", fs(&links)).as_deref(), Some("/pub/f"));
        assert_eq!(reached("/", fs(&links)).as_deref(), Some("/"));
        assert_eq!(reached("/loop/x", fs(&links)), None);
        assert_eq!(reached("/out/x", fs(&links)), None);
        // A target that climbs above the home's `/`.
        assert_eq!(reached("/up", fs(&[("/up", "../x")])), None);
        // The name of a link is looked up with the case it is written in (the file system
        // decides case): `/PUB/s` is not the link `/pub/s` here.
        assert_eq!(reached("/PUB/s/f", fs(&links)).as_deref(), Some("/PUB/s/f"));
    }

    #[cfg(not(windows))]
    #[test]
    fn a_backslash_is_part_of_a_name_where_the_file_system_says_so() {
        // A link called `x\y` is that one name, looked up as such, and a target `..\s` is a
        // name in the link's directory, not a way up.
        let links = [("/pub/x\\y", "../secret"), ("/pub/b", "..\\secret")];
        assert_eq!(reached("/pub/x\\y/f", fs(&links)).as_deref(), Some("/secret/f"));
        assert_eq!(
            reached("/pub/b/f", fs(&links)).as_deref(),
            Some("/pub/..\\secret/f")
        );
    }

    #[cfg(windows)]
    #[test]
    fn a_backslash_separates_components_on_windows() {
        let links = [("/pub/b", "..\\secret")];
        assert_eq!(reached("/pub\\b\\f", fs(&links)).as_deref(), Some("/secret/f"));
    }
}
