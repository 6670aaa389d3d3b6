//! Which symlink targets a listing may show: a [`LinkScope`] resolves a target lexically and
//! keeps it only when it lies inside the user's home.

use std::path::{Component, Path};

/// Where listed entries live, so that a symlink target is shown only inside the home.
#[derive(Debug, Clone, Copy)]
pub struct LinkScope<'a> {
    /// The home directory on disk: the user's `/`.
    pub home: &'a Path,
    /// The same home with every symlink resolved, when that is a different path (a root
    /// configured through a symlink): an absolute target may name either.
    pub real_home: Option<&'a Path>,
    /// The virtual directory that holds the entries (`/`, `/docs`): where a relative target
    /// starts.
    pub dir: &'a str,
}

impl LinkScope<'_> {
    /// A symlink target as the user may see it, or `None` when it must not be shown.
    ///
    /// The target is resolved lexically, as text, never by following links on disk:
    /// - an absolute target is shown as a virtual path (`<home>/docs/a.txt` as `/docs/a.txt`)
    ///   when, with `.` and `..` applied, it lies in the home;
    /// - a relative target is shown as written (`../b.txt`, usable from the link's directory)
    ///   when applying it from [`LinkScope::dir`] never climbs above the home's `/`;
    /// - anything else (`/etc/passwd`, `../../..`, another user's home, the server root, a
    ///   target that is not UTF-8) is not shown. Whether the target exists does not matter.
    pub fn visible_target(&self, target: &Path) -> Option<String> {
        // SECURITY: an FTP user sees only its home; a target outside would disclose the server's
        // layout (system files, other homes, the root's own path) that no command can reach.
        let text = target.to_str().filter(|t| !t.is_empty())?;
        if target.has_root() {
            let target = lexical(target);
            return [Some(self.home), self.real_home]
                .into_iter()
                .flatten()
                .find_map(|home| {
                    let rest = target.strip_prefix(lexical(home).as_slice())?;
                    let parts: Option<Vec<&str>> = rest.iter().map(|c| c.as_os_str().to_str()).collect();
                    Some(format!("/{}", parts?.join("/")))
                });
        }
        let mut depth = self.dir.split('/').filter(|p| !p.is_empty()).count();
        for part in target.components() {
            match part {
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                Component::ParentDir => depth = depth.checked_sub(1)?,
                // A drive-relative Windows path (`C:x`): not under the home's `/`.
                Component::Prefix(_) | Component::RootDir => return None,
            }
        }
        Some(text.to_owned())
    }
}

/// The components of a path with `.` and `..` applied as text (`..` at the top stays there).
fn lexical(path: &Path) -> Vec<Component<'_>> {
    let mut out: Vec<Component<'_>> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.last(), Some(Component::Normal(_))) {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out
}
